#!/usr/bin/env bash
# `make install DESTDIR=… PREFIX=…` on the built tree: every file it should
# install is there (and nothing else, nothing empty), the man pages render
# without groff warnings, the bash completion parses, systemd-analyze accepts
# the units, depmod is left alone under DESTDIR, PREFIX moves sbin and the unit's
# ExecStart together; then the DKMS side: dkms.conf's version, the toolchain
# check refusing a mismatched rustc and a kernel without Rust, and a real build
# of the module from the `make install-dkms` copy. Prints `ok`/`not ok` per check.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
. "$here/env.sh"
tmp=$(mktemp -d /tmp/iscsi-rs-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failed=0
ok() { echo "ok - install: $1"; }
nok() { echo "not ok - install: $1"; failed=1; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else nok "$name"; fi; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
kver=$(modinfo -F vermagic iscsi_rs.ko | cut -d' ' -f1)
[ -n "$kver" ] || { nok "iscsi_rs.ko missing or without vermagic (make module)"; exit 1; }

root=$tmp/root
make --no-print-directory install DESTDIR="$root" PREFIX=/usr > "$tmp/install.log" 2>&1
rc=$?
sed 's/^/#   /' "$tmp/install.log"
check "make install DESTDIR=… PREFIX=/usr exits 0" test $rc = 0

# The list, written out here rather than read from the installer.
want=(
    "lib/modules/$kver/extra/iscsi_rs.ko"
    usr/sbin/iscsictl
    usr/share/man/man8/iscsictl.8
    usr/share/man/man5/iscsi-rs.conf.5
    usr/share/bash-completion/completions/iscsictl
    usr/share/zsh/site-functions/_iscsictl
    usr/share/fish/vendor_completions.d/iscsictl.fish
    usr/share/doc/iscsi-rs/README.md
)
# One page per verb iscsictl --help lists (so a new verb needs its page).
verbs=$(target/release/iscsictl --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && $1 != "help" && NF {print $1}')
[ -n "$verbs" ] || nok "could not read the verbs from iscsictl --help"
for v in $verbs; do want+=("usr/share/man/man8/iscsictl-$v.8"); done
for u in userspace-ctl/*.service; do want+=("usr/lib/systemd/system/${u##*/}"); done
for r in userspace-ctl/*.rules; do want+=("usr/lib/udev/rules.d/${r##*/}"); done
check "the boot unit and the by-path rule are among them" \
    eval 'printf "%s\n" "${want[@]}" | grep -qx usr/lib/systemd/system/iscsi-rs-login.service &&
          printf "%s\n" "${want[@]}" | grep -qx usr/lib/udev/rules.d/71-iscsi-rs.rules' 
for f in "${want[@]}"; do
    check "$f installed, not empty" test -s "$root/$f"
done
extra=$(cd "$root" && find . -type f -o -type l | sed 's|^\./||' | sort |
        comm -23 - <(printf '%s\n' "${want[@]}" | sort))
check "nothing else installed${extra:+: $(echo $extra)}" test -z "$extra"
check "iscsi_rs.ko installed byte for byte" cmp -s iscsi_rs.ko "$root/lib/modules/$kver/extra/iscsi_rs.ko"
check "iscsictl is executable and says $version" \
    eval '"$root/usr/sbin/iscsictl" --version | grep -qx "iscsictl $version"'
check "depmod skipped under DESTDIR, and said so" \
    eval '! [ -e "$root/lib/modules/$kver/modules.dep" ] && grep -q "depmod was not run" "$tmp/install.log"'

for page in "$root"/usr/share/man/man*/*; do
    warn=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
    check "${page#"$root"/} renders without groff warnings${warn:+: $warn}" test -z "$warn"
done
check "bash completion parses" bash -n "$root/usr/share/bash-completion/completions/iscsictl"
check "zsh completion is for iscsictl" grep -q '^#compdef iscsictl' "$root/usr/share/zsh/site-functions/_iscsictl"
check "fish completion is for iscsictl" grep -q '^complete -c iscsictl' "$root/usr/share/fish/vendor_completions.d/iscsictl.fish"

# systemd-analyze: on a copy whose binary path points into the staging root (it
# checks that ExecStart is executable), with MANPATH there for Documentation=man:.
if command -v systemd-analyze > /dev/null; then
    mkdir -p "$tmp/verify"
    for u in "$root"/usr/lib/systemd/system/*; do
        sed "s|/usr/sbin/iscsictl|$root/usr/sbin/iscsictl|g" "$u" > "$tmp/verify/${u##*/}"
        out=$(cd "$tmp/verify" && MANPATH=$root/usr/share/man systemd-analyze verify "$tmp/verify/${u##*/}" 2>&1)
        rc=$?
        check "systemd-analyze verify ${u##*/}${out:+: $out}" test $rc = 0 -a -z "$out"
        check "${u##*/} runs the installed iscsictl" grep -q '^ExecStart=/usr/sbin/iscsictl ' "$u"
    done
    login_unit=$root/usr/lib/systemd/system/iscsi-rs-login.service
    check "iscsi-rs-login.service logs in the automatic targets, out on stop" \
        eval "grep -qx 'ExecStart=/usr/sbin/iscsictl login --startup automatic' '$login_unit' &&
              grep -qx 'ExecStop=/usr/sbin/iscsictl logout -a' '$login_unit'"
    check "iscsi-rs-login.service: after network-online, before remote-fs-pre, with the daemon" \
        eval "grep -qx 'After=network-online.target iscsi-rs.service' '$login_unit' &&
              grep -qx 'Before=remote-fs-pre.target' '$login_unit' &&
              grep -qx 'Wants=iscsi-rs.service network-online.target remote-fs-pre.target' '$login_unit'"
    check "iscsi-rs.service loads the module" \
        grep -qx 'ExecStartPre=/sbin/modprobe iscsi_rs' "$root/usr/lib/systemd/system/iscsi-rs.service"
