//! The session engine: every piece of full-feature-phase state the rules
//! need (phase, sequence numbers, task table, aborted ITTs, transmit jobs,
//! TMF slot, logout and ping state) in one value, generic over the caller's
//! command handle and storage. The kernel holds one under its state lock and
//! applies what the engine's methods return (`rx` for received PDUs, `timers`
//! for the watchdog, `submit` here for new commands); tests drive it directly.

use core::ops::DerefMut;

use super::super::negotiate::SessionParams;
use super::aborted::AbortedItts;
use super::error::SessionError;
use super::itt::{Itt, PING_LOW};
use super::logout::LogoutWatch;
use super::seq::{Quirk, QuirkSet, Sequencer};
use super::task::{Dir, InsertError, NewTask, Slot, Task, TaskTable};
use super::tmf::TmfSlot;
use super::tx::{JobRing, TxJob};
use super::window_watch::WindowWatch;

/// Where the session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Full feature phase.
    Running,
    /// Logout Request sent (to end the session, or because the target asked
    /// for a logout and a reconnect).
    LoggingOut,
    /// The connection failed; I/O is held until a new connection or the
    /// replacement timeout.
    Recovering,
    /// No connection and the replacement timeout passed (or the session is
    /// being removed): I/O fails fast; a new connection still brings it back.
    Offline,
    /// Torn down.
    Closed,
}

impl Phase {
    /// The sysfs / log name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::LoggingOut => "logging_out",
            Phase::Recovering => "recovering",
            Phase::Offline => "failed",
            Phase::Closed => "closed",
        }
    }
}

/// The caller's types: its command handle and the storage behind each table.
pub trait Storage {
    /// The command handle kept in each task.
    type Cmd;
    /// Task slots, one per tag.
    type Slots: DerefMut<Target = [Slot<Self::Cmd>]>;
    /// The aborted-ITT ring.
    type Itts: DerefMut<Target = [u32]>;
    /// A transmit job ring.
    type Jobs: DerefMut<Target = [Option<TxJob>]>;
}

/// The storage an engine is built over.
pub struct Parts<St: Storage> {
    /// One empty slot per tag (the queue depth).
    pub slots: St::Slots,
    /// `aborted::capacity_for(depth)` entries.
    pub aborted: St::Itts,
    /// `uapi::r2t_job_capacity(depth, MaxOutstandingR2T)` entries.
    pub jobs: St::Jobs,
    /// Room for pings, NOP-In answers and the logout.
    pub ctl_jobs: St::Jobs,
    /// Room for commands accepted and not sent yet: one per tag.
    pub cmds: St::Jobs,
}

/// Why a new command was not sent; the command comes back.
#[derive(Debug)]
pub enum Refused<C> {
    /// The session is not running (`Phase` says what to tell the midlayer).
    NotRunning(C, Phase),
    /// The command window is closed: retry when credit comes.
    NoCredit(C),
    /// The tag is out of range or still busy.
    Slot(InsertError<C>),
    /// Every room for unsent commands is taken (commands taken back before
    /// they went out still hold theirs): retry once the sender caught up.
    Backlog(C),
}

/// A command accepted by [`Engine::submit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Submitted {
    /// Its ITT.
    pub itt: Itt,
    /// Its seq (see [`Task::seq`]).
    pub seq: u64,
    /// The CmdSN it goes with.
    pub cmd_sn: u32,
    /// ExpStatSN to put in the header.
    pub exp_stat_sn: u32,
}

/// The full-feature-phase state of one session on its connection.
pub struct Engine<St: Storage> {
    /// Where the session is.
    pub phase: Phase,
    /// Parameters negotiated for the current connection.
    pub params: SessionParams,
    /// ITT high half of the current connection.
    pub age: u16,
    /// CmdSN, the command window and ExpStatSN.
    pub seq: Sequencer,
    /// Started when a command finds no credit, stopped by credit.
    pub window_watch: WindowWatch,
    /// Commands in flight.
    pub tasks: TaskTable<St::Cmd, St::Slots>,
    /// ITTs recently taken back by an abort or reset.
    pub aborted: AbortedItts<St::Itts>,
    /// Data-Out bursts answering R2Ts, in order.
    pub jobs: JobRing<St::Jobs>,
    /// NOP-Outs and Logouts: sent before queued bursts, so a ping measures
    /// the target, not the depth of our own send queue.
    pub ctl_jobs: JobRing<St::Jobs>,
    /// Commands accepted and not sent yet, in CmdSN order: whoever holds the
    /// transmit side sends them (after the control jobs, before the bursts).
    pub cmds: JobRing<St::Jobs>,
    /// The TMF waited for and its answer.
    pub tmf: TmfSlot,
    /// Response code of the Logout Response, once received.
    pub logout_response: Option<u8>,
    /// The target asked for a logout or dropped us: reconnect after this.
    pub reconnect_delay_ms: Option<u32>,
    /// The deadline of a logout the target asked for.
    pub logout_watch: LogoutWatch,
    /// When our outstanding NOP-Out ping was sent.
    pub ping_sent_ms: Option<i64>,
    /// When a PDU was last received.
    pub last_rx_ms: i64,
    quirks: QuirkSet,
    /// Quirks seen for the first time, not yet logged (one per kind at most).
    pending_quirks: [Option<Quirk>; 5],
}

