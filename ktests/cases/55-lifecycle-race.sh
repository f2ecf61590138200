# Case (issue 11, "lifecycle-race"): every lifecycle ACTION fired at every risky
# MOMENT of a session, 0-50 ms after the event that opens the moment (moments
# that span a known window pick a random point inside it), against LIO behind the
# fault proxy (127.0.0.1:3263 -> 3260).
#   ACTIONS  logout; logout --force; rmmod with the daemon stopped first (may fail
#            "in use" while a disk or the control device is open: fine); rmmod
#            with the daemon running (must fail "in use"; then the daemon is
#            stopped and rmmod retried until it succeeds); kill -9 of the daemon;
#            the target disappearing (proxy `down`, which drops every
#            connection; up again 0.3-1.5 s later); the target coming back
#            (proxy `up`, after a `down` at the triggering event where the
#            moment itself has the target up).
#   MOMENTS  scan: the login's LUN scan (login in the background, fired once its
#              SCSI host appears, plus 0-500 ms half the time: the target scan,
#              then the sd probe; a logout is retried while it gets ENODEV);
#            io: four direct dd (2 readers, 2 writers) in flight, fired once
#              the disk shows inflight I/O;
#            eh: proxy hold-scsi discard, device timeout 2 s, a read and a write:
#              fired at the first ABORT TASK (the midlayer's asynchronous abort)
#              or, half the time, once the host's state reads "recovery" (the
#              error handler proper, after an aborted retry timed out too);
#            recovering-daemon: target down, the daemon's first re-login failed;
#            recovering-nodaemon: connection dropped, no daemon;
#            daemon-wait: between the daemon's WAIT_EVENT and its HANDOFF
#              (DefaultTime2Wait 2 s: a random point in those 2 s);
#            replacement-timeout: --replacement-timeout 2 and DefaultTime2Wait 2,
#              the connection dropped (the daemon's re-login races the timeout)
#              or the target down, fired 1.8-2.35 s later;
#            logging-out: proxy stalled, a logout in the background, fired once
#              its host is removed (the Logout Response is pending, up to 10 s).
#   The loss moments have a dd read in flight half the time. Elsewhere the
#   sessions use DefaultTime2Wait 0 (LIO offers 0, the result is the max).
# After each combination: the proxy is restored, the module loaded again and the
# daemon started again if needed; I/O still running is killed, and every
# background command must end (bounded); every session left must be running
# again within 60 s, serve a read and log out; nothing may be left in sysfs or
# `iscsictl list`. Any command that outlives its bound is a hang and ends the
# case with its kernel stack. Results per combination go to
# $OUT/subtests-lifecycle-race. The harness fails the case on any KASAN,
# lockdep, kmemleak, hung-task or WARN report.
# ITERATIONS combinations run in all (the matrix, shuffled, cycled): one round
# of the 54 takes ~6-7.5 min in the TCG guest (~10 min with another QEMU busy;
# none starts after BUDGET_S, and any not run fails the case). The seed is
# printed; set SEED to repeat an order and its delays.
# guest-boot: 2
set -u
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
. "$REPO/ktests/qemu/faultd.sh"
. "$REPO/ktests/qemu/race.sh"

ACTIONS=(logout logout-force rmmod rmmod-busy kill-daemon target-down target-up)
MOMENTS=(scan io eh recovering-daemon recovering-nodaemon daemon-wait replacement-timeout logging-out)
# No daemon in that moment: nothing to kill, nothing holding the device.
SKIP=" kill-daemon@recovering-nodaemon rmmod-busy@recovering-nodaemon "
ITERATIONS=54
# No new combination after this many seconds (a loaded host: the harness ends a
# case at 900 s).
BUDGET_S=600
SEED=$((${EPOCHREALTIME/./} % 32768))
RANDOM=$SEED
iqn=$LIO_IQN_DEFAULT
tpg=/sys/kernel/config/target/iscsi/$iqn/tpgt_1
RS_PORTAL=127.0.0.1:3263
subtests=$OUT/subtests-lifecycle-race

log() {
    local t
    local now=$EPOCHREALTIME
    printf -v t '%(%T)T' "${now%.*}"
    echo "$t.${now: -6:3} ${RACE_CUR:+[$RACE_CUR] }$*"
}

# A failed check of the current combination (the case goes on with the next).
bad() {
    echo "FAIL [${RACE_CUR:-setup}]: $*" >&2
    COMBO_FAILED=1
    FAILED_ANY=1
}

