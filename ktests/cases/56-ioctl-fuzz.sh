# Case: the control device under hostile and random ioctls. iscsi-ioctl-fuzz
# (ktests/ioctl-fuzz) calls every ioctl with NULL / unmapped / kernel /
# misaligned / read-only / guard-page-straddling arguments and nested buffers,
# wrong versions, sizes, flags, reserved fields and extreme values, unknown
# numbers and wrong size/direction encodings, and descriptors of every kind
# (closed, O_PATH, pipe, file, /dev/null, UDP, unix, listening, unconnected,
# half-closed, MPTCP, and TCP connections to local peers that echo, send
# garbage, stay silent, reset or close). Sessions over the connected ones must
# be created, fail, and be removed; the recovery ioctls (WAIT_EVENT,
# FAIL_RELOGIN, HANDOFF) are exercised on a failed session; an unprivileged
# caller is refused. Every errno is checked against an oracle built on
# iscsi_proto::uapi's validation; a call that hangs ends the run (exit 3).
# Afterwards no session is left and the module unloads. The harness fails the
# case on any KASAN, lockdep, kmemleak or WARN report.
#   IOCTL_FUZZ_SEEDS   "seed:iterations:sessions ..." (sessions: how many
#                      session-creating tests; "all" for every one)
# guest-boot: 2
set -eux
. "$REPO/ktests/qemu/rs.sh"
fuzz="$REPO/target/release/iscsi-ioctl-fuzz"
runs=${IOCTL_FUZZ_SEEDS:-"1:400:all 2:300:3 3:300:0"}
[ -x "$fuzz" ]
insmod "$KO"
[ -c /dev/iscsi_rs ]
failed=0
for run in $runs; do
    IFS=: read -r seed iters sessions <<<"$run"
    args=(--seed "$seed" --iterations "$iters" --call-timeout 120 --total-timeout 300)
    [ "$sessions" = all ] || args+=(--sessions "$sessions")
    start=$(rs_now)
    rc=0
    "$fuzz" "${args[@]}" > /tmp/ioctl-fuzz.log 2>&1 || rc=$?
    cat /tmp/ioctl-fuzz.log
    echo "seed $seed: exit $rc after $(awk "BEGIN{print $(rs_now) - $start}") s"
    if [ $rc = 0 ]; then
        echo "ok ioctl-fuzz: seed $seed" >> "$OUT/subtests-ioctl-fuzz"
    else
        echo "not ok ioctl-fuzz: seed $seed (exit $rc)" >> "$OUT/subtests-ioctl-fuzz"
        failed=1
        # A hang (3) may leave a call stuck in the module: stop here.
        if [ $rc = 3 ]; then break; fi
    fi
done
"$CTL" list | tee /tmp/list
grep -qx "no sessions" /tmp/list
rmmod iscsi_rs
[ $failed = 0 ]
