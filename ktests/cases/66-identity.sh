# Issue 15, stable identity: from a fresh state (no initiator name anywhere,
# empty state directory) `iscsictl iname` generates a name once and saves it;
# two logins with a logout between use the same name and ISID, and LIO's
# session (its ACL's info file) shows that ISID; a second login to the same
# target exits 15 and leaves one session; `login -a` skips the logged-in
# target; `logout -n` and `logout -p`; `list -v` and `list --json` show the
# LUN's disk; `login` loads the module itself through modprobe (a wrapper
# here: the guest kernel has no /lib/modules tree) and says so when it cannot.
# guest-boot: 2
set -u
. "$REPO/ktests/qemu/lio.sh"
T=iqn.2026-11.dev.iscsi-rs:ident
P=127.0.0.1:3260
tpg=$LIO/iscsi/$T/tpgt_1
export ISCSI_RS_DIR=/tmp/ident-state
rm -rf "$ISCSI_RS_DIR"
# Fresh state: open-iscsi's name file (the guest's copy of the host's) goes aside.
oi=/etc/iscsi/initiatorname.iscsi
[ -e $oi ] && mv $oi /tmp/ident-oi-name
fails=0
sub() {  # COMMANDS; sub NAME: one subtest, passed when COMMANDS succeeded
    local st=$? name=$1
    if [ $st = 0 ]; then
        echo "ok - $name"; echo "ok identity: $name" >> "$OUT/subtests-identity"
    else
        echo "not ok - $name"; echo "not ok identity: $name" >> "$OUT/subtests-identity"
        fails=$((fails + 1))
    fi
}
cleanup() {
    "$CTL" logout -a > /dev/null 2>&1
    [ -n "${name1:-}" ] && [ -d "$tpg/acls/$name1" ] && {
        rm -f "$tpg/acls/$name1/lun_0/lun0"; rmdir "$tpg/acls/$name1/lun_0" "$tpg/acls/$name1"; }
    rmmod iscsi_rs 2> /dev/null
    lio_teardown
    [ -e /tmp/ident-oi-name ] && mv /tmp/ident-oi-name $oi
}
trap cleanup EXIT
lio_setup -t $T -s 16

# The name: generated once, saved, the same on the next run.
name1=$("$CTL" iname 2> /tmp/iname.err)
cat /tmp/iname.err
name2=$("$CTL" iname)
{ grep -qx "InitiatorName=$name1" "$ISCSI_RS_DIR/initiatorname.iscsi"; }; sub "iname generates a name and saves it"
{ [ -n "$name1" ] && [ "$name1" = "$name2" ]; }; sub "iname is stable"
# An ACL for that name, so LIO's info file shows the session's ISID.
mkdir -p "$tpg/acls/$name1/lun_0"
ln -s "$tpg/lun/lun_0" "$tpg/acls/$name1/lun_0/lun0"

# modprobe: the module is not loaded; a failing modprobe is reported (exit 8),
# a working one (insmod behind a wrapper) makes login succeed.
rmmod iscsi_rs 2> /dev/null
mkdir -p /tmp/ident-bin-bad /tmp/ident-bin
printf '#!/bin/sh\necho "modprobe: FATAL: Module $1 not found" >&2; exit 1\n' > /tmp/ident-bin-bad/modprobe
printf '#!/bin/sh\n[ "$1" = iscsi_rs ] && exec insmod "%s"\n' "$KO" > /tmp/ident-bin/modprobe
chmod +x /tmp/ident-bin-bad/modprobe /tmp/ident-bin/modprobe
rc=0; out=$(PATH=/tmp/ident-bin-bad:$PATH "$CTL" login -p $P -t $T 2>&1) || rc=$?
echo "$out"
{ \
    [ $rc = 8 ] && grep -q "modprobe iscsi_rs. failed (exit status 1: modprobe: FATAL" <<<"$out"
}; sub "login without the module and a failing modprobe exits 8 and says why"

host_of() { sed -n 's/.*: SCSI host \([0-9]*\)$/\1/p' <<<"$1" | head -1; }
lio_isid() {  # the ISID LIO shows for our session ("ISID: 0x80 12 …  TSIH"), as 12 hex digits
    sed -n 's/.*ISID: 0x\(.*\)  TSIH.*/\1/p' "$tpg/acls/$name1/info" | head -1 | tr -d ' '
}
rc=0; out=$(PATH=/tmp/ident-bin:$PATH "$CTL" login -p $P -t $T 2>&1) || rc=$?
echo "$out"
h1=$(host_of "$out")
{ [ $rc = 0 ] && grep -q "loaded the iscsi_rs kernel module" <<<"$out"; }; sub "login loads the module through modprobe"
isid1=$(cat /sys/class/scsi_host/host$h1/isid 2> /dev/null)
cat "$tpg/acls/$name1/info"
lio1=$(lio_isid)
{ [ "$(cat /sys/class/scsi_host/host$h1/initiatorname)" = "$name1" ]; }; sub "the session uses the generated name"
{ grep -qx "$isid1 1 $name1 $T $P" "$ISCSI_RS_DIR/isids"; }; sub "the ISID is recorded in the store"
{ [ -n "$isid1" ] && [ "$lio1" = "$isid1" ]; }; sub "LIO shows the session's ISID"

