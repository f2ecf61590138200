# Case (b): the KUnit suite built into the module runs at load and passes. Each
# KUnit result is also written to $OUT/subtests-* so the host counts it.
set -eu
dmesg -c > /dev/null
insmod "$KO"
rmmod iscsi_rs
ktap=$(dmesg | sed -n 's/^\[[^]]*\] //p' | sed -n '/Subtest: iscsi_rs/,/ok [0-9]* iscsi_rs$/p')
echo "$ktap"
[ -n "$ktap" ] || { echo "no KTAP output from the iscsi_rs suite"; exit 1; }
# Parameterised cases print "ok N name" one level deeper than the suite line.
echo "$ktap" | grep -E '^ +(not )?ok [0-9]+ ' | grep -vE ' iscsi_rs_rust_case$' \
    | sed -E 's/^ +//; s/^(not ok|ok) [0-9]+ /\1 kunit: /' > "$OUT/subtests-kunit"
cat "$OUT/subtests-kunit"
[ -s "$OUT/subtests-kunit" ] || { echo "no KUnit cases ran"; exit 1; }
! grep -q '^not ok' "$OUT/subtests-kunit"
echo "$ktap" | grep -qE '^ *ok [0-9]+ iscsi_rs$'
