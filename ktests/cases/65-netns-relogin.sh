# Case (issue 12): a session logged in from inside a network namespace survives a
# forced drop with a re-login in its own namespace (needs CONFIG_NET_NS and
# CONFIG_VETH in the test kernel).
#
# Set-up: LIO listens in the initial namespace on 10.99.0.1 (veth0); namespace
# t reaches it over veth1 (10.99.0.2) and runs the fault proxy on its own
# 127.0.0.1:3261. The login runs inside t against 127.0.0.1:3261, an address that
# leads nowhere from the initial namespace, where the daemon runs: only a
# re-login made inside t can reach the target.
# guest-boot: 2
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
. "$REPO/ktests/qemu/faultd.sh"
if [ ! -e /proc/self/ns/net ]; then
    echo "not ok - the guest kernel has no network namespaces (CONFIG_NET_NS)"; exit 1
fi
iqn=iqn.2026-11.dev.iscsi-rs:netns
tpg=/sys/kernel/config/target/iscsi/$iqn/tpgt_1
ip netns add t
ip link add veth0 type veth peer name veth1
ip link set veth1 netns t
ip addr add 10.99.0.1/24 dev veth0; ip link set veth0 up
ip netns exec t ip addr add 10.99.0.2/24 dev veth1
ip netns exec t ip link set veth1 up
ip netns exec t ip link set lo up
lio_setup -t $iqn -s 64 -p 10.99.0.1:3260
echo 0 > $tpg/param/DefaultTime2Wait
# The proxy runs inside t (its control socket is a path, reachable from here).
rm -f $FD_SOCK
ip netns exec t "$FAULTD" proxy --listen 127.0.0.1:3261 --target 10.99.0.1:3260 \
    --control $FD_SOCK > /tmp/proxy.log 2>&1 &
FD_PIDS=$!
for _ in $(seq 50); do [ -S $FD_SOCK ] && break; sleep 0.1; done
[ -S $FD_SOCK ]
# Precondition: from the initial namespace, 127.0.0.1:3261 leads nowhere.
if timeout 10 "$CTL" discover -p 127.0.0.1:3261 --initiator-name $RS_INAME; then
    echo "not ok - 127.0.0.1:3261 answers outside the namespace"; exit 1
fi
insmod "$KO"
rs_daemon_start
out=$(ip netns exec t "$CTL" login -p 127.0.0.1:3261 -t $iqn --initiator-name $RS_INAME \
    --param DefaultTime2Wait=0 --replacement-timeout 60)
echo "$out"
host=$(sed -n 's/.*: SCSI host \([0-9]*\)$/\1/p' <<<"$out" | head -1)
sysfs=/sys/class/scsi_host/host$host
dev=$(rs_disk $host)
[ -n "$dev" ]
fio_verify() {
    fio --name=ns --filename=/dev/$dev --direct=1 --ioengine=libaio --iodepth=32 \
        --rw=randrw --bsrange=512-1m --size=32m --verify=crc32c --verify_fatal=1 \
        --do_verify=1 --randrepeat=0 > /tmp/fio.out 2>&1 || { cat /tmp/fio.out; return 1; }
    grep -E "err= *0" /tmp/fio.out > /dev/null
}
fio_verify
rec0=$(cat $sysfs/recoveries)
# Forced drop while fio runs.
fio_verify & fio_pid=$!
sleep 2
r=$(fd_ctl drop); echo "$r"
[ "${r#ok dropped }" -gt 0 ]
wait $fio_pid
rs_wait_state $host running 60
[ "$(cat $sysfs/recoveries)" -gt "$rec0" ]
grep -q "host$host: logging in from network namespace /run/netns/t" /tmp/daemon.log
grep -q "host$host: logged in again to $iqn at 127.0.0.1:3261" /tmp/daemon.log
fio_verify
echo "session from namespace t recovered in t; fio verified before, during and after"
rs_remove $host
rs_daemon_stop
fd_stop
rmmod iscsi_rs
lio_teardown
ip netns del t
ip link del veth0 2>/dev/null || true
