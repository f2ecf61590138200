#!/usr/bin/env bash
# Proves the runner cannot pass silently: boots the selftest cases (one passes, one
# exits 1, one triggers a kernel WARN_ON) and requires the runner to exit non-zero
# and to name exactly the two bad cases.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here/out-selftest
"$here/run.sh" --dir ktests/selftest --out "$out" > "$out.log" 2>&1
rc=$?
grep -E "^(ok|not ok|[0-9]+ passed)" "$out.log"
fail() { echo "not ok - runner self-test: $1"; exit 1; }
[ $rc -ne 0 ] || fail "runner exited 0 despite failing cases"
grep -q '^not ok 2 - fails-on-purpose' "$out.log" || fail "failing case not named"
grep -q '^not ok 3 - warn-on' "$out.log" || fail "WARN_ON case not named"
grep -q '^ok 1 - passes' "$out.log" || fail "passing case not reported"
grep -q '^1 passed, 2 failed$' "$out.log" || fail "wrong summary"
echo "ok - runner self-test: failures and WARN_ON are caught"
