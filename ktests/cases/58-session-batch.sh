# Case: batched submission. fio submits 32 commands per io_submit (the block
# layer flushes them as one batch: SCMD_LAST only on the last), and waits for
# all 32 before the next batch, so nothing else is in flight to carry a push:
# the commands before the last go with MSG_MORE, and if the batch's end did not
# push them they would sit in TCP until the SCSI timeout (keepalive pings, which
# would also push, are off). Every I/O must verify and finish within fio's
# max_latency, and no command may time out.
# guest-boot: 2
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
iqn=iqn.2026-12.dev.iscsi-rs:batch
lio_setup -t $iqn -s 64
tpg=/sys/kernel/config/target/iscsi/$iqn/tpgt_1
# Data segments sent by the initiator's socket (the one whose peer is port
# 3260), from ss.
segs() {
    ss -tinH state established | awk '$4 ~ /:3260$/ { getline
        if (match($0, /data_segs_out:[0-9]+/)) print substr($0, RSTART + 14, RLENGTH - 14) }'
}
insmod "$KO"
for r2t in Yes No; do
    echo $r2t > $tpg/param/InitialR2T
    host=$(rs_login -t $iqn --param InitialR2T=$r2t --noop-interval 0 --queue-depth 64)
    dev=$(rs_disk $host)
    [ -n "$dev" ]
    # Small commands (one segment each, the batch fits in few TCP segments),
    # then a mix up to 256 KiB (immediate, unsolicited and R2T data in a batch).
    for bs in 4k-4k 4k-256k; do
        fio --name=batch --filename=/dev/$dev --direct=1 --ioengine=libaio --iodepth=32 \
            --iodepth_batch_submit=32 --iodepth_batch_complete_min=32 \
            --rw=randrw --bsrange=$bs --size=16m --verify=crc32c --verify_fatal=1 \
            --do_verify=1 --randrepeat=0 --max_latency=3s --output-format=terse > /tmp/fio.out
    done
    # Batching shows on the wire: 4 KiB reads, 32 per io_submit, against
    # the same reads one per io_submit: data segments sent per I/O.
    ss -tin state established >&2
    [ "$(segs | wc -l)" = 1 ]
    for batch in 1 32; do
        before=$(segs); [ -n "$before" ]
        fio --name=segs --filename=/dev/$dev --direct=1 --ioengine=libaio --iodepth=32 \
            --iodepth_batch_submit=$batch --iodepth_batch_complete_min=32 \
            --rw=randread --bs=4k --size=8m --randrepeat=0 --max_latency=3s --output-format=terse > /tmp/fio.out
        after=$(segs); [ -n "$after" ]
        n=$(( (after - before) * 1000 / 4096 ))
        if [ $batch = 1 ]; then single=$n; else batched=$n; fi
    done
    echo "data segments sent per 1000 reads: $single one per io_submit, $batched 32 per io_submit"
    [ "$batched" -lt $((single * 6 / 10)) ]
    rs_ran_clean $host $dev
    rs_remove $host
done
rmmod iscsi_rs
lio_teardown
