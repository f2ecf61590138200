//! Additional Header Segments (RFC 7143 §11.2.2): the area of TotalAHSLength*4
//! bytes between the BHS and the header digest. Defines the Extended CDB (type 1)
//! and Bidirectional Expected Read-Data Length (type 2) AHSs, an iterator that
//! walks the area without trusting its lengths, and emit helpers.
//!
//! Each AHS is AHSLength (2 bytes), AHSType (1 byte), then AHSLength bytes of
//! AHS-specific data whose first byte is reserved for the two defined types, padded
//! to a 4-byte boundary.

use super::PduError;

/// AHSType of the Extended CDB AHS.
pub const TYPE_EXTENDED_CDB: u8 = 1;
/// AHSType of the Bidirectional Expected Read-Data Length AHS.
pub const TYPE_BIDI_READ_LEN: u8 = 2;
/// Largest AHS area TotalAHSLength (255 words) can describe.
pub const MAX_TOTAL_AHS_LEN: usize = 1020;
/// Bytes the Bidirectional Expected Read-Data Length AHS takes on the wire.
pub const BIDI_READ_LEN_AHS_LEN: usize = 8;
/// CDB bytes carried in the BHS itself.
pub const BHS_CDB_LEN: usize = 16;

/// AHSLength of the bidirectional AHS: reserved byte + 4-byte length.
const BIDI_AHS_LENGTH: u16 = 5;
/// AHSLength + AHSType.
const AHS_HEADER: usize = 3;

/// One decoded AHS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ahs<'a> {
    /// CDB bytes after the first 16 (which sit in the BHS).
    ExtendedCdb(&'a [u8]),
    /// Expected read-data length of a bidirectional command.
    BidiReadLength(u32),
    /// An AHS type this code does not know, kept whole.
    Unknown {
        /// AHSType.
        ahs_type: u8,
        /// The AHSLength AHS-specific bytes, padding excluded.
        specific: &'a [u8],
    },
}

/// Walks an AHS area. Yields `Err` once (then stops) if the area is not a whole
/// number of 4-byte words or an AHS runs past its end.
#[derive(Debug, Clone)]
pub struct AhsIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

/// Iterates over the AHSs in `area` (TotalAHSLength*4 bytes after the BHS).
pub fn iter(area: &[u8]) -> AhsIter<'_> {
    AhsIter {
        rest: area,
        failed: false,
    }
}

impl<'a> AhsIter<'a> {
    fn fail(&mut self, e: PduError) -> Option<Result<Ahs<'a>, PduError>> {
        self.failed = true;
        self.rest = &[];
        Some(Err(e))
    }
}

impl<'a> Iterator for AhsIter<'a> {
    type Item = Result<Ahs<'a>, PduError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        if self.rest.len() & 3 != 0 {
            return self.fail(PduError::AhsNotAligned);
        }
        let Some(&[l0, l1, ahs_type]) = self.rest.first_chunk::<AHS_HEADER>() else {
            return self.fail(PduError::AhsTruncated);
        };
        let len = u16::from_be_bytes([l0, l1]);
        // At most 3 + 65535 + 3: no overflow on any usize the kernel builds for.
        let end = AHS_HEADER + usize::from(len);
        let padded = (end + 3) & !3;
        let (Some(specific), Some(rest)) =
            (self.rest.get(AHS_HEADER..end), self.rest.get(padded..))
        else {
            return self.fail(PduError::AhsTruncated);
        };
        let ahs = match ahs_type {
            TYPE_EXTENDED_CDB => match specific.split_first() {
                Some((_reserved, tail)) => Ahs::ExtendedCdb(tail),
                None => return self.fail(PduError::BadAhsLength { ahs_type, len }),
            },
            TYPE_BIDI_READ_LEN => match specific {
                [_reserved, a, b, c, d] => {
                    Ahs::BidiReadLength(u32::from_be_bytes([*a, *b, *c, *d]))
                }
                _ => return self.fail(PduError::BadAhsLength { ahs_type, len }),
            },
            _ => Ahs::Unknown { ahs_type, specific },
        };
        self.rest = rest;
        Some(Ok(ahs))
    }
}

/// Splits a CDB into the 16 bytes for the BHS (zero padded) and the tail that
/// needs an Extended CDB AHS (empty for CDBs of 16 bytes or fewer).
pub fn split_cdb(cdb: &[u8]) -> ([u8; BHS_CDB_LEN], &[u8]) {
    let mut head = [0u8; BHS_CDB_LEN];
    let n = cdb.len().min(BHS_CDB_LEN);
    let (first, tail) = cdb.split_at(n);
    if let Some(dst) = head.get_mut(..n) {
        dst.copy_from_slice(first);
    }
    (head, tail)
}

