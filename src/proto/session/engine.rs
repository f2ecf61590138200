//! The session engine: every piece of full-feature-phase state the rules
//! need (phase, CmdSN and window, task table, aborted ITTs, TMF slot, logout
//! state, and per connection its [`Lane`]: ExpStatSN, transmit jobs, ping
//! state) in one value, generic over the caller's command handle and storage.
//! The kernel holds one under its state lock and applies what the engine's
//! methods return (`rx` for received PDUs, `timers` for the watchdog,
//! `submit` here for new commands); tests drive it directly. Every method
//! about one PDU or command names the lane (connection) it travels on.

use core::ops::DerefMut;

use super::super::negotiate::SessionParams;
use super::aborted::AbortedItts;
use super::error::SessionError;
use super::itt::Itt;
use super::lane::{ping_low, Lane, LaneStart};
use super::logout::LogoutWatch;
use super::seq::{Quirk, QuirkSet, Sequencer};
use super::task::{Dir, InsertError, NewTask, Slot, Task, TaskTable};
use super::tmf::TmfSlot;
use super::tx::TxJob;
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
    /// The lanes, one per connection the session may run (at most
    /// [`super::lane::MAX_LANES`]).
    type Lanes: DerefMut<Target = [Lane<Self::Jobs>]>;
}

/// The storage an engine is built over.
pub struct Parts<St: Storage> {
    /// One empty slot per tag (the queue depth).
    pub slots: St::Slots,
    /// `aborted::capacity_for(depth)` entries.
    pub aborted: St::Itts,
    /// One lane per connection, at least one (all down: `Engine::new` brings
    /// lane 0 up). Each lane's rings: `cmds` one per tag, `jobs`
    /// `uapi::r2t_job_capacity(depth, MaxOutstandingR2T)`, `ctl_jobs` room
    /// for pings, NOP-In answers and the logout.
    pub lanes: St::Lanes,
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

/// Why a connection could not join the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddError {
    /// The session is not running (a relogin is due or it is ending).
    NotRunning,
    /// No lane with that index.
    NoSuchLane,
    /// A connection already runs on that lane.
    LaneBusy,
    /// Another lane's connection has that CID.
    DuplicateCid,
}

/// What [`Engine::start_ping`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingStart {
    /// A ping is queued or already out on that connection.
    Queued,
    /// Not now: the connection is down, or its control queue is full (it
    /// is busy anyway).
    Busy,
    /// Not yet: on a session of several connections, the target has not
    /// acknowledged every CmdSN sent (see [`Engine::start_ping`]).
    Deferred,
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
    /// The lane its PDUs travel on.
    pub lane: usize,
}

/// The full-feature-phase state of one session and its connections.
pub struct Engine<St: Storage> {
    /// Where the session is.
    pub phase: Phase,
    /// Parameters negotiated by the leading connection (the session-wide
    /// keys; each lane has its own connection-only keys).
    pub params: SessionParams,
    /// ITT high half of the session since its last (re)instatement.
    pub age: u16,
    /// CmdSN and the command window.
    pub seq: Sequencer,
    /// Started when a command finds no credit, stopped by credit.
    pub window_watch: WindowWatch,
    /// Commands in flight.
    pub tasks: TaskTable<St::Cmd, St::Slots>,
    /// ITTs recently taken back by an abort or reset.
    pub aborted: AbortedItts<St::Itts>,
    /// The connections.
    pub lanes: St::Lanes,
    /// The TMF waited for and its answer.
    pub tmf: TmfSlot,
    /// Response code of the Logout Response, once received.
    pub logout_response: Option<u8>,
    /// The lane the Logout Request went out on: its response must come
    /// back there.
    pub logout_lane: usize,
    /// The target asked for a logout or dropped us: reconnect after this.
    pub reconnect_delay_ms: Option<u32>,
    /// The deadline of a logout the target asked for.
    pub logout_watch: LogoutWatch,
    quirks: QuirkSet,
    /// Quirks seen for the first time, not yet logged (one per kind at most).
    pending_quirks: [Option<Quirk>; 5],
}

impl<St: Storage> Engine<St> {
    /// A running engine over `parts` whose leading connection `lead` comes
    /// up on lane 0, with ITT high half `age` and CmdSN and window `seq`, at
    /// `now_ms`. With no lane in `parts` the engine is `Closed`.
    pub fn new(parts: Parts<St>, lead: LaneStart, age: u16, seq: Sequencer, now_ms: i64) -> Self {
        let mut lanes = parts.lanes;
        let phase = match lanes.first_mut() {
            Some(l) => {
                l.come_up(&lead, None, now_ms);
                Phase::Running
            }
            None => Phase::Closed,
        };
        Engine {
            phase,
            params: lead.params,
            age,
            seq,
            window_watch: WindowWatch::default(),
            tasks: TaskTable::new(parts.slots),
            aborted: AbortedItts::new(parts.aborted),
            lanes,
            tmf: TmfSlot::default(),
            logout_response: None,
            logout_lane: 0,
            reconnect_delay_ms: None,
            logout_watch: LogoutWatch::default(),
            quirks: QuirkSet::default(),
            pending_quirks: [None; 5],
        }
    }

