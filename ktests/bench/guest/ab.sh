# `make bench-ab` (ktests/bench/run.sh ab): issue 16's goal row alone — 4 KiB
# random read, QD32, two fio jobs — on iscsi_rs with two connections and on
# open-iscsi, alternating in one boot (AB_ROUNDS pairs, 10 s jobs), so that
# both see the same host; the full bench's rounds swing ±20 % between boots.
# Each job's line gives IOPS, the guest's busy share over the measured window
# and guest CPU time per I/O (both vCPUs; /proc/stat), and context switches
# per I/O, to ab.txt in the round's tarball. The yardstick for changes to the
# 2-connection data path: a saturated guest (busy near 100 %) is bound by CPU
# per I/O, not by the wire.
set -u
. "$REPO/ktests/bench/lib.sh"
AB_ROUNDS=4
BENCH_JOBS="randread-4k-qd32-2j:randread:4k:32:2"
BENCH_DIGEST_JOBS=none
BENCH_RUNTIME=10 BENCH_RAMP=2

# "busy idle ctxt" from /proc/stat (USER_HZ ticks, all CPUs).
ab_ticks() { awk '/^cpu /{b = $2 + $3 + $4 + $7 + $8; i = $5 + $6} /^ctxt/{c = $2} END {print b, i, c}' /proc/stat; }

bench_fio() {
    local tag=$1 dev=$2 name pid rc t0 t1 w0 w1 iops
    bench_fio_start "$tag" "$dev" "$3"
    pid=$BENCH_FIO_PID name=$BENCH_FIO_NAME
    sleep "$BENCH_RAMP"
    read -r w0 _ < /proc/uptime; t0=$(ab_ticks)
    sleep $((BENCH_RUNTIME - 2))
    read -r w1 _ < /proc/uptime; t1=$(ab_ticks)
    wait $pid; rc=$?
    iops=$(grep -m1 '"iops"' "$B/fio-$tag-$name.json" | tr -dc '0-9.')
    if [ $rc = 0 ] && [ -n "$iops" ]; then
        echo "ok bench $tag $name" >> "$BENCH_SUBTESTS"
        # fio's IOPS cover its whole run; the window is most of it.
        echo "$t0 $t1 $w0 $w1 $iops" | awk -v tag="$tag" -v hz="$(getconf CLK_TCK)" '{
            b = $4 - $1; i = $5 - $2; c = $6 - $3; s = $8 - $7; io = $9 * s
            printf "%s iops %.0f busy %.1f%% cpu_us_per_io %.1f ctxt_per_io %.2f\n",
                tag, $9, 100 * b / (b + i), b * 1e6 / hz / io, c / io }' >> "$B/ab.txt"
    else
        echo "not ok bench $tag $name (fio rc=$rc)" >> "$BENCH_SUBTESTS"
        cat "$B/fio-$tag-$name.log" >&2
        bench_fail=1
    fi
}

# bench_round's setup and teardown with the two paths alternating.
bench_round_ab() {
    local r
    trap bench_cleanup EXIT
    rm -rf $B && mkdir -p $B
    BENCH_SUBTESTS=$OUT/subtests-bench-r1
    : > "$BENCH_SUBTESTS"
    dd if=/dev/zero of=$BENCH_DEV bs=1M count=$BENCH_SIZE_MB oflag=direct status=none
    bench_lio_setup || { echo "bench: LIO setup failed" >&2; return 1; }
    insmod "$KO"
    openiscsi_start
    iscsiadm -m discovery -t st -p $BENCH_PORTAL > /dev/null
    for ((r = 1; r <= AB_ROUNDS; r++)); do
        # Who goes first alternates too.
        if [ $((r % 2)) = 1 ]; then
            bench_rs "r$r-rs2c" "" 2; bench_oi "r$r-oi"
        else
            bench_oi "r$r-oi"; bench_rs "r$r-rs2c" "" 2
        fi
    done
    trap - EXIT
    bench_cleanup
    cat $B/ab.txt
    tar -czf /tmp/bench-r1.tar.gz -C $B .
    bench_send /tmp/bench-r1.tar.gz
    return $bench_fail
}

bench_round_ab
