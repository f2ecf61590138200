//! Thin wrappers over the system calls the fuzzer needs (raw ioctl with any
//! address, descriptors of every kind, socket options, signals, credentials).
//! Every `unsafe` block of the crate outside `mem.rs` (and test code, e.g. the
//! model in `fake.rs`) is here.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// An ioctl result: the non-negative return value, or the errno.
pub type Outcome = Result<i64, i32>;

/// `ioctl(fd, cmd, arg)` with `arg` passed as a raw address: the point is to
/// hand the kernel addresses that are not valid in this process.
pub fn ioctl(fd: RawFd, cmd: u32, arg: u64) -> Outcome {
    #[cfg(test)]
    if crate::fake::routes(fd) {
        return crate::fake::ioctl(cmd, arg);
    }
    // SAFETY: the kernel validates the address; a bad one yields EFAULT, it cannot
    // corrupt our memory except through buffers we own and expect to be written.
    let r = unsafe { libc::ioctl(fd, cmd as _, arg as usize as *mut libc::c_void) };
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(i64::from(r))
    }
}

/// The calling thread's errno.
pub fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Short name of an errno for the log.
pub fn errno_name(e: i32) -> &'static str {
    match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::ENOSPC => "ENOSPC",
        libc::EPIPE => "EPIPE",
        libc::ERANGE => "ERANGE",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ECONNRESET => "ECONNRESET",
        libc::ENOTCONN => "ENOTCONN",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ESTALE => "ESTALE",
        libc::EOVERFLOW => "EOVERFLOW",
        512 => "ERESTARTSYS(leaked)",
        515 => "ENOIOCTLCMD(leaked)",
        _ => "E?",
    }
}

/// "EINVAL(22)" / "ok(3)".
pub fn show(o: &Outcome) -> String {
    match o {
        Ok(v) => format!("ok({v})"),
        Err(e) => format!("{}({e})", errno_name(*e)),
    }
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    let fd = check(fd)?;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `open(path, flags)`.
pub fn open(path: &str, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is a valid C string for the call.
    owned(unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o600) })
}

/// `pipe()`: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both were just created and are ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `eventfd(0)`.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain system call.
    owned(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) })
}

/// `socket(domain, ty, proto)`.
pub fn socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain system call.
    owned(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) })
}

