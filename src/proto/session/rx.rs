//! What each target PDU does to the session (RFC 7143 §11): Data-In
//! (placement checked against offset, DataSN and the buffer; status in the
//! last PDU), R2T (R2TSN, range, MaxBurstLength, MaxOutstandingR2T), SCSI
//! Response (residuals, sense), NOP-In, Async Message, Reject, TMF and Logout
//! responses, and StatSN/ExpCmdSN/MaxCmdSN on each. The engine decides; the
//! caller applies the returned [`RxOutcome`] (complete a command, wake a
//! waiter, kick the transmitter, log, reconnect) or fails the connection on
//! a [`SessionError`].

use super::super::bhs::{Bhs, Opcode};
use super::super::pdu::{
    AsyncEvent, AsyncMessage, DataIn, Pdu, R2t, Reject, RejectReason, ScsiResponse,
    ScsiResponseData, TmfResponse, RESPONSE_COMPLETED, RESPONSE_TARGET_FAILURE,
};
use super::engine::{Engine, Phase, Storage};
use super::error::SessionError;
use super::itt::{Itt, LOGOUT_LOW};
use super::logout::relogin_delay_ms;
use super::seq::Quirk;
use super::task::{Dir, Task};
use super::tmf::TmfRx;
use super::tx::TxJob;

/// SAM status CHECK CONDITION.
pub const CHECK_CONDITION: u8 = 0x02;

/// Where a Data-In's payload goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Nowhere: no payload, or a task taken back (the bytes are dropped).
    Discard,
    /// Into the buffer of task (`tag`, `seq`), from byte `base`; the whole
    /// segment fits the buffer.
    Into {
        /// The task's tag.
        tag: u16,
        /// The task's seq: the bytes are dropped if it is gone meanwhile.
        seq: u64,
        /// Buffer offset of the segment's first byte.
        base: u32,
    },
}

/// The host byte a completion carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostResult {
    /// DID_OK: the SAM status stands.
    Ok,
    /// DID_ERROR: the command did not complete (target failure, Reject, bad
    /// sense); the midlayer may retry.
    Error,
    /// DID_BAD_TARGET: a residual larger than the command.
    BadTarget,
}

/// A finished command and what to tell the midlayer.
#[derive(Debug, PartialEq, Eq)]
pub struct Completion<'d, C> {
    /// The command.
    pub cmd: C,
    /// Host byte.
    pub host: HostResult,
    /// SAM status (meaningful with `HostResult::Ok`).
    pub status: u8,
    /// Bytes not transferred: never less than what no Data-In delivered.
    pub resid: u32,
    /// Sense data for a CHECK CONDITION, else empty.
    pub sense: &'d [u8],
}

/// Something worth a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// The target rejected one of our PDUs.
    Rejected {
        /// What it rejected.
        opcode: Opcode,
        /// Its ITT.
        itt: u32,
        /// Why.
        reason: RejectReason,
    },
    /// The answer to a TMF no longer waited for.
    LateTmf {
        /// Its ITT.
        itt: u32,
    },
    /// The target asks for a logout (Async Message event 1).
    TargetAsksLogout,
    /// A SCSI asynchronous event (sense data in an Async Message).
    ScsiEvent {
        /// LUN.
        lun: u64,
        /// Sense key.
        key: u8,
        /// ASC.
        asc: u8,
        /// ASCQ.
        ascq: u8,
    },
    /// Another async event, logged only.
    AsyncEvent(AsyncEvent),
}

/// The target ends the connection in an orderly way; reconnect after
/// `Engine::reconnect_delay_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconnect {
    /// We logged out because the target asked.
    LoggedOut,
    /// The target dropped the connection (Async Message).
    Dropped,
    /// The target asks to renegotiate parameters.
    Renegotiate,
}

impl Reconnect {
    /// The log line.
    pub fn text(self) -> &'static str {
        match self {
            Reconnect::LoggedOut => "logged out at the target's request; reconnecting",
            Reconnect::Dropped => {
                "the target dropped the connection (Async Message); reconnecting after its Time2Wait"
            }
            Reconnect::Renegotiate => {
                "the target asks to renegotiate parameters; reconnecting to do so"
            }
        }
    }
}

