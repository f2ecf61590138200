//! The receive side: the RX work reading the socket and the PDU sink that
//! applies each target PDU to the session (Data-In placement, responses,
//! R2Ts, NOP-In, Async Message, Reject, TMF and Logout responses).

use super::*;

impl Session {
    pub(super) fn run_rx(this: Arc<Self>) {
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
