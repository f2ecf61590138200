//! The `/dev/iscsi_rs` ioctl client: hands a logged-in socket to the kernel
//! (ADD_SESSION, HANDOFF after a re-login, ADD_CONNECTION for a session's
//! further connections), removes a session (REMOVE_SESSION: Logout, then
//! teardown), lists sessions (LIST) and their connections (LIST_CONNECTIONS), and the
//! recovery daemon's side (WAIT_EVENT, FAIL_RELOGIN). The ABI lives in
//! `iscsi_proto::uapi`, shared with the module; arguments travel as the bytes its
//! codec produces, so no Rust layout assumption is made here. The two `unsafe`
//! blocks are the ioctl calls.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use iscsi_proto::login::LoginOutcome;
use iscsi_proto::uapi::{
    self, ConnInfo, ConnList, Event, Handoff, List, ReloginFailed, RemoveSession, SessionInfo,
};
use rustix::ioctl::{Ioctl, IoctlOutput, Opcode};
use zeroize::Zeroizing;

use crate::plan::RecoveryKnobs;

/// Why a call into the module failed.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    /// `/dev/iscsi_rs` could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The device path.
        path: String,
        /// The OS error.
        source: io::Error,
    },
    /// A name or the portal does not fit the ABI's fixed field.
    #[error("{field} is too long for the kernel interface ({max} bytes at most)")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its room without the NUL.
        max: usize,
    },
    /// The module refused the call.
    #[error("{what}: {reason}")]
    Kernel {
        /// Which call.
        what: &'static str,
        /// The errno in words.
        reason: &'static str,
        /// The errno.
        errno: i32,
    },
}

/// What ADD_SESSION needs besides the socket: the login's outcome and the names.
#[derive(Debug, Clone, Copy)]
pub struct HandoffArgs<'a> {
    /// The finished normal-session login (`session.outcome`).
    pub outcome: &'a LoginOutcome,
    /// TargetName.
    pub target_name: &'a str,
    /// InitiatorName.
    pub initiator_name: &'a str,
    /// The portal logged in to ("host:port"), shown in sysfs and `list`.
    pub portal: &'a str,
    /// Commands in flight (config `tags` / `--queue-depth`; default
    /// [`uapi::DEFAULT_QUEUE_DEPTH`]), at most [`uapi::MAX_QUEUE_DEPTH`].
    pub queue_depth: u32,
    /// ADD_SESSION: the encoded login recipe the kernel keeps for re-logins
    /// (`None` for HANDOFF, which must not carry one). The Handoff only holds its
    /// address, so the slice must outlive the ioctl; the borrow sees to that.
    pub recipe: Option<&'a [u8]>,
    /// Replacement timeout and NOP-Out knobs (ignored by HANDOFF).
    pub recovery: RecoveryKnobs,
    /// ADD_SESSION: connections the session gets; HANDOFF: how many come back
    /// (see [`Handoff::connections`]). 0 or 1 send 0, as before multiple
    /// connections existed.
    pub connections: u16,
}

/// Builds the ADD_SESSION argument (without opening anything): pure, testable.
pub fn build_handoff(a: &HandoffArgs<'_>, fd: i32) -> Result<Handoff, HandoffError> {
    let o = a.outcome;
    let mut h = Handoff::from_login(
        &o.params,
        o.isid,
        o.tsih,
        o.cid,
        o.stat_sn,
        o.exp_cmd_sn,
        o.max_cmd_sn,
    );
    h.cmd_sn = o.cmd_sn;
    h.exp_stat_sn = o.exp_stat_sn;
    h.tpgt = o.target_portal_group_tag.unwrap_or(h.tpgt);
    h.fd = fd;
    h.queue_depth = a.queue_depth;
    if let Some(r) = a.recipe.filter(|r| !r.is_empty()) {
        h.recipe = r.as_ptr() as u64;
        h.recipe_len = u32::try_from(r.len()).unwrap_or(u32::MAX);
    }
    h.replacement_timeout = a.recovery.replacement_timeout;
    h.noop_out_interval = a.recovery.noop_out_interval;
    h.noop_out_timeout = a.recovery.noop_out_timeout;
    if a.connections > 1 {
        h.connections = a.connections;
    }
    let too_long = |field, max| HandoffError::TooLong { field, max };
    uapi::set_c_str(a.target_name, &mut h.target_name)
        .ok_or(too_long("TargetName", uapi::NAME_LEN - 1))?;
    uapi::set_c_str(a.initiator_name, &mut h.initiator_name)
        .ok_or(too_long("InitiatorName", uapi::NAME_LEN - 1))?;
    uapi::set_c_str(a.portal, &mut h.portal).ok_or(too_long("portal", uapi::PORTAL_LEN - 1))?;
    Ok(h)
}

