# Guest side of `make bench` (source this file; ktests/bench/guest/*.sh call
# bench_round N). One LIO ramdisk (rd_mcp) is exported three ways in turn --
# iscsi_rs (iscsictl), open-iscsi (iscsiadm + iscsi_tcp) and tcm_loop (a local
# SCSI disk, no network) -- and the same fio jobs run on each. The raw fio JSON,
# /proc/stat samples and the negotiated parameters of a round go back to the host
# as one tarball, bench-rN.tar.gz (ktests/bench/report.py reads it).
# Mode: iscsirs.bench=quick|full on the kernel command line (ktests/bench/run.sh).
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"

# The bench module is built against the bench kernel into its own directory
# (ktests/bench/build-module.sh): the repo's iscsi_rs.ko is the debug build.
KO=$REPO/ktests/bench/out/module/iscsi_rs.ko
BENCH_IQN=iqn.2026-11.dev.iscsi-rs:bench
BENCH_PORTAL=127.0.0.1:3260
BENCH_SIZE_MB=256
# tcm_loop: target WWN (one SCSI host per WWN) and the I_T nexus's initiator port.
BENCH_LOOP_WWN=naa.5001405bec000001
BENCH_LOOP_INIT=naa.5001405bec000002
BENCH_QD=128
BENCH_MODE=full
for arg in $(cat /proc/cmdline); do
    case "$arg" in iscsirs.bench=*) BENCH_MODE=${arg#*=} ;; esac
done
if [ "$BENCH_MODE" = quick ]; then BENCH_RUNTIME=5 BENCH_RAMP=2; else BENCH_RUNTIME=20 BENCH_RAMP=5; fi
B=/tmp/bench
# name rw bs iodepth; digest sessions run only the jobs in BENCH_DIGEST_JOBS.
BENCH_JOBS="randread-4k-qd32:randread:4k:32 randread-4k-qd1:randread:4k:1 randwrite-4k-qd32:randwrite:4k:32 read-1m-qd8:read:1m:8 write-1m-qd8:write:1m:8"
BENCH_DIGEST_JOBS="randread-4k-qd32 read-1m-qd8"
# Operational keys both iSCSI initiators ask for (LIO is set to the same).
BENCH_MRDSL=262144 BENCH_FBL=262144 BENCH_MBL=1048576

bench_fail=0

# Ships FILE to the host the way guest.sh does (run.sh unpacks it into --out).
bench_send() {
    { echo "@@FILE ${1##*/}"; base64 -w 76 "$1"; echo "@@END"; } > /dev/ttyS1
}

# "busy total" jiffies over all CPUs, then uptime in seconds.
bench_stat() {
    awk '/^cpu /{b=$2+$3+$4+$7+$8+$9; t=b+$5+$6; printf "%d %d ", b, t}' /proc/stat
    cut -d' ' -f1 /proc/uptime
}

# bench_fio_start TAG DEV SPEC: starts the fio job of SPEC (name:rw:bs:iodepth) on
# /dev/DEV in the background (JSON to $B/fio-TAG-NAME.json); sets BENCH_FIO_PID
# and BENCH_FIO_NAME.
bench_fio_start() {
    local tag=$1 dev=$2 name rw bs qd
    IFS=: read -r name rw bs qd <<<"$3"
    fio --name="$name" --filename="/dev/$dev" --direct=1 --ioengine=libaio \
        --rw="$rw" --bs="$bs" --iodepth="$qd" --numjobs=1 --norandommap --randrepeat=0 \
        --time_based --runtime="$BENCH_RUNTIME" --ramp_time="$BENCH_RAMP" \
        --output-format=json --output="$B/fio-$tag-$name.json" > "$B/fio-$tag-$name.log" 2>&1 &
    BENCH_FIO_PID=$! BENCH_FIO_NAME=$name
}

# bench_fio TAG DEV SPEC: one fio job; JSON to $B/fio-TAG-NAME.json and the CPU
# samples of its measured window (after the ramp, before the end) to cpu-TAG-NAME.txt.
bench_fio() {
    local tag=$1 dev=$2 name pid s1 s2 rc
    bench_fio_start "$tag" "$dev" "$3"
    pid=$BENCH_FIO_PID name=$BENCH_FIO_NAME
    sleep "$BENCH_RAMP"; s1=$(bench_stat)
    sleep $((BENCH_RUNTIME - 1)); s2=$(bench_stat)
    wait $pid; rc=$?
    echo "$s1 $s2" > "$B/cpu-$tag-$name.txt"
    if [ $rc = 0 ] && grep -q '"jobs"' "$B/fio-$tag-$name.json"; then
        echo "ok bench $tag $name" >> "$BENCH_SUBTESTS"
    else
        echo "not ok bench $tag $name (fio rc=$rc)" >> "$BENCH_SUBTESTS"
        cat "$B/fio-$tag-$name.log" >&2
        bench_fail=1
    fi
}

# bench_jobs TAG DEV [digest]: the job list (or its digest subset) on /dev/DEV.
bench_jobs() {
    local j
    for j in $BENCH_JOBS; do
        [ -z "${3:-}" ] || [[ " $BENCH_DIGEST_JOBS " == *" ${j%%:*} "* ]] || continue
        bench_fio "$1" "$2" "$j"
    done
}

# Called before the jobs: equalizes what sysfs lets us (no I/O scheduler, queue
# depth 128 where the driver can change it), then prints it.
bench_blockinfo() {
    local d=/sys/block/$1 f
    echo none > "$d/queue/scheduler" 2>/dev/null
    echo $BENCH_QD > "$d/device/queue_depth" 2>/dev/null
    for f in device/queue_depth queue/nr_requests queue/max_sectors_kb queue/max_hw_sectors_kb queue/scheduler; do
        echo "$f: $(cat "$d/$f" 2>/dev/null)"
    done
}

bench_rs() {  # bench_rs TAG [digest]
    local host dev dig=()
    [ -n "${2:-}" ] && dig=(--header-digest crc32c --data-digest crc32c)
    host=$(rs_login -t $BENCH_IQN --queue-depth $BENCH_QD --param MaxRecvDataSegmentLength=$BENCH_MRDSL \
        --param FirstBurstLength=$BENCH_FBL --param MaxBurstLength=$BENCH_MBL \
        --param InitialR2T=No --param ImmediateData=Yes "${dig[@]}") || { bench_fail=1; return; }
    dev=$(rs_disk "$host")
    [ -n "$dev" ] || { echo "bench: no disk on host$host" >&2; bench_fail=1; rs_remove "$host"; return; }
    {
        local h=/sys/class/scsi_host/host$host f
        for f in header_digest data_digest max_recv_data_segment_length max_xmit_data_segment_length \
                 first_burst_length max_burst_length initial_r2t immediate_data max_outstanding_r2t can_queue; do
            echo "$f: $(cat $h/$f 2>/dev/null)"
        done
        bench_blockinfo "$dev"
    } > "$B/params-$1.txt"
    bench_jobs "$1" "$dev" "${2:-}"
    rs_remove "$host"
}

bench_oi() {  # bench_oi TAG [digest]
    local dev d=None n=(iscsiadm -m node -T $BENCH_IQN -p $BENCH_PORTAL)
    [ -n "${2:-}" ] && d=CRC32C
    "${n[@]}" -o update -n node.session.cmds_max -v $BENCH_QD
    "${n[@]}" -o update -n node.session.queue_depth -v $BENCH_QD
    "${n[@]}" -o update -n node.session.iscsi.InitialR2T -v No
    "${n[@]}" -o update -n node.session.iscsi.ImmediateData -v Yes
    "${n[@]}" -o update -n node.session.iscsi.FirstBurstLength -v $BENCH_FBL
    "${n[@]}" -o update -n node.session.iscsi.MaxBurstLength -v $BENCH_MBL
    "${n[@]}" -o update -n 'node.conn[0].iscsi.MaxRecvDataSegmentLength' -v $BENCH_MRDSL
    "${n[@]}" -o update -n 'node.conn[0].iscsi.HeaderDigest' -v $d
    "${n[@]}" -o update -n 'node.conn[0].iscsi.DataDigest' -v $d
    "${n[@]}" --login > /dev/null || { bench_fail=1; return; }
    dev=$(openiscsi_disk $BENCH_IQN)
    if [ -n "$dev" ]; then
        {
            iscsiadm -m session -P 3 | sed -n '/Negotiated iSCSI params/,/Attached SCSI devices/p' | grep -v 'Attached SCSI' | sed 's/^[[:space:]]*//'
            local h
            h=$(ls -d /sys/block/$dev/device/scsi_device/*) h=${h##*/} h=${h%%:*}
            echo "can_queue: $(cat /sys/class/scsi_host/host$h/can_queue)"
            bench_blockinfo "$dev"
        } > "$B/params-$1.txt"
        bench_jobs "$1" "$dev" "${2:-}"
    else
        echo "bench: no open-iscsi disk" >&2; bench_fail=1
    fi
    "${n[@]}" --logout > /dev/null
}

bench_loop_down() {
    local t=$LIO/loopback/$BENCH_LOOP_WWN/tpgt_1 s
    [ -d "$t" ] || return 0
    for s in "$t"/lun/lun_0/*; do [ -L "$s" ] && rm "$s"; done
    [ -d "$t/lun/lun_0" ] && rmdir "$t/lun/lun_0"
    echo NULL > "$t/nexus" 2>/dev/null
    rmdir "$t" "$LIO/loopback/$BENCH_LOOP_WWN"
}

bench_loop() {  # bench_loop TAG: the same backstore as a local SCSI disk via tcm_loop
    local t=$LIO/loopback/$BENCH_LOOP_WWN/tpgt_1 store host= dev= h _
    store=$(ls -d $LIO/core/rd_mcp_0/*_0 | head -1)
    mkdir -p "$t/lun/lun_0"
    echo $BENCH_LOOP_INIT > "$t/nexus"
    # Linking the LUN makes tcm_loop add SCSI device 0:tpgt:lun to its host.
    ln -s "$store" "$t/lun/lun_0/${store##*/}"
    for h in /sys/class/scsi_host/host*; do
        [ "$(cat "$h/proc_name")" = tcm_loopback ] && host=${h##*host}
    done
    for _ in $(seq 100); do
        dev=$(ls "/sys/bus/scsi/devices/$host:0:1:0/block/" 2>/dev/null | head -1)
        [ -n "$dev" ] && [ -b "/dev/$dev" ] && break
        dev=; sleep 0.1
    done
    if [ -n "$dev" ]; then
        { echo "can_queue: $(cat /sys/class/scsi_host/host$host/can_queue)"; bench_blockinfo "$dev"; } > "$B/params-$1.txt"
        bench_jobs "$1" "$dev"
    else
        echo "bench: no tcm_loop disk" >&2; bench_fail=1
    fi
    bench_loop_down
}

bench_cleanup() {
    bench_loop_down
    "$CTL" logout -a > /dev/null 2>&1
    iscsiadm -m node --logoutall=all > /dev/null 2>&1
    pkill -x iscsid
    rmmod iscsi_rs 2>/dev/null
    lio_teardown
}

# bench_round N: one round; the initiators' order rotates with N so that drift
# within a round does not always hit the same one.
bench_round() {
    local r=$1 order tpg=$LIO/iscsi/$BENCH_IQN/tpgt_1 who
    trap bench_cleanup EXIT
    rm -rf $B && mkdir -p $B
    BENCH_SUBTESTS=$OUT/subtests-bench-r$r
    : > "$BENCH_SUBTESTS"
    {
        echo "mode: $BENCH_MODE"; echo "runtime: $BENCH_RUNTIME"; echo "ramp: $BENCH_RAMP"
        echo "kernel: $(uname -r) $(uname -v)"; echo "cpus: $(nproc)"
        echo "mem_kb: $(awk '/MemTotal/{print $2}' /proc/meminfo)"
        echo "fio: $(fio --version)"; echo "iscsiadm: $(iscsiadm --version)"
        echo "backstore: rd_mcp ${BENCH_SIZE_MB} MiB"
    } > $B/env.txt
    lio_setup -t $BENCH_IQN -s $BENCH_SIZE_MB -b ramdisk
    # Same operational limits for both iSCSI initiators; LIO accepts CRC32C or None.
    echo $BENCH_MRDSL > $tpg/param/MaxRecvDataSegmentLength
    echo $BENCH_FBL > $tpg/param/FirstBurstLength
    echo $BENCH_MBL > $tpg/param/MaxBurstLength
    echo No > $tpg/param/InitialR2T
    echo Yes > $tpg/param/ImmediateData
    echo CRC32C,None > $tpg/param/HeaderDigest
    echo CRC32C,None > $tpg/param/DataDigest
    for f in MaxRecvDataSegmentLength MaxXmitDataSegmentLength FirstBurstLength MaxBurstLength \
             InitialR2T ImmediateData HeaderDigest DataDigest; do
        echo "$f: $(cat $tpg/param/$f)"
    done > $B/params-lio.txt
    insmod "$KO"
    openiscsi_start
    iscsiadm -m discovery -t st -p $BENCH_PORTAL > /dev/null
    case $((r % 3)) in
    1) order="rs oi loop" ;; 2) order="oi loop rs" ;; *) order="loop rs oi" ;;
    esac
    for who in $order; do
        case $who in
        rs) bench_rs "r$r-rs"; bench_rs "r$r-rsdig" digest ;;
        oi) bench_oi "r$r-oi"; bench_oi "r$r-oidig" digest ;;
        loop) bench_loop "r$r-loop" ;;
        esac
    done
    trap - EXIT
    bench_cleanup
    tar -czf "/tmp/bench-r$r.tar.gz" -C $B .
    bench_send "/tmp/bench-r$r.tar.gz"
    return $bench_fail
}
