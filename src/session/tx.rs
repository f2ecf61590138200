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
//! set when the devices are configured). Submitters and the TX work never
//! wait for room in the send buffer: a send that stops there leaves the PDU
//! under way (`TxSide::out`, resumed from the byte it reached) and lets go,
//! and `write_space` has the TX work go on. A session that gained a data digest
//! only at a relogin has no stable writes: it copies into the bounce buffer
//! first, as it does pages TCP cannot take by reference.

use super::*;

/// The transmit side, held: PDUs go on the socket only through it. Letting
/// go sends everything queued first, then, with the side released, looks
/// again: a submitter that found the side held left its command to the
/// holder, which must not be gone by then (`Session::tx_wanted`). A failed
/// send fails the connection once the side is released.
pub(super) struct TxHeld<'a> {
    lane: &'a Lane,
    /// `Some` until dropped.
    guard: Option<TryMutexGuard<'a, TxSide>>,
    /// The block layer has more of this batch: the last PDU goes with
    /// `MSG_MORE`, the batch's end pushes.
    more: bool,
    /// Sends block at a full send buffer (a holder that must get its own PDU
    /// out: TMF, logout); else they stop there, and `write_space` has the TX
    /// work go on.
    wait: bool,
}

impl Drop for TxHeld<'_> {
    fn drop(&mut self) {
        let lane = self.lane;
        let mut more = self.more;
        let mut wait = self.wait;
        let mut guard = self.guard.take();
        while let Some(mut side) = guard {
            let sent = lane.send_queued(&mut side, more, wait);
            drop(side);
            if let Err(e) = sent {
                lane.s.fail_on(
                    Some(lane.idx),
                    reason::SOCKET,
                    format_args!("send failed: {e:?}"),
                );
                return;
            }
            more = false;
            wait = false;
            // Held again by now: the new holder looks again after it lets go.
            // Stopped at a full buffer, only `write_space` may have come.
            guard = if lane.tx_wanted() {
                lane.tx.try_lock()
            } else {
                None
            };
        }
    }
}

impl TxHeld<'_> {
    /// Sends what is queued now, blocking at a full send buffer, the last
    /// PDU with `MSG_MORE` (a PDU of the holder's own follows). A failed
    /// send lets go and fails the connection: `None`.
    pub(super) fn send_queued_now(mut self) -> Option<Self> {
        let lane = self.lane;
        let sent = match self.guard.as_mut() {
            Some(side) => lane.send_queued(side, true, true),
            None => Ok(()),
        };
        if let Err(e) = sent {
            drop(self.guard.take());
            lane.s.fail_on(
                Some(lane.idx),
                reason::SOCKET,
                format_args!("send failed: {e:?}"),
            );
            return None;
        }
        Some(self)
    }
}

impl Lane {
    /// Takes the transmit side, waiting for the current holder; its sends
    /// block at a full send buffer.
    pub(super) fn hold_tx(&self) -> TxHeld<'_> {
        self.held(self.tx.lock(), true)
    }

    /// Takes the transmit side if nobody holds it; its sends stop at a full
    /// send buffer.
    fn try_hold_tx(&self) -> Option<TxHeld<'_>> {
        self.tx.try_lock().map(|g| self.held(g, false))
    }

    fn held<'a>(&'a self, guard: TryMutexGuard<'a, TxSide>, wait: bool) -> TxHeld<'a> {
        TxHeld {
            lane: self,
            guard: Some(guard),
            more: false,
            wait,
        }
    }

    /// Whether something waits for a sender: a job, a PDU under way, or a
    /// push asked for by a batch that ended while another held the side.
    /// Read under `state`, where the asker wrote it before trying the side:
    /// either this sees it, or the asker's try came after this holder let
    /// go. Nothing does while sends stop at a full buffer: `write_space`
    /// clears `blocked` and has the TX work look.
    fn tx_wanted(&self) -> bool {
        if self.txf.blocked.load(Ordering::SeqCst) {
            return false;
        }
        if self.txf.under_way.load(Ordering::Relaxed) {
            return true;
        }
        let st = self.s.state.lock();
        matches!(st.e.phase, Phase::Running | Phase::LoggingOut)
            && (st.e.has_jobs(self.idx) || st.push_asked & lane_bit(self.idx) != 0)
    }

    /// `write_space`: the socket has room again after a send stopped at a
    /// full buffer.
    pub(super) fn tx_room(this: ArcBorrow<'_, Self>) {
        if this.txf.blocked.swap(false, Ordering::SeqCst) {
            Self::kick_tx(this);
        }
    }

    /// Has whoever holds the transmit side push, or pushes.
    fn ask_push(&self) {
        // Asked before trying: a holder that keeps the side sees it.
        self.s.state.lock().push_asked |= lane_bit(self.idx);
        drop(self.try_hold_tx());
    }
}

