//! Per-opcode `Repr`s (RFC 7143 §11): each `parse`s a Basic Header Segment into plain
//! fields and `emit`s them back as 48 bytes, plus the [`Pdu`] enum over all opcodes,
//! Additional Header Segments ([`ahs`]) and SAM LUN encoding ([`lun`]).
//!
//! Reprs describe headers only: data segments stay in the caller's buffers and are
//! sized by each Repr's `data_segment_len`. Parsing ignores reserved fields (as the
//! RFC asks) but refuses values that would mislead the caller, each with its own
//! [`PduError`] variant, so the connection can be failed with a precise reason.

use super::bhs::{Bhs, Opcode, BHS_LEN, MAX_DATA_SEGMENT_LEN};

pub mod ahs;
pub mod lun;

mod async_msg;
mod data;
mod login;
mod logout;
mod nop;
mod reject;
mod scsi;
mod snack;
mod text;
mod tmf;

#[cfg(test)]
mod fixtures;

pub use async_msg::{AsyncEvent, AsyncMessage};
pub use data::{DataIn, DataOut, R2t};
pub use login::{LoginRequest, LoginResponse, Stage};
pub use logout::{
    LogoutReason, LogoutRequest, LogoutResponse, LOGOUT_CID_NOT_FOUND, LOGOUT_CLEANUP_FAILED,
    LOGOUT_RECOVERY_NOT_SUPPORTED, LOGOUT_SUCCESS,
};
pub use nop::{NopIn, NopOut};
pub use reject::{Reject, RejectReason};
pub use scsi::{
    ScsiCommand, ScsiResponse, ScsiResponseData, TaskAttr, RESPONSE_COMPLETED,
    RESPONSE_TARGET_FAILURE,
};
pub use snack::{SnackRequest, SnackType};
pub use text::{TextRequest, TextResponse};
pub use tmf::{TaskMgmtRequest, TaskMgmtResponse, TmfFunction, TmfResponse};

/// Why a header (or an AHS / data segment helper) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PduError {
    /// Fewer bytes than the structure needs (48 for a BHS).
    Truncated,
    /// `parse` of one Repr was handed a header with another opcode.
    BadOpcode {
        /// The opcode this Repr parses.
        expected: u8,
        /// The 6-bit opcode found in byte 0.
        found: u8,
    },
    /// A login CSG or NSG field holds the reserved value 2.
    ReservedStage,
    /// A login PDU with T=1 whose NSG does not come after its CSG, or whose CSG is
    /// already FullFeaturePhase.
    BadStageTransition {
        /// Current stage bits.
        csg: u8,
        /// Next stage bits.
        nsg: u8,
    },
    /// A login PDU with both Transit and Continue set (RFC 7143 §11.12.2).
    TransitWithContinue,
    /// A text PDU with both Final and Continue set (RFC 7143 §11.10.2).
    FinalWithContinue,
    /// A Data-In with the S (status) bit but not the F bit.
    StatusWithoutFinal,
    /// Residual overflow (O) and underflow (U) both set.
    OverflowAndUnderflow,
    /// Bidirectional read residual overflow (o) and underflow (u) both set.
    BidiOverflowAndUnderflow,
    /// SenseLength in a SCSI Response data segment exceeds the segment.
    SenseTooLong {
        /// SenseLength as received.
        sense_len: u16,
        /// Bytes of the data segment after the SenseLength field.
        available: usize,
    },
    /// The AHS area is not a whole number of 4-byte words.
    AhsNotAligned,
    /// An AHS (with its padding) runs past the end of the AHS area.
    AhsTruncated,
    /// An AHS of a known type has a length its type does not allow.
    BadAhsLength {
        /// AHSType.
        ahs_type: u8,
        /// AHSLength as received.
        len: u16,
    },
    /// An AHS to emit does not fit AHSLength, or the AHS area exceeds the 1020
    /// bytes TotalAHSLength can describe.
    AhsTooLong,
    /// A data segment to emit exceeds what its length fields can describe.
    SegmentTooLong,
    /// The output buffer given to an emit helper is too small.
    BufferTooSmall,
}

