# Case (issue 6): a stalled target. The proxy holds back (and discards) every
# SCSI Response and Data-In while NOP-Ins and TMF Responses still pass, so the
# connection is alive but commands never finish: after the 5 s command timeout
# the SCSI error handler pings, then sends ABORT TASK. The target, whose
# response was discarded, answers "task does not exist" while the command is
# still outstanding here, so the abort fails (libiscsi's rule) and EH escalates
# to LUN RESET. The hold ends at the first TMF (`until-tmf`): from then on the
# target answers, the reset's TEST UNIT READY passes, and the midlayer's retry
# completes the read with the right data; the session never needed a reconnect.
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
. "$REPO/ktests/qemu/faultd.sh"
iqn=iqn.2026-11.dev.iscsi-rs:stall
lio_setup -t $iqn -s 16
fd_proxy_start 127.0.0.1:3261 127.0.0.1:3260
insmod "$KO"
RS_PORTAL=127.0.0.1:3261
host=$(rs_login -t $iqn)
sysfs=/sys/class/scsi_host/host$host
dev=$(rs_disk $host)
head -c 1M /dev/urandom > /tmp/pattern
dd if=/tmp/pattern of=/dev/$dev bs=1M oflag=direct status=none
echo 5 > /sys/block/$dev/device/timeout

fd_ctl hold-scsi 0 discard until-tmf
dd if=/dev/$dev of=/tmp/readback bs=1M count=1 iflag=direct status=none &
reader=$!
tmf=0
for _ in $(seq 300); do
    s=$(fd_ctl stats)
    a=$(sed -n 's/.* abort_task=\([0-9]*\) .*/\1/p' <<<"$s")
    l=$(sed -n 's/.* lun_reset=\([0-9]*\) .*/\1/p' <<<"$s")
    tmf=$((a + l))
    [ $tmf -gt 0 ] && break
    sleep 0.1
done
fd_ctl stats
[ $tmf -gt 0 ]
fd_ctl resume
wait $reader
cmp /tmp/pattern /tmp/readback
echo 30 > /sys/block/$dev/device/timeout
[ "$(cat $sysfs/session_state)" = running ]
[ "$(cat $sysfs/recoveries)" = 0 ]
dmesg | grep -E "ABORT_TASK|LUN_RESET|device reset" || true
rs_remove $host
fd_stop
rmmod iscsi_rs
lio_teardown
