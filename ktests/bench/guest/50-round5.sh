# Bench round 5 (ktests/bench/lib.sh): every initiator, every job, once.
set -u
. "$REPO/ktests/bench/lib.sh"
bench_round 5
