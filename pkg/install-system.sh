#!/usr/bin/env bash
# The systemd units and the udev rule, with the paths they name pointed at where
# this install puts things; called by pkg/install.sh (`make install`), and on its
# own by the guest cases (ktests/cases/67-by-path.sh, 69-boot-units.sh), which
# install exactly these files into a scratch root and run what they say, with
# no cargo or kernel tree needed. Honours DESTDIR, SBINDIR, DOCDIR, UNITDIR,
# UDEVRULESDIR (defaults for PREFIX=/usr/local, as pkg/install.sh). Prints
# every file it installs.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
SBINDIR=${SBINDIR:-$PREFIX/sbin}
DOCDIR=${DOCDIR:-$PREFIX/share/doc/iscsi-rs}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
UDEVRULESDIR=${UDEVRULESDIR:-$PREFIX/lib/udev/rules.d}

put_edited() {  # put_edited SRC DEST: install SRC with its /usr paths moved
    local tmp
    tmp=$(mktemp)
    sed -e "s|/usr/sbin/iscsictl|$SBINDIR/iscsictl|g" \
        -e "s|/usr/share/doc/iscsi-rs|$DOCDIR|g" "$1" > "$tmp"
    install -D -m 644 "$tmp" "$DESTDIR$2"
    rm -f "$tmp"
    echo "  $DESTDIR$2"
}
for unit in "$repo"/userspace-ctl/*.service; do
    put_edited "$unit" "$UNITDIR/${unit##*/}"
done
for rule in "$repo"/userspace-ctl/*.rules; do
    put_edited "$rule" "$UDEVRULESDIR/${rule##*/}"
done
