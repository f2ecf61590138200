#!/usr/bin/env bash
# Host side of `make bench` / `make bench-quick` (issue 7): builds the non-debug
# bench kernel and the module against it, boots the guest with all host CPUs, runs
# the rounds of ktests/bench/guest/ and writes the report.
#   ktests/bench/run.sh full|quick|profile|ab
# full:  5 rounds of 20 s jobs (5 s ramp) -> bench/results/latest.{md,png,csv}
#        and latency-cdf.png
# quick: 1 round of 2 s jobs (1 s ramp)  -> ktests/bench/out/quick-results/, so
#        `make test` never rewrites the committed results; it only checks that every
#        row of the table is there (nothing about speed).
# profile: perf profiles of iscsi_rs and open-iscsi on two jobs (guest/profile.sh)
#        -> bench/results/profile/*.txt
# ab:    issue 16's goal row (QD32, two jobs) on iscsi_rs with two connections
#        and open-iscsi, alternating in one boot (guest/ab.sh), with CPU per I/O
#        -> bench/results/ab/ab.txt
# Env: BENCH_RESULTS (report dir), BENCH_OUT (raw output dir), GUEST_CPUS, GUEST_MEM.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/ktests/env.sh"
mode=${1:-full}
case $mode in
full) rounds=(round1 round2 round3 round4 round5) results=${BENCH_RESULTS:-$repo/bench/results} ;;
quick) rounds=(round1) results=${BENCH_RESULTS:-$repo/ktests/bench/out/quick-results} ;;
profile) rounds=(profile) results=${BENCH_RESULTS:-$repo/bench/results/profile} ;;
ab) rounds=(ab) results=${BENCH_RESULTS:-$repo/bench/results/ab} ;;
*) echo "usage: $0 full|quick|profile|ab" >&2; exit 2 ;;
esac
out=${BENCH_OUT:-$repo/ktests/bench/out/run-$mode}

kdir=$("$repo/ktests/build-kernel.sh" bench)
ko=$("$here/build-module.sh")
[ -x "$repo/target/release/iscsictl" ] || { echo "bench: iscsictl missing (make ctl)" >&2; exit 1; }
# The kernel has CONFIG_NR_CPUS=8.
cpus=${GUEST_CPUS:-$(nproc)}
[ "$cpus" -le 8 ] || cpus=8
# Every path reads one brd RAM disk, /dev/ram0 (brd is built in, so its size
# comes from the command line; lib.sh's BENCH_SIZE_MB must match). A full round
# (39 jobs of 25 s plus logins: ~17 min; 24 jobs took 640 s before the
# 2-connection path and the -2j jobs) takes more than guest.sh's default 900 s
# per case; a quick round (39 jobs of 3 s) about 3 min.
brd="brd.rd_nr=1 brd.rd_size=$((256 * 1024))"
echo "bench ($mode): ${#rounds[@]} round(s), $cpus guest CPUs, kernel $kdir"
set +e
KTEST_KDIR=$kdir KERNEL_FLAVOUR=bench KTEST_KO=$ko GUEST_CPUS=$cpus GUEST_MEM=${GUEST_MEM:-2G} \
    KTEST_APPEND="iscsirs.bench=$mode $brd iscsirs.case_timeout=1800" KTEST_TIMEOUT=$((300 + 1600 * ${#rounds[@]})) \
    "$repo/ktests/run.sh" --dir ktests/bench/guest --out "$out" "${rounds[@]}"
rc=$?
set -e
if [ "$mode" = profile ]; then
    mkdir -p "$results"
    tar -xzf "$out/bench-r1.tar.gz" -C "$results" --wildcards './profile-*.txt' './locks-*.txt' './comm-*.txt' './placement-*.txt' \
        './fio-*.json' './params-*.txt'
    [ $rc = 0 ] || { echo "bench: profile run failed (see $out/console.log)"; exit 1; }
    echo "bench: profiles in $results"
    exit 0
fi
if [ "$mode" = ab ]; then
    mkdir -p "$results"
    tar -xzf "$out/bench-r1.tar.gz" -C "$results" --wildcards ./ab.txt './params-*.txt'
    [ $rc = 0 ] || { echo "bench: A/B run failed (see $out/console.log)"; exit 1; }
    cat "$results/ab.txt"
    exit 0
fi
# Report whatever came back, then fail if the guest run or the table is incomplete.
python3 "$here/report.py" --mode "$mode" --kdir "$kdir" --out "$results" "$out"
[ $rc = 0 ] || { echo "bench: guest run failed (see $out/console.log)"; exit 1; }
echo "bench: wrote $results/latest.md"
