//! The receive side: the RX work reading the socket, and the PDU sink that
//! hands each target PDU to the engine (`proto::session::rx`) and applies
//! its outcome: Data-In bytes into the command's pages, completions, wakeups,
//! transmit kicks, log lines, a reconnect the target asked for. Commands a
//! pass finishes are completed at its end, in one batch, outside the session
//! state lock.

use kernel::sync::lock::Guard;

use super::*;
use crate::sys::lock::SpinLockBhBackend;

impl Lane {
    /// `sk_data_ready`: receives now, in the callback's context (softirq, or
    /// a task releasing the socket lock). What cannot be done here (failing
    /// the connection, which sleeps; a pass over budget) goes to the RX work.
    pub(super) fn rx_ready(this: ArcBorrow<'_, Self>, reading: &mut Reading<'_>) {
        let conn = {
            let st = this.s.state.lock();
            if !matches!(st.e.phase, Phase::Running | Phase::LoggingOut) {
                return;
            }
            this.conn(&st)
        };
        // An old connection's socket whose callbacks are being restored.
        let Some(conn) = conn.filter(|c| c.sock.is_read_by(reading)) else {
            return;
        };
        let this: Arc<Self> = this.into();
        let (stop, kick) = Self::rx_pass(&this, &conn, reading, true);
        if kick {
            Self::kick_tx(this.as_arc_borrow());
        }
        if !matches!(stop, RxStop::Drained) {
            Self::kick_rx(this.as_arc_borrow());
        }
    }

    /// The RX work: a receive pass in process context (what a callback left:
    /// a pass over budget, a failure to act on; or the connection's start and
    /// end, which `sk_state_change` signals).
    pub(super) fn run_rx(this: Arc<Self>) {
        let conn = {
            let st = this.s.state.lock();
            if !matches!(st.e.phase, Phase::Running | Phase::LoggingOut) {
                return;
            }
            this.conn(&st)
        };
        let Some(conn) = conn else { return };
        let (stop, kick) = conn
            .sock
            .with_reading(|reading| Self::rx_pass(&this, &conn, reading, false));
        if kick {
            Self::kick_tx(this.as_arc_borrow());
        }
        let (s, on) = (&this.s, Some(this.idx));
        match stop {
            RxStop::Drained => {}
            RxStop::Budget => Self::kick_rx(this.as_arc_borrow()),
            RxStop::Closed => s.fail_on(
                on,
                reason::CLOSED,
                format_args!("connection closed by the target"),
            ),
            RxStop::Socket(e) => {
                s.fail_on(on, reason::SOCKET, format_args!("receive failed: {e:?}"))
            }
            RxStop::Framing(e) => s.fail_on(
                on,
                reason::PROTOCOL,
                format_args!("framing violation: {e:?}"),
            ),
            RxStop::Sink(RxFault::Reconnect(r)) => {
                s.fail_on(on, reason::TARGET_REQUEST, format_args!("{}", r.text()))
            }
            RxStop::Sink(RxFault::Violation(v)) => s.fail_on(
                on,
                reason::PROTOCOL,
                format_args!("protocol violation: {v}"),
            ),
        }
    }

