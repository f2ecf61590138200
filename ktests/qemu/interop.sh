# Shared body of the interop cases (issue 12: ktests/cases/6x-interop-*.sh), so
# every target gets the same checks, written once. The case defines, then
# sources this file:
#   IOP_NAME    short target name (lio, tgt, istgt): names the IQNs, the
#               subtests file ($OUT/subtests-interop-$IOP_NAME) and the log lines
#   IOP_LUN     the LUN of each target's disk (tgt: 1, its LUN 0 is a controller)
#   iop_start   starts the target (127.0.0.1:3260) with three targets:
#                 $IOP_PLAIN   no auth, a $IOP_SIZE MiB disk, CRC32C or None
#                              digests at the initiator's choice
#                 $IOP_CHAP    one-way CHAP: the initiator is $IOP_USER/$IOP_SECRET
#                 $IOP_MUTUAL  mutual CHAP: the initiator is $IOP_MUSER/$IOP_MSECRET,
#                              the target proves $IOP_TUSER/$IOP_TSECRET
#   iop_stop    stops it
#   IOP_NOCHAP_RC, IOP_NOCHAP_RE (optional): iscsictl's exit code and an output
#               regex for a login without credentials to the CHAP target
#               (default 5 and "authentication": a Login Response 0x0201);
#               iop_nochap_check (optional) checks the target's side of it
# Steps, each one subtest (a failed step does not stop the later ones; steps
# that need a session fail when it is missing):
#   discovery lists the three targets; CHAP: a login without credentials and one
#   with a wrong secret are refused (so the target really checks), the
#   right one logs in and 1 MiB written reads back equal; mutual CHAP: a target
#   proving a wrong secret is refused, the right one logs in, same I/O. Then on
#   the plain target, three sessions in turn: (1) no digests: fio
#   --verify=crc32c --verify_fatal=1 random read/write, 512 B-1 MiB blocks, QD32,
#   64 MiB; mkfs.ext4, files, umount, fsck.ext4 -f -n clean; (2) CRC32C header
#   and data digests: session 1's files read back equal, then the same fio and
#   ext4; (3) no digests: session 2's files read back equal. Every session checks
#   in sysfs that it negotiated the digests it asked for, and after its I/O that
#   its connection never failed (state running, 0 recoveries, no "connection
#   failed" in the kernel log; no iscsictl daemon runs, so a failure cannot be
#   papered over by a relogin). Then a session pings every connection every
#   second under fio (pinned to CPU 0): no connection fails, and each answers a
#   ping once the I/O stops. Each logout must remove the SCSI host and be
#   confirmed by the target, and at the end no TCP connection to the portal may
#   remain. "target quirk" lines the kernel logs are shown, not failed. Last, a
#   session through the fault proxy, with the daemon, has a connection cut
#   under fio verify and comes back whole (a reinstatement at that target).
# A capture from the CHAP session to the first data session's fio: boot with
# KTEST_APPEND=iscsirs.pcap=1; the case then runs dumpcap on lo and prints what
# ktests/qemu/pdutrace.py finds in it (the PDUs before the first target PDU
# whose ExpCmdSN is beyond the initiator's next CmdSN) into its log.
set -u
. "$REPO/ktests/qemu/rs.sh"
IOP_PLAIN=iqn.2026-11.dev.iscsi-rs:$IOP_NAME-plain
IOP_CHAP=iqn.2026-11.dev.iscsi-rs:$IOP_NAME-chap
IOP_MUTUAL=iqn.2026-11.dev.iscsi-rs:$IOP_NAME-mutual
IOP_SIZE=64
IOP_USER=rs-user IOP_SECRET=rs-secret-0123456
IOP_MUSER=rs-muser IOP_MSECRET=rs-msecret-0123456
IOP_TUSER=rs-target IOP_TSECRET=rs-tsecret-0123456
iop_sub=$OUT/subtests-interop-$IOP_NAME
iop_fails=0
iop_pcap=0
grep -qw iscsirs.pcap=1 /proc/cmdline && iop_pcap=1

