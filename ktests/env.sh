# Sourced by every script that runs the kernel toolchain: one place for paths.
CACHE=${ISCSI_RS_CACHE:-$HOME/.cache/iscsi-rs}
export PATH="$CACHE/tools/bin:/usr/lib/llvm-19/bin:$HOME/.cargo/bin:$PATH"
mkdir -p "$CACHE"
