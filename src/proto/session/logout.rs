//! Logging out to reconnect (the target asked, Async Message event 1): how long
//! the phase may last and how long to wait before the relogin.
//!
//! RFC 7143 §11.15.2 gives the Logout Response's Time2Wait a meaning only at
//! ErrorRecoveryLevel 2 (before task reassignment) and after a failed logout
//! (response 2 or 3, before the next logout); at ERL 0 it is ignored and the
//! relogin waits DefaultTime2Wait. A target that never answers the Logout must
//! not leave the session logging out forever: the phase has a deadline.

/// How long the Logout Response may take before the connection is failed.
pub const LOGOUT_RESPONSE_TIMEOUT_MS: i64 = 10_000;

/// Milliseconds to wait before the relogin after a Logout Response with
/// `response` and `time2wait`, on a session at `erl` whose negotiated
/// DefaultTime2Wait is `default_time2wait`.
pub fn relogin_delay_ms(erl: u8, default_time2wait: u16, response: u8, time2wait: u16) -> u32 {
    let secs = if erl >= 2 || matches!(response, 2 | 3) {
        time2wait
    } else {
        default_time2wait
    };
    u32::from(secs) * 1000
}

/// The deadline of one logout.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LogoutWatch {
    sent_at: Option<i64>,
}

impl LogoutWatch {
    /// The Logout Request went out at `now`.
    pub fn sent(&mut self, now: i64) {
        self.sent_at = Some(now);
    }

    /// The logout ended (response, connection loss).
    pub fn done(&mut self) {
        self.sent_at = None;
    }

    /// `Err(waited_ms)` once the response is overdue (reported once), else
    /// when to look again.
    pub fn poll(&mut self, now: i64) -> Result<Option<i64>, i64> {
        match self.sent_at {
            None => Ok(None),
            Some(at) if now - at >= LOGOUT_RESPONSE_TIMEOUT_MS => {
                self.sent_at = None;
                Err(now - at)
            }
            Some(at) => Ok(Some(at + LOGOUT_RESPONSE_TIMEOUT_MS)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erl0_ignores_the_responses_time2wait() {
        // The bug: a Logout Response's Time2Wait of 3600 s delayed the
        // relogin an hour at ERL 0.
        assert_eq!(relogin_delay_ms(0, 2, 0, 3600), 2000);
        assert_eq!(relogin_delay_ms(1, 2, 0, 3600), 2000);
        assert_eq!(relogin_delay_ms(2, 2, 0, 7), 7000);
    }

    #[test]
    fn failed_logout_keeps_the_responses_time2wait() {
        assert_eq!(relogin_delay_ms(0, 2, 2, 5), 5000);
        assert_eq!(relogin_delay_ms(0, 2, 3, 0), 0);
        assert_eq!(relogin_delay_ms(0, 2, 1, 9), 2000);
    }

    #[test]
    fn an_unanswered_logout_expires_once() {
        let mut w = LogoutWatch::default();
        assert_eq!(w.poll(0), Ok(None));
        w.sent(1_000);
        assert_eq!(w.poll(5_000), Ok(Some(11_000)));
        assert_eq!(w.poll(11_000), Err(10_000));
        assert_eq!(w.poll(12_000), Ok(None));
    }

    #[test]
    fn an_answered_logout_never_expires() {
        let mut w = LogoutWatch::default();
        w.sent(0);
        w.done();
        assert_eq!(w.poll(1_000_000), Ok(None));
    }
}