# step NAME FUNCTION [ARGS...]: runs FUNCTION in a subshell with errexit (so any
# failing command fails the step), records the outcome and the time taken.
step() {
    local name=$1 t0 rc; shift
    t0=$(rs_now)
    echo "=== $IOP_NAME: $name"
    set +e
    ( set -eux; "$@" )
    rc=$?
    set -e
    if [ $rc = 0 ]; then
        echo "ok interop-$IOP_NAME: $name" >> "$iop_sub"
    else
        echo "not ok interop-$IOP_NAME: $name" >> "$iop_sub"
        iop_fails=$((iop_fails + 1))
    fi
    echo "# $IOP_NAME: $name: $([ $rc = 0 ] && echo ok || echo "FAILED (rc $rc)") after $(awk "BEGIN{print $(rs_now) - $t0}") s"
}

secret_file() {  # secret_file PATH SECRET: a 0600 file iscsictl accepts
    install -m 600 /dev/null "$1"
    printf '%s\n' "$2" > "$1"
}

# Prints the block device of HOST's LUN IOP_LUN, waiting up to 20 s for the scan.
iop_disk() {
    local d= _
    for _ in $(seq 200); do
        d=$(ls "/sys/class/scsi_host/host$1/device/target$1:0:0/$1:0:0:$IOP_LUN/block/" 2>/dev/null | head -1)
        [ -n "$d" ] && [ -b "/dev/$d" ] && { echo "$d"; return 0; }
        sleep 0.1
    done
    echo "iop_disk: host$1 has no disk on LUN $IOP_LUN" >&2
    return 1
}

# The session of the running round: SCSI host number and disk.
iop_host() { cat /tmp/iop.host; }
iop_dev() { cat /tmp/iop.dev; }

# iop_login IQN [iscsictl login flags...]: logs in through the kernel, finds the
# disk. A short replacement timeout: a connection that fails fails the I/O
# quickly instead of holding it for 120 s.
iop_login() {
    local iqn=$1 host dev; shift
    rm -f /tmp/iop.host /tmp/iop.dev
    # SCSI host numbers are reused: the session's kernel log starts here.
    rs_now > /tmp/iop.since
    host=$(rs_login -t "$iqn" --replacement-timeout 10 "$@")
    [ -n "$host" ]
    echo "$host" > /tmp/iop.host
    dev=$(iop_disk "$host")
    echo "$dev" > /tmp/iop.dev
    local s=/sys/class/scsi_host/host$host a v
    for a in header_digest data_digest max_recv_data_segment_length \
             max_xmit_data_segment_length first_burst_length max_burst_length \
             initial_r2t immediate_data max_outstanding_r2t; do
        read -r v < $s/$a
        echo "negotiated $a = $v"
    done
}

# iop_digests WANT: the session negotiated WANT (None or CRC32C) for both digests.
iop_digests() {
    local s=/sys/class/scsi_host/host$(iop_host)
    [ "$(cat $s/header_digest)" = "$1" ]
    [ "$(cat $s/data_digest)" = "$1" ]
}

# iop_klog HOST: the kernel log lines about HOST since the session's login.
iop_klog() {
    dmesg | awk -v since="$(cat /tmp/iop.since)" -v h="host$1:" '
        match($0, /^\[ *[0-9]+\.[0-9]+\]/) {
            t = substr($0, 2, RLENGTH - 2) + 0
            if (t >= since && index($0, h)) print
        }'
}

# The session's connection never failed: running, no recovery, no log line.
iop_healthy() {
    local host s
    host=$(iop_host)
    s=/sys/class/scsi_host/host$host
    [ "$(cat $s/session_state)" = running ]
    [ "$(cat $s/recoveries)" = 0 ]
    if iop_klog "$host" | grep -E "connection failed"; then return 1; fi
}

# iop_logout: logs the round's session out; its SCSI host must be gone, the
# target must have confirmed the Logout and the connection never failed.
iop_logout() {
    local host
    host=$(iop_host)
    rm -f /tmp/iop.host /tmp/iop.dev
    rs_remove "$host"
    [ ! -e "/sys/class/scsi_host/host$host" ]
    iop_klog "$host"
    if iop_klog "$host" | grep -E "connection failed|logout not confirmed"; then return 1; fi
}

# iop_refused RC REGEX IQN [flags...]: iscsictl login must fail with exit RC
# and say something matching REGEX; no SCSI host may appear.
iop_refused() {
    local want=$1 re=$2 iqn=$3 rc=0; shift 3
    "$CTL" login -p "$RS_PORTAL" -t "$iqn" --initiator-name "$RS_INAME" "$@" > /tmp/iop.out 2>&1 || rc=$?
    cat /tmp/iop.out
    [ $rc = "$want" ]
    grep -qiE -- "$re" /tmp/iop.out
    [ -z "$(ls /sys/class/scsi_host/*/session_state 2>/dev/null)" ]
}

