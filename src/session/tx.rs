//! Submission: `queuecommand` (the SCSI Command PDU and its immediate and
//! unsolicited data, inline) and the TX work that sends queued jobs (Data-Out
//! bursts answering R2Ts, NOP-Outs, the Logout). What to send is the
//! engine's (`proto::session::{engine, tx}`); this file stages and sends.
//! Data segments go out by reference from the command's pages
//! (`MSG_SPLICE_PAGES`, no copy) unless a data digest is on, whose CRC must
//! cover bytes that cannot change after it was computed: those are copied
//! into the bounce buffer first, as are pages TCP cannot take by reference.

use super::*;

impl Session {
    /// `queuecommand`: builds and sends the SCSI Command PDU with its immediate
    /// and unsolicited data. May block (on the socket). With `more` (the
    /// block layer has more of this batch), the PDUs go with `MSG_MORE`: TCP
    /// holds the bytes back to fill segments with the next commands, and the
    /// batch's last command (or `commit_rqs`) pushes them.
    pub(crate) fn queue_command(
        this: ArcBorrow<'_, Self>,
        cmd: Cmd,
        more: bool,
    ) -> core::result::Result<(), (Cmd, Busy)> {
        let r = Self::submit(this, cmd, more);
        // The batch ends here, whichever way this command went (refused,
        // failed, sent): nothing may stay held back.
        if !more {
            this.push_held();
        }
        r
    }

    /// Sends what commands of an unfinished batch left held back by
    /// `MSG_MORE` (`commit_rqs`, or a batch whose last command sent nothing).
    pub(crate) fn push_held(&self) {
        if !self.unpushed.load(Ordering::Relaxed) {
            return;
        }
        let _tx = self.tx.lock();
        if self.unpushed.swap(false, Ordering::Relaxed) {
            let conn = self.state.lock().conn.clone();
            conn.sock.push();
        }
    }

