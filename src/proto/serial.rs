//! RFC 1982 serial-number arithmetic with SERIAL_BITS = 32 for CmdSN, StatSN,
//! DataSN and R2TSN, and the CmdSN window rules of RFC 7143 §4.2.2.1.
//!
//! Nothing here can panic: additions wrap, and the one case RFC 1982 leaves
//! undefined (two numbers exactly 2^31 apart) answers `false` to every ordering
//! question, so a peer cannot steer a check either way with such a value.

use core::cmp::Ordering;

/// Half the sequence space: the largest forward step RFC 1982 defines is
/// `HALF - 1`, and two numbers `HALF` apart are incomparable.
const HALF: u32 = 1 << 31;

/// A 32-bit serial number.
///
/// Deliberately not `PartialOrd`/`Ord`: serial order is not transitive
/// (a < b < c does not imply a < c), so generic sorting or `max` would be wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Sn(pub u32);

impl Sn {
    /// The raw value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// Adds `n` modulo 2^32 (RFC 1982 §3.1). RFC 1982 defines the sum only for
    /// `n < 2^31`; larger `n` still wraps, which is what the wire carries.
    pub const fn add(self, n: u32) -> Sn {
        Sn(self.0.wrapping_add(n))
    }

    /// Subtracts `n` modulo 2^32 (e.g. `ExpCmdSN - 1`).
    pub const fn sub(self, n: u32) -> Sn {
        Sn(self.0.wrapping_sub(n))
    }

    /// The next number (`self + 1`, wrapping).
    pub const fn next(self) -> Sn {
        self.add(1)
    }

    /// Forward distance from `self` to `later`: how many increments turn `self`
    /// into `later` (modulo 2^32). Meaningful as an order only when
    /// `self.le(later)`.
    pub const fn distance(self, later: Sn) -> u32 {
        later.0.wrapping_sub(self.0)
    }

    /// Serial comparison (RFC 1982 §3.2); `None` when the numbers are exactly
    /// 2^31 apart, where the order is undefined.
    pub const fn compare(self, other: Sn) -> Option<Ordering> {
        let d = other.0.wrapping_sub(self.0);
        if d == 0 {
            Some(Ordering::Equal)
        } else if d < HALF {
            Some(Ordering::Less)
        } else if d > HALF {
            Some(Ordering::Greater)
        } else {
            None
        }
    }

    /// `self < other` in serial order; `false` when undefined.
    pub const fn lt(self, other: Sn) -> bool {
        matches!(self.compare(other), Some(Ordering::Less))
    }

    /// `self <= other` in serial order; `false` when undefined.
    pub const fn le(self, other: Sn) -> bool {
        matches!(
            self.compare(other),
            Some(Ordering::Less) | Some(Ordering::Equal)
        )
    }

    /// `self > other` in serial order; `false` when undefined.
    pub const fn gt(self, other: Sn) -> bool {
        matches!(self.compare(other), Some(Ordering::Greater))
    }

    /// `self >= other` in serial order; `false` when undefined.
    pub const fn ge(self, other: Sn) -> bool {
        matches!(
            self.compare(other),
            Some(Ordering::Greater) | Some(Ordering::Equal)
        )
    }
}

impl From<u32> for Sn {
    fn from(v: u32) -> Self {
        Sn(v)
    }
}

impl From<Sn> for u32 {
    fn from(sn: Sn) -> Self {
        sn.0
    }
}

/// A target announced a command window that RFC 7143 §4.2.2.1 forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowError {
    /// MaxCmdSN < ExpCmdSN - 1 in serial order (or exactly 2^31 away from it,
    /// where the order is undefined). The initiator must ignore both values.
    MaxBelowExpMinusOne {
        /// The ExpCmdSN that came with it.
        exp_cmd_sn: u32,
        /// The offending MaxCmdSN.
        max_cmd_sn: u32,
    },
    /// The pair is valid on its own but, merged with the local window, would
    /// give an invalid one: the target jumped by about 2^31. Nothing was applied.
    Inconsistent {
        /// The ExpCmdSN from the PDU.
        exp_cmd_sn: u32,
        /// The MaxCmdSN from the PDU.
        max_cmd_sn: u32,
    },
}

/// Number of CmdSNs the window `[exp_cmd_sn, max_cmd_sn]` admits: 0 when it is
/// closed (MaxCmdSN = ExpCmdSN - 1), else `MaxCmdSN - ExpCmdSN + 1` (< 2^31).
pub const fn window_size(exp_cmd_sn: Sn, max_cmd_sn: Sn) -> Result<u32, WindowError> {
    // Measured from ExpCmdSN - 1 so that the closed window is distance 0 and
    // any valid window is a defined, forward serial distance (< 2^31).
    let d = exp_cmd_sn.sub(1).distance(max_cmd_sn);
    if d < HALF {
        Ok(d)
    } else {
        Err(WindowError::MaxBelowExpMinusOne {
            exp_cmd_sn: exp_cmd_sn.0,
            max_cmd_sn: max_cmd_sn.0,
        })
    }
}

