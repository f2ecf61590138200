# Case (b): the KUnit suite lives in its own test module, iscsi_rs_kunit.ko, and
# passes when that module loads. Loading the shipped iscsi_rs.ko runs no test and
# does not set the kernel's "test" taint (TAINT_TEST, bit 18), which loading the
# test module does (the control that the probe works). Each KUnit result is also
# written to $OUT/subtests-kunit, so the host nests it under this case.
set -eu
test_ko=$(dirname "$KO")/iscsi_rs_kunit.ko
taint_test() { echo $(( ($(cat /proc/sys/kernel/tainted) >> 18) & 1 )); }
dmesg -c > /dev/null
before=$(taint_test)
insmod "$KO"
rmmod iscsi_rs
if dmesg | grep -qE 'KTAP version|Subtest: iscsi_rs'; then
    echo "loading iscsi_rs.ko ran a KUnit suite"; exit 1
fi
[ "$(taint_test)" = "$before" ] || { echo "loading iscsi_rs.ko set TAINT_TEST"; exit 1; }

insmod "$test_ko"
rmmod iscsi_rs_kunit
[ "$(taint_test)" = 1 ] || { echo "the test module did not set TAINT_TEST: is KUnit running?"; exit 1; }
ktap=$(dmesg | sed -n 's/^\[[^]]*\] //p' | sed -n '/Subtest: iscsi_rs/,/ok [0-9]* iscsi_rs$/p')
echo "$ktap"
[ -n "$ktap" ] || { echo "no KTAP output from the iscsi_rs suite"; exit 1; }
# Parameterised cases print "ok N name" one level deeper than the suite line.
echo "$ktap" | grep -E '^ +(not )?ok [0-9]+ ' | grep -vE ' iscsi_rs_rust_case$' \
    | sed -E 's/^ +//; s/^(not ok|ok) [0-9]+ /\1 kunit: /' > "$OUT/subtests-kunit"
cat "$OUT/subtests-kunit"
[ -s "$OUT/subtests-kunit" ] || { echo "no KUnit cases ran"; exit 1; }
! grep -q '^not ok' "$OUT/subtests-kunit" || exit 1
echo "$ktap" | grep -qE '^ *ok [0-9]+ iscsi_rs$'