impl core::fmt::Display for PduError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            PduError::Truncated => f.write_str("PDU shorter than its header"),
            PduError::BadOpcode { expected, found } => {
                write!(f, "opcode {found:#04x} where {expected:#04x} was expected")
            }
            PduError::ReservedStage => f.write_str("login stage field holds reserved value 2"),
            PduError::BadStageTransition { csg, nsg } => {
                write!(
                    f,
                    "login transit from stage {csg} to stage {nsg} is not allowed"
                )
            }
            PduError::TransitWithContinue => f.write_str("login PDU with both T and C set"),
            PduError::FinalWithContinue => f.write_str("text PDU with both F and C set"),
            PduError::StatusWithoutFinal => f.write_str("Data-In carries status without F"),
            PduError::OverflowAndUnderflow => {
                f.write_str("residual overflow and underflow both set")
            }
            PduError::BidiOverflowAndUnderflow => {
                f.write_str("bidirectional residual overflow and underflow both set")
            }
            PduError::SenseTooLong {
                sense_len,
                available,
            } => write!(
                f,
                "SenseLength {sense_len} exceeds the {available} bytes of the data segment"
            ),
            PduError::AhsNotAligned => f.write_str("AHS area is not a multiple of 4 bytes"),
            PduError::AhsTruncated => f.write_str("AHS runs past the end of the AHS area"),
            PduError::BadAhsLength { ahs_type, len } => {
                write!(f, "AHS type {ahs_type} with invalid AHSLength {len}")
            }
            PduError::AhsTooLong => f.write_str("AHS does not fit in TotalAHSLength"),
            PduError::SegmentTooLong => f.write_str("data segment too long for its length field"),
            PduError::BufferTooSmall => f.write_str("output buffer too small"),
        }
    }
}

impl From<super::bhs::BhsError> for PduError {
    fn from(e: super::bhs::BhsError) -> Self {
        match e {
            super::bhs::BhsError::Truncated => PduError::Truncated,
        }
    }
}

/// BHS byte ranges shared by several opcodes (RFC 7143 §11), named by position
/// because their meaning depends on the opcode.
mod at {
    use core::ops::Range;
    /// Target Transfer Tag, Referenced Task Tag or SNACK Tag, CID (first two bytes).
    pub(super) const W20: Range<usize> = 20..24;
    /// CmdSN (requests) or StatSN (responses).
    pub(super) const W24: Range<usize> = 24..28;
    /// ExpStatSN (requests) or ExpCmdSN (responses).
    pub(super) const W28: Range<usize> = 28..32;
    /// MaxCmdSN (responses) or RefCmdSN (TMF request).
    pub(super) const W32: Range<usize> = 32..36;
    /// DataSN, ExpDataSN, R2TSN.
    pub(super) const W36: Range<usize> = 36..40;
    /// BufferOffset, BegRun, bidirectional residual.
    pub(super) const W40: Range<usize> = 40..44;
    /// ResidualCount, RunLength, DesiredDataTransferLength.
    pub(super) const W44: Range<usize> = 44..48;
}

/// Checks length and opcode, returning a view no accessor of which can panic.
fn view(header: &[u8], expected: Opcode) -> Result<Bhs<&[u8]>, PduError> {
    let bhs = Bhs::new_checked(header)?;
    let found = bhs.opcode().to_u8();
    let want = expected.to_u8();
    if found != want {
        return Err(PduError::BadOpcode {
            expected: want,
            found,
        });
    }
    Ok(bhs)
}

/// Zeroes `header` (reserved fields are sent as 0) and writes byte 0 and byte 1.
fn start(
    header: &mut [u8; BHS_LEN],
    opcode: Opcode,
    immediate: bool,
    flags: u8,
) -> Bhs<&mut [u8; BHS_LEN]> {
    header.fill(0);
    let mut bhs = Bhs::from_array_mut(header);
    bhs.set_opcode(opcode, immediate);
    bhs.set_flags(flags);
    bhs
}

