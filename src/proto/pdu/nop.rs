//! NOP-Out (RFC 7143 §11.18) and NOP-In (§11.19): pings and their answers, either
//! side may start one; a target ping carries a real TTT, an answer echoes it.

use super::super::bhs::{Opcode, BHS_LEN, FINAL_BIT};
use super::{at, set_data_len, start, view, PduError};

/// NOP-Out, initiator to target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NopOut {
    /// I bit: deliver immediately (no CmdSN advance).
    pub immediate: bool,
    /// LUN (echoed from a NOP-In ping, else any value).
    pub lun: u64,
    /// Initiator Task Tag; 0xffffffff when answering a target ping.
    pub itt: u32,
    /// Target Transfer Tag: the ping's TTT when answering one, else 0xffffffff.
    pub ttt: u32,
    /// CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
    /// Length of the ping data that follows.
    pub data_segment_len: u32,
}

impl NopOut {
    /// Parses a NOP-Out BHS.
    pub fn parse(header: &[u8]) -> Result<NopOut, PduError> {
        let b = view(header, Opcode::NopOut)?;
        Ok(NopOut {
            immediate: b.immediate(),
            lun: b.lun_raw(),
            itt: b.itt(),
            ttt: b.be32(at::W20),
            cmd_sn: b.be32(at::W24),
            exp_stat_sn: b.be32(at::W28),
            data_segment_len: b.data_segment_len(),
        })
    }

    /// Writes all 48 bytes (the F bit is always set).
    pub fn emit(&self, header: &mut [u8; BHS_LEN]) {
        let mut b = start(header, Opcode::NopOut, self.immediate, FINAL_BIT);
        set_data_len(&mut b, self.data_segment_len);
        b.set_lun_raw(self.lun);
        b.set_itt(self.itt);
        b.set_be32(at::W20, self.ttt);
        b.set_be32(at::W24, self.cmd_sn);
        b.set_be32(at::W28, self.exp_stat_sn);
    }
}

/// NOP-In, target to initiator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NopIn {
    /// LUN; a target ping expects it echoed in the NOP-Out.
    pub lun: u64,
    /// Initiator Task Tag of the NOP-Out answered, or 0xffffffff for a target ping.
    pub itt: u32,
    /// Target Transfer Tag: not 0xffffffff when the target asks for an answer.
    pub ttt: u32,
    /// StatSN (not advanced by a ping).
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// Length of the ping data that follows.
    pub data_segment_len: u32,
}

impl NopIn {
    /// Parses a NOP-In BHS.
    pub fn parse(header: &[u8]) -> Result<NopIn, PduError> {
        let b = view(header, Opcode::NopIn)?;
        Ok(NopIn {
            lun: b.lun_raw(),
            itt: b.itt(),
            ttt: b.be32(at::W20),
            stat_sn: b.be32(at::W24),
            exp_cmd_sn: b.be32(at::W28),
            max_cmd_sn: b.be32(at::W32),
            data_segment_len: b.data_segment_len(),
        })
    }

    /// Writes all 48 bytes (the F bit is always set).
    pub fn emit(&self, header: &mut [u8; BHS_LEN]) {
        let mut b = start(header, Opcode::NopIn, false, FINAL_BIT);
        set_data_len(&mut b, self.data_segment_len);
        b.set_lun_raw(self.lun);
        b.set_itt(self.itt);
        b.set_be32(at::W20, self.ttt);
        b.set_be32(at::W24, self.stat_sn);
        b.set_be32(at::W28, self.exp_cmd_sn);
        b.set_be32(at::W32, self.max_cmd_sn);
    }

    /// True when the target wants a NOP-Out back (TTT is not the reserved tag).
    pub fn wants_reply(&self) -> bool {
        self.ttt != super::super::bhs::RESERVED_TAG
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{fixture, header};
    use super::*;

    #[test]
    fn captured_target_ping_and_the_answer() {
        // tgtd's ping (nop_interval=1) and libiscsi's reply from the capture.
        let ping = NopIn::parse(&fixture("nop_in")).unwrap();
        assert_eq!(ping.itt, 0xffff_ffff);
        assert_eq!(ping.ttt, 1);
        assert!(ping.wants_reply());
        assert_eq!(ping.data_segment_len, 0);
        assert_eq!(ping.stat_sn, 0x0000_0282);
        assert_eq!(ping.exp_cmd_sn, 0x277f_f382);
        assert_eq!(ping.max_cmd_sn, 0x277f_f402);

        let reply = NopOut::parse(&fixture("nop_out")).unwrap();
        assert!(reply.immediate);
        assert_eq!(reply.itt, 0xffff_ffff);
        assert_eq!(reply.ttt, ping.ttt);
        assert_eq!(reply.lun, ping.lun);
        assert_eq!(reply.cmd_sn, ping.exp_cmd_sn);
        assert_eq!(reply.exp_stat_sn, ping.stat_sn);

        let mut out = [0u8; BHS_LEN];
        reply.emit(&mut out);
        assert_eq!(out, header(&fixture("nop_out")));
        ping.emit(&mut out);
        assert_eq!(out, header(&fixture("nop_in")));
    }

    #[test]
    fn initiator_ping_round_trip_with_data() {
        let p = NopOut {
            immediate: false,
            lun: 0x0001_0000_0000_0000,
            itt: 7,
            ttt: 0xffff_ffff,
            cmd_sn: 0x8000_0000,
            exp_stat_sn: 0xffff_fffe,
            data_segment_len: 5,
        };
        let mut h = [0u8; BHS_LEN];
        p.emit(&mut h);
        assert_eq!(h[0], 0x00);
        assert_eq!(h[1], 0x80);
        assert_eq!(&h[4..8], &[0, 0, 0, 5]);
        assert_eq!(NopOut::parse(&h), Ok(p));

        let answer = NopIn {
            lun: p.lun,
            itt: 7,
            ttt: 0xffff_ffff,
            stat_sn: 1,
            exp_cmd_sn: 2,
            max_cmd_sn: 3,
            data_segment_len: 5,
        };
        answer.emit(&mut h);
        assert!(!answer.wants_reply());
        assert_eq!(NopIn::parse(&h), Ok(answer));
    }

    #[test]
    fn reserved_bytes_are_ignored_on_parse_and_zeroed_on_emit() {
        let mut h = header(&fixture("nop_out"));
        h[2] = 0xff;
        h[40] = 0x11;
        let p = NopOut::parse(&h).unwrap();
        let mut out = [0u8; BHS_LEN];
        p.emit(&mut out);
        assert_eq!(out, header(&fixture("nop_out")));
    }
}
