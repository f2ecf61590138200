//! SCSI error handling: Task Management requests (ABORT TASK, LOGICAL UNIT
//! RESET, TARGET WARM RESET) and what their answers hand back.

use super::*;

impl Session {
    /// Sends one Task Management request on lane `lane` and waits for its
    /// response. `None` when the connection is not running, fails, or the
    /// target does not answer in time (a late answer is then ignored).
    pub(super) fn tmf(
        &self,
        lane: usize,
        function: TmfFunction,
        lun: u64,
        ref_itt: u32,
        ref_cmd_sn: u32,
    ) -> Option<TmfResponse> {
        let _one = self.tmf_lock.lock();
        let itt;
        {
            // Commands queued before the TMF go first: the one it names must
            // reach the target before the request to abort it (on its lane).
            let lane_tx = self.lane(lane)?;
            let held = lane_tx.hold_tx().send_queued_now()?;
            let mut hdr = [0u8; BHS_LEN];
            let conn = {
                let mut st = self.state.lock();
                if st.e.phase != Phase::Running {
                    return None;
                }
                let age_bits = st.e.internal_itt(0).get();
                itt = st.e.tmf.start(age_bits, lane as u8);
                // Immediate: CmdSN is carried, not advanced.
                TaskMgmtRequest {
                    immediate: true,
                    function,
                    lun,
                    itt,
                    referenced_task_tag: ref_itt,
                    cmd_sn: st.e.seq.next_cmd_sn().get(),
                    exp_stat_sn: st.e.exp_stat_sn(lane),
                    ref_cmd_sn,
                    exp_data_sn: 0,
                }
                .emit(&mut hdr);
                st.conns.get(lane).and_then(Clone::clone)
            };
            let Some(conn) = conn else {
                self.state.lock().e.tmf.abandon(itt);
                return None;
            };
            if let Err(e) = conn.send_pdu(&hdr, &[], false) {
                drop(held);
                self.state.lock().e.tmf.abandon(itt);
                self.fail_on(
                    Some(lane),
                    reason::SOCKET,
                    format_args!("sending a TMF failed: {e:?}"),
                );
                return None;
            }
        }
        let mut left = msecs_to_jiffies(TMF_TIMEOUT_MS);
        let mut st = self.state.lock();
        loop {
            if let Some(r) = st.e.tmf.take_answer(itt) {
                return Some(r);
            }
            if st.e.phase != Phase::Running {
                st.e.tmf.abandon(itt);
                return None;
            }
            match self.events.wait_interruptible_timeout(&mut st, left) {
                CondVarTimeoutResult::Woken { jiffies } => left = jiffies,
                CondVarTimeoutResult::Timeout | CondVarTimeoutResult::Signal { .. } => {
                    // Not waited for any more: a late answer is ignored,
                    // never taken for the next TMF.
                    st.e.tmf.abandon(itt);
                    pr_warn!(
                        "host{}: no answer to {:?} (ITT {:#x}) in time\n",
                        self.host_no(),
                        function,
                        itt
                    );
                    return None;
                }
            }
        }
    }

    /// `eh_abort_handler`: ABORT TASK, on the task's connection. The
    /// receiver handles that connection's PDUs in order and the target
    /// answers a TMF only after any response it sent for the task on it, so
    /// once the answer is in, the task's table entry is final and may be
    /// handed back.
    pub(crate) fn eh_abort(this: &Arc<Self>, cmd: &EhCmd) -> EhAbort {
        let Some(lane) = this.task_lane(cmd) else {
            // Already completed: the midlayer owns it.
            return EhAbort::Success(None);
        };
        // A dead connection cannot abort anything: find out first (the ping
        // failing starts the reconnect, and the target reset waits for it).
        if !Self::ping_alive(this, lane) {
            return EhAbort::Failed;
        }
        this.abort_task(cmd)
    }

