//! The session's clocks as one poll: NOP-Out keepalive and its timeout (per
//! connection; any connection's silence fails the session at ERL 0), the
//! closed-window rule, a target-requested logout's deadline and the
//! replacement timeout. The caller's watchdog calls [`Engine::poll`] with the
//! time, does what it says and sleeps until `wake_at` (or an event).

use super::engine::{Engine, Phase, PingStart, Storage};
use super::lane::lane_bit;
use super::window_watch::WindowAction;

/// The session's timer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Ping after this much silence (0: no keepalive).
    pub noop_interval_ms: i64,
    /// Fail when a ping meets this much silence (0: never).
    pub noop_timeout_ms: i64,
    /// Recovering longer than this fails I/O fast.
    pub replacement_ms: i64,
    /// When the connections were lost (meaningful while recovering).
    pub failed_at_ms: i64,
}

/// Why a clock fails the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No answer to a NOP-Out ping, nor anything else, within the timeout.
    NoPingAnswer,
    /// The command window stayed closed with commands waiting, also after a
    /// ping.
    WindowClosed {
        /// How long it was closed.
        closed_ms: i64,
    },
    /// The target asked for a logout and did not answer ours in time.
    LogoutOverdue {
        /// How long we waited.
        waited_ms: i64,
    },
}

/// What is due at a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// Lanes a ping was queued on (bit k: lane k): kick their transmitters.
    pub pings: u16,
    /// Fail the connection.
    pub fail: Option<Expiry>,
    /// The replacement timeout passed: the phase is now `Offline`; fail
    /// held I/O fast.
    pub replacement_expired: bool,
    /// Poll again no later than this.
    pub wake_at: i64,
}

/// Longest sleep between polls when nothing is due sooner.
pub const IDLE_POLL_MS: i64 = 1_000;

impl<St: Storage> Engine<St> {
    /// What the clocks say at `now_ms` with settings `t`.
    pub fn poll(&mut self, now_ms: i64, t: &Timers) -> Due {
        let mut due = Due {
            pings: 0,
            fail: None,
            replacement_expired: false,
            wake_at: now_ms.saturating_add(IDLE_POLL_MS),
        };
        let wake = |at: i64, due: &mut Due| due.wake_at = due.wake_at.min(at);
        // Bit k: lane k wants a ping.
        let mut want_pings: u16 = 0;
        match self.phase {
            Phase::Running => {
                for (k, l) in self.lanes.iter().enumerate().filter(|(_, l)| l.up) {
                    if let Some(sent) = l.ping_sent_ms {
                        // Anything received since the ping shows the target
                        // alive; only silence for the whole timeout fails.
                        let quiet_since = sent.max(l.last_rx_ms);
                        if t.noop_timeout_ms > 0 {
                            let at = quiet_since.saturating_add(t.noop_timeout_ms);
                            if now_ms >= at {
                                due.fail = Some(Expiry::NoPingAnswer);
                            } else {
                                wake(at, &mut due);
                            }
                        }
                    } else if t.noop_interval_ms > 0 {
                        let at = l.last_rx_ms.saturating_add(t.noop_interval_ms);
                        if now_ms >= at {
                            want_pings |= lane_bit(k);
                        } else {
                            wake(at, &mut due);
                        }
                    }
                }
                // The window is the session's: its ping goes on the first
                // lane that is up.
                let first = self.route(0).unwrap_or(0);
                let first_ping = self.lane(first).and_then(|l| l.ping_sent_ms);
                let (action, at) = self
                    .window_watch
                    .poll(now_ms, first_ping, t.noop_timeout_ms);
                if let Some(at) = at {
                    wake(at, &mut due);
                }
                match action {
                    WindowAction::Wait => {}
                    WindowAction::Ping => want_pings |= lane_bit(first),
                    WindowAction::Fail { closed_ms } => {
                        due.fail = due.fail.or(Some(Expiry::WindowClosed { closed_ms }));
                    }
                }
            }
            Phase::Recovering => {
                let deadline = t.failed_at_ms.saturating_add(t.replacement_ms);
                if now_ms >= deadline {
                    self.phase = Phase::Offline;
                    due.replacement_expired = true;
                } else {
                    wake(deadline, &mut due);
                }
            }
            // A logout the target asked for must be answered in time.
            Phase::LoggingOut if self.reconnect_delay_ms.is_some() => {
                match self.logout_watch.poll(now_ms) {
                    Ok(Some(at)) => wake(at, &mut due),
                    Ok(None) => {}
                    Err(waited_ms) => due.fail = Some(Expiry::LogoutOverdue { waited_ms }),
                }
            }
            Phase::LoggingOut | Phase::Offline | Phase::Closed => {}
        }
        if due.fail.is_none() {
            for k in (0..self.lanes.len()).filter(|&k| want_pings & lane_bit(k) != 0) {
                let idle = self.lane(k).is_some_and(|l| l.ping_sent_ms.is_none());
                // A full control queue means the connection is busy anyway; a
                // deferred ping is tried again at the next poll.
                if idle && self.start_ping(k, now_ms) == PingStart::Queued {
                    due.pings |= lane_bit(k);
                }
            }
        }
        due
    }
}
