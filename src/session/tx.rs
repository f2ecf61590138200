//! Submission and transmission. `queue_command` admits a command into the
//! engine (CmdSN, task slot), which queues its Command PDU; whoever holds
//! the transmit side sends the queue: the submitter itself when the side is
//! free (no hop, as nvme-tcp sends from `queue_rq`), else the current holder,
//! which sends what was queued before it lets go, several PDUs per TCP
//! segment (`MSG_MORE` while more is queued). So no submitter ever waits
//! behind another's send. The TX work sends what the receiver queues
//! (Data-Out bursts answering R2Ts, NOP-Outs, the Logout) the same way. What
//! to send is the engine's (`proto::session::{engine, tx}`); this file stages
//! and sends. Data segments go out by reference from the command's pages
//! (`MSG_SPLICE_PAGES`, no copy), the data digest computed over the pages,
//! which the queue keeps stable while a write is in flight (stable writes,
//! set when the devices are configured). A session that gained a data digest
//! only at a relogin has no stable writes: it copies into the bounce buffer
//! first, as it does pages TCP cannot take by reference.

use super::*;

/// The transmit side, held: PDUs go on the socket only through it. Letting
/// go sends everything queued first, then, with the side released, looks
/// again: a submitter that found the side held left its command to the
/// holder, which must not be gone by then (`Session::tx_wanted`). A failed
/// send fails the connection once the side is released.
pub(super) struct TxHeld<'a> {
    session: &'a Session,
    /// `Some` until dropped.
    guard: Option<TryMutexGuard<'a, TxSide>>,
    /// The block layer has more of this batch: the last PDU goes with
    /// `MSG_MORE`, the batch's end pushes.
    more: bool,
}

impl Drop for TxHeld<'_> {
    fn drop(&mut self) {
        let session = self.session;
        let mut more = self.more;
        let mut guard = self.guard.take();
        while let Some(mut side) = guard {
            let sent = session.send_queued(&mut side, more);
            drop(side);
            if let Err(e) = sent {
                session.fail(reason::SOCKET, format_args!("send failed: {e:?}"));
                return;
            }
            more = false;
            // Held again by now: the new holder looks again after it lets go.
            guard = if session.tx_wanted() {
                session.tx.try_lock()
            } else {
                None
            };
        }
    }
}

impl TxHeld<'_> {
    /// Sends what is queued now, the last PDU with `MSG_MORE` (a PDU of the
    /// holder's own follows). A failed send lets go and fails the
    /// connection: `None`.
    pub(super) fn send_queued_now(mut self) -> Option<Self> {
        let session = self.session;
        let sent = match self.guard.as_mut() {
            Some(side) => session.send_queued(side, true),
            None => Ok(()),
        };
        if let Err(e) = sent {
            drop(self.guard.take());
            session.fail(reason::SOCKET, format_args!("send failed: {e:?}"));
            return None;
        }
        Some(self)
    }
}

