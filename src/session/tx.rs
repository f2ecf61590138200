//! Submission: `queuecommand` (the SCSI Command PDU and its immediate and
//! unsolicited data, inline) and the TX work that sends queued jobs (Data-Out
//! bursts answering R2Ts, NOP-Outs, the Logout).

use super::*;

impl Session {
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
    pub(super) fn send_burst(
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

    pub(super) fn run_tx(this: Arc<Self>) {
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
}
