//! Test only: a userspace model of the module's ioctl code (src/ctl.rs,
//! src/recovery.rs, the socket checks of src/sys/socket.rs), so that a whole
//! fuzzer run can be checked for false alarms without a kernel. In test builds
//! `sys::ioctl` sends calls on a descriptor of /dev/null here.
//!
//! User memory is read and written with process_vm_readv/writev on our own
//! pid, which fault like copy_from_user/copy_to_user (kernel, non-canonical,
//! unmapped, PROT_NONE and, for writes, read-only addresses). A session fails
//! as soon as it is created (the peers are never targets); blocking in
//! WAIT_EVENT is a nanosleep that the interrupter's signal ends with EINTR.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use iscsi_proto::uapi::{
    self, ConnInfo, ConnList, Event, Handoff, HandoffKind, List, ReloginFailed, RemoveSession,
    SessionConfig, SessionInfo, EVENT_RESCAN,
};

use crate::sys::Outcome;

struct Session {
    host_no: u32,
    cfg: Handoff,
    /// The validated ADD_SESSION, for ADD_CONNECTION's comparisons.
    typed: SessionConfig,
    /// CID of each lane's connection, `None` while the lane has none; the
    /// lane count is fixed at ADD_SESSION (it is the hardware queue count).
    lanes: Vec<Option<u16>>,
    recipe: Vec<u8>,
    /// Running, or failed (state FAILED/RECOVERING).
    failed: bool,
    generation: u32,
    recoveries: u32,
    /// The socket it owns (a dup), by inode for the EBUSY check.
    _sock: OwnedFd,
    ino: u64,
}

struct Request {
    host_no: u32,
    generation: u32,
    attempt: u32,
    delivered: bool,
    not_before: Instant,
}

#[derive(Default)]
struct Model {
    sessions: Vec<Session>,
    board: Vec<Request>,
    next_host: u32,
}

impl Model {
    fn session_mut(&mut self, host: u32) -> Option<&mut Session> {
        self.sessions.iter_mut().find(|s| s.host_no == host)
    }

    /// The relogin request for `host`'s failure `generation`.
    fn request_mut(&mut self, host: u32, generation: u32) -> Option<&mut Request> {
        self.board
            .iter_mut()
            .find(|r| r.host_no == host && r.generation == generation)
    }

    /// Takes `host`'s relogin requests off the board.
    fn withdraw(&mut self, host: u32) {
        self.board.retain(|r| r.host_no != host);
    }
}

static MODEL: Mutex<Option<Model>> = Mutex::new(None);

fn model<R>(f: impl FnOnce(&mut Model) -> R) -> R {
    let mut g = MODEL.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(Model::default))
}

fn fstat(fd: i32) -> Option<libc::stat> {
    // SAFETY: fstat into a zeroed struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st)
}

/// Whether `fd` is /dev/null (the model's stand-in for /dev/iscsi_rs).
pub fn routes(fd: i32) -> bool {
    fstat(fd).is_some_and(|st| {
        (st.st_mode & libc::S_IFMT) == libc::S_IFCHR && st.st_rdev == libc::makedev(1, 3)
    })
}

/// Copies `len` bytes between `local` and the user address `addr` of our own
/// process (to it with `write`), faulting like copy_{from,to}_user.
///
/// # Safety
///
/// `local` must be valid for `len` bytes (writable when reading).
unsafe fn copy_user(
    addr: u64,
    local: *mut libc::c_void,
    len: usize,
    write: bool,
) -> Result<(), i32> {
    if len == 0 {
        return Ok(());
    }
    let local = libc::iovec {
        iov_base: local,
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: len,
    };
    let copy = if write {
        libc::process_vm_writev
    } else {
        libc::process_vm_readv
    };
    // SAFETY: copies between our own memory and `local` (valid, see above)
    // through the kernel's checks.
    let n = unsafe { copy(libc::getpid(), &local, 1, &remote, 1, 0) };
    if n as usize == len {
        Ok(())
    } else {
        Err(libc::EFAULT)
    }
}

fn read_user(addr: u64, len: usize) -> Result<Vec<u8>, i32> {
    let mut out = vec![0u8; len];
    // SAFETY: `out` has `len` bytes.
    unsafe { copy_user(addr, out.as_mut_ptr().cast(), len, false) }?;
    Ok(out)
}

fn write_user(addr: u64, data: &[u8]) -> Result<(), i32> {
    // SAFETY: `data` has `len` bytes, only read from.
    unsafe { copy_user(addr, data.as_ptr().cast_mut().cast(), data.len(), true) }
}

