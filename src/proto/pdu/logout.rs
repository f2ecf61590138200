//! Logout Request (RFC 7143 §11.14) and Logout Response (§11.15): closing a session
//! or one connection, and the timers a target gives for reconnecting.

use super::super::bhs::{Opcode, BHS_LEN, FINAL_BIT};
use super::{at, start, view, PduError};
use core::ops::Range;

/// Byte 1 of a Logout Request: the reason code (bit 7 is always 1).
const REASON_MASK: u8 = 0x7f;
/// Bytes 20..22 of a Logout Request: CID.
const CID: Range<usize> = 20..22;
/// Bytes 40..42 of a Logout Response: Time2Wait.
const TIME2WAIT: Range<usize> = 40..42;
/// Bytes 42..44 of a Logout Response: Time2Retain.
const TIME2RETAIN: Range<usize> = 42..44;

/// Logout Response code: connection or session closed successfully.
pub const LOGOUT_SUCCESS: u8 = 0;
/// Logout Response code: CID not found.
pub const LOGOUT_CID_NOT_FOUND: u8 = 1;
/// Logout Response code: connection recovery is not supported.
pub const LOGOUT_RECOVERY_NOT_SUPPORTED: u8 = 2;
/// Logout Response code: cleanup failed for various reasons.
pub const LOGOUT_CLEANUP_FAILED: u8 = 3;

/// Why the initiator logs out (RFC 7143 §11.14.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutReason {
    /// 0: close the session (all connections).
    CloseSession,
    /// 1: close the connection named by CID.
    CloseConnection,
    /// 2: remove the connection for recovery.
    RemoveConnectionForRecovery,
    /// Any other 7-bit value, kept so a target can answer it.
    Unknown(u8),
}

impl LogoutReason {
    /// Decodes the low seven bits of byte 1.
    pub const fn from_u8(v: u8) -> LogoutReason {
        match v & REASON_MASK {
            0 => LogoutReason::CloseSession,
            1 => LogoutReason::CloseConnection,
            2 => LogoutReason::RemoveConnectionForRecovery,
            other => LogoutReason::Unknown(other),
        }
    }

    /// The 7-bit wire value.
    pub const fn to_u8(self) -> u8 {
        match self {
            LogoutReason::CloseSession => 0,
            LogoutReason::CloseConnection => 1,
            LogoutReason::RemoveConnectionForRecovery => 2,
            LogoutReason::Unknown(v) => v & REASON_MASK,
        }
    }
}

/// Logout Request, initiator to target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogoutRequest {
    /// I bit: immediate delivery.
    pub immediate: bool,
    /// What to close.
    pub reason: LogoutReason,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Connection ID to close (reserved when closing the session).
    pub cid: u16,
    /// CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
}

impl LogoutRequest {
    /// Parses a Logout Request BHS.
    pub fn parse(header: &[u8]) -> Result<LogoutRequest, PduError> {
        let b = view(header, Opcode::LogoutRequest)?;
        Ok(LogoutRequest {
            immediate: b.immediate(),
            reason: LogoutReason::from_u8(b.flags()),
            itt: b.itt(),
            cid: b.be16(CID),
            cmd_sn: b.be32(at::W24),
            exp_stat_sn: b.be32(at::W28),
        })
    }

    /// Writes all 48 bytes (bit 7 of byte 1 is always set).
    pub fn emit(&self, header: &mut [u8; BHS_LEN]) {
        let flags = FINAL_BIT | self.reason.to_u8();
        let mut b = start(header, Opcode::LogoutRequest, self.immediate, flags);
        b.set_itt(self.itt);
        b.set_be16(CID, self.cid);
        b.set_be32(at::W24, self.cmd_sn);
        b.set_be32(at::W28, self.exp_stat_sn);
    }
}

/// Logout Response, target to initiator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogoutResponse {
    /// Response code (`LOGOUT_SUCCESS` ...).
    pub response: u8,
    /// Initiator Task Tag of the request.
    pub itt: u32,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// Seconds to wait before reconnecting to reassign tasks.
    pub time2wait: u16,
    /// Seconds the target keeps task state after Time2Wait.
    pub time2retain: u16,
}

