# Case (a): the module loads, /dev/iscsi_rs exists (root only, unknown ioctls
# refused), and it unloads again; the harness checks kmemleak afterwards.
set -eux
insmod "$KO"
grep -q '^iscsi_rs ' /proc/modules
test -c /dev/iscsi_rs
[ "$(stat -c %a /dev/iscsi_rs)" = 600 ]
python3 - <<'PY'
import errno, fcntl, os
fd = os.open("/dev/iscsi_rs", os.O_RDWR)
try:
    fcntl.ioctl(fd, 0x1234)
    raise SystemExit("unknown ioctl was accepted")
except OSError as e:
    assert e.errno == errno.ENOTTY, e
os.close(fd)
PY
rmmod iscsi_rs
! test -e /dev/iscsi_rs || exit 1
! grep -q '^iscsi_rs ' /proc/modules || exit 1