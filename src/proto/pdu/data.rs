//! Data movement PDUs: SCSI Data-Out (RFC 7143 §11.7), SCSI Data-In (§11.7, with
//! the phase-collapsed status bits) and Ready To Transfer (§11.8).

use super::super::bhs::{Opcode, BHS_LEN, FINAL_BIT};
use super::{at, bit, set_data_len, start, view, PduError};

/// Data-In byte 1: A (acknowledge requested, ErrorRecoveryLevel > 0).
const ACK_BIT: u8 = 0x40;
/// Data-In byte 1: O (residual overflow).
const OVERFLOW: u8 = 0x04;
/// Data-In byte 1: U (residual underflow).
const UNDERFLOW: u8 = 0x02;
/// Data-In byte 1: S (status carried in this PDU).
const STATUS_BIT: u8 = 0x01;

/// SCSI Data-Out, initiator to target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataOut {
    /// F bit: last PDU of this burst (unsolicited or for one R2T).
    pub final_bit: bool,
    /// LUN (must be the command's when `ttt` is not 0xffffffff).
    pub lun: u64,
    /// Initiator Task Tag of the command.
    pub itt: u32,
    /// The R2T's Target Transfer Tag, or 0xffffffff for unsolicited data.
    pub ttt: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
    /// DataSN, counted per R2T (or per unsolicited burst) from 0.
    pub data_sn: u32,
    /// Offset of this PDU's data within the command's buffer.
    pub buffer_offset: u32,
    /// Length of the data that follows.
    pub data_segment_len: u32,
}

impl DataOut {
    /// Parses a SCSI Data-Out BHS.
    pub fn parse(header: &[u8]) -> Result<DataOut, PduError> {
        let b = view(header, Opcode::DataOut)?;
        Ok(DataOut {
            final_bit: b.final_bit(),
            lun: b.lun_raw(),
            itt: b.itt(),
            ttt: b.be32(at::W20),
            exp_stat_sn: b.be32(at::W28),
            data_sn: b.be32(at::W36),
            buffer_offset: b.be32(at::W40),
            data_segment_len: b.data_segment_len(),
        })
    }

    /// Writes all 48 bytes.
    pub fn emit(&self, header: &mut [u8; BHS_LEN]) {
        let flags = bit(self.final_bit, FINAL_BIT);
        let mut b = start(header, Opcode::DataOut, false, flags);
        set_data_len(&mut b, self.data_segment_len);
        b.set_lun_raw(self.lun);
        b.set_itt(self.itt);
        b.set_be32(at::W20, self.ttt);
        b.set_be32(at::W28, self.exp_stat_sn);
        b.set_be32(at::W36, self.data_sn);
        b.set_be32(at::W40, self.buffer_offset);
    }
}

/// SCSI Data-In, target to initiator. When `status` is `Some`, this PDU also ends
/// the command (phase collapse) and StatSN and the residual fields are valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataIn {
    /// F bit: last PDU of the sequence.
    pub final_bit: bool,
    /// A bit: the target asks for a DataACK SNACK (ErrorRecoveryLevel > 0 only).
    pub ack: bool,
    /// O bit: residual overflow. Meaningful only with status: on a PDU
    /// without it the bit is a target quirk to ignore ([`DataIn::stray_residual_bits`]).
    pub overflow: bool,
    /// U bit: residual underflow; like `overflow`, only with status.
    pub underflow: bool,
    /// SCSI status, present exactly when the S bit is set.
    pub status: Option<u8>,
    /// LUN (valid with the A bit).
    pub lun: u64,
    /// Initiator Task Tag of the command.
    pub itt: u32,
    /// Target Transfer Tag (with A set), else 0xffffffff.
    pub ttt: u32,
    /// StatSN (valid with status).
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// DataSN, counted per command from 0.
    pub data_sn: u32,
    /// Offset of this PDU's data within the command's buffer.
    pub buffer_offset: u32,
    /// Residual Count (valid with O or U).
    pub residual_count: u32,
    /// Length of the data that follows.
    pub data_segment_len: u32,
}

impl DataIn {
    /// Parses a SCSI Data-In BHS. Refuses S without F, and O together with U
    /// (RFC 7143 §11.7.1-§11.7.5). O or U without S carry no meaning (the
    /// residual is valid only with status) and are accepted, as open-iscsi does:
    /// see [`DataIn::stray_residual_bits`].
    pub fn parse(header: &[u8]) -> Result<DataIn, PduError> {
        let b = view(header, Opcode::DataIn)?;
        let flags = b.flags();
        let final_bit = flags & FINAL_BIT != 0;
        let has_status = flags & STATUS_BIT != 0;
        let overflow = flags & OVERFLOW != 0;
        let underflow = flags & UNDERFLOW != 0;
        if has_status && !final_bit {
            return Err(PduError::StatusWithoutFinal);
        }
        if overflow && underflow {
            return Err(PduError::OverflowAndUnderflow);
        }
        Ok(DataIn {
            final_bit,
            ack: flags & ACK_BIT != 0,
            overflow,
            underflow,
            status: if has_status { Some(b.byte(3)) } else { None },
            lun: b.lun_raw(),
            itt: b.itt(),
            ttt: b.be32(at::W20),
            stat_sn: b.be32(at::W24),
            exp_cmd_sn: b.be32(at::W28),
            max_cmd_sn: b.be32(at::W32),
            data_sn: b.be32(at::W36),
            buffer_offset: b.be32(at::W40),
            residual_count: b.be32(at::W44),
            data_segment_len: b.data_segment_len(),
        })
    }

