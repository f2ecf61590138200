# Issue 5: a filesystem on an iscsi_rs disk: mkfs.ext4, mount, 64 MiB of files,
# unmount, fsck -f clean, log out and in again, remount, checksums equal.
# Then with data digests, which are computed over the pages sent by reference:
# a file rewritten in place while its writeback is in flight must not change
# a page under a digest (stable writes), which would show as a reconnect.
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
iqn=iqn.2026-11.dev.iscsi-rs:fs
lio_setup -t $iqn -s 160
tpg=/sys/kernel/config/target/iscsi/$iqn/tpgt_1
# Either digest: each login below chooses.
echo "CRC32C,None" > $tpg/param/HeaderDigest
echo "CRC32C,None" > $tpg/param/DataDigest
insmod "$KO"
host=$(rs_login -t $iqn)
dev=$(rs_disk $host)
mkfs.ext4 -q -F /dev/$dev
mkdir -p /tmp/rs-mnt
mount /dev/$dev /tmp/rs-mnt
for i in $(seq 16); do head -c 4M /dev/urandom > /tmp/rs-mnt/file$i; done
mkdir /tmp/rs-mnt/small; for i in $(seq 200); do head -c $((i * 97)) /dev/urandom > /tmp/rs-mnt/small/f$i; done
(cd /tmp/rs-mnt && find . -type f | sort | xargs sha256sum) > /tmp/sums
umount /tmp/rs-mnt
fsck.ext4 -f -n /dev/$dev
rs_remove $host
# A new session (new disk), nothing cached: what comes back is what LIO stored.
host=$(rs_login -t $iqn)
dev=$(rs_disk $host)
mount /dev/$dev /tmp/rs-mnt
(cd /tmp/rs-mnt && find . -type f | sort | xargs sha256sum) > /tmp/sums2
umount /tmp/rs-mnt
diff /tmp/sums /tmp/sums2
[ "$(wc -l < /tmp/sums)" = 216 ]
rs_remove $host
host=$(rs_login -t $iqn --header-digest crc32c --data-digest crc32c)
dev=$(rs_disk $host)
[ "$(cat /sys/block/$dev/queue/stable_writes)" = 1 ]
mount /dev/$dev /tmp/rs-mnt
for i in $(seq 24); do
    dd if=/dev/urandom of=/tmp/rs-mnt/file1 bs=64k count=64 conv=notrunc status=none &
    sync
    wait
done
sha256sum /tmp/rs-mnt/file1 | cut -d' ' -f1 > /tmp/sum-rewritten
umount /tmp/rs-mnt
rs_ran_clean $host $dev
rs_remove $host
host=$(rs_login -t $iqn)
dev=$(rs_disk $host)
[ "$(cat /sys/block/$dev/queue/stable_writes)" = 0 ]
mount /dev/$dev /tmp/rs-mnt
[ "$(sha256sum /tmp/rs-mnt/file1 | cut -d' ' -f1)" = "$(cat /tmp/sum-rewritten)" ]
umount /tmp/rs-mnt
fsck.ext4 -f -n /dev/$dev
rs_remove $host
rmmod iscsi_rs
lio_teardown
