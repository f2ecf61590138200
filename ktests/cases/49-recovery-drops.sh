# Case (issue 6): fio --verify=crc32c randrw at iodepth 32 for 60 s while the
# fault-injection proxy drops the connection 20 times at random moments. The
# module must hand in-flight commands back for retry, the daemon log in again,
# and fio see zero verify errors and zero I/O errors. LIO and iscsictl are set
# to DefaultTime2Wait=0, so the figure is the recovery machinery itself (with
# LIO's default 2 s, RFC 7143 adds that wait to every reconnect).
# Prints FIGURE lines: median / max time from the failure to I/O flowing again.
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
. "$REPO/ktests/qemu/faultd.sh"
iqn=iqn.2026-11.dev.iscsi-rs:drops
tpg=/sys/kernel/config/target/iscsi/$iqn/tpgt_1
lio_setup -t $iqn -s 64
echo 0 > $tpg/param/DefaultTime2Wait
fd_proxy_start 127.0.0.1:3261 127.0.0.1:3260
insmod "$KO"
rs_daemon_start
RS_PORTAL=127.0.0.1:3261
host=$(rs_login -t $iqn --param DefaultTime2Wait=0)
sysfs=/sys/class/scsi_host/host$host
dev=$(rs_disk $host)

# 20 drops that hit a live connection, 1.5-3 s apart.
(
    n=0 i=0
    while [ $n -lt 20 ] && [ $i -lt 60 ]; do
        i=$((i + 1))
        sleep "$(awk "BEGIN{srand($i * 7919); printf \"%.2f\", 1.5 + rand() * 1.5}")"
        r=$(fd_ctl drop) || continue
        echo "$r"
        [ "${r#ok dropped }" -gt 0 ] && n=$((n + 1))
    done
    echo "effective drops: $n"
) > /tmp/drops.log 2>&1 &
dropper=$!

t0=$(rs_now) runs=0
while :; do
    runs=$((runs + 1))
    if ! fio --name=drops --filename=/dev/$dev --direct=1 --ioengine=libaio --iodepth=32 \
        --rw=randrw --bsrange=4k-256k --size=16m --verify=crc32c --verify_fatal=1 \
        --do_verify=1 --randrepeat=0 > /tmp/fio.out 2>&1; then
        cat /tmp/fio.out; cat /tmp/drops.log; exit 1
    fi
    grep -E "err= *0" /tmp/fio.out > /dev/null
    if awk "BEGIN{exit !($(rs_now) - $t0 >= 60)}" && ! kill -0 $dropper 2>/dev/null; then
        break
    fi
done
wait $dropper || true
cat /tmp/drops.log
grep -q "effective drops: 20" /tmp/drops.log
echo "fio runs: $runs in $(awk "BEGIN{print $(rs_now) - $t0}") s, all verified"
fd_ctl stats
rec=$(cat $sysfs/recoveries)
echo "recoveries: $rec"
[ "$rec" -ge 20 ]
dmesg | sed -n "s/.*host$host: I\/O flowing again \([0-9]*\) ms after.*/\1/p" | sort -n > /tmp/resume-ms
n=$(wc -l < /tmp/resume-ms)
[ "$n" -ge 10 ]
echo "FIGURE failure-to-io-flowing-ms median $(sed -n "$(((n + 1) / 2))p" /tmp/resume-ms) max $(tail -1 /tmp/resume-ms) n $n"
dmesg | sed -n "s/.*host$host: connection re-established.* \([0-9]*\) ms after the failure/\1/p" | sort -n > /tmp/reconnect-ms
m=$(wc -l < /tmp/reconnect-ms)
echo "FIGURE failure-to-reconnect-ms median $(sed -n "$(((m + 1) / 2))p" /tmp/reconnect-ms) max $(tail -1 /tmp/reconnect-ms) n $m"
rs_remove $host
rs_daemon_stop
fd_stop
rmmod iscsi_rs
lio_teardown