impl Session {
    /// Takes the transmit side, waiting for the current holder.
    pub(super) fn hold_tx(&self) -> TxHeld<'_> {
        self.held(self.tx.lock())
    }

    /// Takes the transmit side if nobody holds it.
    fn try_hold_tx(&self) -> Option<TxHeld<'_>> {
        self.tx.try_lock().map(|g| self.held(g))
    }

    fn held<'a>(&'a self, guard: TryMutexGuard<'a, TxSide>) -> TxHeld<'a> {
        TxHeld {
            session: self,
            guard: Some(guard),
            more: false,
        }
    }

    /// Whether something waits for a sender: a job, or a push asked for by a
    /// batch that ended while another held the side. Read under `state`,
    /// where the asker wrote it before trying the side: either this sees it,
    /// or the asker's try came after this holder let go.
    fn tx_wanted(&self) -> bool {
        let st = self.state.lock();
        matches!(st.e.phase, Phase::Running | Phase::LoggingOut)
            && (st.e.has_jobs() || st.push_asked)
    }

    /// `queuecommand`: admits the command (its CmdSN and slot taken, its
    /// Command PDU queued) and sends the queue if the transmit side is free;
    /// if not, the holder sends it. Never waits for another sender; may
    /// block on the socket while sending. With `more` (the block layer has
    /// more of this batch), the PDUs go with `MSG_MORE`: TCP holds the bytes
    /// back to fill segments with the next commands, and the batch's last
    /// command (or `commit_rqs`) pushes them.
    pub(crate) fn queue_command(
        this: ArcBorrow<'_, Self>,
        cmd: Cmd,
        more: bool,
    ) -> core::result::Result<(), (Cmd, Busy)> {
        let r = this.admit(cmd);
        match this.try_hold_tx() {
            Some(mut held) => held.more = more,
            None => {
                this.txf.handed_over.fetch_add(1, Ordering::Relaxed);
                // The batch ends here, whichever way this command went
                // (refused, failed, queued): nothing may stay held back.
                // Asked without looking at `unpushed`: the holder may be
                // about to send this command with MSG_MORE.
                if !more {
                    this.ask_push();
                }
            }
        }
        r
    }

    /// Sends what commands of an unfinished batch left held back by
    /// `MSG_MORE` (`commit_rqs`, or a batch whose last command found the
    /// transmit side held).
    pub(crate) fn push_held(&self) {
        if self.txf.unpushed.load(Ordering::Relaxed) {
            self.ask_push();
        }
    }

    /// Has whoever holds the transmit side push, or pushes.
    fn ask_push(&self) {
        // Asked before trying: a holder that keeps the side sees it.
        self.state.lock().push_asked = true;
        drop(self.try_hold_tx());
    }

    /// Takes `cmd` into the engine, which queues its Command PDU; or
    /// completes it with an error; or gives it back for a retry.
    fn admit(&self, mut cmd: Cmd) -> core::result::Result<(), (Cmd, Busy)> {
        let dir = match cmd.direction() {
            DataDir::FromDevice => Dir::Read,
            DataDir::ToDevice => Dir::Write,
            DataDir::None => Dir::None,
            DataDir::Bidirectional => {
                pr_err!("host{}: refusing a bidirectional command\n", self.host_no());
                cmd.set_result(HostByte::Error, 0);
                cmd.complete();
                return Ok(());
            }
        };
        let cdb_len = cmd.cdb().len();
        if cdb_len > 16 {
            pr_err!("host{}: refusing a {}-byte CDB\n", self.host_no(), cdb_len);
            cmd.set_result(HostByte::Error, 0);
            cmd.complete();
            return Ok(());
        }
        let tag = (cmd.unique_tag() & TAG_MASK) as u16;
        let len = cmd.transfer_len();
        let lun = cmd.lun_sam();
        let mut st = self.state.lock();
        // Held until the relogin (the watchdog blocks the host soon).
        if st.e.phase == Phase::Recovering
            || (st.e.phase == Phase::LoggingOut && st.e.reconnect_delay_ms.is_some())
        {
            return Err((cmd, Busy::Host));
        }
        // A task whose command EH took back (and the midlayer now reissues)
        // is over: forget it, and its late PDUs, before reusing the slot.
        if st.e.tasks.peek(tag).is_some_and(|t| t.cmd.revoked()) {
            st.e.take_back(tag);
        }
        let refused = match st.e.submit(tag, cmd, lun, dir, len, now_ms()) {
            Ok(_) => return Ok(()),
            Err(r) => r,
        };
        drop(st);
        let (mut cmd, host) = match refused {
            Refused::NoCredit(cmd) => return Err((cmd, Busy::Target)),
            Refused::Backlog(cmd) => return Err((cmd, Busy::Host)),
            Refused::NotRunning(cmd, Phase::Offline) => (cmd, HostByte::TransportFailfast),
            Refused::NotRunning(cmd, _) => (cmd, HostByte::NoConnect),
            Refused::Slot(InsertError::Busy(cmd) | InsertError::NoSuchTag(cmd)) => {
                pr_err!(
                    "host{}: refusing command: tag {} is busy or beyond the queue\n",
                    self.host_no(),
                    tag
                );
                (cmd, HostByte::Error)
            }
        };
        cmd.set_result(host, 0);
        cmd.complete();
        Ok(())
    }

    /// Sends everything queued (see [`Engine::next_job`]); `more`: see
    /// [`TxHeld`].
    fn send_queued(&self, tx: &mut TxSide, mut more: bool) -> Result {
        loop {
            let (next, conn, more_after, last) = {
                let mut st = self.state.lock();
                if !matches!(st.e.phase, Phase::Running | Phase::LoggingOut) {
                    // The connection failed: its queue went with it.
                    return Ok(());
                }
                if core::mem::take(&mut st.push_asked) {
                    more = false;
                }
                let Some(job) = st.e.next_job() else {
                    let conn = st.conn.clone();
                    drop(st);
                    self.push_unless(&conn, more);
                    return Ok(());
                };
                let last = !st.e.has_jobs();
                (
                    self.prepare(&mut st, tx, job),
                    st.conn.clone(),
                    more || !last,
                    last,
                )
            };
            // The MSG_MORE flag of the last PDU actually sent, if any.
            let sent_more = match next {
                Next::Pdu {
                    hdr,
                    staged,
                    burst: None,
                } => {
                    send_staged(&conn, &hdr, tx, staged, more_after)?;
                    Some(more_after)
                }
                Next::Pdu {
                    hdr,
                    staged,
                    burst: Some(b),
                } => {
                    send_staged(&conn, &hdr, tx, staged, true)?;
                    Some(self.send_burst(tx, b, more_after)?.unwrap_or(true))
                }
                Next::Burst(b) => self.send_burst(tx, b, more_after)?,
                Next::Unreachable { hdr, cmd } => {
                    if let Some(mut cmd) = cmd {
                        pr_err!("host{}: a command's data cannot be read\n", self.host_no());
                        cmd.set_result(HostByte::Error, 0);
                        cmd.complete();
                    }
                    conn.send_pdu(&hdr, &[], more_after)?;
                    Some(more_after)
                }
                Next::Nothing => None,
            };
            // Under `tx`: a send without MSG_MORE pushed everything queued.
            if let Some(m) = sent_more {
                self.txf.unpushed.store(m, Ordering::Relaxed);
            }
            // What came since is the release's to find (`tx_wanted`).
            if last {
                self.push_unless(&conn, more);
                return Ok(());
            }
        }
    }

    /// Under `tx`: pushes what `MSG_MORE` held back, unless the batch goes
    /// on (`more`).
    fn push_unless(&self, conn: &SessionConn, more: bool) {
        if !more && self.txf.unpushed.swap(false, Ordering::Relaxed) {
            conn.sock.push();
        }
    }

    /// What `job` sends first, staged; `st` is the state, held.
    fn prepare(&self, st: &mut State, tx: &mut TxSide, job: TxJob) -> Next {
        let exp_stat_sn = st.e.seq.exp_stat_sn().get();
        let cmd_sn = st.e.seq.next_cmd_sn().get();
        let ctl = |hdr| Next::Pdu {
            hdr,
            staged: Staged::Nothing,
            burst: None,
        };
        match job {
            TxJob::Command {
                tag,
                seq,
                itt,
                cmd_sn,
            } => {
                if st.e.phase != Phase::Running {
                    // Not after a Logout Request: the task waits for the
                    // connection's end and is retried on the next one.
                    return Next::Nothing;
                }
                let by_ref = self.by_ref(&st.e.params);
                let params = st.e.params;
                let Some(task) = st.e.tasks.get(tag, seq) else {
                    // Taken back before it went out: fill its CmdSN.
                    return ctl(cmd_sn_filler(itt, cmd_sn, exp_stat_sn));
                };
                let plan = CommandPlan::new(&params, task.dir, task.len, tx.buf.len() as u32);
                let mut cdb = [0u8; 16];
                let src = task.cmd.cdb();
                if let Some(d) = cdb.get_mut(..src.len()) {
                    d.copy_from_slice(src);
                }
                let mut hdr = [0u8; BHS_LEN];
                ScsiCommand {
                    immediate: false,
                    final_bit: plan.final_bit(),
                    read: task.dir == Dir::Read,
                    write: task.dir == Dir::Write,
                    attr: TaskAttr::Simple,
                    total_ahs_len: 0,
                    data_segment_len: plan.immediate,
                    lun: task.lun,
                    itt,
                    expected_data_len: task.len,
                    cmd_sn,
                    exp_stat_sn,
                    cdb,
                }
                .emit(&mut hdr);
                let Ok(staged) = stage(&mut task.cmd, tx, 0, plan.immediate, by_ref) else {
                    // Its data cannot be reached: the command fails alone,
                    // and a NOP-Out takes its CmdSN.
                    let cmd = st.e.take_back(tag).map(|t| t.cmd);
                    let hdr = cmd_sn_filler(itt, cmd_sn, exp_stat_sn);
                    return Next::Unreachable { hdr, cmd };
                };
                let burst = plan.unsolicited().map(|(offset, len)| BurstJob {
                    tag,
                    seq,
                    ttt: RESERVED_TAG,
                    offset,
                    len,
                });
                Next::Pdu { hdr, staged, burst }
            }
            TxJob::DataOut {
                tag,
                seq,
                ttt,
                offset,
                len,
            } => Next::Burst(BurstJob {
                tag,
                seq,
                ttt,
                offset,
                len,
            }),
            // A NOP-Out is immediate: CmdSN is carried, not advanced.
            TxJob::NopOut { ttt, lun } => ctl(nop_out(RESERVED_TAG, ttt, lun, cmd_sn, exp_stat_sn)),
            TxJob::Ping => ctl(nop_out(
                st.e.ping_itt().get(),
                RESERVED_TAG,
                0,
                cmd_sn,
                exp_stat_sn,
            )),
            TxJob::Logout => {
                let mut hdr = [0u8; BHS_LEN];
                LogoutRequest {
                    immediate: true,
                    reason: LogoutReason::CloseConnection,
                    itt: st.e.internal_itt(LOGOUT_LOW).get(),
                    cid: self.cfg.raw.cid,
                    cmd_sn,
                    exp_stat_sn,
                }
                .emit(&mut hdr);
                ctl(hdr)
            }
        }
    }

    /// Whether a data segment may go by reference under parameters `p`: a
    /// data digest needs bytes that cannot change after it was computed.
    fn by_ref(&self, p: &SessionParams) -> bool {
        p.data_digest != Digest::Crc32c || self.digests_pages()
    }

    /// Sends the burst `b` as Data-Out PDUs of at most
    /// MaxRecvDataSegmentLength (the target's). Stops quietly if the task
    /// ends. `more`: another PDU follows at once (`MSG_MORE` on the last one
    /// too). Returns the `MSG_MORE` flag of the last PDU sent, if any was.
    fn send_burst(&self, tx: &mut TxSide, b: BurstJob, more: bool) -> Result<Option<bool>> {
        let mut burst = Burst::new(b.offset, b.len);
        let mut sent_more = None;
        loop {
            let mut hdr = [0u8; BHS_LEN];
            let (piece, staged, conn) = {
                let mut st = self.state.lock();
                if st.e.phase != Phase::Running {
                    // The connection failed; the task went back for retry.
                    return Ok(sent_more);
                }
                let max =
                    st.e.params
                        .max_xmit_data_segment_len
                        .min(tx.buf.len() as u32);
                let Some(piece) = burst.next_piece(max) else {
                    return Ok(sent_more);
                };
                let by_ref = self.by_ref(&st.e.params);
                let exp_stat_sn = st.e.seq.exp_stat_sn().get();
                let conn = st.conn.clone();
                let Some(task) = st.e.tasks.get(b.tag, b.seq) else {
                    return Ok(sent_more);
                };
                let staged = stage(&mut task.cmd, tx, piece.offset, piece.len, by_ref)?;
                DataOut {
                    final_bit: piece.last,
                    lun: task.lun,
                    itt: task.itt.get(),
                    ttt: b.ttt,
                    exp_stat_sn,
                    data_sn: piece.data_sn,
                    buffer_offset: piece.offset,
                    data_segment_len: piece.len,
                }
                .emit(&mut hdr);
                if piece.last {
                    st.e.burst_sent(b.tag, b.seq, b.ttt != RESERVED_TAG);
                }
                (piece, staged, conn)
            };
            let m = !piece.last || more;
            send_staged(&conn, &hdr, tx, staged, m)?;
            sent_more = Some(m);
        }
    }

    /// The TX work: sends what the receiver and the watchdog queued, unless
    /// someone holds the transmit side (who then sends it).
    pub(super) fn run_tx(this: Arc<Self>) {
        drop(this.try_hold_tx());
    }
}

