//! Login Request (RFC 7143 §11.12) and Login Response (§11.13) headers, and the
//! login [`Stage`] codes of their CSG/NSG fields. The login conversation itself is
//! driven by `super::super::login`.

use super::super::bhs::{Opcode, BHS_LEN};
use super::{at, bit, set_data_len, start, view, PduError};
use core::ops::Range;

/// Byte 1: T (transit to the next stage).
const TRANSIT_BIT: u8 = 0x80;
/// Byte 1: C (text continues in the next PDU).
const CONTINUE_BIT: u8 = 0x40;
/// Bytes 8..14: ISID.
const ISID: Range<usize> = 8..14;
/// Bytes 14..16: TSIH.
const TSIH: Range<usize> = 14..16;
/// Bytes 20..22 of a request: CID.
const CID: Range<usize> = 20..22;

/// A login stage as carried in CSG and NSG (2 bits each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// 0: SecurityNegotiation.
    Security,
    /// 1: LoginOperationalNegotiation.
    Operational,
    /// 3: FullFeaturePhase.
    FullFeature,
}

impl Stage {
    /// Decodes a 2-bit stage value; 2 (and anything above 3) is reserved.
    pub const fn from_bits(bits: u8) -> Result<Stage, PduError> {
        match bits {
            0 => Ok(Stage::Security),
            1 => Ok(Stage::Operational),
            3 => Ok(Stage::FullFeature),
            _ => Err(PduError::ReservedStage),
        }
    }

    /// The 2-bit wire value.
    pub const fn bits(self) -> u8 {
        match self {
            Stage::Security => 0,
            Stage::Operational => 1,
            Stage::FullFeature => 3,
        }
    }
}

/// Byte 1 fields shared by both login PDUs.
struct LoginFlags {
    transit: bool,
    cont: bool,
    csg: Stage,
    nsg: Stage,
}

/// Decodes and checks byte 1 of a login PDU. With `strict` (a request, or a
/// response whose Status-Class is 0) the stages must be valid: T and C not both
/// set, CSG not FullFeaturePhase, and with T the NSG after the CSG. NSG is only
/// meaningful with T (RFC 7143 §11.12.3), so without T an undecodable NSG is
/// reported as the CSG. A failed login response carries no usable stages: any
/// undecodable one reads as Security there.
fn decode_flags(flags: u8, strict: bool) -> Result<LoginFlags, PduError> {
    let transit = flags & TRANSIT_BIT != 0;
    let cont = flags & CONTINUE_BIT != 0;
    let csg_bits = (flags >> 2) & 3;
    let nsg_bits = flags & 3;
    if !strict {
        let csg = Stage::from_bits(csg_bits).unwrap_or(Stage::Security);
        let nsg = Stage::from_bits(nsg_bits).unwrap_or(Stage::Security);
        return Ok(LoginFlags {
            transit,
            cont,
            csg,
            nsg,
        });
    }
    if transit && cont {
        return Err(PduError::TransitWithContinue);
    }
    let csg = Stage::from_bits(csg_bits)?;
    let nsg = if transit {
        Stage::from_bits(nsg_bits)?
    } else {
        Stage::from_bits(nsg_bits).unwrap_or(csg)
    };
    if csg == Stage::FullFeature || (transit && nsg <= csg) {
        return Err(PduError::BadStageTransition {
            csg: csg_bits,
            nsg: nsg_bits,
        });
    }
    Ok(LoginFlags {
        transit,
        cont,
        csg,
        nsg,
    })
}

fn encode_flags(transit: bool, cont: bool, csg: Stage, nsg: Stage) -> u8 {
    bit(transit, TRANSIT_BIT) | bit(cont, CONTINUE_BIT) | csg.bits() << 2 | nsg.bits()
}

fn isid_of(header: &[u8; BHS_LEN]) -> [u8; 6] {
    let mut isid = [0u8; 6];
    if let Some(src) = header.get(ISID) {
        isid.copy_from_slice(src);
    }
    isid
}