/// Writes DataSegmentLength. The field is 24 bits; a caller that sizes segments by
/// MaxRecvDataSegmentLength (at most 2^24-1) never exceeds it, and anything above
/// is cut to 24 bits rather than panicking.
fn set_data_len(bhs: &mut Bhs<&mut [u8; BHS_LEN]>, len: u32) {
    bhs.set_data_segment_len(len & MAX_DATA_SEGMENT_LEN);
}

/// Returns `flag` if `on`, else 0: keeps flag-byte assembly readable.
const fn bit(on: bool, flag: u8) -> u8 {
    if on {
        flag
    } else {
        0
    }
}

/// Any iSCSI PDU header, decoded by opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pdu {
    /// 0x00 NOP-Out.
    NopOut(NopOut),
    /// 0x01 SCSI Command.
    ScsiCommand(ScsiCommand),
    /// 0x02 Task Management Function Request.
    TaskMgmtRequest(TaskMgmtRequest),
    /// 0x03 Login Request.
    LoginRequest(LoginRequest),
    /// 0x04 Text Request.
    TextRequest(TextRequest),
    /// 0x05 SCSI Data-Out.
    DataOut(DataOut),
    /// 0x06 Logout Request.
    LogoutRequest(LogoutRequest),
    /// 0x10 SNACK Request.
    SnackRequest(SnackRequest),
    /// 0x20 NOP-In.
    NopIn(NopIn),
    /// 0x21 SCSI Response.
    ScsiResponse(ScsiResponse),
    /// 0x22 Task Management Function Response.
    TaskMgmtResponse(TaskMgmtResponse),
    /// 0x23 Login Response.
    LoginResponse(LoginResponse),
    /// 0x24 Text Response.
    TextResponse(TextResponse),
    /// 0x25 SCSI Data-In.
    DataIn(DataIn),
    /// 0x26 Logout Response.
    LogoutResponse(LogoutResponse),
    /// 0x31 Ready To Transfer.
    R2t(R2t),
    /// 0x32 Asynchronous Message.
    AsyncMessage(AsyncMessage),
    /// 0x3f Reject.
    Reject(Reject),
    /// An opcode without a Repr (vendor-specific or reserved), kept whole so the
    /// receiver can answer it with a Reject carrying this very header.
    Unknown {
        /// The 6-bit opcode.
        opcode: u8,
        /// The BHS as received; `emit` writes it back verbatim.
        header: [u8; BHS_LEN],
    },
}

impl Pdu {
    /// Decodes any BHS (`header` holds at least 48 bytes). Never fails on an unknown
    /// opcode; fails only on truncation or a violation a Repr refuses.
    pub fn parse(header: &[u8]) -> Result<Pdu, PduError> {
        let bhs = Bhs::new_checked(header)?;
        Ok(match bhs.opcode() {
            Opcode::NopOut => Pdu::NopOut(NopOut::parse(header)?),
            Opcode::ScsiCommand => Pdu::ScsiCommand(ScsiCommand::parse(header)?),
            Opcode::TaskMgmtRequest => Pdu::TaskMgmtRequest(TaskMgmtRequest::parse(header)?),
            Opcode::LoginRequest => Pdu::LoginRequest(LoginRequest::parse(header)?),
            Opcode::TextRequest => Pdu::TextRequest(TextRequest::parse(header)?),
            Opcode::DataOut => Pdu::DataOut(DataOut::parse(header)?),
            Opcode::LogoutRequest => Pdu::LogoutRequest(LogoutRequest::parse(header)?),
            Opcode::SnackRequest => Pdu::SnackRequest(SnackRequest::parse(header)?),
            Opcode::NopIn => Pdu::NopIn(NopIn::parse(header)?),
            Opcode::ScsiResponse => Pdu::ScsiResponse(ScsiResponse::parse(header)?),
            Opcode::TaskMgmtResponse => Pdu::TaskMgmtResponse(TaskMgmtResponse::parse(header)?),
            Opcode::LoginResponse => Pdu::LoginResponse(LoginResponse::parse(header)?),
            Opcode::TextResponse => Pdu::TextResponse(TextResponse::parse(header)?),
            Opcode::DataIn => Pdu::DataIn(DataIn::parse(header)?),
            Opcode::LogoutResponse => Pdu::LogoutResponse(LogoutResponse::parse(header)?),
            Opcode::R2t => Pdu::R2t(R2t::parse(header)?),
            Opcode::AsyncMessage => Pdu::AsyncMessage(AsyncMessage::parse(header)?),
            Opcode::Reject => Pdu::Reject(Reject::parse(header)?),
            Opcode::Unknown(opcode) => Pdu::Unknown {
                opcode,
                header: *bhs.header(),
            },
        })
    }