    /// Lane `lane`, if the session has it.
    pub fn lane(&self, lane: usize) -> Option<&Lane<St::Jobs>> {
        self.lanes.get(lane)
    }

    /// What lane `lane`'s connection negotiated (the session's keys and its
    /// own); the leading connection's for a lane the session lacks.
    pub fn lane_params(&self, lane: usize) -> SessionParams {
        self.lanes.get(lane).map_or(self.params, |l| l.params)
    }

    /// Lane `lane`, or the violation of a PDU said to come on a lane the
    /// session does not have (a caller bug, never a panic).
    pub(super) fn rx_lane(&mut self, lane: usize) -> Result<&mut Lane<St::Jobs>, SessionError> {
        self.lanes
            .get_mut(lane)
            .ok_or(SessionError::NoSuchLane { lane })
    }

    /// Connections running.
    pub fn lanes_up(&self) -> usize {
        self.lanes.iter().filter(|l| l.up).count()
    }

    /// The lane a command preferring `hint` (its CPU's) goes on: `hint` if
    /// its connection is up, else the next lane that is.
    pub fn route(&self, hint: usize) -> Option<usize> {
        let n = self.lanes.len();
        (0..n)
            .map(|i| (hint % n.max(1) + i) % n)
            .find(|&k| self.lanes.get(k).is_some_and(|l| l.up))
    }