declare -A RUNS=() FAILS=()
FAILED_ANY=0 RACE_HUNG=0 RACE_OUT_OF_TIME=0 RACE_CUR= COMBO_FAILED=0 COMBO_KEY= PROXY_HELD=0 TARGET_DOWN=0
write_subtests() {
    local a m key
    # A combination cut short (a hang, an unrecoverable state) failed.
    if [ -n "$COMBO_KEY" ]; then
        FAILS[$COMBO_KEY]=$((${FAILS[$COMBO_KEY]:-0} + 1))
        RUNS[$COMBO_KEY]=$((${RUNS[$COMBO_KEY]:-0} + 1))
        COMBO_KEY=
    fi
    for m in "${MOMENTS[@]}"; do
        for a in "${ACTIONS[@]}"; do
            key="$a@$m"
            if [ -z "${RUNS[$key]:-}" ]; then
                # In the matrix but never reached: not a pass.
                [ "$RACE_OUT_OF_TIME" = 0 ] || [[ "$SKIP" == *" $key "* ]] \
                    || echo "not ok lifecycle-race: $a at $m (not run: the time budget was spent)"
                continue
            fi
            if [ -n "${FAILS[$key]:-}" ]; then
                echo "not ok lifecycle-race: $a at $m (${FAILS[$key]} of ${RUNS[$key]} failed)"
            else
                echo "ok lifecycle-race: $a at $m"
            fi
        done
    done >> "$subtests"
}
on_exit() {
    local rc=$?
    write_subtests
    [ $rc = 0 ] && [ $FAILED_ANY = 1 ] && rc=1
    if [ $rc != 0 ]; then
        echo "--- daemon log (tail)"
        tail -n 40 /tmp/race-daemon.log 2>/dev/null
        echo "--- proxy log (tail)"
        tail -n 20 /tmp/proxy.log 2>/dev/null
    fi
    exit $rc
}
trap on_exit EXIT

# The proxy, bounded (`fd_ctl` is a function, which `timeout` cannot run).
pctl() {
    case $1 in
    down) TARGET_DOWN=1 ;; up) TARGET_DOWN=0 ;;
    stall | hold-scsi) PROXY_HELD=1 ;; resume) PROXY_HELD=0 ;;
    esac
    timeout 20 "$FAULTD" ctl $FD_SOCK "$@" > /dev/null || bad "proxy command '$*' failed"
}

# Nothing stalled or held, the target reachable: in that order, so that a
# re-login does not meet a hold that would throw its first answers away. Each
# proxy command costs an exec of a large binary under TCG: only what is needed.
restore_proxy() {
    [ $PROXY_HELD = 0 ] || pctl resume
    [ $TARGET_DOWN = 0 ] || pctl up
}

loaded() {
    [ -e /sys/module/iscsi_rs ]
}

# Waits up to SECS for HOST's session_state to read STATE (false if the host
# goes or the time runs out).
wait_state() {
    local f=/sys/class/scsi_host/host$1/session_state s end
    race_ms
    end=$((RACE_MS + $3 * 1000))
    while :; do
        read -r s 2>/dev/null < "$f" || return 1
        [ "$s" = "$2" ] && return 0
        race_ms
        [ $RACE_MS -lt $end ] || return 1
        race_sleep 0.02
    done
}

# Waits up to 10 s for HOST to be gone from sysfs; with "listed", checks
# `iscsictl list` too (once: an exec of iscsictl costs ~0.5 s under TCG).
wait_gone() {
    local _
    for _ in $(seq 200); do
        [ -e /sys/class/scsi_host/host$1 ] || break
        race_sleep 0.05
    done
    [ ! -e /sys/class/scsi_host/host$1 ] || return 1
    [ "${2:-}" != listed ] || ! race_listed | grep -qx "$1"
}

# Waits up to SECS for a line matching RE in the daemon log after byte OFFSET.
wait_daemon_log() {
    local off=$1 re=$2 secs=$3 end
    race_ms
    end=$((RACE_MS + secs * 1000))
    while ! tail -c +$((off + 1)) /tmp/race-daemon.log | grep -qE "$re"; do
        race_ms
        [ $RACE_MS -lt $end ] || return 1
        race_sleep 0.02
    done
}

daemon_log_size() {
    stat -c %s /tmp/race-daemon.log 2>/dev/null || echo 0
}

