#!/usr/bin/env bash
# `make install`: copies what `make module ctl` built, plus the generated man pages
# and completions, to their places. Honours DESTDIR (staging root, e.g. for a
# package) and PREFIX (default /usr/local); the module always goes below
# /lib/modules/KVER/extra, KVER being the kernel it was built for (its vermagic)
# unless KVER is given. Builds nothing but the docs: run `make module ctl` (or
# `make module KDIR=/lib/modules/$(uname -r)/build` for the running kernel) first.
# Prints every file it installs.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
SBINDIR=${SBINDIR:-$PREFIX/sbin}
MANDIR=${MANDIR:-$PREFIX/share/man}
DOCDIR=${DOCDIR:-$PREFIX/share/doc/iscsi-rs}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
UDEVRULESDIR=${UDEVRULESDIR:-$PREFIX/lib/udev/rules.d}
BASHCOMPDIR=${BASHCOMPDIR:-$PREFIX/share/bash-completion/completions}
ZSHCOMPDIR=${ZSHCOMPDIR:-$PREFIX/share/zsh/site-functions}
FISHCOMPDIR=${FISHCOMPDIR:-$PREFIX/share/fish/vendor_completions.d}
ko=${KO:-$repo/iscsi_rs.ko}
ctl=${CTL:-$repo/target/release/iscsictl}

die() { echo "install: $*" >&2; exit 1; }
[ -f "$ko" ] || die "$ko missing: build it first (make module, or make module KDIR=/lib/modules/\$(uname -r)/build)"
[ -x "$ctl" ] || die "$ctl missing: build it first (make ctl)"
vermagic=$(modinfo -F vermagic "$ko") || die "$ko: modinfo cannot read it"
KVER=${KVER:-${vermagic%% *}}
[ -n "$KVER" ] || die "$ko has no vermagic: cannot tell which kernel it is for (set KVER)"

gen=$repo/target/gen
rm -rf "$gen"
cargo run --release --quiet -p iscsictl-gen -- "$gen" > /dev/null

put() {  # put MODE SRC DEST: install one file, say so
    install -D -m "$1" "$2" "$DESTDIR$3"
    echo "  $DESTDIR$3"
}
echo "install: into ${DESTDIR:-/} (PREFIX=$PREFIX, kernel $KVER)"
put 644 "$ko" "/lib/modules/$KVER/extra/iscsi_rs.ko"
put 755 "$ctl" "$SBINDIR/iscsictl"
for f in "$gen"/man/man8/*.8; do put 644 "$f" "$MANDIR/man8/${f##*/}"; done
for f in "$gen"/man/man5/*.5; do put 644 "$f" "$MANDIR/man5/${f##*/}"; done
put 644 "$gen/completions/iscsictl.bash" "$BASHCOMPDIR/iscsictl"
put 644 "$gen/completions/_iscsictl" "$ZSHCOMPDIR/_iscsictl"
put 644 "$gen/completions/iscsictl.fish" "$FISHCOMPDIR/iscsictl.fish"
put 644 README.md "$DOCDIR/README.md"
DESTDIR=$DESTDIR PREFIX=$PREFIX SBINDIR=$SBINDIR DOCDIR=$DOCDIR UNITDIR=$UNITDIR \
    UDEVRULESDIR=$UDEVRULESDIR pkg/install-system.sh

if [ -n "$DESTDIR" ]; then
    echo "install: DESTDIR is set, so depmod was not run; on the target system run: depmod -a $KVER"
else
    depmod -a "$KVER"
    echo "install: depmod -a $KVER done (modprobe iscsi_rs finds the module)"
    if command -v udevadm > /dev/null; then
        udevadm control --reload 2> /dev/null || true
    fi
    echo "install: to log in at boot: systemctl daemon-reload && systemctl enable iscsi-rs-login" \
        "(targets with startup = automatic in /etc/iscsi-rs.conf)"
fi
