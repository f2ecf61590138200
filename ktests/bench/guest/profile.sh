# `make bench-profile` (ktests/bench/run.sh profile): where the guest's CPU time
# goes for iscsi_rs (one connection and two: tag rs2c), open-iscsi and nvme-tcp
# (the peer to beat) on the 1 MiB
# sequential read and write and the 4 KiB QD1 and QD32 reads. The same setup as a bench
# round (lib.sh: one brd disk behind every path) with the fio job wrapped in
# a system-wide `perf record` (cpu-clock sampling: TCG has no PMU; tinyconfig
# on x86 already has CONFIG_PERF_EVENTS); the flat
# profile by symbol comes back as profile-TAG-JOB.txt in the round's tarball,
# and who spins in queued_spin_lock_slowpath (its call chains, callee first:
# which lock, taken from where) as locks-TAG-JOB.txt.
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

bench_round 1
