# Case (issue 12): discovery authentication against LIO with enforce_discovery_auth
# on. iscsictl discover must succeed with the right CHAP secret (flags and a
# config block), one-way and mutual, and fail with a clear message and exit code
# 5 (authentication) with a wrong secret, none, or a target that proves the
# wrong mutual secret. Each check asserts the exit code and what the user reads.
# guest-boot: 2
set -eu
. "$REPO/ktests/qemu/lio.sh"
iqn=iqn.2026-11.dev.iscsi-rs:disc-chap
da=/sys/kernel/config/target/iscsi/discovery_auth
lio_setup -t $iqn -s 8
[ -d $da ] || { echo "not ok - no $da in this LIO"; exit 1; }
# printf, not echo: LIO keeps a trailing newline as part of the value.
printf '%s' disc-user > $da/userid
printf '%s' disc-secret-0123 > $da/password
printf '%s' disc-target > $da/userid_mutual
printf '%s' disc-tsecret-4567 > $da/password_mutual
echo 1 > $da/enforce_discovery_auth
install -m 600 /dev/null /tmp/dsecret; printf 'disc-secret-0123\n' > /tmp/dsecret
install -m 600 /dev/null /tmp/dwrong; printf 'not-the-secret-999\n' > /tmp/dwrong
install -m 600 /dev/null /tmp/dtsecret; printf 'disc-tsecret-4567\n' > /tmp/dtsecret
install -m 600 /dev/null /tmp/dtwrong; printf 'disc-tsecret-7654\n' > /tmp/dtwrong
install -m 600 /dev/null /tmp/disc.conf
cat > /tmp/disc.conf <<CONF
disc {
    TargetAddress = 127.0.0.1:3260
    SessionType = Discovery
    chapIName = disc-user
    chapSecret = "disc-secret-0123"
}
CONF
iname=iqn.2026-11.dev.iscsi-rs:guest-disc
P=127.0.0.1:3260
fails=0
expect() {
    local name=$1 want=$2 re=$3; shift 4
    local out rc=0
    out=$(timeout 60 "$CTL" "$@" --initiator-name $iname 2>&1) || rc=$?
    if [ "$rc" = "$want" ] && grep -qiE -- "$re" <<<"$out"; then
        echo "ok - $name"
    else
        echo "not ok - $name: rc $rc (want $want), output:"; sed 's/^/    /' <<<"$out"
        fails=$((fails + 1))
    fi
}
# LIO finds no common AuthMethod and hangs up without a Login Response;
# iscsictl says what that most likely means, with the authentication exit code.
expect "no credentials: refused, says CHAP is wanted" 5 \
    "closed the connection.*probably requires CHAP.*--chap-user" -- discover -p $P
expect "wrong secret: authentication failure" 5 \
    "authentication failure \(0x0201\).*check the CHAP user and secret" -- \
    discover -p $P --chap-user disc-user --chap-secret-file /tmp/dwrong
expect "right secret lists the target" 0 "^$iqn\$" -- \
    discover -p $P --chap-user disc-user --chap-secret-file /tmp/dsecret
expect "right secret, JSON" 0 "\"name\": *\"$iqn\"" -- \
    discover -p $P --chap-user disc-user --chap-secret-file /tmp/dsecret --json
expect "MD5 only" 0 "^$iqn\$" -- \
    discover -p $P --chap-user disc-user --chap-secret-file /tmp/dsecret --chap-algs md5
expect "mutual CHAP" 0 "^$iqn\$" -- \
    discover -p $P --chap-user disc-user --chap-secret-file /tmp/dsecret \
    --mutual-user disc-target --mutual-secret-file /tmp/dtsecret
expect "mutual CHAP, the portal proves the wrong secret" 5 "failed mutual CHAP" -- \
    discover -p $P --chap-user disc-user --chap-secret-file /tmp/dsecret \
    --mutual-user disc-target --mutual-secret-file /tmp/dtwrong
expect "config block (-n) with chapIName/chapSecret" 0 "^$iqn\$" -- \
    discover -n disc -c /tmp/disc.conf
# With enforcement off again, discovery without credentials works (the
# failures above were the enforcement, not something else).
echo 0 > $da/enforce_discovery_auth
expect "enforcement off: no credentials needed" 0 "^$iqn\$" -- discover -p $P
lio_teardown
[ $fails = 0 ]
