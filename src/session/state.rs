//! Small helpers every part of the driver shares: logging the quirks the
//! engine noticed, applying a completion to its command, and the NOP-Out
//! header.

use super::*;

/// Room for every Data-Out burst the target may ask for at once: each task
/// may have MaxOutstandingR2T R2Ts outstanding (the handoff keeps the product
/// within `uapi::MAX_R2T_JOBS`), plus a margin.
pub(super) fn r2t_jobs(depth: usize, p: &SessionParams) -> usize {
    uapi::r2t_job_capacity(depth as u32, p.max_outstanding_r2t)
}

impl State {
    /// Logs the target quirks the engine saw for the first time in this
    /// session: a rate limit that still names every kind once.
    pub(super) fn log_quirks(&mut self) {
        while let Some(q) = self.e.take_quirk() {
            pr_warn!(
                "host{}: target quirk: {} (logged once per session)\n",
                self.host_no,
                q
            );
        }
    }
}

/// The command of `c`, its result, residual and sense set, ready to be
/// completed (after the state lock is released).
pub(super) fn apply(c: Completion<'_, Cmd>) -> Cmd {
    let mut cmd = c.cmd;
    let host = match c.host {
        HostResult::Ok => HostByte::Ok,
        HostResult::Error => HostByte::Error,
        HostResult::BadTarget => HostByte::BadTarget,
    };
    if c.host == HostResult::Error {
        cmd.set_result(host, 0);
        return cmd;
    }
    cmd.set_result(host, c.status);
    cmd.set_resid(c.resid);
    if !c.sense.is_empty() {
        cmd.set_sense(c.sense);
    }
    cmd
}

/// An immediate NOP-Out header without data: a ping of ours (`itt` set) or
/// the answer to the target's (`ttt` set).
pub(super) fn nop_out(
    itt: u32,
    ttt: u32,
    lun: u64,
    cmd_sn: u32,
    exp_stat_sn: u32,
) -> [u8; BHS_LEN] {
    nop_out_header(true, itt, ttt, lun, cmd_sn, exp_stat_sn)
}

/// A non-immediate NOP-Out taking CmdSN `cmd_sn`: in place of the Command
/// PDU of a task taken back before it went out (`TxJob::Command`), or as a
/// ping on a session of several connections (`TxJob::Ping`).
pub(super) fn ordered_nop_out(itt: u32, cmd_sn: u32, exp_stat_sn: u32) -> [u8; BHS_LEN] {
    nop_out_header(false, itt, RESERVED_TAG, 0, cmd_sn, exp_stat_sn)
}

fn nop_out_header(
    immediate: bool,
    itt: u32,
    ttt: u32,
    lun: u64,
    cmd_sn: u32,
    exp_stat_sn: u32,
) -> [u8; BHS_LEN] {
    let mut hdr = [0u8; BHS_LEN];
    NopOut {
        immediate,
        lun,
        itt,
        ttt,
        cmd_sn,
        exp_stat_sn,
        data_segment_len: 0,
    }
    .emit(&mut hdr);
    hdr
}
