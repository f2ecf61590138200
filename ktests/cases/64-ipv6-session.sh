# Case (issue 12): a kernel session over IPv6. LIO listens on [::1]:3260 only;
# iscsictl discovers it there (TargetAddress in brackets), logs in, hands the
# IPv6 socket to the module, and fio verifies random read/write (512 B-1 MiB
# blocks, QD32, 64 MiB, crc32c, verify_fatal). Then the target drops the
# connection (TPG disabled and enabled again) and the daemon logs in again over
# IPv6 from the session's recipe: I/O resumes, verified. The login binds its
# socket (--iface lo --initiator-address ::1), so the re-login must too.
# guest-boot: 2
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
if ! ip -6 addr show dev lo | grep -q 'inet6 ::1/128'; then
    echo "not ok - the guest has no ::1 on lo (CONFIG_IPV6?)"; exit 1
fi
iqn=iqn.2026-11.dev.iscsi-rs:ipv6
tpg=/sys/kernel/config/target/iscsi/$iqn/tpgt_1
lio_setup -t $iqn -s 80 -p '[::1]:3260'
echo 0 > $tpg/param/DefaultTime2Wait
# Nothing on IPv4: the session cannot have used it. (`! cmd` would not stop a
# set -e script, hence the if.)
if timeout 10 "$CTL" discover -p 127.0.0.1 --initiator-name $RS_INAME; then
    echo "not ok - LIO answers on IPv4 too"; exit 1
fi
"$CTL" discover -p '[::1]' --initiator-name $RS_INAME | tee /tmp/disc
grep -qx "    \[::1\]:3260,1" /tmp/disc
insmod "$KO"
rs_daemon_start
RS_PORTAL='[::1]:3260'
host=$(rs_login -t $iqn --param DefaultTime2Wait=0 --replacement-timeout 60 \
    --iface lo --initiator-address ::1)
sysfs=/sys/class/scsi_host/host$host
dev=$(rs_disk $host)
[ -n "$dev" ]
"$CTL" list | tee /tmp/list
grep "^host$host " /tmp/list | grep -q '\[::1\]:3260'
ss -tn state established '( dport = :3260 )' | tee /tmp/ss
grep -q '\[::1\]' /tmp/ss
fio_verify() {
    fio --name=v6 --filename=/dev/$dev --direct=1 --ioengine=libaio --iodepth=32 \
        --rw=randrw --bsrange=512-1m --size=64m --verify=crc32c --verify_fatal=1 \
        --do_verify=1 --randrepeat=0 > /tmp/fio.out 2>&1 || { cat /tmp/fio.out; return 1; }
    grep -E "err= *0" /tmp/fio.out > /dev/null
}
fio_verify
echo "fio verify over [::1]: ok"
# A forced drop: the daemon must log in again over IPv6.
rec0=$(cat $sysfs/recoveries)
echo 0 > $tpg/enable
rs_wait_state $host recovering 10
sleep 1
echo 1 > $tpg/enable
rs_wait_state $host running 60
[ "$(cat $sysfs/recoveries)" -gt "$rec0" ]
grep -q "host$host: logged in again to $iqn at \[::1\]:3260" /tmp/daemon.log
fio_verify
echo "fio verify after the IPv6 re-login: ok"
rs_remove $host
rs_daemon_stop
rmmod iscsi_rs
lio_teardown
