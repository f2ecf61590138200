//! The session's watchdog, applying the engine's clocks
//! (`proto::session::timers`): NOP-Out keepalive, the closed-window rule,
//! the replacement timeout, a target-requested logout's deadline; the EH
//! liveness ping; and a transmit side left stopped at a full send buffer.

use super::*;

/// How often the watchdog looks at a transmit side stopped at a full send
/// buffer.
const TX_STALL_RECHECK_MS: u32 = 1000;

impl Session {
    /// The watchdog, one long-running work item per session until it closes
    /// (on the unbound `watch` queue, never on the I/O queue's rescuer).
    pub(super) fn run_watch(this: Arc<Self>) {
        let mut st = this.state.lock();
        loop {
            if st.e.phase == Phase::Closed {
                return;
            }
            let now = now_ms();
            let timers = Timers {
                noop_interval_ms: i64::from(st.noop_out_interval) * 1000,
                noop_timeout_ms: i64::from(st.noop_out_timeout) * 1000,
                replacement_ms: i64::from(st.replacement_timeout) * 1000,
                failed_at_ms: st.failed_at_ms,
            };
            let due = st.e.poll(now, &timers);
            if due.replacement_expired {
                this.events.notify_all();
            }
            drop(st);
            // A send stopped at a full buffer, and the socket has room but
            // no `write_space` came (TCP short of memory refused the send
            // with room to spare): look again.
            let mut blocked = false;
            for (lane, conn) in this.lanes().iter() {
                let (Some(lane), Some(conn)) = (lane, conn) else {
                    continue;
                };
                let stopped = lane.txf.blocked.load(Ordering::SeqCst);
                blocked |= stopped;
                if stopped && conn.sock.writeable() {
                    Lane::tx_room(lane.as_arc_borrow());
                }
                if due.pings & lane_bit(lane.idx) != 0 {
                    Lane::kick_tx(lane.as_arc_borrow());
                }
            }
            match due.fail {
                None => {}
                Some(Expiry::NoPingAnswer) => this.fail(
                    reason::NOP_TIMEOUT,
                    format_args!("no answer to a NOP-Out ping (noop_out_timeout)"),
                ),
                Some(Expiry::WindowClosed { closed_ms }) => this.fail(
                    reason::PROTOCOL,
                    format_args!(
                        "command window closed for {closed_ms} ms with commands waiting, also after a NOP-Out ping"
                    ),
                ),
                Some(Expiry::LogoutOverdue { waited_ms }) => this.fail(
                    reason::PROTOCOL,
                    format_args!(
                        "no Logout Response in {waited_ms} ms (the target asked for the logout)"
                    ),
                ),
            }
            if due.replacement_expired {
                pr_err!(
                    "host{}: replacement timeout expired: failing I/O until the session is back\n",
                    this.host_no()
                );
                this.complete_all(HostByte::TransportFailfast);
            }
            this.sync_host();
            st = this.state.lock();
            if due.fail.is_some() || due.replacement_expired || due.pings != 0 {
                continue;
            }
            let mut left = u32::try_from((due.wake_at - now_ms()).max(1)).unwrap_or(1000);
            if blocked {
                left = left.min(TX_STALL_RECHECK_MS);
            }
            let _ = this
                .events
                .wait_interruptible_timeout(&mut st, msecs_to_jiffies(left));
        }
    }

    /// Sends a NOP-Out ping on lane `lane` (unless one is out) and waits
    /// for its answer: whether the connection is alive. No answer in time
    /// fails it.
    pub(super) fn ping_alive(this: &Arc<Self>, lane: usize) -> bool {
        let mut st = this.state.lock();
        if st.e.phase != Phase::Running {
            return false;
        }
        let timeout_ms = match st.noop_out_timeout {
            0 => EH_PING_TIMEOUT_MS,
            t => u32::from(t) * 1000,
        };
        if ping_out(&st, lane).is_none() {
            if st.e.start_ping(lane, now_ms()) != PingStart::Queued {
                // The control queue is full (the connection is busy anyway),
                // or commands on other connections are not yet acknowledged
                // (no ping is safe then): the TMF that follows finds out.
                return true;
            }
            drop(st);
            this.kick_tx(lane);
            st = this.state.lock();
        }
        let mut left = msecs_to_jiffies(timeout_ms);
        loop {
            if st.e.phase != Phase::Running {
                return false;
            }
            if ping_out(&st, lane).is_none() {
                return true;
            }
            match this.events.wait_interruptible_timeout(&mut st, left) {
                CondVarTimeoutResult::Woken { jiffies } => left = jiffies,
                CondVarTimeoutResult::Timeout | CondVarTimeoutResult::Signal { .. } => break,
            }
        }
        // Anything received since the ping also shows the connection alive.
        let answered = match st.e.lane(lane) {
            Some(l) => l.ping_sent_ms.is_none_or(|sent| l.last_rx_ms > sent),
            None => true,
        };
        drop(st);
        if !answered {
            this.fail_on(
                Some(lane),
                reason::NOP_TIMEOUT,
                format_args!("no answer to the error handler's NOP-Out ping"),
            );
        }
        answered
    }
}

/// When the ping on lane `lane` went out, if one is out.
fn ping_out(st: &State, lane: usize) -> Option<i64> {
    st.e.lane(lane).and_then(|l| l.ping_sent_ms)
}