    /// O or U set on a PDU without status: a target quirk, to be ignored.
    pub fn stray_residual_bits(&self) -> bool {
        self.status.is_none() && (self.overflow || self.underflow)
    }

    /// Writes all 48 bytes; S is set exactly when `status` is `Some`.
    pub fn emit(&self, header: &mut [u8; BHS_LEN]) {
        let flags = bit(self.final_bit, FINAL_BIT)
            | bit(self.ack, ACK_BIT)
            | bit(self.overflow, OVERFLOW)
            | bit(self.underflow, UNDERFLOW)
            | bit(self.status.is_some(), STATUS_BIT);
        let mut b = start(header, Opcode::DataIn, false, flags);
        b.set_byte(3, self.status.unwrap_or(0));
        set_data_len(&mut b, self.data_segment_len);
        b.set_lun_raw(self.lun);
        b.set_itt(self.itt);
        b.set_be32(at::W20, self.ttt);
        b.set_be32(at::W24, self.stat_sn);
        b.set_be32(at::W28, self.exp_cmd_sn);
        b.set_be32(at::W32, self.max_cmd_sn);
        b.set_be32(at::W36, self.data_sn);
        b.set_be32(at::W40, self.buffer_offset);
        b.set_be32(at::W44, self.residual_count);
    }
}

/// Ready To Transfer, target to initiator: asks for one burst of write data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct R2t {
    /// LUN of the command.
    pub lun: u64,
    /// Initiator Task Tag of the command.
    pub itt: u32,
    /// Target Transfer Tag to copy into the answering Data-Outs.
    pub ttt: u32,
    /// StatSN (not advanced by an R2T).
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// R2TSN, counted per command from 0 (shared with the command's DataSNs).
    pub r2t_sn: u32,
    /// Offset in the command's buffer of the data asked for.
    pub buffer_offset: u32,
    /// Desired Data Transfer Length: bytes asked for (never 0, at most MaxBurstLength).
    pub desired_data_len: u32,
}

impl R2t {
    /// Parses an R2T BHS.
    pub fn parse(header: &[u8]) -> Result<R2t, PduError> {
        let b = view(header, Opcode::R2t)?;
        Ok(R2t {
            lun: b.lun_raw(),
            itt: b.itt(),
            ttt: b.be32(at::W20),
            stat_sn: b.be32(at::W24),
            exp_cmd_sn: b.be32(at::W28),
            max_cmd_sn: b.be32(at::W32),
            r2t_sn: b.be32(at::W36),
            buffer_offset: b.be32(at::W40),
            desired_data_len: b.be32(at::W44),
        })
    }

