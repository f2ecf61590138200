//! The closed-window rule: a target that keeps the command window closed while
//! commands wait gets a NOP-Out ping (its NOP-In carries the target's current
//! MaxCmdSN) and, if the window is still closed the NOP timeout after it, the
//! connection fails with a named reason. A target rejecting every command
//! freezes the window that way; without this rule the final cache flush, and so
//! logout, would wait forever. Times are milliseconds on any monotonic clock.

/// Closed this long with commands waiting: ping.
pub const WINDOW_PING_MS: i64 = 1_000;
/// The least time after the ping before failing, whatever the NOP timeout.
pub const WINDOW_STALL_MS: i64 = 5_000;

/// What the watchdog should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowAction {
    /// Nothing (yet).
    Wait,
    /// Send a NOP-Out ping.
    Ping,
    /// Fail the connection: closed this many ms, also after a ping.
    Fail {
        /// How long the window has been closed.
        closed_ms: i64,
    },
}

/// The closed-window timer of one connection.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WindowWatch {
    closed_since: Option<i64>,
    pinged_at: Option<i64>,
}

impl WindowWatch {
    /// A command found no credit at `now` (only the first time counts).
    pub fn closed(&mut self, now: i64) {
        if self.closed_since.is_none() {
            self.closed_since = Some(now);
        }
    }

    /// The window gave credit again (or the connection was replaced).
    pub fn opened(&mut self) {
        *self = WindowWatch::default();
    }

    /// Whether a closed window is being timed.
    pub fn is_closed(&self) -> bool {
        self.closed_since.is_some()
    }

    /// The action due at `now` and when to poll again if nothing is due.
    /// `ping_out` is when a ping already in flight was sent (a keepalive ping
    /// serves as well); `nop_timeout_ms` is the session's NOP timeout (0: off).
    pub fn poll(
        &mut self,
        now: i64,
        ping_out: Option<i64>,
        nop_timeout_ms: i64,
    ) -> (WindowAction, Option<i64>) {
        let Some(since) = self.closed_since else {
            return (WindowAction::Wait, None);
        };
        let limit = nop_timeout_ms.max(WINDOW_STALL_MS);
        let ping_due = since.saturating_add(WINDOW_PING_MS);
        if now < ping_due {
            return (WindowAction::Wait, Some(ping_due));
        }
        match self.pinged_at {
            None => {
                self.pinged_at = Some(ping_out.unwrap_or(now));
                let wake = Some(self.pinged_at.unwrap_or(now).saturating_add(limit));
                if ping_out.is_some() {
                    (WindowAction::Wait, wake)
                } else {
                    (WindowAction::Ping, wake)
                }
            }
            Some(at) if now.saturating_sub(at) >= limit => {
                *self = WindowWatch::default();
                (
                    WindowAction::Fail {
                        closed_ms: now - since,
                    },
                    None,
                )
            }
            Some(at) => (WindowAction::Wait, Some(at.saturating_add(limit))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_window_never_acts() {
        let mut w = WindowWatch::default();
        assert_eq!(w.poll(1_000_000, None, 5_000), (WindowAction::Wait, None));
    }

    #[test]
    fn closed_window_pings_then_fails_after_the_nop_timeout() {
        let mut w = WindowWatch::default();
        w.closed(100);
        w.closed(500); // later refusals do not restart the clock
        assert_eq!(w.poll(600, None, 15_000), (WindowAction::Wait, Some(1_100)));
        assert_eq!(
            w.poll(1_100, None, 15_000),
            (WindowAction::Ping, Some(16_100))
        );
        // The ping is not sent twice.
        assert_eq!(
            w.poll(2_000, None, 15_000),
            (WindowAction::Wait, Some(16_100))
        );
        assert_eq!(
            w.poll(16_100, None, 15_000),
            (WindowAction::Fail { closed_ms: 16_000 }, None)
        );
        // Reported once.
        assert_eq!(w.poll(20_000, None, 15_000), (WindowAction::Wait, None));
    }

    #[test]
    fn reopening_cancels_everything() {
        let mut w = WindowWatch::default();
        w.closed(0);
        assert_eq!(w.poll(1_000, None, 0).0, WindowAction::Ping);
        w.opened();
        assert!(!w.is_closed());
        assert_eq!(w.poll(60_000, None, 0), (WindowAction::Wait, None));
        // A new closure starts a new clock.
        w.closed(60_000);
        assert_eq!(w.poll(60_500, None, 0).0, WindowAction::Wait);
    }

    #[test]
    fn a_keepalive_ping_in_flight_serves() {
        let mut w = WindowWatch::default();
        w.closed(0);
        assert_eq!(
            w.poll(1_000, Some(400), 5_000),
            (WindowAction::Wait, Some(5_400))
        );
        assert_eq!(
            w.poll(5_400, None, 5_000).0,
            WindowAction::Fail { closed_ms: 5_400 }
        );
    }

    #[test]
    fn short_or_no_nop_timeout_still_waits_the_floor() {
        let mut w = WindowWatch::default();
        w.closed(0);
        assert_eq!(w.poll(1_000, None, 0), (WindowAction::Ping, Some(6_000)));
        assert_eq!(w.poll(5_999, None, 0).0, WindowAction::Wait);
        assert_eq!(
            w.poll(6_000, None, 0).0,
            WindowAction::Fail { closed_ms: 6_000 }
        );
    }
}
