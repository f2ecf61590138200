#!/usr/bin/env bash
# What ships in iscsi_rs.ko: its modinfo (name, version = Cargo.toml's, description,
# license, author) and no test code: no KUnit suite section, no symbol or string
# of the KUnit bridge or of KUnit itself. The test module iscsi_rs_kunit.ko is the
# positive control: the same probes must find its suite, so they cannot pass by
# seeing nothing. Prints `ok`/`not ok` per check; exits non-zero on any failure.
#   ktests/check-module.sh [MODULE_DIR]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/..}
ko=$dir/iscsi_rs.ko test_ko=$dir/iscsi_rs_kunit.ko
failed=0
check() {  # check NAME COMMAND...
    local name=$1; shift
    if "$@"; then echo "ok - module: $name"; else echo "not ok - module: $name"; failed=1; fi
}
[ -f "$ko" ] || { echo "not ok - module: $ko missing (make module)"; exit 1; }
[ -f "$test_ko" ] || { echo "not ok - module: $test_ko missing (kernel without CONFIG_KUNIT?)"; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$here/../Cargo.toml" | head -1)
field() { modinfo -F "$1" "$2" 2>/dev/null; }
check "name is iscsi_rs" test "$(field name "$ko")" = iscsi_rs
check "version is $version (Cargo.toml)" test "$(field version "$ko")" = "$version"
check "description" test "$(field description "$ko")" = "iSCSI initiator (RFC 7143) in Rust"
check "license GPL" test "$(field license "$ko")" = GPL
check "author" test -n "$(field author "$ko")"
check "vermagic" test -n "$(field vermagic "$ko")"

# Test code leaves three kinds of traces: the section KUnit runs suites from,
# symbols (the C glue, the Rust bridge, calls into KUnit) and strings (suite and
# case names).
has_suite() { readelf -SW "$1" | grep -q '\.kunit_test_suites'; }
kunit_symbols() { nm "$1" | grep -iE 'kunit' ; }
kunit_strings() { strings -a "$1" | grep -E 'kunit|iscsi_rs_rust_case|bhs_rejects_short_buffer|crc32c_rfc3720_vectors'; }
check "test module has a KUnit suite (control)" has_suite "$test_ko"
check "test module has KUnit symbols (control)" eval 'kunit_symbols "$test_ko" > /dev/null'
check "test module has the case names (control)" eval 'kunit_strings "$test_ko" > /dev/null'
check "iscsi_rs.ko has no KUnit suite section" eval '! has_suite "$ko"'
syms=$(kunit_symbols "$ko")
check "iscsi_rs.ko has no KUnit symbols${syms:+: $(echo $syms | head -c 200)}" test -z "$syms"
strs=$(kunit_strings "$ko")
check "iscsi_rs.ko has no test strings${strs:+: $(echo $strs | head -c 200)}" test -z "$strs"
check "iscsi_rs.ko needs nothing from KUnit" eval '! modinfo -F depends "$ko" | grep -q kunit'
exit $failed
