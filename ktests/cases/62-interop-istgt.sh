# Issue 12: interop with istgt (the FreeBSD userspace target, Debian's istgt
# package, started in the guest with a generated config in /tmp and the sample
# istgt.conf's session defaults: MaxConnections 4, MaxOutstandingR2T 16,
# FirstBurstLength 262144, MaxBurstLength 1048576, InitialR2T Yes,
# ImmediateData Yes), the same steps as every interop case
# (ktests/qemu/interop.sh): discovery; logins without auth, with CHAP and with
# mutual CHAP ("AuthMethod CHAP Mutual"; wrong credentials refused); fio verify
# and ext4 + fsck, without digests and with CRC32C header and data digests
# ("UseDigest Auto": the initiator's choice); logout. istgt does CHAP with MD5
# only. Its disk is LUN 0, QueueDepth 32.
# guest-boot: 2
set -eu
. "$REPO/ktests/qemu/istgt.sh"
IOP_NAME=istgt
IOP_LUN=0
iop_start() {
    istgt_lu -t "$IOP_PLAIN" -s "$IOP_SIZE" || return 1
    istgt_lu -t "$IOP_CHAP" -s 8 -c "$IOP_USER:$IOP_SECRET" || return 1
    istgt_lu -t "$IOP_MUTUAL" -s 8 -c "$IOP_MUSER:$IOP_MSECRET" -m "$IOP_TUSER:$IOP_TSECRET" || return 1
    istgt_start 127.0.0.1:3260
}
# istgt's own account (why it closed a connection, say) goes with the case log.
iop_stop() {
    echo "--- istgt log (tail)" >&2
    tail -n 80 "$ISTGT_DIR/istgt.log" >&2
    istgt_stop
}
. "$REPO/ktests/qemu/interop.sh"
