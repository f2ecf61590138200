#!/usr/bin/env bash
# Proves the runner cannot pass silently and that what it prints is KTAP the
# kernel's tooling reads:
#  1. ktests/report.sh on made-up runs (no guest): all passing, a failed case, a
#     failed subtest, a case without a result, a kernel report at boot; each
#     checked for its verdict, its result lines, strict KTAP structure
#     (ktests/ktap-check.py) and by the kernel's own parser (kunit.py parse).
#  2. A real guest run of ktests/selftest/ (one case passes, one exits 1, one
#     triggers a kernel WARN_ON, one reports a passing and a failing subtest): the
#     runner must exit non-zero, name exactly the three bad cases, nest the
#     subtests, and print KTAP that both parsers accept.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
failed=0
pass() { echo "ok - runner self-test: $1"; }
fail() { echo "not ok - runner self-test: $1"; failed=1; }
check() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name"; fi; }

kdir=${KTEST_KDIR:-$("$here/build-kernel.sh" "${KERNEL_FLAVOUR:-debug}")}
kunit_py=$kdir/tools/testing/kunit/kunit.py
[ -f "$kunit_py" ] || { fail "no $kunit_py"; exit 1; }

# kunit.py parse FILE -> "STATUS name" per leaf test on stdout (its JSON lists a
# level's own cases before its groups), its exit code in
# $kunit_rc (call it without a subshell).
kunit_leaves() {
    local json=$tmp/kunit.json
    python3 "$kunit_py" parse --json="$json" "$1" > "$tmp/kunit.log" 2>&1
    kunit_rc=$?
    python3 - "$json" <<'PY'
import json, sys
def walk(g):
    for t in g.get("test_cases", []):
        print(t["status"], t["name"])
    for s in g.get("sub_groups", []):
        walk(s)
walk(json.load(open(sys.argv[1])))
PY
}

tmp=$(mktemp -d /tmp/iscsi-rs-selftest.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# fixture NAME CASE... : a made-up run directory; CASE is "name:ok", "name:fail"
# or "name:none" (no result at all).
fixture() {
    local d=$tmp/$1 n=0 c; shift
    mkdir -p "$d"; : > "$d/plan"
    for c in "$@"; do
        n=$((n + 1))
        printf '%s\tktests/cases/%s.sh\n' "${c%%:*}" "${c%%:*}" >> "$d/plan"
        case ${c#*:} in
        ok) echo "ok $n - ${c%%:*}" > "$d/result-$n" ;;
        fail) echo "not ok $n - ${c%%:*}" > "$d/result-$n" ;;
        esac
    done
    echo "$d"
}
# report NAME WANT_RC WANT_PASSED WANT_FAILED [LEAVES]: runs report.sh on the
# fixture and checks verdict, summary, both parsers and (if given) kunit.py's leaves.
report() {
    local d=$tmp/$1 rc want_rc=$2 want_p=$3 want_f=$4
    "$here/report.sh" "$d" > "$d.out" 2>&1
    rc=$?
    sed 's/^/#   /' "$d.out"
    check "$1: report.sh exits $want_rc" test "$rc" = "$want_rc"
    check "$1: summary $want_p passed, $want_f failed" grep -qx "$want_p passed, $want_f failed" "$d.out"
    check "$1: strict KTAP" eval '"$here/ktap-check.py" "$d.out" --expect-passed $want_p --expect-failed $want_f > /dev/null'
    kunit_leaves "$d.out" > "$tmp/leaves"; leaves=$(cat "$tmp/leaves")
    check "$1: kunit.py parse verdict matches (rc $kunit_rc)" test $(( kunit_rc != 0 )) = "$want_rc"
    if [ -n "${5:-}" ]; then
        check "$1: kunit.py sees the tests: $(echo $leaves)" test "$(echo $leaves)" = "$5"
    fi
}

