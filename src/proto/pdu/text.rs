//! Text Request (RFC 7143 §11.10) and Text Response (§11.11) headers: full-feature
//! key=value exchanges such as SendTargets discovery. The text itself is handled
//! by `super::super::text`.

use super::super::bhs::{Opcode, BHS_LEN, FINAL_BIT};
use super::{at, bit, set_data_len, start, view, PduError};

/// Byte 1: C (text continues in the next PDU).
const CONTINUE_BIT: u8 = 0x40;

/// Decodes F and C, refusing both set: a PDU cannot end an exchange whose text
/// it says continues (RFC 7143 §11.10.2).
fn decode_flags(flags: u8) -> Result<(bool, bool), PduError> {
    let final_bit = flags & FINAL_BIT != 0;
    let cont = flags & CONTINUE_BIT != 0;
    if final_bit && cont {
        return Err(PduError::FinalWithContinue);
    }
    Ok((final_bit, cont))
}

/// Text Request, initiator to target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRequest {
    /// F bit: the initiator's last Text Request of this exchange.
    pub final_bit: bool,
    /// C bit: the key=value text continues in the next Text Request.
    pub cont: bool,
    /// I bit: immediate delivery.
    pub immediate: bool,
    /// LUN (reserved in RFC 7143; sent as given).
    pub lun: u64,
    /// Initiator Task Tag: the same for every PDU of one exchange.
    pub itt: u32,
    /// Target Transfer Tag: 0xffffffff to start, else the one the target gave.
    pub ttt: u32,
    /// CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
    /// Length of the key=value text that follows.
    pub data_segment_len: u32,
}

impl TextRequest {
    /// Parses a Text Request BHS.
    pub fn parse(header: &[u8]) -> Result<TextRequest, PduError> {
        let b = view(header, Opcode::TextRequest)?;
        let (final_bit, cont) = decode_flags(b.flags())?;
        Ok(TextRequest {
            final_bit,
            cont,
            immediate: b.immediate(),
            lun: b.lun_raw(),
            itt: b.itt(),
            ttt: b.be32(at::W20),
            cmd_sn: b.be32(at::W24),
            exp_stat_sn: b.be32(at::W28),
            data_segment_len: b.data_segment_len(),
        })
    }

    /// Writes all 48 bytes.
    pub fn emit(&self, header: &mut [u8; BHS_LEN]) {
        let flags = bit(self.final_bit, FINAL_BIT) | bit(self.cont, CONTINUE_BIT);
        let mut b = start(header, Opcode::TextRequest, self.immediate, flags);
        set_data_len(&mut b, self.data_segment_len);
        b.set_lun_raw(self.lun);
        b.set_itt(self.itt);
        b.set_be32(at::W20, self.ttt);
        b.set_be32(at::W24, self.cmd_sn);
        b.set_be32(at::W28, self.exp_stat_sn);
    }
}

/// Text Response, target to initiator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextResponse {
    /// F bit: the target's last Text Response of this exchange.
    pub final_bit: bool,
    /// C bit: the key=value text continues in the next Text Response.
    pub cont: bool,
    /// LUN (reserved in RFC 7143).
    pub lun: u64,
    /// Initiator Task Tag of the request.
    pub itt: u32,
    /// Target Transfer Tag: 0xffffffff when final, else to be echoed.
    pub ttt: u32,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// Length of the key=value text that follows.
    pub data_segment_len: u32,
}

impl TextResponse {
    /// Parses a Text Response BHS.
    pub fn parse(header: &[u8]) -> Result<TextResponse, PduError> {
        let b = view(header, Opcode::TextResponse)?;
        let (final_bit, cont) = decode_flags(b.flags())?;
        Ok(TextResponse {
            final_bit,
            cont,
            lun: b.lun_raw(),
            itt: b.itt(),
            ttt: b.be32(at::W20),
            stat_sn: b.be32(at::W24),
            exp_cmd_sn: b.be32(at::W28),
            max_cmd_sn: b.be32(at::W32),
            data_segment_len: b.data_segment_len(),
        })
    }