impl<St: Storage> Engine<St> {
    /// A running engine over `parts`, for a connection negotiated as `params`
    /// with ITT high half `age` and sequence numbers `seq`, at `now_ms`.
    pub fn new(
        parts: Parts<St>,
        params: SessionParams,
        age: u16,
        seq: Sequencer,
        now_ms: i64,
    ) -> Self {
        Engine {
            phase: Phase::Running,
            params,
            age,
            seq,
            window_watch: WindowWatch::default(),
            tasks: TaskTable::new(parts.slots),
            aborted: AbortedItts::new(parts.aborted),
            jobs: JobRing::new(parts.jobs),
            ctl_jobs: JobRing::new(parts.ctl_jobs),
            cmds: JobRing::new(parts.cmds),
            tmf: TmfSlot::default(),
            logout_response: None,
            reconnect_delay_ms: None,
            logout_watch: LogoutWatch::default(),
            ping_sent_ms: None,
            last_rx_ms: now_ms,
            quirks: QuirkSet::default(),
            pending_quirks: [None; 5],
        }
    }

    /// Notes quirk `q` of the target if this kind was not seen before in
    /// this session (see [`Engine::take_quirk`]).
    pub fn quirk(&mut self, q: Option<Quirk>) {
        let Some(q) = q else { return };
        if self.quirks.first(&q) {
            if let Some(slot) = self.pending_quirks.iter_mut().find(|s| s.is_none()) {
                *slot = Some(q);
            }
        }
    }

    /// A quirk seen for the first time and not yet logged.
    pub fn take_quirk(&mut self) -> Option<Quirk> {
        self.pending_quirks.iter_mut().find_map(Option::take)
    }

    /// Accounts the StatSN of a status-bearing PDU.
    pub fn ack_stat_sn(&mut self, stat_sn: u32) {
        let q = self.seq.ack_stat_sn(stat_sn);
        self.quirk(q);
    }

    /// Applies ExpCmdSN/MaxCmdSN; credit stops the closed-window clock.
    pub fn window(&mut self, exp_cmd_sn: u32, max_cmd_sn: u32) {
        let q = self.seq.apply_window(exp_cmd_sn, max_cmd_sn);
        self.quirk(q);
        if self.seq.credits() > 0 {
            self.window_watch.opened();
        }
    }

    /// Both of the above.
    pub fn ack(&mut self, stat_sn: u32, exp_cmd_sn: u32, max_cmd_sn: u32) {
        self.ack_stat_sn(stat_sn);
        self.window(exp_cmd_sn, max_cmd_sn);
    }

    /// The ITT with reserved low half `low` on this connection.
    pub fn internal_itt(&self, low: u16) -> Itt {
        Itt::internal(self.age, low)
    }

    /// The ITT of our NOP-Out ping.
    pub fn ping_itt(&self) -> Itt {
        self.internal_itt(PING_LOW)
    }

    /// A PDU for no task in flight: dropped if it belongs to a task taken
    /// back recently, else a violation.
    pub fn unknown(&self, what: &'static str, itt: u32) -> Result<(), SessionError> {
        if !Itt::from_wire(itt).is_reserved() && self.aborted.contains(itt) {
            Ok(())
        } else {
            Err(SessionError::UnknownItt { what, itt })
        }
    }

    /// Takes back the task under `tag` (abort, reset, a command EH reissues):
    /// its late PDUs are dropped from now on.
    pub fn take_back(&mut self, tag: u16) -> Option<Task<St::Cmd>> {
        let t = self.tasks.take(tag)?;
        self.aborted.insert(t.itt.get());
        Some(t)
    }

    /// Takes back the first task `pred` selects (a LUN or target reset).
    pub fn take_back_where(
        &mut self,
        pred: impl FnMut(&Task<St::Cmd>) -> bool,
    ) -> Option<Task<St::Cmd>> {
        let t = self.tasks.take_where(pred)?;
        self.aborted.insert(t.itt.get());
        Some(t)
    }

    /// Whether the window has room for one more command at `now_ms`; a
    /// closed window starts the closed-window clock (as [`Engine::submit`]
    /// does when it refuses).
    pub fn credit_for_one(&mut self, now_ms: i64) -> bool {
        if self.seq.credits() > 0 {
            return true;
        }
        self.window_watch.closed(now_ms);
        false
    }

