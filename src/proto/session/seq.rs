//! Sequence numbers (RFC 7143 §4.2.2): the session's next CmdSN and command
//! window from ExpCmdSN/MaxCmdSN ([`Sequencer`]), and each connection's
//! ExpStatSN ([`StatSeq`]: StatSN counts per connection), with the
//! leniency open-iscsi shows real targets. What a strict reading would call a
//! violation but a target in the field sends (istgt counts an immediate Logout
//! in ExpCmdSN and bumps StatSN from two threads unlocked) is returned as a
//! [`Quirk`] for the caller to log, never as a connection failure: a window that
//! then stays closed is caught by [`super::window_watch`].

use core::fmt;

use super::super::pdu::PduError;
use super::super::serial::{window_size, CmdWindow, Sn};

/// A target behaviour outside RFC 7143 that the session rides through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quirk {
    /// ExpCmdSN beyond the next CmdSN: taken as the next CmdSN.
    ExpCmdSnAhead {
        /// ExpCmdSN as received.
        exp_cmd_sn: u32,
        /// Our next CmdSN.
        next_cmd_sn: u32,
    },
    /// StatSN repeated or went back: accepted, StatSN + 1 acknowledged.
    StatSnBack {
        /// StatSN as received.
        stat_sn: u32,
        /// The StatSN we expected.
        expected: u32,
    },
    /// MaxCmdSN below ExpCmdSN - 1 (or about 2^31 from the window held):
    /// ignored whole (RFC 7143 §4.2.2.1).
    BadWindow {
        /// ExpCmdSN as received.
        exp_cmd_sn: u32,
        /// MaxCmdSN as received.
        max_cmd_sn: u32,
    },
    /// A SCSI Response whose sense data does not fit its data segment: that
    /// command fails, the connection stays.
    BadSense {
        /// ITT of the command.
        itt: u32,
        /// Why the data segment was refused.
        error: PduError,
    },
    /// O or U set on a Data-In without status: ignored (RFC 7143 §11.7.5).
    StrayResidual {
        /// ITT of the command.
        itt: u32,
    },
}

impl Quirk {
    /// One bit per kind, for [`QuirkSet`].
    const fn bit(&self) -> u8 {
        match self {
            Quirk::ExpCmdSnAhead { .. } => 1 << 0,
            Quirk::StatSnBack { .. } => 1 << 1,
            Quirk::BadWindow { .. } => 1 << 2,
            Quirk::BadSense { .. } => 1 << 3,
            Quirk::StrayResidual { .. } => 1 << 4,
        }
    }
}

impl fmt::Display for Quirk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Quirk::ExpCmdSnAhead {
                exp_cmd_sn,
                next_cmd_sn,
            } => write!(
                f,
                "ExpCmdSN {exp_cmd_sn} beyond the next CmdSN {next_cmd_sn}: taken as {next_cmd_sn}"
            ),
            Quirk::StatSnBack { stat_sn, expected } => {
                write!(
                    f,
                    "StatSN {stat_sn} repeats or goes back (expected {expected})"
                )
            }
            Quirk::BadWindow {
                exp_cmd_sn,
                max_cmd_sn,
            } => write!(
                f,
                "invalid command window ExpCmdSN {exp_cmd_sn} MaxCmdSN {max_cmd_sn} ignored"
            ),
            Quirk::BadSense {
                itt,
                error:
                    PduError::SenseTooLong {
                        sense_len,
                        available,
                    },
            } => write!(
                f,
                "SenseLength {sense_len} exceeds the {available}-byte data segment \
                 (ITT {itt:#x}): the command fails"
            ),
            Quirk::BadSense { itt, error } => {
                write!(f, "SCSI Response ITT {itt:#x}: {error}: the command fails")
            }
            Quirk::StrayResidual { itt } => write!(
                f,
                "O/U residual bits on a Data-In without status ignored (ITT {itt:#x})"
            ),
        }
    }
}

/// The kinds of quirk a session has already reported: each is logged once per
/// session, a rate limit that still names every kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QuirkSet(u8);

impl QuirkSet {
    /// Records `q`; true the first time its kind is seen.
    pub fn first(&mut self, q: &Quirk) -> bool {
        let first = self.0 & q.bit() == 0;
        self.0 |= q.bit();
        first
    }
}

/// CmdSN and the command window: one per session, whichever connection a
/// command or a window update travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequencer {
    /// CmdSN of the next non-immediate command.
    cmd_sn: Sn,
    window: CmdWindow,
}

/// ExpStatSN of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatSeq {
    exp_stat_sn: Sn,
}

impl StatSeq {
    /// Starts from the connection's final Login Response: StatSN + 1.
    pub const fn new(exp_stat_sn: Sn) -> Self {
        StatSeq { exp_stat_sn }
    }

