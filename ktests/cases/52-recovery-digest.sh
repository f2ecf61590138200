# Case (issue 6): one corrupted data byte with DataDigest=CRC32C. Target to
# initiator: the module's data digest check fails the connection, the daemon
# logs in again and the retried read returns the right data. Initiator to
# target: LIO (ERL 0) closes the connection on the bad Data-Out digest, the
# write is retried on the new connection, and the data on disk is correct.
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
. "$REPO/ktests/qemu/faultd.sh"
iqn=iqn.2026-11.dev.iscsi-rs:digest
lio_setup -t $iqn -s 16 -d
fd_proxy_start 127.0.0.1:3261 127.0.0.1:3260
insmod "$KO"
rs_daemon_start
RS_PORTAL=127.0.0.1:3261
host=$(rs_login -t $iqn --header-digest crc32c --data-digest crc32c)
sysfs=/sys/class/scsi_host/host$host
dev=$(rs_disk $host)
[ "$(cat $sysfs/data_digest)" = CRC32C ]
head -c 1M /dev/urandom > /tmp/pattern

# Target -> initiator.
dd if=/tmp/pattern of=/dev/$dev bs=1M oflag=direct status=none
fd_ctl corrupt-data t2i
dd if=/dev/$dev of=/tmp/readback bs=1M count=1 iflag=direct status=none
cmp /tmp/pattern /tmp/readback
fd_ctl stats | grep -q " corrupt_data=1 "
dmesg | grep -E "host$host: connection failed: framing violation: .*[Dd]igest"
rs_wait_state $host running 30
[ "$(cat $sysfs/recoveries)" = 1 ]

# Initiator -> target.
head -c 1M /dev/urandom > /tmp/pattern2
fd_ctl corrupt-data i2t
dd if=/tmp/pattern2 of=/dev/$dev bs=1M oflag=direct status=none
fd_ctl stats | grep -q " corrupt_data=2 "
rs_wait_state $host running 30
[ "$(cat $sysfs/recoveries)" = 2 ]
dd if=/dev/$dev of=/tmp/readback bs=1M count=1 iflag=direct status=none
cmp /tmp/pattern2 /tmp/readback
dmesg | grep -iE "CRC|digest" | tail -5
rs_remove $host
rs_daemon_stop
fd_stop
rmmod iscsi_rs
lio_teardown
