# Case (issue 12): targets that are wrong all the time in a way the field rides
# through. iscsi-faultd's quirk scenarios lie on every PDU they concern from
# the first of the full feature phase on and never drop the connection:
#   quirk-expcmdsn       ExpCmdSN one beyond what was sent (MaxCmdSN valid)
#   quirk-statsn-repeat  every other status repeats the previous StatSN
#   quirk-ou-nonfinal    8 KiB Data-Ins, U bit + residual on all but the last
# For each, fio random read/write with crc32c verify (512 B - 1 MiB blocks,
# QD32, libaio, direct) must end with zero errors and no reconnect
# (recoveries 0, no "connection failed"), and the kernel must log the quirk
# exactly once for the session ("hostN: target quirk: ..."), nothing else.
# flat-luns: the target reports flat-space LUNs 0, 1 and 300: exactly three
# disks appear (Linux LUNs 16384, 16385, 16684; the peripheral LUN 0 says "no
# device"), each keeps its own data.
# guest-boot: 2
set -eux
. "$REPO/ktests/qemu/rs.sh"
. "$REPO/ktests/qemu/faultd.sh"
tiqn=iqn.2026-11.dev.iscsi-rs:hostile
RS_PORTAL=127.0.0.1:3262
# fio volume per scenario; mostly small blocks so a run has hundreds of commands.
FIO_SIZE=32m
insmod "$KO"
# A failed connection would be logged in again (and counted in recoveries).
rs_daemon_start

# No connection failure, no recovery, still running.
check_no_reconnect() {
    local host=$1
    if dmesg | grep "host$host: connection failed"; then
        echo "host$host: the connection failed" >&2; return 1
    fi
    [ "$(cat /sys/class/scsi_host/host$host/recoveries)" = 0 ]
    [ "$(cat /sys/class/scsi_host/host$host/session_state)" = running ]
}

# Waits for the hostile target's per-connection summary and prints N of
# "scenario SC applied N times".
quirk_count() {
    local _
    for _ in $(seq 100); do
        grep -q "scenario $1 applied [0-9]* times" /tmp/hostile.log && break
        sleep 0.1
    done
    sed -n "s/.*scenario $1 applied \([0-9]*\) times.*/\1/p" /tmp/hostile.log | tail -1
}

# scenario | the kernel's one quirk line (ERE after "hostN: target quirk: ")
while IFS='|' read -r sc want; do
    [ -n "$sc" ] || continue
    echo "=== $sc"
    dmesg -C
    fd_hostile_start $RS_PORTAL "$sc"
    host=$(rs_login -t $tiqn --replacement-timeout 20)
    dev=$(rs_disk $host)
    [ -b "/dev/$dev" ]
    start=$(rs_now)
    fio --name=quirk --filename=/dev/$dev --direct=1 --ioengine=libaio --iodepth=32 \
        --rw=randrw --bssplit=512/10:4k/30:16k/20:64k/20:256k/10:1m/10 --size=$FIO_SIZE \
        --verify=crc32c --verify_fatal=1 --do_verify=1 --randrepeat=0 \
        --output-format=json --output=/tmp/fio.json
    echo "# $sc: fio took $(awk "BEGIN{print $(rs_now) - $start}") s"
    python3 - /tmp/fio.json <<'PY'
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
r, w = job["read"], job["write"]
print(f"# fio: error {job['error']}, reads {r['total_ios']} ({r['io_bytes']} B), "
      f"writes {w['total_ios']} ({w['io_bytes']} B)")
assert job["error"] == 0, job["error"]
assert r["total_ios"] > 0 and w["total_ios"] > 0
PY
    check_no_reconnect $host
    dmesg | grep "target quirk:" || true
    [ "$(dmesg | grep -c "host$host: target quirk: ")" = 1 ]
    [ "$(dmesg | grep -c "target quirk:")" = 1 ]
    dmesg | grep -E "host$host: target quirk: $want"
    rs_remove $host
    # The target really lied all along: in hundreds of PDUs of this connection.
    n=$(quirk_count "$sc")
    echo "# $sc: the target lied in ${n:-no} PDUs"
    [ "${n:-0}" -ge 100 ]
    grep -q "scenario $sc applied first:" /tmp/hostile.log
    fd_stop
    echo "ok target quirk: $sc" >> "$OUT/subtests-quirks"
done <<'TABLE'
quirk-expcmdsn|ExpCmdSN [^ ]+ beyond the next CmdSN [^ ]+
quirk-statsn-repeat|StatSN [^ ]+ repeats or goes back \(expected [^ ]+\)
quirk-ou-nonfinal|O/U residual bits on a Data-In without status ignored
TABLE

# flat-luns: three flat-space LUNs, each its own 16 MiB RAM disk.
echo "=== flat-luns"
dmesg -C
fd_hostile_start $RS_PORTAL flat-luns --lun-size-mb 16
host=$(rs_login -t $tiqn --replacement-timeout 20)
want="$host:0:0:16384 $host:0:0:16385 $host:0:0:16684"
luns() {  # the host's H:C:T:L that have a block device, sorted by LUN
    local d
    for d in /sys/class/scsi_device/$host:*; do
        [ -e "$d" ] && ls "$d/device/block/" > /dev/null 2>&1 && echo "${d##*/}"
    done | sort -t: -k4 -n | xargs
}
for _ in $(seq 200); do
    [ "$(luns)" = "$want" ] && break
    sleep 0.1
done
# Let a late scan finish, then look again: exactly these three, no LUN 0.
sleep 2
ls /sys/class/scsi_device/ | grep "^$host:" | tee /tmp/sdevs
[ "$(luns)" = "$want" ]
[ "$(wc -l < /tmp/sdevs)" = 3 ]
disks=
for l in 16384 16385 16684; do
    d=$(ls /sys/class/scsi_device/$host:0:0:$l/device/block/)
    [ -b "/dev/$d" ]
    [ "$(cat /sys/block/$d/size)" = $((16 * 2048)) ]
    disks="$disks $d"
done
echo "# flat-luns disks:$disks"
head -c 1M /dev/zero > /tmp/zero
i=0
for d in $disks; do
    head -c 1M /dev/urandom > /tmp/pattern-$d
    dd if=/tmp/pattern-$d of=/dev/$d bs=1M seek=1 oflag=direct status=none
    # Every disk holds its own pattern, or zeros if not written yet.
    j=0
    for o in $disks; do
        dd if=/dev/$o of=/tmp/readback bs=1M skip=1 count=1 iflag=direct status=none
        if [ $j -le $i ]; then cmp /tmp/pattern-$o /tmp/readback; else cmp /tmp/zero /tmp/readback; fi
        j=$((j + 1))
    done
    i=$((i + 1))
done
check_no_reconnect $host
# (not "! dmesg | grep": set -e ignores a negated pipeline)
if dmesg | grep "target quirk:"; then
    echo "flat-luns is no quirk" >&2; exit 1
fi
rs_remove $host
fd_stop
echo "ok target quirk: flat-luns" >> "$OUT/subtests-quirks"

rs_daemon_stop
rmmod iscsi_rs
