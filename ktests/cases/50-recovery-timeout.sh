# Case (issue 6): the target goes away for longer than a 10 s replacement
# timeout. I/O is held while recovering and then fails with an error within
# 11 s of the failure (not 120 s, not never); new I/O fails at once; when the
# target comes back the daemon logs in again (session reinstatement) and I/O
# resumes with the data intact.
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
iqn=iqn.2026-11.dev.iscsi-rs:timeout
tpg=/sys/kernel/config/target/iscsi/$iqn/tpgt_1
lio_setup -t $iqn -s 16
insmod "$KO"
rs_daemon_start
host=$(rs_login -t $iqn --replacement-timeout 10)
sysfs=/sys/class/scsi_host/host$host
dev=$(rs_disk $host)
head -c 4M /dev/urandom > /tmp/pattern
dd if=/tmp/pattern of=/dev/$dev bs=1M oflag=direct status=none
tsih_before=$(cat $sysfs/tsih)

echo 0 > $tpg/enable
rs_wait_state $host recovering 10
t_fail=$(rs_now)
rc=0
timeout 60 dd if=/dev/$dev of=/dev/null bs=4k count=1 iflag=direct status=none || rc=$?
t_err=$(rs_now)
held=$(awk "BEGIN{print $t_err - $t_fail}")
echo "FIGURE held-io-failed-after-s $held"
[ $rc != 0 ] && [ $rc != 124 ]
awk "BEGIN{exit !($held >= 8 && $held < 11)}"
[ "$(cat $sysfs/session_state)" = failed ]
t0=$(rs_now)
! dd if=/dev/$dev of=/dev/null bs=4k count=1 iflag=direct status=none || exit 1
awk "BEGIN{exit !($(rs_now) - $t0 < 1)}"
sleep 5

echo 1 > $tpg/enable
t_back=$(rs_now)
rs_wait_state $host running 60
echo "FIGURE target-back-to-running-s $(awk "BEGIN{print $(rs_now) - $t_back}")"
dd if=/dev/$dev of=/tmp/readback bs=1M count=4 iflag=direct status=none
cmp /tmp/pattern /tmp/readback
[ "$(cat $sysfs/recoveries)" = 1 ]
[ "$(cat $sysfs/tsih)" != "$tsih_before" ] || echo "target reused TSIH $tsih_before"
dmesg | grep -q "host$host: connection re-established"
grep -q "host$host" /tmp/daemon.log
rs_remove $host
rs_daemon_stop
rmmod iscsi_rs
lio_teardown