/// `socketpair(AF_UNIX, SOCK_STREAM)`.
pub fn unix_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors.
    check(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: both were just created and are ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `connect()` of an AF_INET socket to `addr`.
pub fn connect_v4(fd: &OwnedFd, addr: std::net::SocketAddrV4) -> io::Result<()> {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `sin` is a valid sockaddr_in of the given length.
    check(unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&raw const sin).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// The TCP state (`tcpi_state`, e.g. 1 = ESTABLISHED) of a TCP socket.
pub fn tcp_state(fd: RawFd) -> Option<u8> {
    let mut buf = [0u8; 256];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` has `len` bytes of room.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    (r == 0 && len > 0).then_some(buf[0])
}

/// SO_LINGER {on, 0}: the next close sends a RST instead of a FIN.
pub fn set_linger_zero(fd: RawFd) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `l` is a valid `linger` of the given size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const l).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
}

/// Whether `fd` is an open descriptor.
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Geteuid.
pub fn euid() -> u32 {
    // SAFETY: plain system call.
    unsafe { libc::geteuid() }
}

extern "C" fn on_sigusr1(_: libc::c_int) {}

/// Installs a do-nothing SIGUSR1 handler without SA_RESTART, so a signal sent to
/// a thread blocked in WAIT_EVENT ends the call with EINTR.
pub fn install_interrupt_handler() {
    // SAFETY: a zeroed sigaction with a valid handler and an empty mask.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = 0;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
}

/// The calling thread's pthread id.
pub fn this_thread() -> libc::pthread_t {
    // SAFETY: plain libc call.
    unsafe { libc::pthread_self() }
}

/// Sends SIGUSR1 to thread `t` (a thread of this process that is still alive:
/// the interrupter only targets a thread that is inside a call it armed).
pub fn interrupt(t: libc::pthread_t) {
    // SAFETY: `t` is a live thread of this process (see above).
    unsafe { libc::pthread_kill(t, libc::SIGUSR1) };
}

/// Ends the process at once (the watchdog's way out of a hang).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// What a forked child does with its privileges before it talks to the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpriv {
    /// setgroups/setgid/setuid to 65534 (nobody), then open the device.
    NobodyOpen,
    /// Keep the descriptor the parent opened, become nobody, then ioctl.
    NobodyInherit,
    /// Stay uid 0 but clear CAP_SYS_ADMIN from the effective set, then ioctl
    /// on the inherited descriptor.
    DropCapSysAdmin,
}

/// Runs `how` in a forked child and returns what it saw: the errno of the open
/// (0 = success; only for `NobodyOpen`) and of each ioctl in `calls` (0 =
/// success, -1 = not tried), or `Err` with a description when the child died
/// (e.g. SIGALRM because an ioctl blocked: the capability check is missing).
///
/// The child only makes raw system calls on data prepared here (no allocation
/// after fork); it writes its results as i32s into a pipe.
pub fn run_unprivileged(
    how: Unpriv,
    path: &str,
    dev: RawFd,
    calls: &[(u32, u64)],
) -> Result<(i32, Vec<i32>), String> {
    let cpath = CString::new(path).map_err(|e| e.to_string())?;
    let (rd, wr) = pipe().map_err(|e| e.to_string())?;
    // SAFETY: fork; the child below only uses async-signal-safe calls.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: child side: raw system calls on memory prepared before fork.
        unsafe { child(how, &cpath, dev, calls, wr.as_raw_fd()) }
    }
    drop(wr);
    let mut raw = Vec::new();
    {
        use std::io::Read;
        let mut f = std::fs::File::from(rd);
        let _ = f.read_to_end(&mut raw);
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFSIGNALED(status) {
        return Err(format!(
            "child killed by signal {} (an ioctl blocked or crashed)",
            libc::WTERMSIG(status)
        ));
    }
    let vals: Vec<i32> = raw
        .chunks_exact(4)
        .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if libc::WEXITSTATUS(status) != 0 {
        return Err(format!(
            "child could not drop privileges (exit {}, errno {:?})",
            libc::WEXITSTATUS(status),
            vals.first()
        ));
    }
    let Some((&open, rest)) = vals.split_first() else {
        return Err("child reported nothing".into());
    };
    let mut out = rest.to_vec();
    out.resize(calls.len(), -1);
    Ok((open, out))
}

/// `_LINUX_CAPABILITY_VERSION_3`.
const CAP_V3: u32 = 0x2008_0522;
/// `CAP_SYS_ADMIN`.
const CAP_SYS_ADMIN: u32 = 21;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// # Safety
///
/// Only in a freshly forked child; never returns.
unsafe fn child(how: Unpriv, path: &CString, dev: RawFd, calls: &[(u32, u64)], out: RawFd) -> ! {
    let put = |v: i32| {
        let b = v.to_ne_bytes();
        // SAFETY: writes 4 bytes from a local array.
        unsafe { libc::write(out, b.as_ptr().cast(), 4) };
    };
    let errno = || io::Error::last_os_error().raw_os_error().unwrap_or(-2);
    // A blocked ioctl (missing capability check on WAIT_EVENT) must not hang us.
    // SAFETY: alarm is async-signal-safe.
    unsafe { libc::alarm(10) };
    match how {
        Unpriv::NobodyOpen | Unpriv::NobodyInherit => {
            // SAFETY: raw credential calls.
            let ok = unsafe {
                libc::setgroups(0, std::ptr::null()) == 0
                    && libc::setgid(65534) == 0
                    && libc::setuid(65534) == 0
            };
            if !ok {
                put(errno());
                // SAFETY: see above.
                unsafe { libc::_exit(3) };
            }
        }
        Unpriv::DropCapSysAdmin => {
            let mut h = CapHeader {
                version: CAP_V3,
                pid: 0,
            };
            let mut d = [CapData {
                effective: 0,
                permitted: 0,
                inheritable: 0,
            }; 2];
            // SAFETY: capget/capset with a v3 header and two data words.
            let ok = unsafe {
                libc::syscall(libc::SYS_capget, &raw mut h, d.as_mut_ptr()) == 0 && {
                    d[0].effective &= !(1 << CAP_SYS_ADMIN);
                    libc::syscall(libc::SYS_capset, &raw mut h, d.as_ptr()) == 0
                }
            };
            if !ok {
                put(errno());
                // SAFETY: see above.
                unsafe { libc::_exit(4) };
            }
        }
    }
    let fd = if how == Unpriv::NobodyOpen {
        // SAFETY: `path` is a valid C string.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR) };
        put(if fd < 0 { errno() } else { 0 });
        fd
    } else {
        put(0);
        dev
    };
    if fd >= 0 {
        for &(cmd, arg) in calls {
            // SAFETY: raw ioctl; the arguments point into memory mapped before fork.
            let r = unsafe { libc::ioctl(fd, cmd as _, arg as usize as *mut libc::c_void) };
            put(if r < 0 { errno() } else { 0 });
        }
    }
    // SAFETY: see above.
    unsafe { libc::_exit(0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(libc::EFAULT), "EFAULT");
        assert_eq!(show(&Err(libc::ENOTTY)), "ENOTTY(25)");
        assert_eq!(show(&Ok(3)), "ok(3)");
    }

    #[test]
    fn ioctl_on_a_pipe_is_enotty_and_bad_fd_is_ebadf() {
        let (r, _w) = pipe().unwrap();
        assert_eq!(ioctl(r.as_raw_fd(), 0xe3_00, 0), Err(libc::ENOTTY));
        assert_eq!(ioctl(-1, 0xe3_00, 0), Err(libc::EBADF));
    }

    #[test]
    fn unprivileged_children_report_back() {
        if euid() != 0 {
            return; // needs root to drop from
        }
        let path =
            std::env::temp_dir().join(format!("iscsi-ioctl-fuzz-test.{}", std::process::id()));
        std::fs::write(&path, b"x").unwrap();
        let p = path.to_str().unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (r, _w) = pipe().unwrap();
        let calls = [(0xe3_00u32, 0u64)];
        let (open, res) = run_unprivileged(Unpriv::NobodyOpen, p, r.as_raw_fd(), &calls).unwrap();
        assert_eq!(open, libc::EACCES);
        assert_eq!(res, [-1]);
        // The inherited pipe answers ENOTTY whoever asks.
        for how in [Unpriv::NobodyInherit, Unpriv::DropCapSysAdmin] {
            let (open, res) = run_unprivileged(how, p, r.as_raw_fd(), &calls).unwrap();
            assert_eq!(open, 0);
            assert_eq!(res, [libc::ENOTTY], "{how:?}");
        }
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn tcp_state_of_a_fresh_socket_is_close() {
        let s = socket(libc::AF_INET, libc::SOCK_STREAM, 0).unwrap();
        // TCP_CLOSE = 7.
        assert_eq!(tcp_state(s.as_raw_fd()), Some(7));
        let (a, _b) = unix_pair().unwrap();
        assert_eq!(tcp_state(a.as_raw_fd()), None);
    }
}
