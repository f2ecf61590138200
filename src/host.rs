//! The SCSI host side of a session: [`HostOps`] for [`Session`] (queuecommand and
//! the EH handlers delegate to it) and the sysfs attributes each host shows
//! (target, portal, initiator, state, ISID, TSIH, negotiated keys) plus the
//! writable recovery knobs (replacement_timeout, noop_out_interval/timeout).
#![deny(unsafe_code)]

use core::fmt::Write;

use kernel::c_str;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::{Arc, ArcBorrow};

use crate::proto::negotiate::Digest;
use crate::session::Session;
use crate::sys::scsi::{Busy, Cmd, EhAbort, EhCmd, EhStatus, HostAttr, HostOps, SysfsBuf};

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

const fn ro(name: &'static CStr) -> HostAttr {
    HostAttr {
        name,
        writable: false,
    }
}

const fn rw(name: &'static CStr) -> HostAttr {
    HostAttr {
        name,
        writable: true,
    }
}

/// A decimal number written to a sysfs file (trailing newline allowed).
fn parse_number(input: &[u8]) -> Result<u32> {
    let s = core::str::from_utf8(input).map_err(|_| EINVAL)?.trim();
    s.parse::<u32>().map_err(|_| EINVAL)
}

impl HostOps for Session {
    const ATTRS: &'static [HostAttr] = &[
        ro(c_str!("targetname")),
        ro(c_str!("initiatorname")),
        ro(c_str!("portal")),
        ro(c_str!("session_state")),
        ro(c_str!("isid")),
        ro(c_str!("tsih")),
        ro(c_str!("header_digest")),
        ro(c_str!("data_digest")),
        ro(c_str!("max_recv_data_segment_length")),
        ro(c_str!("max_xmit_data_segment_length")),
        ro(c_str!("first_burst_length")),
        ro(c_str!("max_burst_length")),
        ro(c_str!("initial_r2t")),
        ro(c_str!("immediate_data")),
        ro(c_str!("max_outstanding_r2t")),
        rw(c_str!("replacement_timeout")),
        rw(c_str!("noop_out_interval")),
        rw(c_str!("noop_out_timeout")),
        ro(c_str!("recoveries")),
        ro(c_str!("tx_handed_over")),
        ro(c_str!("tx_stalled")),
    ];

    fn queue_command(this: ArcBorrow<'_, Self>, cmd: Cmd, more: bool) -> Result<(), (Cmd, Busy)> {
        Session::queue_command(this, cmd, more)
    }

    fn stable_writes(this: ArcBorrow<'_, Self>) -> bool {
        this.digests_pages()
    }

    fn commit(this: ArcBorrow<'_, Self>, hwq: u16) {
        this.push_held(hwq);
    }

    fn eh_abort(this: ArcBorrow<'_, Self>, cmd: &EhCmd) -> EhAbort {
        Session::eh_abort(&Arc::from(this), cmd)
    }

    fn eh_device_reset(this: ArcBorrow<'_, Self>, cmd: &EhCmd) -> EhStatus {
        this.eh_device_reset(cmd)
    }

    fn eh_target_reset(this: ArcBorrow<'_, Self>) -> EhStatus {
        this.eh_target_reset()
    }

    fn show_attr(this: ArcBorrow<'_, Self>, index: usize, out: &mut SysfsBuf<'_>) {
        let c = this.config();
        let (p, tsih) = this.params();
        let (replacement, noop_interval, noop_timeout, recoveries) = this.timeouts();
        let _ = match index {
            0 => writeln!(out, "{}", c.target_name()),
            1 => writeln!(out, "{}", c.initiator_name()),
            2 => writeln!(out, "{}", c.portal()),
            3 => writeln!(out, "{}", this.phase().name()),
            4 => {
                for b in c.raw.isid {
                    let _ = write!(out, "{b:02x}");
                }
                writeln!(out)
            }
            5 => writeln!(out, "{}", tsih),
            6 => writeln!(out, "{}", digest(p.header_digest)),
            7 => writeln!(out, "{}", digest(p.data_digest)),
            8 => writeln!(out, "{}", p.max_recv_data_segment_len),
            9 => writeln!(out, "{}", p.max_xmit_data_segment_len),
            10 => writeln!(out, "{}", p.first_burst_len),
            11 => writeln!(out, "{}", p.max_burst_len),
            12 => writeln!(out, "{}", yes_no(p.initial_r2t)),
            13 => writeln!(out, "{}", yes_no(p.immediate_data)),
            14 => writeln!(out, "{}", p.max_outstanding_r2t),
            15 => writeln!(out, "{}", replacement),
            16 => writeln!(out, "{}", noop_interval),
            17 => writeln!(out, "{}", noop_timeout),
            18 => writeln!(out, "{}", recoveries),
            19 => writeln!(out, "{}", this.handed_over()),
            20 => writeln!(out, "{}", this.tx_stalled()),
            _ => Ok(()),
        };
    }

    fn store_attr(this: ArcBorrow<'_, Self>, index: usize, input: &[u8]) -> Result {
        let n = parse_number(input)?;
        let secs = || u16::try_from(n).map_err(|_| EINVAL);
        match index {
            15 => this.set_replacement_timeout(n),
            16 => this.set_noop(Some(secs()?), None),
            17 => this.set_noop(None, Some(secs()?)),
            _ => Err(EINVAL),
        }
    }
}