    /// Writes all 48 bytes.
    pub fn emit(&self, header: &mut [u8; BHS_LEN]) {
        let flags = bit(self.final_bit, FINAL_BIT) | bit(self.cont, CONTINUE_BIT);
        let mut b = start(header, Opcode::TextResponse, false, flags);
        set_data_len(&mut b, self.data_segment_len);
        b.set_lun_raw(self.lun);
        b.set_itt(self.itt);
        b.set_be32(at::W20, self.ttt);
        b.set_be32(at::W24, self.stat_sn);
        b.set_be32(at::W28, self.exp_cmd_sn);
        b.set_be32(at::W32, self.max_cmd_sn);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{data_segment, fixture, header};
    use super::*;

    #[test]
    fn captured_send_targets_exchange() {
        let req_bytes = fixture("text_req");
        let req = TextRequest::parse(&req_bytes).unwrap();
        assert!(req.final_bit && !req.cont && req.immediate);
        assert_eq!(req.ttt, 0xffff_ffff);
        assert_eq!(req.itt, 0x265e_d4c7);
        assert_eq!(req.data_segment_len, 16);
        assert_eq!(data_segment(&req_bytes), b"SendTargets=All\0");

        let resp_bytes = fixture("text_resp");
        let resp = TextResponse::parse(&resp_bytes).unwrap();
        assert!(resp.final_bit && !resp.cont);
        assert_eq!(resp.itt, req.itt);
        assert_eq!(resp.ttt, 0xffff_ffff);
        assert_eq!(resp.stat_sn, req.exp_stat_sn);
        assert_eq!(resp.exp_cmd_sn, req.cmd_sn);
        assert_eq!(resp.max_cmd_sn, req.cmd_sn.wrapping_add(1));
        assert_eq!(resp.data_segment_len, 0x48);
        let text = data_segment(&resp_bytes);
        assert!(text.starts_with(b"TargetName=iqn.2024-01.rs.iscsi:fixtures\0"));
        assert!(text.ends_with(b"TargetAddress=127.0.0.1:3261,1\0"));

        let mut out = [0u8; BHS_LEN];
        req.emit(&mut out);
        assert_eq!(out, header(&req_bytes));
        resp.emit(&mut out);
        assert_eq!(out, header(&resp_bytes));
    }

    #[test]
    fn final_with_continue_is_refused() {
        let mut h = header(&fixture("text_req"));
        h[1] = 0xc0;
        assert_eq!(TextRequest::parse(&h), Err(PduError::FinalWithContinue));
        let mut h = header(&fixture("text_resp"));
        h[1] = 0xc0;
        assert_eq!(TextResponse::parse(&h), Err(PduError::FinalWithContinue));
    }

    #[test]
    fn continued_exchange_round_trip() {
        let req = TextRequest {
            final_bit: false,
            cont: true,
            immediate: false,
            lun: 0,
            itt: 0x11,
            ttt: 0x22,
            cmd_sn: 0x33,
            exp_stat_sn: 0x44,
            data_segment_len: 8192,
        };
        let mut h = [0u8; BHS_LEN];
        req.emit(&mut h);
        assert_eq!(h[0..2], [0x04, 0x40]);
        assert_eq!(TextRequest::parse(&h), Ok(req));

        let resp = TextResponse {
            final_bit: false,
            cont: true,
            lun: 0,
            itt: 0x11,
            ttt: 0x55,
            stat_sn: 1,
            exp_cmd_sn: 2,
            max_cmd_sn: 3,
            data_segment_len: 8192,
        };
        resp.emit(&mut h);
        assert_eq!(h[0..2], [0x24, 0x40]);
        assert_eq!(TextResponse::parse(&h), Ok(resp));
    }
}
