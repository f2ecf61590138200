# Issue 5: data written through iscsi_rs reads back identical through open-iscsi
# on the same LUN, and the reverse.
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
iqn=iqn.2026-11.dev.iscsi-rs:interop
lio_setup -t $iqn -s 32
insmod "$KO"
head -c 16M /dev/urandom > /tmp/a
head -c 16M /dev/urandom > /tmp/b
# iscsi_rs writes A to the first 16 MiB.
host=$(rs_login -t $iqn)
dev=$(rs_disk $host)
dd if=/tmp/a of=/dev/$dev bs=1M oflag=direct status=none
rs_remove $host
# open-iscsi reads A back, writes B to the second 16 MiB.
openiscsi_start
iscsiadm -m discovery -t st -p 127.0.0.1:3260 > /dev/null
iscsiadm -m node -T $iqn -p 127.0.0.1:3260 --login
dev=$(openiscsi_disk $iqn)
dd if=/dev/$dev of=/tmp/a.oi bs=1M count=16 iflag=direct status=none
cmp /tmp/a /tmp/a.oi
dd if=/tmp/b of=/dev/$dev bs=1M seek=16 oflag=direct status=none
iscsiadm -m node -T $iqn -p 127.0.0.1:3260 --logout
pkill -x iscsid || true
# iscsi_rs reads B back.
host=$(rs_login -t $iqn)
dev=$(rs_disk $host)
dd if=/dev/$dev of=/tmp/b.rs bs=1M skip=16 count=16 iflag=direct status=none
cmp /tmp/b /tmp/b.rs
rs_remove $host
rmmod iscsi_rs
lio_teardown
