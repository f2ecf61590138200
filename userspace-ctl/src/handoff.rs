//! The `/dev/iscsi_rs` ioctl client: hands a logged-in socket to the kernel
//! (ADD_SESSION), removes a session (REMOVE_SESSION: Logout, then teardown) and
//! lists sessions (LIST). The ABI lives in `iscsi_proto::uapi`, shared with the
//! module; arguments travel as the bytes its codec produces, so no Rust layout
//! assumption is made here. The two `unsafe` blocks are the ioctl calls.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use iscsi_proto::login::LoginOutcome;
use iscsi_proto::uapi::{self, Handoff, List, RemoveSession, SessionInfo};
use rustix::ioctl::{Ioctl, IoctlOutput, Opcode};

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
    let dev = open(device)?;
    let mut capacity = 16u32;
    loop {
        let mut entries = vec![0u8; capacity as usize * SessionInfo::SIZE];
        let mut arg = List::new(capacity, entries.as_mut_ptr() as u64).to_bytes();
        call(&dev, uapi::LIST, &mut arg, "LIST")?;
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
// kernel only reads/writes within it; the output is the plain return value.
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
    // the argument sizes they encode (see `Call`); LIST's `entries` points at a
    // live buffer of `capacity` entries for the duration of the call.
    unsafe { rustix::ioctl::ioctl(dev, c) }.map_err(|e| HandoffError::Kernel {
        what,
        reason: errno_words(e.raw_os_error()),
        errno: e.raw_os_error(),
    })
}

fn errno_words(errno: i32) -> &'static str {
    match errno {
        1 => "permission denied (needs CAP_SYS_ADMIN)",
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
        }
    }

    #[test]
    fn handoff_passes_the_kernel_validation() {
        let o = outcome();
        let h = build_handoff(&args(&o, "iqn.2026-11.dev.iscsi-rs:t"), 7).unwrap();
        let c = h.validate(true).unwrap();
        assert_eq!(c.raw.fd, 7);
        assert_eq!(c.raw.tpgt, 2);
        assert_eq!(c.queue_depth, 64);
        assert_eq!(c.exp_stat_sn.get(), 10);
        assert_eq!(c.cmd_sn.get(), 5);
        assert_eq!(c.portal(), "127.0.0.1:3260");
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
