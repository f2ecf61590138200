# Issue 16: multiple connections per session (MC/S), one per blk-mq hardware
# queue. Sessions with 2 and 4 connections to LIO (MaxConnections raised on the
# TPG): iscsictl list shows them, LIO's configfs shows one session with that
# many connections, the disk has that many hardware queues, and fio randrw with
# crc32c verify, 4 jobs pinned over the CPUs, 64 MiB each, passes with every
# lane that has CPUs carrying commands. Then one connection of a 4-connection
# session is cut by the fault proxy under that fio: one reinstatement brings
# all 4 back and verify passes. A target answering MaxConnections=1 gets a
# single-connection session with no error. Last, 4 connections to istgt
# (MaxConnections 4 in its configuration).
# guest-cpus: 4
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
. "$REPO/ktests/qemu/faultd.sh"
. "$REPO/ktests/qemu/istgt.sh"
iqn=iqn.2026-12.dev.iscsi-rs:mcs
lio_setup -t $iqn -s 256
tpg=$LIO/iscsi/$iqn/tpgt_1
echo 4 > $tpg/param/MaxConnections
# An explicit ACL for our initiator: its `info` lists the session's connections.
acl=$tpg/acls/$RS_INAME
mkdir -p $acl/lun_0
ln -s $tpg/lun/lun_0 $acl/lun_0/lun0
insmod "$KO"
cpus=$(nproc)
# Four connections spread only over four CPUs (one hardware queue per CPU).
[ "$cpus" -ge 4 ] || { echo "needs a guest with 4 vCPUs (GUEST_CPUS=4)" >&2; exit 1; }

# fio over /dev/$1: 4 jobs, each on its own 64 MiB and pinned to a CPU in turn.
mcs_fio() {
    fio --name=mcs --filename=/dev/$1 --direct=1 --ioengine=libaio --iodepth=16 \
        --rw=randrw --bsrange=4k-512k --size=64m --numjobs=4 --offset_increment=64m \
        --cpus_allowed=0-$((cpus - 1)) --cpus_allowed_policy=split \
        --verify=crc32c --verify_fatal=1 --do_verify=1 --randrepeat=0 \
        --group_reporting --output-format=terse > /tmp/fio.out
}

# Prints "lane:ExpStatSN" for each connection of host $1 that is up.
mcs_lanes() {
    "$CTL" list --json | python3 -c '
import json, sys
host = int(sys.argv[1])
for s in json.load(sys.stdin)["sessions"]:
    if s["host"] == host:
        for c in s.get("connections", []):
            if c["state"] == "up":
                print("%d:%d" % (c["lane"], c["exp_stat_sn"]))
' "$1"
}

# Checks host $1 (disk $2) runs $3 connections, seen from both ends.
mcs_check() {
    local host=$1 dev=$2 n=$3
    "$CTL" list | tee /tmp/list.out >&2
    grep -q "^host$host .* connections=$n/$n " /tmp/list.out
    [ "$(mcs_lanes $host | wc -l)" = "$n" ]
    cat $acl/info >&2
    [ "$(grep -c 'LIO Session ID' $acl/info)" = 1 ]
    [ "$(grep -c 'CID:' $acl/info)" = "$n" ]
    # blk-mq makes at most one hardware queue per CPU: lanes beyond carry
    # nothing (the guest's CPUs bound what a case can spread).
    [ "$(ls /sys/block/$dev/mq | wc -l)" = "$((n < cpus ? n : cpus))" ]
}

# Every hardware queue of disk $2 with CPUs mapped carried commands on its
# lane of host $1: that lane's ExpStatSN moved from what $3 recorded.
mcs_spread() {
    local host=$1 dev=$2 before=$3 q moved=0
    mcs_lanes $host > /tmp/lanes.after
    for q in /sys/block/$dev/mq/*; do
        [ -n "$(cat $q/cpu_list)" ] || continue
        q=${q##*/}
        if grep -qx "$q:.*" /tmp/lanes.after && ! grep -qxF "$(grep -x "$q:.*" /tmp/lanes.after)" "$before"; then
            moved=$((moved + 1))
        else
            echo "lane $q (CPUs $(cat /sys/block/$dev/mq/$q/cpu_list)) carried nothing" >&2
            return 1
        fi
    done
    [ $moved -ge 2 ]
}

for n in 2 4; do
    host=$(rs_login -t $iqn --connections $n)
    dev=$(rs_disk $host)
    mcs_check $host $dev $n
    mcs_lanes $host > /tmp/lanes.before
    mcs_fio $dev
    mcs_spread $host $dev /tmp/lanes.before
    rs_ran_clean $host $dev
    rs_remove $host
    ! rs_target_has_session $iqn
done

# One connection of four cut under fio: the session is reinstated whole.
fd_proxy_start 127.0.0.1:3261 127.0.0.1:3260
rs_daemon_start
host=$(RS_PORTAL=127.0.0.1:3261 rs_login -t $iqn --connections 4)
dev=$(rs_disk $host)
mcs_check $host $dev 4
mcs_fio $dev &
fio_pid=$!
sleep 5
fd_ctl drop-one | grep -q "^ok dropped 1"
wait $fio_pid
[ "$(cat /sys/class/scsi_host/host$host/recoveries)" = 1 ]
for _ in $(seq 100); do
    "$CTL" list | grep -q "^host$host .* connections=4/4 " && break
    sleep 0.2
done
mcs_check $host $dev 4
grep -q "4 of 4 connections" /tmp/daemon.log || { cat /tmp/daemon.log >&2; false; }
rs_remove $host
rs_daemon_stop
fd_stop

# A target that allows one connection: one, and no error.
echo 1 > $tpg/param/MaxConnections
host=$(rs_login -t $iqn --connections 4)
dev=$(rs_disk $host)
"$CTL" list | tee /tmp/list.out >&2
! grep -q "^host$host .* connections=" /tmp/list.out
[ "$(grep -c 'CID:' $acl/info)" = 1 ]
[ "$(ls /sys/block/$dev/mq | wc -l)" = 1 ]
fio --name=one --filename=/dev/$dev --direct=1 --ioengine=libaio --iodepth=8 \
    --rw=randrw --bs=64k --size=16m --verify=crc32c --verify_fatal=1 \
    --output-format=terse > /tmp/fio.out
rs_remove $host
rm $acl/lun_0/lun0
rmdir $acl/lun_0 $acl
lio_teardown

# istgt, MaxConnections 4.
istgt_lu -t $iqn -s 256
istgt_start 127.0.0.1:3260
host=$(rs_login -t $iqn --connections 4)
dev=$(rs_disk $host)
"$CTL" list | tee /tmp/list.out >&2
grep -q "^host$host .* connections=4/4 " /tmp/list.out
mcs_lanes $host > /tmp/lanes.before
mcs_fio $dev
mcs_spread $host $dev /tmp/lanes.before
rs_ran_clean $host $dev
rs_remove $host
istgt_stop
rmmod iscsi_rs
