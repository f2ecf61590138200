# Guest side of `make bench` (source this file; ktests/bench/guest/*.sh call
# bench_round N). One brd RAM disk (/dev/ram0, sized on the kernel command line by
# ktests/bench/run.sh) is the device behind every path, five paths in turn:
# iscsi_rs (iscsictl) with one connection (`--connections 1`) and with two
# (`--connections 2`, MC/S, issue 16) and open-iscsi (iscsiadm + iscsi_tcp) to
# LIO's iSCSI target over an iblock backstore on it, tcm_loop (a local SCSI
# disk on the same iblock backstore, no network) and nvme-tcp to the kernel's
# nvmet-tcp target whose namespace is the same /dev/ram0. The same fio jobs run
# on each. The raw fio JSON (json+, with total-latency histograms), /proc/stat
# and per-thread CPU snapshots and the negotiated parameters of a round go back
# to the host as one tarball, bench-rN.tar.gz (ktests/bench/report.py reads it).
# Mode: iscsirs.bench=quick|full on the kernel command line (ktests/bench/run.sh).
# Guest scripts run under `set -u` only, like the cases: a failed job is recorded
# as "not ok" and the round goes on to the next one.
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"

# The bench module is built against the bench kernel into its own directory
# (ktests/bench/build-module.sh): the repo's iscsi_rs.ko is the debug build.
KO=$REPO/ktests/bench/out/module/iscsi_rs.ko
BENCH_IQN=iqn.2026-11.dev.iscsi-rs:bench
BENCH_PORTAL=127.0.0.1:3260
BENCH_DEV=/dev/ram0
BENCH_SIZE_MB=256
# LIO iblock backstore over BENCH_DEV (shared by the iSCSI TPG and tcm_loop).
BENCH_STORE=$LIO/core/iblock_0/bench
# tcm_loop: target WWN (one SCSI host per WWN) and the I_T nexus's initiator port.
BENCH_LOOP_WWN=naa.5001405bec000001
BENCH_LOOP_INIT=naa.5001405bec000002
# nvmet: subsystem (any host may connect), namespace 1 on BENCH_DEV, TCP port 1.
NVMET=/sys/kernel/config/nvmet
BENCH_NQN=nqn.2026-11.dev.iscsi-rs:bench
# A host NQN of our own needs a host ID of its own too: the kernel refuses a
# second NQN for the default host's ID.
BENCH_HOSTNQN=nqn.2026-11.dev.iscsi-rs:guest-nvme
BENCH_HOSTID=6e766d65-7463-4000-8000-62656e636801
BENCH_NVME_ADDR=127.0.0.1 BENCH_NVME_PORT=4420
BENCH_QD=128
BENCH_MODE=full
for arg in $(cat /proc/cmdline); do
    case "$arg" in iscsirs.bench=*) BENCH_MODE=${arg#*=} ;; esac
done
if [ "$BENCH_MODE" = quick ]; then BENCH_RUNTIME=2 BENCH_RAMP=1; else BENCH_RUNTIME=20 BENCH_RAMP=5; fi
B=/tmp/bench
# name:rw:bs:iodepth[:numjobs]; digest sessions run only the jobs in
# BENCH_DIGEST_JOBS. The -2j jobs (issue 16's goals) are the QD32 random read and
# the 1 MiB read with two fio jobs (each at that iodepth), on every path.
BENCH_JOBS="randread-4k-qd32:randread:4k:32 randread-4k-qd32-2j:randread:4k:32:2 randread-4k-qd1:randread:4k:1 randwrite-4k-qd32:randwrite:4k:32 read-1m-qd8:read:1m:8 read-1m-qd8-2j:read:1m:8:2 write-1m-qd8:write:1m:8"
BENCH_DIGEST_JOBS="randread-4k-qd32 read-1m-qd8"
# Operational keys both iSCSI initiators ask for (LIO is set to the same).
BENCH_MRDSL=262144 BENCH_FBL=262144 BENCH_MBL=1048576

bench_fail=0

# Ships FILE to the host the way guest.sh does (run.sh unpacks it into --out).
bench_send() {
    { echo "@@FILE ${1##*/}"; base64 -w 76 "$1"; echo "@@END"; } > /dev/ttyS1
}

# bench_snap FILE: what report.py needs to split a job's CPU time, taken at both
# ends of its measured window: uptime, the CPU count (N), /proc/stat's cpu line
# (USER_HZ units; idle is exact under NO_HZ, the busy states are tick samples)
# and ctxt, then "T tid comm ticks" for every thread (utime+stime of
# /proc/TID/stat, which the kernel scales to the thread's exact runtime; comm with
# blanks squeezed; kworkers carry the name of the last workqueue they ran), and
# the uptime at the end (E). One cat and one awk, no other process: on a busy
# TCG host every fork costs, and a slow snapshot would outlive fio. cat, not
# awk, opens the files: mawk stops at a thread that exited since the glob.
bench_snap() {
    cat /proc/uptime /proc/stat /proc/[0-9]*/task/[0-9]*/stat 2>/dev/null | awk '
        NR == 1 { print $1; next }
        /^cpu[0-9]/ { n++; next }
        /^(cpu|ctxt) / { print; next }
        /^[0-9]+ \(/ {
            c = 0; for (i = length($0); i > 0; i--) if (substr($0, i, 1) == ")") { c = i; break }
            o = index($0, "("); comm = substr($0, o + 1, c - o - 1); gsub(/[ \t]/, "_", comm)
            split(substr($0, c + 2), f, " ")
            print "T", $1, comm, f[12] + f[13] }
        END { print "N", n; getline u < "/proc/uptime"; split(u, e, " "); print "E", e[1] }' > "$1"
}

# bench_fio_start TAG DEV SPEC: starts the fio job of SPEC
# (name:rw:bs:iodepth[:numjobs]) on /dev/DEV in the background (JSON to
# $B/fio-TAG-NAME.json); sets BENCH_FIO_PID and BENCH_FIO_NAME. lat_percentiles:
# percentiles of the total latency (submit + completion), not only completion;
# json+ adds its histogram (the CDF plot). fio is not pinned (no cpus_allowed):
# the scheduler places it, as for a user; with numjobs N too (each job its own
# process), and then each job gets its own 1/N of the disk (two sequential
# readers do not read the same blocks in step) and group_reporting sums them
# into the one result report.py reads.
bench_fio_start() {
    local tag=$1 dev=$2 name rw bs qd nj more=()
    IFS=: read -r name rw bs qd nj <<<"$3"
    nj=${nj:-1}
    [ "$nj" -gt 1 ] && more=(--group_reporting --size=$((BENCH_SIZE_MB / nj))m
                              --offset_increment=$((BENCH_SIZE_MB / nj))m)
    fio --name="$name" --filename="/dev/$dev" --direct=1 --ioengine=libaio \
        --rw="$rw" --bs="$bs" --iodepth="$qd" --numjobs="$nj" "${more[@]}" --norandommap --randrepeat=0 \
        --time_based --runtime="$BENCH_RUNTIME" --ramp_time="$BENCH_RAMP" \
        --lat_percentiles=1 --output-format=json+ --output="$B/fio-$tag-$name.json" > "$B/fio-$tag-$name.log" 2>&1 &
    BENCH_FIO_PID=$! BENCH_FIO_NAME=$name
}

# bench_fio TAG DEV SPEC: one fio job; JSON to $B/fio-TAG-NAME.json and CPU
# snapshots of its measured window (after the ramp, before the end) to
# snap-TAG-NAME-{1,2}.txt.
bench_fio() {
    local tag=$1 dev=$2 name pid rc
    bench_fio_start "$tag" "$dev" "$3"
    pid=$BENCH_FIO_PID name=$BENCH_FIO_NAME
    sleep "$BENCH_RAMP"; bench_snap "$B/snap-$tag-$name-1.txt"
    # Two seconds short of the end: fio's own start-up and a slow snapshot on a
    # busy host must not push the second one past fio's exit (its thread's time
    # would be lost; report.py drops the job's CPU figures if a fio thread of the
    # first snapshot is missing from the second).
    sleep $((BENCH_RUNTIME - 2)); bench_snap "$B/snap-$tag-$name-2.txt"
    wait $pid; rc=$?
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
    bench_after_jobs "$@"
}

# Run after a path's jobs, with bench_jobs' arguments (profile.sh adds its
# placement runs here).
bench_after_jobs() { :; }

# Called before the jobs: equalizes what sysfs lets us (no I/O scheduler, queue
# depth 128 where the driver can change it), then prints it with the blk-mq
# queues' CPU lists (where each CPU's submissions go).
bench_blockinfo() {
    local d=/sys/block/$1 f q
    # Not every driver lets these change (iscsi_rs's queue_depth is read-only).
    { echo none > "$d/queue/scheduler"; } 2>/dev/null
    { echo $BENCH_QD > "$d/device/queue_depth"; } 2>/dev/null
    for f in device/queue_depth queue/nr_requests queue/max_sectors_kb queue/max_hw_sectors_kb queue/scheduler; do
        [ -e "$d/$f" ] && echo "$f: $(cat "$d/$f" 2>/dev/null)"
    done
    for q in "$d"/mq/*; do
        [ -d "$q" ] && echo "mq/${q##*/} cpu_list: $(cat "$q/cpu_list")"
    done
}

# Prints the CPU affinity of the target's kernel threads: LIO pins each
# connection's iscsi_trx / iscsi_ttx pair to one CPU of the iscsi fabric's
# cpus_allowed_list.
bench_threadinfo() {
    local t comm
    for t in /proc/[0-9]*; do
        comm=$(cat "$t/comm" 2>/dev/null) || continue
        case $comm in
        iscsi_trx | iscsi_ttx) echo "thread $comm ${t#/proc/}: $(awk '/Cpus_allowed_list/{print $2}' "$t/status")" ;;
        esac
    done
}