impl Session {
    /// `queuecommand`: admits the command (its CmdSN and slot taken, its
    /// Command PDU queued) and sends the queue if the transmit side is free;
    /// if not, the holder sends it. Never waits for another sender nor for
    /// room in the send buffer; may sleep for the socket lock. With `more`
    /// (the block layer has more of this batch), the PDUs go with
    /// `MSG_MORE`: TCP holds the bytes back to fill segments with the next
    /// commands, and the batch's last command (or `commit_rqs`) pushes them.
    pub(crate) fn queue_command(
        this: ArcBorrow<'_, Self>,
        cmd: Cmd,
        more: bool,
    ) -> core::result::Result<(), (Cmd, Busy)> {
        let hwq = usize::from(cmd.hwq());
        let (r, lane) = this.admit(cmd, hwq);
        let Some(lane) = lane else { return r };
        match lane.try_hold_tx() {
            Some(mut held) => held.more = more,
            None => {
                lane.txf.handed_over.fetch_add(1, Ordering::Relaxed);
                // The batch ends here, whichever way this command went
                // (refused, failed, queued): nothing may stay held back.
                // Asked without looking at `unpushed`: the holder may be
                // about to send this command with MSG_MORE.
                if !more {
                    lane.ask_push();
                }
            }
        }
        r
    }

    /// Sends what commands of an unfinished batch of hardware queue `hwq`
    /// left held back by `MSG_MORE` (`commit_rqs`, or a batch whose last
    /// command found the transmit side held).
    pub(crate) fn push_held(&self, hwq: u16) {
        let lane = {
            let st = self.state.lock();
            st.e.route(usize::from(hwq))
                .and_then(|k| st.lanes.get(k).and_then(Clone::clone))
        };
        if let Some(lane) = lane.filter(|l| l.txf.unpushed.load(Ordering::Relaxed)) {
            lane.ask_push();
        }
    }

    /// Takes `cmd`, from hardware queue `hwq`, into the engine, which queues
    /// its Command PDU on a lane; or completes it with an error; or gives it
    /// back for a retry. Also returns the lane whose transmit side to try.
    fn admit(
        &self,
        cmd: Cmd,
        hwq: usize,
    ) -> (core::result::Result<(), (Cmd, Busy)>, Option<Arc<Lane>>) {
        let mut lane = None;
        let r = self.admit_on(cmd, hwq, &mut lane);
        (r, lane)
    }