/// Hands `socket` (logged in, full feature phase not yet used) to the module and
/// returns the new SCSI host number. The kernel takes its own reference: the
/// caller should close its socket afterwards and must not read or write it.
pub fn add_session(
    device: &Path,
    socket: &impl AsFd,
    args: &HandoffArgs<'_>,
) -> Result<u32, HandoffError> {
    let h = build_handoff(args, socket.as_fd().as_raw_fd())?;
    let dev = open(device)?;
    let mut bytes = h.to_bytes();
    let ret = call(&dev, uapi::ADD_SESSION, &mut bytes, "ADD_SESSION")?;
    Ok(u32::try_from(ret).unwrap_or(Handoff::from_bytes(&bytes).host_no))
}

/// The HANDOFF argument after a re-login: `build_handoff` for session
/// `host_no`, answering the event of `generation` (no recipe: the kernel keeps
/// the one from ADD_SESSION, and bumps the ITT age itself).
pub fn build_relogin_handoff(
    a: &HandoffArgs<'_>,
    fd: i32,
    host_no: u32,
    generation: u32,
) -> Result<Handoff, HandoffError> {
    let mut h = build_handoff(&HandoffArgs { recipe: None, ..*a }, fd)?;
    h.host_no = host_no;
    h.generation = generation;
    Ok(h)
}

/// The ADD_CONNECTION argument for a further connection of session
/// `host_no` (its login's `a.outcome`), serving `lane`, in the session's
/// recovery `generation` (0 before any recovery).
pub fn build_add_connection(
    a: &HandoffArgs<'_>,
    fd: i32,
    host_no: u32,
    lane: u16,
    generation: u32,
) -> Result<Handoff, HandoffError> {
    let mut h = build_relogin_handoff(
        &HandoffArgs {
            connections: 0,
            ..*a
        },
        fd,
        host_no,
        generation,
    )?;
    h.lane = lane;
    Ok(h)
}

/// The control device, opened once by the daemon and shared by its threads
/// (ioctls on one file may run concurrently).
#[derive(Debug)]
pub struct Device(File);

impl Device {
    /// Opens `/dev/iscsi_rs` (or a test path).
    pub fn open(path: &Path) -> Result<Device, HandoffError> {
        open(path).map(Device)
    }

    /// The kernel's sessions (LIST).
    pub fn list(&self) -> Result<Vec<SessionInfo>, HandoffError> {
        list_on(&self.0)
    }

    /// Blocks until the kernel has a recovery request; returns it with its recipe
    /// (wiped on drop: it may hold CHAP secrets). `rescan` asks the kernel to
    /// offer again the requests an earlier daemon took but never answered.
    pub fn wait_event(&self, rescan: bool) -> Result<(Event, Zeroizing<Vec<u8>>), HandoffError> {
        let mut recipe = Zeroizing::new(vec![0u8; uapi::RECIPE_MAX as usize]);
        let flags = if rescan { uapi::EVENT_RESCAN } else { 0 };
        let req = Event::request(flags, recipe.as_mut_ptr() as u64, uapi::RECIPE_MAX);
        let mut bytes = req.to_bytes();
        call(&self.0, uapi::WAIT_EVENT, &mut bytes, "WAIT_EVENT")?;
        let ev = Event::from_bytes(&bytes);
        recipe.truncate((ev.recipe_len as usize).min(uapi::RECIPE_MAX as usize));
        Ok((ev, recipe))
    }

