# tgt (tgtd, the userspace SCSI target framework) helpers for guest cases
# (source this file). tgtd runs from the host root's package (`make deps`).
#   tgt_start [PORTAL]            tgtd in the background (log /tmp/tgt/tgtd.log),
#                                 returns once the portal accepts connections
#   tgt_target -n TID -t IQN [-s SIZE_MB] [-c USER:SECRET] [-m MUSER:MSECRET] [-d]
#                                 a target open to every initiator; LUN 0 is tgt's
#                                 own controller, LUN 1 a file on tmpfs (default
#                                 64 MiB). -c: the initiator must log in with CHAP
#                                 as USER; -m: tgtd also proves itself as MUSER
#                                 (mutual CHAP); -d: CRC32C header and data digests
#                                 required (otherwise CRC32C or None, the
#                                 initiator's choice: tgtd answers None to a CRC32C
#                                 offer unless told it may digest)
#   tgt_sessions TID              prints the number of I_T nexuses (sessions) of TID
#   tgt_stop                      deletes the targets, stops tgtd
# tgtd ignores SIGTERM while a target exists, hence the delete-then-exit order.
# TGT_CTL: tgtd's control "port" (names its management socket), 0 unless set.
TGT_DIR=/tmp/tgt

tgt_adm() {
    tgtadm -C "${TGT_CTL:-0}" --lld iscsi "$@"
}

tgt_start() {
    local portal=${1:-127.0.0.1:3260} _
    mkdir -p $TGT_DIR /var/run/tgtd
    tgtd -f -C "${TGT_CTL:-0}" --iscsi "portal=$portal" > $TGT_DIR/tgtd.log 2>&1 &
    TGT_PID=$!
    # tgtd that cannot bind the portal falls back to 0.0.0.0:3260 instead of
    # failing, hence the check that the portal list has ours.
    for _ in $(seq 100); do
        if tgt_adm --op show --mode portal 2>/dev/null | grep -q "$portal" &&
           bash -c "exec 3<>/dev/tcp/${portal%:*}/${portal##*:}" 2>/dev/null; then
            return 0
        fi
        kill -0 $TGT_PID 2>/dev/null || break
        sleep 0.1
    done
    echo "tgt_start: tgtd did not come up on $portal" >&2
    cat $TGT_DIR/tgtd.log >&2
    return 1
}

tgt_target() {
    local tid= iqn= size=64 chap= mutual= digest=0 OPTIND opt key
    while getopts "n:t:s:c:m:d" opt; do
        case $opt in
        n) tid=$OPTARG ;; t) iqn=$OPTARG ;; s) size=$OPTARG ;;
        c) chap=$OPTARG ;; m) mutual=$OPTARG ;; d) digest=1 ;;
        *) echo "tgt_target: bad option" >&2; return 2 ;;
        esac
    done
    [ -n "$tid" ] && [ -n "$iqn" ] || { echo "tgt_target: -n TID -t IQN" >&2; return 2; }
    truncate -s "${size}M" $TGT_DIR/lun-$tid.img || return 1
    tgt_adm --op new --mode target --tid "$tid" -T "$iqn" || return 1
    tgt_adm --op new --mode logicalunit --tid "$tid" --lun 1 -b $TGT_DIR/lun-$tid.img || return 1
    tgt_adm --op bind --mode target --tid "$tid" -I ALL || return 1
    for key in HeaderDigest DataDigest; do
        if [ $digest = 1 ]; then
            tgt_adm --op update --mode target --tid "$tid" -n $key -v CRC32C || return 1
        else
            tgt_adm --op update --mode target --tid "$tid" -n $key -v CRC32C,None || return 1
        fi
    done
    if [ -n "$chap" ]; then
        tgt_adm --op new --mode account --user "${chap%%:*}" --password "${chap#*:}" || return 1
        tgt_adm --op bind --mode account --tid "$tid" --user "${chap%%:*}" || return 1
    fi
    if [ -n "$mutual" ]; then
        tgt_adm --op new --mode account --user "${mutual%%:*}" --password "${mutual#*:}" || return 1
        tgt_adm --op bind --mode account --tid "$tid" --user "${mutual%%:*}" --outgoing || return 1
    fi
}

tgt_sessions() {
    tgt_adm --op show --mode target | awk -v tid="$1" '
        /^Target [0-9]+:/ { cur = ($2 == tid ":") }
        cur && /I_T nexus: [0-9]+/ { n++ }
        END { print n + 0 }'
}

tgt_stop() {
    local tid _
    # Through tgtadm, not $TGT_PID: the harness calls this from another shell
    # after a failed case.
    if tgt_adm --op show --mode target > /dev/null 2>&1; then
        for tid in $(tgt_adm --op show --mode target | sed -n 's/^Target \([0-9]*\):.*/\1/p'); do
            tgt_adm --op delete --mode target --force --tid "$tid"
        done
        tgt_adm --op delete --mode system
        for _ in $(seq 50); do
            tgt_adm --op show --mode target > /dev/null 2>&1 || break
            sleep 0.1
        done
    fi
    if [ -n "${TGT_PID:-}" ]; then
        kill "$TGT_PID" 2>/dev/null
        wait "$TGT_PID" 2>/dev/null
    fi
    TGT_PID=
    rm -rf $TGT_DIR
    return 0
}
