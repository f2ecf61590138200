# Case: connection failure (ERL 0, no re-login yet). The target drops the session
# (TPG disabled); the module logs the failure, marks the session failed, fails
# new I/O fast instead of hanging, and REMOVE_SESSION and rmmod stay clean.
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
iqn=iqn.2026-11.dev.iscsi-rs:fail
tpg=/sys/kernel/config/target/iscsi/$iqn/tpgt_1
lio_setup -t $iqn -s 16
insmod "$KO"
host=$(rs_login -t $iqn)
sysfs=/sys/class/scsi_host/host$host
dev=$(rs_disk $host)
dd if=/dev/$dev of=/dev/null bs=1M count=4 iflag=direct status=none
echo 0 > $tpg/enable
for _ in $(seq 100); do [ "$(cat $sysfs/session_state)" = failed ] && break; sleep 0.1; done
[ "$(cat $sysfs/session_state)" = failed ]
dmesg | grep -q "host$host: connection failed: connection closed by the target"
! timeout 60 dd if=/dev/$dev of=/dev/null bs=4k count=1 iflag=direct status=none
"$CTL" list | grep -q "^host$host .* failed "
rs_remove $host
! test -e $sysfs
rmmod iscsi_rs
lio_teardown