    /// Gives the re-logged-in `socket` to the session the handoff names.
    pub fn handoff(&self, h: &Handoff) -> Result<(), HandoffError> {
        let mut bytes = h.to_bytes();
        call(&self.0, uapi::HANDOFF, &mut bytes, "HANDOFF")?;
        Ok(())
    }

    /// Adds a further connection (ADD_CONNECTION) to the session `h` names.
    pub fn add_connection(&self, h: &Handoff) -> Result<(), HandoffError> {
        let mut bytes = h.to_bytes();
        call(&self.0, uapi::ADD_CONNECTION, &mut bytes, "ADD_CONNECTION")?;
        Ok(())
    }

    /// The lanes of session `host_no` (LIST_CONNECTIONS).
    pub fn connections(&self, host_no: u32) -> Result<Vec<ConnInfo>, HandoffError> {
        connections_on(&self.0, host_no)
    }

    /// Whether the module knows multiple connections per session: it answers
    /// LIST_CONNECTIONS for a host no session has with ENODEV; an older one
    /// does not know the ioctl (ENOTTY).
    pub fn has_connections(&self) -> bool {
        let mut arg = ConnList::new(u32::MAX, 0, 0).to_bytes();
        let r = call(
            &self.0,
            uapi::LIST_CONNECTIONS,
            &mut arg,
            "LIST_CONNECTIONS",
        );
        !matches!(r, Err(HandoffError::Kernel { errno, .. }) if errno == ENOTTY)
    }

    /// Reports a failed re-login attempt.
    pub fn fail_relogin(&self, f: &ReloginFailed) -> Result<(), HandoffError> {
        let mut bytes = f.to_bytes();
        call(&self.0, uapi::FAIL_RELOGIN, &mut bytes, "FAIL_RELOGIN")?;
        Ok(())
    }
}

impl HandoffError {
    /// The errno of a refused call, if it was one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            HandoffError::Kernel { errno, .. } => Some(*errno),
            HandoffError::Open { source, .. } => source.raw_os_error(),
            HandoffError::TooLong { .. } => None,
        }
    }
}

/// Logs the session on SCSI host `host_no` out and removes it; `force` skips
/// the Logout (target unreachable).
pub fn remove_session(device: &Path, host_no: u32, force: bool) -> Result<(), HandoffError> {
    let dev = open(device)?;
    let mut bytes = RemoveSession::new(host_no, force).to_bytes();
    call(&dev, uapi::REMOVE_SESSION, &mut bytes, "REMOVE_SESSION")?;
    Ok(())
}

/// Every session the module runs.
pub fn list_sessions(device: &Path) -> Result<Vec<SessionInfo>, HandoffError> {
    list_on(&open(device)?)
}

fn list_on(dev: &File) -> Result<Vec<SessionInfo>, HandoffError> {
    let mut capacity = 16u32;
    loop {
        let mut entries = vec![0u8; capacity as usize * SessionInfo::SIZE];
        let mut arg = List::new(capacity, entries.as_mut_ptr() as u64).to_bytes();
        call(dev, uapi::LIST, &mut arg, "LIST")?;
        let count = List::from_bytes(&arg).count;
        if count > capacity {
            capacity = count;
            continue;
        }
        return Ok(entries
            .chunks_exact(SessionInfo::SIZE)
            .take(count as usize)
            .filter_map(|c| c.try_into().ok().map(SessionInfo::from_bytes))
            .collect());
    }
}

/// The lanes of session `host_no`; an ENOTTY error from a module without
/// multiple connections.
pub fn list_connections(device: &Path, host_no: u32) -> Result<Vec<ConnInfo>, HandoffError> {
    connections_on(&open(device)?, host_no)
}

fn connections_on(dev: &File, host_no: u32) -> Result<Vec<ConnInfo>, HandoffError> {
    let mut capacity = u32::from(uapi::MAX_CONNECTIONS);
    loop {
        let mut entries = vec![0u8; capacity as usize * ConnInfo::SIZE];
        let mut arg = ConnList::new(host_no, capacity, entries.as_mut_ptr() as u64).to_bytes();
        call(dev, uapi::LIST_CONNECTIONS, &mut arg, "LIST_CONNECTIONS")?;
        let count = ConnList::from_bytes(&arg).count;
        // A later kernel with more lanes: ask again with room for them.
        if count > capacity {
            capacity = count;
            continue;
        }
        return Ok(entries
            .chunks_exact(ConnInfo::SIZE)
            .take(count as usize)
            .filter_map(|c| c.try_into().ok().map(ConnInfo::from_bytes))
            .collect());
    }
}

