//! A full-feature-phase session on one connection (ERL 0): turns SCSI commands
//! into SCSI Command / Data-Out PDUs and received PDUs back into completions.
//!
//! Execution contexts:
//! - `queue_command` runs in the submitter's context (the host template sets
//!   `queuecommand_may_block`): it admits the command, whose Command PDU the
//!   engine queues, and sends the queue inline when the transmit side is
//!   free, avoiding a workqueue hop per command; when it is held, the holder
//!   sends the queue before letting go (`tx`). Commands of a batch but its
//!   last go with `MSG_MORE`; the last (or `commit_rqs`) pushes.
//! - The socket's `sk_data_ready` receives right where TCP signals, in softirq
//!   (or in the task releasing the socket lock), as iscsi_tcp does: PDUs are
//!   read from the skbs (`tcp_read_sock`), Data-In payload straight into the
//!   command's pages, and finished commands completed there, with no work
//!   item and no wakeup in between. A pass that used its budget, or that
//!   found the connection failed, leaves the rest to the RX work (process
//!   context), which is also what `sk_state_change` queues.
//! - Whatever the RX side must send (Data-Out answering an R2T, NOP-Out answering
//!   a ping) is queued as a job for the TX work, so a receiver never blocks on a
//!   full send buffer while the target is blocked sending to us.
//! - Submitters and the TX work never wait for room in the send buffer
//!   (`MSG_DONTWAIT`, as nvme-tcp): a send that stops there leaves its PDU
//!   under way in the transmit side and lets go; `sk_write_space` has the TX
//!   work finish it. Only a holder that must get its own PDU out (TMF,
//!   logout) blocks.
//!
//! So `state` is a spinlock taken with softirqs off, never held across
//! anything that sleeps (a socket send, a mutex, an allocation that may
//! reclaim).
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
//! The protocol rules live in `proto::session` (host-tested): the state's
//! `Engine` decides what a command, a received PDU or a clock tick does (the
//! ITT layout, the task table, sequence numbers, R2T and Data-In checks, TMF,
//! logout and ping state); this module and its children apply its answers
//! under the state lock: `tx` (submission and Data-Out), `rx` (received
//! PDUs), `watch` (timers), `eh` (task management), `link` (connection loss
//! and HANDOFF), `state` (small shared helpers). The types stay here so every
//! child sees their fields.
#![deny(unsafe_code)]

use core::fmt;
use core::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};

use kernel::prelude::*;
use kernel::sync::{new_condvar, new_mutex, Arc, ArcBorrow, CondVar, CondVarTimeoutResult, Mutex};
use kernel::time::msecs_to_jiffies;
use kernel::workqueue::{impl_has_work, new_work, Work, WorkItem};

use crate::conn::{Conn, Dest, Framed, PduSink, RxState, RxStop, Segment};
use crate::proto::bhs::{Bhs, Opcode, BHS_LEN, RESERVED_TAG};
use crate::proto::framing::FramingSettings;
use crate::proto::negotiate::{Digest, SessionParams};
use crate::proto::pdu::{
    DataIn, DataOut, LogoutReason, LogoutRequest, NopOut, Pdu, ScsiCommand, TaskAttr,
    TaskMgmtRequest, TmfFunction, TmfResponse,
};
use crate::proto::session::aborted;
use crate::proto::session::engine::{AddError, Engine, Parts, PingStart, Refused, Storage};
use crate::proto::session::error::SessionError;
use crate::proto::session::itt::{LOGOUT_LOW, TAG_MASK};
use crate::proto::session::lane::{lane_bit, Lane as EngineLane, LaneParts, LaneStart, MAX_LANES};
use crate::proto::session::logout::LOGOUT_RESPONSE_TIMEOUT_MS;
use crate::proto::session::rx::{Completion, HostResult, Note, Placement, Reconnect, RxOutcome};
use crate::proto::session::seq::Sequencer;
use crate::proto::session::task::{self as proto_task, Dir, InsertError, Slot};
use crate::proto::session::timers::{Expiry, Timers};
use crate::proto::session::tmf::{abort_outcome, AbortOutcome};
use crate::proto::session::tx::{Burst, CommandPlan, TxJob};
use crate::proto::uapi::{self, reason, ConnInfo, SessionConfig, SessionInfo};
use crate::recovery::{now_ms, Board};
use crate::sys::lock::{new_spinlock_bh, new_try_mutex, SpinLockBh, TryMutex, TryMutexGuard};
use crate::sys::scsi::{
    Busy, Cmd, DataDir, DeviceState, EhAbort, EhCmd, EhStatus, HostByte, HostHandle, TAKEN_BACK,
};
use crate::sys::socket::{Reading, SkbSlice, SocketEvents, TcpSocket, TxPages};
use crate::sys::workqueue::OwnedQueue;