fixture all-pass a:ok b:ok c:ok > /dev/null
printf 'ok x: one\nok x: two\n' > "$tmp/all-pass/subtests-2-x"
report all-pass 0 5 0 "PASS a PASS c PASS x: one PASS x: two"
grep -q '^    1\.\.2$' "$tmp/all-pass.out" && grep -q '^    ok 2 x: two$' "$tmp/all-pass.out" &&
    grep -q '^ok 2 - b$' "$tmp/all-pass.out"
check "all-pass: subtests nest under their case" test $? = 0

fixture case-fails a:ok b:fail > /dev/null
report case-fails 1 1 1 "PASS a FAIL b"
check "case-fails: the failed case is named" grep -q '^not ok 2 - b # case failed$' "$tmp/case-fails.out"

fixture sub-fails a:ok > /dev/null
printf 'ok s: good\nnot ok s: bad\n' > "$tmp/sub-fails/subtests-1-s"
report sub-fails 1 1 2 "PASS s: good FAIL s: bad"
check "sub-fails: the parent fails with its subtest" \
    grep -q '^not ok 1 - a # 1 of 2 subtests failed$' "$tmp/sub-fails.out"

fixture no-result a:ok b:none > /dev/null
report no-result 1 1 1
check "no-result: the silent case fails" grep -q '^not ok 2 - b # no result' "$tmp/no-result.out"

fixture boot-warn a:ok > /dev/null
printf '[    1.0] WARNING: CPU: 0 PID: 1 at lib/foo.c:1\n' > "$tmp/boot-warn/dmesg-boot.txt"
report boot-warn 1 0 1 "FAIL a"
check "boot-warn: the first case carries the boot report" \
    grep -q '^not ok 1 - a # kernel report before the first case$' "$tmp/boot-warn.out"

# ktap-check itself must refuse broken KTAP.
printf 'KTAP version 1\n1..2\nok 1 - a\nok 3 - b\n2 passed, 0 failed\n' > "$tmp/bad1"
printf 'KTAP version 1\n1..1\n  KTAP version 1\n  1..1\n  ok 1 x\nok 1 - a\n2 passed, 0 failed\n' > "$tmp/bad2"
printf 'KTAP version 1\n1..1\nok 1 - a\n2 passed, 0 failed\n' > "$tmp/bad3"
for b in bad1 bad2 bad3; do
    check "ktap-check refuses $b" eval '! "$here/ktap-check.py" "$tmp/$b" > /dev/null'
done

# 2. The real runner on the selftest cases in a guest.
out=$here/out-selftest
"$here/run.sh" --dir ktests/selftest --out "$out" > "$out.log" 2>&1
rc=$?
grep -E "^ *(ok|not ok|KTAP|1\.\.)|^[0-9]+ passed" "$out.log"
check "guest run: runner exits non-zero despite passing cases" test $rc -ne 0
check "guest run: passing case reported" grep -q '^ok 1 - passes$' "$out.log"
check "guest run: failing case named" grep -q '^not ok 2 - fails-on-purpose # case failed$' "$out.log"
check "guest run: WARN_ON case named" grep -q '^not ok 3 - warn-on # kernel report$' "$out.log"
check "guest run: subtests nested, the failing one fails its case" eval \
    'grep -q "^    ok 1 selftest: sub-pass$" "$out.log" && grep -q "^    not ok 2 selftest: sub-fail$" "$out.log" && grep -q "^not ok 4 - subtests # 1 of 2 subtests failed$" "$out.log"'
check "guest run: summary" grep -q '^2 passed, 4 failed$' "$out.log"
check "guest run: strict KTAP" eval '"$here/ktap-check.py" "$out.log" --expect-passed 2 --expect-failed 4'
kunit_leaves "$out.log" > "$tmp/leaves"; leaves=$(cat "$tmp/leaves")
check "guest run: kunit.py parse reads it: $(echo $leaves)" \
    test "$(echo $leaves)" = "PASS passes FAIL fails-on-purpose FAIL warn-on PASS selftest: sub-pass FAIL selftest: sub-fail"
exit $failed
