#!/bin/bash
# `make demo`: what a user sees today, narrated on the console.
set -u
exec > /dev/console 2>&1  # the demo narrates on the console
. "$REPO/ktests/qemu/lio.sh"
say() { printf '\n=== %s\n' "$*"; }
run() { echo "# $*"; "$@"; }
say "LIO target in the guest: 2 LUNs of 64 MiB on 127.0.0.1:3260"
lio_setup -t iqn.2026-11.dev.iscsi-rs:demo -l 2 -s 64 && ls /sys/kernel/config/target/iscsi/
say "loading the module"
run insmod "$KO"
run ls -l /dev/iscsi_rs
dmesg | grep -E 'iscsi_rs' | tail -5
run "$CTL" --version
say "iscsictl: discovery and a dry-run login (log in, print what was negotiated, log out)"
run "$CTL" discover -p 127.0.0.1 --initiator-name iqn.2026-11.dev.iscsi-rs:demo-host
run "$CTL" login -p 127.0.0.1 -t iqn.2026-11.dev.iscsi-rs:demo --dry-run \
    --initiator-name iqn.2026-11.dev.iscsi-rs:demo-host --header-digest crc32c
say "unloading"
run rmmod iscsi_rs
lio_teardown
echo "demo: done"
