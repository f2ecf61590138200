# Case: concurrency. fio random read/write with crc32c verification, block sizes
# 4 KiB to 1 MiB, iodepth 32, over a session with CRC32C digests and
# InitialR2T=No/ImmediateData=Yes (immediate, unsolicited and R2T data at once),
# then the same with the defaults; every byte read back must verify.
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
iqn=iqn.2026-11.dev.iscsi-rs:fio
lio_setup -t $iqn -s 96 -d
tpg=/sys/kernel/config/target/iscsi/$iqn/tpgt_1
insmod "$KO"
for r2t in No Yes; do
    echo $r2t > $tpg/param/InitialR2T
    host=$(rs_login -t $iqn --param InitialR2T=$r2t --header-digest crc32c --data-digest crc32c --queue-depth 64)
    sysfs=/sys/class/scsi_host/host$host
    dev=$(rs_disk $host)
    fio --name=verify --filename=/dev/$dev --direct=1 --ioengine=libaio --iodepth=32 \
        --rw=randrw --bsrange=4k-1m --size=64m --verify=crc32c --verify_fatal=1 \
        --do_verify=1 --randrepeat=0 --output-format=terse > /tmp/fio.out
    "$CTL" list
    rs_remove $host
done
rmmod iscsi_rs
lio_teardown
