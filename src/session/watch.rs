//! The session's watchdog: NOP-Out keepalive, the closed-window rule, the
//! replacement timeout, a target-requested logout's deadline; and the EH
//! liveness ping.

use super::*;

impl Session {
    /// The watchdog, one long-running work item per session until it closes
    /// (on the unbound `watch` queue, never on the I/O queue's rescuer):
    /// NOP-Out keepalive, the replacement timeout, the closed-window stall
    /// and host blocking.
    pub(super) fn run_watch(this: Arc<Self>) {
        let mut st = this.state.lock();
        loop {
            let now = now_ms();
            let mut wake = now + WATCH_IDLE_MS;
            let mut ping = false;
            let mut fail_ping = false;
            let mut stalled = None;
            let mut logout_overdue = None;
            let mut expired = false;
            match st.phase {
                Phase::Closed => return,
                Phase::Running => {
                    let interval = i64::from(st.noop_out_interval) * 1000;
                    let timeout = i64::from(st.noop_out_timeout) * 1000;
                    if let Some(sent) = st.ping_sent_ms {
                        // Anything received since the ping shows the target
                        // alive; only silence for the whole timeout fails.
                        let quiet_since = sent.max(st.last_rx_ms);
                        if timeout > 0 && now - quiet_since >= timeout {
                            fail_ping = true;
                        } else if timeout > 0 {
                            wake = wake.min(quiet_since + timeout);
                        }
                    } else if interval > 0 {
                        if now - st.last_rx_ms >= interval {
                            ping = true;
                        } else {
                            wake = wake.min(st.last_rx_ms + interval);
                        }
                    }
                    // The closed-window rule (see `WindowWatch`).
                    let ping_out = st.ping_sent_ms;
                    let (action, at) = st.window_watch.poll(now, ping_out, timeout);
                    if let Some(at) = at {
                        wake = wake.min(at);
                    }
                    match action {
                        WindowAction::Wait => {}
                        WindowAction::Ping => ping = true,
                        WindowAction::Fail { closed_ms } => stalled = Some(closed_ms),
                    }
                }
                Phase::Recovering => {
                    let deadline = st.failed_at_ms + i64::from(st.replacement_timeout) * 1000;
                    if now >= deadline {
                        st.phase = Phase::Offline;
                        expired = true;
                        this.events.notify_all();
                    } else {
                        wake = wake.min(deadline);
                    }
                }
                // A logout the target asked for must be answered in time.
                Phase::LoggingOut if st.reconnect_delay_ms.is_some() => {
                    match st.logout_watch.poll(now) {
                        Ok(Some(at)) => wake = wake.min(at),
                        Ok(None) => {}
                        Err(ms) => logout_overdue = Some(ms),
                    }
                }
                Phase::LoggingOut | Phase::Offline => {}
            }
            if ping {
                if st.ctl_jobs.push(TxJob::Ping) {
                    st.ping_sent_ms = Some(now);
                } else {
                    // The TX queue is full, so the connection is busy anyway.
                    ping = false;
                }
            }
            drop(st);
            if ping {
                Self::kick_tx(this.as_arc_borrow());
            }
            if fail_ping {
                this.fail(
                    reason::NOP_TIMEOUT,
                    format_args!("no answer to a NOP-Out ping (noop_out_timeout)"),
                );
            }
            if let Some(ms) = stalled {
                this.fail(
                    reason::PROTOCOL,
                    format_args!(
                        "command window closed for {ms} ms with commands waiting, also after a NOP-Out ping"
                    ),
                );
            }
            if let Some(ms) = logout_overdue {
                this.fail(
                    reason::PROTOCOL,
                    format_args!("no Logout Response in {ms} ms (the target asked for the logout)"),
                );
            }
            if expired {
                pr_err!(
                    "host{}: replacement timeout expired: failing I/O until the session is back\n",
                    this.host_no()
                );
                this.complete_all(HostByte::TransportFailfast);
            }
            this.sync_host();
            st = this.state.lock();
            if fail_ping || expired || ping || stalled.is_some() || logout_overdue.is_some() {
                continue;
            }
            let left = u32::try_from((wake - now_ms()).max(1)).unwrap_or(1000);
            let _ = this
                .events
                .wait_interruptible_timeout(&mut st, msecs_to_jiffies(left));
        }
    }

    /// Sends a NOP-Out ping (unless one is out) and waits for its answer:
    /// whether the connection is alive. No answer in time fails it.
    pub(super) fn ping_alive(this: &Arc<Self>) -> bool {
        let mut st = this.state.lock();
        if st.phase != Phase::Running {
            return false;
        }
        let timeout_ms = match st.noop_out_timeout {
            0 => EH_PING_TIMEOUT_MS,
            t => u32::from(t) * 1000,
        };
        if st.ping_sent_ms.is_none() {
            if !st.ctl_jobs.push(TxJob::Ping) {
                return true;
            }
            st.ping_sent_ms = Some(now_ms());
            drop(st);
            Self::kick_tx(this.as_arc_borrow());
            st = this.state.lock();
        }
        let mut left = msecs_to_jiffies(timeout_ms);
        loop {
            if st.phase != Phase::Running {
                return false;
            }
            if st.ping_sent_ms.is_none() {
                return true;
            }
            match this.events.wait_interruptible_timeout(&mut st, left) {
                CondVarTimeoutResult::Woken { jiffies } => left = jiffies,
                CondVarTimeoutResult::Timeout | CondVarTimeoutResult::Signal { .. } => break,
            }
        }
        // Anything received since the ping also shows the connection alive.
        let answered = match st.ping_sent_ms {
            None => true,
            Some(sent) => st.last_rx_ms > sent,
        };
        drop(st);
        if !answered {
            this.fail(
                reason::NOP_TIMEOUT,
                format_args!("no answer to the error handler's NOP-Out ping"),
            );
        }
        answered
    }
}
