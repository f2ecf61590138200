#!/usr/bin/env bash
# Reports a QEMU run from its output directory (what ktests/run.sh unpacked: plan,
# result-N, subtests-N-*, dmesg-*.txt, kmemleak-*.txt, console.log) as KTAP, then
# `N passed, N failed`. A case fails if its script failed, if it gave no result
# (guest died or timed out), if a subtest of it failed, or if the kernel log or
# kmemleak it produced shows an oops/BUG/WARNING/KASAN/lockdep/leak report; the
# offending lines are shown as diagnostics. Exits 0 only if every planned case
# passed. Separate from run.sh so ktests/selftest.sh can feed it made-up runs.
#   ktests/report.sh OUT_DIR
set -uo pipefail
out=$1
[ -f "$out/plan" ] || { echo "report.sh: $out/plan missing"; exit 1; }
total=$(wc -l < "$out/plan")
cat "$out"/result-* > "$out/results" 2>/dev/null || : > "$out/results"

# Kernel-log lines that fail whatever case produced them.
bad='BUG:|WARNING:|Oops|KASAN|UBSAN|kernel BUG|general protection|Kernel panic|Call Trace|possible circular locking|possible recursive locking|inconsistent lock state|lock held when returning|suspicious RCU usage|blocked for more than|self-detected stall|unreferenced object|new suspected memory leak'
scan() {  # file label -> prints offending lines as diagnostics, returns 1 if any
    [ -s "$1" ] || return 0
    local hits
    hits=$(grep -E -A3 "$bad" "$1" | head -40) || return 0
    echo "# $2: kernel report:"; sed 's/^/#   /' <<<"$hits"; return 1
}

# The results, as KTAP (Documentation/dev-tools/ktap.rst): version line, plan, one
# line per case; a case's subtests-N-* lines nest under it (indented, with their
# own version line and plan) and a failed subtest fails the case. Every result
# line counts once in the final "N passed, N failed"; the run passes only if
# nothing failed and every planned case gave a result.
echo "KTAP version 1"
echo "1..$total"
passed=0 failed=0 n=0
boot_report=$(scan "$out/dmesg-boot.txt" "boot")
while IFS=$'\t' read -r name script; do
    n=$((n + 1))
    line=$(grep -E "^(ok|not ok) $n - " "$out/results" 2>/dev/null | head -1 || true)
    diag=() ok=1
    if [ -z "$line" ]; then
        ok=0; diag+=("no result: guest died or timed out (see $out/console.log)")
        tail -n 30 "$out/console.log" 2>/dev/null | sed 's/^/#   /'
    elif [[ "$line" != "ok "* ]]; then
        ok=0; diag+=("case failed")
    fi
    reports=$(scan "$out/dmesg-$n.txt" "$name"; scan "$out/kmemleak-$n.txt" "$name")
    [ -z "$reports" ] || { ok=0; diag+=("kernel report"); echo "$reports"; }
    # A report in the boot log fails the first case (KTAP numbers start at 1).
    if [ $n = 1 ] && [ -n "$boot_report" ]; then
        ok=0; diag+=("kernel report before the first case"); echo "$boot_report"
    fi
    sub_lines=$(cat "$out/subtests-$n-"* 2>/dev/null | grep -E '^(ok|not ok) ' || true)
    if [ -n "$sub_lines" ]; then
        m=0 sub_failed=0
        echo "    KTAP version 1"
        echo "    1..$(wc -l <<<"$sub_lines")"
        while read -r status rest; do
            m=$((m + 1))
            rest=${rest//#/No.}  # '#' would start a KTAP directive
            if [ "$status" = ok ]; then
                echo "    ok $m ${rest#- }"; passed=$((passed + 1))
            else
                echo "    not ok $m ${rest#ok }"; failed=$((failed + 1)); sub_failed=$((sub_failed + 1))
            fi
        done <<<"$sub_lines"
        [ $sub_failed = 0 ] || { ok=0; diag+=("$sub_failed of $m subtests failed"); }
    fi
    if [ $ok = 1 ]; then
        echo "ok $n - $name"; passed=$((passed + 1))
    else
        echo "not ok $n - $name # $(IFS=';'; echo "${diag[*]}" | sed 's/;/; /g')"
        failed=$((failed + 1))
    fi
done < "$out/plan"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$n" = "$total" ]

