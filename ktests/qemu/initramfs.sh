#!/usr/bin/env bash
# Packs busybox + ktests/qemu/init into an initramfs, cached by content; prints its path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../env.sh"
key=$( { sha256sum "$here/init"; sha256sum /bin/busybox; } | sha256sum | cut -c1-16)
img="$CACHE/initramfs-$key.cpio.gz"
if [ ! -f "$img" ]; then
    dir=$(mktemp -d)
    mkdir -p "$dir"/{bin,dev,proc,sys,newroot,etc}
    cp /bin/busybox "$dir/bin/busybox"
    cp "$here/init" "$dir/init"
    chmod +x "$dir/init"
    (cd "$dir" && find . | cpio -o -H newc --quiet | gzip -1) > "$img.tmp"
    mv "$img.tmp" "$img"
    rm -rf "$dir"
fi
echo "$img"