# rmmod until it succeeds (bounded): it may fail "in use" while a disk or the
# control device is still open; anything else is wrong.
rmmod_until_gone() {
    local end
    race_ms
    end=$((RACE_MS + 90000))
    while loaded; do
        race_run 90 rmmod iscsi_rs
        [ $RACE_RC = 0 ] && break
        grep -qiE "in use|busy" <<<"$RACE_OUT" || bad "rmmod failed oddly: $RACE_OUT"
        # Only the first attempt races the moment: let the rest finish sooner.
        restore_proxy
        race_ms
        if [ $RACE_MS -ge $end ]; then
            bad "rmmod still refused after 90 s: $RACE_OUT (refcnt $(cat /sys/module/iscsi_rs/refcnt 2>/dev/null))"
            return 1
        fi
        race_sleep 0.3
    done
}

# A direct read in flight during a connection-loss moment, half the time.
maybe_io() {
    if [ $((RANDOM % 2)) = 1 ] && [ -n "$DEV" ]; then
        race_bg read 150 dd if=/dev/$DEV of=/dev/null bs=64k count=1024 iflag=direct
        log "with a dd read in flight"
    fi
}

# Sets up MOMENT on a fresh session and returns at its triggering event. Sets
# HOST (and DEV unless the moment is the scan).
open_moment() {
    local moment=$1 action=$2 login=("${@:3}") before h end off
    if [ "$moment" = scan ]; then
        before=" $(race_hosts | tr '\n' ' ') "
        race_bg login 150 "$CTL" login "${login[@]}"
        race_ms
        end=$((RACE_MS + 60000))
        while [ -z "$HOST" ]; do
            for h in $(race_hosts); do
                [[ "$before" == *" $h "* ]] || HOST=$h
            done
            [ -n "$HOST" ] && break
            race_alive "${RACE_BG_PID[login]}" || { bad "login ended before a host appeared: $(cat /tmp/race-bg.login)"; return 1; }
            race_ms
            [ $RACE_MS -lt $end ] || { bad "no SCSI host appeared within 60 s of the login"; return 1; }
            race_sleep 0.01
        done
        # The first 0-50 ms hit the target scan itself, the rest the sd probe.
        [ $((RANDOM % 2)) = 1 ] && race_sleep_ms $((RANDOM % 500))
        return 0
    fi
    race_run 60 "$CTL" login "${login[@]}"
    if [ $RACE_RC != 0 ]; then
        bad "login failed ($RACE_RC): $RACE_OUT"
        return 1
    fi
    log "logged in"
    HOST=$(sed -n 's/.*: SCSI host \([0-9]*\)$/\1/p' <<<"$RACE_OUT" | head -1)
    DEV=$(rs_disk "$HOST")
    [ -n "$HOST" ] && [ -n "$DEV" ] || { bad "no host/disk after login: $RACE_OUT"; return 1; }
    case $moment in
    io)
        race_bg rd1 150 dd if=/dev/$DEV of=/dev/null bs=256k count=64 iflag=direct
        race_bg rd2 150 dd if=/dev/$DEV of=/dev/null bs=64k count=256 skip=256 iflag=direct
        race_bg wr1 150 dd if=/dev/zero of=/dev/$DEV bs=256k count=64 seek=128 oflag=direct
        race_bg wr2 150 dd if=/dev/zero of=/dev/$DEV bs=64k count=256 seek=768 oflag=direct
        local r w
        race_ms
        end=$((RACE_MS + 20000))
        while :; do
            read -r r w < /sys/block/$DEV/inflight
            [ $((r + w)) -gt 0 ] && break
            race_ms
            if [ $RACE_MS -ge $end ] || ! race_alive "${RACE_BG_PID[rd1]}"; then
                log "note: no I/O seen in flight"
                break
            fi
            race_sleep 0.01
        done
        ;;
    eh)
        echo 2 > /sys/block/$DEV/device/timeout
        pctl hold-scsi 0 discard
        race_bg ehread 150 dd if=/dev/$DEV of=/dev/null bs=64k count=4 iflag=direct
        race_bg ehwrite 150 dd if=/dev/zero of=/dev/$DEV bs=64k count=4 seek=64 oflag=direct
        local s= st
        race_ms
        end=$((RACE_MS + 60000))
        if [ $((RANDOM % 2)) = 1 ]; then
            # The midlayer's first, asynchronous abort of a timed-out command.
            while :; do
                st=$(timeout 20 "$FAULTD" ctl $FD_SOCK stats)
                [[ "$st" =~ \ abort_task=([0-9]+) ]] && [ "${BASH_REMATCH[1]}" -gt 0 ] && break
                race_ms
                [ $RACE_MS -lt $end ] || { bad "no ABORT TASK within 60 s: $st"; return 1; }
                race_sleep 0.02
            done
            log "first ABORT TASK seen"
        else
            # The error handler proper (the host in recovery): after the retry
            # of an aborted command timed out too.
            while [ "$s" != recovery ]; do
                read -r s 2>/dev/null < /sys/class/scsi_host/host$HOST/state
                race_ms
                [ $RACE_MS -lt $end ] || { bad "SCSI EH never started (host state $s)"; return 1; }
                race_sleep 0.01
            done
            log "host in recovery"
        fi
        ;;
    recovering-daemon)
        maybe_io
        off=$(daemon_log_size)
        pctl down
        wait_state "$HOST" recovering 20 || { bad "not recovering after the target went down"; return 1; }
        wait_daemon_log "$off" "host$HOST: re-login attempt 1 failed" 30 ||
            { bad "the daemon's first re-login did not fail"; return 1; }
        ;;
    recovering-nodaemon)
        maybe_io
        if [ "$action" = target-up ]; then pctl down; else pctl drop; fi
        wait_state "$HOST" recovering 20 || { bad "not recovering after the drop"; return 1; }
        ;;
    daemon-wait)
        maybe_io
        off=$(daemon_log_size)
        if [ "$action" = target-up ]; then pctl down; else pctl drop; fi
        wait_daemon_log "$off" "host$HOST: .*re-login attempt 1 in 2000 ms" 30 ||
            { bad "the daemon got no re-login request with a 2 s wait"; return 1; }
        race_sleep_ms $((RANDOM % 1950))
        ;;
    replacement-timeout)
        maybe_io
        # Target down (the timeout surely expires) for target-up and half the
        # rest; otherwise a drop, and the daemon's re-login after its 2 s wait
        # races the 2 s timeout too.
        if [ "$action" = target-up ] || [ $((RANDOM % 2)) = 1 ]; then
            pctl down
            log "target down"
        else
            pctl drop
        fi
        race_sleep_ms $((1800 + RANDOM % 500))
        ;;
    logging-out)
        pctl stall 0
        race_bg logout 150 "$CTL" logout --host "$HOST"
        race_ms
        end=$((RACE_MS + 60000))
        while [ -e /sys/class/scsi_host/host$HOST ]; do
            race_alive "${RACE_BG_PID[logout]}" || break
            race_ms
            [ $RACE_MS -lt $end ] || { bad "host$HOST not removed within 60 s of the logout"; return 1; }
            race_sleep 0.01
        done
        ;;
    esac
}