    /// One receive pass over `conn`, whose socket lock `reading` is; the
    /// commands it finishes are completed at its end. In a callback a failure
    /// is kept for the RX work, which gets it from the next pass (and no
    /// more is read meanwhile). Returns why the pass stopped and whether it
    /// queued transmit jobs.
    fn rx_pass(
        this: &Arc<Self>,
        conn: &SessionConn,
        reading: &mut Reading<'_>,
        in_callback: bool,
    ) -> (RxStop<RxFault>, bool) {
        let mut guard = conn.rx.lock();
        let side = &mut *guard;
        if let Some(stop) = side.pending.take() {
            if in_callback {
                side.pending = Some(stop);
                return (RxStop::Budget, false);
            }
            return (stop, false);
        }
        let mut sink = Receiver {
            s: &this.s,
            lane: this.idx,
            st: None,
            kick_tx: false,
            done: &mut side.done,
            resumed: None,
        };
        let stop = conn.receive(reading, &mut side.framing, &mut sink, RX_BUDGET);
        let kick = sink.kick_tx;
        let resumed = sink.resumed;
        // Gives up the state lock before completing.
        drop(sink);
        // Finished in the receiver's context, never in the block softirq
        // raised from process context: no ksoftirqd wakeup per command.
        side.done.complete_all();
        if let Some(t) = resumed {
            pr_info!(
                "host{}: I/O flowing again {} ms after the connection failed\n",
                this.s.host_no(),
                now_ms() - t
            );
        }
        let failed = !matches!(stop, RxStop::Drained | RxStop::Budget);
        if in_callback && failed {
            side.pending = Some(stop);
            return (RxStop::Budget, kick);
        }
        (stop, kick)
    }
}

/// Commands a receive pass finished, completed once it is over (outside the
/// socket lock, in one batch): a slot per tag, so holding them never
/// allocates.
pub(super) struct Finished {
    cmds: KVec<Option<Cmd>>,
    n: usize,
}

impl Finished {
    /// Room for a queue of `depth` commands.
    pub(super) fn new(depth: usize) -> Result<Self> {
        let mut cmds = KVec::with_capacity(depth, GFP_KERNEL)?;
        for _ in 0..depth {
            cmds.push(None, GFP_KERNEL)?;
        }
        Ok(Finished { cmds, n: 0 })
    }

    fn push(&mut self, cmd: Cmd) {
        match self.cmds.get_mut(self.n) {
            Some(slot) => {
                *slot = Some(cmd);
                self.n += 1;
            }
            // More finished than the queue holds cannot happen (each is a
            // distinct tag); complete it now rather than lose it.
            None => cmd.complete_direct(),
        }
    }

    /// Completes what the pass finished, in order.
    pub(super) fn complete_all(&mut self) {
        for slot in self.cmds.iter_mut().take(self.n) {
            if let Some(cmd) = slot.take() {
                cmd.complete_direct();
            }
        }
        self.n = 0;
    }
}

/// The RX work's view of the session as a [`PduSink`].
struct Receiver<'a> {
    s: &'a Arc<Session>,
    /// The lane whose connection this pass reads.
    lane: usize,
    /// The state lock, taken at the first PDU event of an skb piece and held
    /// until the piece is consumed (`piece_done`): one acquisition for the
    /// several PDUs a piece carries, not three per PDU. A piece is at most a
    /// few tens of KiB, so `queuecommand` on another CPU waits no longer
    /// than that many bytes take to place.
    st: Option<Guard<'a, State, SpinLockBhBackend>>,
    /// A TX job was queued during this pass.
    kick_tx: bool,
    /// Commands finished during this pass, completed after it.
    done: &'a mut Finished,
    /// The first completion after a reconnect: when the connection had failed.
    resumed: Option<i64>,
}

