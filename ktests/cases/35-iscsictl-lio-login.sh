# Issue 4 against LIO in the guest: iscsictl discovery and the login matrix
# (--dry-run: full login, negotiated parameters printed, Logout). Each check
# asserts the exit code and what the user is told.
set -eu
. "$REPO/ktests/qemu/lio.sh"
plain=iqn.2026-11.dev.iscsi-rs:plain
chap=iqn.2026-11.dev.iscsi-rs:chap
mutual=iqn.2026-11.dev.iscsi-rs:mutual
digests=iqn.2026-11.dev.iscsi-rs:digests
lio_setup -t $plain -s 8
lio_setup -t $chap -s 8 -c rs-user:rs-secret-0123456
lio_setup -t $mutual -s 8 -c rs-muser:rs-msecret-0123456 -m rs-target:rs-tsecret-0123456
lio_setup -t $digests -s 8 -d
install -m 600 /dev/null /tmp/secret; printf 'rs-secret-0123456\n' > /tmp/secret
install -m 600 /dev/null /tmp/wrong; printf 'not-the-secret-999\n' > /tmp/wrong
install -m 600 /dev/null /tmp/msecret; printf 'rs-msecret-0123456\n' > /tmp/msecret
install -m 600 /dev/null /tmp/tsecret; printf 'rs-tsecret-0123456\n' > /tmp/tsecret
install -m 600 /dev/null /tmp/tsecret-bad; printf 'rs-tsecret-6543210\n' > /tmp/tsecret-bad
iname=iqn.2026-11.dev.iscsi-rs:guest-ctl
P=127.0.0.1:3260
fails=0
# expect NAME EXPECTED_RC REGEX -- ARGS: run iscsictl, check exit code and output.
expect() {
    local name=$1 want=$2 re=$3; shift 4
    local out rc=0
    out=$(timeout 60 "$CTL" "$@" --initiator-name $iname 2>&1) || rc=$?
    if [ "$rc" = "$want" ] && grep -qiE -- "$re" <<<"$out"; then
        echo "ok - $name"; echo "ok iscsictl/LIO: $name" >> "$OUT/subtests-iscsictl-lio"
    else
        echo "not ok iscsictl/LIO: $name" >> "$OUT/subtests-iscsictl-lio"
        echo "not ok - $name: rc $rc (want $want), output:"; sed 's/^/    /' <<<"$out"
        fails=$((fails + 1))
    fi
}
expect "discovery lists all four targets" 0 "$plain" -- discover -p $P
out=$("$CTL" discover -p $P --initiator-name $iname 2>&1 || true)
for t in $chap $mutual $digests; do
    grep -q "$t" <<<"$out" || { echo "not ok - discovery misses $t"; fails=$((fails + 1)); }
done
expect "login without auth" 0 "MaxRecvDataSegmentLength" -- login -p $P -t $plain --dry-run
expect "one-way CHAP lands on SHA-256" 0 "sha-?256" -- login -p $P -t $chap --dry-run \
    --chap-user rs-user --chap-secret-file /tmp/secret
expect "CHAP restricted to md5" 0 "md5" -- login -p $P -t $chap --dry-run \
    --chap-user rs-user --chap-secret-file /tmp/secret --chap-algs md5
expect "wrong CHAP secret" 5 "authentication" -- login -p $P -t $chap --dry-run \
    --chap-user rs-user --chap-secret-file /tmp/wrong
expect "mutual CHAP" 0 "MaxRecvDataSegmentLength" -- login -p $P -t $mutual --dry-run \
    --chap-user rs-muser --chap-secret-file /tmp/msecret --mutual-user rs-target --mutual-secret-file /tmp/tsecret
expect "mutual CHAP, target proves the wrong secret" 5 "target|mutual" -- login -p $P -t $mutual --dry-run \
    --chap-user rs-muser --chap-secret-file /tmp/msecret --mutual-user rs-target --mutual-secret-file /tmp/tsecret-bad
expect "digests negotiate CRC32C" 0 "HeaderDigest *[=:] *CRC32C" -- login -p $P -t $digests --dry-run \
    --header-digest crc32c --data-digest crc32c
# LIO answers an unknown TargetName with 0x0301 (service unavailable), not 0x0203
# (tgtd does the latter; the tgtd tests check exit code 6 there).
expect "unknown IQN" 1 "service unavailable \(0x0301\).*check the target name" -- \
    login -p $P -t iqn.2026-11.dev.iscsi-rs:nosuch --dry-run
expect "nothing listens" 4 "refused|unreachable|connect" -- login -p 127.0.0.1:3999 -t $plain --dry-run
lio_teardown
[ $fails = 0 ]
