#!/usr/bin/env bash
# Host side of the QEMU bench: boots the cached test kernel under TCG with the host
# filesystem read-only over 9p, runs the cases in the guest, and prints the results
# as KTAP (version line, plan, nested subtests) followed by `N passed, N failed`. A case fails if its script fails, if it gives no result
# (guest died or timed out), or if the kernel log or kmemleak it produced shows an
# oops/BUG/WARNING/KASAN/lockdep/leak report; the offending lines are shown.
#   ktests/run.sh [--demo] [--dir CASE_DIR] [CASE_NAME...]
# Env: KERNEL_FLAVOUR (debug|bench), KTEST_KDIR (kernel tree), KTEST_KO (module),
#      ISCSI_RS_KVM=1 (use KVM; broken on this host), KTEST_TIMEOUT (whole boot, s),
#      CASE_TIMEOUT (per case, s), GUEST_MEM, GUEST_CPUS, KTEST_APPEND (cmdline),
#      KTEST_BOOT (only that "# guest-boot:" group; a full run sets it per boot).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/env.sh"

demo=0 dir=ktests/cases out=${KTEST_OUT:-$repo/ktests/out}
names=()
while [ $# -gt 0 ]; do
    case "$1" in
    --demo) demo=1 ;;
    --dir) dir=$2; shift ;;
    --out) out=$2; shift ;;
    *) names+=("$1") ;;
    esac
    shift
done

kdir=${KTEST_KDIR:-$("$here/build-kernel.sh" "${KERNEL_FLAVOUR:-debug}")}
initrd=$("$here/qemu/initramfs.sh")
# KTEST_KO: the module the cases load, when not the repo's (the bench builds its own);
# the guest sees the host's files but has its own /tmp, so not a path under /tmp.
ko=${KTEST_KO:-$repo/iscsi_rs.ko}
[ -f "$ko" ] || { echo "run.sh: $ko missing (make module)"; exit 1; }

rm -rf "$out" && mkdir -p "$out"
if [ $demo = 1 ]; then
    dir=ktests/qemu names=(demo)
fi
cpus=${GUEST_CPUS:-2}
# A full run boots once per "# guest-boot:" group of this CPU count's cases
# (ktests/qemu/plan.sh), each into $out/boot-B, and fails if any boot failed.
if [ -z "${KTEST_BOOT:-}" ] && [ ${#names[@]} = 0 ]; then
    boots=()
    for b in 1 2 3 4 5 6 7 8 9; do
        [ -z "$(PLAN_BOOT=$b "$here/qemu/plan.sh" "$repo" "$dir" "$cpus")" ] || boots+=("$b")
    done
    if [ ${#boots[@]} -gt 1 ]; then
        rc=0
        for b in "${boots[@]}"; do
            echo "# boot $b of ${#boots[@]} with $cpus vCPUs"
            KTEST_KDIR=$kdir KTEST_BOOT=$b "$0" --dir "$dir" --out "$out/boot-$b" || rc=1
        done
        exit $rc
    fi
fi
PLAN_BOOT=${KTEST_BOOT:-} "$here/qemu/plan.sh" "$repo" "$dir" "$cpus" "${names[@]}" > "$out/plan"
only=$(IFS=,; echo "${names[*]}")
total=$(wc -l < "$out/plan")
[ "$total" -gt 0 ] || { echo "run.sh: no cases selected"; exit 1; }

# pci=noacpi: evaluating ACPI's PCI routing method (_PRT) under TCG with KASAN runs
# into the AML loop timeout (30 s per boot); virtio uses MSI-X anyway.
cmdline="console=ttyS0 panic=-1 loglevel=4 pci=noacpi ${KTEST_APPEND:-}"
accel=(-accel tcg,thread=multi -cpu max)
[ "${ISCSI_RS_KVM:-0}" = 1 ] && accel=(-accel kvm -cpu host)
# The debug guest with 2 vCPUs gets 1 GiB: every case of both its boots passes
# with it, and less memory makes KASAN/kmemleak's work smaller (the boots ran
# 15 % faster, kmemleak's scan 3.1 s per case instead of ~5). The 4-vCPU MC/S
# cases (a 256 MiB backstore, four fio jobs) keep 2 GiB; the bench sets its own.
mem=2G
[ "${KERNEL_FLAVOUR:-debug}" = debug ] && [ "$cpus" -le 2 ] && mem=1G
start=$(date +%s.%N)
set +e
timeout -k 10 "${KTEST_TIMEOUT:-3000}" qemu-system-x86_64 "${accel[@]}" \
    -m "${GUEST_MEM:-$mem}" -smp "$cpus" -display none -no-reboot -nodefaults \
    -serial stdio -kernel "$kdir/arch/x86/boot/bzImage" -initrd "$initrd" \
    -serial "file:$out/channel.txt" \
    -append "$cmdline iscsirs.repo=$repo iscsirs.script=ktests/qemu/guest.sh iscsirs.dir=$dir iscsirs.only=$only iscsirs.ko=$ko iscsirs.boot=${KTEST_BOOT:-}" \
    -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
    < /dev/null 2>&1 | tee "$out/console.log" | { if [ $demo = 1 ]; then cat; else
      grep --line-buffered -E '^(ok|not ok|#|guest:|init:)' | sed -u 's/^/guest| /'; fi; }
qemu_rc=${PIPESTATUS[0]}
set -e
elapsed=$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $start}")
if [ $demo = 1 ]; then
    # guest.sh prints "ok 1 - demo" only if the demo script exited 0.
    echo "demo: guest ran for $elapsed s"
    grep -q '^ok 1 - demo' "$out/console.log" || { echo "demo: FAILED (see above)"; exit 1; }
    exit 0
fi

# Unpack the files the guest sent over ttyS1. A case's finer-grained results
# (subtests-LABEL) are stored as subtests-N-LABEL, N the case that was running
# ("@@CASE N"), so they nest under that case's result.
python3 - "$out" <<'PY'
import base64, os, sys
out = sys.argv[1]
name, buf, case = None, [], 1
for line in open(os.path.join(out, "channel.txt"), errors="replace"):
    line = line.strip()
    if line.startswith("@@CASE ") and line[7:].isdigit():
        case = int(line[7:])
    elif line.startswith("@@FILE "):
        name, buf = os.path.basename(line[7:]), []
        if name.startswith("subtests-"):
            name = "subtests-%d-%s" % (case, name[len("subtests-"):])
    elif line == "@@END" and name:
        with open(os.path.join(out, name), "wb") as f:
            f.write(base64.b64decode("".join(buf), validate=False))
        name = None
    elif name:
        buf.append(line)
PY
[ "$qemu_rc" = 124 ] && echo "# QEMU killed after ${KTEST_TIMEOUT:-3000} s"

echo "guest run took $elapsed s"
exec "$here/report.sh" "$out"