/// Login Request, initiator to target (always sent with the I bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginRequest {
    /// T bit: ready to move to `nsg`.
    pub transit: bool,
    /// C bit: the key=value text continues in the next Login Request.
    pub cont: bool,
    /// Current stage.
    pub csg: Stage,
    /// Next stage (meaningful with `transit`).
    pub nsg: Stage,
    /// Version-max (0 for RFC 7143).
    pub version_max: u8,
    /// Version-min (0 for RFC 7143).
    pub version_min: u8,
    /// Initiator Session ID (6 bytes: T/A, B, C, D).
    pub isid: [u8; 6],
    /// Target Session Identifying Handle: 0 for a new session.
    pub tsih: u16,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Connection ID.
    pub cid: u16,
    /// CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
    /// Length of the key=value text that follows.
    pub data_segment_len: u32,
}

impl LoginRequest {
    /// Parses a Login Request BHS, checking the stage fields.
    pub fn parse(header: &[u8]) -> Result<LoginRequest, PduError> {
        let b = view(header, Opcode::LoginRequest)?;
        let f = decode_flags(b.flags(), true)?;
        Ok(LoginRequest {
            transit: f.transit,
            cont: f.cont,
            csg: f.csg,
            nsg: f.nsg,
            version_max: b.byte(2),
            version_min: b.byte(3),
            isid: isid_of(b.header()),
            tsih: b.be16(TSIH),
            itt: b.itt(),
            cid: b.be16(CID),
            cmd_sn: b.be32(at::W24),
            exp_stat_sn: b.be32(at::W28),
            data_segment_len: b.data_segment_len(),
        })
    }

    /// Writes all 48 bytes, with the I bit set as the RFC requires.
    pub fn emit(&self, header: &mut [u8; BHS_LEN]) {
        let flags = encode_flags(self.transit, self.cont, self.csg, self.nsg);
        let mut b = start(header, Opcode::LoginRequest, true, flags);
        b.set_byte(2, self.version_max);
        b.set_byte(3, self.version_min);
        set_data_len(&mut b, self.data_segment_len);
        if let Some(dst) = b.header_mut().get_mut(ISID) {
            dst.copy_from_slice(&self.isid);
        }
        b.set_be16(TSIH, self.tsih);
        b.set_itt(self.itt);
        b.set_be16(CID, self.cid);
        b.set_be32(at::W24, self.cmd_sn);
        b.set_be32(at::W28, self.exp_stat_sn);
    }
}

/// Login Response, target to initiator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginResponse {
    /// T bit: the target moves to `nsg`.
    pub transit: bool,
    /// C bit: the key=value text continues in the next Login Response.
    pub cont: bool,
    /// Current stage.
    pub csg: Stage,
    /// Next stage (meaningful with `transit`).
    pub nsg: Stage,
    /// Version-max.
    pub version_max: u8,
    /// Version-active.
    pub version_active: u8,
    /// Initiator Session ID, echoed.
    pub isid: [u8; 6],
    /// Target Session Identifying Handle: set by the target in the final response.
    pub tsih: u16,
    /// Initiator Task Tag, echoed.
    pub itt: u32,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// Status-Class: 0 success, 1 redirection, 2 initiator error, 3 target error.
    pub status_class: u8,
    /// Status-Detail within the class.
    pub status_detail: u8,
    /// Length of the key=value text that follows.
    pub data_segment_len: u32,
}

impl LoginResponse {
    /// Parses a Login Response BHS. The stage fields are checked only when
    /// Status-Class is 0: a failed login ends the exchange, and rejecting its
    /// flags would hide the status that says why.
    pub fn parse(header: &[u8]) -> Result<LoginResponse, PduError> {
        let b = view(header, Opcode::LoginResponse)?;
        let status_class = b.byte(36);
        let f = decode_flags(b.flags(), status_class == 0)?;
        Ok(LoginResponse {
            transit: f.transit,
            cont: f.cont,
            csg: f.csg,
            nsg: f.nsg,
            version_max: b.byte(2),
            version_active: b.byte(3),
            isid: isid_of(b.header()),
            tsih: b.be16(TSIH),
            itt: b.itt(),
            stat_sn: b.be32(at::W24),
            exp_cmd_sn: b.be32(at::W28),
            max_cmd_sn: b.be32(at::W32),
            status_class,
            status_detail: b.byte(37),
            data_segment_len: b.data_segment_len(),
        })
    }