else
    nok "systemd-analyze missing (make deps installs systemd)"
fi

# PREFIX moves the binary and the units' ExecStart with it.
root2=$tmp/root2
if make --no-print-directory install DESTDIR="$root2" PREFIX=/opt/iscsi-rs > "$tmp/install2.log" 2>&1; then
    check "PREFIX=/opt/iscsi-rs: sbin" test -x "$root2/opt/iscsi-rs/sbin/iscsictl"
    check "PREFIX=/opt/iscsi-rs: man page" test -s "$root2/opt/iscsi-rs/share/man/man8/iscsictl.8"
    check "PREFIX=/opt/iscsi-rs: unit's ExecStart" \
        grep -q '^ExecStart=/opt/iscsi-rs/sbin/iscsictl ' "$root2/opt/iscsi-rs/lib/systemd/system/iscsi-rs.service"
    check "PREFIX=/opt/iscsi-rs: the udev rule runs that iscsictl" \
        grep -q 'PROGRAM=="/opt/iscsi-rs/sbin/iscsictl udev-path %p"' "$root2/opt/iscsi-rs/lib/udev/rules.d/71-iscsi-rs.rules"
    check "PREFIX=/opt/iscsi-rs: the module still goes to /lib/modules" \
        test -s "$root2/lib/modules/$kver/extra/iscsi_rs.ko"
else
    sed 's/^/#   /' "$tmp/install2.log"; nok "make install PREFIX=/opt/iscsi-rs failed"
fi

# DKMS.
check "dkms.conf version is Cargo.toml's ($version)" grep -q "^PACKAGE_VERSION=\"$version\"" dkms.conf
kdir=$(cat .module-kdir 2>/dev/null)
if [ -n "$kdir" ] && [ -f "$kdir/.config" ]; then
    check "dkms-build.sh --check-only accepts the kernel the module was built for" \
        eval 'pkg/dkms-build.sh --check-only "$kver" "$kdir" > "$tmp/dk.log" 2>&1'
    fake=$tmp/fake-kernel
    mkdir -p "$fake/rust" && touch "$fake/rust/libkernel.rmeta" "$fake/rust/libmacros.so"
    sed 's/^CONFIG_RUSTC_VERSION_TEXT=.*/CONFIG_RUSTC_VERSION_TEXT="rustc 1.78.0 (9b00956e5 2024-04-29)"/' \
        "$kdir/.config" > "$fake/.config"
    out=$(pkg/dkms-build.sh --check-only "$kver" "$fake" 2>&1)
    check "dkms-build.sh refuses another rustc, naming both${out:+ (said: $out)}" \
        eval '! pkg/dkms-build.sh --check-only "$kver" "$fake" > /dev/null 2>&1 && grep -q "built with .rustc 1.78.0" <<<"$out" && grep -q "kernel.s own compiler" <<<"$out"'
    sed -i 's/^CONFIG_RUST=y/# CONFIG_RUST is not set/' "$fake/.config"
    out=$(pkg/dkms-build.sh --check-only "$kver" "$fake" 2>&1)
    check "dkms-build.sh refuses a kernel without CONFIG_RUST${out:+ (said: $out)}" \
        eval '! pkg/dkms-build.sh --check-only "$kver" "$fake" > /dev/null 2>&1 && grep -q CONFIG_RUST <<<"$out"'
    out=$(pkg/dkms-build.sh --check-only 6.13.1 "$kdir" 2>&1)
    check "dkms-build.sh refuses a kernel other than 6.12" \
        eval '! pkg/dkms-build.sh --check-only 6.13.1 "$kdir" > /dev/null 2>&1 && grep -q 6.12 <<<"$out"'
    # The real thing: build from the installed DKMS source tree, as dkms would.
    src=$(DESTDIR=$tmp/dkms pkg/install-dkms.sh)
    check "install-dkms: dkms.conf and the build script in $src" \
        test -s "$src/dkms.conf" -a -x "$src/pkg/dkms-build.sh"
    if (cd "$src" && nice pkg/dkms-build.sh "$kver" "$kdir") > "$tmp/dkms-build.log" 2>&1; then
        warn=$(grep -E 'warning:|error:' "$tmp/dkms-build.log")
        check "DKMS build from the installed sources is warning-free${warn:+: $warn}" test -z "$warn"
        check "DKMS build made iscsi_rs.ko" test -s "$src/iscsi_rs.ko"
        check "DKMS build made no test module" test ! -e "$src/iscsi_rs_kunit.ko"
        check "DKMS-built module has the same modinfo version" \
            test "$(modinfo -F version "$src/iscsi_rs.ko")" = "$version"
    else
        tail -20 "$tmp/dkms-build.log" | sed 's/^/#   /'
        nok "DKMS build from the installed sources failed"
    fi
else
    nok "no kernel tree recorded in .module-kdir (make module)"
fi
exit $failed
