#!/bin/bash
# In-guest harness: runs each case listed in $OUT/plan ("name<TAB>script" lines),
# prints TAP-style `ok N - name` / `not ok N - name`, and stores per case its
# output and the kernel log it produced (plus kmemleak findings) in $OUT for the
# host runner to scan. Environment for cases: REPO, OUT, KO (the module), CTL.
set -u
export REPO OUT
export KO="$REPO/iscsi_rs.ko" CTL="$REPO/target/release/iscsictl"
export PATH="$REPO/ktests/qemu:$PATH"
kmemleak=/sys/kernel/debug/kmemleak
case_timeout=${CASE_TIMEOUT:-900}

echo "guest: up after $(cut -d' ' -f1 /proc/uptime) s"
dmesg -c > "$OUT/dmesg-boot.txt"
[ -w $kmemleak ] && echo clear > $kmemleak

n=0
while IFS=$'\t' read -r name script; do
    [ -n "$name" ] || continue
    n=$((n + 1))
    start=$(cut -d' ' -f1 /proc/uptime)
    (cd /tmp && timeout -k 10 "$case_timeout" bash "$REPO/$script") > "$OUT/case-$n.log" 2>&1
    rc=$?
    if [ -w $kmemleak ]; then
        echo scan > $kmemleak
        cat $kmemleak > "$OUT/kmemleak-$n.txt"
        echo clear > $kmemleak
    fi
    dmesg -c > "$OUT/dmesg-$n.txt"
    end=$(cut -d' ' -f1 /proc/uptime)
    if [ $rc -eq 0 ]; then
        echo "ok $n - $name"
    else
        [ $rc -eq 124 ] && echo "# $name: timed out after $case_timeout s"
        sed 's/^/#   /' "$OUT/case-$n.log" | tail -n 25
        echo "not ok $n - $name"
    fi | tee -a "$OUT/results"
    echo "# $name took $(awk "BEGIN{print $end - $start}") s"
done < "$OUT/plan"
echo "guest: done"