/// True when the pair (ExpCmdSN, MaxCmdSN) from a target PDU may be used at all:
/// RFC 7143 §4.2.2.1 makes the initiator ignore both when
/// MaxCmdSN < ExpCmdSN - 1.
pub const fn window_update_valid(exp_cmd_sn: Sn, max_cmd_sn: Sn) -> bool {
    window_size(exp_cmd_sn, max_cmd_sn).is_ok()
}

/// May a non-immediate command with `cmd_sn` be sent: is
/// ExpCmdSN <= CmdSN <= MaxCmdSN? `Ok(false)` when the window is closed or the
/// number lies outside it; `Err` when the window itself is invalid.
pub const fn in_window(cmd_sn: Sn, exp_cmd_sn: Sn, max_cmd_sn: Sn) -> Result<bool, WindowError> {
    match window_size(exp_cmd_sn, max_cmd_sn) {
        Ok(size) => Ok(exp_cmd_sn.distance(cmd_sn) < size),
        Err(e) => Err(e),
    }
}

/// What [`CmdWindow::update`] did with the values from one PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowUpdate {
    /// The local ExpCmdSN moved forward.
    pub exp_advanced: bool,
    /// The local MaxCmdSN moved forward (the window may have reopened).
    pub max_advanced: bool,
}

/// The initiator's view of the session command window: the newest ExpCmdSN and
/// MaxCmdSN accepted from the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CmdWindow {
    exp_cmd_sn: Sn,
    max_cmd_sn: Sn,
}

impl CmdWindow {
    /// Starts from the values of the final Login Response; refuses an invalid pair.
    pub const fn new(exp_cmd_sn: Sn, max_cmd_sn: Sn) -> Result<Self, WindowError> {
        match window_size(exp_cmd_sn, max_cmd_sn) {
            Ok(_) => Ok(CmdWindow {
                exp_cmd_sn,
                max_cmd_sn,
            }),
            Err(e) => Err(e),
        }
    }

    /// The local ExpCmdSN.
    pub const fn exp_cmd_sn(&self) -> Sn {
        self.exp_cmd_sn
    }

    /// The local MaxCmdSN.
    pub const fn max_cmd_sn(&self) -> Sn {
        self.max_cmd_sn
    }

    /// Applies ExpCmdSN/MaxCmdSN from a target PDU per RFC 7143 §4.2.2.1: an
    /// invalid pair is ignored whole (reported as `Err` so the caller can count
    /// it); otherwise each value replaces the local one unless it is older.
    /// A value exactly 2^31 from the local one has no defined order and is
    /// ignored rather than trusted; a pair that would leave an invalid merged
    /// window is refused whole ([`WindowError::Inconsistent`]). On `Err` nothing
    /// changes, and RFC 7143 asks for no more than ignoring the values.
    pub fn update(&mut self, exp_cmd_sn: Sn, max_cmd_sn: Sn) -> Result<WindowUpdate, WindowError> {
        window_size(exp_cmd_sn, max_cmd_sn)?;
        let exp_advanced = exp_cmd_sn.gt(self.exp_cmd_sn);
        let max_advanced = max_cmd_sn.gt(self.max_cmd_sn);
        let exp = if exp_advanced {
            exp_cmd_sn
        } else {
            self.exp_cmd_sn
        };
        let max = if max_advanced {
            max_cmd_sn
        } else {
            self.max_cmd_sn
        };
        // Two valid windows merged bound by bound stay valid unless the target
        // jumped by about 2^31; then keep the old state rather than guess.
        if window_size(exp, max).is_err() {
            return Err(WindowError::Inconsistent {
                exp_cmd_sn: exp_cmd_sn.0,
                max_cmd_sn: max_cmd_sn.0,
            });
        }
        self.exp_cmd_sn = exp;
        self.max_cmd_sn = max;
        Ok(WindowUpdate {
            exp_advanced,
            max_advanced,
        })
    }

    /// Number of new non-immediate commands that may be sent now, given the next
    /// CmdSN to be assigned.
    pub const fn credits(&self, next_cmd_sn: Sn) -> u32 {
        if next_cmd_sn.lt(self.exp_cmd_sn) {
            // Cannot happen with a sane target; report a closed window.
            return 0;
        }
        let d = next_cmd_sn.distance(self.max_cmd_sn.next());
        if d < HALF {
            d
        } else {
            0
        }
    }

