//! The SCSI host side of a session: [`HostOps`] for [`Session`] (queuecommand and
//! the EH handlers delegate to it) and the read-only sysfs attributes each host
//! shows (target, portal, initiator, state, ISID, TSIH, negotiated keys).

use core::fmt::Write;

use kernel::c_str;
use kernel::str::CStr;
use kernel::sync::ArcBorrow;

use crate::proto::negotiate::Digest;
use crate::session::{Phase, Session};
use crate::sys::scsi::{Busy, Cmd, EhAbort, EhCmd, EhStatus, HostOps, SysfsBuf};

fn digest(d: Digest) -> &'static str {
    match d {
        Digest::None => "None",
        Digest::Crc32c => "CRC32C",
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "Yes"
    } else {
        "No"
    }
}

impl HostOps for Session {
    const ATTRS: &'static [&'static CStr] = &[
        c_str!("targetname"),
        c_str!("initiatorname"),
        c_str!("portal"),
        c_str!("session_state"),
        c_str!("isid"),
        c_str!("tsih"),
        c_str!("header_digest"),
        c_str!("data_digest"),
        c_str!("max_recv_data_segment_length"),
        c_str!("max_xmit_data_segment_length"),
        c_str!("first_burst_length"),
        c_str!("max_burst_length"),
        c_str!("initial_r2t"),
        c_str!("immediate_data"),
        c_str!("max_outstanding_r2t"),
    ];

    fn queue_command(this: ArcBorrow<'_, Self>, cmd: Cmd) -> Result<(), (Cmd, Busy)> {
        Session::queue_command(this, cmd)
    }

    fn eh_abort(this: ArcBorrow<'_, Self>, cmd: &EhCmd) -> EhAbort {
        this.eh_abort(cmd)
    }

    fn eh_device_reset(this: ArcBorrow<'_, Self>, cmd: &EhCmd) -> EhStatus {
        this.eh_device_reset(cmd)
    }

    fn eh_target_reset(this: ArcBorrow<'_, Self>) -> EhStatus {
        this.eh_target_reset()
    }

    fn show_attr(this: ArcBorrow<'_, Self>, index: usize, out: &mut SysfsBuf<'_>) {
        let c = this.config();
        let p = &c.params;
        let _ = match index {
            0 => writeln!(out, "{}", c.target_name()),
            1 => writeln!(out, "{}", c.initiator_name()),
            2 => writeln!(out, "{}", c.portal()),
            3 => writeln!(
                out,
                "{}",
                match this.phase() {
                    Phase::Running => "running",
                    Phase::LoggingOut => "logging_out",
                    Phase::Failed => "failed",
                    Phase::Closed => "closed",
                }
            ),
            4 => {
                for b in c.raw.isid {
                    let _ = write!(out, "{b:02x}");
                }
                writeln!(out)
            }
            5 => writeln!(out, "{}", c.raw.tsih),
            6 => writeln!(out, "{}", digest(p.header_digest)),
            7 => writeln!(out, "{}", digest(p.data_digest)),
            8 => writeln!(out, "{}", p.max_recv_data_segment_len),
            9 => writeln!(out, "{}", p.max_xmit_data_segment_len),
            10 => writeln!(out, "{}", p.first_burst_len),
            11 => writeln!(out, "{}", p.max_burst_len),
            12 => writeln!(out, "{}", yes_no(p.initial_r2t)),
            13 => writeln!(out, "{}", yes_no(p.immediate_data)),
            14 => writeln!(out, "{}", p.max_outstanding_r2t),
            _ => Ok(()),
        };
    }
}
