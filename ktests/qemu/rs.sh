# iscsi_rs session helpers for guest cases (source this file); all through the
# real iscsictl, so the cases test what users run.
#   rs_login -t IQN [iscsictl login flags...]   prints the SCSI host number
#   rs_remove HOST                              iscsictl logout --host HOST
#   rs_daemon_start / rs_daemon_stop            iscsictl daemon in the background
#                                               (log: /tmp/daemon.log); stop it
#                                               before rmmod (it holds the device)
#   rs_wait_state HOST STATE SECS               wait for session_state
#   rs_gone HOST                                wait until the host is gone
#   rs_target_gone IQN [SECS]                   wait until LIO lists no session of ours
#   rs_stat_sns HOST                            each connection's ExpStatSN, by lane
#   rs_nap SECS                                 sleep without a process
# The helpers that poll use bash builtins only: an exec costs 0.1-0.3 s in
# the debug guest (KASAN, lockdep, kmemleak under TCG), more than most waits.
RS_INAME=iqn.2026-11.dev.iscsi-rs:guest-rs

# A FIFO held open for reading and writing never has data: `read -t` on it
# is a sleep without a fork (each subshell shares the descriptor).
if [ -z "${RS_NAP_FD:-}" ]; then
    mkfifo /tmp/rs-nap.$$ && exec {RS_NAP_FD}<>/tmp/rs-nap.$$ && rm -f /tmp/rs-nap.$$
fi
rs_nap() {
    read -r -t "$1" -u "$RS_NAP_FD" _ || true
}
RS_PORTAL=${RS_PORTAL:-127.0.0.1:3260}

rs_login() {
    local out line
    out=$("$CTL" login -p $RS_PORTAL --initiator-name $RS_INAME "$@") || return 1
    echo "$out" >&2
    while IFS= read -r line; do
        if [[ $line =~ :\ SCSI\ host\ ([0-9]+)$ ]]; then
            echo "${BASH_REMATCH[1]}"
            return 0
        fi
    done <<<"$out"
    return 0
}

rs_remove() {
    "$CTL" logout --host "$1" >&2
}

# Waits up to 30 s until HOST is gone from sysfs and from iscsictl list;
# fails otherwise. (30 s: what 100 rounds of `sleep 0.1` came to in the
# debug guest before the naps stopped costing an exec.)
rs_gone() {
    local i listed
    for ((i = 0; i < 300; i++)); do
        if [ ! -e /sys/class/scsi_host/host$1 ]; then
            listed=$'\n'$("$CTL" list || true)
            [[ $listed == *$'\n'"host$1 "* ]] || return 0
        fi
        rs_nap 0.1
    done
    echo "host$1 still present" >&2
    return 1
}

# True while LIO still lists a session of ours on target IQN.
rs_target_has_session() {
    grep -q "$RS_INAME" "/sys/kernel/config/target/iscsi/$1/tpgt_1/dynamic_sessions"
}

# Waits up to SECS (default 5) until LIO lists no session of ours on target
# IQN (it ends a session a little after our logout returns); fails otherwise.
rs_target_gone() {
    local i
    for ((i = 0; i < ${2:-5} * 10; i++)); do
        rs_target_has_session "$1" || return 0
        rs_nap 0.1
    done
    echo "LIO still lists our session on $1" >&2
    return 1
}

# Prints the block device (sdX) of LUN 0 of SCSI host HOST, waiting up to 30 s
# (as rs_gone) for the scan to create it; prints nothing if it never appears.
rs_disk() {
    local d i
    for ((i = 0; i < 300; i++)); do
        for d in "/sys/class/scsi_host/host$1/device/target$1:0:0/$1:0:0:0/block/"*; do
            d=${d##*/}
            if [ "$d" != "*" ] && [ -b "/dev/$d" ]; then
                echo "$d"
                return 0
            fi
            break
        done
        rs_nap 0.1
    done
}

rs_daemon_start() {
    "$CTL" daemon > /tmp/daemon.log 2>&1 &
    RS_DAEMON=$!
}

rs_daemon_stop() {
    [ -n "${RS_DAEMON:-}" ] || return 0
    kill "$RS_DAEMON" 2>/dev/null
    wait "$RS_DAEMON" 2>/dev/null || true
    RS_DAEMON=
    echo "--- daemon log" >&2
    cat /tmp/daemon.log >&2
}

# Waits up to SECS for HOST's session_state to read STATE; fails otherwise.
rs_wait_state() {
    local sysfs=/sys/class/scsi_host/host$1 i state
    for ((i = 0; i < $3 * 10; i++)); do
        if read -r state < $sysfs/session_state && [ "$state" = "$2" ]; then
            return 0
        fi
        rs_nap 0.1
    done
    echo "host$1 still $(cat $sysfs/session_state) after $3 s, wanted $2" >&2
    return 1
}

# Seconds since boot with fractions (for timing in cases).
rs_now() {
    local up _
    read -r up _ < /proc/uptime
    echo "$up"
}

# Fails unless no command of block device DEV (sdX) timed out and session HOST
# never had to recover: the I/O before ran clean.
rs_ran_clean() {
    local tmo
    tmo=$(cat "/sys/block/$2/device/iotmo_cnt")
    [ $((tmo)) -eq 0 ] || { echo "$tmo commands timed out" >&2; return 1; }
    [ "$(cat "/sys/class/scsi_host/host$1/recoveries")" = 0 ] || { echo "host$1 recovered" >&2; return 1; }
}

# Prints the ExpStatSN of each connection of HOST's session, lane 0 first,
# space-separated (one python run for all: an exec is slow in the guest).
rs_stat_sns() {
    "$CTL" list --json | python3 -c '
import json, sys
for s in json.load(sys.stdin)["sessions"]:
    if s["host"] == int(sys.argv[1]):
        conns = sorted(s.get("connections", []), key=lambda c: c["lane"])
        print(" ".join(str(c["exp_stat_sn"]) for c in conns))
' "$1"
}
