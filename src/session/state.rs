//! The protocol state's rules: violations as log text, the TX job ring,
//! StatSN/window accounting, the task table, and how a finished task's
//! status reaches its command.

use super::*;

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Violation::Malformed(e) => write!(f, "malformed PDU: {e}"),
            Violation::UnknownItt { what, itt } => write!(f, "{what} for unknown ITT {itt:#x}"),
            Violation::DataInNotRead { itt } => write!(f, "Data-In for non-read ITT {itt:#x}"),
            Violation::DataInOffset {
                itt,
                offset,
                expected,
            } => write!(
                f,
                "Data-In ITT {itt:#x} at offset {offset}, expected {expected} (in order)"
            ),
            Violation::DataInSn {
                itt,
                data_sn,
                expected,
            } => {
                write!(
                    f,
                    "Data-In ITT {itt:#x} DataSN {data_sn}, expected {expected}"
                )
            }
            Violation::DataInBeyond { itt, end, len } => {
                write!(
                    f,
                    "Data-In ITT {itt:#x} ends at {end}, beyond the {len}-byte buffer"
                )
            }
            Violation::R2tNotWrite { itt } => write!(f, "R2T for non-write ITT {itt:#x}"),
            Violation::R2tRange {
                itt,
                offset,
                len,
                total,
            } => write!(
                f,
                "R2T ITT {itt:#x} asks for {len} bytes at {offset} of {total}"
            ),
            Violation::R2tSn { itt, got, expected } => {
                write!(f, "R2T ITT {itt:#x} R2TSN {got}, expected {expected}")
            }
            Violation::R2tTooMany { itt, max } => {
                write!(f, "R2T ITT {itt:#x} exceeds MaxOutstandingR2T {max}")
            }
            Violation::R2tBurst { len, max } => {
                write!(f, "R2T of {len} bytes exceeds MaxBurstLength {max}")
            }
            Violation::Unexpected(what) => write!(f, "unexpected {what}"),
            Violation::TxQueueFull => f.write_str("more R2Ts/NOP-Ins than the TX queue holds"),
            Violation::TargetRequest(what) => f.write_str(what),
        }
    }
}

/// Room for every Data-Out burst the target may ask for at once: each task
/// may have MaxOutstandingR2T R2Ts outstanding (the handoff keeps the product
/// within `uapi::MAX_R2T_JOBS`), plus a margin.
pub(super) fn r2t_jobs(depth: usize, p: &SessionParams) -> usize {
    uapi::r2t_job_capacity(depth as u32, p.max_outstanding_r2t)
}

impl JobRing {
    pub(super) fn new(cap: usize) -> Result<Self> {
        Ok(JobRing {
            slots: KVVec::from_elem(None, cap.max(1), GFP_KERNEL)?,
            head: 0,
            len: 0,
        })
    }

    pub(super) fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub(super) fn push(&mut self, job: TxJob) -> bool {
        let cap = self.slots.len();
        if self.len == cap {
            return false;
        }
        if let Some(s) = self.slots.get_mut((self.head + self.len) % cap) {
            *s = Some(job);
            self.len += 1;
            return true;
        }
        false
    }

    pub(super) fn clear(&mut self) {
        while self.pop().is_some() {}
    }

    pub(super) fn pop(&mut self) -> Option<TxJob> {
        if self.len == 0 {
            return None;
        }
        let cap = self.slots.len();
        let job = self.slots.get_mut(self.head).and_then(Option::take);
        self.head = (self.head + 1) % cap;
        self.len -= 1;
        job
    }
}

impl State {
    /// Logs quirk `q` of the target, the first time in this session only:
    /// a rate limit that still names every kind once.
    pub(super) fn quirk(&mut self, q: Option<Quirk>) {
        if let Some(q) = q {
            if self.quirks.first(&q) {
                pr_warn!(
                    "host{}: target quirk: {} (logged once per session)\n",
                    self.host_no,
                    q
                );
            }
        }
    }