/// Writes the first `capacity` of `entries` (a list answer's entries, each an
/// ABI struct's bytes) to `to`, as the kernel does.
fn write_entries<const N: usize>(
    to: u64,
    capacity: u32,
    entries: impl Iterator<Item = [u8; N]>,
) -> Result<(), i32> {
    let bytes: Vec<u8> = entries.take(capacity as usize).flatten().collect();
    if bytes.is_empty() {
        return Ok(());
    }
    write_user(to, &bytes)
}

fn sockopt(fd: i32, level: i32, opt: i32) -> Result<i32, i32> {
    let mut v: i32 = 0;
    let mut len = 4 as libc::socklen_t;
    // SAFETY: getsockopt into a local int.
    let r = unsafe { libc::getsockopt(fd, level, opt, (&raw mut v).cast(), &mut len) };
    if r < 0 {
        Err(crate::sys::last_errno())
    } else {
        Ok(v)
    }
}

/// sockfd_lookup + the "established TCP" check; returns a dup and the inode.
fn socket_from(fd: i32) -> Result<(OwnedFd, u64), i32> {
    // SAFETY: F_GETFL only reads the descriptor table.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if fl < 0 || fl & libc::O_PATH != 0 {
        return Err(libc::EBADF);
    }
    let ty = sockopt(fd, libc::SOL_SOCKET, libc::SO_TYPE)?;
    let dom = sockopt(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)?;
    let proto = sockopt(fd, libc::SOL_SOCKET, libc::SO_PROTOCOL)?;
    if ty != libc::SOCK_STREAM
        || !(dom == libc::AF_INET || dom == libc::AF_INET6)
        || proto != libc::IPPROTO_TCP
    {
        return Err(libc::EINVAL);
    }
    if crate::sys::tcp_state(fd) != Some(1) {
        return Err(libc::ENOTCONN);
    }
    let ino = fstat(fd).map_or(0, |st| st.st_ino);
    // SAFETY: dup of an open descriptor.
    let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    // SAFETY: fresh descriptor.
    Ok((unsafe { OwnedFd::from_raw_fd(d) }, ino))
}

/// Copies the argument in (EFAULT) and validates it with `check` (EINVAL),
/// like the ioctl handlers do; returns it and what `check` returned.
fn read_arg<const N: usize, T, R, E>(
    arg: u64,
    parse: fn(&[u8; N]) -> T,
    check: impl FnOnce(&T) -> Result<R, E>,
) -> Result<(T, R), i32> {
    let bytes: [u8; N] = read_user(arg, N)?.try_into().expect("size");
    let v = parse(&bytes);
    let r = check(&v).map_err(|_| libc::EINVAL)?;
    Ok((v, r))
}

/// Copies the fields named from `$src` to `$dst`.
macro_rules! copy_fields {
    ($dst:expr, $src:expr; $($field:ident),+ $(,)?) => {
        $($dst.$field = $src.$field;)+
    };
}

fn fail_session(m: &mut Model, host: u32) {
    if let Some(s) = m.session_mut(host) {
        s.failed = true;
        s.generation = s.generation.wrapping_add(1);
        let g = s.generation;
        m.withdraw(host);
        m.board.push(Request {
            host_no: host,
            generation: g,
            attempt: 0,
            delivered: false,
            not_before: Instant::now(),
        });
    }
}

/// Lanes with a connection, counting none while the session is failed.
fn lanes_up(s: &Session) -> u16 {
    if s.failed {
        0
    } else {
        s.lanes.iter().filter(|l| l.is_some()).count() as u16
    }
}

fn info(s: &Session) -> SessionInfo {
    let mut i = SessionInfo::zeroed();
    i.connections = lanes_up(s);
    i.lanes = s.lanes.len() as u16;
    copy_fields!(i, s; host_no, recoveries, generation);
    copy_fields!(i, s.cfg; cid, isid, tsih, queue_depth, target_name, initiator_name, portal,
        header_digest, data_digest, max_recv_data_segment_len, max_xmit_data_segment_len,
        replacement_timeout);
    i.state = if !s.failed {
        uapi::state::RUNNING
    } else if s.cfg.replacement_timeout == 0 {
        uapi::state::FAILED
    } else {
        uapi::state::RECOVERING
    };
    i
}