    /// Writes all 48 header bytes.
    pub fn emit(&self, header: &mut [u8; BHS_LEN]) {
        match self {
            Pdu::NopOut(p) => p.emit(header),
            Pdu::ScsiCommand(p) => p.emit(header),
            Pdu::TaskMgmtRequest(p) => p.emit(header),
            Pdu::LoginRequest(p) => p.emit(header),
            Pdu::TextRequest(p) => p.emit(header),
            Pdu::DataOut(p) => p.emit(header),
            Pdu::LogoutRequest(p) => p.emit(header),
            Pdu::SnackRequest(p) => p.emit(header),
            Pdu::NopIn(p) => p.emit(header),
            Pdu::ScsiResponse(p) => p.emit(header),
            Pdu::TaskMgmtResponse(p) => p.emit(header),
            Pdu::LoginResponse(p) => p.emit(header),
            Pdu::TextResponse(p) => p.emit(header),
            Pdu::DataIn(p) => p.emit(header),
            Pdu::LogoutResponse(p) => p.emit(header),
            Pdu::R2t(p) => p.emit(header),
            Pdu::AsyncMessage(p) => p.emit(header),
            Pdu::Reject(p) => p.emit(header),
            Pdu::Unknown { header: h, .. } => *header = *h,
        }
    }

    /// The opcode of this PDU.
    pub fn opcode(&self) -> Opcode {
        match self {
            Pdu::NopOut(_) => Opcode::NopOut,
            Pdu::ScsiCommand(_) => Opcode::ScsiCommand,
            Pdu::TaskMgmtRequest(_) => Opcode::TaskMgmtRequest,
            Pdu::LoginRequest(_) => Opcode::LoginRequest,
            Pdu::TextRequest(_) => Opcode::TextRequest,
            Pdu::DataOut(_) => Opcode::DataOut,
            Pdu::LogoutRequest(_) => Opcode::LogoutRequest,
            Pdu::SnackRequest(_) => Opcode::SnackRequest,
            Pdu::NopIn(_) => Opcode::NopIn,
            Pdu::ScsiResponse(_) => Opcode::ScsiResponse,
            Pdu::TaskMgmtResponse(_) => Opcode::TaskMgmtResponse,
            Pdu::LoginResponse(_) => Opcode::LoginResponse,
            Pdu::TextResponse(_) => Opcode::TextResponse,
            Pdu::DataIn(_) => Opcode::DataIn,
            Pdu::LogoutResponse(_) => Opcode::LogoutResponse,
            Pdu::R2t(_) => Opcode::R2t,
            Pdu::AsyncMessage(_) => Opcode::AsyncMessage,
            Pdu::Reject(_) => Opcode::Reject,
            Pdu::Unknown { opcode, .. } => Opcode::from_u8(*opcode),
        }
    }

