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
//! ITT = session age (16 bits, from the handoff) << 16 | per-tag generation
//! (4 bits) << 12 | blk-mq tag (< 2048). PDUs from an older connection never
//! match a task, and a tag reused right after an abort gets a different ITT, so
//! a late PDU for the aborted task cannot land in its successor (it fails the
//! connection instead). The per-task `seq` (never on the wire) tells TX jobs
//! apart when a tag is reused.

use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use kernel::prelude::*;
use kernel::sync::{new_condvar, new_mutex, Arc, ArcBorrow, CondVar, CondVarTimeoutResult, Mutex};
use kernel::time::msecs_to_jiffies;
use kernel::workqueue::{impl_has_work, new_work, Work, WorkItem};

use crate::conn::{Conn, Dest, PduSink, RxState, RxStop};
use crate::proto::bhs::{BHS_LEN, RESERVED_TAG};
use crate::proto::framing::FramingSettings;
use crate::proto::negotiate::Digest;
use crate::proto::pdu::{
    AsyncEvent, DataIn, DataOut, LogoutReason, LogoutRequest, NopOut, Pdu, PduError, ScsiCommand,
    ScsiResponse, ScsiResponseData, TaskAttr, TaskMgmtRequest, TmfFunction, TmfResponse,
    RESPONSE_COMPLETED,
};
use crate::proto::serial::{CmdWindow, Sn};
use crate::proto::uapi::{self, SessionConfig, SessionInfo};
use crate::sys::scsi::{Busy, Cmd, DataDir, EhAbort, EhCmd, EhStatus, HostByte};
use crate::sys::socket::{SocketEvents, TcpSocket};
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
/// Low 16 bits of a Task Management request's ITT.
const TMF_TAG: u32 = 0xfffe;
/// How long an EH handler waits for a TMF Response.
const TMF_TIMEOUT_MS: u32 = 10_000;
/// SAM status CHECK CONDITION.
const CHECK_CONDITION: u8 = 0x02;

/// Where the session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Full feature phase.
    Running,
    /// Logout Request sent.
    LoggingOut,
    /// The connection failed; no recovery yet (ERL 0 without re-login).
    Failed,
    /// Torn down.
    Closed,
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
}

/// FIFO of TX jobs with room fixed at creation: bursts of one task must go out
/// in R2T order (DataSequenceInOrder).
struct JobRing {
    slots: KVec<Option<TxJob>>,
    head: usize,
    len: usize,
}

impl JobRing {
    fn new(cap: usize) -> Result<Self> {
        Ok(JobRing {
            slots: KVec::from_elem(None, cap.max(1), GFP_KERNEL)?,
            head: 0,
            len: 0,
        })
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
    /// CmdSN of the next non-immediate command.
    cmd_sn: Sn,
    window: CmdWindow,
    exp_stat_sn: Sn,
    /// Indexed by blk-mq tag.
    tasks: KVec<Option<Task>>,
    /// Per tag: the ITT generation of its latest command.
    gens: KVec<u8>,
    in_flight: u32,
    next_seq: u64,
    jobs: JobRing,
    /// Response code of the Logout Response, once received.
    logout_response: Option<u8>,
    /// ITT of the last TMF sent and, once received, its response.
    tmf: Option<(u32, Option<TmfResponse>)>,
    /// ITTs of tasks recently handed back by an abort or reset: a target may
    /// still send PDUs for them, which are dropped rather than fatal.
    aborted: [u32; 16],
    aborted_next: usize,
}

impl State {
    fn ack_stat_sn(&mut self, stat_sn: u32) {
        // ERL 0: a gap is not recovered, only skipped; an older value is ignored.
        let s = Sn(stat_sn);
        if s.ge(self.exp_stat_sn) {
            self.exp_stat_sn = s.next();
        }
    }

    fn window(&mut self, exp_cmd_sn: u32, max_cmd_sn: u32) {
        // RFC 7143 §4.2.2.1: an invalid pair is ignored, not fatal.
        let _ = self.window.update(Sn(exp_cmd_sn), Sn(max_cmd_sn));
    }

