//! Reject (RFC 7143 §11.17): the target refuses a PDU and returns its header in
//! the data segment, with a reason code.

use super::super::bhs::{Opcode, BHS_LEN, FINAL_BIT, RESERVED_TAG};
use super::{at, set_data_len, start, view, PduError};

/// Reject reason (RFC 7143 §11.17.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// 0x02: data (payload) digest error; the PDU may be resent.
    DataDigestError,
    /// 0x03: SNACK reject; the PDU may be resent.
    SnackReject,
    /// 0x04: protocol error (e.g. SNACK for an already acknowledged status).
    ProtocolError,
    /// 0x05: command not supported.
    CommandNotSupported,
    /// 0x06: immediate command rejected, too many immediate commands.
    ImmediateCommandRejected,
    /// 0x07: task in progress.
    TaskInProgress,
    /// 0x08: invalid data ACK.
    InvalidDataAck,
    /// 0x09: invalid PDU field.
    InvalidPduField,
    /// 0x0a: long operation reject, out of resources to generate a TTT.
    LongOperationReject,
    /// 0x0b: deprecated (was "negotiation reset").
    NegotiationReset,
    /// 0x0c: waiting for logout.
    WaitingForLogout,
    /// Any other value.
    Unknown(u8),
}

impl RejectReason {
    /// Decodes byte 2.
    pub const fn from_u8(v: u8) -> RejectReason {
        match v {
            0x02 => RejectReason::DataDigestError,
            0x03 => RejectReason::SnackReject,
            0x04 => RejectReason::ProtocolError,
            0x05 => RejectReason::CommandNotSupported,
            0x06 => RejectReason::ImmediateCommandRejected,
            0x07 => RejectReason::TaskInProgress,
            0x08 => RejectReason::InvalidDataAck,
            0x09 => RejectReason::InvalidPduField,
            0x0a => RejectReason::LongOperationReject,
            0x0b => RejectReason::NegotiationReset,
            0x0c => RejectReason::WaitingForLogout,
            other => RejectReason::Unknown(other),
        }
    }

    /// The wire value.
    pub const fn to_u8(self) -> u8 {
        match self {
            RejectReason::DataDigestError => 0x02,
            RejectReason::SnackReject => 0x03,
            RejectReason::ProtocolError => 0x04,
            RejectReason::CommandNotSupported => 0x05,
            RejectReason::ImmediateCommandRejected => 0x06,
            RejectReason::TaskInProgress => 0x07,
            RejectReason::InvalidDataAck => 0x08,
            RejectReason::InvalidPduField => 0x09,
            RejectReason::LongOperationReject => 0x0a,
            RejectReason::NegotiationReset => 0x0b,
            RejectReason::WaitingForLogout => 0x0c,
            RejectReason::Unknown(v) => v,
        }
    }
}

/// Reject, target to initiator. Its ITT is always 0xffffffff; the rejected PDU's
/// ITT is inside the returned header (see [`Reject::rejected_header`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    /// Why the PDU was rejected.
    pub reason: RejectReason,
    /// StatSN (a Reject takes one).
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// DataSN/R2TSN of a rejected SNACK, else 0.
    pub data_sn: u32,
    /// Length of the data segment: the rejected BHS (48 bytes), plus any of its
    /// header digest / AHS the target included.
    pub data_segment_len: u32,
}

impl Reject {
    /// Parses a Reject BHS.
    pub fn parse(header: &[u8]) -> Result<Reject, PduError> {
        let b = view(header, Opcode::Reject)?;
        Ok(Reject {
            reason: RejectReason::from_u8(b.byte(2)),
            stat_sn: b.be32(at::W24),
            exp_cmd_sn: b.be32(at::W28),
            max_cmd_sn: b.be32(at::W32),
            data_sn: b.be32(at::W36),
            data_segment_len: b.data_segment_len(),
        })
    }

    /// Writes all 48 bytes (the F bit set, ITT 0xffffffff).
    pub fn emit(&self, header: &mut [u8; BHS_LEN]) {
        let mut b = start(header, Opcode::Reject, false, FINAL_BIT);
        b.set_byte(2, self.reason.to_u8());
        set_data_len(&mut b, self.data_segment_len);
        b.set_itt(RESERVED_TAG);
        b.set_be32(at::W24, self.stat_sn);
        b.set_be32(at::W28, self.exp_cmd_sn);
        b.set_be32(at::W32, self.max_cmd_sn);
        b.set_be32(at::W36, self.data_sn);
    }

    /// The rejected PDU's header: the first 48 bytes of the Reject's data
    /// segment. Parse it with `Pdu::parse` to find the rejected ITT.
    pub fn rejected_header(data: &[u8]) -> Result<&[u8; BHS_LEN], PduError> {
        data.first_chunk::<BHS_LEN>().ok_or(PduError::Truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{data_segment, fixture, hex};
    use super::super::{Pdu, ScsiCommand};
    use super::*;

    /// Hand-built from the RFC 7143 §11.17 layout (tgtd drops bad PDUs rather
    /// than rejecting them in the capture): "command not supported", StatSN 9.
    const REJECT_HEADER: &str = "3f800500 00000030 00000000 00000000
                                 ffffffff 00000000 00000009 00000011
                                 00000050 00000000 00000000 00000000";

    #[test]
    fn hand_built_reject_carrying_a_captured_command() {
        let mut pdu = hex(REJECT_HEADER);
        // The data segment: the REPORT LUNS command from the real capture.
        pdu.extend_from_slice(&fixture("scsi_cmd"));
        let r = Reject::parse(&pdu).unwrap();
        assert_eq!(r.reason, RejectReason::CommandNotSupported);
        assert_eq!(r.stat_sn, 9);
        assert_eq!(r.exp_cmd_sn, 0x11);
        assert_eq!(r.max_cmd_sn, 0x50);
        assert_eq!(r.data_segment_len, 48);
        let rejected = Reject::rejected_header(data_segment(&pdu)).unwrap();
        let cmd = match Pdu::parse(rejected).unwrap() {
            Pdu::ScsiCommand(c) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(cmd, ScsiCommand::parse(&fixture("scsi_cmd")).unwrap());
        let mut out = [0u8; BHS_LEN];
        r.emit(&mut out);
        assert_eq!(&out[..], &pdu[..BHS_LEN]);
    }

    #[test]
    fn rejected_header_needs_48_bytes() {
        assert_eq!(Reject::rejected_header(&[0; 47]), Err(PduError::Truncated));
        assert!(Reject::rejected_header(&[0; 52]).is_ok());
    }

    #[test]
    fn reason_codes_round_trip() {
        for v in 0u8..=255 {
            let r = RejectReason::from_u8(v);
            assert_eq!(r.to_u8(), v);
            assert_eq!(
                !matches!(r, RejectReason::Unknown(_)),
                (2..=0x0c).contains(&v)
            );
        }
    }

    #[test]
    fn snack_reject_round_trip() {
        let r = Reject {
            reason: RejectReason::SnackReject,
            stat_sn: 1,
            exp_cmd_sn: 2,
            max_cmd_sn: 3,
            data_sn: 4,
            data_segment_len: 48,
        };
        let mut h = [0u8; BHS_LEN];
        r.emit(&mut h);
        assert_eq!(&h[..4], &[0x3f, 0x80, 0x03, 0x00]);
        assert_eq!(&h[16..20], &[0xff; 4]);
        assert_eq!(Reject::parse(&h), Ok(r));
    }
}
