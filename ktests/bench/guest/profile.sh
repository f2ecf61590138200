# `make bench-profile` (ktests/bench/run.sh profile): where the guest's CPU time
# goes for iscsi_rs (one connection and two: tag rs2c), open-iscsi and nvme-tcp
# (the peer to beat) on the 1 MiB
# sequential read and write and the 4 KiB QD1 and QD32 reads. The same setup as a bench
# round (lib.sh: one brd disk behind every path) with the fio job wrapped in
# a system-wide `perf record` (cpu-clock sampling: TCG has no PMU; tinyconfig
# on x86 already has CONFIG_PERF_EVENTS); the flat
# profile by symbol comes back as profile-TAG-JOB.txt in the round's tarball,
# and who spins in queued_spin_lock_slowpath (its call chains, callee first:
# which lock, taken from where) as locks-TAG-JOB.txt; the profile by thread
# (fio, LIO's iscsi_trx/iscsi_ttx, kworkers, idle) as comm-TAG-JOB.txt; and
# the QD32 read pinned per CPU as placement-TAG.txt (below).
set -u
. "$REPO/ktests/bench/lib.sh"
BENCH_JOBS="read-1m-qd8:read:1m:8 write-1m-qd8:write:1m:8 randread-4k-qd1:randread:4k:1 randread-4k-qd32:randread:4k:32"
BENCH_DIGEST_JOBS=none
BENCH_RUNTIME=12 BENCH_RAMP=3
echo 0 > /proc/sys/kernel/kptr_restrict
echo -1 > /proc/sys/kernel/perf_event_paranoid

bench_fio() {
    local tag=$1 dev=$2 name pid rc
    bench_fio_start "$tag" "$dev" "$3"
    pid=$BENCH_FIO_PID name=$BENCH_FIO_NAME
    sleep "$BENCH_RAMP"
    perf record -a -g -e cpu-clock -F 997 -o "$B/perf.data" -- sleep $((BENCH_RUNTIME - 4)) \
        > "$B/perf-$tag-$name.log" 2>&1
    wait $pid; rc=$?
    perf report -i "$B/perf.data" --stdio --sort sym --no-children -g none 2>> "$B/perf-$tag-$name.log" \
        | grep -v '^#' | grep -v '^$' | head -60 > "$B/profile-$tag-$name.txt"
    perf report -i "$B/perf.data" --stdio --sort sym --no-children --symbols=queued_spin_lock_slowpath \
        -g graph,0.5,callee 2>> "$B/perf-$tag-$name.log" \
        | grep -v '^#' | grep -v '^$' | head -120 > "$B/locks-$tag-$name.txt"
    perf report -i "$B/perf.data" --stdio --sort comm --no-children -g none 2>> "$B/perf-$tag-$name.log" \
        | grep -v '^#' | grep -v '^$' | head -20 > "$B/comm-$tag-$name.txt"
    rm -f "$B/perf.data"
    if [ $rc = 0 ] && [ -s "$B/profile-$tag-$name.txt" ]; then
        echo "ok bench $tag $name" >> "$BENCH_SUBTESTS"
    else
        echo "not ok bench $tag $name (fio rc=$rc, profile empty?)" >> "$BENCH_SUBTESTS"
        cat "$B/perf-$tag-$name.log" >&2
        bench_fail=1
    fi
}

bench_loop() { :; }

# Where the work lands decides these numbers under TCG as much as the code
# does: LIO pins each connection's thread pair to one CPU, and a job that runs
# on that CPU shares it with the target. So for every path (digest-off
# sessions) the 4 KiB QD32 read once more, unprofiled, pinned to each CPU in
# turn, and the two-job read with a job pinned per CPU: IOPS, each CPU's busy
# share (/proc/stat) and the CPU of each LIO thread, to placement-TAG.txt.
bench_cpu_ticks() { awk '/^cpu[0-9]/{print $1, $2+$3+$4+$7+$8, $5+$6}' /proc/stat; }

bench_pinned() {
    local tag=$1 dev=$2 cpus=$3 nj=$4 more=() iops
    [ "$nj" -gt 1 ] && more=(--cpus_allowed_policy=split --group_reporting
                              --size=$((BENCH_SIZE_MB / nj))m --offset_increment=$((BENCH_SIZE_MB / nj))m)
    bench_cpu_ticks > $B/ticks-0
    fio --name=pin --filename=/dev/$dev --direct=1 --ioengine=libaio --rw=randread --bs=4k --iodepth=32 \
        --numjobs=$nj --cpus_allowed=$cpus "${more[@]}" --norandommap --randrepeat=0 --time_based \
        --runtime=8 --ramp_time=2 --output-format=json > $B/pin.json 2> $B/pin.err \
        || { echo "not ok bench $tag pinned $cpus" >> "$BENCH_SUBTESTS"; cat $B/pin.err >&2; return 1; }
    bench_cpu_ticks > $B/ticks-1
    iops=$(grep -m1 '"iops"' $B/pin.json | tr -dc '0-9.')
    printf 'jobs %s cpus %s iops %.0f busy' "$nj" "$cpus" "${iops:-0}"
    # Each CPU's busy share over the job (ticks: busy, idle + iowait).
    paste -d' ' $B/ticks-0 $B/ticks-1 \
        | awk '{b = $5 - $2; i = $6 - $3; printf " %s %d%%", $1, (b + i) ? 100 * b / (b + i) : 0}'
    echo
}

bench_after_jobs() {
    local c
    [ -z "${3:-}" ] || return 0
    {
        bench_threadinfo
        for ((c = 0; c < $(nproc); c++)); do bench_pinned "$1" "$2" $c 1; done
        bench_pinned "$1" "$2" 0-$(($(nproc) - 1)) 2
    } > "$B/placement-$1.txt" || bench_fail=1
}

bench_round 1
