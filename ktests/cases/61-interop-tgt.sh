# Issue 12: interop with tgt (tgtd from Debian's tgt package, started in the
# guest), the same steps as every interop case (ktests/qemu/interop.sh):
# discovery; logins without auth, with CHAP and with mutual CHAP (tgtd's
# "outgoing" account; wrong credentials refused); fio verify and ext4 + fsck,
# without digests and with CRC32C header and data digests; logout. tgtd's
# own defaults otherwise (it accepts at most MaxRecvDataSegmentLength 8192 from
# us); LUN 0 is tgt's controller, the disk is LUN 1. tgtd refuses the SHA-256
# CHAP_A list with an initiator error; iscsictl retries with a shorter list and
# logs in with MD5 (the retry is iscsictl's tgt quirk, shown in the log).
# guest-boot: 2
set -eu
. "$REPO/ktests/qemu/tgt.sh"
IOP_NAME=tgt
IOP_LUN=1
iop_start() {
    tgt_start 127.0.0.1:3260 || return 1
    tgt_target -n 1 -t "$IOP_PLAIN" -s "$IOP_SIZE" || return 1
    tgt_target -n 2 -t "$IOP_CHAP" -s 8 -c "$IOP_USER:$IOP_SECRET" || return 1
    tgt_target -n 3 -t "$IOP_MUTUAL" -s 8 -c "$IOP_MUSER:$IOP_MSECRET" -m "$IOP_TUSER:$IOP_TSECRET"
}
iop_stop() { tgt_stop; }
. "$REPO/ktests/qemu/interop.sh"
