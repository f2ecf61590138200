#!/usr/bin/env bash
# Builds (or reuses) the test kernel outside the repo and prints its tree path.
#   ktests/build-kernel.sh [debug|bench]
# Cache key: Debian source version + config fragments + rustc + clang + bindgen, so
# a warm `make test` never rebuilds and any toolchain or config change does.
set -euo pipefail
flavour=${1:-debug}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"

frags=("$here/kernel.config")
[ "$flavour" = debug ] && frags+=("$here/kernel-debug.config")

srcver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
key=$( { echo "$srcver"; cat "${frags[@]}"; rustc -V; clang-19 --version | head -1;
         bindgen --version; } | sha256sum | cut -c1-16)
tree="$CACHE/kernel-$flavour-$key"

if [ -f "$tree/.iscsi-rs-built" ]; then
    echo "$tree"
    exit 0
fi

log="$CACHE/kernel-$flavour-$key.log"
echo "building $flavour kernel in $tree (log: $log)" >&2
start=$(date +%s)
rm -rf "$tree" "$tree.tmp"
mkdir -p "$tree.tmp"
tar -xf /usr/src/linux-source-6.12.tar.xz -C "$tree.tmp" --strip-components=1
cat "${frags[@]}" > "$tree.tmp/kernel/configs/iscsi_rs.config"
{
    make -C "$tree.tmp" LLVM=1 tinyconfig iscsi_rs.config
    make -C "$tree.tmp" LLVM=1 rustavailable
} > "$log" 2>&1 || { tail -30 "$log" >&2; exit 1; }

# A fragment line Kconfig silently dropped (unmet dependency) would quietly test
# another kernel than we think: refuse it.
missing=0
while read -r line; do
    case "$line" in
    CONFIG_*=*)
        grep -qx -- "$line" "$tree.tmp/.config" || { echo "config: $line did not stick" >&2; missing=1; } ;;
    "# CONFIG_"*" is not set")
        opt=${line#\# }; opt=${opt%% *}
        ! grep -q "^$opt=" "$tree.tmp/.config" || { echo "config: $opt is set, fragment wants it off" >&2; missing=1; } ;;
    esac
done < <(cat "${frags[@]}")
[ "$missing" = 0 ] || exit 1

make -C "$tree.tmp" LLVM=1 -j"$(nproc)" >> "$log" 2>&1 || { tail -40 "$log" >&2; exit 1; }
mv "$tree.tmp" "$tree"
touch "$tree/.iscsi-rs-built"
echo "kernel built in $(( $(date +%s) - start )) s" >&2
echo "$tree"
