//! A full-feature-phase session on one connection (ERL 0): turns SCSI commands
//! into SCSI Command / Data-Out PDUs and received PDUs back into completions.
//!
//! Execution contexts, all process context (no softirq-side locking):
//! - `queue_command` runs in the submitter's context (the host template sets
//!   `queuecommand_may_block`) and sends the command PDU and any immediate /
//!   unsolicited data inline, avoiding a workqueue hop per command.
//! - The socket's `sk_data_ready`/`sk_state_change` only queue the RX work, which
//!   reads with non-blocking `recvmsg` and places Data-In payload straight into
//!   the command's pages.
//! - Whatever the RX side must send (Data-Out answering an R2T, NOP-Out answering
//!   a ping) is queued as a job for the TX work, so a receiver never blocks on a
//!   full send buffer while the target is blocked sending to us.
//!
//! Recovery (ERL 0): any connection failure (socket closed or reset, protocol
//! violation, digest error, unanswered NOP-Out ping, target request) puts the
//! session in `Recovering`: commands in flight go back to the midlayer with
//! DID_TRANSPORT_DISRUPTED (retried once the host runs again), the watchdog
//! blocks the host, and a relogin request goes to `iscsictl daemon` through the
//! [`Board`]. A HANDOFF brings a new socket: the ITT age is bumped, the host
//! unblocked. If none comes within the replacement timeout the session goes
//! `Offline` and I/O fails fast (DID_TRANSPORT_FAILFAST) until one does.
//!
//! ITT = session age (16 bits, bumped per connection) << 16 | per-tag generation
//! (4 bits) << 12 | blk-mq tag (< 2048). PDUs from an older connection never
//! match a task, and a tag reused right after an abort gets a different ITT, so
//! a late PDU for the aborted task cannot land in its successor (it is dropped
//! while the ITT is in the aborted set, else it fails the connection). Each TMF
//! gets an ITT of its own above the tags (`proto::session::tmf`). The per-task
//! `seq` (never on the wire) tells TX jobs apart when a tag is reused.
#![deny(unsafe_code)]

use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use kernel::prelude::*;
use kernel::sync::{new_condvar, new_mutex, Arc, ArcBorrow, CondVar, CondVarTimeoutResult, Mutex};
use kernel::time::msecs_to_jiffies;
use kernel::workqueue::{impl_has_work, new_work, Work, WorkItem};

use crate::conn::{Conn, Dest, PduSink, RxState, RxStop};
use crate::proto::bhs::{Bhs, Opcode, BHS_LEN, RESERVED_TAG};
use crate::proto::framing::FramingSettings;
use crate::proto::negotiate::{Digest, SessionParams};
use crate::proto::pdu::{
    AsyncEvent, AsyncMessage, DataIn, DataOut, LogoutReason, LogoutRequest, NopOut, Pdu, PduError,
    Reject, ScsiCommand, ScsiResponse, ScsiResponseData, TaskAttr, TaskMgmtRequest, TmfFunction,
    TmfResponse, RESPONSE_COMPLETED, RESPONSE_TARGET_FAILURE,
};
use crate::proto::session::aborted::{self, AbortedItts};
use crate::proto::session::logout::{relogin_delay_ms, LogoutWatch};
use crate::proto::session::seq::{Quirk, QuirkSet, Sequencer};
use crate::proto::session::tmf::{abort_outcome, AbortOutcome, TmfRx, TmfSlot};
use crate::proto::session::window_watch::{WindowAction, WindowWatch};
use crate::proto::uapi::{self, reason, SessionConfig, SessionInfo};
use crate::recovery::{now_ms, Board};
use crate::sys::scsi::{
    Busy, Cmd, DataDir, DeviceState, EhAbort, EhCmd, EhStatus, HostByte, HostHandle, TAKEN_BACK,
};
use crate::sys::socket::{Recv, SocketEvents, TcpSocket};
use crate::sys::workqueue::OwnedQueue;

/// Largest data segment we build in one PDU, whatever the target accepts: the
/// size of the transmit bounce buffer.
const MAX_TX_SEGMENT: u32 = 256 * 1024;
/// How long REMOVE_SESSION waits for the Logout Response.
const LOGOUT_TIMEOUT_MS: u32 = 10_000;
/// RX reads per work run before yielding the worker.
const RX_BUDGET: usize = 32;
/// Low 16 bits of the Logout Request's ITT (no blk-mq tag reaches it).
const LOGOUT_TAG: u32 = 0xffff;
/// ITT bits holding the blk-mq tag; uapi::MAX_QUEUE_DEPTH keeps tags below.
const TAG_MASK: u32 = 0x0fff;
/// How long an EH handler waits for a TMF Response.
const TMF_TIMEOUT_MS: u32 = 10_000;
/// Low 16 bits of a NOP-Out ping's ITT.
const PING_TAG: u32 = 0xfffd;
/// How long the EH's liveness ping may take when keepalive pings are off.
const EH_PING_TIMEOUT_MS: u32 = 5_000;
/// Room for queued NOP-Out answers, pings and Logouts.
const CTL_JOBS: usize = 64;
/// Longest sleep of the watchdog between looks at the session.
const WATCH_IDLE_MS: i64 = 1_000;
/// SAM status CHECK CONDITION.
const CHECK_CONDITION: u8 = 0x02;

/// Where the session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Full feature phase.
    Running,
    /// Logout Request sent (to end the session, or because the target asked
    /// for a logout and a reconnect).
    LoggingOut,
    /// The connection failed; I/O is held until a HANDOFF or the replacement
    /// timeout.
    Recovering,
    /// No connection and the replacement timeout passed (or the session is
    /// being removed): I/O fails fast; a HANDOFF still brings it back.
    Offline,
    /// Torn down.
    Closed,
}

impl Phase {
    /// The sysfs / log name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::LoggingOut => "logging_out",
            Phase::Recovering => "recovering",
            Phase::Offline => "failed",
            Phase::Closed => "closed",
        }
    }
}