    /// The ExpStatSN to send.
    pub const fn exp_stat_sn(&self) -> Sn {
        self.exp_stat_sn
    }

    /// Accounts the StatSN of a status-bearing PDU. ERL 0 recovers no gap: a
    /// StatSN ahead is skipped to; one that repeats or goes back is taken as
    /// it is (a quirk), as open-iscsi does: ExpStatSN only lets the target
    /// free status kept for recovery, which ERL 0 never asks for.
    pub fn ack_stat_sn(&mut self, stat_sn: u32) -> Option<Quirk> {
        let s = Sn(stat_sn);
        let quirk = s.lt(self.exp_stat_sn).then_some(Quirk::StatSnBack {
            stat_sn,
            expected: self.exp_stat_sn.get(),
        });
        self.exp_stat_sn = s.next();
        quirk
    }
}

impl Sequencer {
    /// Starts from the leading connection's final Login Response: our next
    /// CmdSN and the window it gave.
    pub const fn new(cmd_sn: Sn, window: CmdWindow) -> Self {
        Sequencer { cmd_sn, window }
    }

    /// CmdSN of the next non-immediate command (also carried, unconsumed, by
    /// immediate PDUs).
    pub const fn next_cmd_sn(&self) -> Sn {
        self.cmd_sn
    }

    /// The command window held.
    pub const fn window(&self) -> CmdWindow {
        self.window
    }

    /// Non-immediate commands the window admits now.
    pub const fn credits(&self) -> u32 {
        self.window.credits(self.cmd_sn)
    }

    /// Consumes the next CmdSN for a non-immediate command. The caller checked
    /// [`Sequencer::credits`]; the target refuses a CmdSN outside its window,
    /// so sending one is never silent.
    pub fn take_cmd_sn(&mut self) -> Sn {
        let sn = self.cmd_sn;
        self.cmd_sn = sn.next();
        sn
    }

