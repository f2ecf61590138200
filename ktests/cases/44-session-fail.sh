# Case: connection failure with nobody to log in again. The target drops the
# session (TPG disabled): the module logs the cause, holds I/O while
# "recovering", and once the replacement timeout (3 s here) passes fails it fast
# ("failed") instead of hanging; REMOVE_SESSION and rmmod stay clean.
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
iqn=iqn.2026-11.dev.iscsi-rs:fail
tpg=/sys/kernel/config/target/iscsi/$iqn/tpgt_1
lio_setup -t $iqn -s 16
insmod "$KO"
host=$(rs_login -t $iqn --replacement-timeout 3)
sysfs=/sys/class/scsi_host/host$host
dev=$(rs_disk $host)
[ "$(cat $sysfs/replacement_timeout)" = 3 ]
dd if=/dev/$dev of=/dev/null bs=1M count=4 iflag=direct status=none
echo 0 > $tpg/enable
rs_wait_state $host recovering 10
dmesg | grep -q "host$host: connection failed: connection closed by the target; recovering"
"$CTL" list | grep -q "^host$host .* recovering "
rs_wait_state $host failed 6
dmesg | grep -q "host$host: replacement timeout expired"
t0=$(rs_now)
! timeout 60 dd if=/dev/$dev of=/dev/null bs=4k count=1 iflag=direct status=none || exit 1
awk "BEGIN{exit !($(rs_now) - $t0 < 5)}"
"$CTL" list | grep -q "^host$host .* failed "
rs_remove $host
! test -e $sysfs || exit 1
rmmod iscsi_rs
lio_teardown
