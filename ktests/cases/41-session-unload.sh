# Case: rmmod with sessions open logs every session out cleanly: two sessions to
# two targets (one with 4 LUNs, all of which must appear) run at once, I/O runs
# on one of them, then rmmod; LIO shows both sessions gone and the harness finds
# no leak or kernel report.
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
a=iqn.2026-11.dev.iscsi-rs:unload-a
b=iqn.2026-11.dev.iscsi-rs:unload-b
lio_setup -t $a -s 32 -l 4
lio_setup -t $b -s 32
insmod "$KO"
ha=$(rs_login -t $a)
hb=$(rs_login -t $b)
[ "$ha" != "$hb" ]
disks() { ls -d /sys/class/scsi_host/host$1/device/target$1:0:0/$1:0:0:*/block/* 2>/dev/null | wc -l; }
for _ in $(seq 100); do [ "$(disks $ha)" = 4 ] && [ "$(disks $hb)" = 1 ] && break; sleep 0.1; done
[ "$(disks $ha)" = 4 ]
[ "$(disks $hb)" = 1 ]
[ "$("$CTL" list | wc -l)" = 2 ]
devb=$(basename "$(ls -d /sys/class/scsi_host/host$hb/device/target$hb:0:0/$hb:0:0:0/block/*)")
dd if=/dev/urandom of=/dev/$devb bs=64k count=64 oflag=direct status=none
rmmod iscsi_rs
! test -e /sys/class/scsi_host/host$ha || exit 1
! test -e /sys/class/scsi_host/host$hb || exit 1
for t in $a $b; do rs_target_gone $t || exit 1; done
dmesg | grep -q "iscsi_rs: host$ha: session removed"
lio_teardown
