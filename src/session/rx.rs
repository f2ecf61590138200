//! The receive side: the RX work reading the socket, and the PDU sink that
//! hands each target PDU to the engine (`proto::session::rx`) and applies
//! its outcome: Data-In bytes into the command's pages, completions, wakeups,
//! transmit kicks, log lines, a reconnect the target asked for.

use super::*;

impl Session {
    pub(super) fn run_rx(this: Arc<Self>) {
        let mut rx = this.rx.lock();
        let conn = {
            let mut st = this.state.lock();
            if !matches!(st.e.phase, Phase::Running | Phase::LoggingOut) {
                return;
            }
            st.e.last_rx_ms = now_ms();
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
            RxStop::Sink(RxFault::Reconnect(r)) => {
                this.fail(reason::TARGET_REQUEST, format_args!("{}", r.text()))
            }
            RxStop::Sink(RxFault::Violation(v)) => {
                this.fail(reason::PROTOCOL, format_args!("protocol violation: {v}"))
            }
        }
    }
}

/// The RX work's view of the session as a [`PduSink`].
struct Receiver<'a> {
    s: &'a Arc<Session>,
    /// A TX job was queued during this pass.
    kick_tx: bool,
}

impl Receiver<'_> {
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
            // Finished here, in the RX work (process context), not in the
            // block softirq: no ksoftirqd wakeup per command.
            apply(c).complete_direct();
            if let Some(t) = resumed {
                pr_info!(
                    "host{}: I/O flowing again {} ms after the connection failed\n",
                    host_no,
                    now_ms() - t
                );
            }
        }
    }
}

impl PduSink for Receiver<'_> {
    type Direct = DataInDest;
    type Error = RxFault;

    fn header(&mut self, bhs: &[u8; BHS_LEN], _data_len: u32) -> Result<Dest<DataInDest>, RxFault> {
        match Pdu::parse(bhs).map_err(SessionError::Malformed)? {
            Pdu::DataIn(d) => match self.s.state.lock().e.data_in_header(&d)? {
                Placement::Discard => Ok(Dest::Scratch),
                Placement::Into { tag, seq, base } => {
                    Ok(Dest::Direct(DataInDest { tag, seq, base }))
                }
            },
            _ => Ok(Dest::Scratch),
        }
    }

    fn data(&mut self, to: DataInDest, offset: u32, bytes: &[u8]) -> Result<(), RxFault> {
        let mut st = self.s.state.lock();
        // Gone if the connection failed meanwhile, or EH took the command
        // back: drop the bytes.
        let Some(t) = st.e.tasks.get(to.tag, to.seq) else {
            return Ok(());
        };
        let at = to.base.saturating_add(offset);
        // The header check bounded the whole segment by the buffer already.
        match t.cmd.copy_from_buf(at, bytes) {
            Ok(()) => Ok(()),
            // EH took the command back: drop the bytes.
            Err(e) if e == TAKEN_BACK => Ok(()),
            Err(_) => Err(RxFault::Violation(SessionError::DataInBeyond {
                itt: t.itt.get(),
                end: u64::from(at) + bytes.len() as u64,
                len: t.len,
            })),
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
        let t = st.e.tasks.get(to.tag, to.seq)?;
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
    ) -> Result<(), RxFault> {
        let pdu = Pdu::parse(bhs).map_err(SessionError::Malformed)?;
        let mut st = self.s.state.lock();
        let r = st.e.on_pdu(&pdu, data, now_ms());
        st.log_quirks();
        let out = r?;
        let resumed = if out.complete.is_some() {
            st.resumed_from_ms.take()
        } else {
            None
        };
        let reconnect = out.reconnect;
        drop(st);
        self.apply(out, resumed);
        match reconnect {
            Some(r) => Err(RxFault::Reconnect(r)),
            None => Ok(()),
        }
    }
}