/// The model's ioctl.
pub fn ioctl(cmd: u32, arg: u64) -> Outcome {
    match cmd {
        uapi::ADD_SESSION => add(arg),
        uapi::REMOVE_SESSION => {
            let (r, _) = read_arg(arg, RemoveSession::from_bytes, RemoveSession::validate)?;
            model(|m| {
                let i = m
                    .sessions
                    .iter()
                    .position(|s| s.host_no == r.host_no)
                    .ok_or(libc::ENODEV)?;
                m.sessions.remove(i);
                m.withdraw(r.host_no);
                Ok(0)
            })
        }
        uapi::LIST => {
            let (mut l, ()) = read_arg(arg, List::from_bytes, List::validate)?;
            let infos: Vec<SessionInfo> = model(|m| m.sessions.iter().map(info).collect());
            write_entries(
                l.entries,
                l.capacity,
                infos.iter().map(SessionInfo::to_bytes),
            )?;
            l.count = infos.len() as u32;
            write_user(arg, &l.to_bytes())?;
            Ok(infos.len() as i64)
        }
        uapi::HANDOFF => handoff(arg),
        uapi::ADD_CONNECTION => add_connection(arg),
        uapi::LIST_CONNECTIONS => list_connections(arg),
        uapi::WAIT_EVENT => wait(arg),
        uapi::FAIL_RELOGIN => {
            let (f, ()) = read_arg(arg, ReloginFailed::from_bytes, ReloginFailed::validate)?;
            model(|m| {
                let r = m.request_mut(f.host_no, f.generation).ok_or(libc::ESTALE)?;
                r.attempt += 1;
                r.delivered = false;
                r.not_before = Instant::now() + Duration::from_millis(u64::from(f.retry_ms));
                Ok(0)
            })
        }
        _ => Err(libc::ENOTTY),
    }
}

fn add(arg: u64) -> Outcome {
    let (h, typed) = read_arg(arg, Handoff::from_bytes, |h| h.validate(HandoffKind::Add))?;
    let recipe = read_user(h.recipe, h.recipe_len as usize)?;
    let (sock, ino) = socket_from(h.fd)?;
    let host = model(|m| {
        if m.sessions.iter().any(|s| s.ino == ino) {
            return Err(libc::EBUSY);
        }
        let host = m.next_host;
        m.next_host += 1;
        let mut lanes = vec![None; usize::from(typed.connections)];
        lanes[0] = Some(h.cid);
        m.sessions.push(Session {
            host_no: host,
            cfg: h,
            typed,
            lanes,
            recipe,
            failed: false,
            generation: 0,
            recoveries: 0,
            _sock: sock,
            ino,
        });
        // The peer is not a target: the connection fails at once.
        fail_session(m, host);
        Ok(host)
    })?;
    let mut out = h;
    out.host_no = host;
    let _ = write_user(arg, &out.to_bytes());
    Ok(i64::from(host))
}

fn handoff(arg: u64) -> Outcome {
    let (h, _) = read_arg(arg, Handoff::from_bytes, |h| {
        h.validate(HandoffKind::Handoff)
    })?;
    if !model(|m| m.session_mut(h.host_no).is_some()) {
        return Err(libc::ENODEV);
    }
    let (sock, ino) = socket_from(h.fd)?;
    model(|m| {
        let s = m.session_mut(h.host_no).ok_or(libc::ENODEV)?;
        let c = &s.cfg;
        let name = |a: &[u8]| a.split(|&x| x == 0).next().map(<[u8]>::to_vec);
        if name(&h.target_name) != name(&c.target_name)
            || name(&h.initiator_name) != name(&c.initiator_name)
            || h.isid != c.isid
            || h.queue_depth != c.queue_depth
        {
            return Err(libc::EINVAL);
        }
        if !s.failed || s.generation != h.generation {
            return Err(libc::ESTALE);
        }
        // Reinstatement: only the leading connection is back.
        s.lanes.iter_mut().for_each(|l| *l = None);
        s.lanes[0] = Some(h.cid);
        s._sock = sock;
        s.ino = ino;
        s.failed = false;
        s.recoveries += 1;
        s.cfg.tsih = h.tsih;
        let host = s.host_no;
        m.withdraw(host);
        fail_session(m, host);
        Ok(i64::from(host))
    })
}

/// ADD_CONNECTION, in src/session/link.rs's order: the same lookup and
/// descriptor checks as HANDOFF, then (EINVAL) the session's names, ISID and
/// queue depth and a lane below its lane count; (ESTALE) a running session
/// in the generation answered; (EINVAL) its current TSIH and its
/// session-wide keys; (EBUSY) a free lane; (EINVAL) a CID no other lane uses.
fn add_connection(arg: u64) -> Outcome {
    let (h, cfg) = read_arg(arg, Handoff::from_bytes, |h| {
        h.validate(HandoffKind::AddConnection)
    })?;
    if !model(|m| m.session_mut(h.host_no).is_some()) {
        return Err(libc::ENODEV);
    }
    let (sock, _ino) = socket_from(h.fd)?;
    model(|m| {
        let s = m.session_mut(h.host_no).ok_or(libc::ENODEV)?;
        let lane = usize::from(cfg.lane);
        if s.typed.same_session(&cfg).is_err() || lane >= s.lanes.len() {
            return Err(libc::EINVAL);
        }
        if s.failed || s.generation != h.generation {
            return Err(libc::ESTALE);
        }
        if s.cfg.tsih != h.tsih || s.typed.same_session_keys(&cfg).is_err() {
            return Err(libc::EINVAL);
        }
        if s.lanes[lane].is_some() {
            return Err(libc::EBUSY);
        }
        if s.lanes.contains(&Some(h.cid)) {
            return Err(libc::EINVAL);
        }
        s.lanes[lane] = Some(h.cid);
        drop(sock);
        // The peer is not a target: the session fails at once.
        let host = s.host_no;
        fail_session(m, host);
        Ok(i64::from(host))
    })
}

