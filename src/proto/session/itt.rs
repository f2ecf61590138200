//! Initiator Task Tags: how the session packs a connection's age, a per-tag
//! generation and the blk-mq tag into one ITT, and the low halves reserved for
//! the ping, the logout and task management.
//!
//! ITT = age (16 bits, bumped per connection) << 16 | generation (4 bits) << 12
//! | tag (12 bits). PDUs from an older connection never match a task, and a tag
//! reused right after an abort gets a different ITT, so a late PDU for the
//! aborted task cannot land in its successor.

use super::super::bhs::RESERVED_TAG;

/// ITT bits holding the blk-mq tag (uapi::MAX_QUEUE_DEPTH keeps tags below).
pub const TAG_MASK: u32 = 0x0fff;
/// Shift of the 4-bit per-tag generation.
const GEN_SHIFT: u32 = 12;
/// Mask of the generation once shifted down.
pub const GEN_MASK: u8 = 0xf;
/// Low half of a NOP-Out ping's ITT.
pub const PING_LOW: u16 = 0xfffd;
/// Low half of a Logout Request's ITT.
pub const LOGOUT_LOW: u16 = 0xffff;

/// An ITT as the session builds and reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Itt(u32);

impl Itt {
    /// The ITT as received.
    pub const fn from_wire(v: u32) -> Self {
        Itt(v)
    }

    /// The value on the wire.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// A command's ITT: `age`, the tag's `generation` (low 4 bits used) and
    /// the `tag` (low 12 bits used).
    pub const fn task(age: u16, generation: u8, tag: u16) -> Self {
        Itt(((age as u32) << 16)
            | (((generation & GEN_MASK) as u32) << GEN_SHIFT)
            | (tag as u32 & TAG_MASK))
    }

    /// A reserved low half (`PING_LOW`, `LOGOUT_LOW`, a TMF's) under `age`.
    pub const fn internal(age: u16, low: u16) -> Self {
        Itt(((age as u32) << 16) | low as u32)
    }

    /// The connection age in the high half.
    pub const fn age(self) -> u16 {
        (self.0 >> 16) as u16
    }

    /// The blk-mq tag (meaningful for command ITTs).
    pub const fn tag(self) -> u16 {
        (self.0 & TAG_MASK) as u16
    }

    /// The per-tag generation (meaningful for command ITTs).
    pub const fn generation(self) -> u8 {
        ((self.0 >> GEN_SHIFT) as u8) & GEN_MASK
    }

    /// Whether this is the reserved tag 0xffffffff (no task).
    pub const fn is_reserved(self) -> bool {
        self.0 == RESERVED_TAG
    }
}

/// The ITT age after `age`: never 0 (iscsictl's first) twice in a row and
/// never 0xffff (which with `LOGOUT_LOW` would be the reserved ITT).
pub const fn next_age(age: u16) -> u16 {
    match age.wrapping_add(1) {
        0xffff | 0 => 1,
        a => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let i = Itt::task(0x1234, 0xa, 0x7ff);
        assert_eq!(i.get(), 0x1234_a7ff);
        assert_eq!((i.age(), i.generation(), i.tag()), (0x1234, 0xa, 0x7ff));
    }

    #[test]
    fn generation_and_tag_are_masked() {
        let i = Itt::task(1, 0x1f, 0xffff);
        assert_eq!(i.generation(), 0xf);
        assert_eq!(i.tag(), 0xfff);
        assert_eq!(i.age(), 1);
    }

    #[test]
    fn generations_of_one_tag_differ() {
        let a = Itt::task(3, 1, 42);
        let b = Itt::task(3, 2, 42);
        assert_ne!(a, b);
        assert_eq!(a.tag(), b.tag());
    }

    #[test]
    fn internal_tags_never_meet_a_command() {
        let max_tag = super::super::super::uapi::MAX_QUEUE_DEPTH as u16;
        for age in [0u16, 1, 0x7fff, 0xfffe] {
            for low in [PING_LOW, LOGOUT_LOW, 0xf800, 0xfffc] {
                let i = Itt::internal(age, low);
                // Tags stay below MAX_QUEUE_DEPTH (2048), so a command ITT's
                // low half never reaches 0xf800.
                for g in 0..16u8 {
                    for tag in (0..max_tag).step_by(7).chain([max_tag - 1]) {
                        assert_ne!(i, Itt::task(age, g, tag));
                    }
                }
            }
        }
    }

    #[test]
    fn next_age_skips_zero_and_all_ones() {
        assert_eq!(next_age(0), 1);
        assert_eq!(next_age(1), 2);
        assert_eq!(next_age(0xfffe), 1);
        assert_eq!(next_age(0xffff), 1);
    }

    #[test]
    fn no_age_makes_the_reserved_itt() {
        let mut age = 0xfff0;
        for _ in 0..40 {
            age = next_age(age);
            assert!(!Itt::internal(age, LOGOUT_LOW).is_reserved());
        }
    }
}
