//! SCSI Command (RFC 7143 §11.3) and SCSI Response (§11.4), with the task attribute
//! codes and the Response data segment layout (SenseLength, sense, response data).

use super::super::bhs::{field, Opcode, BHS_LEN, FINAL_BIT, MAX_DATA_SEGMENT_LEN};
use super::{at, bit, set_data_len, start, view, PduError};
use core::ops::Range;

/// Byte 1 of a SCSI Command: R (data flows to the initiator).
const READ_BIT: u8 = 0x40;
/// Byte 1 of a SCSI Command: W (data flows to the target).
const WRITE_BIT: u8 = 0x20;
/// Byte 1 of a SCSI Command: the task attribute.
const ATTR_MASK: u8 = 0x07;
/// The 16 CDB bytes inside the BHS; longer CDBs continue in an Extended CDB AHS.
const CDB: Range<usize> = 32..48;

/// Byte 1 of a SCSI Response: bidirectional read residual overflow (o).
const BIDI_OVERFLOW: u8 = 0x10;
/// Byte 1 of a SCSI Response: bidirectional read residual underflow (u).
const BIDI_UNDERFLOW: u8 = 0x08;
/// Byte 1 of a SCSI Response: residual overflow (O).
const OVERFLOW: u8 = 0x04;
/// Byte 1 of a SCSI Response: residual underflow (U).
const UNDERFLOW: u8 = 0x02;

/// SAM task attribute of a SCSI Command (ATTR, byte 1 bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskAttr {
    /// 0: untagged.
    Untagged,
    /// 1: simple.
    Simple,
    /// 2: ordered.
    Ordered,
    /// 3: head of queue.
    HeadOfQueue,
    /// 4: ACA.
    Aca,
    /// 5-7: reserved values, kept so a target can reject them.
    Unknown(u8),
}

impl TaskAttr {
    /// Decodes the low three bits.
    pub const fn from_u8(v: u8) -> TaskAttr {
        match v & ATTR_MASK {
            0 => TaskAttr::Untagged,
            1 => TaskAttr::Simple,
            2 => TaskAttr::Ordered,
            3 => TaskAttr::HeadOfQueue,
            4 => TaskAttr::Aca,
            other => TaskAttr::Unknown(other),
        }
    }

    /// The 3-bit wire value.
    pub const fn to_u8(self) -> u8 {
        match self {
            TaskAttr::Untagged => 0,
            TaskAttr::Simple => 1,
            TaskAttr::Ordered => 2,
            TaskAttr::HeadOfQueue => 3,
            TaskAttr::Aca => 4,
            TaskAttr::Unknown(v) => v & ATTR_MASK,
        }
    }
}

/// SCSI Command, initiator to target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScsiCommand {
    /// I bit: immediate delivery.
    pub immediate: bool,
    /// F bit: no unsolicited Data-Out follows this PDU.
    pub final_bit: bool,
    /// R bit: the command reads (Data-In expected).
    pub read: bool,
    /// W bit: the command writes (Data-Out expected).
    pub write: bool,
    /// Task attribute.
    pub attr: TaskAttr,
    /// TotalAHSLength in bytes (a multiple of 4, at most 1020); see `super::ahs`.
    pub total_ahs_len: u16,
    /// Length of the immediate data that follows.
    pub data_segment_len: u32,
    /// LUN, 8 bytes as on the wire (see `super::lun`).
    pub lun: u64,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Expected Data Transfer Length (for bidirectional commands: the write part).
    pub expected_data_len: u32,
    /// CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
    /// First 16 CDB bytes, zero padded; longer CDBs continue in an Extended CDB AHS.
    pub cdb: [u8; 16],
}

