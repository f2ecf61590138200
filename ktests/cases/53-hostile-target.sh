# Case (issue 6, issue 12): a hostile target. iscsi-faultd logs in properly,
# serves a RAM disk, and answers the first read (or write) at LBA >= 1000 with
# one kind of malformed PDU. A row of the table says what must follow:
# - fail: a connection failure with a log line naming the violation, then a
#   relogin by the daemon (recoveries >= 1), after which the retried command is
#   served correctly;
# - quirk: a target quirk the initiator rides through (issue 12): the kernel
#   logs "hostN: target quirk: ..." once, the connection stays (recoveries 0,
#   no "connection failed"), and the command completes, or (sense-overflow)
#   fails alone and the midlayer's retry is served.
# Either way the data read back is exactly what was written (never bytes the
# target did not send). The harness fails the case on any oops, KASAN, lockdep
# or kmemleak report. A login with garbage keys is refused by iscsictl (exit 7).
set -eux
. "$REPO/ktests/qemu/rs.sh"
. "$REPO/ktests/qemu/faultd.sh"
tiqn=iqn.2026-11.dev.iscsi-rs:hostile
RS_PORTAL=127.0.0.1:3262
insmod "$KO"
rs_daemon_start
# scenario | read or write | fail or quirk | what the log line must name (ERE)
while IFS='|' read -r sc dir outcome want; do
    [ -n "$sc" ] || continue
    echo "=== $sc ($outcome)"
    dmesg -C
    fd_hostile_start $RS_PORTAL "$sc"
    host=$(rs_login -t $tiqn --replacement-timeout 30)
    dev=$(rs_disk $host)
    head -c 64k /dev/urandom > /tmp/pattern
    # The write triggers the write scenarios, the read the read ones.
    dd if=/tmp/pattern of=/dev/$dev bs=64k seek=$((1000 * 512)) oflag=seek_bytes,direct status=none
    dd if=/dev/$dev of=/tmp/readback bs=64k count=1 skip=$((1000 * 512)) \
        iflag=skip_bytes,direct status=none
    cmp /tmp/pattern /tmp/readback
    # Set off by the command the row names (READ or WRITE).
    grep -E "scenario $sc triggered on ITT [^ ]+ \(${dir^^} LBA" /tmp/hostile.log
    sysfs=/sys/class/scsi_host/host$host
    case $outcome in
    fail)
        dmesg | grep -E "host$host: connection failed: .*$want"
        rs_wait_state $host running 30
        [ "$(cat $sysfs/recoveries)" -ge 1 ]
        ;;
    quirk)
        dmesg | grep "target quirk:" || true
        # Logged once per session.
        [ "$(dmesg | grep -cE "host$host: target quirk: $want")" = 1 ]
        if dmesg | grep "host$host: connection failed"; then
            echo "$sc: the connection failed" >&2; exit 1
        fi
        [ "$(cat $sysfs/recoveries)" = 0 ]
        [ "$(cat $sysfs/session_state)" = running ]
        ;;
    *) echo "bad outcome $outcome" >&2; exit 1 ;;
    esac
    rs_remove $host
    fd_stop
    echo "ok hostile: $sc ($outcome)" >> "$OUT/subtests-hostile"
done <<'TABLE'
dsl-too-long|read|fail|framing violation
datain-offset|read|fail|Data-In ITT .* at offset
datain-overrun|read|fail|(beyond the|Data-In ITT .* at offset)
datain-unknown-itt|read|fail|Data-In for unknown ITT
r2t-beyond|write|fail|R2T ITT .* asks for
r2t-zero|write|fail|asks for 0 bytes
statsn-backwards|read|quirk|StatSN [^ ]+ repeats or goes back \(expected [^ ]+\)
expcmdsn-ahead|read|quirk|ExpCmdSN [^ ]+ beyond the next CmdSN [^ ]+
window-absurd|read|quirk|invalid command window ExpCmdSN [^ ]+ MaxCmdSN [^ ]+ ignored
sense-overflow|read|quirk|SenseLength [^ ]+ exceeds the [^ ]+-byte data segment
ahs-overflow|read|fail|framing violation
unknown-opcode|read|fail|(framing violation|unexpected PDU opcode)
async-logout|read|fail|logged out at the target's request; reconnecting
async-drop|read|fail|the target dropped the connection \(Async Message\)
async-renegotiate|read|fail|the target asks to renegotiate parameters
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