/// errno of an ioctl the module does not know.
pub const ENOTTY: i32 = rustix::io::Errno::NOTTY.raw_os_error();
/// errno of arguments the module refused.
pub const EINVAL: i32 = rustix::io::Errno::INVAL.raw_os_error();

fn open(device: &Path) -> Result<File, HandoffError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .map_err(|source| HandoffError::Open {
            path: device.display().to_string(),
            source,
        })
}

/// One ioctl whose argument is `arg`'s bytes, read and written in place by the
/// kernel; returns the ioctl's value.
struct Call<'a> {
    opcode: Opcode,
    arg: &'a mut [u8],
}

// SAFETY: `as_ptr` points at `arg`, which is exactly as large as the size encoded
// in every opcode used here (the ABI structs' SIZE, asserted in uapi), and the
// kernel only reads/writes within it (plus the user buffers the argument names,
// see `call`); the output is the plain return value.
unsafe impl Ioctl for Call<'_> {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        self.opcode
    }

    fn as_ptr(&mut self) -> *mut std::ffi::c_void {
        self.arg.as_mut_ptr().cast()
    }

    unsafe fn output_from_ptr(
        out: IoctlOutput,
        _: *mut std::ffi::c_void,
    ) -> rustix::io::Result<IoctlOutput> {
        Ok(out)
    }
}

fn call(dev: &File, opcode: u32, arg: &mut [u8], what: &'static str) -> Result<i32, HandoffError> {
    let c = Call {
        opcode: opcode as Opcode,
        arg,
    };
    // SAFETY: `dev` is /dev/iscsi_rs, whose driver implements these opcodes with
    // the argument sizes they encode (see `Call`). The user addresses inside the
    // arguments point at live buffers for the duration of the call: LIST's
    // and LIST_CONNECTIONS' `entries` at `capacity` entries, ADD_SESSION's `recipe` at `recipe_len`
    // bytes borrowed by the HandoffArgs, WAIT_EVENT's `recipe` at
    // `recipe_capacity` bytes owned by `Device::wait_event`.
    unsafe { rustix::ioctl::ioctl(dev, c) }.map_err(|e| HandoffError::Kernel {
        what,
        reason: errno_words(e.raw_os_error()),
        errno: e.raw_os_error(),
    })
}