/// What a received PDU asks of the caller.
#[derive(Debug, PartialEq, Eq)]
pub struct RxOutcome<'d, C> {
    /// A command to complete (after the state lock is released).
    pub complete: Option<Completion<'d, C>>,
    /// A waiter (ping, TMF, logout) has its answer.
    pub wake: bool,
    /// A transmit job was queued.
    pub kick_tx: bool,
    /// Something to log.
    pub note: Option<Note>,
    /// The connection ends at the target's request.
    pub reconnect: Option<Reconnect>,
}

impl<C> Default for RxOutcome<'_, C> {
    fn default() -> Self {
        RxOutcome {
            complete: None,
            wake: false,
            kick_tx: false,
            note: None,
            reconnect: None,
        }
    }
}

impl<'d, C> RxOutcome<'d, C> {
    fn completing(c: Completion<'d, C>) -> Self {
        RxOutcome {
            complete: Some(c),
            ..Self::default()
        }
    }

    fn noting(n: Note) -> Self {
        RxOutcome {
            note: Some(n),
            ..Self::default()
        }
    }
}

/// The completion of `task` with the target's `response`, `status`, residual
/// (when `underflow`) and `sense`.
pub fn finish<C>(
    task: Task<C>,
    response: u8,
    status: u8,
    underflow: bool,
    residual: u32,
    sense: &[u8],
) -> Completion<'_, C> {
    if response != RESPONSE_COMPLETED {
        return Completion {
            cmd: task.cmd,
            host: HostResult::Error,
            status: 0,
            resid: task.len,
            sense: &[],
        };
    }
    let mut host = HostResult::Ok;
    let mut resid = 0;
    if underflow {
        if residual <= task.len {
            resid = residual;
        } else {
            host = HostResult::BadTarget;
        }
    }
    // Never report bytes as transferred that no Data-In placed.
    if task.dir == Dir::Read {
        resid = resid.max(task.len.saturating_sub(task.received));
    }
    Completion {
        cmd: task.cmd,
        host,
        status,
        resid,
        sense: if status == CHECK_CONDITION {
            sense
        } else {
            &[]
        },
    }
}

impl<St: Storage> Engine<St> {
    /// The task with ITT `itt` for a `what` received on `lane`: `None` if it
    /// was taken back recently (the PDU is dropped); a violation if no task
    /// has that ITT or the task's PDUs travel on another connection.
    fn task_on(
        &mut self,
        lane: usize,
        what: &'static str,
        itt: u32,
    ) -> Result<Option<&mut Task<St::Cmd>>, SessionError> {
        match self.tasks.by_itt(Itt::from_wire(itt)).map(|t| t.lane) {
            None => return self.unknown(what, itt).map(|()| None),
            Some(task_lane) if usize::from(task_lane) != lane => {
                return Err(SessionError::WrongConnection {
                    what,
                    itt,
                    lane,
                    task_lane,
                })
            }
            Some(_) => {}
        }
        Ok(self.tasks.by_itt(Itt::from_wire(itt)))
    }

    /// A Data-In header received on `lane`: where its payload goes, checked
    /// against the task before any byte is placed.
    pub fn data_in_header(&mut self, lane: usize, d: &DataIn) -> Result<Placement, SessionError> {
        self.rx_lane(lane)?;
        // Unknown but taken back: dropped at the end (or a violation then).
        let Some(t) = self.task_on(lane, "Data-In", d.itt)? else {
            return Ok(Placement::Discard);
        };
        if t.dir != Dir::Read {
            return Err(SessionError::DataInNotRead { itt: d.itt });
        }
        if d.buffer_offset != t.received {
            return Err(SessionError::DataInOffset {
                itt: d.itt,
                offset: d.buffer_offset,
                expected: t.received,
            });
        }
        if d.data_sn != t.exp_data_sn {
            return Err(SessionError::DataInSn {
                itt: d.itt,
                data_sn: d.data_sn,
                expected: t.exp_data_sn,
            });
        }
        let end = u64::from(d.buffer_offset) + u64::from(d.data_segment_len);
        if end > u64::from(t.len) {
            return Err(SessionError::DataInBeyond {
                itt: d.itt,
                end,
                len: t.len,
            });
        }
        if d.data_segment_len == 0 {
            return Ok(Placement::Discard);
        }
        Ok(Placement::Into {
            tag: t.itt.tag(),
            seq: t.seq,
            base: d.buffer_offset,
        })
    }