    fn submit(
        this: ArcBorrow<'_, Self>,
        mut cmd: Cmd,
        more: bool,
    ) -> core::result::Result<(), (Cmd, Busy)> {
        let dir = match cmd.direction() {
            DataDir::FromDevice => Dir::Read,
            DataDir::ToDevice => Dir::Write,
            DataDir::None => Dir::None,
            DataDir::Bidirectional => {
                pr_err!("host{}: refusing a bidirectional command\n", this.host_no());
                cmd.set_result(HostByte::Error, 0);
                cmd.complete();
                return Ok(());
            }
        };
        let cdb_len = cmd.cdb().len();
        if cdb_len > 16 {
            pr_err!("host{}: refusing a {}-byte CDB\n", this.host_no(), cdb_len);
            cmd.set_result(HostByte::Error, 0);
            cmd.complete();
            return Ok(());
        }
        let mut cdb = [0u8; 16];
        if let Some(d) = cdb.get_mut(..cdb_len) {
            d.copy_from_slice(cmd.cdb());
        }
        let tag = (cmd.unique_tag() & TAG_MASK) as u16;
        let len = cmd.transfer_len();
        let lun = cmd.lun_sam();
        let mut tx = this.tx.lock();
        let side = &mut *tx;
        let mut st = this.state.lock();
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
        // No credit: refuse before staging any data (the midlayer retries).
        if st.e.phase == Phase::Running && !st.e.credit_for_one(now_ms()) {
            return Err((cmd, Busy::Target));
        }
        let plan = CommandPlan::new(&st.e.params, dir, len, side.buf.len() as u32);
        // Immediate data is staged before the command is accepted (staging
        // that fails leaves nothing behind), outside the state lock: a copy
        // may be long. Without any, the lock is kept.
        let (mut st, staged) = if plan.immediate == 0 {
            (st, Staged::Nothing)
        } else {
            let by_ref = st.e.params.data_digest != Digest::Crc32c;
            drop(st);
            let Ok(staged) = stage(&mut cmd, side, 0, plan.immediate, by_ref) else {
                drop(tx);
                cmd.set_result(HostByte::Error, 0);
                cmd.complete();
                return Ok(());
            };
            (this.state.lock(), staged)
        };
        let sub = match st.e.submit(tag, cmd, lun, dir, len, now_ms()) {
            Ok(s) => s,
            Err(Refused::NoCredit(cmd)) => {
                drop(st);
                side.pages.clear();
                return Err((cmd, Busy::Target));
            }
            Err(Refused::NotRunning(mut cmd, phase)) => {
                drop(st);
                side.pages.clear();
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
            Err(Refused::Slot(InsertError::Busy(mut cmd) | InsertError::NoSuchTag(mut cmd))) => {
                drop(st);
                side.pages.clear();
                drop(tx);
                pr_err!(
                    "host{}: refusing command: tag {} is busy or beyond the queue\n",
                    this.host_no(),
                    tag
                );
                cmd.set_result(HostByte::Error, 0);
                cmd.complete();
                return Ok(());
            }
        };
        let mut hdr = [0u8; BHS_LEN];
        ScsiCommand {
            immediate: false,
            final_bit: plan.final_bit(),
            read: dir == Dir::Read,
            write: dir == Dir::Write,
            attr: TaskAttr::Simple,
            total_ahs_len: 0,
            data_segment_len: plan.immediate,
            lun,
            itt: sub.itt.get(),
            expected_data_len: len,
            cmd_sn: sub.cmd_sn,
            exp_stat_sn: sub.exp_stat_sn,
            cdb,
        }
        .emit(&mut hdr);
        let conn = st.conn.clone();
        drop(st);
        let unsolicited = plan.unsolicited();
        let mut sent = send_staged(&conn, &hdr, side, staged, unsolicited.is_some() || more);
        if let (true, Some((offset, len))) = (sent.is_ok(), unsolicited) {
            sent = this.send_burst(side, tag, sub.seq, RESERVED_TAG, offset, len, more);
        }
        // Under `tx`: a send without MSG_MORE pushed everything queued.
        this.unpushed.store(more, Ordering::Relaxed);
        drop(tx);
        if let Err(e) = sent {
            this.fail(reason::SOCKET, format_args!("send failed: {e:?}"));
        }
        Ok(())
    }

    /// Sends `len` bytes from `offset` of task (`tag`, `seq`) as Data-Out PDUs of
    /// at most MaxRecvDataSegmentLength (the target's). `ttt` is the R2T's, or
    /// the reserved tag for unsolicited data. Stops quietly if the task ends.
    /// `more`: another PDU follows at once (`MSG_MORE` on the last one too).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_burst(
        &self,
        tx: &mut TxSide,
        tag: u16,
        seq: u64,
        ttt: u32,
        offset: u32,
        len: u32,
        more: bool,
    ) -> Result {
        let mut burst = Burst::new(offset, len);
        loop {
            let mut hdr = [0u8; BHS_LEN];
            let (piece, staged, conn) = {
                let mut st = self.state.lock();
                if st.e.phase != Phase::Running {
                    // The connection failed; the task went back for retry.
                    return Ok(());
                }
                let max =
                    st.e.params
                        .max_xmit_data_segment_len
                        .min(tx.buf.len() as u32);
                let Some(piece) = burst.next_piece(max) else {
                    return Ok(());
                };
                let by_ref = st.e.params.data_digest != Digest::Crc32c;
                let exp_stat_sn = st.e.seq.exp_stat_sn().get();
                let conn = st.conn.clone();
                let Some(task) = st.e.tasks.get(tag, seq) else {
                    return Ok(());
                };
                let staged = stage(&mut task.cmd, tx, piece.offset, piece.len, by_ref)?;
                DataOut {
                    final_bit: piece.last,
                    lun: task.lun,
                    itt: task.itt.get(),
                    ttt,
                    exp_stat_sn,
                    data_sn: piece.data_sn,
                    buffer_offset: piece.offset,
                    data_segment_len: piece.len,
                }
                .emit(&mut hdr);
                if piece.last {
                    st.e.burst_sent(tag, seq, ttt != RESERVED_TAG);
                }
                (piece, staged, conn)
            };
            send_staged(&conn, &hdr, tx, staged, !piece.last || more)?;
        }
    }

    pub(super) fn run_tx(this: Arc<Self>) {
        let mut tx = this.tx.lock();
        loop {
            let (job, exp_stat_sn, cmd_sn, ping_itt, logout_itt, conn) = {
                let mut st = this.state.lock();
                if !matches!(st.e.phase, Phase::Running | Phase::LoggingOut) {
                    return;
                }
                match st.e.ctl_jobs.pop().or_else(|| st.e.jobs.pop()) {
                    Some(j) => (
                        j,
                        st.e.seq.exp_stat_sn().get(),
                        st.e.seq.next_cmd_sn().get(),
                        st.e.ping_itt().get(),
                        st.e.internal_itt(LOGOUT_LOW).get(),
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
                } => this.send_burst(&mut tx, tag, seq, ttt, offset, len, false),
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
                        itt: logout_itt,
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
