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

# One build at a time per cache: a second caller waits, then finds it built.
exec 9> "$CACHE/kernel.lock"
flock 9

srcver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
key=$( { echo "$srcver"; cat "${frags[@]}"; rustc -V; clang-19 --version | head -1;
         bindgen --version; } | sha256sum | cut -c1-16)
tree="$CACHE/kernel-$flavour-$key"

# objtool of 6.12 knows Rust's `panic_const_*` functions only when their name is 24
# characters long ("24panic_const_"), so calls to e.g. panic_const_div_by_zero (23)
# that rustc 1.95 emits in core's generic iterators are reported as "falls through
# to next function". Widen the match to every panic_const function (the upstream
# fix does the same); the module build must stay warning-free.
patch_objtool() {
    local f=$1/tools/objtool/check.c
    grep -q '"_4core9panicking11panic_const")' "$f" && return 1
    sed -i 's/"_4core9panicking11panic_const24panic_const_")/"_4core9panicking11panic_const")/' "$f"
    grep -q '"_4core9panicking11panic_const")' "$f" || { echo "objtool patch did not apply" >&2; exit 1; }
}

# x86's kasan_init allocates the KASAN shadow (1/8 of RAM: 256 MiB in a 2 GiB
# guest) from memblock without MEMBLOCK_ALLOC_NOLEAKTRACE, unlike arm64's, so
# kmemleak scans all of it for pointers on every scan: 8 s of the ~9 s that
# each case's scan took under TCG, and shadow bytes that happen to look like a
# pointer can only hide a leak. Allocate it untracked, as arm64 does.
patch_kasan_shadow() {
    local f=$1/arch/x86/mm/kasan_init_64.c
    grep -q 'MAX_DMA_ADDRESS), MEMBLOCK_ALLOC_NOLEAKTRACE, nid)' "$f" && return 0
    sed -i 's/MAX_DMA_ADDRESS), MEMBLOCK_ALLOC_ACCESSIBLE, nid)/MAX_DMA_ADDRESS), MEMBLOCK_ALLOC_NOLEAKTRACE, nid)/' "$f"
    grep -q 'MAX_DMA_ADDRESS), MEMBLOCK_ALLOC_NOLEAKTRACE, nid)' "$f" || { echo "kasan shadow patch did not apply" >&2; exit 1; }
}

if [ -f "$tree/.iscsi-rs-built" ]; then
    if patch_objtool "$tree"; then
        make -C "$tree" LLVM=1 tools/objtool >/dev/null 2>&1 || { echo "objtool rebuild failed" >&2; exit 1; }
    fi
    # A debug tree built before the patch: patch it and rebuild what that
    # touches (incremental, about a minute); the stamp says it was rebuilt.
    if [ "$flavour" = debug ] && [ ! -f "$tree/.iscsi-rs-kasan-shadow" ]; then
        echo "rebuilding the $flavour kernel in $tree for the kasan shadow patch" >&2
        patch_kasan_shadow "$tree"
        make -C "$tree" LLVM=1 -j"$(nproc)" >> "$CACHE/kernel-$flavour-$key.log" 2>&1 ||
            { tail -40 "$CACHE/kernel-$flavour-$key.log" >&2; exit 1; }
        touch "$tree/.iscsi-rs-kasan-shadow"
    fi
    echo "$tree"
    exit 0
fi

log="$CACHE/kernel-$flavour-$key.log"
echo "building $flavour kernel in $tree (log: $log)" >&2
start=$(date +%s)
# An interrupted build of the same key resumes (make is incremental); the stamp
# says extraction and configuration completed.
if [ ! -f "$tree.tmp/.iscsi-rs-configured" ]; then
    rm -rf "$tree" "$tree.tmp"
    mkdir -p "$tree.tmp"
    tar -xf /usr/src/linux-source-6.12.tar.xz -C "$tree.tmp" --strip-components=1
    patch_objtool "$tree.tmp" || true
    [ "$flavour" != debug ] || patch_kasan_shadow "$tree.tmp"
    cat "${frags[@]}" > "$tree.tmp/kernel/configs/iscsi_rs.config"
    {
        make -C "$tree.tmp" LLVM=1 tinyconfig iscsi_rs.config
        make -C "$tree.tmp" LLVM=1 rustavailable
    } > "$log" 2>&1 || { tail -30 "$log" >&2; exit 1; }

    # A fragment line Kconfig silently dropped (unmet dependency) would quietly
    # test another kernel than we think: refuse it.
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
    touch "$tree.tmp/.iscsi-rs-configured"
else
    echo "resuming the interrupted build in $tree.tmp" >&2
fi

make -C "$tree.tmp" LLVM=1 -j"$(nproc)" >> "$log" 2>&1 || { tail -40 "$log" >&2; exit 1; }
mv "$tree.tmp" "$tree"
[ "$flavour" != debug ] || touch "$tree/.iscsi-rs-kasan-shadow"
touch "$tree/.iscsi-rs-built"
echo "kernel built in $(( $(date +%s) - start )) s" >&2
echo "$tree"