    /// A new command under `tag` at `now_ms`: takes a CmdSN and a slot and
    /// queues the Command PDU ([`TxJob::Command`], sent by [`Engine::next_job`]
    /// in CmdSN order), or gives the command back saying why.
    pub fn submit(
        &mut self,
        tag: u16,
        cmd: St::Cmd,
        lun: u64,
        dir: Dir,
        len: u32,
        now_ms: i64,
    ) -> Result<Submitted, Refused<St::Cmd>> {
        if self.phase != Phase::Running {
            return Err(Refused::NotRunning(cmd, self.phase));
        }
        if !self.credit_for_one(now_ms) {
            return Err(Refused::NoCredit(cmd));
        }
        if self.cmds.len() >= self.cmds.capacity() {
            return Err(Refused::Backlog(cmd));
        }
        let cmd_sn = self.seq.next_cmd_sn().get();
        let new = NewTask {
            cmd,
            lun,
            cmd_sn,
            dir,
            len,
        };
        // The tag's generation wraps after 16 reuses: never hand out an ITT
        // whose taken-back task may still send late PDUs (they would land in
        // this command's buffer instead of being dropped).
        let aborted = &self.aborted;
        let (itt, seq) = self
            .tasks
            .insert_avoiding(tag, self.age, new, |i| aborted.contains(i.get()))
            .map_err(Refused::Slot)?;
        self.seq.take_cmd_sn();
        // Room checked above.
        self.cmds.push(TxJob::Command {
            tag,
            seq,
            itt: itt.get(),
            cmd_sn,
        });
        Ok(Submitted {
            itt,
            seq,
            cmd_sn,
            exp_stat_sn: self.seq.exp_stat_sn().get(),
        })
    }

    /// The last Data-Out PDU of a burst for task (`tag`, `seq`) went out:
    /// an R2T's burst no longer counts against MaxOutstandingR2T.
    pub fn burst_sent(&mut self, tag: u16, seq: u64, solicited: bool) {
        if let (true, Some(t)) = (solicited, self.tasks.get(tag, seq)) {
            t.r2t_outstanding = t.r2t_outstanding.saturating_sub(1);
        }
    }

    /// The next thing to send: control jobs first (a ping measures the
    /// target, not our queue), then commands, then Data-Out bursts.
    pub fn next_job(&mut self) -> Option<TxJob> {
        self.ctl_jobs
            .pop()
            .or_else(|| self.cmds.pop())
            .or_else(|| self.jobs.pop())
    }

    /// Whether anything waits to be sent.
    pub fn has_jobs(&self) -> bool {
        !(self.ctl_jobs.is_empty() && self.cmds.is_empty() && self.jobs.is_empty())
    }

    /// Queues a NOP-Out ping at `now_ms` unless one is out; false if the
    /// control queue is full (the connection is busy anyway).
    pub fn start_ping(&mut self, now_ms: i64) -> bool {
        if self.ping_sent_ms.is_some() {
            return true;
        }
        if !self.ctl_jobs.push(TxJob::Ping) {
            return false;
        }
        self.ping_sent_ms = Some(now_ms);
        true
    }

    /// The connection is lost: what was queued for it is dropped. Returns
    /// the relogin delay (the target's, else DefaultTime2Wait).
    pub fn connection_lost(&mut self) -> u32 {
        self.ping_sent_ms = None;
        self.logout_watch.done();
        self.jobs.clear();
        self.ctl_jobs.clear();
        self.cmds.clear();
        let t2w = u32::from(self.params.default_time2wait).saturating_mul(1000);
        self.reconnect_delay_ms.take().unwrap_or(t2w)
    }

    /// A new connection negotiated as `params` with sequence numbers `seq`
    /// replaces the lost one at `now_ms`: a new ITT age, so nothing of the
    /// old connection matches; `jobs` replaces the R2T job storage if given.
    pub fn connection_replaced(
        &mut self,
        params: SessionParams,
        seq: Sequencer,
        jobs: Option<St::Jobs>,
        now_ms: i64,
    ) {
        if let Some(jobs) = jobs {
            self.jobs = JobRing::new(jobs);
        }
        // Nothing queued for an old connection goes out on the new one (a
        // session failed during its final logout never went through
        // `connection_lost`).
        self.jobs.clear();
        self.ctl_jobs.clear();
        self.cmds.clear();
        self.params = params;
        self.seq = seq;
        self.age = super::itt::next_age(self.age);
        self.phase = Phase::Running;
        self.last_rx_ms = now_ms;
        self.ping_sent_ms = None;
        self.reconnect_delay_ms = None;
        self.window_watch.opened();
        self.logout_response = None;
        self.logout_watch.done();
        self.aborted.clear();
    }
}