/// Bytes an Extended CDB AHS for a `tail_len`-byte CDB tail takes on the wire
/// (header, reserved byte, tail, padding), or `None` if it cannot fit in the AHS
/// area.
pub const fn extended_cdb_ahs_len(tail_len: usize) -> Option<usize> {
    // 4 = AHSLength + AHSType + reserved byte, 3 = worst-case padding.
    let Some(raw) = tail_len.checked_add(4 + 3) else {
        return None;
    };
    let padded = raw & !3;
    if padded > MAX_TOTAL_AHS_LEN {
        None
    } else {
        Some(padded)
    }
}

/// Writes an Extended CDB AHS carrying `tail` (the CDB bytes after the first 16)
/// into `out`, padding with zeros; returns the bytes written.
pub fn emit_extended_cdb(tail: &[u8], out: &mut [u8]) -> Result<usize, PduError> {
    let total = extended_cdb_ahs_len(tail.len()).ok_or(PduError::AhsTooLong)?;
    // AHSLength counts the reserved byte and the tail: CDB length - 15.
    let ahs_length = u16::try_from(tail.len() + 1).map_err(|_| PduError::AhsTooLong)?;
    let dst = out.get_mut(..total).ok_or(PduError::BufferTooSmall)?;
    dst.fill(0);
    // `total` is at least 4 (header plus padding), so the split is in range.
    let (head, body) = dst.split_at_mut(4);
    let l = ahs_length.to_be_bytes();
    head.copy_from_slice(&[l[0], l[1], TYPE_EXTENDED_CDB, 0]);
    if let Some(dst) = body.get_mut(..tail.len()) {
        dst.copy_from_slice(tail);
    }
    Ok(total)
}