impl<'a> Receiver<'a> {
    /// The session state, locked (see `st`).
    fn state(&mut self) -> &mut Guard<'a, State, SpinLockBhBackend> {
        let s = self.s;
        self.st.get_or_insert_with(|| s.state.lock())
    }

    /// Applies what the engine decided for one PDU.
    fn apply(&mut self, out: RxOutcome<'_, Cmd>, resumed: Option<i64>) {
        let host_no = self.s.host_no();
        if out.wake {
            self.s.events.notify_all();
        }
        self.kick_tx |= out.kick_tx;
        match out.note {
            None => {}
            Some(Note::Rejected {
                opcode,
                itt,
                reason,
            }) => pr_warn!(
                "host{}: target rejected a {:?} (ITT {:#x}): {:?}\n",
                host_no,
                opcode,
                itt,
                reason
            ),
            Some(Note::LateTmf { itt }) => pr_warn!(
                "host{}: late TMF response for ITT {:#x} ignored\n",
                host_no,
                itt
            ),
            Some(Note::TargetAsksLogout) => pr_info!(
                "host{}: the target requests a logout; logging out to reconnect\n",
                host_no
            ),
            Some(Note::ScsiEvent {
                lun,
                key,
                asc,
                ascq,
            }) => pr_info!(
                "host{}: SCSI async event for LUN {:#x}: sense key {:#x} ASC/ASCQ {:#04x}/{:#04x}\n",
                host_no,
                lun,
                key,
                asc,
                ascq
            ),
            Some(Note::AsyncEvent(ev)) => {
                pr_info!("host{}: async event {:?} from the target\n", host_no, ev)
            }
        }
        if let Some(c) = out.complete {
            self.done.push(apply(c));
            self.resumed = self.resumed.or(resumed);
        }
    }
}

impl PduSink for Receiver<'_> {
    type Direct = DataInDest;
    type Error = RxFault;

    fn header(&mut self, bhs: &[u8; BHS_LEN], _data_len: u32) -> Result<Dest<DataInDest>, RxFault> {
        // Only a Data-In's payload is placed; everything else is parsed once,
        // at its end.
        let is_data_in = Bhs::new_checked(&bhs[..]).is_ok_and(|b| b.opcode() == Opcode::DataIn);
        if !is_data_in {
            return Ok(Dest::Scratch);
        }
        let Pdu::DataIn(d) = Pdu::parse(bhs).map_err(SessionError::Malformed)? else {
            return Ok(Dest::Scratch);
        };
        let lane = self.lane;
        match self.state().e.data_in_header(lane, &d)? {
            Placement::Discard => Ok(Dest::Scratch),
            Placement::Into { tag, seq, base } => Ok(Dest::Direct(DataInDest {
                tag,
                seq,
                base,
                hdr: d,
            })),
        }
    }

    fn place(
        &mut self,
        to: DataInDest,
        offset: u32,
        skb: &SkbSlice<'_>,
        from: usize,
        len: usize,
        crc: Option<&mut u32>,
    ) -> Result<bool, RxFault> {
        let st = self.state();
        // Gone if the connection failed meanwhile, or EH took the command
        // back: drop the bytes.
        let Some(t) = st.e.tasks.get(to.tag, to.seq) else {
            return Ok(false);
        };
        let at = to.base.saturating_add(offset);
        // The header check bounded the whole segment by the buffer already.
        match t.cmd.copy_from_skb(at, skb, from, len, crc) {
            Ok(()) => Ok(true),
            Err(e) if e == TAKEN_BACK => Ok(false),
            Err(_) => Err(RxFault::Violation(SessionError::DataInBeyond {
                itt: t.itt.get(),
                end: u64::from(at) + len as u64,
                len: t.len,
            })),
        }
    }

    fn end(
        &mut self,
        bhs: &[u8; BHS_LEN],
        dest: Dest<DataInDest>,
        data: &[u8],
    ) -> Result<(), RxFault> {
        // A placed Data-In was parsed when its header came.
        let pdu = match dest {
            Dest::Direct(d) => Pdu::DataIn(d.hdr),
            Dest::Scratch => Pdu::parse(bhs).map_err(SessionError::Malformed)?,
        };
        let lane = self.lane;
        let st = self.state();
        let r = st.e.on_pdu(lane, &pdu, data, now_ms());
        st.log_quirks();
        let out = r?;
        let resumed = if out.complete.is_some() {
            st.resumed_from_ms.take()
        } else {
            None
        };
        let reconnect = out.reconnect;
        self.apply(out, resumed);
        match reconnect {
            Some(r) => Err(RxFault::Reconnect(r)),
            None => Ok(()),
        }
    }

    fn piece_done(&mut self) {
        self.st = None;
    }
}