pub(crate) use crate::proto::session::engine::Phase;

mod eh;
mod lane;
mod link;
mod rx;
mod state;
mod tx;
mod watch;

pub(crate) use lane::Lane;
use link::{shut_all, ShutConns};
use state::{apply, nop_out, ordered_nop_out, r2t_jobs};

/// Largest data segment we build in one PDU, whatever the target accepts: the
/// size of the transmit bounce buffer (and within what one page array holds).
const MAX_TX_SEGMENT: u32 = 256 * 1024;
/// Bytes an RX work run takes from the socket before yielding the worker.
const RX_BUDGET: usize = 1 << 20;
/// How long an EH handler waits for a TMF Response.
const TMF_TIMEOUT_MS: u32 = 10_000;
/// How long the EH's liveness ping may take when keepalive pings are off.
const EH_PING_TIMEOUT_MS: u32 = 5_000;
/// Room for queued NOP-Out answers, pings and Logouts.
const CTL_JOBS: usize = 64;

/// The kernel's storage for the session engine.
struct KernelStore;

impl Storage for KernelStore {
    type Cmd = Cmd;
    type Slots = KVec<Slot<Cmd>>;
    type Itts = KVec<u32>;
    /// kvmalloc'ed: a deep queue with many R2Ts outstanding needs megabytes.
    type Jobs = KVVec<Option<TxJob>>;
    type Lanes = KVec<EngineLane<KVVec<Option<TxJob>>>>;
}

/// The lane of the leading connection: the only one until the driver runs
/// several connections per session.
const LEAD: usize = 0;

/// What the connection of handoff `cfg` brings to its lane.
fn lead_start(cfg: &SessionConfig) -> LaneStart {
    LaneStart {
        cid: cfg.raw.cid,
        exp_stat_sn: cfg.exp_stat_sn,
        params: cfg.params,
    }
}

/// A task of this session.
type Task = proto_task::Task<Cmd>;

/// Why the receiver stops: a violation, or the target ending the connection
/// in order (not a violation).
enum RxFault {
    Violation(SessionError),
    Reconnect(Reconnect),
}

impl fmt::Display for RxFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RxFault::Violation(v) => v.fmt(f),
            RxFault::Reconnect(r) => f.write_str(r.text()),
        }
    }
}

impl From<SessionError> for RxFault {
    fn from(e: SessionError) -> Self {
        RxFault::Violation(e)
    }
}