    /// Writes all 48 bytes.
    pub fn emit(&self, header: &mut [u8; BHS_LEN]) {
        let flags = encode_flags(self.transit, self.cont, self.csg, self.nsg);
        let mut b = start(header, Opcode::LoginResponse, false, flags);
        b.set_byte(2, self.version_max);
        b.set_byte(3, self.version_active);
        set_data_len(&mut b, self.data_segment_len);
        if let Some(dst) = b.header_mut().get_mut(ISID) {
            dst.copy_from_slice(&self.isid);
        }
        b.set_be16(TSIH, self.tsih);
        b.set_itt(self.itt);
        b.set_be32(at::W24, self.stat_sn);
        b.set_be32(at::W28, self.exp_cmd_sn);
        b.set_be32(at::W32, self.max_cmd_sn);
        b.set_byte(36, self.status_class);
        b.set_byte(37, self.status_detail);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{data_segment, fixture, header};
    use super::*;

    #[test]
    fn captured_discovery_login_request() {
        // libiscsi goes straight to operational negotiation and asks for full feature.
        let bytes = fixture("login_req");
        let r = LoginRequest::parse(&bytes).unwrap();
        assert!(r.transit);
        assert!(!r.cont);
        assert_eq!(r.csg, Stage::Operational);
        assert_eq!(r.nsg, Stage::FullFeature);
        assert_eq!((r.version_max, r.version_min), (0, 0));
        assert_eq!(r.isid, [0x80, 0x7a, 0xb9, 0xb6, 0x00, 0x00]);
        assert_eq!(r.tsih, 0);
        assert_eq!(r.itt, 0x265e_d4c6);
        assert_eq!(r.cid, 0);
        assert_eq!(r.cmd_sn, 0x5bae_831c);
        assert_eq!(r.exp_stat_sn, 1);
        assert_eq!(r.data_segment_len, 0x18b);
        assert!(data_segment(&bytes).starts_with(b"InitiatorName=iqn."));
        let mut out = [0u8; BHS_LEN];
        r.emit(&mut out);
        assert_eq!(out, header(&bytes));
        assert_eq!(out[0], 0x43);
    }

    #[test]
    fn captured_final_login_response() {
        let bytes = fixture("login_resp");
        let r = LoginResponse::parse(&bytes).unwrap();
        assert!(r.transit);
        assert_eq!(r.csg, Stage::Operational);
        assert_eq!(r.nsg, Stage::FullFeature);
        assert_eq!(r.isid, [0x80, 0x7a, 0xb9, 0xb6, 0x00, 0x00]);
        assert_eq!(r.tsih, 0x0100);
        assert_eq!(r.itt, 0x265e_d4c6);
        assert_eq!(r.stat_sn, 0);
        assert_eq!(r.exp_cmd_sn, 0x5bae_831c);
        assert_eq!(r.max_cmd_sn, 0x5bae_831d);
        assert_eq!((r.status_class, r.status_detail), (0, 0));
        assert_eq!(r.data_segment_len, 0x12c);
        assert!(data_segment(&bytes).starts_with(b"TargetPortalGroupTag=1\0"));
        let mut out = [0u8; BHS_LEN];
        r.emit(&mut out);
        assert_eq!(out, header(&bytes));
    }

    #[test]
    fn stage_codes() {
        assert_eq!(Stage::from_bits(0), Ok(Stage::Security));
        assert_eq!(Stage::from_bits(1), Ok(Stage::Operational));
        assert_eq!(Stage::from_bits(2), Err(PduError::ReservedStage));
        assert_eq!(Stage::from_bits(3), Ok(Stage::FullFeature));
        assert_eq!(Stage::from_bits(4), Err(PduError::ReservedStage));
        for s in [Stage::Security, Stage::Operational, Stage::FullFeature] {
            assert_eq!(Stage::from_bits(s.bits()), Ok(s));
        }
    }

    fn request_with_flags(flags: u8) -> Result<LoginRequest, PduError> {
        let mut h = header(&fixture("login_req"));
        h[1] = flags;
        LoginRequest::parse(&h)
    }

    #[test]
    fn valid_transitions_parse() {
        for (csg, nsg) in [(0u8, 1u8), (0, 3), (1, 3)] {
            let r = request_with_flags(0x80 | csg << 2 | nsg).unwrap();
            assert_eq!((r.csg.bits(), r.nsg.bits()), (csg, nsg));
        }
        // Staying in a stage (T=0), with C set while text continues.
        let r = request_with_flags(0x40).unwrap();
        assert!(r.cont && !r.transit);
        assert_eq!(r.csg, Stage::Security);
    }

    #[test]
    fn bad_transitions_are_refused() {
        for (csg, nsg) in [(1u8, 0u8), (1, 1), (0, 0)] {
            assert_eq!(
                request_with_flags(0x80 | csg << 2 | nsg),
                Err(PduError::BadStageTransition { csg, nsg })
            );
        }
        assert_eq!(
            request_with_flags(0x0c),
            Err(PduError::BadStageTransition { csg: 3, nsg: 0 })
        );
        assert_eq!(request_with_flags(0x08), Err(PduError::ReservedStage));
        assert_eq!(
            request_with_flags(0x80 | 0x02),
            Err(PduError::ReservedStage)
        );
        assert_eq!(
            request_with_flags(0xc0 | 0x01),
            Err(PduError::TransitWithContinue)
        );
    }

    #[test]
    fn nsg_is_not_checked_without_transit() {
        // NSG=2 is reserved but meaningless while T=0: read as the CSG.
        let r = request_with_flags(0x04 | 0x02).unwrap();
        assert_eq!((r.csg, r.nsg), (Stage::Operational, Stage::Operational));
    }

    #[test]
    fn failed_login_response_is_not_refused_for_its_flags() {
        let mut h = header(&fixture("login_resp"));
        h[1] = 0xc0 | 0x08 | 0x02; // T+C, CSG=2, NSG=2: garbage
        h[36] = 2; // initiator error
        h[37] = 1; // authentication failure
        let r = LoginResponse::parse(&h).unwrap();
        assert_eq!((r.status_class, r.status_detail), (2, 1));
        // The same flags on a successful response are a protocol error.
        h[36] = 0;
        assert_eq!(LoginResponse::parse(&h), Err(PduError::TransitWithContinue));
    }

    #[test]
    fn security_stage_request_round_trip() {
        let r = LoginRequest {
            transit: true,
            cont: false,
            csg: Stage::Security,
            nsg: Stage::Operational,
            version_max: 0,
            version_min: 0,
            isid: [0x40, 0x00, 0x01, 0x37, 0x00, 0x01],
            tsih: 0x1234,
            itt: 0,
            cid: 1,
            cmd_sn: 1,
            exp_stat_sn: 0,
            data_segment_len: 100,
        };
        let mut h = [0u8; BHS_LEN];
        r.emit(&mut h);
        assert_eq!(h[0], 0x43);
        assert_eq!(h[1], 0x81);
        assert_eq!(&h[8..16], &[0x40, 0, 1, 0x37, 0, 1, 0x12, 0x34]);
        assert_eq!(&h[20..22], &[0, 1]);
        assert_eq!(LoginRequest::parse(&h), Ok(r));
    }

    #[test]
    fn login_response_round_trip_redirect() {
        let r = LoginResponse {
            transit: false,
            cont: false,
            csg: Stage::Security,
            nsg: Stage::Security,
            version_max: 0,
            version_active: 0,
            isid: [1, 2, 3, 4, 5, 6],
            tsih: 0,
            itt: 0xabcd,
            stat_sn: 5,
            exp_cmd_sn: 6,
            max_cmd_sn: 7,
            status_class: 1,
            status_detail: 2,
            data_segment_len: 30,
        };
        let mut h = [0u8; BHS_LEN];
        r.emit(&mut h);
        assert_eq!(h[0], 0x23);
        assert_eq!(&h[36..38], &[1, 2]);
        assert_eq!(LoginResponse::parse(&h), Ok(r));
    }
}
