#!/usr/bin/env bash
# Installs everything iscsi-rs needs on a fresh Debian 12 machine. Idempotent:
# apt and cargo skip what is already there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"

pkgs=(linux-source-6.12 clang-19 lld-19 llvm-19 libclang-19-dev flex bison bc
      libelf-dev libssl-dev cpio xz-utils make gcc libc6-dev kmod pahole rsync zstd
      qemu-system-x86 busybox-static e2fsprogs fio open-iscsi tgt istgt libiscsi-bin
      tshark gnuplot-nox lsscsi linux-perf
      systemd groff-base  # make check-pkg: systemd-analyze verify, groff -ww on the man pages
      udev fdisk dmsetup sg3-utils)  # guest cases by-path (systemd-udevd, sfdisk), multipath
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src
if ! [ -x "$CACHE/tools/bin/bindgen" ] || ! "$CACHE/tools/bin/bindgen" --version | grep -q ' 0\.70\.1'; then
    cargo install --locked bindgen-cli --version 0.70.1 --root "$CACHE/tools"
fi
echo "deps: ok"