    /// A whole target PDU `pdu` with data segment `data` (empty for a
    /// Data-In, whose payload went where [`Engine::data_in_header`] said),
    /// received on `lane` at `now_ms`. For a Data-In the header must have
    /// been passed to `data_in_header` first.
    pub fn on_pdu<'d>(
        &mut self,
        lane: usize,
        pdu: &Pdu,
        data: &'d [u8],
        now_ms: i64,
    ) -> Result<RxOutcome<'d, St::Cmd>, SessionError> {
        self.rx_lane(lane)?.last_rx_ms = now_ms;
        match pdu {
            Pdu::DataIn(d) => self.data_in_end(lane, d),
            Pdu::ScsiResponse(r) => self.response(lane, r, data),
            Pdu::R2t(r) => self.r2t(lane, r),
            Pdu::NopIn(n) => {
                self.window(n.exp_cmd_sn, n.max_cmd_sn);
                let mut out = RxOutcome::default();
                if n.itt != super::super::bhs::RESERVED_TAG {
                    // The answer to a ping of ours carries a StatSN.
                    self.ack_stat_sn(lane, n.stat_sn);
                    if Itt::from_wire(n.itt) == self.ping_itt(lane) {
                        self.rx_lane(lane)?.ping_sent_ms = None;
                        out.wake = true;
                    } else {
                        // Or the answer to the NOP-Out that stood in for a
                        // command taken back before it went out.
                        self.unknown("NOP-In", n.itt)?;
                    }
                }
                if n.wants_reply() {
                    // Answered on the connection it came on.
                    if !self.rx_lane(lane)?.ctl_jobs.push(TxJob::NopOut {
                        ttt: n.ttt,
                        lun: n.lun,
                    }) {
                        return Err(SessionError::TxQueueFull);
                    }
                    out.kick_tx = true;
                }
                Ok(out)
            }
            Pdu::LogoutResponse(l) => {
                self.ack(lane, l.stat_sn, l.exp_cmd_sn, l.max_cmd_sn);
                if self.phase != Phase::LoggingOut || self.logout_response.is_some() {
                    return Err(SessionError::Unexpected("Logout Response"));
                }
                // Both our logouts (session close, target-requested) go out
                // under this ITT: an answer to anything else is no answer.
                if Itt::from_wire(l.itt) != self.internal_itt(LOGOUT_LOW) {
                    return Err(SessionError::UnknownItt {
                        what: "Logout Response",
                        itt: l.itt,
                    });
                }
                if lane != self.logout_lane {
                    return Err(SessionError::WrongConnection {
                        what: "Logout Response",
                        itt: l.itt,
                        lane,
                        task_lane: self.logout_lane as u8,
                    });
                }
                self.logout_response = Some(l.response);
                self.logout_watch.done();
                if self.reconnect_delay_ms.is_some() {
                    // Our logout answering the target's request: reconnect
                    // after DefaultTime2Wait (the response's Time2Wait only
                    // counts at ERL 2 or after a failed logout).
                    let p = self.params;
                    self.reconnect_delay_ms = Some(relogin_delay_ms(
                        p.error_recovery_level,
                        p.default_time2wait,
                        l.response,
                        l.time2wait,
                    ));
                    return Ok(RxOutcome {
                        reconnect: Some(Reconnect::LoggedOut),
                        ..RxOutcome::default()
                    });
                }
                Ok(RxOutcome {
                    wake: true,
                    ..RxOutcome::default()
                })
            }
            Pdu::AsyncMessage(a) => self.async_message(lane, a, data, now_ms),
            Pdu::Reject(r) => self.reject(lane, r, data),
            Pdu::TaskMgmtResponse(t) => {
                self.ack(lane, t.stat_sn, t.exp_cmd_sn, t.max_cmd_sn);
                Ok(match self.tmf.on_response(t.itt, t.response, lane) {
                    TmfRx::Answer => RxOutcome {
                        wake: true,
                        ..RxOutcome::default()
                    },
                    TmfRx::Late => RxOutcome::noting(Note::LateTmf { itt: t.itt }),
                    TmfRx::WrongConnection(task_lane) => {
                        return Err(SessionError::WrongConnection {
                            what: "Task Management Response",
                            itt: t.itt,
                            lane,
                            task_lane,
                        })
                    }
                })
            }
            Pdu::LoginResponse(_) => Err(SessionError::Unexpected("Login Response")),
            Pdu::TextResponse(_) => Err(SessionError::Unexpected("Text Response")),
            _ => Err(SessionError::Unexpected("PDU opcode")),
        }
    }

    fn data_in_end<'d>(
        &mut self,
        lane: usize,
        d: &DataIn,
    ) -> Result<RxOutcome<'d, St::Cmd>, SessionError> {
        self.window(d.exp_cmd_sn, d.max_cmd_sn);
        if d.stray_residual_bits() {
            self.quirk(Some(Quirk::StrayResidual { itt: d.itt }));
        }
        if d.status.is_some() {
            self.ack_stat_sn(lane, d.stat_sn);
        }
        let itt = Itt::from_wire(d.itt);
        let Some(t) = self.task_on(lane, "Data-In", d.itt)? else {
            return Ok(RxOutcome::default());
        };
        t.received = t.received.saturating_add(d.data_segment_len);
        t.exp_data_sn = t.exp_data_sn.wrapping_add(1);
        let Some(status) = d.status else {
            return Ok(RxOutcome::default());
        };
        Ok(match self.tasks.take(itt.tag()) {
            Some(task) => RxOutcome::completing(finish(
                task,
                RESPONSE_COMPLETED,
                status,
                d.underflow,
                d.residual_count,
                &[],
            )),
            None => RxOutcome::default(),
        })
    }

    fn response<'d>(
        &mut self,
        lane: usize,
        r: &ScsiResponse,
        data: &'d [u8],
    ) -> Result<RxOutcome<'d, St::Cmd>, SessionError> {
        self.ack(lane, r.stat_sn, r.exp_cmd_sn, r.max_cmd_sn);
        let itt = Itt::from_wire(r.itt);
        if self.task_on(lane, "SCSI Response", r.itt)?.is_none() {
            return Ok(RxOutcome::default());
        }
        let Some(task) = self.tasks.take(itt.tag()) else {
            return Ok(RxOutcome::default());
        };
        // Sense that does not fit its segment is this command's problem, not
        // the connection's: the command fails (the midlayer retries it).
        Ok(RxOutcome::completing(
            match ScsiResponseData::parse(data).map(|d| d.sense) {
                Ok(sense) => finish(
                    task,
                    r.response,
                    r.status,
                    r.underflow,
                    r.residual_count,
                    sense,
                ),
                Err(error) => {
                    self.quirk(Some(Quirk::BadSense { itt: r.itt, error }));
                    finish(task, RESPONSE_TARGET_FAILURE, r.status, false, 0, &[])
                }
            },
        ))
    }

    fn r2t<'d>(&mut self, lane: usize, r: &R2t) -> Result<RxOutcome<'d, St::Cmd>, SessionError> {
        let p = self.params;
        self.window(r.exp_cmd_sn, r.max_cmd_sn);
        let Some(t) = self.task_on(lane, "R2T", r.itt)? else {
            return Ok(RxOutcome::default());
        };
        if t.dir != Dir::Write {
            return Err(SessionError::R2tNotWrite { itt: r.itt });
        }
        if r.r2t_sn != t.exp_r2t_sn {
            return Err(SessionError::R2tSn {
                itt: r.itt,
                got: r.r2t_sn,
                expected: t.exp_r2t_sn,
            });
        }
        let end = u64::from(r.buffer_offset) + u64::from(r.desired_data_len);
        if r.desired_data_len == 0 || end > u64::from(t.len) {
            return Err(SessionError::R2tRange {
                itt: r.itt,
                offset: r.buffer_offset,
                len: r.desired_data_len,
                total: t.len,
            });
        }
        if r.desired_data_len > p.max_burst_len {
            return Err(SessionError::R2tBurst {
                len: r.desired_data_len,
                max: p.max_burst_len,
            });
        }
        if t.r2t_outstanding >= p.max_outstanding_r2t {
            return Err(SessionError::R2tTooMany {
                itt: r.itt,
                max: p.max_outstanding_r2t,
            });
        }
        t.exp_r2t_sn = t.exp_r2t_sn.wrapping_add(1);
        t.r2t_outstanding += 1;
        let job = TxJob::DataOut {
            tag: t.itt.tag(),
            seq: t.seq,
            ttt: r.ttt,
            offset: r.buffer_offset,
            len: r.desired_data_len,
        };
        // The burst goes on the task's connection, which the R2T came on.
        if !self.rx_lane(lane)?.jobs.push(job) {
            return Err(SessionError::TxQueueFull);
        }
        Ok(RxOutcome {
            kick_tx: true,
            ..RxOutcome::default()
        })
    }

    fn async_message<'d>(
        &mut self,
        lane: usize,
        a: &AsyncMessage,
        data: &[u8],
        now_ms: i64,
    ) -> Result<RxOutcome<'d, St::Cmd>, SessionError> {
        self.ack(lane, a.stat_sn, a.exp_cmd_sn, a.max_cmd_sn);
        match a.event {
            AsyncEvent::LogoutRequest => {
                // Log out (closing this connection) now rather than within
                // the Parameter3 seconds allowed; commands in flight come
                // back for retry when the connection closes.
                let mut out = RxOutcome::noting(Note::TargetAsksLogout);
                if self.phase == Phase::Running {
                    self.phase = Phase::LoggingOut;
                    self.reconnect_delay_ms =
                        Some(u32::from(self.params.default_time2wait).saturating_mul(1000));
                    // On the connection that asked; its answer comes there.
                    self.logout_lane = lane;
                    if !self.rx_lane(lane)?.ctl_jobs.push(TxJob::Logout) {
                        return Err(SessionError::TxQueueFull);
                    }
                    self.logout_watch.sent(now_ms);
                    out.kick_tx = true;
                }
                Ok(out)
            }
            AsyncEvent::DropConnection | AsyncEvent::DropAllConnections => {
                self.reconnect_delay_ms = Some(u32::from(a.parameter2).saturating_mul(1000));
                Ok(RxOutcome {
                    reconnect: Some(Reconnect::Dropped),
                    ..RxOutcome::default()
                })
            }
            AsyncEvent::Renegotiate => Ok(RxOutcome {
                reconnect: Some(Reconnect::Renegotiate),
                ..RxOutcome::default()
            }),
            AsyncEvent::ScsiEvent => {
                // The data segment is SenseLength + sense data; sd sees the
                // same Unit Attention on the LUN's next command.
                let sense = ScsiResponseData::parse(data)
                    .map(|d| d.sense)
                    .unwrap_or(&[]);
                Ok(RxOutcome::noting(Note::ScsiEvent {
                    lun: a.lun,
                    key: sense.get(2).map_or(0, |b| b & 0xf),
                    asc: sense.get(12).copied().unwrap_or(0),
                    ascq: sense.get(13).copied().unwrap_or(0),
                }))
            }
            ev => Ok(RxOutcome::noting(Note::AsyncEvent(ev))),
        }
    }

    fn reject<'d>(
        &mut self,
        lane: usize,
        r: &Reject,
        data: &[u8],
    ) -> Result<RxOutcome<'d, St::Cmd>, SessionError> {
        self.ack(lane, r.stat_sn, r.exp_cmd_sn, r.max_cmd_sn);
        let hdr = Reject::rejected_header(data).map_err(SessionError::Malformed)?;
        let bhs = Bhs::from_array(hdr);
        let itt = Itt::from_wire(bhs.itt());
        let mut out = RxOutcome::noting(Note::Rejected {
            opcode: bhs.opcode(),
            itt: itt.get(),
            reason: r.reason,
        });
        match bhs.opcode() {
            Opcode::ScsiCommand if self.tasks.by_itt(itt).is_some() => {
                let task_lane = self.tasks.by_itt(itt).map_or(0, |t| t.lane);
                if usize::from(task_lane) != lane {
                    return Err(SessionError::WrongConnection {
                        what: "Reject of a SCSI Command",
                        itt: itt.get(),
                        lane,
                        task_lane,
                    });
                }
                // The command was not executed: the midlayer may retry it.
                if let Some(t) = self.tasks.take(itt.tag()) {
                    out.complete = Some(Completion {
                        cmd: t.cmd,
                        host: HostResult::Error,
                        status: 0,
                        resid: t.len,
                        sense: &[],
                    });
                }
            }
            Opcode::NopOut
                if itt == self.ping_itt(lane)
                    && self.lane(lane).is_some_and(|l| l.ping_sent_ms.is_some()) =>
            {
                // The target is alive enough to reject it.
                self.rx_lane(lane)?.ping_sent_ms = None;
                out.wake = true;
            }
            Opcode::TaskMgmtRequest => {
                match self.tmf.on_response(itt.get(), TmfResponse::Rejected, lane) {
                    TmfRx::Answer => out.wake = true,
                    TmfRx::Late => {}
                    TmfRx::WrongConnection(task_lane) => {
                        return Err(SessionError::WrongConnection {
                            what: "Reject of a TMF",
                            itt: itt.get(),
                            lane,
                            task_lane,
                        })
                    }
                }
            }
            _ => {}
        }
        Ok(out)
    }
}
