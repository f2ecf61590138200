//! The 48-byte Basic Header Segment (RFC 7143 §11.2.1): a checked view over a byte
//! buffer with named field ranges and the fields every PDU shares. Per-opcode
//! `Repr`s live in `super::pdu`.

use core::ops::Range;

/// Length of the Basic Header Segment in bytes.
pub const BHS_LEN: usize = 48;
const _: () = assert!(BHS_LEN == 48);

/// Largest DataSegmentLength the 24-bit field can carry.
pub const MAX_DATA_SEGMENT_LEN: u32 = 0x00ff_ffff;

/// Reserved Target Transfer Tag / Initiator Task Tag value.
pub const RESERVED_TAG: u32 = 0xffff_ffff;

/// Byte ranges of the BHS fields that mean the same for every opcode.
pub mod field {
    use core::ops::Range;
    /// Byte 0: bit 6 = Immediate, bits 0..5 = opcode.
    pub const OPCODE: usize = 0;
    /// Byte 1: bit 7 = Final, the rest opcode-specific.
    pub const FLAGS: usize = 1;
    /// Byte 4: TotalAHSLength in 4-byte words.
    pub const TOTAL_AHS_LEN: usize = 4;
    /// Bytes 5..8: DataSegmentLength, 24-bit big endian, excluding padding.
    pub const DATA_SEGMENT_LEN: Range<usize> = 5..8;
    /// Bytes 8..16: LUN or opcode-specific.
    pub const LUN: Range<usize> = 8..16;
    /// Bytes 16..20: Initiator Task Tag.
    pub const ITT: Range<usize> = 16..20;
}

/// Bit 6 of byte 0: the PDU is for immediate delivery.
pub const IMMEDIATE_BIT: u8 = 0x40;
/// Bit 7 of byte 1: final PDU of a sequence.
pub const FINAL_BIT: u8 = 0x80;
const OPCODE_MASK: u8 = 0x3f;

/// An iSCSI opcode (RFC 7143 §11.2.1.2). Opcodes we do not know are kept as
/// `Unknown` so the receiver can answer them with a Reject instead of dying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// 0x00 NOP-Out.
    NopOut,
    /// 0x01 SCSI Command.
    ScsiCommand,
    /// 0x02 SCSI Task Management Function Request.
    TaskMgmtRequest,
    /// 0x03 Login Request.
    LoginRequest,
    /// 0x04 Text Request.
    TextRequest,
    /// 0x05 SCSI Data-Out.
    DataOut,
    /// 0x06 Logout Request.
    LogoutRequest,
    /// 0x10 SNACK Request.
    SnackRequest,
    /// 0x20 NOP-In.
    NopIn,
    /// 0x21 SCSI Response.
    ScsiResponse,
    /// 0x22 SCSI Task Management Function Response.
    TaskMgmtResponse,
    /// 0x23 Login Response.
    LoginResponse,
    /// 0x24 Text Response.
    TextResponse,
    /// 0x25 SCSI Data-In.
    DataIn,
    /// 0x26 Logout Response.
    LogoutResponse,
    /// 0x31 Ready To Transfer.
    R2t,
    /// 0x32 Asynchronous Message.
    AsyncMessage,
    /// 0x3f Reject.
    Reject,
    /// Any other 6-bit value (vendor-specific 0x1c-0x1e / 0x3c-0x3e, or reserved).
    Unknown(u8),
}

impl Opcode {
    /// Decodes the low six bits of byte 0.
    pub const fn from_u8(byte: u8) -> Self {
        match byte & OPCODE_MASK {
            0x00 => Opcode::NopOut,
            0x01 => Opcode::ScsiCommand,
            0x02 => Opcode::TaskMgmtRequest,
            0x03 => Opcode::LoginRequest,
            0x04 => Opcode::TextRequest,
            0x05 => Opcode::DataOut,
            0x06 => Opcode::LogoutRequest,
            0x10 => Opcode::SnackRequest,
            0x20 => Opcode::NopIn,
            0x21 => Opcode::ScsiResponse,
            0x22 => Opcode::TaskMgmtResponse,
            0x23 => Opcode::LoginResponse,
            0x24 => Opcode::TextResponse,
            0x25 => Opcode::DataIn,
            0x26 => Opcode::LogoutResponse,
            0x31 => Opcode::R2t,
            0x32 => Opcode::AsyncMessage,
            0x3f => Opcode::Reject,
            other => Opcode::Unknown(other),
        }
    }

    /// The 6-bit wire value.
    pub const fn to_u8(self) -> u8 {
        match self {
            Opcode::NopOut => 0x00,
            Opcode::ScsiCommand => 0x01,
            Opcode::TaskMgmtRequest => 0x02,
            Opcode::LoginRequest => 0x03,
            Opcode::TextRequest => 0x04,
            Opcode::DataOut => 0x05,
            Opcode::LogoutRequest => 0x06,
            Opcode::SnackRequest => 0x10,
            Opcode::NopIn => 0x20,
            Opcode::ScsiResponse => 0x21,
            Opcode::TaskMgmtResponse => 0x22,
            Opcode::LoginResponse => 0x23,
            Opcode::TextResponse => 0x24,
            Opcode::DataIn => 0x25,
            Opcode::LogoutResponse => 0x26,
            Opcode::R2t => 0x31,
            Opcode::AsyncMessage => 0x32,
            Opcode::Reject => 0x3f,
            Opcode::Unknown(v) => v & OPCODE_MASK,
        }
    }

