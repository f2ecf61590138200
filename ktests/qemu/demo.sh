#!/bin/bash
# `make demo`: a remote disk, end to end, narrated on the console with the time
# each step took. An LIO target in the guest exports a 64 MiB LUN on
# 127.0.0.1:3260; iscsictl discovers it and logs in for real, the kernel module
# takes the connection over and the disk appears as /dev/sdX with its
# /dev/disk/by-path link (the shipped udev rule under systemd-udevd); we make an ext4
# filesystem on it, write a file, unmount, drop the caches, mount again and read
# the file back from the remote disk (checksums compared), show `iscsictl list`,
# unmount and log out. Any failed step ends the demo with a non-zero exit, which
# `ktests/run.sh --demo` (and so `make demo`) reports as a failure.
set -u
exec > /dev/console 2>&1  # the demo narrates on the console
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
iqn=iqn.2026-11.dev.iscsi-rs:demo
RS_INAME=iqn.2026-11.dev.iscsi-rs:demo-host
mnt=/tmp/demo-mnt
timings=()

say() { printf '\n=== %s\n' "$*"; }
run() { echo "# $*"; "$@"; }
# step TITLE FUNCTION: narrates, runs, times; a failure ends the demo.
step() {
    local title=$1 t0 t1 rc
    say "$title"
    t0=$(rs_now)
    "$2"
    rc=$?
    t1=$(rs_now)
    local took
    took=$(awk "BEGIN{printf \"%.2f\", $t1 - $t0}")
    timings+=("$(printf '%8s s  %s' "$took" "$title")")
    echo "--- $title: $took s"
    if [ $rc -ne 0 ]; then
        echo "demo: FAILED at \"$title\" (exit $rc)"
        cleanup
        exit 1
    fi
}
cleanup() {
    pkill -x systemd-udevd 2> /dev/null
    umount $mnt 2> /dev/null
    "$CTL" logout -a > /dev/null 2>&1
    rmmod iscsi_rs 2> /dev/null
    lio_teardown 2> /dev/null
}

demo_target() {
    lio_setup -t $iqn -l 1 -s 64 && run ls /sys/kernel/config/target/iscsi/
}
demo_load() {
    run insmod "$KO" && run ls -l /dev/iscsi_rs && run "$CTL" --version &&
        { modinfo -F version "$KO" | sed 's/^/module version: /'; }
}
demo_discover() {
    run "$CTL" discover -p 127.0.0.1 --initiator-name $RS_INAME
}
demo_login() {
    echo "# $CTL login -p 127.0.0.1 -t $iqn --initiator-name $RS_INAME"
    host=$(rs_login -t $iqn) && [ -n "$host" ] || return 1
    dev=$(rs_disk "$host")
    [ -n "$dev" ] || { echo "no disk appeared on SCSI host $host"; return 1; }
    echo "SCSI host $host, disk /dev/$dev"
    run lsblk -o NAME,SIZE,VENDOR,MODEL,TRAN "/dev/$dev" 2> /dev/null || run ls -l "/dev/$dev"
    run cat "/sys/block/$dev/device/vendor" "/sys/block/$dev/device/model"
}
# The by-path link as on a host after `make install`: the shipped udev rule
# (staged by pkg/install-system.sh, pointing at this build's iscsictl) and
# systemd-udevd, started here because the guest has no systemd. It runs
# before the login so that it sees the disk's add event (the guest root is a
# chroot to udevadm, which then ignores trigger and settle).
demo_udev() {
    DESTDIR=/tmp/demo-stage PREFIX=/usr SBINDIR="$REPO/target/release" \
        "$REPO/pkg/install-system.sh" > /dev/null &&
        mkdir -p /run/udev/rules.d &&
        run cp /tmp/demo-stage/usr/lib/udev/rules.d/71-iscsi-rs.rules /run/udev/rules.d/ &&
        /lib/systemd/systemd-udevd --daemon
}
demo_bypath() {
    local link="" i
    for i in $(seq 1 150); do
        link=$(ls /dev/disk/by-path/ 2> /dev/null | grep -- '-iscsi-' | grep -v -- '-part' | head -1)
        [ -n "$link" ] && break
        sleep 0.2
    done
    [ -n "$link" ] || { echo "no by-path link for /dev/$dev after 30 s"; return 1; }
    run ls -l "/dev/disk/by-path/$link"
    [ "$(readlink -f "/dev/disk/by-path/$link")" = "/dev/$dev" ]
}
demo_mkfs() {
    run mkfs.ext4 -q -F -L iscsi-demo "/dev/$dev" && mkdir -p $mnt && run mount "/dev/$dev" $mnt
}
demo_write() {
    { echo "written through iscsi_rs at $(date -u)"; head -c 8M /dev/urandom; } > /tmp/demo-file &&
        run cp /tmp/demo-file $mnt/hello.bin && sha256sum /tmp/demo-file | tee /tmp/demo-sum &&
        run umount $mnt
}
demo_readback() {
    # Nothing cached on the initiator: the bytes come over iSCSI from the target.
    sync && echo 3 > /proc/sys/vm/drop_caches &&
        run mount "/dev/$dev" $mnt && run ls -l $mnt &&
        (cd $mnt && sha256sum hello.bin) | tee /tmp/demo-sum2 &&
        [ "$(cut -d' ' -f1 /tmp/demo-sum)" = "$(cut -d' ' -f1 /tmp/demo-sum2)" ] &&
        echo "read back from the remote disk: $(head -1 $mnt/hello.bin | tr -d '\0')" &&
        echo "checksums match"
}
demo_list() {
    run "$CTL" list
}
demo_logout() {
    run umount $mnt && run "$CTL" logout -t $iqn || return 1
    ! rs_target_has_session $iqn || { echo "LIO still lists our session"; return 1; }
    [ ! -e "/dev/$dev" ] || { echo "/dev/$dev still there after logout"; return 1; }
    echo "session gone on both sides, /dev/$dev removed"
}
demo_unload() {
    pkill -x systemd-udevd || true
    run rmmod iscsi_rs && lio_teardown
}

echo "demo: iscsi_rs, a Rust iSCSI initiator, against LIO in this guest"
step "LIO target in the guest: one 64 MiB LUN on 127.0.0.1:3260" demo_target
step "load the kernel module" demo_load
step "discovery (SendTargets)" demo_discover
step "systemd-udevd with the shipped udev rule" demo_udev
step "log in: the kernel takes the connection over, the disk appears" demo_login
step "its /dev/disk/by-path link (the shipped udev rule, systemd-udevd)" demo_bypath
step "make an ext4 filesystem on /dev/$dev and mount it" demo_mkfs
step "write a file (8 MiB) and unmount" demo_write
step "drop the caches, mount again, read the file back" demo_readback
step "iscsictl list" demo_list
step "unmount and log out" demo_logout
step "unload the module" demo_unload
say "timings (QEMU without KVM, debug kernel with KASAN and lockdep: slow by design)"
printf '%s\n' "${timings[@]}"
echo "demo: done, the file was read back from the remote disk"