/// Protocol state; see `Session::state`.
struct State {
    /// The protocol rules' state (phase, sequence numbers, tasks, jobs, TMF,
    /// logout and ping): `proto::session`, host-tested.
    e: Engine<KernelStore>,
    /// Each lane's current connection (lane 0's replaced by a HANDOFF, the
    /// others' added by ADD_CONNECTION); a failed one stays until replaced.
    conns: [Option<Arc<SessionConn>>; MAX_LANES],
    /// The session's lanes (taken out by `close`, which ends the reference
    /// cycle between a session and its lanes).
    lanes: [Option<Arc<Lane>>; MAX_LANES],
    tsih: u16,
    /// Connection losses so far (each one a relogin generation).
    generation: u32,
    /// Connections re-established.
    recoveries: u32,
    /// When the current loss happened (ms).
    failed_at_ms: i64,
    /// After a reconnect, until the first command completes: when the
    /// connection had failed (for the "I/O flowing again" log line).
    resumed_from_ms: Option<i64>,
    replacement_timeout: u32,
    noop_out_interval: u16,
    noop_out_timeout: u16,
    /// The SCSI host number, for log lines written under the lock.
    host_no: u32,
    /// Lanes (bit k: lane k) where a batch ended while another task held
    /// the transmit side: its holder pushes what `MSG_MORE` held back.
    push_asked: u16,
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
    /// Protocol state, the lanes and their connections and every in-flight
    /// command (and so their buffers). Lock order: `handoff_lock`,
    /// `host_ctl`, then `tmf_lock`, then one lane's `tx` (never two at once),
    /// then (the socket lock, the connection's `rx`) `state`; `state` is
    /// never held across anything that sleeps.
    #[pin]
    state: SpinLockBh<State>,
    /// Lanes the session was created with (hardware queues).
    nr_lanes: usize,
    /// Serialises Task Management requests: one in flight per session. Taken
    /// before `tx` and `state`.
    #[pin]
    tmf_lock: Mutex<()>,
    /// Serialises HANDOFFs: two for the same generation must not both
    /// install a connection. Taken first.
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
    watch_work: Work<Session, 2>,
}

impl_has_work! {
    impl HasWork<Self, 2> for Session { self.watch_work }
}

/// Lock-free flags and counters of the transmit side.
#[derive(Default)]
struct TxFlags {
    /// A PDU went with `MSG_MORE` and was not pushed yet. Written with `tx`
    /// held.
    unpushed: AtomicBool,
    /// Submissions that found the transmit side busy and left their PDUs to
    /// another sender (sysfs `tx_handed_over`).
    handed_over: AtomicU64,
    /// A send stopped at a full send buffer; `write_space` clears it and
    /// has the TX work go on.
    blocked: AtomicBool,
    /// Times that happened (sysfs `tx_stalled`).
    stalled: AtomicU64,
    /// A PDU or a Data-Out burst is under way (`TxSide::out`, `burst`).
    /// Written with `tx` held.
    under_way: AtomicBool,
}

/// What the sender holds: a data segment goes out by reference from the
/// command's pages (`pages`), or, when that cannot be (a data digest must
/// cover bytes that no longer change, or the pages are slab memory), copied
/// into `buf` first.
struct TxSide {
    buf: KVVec<u8>,
    pages: TxPages,
    /// The PDU being sent, when a send stopped at a full buffer before its
    /// end (the next sends finish it first: PDUs never interleave).
    out: Option<tx::OutPdu>,
    /// The Data-Out burst the next PDUs come from.
    burst: Option<tx::BurstRun>,
    /// The job under way was the last queued: once it is sent, the batch's
    /// end may push.
    last_job: bool,
}

impl TxSide {
    /// Forgets what was under way (its connection failed or was replaced)
    /// and the page references it held.
    fn drop_under_way(&mut self) {
        self.out = None;
        self.burst = None;
        self.last_job = false;
        self.pages.clear();
    }
}

/// A connection of a session: its socket's callbacks go to its lane.
type SessionConn = Conn<Lane, RxSide>;

/// A connection's receive side, in its `rx` lock: the framing state, the
/// commands a pass finished, and what stopped a pass that ran in a socket
/// callback, for the RX work to act on (failing the connection sleeps).
struct RxSide {
    framing: RxState<DataInDest>,
    done: rx::Finished,
    pending: Option<RxStop<RxFault>>,
}

/// Where a Data-In's payload goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataInDest {
    tag: u16,
    seq: u64,
    base: u32,
    /// The header, parsed once when it came.
    hdr: DataIn,
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