impl LogoutResponse {
    /// Parses a Logout Response BHS.
    pub fn parse(header: &[u8]) -> Result<LogoutResponse, PduError> {
        let b = view(header, Opcode::LogoutResponse)?;
        Ok(LogoutResponse {
            response: b.byte(2),
            itt: b.itt(),
            stat_sn: b.be32(at::W24),
            exp_cmd_sn: b.be32(at::W28),
            max_cmd_sn: b.be32(at::W32),
            time2wait: b.be16(TIME2WAIT),
            time2retain: b.be16(TIME2RETAIN),
        })
    }

    /// Writes all 48 bytes (the F bit is always set).
    pub fn emit(&self, header: &mut [u8; BHS_LEN]) {
        let mut b = start(header, Opcode::LogoutResponse, false, FINAL_BIT);
        b.set_byte(2, self.response);
        b.set_itt(self.itt);
        b.set_be32(at::W24, self.stat_sn);
        b.set_be32(at::W28, self.exp_cmd_sn);
        b.set_be32(at::W32, self.max_cmd_sn);
        b.set_be16(TIME2WAIT, self.time2wait);
        b.set_be16(TIME2RETAIN, self.time2retain);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{fixture, header};
    use super::*;

    #[test]
    fn captured_session_logout() {
        let req = LogoutRequest::parse(&fixture("logout_req")).unwrap();
        assert!(req.immediate);
        assert_eq!(req.reason, LogoutReason::CloseSession);
        assert_eq!(req.itt, 0x265e_d4c8);
        assert_eq!(req.cid, 0);
        assert_eq!(req.cmd_sn, 0x5bae_831c);
        assert_eq!(req.exp_stat_sn, 2);

        let resp = LogoutResponse::parse(&fixture("logout_resp")).unwrap();
        assert_eq!(resp.response, LOGOUT_SUCCESS);
        assert_eq!(resp.itt, req.itt);
        assert_eq!(resp.stat_sn, 2);
        assert_eq!(resp.exp_cmd_sn, req.cmd_sn);
        assert_eq!((resp.time2wait, resp.time2retain), (0, 0));

        let mut out = [0u8; BHS_LEN];
        req.emit(&mut out);
        assert_eq!(out, header(&fixture("logout_req")));
        resp.emit(&mut out);
        assert_eq!(out, header(&fixture("logout_resp")));
    }

    #[test]
    fn close_connection_round_trip() {
        let req = LogoutRequest {
            immediate: false,
            reason: LogoutReason::RemoveConnectionForRecovery,
            itt: 1,
            cid: 0xbeef,
            cmd_sn: 2,
            exp_stat_sn: 3,
        };
        let mut h = [0u8; BHS_LEN];
        req.emit(&mut h);
        assert_eq!(&h[..2], &[0x06, 0x82]);
        assert_eq!(&h[20..22], &[0xbe, 0xef]);
        assert_eq!(LogoutRequest::parse(&h), Ok(req));

        let resp = LogoutResponse {
            response: LOGOUT_RECOVERY_NOT_SUPPORTED,
            itt: 1,
            stat_sn: 4,
            exp_cmd_sn: 3,
            max_cmd_sn: 10,
            time2wait: 2,
            time2retain: 20,
        };
        resp.emit(&mut h);
        assert_eq!(&h[40..44], &[0, 2, 0, 20]);
        assert_eq!(LogoutResponse::parse(&h), Ok(resp));
    }

    #[test]
    fn reason_codes() {
        for v in 0u8..128 {
            assert_eq!(LogoutReason::from_u8(v).to_u8(), v);
        }
        assert_eq!(LogoutReason::from_u8(0x81), LogoutReason::CloseConnection);
        assert_eq!(LogoutReason::from_u8(3), LogoutReason::Unknown(3));
    }
}