/// LIST_CONNECTIONS: one entry per lane of the session named.
fn list_connections(arg: u64) -> Outcome {
    let (mut l, ()) = read_arg(arg, ConnList::from_bytes, ConnList::validate)?;
    let infos: Vec<ConnInfo> = model(|m| -> Result<Vec<ConnInfo>, i32> {
        let s = m.session_mut(l.host_no).ok_or(libc::ENODEV)?;
        let up = !s.failed;
        Ok(s.lanes
            .iter()
            .enumerate()
            .map(|(i, cid)| {
                let mut c = ConnInfo::zeroed();
                c.lane = i as u16;
                c.cid = cid.unwrap_or(0);
                if up && cid.is_some() {
                    c.state = uapi::conn_state::UP;
                }
                c
            })
            .collect())
    })?;
    write_entries(l.entries, l.capacity, infos.iter().map(ConnInfo::to_bytes))?;
    l.count = infos.len() as u32;
    write_user(arg, &l.to_bytes())?;
    Ok(infos.len() as i64)
}

fn wait(arg: u64) -> Outcome {
    let (req_in, rescan) = read_arg(arg, Event::from_bytes, Event::validate_request)?;
    if rescan {
        model(|m| m.board.iter_mut().for_each(|r| r.delivered = false));
    }
    loop {
        let got = model(|m| {
            let now = Instant::now();
            let r = m
                .board
                .iter_mut()
                .find(|r| !r.delivered && r.not_before <= now)?;
            r.delivered = true;
            let (host, generation, attempt) = (r.host_no, r.generation, r.attempt);
            let s = m.sessions.iter().find(|s| s.host_no == host)?;
            let mut e = req_in;
            e.kind = uapi::EVENT_RELOGIN;
            e.host_no = host;
            e.generation = generation;
            e.reason = uapi::reason::SOCKET;
            e.attempt = attempt;
            e.delay_ms = if attempt > 0 { 0 } else { 2000 };
            copy_fields!(e, s.cfg; tsih, cid, isid, target_name, initiator_name, portal);
            e.recipe_len = s.recipe.len() as u32;
            // 0 for one lane, as before multiple connections.
            e.connections = match s.lanes.len() {
                1 => 0,
                n => n as u16,
            };
            // The lane that failed: an output, never the caller's bytes.
            e.lane = 0;
            Some((e, s.recipe.clone(), host, generation))
        });
        if let Some((e, recipe, host, generation)) = got {
            let r = if recipe.len() > req_in.recipe_capacity as usize {
                Err(libc::ENOSPC)
            } else {
                write_user(req_in.recipe, &recipe)
            }
            .and_then(|()| write_user(arg, &e.to_bytes()));
            if let Err(err) = r {
                model(|m| {
                    if let Some(q) = m.request_mut(host, generation) {
                        q.delivered = false;
                    }
                });
                return Err(err);
            }
            return Ok(0);
        }
        // Sleep like wait_interruptible_timeout: a signal ends it.
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        };
        // SAFETY: nanosleep with a valid timespec.
        if unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) } < 0
            && crate::sys::last_errno() == libc::EINTR
        {
            return Err(libc::EINTR);
        }
    }
}

/// Whether the model can work here (process_vm_readv may be filtered by a
/// container's seccomp profile).
pub fn usable() -> bool {
    let v = [7u8; 8];
    read_user(v.as_ptr() as u64, 8).is_ok_and(|r| r == v)
}

/// Opens the model's device (a descriptor of /dev/null).
pub fn device() -> OwnedFd {
    let f = std::fs::File::open("/dev/null").expect("/dev/null");
    let fd = OwnedFd::from(f);
    assert!(routes(fd.as_raw_fd()));
    fd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_copies_fault_like_the_kernel() {
        let v = vec![1u8; 16];
        assert_eq!(read_user(v.as_ptr() as u64, 16).unwrap(), v);
        assert_eq!(read_user(0, 4), Err(libc::EFAULT));
        assert_eq!(read_user(0xffff_8880_0000_0000, 4), Err(libc::EFAULT));
        let mut w = vec![0u8; 4];
        write_user(w.as_mut_ptr() as u64, &[9, 9, 9, 9]).unwrap();
        assert_eq!(w, [9, 9, 9, 9]);
        let _ = EVENT_RESCAN;
    }
}