fn errno_words(errno: i32) -> &'static str {
    match errno {
        1 => "permission denied (needs CAP_SYS_ADMIN)",
        2 => "no such session (removed meanwhile)",
        4 => "interrupted",
        28 => "the recipe buffer is too small",
        116 => "stale: the session recovered, failed again or went away meanwhile",
        9 => "bad socket descriptor",
        14 => "bad address",
        16 => "the socket is already used by another kernel user",
        19 => "no such session",
        22 => "the module refused the arguments (its log says which field)",
        25 => "the device does not speak this interface (module too old or too new?)",
        95 => "not supported by this module yet",
        107 => "the socket is not connected",
        12 => "out of memory",
        _ => "the module failed the call",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_proto::negotiate::SessionParams;
    use iscsi_proto::uapi::HandoffKind;

    fn outcome() -> LoginOutcome {
        LoginOutcome {
            params: SessionParams::DEFAULT,
            isid: [0x80, 0, 0, 0, 0, 1],
            tsih: 3,
            cid: 0,
            stat_sn: 9,
            exp_stat_sn: 10,
            cmd_sn: 5,
            exp_cmd_sn: 5,
            max_cmd_sn: 36,
            target_portal_group_tag: Some(2),
            target_alias: None,
            chap_algorithm: None,
        }
    }

    fn args<'a>(o: &'a LoginOutcome, target: &'a str) -> HandoffArgs<'a> {
        HandoffArgs {
            outcome: o,
            target_name: target,
            initiator_name: "iqn.2026-11.dev.iscsi-rs:i",
            portal: "127.0.0.1:3260",
            queue_depth: 64,
            recipe: None,
            recovery: RecoveryKnobs::default(),
            connections: 0,
        }
    }

    #[test]
    fn handoff_passes_the_kernel_validation() {
        let o = outcome();
        let h = build_handoff(&args(&o, "iqn.2026-11.dev.iscsi-rs:t"), 7).unwrap();
        let c = h.validate(HandoffKind::Add).unwrap();
        assert_eq!(c.raw.fd, 7);
        assert_eq!(c.raw.tpgt, 2);
        assert_eq!(c.queue_depth, 64);
        assert_eq!(c.exp_stat_sn.get(), 10);
        assert_eq!(c.cmd_sn.get(), 5);
        assert_eq!(c.portal(), "127.0.0.1:3260");
    }

    #[test]
    fn recipe_and_knobs_reach_add_session_but_not_handoff() {
        let o = outcome();
        let recipe = b"RecipeVersion=1\0".to_vec();
        let mut a = args(&o, "iqn.2026-11.dev.iscsi-rs:t");
        a.recipe = Some(&recipe);
        a.recovery = RecoveryKnobs {
            replacement_timeout: 10,
            noop_out_interval: 0,
            noop_out_timeout: 0,
        };
        let h = build_handoff(&a, 7).unwrap();
        assert_eq!(h.recipe, recipe.as_ptr() as u64);
        assert_eq!(h.recipe_len, 16);
        let c = h.validate(HandoffKind::Add).unwrap();
        assert_eq!(c.replacement_timeout, 10);
        assert_eq!(c.noop_out_interval, 0);
        let h = build_relogin_handoff(&a, 7, 4, 9).unwrap();
        assert_eq!((h.recipe, h.recipe_len), (0, 0));
        assert_eq!((h.host_no, h.generation), (4, 9));
        h.validate(HandoffKind::Handoff).unwrap();
    }

    #[test]
    fn one_connection_sends_zeros_and_more_reach_the_kernel() {
        let o = outcome();
        let mut a = args(&o, "iqn.2026-11.dev.iscsi-rs:t");
        for one in [0, 1] {
            a.connections = one;
            let h = build_handoff(&a, 7).unwrap();
            assert_eq!((h.connections, h.lane), (0, 0));
            assert_eq!(h.to_bytes()[632..636], [0; 4]);
        }
        let mut p = o;
        p.params.max_connections = 4;
        let mut a = args(&p, "iqn.2026-11.dev.iscsi-rs:t");
        a.connections = 3;
        let c = build_handoff(&a, 7)
            .unwrap()
            .validate(HandoffKind::Add)
            .unwrap();
        assert_eq!(c.connections, 3);
        let h = build_relogin_handoff(&a, 7, 4, 9).unwrap();
        assert_eq!(h.validate(HandoffKind::Handoff).unwrap().connections, 3);
        // A further connection: its own CID and lane, no count, no recipe.
        let mut second = p;
        second.cid = 2;
        let recipe = b"x".to_vec();
        let mut a = args(&second, "iqn.2026-11.dev.iscsi-rs:t");
        a.connections = 3;
        a.recipe = Some(&recipe);
        let h = build_add_connection(&a, 8, 4, 2, 9).unwrap();
        let c = h.validate(uapi::HandoffKind::AddConnection).unwrap();
        assert_eq!(
            (c.lane, c.raw.cid, c.raw.host_no, c.raw.generation),
            (2, 2, 4, 9)
        );
        assert_eq!((h.connections, h.recipe, h.recipe_len), (0, 0, 0));
        assert_eq!(h.fd, 8);
    }

    #[test]
    fn overlong_names_are_refused_before_the_kernel() {
        let o = outcome();
        let long = "x".repeat(uapi::NAME_LEN);
        assert!(matches!(
            build_handoff(&args(&o, &long), 3),
            Err(HandoffError::TooLong {
                field: "TargetName",
                ..
            })
        ));
    }

    #[test]
    fn missing_device_is_an_open_error() {
        let e = remove_session(Path::new("/nonexistent/iscsi_rs"), 1, false).unwrap_err();
        assert!(matches!(e, HandoffError::Open { .. }));
    }
}
