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
//!
//! The protocol rules live in `proto::session` (host-tested); this module and
//! its children apply them: `tx` (submission), `rx` (received PDUs), `watch`
//! (timers), `eh` (task management), `link` (connection loss and HANDOFF),
//! `state` (the state's methods). The types stay here so every child sees
//! their fields.
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
use crate::proto::session::logout::{relogin_delay_ms, LogoutWatch, LOGOUT_RESPONSE_TIMEOUT_MS};
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

mod eh;
mod link;
mod rx;
mod state;
mod tx;
mod watch;

use state::{finish, nop_out, r2t_jobs, tag_of};

/// Largest data segment we build in one PDU, whatever the target accepts: the
/// size of the transmit bounce buffer.
const MAX_TX_SEGMENT: u32 = 256 * 1024;
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

/// FIFO of TX jobs with room fixed at creation (a relogin that negotiates
/// more MaxOutstandingR2T gets a bigger one): bursts of one task must go out
/// in R2T order (DataSequenceInOrder).
struct JobRing {
    /// kvmalloc'ed: a deep queue with many R2Ts outstanding needs megabytes.
    slots: KVVec<Option<TxJob>>,
    head: usize,
    len: usize,
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
        // The same deadline as a logout the target asked for.
        let mut left = msecs_to_jiffies(LOGOUT_RESPONSE_TIMEOUT_MS as u32);
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
