# Case: a full send buffer. With the guest's TCP send buffers held at 16 KiB
# (net.ipv4.tcp_wmem), sessions writing 4 KiB-1 MiB blocks meet a full send
# buffer again and again (several PDUs of up to 256 KiB each wait at once).
# Submitters and the TX work do not wait there
# (MSG_DONTWAIT): the send stops, the PDU stays under way, and the socket's
# write_space has the TX work finish it from the byte it reached. A PDU cut
# short or interleaved at a stop corrupts the stream (LIO drops the
# connection: a recovery); a lost wake-up leaves commands unsent until the
# SCSI timeout. So fio must verify with no command timed out and no
# recovery, and sysfs tx_stalled must show that sends stopped, or the case
# proves nothing. Unsolicited data (sent by the submitters) and R2T bursts
# (sent by the TX work), each without and with digests (pages by reference,
# the data digest over them). Last, a logout while sends are stopped: the
# host's removal waits for the writes in flight, then the Logout goes, and
# all of it, and the writer, must end without a hang. The load stays small:
# through a 16 KiB send buffer TCP moves a few MB/s on loopback (a segment
# per delayed ACK), and with 64 writes of 1 MiB in flight LIO's 3 s DataOut
# timeout drops the connection (seen with the blocking sender as well).
# guest-boot: 2
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
iqn=iqn.2026-12.dev.iscsi-rs:sndbuf
lio_setup -t $iqn -s 64
tpg=/sys/kernel/config/target/iscsi/$iqn/tpgt_1
echo "CRC32C,None" > $tpg/param/HeaderDigest
echo "CRC32C,None" > $tpg/param/DataDigest
echo No > $tpg/param/InitialR2T
echo Yes > $tpg/param/ImmediateData
# New sockets (iscsictl's, and LIO's accepted ones) start and stay at 16 KiB.
sysctl -w net.ipv4.tcp_wmem="4096 16384 16384"
insmod "$KO"
for r2t in No Yes; do
    for dd in none crc32c; do
        host=$(rs_login -t $iqn --param InitialR2T=$r2t --header-digest $dd \
               --data-digest $dd --queue-depth 64)
        s=/sys/class/scsi_host/host$host
        [ "$(cat $s/initial_r2t)" = $r2t ]
        [ "$(cat $s/data_digest | tr A-Z a-z)" = $dd ]
        dev=$(rs_disk $host)
        [ -n "$dev" ]
        fio --name=full --filename=/dev/$dev --direct=1 --ioengine=libaio --iodepth=8 \
            --numjobs=2 --cpus_allowed=0,1 --cpus_allowed_policy=split \
            --size=16m --offset_increment=16m --rw=randrw --rwmixwrite=70 \
            --bsrange=4k-256k --verify=crc32c --verify_fatal=1 --do_verify=1 \
            --randrepeat=0 --output-format=terse > /tmp/fio.out
        stalled=$(cat $s/tx_stalled)
        echo "InitialR2T=$r2t digests=$dd: $stalled sends stopped at a full buffer"
        case $stalled in ''|*[!0-9]*) echo "bad tx_stalled: '$stalled'" >&2; exit 1 ;; esac
        [ "$stalled" -gt 0 ]
        rs_ran_clean $host $dev
        rs_remove $host
    done
done

# A logout while the transmit side waits for room: the host's removal waits
# for the writes in flight, the Logout goes, and the writer's I/O fails.
host=$(rs_login -t $iqn --data-digest crc32c --queue-depth 64)
s=/sys/class/scsi_host/host$host
dev=$(rs_disk $host)
[ -n "$dev" ]
fio --name=bye --filename=/dev/$dev --direct=1 --ioengine=libaio --iodepth=16 \
    --rw=write --bs=256k --size=64m --time_based --runtime=60 \
    --output-format=terse > /tmp/fio-bye.out 2>&1 &
writer=$!
before=$(cat $s/tx_stalled)
for _ in $(seq 100); do
    [ "$(cat $s/tx_stalled)" -gt "$before" ] && break
    sleep 0.1
done
[ "$(cat $s/tx_stalled)" -gt "$before" ]
t0=$(rs_now)
rs_remove $host
for _ in $(seq 300); do
    kill -0 $writer 2>/dev/null || break
    sleep 0.1
done
if kill -0 $writer 2>/dev/null; then
    echo "fio still running 30 s after the logout" >&2
    exit 1
fi
wait $writer || true
awk "BEGIN{print \"logout under stopped sends took \" $(rs_now) - $t0 \" s\"}"
rs_target_gone $iqn
rmmod iscsi_rs
lio_teardown
