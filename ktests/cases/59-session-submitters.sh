# Case: submitters that meet. Two fio jobs, one pinned to each CPU, submit to
# the same session at once (with the receiver queueing R2T bursts and pings
# for the TX work meanwhile). A submitter that finds the transmit side held
# does not wait: it leaves its Command PDU to the holder, which sends the
# queue before and after letting go. A command left with nobody to send it
# would sit until the SCSI timeout: every I/O must verify and finish within
# fio's max_latency, no command may time out, and the hand-over must have
# happened (sysfs tx_handed_over), or the case proves nothing.
# guest-boot: 2
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
iqn=iqn.2026-12.dev.iscsi-rs:submitters
lio_setup -t $iqn -s 64
tpg=/sys/kernel/config/target/iscsi/$iqn/tpgt_1
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs, has $(nproc)" >&2; exit 1; }
insmod "$KO"
for r2t in Yes No; do
    echo $r2t > $tpg/param/InitialR2T
    host=$(rs_login -t $iqn --param InitialR2T=$r2t --noop-interval 1 --queue-depth 64)
    dev=$(rs_disk $host)
    [ -n "$dev" ]
    # Each job verifies its own 16 MiB (offset_increment), so the two never
    # overwrite each other's blocks.
    fio --name=meet --filename=/dev/$dev --direct=1 --ioengine=libaio --iodepth=16 \
        --numjobs=2 --cpus_allowed=0,1 --cpus_allowed_policy=split \
        --size=16m --offset_increment=16m --rw=randrw --bsrange=4k-256k \
        --verify=crc32c --verify_fatal=1 --do_verify=1 --randrepeat=0 \
        --max_latency=3s --output-format=terse > /tmp/fio.out
    handed=$(cat /sys/class/scsi_host/host$host/tx_handed_over)
    echo "InitialR2T=$r2t: $handed submissions left to another sender"
    case $handed in ''|*[!0-9]*) echo "bad tx_handed_over: '$handed'" >&2; exit 1 ;; esac
    [ "$handed" -gt 0 ]
    rs_ran_clean $host $dev
    rs_remove $host
done
rmmod iscsi_rs
lio_teardown
