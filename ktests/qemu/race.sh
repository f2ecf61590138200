# Helpers for races against the session lifecycle (case 55-lifecycle-race; source
# this file after rs.sh). Every wait is bounded, and a command that outlives its
# bound is a hang: race_hang reports it (its kernel stack, the blocked tasks) and
# ends the case, since nothing after a stuck task can be trusted.
#   race_init                       call once (iscsictl features)
#   race_sleep SECS                 sleep without forking (rs_nap; fractions fine)
#   race_sleep_ms MS                the same in milliseconds
#   race_ms                         sets RACE_MS: milliseconds, monotonic enough
#   race_alive PID                  true while PID runs (zombies count as ended)
#   race_wait_pid PID SECS          true if PID ended within SECS
#   race_run SECS CMD...            CMD, bounded: RACE_RC, RACE_OUT (its output)
#   race_bg NAME SECS CMD...        CMD in the background (its own `timeout`);
#                                   race_bg_wait SECS waits for all of them
#   race_hosts                      iscsi_rs SCSI host numbers in sysfs
#   race_listed                     host numbers `iscsictl list` shows
#   race_logout_force HOST          REMOVE_SESSION with the force flag
#   race_daemon_start / race_daemon_kill [SIG]   iscsictl daemon (log
#                                   /tmp/race-daemon.log, appended)
RACE_DAEMON=
RACE_BG=()

race_init() {
    # `iscsictl logout --force` where this iscsictl has it; otherwise the same
    # ioctl with REMOVE_FORCE from python (uapi: REMOVE_SESSION = _IOW(0xe3, 2,
    # 32 bytes); version 1, size 32, host, flags 1, 4 spare words).
    RACE_HAS_FORCE=0
    if "$CTL" logout --help 2>/dev/null | grep -q -- --force; then
        RACE_HAS_FORCE=1
    fi
}

race_sleep() {
    rs_nap "$1"
}

# race_sleep_ms MS: sleeps MS milliseconds.
race_sleep_ms() {
    local v
    printf -v v '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
    race_sleep "$v"
}

race_ms() {
    RACE_MS=$((${EPOCHREALTIME/./} / 1000))
}

race_alive() {
    local s
    read -r s 2>/dev/null < /proc/$1/stat || return 1
    s=${s##*) }
    [ "${s%% *}" != Z ]
}

race_wait_pid() {
    local end
    race_ms
    end=$((RACE_MS + $2 * 1000))
    while race_alive "$1"; do
        race_ms
        [ $RACE_MS -lt $end ] || return 1
        race_sleep 0.05
    done
    return 0
}

# Reports a hang of PID (what it runs, its kernel stack and its children's, the
# blocked tasks via sysrq-w) and exits the case with status 1. The report goes
# to the console too: the harness's cleanup after a failed case may itself hang
# on what hung here, and then the case log never reaches the host.
race_hang() {
    local what=$1 pid=$2 secs=$3 p
    {
        echo "HANG: '$what' (pid $pid) still running after $secs s${RACE_CUR:+ during $RACE_CUR}"
        for p in $pid $(cat /proc/$pid/task/*/children 2>/dev/null); do
            echo "--- pid $p: $(tr '\0' ' ' 2>/dev/null < /proc/$p/cmdline)"
            grep -E '^(State|Name)' /proc/$p/status 2>/dev/null
            cat /proc/$p/stack 2>/dev/null
        done
        echo w > /proc/sysrq-trigger 2>/dev/null
        dmesg | tail -n 120
    } 2>&1 | tee /dev/console >&2
    RACE_HUNG=1
    exit 1
}

race_run() {
    local secs=$1 pid
    shift
    "$@" > /tmp/race.out 2>&1 &
    pid=$!
    race_wait_pid $pid "$secs" || race_hang "$*" $pid "$secs"
    wait $pid
    RACE_RC=$?
    RACE_OUT=$(< /tmp/race.out)
}

# race_bg NAME SECS CMD...: NAME's output goes to /tmp/race-bg.NAME; its exit
# status lands in RACE_BG_RC[NAME] when race_bg_wait reaps it. SECS is a
# `timeout` so a stuck-but-killable CMD ends; one that does not end is a hang.
declare -A RACE_BG_RC=() RACE_BG_PID=()
race_bg() {
    local name=$1 secs=$2
    shift 2
    timeout -k 5 "$secs" "$@" > /tmp/race-bg.$name 2>&1 &
    RACE_BG_PID[$name]=$!
    RACE_BG+=("$name")
}

race_bg_wait() {
    local name pid
    for name in "${RACE_BG[@]}"; do
        pid=${RACE_BG_PID[$name]}
        race_wait_pid "$pid" "$1" || race_hang "background $name" "$pid" "$1"
        wait "$pid"
        RACE_BG_RC[$name]=$?
    done
    RACE_BG=()
}

race_hosts() {
    local h n
    for h in /sys/class/scsi_host/host*; do
        [ -r "$h/proc_name" ] || continue
        read -r n 2>/dev/null < "$h/proc_name" || continue
        [ "$n" = iscsi_rs ] && echo "${h##*/host}"
    done
    return 0
}

race_listed() {
    [ -e /sys/module/iscsi_rs ] || return 0
    timeout 30 "$CTL" list 2>/dev/null | sed -n 's/^host\([0-9]*\) .*/\1/p'
}

race_logout_force() {
    if [ "$RACE_HAS_FORCE" = 1 ]; then
        "$CTL" logout --host "$1" --force
    else
        python3 - "$1" <<'PY'
import fcntl, os, struct, sys
try:
    fd = os.open("/dev/iscsi_rs", os.O_RDWR)
    fcntl.ioctl(fd, 0x4020E302, struct.pack("8I", 1, 32, int(sys.argv[1]), 1, 0, 0, 0, 0))
except OSError as e:
    print(f"REMOVE_SESSION host{sys.argv[1]} (force): {e}", file=sys.stderr)
    sys.exit(1)
PY
    fi
}

race_daemon_start() {
    [ -n "$RACE_DAEMON" ] && race_alive "$RACE_DAEMON" && return 0
    "$CTL" daemon >> /tmp/race-daemon.log 2>&1 &
    RACE_DAEMON=$!
}

race_daemon_kill() {
    local pid=$RACE_DAEMON
    [ -n "$pid" ] || return 0
    kill -"${1:-TERM}" "$pid" 2>/dev/null
    race_wait_pid "$pid" 20 || race_hang "iscsictl daemon after SIG${1:-TERM}" "$pid" 20
    wait "$pid" 2>/dev/null
    RACE_DAEMON=
}
