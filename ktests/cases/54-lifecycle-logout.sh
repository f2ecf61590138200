# Case (issue 11): logouts that race connection failures. Each part once
# reached freed memory (scsi_host_block on a removed host from the session's
# watchdog) before the host link became revocable:
#   A. reject-storm: a target that rejects every command, ping and TMF; three
#      1 MiB direct reads end in EIO, then an immediate logout (20 times, four
#      sessions at a time, each to a hostile target of its own: each logout
#      waits ~6 s for the closed-window rule to fail the connection);
#   B. a logout 0-50 ms after the connection failed (fault proxy `drop` in
#      front of LIO, the daemon running), 50 times;
#   C. a target that closes the connection right after its Logout Response,
#      50 logouts (two sessions at a time).
# After all of it no session is left and the module unloads. The harness fails
# the case on any KASAN, lockdep, kmemleak, hung-task or WARN report. The
# LIFECYCLE_* variables change the counts (a soak).
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
. "$REPO/ktests/qemu/faultd.sh"
storms=${LIFECYCLE_STORMS:-20}
drops=${LIFECYCLE_DROPS:-50}
closes=${LIFECYCLE_CLOSES:-50}
hiqn=iqn.2026-11.dev.iscsi-rs:hostile
insmod "$KO"

# A: reject storm, then logout at once. storm PORT: one session to a hostile
# target of its own on PORT (a subshell: its own RS_PORTAL and target).
storm() {
    local FD_HOSTILE_LOG=/tmp/hostile-$1.log host dev pids= failed=0 j p
    RS_PORTAL=127.0.0.1:$1
    fd_hostile_start $RS_PORTAL reject-storm
    host=$(rs_login -t $hiqn --replacement-timeout 30 --noop-interval 1 --noop-timeout 2)
    dev=$(rs_disk $host)
    [ -n "$dev" ]
    echo 3 > /sys/block/$dev/device/timeout
    for j in 1 2 3; do
        timeout 300 dd if=/dev/$dev of=/dev/null bs=1M count=1 skip=$((j * 8)) \
            iflag=direct status=none 2> /tmp/dd.$1.$j &
        pids="$pids $!"
    done
    for p in $pids; do wait $p || failed=$((failed + 1)); done
    # Each read ends in an error (EIO), never in data or a hang.
    [ $failed = 3 ]
    grep -q "scenario reject-storm triggered" $FD_HOSTILE_LOG
    rs_remove $host || true
    rs_gone $host
    fd_stop
}
# side_by_side COUNT FUNC PORT...: COUNT runs of FUNC PORT, one per PORT at a
# time (each in a subshell); fails if any run failed.
side_by_side() {
    local count=$1 fn=$2 i port pids p
    shift 2
    for ((i = 0; i < count; )); do
        pids=
        for port in "$@"; do
            ((i < count)) || break
            ( "$fn" "$port" ) &
            pids="$pids $!"
            i=$((i + 1))
        done
        for p in $pids; do wait $p; done
    done
}
side_by_side $storms storm 3262 3264 3265 3266
echo "ok lifecycle: reject-storm x$storms" >> "$OUT/subtests-lifecycle"

# B: logout 0-50 ms after a connection failure.
lio_setup -s 16
RS_PORTAL=127.0.0.1:3263
fd_proxy_start $RS_PORTAL 127.0.0.1:3260
rs_daemon_start
iqn=$LIO_IQN_DEFAULT
for i in $(seq $drops); do
    host=$(rs_login -t $iqn --replacement-timeout 30)
    dev=$(rs_disk $host)
    [ -n "$dev" ]
    dd if=/dev/$dev of=/dev/null bs=64k count=16 iflag=direct status=none
    # Half the time with I/O in flight when the connection drops.
    io=
    if [ $((i % 2)) = 0 ]; then
        dd if=/dev/$dev of=/dev/null bs=64k count=256 iflag=direct status=none 2>/dev/null &
        io=$!
    fi
    # rs_nap, not sleep: an exec alone takes longer than 50 ms here.
    printf -v delay '0.0%02d' $((RANDOM % 51))
    fd_ctl drop
    rs_nap "$delay"
    rs_remove $host || true
    rs_gone $host
    [ -z "$io" ] || { timeout 120 tail --pid=$io -f /dev/null; wait $io || true; }
done
rs_daemon_stop
fd_stop
echo "ok lifecycle: logout after failure x$drops" >> "$OUT/subtests-lifecycle"

# C: the target closes right after its Logout Response; two sessions at a
# time, each to a target of its own (started once).
close_one() {
    local host dev
    RS_PORTAL=127.0.0.1:$1
    host=$(rs_login -t $hiqn)
    dev=$(rs_disk $host)
    [ -n "$dev" ]
    dd if=/dev/$dev of=/dev/null bs=64k count=4 iflag=direct status=none
    # The target answered the Logout: confirmed, however fast it closed.
    rs_remove $host
    rs_gone $host
}
dmesg -C
FD_HOSTILE_LOG=/tmp/hostile-3262.log fd_hostile_start 127.0.0.1:3262 logout-close
FD_HOSTILE_LOG=/tmp/hostile-3264.log fd_hostile_start 127.0.0.1:3264 logout-close
side_by_side $closes close_one 3262 3264
fd_stop
! dmesg | grep -q "logout not confirmed" || exit 1
echo "ok lifecycle: logout-close x$closes" >> "$OUT/subtests-lifecycle"

[ -z "$("$CTL" list 2>/dev/null | grep '^host')" ]
rmmod iscsi_rs
lio_teardown