impl ScsiCommand {
    /// Parses a SCSI Command BHS.
    pub fn parse(header: &[u8]) -> Result<ScsiCommand, PduError> {
        let b = view(header, Opcode::ScsiCommand)?;
        let flags = b.flags();
        let mut cdb = [0u8; 16];
        if let Some(src) = b.header().get(CDB) {
            cdb.copy_from_slice(src);
        }
        Ok(ScsiCommand {
            immediate: b.immediate(),
            final_bit: flags & FINAL_BIT != 0,
            read: flags & READ_BIT != 0,
            write: flags & WRITE_BIT != 0,
            attr: TaskAttr::from_u8(flags),
            // At most 255 words, so 1020 bytes: fits u16 without overflow.
            total_ahs_len: u16::from(b.byte(field::TOTAL_AHS_LEN)) * 4,
            data_segment_len: b.data_segment_len(),
            lun: b.lun_raw(),
            itt: b.itt(),
            expected_data_len: b.be32(at::W20),
            cmd_sn: b.be32(at::W24),
            exp_stat_sn: b.be32(at::W28),
            cdb,
        })
    }

    /// Writes all 48 bytes. `total_ahs_len` is rounded up to whole words (at most
    /// 255); the AHS emit helpers always produce whole words.
    pub fn emit(&self, header: &mut [u8; BHS_LEN]) {
        let flags = bit(self.final_bit, FINAL_BIT)
            | bit(self.read, READ_BIT)
            | bit(self.write, WRITE_BIT)
            | self.attr.to_u8();
        let mut b = start(header, Opcode::ScsiCommand, self.immediate, flags);
        let words = self.total_ahs_len.div_ceil(4).min(u16::from(u8::MAX));
        b.set_byte(field::TOTAL_AHS_LEN, u8::try_from(words).unwrap_or(u8::MAX));
        set_data_len(&mut b, self.data_segment_len);
        b.set_lun_raw(self.lun);
        b.set_itt(self.itt);
        b.set_be32(at::W20, self.expected_data_len);
        b.set_be32(at::W24, self.cmd_sn);
        b.set_be32(at::W28, self.exp_stat_sn);
        if let Some(dst) = b.header_mut().get_mut(CDB) {
            dst.copy_from_slice(&self.cdb);
        }
    }
}

/// SCSI Response, target to initiator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScsiResponse {
    /// o bit: bidirectional read residual overflow.
    pub bidi_overflow: bool,
    /// u bit: bidirectional read residual underflow.
    pub bidi_underflow: bool,
    /// O bit: residual overflow.
    pub overflow: bool,
    /// U bit: residual underflow.
    pub underflow: bool,
    /// iSCSI response: 0 = command completed at target, 1 = target failure,
    /// 0x80-0xff vendor specific.
    pub response: u8,
    /// SCSI status, meaningful only when `response` is 0.
    pub status: u8,
    /// Length of the sense / response data that follows.
    pub data_segment_len: u32,
    /// Initiator Task Tag of the command.
    pub itt: u32,
    /// SNACK Tag (0 unless answering a status SNACK at ErrorRecoveryLevel > 0).
    pub snack_tag: u32,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// ExpDataSN: number of Data-In (and R2T) PDUs the target sent for the command.
    pub exp_data_sn: u32,
    /// Bidirectional Read Residual Count (valid with o or u).
    pub bidi_read_residual_count: u32,
    /// Residual Count (valid with O or U).
    pub residual_count: u32,
}

/// Response code: command completed at target (status is valid).
pub const RESPONSE_COMPLETED: u8 = 0x00;
/// Response code: target failure.
pub const RESPONSE_TARGET_FAILURE: u8 = 0x01;

