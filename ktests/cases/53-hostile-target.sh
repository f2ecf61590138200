# Case (issue 6): a hostile target. iscsi-faultd logs in properly, serves a
# RAM disk, and answers the first read (or write) at LBA >= 1000 with one kind of
# malformed PDU. Each must end in a connection failure with a log line naming
# the violation, then a relogin by the daemon, after which the retried command
# is served correctly: the data read back is exactly what was written (never
# bytes the target did not send). The harness fails the case on any oops,
# KASAN, lockdep or kmemleak report. A login with garbage keys is refused by
# iscsictl (exit 7).
set -eux
. "$REPO/ktests/qemu/rs.sh"
. "$REPO/ktests/qemu/faultd.sh"
tiqn=iqn.2026-11.dev.iscsi-rs:hostile
RS_PORTAL=127.0.0.1:3262
insmod "$KO"
rs_daemon_start
# scenario | read or write | what the log must name
while IFS='|' read -r sc dir want; do
    [ -n "$sc" ] || continue
    echo "=== $sc"
    dmesg -C
    fd_hostile_start $RS_PORTAL "$sc"
    host=$(rs_login -t $tiqn --replacement-timeout 30)
    dev=$(rs_disk $host)
    head -c 64k /dev/urandom > /tmp/pattern
    if [ "$dir" = read ]; then
        dd if=/tmp/pattern of=/dev/$dev bs=64k seek=$((1000 * 512)) oflag=seek_bytes,direct status=none
        dd if=/dev/$dev of=/tmp/readback bs=64k count=1 skip=$((1000 * 512)) \
            iflag=skip_bytes,direct status=none
    else
        dd if=/tmp/pattern of=/dev/$dev bs=64k seek=$((1000 * 512)) \
            oflag=seek_bytes,direct status=none
        dd if=/dev/$dev of=/tmp/readback bs=64k count=1 skip=$((1000 * 512)) \
            iflag=skip_bytes,direct status=none
    fi
    cmp /tmp/pattern /tmp/readback
    grep -q "scenario $sc triggered" /tmp/hostile.log
    dmesg | grep -E "host$host: connection failed: .*$want"
    rs_wait_state $host running 30
    [ "$(cat /sys/class/scsi_host/host$host/recoveries)" -ge 1 ]
    rs_remove $host
    fd_stop
    echo "ok hostile: $sc" >> "$OUT/subtests-hostile"
done <<'TABLE'
dsl-too-long|read|framing violation
datain-offset|read|Data-In ITT .* at offset
datain-overrun|read|(beyond the|Data-In ITT .* at offset)
datain-unknown-itt|read|Data-In for unknown ITT
r2t-beyond|write|R2T ITT .* asks for
r2t-zero|write|asks for 0 bytes
statsn-backwards|read|StatSN .* went backwards
expcmdsn-ahead|read|acknowledges commands never sent
window-absurd|read|invalid command window
sense-overflow|read|malformed PDU
ahs-overflow|read|framing violation
unknown-opcode|read|(framing violation|unexpected PDU opcode)
TABLE

fd_hostile_start $RS_PORTAL login-garbage
rc=0
"$CTL" login -p $RS_PORTAL -t $tiqn --initiator-name $RS_INAME > /tmp/login.out 2>&1 || rc=$?
cat /tmp/login.out
[ $rc = 7 ]
grep -q "protocol violation" /tmp/login.out
fd_stop
echo "ok hostile: login-garbage" >> "$OUT/subtests-hostile"
rs_daemon_stop
rmmod iscsi_rs
