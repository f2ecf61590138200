#!/usr/bin/env bash
# Bounded fuzz smoke for the protocol core: runs every proptest file
# src/proto/tests/prop_*.rs with a raised case count and a wall-time cap.
#   ktests/fuzz-smoke.sh            (FUZZ_CASES=1500, FUZZ_SECONDS=60)
# Why proptest and not cargo-fuzz: cargo-fuzz needs a nightly toolchain, and a
# fresh machine (and CI) has only the one stable rustup toolchain. Each run draws
# a new random seed; a failure is shrunk and saved under
# src/proto/tests/proptest-regressions/, which should then be committed.
# Exit: 0 all passed; 1 a property failed; 2 the time cap was hit (the run is
# incomplete, so a failure may have been missed: lower FUZZ_CASES on a loaded box).
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${FUZZ_CASES:-1500}
secs=${FUZZ_SECONDS:-60}

# Build outside the time cap; debug profile keeps overflow checks on, as in the kernel.
cargo test -q -p iscsi-proto --test 'prop_*' --no-run

start=$(date +%s)
set +e
PROPTEST_CASES=$cases timeout --kill-after=5 "$secs" \
    cargo test -q -p iscsi-proto --test 'prop_*'
rc=$?
set -e
took=$(( $(date +%s) - start ))
case $rc in
0)   echo "fuzz-smoke: ok ($cases cases per property, ${took}s)"; exit 0 ;;
124|137) echo "fuzz-smoke: time cap ${secs}s hit with $cases cases: incomplete" >&2; exit 2 ;;
*)   echo "fuzz-smoke: a property failed (rc $rc)" >&2; exit 1 ;;
esac
