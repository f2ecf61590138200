#!/usr/bin/env bash
# `make install-dkms`: copies the module's sources, dkms.conf and the DKMS build
# script to $DESTDIR/usr/src/iscsi-rs-VERSION, where `dkms install
# iscsi-rs/VERSION` builds and installs iscsi_rs.ko for each kernel. Prints the
# directory.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
[ -n "$version" ] || { echo "install-dkms: no version in Cargo.toml" >&2; exit 1; }
dest=${DESTDIR:-}/usr/src/iscsi-rs-$version
rm -rf "$dest"
mkdir -p "$dest"
# What Kbuild reads for iscsi_rs.ko (the KUnit module is not built by DKMS), and
# nothing generated.
find Kbuild Cargo.toml dkms.conf pkg/dkms-build.sh src \
    -type f \( -name '*.rs' -o -name '*.c' -o -name '*.h' -o -name Kbuild \
    -o -name Cargo.toml -o -name dkms.conf -o -name '*.sh' \) \
    ! -name bindings_generated.rs ! -name '*.mod.c' -print0 |
    xargs -0 cp --parents -t "$dest"
echo "$dest"