/// What a job sends.
enum Next {
    /// One PDU, then maybe a burst of unsolicited Data-Out.
    Pdu {
        hdr: [u8; BHS_LEN],
        staged: Staged,
        burst: Option<BurstJob>,
    },
    /// A Data-Out burst.
    Burst(BurstJob),
    /// A command whose data could not be staged, taken back (if EH had not
    /// already): it fails, and `hdr` (a NOP-Out) takes its CmdSN.
    Unreachable {
        hdr: [u8; BHS_LEN],
        cmd: Option<Cmd>,
    },
    /// Nothing (the job is void).
    Nothing,
}

/// A Data-Out burst of task (`tag`, `seq`): `len` bytes from `offset`, with
/// `ttt` (an R2T's, or the reserved tag for unsolicited data).
#[derive(Clone, Copy)]
struct BurstJob {
    tag: u16,
    seq: u64,
    ttt: u32,
    offset: u32,
    len: u32,
}

/// Where a data segment about to be sent is.
#[derive(Clone, Copy)]
enum Staged {
    /// No data.
    Nothing,
    /// Page references in `TxSide::pages`.
    Pages(u32),
    /// Copied into the first bytes of `TxSide::buf`.
    Copied(u32),
}

/// Stages bytes `offset..offset + len` of `cmd`'s buffer for sending: page
/// references when `by_ref` allows and the pages can be sent that way, else a
/// copy into the bounce buffer. Does not sleep.
fn stage(cmd: &mut Cmd, tx: &mut TxSide, offset: u32, len: u32, by_ref: bool) -> Result<Staged> {
    if len == 0 {
        return Ok(Staged::Nothing);
    }
    if by_ref && cmd.pin_pages(offset, len, &mut tx.pages)? {
        return Ok(Staged::Pages(len));
    }
    let buf = tx.buf.get_mut(..len as usize).ok_or(EINVAL)?;
    cmd.copy_to_buf(offset, buf)?;
    Ok(Staged::Copied(len))
}

/// Sends one PDU with the data segment `staged` (see [`stage`]).
fn send_staged(
    conn: &SessionConn,
    hdr: &[u8; BHS_LEN],
    tx: &mut TxSide,
    staged: Staged,
    more: bool,
) -> Result {
    match staged {
        Staged::Nothing => conn.send_pdu(hdr, &[], more),
        Staged::Copied(n) => conn.send_pdu(hdr, tx.buf.get(..n as usize).unwrap_or(&[]), more),
        Staged::Pages(n) => conn.send_pdu_pages(hdr, &mut tx.pages, n, more),
    }
}
