# Case (issue 6): a stalled target. The proxy holds back (and discards) every
# SCSI Response and Data-In while NOP-Ins and TMF Responses still pass, so the
# connection is alive but commands never finish: after the 5 s command timeout
# the SCSI error handler pings, then sends ABORT TASK. The target, whose
# response was discarded, answers "task does not exist" while the command is
# still outstanding here, so the abort fails (libiscsi's rule) and EH escalates
# to LUN RESET. The hold ends at the first TMF (`until-tmf`): from then on the
# target answers, the reset's TEST UNIT READY passes, and the midlayer's retry
# completes the read with the right data; the session never needed a reconnect.
# The same on the second connection of a 2-connection session (MC/S, issue
# 16): the read runs on CPU 1, so lane 1 carries it and its TMFs. Then a
# target that neither answers nor closes: that session is logged out while the
# proxy stalls (holding back our FINs too). The Logout Response never comes
# (10 s), and the end of a multi-connection session waits for the target to
# close each connection (10 s at most, then a warning): the logout still
# returns, after both bounds and not much later, nothing leaks, and once the
# proxy resumes LIO lets the session go.
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

# Abort and LUN reset requests the proxy saw so far.
tmf_count() {
    local s
    s=$(fd_ctl stats)
    echo $(($(sed -n 's/.* abort_task=\([0-9]*\) .*/\1/p' <<<"$s") + $(sed -n 's/.* lun_reset=\([0-9]*\) .*/\1/p' <<<"$s")))
}

# Reads 1 MiB of /dev/$1 (on CPU $2 if given) while the proxy throws SCSI
# completions away until error handling's first TMF; checks the data.
read_through_eh() {
    local tmf0 reader _
    tmf0=$(tmf_count)
    fd_ctl hold-scsi 0 discard until-tmf
    ${2:+taskset -c $2} dd if=/dev/$1 of=/tmp/readback bs=1M count=1 iflag=direct status=none &
    reader=$!
    for _ in $(seq 300); do
        [ "$(tmf_count)" -gt $tmf0 ] && break
        sleep 0.1
    done
    fd_ctl stats
    [ "$(tmf_count)" -gt $tmf0 ]
    fd_ctl resume
    wait $reader
    cmp /tmp/pattern /tmp/readback
}

# ExpStatSN of lane $2 of host $1.
lane_stat_sn() {
    local sns
    read -r -a sns <<<"$(rs_stat_sns "$1")"
    echo "${sns[$2]:-}"
}

read_through_eh $dev
echo 30 > /sys/block/$dev/device/timeout
[ "$(cat $sysfs/session_state)" = running ]
[ "$(cat $sysfs/recoveries)" = 0 ]
dmesg | grep -E "ABORT_TASK|LUN_RESET|device reset" || true
rs_remove $host
rs_gone $host

echo 2 > $LIO/iscsi/$iqn/tpgt_1/param/MaxConnections
host=$(rs_login -t $iqn --connections 2)
"$CTL" list | grep -q "^host$host .* connections=2/2 "
dev=$(rs_disk $host)
sysfs=/sys/class/scsi_host/host$host
# EH on a further connection: CPU 1's hardware queue is lane 1, whose
# connection carries the command and so the TMFs about it (allegiance).
echo 5 > /sys/block/$dev/device/timeout
sn=$(lane_stat_sn $host 1)
[ -n "$sn" ]
read_through_eh $dev 1
[ "$(lane_stat_sn $host 1)" != "$sn" ]
[ "$(cat $sysfs/session_state)" = running ]
[ "$(cat $sysfs/recoveries)" = 0 ]
echo 30 > /sys/block/$dev/device/timeout
dd if=/dev/$dev of=/dev/null bs=64k count=16 iflag=direct status=none
# Kernel log lines about this host matching $1 (earlier cases of the boot
# may have logged the same under the same host number: count, then compare).
klog_count() { dmesg | grep -c "host$host: $1" || true; }
unconfirmed=$(klog_count "logout not confirmed by the target")
gave_up=$(klog_count "the target has not closed 2 of its connections after 10000 ms")
fd_ctl stall 0
start=$SECONDS
rs_remove $host
took=$((SECONDS - start))
echo "logout with a silent target took $took s"
[ $took -ge 20 ] && [ $took -le 40 ]
[ "$(klog_count "logout not confirmed by the target")" -gt "$unconfirmed" ]
[ "$(klog_count "the target has not closed 2 of its connections after 10000 ms")" -gt "$gave_up" ]
rs_gone $host
fd_ctl resume
rs_target_gone $iqn 15
fd_stop
rmmod iscsi_rs
lio_teardown