/// Writes a Bidirectional Expected Read-Data Length AHS into `out`; returns the
/// bytes written (always [`BIDI_READ_LEN_AHS_LEN`]).
pub fn emit_bidi_read_len(read_len: u32, out: &mut [u8]) -> Result<usize, PduError> {
    let dst = out
        .get_mut(..BIDI_READ_LEN_AHS_LEN)
        .and_then(|d| d.first_chunk_mut::<BIDI_READ_LEN_AHS_LEN>())
        .ok_or(PduError::BufferTooSmall)?;
    let l = BIDI_AHS_LENGTH.to_be_bytes();
    let v = read_len.to_be_bytes();
    *dst = [l[0], l[1], TYPE_BIDI_READ_LEN, 0, v[0], v[1], v[2], v[3]];
    Ok(BIDI_READ_LEN_AHS_LEN)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::super::fixtures::hex;
    use super::*;
    use std::vec::Vec;

    fn collect(area: &[u8]) -> Vec<Result<Ahs<'_>, PduError>> {
        iter(area).collect()
    }

    #[test]
    fn empty_area_has_no_ahs() {
        assert!(collect(&[]).is_empty());
    }

    #[test]
    fn bidi_read_length_bytes() {
        // Hand-built from RFC 7143 §11.2.2.3: read length 0x00010000.
        let area = hex("0005 02 00 00010000");
        assert_eq!(collect(&area), [Ok(Ahs::BidiReadLength(0x0001_0000))]);
        let mut out = [0xffu8; 8];
        assert_eq!(emit_bidi_read_len(0x0001_0000, &mut out), Ok(8));
        assert_eq!(&out[..], &area[..]);
        assert_eq!(
            emit_bidi_read_len(1, &mut [0u8; 7]),
            Err(PduError::BufferTooSmall)
        );
    }

    #[test]
    fn extended_cdb_for_a_32_byte_cdb() {
        // A 32-byte variable-length CDB: AHSLength = 32 - 15 = 17, 20 bytes on wire.
        let cdb: Vec<u8> = (0u8..32).collect();
        let (head, tail) = split_cdb(&cdb);
        assert_eq!(&head[..], &cdb[..16]);
        assert_eq!(tail.len(), 16);
        assert_eq!(extended_cdb_ahs_len(tail.len()), Some(20));
        let mut area = [0xeeu8; 20];
        assert_eq!(emit_extended_cdb(tail, &mut area), Ok(20));
        assert_eq!(&area[..4], &[0x00, 0x11, 0x01, 0x00]);
        assert_eq!(&area[4..], &cdb[16..]);
        assert_eq!(collect(&area), [Ok(Ahs::ExtendedCdb(&cdb[16..]))]);
    }

    #[test]
    fn extended_cdb_tail_is_padded_with_zeros() {
        // A 21-byte CDB: tail of 5, AHSLength 6, 4 + 5 + 3 bytes of padding.
        let tail = [1u8, 2, 3, 4, 5];
        assert_eq!(extended_cdb_ahs_len(5), Some(12));
        let mut area = [0xeeu8; 12];
        assert_eq!(emit_extended_cdb(&tail, &mut area), Ok(12));
        assert_eq!(area, [0, 6, 1, 0, 1, 2, 3, 4, 5, 0, 0, 0]);
        assert_eq!(collect(&area), [Ok(Ahs::ExtendedCdb(&tail[..]))]);
        assert_eq!(
            emit_extended_cdb(&tail, &mut [0u8; 11]),
            Err(PduError::BufferTooSmall)
        );
    }

    #[test]
    fn both_ahs_in_one_area() {
        let mut area = [0u8; 28];
        let tail = [0xaau8; 16];
        let n = emit_extended_cdb(&tail, &mut area).unwrap();
        let m = emit_bidi_read_len(512, &mut area[n..]).unwrap();
        assert_eq!(n + m, 28);
        assert_eq!(
            collect(&area),
            [
                Ok(Ahs::ExtendedCdb(&tail[..])),
                Ok(Ahs::BidiReadLength(512))
            ]
        );
    }

    #[test]
    fn unknown_type_is_kept() {
        let area = hex("0002 7f 00 ab 000000");
        assert_eq!(
            collect(&area),
            [Ok(Ahs::Unknown {
                ahs_type: 0x7f,
                specific: &[0x00, 0xab][..]
            })]
        );
    }

    #[test]
    fn length_past_the_end_is_an_error_not_a_panic() {
        let area = hex("0009 01 00 11223344");
        assert_eq!(collect(&area), [Err(PduError::AhsTruncated)]);
        let area = hex("ffff 01 00");
        assert_eq!(collect(&area), [Err(PduError::AhsTruncated)]);
        // The second AHS's padding runs past the end.
        let area = hex("0005 02 00 00000001 0006 01 00 11223344");
        assert_eq!(
            collect(&area),
            [Ok(Ahs::BidiReadLength(1)), Err(PduError::AhsTruncated)]
        );
    }

    #[test]
    fn unaligned_area_is_refused() {
        assert_eq!(collect(&[0, 1, 1]), [Err(PduError::AhsNotAligned)]);
        assert_eq!(
            collect(&hex("0005 02 00 00000001 00")),
            [Err(PduError::AhsNotAligned)]
        );
    }

    #[test]
    fn bad_lengths_for_known_types() {
        assert_eq!(
            collect(&hex("0004 02 00 00000000")),
            [Err(PduError::BadAhsLength {
                ahs_type: 2,
                len: 4
            })]
        );
        assert_eq!(
            collect(&hex("0000 01 00")),
            [Err(PduError::BadAhsLength {
                ahs_type: 1,
                len: 0
            })]
        );
    }

    #[test]
    fn too_long_extended_cdb_is_refused() {
        assert_eq!(extended_cdb_ahs_len(1016), Some(1020));
        assert_eq!(extended_cdb_ahs_len(1017), None);
        assert_eq!(extended_cdb_ahs_len(usize::MAX), None);
        assert_eq!(extended_cdb_ahs_len(usize::MAX - 5), None);
        let tail = [0u8; 1017];
        let mut out = [0u8; 1100];
        assert_eq!(
            emit_extended_cdb(&tail, &mut out),
            Err(PduError::AhsTooLong)
        );
    }

    #[test]
    fn short_cdb_needs_no_ahs() {
        let (head, tail) = split_cdb(&[0x12, 0, 0, 0, 36, 0]);
        assert_eq!(&head[..6], &[0x12, 0, 0, 0, 36, 0]);
        assert_eq!(&head[6..], &[0; 10]);
        assert!(tail.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn iterator_never_panics(
            area in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let mut seen = 0usize;
            for item in iter(&area) {
                seen += 1;
                if item.is_err() {
                    break;
                }
            }
            // Every AHS takes at least 4 bytes, so the walk is bounded.
            proptest::prop_assert!(seen <= area.len() / 4 + 1);
        }

        #[test]
        fn extended_cdb_round_trip(
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            read_len in proptest::prelude::any::<u32>(),
        ) {
            let mut area = [0u8; 320];
            let n = emit_extended_cdb(&tail, &mut area).unwrap();
            let m = emit_bidi_read_len(read_len, &mut area[n..]).unwrap();
            let got: Vec<_> = iter(&area[..n + m]).collect();
            proptest::prop_assert_eq!(
                got,
                std::vec![Ok(Ahs::ExtendedCdb(&tail[..])), Ok(Ahs::BidiReadLength(read_len))]
            );
        }
    }
}
