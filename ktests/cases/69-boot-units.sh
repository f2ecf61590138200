# Case (issue 15): the boot units as `make install` ships them
# (pkg/install-system.sh into a scratch root, iscsictl's path pointed at the
# built one). systemd is not PID 1 in the guest, so the case runs the units'
# own command lines, read from the installed files: iscsi-rs.service's
# ExecStartPre (modprobe iscsi_rs, from a module tree made for the guest
# kernel) and ExecStart (the recovery daemon), then iscsi-rs-login.service's
# ExecStart and ExecStop, with an /etc/iscsi-rs.conf of two `startup =
# automatic` targets and one manual (no startup key). Start must log in to
# exactly the automatic two (LIO sees them; the manual one has no session),
# stop must log out of them (no session left anywhere), and a second stop on
# a host without sessions must succeed. Runs in its own mount namespace: /etc
# gets a writable overlay (for the config), /lib/modules a tmpfs.
# guest-boot: 2
if [ -z "${BOOT_NS:-}" ]; then
    BOOT_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
set -eux
. "$REPO/ktests/qemu/lio.sh"
. "$REPO/ktests/qemu/rs.sh"
stage=/tmp/stage-boot
DESTDIR=$stage PREFIX=/usr SBINDIR="$REPO/target/release" "$REPO/pkg/install-system.sh"
units=$stage/usr/lib/systemd/system
daemon_unit=$units/iscsi-rs.service
login_unit=$units/iscsi-rs-login.service

# The unit's KEY= lines, one command per line. systemd's own parsing does
# quoting and %-specifiers; these lines have neither (checked), so splitting
# on blanks runs what systemd would run. A '-' prefix (failure ignored) would
# hide what the case checks, so there must be none.
unit_cmds() {
    local line
    sed -n "s/^$2=//p" "$1" | while IFS= read -r line; do
        case "$line" in
        *%* | *\"* | *\'* | -* | @* | +* | !* | :*)
            echo "unit_cmds: $1: $2=$line needs systemd's parsing" >&2; exit 1 ;;
        esac
        echo "$line"
    done
}
not() {  # not CMD...: CMD must fail (`! CMD` would not stop a set -e script)
    if "$@"; then echo "unexpectedly succeeded: $*" >&2; return 1; fi
}
run_unit_cmds() {  # run_unit_cmds UNIT KEY: each command in turn, must exit 0
    local line argv
    unit_cmds "$1" "$2" > /tmp/cmds
    [ -s /tmp/cmds ]
    while IFS= read -r line; do
        read -ra argv <<< "$line"
        echo "+ ${1##*/} $2: $line"
        "${argv[@]}" < /dev/null
    done < /tmp/cmds
}

# /etc writable for the config (an overlay only this namespace sees; if the
# 9p root cannot be a lower layer, a tmpfs copy of /etc).
mkdir -p /tmp/etc-up /tmp/etc-work
if ! mount -t overlay overlay -o lowerdir=/etc,upperdir=/tmp/etc-up,workdir=/tmp/etc-work /etc; then
    mkdir -p /tmp/etc-copy && cp -a /etc/. /tmp/etc-copy/ 2> /dev/null || true
    mount --bind /tmp/etc-copy /etc
fi
# A module tree for the guest kernel, so the unit's modprobe finds iscsi_rs.
# (/lib/modules may not even exist on the host: /usr/lib gets an overlay.)
kver=$(uname -r)
mkdir -p /tmp/lib-up /tmp/lib-work
mount -t overlay overlay -o lowerdir=/usr/lib,upperdir=/tmp/lib-up,workdir=/tmp/lib-work /usr/lib
mkdir -p /lib/modules
mount -t tmpfs tmpfs /lib/modules
install -D -m 644 "$KO" "/lib/modules/$kver/extra/iscsi_rs.ko"
depmod -a "$kver"

a=iqn.2026-11.dev.iscsi-rs:boot-a
b=iqn.2026-11.dev.iscsi-rs:boot-b
m=iqn.2026-11.dev.iscsi-rs:boot-manual
for t in $a $b $m; do lio_setup -t $t -s 8; done
cat > /etc/iscsi-rs.conf <<EOF
InitiatorName = $RS_INAME
TargetAddress = 127.0.0.1:3260
a { TargetName = $a; startup = automatic }
b { TargetName = $b; Startup = Automatic }
manual { TargetName = $m }
EOF
cond=$(sed -n 's/^ConditionPathExists=//p' "$login_unit")
[ "$cond" = /etc/iscsi-rs.conf ] && [ -e "$cond" ]

# iscsi-rs.service: module, then the daemon (Type=simple: in the background).
not grep -q '^iscsi_rs ' /proc/modules
run_unit_cmds "$daemon_unit" ExecStartPre
grep -q '^iscsi_rs ' /proc/modules
[ -c /dev/iscsi_rs ]
unit_cmds "$daemon_unit" ExecStart > /tmp/daemon-cmd
read -ra daemon_argv < /tmp/daemon-cmd
"${daemon_argv[@]}" > /tmp/daemon.log 2>&1 &
daemon=$!

# iscsi-rs-login.service start: the automatic targets, not the manual one.
run_unit_cmds "$login_unit" ExecStart
"$CTL" list | tee /tmp/list
[ "$(grep -c '^host' /tmp/list)" = 2 ]
grep -q " $a " /tmp/list
grep -q " $b " /tmp/list
not grep -q " $m " /tmp/list
rs_target_has_session $a
rs_target_has_session $b
not rs_target_has_session $m
for h in $(sed -n 's/^host\([0-9]*\) .*/\1/p' /tmp/list); do [ -n "$(rs_disk $h)" ]; done

# Stop: every session logged out, the target agrees.
run_unit_cmds "$login_unit" ExecStop
"$CTL" list | tee /tmp/list
grep -qx 'no sessions' /tmp/list
for t in $a $b; do rs_target_gone $t; done
# Stopping again (nothing logged in) is no failure.
run_unit_cmds "$login_unit" ExecStop

kill "$daemon"
wait "$daemon" || true
cat /tmp/daemon.log
rmmod iscsi_rs
lio_teardown
# The mounts go with this mount namespace.