# bench_rs TAG [digest] [CONNECTIONS]: iscsi_rs, with CONNECTIONS (default 1)
# TCP connections per session (MC/S: one per blk-mq hardware queue), always
# passed as --connections (iscsictl's own default is one per CPU, and LIO here
# allows 2, so the single-connection rows must ask for 1). The params
# file records how many came up ("connections: UP of ASKED"; `iscsictl list`
# prints connections=UP/LANES only for a session of more than one lane); any
# other count than asked (fewer: the target or a login refused) is a "not ok"
# row and its jobs are not run (their numbers would not be what the row says).
bench_rs() {
    local host dev dig=() conn=() n=${3:-1} up
    [ -n "${2:-}" ] && dig=(--header-digest crc32c --data-digest crc32c)
    conn=(--connections "$n")
    host=$(rs_login -t $BENCH_IQN --queue-depth $BENCH_QD --param MaxRecvDataSegmentLength=$BENCH_MRDSL \
        --param FirstBurstLength=$BENCH_FBL --param MaxBurstLength=$BENCH_MBL \
        --param InitialR2T=No --param ImmediateData=Yes "${dig[@]}" "${conn[@]}") \
        || { echo "not ok bench $1 login" >> "$BENCH_SUBTESTS"; bench_fail=1; return; }
    dev=$(rs_disk "$host")
    [ -n "$dev" ] || { echo "bench: no disk on host$host" >&2; bench_fail=1; rs_remove "$host"; return; }
    up=$("$CTL" list | sed -n "s|^host$host .* connections=\([0-9]*\)/[0-9]* .*|\1|p")
    up=${up:-1}
    {
        local h=/sys/class/scsi_host/host$host f
        echo "connections: $up of $n"
        for f in header_digest data_digest max_recv_data_segment_length max_xmit_data_segment_length \
                 first_burst_length max_burst_length initial_r2t immediate_data max_outstanding_r2t can_queue; do
            echo "$f: $(cat $h/$f 2>/dev/null)"
        done
        bench_blockinfo "$dev"
        bench_threadinfo
    } > "$B/params-$1.txt"
    if [ "$up" != "$n" ]; then
        echo "not ok bench $1 connections ($up up, $n asked for; its jobs not run)" >> "$BENCH_SUBTESTS"
        echo "bench: $1: $up connection(s) up, $n asked for" >&2
        "$CTL" list >&2
        bench_fail=1
    else
        bench_jobs "$1" "$dev" "${2:-}"
    fi
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
            bench_threadinfo
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
    store=$BENCH_STORE
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

# bench_nvme TAG: nvme-tcp to nvmet-tcp on 127.0.0.1:4420, the same /dev/ram0.
# Connects through /dev/nvme-fabrics (what `nvme connect` writes, no tool needed):
# default queues (one I/O queue per CPU, 128 entries each) and no digests.
bench_nvme() {
    local fd resp inst= dev= _ c=/sys/class/nvme
    exec {fd}<>/dev/nvme-fabrics
    # One write() per option string; reading back names the new controller.
    printf 'transport=tcp,traddr=%s,trsvcid=%s,nqn=%s,hostnqn=%s,hostid=%s' \
        $BENCH_NVME_ADDR $BENCH_NVME_PORT $BENCH_NQN $BENCH_HOSTNQN $BENCH_HOSTID >&$fd \
        && read -r resp <&$fd && inst=$(sed -n 's/^instance=\([0-9]*\),.*/\1/p' <<<"$resp")
    exec {fd}>&-
    [ -n "$inst" ] || { echo "bench: nvme-tcp connect failed" >&2; bench_fail=1; return; }
    for _ in $(seq 100); do
        dev=$(ls -d $c/nvme$inst/nvme${inst}n* 2>/dev/null | head -1) dev=${dev##*/}
        [ -n "$dev" ] && [ -b "/dev/$dev" ] && break
        dev=; sleep 0.1
    done
    if [ -n "$dev" ]; then
        {
            echo "transport: $(cat $c/nvme$inst/transport) $(cat $c/nvme$inst/address)"
            echo "queue_count: $(cat $c/nvme$inst/queue_count) (admin + I/O)"
            echo "sqsize: $(cat $c/nvme$inst/sqsize)"
            bench_blockinfo "$dev"
        } > "$B/params-$1.txt"
        bench_jobs "$1" "$dev"
    else
        echo "bench: no nvme-tcp namespace on nvme$inst" >&2; bench_fail=1
    fi
    echo 1 > $c/nvme$inst/delete_controller
}

# The nvmet-tcp target: subsystem open to any host, namespace 1 on BENCH_DEV
# (bdev backend: bios straight to brd), TCP port 1 on 127.0.0.1:4420.
bench_nvmet_setup() {
    local s=$NVMET/subsystems/$BENCH_NQN p=$NVMET/ports/1
    [ -d $NVMET ] || { echo "bench: no nvmet in this kernel" >&2; return 1; }
    mkdir -p $s/namespaces/1 $p || return 1
    echo 1 > $s/attr_allow_any_host
    echo -n $BENCH_DEV > $s/namespaces/1/device_path
    echo 1 > $s/namespaces/1/enable || return 1
    echo tcp > $p/addr_trtype
    echo ipv4 > $p/addr_adrfam
    echo $BENCH_NVME_ADDR > $p/addr_traddr
    echo $BENCH_NVME_PORT > $p/addr_trsvcid
    ln -s $s $p/subsystems/$BENCH_NQN
}

bench_nvmet_down() {
    local s=$NVMET/subsystems/$BENCH_NQN p=$NVMET/ports/1 c
    for c in /sys/class/nvme/nvme*; do [ -e "$c/delete_controller" ] && echo 1 > "$c/delete_controller"; done
    [ -L $p/subsystems/$BENCH_NQN ] && rm $p/subsystems/$BENCH_NQN
    [ -d $p ] && rmdir $p
    if [ -d $s ]; then
        echo 0 > $s/namespaces/1/enable 2>/dev/null
        rmdir $s/namespaces/1 $s
    fi
    return 0
}

# LIO: iblock backstore on BENCH_DEV and the iSCSI target in demo mode on it, with
# the same operational limits for both iSCSI initiators (CRC32C or None digests).
bench_lio_setup() {
    local tpg=$LIO/iscsi/$BENCH_IQN/tpgt_1 f
    mkdir -p $BENCH_STORE $LIO/iscsi || return 1
    echo "udev_path=$BENCH_DEV" > $BENCH_STORE/control
    echo 1 > $BENCH_STORE/enable || return 1
    mkdir -p "$tpg/lun/lun_0" "$tpg/np/$BENCH_PORTAL" || return 1
    ln -s $BENCH_STORE "$tpg/lun/lun_0/bench"
    echo 1 > $tpg/attrib/generate_node_acls
    echo 1 > $tpg/attrib/cache_dynamic_acls
    echo 0 > $tpg/attrib/demo_mode_write_protect
    echo 0 > $tpg/attrib/authentication
    echo $BENCH_MRDSL > $tpg/param/MaxRecvDataSegmentLength
    echo $BENCH_FBL > $tpg/param/FirstBurstLength
    echo $BENCH_MBL > $tpg/param/MaxBurstLength
    echo No > $tpg/param/InitialR2T
    echo Yes > $tpg/param/ImmediateData
    echo CRC32C,None > $tpg/param/HeaderDigest
    echo CRC32C,None > $tpg/param/DataDigest
    # For iscsi_rs's 2-connection session (MC/S); a single-connection
    # initiator (open-iscsi, iscsi_rs with --connections 1) offers 1 and gets 1.
    echo 2 > $tpg/param/MaxConnections
    echo 1 > $tpg/enable
    for f in MaxRecvDataSegmentLength MaxXmitDataSegmentLength FirstBurstLength MaxBurstLength \
             InitialR2T ImmediateData HeaderDigest DataDigest MaxConnections; do
        echo "$f: $(cat $tpg/param/$f)"
    done > $B/params-lio.txt
}

bench_cleanup() {
    bench_loop_down
    bench_nvmet_down
    "$CTL" logout -a > /dev/null 2>&1
    iscsiadm -m node --logoutall=all > /dev/null 2>&1
    pkill -x iscsid
    rmmod iscsi_rs 2>/dev/null
    lio_teardown
    [ -d $BENCH_STORE ] && rmdir $BENCH_STORE
    return 0
}

# Where things run: recorded once per round for the report's placement section.
bench_placement() {
    echo "cpus: $(nproc) online $(cat /sys/devices/system/cpu/online)"
    echo "lio_cpus_allowed_list: $(cat $LIO/iscsi/cpus_allowed_list 2>/dev/null)"
    echo "fio_cpus_allowed: not set (fio unpinned)"
    echo "nvme_tcp_wq_unbound: $(cat /sys/module/nvme_tcp/parameters/wq_unbound 2>/dev/null || echo '?')"
}

# bench_round N: one round; the initiators' order rotates with N so that drift
# within a round does not always hit the same one (five paths, five rounds: each
# path runs once in each position).
bench_round() {
    local r=$1 who paths=(rs oi rs2c loop nvme) order=() i
    trap bench_cleanup EXIT
    rm -rf $B && mkdir -p $B
    BENCH_SUBTESTS=$OUT/subtests-bench-r$r
    : > "$BENCH_SUBTESTS"
    # The RAM disk is filled once per boot: brd returns zeroes for pages never
    # written without touching memory, which would flatter every read.
    local size
    size=$(( $(cat /sys/block/${BENCH_DEV##*/}/size 2>/dev/null || echo 0) / 2048 ))
    [ "$size" = $BENCH_SIZE_MB ] || { echo "bench: $BENCH_DEV is $size MiB, want $BENCH_SIZE_MB (brd.rd_size)" >&2; return 1; }
    if [ ! -e /tmp/bench-ram-filled ]; then
        dd if=/dev/zero of=$BENCH_DEV bs=1M count=$BENCH_SIZE_MB oflag=direct status=none \
            && touch /tmp/bench-ram-filled
    fi
    {
        echo "mode: $BENCH_MODE"; echo "runtime: $BENCH_RUNTIME"; echo "ramp: $BENCH_RAMP"
        echo "kernel: $(uname -r) $(uname -v)"; echo "cpus: $(nproc)"
        echo "mem_kb: $(awk '/MemTotal/{print $2}' /proc/meminfo)"
        echo "fio: $(fio --version)"; echo "iscsiadm: $(iscsiadm --version)"
        echo "backstore: brd $BENCH_DEV ${BENCH_SIZE_MB} MiB (LIO iblock, nvmet bdev namespace)"
    } > $B/env.txt
    bench_lio_setup || { echo "bench: LIO setup failed" >&2; return 1; }
    bench_nvmet_setup || { echo "bench: nvmet setup failed" >&2; return 1; }
    bench_placement > $B/placement.txt
    insmod "$KO"
    openiscsi_start
    iscsiadm -m discovery -t st -p $BENCH_PORTAL > /dev/null
    for ((i = 0; i < ${#paths[@]}; i++)); do
        order+=("${paths[(i + r - 1) % ${#paths[@]}]}")
    done
    echo "order: ${order[*]}" >> $B/env.txt
    for who in "${order[@]}"; do
        case $who in
        rs) bench_rs "r$r-rs"; bench_rs "r$r-rsdig" digest ;;
        rs2c) bench_rs "r$r-rs2c" "" 2 ;;
        oi) bench_oi "r$r-oi"; bench_oi "r$r-oidig" digest ;;
        loop) bench_loop "r$r-loop" ;;
        nvme) bench_nvme "r$r-nvme" ;;
        esac
    done
    trap - EXIT
    bench_cleanup
    tar -czf "/tmp/bench-r$r.tar.gz" -C $B .
    bench_send "/tmp/bench-r$r.tar.gz"
    return $bench_fail
}
