//! The 8-byte SAM LUN field (SAM-5 §4.7, as carried in BHS bytes 8..16): single-level
//! peripheral device addressing (LUN < 256, bus 0) and flat space addressing
//! (LUN < 16384). Any other structure (other buses, multi-level, logical unit or
//! extended addressing) is kept raw so it can be echoed unchanged.

/// Address method in bits 7-6 of byte 0: peripheral device addressing.
const METHOD_PERIPHERAL: u8 = 0b00;
/// Address method in bits 7-6 of byte 0: flat space addressing.
const METHOD_FLAT: u8 = 0b01;
/// Largest LUN flat space addressing can carry.
pub const MAX_FLAT_LUN: u16 = 0x3fff;

/// A decoded LUN field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lun {
    /// Peripheral device addressing, bus 0: byte 0 is 0, byte 1 the LUN.
    Peripheral(u8),
    /// Flat space addressing: 14-bit LUN (values above [`MAX_FLAT_LUN`] are masked
    /// when encoded).
    Flat(u16),
    /// Any other encoding, as the 8 raw bytes (big endian).
    Other(u64),
}

impl Lun {
    /// The encoding Linux and most targets use for LUN `n`: peripheral below 256,
    /// flat below 16384, `None` above.
    pub const fn new(n: u16) -> Option<Lun> {
        if n < 256 {
            Some(Lun::Peripheral(n as u8))
        } else if n <= MAX_FLAT_LUN {
            Some(Lun::Flat(n))
        } else {
            None
        }
    }

    /// Decodes the 8-byte field (as `Bhs::lun_raw` returns it).
    pub const fn from_u64(raw: u64) -> Lun {
        let b = raw.to_be_bytes();
        // Single-level LUNs leave the lower levels (bytes 2..8) zero.
        if raw & 0x0000_ffff_ffff_ffff != 0 {
            return Lun::Other(raw);
        }
        match b[0] >> 6 {
            METHOD_PERIPHERAL if b[0] & 0x3f == 0 => Lun::Peripheral(b[1]),
            METHOD_FLAT => Lun::Flat(((b[0] & 0x3f) as u16) << 8 | b[1] as u16),
            _ => Lun::Other(raw),
        }
    }

    /// Encodes the 8-byte field.
    pub const fn to_u64(self) -> u64 {
        match self {
            Lun::Peripheral(n) => (n as u64) << 48,
            Lun::Flat(n) => {
                let n = n & MAX_FLAT_LUN;
                ((METHOD_FLAT as u64) << 62) | (n as u64) << 48
            }
            Lun::Other(raw) => raw,
        }
    }

    /// The LUN number for the two single-level forms, `None` for `Other`.
    pub const fn number(self) -> Option<u16> {
        match self {
            Lun::Peripheral(n) => Some(n as u16),
            Lun::Flat(n) => Some(n & MAX_FLAT_LUN),
            Lun::Other(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peripheral_bytes() {
        assert_eq!(Lun::new(0).unwrap().to_u64(), 0);
        assert_eq!(
            Lun::new(1).unwrap().to_u64().to_be_bytes(),
            [0, 1, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            Lun::new(255).unwrap().to_u64().to_be_bytes(),
            [0, 0xff, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(Lun::from_u64(0x0001_0000_0000_0000), Lun::Peripheral(1));
    }

    #[test]
    fn flat_bytes() {
        assert_eq!(Lun::new(256), Some(Lun::Flat(256)));
        assert_eq!(
            Lun::Flat(256).to_u64().to_be_bytes(),
            [0x41, 0x00, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            Lun::Flat(0x3fff).to_u64().to_be_bytes(),
            [0x7f, 0xff, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(Lun::new(0x3fff), Some(Lun::Flat(0x3fff)));
        assert_eq!(Lun::new(0x4000), None);
        // A flat LUN below 256 is valid and stays flat, so it re-encodes the same.
        assert_eq!(Lun::from_u64(0x4005_0000_0000_0000), Lun::Flat(5));
        assert_eq!(Lun::Flat(5).number(), Some(5));
        // Out-of-range values are masked to 14 bits rather than spilling into
        // the address method.
        assert_eq!(Lun::Flat(0xffff).to_u64(), 0x7fff_0000_0000_0000);
    }

    #[test]
    fn other_forms_are_kept_raw() {
        for raw in [
            0x0101_0000_0000_0000u64, // peripheral, bus 1
            0x8001_0000_0000_0000,    // logical unit addressing
            0xc000_0000_0000_0000,    // extended addressing
            0x0001_0002_0000_0000,    // two-level
            0x0000_0000_0000_0001,    // junk in the last byte
        ] {
            let l = Lun::from_u64(raw);
            assert_eq!(l, Lun::Other(raw));
            assert_eq!(l.to_u64(), raw);
            assert_eq!(l.number(), None);
        }
    }

    #[test]
    fn every_single_level_lun_round_trips() {
        for n in 0..=MAX_FLAT_LUN {
            let l = Lun::new(n).unwrap();
            assert_eq!(Lun::from_u64(l.to_u64()), l);
            assert_eq!(l.number(), Some(n));
        }
    }

    proptest::proptest! {
        #[test]
        fn decode_encode_is_identity(raw in proptest::prelude::any::<u64>()) {
            proptest::prop_assert_eq!(Lun::from_u64(raw).to_u64(), raw);
        }
    }
}
