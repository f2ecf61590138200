# istgt (the userspace iSCSI target from FreeBSD) helpers for guest cases
# (source this file). istgt runs from the host root's package (`make deps`); it
# reads its whole configuration at start, so the targets are described first and
# istgt_start writes istgt.conf and auth.conf into a writable dir and runs
# `istgt -c` on them.
#   istgt_lu -t IQN [-s SIZE_MB] [-c USER:SECRET] [-m MUSER:MSECRET] [-d]
#                          one target (istgt: a LogicalUnit) open to every
#                          initiator on 127.0.0.0/8, LUN 0 a file on tmpfs
#                          (default 64 MiB). -c: CHAP required, the initiator logs
#                          in as USER; -m: mutual CHAP, istgt proves itself as
#                          MUSER; -d: CRC32C header and data digests required
#                          (otherwise "UseDigest Auto": the initiator's choice)
#   istgt_start [PORTAL]   writes the config, starts istgt in the foreground in
#                          the background (log /tmp/istgt/istgt.log), returns once
#                          the portal accepts connections
#   istgt_stop             stops istgt (SIGTERM, its pid file), removes its files
# Session defaults are the sample istgt.conf's (Debian's examples/istgt.conf):
# MaxConnections 4, MaxOutstandingR2T 16, FirstBurstLength 262144,
# MaxBurstLength 1048576, MaxRecvDataSegmentLength 262144, InitialR2T Yes,
# ImmediateData Yes, NopInInterval 20, Timeout 30.
ISTGT_DIR=/tmp/istgt
ISTGT_LUS=()    # one LogicalUnit section each, numbered from 1
ISTGT_AUTH=()   # one AuthGroup section each (the LU of the same index + 1)

istgt_lu() {
    local iqn= size=64 chap= mutual= digest=Auto method=None n OPTIND opt group=
    while getopts "t:s:c:m:d" opt; do
        case $opt in
        t) iqn=$OPTARG ;; s) size=$OPTARG ;; c) chap=$OPTARG ;; m) mutual=$OPTARG ;;
        d) digest="Header Data" ;;
        *) echo "istgt_lu: bad option" >&2; return 2 ;;
        esac
    done
    [ -n "$iqn" ] || { echo "istgt_lu: -t IQN" >&2; return 2; }
    n=$((${#ISTGT_LUS[@]} + 1))
    mkdir -p $ISTGT_DIR
    truncate -s "${size}M" $ISTGT_DIR/lun-$n.img || return 1
    if [ -n "$chap" ]; then
        method=CHAP group="AuthGroup AuthGroup$n"
        # Auth "user" "secret" ["mutual user" "mutual secret"]: istgt looks the
        # initiator's CHAP_N up in the LU's group, case-insensitively.
        local line="Auth \"${chap%%:*}\" \"${chap#*:}\""
        if [ -n "$mutual" ]; then
            method="CHAP Mutual"
            line="$line \"${mutual%%:*}\" \"${mutual#*:}\""
        fi
        ISTGT_AUTH+=("[AuthGroup$n]
  $line")
    fi
    ISTGT_LUS+=("[LogicalUnit$n]
  TargetName $iqn
  Mapping PortalGroup1 InitiatorGroup1
  AuthMethod $method
  ${group:-AuthGroup None}
  UseDigest $digest
  UnitType Disk
  QueueDepth 32
  LUN0 Storage $ISTGT_DIR/lun-$n.img ${size}MB")
}

istgt_start() {
    local portal=${1:-127.0.0.1:3260} s _
    mkdir -p $ISTGT_DIR
    {
        cat <<EOF
[Global]
  NodeBase "iqn.2026-11.dev.iscsi-rs"
  PidFile $ISTGT_DIR/istgt.pid
  AuthFile $ISTGT_DIR/auth.conf
  MediaDirectory $ISTGT_DIR
  LogFacility "local7"
  Timeout 30
  NopInInterval 20
  DiscoveryAuthMethod Auto
  MaxSessions 16
  MaxConnections 4
  MaxR2T 32
  MaxOutstandingR2T 16
  DefaultTime2Wait 2
  DefaultTime2Retain 60
  FirstBurstLength 262144
  MaxBurstLength 1048576
  MaxRecvDataSegmentLength 262144
  InitialR2T Yes
  ImmediateData Yes
  DataPDUInOrder Yes
  DataSequenceInOrder Yes
  ErrorRecoveryLevel 0

# istgt refuses to start without this section; no Portal: no control listener.
[UnitControl]
  AuthMethod None

[PortalGroup1]
  Portal DA1 $portal

[InitiatorGroup1]
  InitiatorName "ALL"
  Netmask 127.0.0.0/8
EOF
        for s in "${ISTGT_LUS[@]}"; do printf '\n%s\n' "$s"; done
    } > $ISTGT_DIR/istgt.conf
    for s in "${ISTGT_AUTH[@]}"; do printf '%s\n\n' "$s"; done > $ISTGT_DIR/auth.conf
    chmod 600 $ISTGT_DIR/auth.conf
    # -D: stay in the foreground (its log goes to stderr as well as syslog).
    istgt -D -c $ISTGT_DIR/istgt.conf > $ISTGT_DIR/istgt.log 2>&1 &
    ISTGT_PID=$!
    for _ in $(seq 100); do
        bash -c "exec 3<>/dev/tcp/${portal%:*}/${portal##*:}" 2>/dev/null && return 0
        kill -0 $ISTGT_PID 2>/dev/null || break
        sleep 0.1
    done
    echo "istgt_start: istgt did not come up on $portal" >&2
    cat $ISTGT_DIR/istgt.conf $ISTGT_DIR/istgt.log >&2
    return 1
}

istgt_stop() {
    local pid _
    ISTGT_LUS=() ISTGT_AUTH=()
    # The pid file, not $ISTGT_PID: the harness calls this from another shell
    # after a failed case.
    pid=$(cat $ISTGT_DIR/istgt.pid 2>/dev/null || echo "${ISTGT_PID:-}")
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        # Gone already (the usual case): not a failure under `set -e`.
        kill -9 "$pid" 2>/dev/null || true
        [ "$pid" = "${ISTGT_PID:-}" ] && wait "$pid" 2>/dev/null
    fi
    ISTGT_PID=
    rm -rf $ISTGT_DIR
    return 0
}