/// The connection object for a logged-in socket with parameters `p`, for a
/// queue of `depth` commands.
fn new_conn(sock: TcpSocket<Lane>, p: &SessionParams, depth: usize) -> Result<Arc<SessionConn>> {
    let rx = RxSide {
        framing: rx_state(p)?,
        done: rx::Finished::new(depth)?,
        pending: None,
    };
    Arc::pin_init(
        Conn::new(
            sock,
            p.header_digest == Digest::Crc32c,
            p.data_digest == Digest::Crc32c,
            rx,
        ),
        GFP_KERNEL,
    )
}

/// Storage for a transmit job ring of `cap` jobs.
fn job_store(cap: usize) -> Result<KVVec<Option<TxJob>>> {
    Ok(KVVec::from_elem(None, cap.max(1), GFP_KERNEL)?)
}

impl Session {
    /// A session over `sock`, its leading connection, with the validated
    /// handoff `cfg` and `nr_lanes` lanes (1..=MAX_LANES; the others come up
    /// by ADD_CONNECTION); not started.
    pub(crate) fn new(
        cfg: SessionConfig,
        recipe: Recipe,
        sock: TcpSocket<Lane>,
        nr_lanes: usize,
        wq: Arc<Queues>,
        board: Arc<Board>,
    ) -> Result<Arc<Self>> {
        if nr_lanes == 0 || nr_lanes > MAX_LANES {
            return Err(EINVAL);
        }
        let p = cfg.params;
        let depth = cfg.queue_depth as usize;
        let mut slots = KVec::with_capacity(depth, GFP_KERNEL)?;
        for _ in 0..depth {
            slots.push(Slot::empty(), GFP_KERNEL)?;
        }
        let mut lanes = KVec::with_capacity(nr_lanes, GFP_KERNEL)?;
        for _ in 0..nr_lanes {
            lanes.push(
                EngineLane::new(LaneParts {
                    cmds: job_store(depth)?,
                    ctl_jobs: job_store(CTL_JOBS)?,
                    jobs: job_store(r2t_jobs(depth, &p))?,
                }),
                GFP_KERNEL,
            )?;
        }
        let parts = Parts {
            slots,
            aborted: KVec::from_elem(0u32, aborted::capacity_for(depth), GFP_KERNEL)?,
            lanes,
        };
        let conn = new_conn(sock, &p, depth)?;
        let seq = Sequencer::new(cfg.cmd_sn, cfg.window);
        let mut conns: [Option<Arc<SessionConn>>; MAX_LANES] = Default::default();
        conns[0] = Some(conn);
        let state = State {
            e: Engine::new(parts, lead_start(&cfg), cfg.itt_age, seq, now_ms()),
            conns,
            lanes: Default::default(),
            tsih: cfg.raw.tsih,
            generation: 0,
            recoveries: 0,
            failed_at_ms: 0,
            resumed_from_ms: None,
            replacement_timeout: cfg.replacement_timeout,
            noop_out_interval: cfg.noop_out_interval,
            noop_out_timeout: cfg.noop_out_timeout,
            host_no: u32::MAX,
            push_asked: 0,
        };
        let session = Arc::pin_init(
            pin_init!(Session {
                cfg,
                recipe,
                wq,
                board,
                host_no: AtomicU32::new(u32::MAX),
                state <- new_spinlock_bh!(state, "iscsi_rs::Session::state"),
                nr_lanes,
                tmf_lock <- new_mutex!((), "iscsi_rs::Session::tmf_lock"),
                handoff_lock <- new_mutex!((), "iscsi_rs::Session::handoff_lock"),
                host_ctl <- new_mutex!(
                    HostCtl { handle: None, applied: DeviceState::Running },
                    "iscsi_rs::Session::host_ctl"
                ),
                events <- new_condvar!("iscsi_rs::Session::events"),
                watch_work <- new_work!("iscsi_rs::Session::watch_work"),
            }),
            GFP_KERNEL,
        )?;
        // Made outside the lock (they allocate), then handed to the state.
        let mut made: [Option<Arc<Lane>>; MAX_LANES] = Default::default();
        for (k, slot) in made.iter_mut().enumerate().take(nr_lanes) {
            *slot = Some(Lane::new(session.clone(), k)?);
        }
        session.state.lock().lanes = made;
        Ok(session)
    }