    /// The task with ITT `itt` (tag in the low 16 bits) if it is in flight.
    fn task_by_itt(&mut self, itt: u32, age: u16) -> Option<&mut Task> {
        if itt >> 16 != u32::from(age) {
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
        let n = self.aborted.len();
        if let Some(slot) = self.aborted.get_mut(self.aborted_next % n) {
            *slot = itt;
        }
        self.aborted_next = self.aborted_next.wrapping_add(1);
    }

    /// A PDU for no task in flight: dropped if it belongs to an aborted task,
    /// else a protocol violation.
    fn unknown(&self, what: &'static str, itt: u32) -> Result<(), Violation> {
        if itt != RESERVED_TAG && self.aborted.contains(&itt) {
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

/// A session and its one connection.
#[pin_data]
pub(crate) struct Session {
    cfg: SessionConfig,
    conn: Conn<Session>,
    wq: Arc<OwnedQueue>,
    /// SCSI host number once the host is added (u32::MAX before).
    host_no: AtomicU32,
    /// Protocol state and every in-flight command (and so their buffers). Lock
    /// order: `tx` or `rx` first, then `state`; never held across a socket send.
    #[pin]
    state: Mutex<State>,
    /// Transmit side: holding it serialises PDUs on the socket; the vector is the
    /// bounce buffer data is copied into before sending.
    #[pin]
    tx: Mutex<KVVec<u8>>,
    /// Receive side (framer and buffers); only the RX work takes it.
    #[pin]
    rx: Mutex<RxState<DataInDest>>,
    /// Serialises Task Management requests: one in flight per session. Taken
    /// before `tx` and `state`.
    #[pin]
    tmf_lock: Mutex<()>,
    /// Notified, with `state` held, when a Logout or TMF Response arrives or the
    /// connection fails.
    #[pin]
    events: CondVar,
    #[pin]
    rx_work: Work<Session, 0>,
    #[pin]
    tx_work: Work<Session, 1>,
}

impl_has_work! {
    impl HasWork<Self, 0> for Session { self.rx_work }
    impl HasWork<Self, 1> for Session { self.tx_work }
}

/// Where a Data-In's payload goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataInDest {
    tag: u16,
    seq: u64,
    base: u32,
}

impl Session {
    /// A session over `sock` with the validated handoff `cfg`; not started.
    pub(crate) fn new(
        cfg: SessionConfig,
        sock: TcpSocket<Session>,
        wq: Arc<OwnedQueue>,
    ) -> Result<Arc<Self>> {
        let p = cfg.params;
        let depth = cfg.queue_depth as usize;
        let mut tasks = KVec::with_capacity(depth, GFP_KERNEL)?;
        for _ in 0..depth {
            tasks.push(None, GFP_KERNEL)?;
        }
        // Each task may have MaxOutstandingR2T bursts queued; plus pings.
        let r2t = usize::from(p.max_outstanding_r2t).min(16);
        let jobs = JobRing::new(depth * r2t + 64)?;
        let tx_len = p.max_xmit_data_segment_len.min(MAX_TX_SEGMENT) as usize;
        let txbuf = KVVec::from_elem(0u8, tx_len, GFP_KERNEL)?;
        let rx = RxState::new(FramingSettings {
            header_digest: p.header_digest == Digest::Crc32c,
            data_digest: p.data_digest == Digest::Crc32c,
            max_recv_data_segment_len: p.max_recv_data_segment_len,
            target_opcodes_only: true,
        })?;
        let conn = Conn::new(
            sock,
            p.header_digest == Digest::Crc32c,
            p.data_digest == Digest::Crc32c,
        );
        let state = State {
            phase: Phase::Running,
            cmd_sn: cfg.cmd_sn,
            window: cfg.window,
            exp_stat_sn: cfg.exp_stat_sn,
            tasks,
            gens: KVec::from_elem(0u8, depth, GFP_KERNEL)?,
            in_flight: 0,
            next_seq: 0,
            jobs,
            logout_response: None,
            tmf: None,
            aborted: [RESERVED_TAG; 16],
            aborted_next: 0,
        };
        Arc::pin_init(
            pin_init!(Session {
                cfg,
                conn,
                wq,
                host_no: AtomicU32::new(u32::MAX),
                state <- new_mutex!(state, "iscsi_rs::Session::state"),
                tx <- new_mutex!(txbuf, "iscsi_rs::Session::tx"),
                rx <- new_mutex!(rx, "iscsi_rs::Session::rx"),
                tmf_lock <- new_mutex!((), "iscsi_rs::Session::tmf_lock"),
                events <- new_condvar!("iscsi_rs::Session::events"),
                rx_work <- new_work!("iscsi_rs::Session::rx_work"),
                tx_work <- new_work!("iscsi_rs::Session::tx_work"),
            }),
            GFP_KERNEL,
        )
    }

    /// Takes over the socket's callbacks and reads what already arrived.
    pub(crate) fn start(self: &Arc<Self>) -> Result {
        self.conn.sock.install_callbacks(self.clone())?;
        Self::kick_rx(self.as_arc_borrow());
        Ok(())
    }

    /// The validated handoff.
    pub(crate) fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    /// Records the SCSI host number (for logs, sysfs and LIST).
    pub(crate) fn set_host_no(&self, n: u32) {
        self.host_no.store(n, Ordering::Relaxed);
    }

    /// The SCSI host number.
    pub(crate) fn host_no(&self) -> u32 {
        self.host_no.load(Ordering::Relaxed)
    }

    /// The current phase.
    pub(crate) fn phase(&self) -> Phase {
        self.state.lock().phase
    }

    fn kick_rx(this: ArcBorrow<'_, Self>) {
        // Already queued is fine: the queued run will see the new bytes.
        let _ = this.wq.queue().enqueue::<Arc<Session>, 0>(Arc::from(this));
    }

    fn kick_tx(this: ArcBorrow<'_, Self>) {
        let _ = this.wq.queue().enqueue::<Arc<Session>, 1>(Arc::from(this));
    }

    /// The ITT for low bits `low` (generation << 12 | tag, or an internal tag).
    fn itt(&self, low: u32) -> u32 {
        (u32::from(self.cfg.itt_age) << 16) | (low & 0xffff)
    }

    /// Fails the connection (ERL 0): logs why, shuts the socket down and hands
    /// every in-flight command back for retry. Idempotent.
    pub(crate) fn fail(&self, why: fmt::Arguments<'_>) {
        {
            let mut st = self.state.lock();
            match st.phase {
                Phase::Failed | Phase::Closed => return,
                // The target closes the connection after a Logout Response.
                Phase::LoggingOut if st.logout_response.is_some() => {}
                _ => pr_err!("host{}: connection failed: {}\n", self.host_no(), why),
            }
            st.phase = Phase::Failed;
            self.events.notify_all();
        }
        self.conn.sock.shutdown();
        self.complete_all(HostByte::TransportDisrupted);
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

    /// `queuecommand`: builds and sends the SCSI Command PDU with its immediate
    /// and unsolicited data. May block (on the socket).
    pub(crate) fn queue_command(
        this: ArcBorrow<'_, Self>,
        mut cmd: Cmd,
    ) -> core::result::Result<(), (Cmd, Busy)> {
        let p = this.cfg.params;
        let dir = cmd.direction();
        let mut tx = this.tx.lock();
        let mut st = this.state.lock();
        if st.phase != Phase::Running {
            drop(st);
            drop(tx);
            cmd.set_result(HostByte::NoConnect, 0);
            cmd.complete();
            return Ok(());
        }
        if st.window.credits(st.cmd_sn) == 0 {
            return Err((cmd, Busy::Target));
        }
        let tag = cmd.unique_tag() & TAG_MASK;
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
        let itt = this.itt((gen << 12) | tag);
        let cmd_sn = st.cmd_sn;
        st.cmd_sn = cmd_sn.next();
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
            exp_stat_sn: st.exp_stat_sn.get(),
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
        drop(st);
        let more = unsol_end > imm;
        let data = tx.get(..imm as usize).unwrap_or(&[]);
        let mut sent = this.conn.send_pdu(&hdr, data, more);
        if sent.is_ok() && more {
            sent = this.send_burst(&mut tx, tag as u16, seq, RESERVED_TAG, imm, unsol_end - imm);
        }
        drop(tx);
        if let Err(e) = sent {
            this.fail(format_args!("send failed: {e:?}"));
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
        let max = self
            .cfg
            .params
            .max_xmit_data_segment_len
            .min(tx.len() as u32)
            .max(1);
        let mut done = 0u32;
        let mut data_sn = 0u32;
        while done < len {
            let n = (len - done).min(max);
            let last = done + n == len;
            let mut hdr = [0u8; BHS_LEN];
            {
                let mut st = self.state.lock();
                let exp_stat_sn = st.exp_stat_sn.get();
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
            }
            let data = tx.get(..n as usize).unwrap_or(&[]);
            self.conn.send_pdu(&hdr, data, !last)?;
            done += n;
            data_sn += 1;
        }
        Ok(())
    }

    fn run_tx(this: Arc<Self>) {
        let mut tx = this.tx.lock();
        loop {
            let (job, exp_stat_sn, cmd_sn) = {
                let mut st = this.state.lock();
                if !matches!(st.phase, Phase::Running | Phase::LoggingOut) {
                    return;
                }
                match st.jobs.pop() {
                    Some(j) => (j, st.exp_stat_sn.get(), st.cmd_sn.get()),
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
                TxJob::NopOut { ttt, lun } => {
                    let mut hdr = [0u8; BHS_LEN];
                    // An answer is immediate: CmdSN is carried, not advanced.
                    NopOut {
                        immediate: true,
                        lun,
                        itt: RESERVED_TAG,
                        ttt,
                        cmd_sn,
                        exp_stat_sn,
                        data_segment_len: 0,
                    }
                    .emit(&mut hdr);
                    this.conn.send_pdu(&hdr, &[], false)
                }
            };
            if let Err(e) = sent {
                drop(tx);
                this.fail(format_args!("send failed: {e:?}"));
                return;
            }
        }
    }

    fn run_rx(this: Arc<Self>) {
        let mut rx = this.rx.lock();
        if matches!(this.state.lock().phase, Phase::Failed | Phase::Closed) {
            return;
        }
        let mut sink = Receiver {
            s: &this,
            kick_tx: false,
        };
        let stop = this.conn.receive(&mut rx, &mut sink, RX_BUDGET);
        let kick = sink.kick_tx;
        drop(rx);
        if kick {
            Self::kick_tx(this.as_arc_borrow());
        }
        match stop {
            RxStop::Drained => {}
            RxStop::Budget => Self::kick_rx(this.as_arc_borrow()),
            RxStop::Closed => this.fail(format_args!("connection closed by the target")),
            RxStop::Socket(e) => this.fail(format_args!("receive failed: {e:?}")),
            RxStop::Framing(e) => this.fail(format_args!("framing violation: {e:?}")),
            RxStop::Sink(v) => this.fail(format_args!("protocol violation: {v}")),
        }
    }

    /// Sends a Logout Request (close the session) and waits for the response, the
    /// connection's end or the timeout. Returns whether the target confirmed.
    pub(crate) fn logout(&self) -> bool {
        {
            let tx = self.tx.lock();
            let mut hdr = [0u8; BHS_LEN];
            {
                let mut st = self.state.lock();
                if st.phase != Phase::Running {
                    return false;
                }
                st.phase = Phase::LoggingOut;
                LogoutRequest {
                    immediate: true,
                    reason: LogoutReason::CloseSession,
                    itt: self.itt(LOGOUT_TAG),
                    cid: self.cfg.raw.cid,
                    cmd_sn: st.cmd_sn.get(),
                    exp_stat_sn: st.exp_stat_sn.get(),
                }
                .emit(&mut hdr);
            }
            if let Err(e) = self.conn.send_pdu(&hdr, &[], false) {
                drop(tx);
                self.fail(format_args!("sending Logout failed: {e:?}"));
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
    /// back. The socket's file is released when the last reference goes.
    pub(crate) fn close(&self) {
        {
            let mut st = self.state.lock();
            st.phase = Phase::Closed;
            self.events.notify_all();
        }
        self.conn.sock.restore_callbacks();
        self.conn.sock.shutdown();
        self.complete_all(HostByte::NoConnect);
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
        let itt = self.itt(TMF_TAG);
        {
            let tx = self.tx.lock();
            let mut hdr = [0u8; BHS_LEN];
            {
                let mut st = self.state.lock();
                if st.phase != Phase::Running {
                    return None;
                }
                st.tmf = Some((itt, None));
                // Immediate: CmdSN is carried, not advanced.
                TaskMgmtRequest {
                    immediate: true,
                    function,
                    lun,
                    itt,
                    referenced_task_tag: ref_itt,
                    cmd_sn: st.cmd_sn.get(),
                    exp_stat_sn: st.exp_stat_sn.get(),
                    ref_cmd_sn,
                    exp_data_sn: 0,
                }
                .emit(&mut hdr);
            }
            if let Err(e) = self.conn.send_pdu(&hdr, &[], false) {
                drop(tx);
                self.fail(format_args!("sending a TMF failed: {e:?}"));
                return None;
            }
        }
        let mut left = msecs_to_jiffies(TMF_TIMEOUT_MS);
        let mut st = self.state.lock();
        loop {
            if let Some((i, Some(r))) = st.tmf {
                if i == itt {
                    st.tmf = None;
                    return Some(r);
                }
            }
            if st.phase != Phase::Running {
                return None;
            }
            match self.events.wait_interruptible_timeout(&mut st, left) {
                CondVarTimeoutResult::Woken { jiffies } => left = jiffies,
                CondVarTimeoutResult::Timeout | CondVarTimeoutResult::Signal { .. } => {
                    pr_warn!(
                        "host{}: no answer to {:?} in time\n",
                        self.host_no(),
                        function
                    );
                    return None;
                }
            }
        }
    }

    /// `eh_abort_handler`: ABORT TASK. The receiver handles PDUs in order and the
    /// target answers a TMF only after any response it sent for the task, so once
    /// the answer is in, the task's table entry is final and may be handed back.
    pub(crate) fn eh_abort(&self, cmd: &EhCmd) -> EhAbort {
        let tag = tag_of(cmd.unique_tag());
        let (itt, lun, cmd_sn) = {
            let st = self.state.lock();
            match st.tasks.get(usize::from(tag)) {
                Some(Some(t)) if cmd.is(&t.cmd) => (t.itt, t.lun, t.cmd_sn),
                // Already completed: the midlayer owns it.
                _ => return EhAbort::Success(None),
            }
        };
        match self.tmf(TmfFunction::AbortTask, lun, itt, cmd_sn) {
            Some(TmfResponse::Complete | TmfResponse::TaskDoesNotExist) => {
                let mut st = self.state.lock();
                let ours = matches!(
                    st.tasks.get(usize::from(tag)),
                    Some(Some(t)) if t.itt == itt && cmd.is(&t.cmd)
                );
                st.remember_aborted(itt);
                if ours {
                    EhAbort::Success(st.take(tag).map(|t| t.cmd))
                } else {
                    EhAbort::Success(None)
                }
            }
            r => {
                pr_warn!(
                    "host{}: ABORT TASK of ITT {:#x}: {:?}\n",
                    self.host_no(),
                    itt,
                    r
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

    /// `eh_target_reset_handler`: TARGET WARM RESET, else a connection drop,
    /// which hands every command back (ERL 0). Either way the midlayer then owns
    /// them all.
    pub(crate) fn eh_target_reset(&self) -> EhStatus {
        if let Some(TmfResponse::Complete) =
            self.tmf(TmfFunction::TargetWarmReset, 0, RESERVED_TAG, 0)
        {
            self.reset_tasks(|_| true);
            return EhStatus::Success;
        }
        self.fail(format_args!("SCSI error handling reset the target"));
        EhStatus::Success
    }

    /// A LIST entry.
    pub(crate) fn info(&self) -> SessionInfo {
        let c = &self.cfg;
        let mut i = SessionInfo::zeroed();
        i.host_no = self.host_no();
        i.header_digest = c.raw.header_digest;
        i.data_digest = c.raw.data_digest;
        i.tsih = c.raw.tsih;
        i.cid = c.raw.cid;
        i.isid = c.raw.isid;
        i.queue_depth = c.queue_depth;
        i.max_recv_data_segment_len = c.params.max_recv_data_segment_len;
        i.max_xmit_data_segment_len = c.params.max_xmit_data_segment_len;
        i.first_burst_len = c.params.first_burst_len;
        i.max_burst_len = c.params.max_burst_len;
        i.initial_r2t = u8::from(c.params.initial_r2t);
        i.immediate_data = u8::from(c.params.immediate_data);
        i.target_name = c.raw.target_name;
        i.initiator_name = c.raw.initiator_name;
        i.portal = c.raw.portal;
        let st = self.state.lock();
        i.state = match st.phase {
            Phase::Running => uapi::state::RUNNING,
            Phase::LoggingOut => uapi::state::LOGGING_OUT,
            Phase::Failed | Phase::Closed => uapi::state::FAILED,
        };
        i.cmd_sn = st.cmd_sn.get();
        i.exp_cmd_sn = st.window.exp_cmd_sn().get();
        i.max_cmd_sn = st.window.max_cmd_sn().get();
        i.exp_stat_sn = st.exp_stat_sn.get();
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
    fn age(&self) -> u16 {
        self.s.cfg.itt_age
    }

    fn data_in_header(&mut self, d: &DataIn) -> Result<Dest<DataInDest>, Violation> {
        let age = self.age();
        let mut st = self.s.state.lock();
        let Some(t) = st.task_by_itt(d.itt, age) else {
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
        let age = self.age();
        let cmd = {
            let mut st = self.s.state.lock();
            st.window(d.exp_cmd_sn, d.max_cmd_sn);
            let Some(t) = st.task_by_itt(d.itt, age) else {
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
        Ok(())
    }

    fn response_end(&mut self, r: &ScsiResponse, data: &[u8]) -> Result<(), Violation> {
        let sense = ScsiResponseData::parse(data)
            .map_err(Violation::Malformed)?
            .sense;
        let age = self.age();
        let cmd = {
            let mut st = self.s.state.lock();
            st.ack_stat_sn(r.stat_sn);
            st.window(r.exp_cmd_sn, r.max_cmd_sn);
            if st.task_by_itt(r.itt, age).is_none() {
                return st.unknown("SCSI Response", r.itt);
            }
            let Some(task) = st.take(tag_of(r.itt)) else {
                return Ok(());
            };
            finish(
                task,
                r.response,
                r.status,
                r.underflow,
                r.residual_count,
                sense,
            )
        };
        cmd.complete();
        Ok(())
    }

    fn r2t_end(&mut self, r: &crate::proto::pdu::R2t) -> Result<(), Violation> {
        let p = self.s.cfg.params;
        let age = self.age();
        let mut st = self.s.state.lock();
        st.window(r.exp_cmd_sn, r.max_cmd_sn);
        let Some(t) = st.task_by_itt(r.itt, age) else {
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
        // Gone only if the connection failed meanwhile: drop the bytes.
        let Some(t) = st.task(to.tag, to.seq) else {
            return Ok(());
        };
        let at = to.base.saturating_add(offset);
        // The header check bounded the whole segment by the buffer already.
        t.cmd
            .copy_from_buf(at, bytes)
            .map_err(|_| Violation::DataInBeyond {
                itt: t.itt,
                end: u64::from(at) + bytes.len() as u64,
                len: t.len,
            })
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
                    // An answer to a ping of ours (none sent yet) carries a StatSN.
                    st.ack_stat_sn(n.stat_sn);
                }
                if n.wants_reply() {
                    if !st.jobs.push(TxJob::NopOut {
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
                st.ack_stat_sn(l.stat_sn);
                st.window(l.exp_cmd_sn, l.max_cmd_sn);
                if st.phase != Phase::LoggingOut {
                    return Err(Violation::Unexpected("Logout Response"));
                }
                st.logout_response = Some(l.response);
                self.s.events.notify_all();
                Ok(())
            }
            Pdu::AsyncMessage(a) => {
                {
                    let mut st = self.s.state.lock();
                    st.ack_stat_sn(a.stat_sn);
                    st.window(a.exp_cmd_sn, a.max_cmd_sn);
                }
                match a.event {
                    AsyncEvent::DropConnection | AsyncEvent::DropAllConnections => Err(
                        Violation::Unexpected("connection drop requested by the target"),
                    ),
                    ev => {
                        pr_info!(
                            "host{}: async event {:?} from the target\n",
                            self.s.host_no(),
                            ev
                        );
                        Ok(())
                    }
                }
            }
            Pdu::Reject(r) => {
                let mut st = self.s.state.lock();
                st.ack_stat_sn(r.stat_sn);
                st.window(r.exp_cmd_sn, r.max_cmd_sn);
                pr_warn!(
                    "host{}: target rejected a PDU: {:?}\n",
                    self.s.host_no(),
                    r.reason
                );
                Ok(())
            }
            Pdu::TaskMgmtResponse(t) => {
                let mut st = self.s.state.lock();
                st.ack_stat_sn(t.stat_sn);
                st.window(t.exp_cmd_sn, t.max_cmd_sn);
                match st.tmf {
                    Some((itt, None)) if itt == t.itt => {
                        st.tmf = Some((itt, Some(t.response)));
                        self.s.events.notify_all();
                    }
                    // The answer to a TMF we stopped waiting for.
                    _ => pr_warn!("host{}: late TMF response ignored\n", self.s.host_no()),
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