    /// DataSegmentLength as this header states it (0 for PDUs that carry none).
    pub fn data_segment_len(&self) -> u32 {
        match self {
            Pdu::NopOut(p) => p.data_segment_len,
            Pdu::ScsiCommand(p) => p.data_segment_len,
            Pdu::LoginRequest(p) => p.data_segment_len,
            Pdu::TextRequest(p) => p.data_segment_len,
            Pdu::DataOut(p) => p.data_segment_len,
            Pdu::NopIn(p) => p.data_segment_len,
            Pdu::ScsiResponse(p) => p.data_segment_len,
            Pdu::LoginResponse(p) => p.data_segment_len,
            Pdu::TextResponse(p) => p.data_segment_len,
            Pdu::DataIn(p) => p.data_segment_len,
            Pdu::AsyncMessage(p) => p.data_segment_len,
            Pdu::Reject(p) => p.data_segment_len,
            Pdu::Unknown { header, .. } => Bhs::from_array(header).data_segment_len(),
            Pdu::TaskMgmtRequest(_)
            | Pdu::LogoutRequest(_)
            | Pdu::SnackRequest(_)
            | Pdu::TaskMgmtResponse(_)
            | Pdu::LogoutResponse(_)
            | Pdu::R2t(_) => 0,
        }
    }