# Logs out (plain or forced) of HOST; in the scan moment the session is listed
# only once ADD_SESSION returns, so ENODEV is retried while the login runs.
act_logout() {
    local how=$1 moment=$2 end
    race_ms
    end=$((RACE_MS + 60000))
    while :; do
        if [ "$how" = force ]; then
            race_run 90 race_logout_force "$HOST"
        else
            race_run 90 "$CTL" logout --host "$HOST"
        fi
        ACT_RC=$RACE_RC
        [ $ACT_RC = 0 ] && break
        [ "$moment" = scan ] || break
        race_alive "${RACE_BG_PID[login]}" || [ -e /sys/class/scsi_host/host$HOST ] || break
        race_ms
        [ $RACE_MS -lt $end ] || break
        race_sleep 0.02
    done
    log "logout${how:+ --$how} host$HOST: exit $ACT_RC ${RACE_OUT//$'\n'/ | }"
    case $moment in
    logging-out) ;; # the first logout already took the session: ENODEV is right
    *)
        [ $ACT_RC = 0 ] || bad "logout${how:+ --$how} of host$HOST failed ($ACT_RC): $RACE_OUT"
        wait_gone "$HOST" listed || bad "host$HOST still there after its logout returned $ACT_RC"
        ;;
    esac
}

