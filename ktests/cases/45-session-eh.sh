# Case: SCSI error handling. A 1 s command timeout with a deep queue of 1 MiB
# I/O makes commands time out under TCG, so EH runs: a NOP-Out ping first, then
# ABORT TASK / LUN RESET, and if those do not settle it TARGET WARM RESET or a
# session reconnect through the daemon. I/O may fail meanwhile (the midlayer's
# retry budget runs out); what must hold: no hang, no kernel report, no data
# read back that was never written (fio's verify reports only I/O errors, not
# bad data), and afterwards the session runs and serves correct I/O; then it
# logs out and unloads cleanly.
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
iqn=iqn.2026-11.dev.iscsi-rs:eh
lio_setup -t $iqn -s 64
insmod "$KO"
rs_daemon_start
host=$(rs_login -t $iqn --queue-depth 64)
dev=$(rs_disk $host)
echo 1 > /sys/block/$dev/device/timeout
rc=0
timeout 300 fio --name=eh --filename=/dev/$dev --direct=1 --ioengine=libaio --iodepth=32 \
    --rw=randwrite --bs=1m --size=48m --verify=crc32c --do_verify=1 --randrepeat=0 \
    > /tmp/fio.out 2>&1 || rc=$?
tail -3 /tmp/fio.out
echo "fio exit $rc"
[ $rc != 124 ]
! grep -iE "verify: bad|bad magic|crc32c: verify failed|hdr_crc" /tmp/fio.out || exit 1
dmesg | grep -cE "ABORT_TASK|device reset occurred|escalated to a session reconnect" \
    || echo "EH did not run this time"
echo 30 > /sys/block/$dev/device/timeout
# EH settled at ABORT TASK / LUN RESET, or the daemon brought the session back.
rs_wait_state $host running 90
head -c 4M /dev/urandom > /tmp/pattern
dd if=/tmp/pattern of=/dev/$dev bs=1M oflag=direct status=none
dd if=/dev/$dev of=/tmp/readback bs=1M count=4 iflag=direct status=none
cmp /tmp/pattern /tmp/readback
rs_remove $host
rs_daemon_stop
rmmod iscsi_rs
lio_teardown
