# Case (c): the bench is sound: open-iscsi (iscsi_tcp) logs into the in-guest LIO
# target, /dev/sdX appears, 16 MiB written and read back compare equal, logout.
# This is also the baseline later benchmarks compare against.
set -eux
. "$REPO/ktests/qemu/lio.sh"
iqn=iqn.2026-11.dev.iscsi-rs:baseline
lio_setup -t $iqn -s 32
openiscsi_start
iscsiadm -m discovery -t st -p 127.0.0.1:3260 | tee /tmp/disc
grep -q " $iqn\$" /tmp/disc
iscsiadm -m node -T $iqn -p 127.0.0.1:3260 --login
dev=$(openiscsi_disk $iqn)
[ -b "/dev/$dev" ]
head -c 16M /dev/urandom > /tmp/pattern
dd if=/tmp/pattern of=/dev/$dev bs=1M oflag=direct status=none
dd if=/dev/$dev of=/tmp/readback bs=1M count=16 iflag=direct status=none
cmp /tmp/pattern /tmp/readback
iscsiadm -m node -T $iqn -p 127.0.0.1:3260 --logout
! ls /sys/class/iscsi_session/session* 2>/dev/null || exit 1
pkill -x iscsid || true
lio_teardown