    /// True for opcodes a target sends (bit 5 set), false for initiator opcodes.
    pub const fn is_target_opcode(self) -> bool {
        self.to_u8() & 0x20 != 0
    }
}

/// Error from [`Bhs::new_checked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BhsError {
    /// Fewer than 48 bytes were given.
    Truncated,
}

/// Number of pad bytes that bring `len` up to a multiple of 4.
pub const fn pad_len(len: u32) -> u32 {
    (4 - (len & 3)) & 3
}

/// `len` rounded up to a multiple of 4, or `None` on overflow.
pub const fn padded_len(len: u32) -> Option<u32> {
    len.checked_add(pad_len(len))
}

/// A view of a Basic Header Segment. After [`Bhs::new_checked`] no accessor can
/// panic: every field range lies inside the first 48 bytes.
#[derive(Debug, Clone, Copy)]
pub struct Bhs<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Bhs<T> {
    /// Wraps `buffer` after checking it holds at least 48 bytes.
    pub fn new_checked(buffer: T) -> Result<Self, BhsError> {
        if buffer.as_ref().len() < BHS_LEN {
            return Err(BhsError::Truncated);
        }
        Ok(Bhs { buffer })
    }

    /// Gives back the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The 48 header bytes.
    pub fn header(&self) -> &[u8; BHS_LEN] {
        // The length was checked in new_checked, so this cannot fail; the fallback
        // keeps the accessor panic-free even so.
        const ZERO: [u8; BHS_LEN] = [0; BHS_LEN];
        match self.buffer.as_ref().get(..BHS_LEN) {
            Some(s) => s.try_into().unwrap_or(&ZERO),
            None => &ZERO,
        }
    }

    /// Byte at `index` (< 48).
    pub fn byte(&self, index: usize) -> u8 {
        self.header().get(index).copied().unwrap_or(0)
    }

    /// Big-endian u16 at `range` (2 bytes inside the BHS).
    pub fn be16(&self, range: Range<usize>) -> u16 {
        let mut out = [0u8; 2];
        if let Some(src) = self.header().get(range) {
            if src.len() == 2 {
                out.copy_from_slice(src);
            }
        }
        u16::from_be_bytes(out)
    }

    /// Big-endian u32 at `range` (4 bytes inside the BHS).
    pub fn be32(&self, range: Range<usize>) -> u32 {
        let mut out = [0u8; 4];
        if let Some(src) = self.header().get(range) {
            if src.len() == 4 {
                out.copy_from_slice(src);
            }
        }
        u32::from_be_bytes(out)
    }

    /// Big-endian u64 at `range` (8 bytes inside the BHS).
    pub fn be64(&self, range: Range<usize>) -> u64 {
        let mut out = [0u8; 8];
        if let Some(src) = self.header().get(range) {
            if src.len() == 8 {
                out.copy_from_slice(src);
            }
        }
        u64::from_be_bytes(out)
    }

    /// The opcode.
    pub fn opcode(&self) -> Opcode {
        Opcode::from_u8(self.byte(field::OPCODE))
    }

    /// The Immediate (I) bit.
    pub fn immediate(&self) -> bool {
        self.byte(field::OPCODE) & IMMEDIATE_BIT != 0
    }

    /// Byte 1 whole: the F bit and the opcode-specific flags.
    pub fn flags(&self) -> u8 {
        self.byte(field::FLAGS)
    }

    /// The Final (F) bit.
    pub fn final_bit(&self) -> bool {
        self.flags() & FINAL_BIT != 0
    }

    /// TotalAHSLength converted to bytes (the field counts 4-byte words).
    pub fn total_ahs_len(&self) -> usize {
        usize::from(self.byte(field::TOTAL_AHS_LEN)) * 4
    }

    /// DataSegmentLength in bytes, excluding padding.
    pub fn data_segment_len(&self) -> u32 {
        let r = self.header();
        u32::from_be_bytes([0, r[5], r[6], r[7]])
    }

    /// The 8-byte LUN field, raw.
    pub fn lun_raw(&self) -> u64 {
        self.be64(field::LUN)
    }

    /// The Initiator Task Tag.
    pub fn itt(&self) -> u32 {
        self.be32(field::ITT)
    }
}

impl<'a> Bhs<&'a [u8; BHS_LEN]> {
    /// Wraps an exact 48-byte header; cannot fail, so no `Result`.
    pub fn from_array(header: &'a [u8; BHS_LEN]) -> Self {
        Bhs { buffer: header }
    }
}

