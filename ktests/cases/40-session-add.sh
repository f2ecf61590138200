# Case: ADD_SESSION end to end. `iscsictl login` hands its logged-in socket to
# iscsi_rs.ko, the SCSI host
# scans, /dev/sdX appears, 16 MiB written and read back compare equal, sysfs and
# LIST show the session, REMOVE_SESSION logs out (the target shows the session
# gone), and rmmod is clean (the harness checks KASAN/lockdep/kmemleak).
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
iqn=iqn.2026-11.dev.iscsi-rs:add
tpg=/sys/kernel/config/target/iscsi/$iqn/tpgt_1
lio_setup -t $iqn -s 64
insmod "$KO"
host=$(rs_login -t $iqn)
sysfs=/sys/class/scsi_host/host$host
[ "$(cat $sysfs/targetname)" = $iqn ]
[ "$(cat $sysfs/portal)" = 127.0.0.1:3260 ]
[ "$(cat $sysfs/session_state)" = running ]
rs_target_has_session $iqn
dev=$(rs_disk $host)
[ -b "/dev/$dev" ]
[ "$(cat /sys/block/$dev/size)" = $((64 * 2048)) ]
head -c 16M /dev/urandom > /tmp/pattern
dd if=/tmp/pattern of=/dev/$dev bs=1M oflag=direct status=none
dd if=/dev/$dev of=/tmp/readback bs=1M count=16 iflag=direct status=none
cmp /tmp/pattern /tmp/readback
# Small and unaligned-size I/O through the page cache as well.
dd if=/tmp/pattern of=/dev/$dev bs=4k count=100 seek=5000 conv=fsync status=none
echo 3 > /proc/sys/vm/drop_caches
head -c $((100 * 4096)) /tmp/pattern > /tmp/small
dd if=/dev/$dev of=/tmp/small.back bs=4k skip=5000 count=100 status=none
cmp /tmp/small /tmp/small.back
"$CTL" list | tee /tmp/list
grep -q "^host$host $iqn 127.0.0.1:3260 running " /tmp/list
rs_remove $host
! test -e $sysfs || exit 1
! test -b /dev/$dev || exit 1
"$CTL" list > /tmp/list
! grep -q "^host$host " /tmp/list || exit 1
rs_target_gone $iqn || exit 1
rmmod iscsi_rs
lio_teardown
