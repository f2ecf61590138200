# LIO iSCSI target helpers for guest cases (source this file).
#   lio_setup [-t IQN] [-l LUNS] [-s SIZE_MB] [-p PORTAL] [-c USER:SECRET]
#             [-m MUTUAL_USER:MUTUAL_SECRET] [-d] [-b fileio|ramdisk]
#   lio_teardown
# Backstores live on the guest's tmpfs; demo mode (any initiator) unless CHAP is
# asked for. -d makes the target require CRC32C header and data digests.
LIO=/sys/kernel/config/target
LIO_IQN_DEFAULT=iqn.2026-11.dev.iscsi-rs:target0

lio_setup() {
    local iqn=$LIO_IQN_DEFAULT luns=1 size=64 portal=127.0.0.1:3260 chap= mutual= digest=0 store=fileio
    local OPTIND opt
    while getopts "t:l:s:p:c:m:db:" opt; do
        case $opt in
        t) iqn=$OPTARG ;; l) luns=$OPTARG ;; s) size=$OPTARG ;; p) portal=$OPTARG ;;
        c) chap=$OPTARG ;; m) mutual=$OPTARG ;; d) digest=1 ;; b) store=$OPTARG ;;
        *) echo "lio_setup: bad option" >&2; return 2 ;;
        esac
    done
    [ -d $LIO/core ] || { echo "lio_setup: no LIO in this kernel" >&2; return 1; }
    mkdir -p $LIO/iscsi
    local tpg=$LIO/iscsi/$iqn/tpgt_1 i name
    mkdir -p "$tpg" || return 1
    mkdir -p /tmp/lio
    for ((i = 0; i < luns; i++)); do
        name=$(echo "$iqn" | md5sum | cut -c1-8)_$i
        if [ "$store" = ramdisk ]; then
            mkdir -p $LIO/core/rd_mcp_0/$name
            echo "rd_pages=$((size * 256))" > $LIO/core/rd_mcp_0/$name/control
            echo 1 > $LIO/core/rd_mcp_0/$name/enable
            mkdir -p "$tpg/lun/lun_$i"
            ln -s $LIO/core/rd_mcp_0/$name "$tpg/lun/lun_$i/$name"
        else
            truncate -s "${size}M" /tmp/lio/$name.img
            mkdir -p $LIO/core/fileio_0/$name
            echo "fd_dev_name=/tmp/lio/$name.img,fd_dev_size=$((size * 1048576))" > $LIO/core/fileio_0/$name/control
            echo 1 > $LIO/core/fileio_0/$name/enable
            mkdir -p "$tpg/lun/lun_$i"
            ln -s $LIO/core/fileio_0/$name "$tpg/lun/lun_$i/$name"
        fi
    done
    mkdir -p "$tpg/np/$portal" || return 1
    echo 1 > "$tpg/attrib/generate_node_acls"
    echo 1 > "$tpg/attrib/cache_dynamic_acls"
    echo 0 > "$tpg/attrib/demo_mode_write_protect"
    if [ -n "$chap" ]; then
        # printf, not echo: the TPG auth attributes keep a trailing newline as part
        # of the name or secret, and CHAP then never matches.
        echo 1 > "$tpg/attrib/authentication"
        printf '%s' "${chap%%:*}" > "$tpg/auth/userid"
        printf '%s' "${chap#*:}" > "$tpg/auth/password"
        if [ -n "$mutual" ]; then
            printf '%s' "${mutual%%:*}" > "$tpg/auth/userid_mutual"
            printf '%s' "${mutual#*:}" > "$tpg/auth/password_mutual"
        fi
    else
        echo 0 > "$tpg/attrib/authentication"
    fi
    if [ $digest = 1 ]; then
        echo CRC32C > "$tpg/param/HeaderDigest"
        echo CRC32C > "$tpg/param/DataDigest"
    fi
    echo 1 > "$tpg/enable"
}

lio_teardown() {
    local t tpg l n s
    for t in $LIO/iscsi/iqn.*; do
        [ -d "$t" ] || continue
        for tpg in "$t"/tpgt_*; do
            echo 0 > "$tpg/enable" 2>/dev/null
            for n in "$tpg"/np/*; do [ -d "$n" ] && rmdir "$n"; done
            for l in "$tpg"/lun/lun_*; do
                [ -d "$l" ] || continue
                for s in "$l"/*; do [ -L "$s" ] && rm "$s"; done
                rmdir "$l"
            done
            for n in "$tpg"/acls/*; do [ -d "$n" ] && rmdir "$n"; done
            rmdir "$tpg"
        done
        rmdir "$t"
    done
    for s in $LIO/core/fileio_0/* $LIO/core/rd_mcp_0/*; do [ -d "$s" ] && rmdir "$s"; done
    rm -rf /tmp/lio
    return 0
}

# Starts iscsid (open-iscsi) once; the guest's /etc/iscsi is a tmpfs copy.
openiscsi_start() {
    pgrep -x iscsid >/dev/null && return 0
    echo "InitiatorName=iqn.2026-11.dev.iscsi-rs:guest-openiscsi" > /etc/iscsi/initiatorname.iscsi
    iscsid || return 1
    for _ in $(seq 50); do [ -S /run/iscsid.pid ] || pgrep -x iscsid >/dev/null && return 0; sleep 0.1; done
    return 1
}

# Prints the block devices (sdX) of the iscsi_tcp sessions to IQN, one per line.
openiscsi_disks() {
    local s
    for s in /sys/class/iscsi_session/session*; do
        [ "$(cat "$s/targetname")" = "$1" ] || continue
        ls "$s/device/" | grep -E '^target' | while read -r t; do
            ls "$s/device/$t/"*/block/ 2>/dev/null
        done
    done
}

# Prints the first open-iscsi disk of IQN, waiting up to 10 s for it to appear.
openiscsi_disk() {
    local d= _
    for _ in $(seq 100); do
        d=$(openiscsi_disks "$1" | head -1)
        [ -n "$d" ] && [ -b "/dev/$d" ] && { echo "$d"; return 0; }
        sleep 0.1
    done
}
