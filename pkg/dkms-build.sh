#!/usr/bin/env bash
# Builds iscsi_rs.ko for kernel KVER from the tree KSRC (DKMS's MAKE[0]; also
# usable by hand), after checking that this kernel and toolchain can build it.
# Rust modules must be compiled by exactly the rustc the kernel was built with
# (its .config records it), so a mismatch stops here with a clear message rather
# than deep inside kbuild.
#   pkg/dkms-build.sh [--check-only] KVER KSRC
set -euo pipefail
check_only=0
[ "${1:-}" = --check-only ] && { check_only=1; shift; }
[ $# = 2 ] || { echo "usage: $0 [--check-only] KVER KSRC" >&2; exit 2; }
kver=$1 ksrc=$2
src=$(cd "$(dirname "$0")/.." && pwd)
# DKMS runs as root, whose PATH may lack the user's toolchain.
export PATH="$PATH:/usr/local/bin:${HOME:-/root}/.cargo/bin"

fail() { echo "iscsi-rs: cannot build for kernel $kver: $*" >&2; exit 1; }
config=$ksrc/.config
[ -f "$config" ] || fail "$config missing (install the kernel's headers or build tree)"
conf() { sed -n "s/^$1=//p" "$config" | tr -d '"'; }

[ "$(conf CONFIG_RUST)" = y ] ||
    fail "the kernel was built without CONFIG_RUST=y; iscsi_rs is a Rust module"
case "$kver" in
6.12|6.12.*|6.12-*|6.12+*) ;;
*) fail "iscsi_rs is written against the kernel crate of Linux 6.12 (kernel crate APIs change between releases)" ;;
esac
for f in rust/libkernel.rmeta rust/libmacros.so; do
    [ -e "$ksrc/$f" ] ||
        fail "$ksrc/$f missing: Rust modules need the kernel's Rust metadata (a full build tree, or headers that ship rust/)"
done

want=$(conf CONFIG_RUSTC_VERSION_TEXT)
want_num=$(conf CONFIG_RUSTC_VERSION)
command -v rustc > /dev/null ||
    fail "rustc not found; the kernel was built with '$want' (e.g. rustup toolchain install ${want#rustc }, then put it first in PATH)"
have=$(rustc --version)
if [ -n "$want" ]; then
    [ "$have" = "$want" ] ||
        fail "the kernel was built with '$want' but rustc here is '$have'; Rust modules must use the kernel's own compiler"
else
    # Older configs only have the number: MAJOR*10000 + MINOR*100 + PATCH.
    v=$(sed -n 's/^rustc \([0-9]*\)\.\([0-9]*\)\.\([0-9]*\).*/\1 \2 \3/p' <<<"$have")
    read -r a b c <<<"$v"
    [ "$((a * 10000 + b * 100 + c))" = "$want_num" ] ||
        fail "the kernel was built with rustc version $want_num but rustc here is '$have'"
fi
rustc --print sysroot > /dev/null && [ -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library/core" ] ||
    fail "rustc has no rust-src component (rustup component add rust-src)"
command -v bindgen > /dev/null ||
    fail "bindgen not found (the kernel used '$(conf CONFIG_BINDGEN_VERSION_TEXT)'; cargo install bindgen-cli --version ...)"
llvm=
if [ "$(conf CONFIG_CC_IS_CLANG)" = y ]; then
    command -v clang > /dev/null || command -v "clang-$(conf CONFIG_CLANG_VERSION | cut -c1-2)" > /dev/null ||
        fail "the kernel was built with clang ($(conf CONFIG_CC_VERSION_TEXT)), which is not installed"
    llvm=LLVM=1
fi
echo "iscsi-rs: kernel $kver, $have, $(bindgen --version | head -1): ok"
[ $check_only = 1 ] && exit 0
# No KUnit test module on a real host: only iscsi_rs.ko.
exec make -C "$ksrc" M="$src" $llvm iscsi_rs_kunit=n modules
