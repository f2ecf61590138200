# Case (issue 15): dm-multipath over two iscsi_rs sessions to one LIO LUN.
# LIO exports one fileio backstore through two portal groups: tpgt_1 on
# 127.0.0.1:3260 (path A, direct) and tpgt_2 on 127.0.0.1:3262, reached
# through the fault-injection proxy on 127.0.0.1:3261 (path B). Both sessions
# log in with --replacement-timeout 5; both disks must report the same WWID.
# A multipath map (kernel dm-mpath, built with dmsetup: bio-based, see below;
# one round-robin group of both paths, no queue_if_no_path, so a loss of every
# path would surface as an I/O error) carries fio --verify=crc32c --verify_fatal=1 runs back to back
# while portal B goes away (`down`: its connection reset, new ones refused):
# dm must mark B failed within the replacement timeout (plus slack for TCG),
# I/O goes on over A. Then the portal returns (`up`): the recovery daemon logs
# B in again by itself. Reinstating a failed path is multipathd's job (its
# path checker sends TEST UNIT READY and reinstates on success); no multipathd
# runs here, so the case does exactly that step itself (sg_turs on B's disk,
# then `dmsetup message … reinstate_path`), and dm must show both paths
# active and I/O must flow through B again. Zero verify errors, zero I/O
# errors throughout. Prints FIGURE lines: time from the portal loss to dm
# failing the path, and from the portal's return to B logged in again.
# guest-boot: 2
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
. "$REPO/ktests/qemu/faultd.sh"
iqn=iqn.2026-11.dev.iscsi-rs:mpath
t=/sys/kernel/config/target/iscsi/$iqn
map=iscsi-rs-mpath
rtmo=5
# The backstore, with a unit serial (LIO takes it only before the first
# export) so both disks report the same NAA WWID, as multipath needs; then
# the two portal groups, each exporting it as LUN 0.
store=/sys/kernel/config/target/core/fileio_0/mpath
mkdir -p /tmp/lio "$store"
truncate -s 64M /tmp/lio/mpath.img
echo "fd_dev_name=/tmp/lio/mpath.img,fd_dev_size=$((64 << 20))" > $store/control
echo 1 > $store/enable
echo 5f0a1b2c-iscsi-rs-mpath > $store/wwn/vpd_unit_serial
for n in 1 2; do
    tpg=$t/tpgt_$n
    mkdir -p $tpg/lun/lun_0
    ln -s $store $tpg/lun/lun_0/mpath
    echo 1 > $tpg/attrib/generate_node_acls
    echo 1 > $tpg/attrib/cache_dynamic_acls
    echo 0 > $tpg/attrib/demo_mode_write_protect
    echo 0 > $tpg/attrib/authentication
    echo 0 > $tpg/param/DefaultTime2Wait
done
mkdir "$t/tpgt_1/np/127.0.0.1:3260" "$t/tpgt_2/np/127.0.0.1:3262"
echo 1 > $t/tpgt_1/enable
echo 1 > $t/tpgt_2/enable
fd_proxy_start 127.0.0.1:3261 127.0.0.1:3262

insmod "$KO"
rs_daemon_start
login_path() {  # login_path PORTAL: prints the SCSI host
    RS_PORTAL=$1 rs_login -t $iqn --param DefaultTime2Wait=0 --replacement-timeout $rtmo
}
host_a=$(login_path 127.0.0.1:3260)
host_b=$(login_path 127.0.0.1:3261)
dev_a=$(rs_disk $host_a)
dev_b=$(rs_disk $host_b)
[ -n "$dev_a" ] && [ -n "$dev_b" ] && [ "$dev_a" != "$dev_b" ]
sg_vpd -p di /dev/$dev_a || true
wwid_a=$(cat /sys/block/$dev_a/device/wwid)
[ -n "$wwid_a" ] && [ "$wwid_a" = "$(cat /sys/block/$dev_b/device/wwid)" ]
mm_a=$(cat /sys/block/$dev_a/dev)
mm_b=$(cat /sys/block/$dev_b/dev)
size=$(blockdev --getsz /dev/$dev_a)
[ "$size" = "$(blockdev --getsz /dev/$dev_b)" ]
# No udevd here: dmsetup must not wait for one; the node comes from devtmpfs.
# queue_mode bio: request-based dm-mpath (the default) inserts clones into the
# paths' queues from inside its own non-blocking dispatch (rcu_read_lock), but
# iscsi_rs hosts set queuecommand_may_block (BLK_MQ_F_BLOCKING), so the kernel
# reports "sleeping function called from invalid context" in
# blk_insert_cloned_request; bio-based dm-mpath submits to the paths as any
# other bio submitter does.
dmsetup create --noudevsync $map \
    --table "0 $size multipath 2 queue_mode bio 0 1 1 round-robin 0 2 1 $mm_a 1 $mm_b 1"
