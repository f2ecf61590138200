#!/usr/bin/env bash
# Builds iscsi_rs.ko against the bench (non-debug) kernel and prints its path.
#   ktests/bench/build-module.sh
# The build runs in a copy of the module sources under ktests/bench/out/module, so
# the repo's iscsi_rs.ko stays the debug build `make test` loads: a module built
# for one kernel never ends up in the other's guest (a KASAN-instrumented module
# does not even load into a kernel without KASAN, and the reverse runs unchecked).
# rsync keeps mtimes, so kbuild rebuilds only what changed; if the bench kernel's
# tree changes (new cache key), the copy is cleaned first, because kbuild's
# dependency files name kernel headers relative to the tree and would not notice.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/ktests/env.sh"

kdir=$("$repo/ktests/build-kernel.sh" bench)
dst=$repo/ktests/bench/out/module
mkdir -p "$dst"
# Sources only; build products (excluded names) in $dst are neither copied nor deleted.
rsync -a --delete --relative \
    --exclude='*.o' --exclude='*.cmd' --exclude='.*.d' --exclude='*.mod' --exclude='*.mod.c' \
    --exclude='*.ko' --exclude='*.rmeta' --exclude='*.a' --exclude='bindings_generated.rs' \
    "$repo/./Kbuild" "$repo/./Cargo.toml" "$repo/./src" "$dst/"
if [ "$(cat "$dst/.kdir" 2>/dev/null)" != "$kdir" ]; then
    make -C "$kdir" M="$dst" LLVM=1 clean > /dev/null
    echo "$kdir" > "$dst/.kdir"
fi
log=$dst/build-module.log
# The bench needs no KUnit test module (iscsi_rs_kunit.ko).
make -C "$kdir" M="$dst" LLVM=1 iscsi_rs_kunit=n modules > "$log" 2>&1 || { tail -40 "$log" >&2; exit 1; }
if grep -E 'warning:|error:' "$log" >&2; then
    echo "bench module build printed warnings (the kernel's Rust flags must stay clean)" >&2
    exit 1
fi
echo "$dst/iscsi_rs.ko"