    /// Accounts the StatSN of a status-bearing PDU (see `Sequencer`).
    pub(super) fn ack_stat_sn(&mut self, stat_sn: u32) {
        let q = self.seq.ack_stat_sn(stat_sn);
        self.quirk(q);
    }

    /// Applies ExpCmdSN/MaxCmdSN (see `Sequencer`); credit stops the
    /// closed-window clock.
    pub(super) fn window(&mut self, exp_cmd_sn: u32, max_cmd_sn: u32) {
        let q = self.seq.apply_window(exp_cmd_sn, max_cmd_sn);
        self.quirk(q);
        if self.seq.credits() > 0 {
            self.window_watch.opened();
        }
    }

    /// Both of the above, for a PDU carrying StatSN, ExpCmdSN and MaxCmdSN.
    pub(super) fn ack(&mut self, stat_sn: u32, exp_cmd_sn: u32, max_cmd_sn: u32) {
        self.ack_stat_sn(stat_sn);
        self.window(exp_cmd_sn, max_cmd_sn);
    }

    /// The ITT for low bits `low` (generation << 12 | tag, or an internal tag).
    pub(super) fn itt(&self, low: u32) -> u32 {
        (u32::from(self.age) << 16) | (low & 0xffff)
    }

    /// The task with ITT `itt` (tag in the low 16 bits) if it is in flight.
    pub(super) fn task_by_itt(&mut self, itt: u32) -> Option<&mut Task> {
        if itt >> 16 != u32::from(self.age) {
            return None;
        }
        let t = self.tasks.get_mut(tag_of(itt) as usize)?.as_mut()?;
        if t.itt == itt {
            Some(t)
        } else {
            None
        }
    }

    pub(super) fn task(&mut self, tag: u16, seq: u64) -> Option<&mut Task> {
        self.tasks
            .get_mut(usize::from(tag))?
            .as_mut()
            .filter(|t| t.seq == seq)
    }

    pub(super) fn take(&mut self, tag: u16) -> Option<Task> {
        let t = self.tasks.get_mut(usize::from(tag))?.take();
        if t.is_some() {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        t
    }

    pub(super) fn remember_aborted(&mut self, itt: u32) {
        self.aborted.insert(itt);
    }

    /// A PDU for no task in flight: dropped if it belongs to an aborted task,
    /// else a protocol violation.
    pub(super) fn unknown(&self, what: &'static str, itt: u32) -> Result<(), Violation> {
        if itt != RESERVED_TAG && self.aborted.contains(itt) {
            Ok(())
        } else {
            Err(Violation::UnknownItt { what, itt })
        }
    }

    pub(super) fn take_any(&mut self) -> Option<Task> {
        let i = self.tasks.iter().position(Option::is_some)?;
        self.take(i as u16)
    }
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
    let mut hdr = [0u8; BHS_LEN];
    NopOut {
        immediate: true,
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

/// The blk-mq tag in an ITT.
pub(super) fn tag_of(itt: u32) -> u16 {
    (itt & TAG_MASK) as u16
}

/// Sets result, sense and residual of a finished task and hands its command
/// back for completion (after the state lock is released).
pub(super) fn finish(
    task: Task,
    response: u8,
    status: u8,
    underflow: bool,
    residual: u32,
    sense: &[u8],
) -> Cmd {
    let mut cmd = task.cmd;
    if response != RESPONSE_COMPLETED {
        cmd.set_result(HostByte::Error, 0);
        return cmd;
    }
    let mut host = HostByte::Ok;
    let mut resid = 0;
    if underflow {
        if residual <= task.len {
            resid = residual;
        } else {
            host = HostByte::BadTarget;
        }
    }
    // Never report bytes as transferred that no Data-In placed.
    if task.dir == DataDir::FromDevice {
        resid = resid.max(task.len.saturating_sub(task.received));
    }
    cmd.set_result(host, status);
    cmd.set_resid(resid);
    if status == CHECK_CONDITION && !sense.is_empty() {
        cmd.set_sense(sense);
    }
    cmd
}
