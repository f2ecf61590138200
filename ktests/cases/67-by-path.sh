# Case (issue 15): /dev/disk/by-path links for iscsi_rs disks, with
# systemd-udevd running in the guest and the udev rule as `make install` ships
# it (pkg/install-system.sh into a scratch root, its iscsictl path pointed at
# the built one). LIO exports two LUNs on 127.0.0.1:3260 and [::1]:3260.
# The reference is open-iscsi itself: iscsiadm logs in to the same target on
# each portal first, and the names udev's path_id gives its disks are recorded
# (and checked against the documented form ip-ADDR:PORT-iscsi-IQN-lun-N; for
# IPv6 that is ip-::1:3260-…, no brackets: path_id prints the node record's
# address as open-iscsi stores it).
# Then iscsi_rs logs in on each portal in turn, and every LUN's link must
# exist under exactly open-iscsi's name and resolve to the disk of that LUN
# (H:C:T:L in sysfs); no other by-path link may point at our disks (path_id's
# generic scsi-… name is replaced); a partition gets NAME-part1; after logout
# the links are gone.
# guest-boot: 2
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
iqn=iqn.2026-11.dev.iscsi-rs:bypath
tpg=/sys/kernel/config/target/iscsi/$iqn/tpgt_1
byp=/dev/disk/by-path

stage=/tmp/stage
DESTDIR=$stage PREFIX=/usr SBINDIR="$REPO/target/release" "$REPO/pkg/install-system.sh"
rule=$stage/usr/lib/udev/rules.d/71-iscsi-rs.rules
grep -q "PROGRAM==\"$REPO/target/release/iscsictl udev-path %p\"" "$rule"
mkdir -p /run/udev/rules.d
cp "$rule" /run/udev/rules.d/
/lib/systemd/systemd-udevd --daemon
udevadm settle -t 30
cleanup_udev() { udevadm control --exit || true; rm -f /run/udev/rules.d/71-iscsi-rs.rules; }
trap cleanup_udev EXIT

lio_setup -t $iqn -l 2 -s 16
mkdir "$tpg/np/[::1]:3260"

# by-path links (name -> device) matching GLOB, one "NAME DEV" per line.
links() {
    local l
    for l in "$byp"/$1; do
        [ -L "$l" ] && echo "${l##*/} $(readlink -f "$l")"
    done | sort
}

# open-iscsi's names, portal by portal.
openiscsi_start
declare -A oi_names
for portal in 127.0.0.1:3260 '[::1]:3260'; do
    iscsiadm -m discovery -t st -p "$portal" > /dev/null
    iscsiadm -m node -T $iqn -p "$portal" --login
    for _ in $(seq 100); do
        [ "$(links "*-iscsi-$iqn-*" | wc -l)" -ge 2 ] && break
        udevadm settle -t 5; sleep 0.1
    done
    links "*-iscsi-$iqn-*" | tee /tmp/oi-links
    [ "$(wc -l < /tmp/oi-links)" = 2 ]
    oi_names[$portal]=$(cut -d' ' -f1 /tmp/oi-links | tr '\n' ' ')
    iscsiadm -m node -T $iqn -p "$portal" --logout
    udevadm settle -t 30
done
iscsiadm -m node -o delete || true
pkill -x iscsid || true
echo "open-iscsi names: ${oi_names[127.0.0.1:3260]} | ${oi_names[[::1]:3260]}"
# The documented form (path_id prints open-iscsi's persistent_address as the
# node record holds it: an IPv6 address bare, no brackets).
[ "${oi_names[127.0.0.1:3260]}" = "ip-127.0.0.1:3260-iscsi-$iqn-lun-0 ip-127.0.0.1:3260-iscsi-$iqn-lun-1 " ]
[ "${oi_names[[::1]:3260]}" = "ip-::1:3260-iscsi-$iqn-lun-0 ip-::1:3260-iscsi-$iqn-lun-1 " ]

insmod "$KO"
parted=0
for portal in 127.0.0.1:3260 '[::1]:3260'; do
    host=$(RS_PORTAL=$portal rs_login -t $iqn)
    [ -n "$host" ]
    for _ in $(seq 100); do
        [ "$(links "*-iscsi-$iqn-lun-[0-9]" | wc -l)" -ge 2 ] && break
        udevadm settle -t 5; sleep 0.1
    done
    udevadm settle -t 30
    links "*-iscsi-$iqn-lun-[0-9]" | tee /tmp/rs-links
    [ "$(cut -d' ' -f1 /tmp/rs-links | tr '\n' ' ')" = "${oi_names[$portal]}" ]
    for lun in 0 1; do
        dev=$(ls "/sys/class/scsi_host/host$host/device/target$host:0:0/$host:0:0:$lun/block/")
        name=$(grep -- "-lun-$lun " /tmp/rs-links | cut -d' ' -f1)
        [ "$(readlink -f "$byp/$name")" = "/dev/$dev" ]
        # The helper agrees with udev, for the devpath, /dev/sdX and sdX alike.
        [ "$("$CTL" udev-path "/dev/$dev")" = "$name" ]
        [ "$("$CTL" udev-path "$(udevadm info -q path -n "/dev/$dev")")" = "$name" ]
        [ "$(udevadm info -q property -n "/dev/$dev" | sed -n 's/^ID_PATH=//p')" = "$name" ]
        # Nothing else in by-path points at this disk.
        others=$(links '*' | awk -v d="/dev/$dev" -v n="$name" '$2 == d && $1 != n')
        [ -z "$others" ]
        echo "LUN $lun: $byp/$name -> /dev/$dev"
    done
    # A partition on LUN 0 (made in the first round, found again in the second).
    dev0=$(ls "/sys/class/scsi_host/host$host/device/target$host:0:0/$host:0:0:0/block/")
    name0=$(grep -- "-lun-0 " /tmp/rs-links | cut -d' ' -f1)
    if [ $parted = 0 ] && command -v sfdisk > /dev/null; then
        echo ',,L' | sfdisk -q "/dev/$dev0"
        parted=1
    fi
    if [ $parted = 1 ]; then
        udevadm settle -t 30
        for _ in $(seq 50); do [ -L "$byp/$name0-part1" ] && break; sleep 0.1; done
        [ "$(readlink -f "$byp/$name0-part1")" = "/dev/${dev0}1" ]
        [ "$("$CTL" udev-path "/dev/${dev0}1")" = "$name0-part1" ]
        echo "partition: $byp/$name0-part1 -> /dev/${dev0}1"
    else
        echo "# no sfdisk: partition link not checked"
    fi
    rs_remove "$host"
    udevadm settle -t 30
    for _ in $(seq 50); do [ -z "$(links "*-iscsi-$iqn-*")" ] && break; sleep 0.1; done
    [ -z "$(links "*-iscsi-$iqn-*")" ]
done
# Not an iscsi_rs disk (the rule then adds nothing): the helper says so.
if "$CTL" udev-path /devices/virtual/block/loop0 2> /tmp/not-ours; then exit 1; fi
cat /tmp/not-ours
rmmod iscsi_rs
lio_teardown
