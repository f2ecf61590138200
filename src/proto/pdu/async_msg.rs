//! Asynchronous Message (RFC 7143 §11.9): events a target raises on its own (SCSI
//! async events, logout requests, dropped connections, renegotiation).

use super::super::bhs::{Opcode, BHS_LEN, FINAL_BIT, RESERVED_TAG};
use super::{at, set_data_len, start, view, PduError};

/// Byte 36: AsyncEvent.
const EVENT: usize = 36;
/// Byte 37: AsyncVCode.
const VCODE: usize = 37;

/// AsyncEvent code (RFC 7143 §11.9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsyncEvent {
    /// 0: a SCSI asynchronous event; the data segment holds sense data.
    ScsiEvent,
    /// 1: the target asks for a logout within Parameter3 seconds.
    LogoutRequest,
    /// 2: the target will drop the connection named by Parameter1.
    DropConnection,
    /// 3: the target will drop all connections of the session.
    DropAllConnections,
    /// 4: the target asks to renegotiate operational parameters.
    Renegotiate,
    /// 5: all active tasks for a LU with a Unit Attention were terminated.
    TaskTermination,
    /// 255: vendor-specific event in AsyncVCode.
    VendorSpecific,
    /// Any other value.
    Unknown(u8),
}

impl AsyncEvent {
    /// Decodes byte 36.
    pub const fn from_u8(v: u8) -> AsyncEvent {
        match v {
            0 => AsyncEvent::ScsiEvent,
            1 => AsyncEvent::LogoutRequest,
            2 => AsyncEvent::DropConnection,
            3 => AsyncEvent::DropAllConnections,
            4 => AsyncEvent::Renegotiate,
            5 => AsyncEvent::TaskTermination,
            255 => AsyncEvent::VendorSpecific,
            other => AsyncEvent::Unknown(other),
        }
    }

    /// The wire value.
    pub const fn to_u8(self) -> u8 {
        match self {
            AsyncEvent::ScsiEvent => 0,
            AsyncEvent::LogoutRequest => 1,
            AsyncEvent::DropConnection => 2,
            AsyncEvent::DropAllConnections => 3,
            AsyncEvent::Renegotiate => 4,
            AsyncEvent::TaskTermination => 5,
            AsyncEvent::VendorSpecific => 255,
            AsyncEvent::Unknown(v) => v,
        }
    }
}

/// Asynchronous Message, target to initiator. Its ITT is always 0xffffffff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncMessage {
    /// LUN the event concerns (SCSI events).
    pub lun: u64,
    /// StatSN (an async message takes one).
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// What happened.
    pub event: AsyncEvent,
    /// Vendor code (with `AsyncEvent::VendorSpecific`).
    pub vcode: u8,
    /// Parameter1: CID for DropConnection, else event specific.
    pub parameter1: u16,
    /// Parameter2: Time2Wait for the drop events.
    pub parameter2: u16,
    /// Parameter3: Time2Retain for the drop events, logout deadline for
    /// LogoutRequest.
    pub parameter3: u16,
    /// Length of the sense / iSCSI event data that follows.
    pub data_segment_len: u32,
}

impl AsyncMessage {
    /// Parses an Asynchronous Message BHS.
    pub fn parse(header: &[u8]) -> Result<AsyncMessage, PduError> {
        let b = view(header, Opcode::AsyncMessage)?;
        Ok(AsyncMessage {
            lun: b.lun_raw(),
            stat_sn: b.be32(at::W24),
            exp_cmd_sn: b.be32(at::W28),
            max_cmd_sn: b.be32(at::W32),
            event: AsyncEvent::from_u8(b.byte(EVENT)),
            vcode: b.byte(VCODE),
            parameter1: b.be16(38..40),
            parameter2: b.be16(40..42),
            parameter3: b.be16(42..44),
            data_segment_len: b.data_segment_len(),
        })
    }

    /// Writes all 48 bytes (the F bit set, ITT 0xffffffff).
    pub fn emit(&self, header: &mut [u8; BHS_LEN]) {
        let mut b = start(header, Opcode::AsyncMessage, false, FINAL_BIT);
        set_data_len(&mut b, self.data_segment_len);
        b.set_lun_raw(self.lun);
        b.set_itt(RESERVED_TAG);
        b.set_be32(at::W24, self.stat_sn);
        b.set_be32(at::W28, self.exp_cmd_sn);
        b.set_be32(at::W32, self.max_cmd_sn);
        b.set_byte(EVENT, self.event.to_u8());
        b.set_byte(VCODE, self.vcode);
        b.set_be16(38..40, self.parameter1);
        b.set_be16(40..42, self.parameter2);
        b.set_be16(42..44, self.parameter3);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::hex;
    use super::*;

    /// Hand-built from the RFC 7143 §11.9 layout (tgtd does not raise async events
    /// in the capture): "logout within 10 seconds", StatSN 0x21.
    const LOGOUT_REQUEST: &str = "32800000 00000000 00000000 00000000
                                  ffffffff 00000000 00000021 00000030
                                  00000040 01000000 0000000a 00000000";

    /// Hand-built: drop connection CID 1, Time2Wait 2, Time2Retain 20.
    const DROP_CONNECTION: &str = "32800000 00000000 00000000 00000000
                                   ffffffff 00000000 00000022 00000030
                                   00000040 02000001 00020014 00000000";

    #[test]
    fn hand_built_logout_request_event() {
        let h = hex(LOGOUT_REQUEST);
        let a = AsyncMessage::parse(&h).unwrap();
        assert_eq!(a.event, AsyncEvent::LogoutRequest);
        assert_eq!(a.stat_sn, 0x21);
        assert_eq!(a.parameter3, 10);
        assert_eq!(a.data_segment_len, 0);
        let mut out = [0u8; BHS_LEN];
        a.emit(&mut out);
        assert_eq!(&out[..], &h[..]);
    }

    #[test]
    fn hand_built_drop_connection_event() {
        let h = hex(DROP_CONNECTION);
        let a = AsyncMessage::parse(&h).unwrap();
        assert_eq!(a.event, AsyncEvent::DropConnection);
        assert_eq!((a.parameter1, a.parameter2, a.parameter3), (1, 2, 20));
        let mut out = [0u8; BHS_LEN];
        a.emit(&mut out);
        assert_eq!(&out[..], &h[..]);
    }

    #[test]
    fn scsi_event_with_sense_round_trip() {
        let a = AsyncMessage {
            lun: 0x0001_0000_0000_0000,
            stat_sn: 1,
            exp_cmd_sn: 2,
            max_cmd_sn: 3,
            event: AsyncEvent::ScsiEvent,
            vcode: 0,
            parameter1: 0,
            parameter2: 0,
            parameter3: 0,
            data_segment_len: 20,
        };
        let mut h = [0u8; BHS_LEN];
        a.emit(&mut h);
        assert_eq!(&h[16..20], &[0xff; 4]);
        assert_eq!(AsyncMessage::parse(&h), Ok(a));
    }

    #[test]
    fn event_codes_round_trip() {
        for v in 0u8..=255 {
            assert_eq!(AsyncEvent::from_u8(v).to_u8(), v);
        }
        assert_eq!(AsyncEvent::from_u8(6), AsyncEvent::Unknown(6));
        assert_eq!(AsyncEvent::from_u8(255), AsyncEvent::VendorSpecific);
    }
}
