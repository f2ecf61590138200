//! SNACK Request (RFC 7143 §11.16): asks the target to resend Data-In, R2T or
//! status PDUs, or acknowledges Data-In (ErrorRecoveryLevel > 0 only).

use super::super::bhs::{Opcode, BHS_LEN, FINAL_BIT};
use super::{at, start, view, PduError};

/// Byte 1: the SNACK type (bit 7 is always 1).
const TYPE_MASK: u8 = 0x0f;

/// What a SNACK asks for (RFC 7143 §11.16.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnackType {
    /// 0: resend Data-In or R2T PDUs (by DataSN / R2TSN).
    DataR2t,
    /// 1: resend responses (by StatSN).
    Status,
    /// 2: positive acknowledgement of Data-In up to BegRun.
    DataAck,
    /// 3: resegment and resend all unacknowledged Data-In (R-Data SNACK).
    RData,
    /// Any other 4-bit value.
    Unknown(u8),
}

impl SnackType {
    /// Decodes the low four bits of byte 1.
    pub const fn from_u8(v: u8) -> SnackType {
        match v & TYPE_MASK {
            0 => SnackType::DataR2t,
            1 => SnackType::Status,
            2 => SnackType::DataAck,
            3 => SnackType::RData,
            other => SnackType::Unknown(other),
        }
    }

    /// The 4-bit wire value.
    pub const fn to_u8(self) -> u8 {
        match self {
            SnackType::DataR2t => 0,
            SnackType::Status => 1,
            SnackType::DataAck => 2,
            SnackType::RData => 3,
            SnackType::Unknown(v) => v & TYPE_MASK,
        }
    }
}

/// SNACK Request, initiator to target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnackRequest {
    /// What to resend or acknowledge.
    pub snack_type: SnackType,
    /// LUN (DataACK: the LUN of the Data-In's A bit).
    pub lun: u64,
    /// Initiator Task Tag of the task (0xffffffff for a status SNACK).
    pub itt: u32,
    /// Target Transfer Tag (DataACK) or SNACK Tag (R-Data), else 0xffffffff.
    pub ttt: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
    /// First DataSN, R2TSN or StatSN asked for.
    pub beg_run: u32,
    /// How many to resend; 0 means all from BegRun on.
    pub run_length: u32,
}

impl SnackRequest {
    /// Parses a SNACK Request BHS.
    pub fn parse(header: &[u8]) -> Result<SnackRequest, PduError> {
        let b = view(header, Opcode::SnackRequest)?;
        Ok(SnackRequest {
            snack_type: SnackType::from_u8(b.flags()),
            lun: b.lun_raw(),
            itt: b.itt(),
            ttt: b.be32(at::W20),
            exp_stat_sn: b.be32(at::W28),
            beg_run: b.be32(at::W40),
            run_length: b.be32(at::W44),
        })
    }

    /// Writes all 48 bytes (bit 7 of byte 1 is always set).
    pub fn emit(&self, header: &mut [u8; BHS_LEN]) {
        let flags = FINAL_BIT | self.snack_type.to_u8();
        let mut b = start(header, Opcode::SnackRequest, false, flags);
        b.set_lun_raw(self.lun);
        b.set_itt(self.itt);
        b.set_be32(at::W20, self.ttt);
        b.set_be32(at::W28, self.exp_stat_sn);
        b.set_be32(at::W40, self.beg_run);
        b.set_be32(at::W44, self.run_length);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::hex;
    use super::*;

    /// Hand-built from the RFC 7143 §11.16 layout (neither tgtd nor libiscsi
    /// sends SNACKs at ErrorRecoveryLevel 0): a Data/R2T SNACK for DataSN 2..4 of
    /// ITT 0x1000 on LUN 1.
    const DATA_SNACK: &str = "10800000 00000000 00010000 00000000
                              00001000 ffffffff 00000000 00000007
                              00000000 00000000 00000002 00000003";

    #[test]
    fn hand_built_data_snack() {
        let h = hex(DATA_SNACK);
        let s = SnackRequest::parse(&h).unwrap();
        assert_eq!(
            s,
            SnackRequest {
                snack_type: SnackType::DataR2t,
                lun: 0x0001_0000_0000_0000,
                itt: 0x1000,
                ttt: 0xffff_ffff,
                exp_stat_sn: 7,
                beg_run: 2,
                run_length: 3,
            }
        );
        let mut out = [0u8; BHS_LEN];
        s.emit(&mut out);
        assert_eq!(&out[..], &h[..]);
    }

    #[test]
    fn status_and_data_ack_round_trip() {
        for t in [
            SnackType::Status,
            SnackType::DataAck,
            SnackType::RData,
            SnackType::Unknown(0xf),
        ] {
            let s = SnackRequest {
                snack_type: t,
                lun: 0,
                itt: 0xffff_ffff,
                ttt: 0x1234,
                exp_stat_sn: 1,
                beg_run: 0x10,
                run_length: 0,
            };
            let mut h = [0u8; BHS_LEN];
            s.emit(&mut h);
            assert_eq!(h[0], 0x10);
            assert_eq!(h[1], 0x80 | t.to_u8());
            assert_eq!(SnackRequest::parse(&h), Ok(s));
        }
    }

    #[test]
    fn snack_type_uses_low_nibble_only() {
        assert_eq!(SnackType::from_u8(0x81), SnackType::Status);
        assert_eq!(SnackType::from_u8(0x74), SnackType::Unknown(4));
        for v in 0u8..16 {
            assert_eq!(SnackType::from_u8(v).to_u8(), v);
        }
    }
}