# A second login to the same target: exit 15, still one session.
rc=0; out=$("$CTL" login -p $P -t $T 2>&1) || rc=$?
echo "$out"
{ [ $rc = 15 ] && grep -q "already logged in to $T at $P (SCSI host $h1" <<<"$out"; }; sub "a second login exits 15"
{ [ "$("$CTL" list | grep -c " $T ")" = 1 ]; }; sub "one session after the refused login"
{ [ "$(grep -c "LIO Session ID" "$tpg/acls/$name1/info")" = 1 ]; }; sub "LIO has one session of ours"

# list -v and list --json show the LUN and its disk.
disk=$(ls /sys/class/scsi_host/host$h1/device/target$h1:0:0/$h1:0:0:0/block/ 2> /dev/null | head -1)
"$CTL" list -v | tee /tmp/ident-list-v
{ [ -n "$disk" ] && grep -q "$h1:0:0:0 (LUN 0): /dev/$disk \[running\]" /tmp/ident-list-v; }; sub "list -v shows the LUN's disk"
{ grep -q "ISID: $isid1" /tmp/ident-list-v && grep -q "MaxBurstLength: " /tmp/ident-list-v; }; sub "list -v shows the ISID and negotiated keys"
"$CTL" list --json | tee /tmp/ident-list.json
{ python3 -c '
import json, sys
s = json.load(open("/tmp/ident-list.json"))["sessions"]
assert len(s) == 1, s
assert s[0]["isid"] == sys.argv[1] and s[0]["portal"]["address"] == sys.argv[2], s
assert s[0]["luns"][0]["disk"] == sys.argv[3] and s[0]["luns"][0]["lun"] == 0, s
' "$isid1" "$P" "$disk"
}; sub "list --json shows the LUN's disk"

# logout -n NICK, then the second login: same name, same ISID.
printf 'ident {\n  TargetName = %s\n  TargetAddress = %s\n}\n' $T $P > /tmp/ident.conf
out=$("$CTL" logout -n ident -c /tmp/ident.conf 2>&1); rc=$?
echo "$out"
{ [ $rc = 0 ] && [ "$("$CTL" list)" = "no sessions" ]; }; sub "logout -n logs out of the block's session"
rc=0; out=$("$CTL" login -n ident -c /tmp/ident.conf 2>&1) || rc=$?
echo "$out"
h2=$(host_of "$out")
isid2=$(cat /sys/class/scsi_host/host$h2/isid 2> /dev/null)
{ [ $rc = 0 ] && [ "$(cat /sys/class/scsi_host/host$h2/initiatorname)" = "$name1" ]; }; sub "second login, same initiator name"
{ [ -n "$isid2" ] && [ "$isid2" = "$isid1" ]; }; sub "second login, same ISID"
{ [ "$(lio_isid)" = "$isid1" ]; }; sub "LIO shows the same ISID again"
{ [ "$(grep -vc '^#' "$ISCSI_RS_DIR/isids")" = 1 ]; }; sub "the store still has one entry"

# login -a with the target logged in: reported, skipped, exit 0.
rc=0; out=$("$CTL" login -a -c /tmp/ident.conf 2>&1) || rc=$?
echo "$out"
{ [ $rc = 0 ] && grep -q "ident: already logged in.*skipped" <<<"$out"; }; sub "login -a skips a logged-in target"
rc=0; out=$("$CTL" login -a -c /tmp/ident.conf --json 2> /dev/null) || rc=$?
{ [ $rc = 0 ] && [ "$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["sessions"]))' <<<"$out")" = 0 ]; }; sub "login -a --json: no new session"

# logout -p PORTAL.
out=$("$CTL" logout -p $P 2>&1); rc=$?
echo "$out"
{ [ $rc = 0 ] && [ "$("$CTL" list)" = "no sessions" ]; }; sub "logout -p logs out of the portal's sessions"
rc=0; "$CTL" logout -p 127.0.0.9:3260 > /dev/null 2>&1 || rc=$?
{ [ $rc = 1 ]; }; sub "logout -p with no session there fails"

# login --json prints the session as list --json does.
rc=0; out=$("$CTL" login -p $P -t $T --json 2> /dev/null) || rc=$?
{ [ $rc = 0 ] && python3 -c '
import json, sys
s = json.load(sys.stdin)["sessions"]
assert len(s) == 1 and s[0]["isid"] == sys.argv[1] and s[0]["disks"], s
' "$isid1" <<<"$out"
}; sub "login --json: the session with its ISID and disk"
"$CTL" logout -a > /dev/null
[ $fails = 0 ]