    /// The lane of `cmd`'s task, if it is still in flight.
    fn task_lane(&self, cmd: &EhCmd) -> Option<usize> {
        let tag = (cmd.unique_tag() & TAG_MASK) as u16;
        let st = self.state.lock();
        st.e.tasks
            .peek(tag)
            .filter(|t| cmd.is(&t.cmd))
            .map(|t| usize::from(t.lane))
    }

    pub(super) fn abort_task(&self, cmd: &EhCmd) -> EhAbort {
        let tag = (cmd.unique_tag() & TAG_MASK) as u16;
        let (itt, lun, cmd_sn, lane) = {
            let st = self.state.lock();
            match st.e.tasks.peek(tag) {
                Some(t) if cmd.is(&t.cmd) => (t.itt, t.lun, t.cmd_sn, usize::from(t.lane)),
                // Already completed: the midlayer owns it.
                _ => return EhAbort::Success(None),
            }
        };
        let answer = self.tmf(lane, TmfFunction::AbortTask, lun, itt.get(), cmd_sn);
        let mut st = self.state.lock();
        let ours =
            st.e.tasks
                .peek(tag)
                .is_some_and(|t| t.itt == itt && cmd.is(&t.cmd));
        match abort_outcome(answer, ours) {
            AbortOutcome::HandBack => EhAbort::Success(st.e.take_back(tag).map(|t| t.cmd)),
            AbortOutcome::AlreadyDone => EhAbort::Success(None),
            AbortOutcome::Escalate => {
                drop(st);
                pr_warn!(
                    "host{}: ABORT TASK of ITT {:#x}: {:?}{}\n",
                    self.host_no(),
                    itt.get(),
                    answer,
                    if ours {
                        ""
                    } else {
                        " (it completed meanwhile)"
                    }
                );
                EhAbort::Failed
            }
        }
    }

    /// Completes (with DID_RESET) and forgets every task `pred` selects. EH owns
    /// the commands it resets, for which `scsi_done` is a no-op; anything else
    /// the reset ended is handed back properly.
    pub(super) fn reset_tasks(&self, pred: impl Fn(&Task) -> bool) {
        loop {
            let task = self.state.lock().e.take_back_where(&pred);
            let Some(task) = task else { break };
            let mut cmd = task.cmd;
            cmd.set_result(HostByte::Reset, 0);
            cmd.complete();
        }
    }

    /// `eh_device_reset_handler`: LOGICAL UNIT RESET of the command's LUN.
    pub(crate) fn eh_device_reset(&self, cmd: &EhCmd) -> EhStatus {
        let lun = cmd.lun_sam();
        match self.tmf(
            self.first_lane(),
            TmfFunction::LogicalUnitReset,
            lun,
            RESERVED_TAG,
            0,
        ) {
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

    /// `eh_target_reset_handler`: TARGET WARM RESET, else a session reconnect
    /// (the connection dropped, every command handed back), waiting for the
    /// relogin like libiscsi's session reset: success once the session runs
    /// again, failure if the replacement timeout passes first.
    pub(crate) fn eh_target_reset(&self) -> EhStatus {
        if let Some(TmfResponse::Complete) = self.tmf(
            self.first_lane(),
            TmfFunction::TargetWarmReset,
            0,
            RESERVED_TAG,
            0,
        ) {
            self.reset_tasks(|_| true);
            return EhStatus::Success;
        }
        self.fail(
            reason::ERROR_HANDLING,
            format_args!("SCSI error handling escalated to a session reconnect"),
        );
        let mut st = self.state.lock();
        loop {
            match st.e.phase {
                Phase::Running => return EhStatus::Success,
                Phase::Offline | Phase::Closed => return EhStatus::Failed,
                Phase::Recovering | Phase::LoggingOut => {}
            }
            let _ = self
                .events
                .wait_interruptible_timeout(&mut st, msecs_to_jiffies(1000));
        }
    }
}

impl Session {
    /// The lane a request for no task in particular goes on: the first one
    /// up.
    fn first_lane(&self) -> usize {
        self.state.lock().e.route(LEAD).unwrap_or(LEAD)
    }
}
