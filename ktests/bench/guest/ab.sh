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

# After each path's job: its figures from the CPU snapshots lib.sh's
# bench_fio took at both ends of the measured window (uptime, /proc/stat's cpu
# and ctxt lines).
bench_after_jobs() {
    local name=${BENCH_JOBS%%:*} iops
    iops=$(grep -m1 '"iops"' "$B/fio-$1-$name.json" | tr -dc '0-9.')
    [ -n "$iops" ] || return 0
    awk -v tag="$1" -v iops="$iops" -v hz="$(getconf CLK_TCK)" '
        FNR == 1 { f++; up[f] = $1 }
        /^cpu / { busy[f] = $2 + $3 + $4 + $7 + $8; idle[f] = $5 + $6 }
        /^ctxt / { ctxt[f] = $2 }
        END {
            b = busy[2] - busy[1]; i = idle[2] - idle[1]; io = iops * (up[2] - up[1])
            printf "%s iops %.0f busy %.1f%% cpu_us_per_io %.1f ctxt_per_io %.2f\n",
                tag, iops, 100 * b / (b + i), b * 1e6 / hz / io, (ctxt[2] - ctxt[1]) / io
        }' "$B/snap-$1-$name-1.txt" "$B/snap-$1-$name-2.txt" >> "$B/ab.txt"
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