    /// Writes all 48 bytes (the F bit is always set).
    pub fn emit(&self, header: &mut [u8; BHS_LEN]) {
        let mut b = start(header, Opcode::R2t, false, FINAL_BIT);
        b.set_lun_raw(self.lun);
        b.set_itt(self.itt);
        b.set_be32(at::W20, self.ttt);
        b.set_be32(at::W24, self.stat_sn);
        b.set_be32(at::W28, self.exp_cmd_sn);
        b.set_be32(at::W32, self.max_cmd_sn);
        b.set_be32(at::W36, self.r2t_sn);
        b.set_be32(at::W40, self.buffer_offset);
        b.set_be32(at::W44, self.desired_data_len);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{data_segment, fixture, header};
    use super::*;

    #[test]
    fn captured_data_in_with_collapsed_status() {
        // REPORT LUNS answer: 16 bytes, F and S set, GOOD status, in one PDU.
        let bytes = fixture("data_in");
        let d = DataIn::parse(&bytes).unwrap();
        assert!(d.final_bit);
        assert!(!d.ack);
        assert_eq!(d.status, Some(0));
        assert!(!d.overflow && !d.underflow);
        assert_eq!(d.itt, 0x5aae_8149);
        assert_eq!(d.ttt, 0xffff_ffff);
        assert_eq!(d.stat_sn, 1);
        assert_eq!(d.data_sn, 0);
        assert_eq!(d.buffer_offset, 0);
        assert_eq!(d.residual_count, 0);
        assert_eq!(d.data_segment_len, 16);
        // LUN list length 16 bytes: LUNs 0 and 1.
        assert_eq!(&data_segment(&bytes)[..4], &[0, 0, 0, 0x10]);
        let mut out = [0u8; BHS_LEN];
        d.emit(&mut out);
        assert_eq!(out, header(&bytes));
    }

    #[test]
    fn captured_r2t_and_its_data_out() {
        let r = R2t::parse(&fixture("r2t")).unwrap();
        assert_eq!(r.lun, 0x0001_0000_0000_0000);
        assert_eq!(r.itt, 0x72bb_10ff);
        assert_eq!(r.ttt, 0xe023_fbad);
        assert_eq!(r.r2t_sn, 0);
        assert_eq!(r.buffer_offset, 0);
        assert_eq!(r.desired_data_len, 512);

        let bytes = fixture("data_out");
        let d = DataOut::parse(&bytes).unwrap();
        assert!(d.final_bit);
        assert_eq!((d.itt, d.ttt, d.lun), (r.itt, r.ttt, r.lun));
        assert_eq!(d.data_sn, 0);
        assert_eq!(d.buffer_offset, r.buffer_offset);
        assert_eq!(d.data_segment_len, r.desired_data_len);
        assert_eq!(d.exp_stat_sn, 4);
        assert!(data_segment(&bytes).iter().all(|&b| b == 0xa6));

        let mut out = [0u8; BHS_LEN];
        r.emit(&mut out);
        assert_eq!(out, header(&fixture("r2t")));
        d.emit(&mut out);
        assert_eq!(out, header(&bytes));
    }

    fn data_in_flags(flags: u8) -> Result<DataIn, PduError> {
        let mut h = header(&fixture("data_in"));
        h[1] = flags;
        DataIn::parse(&h)
    }

    #[test]
    fn data_in_status_needs_final() {
        assert_eq!(data_in_flags(STATUS_BIT), Err(PduError::StatusWithoutFinal));
        assert_eq!(data_in_flags(FINAL_BIT).unwrap().status, None);
        assert_eq!(data_in_flags(0).unwrap().status, None);
    }

    #[test]
    fn data_in_residual_without_status_is_a_stray() {
        let d = data_in_flags(FINAL_BIT | UNDERFLOW).unwrap();
        assert!(d.stray_residual_bits() && d.status.is_none());
        assert!(data_in_flags(OVERFLOW).unwrap().stray_residual_bits());
        assert!(!data_in_flags(FINAL_BIT).unwrap().stray_residual_bits());
        assert!(!data_in_flags(FINAL_BIT | STATUS_BIT | UNDERFLOW)
            .unwrap()
            .stray_residual_bits());
        assert_eq!(
            data_in_flags(FINAL_BIT | STATUS_BIT | OVERFLOW | UNDERFLOW),
            Err(PduError::OverflowAndUnderflow)
        );
        let d = data_in_flags(FINAL_BIT | STATUS_BIT | UNDERFLOW).unwrap();
        assert!(d.underflow && !d.overflow);
    }

    #[test]
    fn data_in_status_byte_ignored_without_s() {
        // Byte 3 is reserved when S=0: not reported, and zero when re-emitted.
        let mut h = header(&fixture("data_in"));
        h[1] = 0;
        h[3] = 0x02;
        let d = DataIn::parse(&h).unwrap();
        assert_eq!(d.status, None);
        let mut out = [0u8; BHS_LEN];
        d.emit(&mut out);
        assert_eq!(out[3], 0);
    }

    #[test]
    fn data_in_round_trip_mid_sequence_with_ack() {
        let d = DataIn {
            final_bit: false,
            ack: true,
            overflow: false,
            underflow: false,
            status: None,
            lun: 0x0002_0000_0000_0000,
            itt: 0x10,
            ttt: 0x20,
            stat_sn: 0,
            exp_cmd_sn: 0x30,
            max_cmd_sn: 0x40,
            data_sn: 3,
            buffer_offset: 3 * 8192,
            residual_count: 0,
            data_segment_len: 8192,
        };
        let mut h = [0u8; BHS_LEN];
        d.emit(&mut h);
        assert_eq!(h[1], ACK_BIT);
        assert_eq!(DataIn::parse(&h), Ok(d));
        let last = DataIn {
            final_bit: true,
            ack: false,
            underflow: true,
            status: Some(0x02),
            residual_count: 100,
            ..d
        };
        last.emit(&mut h);
        assert_eq!(h[1], 0x80 | 0x02 | 0x01);
        assert_eq!(h[3], 0x02);
        assert_eq!(DataIn::parse(&h), Ok(last));
    }

    #[test]
    fn data_out_and_r2t_round_trip() {
        let d = DataOut {
            final_bit: false,
            lun: 5,
            itt: 6,
            ttt: 0xffff_ffff,
            exp_stat_sn: 7,
            data_sn: 8,
            buffer_offset: 0xffff_fff0,
            data_segment_len: 0x0001_0000,
        };
        let mut h = [0u8; BHS_LEN];
        d.emit(&mut h);
        assert_eq!(h[1], 0);
        assert_eq!(DataOut::parse(&h), Ok(d));
        let r = R2t {
            lun: 1,
            itt: 2,
            ttt: 3,
            stat_sn: 4,
            exp_cmd_sn: 5,
            max_cmd_sn: 6,
            r2t_sn: 7,
            buffer_offset: 8,
            desired_data_len: 9,
        };
        r.emit(&mut h);
        assert_eq!(&h[4..8], &[0; 4]);
        assert_eq!(R2t::parse(&h), Ok(r));
    }
}