fire() {
    local action=$1 moment=$2
    case $action in
    logout) act_logout "" "$moment" ;;
    logout-force) act_logout force "$moment" ;;
    rmmod)
        race_daemon_kill TERM
        race_run 90 rmmod iscsi_rs
        ACT_RC=$RACE_RC
        log "rmmod: exit $ACT_RC $RACE_OUT"
        # Refused while a disk or the control device is open; that is fine.
        [ $ACT_RC = 0 ] || grep -qiE "in use|busy" <<<"$RACE_OUT" ||
            bad "rmmod failed, not as busy: $RACE_OUT"
        ;;
    rmmod-busy)
        race_run 90 rmmod iscsi_rs
        ACT_RC=$RACE_RC
        log "rmmod with the daemon running: exit $ACT_RC $RACE_OUT"
        if [ $ACT_RC = 0 ]; then
            bad "rmmod succeeded while the daemon held /dev/iscsi_rs"
        else
            grep -qiE "in use|busy" <<<"$RACE_OUT" || bad "rmmod failed, not as busy: $RACE_OUT"
            loaded || bad "module gone after a failed rmmod"
            race_daemon_kill TERM
            rmmod_until_gone
        fi
        ;;
    kill-daemon)
        race_daemon_kill KILL
        ;;
    target-down)
        # `down` is a `drop` that also refuses new connections.
        pctl down
        ;;
    target-up)
        pctl up
        ;;
    esac
}

# Restores everything and checks the aftermath (see the file comment).
settle() {
    local action=$1 moment=$2 h name rc left listed
    log "settle"
    [ "$action" = target-down ] && race_sleep_ms $((300 + RANDOM % 1200))
    restore_proxy
    if [ -n "$RACE_DAEMON" ] && ! race_alive "$RACE_DAEMON"; then
        bad "the daemon exited on its own"
        wait "$RACE_DAEMON"
        RACE_DAEMON=
    fi
    if ! loaded; then
        left=$(race_hosts)
        [ -z "$left" ] || bad "hosts left after rmmod: $left"
        race_bg_wait 150
        race_run 60 insmod "$KO"
        [ $RACE_RC = 0 ] || { bad "insmod failed: $RACE_OUT"; exit 1; }
    fi
    race_daemon_start
    # I/O still running has done its part: it must end, not finish.
    for name in "${RACE_BG[@]}"; do
        case $name in login | logout) ;; *) kill "${RACE_BG_PID[$name]}" 2>/dev/null ;; esac
    done
    race_bg_wait 150
    for name in "${!RACE_BG_RC[@]}"; do
        rc=${RACE_BG_RC[$name]}
        log "background $name: exit $rc"
        # timeout(1) ended it: stuck, though killable.
        [ "$rc" = 124 ] || [ "$rc" = 137 ] && [[ "$name" =~ ^(login|logout)$ ]] && bad "background $name ran into its timeout: $(tail -n 5 /tmp/race-bg.$name)"
        [ "$name" = logout ] && [ "$rc" != 0 ] && bad "the background logout failed ($rc): $(cat /tmp/race-bg.logout)"
    done
    RACE_BG_RC=()
    log "background done"
    # Every session left comes back and serves I/O, then logs out.
    listed=$(race_listed)
    for h in $listed; do
        if ! wait_state "$h" running 60; then
            bad "host$h not running 60 s after the target came back: $(cat /sys/class/scsi_host/host$h/session_state 2>/dev/null)"
            continue
        fi
        local d
        d=$(ls /sys/class/scsi_host/host$h/device/target$h:0:0/$h:0:0:0/block/ 2>/dev/null | head -1)
        if [ -n "$d" ]; then
            race_run 60 dd if=/dev/$d of=/dev/null bs=64k count=1 iflag=direct
            [ $RACE_RC = 0 ] || bad "host$h: read after recovery failed: $RACE_OUT"
        else
            log "host$h has no disk (the scan did not finish)"
        fi
    done
    log "recovered"
    for h in $(race_hosts); do
        grep -qx "$h" <<<"$listed" || bad "host$h in sysfs but not listed"
    done
    # A plain logout: a recovered session must log out properly; forced if not.
    for h in $listed; do
        race_run 60 "$CTL" logout --host "$h"
        if [ $RACE_RC != 0 ]; then
            bad "logout of the recovered host$h failed: $RACE_OUT"
            race_run 60 race_logout_force "$h"
            [ $RACE_RC = 0 ] || bad "forced logout of host$h failed: $RACE_OUT"
        fi
        wait_gone "$h" || bad "host$h still there after its logout"
    done
    left="$(race_listed) $(race_hosts)"
    log "clean"
    if [ -n "${left// /}" ]; then
        bad "sessions left that cannot be removed: $left"
        exit 1
    fi
}

