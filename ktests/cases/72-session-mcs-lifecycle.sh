# Case (issue 16): multi-connection sessions meet logouts, failures,
# reinstatement and module unload at the worst moments. 4-connection sessions
# to LIO, fio on all four lanes:
#   A. logout while fio runs (x3): fio ends, the session is gone at both ends;
#   B. one connection cut, then a logout 0-50 ms or 0.1-0.4 s later while the
#      daemon waits to reinstate the session, and the next round's login (same
#      path, so same ISID: a reinstatement at LIO) right after (x6). LIO
#      oopses in iscsit_stop_session when that login comes while it still
#      closes two or more of the old connections; the logout returns only
#      once the target closed them all, which dmesg says;
#   C. connections cut again and again at random moments under fio verify, so
#      failures meet reinstatements half done (ADD_CONNECTION racing a failure
#      of another lane, the daemon's login racing LIO's closes): the session
#      comes back, verify passes;
#   D. rmmod with one 4-connection session running (a second target) and
#      another recovering from a cut connection, no daemon: both gone at both
#      ends, the module unloaded.
# The harness fails the case on any KASAN, lockdep, kmemleak, hung-task or
# WARN report.
# guest-cpus: 4
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
. "$REPO/ktests/qemu/faultd.sh"
iqn=iqn.2026-12.dev.iscsi-rs:mcs-life
lio_setup -t $iqn -s 128
echo 4 > $LIO/iscsi/$iqn/tpgt_1/param/MaxConnections
insmod "$KO"
cpus=$(nproc)
[ "$cpus" -ge 4 ] || { echo "needs a guest with 4 vCPUs (GUEST_CPUS=4)" >&2; exit 1; }

# fio on /dev/$1, 4 jobs pinned over the CPUs (so over the lanes), in the
# background; $2: how long or what. Sets FIO. It must not create a regular file
# in the disk's place once the disk is gone (a later disk of that name would
# get no device node).
life_fio() {
    fio --name=life --filename=/dev/$1 --direct=1 --ioengine=libaio --iodepth=16 \
        --rw=randrw --bsrange=4k-256k --size=24m --numjobs=4 --offset_increment=24m \
        --cpus_allowed=0-$((cpus - 1)) --cpus_allowed_policy=split --allow_file_create=0 \
        --group_reporting --output-format=terse $2 > /tmp/fio.out 2>&1 &
    FIO=$!
}

# Waits for fio (it may fail: its disk went away), at most 120 s.
fio_end() {
    timeout 120 tail --pid=$FIO -f /dev/null
    wait $FIO || true
}

# A: logout under I/O on every lane.
for i in 1 2 3; do
    host=$(rs_login -t $iqn --connections 4)
    "$CTL" list | grep -q "^host$host .* connections=4/4 "
    dev=$(rs_disk $host)
    life_fio $dev "--time_based --runtime=30"
    sleep "$((i - 1)).$((RANDOM % 10))"
    rs_remove $host
    rs_gone $host
    fio_end
    rs_target_gone $iqn
done
echo "ok mcs-lifecycle: logout under I/O x3" >> "$OUT/subtests-mcs-lifecycle"

# B: a logout racing the reinstatement of a 4-connection session, and the
# next login on the same path right after it.
RS_PORTAL=127.0.0.1:3261
fd_proxy_start $RS_PORTAL 127.0.0.1:3260
rs_daemon_start
dmesg -C
for i in $(seq 6); do
    host=$(rs_login -t $iqn --connections 4 --replacement-timeout 30)
    "$CTL" list | grep -q "^host$host .* connections=4/4 "
    dev=$(rs_disk $host)
    life_fio $dev "--time_based --runtime=30"
    sleep 1
    fd_ctl drop-one | grep -q "^ok dropped 1"
    if [ $((i % 2)) = 0 ]; then
        sleep "0.0$(printf %02d $((RANDOM % 51)))"
    else
        sleep "0.$((1 + RANDOM % 4))"
    fi
    rs_remove $host || true
    rs_gone $host
    fio_end
done
# The logouts waited for the target's closes (the line is logged only when
# some connection was still open at the close).
dmesg | grep "target closed the session's connections within" >&2
echo "ok mcs-lifecycle: logout racing reinstatement, login right after x6" >> "$OUT/subtests-mcs-lifecycle"

# C: failures meeting reinstatements half done, under fio verify. With
# DefaultTime2Wait 0 the daemon logs in again at once, while LIO still closes
# the old connections (the kernel's, or those of a re-login cut before all
# were handed over): it must wait for their closes first.
echo 0 > $LIO/iscsi/$iqn/tpgt_1/param/DefaultTime2Wait
host=$(rs_login -t $iqn --connections 4 --replacement-timeout 60 --param DefaultTime2Wait=0)
dev=$(rs_disk $host)
"$CTL" list | grep -q "^host$host .* connections=4/4 "
life_fio $dev "--verify=crc32c --verify_fatal=1 --do_verify=1 --randrepeat=0"
sleep 2
cuts=0
for i in $(seq 8); do
    if fd_ctl drop-one | grep -q "^ok dropped 1"; then cuts=$((cuts + 1)); fi
    sleep "0.$(printf %03d $((RANDOM % 600)))"
done
[ $cuts -ge 1 ]
wait $FIO
rs_wait_state $host running 60
recoveries=$(cat /sys/class/scsi_host/host$host/recoveries)
[ "$recoveries" -ge 1 ]
# Whatever the cuts left, the session runs on at least its leading connection
# and every lane it lists as up carries I/O.
"$CTL" list | tee /tmp/list.out >&2
grep -q "^host$host .* connections=[1-4]/4 " /tmp/list.out
dd if=/dev/$dev of=/dev/null bs=1M count=16 iflag=direct status=none
grep "closed the old connections after" /tmp/daemon.log >&2
echo "ok mcs-lifecycle: $cuts cuts, $recoveries reinstatements, verify clean" >> "$OUT/subtests-mcs-lifecycle"
rs_remove $host
rs_gone $host
rs_daemon_stop

# D: rmmod with one 4-connection session running (on a second target) and one
# recovering (a connection cut, no daemon to log it in again).
iqn2=iqn.2026-12.dev.iscsi-rs:mcs-life2
lio_setup -t $iqn2 -s 16
echo 4 > $LIO/iscsi/$iqn2/tpgt_1/param/MaxConnections
ha=$(RS_PORTAL=127.0.0.1:3260 rs_login -t $iqn2 --connections 4)
hb=$(rs_login -t $iqn --connections 4 --replacement-timeout 60)
for h in $ha $hb; do
    d=$(rs_disk $h)
    [ -n "$d" ]
    dd if=/dev/$d of=/dev/null bs=256k count=32 iflag=direct status=none
done
fd_ctl drop-one | grep -q "^ok dropped 1"
sleep "0.$(printf %03d $((RANDOM % 300)))"
rmmod iscsi_rs
fd_stop
! test -e /sys/class/scsi_host/host$ha || exit 1
! test -e /sys/class/scsi_host/host$hb || exit 1
for t in $iqn $iqn2; do rs_target_gone $t 10 || exit 1; done
echo "ok mcs-lifecycle: rmmod with a running and a recovering session" >> "$OUT/subtests-mcs-lifecycle"
lio_teardown
