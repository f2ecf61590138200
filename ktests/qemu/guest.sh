#!/bin/bash
# In-guest harness: runs each case of the plan (ktests/qemu/plan.sh over the
# kernel command line's iscsirs.dir= and iscsirs.only=), prints TAP-style
# `ok N - name` / `not ok N - name`, and sends per case its output, the kernel log
# it produced and kmemleak's findings to the host over ttyS1 as base64 records
# ("@@FILE name" … "@@END"), right after the case so a later crash loses nothing;
# "@@CASE N" before case N tells the host which case later files belong to.
# Environment for cases: REPO, OUT (a scratch dir whose files are sent back),
# KO (the module), CTL (iscsictl).
set -u
OUT=/tmp/ktest-out
mkdir -p $OUT
export REPO OUT
export KO="$REPO/iscsi_rs.ko" CTL="$REPO/target/release/iscsictl"
export PATH="$REPO/ktests/qemu:$PATH"
# iscsictl's state (generated initiator name, ISID store) on the guest's tmpfs:
# /etc/iscsi-rs is on the read-only host root here. Shared by the cases of one
# boot, as on a real host.
export ISCSI_RS_DIR=/tmp/iscsi-rs-state
kmemleak=/sys/kernel/debug/kmemleak
case_timeout=${CASE_TIMEOUT:-900}

# Milliseconds since boot in $UP_MS, and "S.ss" seconds between two of them,
# without an exec (each costs 0.1-0.3 s in the debug guest).
uptime_ms() {
    local u
    read -r u _ < /proc/uptime
    UP_MS=$((${u%.*} * 1000 + 10#${u#*.} * 10))
}
secs_since() {
    local d
    uptime_ms
    d=$((UP_MS - $1))
    printf '%d.%02d' $((d / 1000)) $((d % 1000 / 10))
}

channel=/dev/ttyS1
stty -F $channel raw -echo 2>/dev/null
send() {  # send FILE...: ship files to the host and forget them
    local f
    for f in "$@"; do
        [ -f "$f" ] || continue
        { echo "@@FILE ${f##*/}"; base64 -w 76 "$f"; echo "@@END"; } > $channel
        rm -f "$f"
    done
}
dir= only= boot=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
    iscsirs.dir=*) dir=${arg#*=} ;;
    iscsirs.only=*) only=${arg#*=} ;;
    # The module to load, when the host's KTEST_KO names another build.
    iscsirs.ko=*) KO=${arg#*=} ;;
    # The host's CASE_TIMEOUT does not cross `env -i`: the command line carries it.
    iscsirs.case_timeout=*) case_timeout=${arg#*=} ;;
    # The "# guest-boot:" group this boot runs (empty: all).
    iscsirs.boot=*) boot=${arg#*=} ;;
    esac
done
# shellcheck disable=SC2086
PLAN_BOOT=$boot "$REPO/ktests/qemu/plan.sh" "$REPO" "$dir" "$(nproc)" ${only//,/ } > /tmp/plan

echo "guest: up after $(secs_since 0) s"
dmesg -c > "$OUT/dmesg-boot.txt"
send "$OUT/dmesg-boot.txt"
[ -w $kmemleak ] && echo clear > $kmemleak

n=0
while IFS=$'\t' read -r name script; do
    [ -n "$name" ] || continue
    n=$((n + 1))
    # Files sent from here on (subtests-* in particular) belong to case n.
    echo "@@CASE $n" > $channel
    uptime_ms; start=$UP_MS
    (cd /tmp && timeout -k 10 "$case_timeout" bash "$REPO/$script") > "$OUT/case-$n.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        # A failed case may leave state behind: clear it so the next case starts
        # clean (a passing case must clean up after itself; this is not checked).
        (
            pkill -f "iscsictl daemon"; pkill -f "iscsi-faultd"
            udevadm control --exit
            dmsetup remove --force iscsi-rs-mpath
            "$CTL" logout -a
            iscsiadm -m node --logoutall=all
            pkill -x iscsid
            rmmod iscsi_rs
            . "$REPO/ktests/qemu/lio.sh" && lio_teardown
            . "$REPO/ktests/qemu/tgt.sh" && tgt_stop
            . "$REPO/ktests/qemu/istgt.sh" && istgt_stop
        ) > /dev/null 2>&1
    fi
    if [ -w $kmemleak ]; then
        uptime_ms; scan_start=$UP_MS
        echo scan > $kmemleak
        echo "# kmemleak scan took $(secs_since $scan_start) s"
        cat $kmemleak > "$OUT/kmemleak-$n.txt"
        echo clear > $kmemleak
    fi
    dmesg -c > "$OUT/dmesg-$n.txt"
    took=$(secs_since $start)
    if [ $rc -eq 0 ]; then
        echo "ok $n - $name"
    else
        [ $rc -eq 124 ] && echo "# $name: timed out after $case_timeout s"
        sed 's/^/#   /' "$OUT/case-$n.log" | tail -n 25
        echo "not ok $n - $name"
    fi | tee "$OUT/result-$n"
    echo "# $name took $took s"
    send "$OUT/result-$n" "$OUT/case-$n.log" "$OUT/dmesg-$n.txt" "$OUT/kmemleak-$n.txt" "$OUT"/subtests-*
done < /tmp/plan
echo "guest: done"
