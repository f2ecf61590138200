# Case: the write paths and digests. For InitialR2T {Yes,No} x ImmediateData
# {Yes,No}, with CRC32C header and data digests on the target, a session writes
# 8 MiB in block sizes from 4 KiB to 1 MiB (R2T-driven, unsolicited and immediate
# data) and reads it back equal.
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
iqn=iqn.2026-11.dev.iscsi-rs:params
lio_setup -t $iqn -s 32 -d
tpg=/sys/kernel/config/target/iscsi/$iqn/tpgt_1
insmod "$KO"
head -c 8M /dev/urandom > /tmp/pattern
for r2t in Yes No; do
    for imm in Yes No; do
        echo $r2t > $tpg/param/InitialR2T
        echo $imm > $tpg/param/ImmediateData
        host=$(rs_login -t $iqn --param InitialR2T=$r2t --param ImmediateData=$imm --header-digest crc32c --data-digest crc32c)
        sysfs=/sys/class/scsi_host/host$host
        [ "$(cat $sysfs/initial_r2t)" = $r2t ]
        [ "$(cat $sysfs/immediate_data)" = $imm ]
        [ "$(cat $sysfs/header_digest)" = CRC32C ]
        [ "$(cat $sysfs/data_digest)" = CRC32C ]
        dev=$(rs_disk $host)
        off=0
        for bs in 4096 65536 131072 1048576; do
            dd if=/tmp/pattern of=/dev/$dev bs=$bs count=$((2097152 / bs)) skip=$((off / bs)) seek=$((off / bs)) oflag=direct status=none
            off=$((off + 2097152))
        done
        dd if=/dev/$dev of=/tmp/readback bs=1M count=8 iflag=direct status=none
        cmp /tmp/pattern /tmp/readback
        rs_remove $host
    done
done
rmmod iscsi_rs
lio_teardown