impl ScsiResponse {
    /// Parses a SCSI Response BHS. Refuses O together with U and o together with u
    /// (RFC 7143 §11.4.1: each pair is mutually exclusive).
    pub fn parse(header: &[u8]) -> Result<ScsiResponse, PduError> {
        let b = view(header, Opcode::ScsiResponse)?;
        let flags = b.flags();
        let overflow = flags & OVERFLOW != 0;
        let underflow = flags & UNDERFLOW != 0;
        if overflow && underflow {
            return Err(PduError::OverflowAndUnderflow);
        }
        let bidi_overflow = flags & BIDI_OVERFLOW != 0;
        let bidi_underflow = flags & BIDI_UNDERFLOW != 0;
        if bidi_overflow && bidi_underflow {
            return Err(PduError::BidiOverflowAndUnderflow);
        }
        Ok(ScsiResponse {
            bidi_overflow,
            bidi_underflow,
            overflow,
            underflow,
            response: b.byte(2),
            status: b.byte(3),
            data_segment_len: b.data_segment_len(),
            itt: b.itt(),
            snack_tag: b.be32(at::W20),
            stat_sn: b.be32(at::W24),
            exp_cmd_sn: b.be32(at::W28),
            max_cmd_sn: b.be32(at::W32),
            exp_data_sn: b.be32(at::W36),
            bidi_read_residual_count: b.be32(at::W40),
            residual_count: b.be32(at::W44),
        })
    }

    /// Writes all 48 bytes (the F bit is always set).
    pub fn emit(&self, header: &mut [u8; BHS_LEN]) {
        let flags = FINAL_BIT
            | bit(self.bidi_overflow, BIDI_OVERFLOW)
            | bit(self.bidi_underflow, BIDI_UNDERFLOW)
            | bit(self.overflow, OVERFLOW)
            | bit(self.underflow, UNDERFLOW);
        let mut b = start(header, Opcode::ScsiResponse, false, flags);
        b.set_byte(2, self.response);
        b.set_byte(3, self.status);
        set_data_len(&mut b, self.data_segment_len);
        b.set_itt(self.itt);
        b.set_be32(at::W20, self.snack_tag);
        b.set_be32(at::W24, self.stat_sn);
        b.set_be32(at::W28, self.exp_cmd_sn);
        b.set_be32(at::W32, self.max_cmd_sn);
        b.set_be32(at::W36, self.exp_data_sn);
        b.set_be32(at::W40, self.bidi_read_residual_count);
        b.set_be32(at::W44, self.residual_count);
    }

    /// Splits this response's data segment (without padding) into sense and
    /// response data; see [`ScsiResponseData::parse`].
    pub fn split_data(data: &[u8]) -> Result<ScsiResponseData<'_>, PduError> {
        ScsiResponseData::parse(data)
    }
}

/// The parts of a SCSI Response data segment (RFC 7143 §11.4.7): a 2-byte
/// SenseLength, that many sense bytes, then iSCSI response data to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScsiResponseData<'a> {
    /// SCSI sense data (empty when SenseLength is 0 or the segment is empty).
    pub sense: &'a [u8],
    /// Response data after the sense bytes.
    pub response_data: &'a [u8],
}