    /// The Initiator Task Tag (0xffffffff for Async and Reject, whose field is
    /// fixed to it).
    pub fn itt(&self) -> u32 {
        match self {
            Pdu::NopOut(p) => p.itt,
            Pdu::ScsiCommand(p) => p.itt,
            Pdu::TaskMgmtRequest(p) => p.itt,
            Pdu::LoginRequest(p) => p.itt,
            Pdu::TextRequest(p) => p.itt,
            Pdu::DataOut(p) => p.itt,
            Pdu::LogoutRequest(p) => p.itt,
            Pdu::SnackRequest(p) => p.itt,
            Pdu::NopIn(p) => p.itt,
            Pdu::ScsiResponse(p) => p.itt,
            Pdu::TaskMgmtResponse(p) => p.itt,
            Pdu::LoginResponse(p) => p.itt,
            Pdu::TextResponse(p) => p.itt,
            Pdu::DataIn(p) => p.itt,
            Pdu::LogoutResponse(p) => p.itt,
            Pdu::R2t(p) => p.itt,
            Pdu::AsyncMessage(_) | Pdu::Reject(_) => super::bhs::RESERVED_TAG,
            Pdu::Unknown { header, .. } => Bhs::from_array(header).itt(),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::fixtures::{fixture, header};
    use super::*;
    use std::vec::Vec;

    /// Every captured fixture, by file name.
    const CAPTURED: &[(&str, Opcode)] = &[
        ("login_req", Opcode::LoginRequest),
        ("login_resp", Opcode::LoginResponse),
        ("text_req", Opcode::TextRequest),
        ("text_resp", Opcode::TextResponse),
        ("scsi_cmd", Opcode::ScsiCommand),
        ("scsi_cmd_write", Opcode::ScsiCommand),
        ("scsi_resp", Opcode::ScsiResponse),
        ("scsi_resp_good", Opcode::ScsiResponse),
        ("data_in", Opcode::DataIn),
        ("data_out", Opcode::DataOut),
        ("r2t", Opcode::R2t),
        ("nop_in", Opcode::NopIn),
        ("nop_out", Opcode::NopOut),
        ("tmf_req", Opcode::TaskMgmtRequest),
        ("tmf_resp", Opcode::TaskMgmtResponse),
        ("logout_req", Opcode::LogoutRequest),
        ("logout_resp", Opcode::LogoutResponse),
    ];

    #[test]
    fn every_captured_pdu_parses_and_emits_byte_exact() {
        for &(name, op) in CAPTURED {
            let bytes = fixture(name);
            let h = header(&bytes);
            let pdu = Pdu::parse(&h).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(pdu.opcode(), op, "{name}");
            // The data segment that follows the BHS is exactly what the header says.
            let padded = super::super::bhs::padded_len(pdu.data_segment_len()).unwrap();
            assert_eq!(bytes.len(), BHS_LEN + padded as usize, "{name}");
            let mut out = [0xaa; BHS_LEN];
            pdu.emit(&mut out);
            assert_eq!(out, h, "{name} re-emitted differs");
        }
    }

    #[test]
    fn unknown_opcode_is_kept_not_refused() {
        let mut h = [0u8; BHS_LEN];
        h[0] = 0x1c; // vendor-specific initiator opcode
        h[7] = 4;
        h[16..20].copy_from_slice(&[1, 2, 3, 4]);
        h[47] = 0x5a;
        let pdu = Pdu::parse(&h).unwrap();
        assert_eq!(
            pdu,
            Pdu::Unknown {
                opcode: 0x1c,
                header: h
            }
        );
        assert_eq!(pdu.opcode(), Opcode::Unknown(0x1c));
        assert_eq!(pdu.data_segment_len(), 4);
        assert_eq!(pdu.itt(), 0x0102_0304);
        let mut out = [0u8; BHS_LEN];
        pdu.emit(&mut out);
        assert_eq!(out, h);
    }

    #[test]
    fn every_unassigned_opcode_is_unknown() {
        for op in 0u8..64 {
            let mut h = [0u8; BHS_LEN];
            h[0] = op;
            let r = Pdu::parse(&h);
            match Opcode::from_u8(op) {
                Opcode::Unknown(_) => assert!(matches!(r, Ok(Pdu::Unknown { .. }))),
                // An all-zero header is valid for every known opcode (a login
                // with T=0 in the security stage, a Data-In without status...).
                known => assert_eq!(r.map(|p| p.opcode()), Ok(known), "opcode {op:#x}"),
            }
        }
    }

    #[test]
    fn truncated_header_is_refused_for_every_opcode() {
        for op in 0u8..64 {
            let mut h = [0u8; BHS_LEN];
            h[0] = op;
            for len in [0, 1, 20, 47] {
                assert_eq!(Pdu::parse(&h[..len]), Err(PduError::Truncated));
            }
        }
    }

    #[test]
    fn repr_parse_checks_the_opcode() {
        let nop_in = header(&fixture("nop_in"));
        assert_eq!(
            NopOut::parse(&nop_in),
            Err(PduError::BadOpcode {
                expected: 0x00,
                found: 0x20
            })
        );
        assert_eq!(
            LoginRequest::parse(&nop_in),
            Err(PduError::BadOpcode {
                expected: 0x03,
                found: 0x20
            })
        );
    }

    #[test]
    fn errors_display() {
        let s = std::format!(
            "{}",
            PduError::SenseTooLong {
                sense_len: 30,
                available: 18
            }
        );
        assert!(s.contains("30") && s.contains("18"), "{s}");
        let s = std::format!(
            "{}",
            PduError::BadOpcode {
                expected: 0x21,
                found: 0x25
            }
        );
        assert!(s.contains("0x25") && s.contains("0x21"), "{s}");
    }

    #[test]
    fn longer_input_is_fine_only_first_48_bytes_count() {
        let bytes = fixture("text_req");
        let a = Pdu::parse(&bytes).unwrap();
        let b = Pdu::parse(&bytes[..BHS_LEN]).unwrap();
        assert_eq!(a, b);
    }

    proptest::proptest! {
        /// Random headers never panic any parser, and whatever parses re-emits to
        /// a header that parses to the same value (reserved bits aside).
        #[test]
        fn parse_emit_parse_is_stable(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 48),
            op in proptest::sample::select(
                (0u8..64).collect::<Vec<u8>>()
            ),
            imm in proptest::prelude::any::<bool>(),
        ) {
            let mut h: [u8; BHS_LEN] = bytes.as_slice().try_into().unwrap();
            h[0] = op | if imm { 0x40 } else { 0 };
            if let Ok(p) = Pdu::parse(&h) {
                let mut out = [0u8; BHS_LEN];
                p.emit(&mut out);
                proptest::prop_assert_eq!(Pdu::parse(&out), Ok(p));
                proptest::prop_assert_eq!(p.opcode().to_u8(), op);
            }
        }

        /// Any prefix shorter than a BHS is Truncated, never a panic.
        #[test]
        fn short_input_is_truncated(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..48),
        ) {
            proptest::prop_assert_eq!(Pdu::parse(&bytes), Err(PduError::Truncated));
        }
    }
}