impl<'a> Bhs<&'a mut [u8; BHS_LEN]> {
    /// Wraps an exact 48-byte header for writing; cannot fail, so no `Result`.
    pub fn from_array_mut(header: &'a mut [u8; BHS_LEN]) -> Self {
        Bhs { buffer: header }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Bhs<T> {
    /// The 48 header bytes, writable.
    pub fn header_mut(&mut self) -> &mut [u8] {
        let buf = self.buffer.as_mut();
        let len = buf.len().min(BHS_LEN);
        &mut buf[..len]
    }

    /// Sets byte `index` (< 48).
    pub fn set_byte(&mut self, index: usize, value: u8) {
        if let Some(b) = self.header_mut().get_mut(index) {
            *b = value;
        }
    }

    /// Writes `value` big-endian into `range` (2 bytes).
    pub fn set_be16(&mut self, range: Range<usize>, value: u16) {
        if let Some(dst) = self.header_mut().get_mut(range) {
            if dst.len() == 2 {
                dst.copy_from_slice(&value.to_be_bytes());
            }
        }
    }

    /// Writes `value` big-endian into `range` (4 bytes).
    pub fn set_be32(&mut self, range: Range<usize>, value: u32) {
        if let Some(dst) = self.header_mut().get_mut(range) {
            if dst.len() == 4 {
                dst.copy_from_slice(&value.to_be_bytes());
            }
        }
    }

    /// Writes `value` big-endian into `range` (8 bytes).
    pub fn set_be64(&mut self, range: Range<usize>, value: u64) {
        if let Some(dst) = self.header_mut().get_mut(range) {
            if dst.len() == 8 {
                dst.copy_from_slice(&value.to_be_bytes());
            }
        }
    }

    /// Sets the opcode and the Immediate bit.
    pub fn set_opcode(&mut self, opcode: Opcode, immediate: bool) {
        let imm = if immediate { IMMEDIATE_BIT } else { 0 };
        self.set_byte(field::OPCODE, opcode.to_u8() | imm);
    }

    /// Sets byte 1 whole.
    pub fn set_flags(&mut self, flags: u8) {
        self.set_byte(field::FLAGS, flags);
    }

    /// Sets TotalAHSLength from a byte count; it must be a multiple of 4 and at
    /// most 1020, else `false` is returned and nothing is written.
    pub fn set_total_ahs_len(&mut self, bytes: usize) -> bool {
        if bytes & 3 != 0 || bytes / 4 > usize::from(u8::MAX) {
            return false;
        }
        self.set_byte(field::TOTAL_AHS_LEN, (bytes / 4) as u8);
        true
    }

    /// Sets DataSegmentLength; values above 2^24-1 are refused (`false`).
    pub fn set_data_segment_len(&mut self, len: u32) -> bool {
        if len > MAX_DATA_SEGMENT_LEN {
            return false;
        }
        let b = len.to_be_bytes();
        self.set_byte(5, b[1]);
        self.set_byte(6, b[2]);
        self.set_byte(7, b[3]);
        true
    }

    /// Sets the raw 8-byte LUN field.
    pub fn set_lun_raw(&mut self, lun: u64) {
        self.set_be64(field::LUN, lun);
    }

    /// Sets the Initiator Task Tag.
    pub fn set_itt(&mut self, itt: u32) {
        self.set_be32(field::ITT, itt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcode_round_trip_all_64() {
        for v in 0u8..64 {
            assert_eq!(Opcode::from_u8(v).to_u8(), v);
        }
        assert_eq!(Opcode::from_u8(0x40 | 0x01), Opcode::ScsiCommand);
        assert!(Opcode::DataIn.is_target_opcode());
        assert!(!Opcode::DataOut.is_target_opcode());
    }

    #[test]
    fn short_buffer_is_refused() {
        assert_eq!(
            Bhs::new_checked(&[0u8; 47][..]).err(),
            Some(BhsError::Truncated)
        );
    }

    #[test]
    fn common_fields() {
        let mut buf = [0u8; 48];
        let mut b = Bhs::new_checked(&mut buf[..]).unwrap();
        b.set_opcode(Opcode::ScsiCommand, true);
        b.set_flags(FINAL_BIT | 0x40);
        assert!(b.set_total_ahs_len(8));
        assert!(!b.set_total_ahs_len(6));
        assert!(b.set_data_segment_len(0x0012_3456));
        assert!(!b.set_data_segment_len(0x0100_0000));
        b.set_lun_raw(0x0001_0000_0000_0000);
        b.set_itt(0xdead_beef);
        assert_eq!(buf[0], 0x41);
        assert_eq!(&buf[4..8], &[2, 0x12, 0x34, 0x56]);
        let b = Bhs::new_checked(&buf[..]).unwrap();
        assert!(b.immediate());
        assert!(b.final_bit());
        assert_eq!(b.total_ahs_len(), 8);
        assert_eq!(b.data_segment_len(), 0x0012_3456);
        assert_eq!(b.itt(), 0xdead_beef);
        assert_eq!(b.lun_raw(), 0x0001_0000_0000_0000);
    }

    #[test]
    fn padding() {
        assert_eq!(pad_len(0), 0);
        assert_eq!(pad_len(1), 3);
        assert_eq!(pad_len(4), 0);
        assert_eq!(pad_len(7), 1);
        assert_eq!(padded_len(u32::MAX), None);
        assert_eq!(padded_len(5), Some(8));
    }
}