combo() {
    local action=$1 moment=$2 rt=10 t2w=(--param DefaultTime2Wait=0) t0
    RACE_CUR="$action at $moment"
    COMBO_KEY="$action@$moment" COMBO_FAILED=0
    HOST= DEV= ACT_RC=
    log "=== $iter/$ITERATIONS"
    echo "race: [$iter] $RACE_CUR" > /dev/kmsg
    echo "=== [$iter] $RACE_CUR" >> /tmp/race-daemon.log
    if [ "$moment" = recovering-nodaemon ]; then race_daemon_kill TERM; else race_daemon_start; fi
    # LIO proposes 0: ours decides (Max). 2 s where the daemon's wait matters.
    case $moment in daemon-wait | replacement-timeout) t2w=() ;; esac
    [ "$moment" = replacement-timeout ] && rt=2
    log "daemon ready"
    if open_moment "$moment" "$action" -p $RS_PORTAL -t $iqn --initiator-name $RS_INAME \
        --replacement-timeout $rt "${t2w[@]}"; then
        # The target coming back needs it gone first.
        [ "$action" = target-up ] && [ $TARGET_DOWN = 0 ] && pctl down
        log "trigger"
        race_sleep_ms $((RANDOM % 51))
        race_ms
        t0=$RACE_MS
        fire "$action" "$moment"
        race_ms
        log "host${HOST:-?} ${DEV:+($DEV) }$action took $((RACE_MS - t0)) ms"
    fi
    settle "$action" "$moment"
    if [ $COMBO_FAILED = 1 ]; then
        echo "--- kernel log of this combination"
        dmesg | sed -n "/race: \[$iter\] /,\$p" | tail -n 60
    fi
    [ $COMBO_FAILED = 1 ] && FAILS[$COMBO_KEY]=$((${FAILS[$COMBO_KEY]:-0} + 1))
    RUNS[$COMBO_KEY]=$((${RUNS[$COMBO_KEY]:-0} + 1))
    COMBO_KEY=
    RACE_CUR=
}

# --- setup
race_init
log "seed $SEED, $ITERATIONS combinations, iscsictl logout --force: $([ $RACE_HAS_FORCE = 1 ] && echo yes || echo "no (ioctl from python)")"
: > /tmp/race-daemon.log
lio_setup -s 64 || exit 1
echo 0 > $tpg/param/DefaultTime2Wait
fd_proxy_start $RS_PORTAL 127.0.0.1:3260 || exit 1
insmod "$KO" || exit 1

matrix=()
for m in "${MOMENTS[@]}"; do
    for a in "${ACTIONS[@]}"; do
        [[ "$SKIP" == *" $a@$m "* ]] || matrix+=("$a@$m")
    done
done
log "matrix: ${#matrix[@]} combinations"
race_ms
start=$RACE_MS
order=()
for ((iter = 1; iter <= ITERATIONS; iter++)); do
    race_ms
    if [ $((RACE_MS - start)) -gt $((BUDGET_S * 1000)) ]; then
        bad "time budget of $BUDGET_S s spent: $((ITERATIONS - iter + 1)) of $ITERATIONS combinations not run"
        RACE_OUT_OF_TIME=1
        break
    fi
    if [ ${#order[@]} = 0 ]; then
        # A new round: Fisher-Yates over the matrix.
        order=("${matrix[@]}")
        for ((i = ${#order[@]} - 1; i > 0; i--)); do
            j=$((RANDOM % (i + 1)))
            t=${order[i]} order[i]=${order[j]} order[j]=$t
        done
    fi
    c=${order[0]}
    order=("${order[@]:1}")
    combo "${c%@*}" "${c#*@}"
done
race_ms
log "all combinations took $(((RACE_MS - start) / 1000)) s"

# --- teardown: nothing left, the module unloads.
RACE_CUR="the end"
end_ok=ok
left=$(timeout 30 "$CTL" list)
[ "$left" = "no sessions" ] || { bad "sessions left at the end: $left"; end_ok="not ok"; }
race_daemon_kill TERM
fd_stop
race_run 90 rmmod iscsi_rs
[ $RACE_RC = 0 ] || { bad "final rmmod failed: $RACE_OUT"; end_ok="not ok"; }
lio_teardown
echo "$end_ok lifecycle-race: no session left and rmmod at the end" >> "$subtests"
grep -c "handed off" /tmp/race-daemon.log | sed 's/^/daemon re-logins: /'
[ $FAILED_ANY = 0 ]