    /// The ExpStatSN to send on `lane` (0 for a lane the session lacks).
    pub fn exp_stat_sn(&self, lane: usize) -> u32 {
        self.lanes
            .get(lane)
            .map_or(0, |l| l.stat.exp_stat_sn().get())
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

    /// Accounts the StatSN of a status-bearing PDU received on `lane`.
    pub fn ack_stat_sn(&mut self, lane: usize, stat_sn: u32) {
        let q = self
            .lanes
            .get_mut(lane)
            .and_then(|l| l.stat.ack_stat_sn(stat_sn));
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
    pub fn ack(&mut self, lane: usize, stat_sn: u32, exp_cmd_sn: u32, max_cmd_sn: u32) {
        self.ack_stat_sn(lane, stat_sn);
        self.window(exp_cmd_sn, max_cmd_sn);
    }

    /// The ITT with reserved low half `low` in this session.
    pub fn internal_itt(&self, low: u16) -> Itt {
        Itt::internal(self.age, low)
    }

    /// The ITT of our NOP-Out ping on `lane`.
    pub fn ping_itt(&self, lane: usize) -> Itt {
        self.internal_itt(ping_low(lane))
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

    /// A new command under `tag` at `now_ms`, preferring lane `hint` (see
    /// [`Engine::route`]): takes a CmdSN and a slot and queues the Command
    /// PDU on its lane ([`TxJob::Command`], sent by [`Engine::next_job`] in
    /// CmdSN order), or gives the command back saying why.
    #[allow(clippy::too_many_arguments)]
    pub fn submit(
        &mut self,
        hint: usize,
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
        let Some(lane) = self.route(hint) else {
            return Err(Refused::NotRunning(cmd, self.phase));
        };
        if !self.credit_for_one(now_ms) {
            return Err(Refused::NoCredit(cmd));
        }
        if self
            .lanes
            .get(lane)
            .is_none_or(|l| l.cmds.len() >= l.cmds.capacity())
        {
            return Err(Refused::Backlog(cmd));
        }
        let cmd_sn = self.seq.next_cmd_sn().get();
        let new = NewTask {
            cmd,
            lun,
            cmd_sn,
            dir,
            len,
            lane: lane as u8,
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
        let mut exp_stat_sn = 0;
        if let Some(l) = self.lanes.get_mut(lane) {
            // Room checked above.
            l.cmds.push(TxJob::Command {
                tag,
                seq,
                itt: itt.get(),
                cmd_sn,
            });
            exp_stat_sn = l.stat.exp_stat_sn().get();
        }
        Ok(Submitted {
            itt,
            seq,
            cmd_sn,
            exp_stat_sn,
            lane,
        })
    }

    /// The last Data-Out PDU of a burst for task (`tag`, `seq`) went out:
    /// an R2T's burst no longer counts against MaxOutstandingR2T.
    pub fn burst_sent(&mut self, tag: u16, seq: u64, solicited: bool) {
        if let (true, Some(t)) = (solicited, self.tasks.get(tag, seq)) {
            t.r2t_outstanding = t.r2t_outstanding.saturating_sub(1);
        }
    }

    /// The next thing to send on `lane`: control jobs first (a ping measures
    /// the target, not our queue), then commands, then Data-Out bursts.
    pub fn next_job(&mut self, lane: usize) -> Option<TxJob> {
        self.lanes.get_mut(lane)?.next_job()
    }

    /// Whether anything waits to be sent on `lane`.
    pub fn has_jobs(&self, lane: usize) -> bool {
        self.lanes.get(lane).is_some_and(Lane::has_jobs)
    }

    /// Queues a NOP-Out ping on `lane` at `now_ms` unless one is out there.
    ///
    /// On one connection the ping is immediate and carries the next CmdSN
    /// unconsumed (RFC 7143 §4.2.2.1): every earlier command is ahead of it
    /// in the byte stream. On several, a command sent earlier on another
    /// connection may still be on its way, and a target may check an
    /// immediate PDU's CmdSN strictly against its ExpCmdSN (istgt drops the
    /// connection on a mismatch, and a non-immediate NOP-Out ahead of a lower
    /// CmdSN makes it refuse that command). So a ping there waits until the
    /// target has acknowledged every CmdSN sent, and then takes the next
    /// CmdSN as a non-immediate NOP-Out: a command sent after it on another
    /// connection is ordered behind it. With the window closed (no CmdSN to
    /// take) it goes immediate: no command can overtake it then.
    pub fn start_ping(&mut self, lane: usize, now_ms: i64) -> PingStart {
        let several = self.lanes_up() > 1;
        let settled = self.seq.window().exp_cmd_sn() == self.seq.next_cmd_sn();
        let credit = self.seq.credits() > 0;
        let Some(l) = self.lanes.get_mut(lane).filter(|l| l.up) else {
            return PingStart::Busy;
        };
        if l.ping_sent_ms.is_some() {
            return PingStart::Queued;
        }
        let ordered_cmd_sn = match (several, settled, credit) {
            (false, ..) | (true, true, false) => None,
            (true, true, true) => Some(self.seq.next_cmd_sn().get()),
            (true, false, _) => return PingStart::Deferred,
        };
        if !l.ctl_jobs.push(TxJob::Ping { ordered_cmd_sn }) {
            return PingStart::Busy;
        }
        l.ping_sent_ms = Some(now_ms);
        if ordered_cmd_sn.is_some() {
            self.seq.take_cmd_sn();
        }
        PingStart::Queued
    }

    /// A connection is lost: at ERL 0 the session's connections all go (the
    /// target drops the session's tasks whichever connection failed), and
    /// what was queued for them is dropped. Returns the relogin delay (the
    /// target's, else DefaultTime2Wait).
    pub fn connection_lost(&mut self) -> u32 {
        self.logout_watch.done();
        for l in self.lanes.iter_mut() {
            l.go_down();
        }
        let t2w = u32::from(self.params.default_time2wait).saturating_mul(1000);
        self.reconnect_delay_ms.take().unwrap_or(t2w)
    }

    /// The session is reinstated at `now_ms` by a new leading connection
    /// `lead` with CmdSN and window `seq`: it comes up on lane 0, the other
    /// lanes wait for [`Engine::add_connection`]; a new ITT age, so nothing
    /// of the old connections matches; `jobs` replaces lane 0's R2T job
    /// storage if given.
    pub fn connection_replaced(
        &mut self,
        lead: LaneStart,
        seq: Sequencer,
        jobs: Option<St::Jobs>,
        now_ms: i64,
    ) {
        // Nothing queued for an old connection goes out on a new one (a
        // session failed during its final logout never went through
        // `connection_lost`).
        let mut lanes = self.lanes.iter_mut();
        let Some(first) = lanes.next() else {
            self.phase = Phase::Closed;
            return;
        };
        first.come_up(&lead, jobs, now_ms);
        for l in lanes {
            l.go_down();
        }
        self.params = lead.params;
        self.seq = seq;
        self.age = super::itt::next_age(self.age);
        self.phase = Phase::Running;
        self.reconnect_delay_ms = None;
        self.window_watch.opened();
        self.logout_response = None;
        self.logout_lane = 0;
        self.logout_watch.done();
        self.aborted.clear();
    }

    /// A further connection of the running session comes up on `lane` at
    /// `now_ms` (its login's ExpCmdSN/MaxCmdSN go through
    /// [`Engine::window`]); `jobs` replaces its R2T job storage if given.
    pub fn add_connection(
        &mut self,
        lane: usize,
        start: LaneStart,
        jobs: Option<St::Jobs>,
        now_ms: i64,
    ) -> Result<(), AddError> {
        if self.phase != Phase::Running {
            return Err(AddError::NotRunning);
        }
        if self
            .lanes
            .iter()
            .enumerate()
            .any(|(k, l)| k != lane && l.up && l.cid == start.cid)
        {
            return Err(AddError::DuplicateCid);
        }
        let l = self.lanes.get_mut(lane).ok_or(AddError::NoSuchLane)?;
        if l.up {
            return Err(AddError::LaneBusy);
        }
        l.come_up(&start, jobs, now_ms);
        Ok(())
    }
}