/// A protocol violation by the target: fails the connection, with this text.
pub(crate) enum Violation {
    Malformed(PduError),
    UnknownItt {
        what: &'static str,
        itt: u32,
    },
    DataInNotRead {
        itt: u32,
    },
    DataInOffset {
        itt: u32,
        offset: u32,
        expected: u32,
    },
    DataInSn {
        itt: u32,
        data_sn: u32,
        expected: u32,
    },
    DataInBeyond {
        itt: u32,
        end: u64,
        len: u32,
    },
    R2tNotWrite {
        itt: u32,
    },
    R2tRange {
        itt: u32,
        offset: u32,
        len: u32,
        total: u32,
    },
    R2tSn {
        itt: u32,
        got: u32,
        expected: u32,
    },
    R2tTooMany {
        itt: u32,
        max: u16,
    },
    R2tBurst {
        len: u32,
        max: u32,
    },
    Unexpected(&'static str),
    TxQueueFull,
    /// Not a violation: the target asked to end the connection (Async Message).
    TargetRequest(&'static str),
}

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

/// One command in flight.
struct Task {
    cmd: Cmd,
    itt: u32,
    seq: u64,
    lun: u64,
    /// CmdSN it was sent with (RefCmdSN of an ABORT TASK).
    cmd_sn: u32,
    dir: DataDir,
    /// ExpectedDataTransferLength.
    len: u32,
    /// Reads: Data-In bytes placed so far (in order, so also the next offset).
    received: u32,
    /// Reads: next DataSN.
    exp_data_sn: u32,
    /// Writes: R2Ts received whose Data-Out burst is not fully sent.
    r2t_outstanding: u16,
    /// Writes: next R2TSN.
    exp_r2t_sn: u32,
}

/// Something the TX work must send.
#[derive(Debug, Clone, Copy)]
enum TxJob {
    /// A solicited Data-Out burst answering an R2T.
    DataOut {
        tag: u16,
        seq: u64,
        ttt: u32,
        offset: u32,
        len: u32,
    },
    /// The answer to a NOP-In ping.
    NopOut { ttt: u32, lun: u64 },
    /// A NOP-Out ping of ours (keepalive or EH liveness check).
    Ping,
    /// A Logout Request closing the connection (the target asked for it).
    Logout,
}

/// Room for every Data-Out burst the target may ask for at once: each task
/// may have MaxOutstandingR2T R2Ts outstanding (the handoff keeps the product
/// within `uapi::MAX_R2T_JOBS`), plus a margin.
fn r2t_jobs(depth: usize, p: &SessionParams) -> usize {
    uapi::r2t_job_capacity(depth as u32, p.max_outstanding_r2t)
}

/// FIFO of TX jobs with room fixed at creation (a relogin that negotiates
/// more MaxOutstandingR2T gets a bigger one): bursts of one task must go out
/// in R2T order (DataSequenceInOrder).
struct JobRing {
    /// kvmalloc'ed: a deep queue with many R2Ts outstanding needs megabytes.
    slots: KVVec<Option<TxJob>>,
    head: usize,
    len: usize,
}

impl JobRing {
    fn new(cap: usize) -> Result<Self> {
        Ok(JobRing {
            slots: KVVec::from_elem(None, cap.max(1), GFP_KERNEL)?,
            head: 0,
            len: 0,
        })
    }

    fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn push(&mut self, job: TxJob) -> bool {
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

    fn clear(&mut self) {
        while self.pop().is_some() {}
    }

    fn pop(&mut self) -> Option<TxJob> {
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

/// Protocol state; see `Session::state`.
struct State {
    phase: Phase,
    /// The current connection (replaced by a HANDOFF).
    conn: Arc<Conn<Session>>,
    /// Parameters negotiated for the current connection.
    params: SessionParams,
    tsih: u16,
    /// ITT high bits of the current connection.
    age: u16,
    /// Connection losses so far (each one a relogin generation).
    generation: u32,
    /// Connections re-established.
    recoveries: u32,
    /// When the current loss happened (ms).
    failed_at_ms: i64,
    /// When a PDU was last received (ms).
    last_rx_ms: i64,
    /// When our outstanding NOP-Out ping was sent.
    ping_sent_ms: Option<i64>,
    /// The target asked for a logout: reconnect after this many ms once done.
    reconnect_delay_ms: Option<u32>,
    /// After a reconnect, until the first command completes: when the
    /// connection had failed (for the "I/O flowing again" log line).
    resumed_from_ms: Option<i64>,
    replacement_timeout: u32,
    noop_out_interval: u16,
    noop_out_timeout: u16,
    /// CmdSN, the command window and ExpStatSN.
    seq: Sequencer,
    /// Started when `queuecommand` finds no credit, stopped by credit: a
    /// target that never reopens the window is a stall the watchdog ends.
    window_watch: WindowWatch,
    /// Indexed by blk-mq tag.
    tasks: KVec<Option<Task>>,
    /// Per tag: the ITT generation of its latest command.
    gens: KVec<u8>,
    in_flight: u32,
    next_seq: u64,
    /// Data-Out bursts answering R2Ts, in order.
    jobs: JobRing,
    /// NOP-Outs and Logouts: sent before queued bursts, so a ping measures the
    /// target, not the depth of our own send queue.
    ctl_jobs: JobRing,
    /// Response code of the Logout Response, once received.
    logout_response: Option<u8>,
    /// The deadline of a logout the target asked for.
    logout_watch: LogoutWatch,
    /// The TMF waited for (an ITT of its own per TMF) and its answer.
    tmf: TmfSlot,
    /// ITTs of tasks recently handed back by an abort or reset, a queue's
    /// worth: a target may still send PDUs for them, dropped, not fatal.
    aborted: AbortedItts<KVec<u32>>,
    /// Target quirks seen (each logged once per session).
    quirks: QuirkSet,
    /// The SCSI host number, for log lines written under the lock.
    host_no: u32,
}

impl State {
    /// Logs quirk `q` of the target, the first time in this session only:
    /// a rate limit that still names every kind once.
    fn quirk(&mut self, q: Option<Quirk>) {
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
    fn ack_stat_sn(&mut self, stat_sn: u32) {
        let q = self.seq.ack_stat_sn(stat_sn);
        self.quirk(q);
    }

    /// Applies ExpCmdSN/MaxCmdSN (see `Sequencer`); credit stops the
    /// closed-window clock.
    fn window(&mut self, exp_cmd_sn: u32, max_cmd_sn: u32) {
        let q = self.seq.apply_window(exp_cmd_sn, max_cmd_sn);
        self.quirk(q);
        if self.seq.credits() > 0 {
            self.window_watch.opened();
        }
    }

    /// Both of the above, for a PDU carrying StatSN, ExpCmdSN and MaxCmdSN.
    fn ack(&mut self, stat_sn: u32, exp_cmd_sn: u32, max_cmd_sn: u32) {
        self.ack_stat_sn(stat_sn);
        self.window(exp_cmd_sn, max_cmd_sn);
    }

    /// The ITT for low bits `low` (generation << 12 | tag, or an internal tag).
    fn itt(&self, low: u32) -> u32 {
        (u32::from(self.age) << 16) | (low & 0xffff)
    }

    /// The task with ITT `itt` (tag in the low 16 bits) if it is in flight.
    fn task_by_itt(&mut self, itt: u32) -> Option<&mut Task> {
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

    fn task(&mut self, tag: u16, seq: u64) -> Option<&mut Task> {
        self.tasks
            .get_mut(usize::from(tag))?
            .as_mut()
            .filter(|t| t.seq == seq)
    }

    fn take(&mut self, tag: u16) -> Option<Task> {
        let t = self.tasks.get_mut(usize::from(tag))?.take();
        if t.is_some() {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        t
    }

    fn remember_aborted(&mut self, itt: u32) {
        self.aborted.insert(itt);
    }

    /// A PDU for no task in flight: dropped if it belongs to an aborted task,
    /// else a protocol violation.
    fn unknown(&self, what: &'static str, itt: u32) -> Result<(), Violation> {
        if itt != RESERVED_TAG && self.aborted.contains(itt) {
            Ok(())
        } else {
            Err(Violation::UnknownItt { what, itt })
        }
    }

    fn take_any(&mut self) -> Option<Task> {
        let i = self.tasks.iter().position(Option::is_some)?;
        self.take(i as u16)
    }
}

/// An immediate NOP-Out header without data: a ping of ours (`itt` set) or
/// the answer to the target's (`ttt` set).
fn nop_out(itt: u32, ttt: u32, lun: u64, cmd_sn: u32, exp_stat_sn: u32) -> [u8; BHS_LEN] {
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
fn tag_of(itt: u32) -> u16 {
    (itt & TAG_MASK) as u16
}

/// Sets result, sense and residual of a finished task and hands its command
/// back for completion (after the state lock is released).
fn finish(
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

/// The host handle and which way its devices were last set (see
/// `Session::sync_host`).
struct HostCtl {
    handle: Option<HostHandle>,
    applied: DeviceState,
}

/// The login recipe iscsictl left with the session: handed back with each
/// relogin request. It may hold CHAP secrets, so it is zeroed when dropped.
pub(crate) struct Recipe(KVec<u8>);

impl Recipe {
    /// Wraps the bytes copied from ADD_SESSION.
    pub(crate) fn new(bytes: KVec<u8>) -> Self {
        Recipe(bytes)
    }

    /// The bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Recipe {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            *b = 0;
        }
        // Keep the stores: the buffer is freed right after.
        core::hint::black_box(&mut self.0);
    }
}

/// The module's workqueues: `io` for the receive and transmit work (on the
/// block I/O path), `watch` for the sessions' watchdogs, which sleep for the
/// session's whole life and so must not sit on a reclaim queue's rescuer.
pub(crate) struct Queues {
    pub(crate) io: OwnedQueue,
    pub(crate) watch: OwnedQueue,
}

/// A session and its connection.
#[pin_data]
pub(crate) struct Session {
    /// The ADD_SESSION handoff: the session's identity (names, portal, ISID,
    /// queue depth). What a relogin renegotiates lives in `State`.
    cfg: SessionConfig,
    recipe: Recipe,
    wq: Arc<Queues>,
    board: Arc<Board>,
    /// SCSI host number once the host is added (u32::MAX before).
    host_no: AtomicU32,
    /// Protocol state, the current connection and every in-flight command (and
    /// so their buffers). Lock order: `handoff_lock`, `host_ctl`, then `tmf_lock`, then `tx` or
    /// `rx`, then `state`; `state` is never held across a socket send.
    #[pin]
    state: Mutex<State>,
    /// Transmit side: holding it serialises PDUs on the socket; the vector is the
    /// bounce buffer data is copied into before sending.
    #[pin]
    tx: Mutex<KVVec<u8>>,
    /// Receive side (framer and buffers); only the RX work (and a HANDOFF,
    /// which resets it) takes it.
    #[pin]
    rx: Mutex<RxState<DataInDest>>,
    /// Serialises Task Management requests: one in flight per session. Taken
    /// before `tx` and `state`.
    #[pin]
    tmf_lock: Mutex<()>,
    /// Serialises HANDOFFs: two for the same generation must not both reset
    /// the receiver (the loser would clobber the winner's). Taken first.
    #[pin]
    handoff_lock: Mutex<()>,
    /// Serialises blocking and unblocking the host; held across those calls,
    /// which sleep.
    #[pin]
    host_ctl: Mutex<HostCtl>,
    /// Notified, with `state` held, when a Logout/TMF Response or a ping
    /// answer arrives or the phase changes; the watchdog sleeps on it too.
    #[pin]
    events: CondVar,
    #[pin]
    rx_work: Work<Session, 0>,
    #[pin]
    tx_work: Work<Session, 1>,
    #[pin]
    watch_work: Work<Session, 2>,
}

impl_has_work! {
    impl HasWork<Self, 0> for Session { self.rx_work }
    impl HasWork<Self, 1> for Session { self.tx_work }
    impl HasWork<Self, 2> for Session { self.watch_work }
}

/// Where a Data-In's payload goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataInDest {
    tag: u16,
    seq: u64,
    base: u32,
}

/// Receive state for a connection with parameters `p`.
fn rx_state(p: &SessionParams) -> Result<RxState<DataInDest>> {
    RxState::new(FramingSettings {
        header_digest: p.header_digest == Digest::Crc32c,
        data_digest: p.data_digest == Digest::Crc32c,
        max_recv_data_segment_len: p.max_recv_data_segment_len,
        target_opcodes_only: true,
    })
}

/// The connection object for a logged-in socket with parameters `p`.
fn new_conn(sock: TcpSocket<Session>, p: &SessionParams) -> Result<Arc<Conn<Session>>> {
    Ok(Arc::new(
        Conn::new(
            sock,
            p.header_digest == Digest::Crc32c,
            p.data_digest == Digest::Crc32c,
        ),
        GFP_KERNEL,
    )?)
}

/// The ITT age after `age`: never 0 (iscsictl's first) twice in a row and
/// never 0xffff (which with tag 0xffff would be the reserved ITT).
fn next_age(age: u16) -> u16 {
    match age.wrapping_add(1) {
        0xffff | 0 => 1,
        a => a,
    }
}

impl Session {
    /// A session over `sock` with the validated handoff `cfg`; not started.
    pub(crate) fn new(
        cfg: SessionConfig,
        recipe: Recipe,
        sock: TcpSocket<Session>,
        wq: Arc<Queues>,
        board: Arc<Board>,
    ) -> Result<Arc<Self>> {
        let p = cfg.params;
        let depth = cfg.queue_depth as usize;
        let mut tasks = KVec::with_capacity(depth, GFP_KERNEL)?;
        for _ in 0..depth {
            tasks.push(None, GFP_KERNEL)?;
        }
        let jobs = JobRing::new(r2t_jobs(depth, &p))?;
        // Sized for the largest segment any relogin may negotiate.
        let txbuf = KVVec::from_elem(0u8, MAX_TX_SEGMENT as usize, GFP_KERNEL)?;
        let rx = rx_state(&p)?;
        let conn = new_conn(sock, &p)?;
        let state = State {
            phase: Phase::Running,
            conn,
            params: p,
            tsih: cfg.raw.tsih,
            age: cfg.itt_age,
            generation: 0,
            recoveries: 0,
            failed_at_ms: 0,
            last_rx_ms: now_ms(),
            ping_sent_ms: None,
            window_watch: WindowWatch::default(),
            reconnect_delay_ms: None,
            resumed_from_ms: None,
            replacement_timeout: cfg.replacement_timeout,
            noop_out_interval: cfg.noop_out_interval,
            noop_out_timeout: cfg.noop_out_timeout,
            seq: Sequencer::new(cfg.cmd_sn, cfg.window, cfg.exp_stat_sn),
            tasks,
            gens: KVec::from_elem(0u8, depth, GFP_KERNEL)?,
            in_flight: 0,
            next_seq: 0,
            jobs,
            ctl_jobs: JobRing::new(CTL_JOBS)?,
            logout_response: None,
            logout_watch: LogoutWatch::default(),
            tmf: TmfSlot::default(),
            aborted: AbortedItts::new(KVec::from_elem(
                0u32,
                aborted::capacity_for(depth),
                GFP_KERNEL,
            )?),
            quirks: QuirkSet::default(),
            host_no: u32::MAX,
        };
        Arc::pin_init(
            pin_init!(Session {
                cfg,
                recipe,
                wq,
                board,
                host_no: AtomicU32::new(u32::MAX),
                state <- new_mutex!(state, "iscsi_rs::Session::state"),
                tx <- new_mutex!(txbuf, "iscsi_rs::Session::tx"),
                rx <- new_mutex!(rx, "iscsi_rs::Session::rx"),
                tmf_lock <- new_mutex!((), "iscsi_rs::Session::tmf_lock"),
                handoff_lock <- new_mutex!((), "iscsi_rs::Session::handoff_lock"),
                host_ctl <- new_mutex!(
                    HostCtl { handle: None, applied: DeviceState::Running },
                    "iscsi_rs::Session::host_ctl"
                ),
                events <- new_condvar!("iscsi_rs::Session::events"),
                rx_work <- new_work!("iscsi_rs::Session::rx_work"),
                tx_work <- new_work!("iscsi_rs::Session::tx_work"),
                watch_work <- new_work!("iscsi_rs::Session::watch_work"),
            }),
            GFP_KERNEL,
        )
    }

    /// Takes over the socket's callbacks, reads what already arrived and
    /// starts the watchdog.
    pub(crate) fn start(self: &Arc<Self>) -> Result {
        let conn = self.state.lock().conn.clone();
        conn.sock.install_callbacks(self.clone())?;
        Self::kick_rx(self.as_arc_borrow());
        let _ = self
            .wq
            .watch
            .queue()
            .enqueue::<Arc<Session>, 2>(self.clone());
        Ok(())
    }

    /// The validated handoff.
    pub(crate) fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    /// The login recipe.
    pub(crate) fn recipe(&self) -> &[u8] {
        self.recipe.bytes()
    }

    /// Parameters of the current connection and the TSIH.
    pub(crate) fn params(&self) -> (SessionParams, u16) {
        let st = self.state.lock();
        (st.params, st.tsih)
    }

    /// Records the SCSI host number (for logs, sysfs and LIST).
    pub(crate) fn set_host_no(&self, n: u32) {
        self.host_no.store(n, Ordering::Relaxed);
        self.state.lock().host_no = n;
    }

    /// Gives the session its host, to block and unblock during recovery.
    pub(crate) fn set_host(&self, handle: HostHandle) {
        self.host_ctl.lock().handle = Some(handle);
    }

    /// The SCSI host number.
    pub(crate) fn host_no(&self) -> u32 {
        self.host_no.load(Ordering::Relaxed)
    }

    /// The current phase.
    pub(crate) fn phase(&self) -> Phase {
        self.state.lock().phase
    }

    /// The recovery knobs shown in sysfs: (replacement_timeout,
    /// noop_out_interval, noop_out_timeout, recoveries).
    pub(crate) fn timeouts(&self) -> (u32, u16, u16, u32) {
        let st = self.state.lock();
        (
            st.replacement_timeout,
            st.noop_out_interval,
            st.noop_out_timeout,
            st.recoveries,
        )
    }

    /// Sets the replacement timeout (seconds); the watchdog applies it to a
    /// recovery already running too.
    pub(crate) fn set_replacement_timeout(&self, secs: u32) -> Result {
        if secs > uapi::MAX_REPLACEMENT_TIMEOUT {
            return Err(EINVAL);
        }
        let mut st = self.state.lock();
        st.replacement_timeout = secs;
        self.events.notify_all();
        Ok(())
    }

    /// Sets the NOP-Out interval (`interval`) or timeout, seconds.
    pub(crate) fn set_noop(&self, interval: Option<u16>, timeout: Option<u16>) -> Result {
        let mut st = self.state.lock();
        let i = interval.unwrap_or(st.noop_out_interval);
        let t = timeout.unwrap_or(st.noop_out_timeout);
        if i > 3600 || t > 3600 || (i > 0 && t == 0) {
            return Err(EINVAL);
        }
        st.noop_out_interval = i;
        st.noop_out_timeout = t;
        self.events.notify_all();
        Ok(())
    }

    fn kick_rx(this: ArcBorrow<'_, Self>) {
        // Already queued is fine: the queued run will see the new bytes.
        let _ = this
            .wq
            .io
            .queue()
            .enqueue::<Arc<Session>, 0>(Arc::from(this));
    }

    fn kick_tx(this: ArcBorrow<'_, Self>) {
        let _ = this
            .wq
            .io
            .queue()
            .enqueue::<Arc<Session>, 1>(Arc::from(this));
    }

    /// Fails the connection: logs why, shuts the socket down, hands every
    /// in-flight command back for retry and asks the daemon for a relogin (the
    /// watchdog blocks the host). `cause` is one of `uapi::reason`. Idempotent
    /// per connection; a failure while the session is being logged out for
    /// good only ends it.
    pub(crate) fn fail(&self, cause: u32, why: fmt::Arguments<'_>) {
        let (conn, generation, delay_ms, result) = {
            let mut st = self.state.lock();
            match st.phase {
                Phase::Recovering | Phase::Offline | Phase::Closed => return,
                Phase::LoggingOut if st.reconnect_delay_ms.is_none() => {
                    // The final logout: the target closes after its response.
                    if st.logout_response.is_none() {
                        pr_err!("host{}: connection failed: {}\n", self.host_no(), why);
                    }
                    st.phase = Phase::Offline;
                    self.events.notify_all();
                    let conn = st.conn.clone();
                    drop(st);
                    conn.sock.restore_callbacks();
                    conn.sock.shutdown();
                    self.complete_all(HostByte::NoConnect);
                    return;
                }
                Phase::Running | Phase::LoggingOut => {}
            }
            let now = now_ms();
            st.phase = if st.replacement_timeout == 0 {
                Phase::Offline
            } else {
                Phase::Recovering
            };
            st.generation = st.generation.wrapping_add(1);
            st.failed_at_ms = now;
            st.ping_sent_ms = None;
            st.logout_watch.done();
            st.jobs.clear();
            st.ctl_jobs.clear();
            let t2w = u32::from(st.params.default_time2wait).saturating_mul(1000);
            let delay_ms = st.reconnect_delay_ms.take().unwrap_or(t2w);
            self.events.notify_all();
            let result = if st.phase == Phase::Offline {
                HostByte::TransportFailfast
            } else {
                HostByte::TransportDisrupted
            };
            (st.conn.clone(), st.generation, delay_ms, result)
        };
        pr_err!(
            "host{}: connection failed: {}; recovering (generation {}, relogin in {} ms)\n",
            self.host_no(),
            why,
            generation,
            delay_ms
        );
        conn.sock.restore_callbacks();
        conn.sock.shutdown();
        self.complete_all(result);
        self.board.post(self.host_no(), generation, cause, delay_ms);
    }

    fn complete_all(&self, host: HostByte) {
        loop {
            let task = self.state.lock().take_any();
            let Some(task) = task else { break };
            let mut cmd = task.cmd;
            cmd.set_result(host, 0);
            cmd.complete();
        }
    }

    /// Brings the host's devices in line with the phase: blocked while
    /// recovering, transport-offline once the replacement timeout passed,
    /// running otherwise. Sleeps; never called from `queuecommand`.
    fn sync_host(&self) {
        let mut hc = self.host_ctl.lock();
        loop {
            let want = match self.state.lock().phase {
                Phase::Running | Phase::LoggingOut => DeviceState::Running,
                Phase::Recovering => DeviceState::Blocked,
                Phase::Offline => DeviceState::Offline,
                Phase::Closed => return,
            };
            if want == hc.applied {
                return;
            }
            let from = hc.applied;
            let Some(h) = hc.handle.as_ref() else { return };
            let r = h.set(from, want);
            // The host is being removed (or not added yet): nothing to set.
            if r == Err(ENODEV) {
                return;
            }
            if let Err(e) = r {
                pr_warn!(
                    "host{}: setting the devices {:?} -> {:?}: {:?}\n",
                    self.host_no(),
                    from,
                    want,
                    e
                );
            }
            hc.applied = want;
        }
    }

    /// HANDOFF: a new logged-in connection for the session after a failure.
    /// `cfg` must name this session and answer its current generation.
    pub(crate) fn reconnect(
        self: &Arc<Self>,
        cfg: SessionConfig,
        sock: TcpSocket<Session>,
    ) -> Result {
        let c = &self.cfg;
        if cfg.target_name() != c.target_name()
            || cfg.initiator_name() != c.initiator_name()
            || cfg.raw.isid != c.raw.isid
            || cfg.queue_depth != c.queue_depth
        {
            pr_err!(
                "host{}: HANDOFF refused: target, initiator, ISID or queue depth differ from the session's\n",
                self.host_no()
            );
            return Err(EINVAL);
        }
        let _one = self.handoff_lock.lock();
        let need_jobs = r2t_jobs(cfg.queue_depth as usize, &cfg.params);
        let bigger_jobs = {
            let st = self.state.lock();
            if st.generation != cfg.raw.generation
                || !matches!(st.phase, Phase::Recovering | Phase::Offline)
            {
                return Err(crate::recovery::estale());
            }
            st.jobs.capacity() < need_jobs
        };
        // Allocated outside the lock; the old queue is empty (cleared when
        // the connection failed).
        let mut new_jobs = if bigger_jobs {
            Some(JobRing::new(need_jobs)?)
        } else {
            None
        };
        let conn = new_conn(sock, &cfg.params)?;
        let rx = rx_state(&cfg.params)?;
        // The RX work bails out while not running, so the old framer state is
        // dropped whole here.
        let old_rx = core::mem::replace(&mut *self.rx.lock(), rx);
        drop(old_rx);
        let (old, generation, took_ms, age) = {
            let _tx = self.tx.lock();
            let mut st = self.state.lock();
            if st.generation != cfg.raw.generation
                || !matches!(st.phase, Phase::Recovering | Phase::Offline)
            {
                return Err(crate::recovery::estale());
            }
            let now = now_ms();
            let old = core::mem::replace(&mut st.conn, conn.clone());
            if let Some(jobs) = new_jobs.take() {
                st.jobs = jobs;
            }
            st.params = cfg.params;
            st.tsih = cfg.raw.tsih;
            st.seq = Sequencer::new(cfg.cmd_sn, cfg.window, cfg.exp_stat_sn);
            st.age = next_age(st.age);
            st.phase = Phase::Running;
            st.recoveries = st.recoveries.saturating_add(1);
            st.last_rx_ms = now;
            st.ping_sent_ms = None;
            st.reconnect_delay_ms = None;
            st.window_watch.opened();
            st.resumed_from_ms = Some(st.failed_at_ms);
            st.logout_response = None;
            st.logout_watch.done();
            st.aborted.clear();
            self.events.notify_all();
            (old, st.generation, now - st.failed_at_ms, st.age)
        };
        drop(old);
        self.board.withdraw(self.host_no());
        if let Err(e) = conn.sock.install_callbacks(self.clone()) {
            self.fail(
                reason::SOCKET,
                format_args!("taking over the new socket failed: {e:?}"),
            );
            return Err(e);
        }
        Self::kick_rx(self.as_arc_borrow());
        self.sync_host();
        pr_info!(
            "host{}: connection re-established (generation {}, TSIH {}, ITT age {}) {} ms after the failure\n",
            self.host_no(),
            generation,
            cfg.raw.tsih,
            age,
            took_ms
        );
        Ok(())
    }

    /// The watchdog, one long-running work item per session until it closes
    /// (on the unbound `watch` queue, never on the I/O queue's rescuer):
    /// NOP-Out keepalive, the replacement timeout, the closed-window stall
    /// and host blocking.
    fn run_watch(this: Arc<Self>) {
        let mut st = this.state.lock();
        loop {
            let now = now_ms();
            let mut wake = now + WATCH_IDLE_MS;
            let mut ping = false;
            let mut fail_ping = false;
            let mut stalled = None;
            let mut logout_overdue = None;
            let mut expired = false;
            match st.phase {
                Phase::Closed => return,
                Phase::Running => {
                    let interval = i64::from(st.noop_out_interval) * 1000;
                    let timeout = i64::from(st.noop_out_timeout) * 1000;
                    if let Some(sent) = st.ping_sent_ms {
                        // Anything received since the ping shows the target
                        // alive; only silence for the whole timeout fails.
                        let quiet_since = sent.max(st.last_rx_ms);
                        if timeout > 0 && now - quiet_since >= timeout {
                            fail_ping = true;
                        } else if timeout > 0 {
                            wake = wake.min(quiet_since + timeout);
                        }
                    } else if interval > 0 {
                        if now - st.last_rx_ms >= interval {
                            ping = true;
                        } else {
                            wake = wake.min(st.last_rx_ms + interval);
                        }
                    }
                    // The closed-window rule (see `WindowWatch`).
                    let ping_out = st.ping_sent_ms;
                    let (action, at) = st.window_watch.poll(now, ping_out, timeout);
                    if let Some(at) = at {
                        wake = wake.min(at);
                    }
                    match action {
                        WindowAction::Wait => {}
                        WindowAction::Ping => ping = true,
                        WindowAction::Fail { closed_ms } => stalled = Some(closed_ms),
                    }
                }
                Phase::Recovering => {
                    let deadline = st.failed_at_ms + i64::from(st.replacement_timeout) * 1000;
                    if now >= deadline {
                        st.phase = Phase::Offline;
                        expired = true;
                        this.events.notify_all();
                    } else {
                        wake = wake.min(deadline);
                    }
                }
                // A logout the target asked for must be answered in time.
                Phase::LoggingOut if st.reconnect_delay_ms.is_some() => {
                    match st.logout_watch.poll(now) {
                        Ok(Some(at)) => wake = wake.min(at),
                        Ok(None) => {}
                        Err(ms) => logout_overdue = Some(ms),
                    }
                }
                Phase::LoggingOut | Phase::Offline => {}
            }
            if ping {
                if st.ctl_jobs.push(TxJob::Ping) {
                    st.ping_sent_ms = Some(now);
                } else {
                    // The TX queue is full, so the connection is busy anyway.
                    ping = false;
                }
            }
            drop(st);
            if ping {
                Self::kick_tx(this.as_arc_borrow());
            }
            if fail_ping {
                this.fail(
                    reason::NOP_TIMEOUT,
                    format_args!("no answer to a NOP-Out ping (noop_out_timeout)"),
                );
            }
            if let Some(ms) = stalled {
                this.fail(
                    reason::PROTOCOL,
                    format_args!(
                        "command window closed for {ms} ms with commands waiting, also after a NOP-Out ping"
                    ),
                );
            }
            if let Some(ms) = logout_overdue {
                this.fail(
                    reason::PROTOCOL,
                    format_args!("no Logout Response in {ms} ms (the target asked for the logout)"),
                );
            }
            if expired {
                pr_err!(
                    "host{}: replacement timeout expired: failing I/O until the session is back\n",
                    this.host_no()
                );
                this.complete_all(HostByte::TransportFailfast);
            }
            this.sync_host();
            st = this.state.lock();
            if fail_ping || expired || ping || stalled.is_some() || logout_overdue.is_some() {
                continue;
            }
            let left = u32::try_from((wake - now_ms()).max(1)).unwrap_or(1000);
            let _ = this
                .events
                .wait_interruptible_timeout(&mut st, msecs_to_jiffies(left));
        }
    }

    /// Sends a NOP-Out ping (unless one is out) and waits for its answer:
    /// whether the connection is alive. No answer in time fails it.
    fn ping_alive(this: &Arc<Self>) -> bool {
        let mut st = this.state.lock();
        if st.phase != Phase::Running {
            return false;
        }
        let timeout_ms = match st.noop_out_timeout {
            0 => EH_PING_TIMEOUT_MS,
            t => u32::from(t) * 1000,
        };
        if st.ping_sent_ms.is_none() {
            if !st.ctl_jobs.push(TxJob::Ping) {
                return true;
            }
            st.ping_sent_ms = Some(now_ms());
            drop(st);
            Self::kick_tx(this.as_arc_borrow());
            st = this.state.lock();
        }
        let mut left = msecs_to_jiffies(timeout_ms);
        loop {
            if st.phase != Phase::Running {
                return false;
            }
            if st.ping_sent_ms.is_none() {
                return true;
            }
            match this.events.wait_interruptible_timeout(&mut st, left) {
                CondVarTimeoutResult::Woken { jiffies } => left = jiffies,
                CondVarTimeoutResult::Timeout | CondVarTimeoutResult::Signal { .. } => break,
            }
        }
        // Anything received since the ping also shows the connection alive.
        let answered = match st.ping_sent_ms {
            None => true,
            Some(sent) => st.last_rx_ms > sent,
        };
        drop(st);
        if !answered {
            this.fail(
                reason::NOP_TIMEOUT,
                format_args!("no answer to the error handler's NOP-Out ping"),
            );
        }
        answered
    }

    /// `queuecommand`: builds and sends the SCSI Command PDU with its immediate
    /// and unsolicited data. May block (on the socket).
    pub(crate) fn queue_command(
        this: ArcBorrow<'_, Self>,
        mut cmd: Cmd,
    ) -> core::result::Result<(), (Cmd, Busy)> {
        let dir = cmd.direction();
        let mut tx = this.tx.lock();
        let mut st = this.state.lock();
        match st.phase {
            Phase::Running => {}
            // Held until the relogin (the watchdog blocks the host soon).
            Phase::Recovering => return Err((cmd, Busy::Host)),
            Phase::LoggingOut if st.reconnect_delay_ms.is_some() => {
                return Err((cmd, Busy::Host));
            }
            phase => {
                drop(st);
                drop(tx);
                let host = if phase == Phase::Offline {
                    HostByte::TransportFailfast
                } else {
                    HostByte::NoConnect
                };
                cmd.set_result(host, 0);
                cmd.complete();
                return Ok(());
            }
        }
        let p = st.params;
        if st.seq.credits() == 0 {
            st.window_watch.closed(now_ms());
            return Err((cmd, Busy::Target));
        }
        let tag = cmd.unique_tag() & TAG_MASK;
        // A task whose command EH took back (and the midlayer now reissues)
        // is over: forget it, and its late PDUs, before reusing the slot.
        let stale = matches!(st.tasks.get(tag as usize), Some(Some(t)) if t.cmd.revoked());
        if stale {
            if let Some(t) = st.take(tag as u16) {
                st.remember_aborted(t.itt);
            }
        }
        let slot_free = matches!(st.tasks.get(tag as usize), Some(None));
        let cdb_len = cmd.cdb().len();
        if dir == DataDir::Bidirectional || !slot_free || cdb_len > 16 {
            drop(st);
            drop(tx);
            pr_err!(
                "host{}: refusing command (tag {}, dir {:?}, cdb {} bytes, slot free {})\n",
                this.host_no(),
                tag,
                dir,
                cdb_len,
                slot_free
            );
            cmd.set_result(HostByte::Error, 0);
            cmd.complete();
            return Ok(());
        }
        let len = cmd.transfer_len();
        let (imm, unsol_end) = if dir == DataDir::ToDevice {
            let first = len.min(p.first_burst_len);
            let imm = if p.immediate_data {
                first.min(p.max_xmit_data_segment_len).min(tx.len() as u32)
            } else {
                0
            };
            (imm, if p.initial_r2t { imm } else { first })
        } else {
            (0, 0)
        };
        let copied = tx
            .get_mut(..imm as usize)
            .map(|b| cmd.copy_to_buf(0, b).is_ok())
            .unwrap_or(false);
        if !copied {
            drop(st);
            drop(tx);
            cmd.set_result(HostByte::Error, 0);
            cmd.complete();
            return Ok(());
        }
        let gen = match st.gens.get_mut(tag as usize) {
            Some(g) => {
                *g = g.wrapping_add(1) & 0xf;
                u32::from(*g)
            }
            None => 0,
        };
        let itt = st.itt((gen << 12) | tag);
        let cmd_sn = st.seq.take_cmd_sn();
        let mut cdb = [0u8; 16];
        if let Some(d) = cdb.get_mut(..cdb_len) {
            d.copy_from_slice(cmd.cdb());
        }
        let lun = cmd.lun_sam();
        let mut hdr = [0u8; BHS_LEN];
        ScsiCommand {
            immediate: false,
            final_bit: unsol_end == imm,
            read: dir == DataDir::FromDevice,
            write: dir == DataDir::ToDevice,
            attr: TaskAttr::Simple,
            total_ahs_len: 0,
            data_segment_len: imm,
            lun,
            itt,
            expected_data_len: len,
            cmd_sn: cmd_sn.get(),
            exp_stat_sn: st.seq.exp_stat_sn().get(),
            cdb,
        }
        .emit(&mut hdr);
        let seq = st.next_seq;
        st.next_seq += 1;
        if let Some(slot) = st.tasks.get_mut(tag as usize) {
            *slot = Some(Task {
                cmd,
                itt,
                seq,
                lun,
                cmd_sn: cmd_sn.get(),
                dir,
                len,
                received: 0,
                exp_data_sn: 0,
                r2t_outstanding: 0,
                exp_r2t_sn: 0,
            });
        }
        st.in_flight += 1;
        let conn = st.conn.clone();
        drop(st);
        let more = unsol_end > imm;
        let data = tx.get(..imm as usize).unwrap_or(&[]);
        let mut sent = conn.send_pdu(&hdr, data, more);
        if sent.is_ok() && more {
            sent = this.send_burst(&mut tx, tag as u16, seq, RESERVED_TAG, imm, unsol_end - imm);
        }
        drop(tx);
        if let Err(e) = sent {
            this.fail(reason::SOCKET, format_args!("send failed: {e:?}"));
        }
        Ok(())
    }

    /// Sends `len` bytes from `offset` of task (`tag`, `seq`) as Data-Out PDUs of
    /// at most MaxRecvDataSegmentLength (the target's). `ttt` is the R2T's, or
    /// the reserved tag for unsolicited data. Stops quietly if the task ends.
    fn send_burst(
        &self,
        tx: &mut KVVec<u8>,
        tag: u16,
        seq: u64,
        ttt: u32,
        offset: u32,
        len: u32,
    ) -> Result {
        let mut done = 0u32;
        let mut data_sn = 0u32;
        while done < len {
            let mut hdr = [0u8; BHS_LEN];
            let (n, last, conn) = {
                let mut st = self.state.lock();
                if st.phase != Phase::Running {
                    // The connection failed; the task went back for retry.
                    return Ok(());
                }
                let max = st
                    .params
                    .max_xmit_data_segment_len
                    .min(tx.len() as u32)
                    .max(1);
                let n = (len - done).min(max);
                let last = done + n == len;
                let exp_stat_sn = st.seq.exp_stat_sn().get();
                let conn = st.conn.clone();
                let Some(task) = st.task(tag, seq) else {
                    return Ok(());
                };
                let Some(buf) = tx.get_mut(..n as usize) else {
                    return Err(EINVAL);
                };
                task.cmd.copy_to_buf(offset + done, buf)?;
                if last && ttt != RESERVED_TAG {
                    task.r2t_outstanding = task.r2t_outstanding.saturating_sub(1);
                }
                DataOut {
                    final_bit: last,
                    lun: task.lun,
                    itt: task.itt,
                    ttt,
                    exp_stat_sn,
                    data_sn,
                    buffer_offset: offset + done,
                    data_segment_len: n,
                }
                .emit(&mut hdr);
                (n, last, conn)
            };
            let data = tx.get(..n as usize).unwrap_or(&[]);
            conn.send_pdu(&hdr, data, !last)?;
            done += n;
            data_sn += 1;
        }
        Ok(())
    }

    fn run_tx(this: Arc<Self>) {
        let mut tx = this.tx.lock();
        loop {
            let (job, exp_stat_sn, cmd_sn, ping_itt, conn) = {
                let mut st = this.state.lock();
                if !matches!(st.phase, Phase::Running | Phase::LoggingOut) {
                    return;
                }
                match st.ctl_jobs.pop().or_else(|| st.jobs.pop()) {
                    Some(j) => (
                        j,
                        st.seq.exp_stat_sn().get(),
                        st.seq.next_cmd_sn().get(),
                        st.itt(PING_TAG),
                        st.conn.clone(),
                    ),
                    None => return,
                }
            };
            let sent = match job {
                TxJob::DataOut {
                    tag,
                    seq,
                    ttt,
                    offset,
                    len,
                } => this.send_burst(&mut tx, tag, seq, ttt, offset, len),
                // A NOP-Out is immediate: CmdSN is carried, not advanced.
                TxJob::NopOut { ttt, lun } => {
                    let hdr = nop_out(RESERVED_TAG, ttt, lun, cmd_sn, exp_stat_sn);
                    conn.send_pdu(&hdr, &[], false)
                }
                TxJob::Ping => {
                    let hdr = nop_out(ping_itt, RESERVED_TAG, 0, cmd_sn, exp_stat_sn);
                    conn.send_pdu(&hdr, &[], false)
                }
                TxJob::Logout => {
                    let mut hdr = [0u8; BHS_LEN];
                    LogoutRequest {
                        immediate: true,
                        reason: LogoutReason::CloseConnection,
                        itt: (ping_itt & 0xffff_0000) | LOGOUT_TAG,
                        cid: this.cfg.raw.cid,
                        cmd_sn,
                        exp_stat_sn,
                    }
                    .emit(&mut hdr);
                    conn.send_pdu(&hdr, &[], false)
                }
            };
            if let Err(e) = sent {
                drop(tx);
                this.fail(reason::SOCKET, format_args!("send failed: {e:?}"));
                return;
            }
        }
    }

    fn run_rx(this: Arc<Self>) {
        let mut rx = this.rx.lock();
        let conn = {
            let mut st = this.state.lock();
            if !matches!(st.phase, Phase::Running | Phase::LoggingOut) {
                return;
            }
            st.last_rx_ms = now_ms();
            st.conn.clone()
        };
        let mut sink = Receiver {
            s: &this,
            kick_tx: false,
        };
        let stop = conn.receive(&mut rx, &mut sink, RX_BUDGET);
        let kick = sink.kick_tx;
        drop(rx);
        if kick {
            Self::kick_tx(this.as_arc_borrow());
        }
        match stop {
            RxStop::Drained => {}
            RxStop::Budget => Self::kick_rx(this.as_arc_borrow()),
            RxStop::Closed => this.fail(
                reason::CLOSED,
                format_args!("connection closed by the target"),
            ),
            RxStop::Socket(e) => this.fail(reason::SOCKET, format_args!("receive failed: {e:?}")),
            RxStop::Framing(e) => {
                this.fail(reason::PROTOCOL, format_args!("framing violation: {e:?}"))
            }
            RxStop::Sink(Violation::TargetRequest(what)) => {
                this.fail(reason::TARGET_REQUEST, format_args!("{what}"))
            }
            RxStop::Sink(v) => this.fail(reason::PROTOCOL, format_args!("protocol violation: {v}")),
        }
    }

    /// Sends a Logout Request (close the session) and waits for the response, the
    /// connection's end or the timeout. Returns whether the target confirmed.
    pub(crate) fn logout(&self) -> bool {
        {
            let tx = self.tx.lock();
            let mut hdr = [0u8; BHS_LEN];
            let conn = {
                let mut st = self.state.lock();
                if st.phase != Phase::Running {
                    return false;
                }
                st.phase = Phase::LoggingOut;
                st.reconnect_delay_ms = None;
                LogoutRequest {
                    immediate: true,
                    reason: LogoutReason::CloseSession,
                    itt: st.itt(LOGOUT_TAG),
                    cid: self.cfg.raw.cid,
                    cmd_sn: st.seq.next_cmd_sn().get(),
                    exp_stat_sn: st.seq.exp_stat_sn().get(),
                }
                .emit(&mut hdr);
                st.conn.clone()
            };
            if let Err(e) = conn.send_pdu(&hdr, &[], false) {
                drop(tx);
                self.fail(reason::SOCKET, format_args!("sending Logout failed: {e:?}"));
                return false;
            }
        }
        let mut left = msecs_to_jiffies(LOGOUT_TIMEOUT_MS);
        let mut st = self.state.lock();
        loop {
            if let Some(r) = st.logout_response {
                return r == 0;
            }
            if st.phase != Phase::LoggingOut {
                return false;
            }
            match self.events.wait_interruptible_timeout(&mut st, left) {
                CondVarTimeoutResult::Woken { jiffies } => left = jiffies,
                CondVarTimeoutResult::Timeout | CondVarTimeoutResult::Signal { .. } => {
                    return st.logout_response == Some(0);
                }
            }
        }
    }

    /// Final teardown: no more callbacks, the socket shut, every command handed
    /// back, the relogin request withdrawn, the watchdog stopped and the host
    /// reference dropped. The socket's file is released when the last
    /// reference goes.
    pub(crate) fn close(&self) {
        let conn = {
            let mut st = self.state.lock();
            st.phase = Phase::Closed;
            self.events.notify_all();
            st.conn.clone()
        };
        conn.sock.restore_callbacks();
        conn.sock.shutdown();
        self.complete_all(HostByte::NoConnect);
        self.board.withdraw(self.host_no());
        self.host_ctl.lock().handle = None;
    }

    /// Marks the session as going away before its host is removed: a failure
    /// from now on does not start a recovery, and I/O held for one fails.
    pub(crate) fn begin_removal(&self) {
        {
            let mut st = self.state.lock();
            if matches!(st.phase, Phase::Recovering) {
                st.phase = Phase::Offline;
                self.events.notify_all();
            }
            st.replacement_timeout = 0;
        }
        self.board.withdraw(self.host_no());
        self.sync_host();
    }

    /// Sends one Task Management request and waits for its response. `None`
    /// when the connection is not running, fails, or the target does not answer
    /// in time (a late answer is then ignored).
    fn tmf(
        &self,
        function: TmfFunction,
        lun: u64,
        ref_itt: u32,
        ref_cmd_sn: u32,
    ) -> Option<TmfResponse> {
        let _one = self.tmf_lock.lock();
        let itt;
        {
            let tx = self.tx.lock();
            let mut hdr = [0u8; BHS_LEN];
            let conn = {
                let mut st = self.state.lock();
                if st.phase != Phase::Running {
                    return None;
                }
                let age_bits = st.itt(0);
                itt = st.tmf.start(age_bits);
                // Immediate: CmdSN is carried, not advanced.
                TaskMgmtRequest {
                    immediate: true,
                    function,
                    lun,
                    itt,
                    referenced_task_tag: ref_itt,
                    cmd_sn: st.seq.next_cmd_sn().get(),
                    exp_stat_sn: st.seq.exp_stat_sn().get(),
                    ref_cmd_sn,
                    exp_data_sn: 0,
                }
                .emit(&mut hdr);
                st.conn.clone()
            };
            if let Err(e) = conn.send_pdu(&hdr, &[], false) {
                drop(tx);
                self.state.lock().tmf.abandon(itt);
                self.fail(reason::SOCKET, format_args!("sending a TMF failed: {e:?}"));
                return None;
            }
        }
        let mut left = msecs_to_jiffies(TMF_TIMEOUT_MS);
        let mut st = self.state.lock();
        loop {
            if let Some(r) = st.tmf.take_answer(itt) {
                return Some(r);
            }
            if st.phase != Phase::Running {
                st.tmf.abandon(itt);
                return None;
            }
            match self.events.wait_interruptible_timeout(&mut st, left) {
                CondVarTimeoutResult::Woken { jiffies } => left = jiffies,
                CondVarTimeoutResult::Timeout | CondVarTimeoutResult::Signal { .. } => {
                    // Not waited for any more: a late answer is ignored,
                    // never taken for the next TMF.
                    st.tmf.abandon(itt);
                    pr_warn!(
                        "host{}: no answer to {:?} (ITT {:#x}) in time\n",
                        self.host_no(),
                        function,
                        itt
                    );
                    return None;
                }
            }
        }
    }

    /// `eh_abort_handler`: ABORT TASK. The receiver handles PDUs in order and the
    /// target answers a TMF only after any response it sent for the task, so once
    /// the answer is in, the task's table entry is final and may be handed back.
    pub(crate) fn eh_abort(this: &Arc<Self>, cmd: &EhCmd) -> EhAbort {
        // A dead connection cannot abort anything: find out first (the ping
        // failing starts the reconnect, and the target reset waits for it).
        if !Self::ping_alive(this) {
            return EhAbort::Failed;
        }
        this.abort_task(cmd)
    }

    fn abort_task(&self, cmd: &EhCmd) -> EhAbort {
        let tag = tag_of(cmd.unique_tag());
        let (itt, lun, cmd_sn) = {
            let st = self.state.lock();
            match st.tasks.get(usize::from(tag)) {
                Some(Some(t)) if cmd.is(&t.cmd) => (t.itt, t.lun, t.cmd_sn),
                // Already completed: the midlayer owns it.
                _ => return EhAbort::Success(None),
            }
        };
        let answer = self.tmf(TmfFunction::AbortTask, lun, itt, cmd_sn);
        let mut st = self.state.lock();
        let ours = matches!(
            st.tasks.get(usize::from(tag)),
            Some(Some(t)) if t.itt == itt && cmd.is(&t.cmd)
        );
        match abort_outcome(answer, ours) {
            AbortOutcome::HandBack => {
                st.remember_aborted(itt);
                EhAbort::Success(st.take(tag).map(|t| t.cmd))
            }
            AbortOutcome::AlreadyDone => EhAbort::Success(None),
            AbortOutcome::Escalate => {
                drop(st);
                pr_warn!(
                    "host{}: ABORT TASK of ITT {:#x}: {:?}{}\n",
                    self.host_no(),
                    itt,
                    answer,
                    if ours {
                        ""
                    } else {
                        " (it completed meanwhile)"
                    }
                );
                EhAbort::Failed
            }
        }
    }

    /// Completes (with DID_RESET) and forgets every task `pred` selects. EH owns
    /// the commands it resets, for which `scsi_done` is a no-op; anything else
    /// the reset ended is handed back properly.
    fn reset_tasks(&self, pred: impl Fn(&Task) -> bool) {
        loop {
            let task = {
                let mut st = self.state.lock();
                let i = st.tasks.iter().position(|t| t.as_ref().is_some_and(&pred));
                let task = i.and_then(|i| st.take(i as u16));
                if let Some(t) = &task {
                    st.remember_aborted(t.itt);
                }
                task
            };
            let Some(task) = task else { break };
            let mut cmd = task.cmd;
            cmd.set_result(HostByte::Reset, 0);
            cmd.complete();
        }
    }

    /// `eh_device_reset_handler`: LOGICAL UNIT RESET of the command's LUN.
    pub(crate) fn eh_device_reset(&self, cmd: &EhCmd) -> EhStatus {
        let lun = cmd.lun_sam();
        match self.tmf(TmfFunction::LogicalUnitReset, lun, RESERVED_TAG, 0) {
            Some(TmfResponse::Complete) => {
                self.reset_tasks(|t| t.lun == lun);
                EhStatus::Success
            }
            r => {
                pr_warn!("host{}: LUN RESET: {:?}\n", self.host_no(), r);
                EhStatus::Failed
            }
        }
    }

    /// `eh_target_reset_handler`: TARGET WARM RESET, else a session reconnect
    /// (the connection dropped, every command handed back), waiting for the
    /// relogin like libiscsi's session reset: success once the session runs
    /// again, failure if the replacement timeout passes first.
    pub(crate) fn eh_target_reset(&self) -> EhStatus {
        if let Some(TmfResponse::Complete) =
            self.tmf(TmfFunction::TargetWarmReset, 0, RESERVED_TAG, 0)
        {
            self.reset_tasks(|_| true);
            return EhStatus::Success;
        }
        self.fail(
            reason::ERROR_HANDLING,
            format_args!("SCSI error handling escalated to a session reconnect"),
        );
        let mut st = self.state.lock();
        loop {
            match st.phase {
                Phase::Running => return EhStatus::Success,
                Phase::Offline | Phase::Closed => return EhStatus::Failed,
                Phase::Recovering | Phase::LoggingOut => {}
            }
            let _ = self
                .events
                .wait_interruptible_timeout(&mut st, msecs_to_jiffies(1000));
        }
    }

    /// A LIST entry.
    pub(crate) fn info(&self) -> SessionInfo {
        let c = &self.cfg;
        let mut i = SessionInfo::zeroed();
        i.host_no = self.host_no();
        i.cid = c.raw.cid;
        i.isid = c.raw.isid;
        i.queue_depth = c.queue_depth;
        i.target_name = c.raw.target_name;
        i.initiator_name = c.raw.initiator_name;
        i.portal = c.raw.portal;
        let st = self.state.lock();
        let p = &st.params;
        i.header_digest = uapi::digest_code(p.header_digest);
        i.data_digest = uapi::digest_code(p.data_digest);
        i.tsih = st.tsih;
        i.max_recv_data_segment_len = p.max_recv_data_segment_len;
        i.max_xmit_data_segment_len = p.max_xmit_data_segment_len;
        i.first_burst_len = p.first_burst_len;
        i.max_burst_len = p.max_burst_len;
        i.initial_r2t = u8::from(p.initial_r2t);
        i.immediate_data = u8::from(p.immediate_data);
        i.recoveries = st.recoveries;
        i.generation = st.generation;
        i.replacement_timeout = st.replacement_timeout;
        i.state = match st.phase {
            Phase::Running => uapi::state::RUNNING,
            Phase::LoggingOut => uapi::state::LOGGING_OUT,
            Phase::Recovering => uapi::state::RECOVERING,
            Phase::Offline | Phase::Closed => uapi::state::FAILED,
        };
        i.cmd_sn = st.seq.next_cmd_sn().get();
        i.exp_cmd_sn = st.seq.window().exp_cmd_sn().get();
        i.max_cmd_sn = st.seq.window().max_cmd_sn().get();
        i.exp_stat_sn = st.seq.exp_stat_sn().get();
        i.in_flight = st.in_flight;
        i
    }
}

/// The RX work's view of the session as a [`PduSink`].
struct Receiver<'a> {
    s: &'a Arc<Session>,
    /// A TX job was queued during this pass.
    kick_tx: bool,
}

impl Receiver<'_> {
    fn data_in_header(&mut self, d: &DataIn) -> Result<Dest<DataInDest>, Violation> {
        let mut st = self.s.state.lock();
        let Some(t) = st.task_by_itt(d.itt) else {
            // Collected and dropped at the end.
            return st.unknown("Data-In", d.itt).map(|()| Dest::Scratch);
        };
        if t.dir != DataDir::FromDevice {
            return Err(Violation::DataInNotRead { itt: d.itt });
        }
        if d.buffer_offset != t.received {
            return Err(Violation::DataInOffset {
                itt: d.itt,
                offset: d.buffer_offset,
                expected: t.received,
            });
        }
        if d.data_sn != t.exp_data_sn {
            return Err(Violation::DataInSn {
                itt: d.itt,
                data_sn: d.data_sn,
                expected: t.exp_data_sn,
            });
        }
        let end = u64::from(d.buffer_offset) + u64::from(d.data_segment_len);
        if end > u64::from(t.len) {
            return Err(Violation::DataInBeyond {
                itt: d.itt,
                end,
                len: t.len,
            });
        }
        if d.data_segment_len == 0 {
            return Ok(Dest::Scratch);
        }
        Ok(Dest::Direct(DataInDest {
            tag: tag_of(d.itt),
            seq: t.seq,
            base: d.buffer_offset,
        }))
    }

    fn data_in_end(&mut self, d: &DataIn) -> Result<(), Violation> {
        let resumed;
        let cmd = {
            let mut st = self.s.state.lock();
            st.window(d.exp_cmd_sn, d.max_cmd_sn);
            if d.stray_residual_bits() {
                st.quirk(Some(Quirk::StrayResidual { itt: d.itt }));
            }
            let Some(t) = st.task_by_itt(d.itt) else {
                if d.status.is_some() {
                    st.ack_stat_sn(d.stat_sn);
                }
                return st.unknown("Data-In", d.itt);
            };
            t.received = t.received.saturating_add(d.data_segment_len);
            t.exp_data_sn = t.exp_data_sn.wrapping_add(1);
            let Some(status) = d.status else {
                return Ok(());
            };
            st.ack_stat_sn(d.stat_sn);
            let Some(task) = st.take(tag_of(d.itt)) else {
                return Ok(());
            };
            resumed = st.resumed_from_ms.take();
            finish(
                task,
                RESPONSE_COMPLETED,
                status,
                d.underflow,
                d.residual_count,
                &[],
            )
        };
        cmd.complete();
        self.log_resumed(resumed);
        Ok(())
    }

    fn response_end(&mut self, r: &ScsiResponse, data: &[u8]) -> Result<(), Violation> {
        // Sense that does not fit its segment is this command's problem, not
        // the connection's: the command fails (the midlayer retries it).
        let sense = ScsiResponseData::parse(data).map(|d| d.sense);
        let resumed;
        let cmd = {
            let mut st = self.s.state.lock();
            st.ack(r.stat_sn, r.exp_cmd_sn, r.max_cmd_sn);
            if st.task_by_itt(r.itt).is_none() {
                return st.unknown("SCSI Response", r.itt);
            }
            let Some(task) = st.take(tag_of(r.itt)) else {
                return Ok(());
            };
            resumed = st.resumed_from_ms.take();
            match sense {
                Ok(sense) => finish(
                    task,
                    r.response,
                    r.status,
                    r.underflow,
                    r.residual_count,
                    sense,
                ),
                Err(error) => {
                    st.quirk(Some(Quirk::BadSense { itt: r.itt, error }));
                    finish(task, RESPONSE_TARGET_FAILURE, r.status, false, 0, &[])
                }
            }
        };
        cmd.complete();
        self.log_resumed(resumed);
        Ok(())
    }

    /// Logs the first completion after a reconnect: the recovery's length as
    /// seen by I/O.
    fn log_resumed(&self, failed_at_ms: Option<i64>) {
        if let Some(t) = failed_at_ms {
            pr_info!(
                "host{}: I/O flowing again {} ms after the connection failed\n",
                self.s.host_no(),
                now_ms() - t
            );
        }
    }

    fn r2t_end(&mut self, r: &crate::proto::pdu::R2t) -> Result<(), Violation> {
        let mut st = self.s.state.lock();
        let p = st.params;
        st.window(r.exp_cmd_sn, r.max_cmd_sn);
        let Some(t) = st.task_by_itt(r.itt) else {
            return st.unknown("R2T", r.itt);
        };
        if t.dir != DataDir::ToDevice {
            return Err(Violation::R2tNotWrite { itt: r.itt });
        }
        if r.r2t_sn != t.exp_r2t_sn {
            return Err(Violation::R2tSn {
                itt: r.itt,
                got: r.r2t_sn,
                expected: t.exp_r2t_sn,
            });
        }
        let end = u64::from(r.buffer_offset) + u64::from(r.desired_data_len);
        if r.desired_data_len == 0 || end > u64::from(t.len) {
            return Err(Violation::R2tRange {
                itt: r.itt,
                offset: r.buffer_offset,
                len: r.desired_data_len,
                total: t.len,
            });
        }
        if r.desired_data_len > p.max_burst_len {
            return Err(Violation::R2tBurst {
                len: r.desired_data_len,
                max: p.max_burst_len,
            });
        }
        if t.r2t_outstanding >= p.max_outstanding_r2t {
            return Err(Violation::R2tTooMany {
                itt: r.itt,
                max: p.max_outstanding_r2t,
            });
        }
        t.exp_r2t_sn = t.exp_r2t_sn.wrapping_add(1);
        t.r2t_outstanding += 1;
        let job = TxJob::DataOut {
            tag: tag_of(r.itt),
            seq: t.seq,
            ttt: r.ttt,
            offset: r.buffer_offset,
            len: r.desired_data_len,
        };
        if !st.jobs.push(job) {
            return Err(Violation::TxQueueFull);
        }
        self.kick_tx = true;
        Ok(())
    }

    fn async_end(&mut self, a: &AsyncMessage, data: &[u8]) -> Result<(), Violation> {
        let host_no = self.s.host_no();
        let mut st = self.s.state.lock();
        st.ack(a.stat_sn, a.exp_cmd_sn, a.max_cmd_sn);
        match a.event {
            AsyncEvent::LogoutRequest => {
                // Log out (closing this connection) now rather than within the
                // Parameter3 seconds allowed; in-flight commands come back for
                // retry when the connection closes, and the relogin waits for
                // the Logout Response's Time2Wait.
                pr_info!(
                    "host{}: the target requests a logout; logging out to reconnect\n",
                    host_no
                );
                if st.phase == Phase::Running {
                    st.phase = Phase::LoggingOut;
                    st.reconnect_delay_ms =
                        Some(u32::from(st.params.default_time2wait).saturating_mul(1000));
                    if !st.ctl_jobs.push(TxJob::Logout) {
                        return Err(Violation::TxQueueFull);
                    }
                    st.logout_watch.sent(now_ms());
                    self.kick_tx = true;
                }
                Ok(())
            }
            AsyncEvent::DropConnection | AsyncEvent::DropAllConnections => {
                st.reconnect_delay_ms = Some(u32::from(a.parameter2).saturating_mul(1000));
                Err(Violation::TargetRequest(
                    "the target dropped the connection (Async Message); reconnecting after its Time2Wait",
                ))
            }
            AsyncEvent::Renegotiate => Err(Violation::TargetRequest(
                "the target asks to renegotiate parameters; reconnecting to do so",
            )),
            AsyncEvent::ScsiEvent => {
                // The data segment is SenseLength + sense data: log it; sd
                // sees the same Unit Attention on the LUN's next command.
                let sense = ScsiResponseData::parse(data)
                    .map(|d| d.sense)
                    .unwrap_or(&[]);
                let key = sense.get(2).map_or(0, |b| b & 0xf);
                let asc = sense.get(12).copied().unwrap_or(0);
                let ascq = sense.get(13).copied().unwrap_or(0);
                pr_info!(
                    "host{}: SCSI async event for LUN {:#x}: sense key {:#x} ASC/ASCQ {:#04x}/{:#04x}\n",
                    host_no,
                    a.lun,
                    key,
                    asc,
                    ascq
                );
                Ok(())
            }
            ev => {
                pr_info!("host{}: async event {:?} from the target\n", host_no, ev);
                Ok(())
            }
        }
    }

    fn reject_end(&mut self, r: &Reject, data: &[u8]) -> Result<(), Violation> {
        let host_no = self.s.host_no();
        let cmd = {
            let mut st = self.s.state.lock();
            st.ack(r.stat_sn, r.exp_cmd_sn, r.max_cmd_sn);
            let hdr = Reject::rejected_header(data).map_err(Violation::Malformed)?;
            let bhs = Bhs::from_array(hdr);
            let itt = bhs.itt();
            pr_warn!(
                "host{}: target rejected a {:?} (ITT {:#x}): {:?}\n",
                host_no,
                bhs.opcode(),
                itt,
                r.reason
            );
            match bhs.opcode() {
                Opcode::ScsiCommand if st.task_by_itt(itt).is_some() => {
                    // The command was not executed: the midlayer may retry it.
                    st.take(tag_of(itt)).map(|t| {
                        let mut cmd = t.cmd;
                        cmd.set_result(HostByte::Error, 0);
                        cmd
                    })
                }
                Opcode::NopOut if itt == st.itt(PING_TAG) => {
                    // The target is alive enough to reject it.
                    st.ping_sent_ms = None;
                    self.s.events.notify_all();
                    None
                }
                Opcode::TaskMgmtRequest => {
                    if st.tmf.on_response(itt, TmfResponse::Rejected) == TmfRx::Answer {
                        self.s.events.notify_all();
                    }
                    None
                }
                _ => None,
            }
        };
        if let Some(cmd) = cmd {
            cmd.complete();
        }
        Ok(())
    }
}

impl PduSink for Receiver<'_> {
    type Direct = DataInDest;
    type Error = Violation;

    fn header(
        &mut self,
        bhs: &[u8; BHS_LEN],
        _data_len: u32,
    ) -> Result<Dest<DataInDest>, Violation> {
        match Pdu::parse(bhs).map_err(Violation::Malformed)? {
            Pdu::DataIn(d) => self.data_in_header(&d),
            _ => Ok(Dest::Scratch),
        }
    }

    fn data(&mut self, to: DataInDest, offset: u32, bytes: &[u8]) -> Result<(), Violation> {
        let mut st = self.s.state.lock();
        // Gone if the connection failed meanwhile, or EH took the command
        // back: drop the bytes.
        let Some(t) = st.task(to.tag, to.seq) else {
            return Ok(());
        };
        let at = to.base.saturating_add(offset);
        // The header check bounded the whole segment by the buffer already.
        match t.cmd.copy_from_buf(at, bytes) {
            Ok(()) => Ok(()),
            // EH took the command back: drop the bytes.
            Err(e) if e == TAKEN_BACK => Ok(()),
            Err(_) => Err(Violation::DataInBeyond {
                itt: t.itt,
                end: u64::from(at) + bytes.len() as u64,
                len: t.len,
            }),
        }
    }

    fn recv_direct<E: SocketEvents>(
        &mut self,
        to: DataInDest,
        offset: u32,
        len: u32,
        sock: &TcpSocket<E>,
    ) -> Option<Result<Recv>> {
        let mut st = self.s.state.lock();
        let t = st.task(to.tag, to.seq)?;
        match t.cmd.recv_into(sock, to.base.saturating_add(offset), len) {
            // EH took the command back before anything was read: the bytes
            // go through `data`, which drops them.
            Err(e) if e == TAKEN_BACK => None,
            r => Some(r),
        }
    }

    fn end(
        &mut self,
        bhs: &[u8; BHS_LEN],
        _dest: Dest<DataInDest>,
        data: &[u8],
    ) -> Result<(), Violation> {
        match Pdu::parse(bhs).map_err(Violation::Malformed)? {
            Pdu::DataIn(d) => self.data_in_end(&d),
            Pdu::ScsiResponse(r) => self.response_end(&r, data),
            Pdu::R2t(r) => self.r2t_end(&r),
            Pdu::NopIn(n) => {
                let mut st = self.s.state.lock();
                st.window(n.exp_cmd_sn, n.max_cmd_sn);
                if n.itt != RESERVED_TAG {
                    // The answer to a ping of ours carries a StatSN.
                    st.ack_stat_sn(n.stat_sn);
                    if n.itt != st.itt(PING_TAG) {
                        return Err(Violation::UnknownItt {
                            what: "NOP-In",
                            itt: n.itt,
                        });
                    }
                    st.ping_sent_ms = None;
                    self.s.events.notify_all();
                }
                if n.wants_reply() {
                    if !st.ctl_jobs.push(TxJob::NopOut {
                        ttt: n.ttt,
                        lun: n.lun,
                    }) {
                        return Err(Violation::TxQueueFull);
                    }
                    self.kick_tx = true;
                }
                Ok(())
            }
            Pdu::LogoutResponse(l) => {
                let mut st = self.s.state.lock();
                st.ack(l.stat_sn, l.exp_cmd_sn, l.max_cmd_sn);
                if st.phase != Phase::LoggingOut {
                    return Err(Violation::Unexpected("Logout Response"));
                }
                st.logout_response = Some(l.response);
                st.logout_watch.done();
                if st.reconnect_delay_ms.is_some() {
                    // Our logout answering the target's request: reconnect
                    // after DefaultTime2Wait (the response's Time2Wait only
                    // counts at ERL 2 or after a failed logout).
                    let p = st.params;
                    st.reconnect_delay_ms = Some(relogin_delay_ms(
                        p.error_recovery_level,
                        p.default_time2wait,
                        l.response,
                        l.time2wait,
                    ));
                    drop(st);
                    return Err(Violation::TargetRequest(
                        "logged out at the target's request; reconnecting",
                    ));
                }
                self.s.events.notify_all();
                Ok(())
            }
            Pdu::AsyncMessage(a) => self.async_end(&a, data),
            Pdu::Reject(r) => self.reject_end(&r, data),
            Pdu::TaskMgmtResponse(t) => {
                let mut st = self.s.state.lock();
                st.ack(t.stat_sn, t.exp_cmd_sn, t.max_cmd_sn);
                match st.tmf.on_response(t.itt, t.response) {
                    TmfRx::Answer => self.s.events.notify_all(),
                    // The answer to a TMF we stopped waiting for.
                    TmfRx::Late => pr_warn!(
                        "host{}: late TMF response for ITT {:#x} ignored\n",
                        self.s.host_no(),
                        t.itt
                    ),
                }
                Ok(())
            }
            Pdu::LoginResponse(_) => Err(Violation::Unexpected("Login Response")),
            Pdu::TextResponse(_) => Err(Violation::Unexpected("Text Response")),
            _ => Err(Violation::Unexpected("PDU opcode")),
        }
    }
}

impl SocketEvents for Session {
    fn data_ready(this: ArcBorrow<'_, Self>) {
        Session::kick_rx(this);
    }

    fn state_change(this: ArcBorrow<'_, Self>) {
        // The RX work notices EOF or an error from recvmsg.
        Session::kick_rx(this);
    }
}

impl WorkItem<0> for Session {
    type Pointer = Arc<Session>;

    fn run(this: Arc<Session>) {
        Session::run_rx(this);
    }
}

impl WorkItem<1> for Session {
    type Pointer = Arc<Session>;

    fn run(this: Arc<Session>) {
        Session::run_tx(this);
    }
}

impl WorkItem<2> for Session {
    type Pointer = Arc<Session>;

    fn run(this: Arc<Session>) {
        Session::run_watch(this);
    }
}