    /// True when `cmd_sn` lies in [ExpCmdSN, MaxCmdSN].
    pub const fn contains(&self, cmd_sn: Sn) -> bool {
        matches!(
            in_window(cmd_sn, self.exp_cmd_sn, self.max_cmd_sn),
            Ok(true)
        )
    }

    /// True when MaxCmdSN = ExpCmdSN - 1: the target accepts no new command.
    pub const fn is_closed(&self) -> bool {
        self.max_cmd_sn.0 == self.exp_cmd_sn.sub(1).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1982_basic_order() {
        assert!(Sn(1).lt(Sn(2)));
        assert!(Sn(2).gt(Sn(1)));
        assert!(Sn(5).le(Sn(5)) && Sn(5).ge(Sn(5)));
        assert!(!Sn(5).lt(Sn(5)) && !Sn(5).gt(Sn(5)));
        assert_eq!(Sn(7).compare(Sn(7)), Some(Ordering::Equal));
    }

    #[test]
    fn wrap_around_at_2_pow_32() {
        assert!(Sn(u32::MAX).lt(Sn(0)));
        assert!(Sn(0).gt(Sn(u32::MAX)));
        assert!(Sn(0xffff_fff0).lt(Sn(0x10)));
        assert_eq!(Sn(u32::MAX).next(), Sn(0));
        assert_eq!(Sn(u32::MAX).add(5), Sn(4));
        assert_eq!(Sn(3).sub(5), Sn(u32::MAX - 1));
        assert_eq!(Sn(u32::MAX).distance(Sn(4)), 5);
        assert_eq!(Sn(4).distance(Sn(u32::MAX)), u32::MAX - 4);
    }

    #[test]
    fn largest_defined_step_and_beyond() {
        let a = Sn(100);
        assert!(a.lt(a.add(HALF - 1)));
        assert!(a.gt(a.add(HALF + 1)));
        assert!(a.add(HALF - 1).gt(a));
    }

    #[test]
    fn undefined_pair_answers_false_everywhere() {
        for base in [0u32, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX] {
            let a = Sn(base);
            let b = a.add(HALF);
            assert_eq!(a.compare(b), None);
            assert_eq!(b.compare(a), None);
            assert!(!a.lt(b) && !a.le(b) && !a.gt(b) && !a.ge(b));
            assert!(!b.lt(a) && !b.le(a) && !b.gt(a) && !b.ge(a));
        }
    }

    #[test]
    fn comparison_is_antisymmetric() {
        let samples = [
            0u32,
            1,
            2,
            0x7fff_fffe,
            0x7fff_ffff,
            0x8000_0000,
            0x8000_0001,
            u32::MAX,
        ];
        for &x in &samples {
            for &y in &samples {
                let (a, b) = (Sn(x), Sn(y));
                assert_eq!(a.lt(b), b.gt(a));
                assert_eq!(a.le(b), b.ge(a));
                assert!(!(a.lt(b) && b.lt(a)));
                assert_eq!(a.le(b), a.lt(b) || a == b);
            }
        }
    }

    #[test]
    fn window_open_closed_invalid() {
        // Open: ExpCmdSN 10, MaxCmdSN 12 admits 10, 11, 12.
        assert_eq!(window_size(Sn(10), Sn(12)), Ok(3));
        assert_eq!(in_window(Sn(9), Sn(10), Sn(12)), Ok(false));
        assert_eq!(in_window(Sn(10), Sn(10), Sn(12)), Ok(true));
        assert_eq!(in_window(Sn(12), Sn(10), Sn(12)), Ok(true));
        assert_eq!(in_window(Sn(13), Sn(10), Sn(12)), Ok(false));
        // Single slot.
        assert_eq!(in_window(Sn(10), Sn(10), Sn(10)), Ok(true));
        // Closed: MaxCmdSN = ExpCmdSN - 1 is valid but admits nothing.
        assert_eq!(window_size(Sn(10), Sn(9)), Ok(0));
        assert_eq!(in_window(Sn(10), Sn(10), Sn(9)), Ok(false));
        assert_eq!(in_window(Sn(9), Sn(10), Sn(9)), Ok(false));
        assert!(window_update_valid(Sn(10), Sn(9)));
        // Invalid: MaxCmdSN < ExpCmdSN - 1.
        let err = Err(WindowError::MaxBelowExpMinusOne {
            exp_cmd_sn: 10,
            max_cmd_sn: 8,
        });
        assert_eq!(window_size(Sn(10), Sn(8)), err);
        assert_eq!(in_window(Sn(10), Sn(10), Sn(8)), err.map(|_| false));
        assert!(!window_update_valid(Sn(10), Sn(8)));
    }

    #[test]
    fn window_across_wrap() {
        let exp = Sn(u32::MAX - 1);
        let max = Sn(2);
        assert_eq!(window_size(exp, max), Ok(5));
        for v in [u32::MAX - 1, u32::MAX, 0, 1, 2] {
            assert_eq!(in_window(Sn(v), exp, max), Ok(true), "{v}");
        }
        assert_eq!(in_window(Sn(3), exp, max), Ok(false));
        assert_eq!(in_window(Sn(u32::MAX - 2), exp, max), Ok(false));
        // Closed across the wrap: ExpCmdSN 0, MaxCmdSN 0xffffffff.
        assert_eq!(window_size(Sn(0), Sn(u32::MAX)), Ok(0));
        // Invalid across the wrap.
        assert!(!window_update_valid(Sn(1), Sn(u32::MAX)));
    }

    #[test]
    fn window_size_limits() {
        // Largest defined window: 2^31 - 1 slots.
        assert_eq!(window_size(Sn(0), Sn(HALF - 2)), Ok(HALF - 1));
        // MaxCmdSN exactly 2^31 past ExpCmdSN - 1: undefined, so invalid.
        assert!(window_size(Sn(0), Sn(HALF - 1)).is_err());
    }

    #[test]
    fn cmd_window_update_rules() {
        let mut w = CmdWindow::new(Sn(10), Sn(20)).unwrap();
        // Newer values advance both.
        assert_eq!(
            w.update(Sn(12), Sn(25)),
            Ok(WindowUpdate {
                exp_advanced: true,
                max_advanced: true
            })
        );
        assert_eq!((w.exp_cmd_sn(), w.max_cmd_sn()), (Sn(12), Sn(25)));
        // Older values (reordered responses on another connection) are ignored.
        assert_eq!(
            w.update(Sn(11), Sn(22)),
            Ok(WindowUpdate {
                exp_advanced: false,
                max_advanced: false
            })
        );
        assert_eq!((w.exp_cmd_sn(), w.max_cmd_sn()), (Sn(12), Sn(25)));
        // Invalid pair is ignored whole and reported.
        assert!(w.update(Sn(30), Sn(26)).is_err());
        assert_eq!((w.exp_cmd_sn(), w.max_cmd_sn()), (Sn(12), Sn(25)));
        // A closed window from the target.
        w.update(Sn(26), Sn(25)).unwrap();
        assert!(w.is_closed());
        assert_eq!(w.credits(Sn(26)), 0);
        assert!(!w.contains(Sn(26)));
        // Reopened by a NOP-In.
        w.update(Sn(26), Sn(29)).unwrap();
        assert!(!w.is_closed());
        assert_eq!(w.credits(Sn(26)), 4);
        assert_eq!(w.credits(Sn(28)), 2);
        assert!(w.contains(Sn(29)));
    }

    #[test]
    fn cmd_window_rejects_invalid_start_and_wraps() {
        assert!(CmdWindow::new(Sn(5), Sn(3)).is_err());
        let mut w = CmdWindow::new(Sn(u32::MAX), Sn(u32::MAX)).unwrap();
        assert_eq!(w.credits(Sn(u32::MAX)), 1);
        w.update(Sn(1), Sn(7)).unwrap();
        assert_eq!((w.exp_cmd_sn(), w.max_cmd_sn()), (Sn(1), Sn(7)));
        assert_eq!(w.credits(Sn(1)), 7);
        // A next CmdSN behind ExpCmdSN (broken caller) gives no credit, no panic.
        assert_eq!(w.credits(Sn(0)), 0);
    }

    #[test]
    fn cmd_window_ignores_undefined_jump() {
        let mut w = CmdWindow::new(Sn(10), Sn(20)).unwrap();
        // ExpCmdSN 2^31 away has no order; MaxCmdSN alone would advance and
        // leave ExpCmdSN 10 with a window wider than 2^31: refused whole.
        let far = Sn(10).add(HALF);
        assert_eq!(
            w.update(far, far.add(5)),
            Err(WindowError::Inconsistent {
                exp_cmd_sn: far.0,
                max_cmd_sn: far.0 + 5
            })
        );
        assert_eq!((w.exp_cmd_sn(), w.max_cmd_sn()), (Sn(10), Sn(20)));
        // Both bounds exactly 2^31 away: neither has an order, both ignored.
        let r = w.update(far, Sn(20).add(HALF)).unwrap();
        assert!(!r.exp_advanced && !r.max_advanced);
        assert_eq!((w.exp_cmd_sn(), w.max_cmd_sn()), (Sn(10), Sn(20)));
    }

    #[test]
    fn conversions() {
        assert_eq!(Sn::from(7u32), Sn(7));
        assert_eq!(u32::from(Sn(9)), 9);
        assert_eq!(Sn(9).get(), 9);
    }
}