dm=$(dmsetup info -c --noheadings -o blkdevname $map)
[ -b /dev/$dm ]
stat_io() { awk '{print $1 + $5}' /sys/block/$1/stat; }  # reads + writes completed
path_state() {  # path_state MAJ:MIN: A or F, as dm's status says
    dmsetup status $map | tr ' ' '\n' | grep -A1 -x "$1" | tail -1
}
dmsetup status $map
[ "$(path_state $mm_a)" = A ] && [ "$(path_state $mm_b)" = A ]

b_start=$(stat_io $dev_b)
# fio runs back to back until /tmp/stop-fio appears; each must pass.
rm -f /tmp/stop-fio /tmp/fio-failed
(
    runs=0
    while [ ! -e /tmp/stop-fio ]; do
        runs=$((runs + 1))
        if ! fio --name=mpath --filename=/dev/$dm --direct=1 --ioengine=libaio --iodepth=16 \
            --rw=randrw --bsrange=4k-128k --size=32m --verify=crc32c --verify_fatal=1 \
            --do_verify=1 --randrepeat=0 > /tmp/fio.out 2>&1 \
            || ! grep -qE "err= *0" /tmp/fio.out; then
            cp /tmp/fio.out /tmp/fio-failed
            break
        fi
    done
    echo "fio runs: $runs"
) > /tmp/fio-loop.log 2>&1 &
fio_loop=$!

# Round-robin: B carries I/O before the loss (fio takes a while to start
# under TCG, so wait for it rather than a fixed time).
for _ in $(seq 600); do
    [ "$(stat_io $dev_b)" -gt "$b_start" ] && break
    [ -e /tmp/fio-failed ] && break
    sleep 0.1
done
[ "$(stat_io $dev_b)" -gt "$b_start" ]
sleep 2
t_down=$(rs_now)
fd_ctl down
for _ in $(seq $(((rtmo + 25) * 10))); do
    [ "$(path_state $mm_b)" = F ] && break
    [ -e /tmp/fio-failed ] && break
    sleep 0.1
done
t_failed=$(rs_now)
dmsetup status $map
[ "$(path_state $mm_b)" = F ]
[ "$(path_state $mm_a)" = A ]
fail_s=$(awk "BEGIN{print $t_failed - $t_down}")
echo "FIGURE portal-loss-to-path-failed-s $fail_s (replacement timeout $rtmo s)"
awk "BEGIN{exit !($fail_s <= $rtmo + 15)}"
# I/O goes on over A alone for a while.
a0=$(stat_io $dev_a)
sleep 8
[ "$(stat_io $dev_a)" -gt "$a0" ]
[ ! -e /tmp/fio-failed ]

# The portal returns: the daemon logs B in again on its own.
t_up=$(rs_now)
fd_ctl up
rs_wait_state $host_b running 90
echo "FIGURE portal-return-to-session-running-s $(awk "BEGIN{print $(rs_now) - $t_up}")"
grep "host$host_b: logged in again" /tmp/daemon.log
# multipathd's checker step: TEST UNIT READY on the path, then reinstate it.
sg_turs /dev/$dev_b
dmsetup message $map 0 reinstate_path $mm_b
dmsetup status $map
[ "$(path_state $mm_b)" = A ] && [ "$(path_state $mm_a)" = A ]
b0=$(stat_io $dev_b)
sleep 8
[ "$(stat_io $dev_b)" -gt "$b0" ]   # B carries I/O again

touch /tmp/stop-fio
wait $fio_loop || true
cat /tmp/fio-loop.log
if [ -e /tmp/fio-failed ]; then cat /tmp/fio-failed; exit 1; fi
grep -q "fio runs: " /tmp/fio-loop.log
cat /tmp/fio.out | grep -E "err=|verify" || true
fd_ctl stats
dmsetup remove $map
rs_remove $host_b
rs_remove $host_a
rs_daemon_stop
fd_stop
rmmod iscsi_rs
lio_teardown