iop_refused_nochap() {
    iop_refused "${IOP_NOCHAP_RC:-5}" "${IOP_NOCHAP_RE:-authentication}" "$IOP_CHAP"
    if declare -F iop_nochap_check > /dev/null; then iop_nochap_check; fi
}

# 1 MiB of random data written at a random 1 MiB offset reads back equal.
iop_small_io() {
    local dev off
    dev=$(iop_dev)
    off=$((RANDOM % 7))
    head -c 1M /dev/urandom > /tmp/iop.pattern
    dd if=/tmp/iop.pattern of=/dev/$dev bs=1M seek=$off oflag=direct status=none
    dd if=/dev/$dev of=/tmp/iop.readback bs=1M skip=$off count=1 iflag=direct status=none
    cmp /tmp/iop.pattern /tmp/iop.readback
    iop_healthy
}

iop_chap_session() {
    iop_login "$IOP_CHAP" --chap-user $IOP_USER --chap-secret-file /tmp/iop.secret
    iop_small_io
    iop_logout
}

iop_mutual_session() {
    iop_login "$IOP_MUTUAL" --chap-user $IOP_MUSER --chap-secret-file /tmp/iop.msecret \
        --mutual-user $IOP_TUSER --mutual-secret-file /tmp/iop.tsecret
    iop_small_io
    iop_logout
}

iop_discovery() {
    local out t
    out=$("$CTL" discover -p "$RS_PORTAL" --initiator-name "$RS_INAME")
    echo "$out"
    for t in "$IOP_PLAIN" "$IOP_CHAP" "$IOP_MUTUAL"; do
        # The name, then its portal (address:port,tag) on the next line.
        grep -A1 -x "$t" <<<"$out" | grep -q "^ *$RS_PORTAL,[0-9]*$"
    done
}

iop_fio() {
    local dev
    dev=$(iop_dev)
    if ! fio --name=interop --filename=/dev/$dev --direct=1 --ioengine=libaio \
            --iodepth=32 --rw=randrw --bsrange=512-1m --size=64m --verify=crc32c \
            --verify_fatal=1 --do_verify=1 --randrepeat=0 --output-format=terse \
            > /tmp/iop.fio 2>&1; then
        cat /tmp/iop.fio
        return 1
    fi
    iop_healthy
}

# iop_ext4_write SUMS: a fresh ext4 with files of 1 MiB and 1563 bytes, their sums in
# SUMS, unmounted, then fsck -f must find it clean.
iop_ext4_write() {
    local dev
    dev=$(iop_dev)
    # nodiscard: discarding the whole disk is no part of what is tested here,
    # and costs time under TCG.
    mkfs.ext4 -q -F -E nodiscard /dev/$dev
    mkdir -p /tmp/iop-mnt
    mount /dev/$dev /tmp/iop-mnt
    # Few processes: each costs a lot under TCG with KASAN. 8 files of 1 MiB,
    # 63 of 1563 bytes (no multiple of the block size) and one of 1531.
    head -c 8M /dev/urandom | (cd /tmp/iop-mnt && split -b 1M -a 1 - big)
    mkdir /tmp/iop-mnt/small
    head -c 100000 /dev/urandom | (cd /tmp/iop-mnt/small && split -b 1563 -a 2 - f)
    (cd /tmp/iop-mnt && find . -type f | sort | xargs sha256sum) > "$1"
    umount /tmp/iop-mnt
    fsck.ext4 -f -n /dev/$dev
    [ "$(wc -l < "$1")" = 72 ]
    iop_healthy
}

# iop_ext4_verify SUMS: the files a previous session wrote read back equal.
iop_ext4_verify() {
    local dev
    dev=$(iop_dev)
    fsck.ext4 -f -n /dev/$dev
    mkdir -p /tmp/iop-mnt
    mount -o ro /dev/$dev /tmp/iop-mnt
    (cd /tmp/iop-mnt && sha256sum --quiet -c "$1")
    umount /tmp/iop-mnt
    iop_healthy
}