    /// Applies ExpCmdSN/MaxCmdSN from a target PDU. Stale values are ignored,
    /// and so is a pair with MaxCmdSN < ExpCmdSN - 1 (RFC 7143 §4.2.2.1). An
    /// ExpCmdSN beyond every CmdSN sent is taken as the next CmdSN so the
    /// MaxCmdSN beside it still counts: the window is MaxCmdSN's to give.
    pub fn apply_window(&mut self, exp_cmd_sn: u32, max_cmd_sn: u32) -> Option<Quirk> {
        let bad = Quirk::BadWindow {
            exp_cmd_sn,
            max_cmd_sn,
        };
        let mut exp = Sn(exp_cmd_sn);
        let mut quirk = None;
        if exp.gt(self.cmd_sn) {
            // The pair must be valid as sent before ExpCmdSN is replaced
            // (`update` checks only the pair it is given).
            if window_size(exp, Sn(max_cmd_sn)).is_err() {
                return Some(bad);
            }
            quirk = Some(Quirk::ExpCmdSnAhead {
                exp_cmd_sn,
                next_cmd_sn: self.cmd_sn.get(),
            });
            exp = self.cmd_sn;
        }
        match self.window.update(exp, Sn(max_cmd_sn)) {
            Ok(_) => quirk,
            // MaxCmdSN < ExpCmdSN - 1, or valid but ~2^31 from the window held.
            Err(_) => Some(bad),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Next CmdSN 10, window [10, 17].
    fn seq() -> Sequencer {
        let w = CmdWindow::new(Sn(10), Sn(17)).unwrap();
        Sequencer::new(Sn(10), w)
    }

    #[test]
    fn commands_consume_credits_in_order() {
        let mut s = seq();
        assert_eq!(s.credits(), 8);
        assert_eq!(s.take_cmd_sn(), Sn(10));
        assert_eq!(s.take_cmd_sn(), Sn(11));
        assert_eq!(s.next_cmd_sn(), Sn(12));
        assert_eq!(s.credits(), 6);
    }

    #[test]
    fn consistent_window_updates_apply_without_quirk() {
        let mut s = seq();
        for _ in 0..3 {
            s.take_cmd_sn();
        }
        assert_eq!(s.apply_window(13, 20), None);
        assert_eq!(s.window().exp_cmd_sn(), Sn(13));
        assert_eq!(s.credits(), 8);
        // Stale values: ignored, not a quirk.
        assert_eq!(s.apply_window(11, 15), None);
        assert_eq!(s.window().max_cmd_sn(), Sn(20));
    }

    #[test]
    fn expcmdsn_ahead_is_clamped_and_maxcmdsn_still_opens() {
        // istgt: the Logout Response counts the immediate Logout.
        let mut s = seq();
        s.take_cmd_sn(); // 10 sent, next 11
        let q = s.apply_window(12, 19);
        assert_eq!(
            q,
            Some(Quirk::ExpCmdSnAhead {
                exp_cmd_sn: 12,
                next_cmd_sn: 11
            })
        );
        assert_eq!(s.window().exp_cmd_sn(), Sn(11));
        assert_eq!(s.window().max_cmd_sn(), Sn(19));
        assert_eq!(s.credits(), 9);
    }

    #[test]
    fn expcmdsn_one_ahead_on_every_pdu_never_freezes_the_window() {
        // A target whose ExpCmdSN is always one too far: each command's
        // response must still open credit, else the session stalls.
        let mut s = seq();
        for i in 0..1000u32 {
            assert!(s.credits() > 0, "window froze after {i} commands");
            let sn = s.take_cmd_sn().get();
            let q = s.apply_window(sn + 2, sn + 9);
            assert!(matches!(q, Some(Quirk::ExpCmdSnAhead { .. })));
        }
        assert_eq!(s.next_cmd_sn(), Sn(1010));
    }

    #[test]
    fn absurd_window_is_ignored_whole() {
        let mut s = seq();
        let before = s.window();
        let q = s.apply_window(10, 10u32.wrapping_add((1 << 31) + 5));
        assert!(matches!(q, Some(Quirk::BadWindow { .. })));
        assert_eq!(s.window(), before);
        // MaxCmdSN < ExpCmdSN - 1.
        assert!(matches!(
            s.apply_window(10, 5),
            Some(Quirk::BadWindow { .. })
        ));
        assert_eq!(s.window(), before);
        // MaxCmdSN = ExpCmdSN - 1 is a closed window, not a quirk.
        assert_eq!(s.apply_window(10, 9), None);
    }

    #[test]
    fn window_jumping_half_the_space_is_refused() {
        let mut s = seq();
        let before = s.window();
        // Valid alone (size 1) but 2^31 from what we hold.
        let far = 10u32.wrapping_add(1 << 31);
        assert!(matches!(
            s.apply_window(10, far),
            Some(Quirk::BadWindow { .. })
        ));
        assert_eq!(s.window(), before);
    }

    #[test]
    fn statsn_forward_gap_is_skipped_silently() {
        let mut s = StatSeq::new(Sn(100));
        assert_eq!(s.ack_stat_sn(100), None);
        assert_eq!(s.ack_stat_sn(105), None);
        assert_eq!(s.exp_stat_sn(), Sn(106));
    }

    #[test]
    fn statsn_repeat_or_back_is_a_quirk_and_followed() {
        let mut s = StatSeq::new(Sn(100));
        assert_eq!(s.ack_stat_sn(100), None);
        assert_eq!(
            s.ack_stat_sn(100),
            Some(Quirk::StatSnBack {
                stat_sn: 100,
                expected: 101
            })
        );
        // open-iscsi: acknowledge the target's StatSN + 1.
        assert_eq!(s.exp_stat_sn(), Sn(101));
        assert!(s.ack_stat_sn(95).is_some());
        assert_eq!(s.exp_stat_sn(), Sn(96));
        assert_eq!(s.ack_stat_sn(96), None);
    }

    #[test]
    fn statsn_wraps() {
        let mut s = StatSeq::new(Sn(u32::MAX));
        assert_eq!(s.ack_stat_sn(u32::MAX), None);
        assert_eq!(s.ack_stat_sn(0), None);
        assert_eq!(s.exp_stat_sn(), Sn(1));
    }

    #[test]
    fn each_quirk_kind_is_reported_once() {
        let mut set = QuirkSet::default();
        let a = Quirk::StatSnBack {
            stat_sn: 1,
            expected: 2,
        };
        let b = Quirk::StatSnBack {
            stat_sn: 7,
            expected: 9,
        };
        let c = Quirk::StrayResidual { itt: 3 };
        assert!(set.first(&a));
        assert!(!set.first(&b));
        assert!(set.first(&c));
        assert!(!set.first(&c));
    }

    #[test]
    fn quirk_lines_name_the_numbers() {
        extern crate std;
        use std::string::ToString;
        let q = Quirk::ExpCmdSnAhead {
            exp_cmd_sn: 462,
            next_cmd_sn: 461,
        };
        assert_eq!(
            q.to_string(),
            "ExpCmdSN 462 beyond the next CmdSN 461: taken as 461"
        );
        let q = Quirk::BadSense {
            itt: 0x10,
            error: PduError::SenseTooLong {
                sense_len: 118,
                available: 18,
            },
        };
        assert_eq!(
            q.to_string(),
            "SenseLength 118 exceeds the 18-byte data segment (ITT 0x10): the command fails"
        );
    }
}