impl<'a> ScsiResponseData<'a> {
    /// Splits `segment` (DataSegmentLength bytes, padding excluded). An empty
    /// segment has neither part; a 1-byte segment is `Truncated`; a SenseLength
    /// running past the segment is `SenseTooLong`.
    pub fn parse(segment: &'a [u8]) -> Result<ScsiResponseData<'a>, PduError> {
        if segment.is_empty() {
            return Ok(ScsiResponseData {
                sense: &[],
                response_data: &[],
            });
        }
        let (len, rest) = match (segment.first_chunk::<2>(), segment.get(2..)) {
            (Some(l), Some(rest)) => (u16::from_be_bytes(*l), rest),
            _ => return Err(PduError::Truncated),
        };
        match (rest.get(..usize::from(len)), rest.get(usize::from(len)..)) {
            (Some(sense), Some(response_data)) => Ok(ScsiResponseData {
                sense,
                response_data,
            }),
            _ => Err(PduError::SenseTooLong {
                sense_len: len,
                available: rest.len(),
            }),
        }
    }

    /// Writes SenseLength, sense and response data into `out`; returns the
    /// DataSegmentLength (before padding).
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, PduError> {
        let sense_len = u16::try_from(self.sense.len()).map_err(|_| PduError::SegmentTooLong)?;
        let total = self
            .sense
            .len()
            .checked_add(self.response_data.len())
            .and_then(|n| n.checked_add(2))
            .ok_or(PduError::SegmentTooLong)?;
        if total > MAX_DATA_SEGMENT_LEN as usize {
            return Err(PduError::SegmentTooLong);
        }
        let dst = out.get_mut(..total).ok_or(PduError::BufferTooSmall)?;
        let (len_field, rest) = dst.split_at_mut(2);
        let (sense, resp) = rest.split_at_mut(self.sense.len());
        len_field.copy_from_slice(&sense_len.to_be_bytes());
        sense.copy_from_slice(self.sense);
        resp.copy_from_slice(self.response_data);
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{data_segment, fixture, header};
    use super::*;

    #[test]
    fn captured_report_luns_command() {
        // iscsi-inq's first command: REPORT LUNS (0xa0) on LUN 0, 16-byte allocation.
        let c = ScsiCommand::parse(&fixture("scsi_cmd")).unwrap();
        assert!(!c.immediate);
        assert!(c.final_bit);
        assert!(c.read);
        assert!(!c.write);
        assert_eq!(c.attr, TaskAttr::Simple);
        assert_eq!(c.total_ahs_len, 0);
        assert_eq!(c.data_segment_len, 0);
        assert_eq!(c.lun, 0);
        assert_eq!(c.itt, 0x5aae_8149);
        assert_eq!(c.expected_data_len, 16);
        assert_eq!(c.cmd_sn, 0x4312_51f7);
        assert_eq!(c.exp_stat_sn, 1);
        assert_eq!(c.cdb[0], 0xa0);
        assert_eq!(&c.cdb[6..10], &[0, 0, 0, 0x10]);
        let mut out = [0u8; BHS_LEN];
        c.emit(&mut out);
        assert_eq!(out, header(&fixture("scsi_cmd")));
    }

    #[test]
    fn captured_write10_command() {
        // WRITE(10) of one 512-byte block at LBA 0 on LUN 1, with ImmediateData=No.
        let c = ScsiCommand::parse(&fixture("scsi_cmd_write")).unwrap();
        assert!(!c.immediate);
        assert!(c.final_bit);
        assert!(!c.read);
        assert!(c.write);
        assert_eq!(c.attr, TaskAttr::Simple);
        assert_eq!(c.lun, 0x0001_0000_0000_0000);
        assert_eq!(c.expected_data_len, 512);
        assert_eq!(c.data_segment_len, 0);
        assert_eq!(c.cdb[0], 0x2a);
        assert_eq!(&c.cdb[7..9], &[0, 1]);
        let mut out = [0u8; BHS_LEN];
        c.emit(&mut out);
        assert_eq!(out, header(&fixture("scsi_cmd_write")));
    }

    #[test]
    fn captured_check_condition_with_sense() {
        // The unit attention tgtd reports first (sense key 6, ASC 0x29: power on/reset).
        let bytes = fixture("scsi_resp");
        let r = ScsiResponse::parse(&bytes).unwrap();
        assert_eq!(r.response, RESPONSE_COMPLETED);
        assert_eq!(r.status, 0x02);
        assert_eq!(r.data_segment_len, 20);
        assert!(!r.overflow && !r.underflow && !r.bidi_overflow && !r.bidi_underflow);
        assert_eq!(r.stat_sn, 3);
        let d = ScsiResponse::split_data(data_segment(&bytes)).unwrap();
        assert_eq!(d.sense.len(), 18);
        assert_eq!(d.sense[0], 0x70);
        assert_eq!(d.sense[2] & 0x0f, 0x06);
        assert_eq!(d.sense[12], 0x29);
        assert!(d.response_data.is_empty());
        let mut out = [0u8; BHS_LEN];
        r.emit(&mut out);
        assert_eq!(out, header(&bytes));
        let mut seg = [0u8; 64];
        assert_eq!(d.emit(&mut seg), Ok(20));
        assert_eq!(&seg[..20], data_segment(&bytes));
    }

    #[test]
    fn captured_good_status_without_data() {
        let r = ScsiResponse::parse(&fixture("scsi_resp_good")).unwrap();
        assert_eq!((r.response, r.status, r.data_segment_len), (0, 0, 0));
        assert_eq!(r.exp_data_sn, 0);
        let mut out = [0u8; BHS_LEN];
        r.emit(&mut out);
        assert_eq!(out, header(&fixture("scsi_resp_good")));
    }

    #[test]
    fn command_round_trip_all_flags_and_attrs() {
        for attr in 0u8..8 {
            for flags in 0u8..8 {
                let c = ScsiCommand {
                    immediate: flags & 1 != 0,
                    final_bit: flags & 2 != 0,
                    read: flags & 4 != 0,
                    write: flags & 1 == 0,
                    attr: TaskAttr::from_u8(attr),
                    total_ahs_len: 20,
                    data_segment_len: 0x00ff_ffff,
                    lun: 0x4123_0000_0000_0000,
                    itt: 0x0102_0304,
                    expected_data_len: 0xffff_ffff,
                    cmd_sn: 9,
                    exp_stat_sn: 10,
                    cdb: [0x7f; 16],
                };
                let mut h = [0u8; BHS_LEN];
                c.emit(&mut h);
                assert_eq!(h[4], 5);
                assert_eq!(ScsiCommand::parse(&h), Ok(c));
                assert_eq!(c.attr.to_u8(), attr);
            }
        }
    }

    #[test]
    fn command_with_a_32_byte_cdb_and_bidi_ahs() {
        use super::super::ahs::{self, Ahs};
        extern crate std;
        // A bidirectional 32-byte CDB: 16 bytes in the BHS, 16 in an Extended CDB
        // AHS (20 bytes), plus the expected read length AHS (8 bytes).
        let cdb: std::vec::Vec<u8> = (0x80u8..0xa0).collect();
        let (head, tail) = ahs::split_cdb(&cdb);
        let mut pdu = [0u8; BHS_LEN + 28];
        let (bhs, area) = pdu.split_at_mut(BHS_LEN);
        let n = ahs::emit_extended_cdb(tail, area).unwrap();
        let m = ahs::emit_bidi_read_len(4096, &mut area[n..]).unwrap();
        let c = ScsiCommand {
            immediate: false,
            final_bit: true,
            read: true,
            write: true,
            attr: TaskAttr::Ordered,
            total_ahs_len: u16::try_from(n + m).unwrap(),
            data_segment_len: 0,
            lun: 0,
            itt: 1,
            expected_data_len: 512,
            cmd_sn: 1,
            exp_stat_sn: 1,
            cdb: head,
        };
        c.emit(bhs.try_into().unwrap());
        assert_eq!(pdu[4], 7);

        let got = ScsiCommand::parse(&pdu).unwrap();
        assert_eq!(got, c);
        let area = &pdu[BHS_LEN..BHS_LEN + usize::from(got.total_ahs_len)];
        let mut full = std::vec::Vec::from(&got.cdb[..]);
        let mut read_len = None;
        for a in ahs::iter(area) {
            match a.unwrap() {
                Ahs::ExtendedCdb(t) => full.extend_from_slice(t),
                Ahs::BidiReadLength(l) => read_len = Some(l),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(full, cdb);
        assert_eq!(read_len, Some(4096));
    }

    #[test]
    fn oversized_data_segment_length_is_cut_to_24_bits() {
        let mut c = ScsiCommand::parse(&fixture("scsi_cmd")).unwrap();
        c.data_segment_len = 0x0100_0001;
        let mut h = [0u8; BHS_LEN];
        c.emit(&mut h);
        // Never spills into TotalAHSLength (byte 4).
        assert_eq!(&h[4..8], &[0, 0, 0, 1]);
    }

    #[test]
    fn unaligned_ahs_length_is_rounded_up_on_emit() {
        let mut c = ScsiCommand::parse(&fixture("scsi_cmd")).unwrap();
        c.total_ahs_len = 5;
        let mut h = [0u8; BHS_LEN];
        c.emit(&mut h);
        assert_eq!(h[4], 2);
        c.total_ahs_len = u16::MAX;
        c.emit(&mut h);
        assert_eq!(h[4], 255);
    }

    #[test]
    fn response_residual_bits() {
        let mut r = ScsiResponse::parse(&fixture("scsi_resp_good")).unwrap();
        r.underflow = true;
        r.residual_count = 4096;
        r.bidi_overflow = true;
        r.bidi_read_residual_count = 512;
        let mut h = [0u8; BHS_LEN];
        r.emit(&mut h);
        assert_eq!(h[1], 0x80 | 0x10 | 0x02);
        assert_eq!(ScsiResponse::parse(&h), Ok(r));

        h[1] = 0x80 | OVERFLOW | UNDERFLOW;
        assert_eq!(ScsiResponse::parse(&h), Err(PduError::OverflowAndUnderflow));
        h[1] = 0x80 | BIDI_OVERFLOW | BIDI_UNDERFLOW;
        assert_eq!(
            ScsiResponse::parse(&h),
            Err(PduError::BidiOverflowAndUnderflow)
        );
    }

    #[test]
    fn response_data_split_edges() {
        let empty = ScsiResponseData::parse(&[]).unwrap();
        assert!(empty.sense.is_empty() && empty.response_data.is_empty());
        assert_eq!(ScsiResponseData::parse(&[0]), Err(PduError::Truncated));
        let zero = ScsiResponseData::parse(&[0, 0, 9, 9]).unwrap();
        assert!(zero.sense.is_empty());
        assert_eq!(zero.response_data, &[9, 9]);
        let exact = ScsiResponseData::parse(&[0, 2, 1, 2]).unwrap();
        assert_eq!(exact.sense, &[1, 2]);
        assert!(exact.response_data.is_empty());
        assert_eq!(
            ScsiResponseData::parse(&[0, 3, 1, 2]),
            Err(PduError::SenseTooLong {
                sense_len: 3,
                available: 2
            })
        );
        assert_eq!(
            ScsiResponseData::parse(&[0xff, 0xff]),
            Err(PduError::SenseTooLong {
                sense_len: 0xffff,
                available: 0
            })
        );
    }

    #[test]
    fn response_data_emit_checks_room() {
        let d = ScsiResponseData {
            sense: &[0x70, 0, 5],
            response_data: &[1],
        };
        let mut small = [0u8; 5];
        assert_eq!(d.emit(&mut small), Err(PduError::BufferTooSmall));
        let mut out = [0u8; 6];
        assert_eq!(d.emit(&mut out), Ok(6));
        assert_eq!(out, [0, 3, 0x70, 0, 5, 1]);
        assert_eq!(ScsiResponseData::parse(&out), Ok(d));
    }

    #[test]
    fn task_attr_codes() {
        assert_eq!(TaskAttr::from_u8(0), TaskAttr::Untagged);
        assert_eq!(TaskAttr::from_u8(3), TaskAttr::HeadOfQueue);
        assert_eq!(TaskAttr::from_u8(4), TaskAttr::Aca);
        assert_eq!(TaskAttr::from_u8(7), TaskAttr::Unknown(7));
        // Only the low three bits are the attribute.
        assert_eq!(TaskAttr::from_u8(0xf9), TaskAttr::Simple);
    }
}