    fn admit_on(
        &self,
        mut cmd: Cmd,
        hwq: usize,
        lane: &mut Option<Arc<Lane>>,
    ) -> core::result::Result<(), (Cmd, Busy)> {
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
        *lane =
            st.e.route(hwq)
                .and_then(|k| st.lanes.get(k).and_then(Clone::clone));
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
        let refused = match st.e.submit(hwq, tag, cmd, lun, dir, len, now_ms()) {
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
}

impl Lane {
    /// Sends everything queued (see [`Engine::next_job`]), beginning with
    /// what a send stopped at a full buffer left under way; `more` and
    /// `wait`: see [`TxHeld`]. Stopped at a full buffer, sets
    /// `txf.blocked` for `write_space` and returns.
    fn send_queued(&self, tx: &mut TxSide, more: bool, wait: bool) -> Result {
        let r = self.send_queue(tx, more, wait);
        if r.is_err() {
            // The connection fails: what was under way goes with it.
            tx.drop_under_way();
        }
        self.txf
            .under_way
            .store(tx.out.is_some() || tx.burst.is_some(), Ordering::Relaxed);
        r
    }

    fn send_queue(&self, tx: &mut TxSide, mut more: bool, wait: bool) -> Result {
        // This holder tries now; a stop below marks it again. (Read first:
        // the store is a locked instruction, and the mark is rarely set.)
        if self.txf.blocked.load(Ordering::Relaxed) {
            self.txf.blocked.store(false, Ordering::SeqCst);
        }
        if tx.out.is_some() || tx.burst.is_some() {
            // Left by a send that stopped: still for this connection?
            let st = self.s.state.lock();
            let conn = st.conns.get(self.idx).and_then(Option::as_ref);
            let live = matches!(st.e.phase, Phase::Running | Phase::LoggingOut)
                && tx
                    .out
                    .as_ref()
                    .is_none_or(|o| conn.is_some_and(|c| Arc::ptr_eq(&o.conn, c)));
            drop(st);
            if !live {
                tx.drop_under_way();
            }
        }
        let mut retries = 0u32;
        // The connection of the last PDU this call finished.
        let mut last_conn: Option<Arc<SessionConn>> = None;
        loop {
            let TxSide {
                buf,
                pages,
                out,
                burst,
                last_job,
            } = &mut *tx;
            if let Some(o) = out.as_mut() {
                let data = o.staged.segment(buf, pages)?;
                if !o.conn.write(&o.framed, data, &mut o.sent, o.more, wait)? {
                    if self.room_came(&o.conn, &mut retries) {
                        continue;
                    }
                    return Ok(());
                }
                // Under `tx`: a send without MSG_MORE pushed everything queued.
                self.txf.unpushed.store(o.more, Ordering::Relaxed);
                last_conn = out.take().map(|o| o.conn);
                pages.clear();
                continue;
            }
            if let Some(run) = burst.as_mut() {
                match self.next_data_out(buf, pages, run)? {
                    Some(o) => *out = Some(o),
                    None => *burst = None,
                }
                continue;
            }
            // What came since is the release's to find (`tx_wanted`).
            if *last_job {
                if let Some(conn) = last_conn.take() {
                    *last_job = false;
                    self.push_unless(&conn, more);
                    return Ok(());
                }
            }
            let mut st = self.s.state.lock();
            if !matches!(st.e.phase, Phase::Running | Phase::LoggingOut) {
                // The connection failed: its queue went with it.
                return Ok(());
            }
            let Some(conn) = self.conn(&st) else {
                return Ok(());
            };
            let bit = lane_bit(self.idx);
            if st.push_asked & bit != 0 {
                st.push_asked &= !bit;
                more = false;
            }
            let Some(job) = st.e.next_job(self.idx) else {
                drop(st);
                *last_job = false;
                self.push_unless(&conn, more);
                return Ok(());
            };
            let last = !st.e.has_jobs(self.idx);
            let more_after = more || !last;
            *last_job = last;
            match self.prepare(&mut st, buf, pages, job) {
                Next::Pdu {
                    hdr,
                    staged,
                    burst: b,
                } => {
                    drop(st);
                    let pdu_more = more_after || b.is_some();
                    *out = Some(OutPdu::new(conn, &hdr, staged, pages, buf, pdu_more)?);
                    *burst = b.map(|job| BurstRun::new(job, more_after));
                }
                Next::Burst(job) => {
                    drop(st);
                    *burst = Some(BurstRun::new(job, more_after));
                }
                Next::Unreachable { hdr, cmd } => {
                    drop(st);
                    if let Some(mut cmd) = cmd {
                        pr_err!(
                            "host{}: a command's data cannot be read\n",
                            self.s.host_no()
                        );
                        cmd.set_result(HostByte::Error, 0);
                        cmd.complete();
                    }
                    let filler = OutPdu::new(conn, &hdr, Staged::Nothing, pages, buf, more_after)?;
                    *out = Some(filler);
                }
                Next::Nothing => {}
            }
        }
    }

    /// After a send stopped at a full buffer: marks the side blocked, for
    /// `write_space` to clear, then looks at the socket once more, as the
    /// room may have come before the mark. Whether to try again now (a
    /// socket that has room yet refuses, short of memory, is left to the
    /// watchdog after a few tries).
    fn room_came(&self, conn: &SessionConn, retries: &mut u32) -> bool {
        self.txf.blocked.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if *retries < 4 && conn.sock.writeable() {
            *retries += 1;
            self.txf.blocked.store(false, Ordering::SeqCst);
            return true;
        }
        self.txf.stalled.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Under `tx`: pushes what `MSG_MORE` held back, unless the batch goes
    /// on (`more`).
    fn push_unless(&self, conn: &SessionConn, more: bool) {
        if !more && self.txf.unpushed.swap(false, Ordering::Relaxed) {
            conn.sock.push();
        }
    }

    /// What `job` sends first, staged; `st` is the state, held.
    fn prepare(
        &self,
        st: &mut State,
        buf: &mut KVVec<u8>,
        pages: &mut TxPages,
        job: TxJob,
    ) -> Next {
        let exp_stat_sn = st.e.exp_stat_sn(self.idx);
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
                let params = st.e.lane_params(self.idx);
                let by_ref = self.s.by_ref(&params);
                let Some(task) = st.e.tasks.get(tag, seq) else {
                    // Taken back before it went out: fill its CmdSN.
                    return ctl(ordered_nop_out(itt, cmd_sn, exp_stat_sn));
                };
                let plan = CommandPlan::new(&params, task.dir, task.len, buf.len() as u32);
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
                let Ok(staged) = stage(&mut task.cmd, buf, pages, 0, plan.immediate, by_ref) else {
                    // Its data cannot be reached: the command fails alone,
                    // and a NOP-Out takes its CmdSN.
                    let cmd = st.e.take_back(tag).map(|t| t.cmd);
                    let hdr = ordered_nop_out(itt, cmd_sn, exp_stat_sn);
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
            TxJob::Ping {
                ordered_cmd_sn: None,
            } => ctl(nop_out(
                st.e.ping_itt(self.idx).get(),
                RESERVED_TAG,
                0,
                cmd_sn,
                exp_stat_sn,
            )),
            // Several connections: a ping takes its CmdSN (`Engine::start_ping`).
            TxJob::Ping {
                ordered_cmd_sn: Some(cmd_sn),
            } => ctl(ordered_nop_out(
                st.e.ping_itt(self.idx).get(),
                cmd_sn,
                exp_stat_sn,
            )),
            TxJob::Logout => {
                let mut hdr = [0u8; BHS_LEN];
                LogoutRequest {
                    immediate: true,
                    reason: LogoutReason::CloseConnection,
                    itt: st.e.internal_itt(LOGOUT_LOW).get(),
                    cid: st.e.lane(self.idx).map_or(0, |l| l.cid),
                    cmd_sn,
                    exp_stat_sn,
                }
                .emit(&mut hdr);
                ctl(hdr)
            }
        }
    }

    /// The next Data-Out PDU of the burst `run`, of at most
    /// MaxRecvDataSegmentLength (the target's), staged; `None` once the
    /// burst is over or its task ended.
    fn next_data_out(
        &self,
        buf: &mut KVVec<u8>,
        pages: &mut TxPages,
        run: &mut BurstRun,
    ) -> Result<Option<OutPdu>> {
        let b = run.job;
        let mut hdr = [0u8; BHS_LEN];
        let (piece, staged, conn) = {
            let mut st = self.s.state.lock();
            if st.e.phase != Phase::Running {
                // The connection failed; the task went back for retry.
                return Ok(None);
            }
            let Some(conn) = self.conn(&st) else {
                return Ok(None);
            };
            let params = st.e.lane_params(self.idx);
            let max = params.max_xmit_data_segment_len.min(buf.len() as u32);
            let Some(piece) = run.burst.next_piece(max) else {
                return Ok(None);
            };
            let by_ref = self.s.by_ref(&params);
            let exp_stat_sn = st.e.exp_stat_sn(self.idx);
            let Some(task) = st.e.tasks.get(b.tag, b.seq) else {
                return Ok(None);
            };
            let staged = stage(&mut task.cmd, buf, pages, piece.offset, piece.len, by_ref)?;
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
        let more = !piece.last || run.more;
        OutPdu::new(conn, &hdr, staged, pages, buf, more).map(Some)
    }

    /// The TX work: sends what the receiver and the watchdog queued, unless
    /// someone holds the transmit side (who then sends it).
    pub(super) fn run_tx(this: Arc<Self>) {
        drop(this.try_hold_tx());
    }
}

impl Session {
    /// Whether a data segment may go by reference under parameters `p`: a
    /// data digest needs bytes that cannot change after it was computed.
    fn by_ref(&self, p: &SessionParams) -> bool {
        p.data_digest != Digest::Crc32c || self.digests_pages()
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

impl Staged {
    /// The data segment staged this way in the bounce buffer `buf` or the
    /// page references `pages`.
    fn segment<'a>(self, buf: &'a [u8], pages: &'a mut TxPages) -> Result<Segment<'a>> {
        Ok(match self {
            Staged::Nothing => Segment::Bytes(&[]),
            Staged::Copied(n) => Segment::Bytes(buf.get(..n as usize).ok_or(EINVAL)?),
            Staged::Pages(n) => Segment::Pages(pages, n),
        })
    }
}

/// Stages bytes `offset..offset + len` of `cmd`'s buffer for sending: page
/// references in `pages` when `by_ref` allows and the pages can be sent that
/// way, else a copy into the bounce buffer `buf`. Does not sleep.
fn stage(
    cmd: &mut Cmd,
    buf: &mut KVVec<u8>,
    pages: &mut TxPages,
    offset: u32,
    len: u32,
    by_ref: bool,
) -> Result<Staged> {
    if len == 0 {
        return Ok(Staged::Nothing);
    }
    if by_ref && cmd.pin_pages(offset, len, pages)? {
        return Ok(Staged::Pages(len));
    }
    let dst = buf.get_mut(..len as usize).ok_or(EINVAL)?;
    cmd.copy_to_buf(offset, dst)?;
    Ok(Staged::Copied(len))
}

/// A PDU on its way out: framed, its data segment staged in the transmit
/// side, `sent` bytes of it on the socket so far.
pub(super) struct OutPdu {
    conn: Arc<SessionConn>,
    framed: Framed,
    staged: Staged,
    sent: u32,
    /// `MSG_MORE`: another PDU follows at once.
    more: bool,
}

impl OutPdu {
    /// Frames `hdr` around the data `staged` in `pages` or `buf`.
    fn new(
        conn: Arc<SessionConn>,
        hdr: &[u8; BHS_LEN],
        staged: Staged,
        pages: &mut TxPages,
        buf: &[u8],
        more: bool,
    ) -> Result<Self> {
        let framed = conn.frame(hdr, staged.segment(buf, pages)?)?;
        Ok(OutPdu {
            conn,
            framed,
            staged,
            sent: 0,
            more,
        })
    }
}

/// A Data-Out burst being cut into PDUs; `more`: another PDU follows it.
pub(super) struct BurstRun {
    job: BurstJob,
    burst: Burst,
    more: bool,
}

impl BurstRun {
    fn new(job: BurstJob, more: bool) -> Self {
        BurstRun {
            job,
            burst: Burst::new(job.offset, job.len),
            more,
        }
    }
}