    /// Lane `idx`, unless the session is closed.
    fn lane(&self, idx: usize) -> Option<Arc<Lane>> {
        self.state.lock().lanes.get(idx).and_then(Clone::clone)
    }

    /// Every lane with its current connection, unless the session is closed.
    fn lanes(&self) -> [(Option<Arc<Lane>>, Option<Arc<SessionConn>>); MAX_LANES] {
        let st = self.state.lock();
        core::array::from_fn(|k| (st.lanes[k].clone(), st.conns[k].clone()))
    }

    /// Has lane `idx`'s TX work send what is queued there.
    fn kick_tx(&self, idx: usize) {
        if let Some(l) = self.lane(idx) {
            Lane::kick_tx(l.as_arc_borrow());
        }
    }

    /// Takes over the leading connection's socket callbacks, reads what
    /// already arrived and starts the watchdog.
    pub(crate) fn start(self: &Arc<Self>) -> Result {
        let (lane, conn) = {
            let st = self.state.lock();
            (st.lanes[LEAD].clone(), st.conns[LEAD].clone())
        };
        let (Some(lane), Some(conn)) = (lane, conn) else {
            return Err(EINVAL);
        };
        conn.sock.install_callbacks(lane.clone())?;
        Lane::kick_rx(lane.as_arc_borrow());
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
        (st.e.params, st.tsih)
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

    /// Whether the session computes data digests over pages sent by
    /// reference: it began with DataDigest on, so every device of its host
    /// is configured with stable writes (pages do not change while a write
    /// is in flight).
    pub(crate) fn digests_pages(&self) -> bool {
        self.cfg.params.data_digest == Digest::Crc32c
    }

    /// Submissions whose PDUs another task's send carried (all lanes).
    pub(crate) fn handed_over(&self) -> u64 {
        self.lanes()
            .iter()
            .filter_map(|(l, _)| l.as_ref())
            .map(|l| l.txf.handed_over.load(Ordering::Relaxed))
            .sum()
    }

    /// Sends that stopped at a full send buffer and left the rest to
    /// `write_space` (all lanes).
    pub(crate) fn tx_stalled(&self) -> u64 {
        self.lanes()
            .iter()
            .filter_map(|(l, _)| l.as_ref())
            .map(|l| l.txf.stalled.load(Ordering::Relaxed))
            .sum()
    }

    /// The SCSI host number.
    pub(crate) fn host_no(&self) -> u32 {
        self.host_no.load(Ordering::Relaxed)
    }

    /// The current phase.
    pub(crate) fn phase(&self) -> Phase {
        self.state.lock().e.phase
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

    /// Sends a Logout Request (close the session) on the leading connection
    /// and waits for the response, the connection's end or the timeout.
    /// Returns whether the target confirmed.
    pub(crate) fn logout(&self) -> bool {
        // Commands accepted before the logout go out ahead of it, on every
        // lane (the others first; lane 0 stays held for the request).
        for (lane, _) in self.lanes().iter().skip(1) {
            if let Some(l) = lane {
                if l.hold_tx().send_queued_now().is_none() {
                    return false;
                }
            }
        }
        let Some(lead) = self.lane(LEAD) else {
            return false;
        };
        {
            let Some(held) = lead.hold_tx().send_queued_now() else {
                return false;
            };
            let mut hdr = [0u8; BHS_LEN];
            let conn = {
                let mut st = self.state.lock();
                if st.e.phase != Phase::Running {
                    return false;
                }
                let Some(conn) = st.conns[LEAD].clone() else {
                    return false;
                };
                st.e.phase = Phase::LoggingOut;
                st.e.reconnect_delay_ms = None;
                st.e.logout_lane = LEAD;
                LogoutRequest {
                    immediate: true,
                    reason: LogoutReason::CloseSession,
                    itt: st.e.internal_itt(LOGOUT_LOW).get(),
                    cid: st.e.lane(LEAD).map_or(self.cfg.raw.cid, |l| l.cid),
                    cmd_sn: st.e.seq.next_cmd_sn().get(),
                    exp_stat_sn: st.e.exp_stat_sn(LEAD),
                }
                .emit(&mut hdr);
                conn
            };
            if let Err(e) = conn.send_pdu(&hdr, &[], false) {
                drop(held);
                self.fail_on(
                    Some(LEAD),
                    reason::SOCKET,
                    format_args!("sending Logout failed: {e:?}"),
                );
                return false;
            }
        }
        // The same deadline as a logout the target asked for.
        let mut left = msecs_to_jiffies(LOGOUT_RESPONSE_TIMEOUT_MS as u32);
        let mut st = self.state.lock();
        loop {
            if let Some(r) = st.e.logout_response {
                return r == 0;
            }
            if st.e.phase != Phase::LoggingOut {
                return false;
            }
            match self.events.wait_interruptible_timeout(&mut st, left) {
                CondVarTimeoutResult::Woken { jiffies } => left = jiffies,
                CondVarTimeoutResult::Timeout | CondVarTimeoutResult::Signal { .. } => {
                    return st.e.logout_response == Some(0);
                }
            }
        }
    }

    /// Final teardown: no more callbacks, the socket shut, every command handed
    /// back, the relogin request withdrawn, the watchdog stopped and the host
    /// reference dropped. Returns the shut connections: their sockets' files
    /// are released when the last reference goes (see [`ShutConns::linger`]).
    pub(crate) fn close(&self) -> ShutConns {
        let (conns, lanes) = {
            let mut st = self.state.lock();
            st.e.phase = Phase::Closed;
            self.events.notify_all();
            (
                core::mem::take(&mut st.conns),
                core::mem::take(&mut st.lanes),
            )
        };
        shut_all(&conns);
        self.complete_all(HostByte::NoConnect);
        self.board.withdraw(self.host_no());
        self.host_ctl.lock().handle = None;
        // The lanes' works still queued hold their own references; nothing
        // of the lanes runs on a closed session.
        drop(lanes);
        ShutConns(conns)
    }

    /// Marks the session as going away before its host is removed: a failure
    /// from now on does not start a recovery, and I/O held for one fails.
    pub(crate) fn begin_removal(&self) {
        {
            let mut st = self.state.lock();
            if matches!(st.e.phase, Phase::Recovering) {
                st.e.phase = Phase::Offline;
                self.events.notify_all();
            }
            st.replacement_timeout = 0;
        }
        self.board.withdraw(self.host_no());
        self.sync_host();
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
        let p = &st.e.params;
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
        i.state = match st.e.phase {
            Phase::Running => uapi::state::RUNNING,
            Phase::LoggingOut => uapi::state::LOGGING_OUT,
            Phase::Recovering => uapi::state::RECOVERING,
            Phase::Offline | Phase::Closed => uapi::state::FAILED,
        };
        i.cmd_sn = st.e.seq.next_cmd_sn().get();
        i.exp_cmd_sn = st.e.seq.window().exp_cmd_sn().get();
        i.max_cmd_sn = st.e.seq.window().max_cmd_sn().get();
        i.exp_stat_sn = st.e.exp_stat_sn(LEAD);
        i.in_flight = st.e.tasks.in_flight();
        i.connections = st.e.lanes_up() as u16;
        i.lanes = self.nr_lanes as u16;
        i
    }
}

impl WorkItem<2> for Session {
    type Pointer = Arc<Session>;

    fn run(this: Arc<Session>) {
        Session::run_watch(this);
    }
}
