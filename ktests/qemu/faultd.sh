# iscsi-faultd helpers for guest cases (source this file): the fault-injection
# proxy in front of LIO and the hostile target (ktests/faultd).
#   fd_proxy_start LISTEN TARGET     proxy in the background (log /tmp/proxy.log)
#   fd_ctl COMMAND...                one control command; prints the reply
#   fd_hostile_start LISTEN SCENARIO [ARGS...]   hostile target (log $FD_HOSTILE_LOG,
#                                    /tmp/hostile.log unless set)
#   fd_stop                          stops what was started
# Needs rs.sh (rs_nap) sourced too.
FAULTD="$REPO/target/release/iscsi-faultd"
FD_SOCK=/tmp/faultd.sock
FD_PIDS=

fd_proxy_start() {
    rm -f $FD_SOCK
    "$FAULTD" proxy --listen "$1" --target "$2" --control $FD_SOCK > /tmp/proxy.log 2>&1 &
    FD_PIDS="$FD_PIDS $!"
    local i
    for ((i = 0; i < 50; i++)); do [ -S $FD_SOCK ] && return 0; rs_nap 0.1; done
    echo "proxy did not start" >&2; cat /tmp/proxy.log >&2; return 1
}

fd_ctl() {
    "$FAULTD" ctl $FD_SOCK "$@"
}

fd_hostile_start() {
    local listen=$1 scenario=$2; shift 2
    local log=${FD_HOSTILE_LOG:-/tmp/hostile.log} i line
    # A previous target's log says "listening" too.
    rm -f "$log"
    "$FAULTD" hostile --listen "$listen" --scenario "$scenario" "$@" > "$log" 2>&1 &
    FD_PIDS="$FD_PIDS $!"
    for ((i = 0; i < 50; i++)); do
        if [ -e "$log" ]; then
            while IFS= read -r line; do
                [[ $line != *listening* ]] || return 0
            done < "$log"
        fi
        rs_nap 0.1
    done
    echo "hostile target did not start" >&2; cat "$log" >&2; return 1
}

fd_stop() {
    local p
    for p in $FD_PIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
    FD_PIDS=
}