# Nothing is left: no iscsi_rs host, no TCP connection to the portal.
iop_all_gone() {
    local _
    [ -z "$(ls /sys/class/scsi_host/*/session_state 2>/dev/null)" ]
    for _ in $(seq 50); do
        [ -z "$(ss -Htn state established "( dport = :${RS_PORTAL##*:} )")" ] && return 0
        sleep 0.1
    done
    ss -tn
    return 1
}

iop_pcap_start() {
    [ $iop_pcap = 1 ] || return 0
    rm -f /tmp/iop.pcap
    dumpcap -q -P -B 64 -i lo -f "tcp port ${RS_PORTAL##*:}" -w /tmp/iop.pcap > /tmp/iop.dumpcap 2>&1 &
    IOP_DUMPCAP=$!
    # dumpcap has no "ready" signal: wait for the file it creates once capturing.
    local _
    for _ in $(seq 100); do [ -s /tmp/iop.pcap ] && break; sleep 0.1; done
    sleep 1
}

iop_pcap_stop() {
    [ $iop_pcap = 1 ] || return 0
    kill -INT "$IOP_DUMPCAP" 2>/dev/null
    wait "$IOP_DUMPCAP" 2>/dev/null
    IOP_DUMPCAP=
    cat /tmp/iop.dumpcap
    ls -la /tmp/iop.pcap
    python3 "$REPO/ktests/qemu/pdutrace.py" --port "${RS_PORTAL##*:}" /tmp/iop.pcap || true
}

# The three sessions on the plain target.
iop_plain_login() {
    iop_login "$IOP_PLAIN" --queue-depth 32
    iop_digests None
}
iop_digest_login() {
    iop_login "$IOP_PLAIN" --queue-depth 32 --header-digest crc32c --data-digest crc32c
    iop_digests CRC32C
}
iop_last_session() {
    iop_login "$IOP_PLAIN"
    iop_digests None
    iop_ext4_verify /tmp/iop.sums2
    iop_logout
}

# A connection cut under I/O with the daemon running, through the fault proxy
# on 127.0.0.1:3261, which cuts the connection it accepted last (of a session
# with several connections, a further one): the session fails, the daemon
# logs it in again (a reinstatement at the target) with as many connections
# as it had (istgt takes one per CPU here; LIO and tgt as set up, one), fio
# verify runs clean across it, and the session recovered exactly once.
iop_cut_recovery() {
    local host dev up fio
    . "$REPO/ktests/qemu/faultd.sh"
    trap 'rs_daemon_stop; fd_stop' EXIT
    fd_proxy_start 127.0.0.1:3261 "$RS_PORTAL"
    rs_daemon_start
    rs_now > /tmp/iop.since
    host=$(RS_PORTAL=127.0.0.1:3261 rs_login -t "$IOP_PLAIN" --replacement-timeout 60)
    dev=$(iop_disk "$host")
    up=$(iop_connections "$host")
    fio --name=cut --filename=/dev/$dev --direct=1 --ioengine=libaio --iodepth=16 \
        --rw=randrw --bsrange=4k-128k --size=16m --verify=crc32c --verify_fatal=1 \
        --do_verify=1 --randrepeat=0 --output-format=terse > /tmp/iop.fio 2>&1 &
    fio=$!
    sleep 1
    kill -0 $fio
    fd_ctl drop-one | grep -q "^ok dropped 1"
    wait $fio || { cat /tmp/iop.fio; return 1; }
    rs_wait_state "$host" running 30
    [ "$(cat /sys/class/scsi_host/host$host/recoveries)" = 1 ]
    [ "$(iop_connections "$host")" = "$up" ]
    iop_klog "$host"
    rs_remove "$host"
    rs_gone "$host"
}

# Keepalive under load: a ping every second on every connection while fio,
# pinned to CPU 0, keeps commands in flight on the first. On several
# connections a ping waits until the target has acknowledged every CmdSN and
# then takes one (istgt drops the connection when an immediate NOP-Out's CmdSN
# is not its ExpCmdSN, and a command on another connection may still be on its
# way). No connection may fail under it, and once the I/O stops every
# connection answers a ping: its ExpStatSN moves.
iop_pings_under_io() {
    local host dev k before after
    iop_login "$IOP_PLAIN" --queue-depth 32 --noop-interval 1 --noop-timeout 5
    host=$(iop_host)
    dev=$(iop_dev)
    taskset -c 0 fio --name=pings --filename=/dev/$dev --direct=1 --ioengine=libaio \
        --iodepth=32 --rw=randrw --bs=4k --size=16m --time_based --runtime=6 \
        --randrepeat=0 --output-format=terse > /tmp/iop.fio 2>&1 || { cat /tmp/iop.fio; return 1; }
    iop_healthy
    read -r -a before <<<"$(rs_stat_sns "$host")"
    echo "connections: $(iop_connections "$host"), ExpStatSN after the I/O: ${before[*]}"
    [ ${#before[@]} = "$(iop_connections "$host")" ]
    sleep 4
    read -r -a after <<<"$(rs_stat_sns "$host")"
    echo "ExpStatSN 4 s later: ${after[*]}"
    for k in "${!before[@]}"; do
        [ "${after[$k]:-}" != "${before[$k]}" ] || { echo "connection $k answered no ping"; return 1; }
    done
    iop_healthy
    iop_logout
}

# Connections up on HOST's session (1 when it has a single lane).
iop_connections() {
    local n
    n=$("$CTL" list | sed -n "s|^host$1 .* connections=\([0-9]*\)/[0-9]* .*|\1|p")
    echo "${n:-1}"
}

# Always runs, also when the case fails or times out: a target left running
# would hold the portal for the cases after this one.
iop_cleanup() {
    set +e
    if [ -n "${IOP_DUMPCAP:-}" ]; then kill -INT "$IOP_DUMPCAP"; wait "$IOP_DUMPCAP"; fi
    umount /tmp/iop-mnt 2>/dev/null
    [ -n "$(ls /sys/class/scsi_host/*/session_state 2>/dev/null)" ] && "$CTL" logout -a
    rmmod iscsi_rs 2>/dev/null
    iop_stop
}
trap iop_cleanup EXIT
trap 'exit 143' TERM

set -e
echo "=== $IOP_NAME: starting the target"
if ! iop_start; then
    echo "not ok interop-$IOP_NAME: target starts" >> "$iop_sub"
    exit 1
fi
echo "ok interop-$IOP_NAME: target starts" >> "$iop_sub"
insmod "$KO"
secret_file /tmp/iop.secret $IOP_SECRET
secret_file /tmp/iop.wrong not-the-secret-999
secret_file /tmp/iop.msecret $IOP_MSECRET
secret_file /tmp/iop.tsecret $IOP_TSECRET
secret_file /tmp/iop.tsecret-bad rs-tsecret-6543210

step "discovery lists the three targets" iop_discovery
step "CHAP target refuses a login without CHAP" iop_refused_nochap
step "CHAP target refuses a wrong secret" iop_refused 5 authentication "$IOP_CHAP" \
    --chap-user $IOP_USER --chap-secret-file /tmp/iop.wrong
iop_pcap_start
step "CHAP login, 1 MiB read back, logout" iop_chap_session
step "mutual CHAP: a target proving the wrong secret is refused" iop_refused 5 mutual "$IOP_MUTUAL" \
    --chap-user $IOP_MUSER --chap-secret-file /tmp/iop.msecret \
    --mutual-user $IOP_TUSER --mutual-secret-file /tmp/iop.tsecret-bad
step "mutual CHAP login, 1 MiB read back, logout" iop_mutual_session

step "login, no digests negotiated" iop_plain_login
step "fio verify 64 MiB, 512 B-1 MiB, QD32" iop_fio
iop_pcap_stop
step "ext4: mkfs, files, fsck -f clean" iop_ext4_write /tmp/iop.sums1
step "logout" iop_logout

step "login, CRC32C header and data digests negotiated" iop_digest_login
step "digests: files of the first session read back equal" iop_ext4_verify /tmp/iop.sums1
step "digests: fio verify 64 MiB, 512 B-1 MiB, QD32" iop_fio
step "digests: ext4: mkfs, files, fsck -f clean" iop_ext4_write /tmp/iop.sums2
step "digests: logout" iop_logout

step "new session: files written with digests read back equal, logout" iop_last_session
step "pings every second on every connection under fio: none fails, each answers" iop_pings_under_io
step "a connection cut under fio verify: one reinstatement, all connections back" iop_cut_recovery
step "no session or connection left" iop_all_gone

echo "# $IOP_NAME: $iop_fails step(s) failed"
[ $iop_fails = 0 ]
