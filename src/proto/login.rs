//! The initiator's login (RFC 7143 §6, §11.12-§11.13) as a sans-IO state machine:
//! security negotiation (AuthMethod None or CHAP) → operational negotiation → full
//! feature phase, with the CSG/NSG/T/C bits, ISID/TSIH/CID, CmdSN/ExpStatSN tracking,
//! redirects and every login status decoded. Also owns what login and the later
//! phases share: ISID builders, `TargetAddress` parsing ([`Portal`]), the
//! [`Sequence`] numbers a session continues with, the target-violation enum
//! [`ProtocolError`], and the Logout Request/Response exchange ([`Logout`]).
//!
//! [`Login`] writes each request into the caller's buffer ([`Login::next_request`])
//! and takes each response ([`Login::handle_response`]) until it yields a
//! [`LoginStep::Complete`] or [`LoginStep::Redirect`]. It never touches a socket, a
//! clock or a random source: CHAP hashing and challenges come from the caller.

use core::fmt;

use super::bhs::{Bhs, Opcode, BHS_LEN};
use super::chap::{
    Challenge, ChapAlgorithm, ChapConfig, ChapDigest, ChapError, ChapSession, MAX_CHALLENGE_LEN,
    MIN_CHALLENGE_LEN,
};
use super::framing;
use super::negotiate::{
    self, AuthMethod, AuthOffer, Key, NegotiationError, Negotiator, Proposal, Reply, ReplyValue,
    ResultFunction, SessionParams, SessionType,
};
use super::pdu::{
    LoginRequest, LoginResponse, LogoutReason, LogoutRequest, LogoutResponse, PduError, Stage,
    LOGOUT_CID_NOT_FOUND, LOGOUT_CLEANUP_FAILED, LOGOUT_RECOVERY_NOT_SUPPORTED, LOGOUT_SUCCESS,
};
use super::text::{self, Assembly, Special, TextAssembler, TextError, TextWriter, MAX_VALUE_LEN};

/// Largest data segment of a login PDU either way: the default
/// MaxRecvDataSegmentLength (8192) is in force until the login ends.
pub const LOGIN_MAX_DATA_SEGMENT_LEN: usize = framing::DEFAULT_MAX_RECV_DATA_SEGMENT_LEN as usize;

/// Largest PDU [`Login::next_request`] writes: a BHS and a full data segment
/// (8192 is a multiple of 4, so no padding; login never carries digests).
pub const MAX_LOGIN_PDU_LEN: usize = BHS_LEN + LOGIN_MAX_DATA_SEGMENT_LEN;

/// A comfortable size for each of the two work buffers [`Login::new`] takes: room for
/// a target text split over two full PDUs, and for our largest text (names, and a
/// mutual-CHAP response with a 1024-byte challenge in hex).
pub const LOGIN_BUFFER_LEN: usize = 2 * LOGIN_MAX_DATA_SEGMENT_LEN;

/// Responses one login may take before we give up on a target that never moves on
/// (answering T=0, or C=1, forever).
pub const MAX_LOGIN_ROUNDS: u32 = 64;

/// The IANA-assigned iSCSI port, used when a `TargetAddress` has none.
pub const DEFAULT_PORT: u16 = 3260;

// ---------------------------------------------------------------------------
// ISID (RFC 7143 §11.12.5)
// ---------------------------------------------------------------------------

/// ISID format, from its T field (the top two bits of byte 0). The ISID is laid out
/// T(2 bits) A(6) | B(16) | C(8) | D(16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsidFormat {
    /// 00b: A+B hold a 22-bit IEEE OUI, C+D a 24-bit qualifier.
    Oui,
    /// 01b: A is reserved, B+C hold a 24-bit IANA Enterprise Number, D a qualifier.
    EnterpriseNumber,
    /// 10b: A is reserved, B+C hold 24 random bits, D a qualifier.
    Random,
    /// 11b: reserved.
    Reserved,
}

impl IsidFormat {
    /// The format of `isid`.
    pub const fn of(isid: &[u8; 6]) -> IsidFormat {
        match isid[0] >> 6 {
            0 => IsidFormat::Oui,
            1 => IsidFormat::EnterpriseNumber,
            2 => IsidFormat::Random,
            _ => IsidFormat::Reserved,
        }
    }
}

/// Largest IANA Enterprise Number an ISID can carry (B+C are 24 bits).
pub const MAX_ISID_ENTERPRISE_NUMBER: u32 = 0x00ff_ffff;

/// An IANA-Enterprise-Number-format ISID (T=01b): `0x40`, the 24-bit Enterprise
/// Number, then the 16-bit qualifier that tells this initiator's sessions apart.
/// `None` if the number does not fit 24 bits.
pub const fn isid_enterprise(enterprise_number: u32, qualifier: u16) -> Option<[u8; 6]> {
    if enterprise_number > MAX_ISID_ENTERPRISE_NUMBER {
        return None;
    }
    let en = enterprise_number.to_be_bytes();
    let q = qualifier.to_be_bytes();
    Some([0x40, en[1], en[2], en[3], q[0], q[1]])
}

/// A random-format ISID (T=10b) from 24 caller-supplied random bits and a qualifier.
pub const fn isid_random(random: [u8; 3], qualifier: u16) -> [u8; 6] {
    let q = qualifier.to_be_bytes();
    [0x80, random[0], random[1], random[2], q[0], q[1]]
}

/// An OUI-format ISID (T=00b) from a 22-bit OUI (the IEEE OUI without its I/G and
/// U/L bits) and a 24-bit qualifier. `None` if either value is too wide.
pub const fn isid_oui(oui: u32, qualifier: u32) -> Option<[u8; 6]> {
    if oui > 0x003f_ffff || qualifier > 0x00ff_ffff {
        return None;
    }
    let o = oui.to_be_bytes();
    let q = qualifier.to_be_bytes();
    Some([o[1], o[2], o[3], q[1], q[2], q[3]])
}

// ---------------------------------------------------------------------------
// Small owned text and TargetAddress
// ---------------------------------------------------------------------------

/// A text value of at most [`MAX_VALUE_LEN`] bytes kept by value, so outcomes
/// (target alias, redirect address) outlive the buffers they were read from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShortText {
    bytes: [u8; MAX_VALUE_LEN],
    len: usize,
}

impl ShortText {
    /// Copies `s`; `None` if it is longer than [`MAX_VALUE_LEN`].
    pub fn new(s: &str) -> Option<ShortText> {
        let mut bytes = [0u8; MAX_VALUE_LEN];
        bytes.get_mut(..s.len())?.copy_from_slice(s.as_bytes());
        Some(ShortText {
            bytes,
            len: s.len(),
        })
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        self.bytes
            .get(..self.len)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

impl fmt::Debug for ShortText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ShortText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a `TargetAddress` value does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressError {
    /// No host.
    EmptyHost,
    /// A `[` without its `]`, or something other than `:port` after the `]`.
    BadBracket,
    /// A host with characters no address or DNS name has (spaces, brackets, `/`).
    BadHost,
    /// The port is not a decimal number in 1..=65535.
    BadPort,
    /// The portal group tag is not a decimal number in 0..=65535.
    BadTag,
    /// Longer than a text value may be.
    TooLong,
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressError::EmptyHost => "TargetAddress has no host",
            AddressError::BadBracket => "TargetAddress has a malformed [IPv6] part",
            AddressError::BadHost => "TargetAddress host has invalid characters",
            AddressError::BadPort => "TargetAddress port is not in 1..65535",
            AddressError::BadTag => "TargetAddress portal group tag is not in 0..65535",
            AddressError::TooLong => "TargetAddress is too long",
        })
    }
}

/// Strict decimal for ports and tags: digits only (no sign, no `0x`), at most 65535.
fn parse_dec_u16(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v = s.bytes().try_fold(0u32, |acc, b| {
        acc.checked_mul(10)?
            .checked_add(u32::from(b.wrapping_sub(b'0')))
    })?;
    u16::try_from(v).ok()
}

/// One portal from a `TargetAddress` value (RFC 7143 §13.8):
/// `domainname[:port][,portal-group-tag]`, the domain name being a DNS name, a
/// dotted IPv4 address or a bracketed IPv6 address (`[2001:db8::1]:3260,1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Portal<'t> {
    /// Host as written, without the brackets of an IPv6 address.
    pub host: &'t str,
    /// TCP port ([`DEFAULT_PORT`] when the value has none).
    pub port: u16,
    /// Target portal group tag, when given.
    pub tag: Option<u16>,
}

impl<'t> Portal<'t> {
    /// Parses a `TargetAddress` value. An IPv6 address without brackets (against
    /// the RFC, but seen) is taken whole as the host, with the default port.
    pub fn parse(value: &'t str) -> Result<Portal<'t>, AddressError> {
        if value.len() > MAX_VALUE_LEN {
            return Err(AddressError::TooLong);
        }
        // No host form contains ',', so the last one starts the tag.
        let (addr, tag) = match value.rsplit_once(',') {
            Some((a, t)) => (a, Some(parse_dec_u16(t).ok_or(AddressError::BadTag)?)),
            None => (value, None),
        };
        let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or(AddressError::BadBracket)?;
            let port = match after {
                "" => DEFAULT_PORT,
                p => {
                    let digits = p.strip_prefix(':').ok_or(AddressError::BadBracket)?;
                    parse_port(digits)?
                }
            };
            (host, port)
        } else {
            match addr.split_once(':') {
                Some((h, p)) if !p.contains(':') => (h, parse_port(p)?),
                _ => (addr, DEFAULT_PORT),
            }
        };
        if host.is_empty() {
            return Err(AddressError::EmptyHost);
        }
        let bad = |b: u8| b <= b' ' || b == 0x7f || matches!(b, b'[' | b']' | b'/' | b',');
        if host.bytes().any(bad) {
            return Err(AddressError::BadHost);
        }
        Ok(Portal { host, port, tag })
    }

    /// True for an IPv6 host (the only form with a `:` in it).
    pub fn is_ipv6(&self) -> bool {
        self.host.contains(':')
    }
}

fn parse_port(digits: &str) -> Result<u16, AddressError> {
    match parse_dec_u16(digits) {
        Some(p) if p != 0 => Ok(p),
        _ => Err(AddressError::BadPort),
    }
}

impl fmt::Display for Portal<'_> {
    /// `host:port`, with brackets around an IPv6 host: a form socket APIs resolve.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ipv6() {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

// ---------------------------------------------------------------------------
// Sequence numbers
// ---------------------------------------------------------------------------

/// Where a connection's numbering stands after a PDU exchange: what the next
/// request carries, and the command window the target last announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequence {
    /// CmdSN for the next request (a non-immediate one then advances it).
    pub cmd_sn: u32,
    /// ExpStatSN: the last StatSN received plus one.
    pub exp_stat_sn: u32,
    /// The target's ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// The target's MaxCmdSN.
    pub max_cmd_sn: u32,
}

// ---------------------------------------------------------------------------
// Status and errors
// ---------------------------------------------------------------------------

/// Login Response Status-Class/Status-Detail (RFC 7143 §11.13.5), one variant per
/// code the RFC defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginStatus {
    /// 0x0000: the login proceeds.
    Success,
    /// 0x0101: the target is temporarily at another address.
    TargetMovedTemporarily,
    /// 0x0102: the target has moved to another address for good.
    TargetMovedPermanently,
    /// 0x0200: initiator error (miscellaneous).
    InitiatorError,
    /// 0x0201: the initiator could not be authenticated.
    AuthenticationFailure,
    /// 0x0202: the initiator may not access this target.
    AuthorizationFailure,
    /// 0x0203: no such target.
    NotFound,
    /// 0x0204: the target was removed.
    TargetRemoved,
    /// 0x0205: no common protocol version.
    UnsupportedVersion,
    /// 0x0206: the session already has MaxConnections connections.
    TooManyConnections,
    /// 0x0207: a required key (e.g. InitiatorName) is missing.
    MissingParameter,
    /// 0x0208: the connection cannot be added to this session.
    CantIncludeInSession,
    /// 0x0209: the session type is not supported.
    SessionTypeNotSupported,
    /// 0x020a: the TSIH names no existing session.
    SessionDoesNotExist,
    /// 0x020b: a request the target does not allow during login.
    InvalidDuringLogin,
    /// 0x0300: target error (miscellaneous).
    TargetError,
    /// 0x0301: the service or target is temporarily unavailable.
    ServiceUnavailable,
    /// 0x0302: the target is out of resources.
    OutOfResources,
    /// A code RFC 7143 does not define.
    Unknown {
        /// Status-Class.
        class: u8,
        /// Status-Detail.
        detail: u8,
    },
}

impl LoginStatus {
    /// Every code RFC 7143 defines, in code order.
    pub const ALL: [LoginStatus; 18] = [
        LoginStatus::Success,
        LoginStatus::TargetMovedTemporarily,
        LoginStatus::TargetMovedPermanently,
        LoginStatus::InitiatorError,
        LoginStatus::AuthenticationFailure,
        LoginStatus::AuthorizationFailure,
        LoginStatus::NotFound,
        LoginStatus::TargetRemoved,
        LoginStatus::UnsupportedVersion,
        LoginStatus::TooManyConnections,
        LoginStatus::MissingParameter,
        LoginStatus::CantIncludeInSession,
        LoginStatus::SessionTypeNotSupported,
        LoginStatus::SessionDoesNotExist,
        LoginStatus::InvalidDuringLogin,
        LoginStatus::TargetError,
        LoginStatus::ServiceUnavailable,
        LoginStatus::OutOfResources,
    ];

    /// Decodes Status-Class and Status-Detail.
    pub const fn from_code(class: u8, detail: u8) -> LoginStatus {
        match (class, detail) {
            (0, 0) => LoginStatus::Success,
            (1, 1) => LoginStatus::TargetMovedTemporarily,
            (1, 2) => LoginStatus::TargetMovedPermanently,
            (2, 0) => LoginStatus::InitiatorError,
            (2, 1) => LoginStatus::AuthenticationFailure,
            (2, 2) => LoginStatus::AuthorizationFailure,
            (2, 3) => LoginStatus::NotFound,
            (2, 4) => LoginStatus::TargetRemoved,
            (2, 5) => LoginStatus::UnsupportedVersion,
            (2, 6) => LoginStatus::TooManyConnections,
            (2, 7) => LoginStatus::MissingParameter,
            (2, 8) => LoginStatus::CantIncludeInSession,
            (2, 9) => LoginStatus::SessionTypeNotSupported,
            (2, 0x0a) => LoginStatus::SessionDoesNotExist,
            (2, 0x0b) => LoginStatus::InvalidDuringLogin,
            (3, 0) => LoginStatus::TargetError,
            (3, 1) => LoginStatus::ServiceUnavailable,
            (3, 2) => LoginStatus::OutOfResources,
            (class, detail) => LoginStatus::Unknown { class, detail },
        }
    }

    /// `(Status-Class, Status-Detail)`.
    pub const fn code(self) -> (u8, u8) {
        match self {
            LoginStatus::Success => (0, 0),
            LoginStatus::TargetMovedTemporarily => (1, 1),
            LoginStatus::TargetMovedPermanently => (1, 2),
            LoginStatus::InitiatorError => (2, 0),
            LoginStatus::AuthenticationFailure => (2, 1),
            LoginStatus::AuthorizationFailure => (2, 2),
            LoginStatus::NotFound => (2, 3),
            LoginStatus::TargetRemoved => (2, 4),
            LoginStatus::UnsupportedVersion => (2, 5),
            LoginStatus::TooManyConnections => (2, 6),
            LoginStatus::MissingParameter => (2, 7),
            LoginStatus::CantIncludeInSession => (2, 8),
            LoginStatus::SessionTypeNotSupported => (2, 9),
            LoginStatus::SessionDoesNotExist => (2, 0x0a),
            LoginStatus::InvalidDuringLogin => (2, 0x0b),
            LoginStatus::TargetError => (3, 0),
            LoginStatus::ServiceUnavailable => (3, 1),
            LoginStatus::OutOfResources => (3, 2),
            LoginStatus::Unknown { class, detail } => (class, detail),
        }
    }

    /// The code as one number, `class << 8 | detail` (0x0201 …), as the RFC
    /// tabulates it.
    pub const fn code16(self) -> u16 {
        let (class, detail) = self.code();
        u16::from_be_bytes([class, detail])
    }

    /// A short human description, for messages such as "login failed: …".
    pub const fn describe(&self) -> &'static str {
        match self {
            LoginStatus::Success => "login accepted",
            LoginStatus::TargetMovedTemporarily => "target moved temporarily",
            LoginStatus::TargetMovedPermanently => "target moved permanently",
            LoginStatus::InitiatorError => "initiator error",
            LoginStatus::AuthenticationFailure => "authentication failure",
            LoginStatus::AuthorizationFailure => {
                "authorization failure: this initiator may not access the target"
            }
            LoginStatus::NotFound => "target not found",
            LoginStatus::TargetRemoved => "target removed",
            LoginStatus::UnsupportedVersion => "unsupported iSCSI version",
            LoginStatus::TooManyConnections => "too many connections in the session",
            LoginStatus::MissingParameter => "missing parameter (e.g. InitiatorName or TargetName)",
            LoginStatus::CantIncludeInSession => "connection cannot be included in the session",
            LoginStatus::SessionTypeNotSupported => "session type not supported",
            LoginStatus::SessionDoesNotExist => "session does not exist",
            LoginStatus::InvalidDuringLogin => "request invalid during login",
            LoginStatus::TargetError => "target error",
            LoginStatus::ServiceUnavailable => "service unavailable",
            LoginStatus::OutOfResources => "target out of resources",
            LoginStatus::Unknown { .. } => "unknown login status",
        }
    }

    /// Class 1: the response carries a new `TargetAddress`.
    pub const fn is_redirect(self) -> bool {
        self.code().0 == 1
    }

    /// Whether trying again later may succeed: redirects and target errors (class 3,
    /// RFC 7143 §11.13.5); an initiator error (class 2) will recur unchanged.
    pub const fn is_transient(self) -> bool {
        matches!(self.code().0, 1 | 3)
    }
}

impl fmt::Display for LoginStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (status {:#06x})", self.describe(), self.code16())
    }
}

/// A target PDU that breaks RFC 7143 during login, discovery or logout. The only
/// remedy is dropping the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// A PDU of an opcode that has no place here.
    UnexpectedOpcode {
        /// The 6-bit opcode received.
        opcode: u8,
    },
    /// The header does not parse.
    Pdu(PduError),
    /// The data given does not match the header's DataSegmentLength.
    DataLengthMismatch {
        /// DataSegmentLength in the header.
        announced: u32,
        /// Bytes handed over.
        given: usize,
    },
    /// The Initiator Task Tag is not ours.
    IttMismatch {
        /// The ITT we sent.
        expected: u32,
        /// The ITT received.
        got: u32,
    },
    /// The ISID is not the one we sent.
    IsidMismatch {
        /// Our ISID.
        expected: [u8; 6],
        /// The ISID received.
        got: [u8; 6],
    },
    /// A successful response with a Version-active other than 0 (RFC 7143).
    UnsupportedVersion {
        /// Version-active received.
        active: u8,
    },
    /// The response's CSG is not the stage of our request.
    StageMismatch {
        /// Our CSG.
        expected: Stage,
        /// The response's CSG.
        got: Stage,
    },
    /// T=1 in answer to a request with T=0 (RFC 7143 §11.13).
    UnrequestedTransit,
    /// T=1 towards a stage beyond the NSG we asked for.
    TransitBeyondRequest {
        /// Our NSG.
        requested: Stage,
        /// The response's NSG.
        got: Stage,
    },
    /// We required CHAP, but the target left (or tried to leave) the security stage
    /// before authenticating us.
    SecuritySkipped,
    /// Data, or C=1, in the answer to our partial (C=1) request, which the target
    /// must acknowledge with an empty response.
    ContinuationNotEmpty,
    /// A CHAP key although CHAP is not configured.
    UnexpectedAuthKey,
    /// A response that moves on (T=1) while offering a key whose answer would differ
    /// from its value: the two sides would end with different parameters.
    OfferWithTransit {
        /// The key.
        key: Key,
    },
    /// A key negotiation failure.
    Negotiation(NegotiationError),
    /// A CHAP failure, including a target that fails mutual authentication.
    Chap(ChapError),
    /// Malformed key=value text.
    Text(TextError),
    /// The target's text does not fit the reassembly buffer.
    ResponseTooBig {
        /// Bytes needed.
        needed: usize,
        /// Buffer size.
        available: usize,
    },
    /// The final response's TSIH is not the one we are logging in to.
    TsihMismatch {
        /// Our TSIH.
        expected: u16,
        /// The TSIH received.
        got: u16,
    },
    /// The final response of a new Normal session carries TSIH 0.
    MissingTsih,
    /// A redirect without a `TargetAddress` key.
    RedirectWithoutAddress,
    /// A `TargetAddress` that does not parse.
    BadTargetAddress(AddressError),
    /// A SendTargets `TargetAddress` before any `TargetName`.
    AddressWithoutTarget,
    /// An empty SendTargets `TargetName`.
    EmptyTargetName,
    /// A Text Response with F=0 but no Target Transfer Tag to continue with.
    MissingTargetTransferTag,
    /// More rounds than [`MAX_LOGIN_ROUNDS`] (or the discovery limit).
    TooManyRounds,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::UnexpectedOpcode { opcode } => write!(f, "unexpected PDU opcode {opcode:#04x}"),
            Self::Pdu(e) => write!(f, "malformed PDU: {e}"),
            Self::DataLengthMismatch { announced, given } => write!(
                f,
                "data segment of {given} bytes where the header announces {announced}"
            ),
            Self::IttMismatch { expected, got } => {
                write!(f, "response ITT {got:#010x} is not ours ({expected:#010x})")
            }
            Self::IsidMismatch { expected, got } => write!(
                f,
                "response ISID {} is not ours ({})",
                IsidHex(got),
                IsidHex(expected)
            ),
            Self::UnsupportedVersion { active } => write!(f, "target runs iSCSI version {active}"),
            Self::StageMismatch { expected, got } => {
                write!(f, "response for stage {got:?} to a {expected:?} request")
            }
            Self::UnrequestedTransit => f.write_str("target changed stage without our T bit"),
            Self::TransitBeyondRequest { requested, got } => {
                write!(f, "target moved to {got:?}, we asked for {requested:?}")
            }
            Self::SecuritySkipped => {
                f.write_str("target skipped authentication although CHAP is required")
            }
            Self::ContinuationNotEmpty => {
                f.write_str("target answered partial login text with data or C bit")
            }
            Self::UnexpectedAuthKey => f.write_str("target sent CHAP keys without CHAP"),
            Self::OfferWithTransit { key } => {
                write!(f, "target offered {key} in a response that changes stage")
            }
            Self::Negotiation(e) => write!(f, "negotiation: {e}"),
            Self::Chap(e) => write!(f, "CHAP: {e}"),
            Self::Text(e) => write!(f, "text: {e}"),
            Self::ResponseTooBig { needed, available } => write!(
                f,
                "target text needs {needed} bytes, the buffer holds {available}"
            ),
            Self::TsihMismatch { expected, got } => {
                write!(
                    f,
                    "target answered TSIH {got:#06x} for session {expected:#06x}"
                )
            }
            Self::MissingTsih => f.write_str("target assigned no TSIH"),
            Self::RedirectWithoutAddress => f.write_str("redirect without TargetAddress"),
            Self::BadTargetAddress(e) => write!(f, "{e}"),
            Self::AddressWithoutTarget => f.write_str("TargetAddress before any TargetName"),
            Self::EmptyTargetName => f.write_str("empty TargetName"),
            Self::MissingTargetTransferTag => {
                f.write_str("Text Response continues without a Target Transfer Tag")
            }
            Self::TooManyRounds => f.write_str("target never finishes the exchange"),
        }
    }
}

/// Prints an ISID as 12 hex digits.
struct IsidHex([u8; 6]);

impl fmt::Display for IsidHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// A [`LoginConfig`] that cannot work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// The proposal is invalid (a value out of range, a missing name, …).
    Negotiation(NegotiationError),
    /// The CHAP configuration or our mutual challenge is invalid.
    Chap(ChapError),
    /// The proposal offers CHAP but no CHAP configuration was given.
    ChapNotConfigured,
    /// CHAP needs the security stage, which `skip_security` leaves out.
    SecurityStageSkipped,
    /// A non-zero TSIH (joining a session) without the session's parameters.
    MissingSessionParams,
    /// The session's parameters without its TSIH.
    MissingSessionTsih,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Negotiation(e) => write!(f, "{e}"),
            Self::Chap(e) => write!(f, "CHAP configuration: {e}"),
            Self::ChapNotConfigured => f.write_str("CHAP offered without credentials"),
            Self::SecurityStageSkipped => f.write_str("CHAP needs the security stage"),
            Self::MissingSessionParams => {
                f.write_str("joining a session (TSIH set) needs its parameters")
            }
            Self::MissingSessionTsih => f.write_str("session parameters given without TSIH"),
        }
    }
}

/// Why a login failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    /// The target refused the login with this status (class 2 or 3, or unknown).
    Status(LoginStatus),
    /// The target broke the protocol.
    Protocol(ProtocolError),
    /// Our configuration cannot work.
    Config(ConfigError),
    /// A caller buffer is too small: the output PDU buffer (nothing was consumed;
    /// retry with a larger one), or the work buffer for our own text.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A call out of turn: `next_request` while a response is due, `handle_response`
    /// with no request outstanding, or any call after the login ended.
    OutOfOrder,
}

impl From<ProtocolError> for LoginError {
    fn from(e: ProtocolError) -> Self {
        LoginError::Protocol(e)
    }
}

impl From<ConfigError> for LoginError {
    fn from(e: ConfigError) -> Self {
        LoginError::Config(e)
    }
}

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(s) => write!(f, "login refused: {s}"),
            Self::Protocol(e) => write!(f, "protocol error: {e}"),
            Self::Config(e) => write!(f, "invalid login configuration: {e}"),
            Self::BufferTooSmall { needed, available } => {
                write!(f, "buffer of {available} bytes, {needed} needed")
            }
            Self::OutOfOrder => f.write_str("login call out of order"),
        }
    }
}

/// Our own text did not fit the transmit work buffer.
fn tx_full(e: TextError) -> LoginError {
    match e {
        TextError::BufferFull { needed, available } => {
            LoginError::BufferTooSmall { needed, available }
        }
        other => ProtocolError::Text(other).into(),
    }
}

fn tx_negotiation(e: NegotiationError) -> LoginError {
    match e {
        NegotiationError::Text(t) => tx_full(t),
        other => ProtocolError::Negotiation(other).into(),
    }
}

fn tx_chap(e: ChapError) -> LoginError {
    match e {
        ChapError::Text(t) => tx_full(t),
        other => ProtocolError::Chap(other).into(),
    }
}

fn check_data_len(announced: u32, data: &[u8]) -> Result<(), ProtocolError> {
    if usize::try_from(announced).ok() == Some(data.len()) {
        Ok(())
    } else {
        Err(ProtocolError::DataLengthMismatch {
            announced,
            given: data.len(),
        })
    }
}

// ---------------------------------------------------------------------------
// Login
// ---------------------------------------------------------------------------

/// Everything one login attempt needs. Build with [`LoginConfig::new`], then set
/// the fields that differ from the defaults.
#[derive(Debug, Clone, Copy)]
pub struct LoginConfig<'a> {
    /// Names, session type and the operational values we want. Its `auth` offer is
    /// raised from `None` to `Chap` when `chap` is set (credentials given means
    /// authentication required); use `ChapOrNone` to let the target waive it.
    pub proposal: Proposal<'a>,
    /// Initiator Session ID: see [`isid_enterprise`], [`isid_random`].
    pub isid: [u8; 6],
    /// 0 for a new session (also for session reinstatement, which reuses the ISID);
    /// the session's TSIH to add or reinstate a connection in an existing session
    /// (then `session` is required too).
    pub tsih: u16,
    /// Connection ID.
    pub cid: u16,
    /// Initiator Task Tag of every Login Request of this login.
    pub itt: u32,
    /// CmdSN of every Login Request: the session's initial CmdSN on a leading login,
    /// the session's current one otherwise. It does not advance during login.
    pub cmd_sn: u32,
    /// ExpStatSN of the first Login Request: 0, or the old connection's ExpStatSN
    /// when reinstating a connection.
    pub exp_stat_sn: u32,
    /// CHAP credentials, if we authenticate.
    pub chap: Option<ChapConfig<'a>>,
    /// Our identifier and random challenge for mutual CHAP (required with it):
    /// fresh random bytes for every attempt.
    pub mutual_challenge: Option<Challenge<'a>>,
    /// The session's negotiated values when `tsih` names an existing session:
    /// only connection-scoped keys are then offered (leading-only keys such as
    /// SessionType belong to the leading login).
    pub session: Option<SessionParams>,
    /// Start in the operational stage (CSG=1), as libiscsi does without
    /// credentials. Off by default: starting in the security stage with
    /// `AuthMethod=None` works with every target.
    pub skip_security: bool,
}

impl<'a> LoginConfig<'a> {
    /// A leading login of a new session: TSIH 0, CID 0, ITT 0, CmdSN 1,
    /// ExpStatSN 0, no CHAP, starting in the security stage.
    pub const fn new(proposal: Proposal<'a>, isid: [u8; 6]) -> Self {
        LoginConfig {
            proposal,
            isid,
            tsih: 0,
            cid: 0,
            itt: 0,
            cmd_sn: 1,
            exp_stat_sn: 0,
            chap: None,
            mutual_challenge: None,
            session: None,
            skip_security: false,
        }
    }
}

/// The result of a successful login: what the full feature phase (or a handoff to
/// the kernel) continues with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginOutcome {
    /// The negotiated parameters.
    pub params: SessionParams,
    /// Our ISID.
    pub isid: [u8; 6],
    /// The session's TSIH (assigned by the target for a new session).
    pub tsih: u16,
    /// Connection ID.
    pub cid: u16,
    /// StatSN of the final Login Response.
    pub stat_sn: u32,
    /// ExpStatSN for the next request (`stat_sn + 1`).
    pub exp_stat_sn: u32,
    /// CmdSN of the first non-immediate command: the login's CmdSN, which login
    /// does not advance (RFC 7143 §11.12, CmdSN).
    pub cmd_sn: u32,
    /// ExpCmdSN of the final Login Response.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN of the final Login Response.
    pub max_cmd_sn: u32,
    /// TargetPortalGroupTag, if the target declared it.
    pub target_portal_group_tag: Option<u16>,
    /// TargetAlias, if the target declared one.
    pub target_alias: Option<ShortText>,
    /// The CHAP algorithm used, if CHAP ran.
    pub chap_algorithm: Option<ChapAlgorithm>,
}

impl LoginOutcome {
    /// The numbers the next request (Text, Logout, SCSI Command) continues with.
    pub const fn sequence(&self) -> Sequence {
        Sequence {
            cmd_sn: self.cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn,
        }
    }
}

/// A redirect (Status-Class 1): log in at `address` instead, on a new connection
/// and with a new [`Login`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redirect {
    /// The `TargetAddress` value (checked to parse as a [`Portal`]).
    pub address: ShortText,
    /// 0x0102: use the new address from now on; else (0x0101) only this time.
    pub permanent: bool,
}

impl Redirect {
    /// The address as a portal.
    pub fn portal(&self) -> Result<Portal<'_>, AddressError> {
        Portal::parse(self.address.as_str())
    }
}

/// What [`Login::handle_response`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginStep {
    /// Call [`Login::next_request`] and send its PDU.
    SendNext,
    /// The connection is in the full feature phase.
    Complete(LoginOutcome),
    /// The target sent us elsewhere; this connection is done.
    Redirect(Redirect),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A request is ready for `next_request`.
    Send,
    /// A request went out; its response is due.
    Await,
    /// Complete or redirected.
    Done,
    /// An error ended the login.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChapStep {
    Idle,
    AlgorithmsSent,
    ResponseSent,
}

/// One login attempt on one connection (initiator side).
///
/// Sans-IO loop: `next_request` → send → receive a PDU → `handle_response` →
/// repeat while it says [`LoginStep::SendNext`]. Every Login Request is immediate,
/// carries the same ITT, ISID, TSIH, CID and CmdSN, and acknowledges the last
/// response through ExpStatSN. The target's text is reassembled across C=1
/// responses (answered with empty requests) before any key is looked at; our own
/// text is cut at [`LOGIN_MAX_DATA_SEGMENT_LEN`] with C=1. We move to a stage only
/// when the target sets T. Any error ends the login; drop the connection then.
pub struct Login<'a> {
    isid: [u8; 6],
    tsih: u16,
    cid: u16,
    itt: u32,
    cmd_sn: u32,
    session_type: SessionType,
    /// The proposal offers CHAP only: the target must authenticate us.
    auth_required: bool,
    mutual_challenge: Option<Challenge<'a>>,
    neg: Negotiator<'a>,
    chap: Option<ChapSession<'a>>,
    chap_step: ChapStep,
    /// The target's text, reassembled.
    rx: TextAssembler<'a>,
    /// Our text for the current request (possibly several C=1 PDUs).
    tx: TextWriter<'a>,
    /// Bytes of `tx` already sent.
    tx_sent: usize,
    state: State,
    csg: Stage,
    nsg: Stage,
    /// We are ready to leave `csg` (T on the last PDU of the current request).
    want_transit: bool,
    sent_transit: bool,
    sent_cont: bool,
    stat_sn: u32,
    exp_stat_sn: u32,
    exp_cmd_sn: u32,
    max_cmd_sn: u32,
    rounds: u32,
    alias: Option<ShortText>,
}

impl fmt::Debug for Login<'_> {
    // Not derived: the work buffers hold CHAP material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("state", &self.state)
            .field("csg", &self.csg)
            .field("nsg", &self.nsg)
            .field("itt", &self.itt)
            .field("exp_stat_sn", &self.exp_stat_sn)
            .field("rounds", &self.rounds)
            .finish_non_exhaustive()
    }
}

impl<'a> Login<'a> {
    /// Checks `config` and prepares the first request. `rx_buf` reassembles the
    /// target's text, `tx_buf` holds ours; [`LOGIN_BUFFER_LEN`] bytes each is ample.
    /// CHAP state starts reset, as every leading login requires.
    pub fn new(
        config: LoginConfig<'a>,
        rx_buf: &'a mut [u8],
        tx_buf: &'a mut [u8],
    ) -> Result<Self, LoginError> {
        let mut proposal = config.proposal;
        match (config.chap.is_some(), proposal.auth) {
            (true, AuthOffer::None) => proposal.auth = AuthOffer::Chap,
            (false, AuthOffer::Chap | AuthOffer::ChapOrNone) => {
                return Err(ConfigError::ChapNotConfigured.into())
            }
            _ => {}
        }
        if config.skip_security && config.chap.is_some() {
            return Err(ConfigError::SecurityStageSkipped.into());
        }
        let chap = match config.chap {
            Some(c) => {
                if c.mutual.is_some() {
                    let ours = config
                        .mutual_challenge
                        .ok_or(ConfigError::Chap(ChapError::MutualChallengeMissing))?;
                    let len = ours.value.len();
                    if len < MIN_CHALLENGE_LEN {
                        return Err(ConfigError::Chap(ChapError::ChallengeTooShort { len }).into());
                    }
                    if len > MAX_CHALLENGE_LEN {
                        return Err(ConfigError::Chap(ChapError::ChallengeTooLong { len }).into());
                    }
                }
                let mut session = ChapSession::new(c).map_err(ConfigError::Chap)?;
                session.reset();
                Some(session)
            }
            None => None,
        };
        let neg = match (config.tsih, config.session) {
            (0, None) => Negotiator::new(proposal),
            (0, Some(_)) => return Err(ConfigError::MissingSessionTsih.into()),
            (_, Some(s)) => Negotiator::new_secondary(proposal, &s),
            (_, None) => return Err(ConfigError::MissingSessionParams.into()),
        }
        .map_err(ConfigError::Negotiation)?;
        let (csg, nsg, offer_stage) = if config.skip_security {
            (
                Stage::Operational,
                Stage::FullFeature,
                negotiate::Stage::Operational,
            )
        } else {
            (
                Stage::Security,
                Stage::Operational,
                negotiate::Stage::Security,
            )
        };
        let mut login = Login {
            isid: config.isid,
            tsih: config.tsih,
            cid: config.cid,
            itt: config.itt,
            cmd_sn: config.cmd_sn,
            session_type: proposal.session_type,
            auth_required: proposal.auth == AuthOffer::Chap,
            mutual_challenge: config.mutual_challenge,
            neg,
            chap,
            chap_step: ChapStep::Idle,
            rx: TextAssembler::new(rx_buf),
            tx: TextWriter::new(tx_buf),
            tx_sent: 0,
            state: State::Send,
            csg,
            nsg,
            // Without credentials nothing happens in the security stage, so ask to
            // leave it at once; with CHAP on offer, wait for the target's choice.
            want_transit: config.skip_security || proposal.auth == AuthOffer::None,
            sent_transit: false,
            sent_cont: false,
            stat_sn: 0,
            exp_stat_sn: config.exp_stat_sn,
            exp_cmd_sn: config.cmd_sn,
            max_cmd_sn: config.cmd_sn,
            rounds: 0,
            alias: None,
        };
        login
            .neg
            .write_offer(offer_stage, &mut login.tx)
            .map_err(|e| match e {
                NegotiationError::Text(TextError::BufferFull { needed, available }) => {
                    LoginError::BufferTooSmall { needed, available }
                }
                other => ConfigError::Negotiation(other).into(),
            })?;
        Ok(login)
    }

    /// The stage our requests are in (CSG).
    pub fn stage(&self) -> Stage {
        self.csg
    }

    /// True while the CHAP_A offer is the last CHAP message we sent and no CHAP
    /// response has gone out yet: a refusal now refuses the offer itself, not our
    /// credentials (which the target has not seen).
    pub fn chap_offer_pending(&self) -> bool {
        self.chap_step == ChapStep::AlgorithmsSent
    }

    /// The numbers as they stand: CmdSN and ExpStatSN of the next request, and the
    /// last window the target announced.
    pub fn sequence(&self) -> Sequence {
        Sequence {
            cmd_sn: self.cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn,
        }
    }

    /// Writes the next Login Request (BHS, data segment, padding; login has no
    /// digests) into `out` and returns its length. [`MAX_LOGIN_PDU_LEN`] bytes always
    /// suffice. On `BufferTooSmall` nothing changes.
    pub fn next_request(&mut self, out: &mut [u8]) -> Result<usize, LoginError> {
        if self.state != State::Send {
            return Err(LoginError::OutOfOrder);
        }
        let pending = self.tx.as_bytes().get(self.tx_sent..).unwrap_or(&[]);
        let (chunk, cont) = text::chunks(pending, LOGIN_MAX_DATA_SEGMENT_LEN)
            .next()
            .unwrap_or((&[], false));
        // RFC 7143 §11.12: a request with C=1 must have T=0.
        let transit = self.want_transit && !cont;
        let data_len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        let request = LoginRequest {
            transit,
            cont,
            csg: self.csg,
            nsg: self.nsg,
            version_max: 0,
            version_min: 0,
            isid: self.isid,
            tsih: self.tsih,
            itt: self.itt,
            cid: self.cid,
            cmd_sn: self.cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
            data_segment_len: data_len,
        };
        let mut header = [0u8; BHS_LEN];
        request.emit(&mut header);
        let needed = framing::pdu_wire_len(0, data_len, false, false).unwrap_or(usize::MAX);
        let available = out.len();
        let n = framing::write_pdu(&header, &[], chunk, false, false, out)
            .map_err(|_| LoginError::BufferTooSmall { needed, available })?;
        self.tx_sent = self.tx_sent.saturating_add(chunk.len());
        self.sent_cont = cont;
        self.sent_transit = transit;
        self.state = State::Await;
        Ok(n)
    }

    /// Takes the target's Login Response: `header` is its BHS, `data` its data
    /// segment without padding (as the framer delivers it). `digest` computes CHAP
    /// hashes; without CHAP any implementation will do (e.g. [`NoChap`]).
    pub fn handle_response<D: ChapDigest + ?Sized>(
        &mut self,
        header: &[u8; BHS_LEN],
        data: &[u8],
        digest: &mut D,
    ) -> Result<LoginStep, LoginError> {
        if self.state != State::Await {
            return Err(LoginError::OutOfOrder);
        }
        let step = self.receive(header, data, digest);
        self.state = match step {
            Ok(LoginStep::SendNext) => State::Send,
            Ok(_) => State::Done,
            Err(_) => State::Failed,
        };
        step
    }

    fn receive<D: ChapDigest + ?Sized>(
        &mut self,
        header: &[u8; BHS_LEN],
        data: &[u8],
        digest: &mut D,
    ) -> Result<LoginStep, LoginError> {
        let opcode = Bhs::from_array(header).opcode();
        if opcode != Opcode::LoginResponse {
            return Err(ProtocolError::UnexpectedOpcode {
                opcode: opcode.to_u8(),
            }
            .into());
        }
        let resp = LoginResponse::parse(header).map_err(ProtocolError::Pdu)?;
        check_data_len(resp.data_segment_len, data)?;
        // A refusal ends the login whatever else the header says, and some targets
        // (tgtd) zero the echoed ISID/ITT in it: report the status, not the echo.
        if resp.status_class >= 2 {
            return Err(LoginError::Status(LoginStatus::from_code(
                resp.status_class,
                resp.status_detail,
            )));
        }
        if resp.itt != self.itt {
            return Err(ProtocolError::IttMismatch {
                expected: self.itt,
                got: resp.itt,
            }
            .into());
        }
        if resp.isid != self.isid {
            return Err(ProtocolError::IsidMismatch {
                expected: self.isid,
                got: resp.isid,
            }
            .into());
        }
        match resp.status_class {
            0 => {}
            1 => return redirect(&resp, data).map(LoginStep::Redirect),
            // Class >= 2 returned above.
            _ => {}
        }
        if resp.version_active != 0 {
            return Err(ProtocolError::UnsupportedVersion {
                active: resp.version_active,
            }
            .into());
        }
        // Checked before the generic stage rules so the error names the real problem.
        let leaving = resp.transit || resp.csg != Stage::Security;
        if self.csg == Stage::Security
            && self.auth_required
            && self.chap_step != ChapStep::ResponseSent
            && leaving
        {
            return Err(ProtocolError::SecuritySkipped.into());
        }
        if resp.csg != self.csg {
            return Err(ProtocolError::StageMismatch {
                expected: self.csg,
                got: resp.csg,
            }
            .into());
        }
        if resp.transit {
            if !self.sent_transit {
                return Err(ProtocolError::UnrequestedTransit.into());
            }
            if resp.nsg > self.nsg {
                return Err(ProtocolError::TransitBeyondRequest {
                    requested: self.nsg,
                    got: resp.nsg,
                }
                .into());
            }
        }
        // StatSN is valid in every class-0 response; each one is acknowledged.
        self.stat_sn = resp.stat_sn;
        self.exp_stat_sn = resp.stat_sn.wrapping_add(1);
        self.exp_cmd_sn = resp.exp_cmd_sn;
        self.max_cmd_sn = resp.max_cmd_sn;

        if self.sent_cont {
            // Our text continues: the target only acknowledges what it got so far.
            if resp.cont || !data.is_empty() {
                return Err(ProtocolError::ContinuationNotEmpty.into());
            }
            return self.next_round();
        }
        match self.rx.push(data, resp.cont) {
            Ok(Assembly::NeedMore) => {
                // Ask for the rest with an empty request; keeping our T lets the
                // target move on in its last piece.
                self.tx.clear();
                self.tx_sent = 0;
                return self.next_round();
            }
            Ok(Assembly::Complete) => {}
            Err(TextError::BufferFull { needed, available }) => {
                return Err(ProtocolError::ResponseTooBig { needed, available }.into())
            }
            Err(e) => return Err(ProtocolError::Text(e).into()),
        }
        self.tx.clear();
        self.tx_sent = 0;
        self.take_pairs(resp.transit)?;
        if resp.transit {
            if self.csg == Stage::Security {
                self.leave_security(digest)?;
            }
            match resp.nsg {
                Stage::FullFeature => return self.complete(&resp).map(LoginStep::Complete),
                Stage::Operational => {
                    self.csg = Stage::Operational;
                    self.nsg = Stage::FullFeature;
                    self.neg
                        .write_offer(negotiate::Stage::Operational, &mut self.tx)
                        .map_err(tx_negotiation)?;
                    self.want_transit = true;
                }
                // LoginResponse::parse refuses T=1 with NSG <= CSG.
                Stage::Security => return Err(ProtocolError::UnrequestedTransit.into()),
            }
        } else if self.csg == Stage::Security {
            self.security_step(digest)?;
        } else {
            // Operational with T=0: the target wants another round (answers to its
            // offers are in `tx`); we are still ready to move on.
            self.want_transit = true;
        }
        self.next_round()
    }

    fn next_round(&mut self) -> Result<LoginStep, LoginError> {
        self.rounds = self.rounds.saturating_add(1);
        if self.rounds > MAX_LOGIN_ROUNDS {
            return Err(ProtocolError::TooManyRounds.into());
        }
        Ok(LoginStep::SendNext)
    }

    /// Feeds every pair of the reassembled target text to CHAP or the negotiator
    /// and queues our answers.
    fn take_pairs(&mut self, transit: bool) -> Result<(), LoginError> {
        for item in self.rx.pairs() {
            let (key, value) = item.map_err(ProtocolError::Text)?;
            if negotiate::is_chap_key(key) {
                let chap = self.chap.as_mut().ok_or(ProtocolError::UnexpectedAuthKey)?;
                chap.receive(key, value).map_err(ProtocolError::Chap)?;
                continue;
            }
            if key == Key::TargetAlias.name() {
                self.alias = ShortText::new(value);
            }
            let reply = self
                .neg
                .apply_response(key, value)
                .map_err(ProtocolError::Negotiation)?;
            let Reply::Answer {
                key: answer_key,
                value: answer,
            } = reply
            else {
                continue;
            };
            if transit {
                // RFC 7143 §11.13: a T=1 response must not need answers. Tolerate
                // offers whose answer changes nothing (tgtd echoes keys a minimal
                // discovery offer left out); refuse those that would split the sides.
                match Key::from_name(answer_key) {
                    Some(k) if !answer_agrees(k, value, answer) => {
                        return Err(ProtocolError::OfferWithTransit { key: k }.into())
                    }
                    _ => continue,
                }
            }
            answer.write(answer_key, &mut self.tx).map_err(tx_full)?;
        }
        Ok(())
    }

    /// The security stage continues (T=0): decide our next step.
    fn security_step<D: ChapDigest + ?Sized>(&mut self, digest: &mut D) -> Result<(), LoginError> {
        match self.neg.auth_method() {
            Some(AuthMethod::Chap) => {
                // AuthMethod=CHAP is only accepted when we offered it, which needs
                // credentials, so the session exists.
                let chap = self.chap.as_mut().ok_or(ConfigError::ChapNotConfigured)?;
                match self.chap_step {
                    ChapStep::Idle => {
                        // CHAP_A goes in the PDU after the target chose CHAP.
                        chap.write_algorithms(&mut self.tx).map_err(tx_chap)?;
                        self.chap_step = ChapStep::AlgorithmsSent;
                        self.want_transit = false;
                    }
                    ChapStep::AlgorithmsSent if chap.has_challenge() => {
                        chap.write_response(digest, self.mutual_challenge, &mut self.tx)
                            .map_err(tx_chap)?;
                        self.chap_step = ChapStep::ResponseSent;
                        self.want_transit = true;
                    }
                    ChapStep::AlgorithmsSent => self.want_transit = false,
                    ChapStep::ResponseSent => self.want_transit = true,
                }
            }
            Some(AuthMethod::None) => self.want_transit = true,
            None => self.want_transit = self.neg.proposal().auth == AuthOffer::None,
        }
        Ok(())
    }

    /// The target leaves the security stage: authentication must be complete.
    fn leave_security<D: ChapDigest + ?Sized>(&mut self, digest: &mut D) -> Result<(), LoginError> {
        match (self.neg.auth_method(), self.chap.as_mut()) {
            (Some(AuthMethod::Chap), Some(chap)) => {
                // Mutual CHAP: the target's CHAP_N/CHAP_R arrived with this response.
                chap.finish(digest).map_err(ProtocolError::Chap)?;
            }
            _ if self.auth_required => return Err(ProtocolError::SecuritySkipped.into()),
            _ => {}
        }
        Ok(())
    }

    fn complete(&mut self, resp: &LoginResponse) -> Result<LoginOutcome, LoginError> {
        let params = self.neg.finish().map_err(ProtocolError::Negotiation)?;
        let tsih = if self.tsih != 0 {
            if resp.tsih != self.tsih {
                return Err(ProtocolError::TsihMismatch {
                    expected: self.tsih,
                    got: resp.tsih,
                }
                .into());
            }
            self.tsih
        } else {
            // A discovery session's TSIH is never used again; do not fail on it.
            if resp.tsih == 0 && self.session_type == SessionType::Normal {
                return Err(ProtocolError::MissingTsih.into());
            }
            resp.tsih
        };
        Ok(LoginOutcome {
            params,
            isid: self.isid,
            tsih,
            cid: self.cid,
            stat_sn: self.stat_sn,
            exp_stat_sn: self.exp_stat_sn,
            cmd_sn: self.cmd_sn,
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn,
            target_portal_group_tag: params.target_portal_group_tag,
            target_alias: self.alias,
            chap_algorithm: self.chap.as_ref().and_then(|c| c.algorithm()),
        })
    }
}

/// Whether sending `answer` to the target's `offered` value would change nothing:
/// it equals the offer, or it is Irrelevant/NotUnderstood (nothing depends on the
/// key), or a Reject of an obsolete key (whose only value is its default).
fn answer_agrees(key: Key, offered: &str, answer: ReplyValue<'_>) -> bool {
    match answer {
        ReplyValue::Text(t) => match Special::from_value(t) {
            Some(Special::Irrelevant | Special::NotUnderstood) => true,
            Some(Special::Reject) => key.function() == ResultFunction::Obsolete,
            None => t == offered,
        },
        ReplyValue::Number(n) => text::parse_number(offered) == Ok(n),
        ReplyValue::Bool(b) => text::parse_bool(offered) == Ok(b),
    }
}

fn redirect(resp: &LoginResponse, data: &[u8]) -> Result<Redirect, LoginError> {
    let mut address = None;
    for item in text::pairs(data) {
        let (key, value) = item.map_err(ProtocolError::Text)?;
        if key == Key::TargetAddress.name() {
            address = Some(value);
            break;
        }
    }
    let value = address.ok_or(ProtocolError::RedirectWithoutAddress)?;
    Portal::parse(value).map_err(ProtocolError::BadTargetAddress)?;
    let address =
        ShortText::new(value).ok_or(ProtocolError::BadTargetAddress(AddressError::TooLong))?;
    Ok(Redirect {
        address,
        permanent: resp.status_detail == 2,
    })
}

/// A [`ChapDigest`] for logins without CHAP: computes nothing, so a CHAP exchange
/// started against expectations fails with `ChapError::DigestFailed`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoChap;

impl ChapDigest for NoChap {
    fn digest(&mut self, _algorithm: ChapAlgorithm, _parts: &[&[u8]], _out: &mut [u8]) -> usize {
        0
    }
}

// ---------------------------------------------------------------------------
// Logout (RFC 7143 §11.14-§11.15)
// ---------------------------------------------------------------------------

/// A Logout Request to send, and the check of its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logout {
    /// What to close.
    pub reason: LogoutReason,
    /// Initiator Task Tag (a fresh one, not the login's).
    pub itt: u32,
    /// Connection to close (0 and unused when closing the session).
    pub cid: u16,
    /// CmdSN; an immediate logout does not advance it.
    pub cmd_sn: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
    /// Immediate delivery: the target acts on it without waiting for the window.
    pub immediate: bool,
}

impl Logout {
    /// Closes the whole session, immediately, from the numbers in `seq`.
    pub const fn close_session(seq: Sequence, itt: u32) -> Logout {
        Logout {
            reason: LogoutReason::CloseSession,
            itt,
            cid: 0,
            cmd_sn: seq.cmd_sn,
            exp_stat_sn: seq.exp_stat_sn,
            immediate: true,
        }
    }

    /// Closes connection `cid` only, immediately.
    pub const fn close_connection(seq: Sequence, itt: u32, cid: u16) -> Logout {
        Logout {
            reason: LogoutReason::CloseConnection,
            itt,
            cid,
            cmd_sn: seq.cmd_sn,
            exp_stat_sn: seq.exp_stat_sn,
            immediate: true,
        }
    }

    /// Writes the 48-byte Logout Request (it has no data) into `out`.
    pub fn write_request(&self, out: &mut [u8]) -> Result<usize, LogoutError> {
        let available = out.len();
        let dst = out.get_mut(..BHS_LEN).ok_or(LogoutError::BufferTooSmall {
            needed: BHS_LEN,
            available,
        })?;
        let mut header = [0u8; BHS_LEN];
        LogoutRequest {
            immediate: self.immediate,
            reason: self.reason,
            itt: self.itt,
            cid: self.cid,
            cmd_sn: self.cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
        }
        .emit(&mut header);
        dst.copy_from_slice(&header);
        Ok(BHS_LEN)
    }

    /// Checks the target's Logout Response.
    pub fn handle_response(&self, header: &[u8; BHS_LEN]) -> Result<LogoutOutcome, LogoutError> {
        let opcode = Bhs::from_array(header).opcode();
        if opcode != Opcode::LogoutResponse {
            return Err(ProtocolError::UnexpectedOpcode {
                opcode: opcode.to_u8(),
            }
            .into());
        }
        let resp = LogoutResponse::parse(header).map_err(ProtocolError::Pdu)?;
        if resp.itt != self.itt {
            return Err(ProtocolError::IttMismatch {
                expected: self.itt,
                got: resp.itt,
            }
            .into());
        }
        if resp.response != LOGOUT_SUCCESS {
            return Err(LogoutError::Refused {
                response: resp.response,
            });
        }
        Ok(LogoutOutcome {
            stat_sn: resp.stat_sn,
            exp_cmd_sn: resp.exp_cmd_sn,
            max_cmd_sn: resp.max_cmd_sn,
            time2wait: resp.time2wait,
            time2retain: resp.time2retain,
        })
    }
}

/// A successful Logout Response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogoutOutcome {
    /// StatSN of the response.
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

/// Why a logout failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutError {
    /// The target broke the protocol.
    Protocol(ProtocolError),
    /// The target answered with a non-zero response code (`LOGOUT_*`).
    Refused {
        /// The response code.
        response: u8,
    },
    /// The output buffer is shorter than a BHS.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
}

impl From<ProtocolError> for LogoutError {
    fn from(e: ProtocolError) -> Self {
        LogoutError::Protocol(e)
    }
}

impl fmt::Display for LogoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Protocol(e) => write!(f, "protocol error: {e}"),
            Self::Refused { response } => {
                let why = match response {
                    LOGOUT_CID_NOT_FOUND => "connection ID not found",
                    LOGOUT_RECOVERY_NOT_SUPPORTED => "connection recovery not supported",
                    LOGOUT_CLEANUP_FAILED => "cleanup failed",
                    _ => "unknown response",
                };
                write!(f, "logout refused: {why} (response {response})")
            }
            Self::BufferTooSmall { needed, available } => {
                write!(f, "buffer of {available} bytes, {needed} needed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::super::chap::MutualChap;
    use super::super::discovery::{DiscoveryStep, SendTargets};
    use super::super::negotiate::{respond, Digest, Local};
    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec;
    use std::{format, vec};

    const INAME: &str = "iqn.2024-01.rs.iscsi:init";
    const TNAME: &str = "iqn.2003-01.org.linux-iscsi:t1";
    const ITT: u32 = 0x1000_0001;
    const CMD_SN: u32 = 0xffff_fff0;
    const FIRST_STAT_SN: u32 = 0x500;
    const TSIH: u16 = 0x0a0b;
    const SECRET: &[u8] = b"initiator-secret";
    const TSECRET: &[u8] = b"target-secret-99";
    const OUR_CHALLENGE: [u8; 16] = *b"0123456789abcdef";

    fn isid() -> [u8; 6] {
        isid_enterprise(311, 1).unwrap()
    }

    use super::super::test_support::{chap_hash, RustCrypto};

    fn hex(bytes: &[u8]) -> String {
        let mut s = String::from("0x");
        for b in bytes {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    fn unhex(value: &str) -> Vec<u8> {
        let mut buf = [0u8; 1024];
        let n = text::decode_binary(value, &mut buf).unwrap();
        buf[..n].to_vec()
    }

    type Kv = Vec<(String, String)>;

    fn kv(data: &[u8]) -> Kv {
        text::pairs(data)
            .map(|p| {
                let (k, v) = p.unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    fn get<'k>(pairs: &'k Kv, key: &str) -> Option<&'k str> {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    fn encode(pairs: &Kv) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in pairs {
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            out.extend_from_slice(v.as_bytes());
            out.push(0);
        }
        out
    }

    fn reply_string(v: ReplyValue<'_>) -> String {
        match v {
            ReplyValue::Text(t) => t.to_string(),
            ReplyValue::Number(n) => n.to_string(),
            ReplyValue::Bool(b) => (if b { "Yes" } else { "No" }).to_string(),
        }
    }

    /// The values the fake target negotiates with (LIO's defaults, roughly).
    fn target_local(key: Key) -> Option<Local<'static>> {
        Some(match key {
            Key::HeaderDigest | Key::DataDigest => Local::List("None"),
            Key::MaxConnections | Key::MaxOutstandingR2T => Local::Number(1),
            Key::MaxBurstLength => Local::Number(262_144),
            Key::FirstBurstLength => Local::Number(65_536),
            Key::DefaultTime2Wait => Local::Number(2),
            Key::DefaultTime2Retain => Local::Number(20),
            Key::ErrorRecoveryLevel => Local::Number(0),
            Key::InitialR2T | Key::ImmediateData => Local::Bool(true),
            Key::DataPduInOrder | Key::DataSequenceInOrder => Local::Bool(true),
            _ => return None,
        })
    }

    /// An edit applied to one response PDU.
    type Edit = fn(&mut Vec<u8>);

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Mutual {
        Correct,
        Wrong,
        Omit,
    }

    /// A scripted target speaking through the pdu Reprs. It checks what every
    /// initiator request must hold (I bit, versions, stable ISID/TSIH/ITT/CID/CmdSN,
    /// ExpStatSN acknowledging the previous response) and verifies CHAP with the
    /// RustCrypto crates.
    struct FakeTarget {
        require_chap: bool,
        chap_algs: &'static [u8],
        mutual: Mutual,
        /// Answer T=0 this many times where T=1 was possible.
        t0_security: u32,
        t0_operational: u32,
        /// Cut response text into pieces of this size with C=1.
        split: Option<usize>,
        alias: Option<&'static str>,
        mrdsl: u32,
        /// Answer the first request with this status and text.
        first_status: Option<(u8, u8, Vec<u8>)>,
        /// Offered in the first operational response (forcing another round).
        op_offers: Kv,
        /// Added to the final response.
        final_extra: Kv,
        /// Leave the security stage at once, whatever was negotiated.
        ignore_auth: bool,
        /// Edit the response with this index (0-based) before sending it.
        tamper: Option<(usize, Edit)>,
        // State.
        next_stat_sn: u32,
        responses: usize,
        requests: Vec<(LoginRequest, Vec<u8>)>,
        partial: Vec<u8>,
        pending: Vec<u8>,
        pending_final: (bool, Stage),
        chap: Option<(ChapAlgorithm, u8, Vec<u8>)>,
        auth_done: bool,
        op_started: bool,
        awaiting: Vec<String>,
        answers_seen: Kv,
    }

    impl FakeTarget {
        fn new() -> Self {
            FakeTarget {
                require_chap: false,
                chap_algs: &[5, 6, 7, 8],
                mutual: Mutual::Correct,
                t0_security: 0,
                t0_operational: 0,
                split: None,
                alias: Some("lio-disk"),
                mrdsl: 262_144,
                first_status: None,
                op_offers: Vec::new(),
                final_extra: Vec::new(),
                ignore_auth: false,
                tamper: None,
                next_stat_sn: FIRST_STAT_SN,
                responses: 0,
                requests: Vec::new(),
                partial: Vec::new(),
                pending: Vec::new(),
                pending_final: (false, Stage::Security),
                chap: None,
                auth_done: false,
                op_started: false,
                awaiting: Vec::new(),
                answers_seen: Vec::new(),
            }
        }

        fn chap(algs: &'static [u8]) -> Self {
            FakeTarget {
                require_chap: true,
                chap_algs: algs,
                ..FakeTarget::new()
            }
        }

        fn respond(&mut self, pdu: &[u8]) -> Vec<u8> {
            let req = LoginRequest::parse(pdu).expect("a valid Login Request");
            let dsl = req.data_segment_len as usize;
            assert_eq!(pdu.len(), BHS_LEN + dsl + framing::pad_len(dsl as u32));
            assert_eq!(pdu[0], 0x43, "Login Requests are immediate");
            assert_eq!((req.version_max, req.version_min), (0, 0));
            assert!(pdu[BHS_LEN + dsl..].iter().all(|&b| b == 0), "zero padding");
            let data = pdu[BHS_LEN..BHS_LEN + dsl].to_vec();
            if let Some((first, _)) = self.requests.first() {
                let same = |r: &LoginRequest| (r.isid, r.tsih, r.itt, r.cid, r.cmd_sn);
                assert_eq!(same(&req), same(first), "stable login identifiers");
                assert_eq!(req.exp_stat_sn, self.next_stat_sn, "ExpStatSN acknowledges");
            }
            self.requests.push((req, data.clone()));
            let mut resp = self.answer(&req, data);
            if let Some((i, edit)) = self.tamper {
                if i == self.responses {
                    edit(&mut resp);
                }
            }
            self.responses += 1;
            resp
        }

        fn pdu(
            &mut self,
            req: &LoginRequest,
            transit: bool,
            cont: bool,
            nsg: Stage,
            status: (u8, u8),
            text: &[u8],
        ) -> Vec<u8> {
            let stat_sn = self.next_stat_sn;
            self.next_stat_sn = stat_sn.wrapping_add(1);
            let final_resp = status == (0, 0) && transit && nsg == Stage::FullFeature;
            let tsih = match (final_resp, req.tsih) {
                (true, 0) => TSIH,
                _ => req.tsih,
            };
            let mut h = [0u8; BHS_LEN];
            LoginResponse {
                transit,
                cont,
                csg: req.csg,
                nsg: if transit { nsg } else { req.csg },
                version_max: 0,
                version_active: 0,
                isid: req.isid,
                tsih,
                itt: req.itt,
                stat_sn,
                exp_cmd_sn: req.cmd_sn,
                max_cmd_sn: req.cmd_sn.wrapping_add(16),
                status_class: status.0,
                status_detail: status.1,
                data_segment_len: text.len() as u32,
            }
            .emit(&mut h);
            let mut v = h.to_vec();
            v.extend_from_slice(text);
            v.resize(v.len() + framing::pad_len(text.len() as u32), 0);
            v
        }

        fn answer(&mut self, req: &LoginRequest, data: Vec<u8>) -> Vec<u8> {
            if let Some((class, detail, text)) = self.first_status.take() {
                return self.pdu(req, false, false, req.csg, (class, detail), &text);
            }
            if req.cont {
                assert!(!req.transit);
                self.partial.extend_from_slice(&data);
                return self.pdu(req, false, false, req.csg, (0, 0), &[]);
            }
            if !self.pending.is_empty() {
                assert!(data.is_empty(), "a request for more text is empty");
                return self.next_piece(req);
            }
            self.partial.extend_from_slice(&data);
            let text = std::mem::take(&mut self.partial);
            let pairs = kv(&text);
            let (out, transit, nsg) = match req.csg {
                Stage::Security => match self.security(req, &pairs) {
                    Ok(r) => r,
                    Err(status) => return self.pdu(req, false, false, req.csg, status, &[]),
                },
                Stage::Operational => self.operational(req, &pairs),
                Stage::FullFeature => panic!("login request in full feature phase"),
            };
            let text = encode(&out);
            match self.split {
                Some(n) if text.len() > n => {
                    self.pending = text[n..].to_vec();
                    self.pending_final = (transit, nsg);
                    self.pdu(req, false, true, req.csg, (0, 0), &text[..n])
                }
                _ => self.pdu(req, transit, false, nsg, (0, 0), &text),
            }
        }

        fn next_piece(&mut self, req: &LoginRequest) -> Vec<u8> {
            let n = self.split.unwrap();
            if self.pending.len() > n {
                let piece: Vec<u8> = self.pending.drain(..n).collect();
                return self.pdu(req, false, true, req.csg, (0, 0), &piece);
            }
            let piece = std::mem::take(&mut self.pending);
            let (transit, nsg) = self.pending_final;
            self.pdu(req, transit && req.transit, false, nsg, (0, 0), &piece)
        }

        fn security(
            &mut self,
            req: &LoginRequest,
            pairs: &Kv,
        ) -> Result<(Kv, bool, Stage), (u8, u8)> {
            let mut out = Kv::new();
            if self.ignore_auth {
                return Ok((out, true, Stage::Operational));
            }
            if let Some(methods) = get(pairs, "AuthMethod") {
                assert_eq!(get(pairs, "InitiatorName"), Some(INAME));
                // SessionType is leading-only: absent when joining a session.
                assert_eq!(get(pairs, "SessionType").is_some(), req.tsih == 0);
                assert!(
                    get(pairs, "MaxBurstLength").is_none(),
                    "operational key too early"
                );
                out.push(pair("TargetPortalGroupTag", "1"));
                let offered: Vec<&str> = methods.split(',').collect();
                let choice = if self.require_chap {
                    if !offered.contains(&"CHAP") {
                        return Err((2, 1));
                    }
                    "CHAP"
                } else if offered.contains(&"None") {
                    "None"
                } else {
                    "CHAP"
                };
                out.push(pair("AuthMethod", choice));
                self.auth_done = choice == "None";
            }
            if let Some(a) = get(pairs, "CHAP_A") {
                assert!(
                    get(pairs, "AuthMethod").is_none(),
                    "CHAP_A after AuthMethod"
                );
                let code = a
                    .split(',')
                    .filter_map(|c| c.parse::<u8>().ok())
                    .find(|c| self.chap_algs.contains(c));
                let Some(code) = code else {
                    out.push(pair("CHAP_A", "Reject"));
                    return Ok((out, false, Stage::Operational));
                };
                let alg = ChapAlgorithm::from_code(code.into()).unwrap();
                let challenge: Vec<u8> = (0..alg.digest_len() as u8)
                    .map(|i| i.wrapping_mul(29) ^ 0x5a)
                    .collect();
                out.push(pair("CHAP_A", &code.to_string()));
                out.push(pair("CHAP_I", "42"));
                out.push(pair("CHAP_C", &hex(&challenge)));
                self.chap = Some((alg, 42, challenge));
            }
            if let Some(r) = get(pairs, "CHAP_R") {
                let (alg, id, challenge) = self.chap.clone().expect("challenge sent first");
                assert_eq!(get(pairs, "CHAP_N"), Some("initiator-user"));
                if unhex(r) != chap_hash(alg, id, SECRET, &challenge) {
                    return Err((2, 1));
                }
                self.auth_done = true;
                if let (Some(ci), Some(cc)) = (get(pairs, "CHAP_I"), get(pairs, "CHAP_C")) {
                    let their_id: u8 = ci.parse().unwrap();
                    let c = unhex(cc);
                    assert_ne!(c, challenge, "initiator reflected our challenge");
                    let secret: &[u8] = match self.mutual {
                        Mutual::Wrong => b"not-the-secret!!",
                        _ => TSECRET,
                    };
                    if self.mutual != Mutual::Omit {
                        out.push(pair("CHAP_N", "target-user"));
                        out.push(pair("CHAP_R", &hex(&chap_hash(alg, their_id, secret, &c))));
                    }
                }
            }
            let mut transit = req.transit && self.auth_done;
            if transit && self.t0_security > 0 {
                self.t0_security -= 1;
                transit = false;
            }
            Ok((out, transit, Stage::Operational))
        }

        fn operational(&mut self, req: &LoginRequest, pairs: &Kv) -> (Kv, bool, Stage) {
            let mut out = Kv::new();
            for (k, v) in pairs {
                if let Some(i) = self.awaiting.iter().position(|a| a == k) {
                    self.awaiting.remove(i);
                    self.answers_seen.push(pair(k, v));
                    continue;
                }
                let Some(key) = Key::from_name(k) else {
                    self.answers_seen.push(pair(k, v));
                    continue;
                };
                if Special::from_value(v).is_some() {
                    continue;
                }
                if let Some(local) = target_local(key) {
                    if let Ok(Some(answer)) = respond(key, v, local) {
                        out.push(pair(k, &reply_string(answer)));
                    }
                }
            }
            if !self.op_started {
                self.op_started = true;
                out.push(pair("MaxRecvDataSegmentLength", &self.mrdsl.to_string()));
                if let Some(alias) = self.alias {
                    out.push(pair("TargetAlias", alias));
                }
                for (k, v) in self.op_offers.clone() {
                    self.awaiting.push(k.clone());
                    out.push((k, v));
                }
            }
            let mut transit = req.transit && self.awaiting.is_empty();
            if transit && self.t0_operational > 0 {
                self.t0_operational -= 1;
                transit = false;
            }
            if transit {
                out.extend(self.final_extra.clone());
            }
            (out, transit, Stage::FullFeature)
        }
    }

    fn split_pdu(pdu: &[u8]) -> ([u8; BHS_LEN], &[u8]) {
        let h: [u8; BHS_LEN] = pdu[..BHS_LEN].try_into().unwrap();
        let dsl = Bhs::from_array(&h).data_segment_len() as usize;
        (h, &pdu[BHS_LEN..BHS_LEN + dsl])
    }

    fn config(proposal: Proposal<'static>) -> LoginConfig<'static> {
        let mut c = LoginConfig::new(proposal, isid());
        c.itt = ITT;
        c.cmd_sn = CMD_SN;
        c
    }

    fn normal() -> LoginConfig<'static> {
        config(Proposal::normal(INAME, TNAME))
    }

    const ALGS_ALL: &[ChapAlgorithm] = &ChapAlgorithm::DEFAULT_PREFERENCE;

    fn with_chap(mut c: LoginConfig<'static>, mutual: bool) -> LoginConfig<'static> {
        c.chap = Some(ChapConfig {
            name: "initiator-user",
            secret: SECRET,
            algorithms: ALGS_ALL,
            mutual: mutual.then_some(MutualChap {
                target_name: Some("target-user"),
                target_secret: TSECRET,
            }),
        });
        if mutual {
            c.mutual_challenge = Some(Challenge {
                identifier: 0x77,
                value: &OUR_CHALLENGE,
            });
        }
        c
    }

    /// Runs a login against `target` until it ends.
    fn drive(config: LoginConfig<'_>, target: &mut FakeTarget) -> Result<LoginStep, LoginError> {
        let mut rx = vec![0u8; LOGIN_BUFFER_LEN];
        let mut tx = vec![0u8; LOGIN_BUFFER_LEN];
        let mut login = Login::new(config, &mut rx, &mut tx)?;
        let mut out = vec![0u8; MAX_LOGIN_PDU_LEN];
        for _ in 0..200 {
            let n = login.next_request(&mut out)?;
            let resp = target.respond(&out[..n]);
            let (h, d) = split_pdu(&resp);
            match login.handle_response(&h, d, &mut RustCrypto)? {
                LoginStep::SendNext => {}
                step => {
                    assert_eq!(login.next_request(&mut out), Err(LoginError::OutOfOrder));
                    return Ok(step);
                }
            }
        }
        panic!("login did not end");
    }

    fn complete(step: Result<LoginStep, LoginError>) -> LoginOutcome {
        match step {
            Ok(LoginStep::Complete(o)) => o,
            other => panic!("expected a complete login, got {other:?}"),
        }
    }

    /// (T, C, CSG, NSG) of each request the target saw.
    fn bits(t: &FakeTarget) -> Vec<(bool, bool, Stage, Stage)> {
        t.requests
            .iter()
            .map(|(r, _)| (r.transit, r.cont, r.csg, r.nsg))
            .collect()
    }

    use Stage::{FullFeature as Ffp, Operational as Op, Security as Sec};

    #[test]
    fn no_auth_login_goes_security_operational_full_feature() {
        let mut t = FakeTarget::new();
        let o = complete(drive(normal(), &mut t));
        assert_eq!(
            bits(&t),
            [(true, false, Sec, Op), (true, false, Op, Ffp)],
            "AuthMethod=None and transit at once, then operational"
        );
        let first = kv(&t.requests[0].1);
        assert_eq!(get(&first, "AuthMethod"), Some("None"));
        assert_eq!(get(&first, "TargetName"), Some(TNAME));
        assert_eq!(get(&first, "SessionType"), Some("Normal"));
        let second = kv(&t.requests[1].1);
        assert!(get(&second, "MaxBurstLength").is_some());
        assert!(get(&second, "AuthMethod").is_none());
        assert_eq!(t.requests[0].0.exp_stat_sn, 0);
        assert_eq!(t.requests[0].0.tsih, 0);
        assert_eq!(o.tsih, TSIH);
        assert_eq!(o.isid, isid());
        assert_eq!(
            (o.stat_sn, o.exp_stat_sn),
            (FIRST_STAT_SN + 1, FIRST_STAT_SN + 2)
        );
        // CmdSN does not advance during login, wrapping included.
        assert_eq!(o.cmd_sn, CMD_SN);
        assert_eq!(
            (o.exp_cmd_sn, o.max_cmd_sn),
            (CMD_SN, CMD_SN.wrapping_add(16))
        );
        assert_eq!(o.target_portal_group_tag, Some(1));
        assert_eq!(o.target_alias.unwrap().as_str(), "lio-disk");
        assert_eq!(o.params.auth_method, AuthMethod::None);
        assert_eq!(o.params.max_xmit_data_segment_len, 262_144);
        assert_eq!(o.params.session_type, SessionType::Normal);
        assert_eq!(o.chap_algorithm, None);
        assert_eq!(
            o.sequence(),
            Sequence {
                cmd_sn: CMD_SN,
                exp_stat_sn: FIRST_STAT_SN + 2,
                exp_cmd_sn: CMD_SN,
                max_cmd_sn: CMD_SN.wrapping_add(16),
            }
        );
    }

    #[test]
    fn refusal_with_zeroed_echo_fields_reports_the_status() {
        // tgtd answers an unknown target with opcode and status only: the ISID and
        // ITT it "echoes" are zero. The user must hear "target not found".
        let mut rx = vec![0u8; LOGIN_BUFFER_LEN];
        let mut tx = vec![0u8; LOGIN_BUFFER_LEN];
        let mut config = normal();
        config.itt = 0x1234;
        let mut login = Login::new(config, &mut rx, &mut tx).unwrap();
        let mut out = vec![0u8; MAX_LOGIN_PDU_LEN];
        login.next_request(&mut out).unwrap();
        let mut bhs = [0u8; BHS_LEN];
        bhs[0] = 0x23;
        bhs[36] = 2;
        bhs[37] = 3;
        assert_eq!(
            login.handle_response(&bhs, &[], &mut RustCrypto),
            Err(LoginError::Status(LoginStatus::NotFound))
        );
    }

    fn chap_run(target_algs: &'static [u8], mutual: bool) -> (LoginOutcome, FakeTarget) {
        let mut t = FakeTarget::chap(target_algs);
        let o = complete(drive(with_chap(normal(), mutual), &mut t));
        (o, t)
    }

    #[test]
    fn one_way_chap_sha256_is_verified_by_the_target() {
        let (o, t) = chap_run(&[5, 6, 7, 8], false);
        assert_eq!(o.chap_algorithm, Some(ChapAlgorithm::Sha256));
        assert_eq!(o.params.auth_method, AuthMethod::Chap);
        assert_eq!(
            bits(&t),
            [
                (false, false, Sec, Op), // AuthMethod=CHAP offered: wait for the choice
                (false, false, Sec, Op), // CHAP_A
                (true, false, Sec, Op),  // CHAP_N, CHAP_R
                (true, false, Op, Ffp),
            ]
        );
        assert_eq!(get(&kv(&t.requests[0].1), "AuthMethod"), Some("CHAP"));
        assert_eq!(get(&kv(&t.requests[1].1), "CHAP_A"), Some("7,8,6,5"));
        let third = kv(&t.requests[2].1);
        assert!(
            get(&third, "CHAP_C").is_none(),
            "one-way: no challenge of ours"
        );
    }

    #[test]
    fn target_choosing_md5_only() {
        let (o, t) = chap_run(&[5], false);
        assert_eq!(o.chap_algorithm, Some(ChapAlgorithm::Md5));
        let r = get(&kv(&t.requests[2].1), "CHAP_R").map(unhex).unwrap();
        assert_eq!(r.len(), 16);
    }

    #[test]
    fn mutual_chap_authenticates_both_ways() {
        let (o, t) = chap_run(&[7], true);
        assert_eq!(o.chap_algorithm, Some(ChapAlgorithm::Sha256));
        let third = kv(&t.requests[2].1);
        assert_eq!(get(&third, "CHAP_I"), Some("119"));
        assert_eq!(get(&third, "CHAP_C").map(unhex).unwrap(), OUR_CHALLENGE);
    }

    #[test]
    fn mutual_chap_with_md5_only_target() {
        let (o, _) = chap_run(&[5], true);
        assert_eq!(o.chap_algorithm, Some(ChapAlgorithm::Md5));
    }

    #[test]
    fn mutual_chap_wrong_target_response_is_a_hard_error() {
        let mut t = FakeTarget::chap(&[7]);
        t.mutual = Mutual::Wrong;
        assert_eq!(
            drive(with_chap(normal(), true), &mut t),
            Err(LoginError::Protocol(ProtocolError::Chap(
                ChapError::MutualAuthFailed
            )))
        );
        assert_eq!(t.requests.len(), 3, "never reached the operational stage");
    }

    #[test]
    fn mutual_chap_target_without_response_is_refused() {
        let mut t = FakeTarget::chap(&[7]);
        t.mutual = Mutual::Omit;
        assert_eq!(
            drive(with_chap(normal(), true), &mut t),
            Err(LoginError::Protocol(ProtocolError::Chap(
                ChapError::MutualResponseMissing
            )))
        );
    }

    #[test]
    fn wrong_secret_surfaces_authentication_failure() {
        let mut t = FakeTarget::chap(&[5]);
        let mut c = with_chap(normal(), false);
        if let Some(chap) = c.chap.as_mut() {
            chap.secret = b"wrong-secret-123";
        }
        let err = drive(c, &mut t).unwrap_err();
        assert_eq!(err, LoginError::Status(LoginStatus::AuthenticationFailure));
        let LoginError::Status(s) = err else {
            unreachable!()
        };
        assert_eq!(s.describe(), "authentication failure");
        assert_eq!(
            format!("{err}"),
            "login refused: authentication failure (status 0x0201)"
        );
    }

    #[test]
    fn chap_or_none_lets_the_target_waive_authentication() {
        let mut t = FakeTarget::new();
        let mut c = with_chap(normal(), false);
        c.proposal.auth = AuthOffer::ChapOrNone;
        let o = complete(drive(c, &mut t));
        assert_eq!(o.params.auth_method, AuthMethod::None);
        assert_eq!(
            bits(&t),
            [
                (false, false, Sec, Op),
                (true, false, Sec, Op), // empty: None chosen, ready to move on
                (true, false, Op, Ffp),
            ]
        );
        assert!(t.requests[1].1.is_empty());
    }

    #[test]
    fn required_chap_target_that_skips_security_is_refused() {
        let mut t = FakeTarget::new();
        t.ignore_auth = true;
        assert_eq!(
            drive(with_chap(normal(), false), &mut t),
            Err(ProtocolError::SecuritySkipped.into())
        );
        // The same target jumping to CSG=1 in its answer.
        let mut t = FakeTarget::new();
        t.tamper = Some((0, |p| p[1] = 0x04 | 0x01));
        assert_eq!(
            drive(with_chap(normal(), false), &mut t),
            Err(ProtocolError::SecuritySkipped.into())
        );
    }

    #[test]
    fn target_answering_t0_once_gets_another_request() {
        let mut t = FakeTarget::new();
        t.t0_operational = 1;
        t.t0_security = 1;
        let o = complete(drive(normal(), &mut t));
        assert_eq!(
            bits(&t),
            [
                (true, false, Sec, Op),
                (true, false, Sec, Op),
                (true, false, Op, Ffp),
                (true, false, Op, Ffp),
            ]
        );
        assert!(t.requests[1].1.is_empty() && t.requests[3].1.is_empty());
        assert_eq!(o.stat_sn, FIRST_STAT_SN + 3);
        assert_eq!(o.exp_stat_sn, FIRST_STAT_SN + 4);
    }

    #[test]
    fn target_offers_are_answered_before_it_moves_on() {
        let mut t = FakeTarget::new();
        t.op_offers = vec![
            pair("TaskReporting", "ResponseFence,RFC3720"),
            pair("X-com.example.Feature", "on"),
        ];
        complete(drive(normal(), &mut t));
        // The target held T=0 until its offers were answered, in a third request.
        assert_eq!(t.requests.len(), 3);
        assert_eq!(bits(&t)[2], (true, false, Op, Ffp));
        assert_eq!(get(&t.answers_seen, "TaskReporting"), Some("RFC3720"));
        assert_eq!(
            get(&t.answers_seen, "X-com.example.Feature"),
            Some("NotUnderstood")
        );
    }

    #[test]
    fn split_target_text_is_reassembled_with_empty_requests() {
        let mut t = FakeTarget::new();
        t.split = Some(20);
        let o = complete(drive(normal(), &mut t));
        let ops: Vec<_> = t.requests.iter().filter(|(r, _)| r.csg == Op).collect();
        assert!(ops.len() > 3, "several pieces: {}", ops.len());
        for (r, d) in &ops[1..] {
            assert!(d.is_empty(), "requests for more text are empty");
            assert!(!r.cont);
            assert!(r.transit, "we stay ready to move on");
        }
        assert_eq!(o.params.max_xmit_data_segment_len, 262_144);
        assert_eq!(o.target_alias.unwrap().as_str(), "lio-disk");
        assert_eq!(o.params.max_burst_len, 262_144);
    }

    #[test]
    fn our_long_text_is_sent_with_c_bit() {
        // The target offers 200 vendor keys; our NotUnderstood answers need more
        // than one 8192-byte PDU.
        let mut t = FakeTarget::new();
        t.split = Some(8192);
        t.op_offers = (0..200)
            .map(|i| pair(&format!("X-com.example.vendor-key-number-{i:04}"), "1"))
            .collect();
        let o = complete(drive(normal(), &mut t));
        let conts: Vec<_> = t.requests.iter().filter(|(r, _)| r.cont).collect();
        assert_eq!(conts.len(), 1, "{:?}", bits(&t));
        assert!(!conts[0].0.transit, "C=1 implies T=0");
        assert_eq!(
            conts[0].1.len(),
            text::chunks(&conts[0].1, 8192).next().unwrap().0.len()
        );
        assert!(conts[0].1.len() <= LOGIN_MAX_DATA_SEGMENT_LEN);
        assert_eq!(t.answers_seen.len(), 200);
        assert!(t
            .answers_seen
            .iter()
            .all(|(k, v)| k.starts_with("X-") && v == "NotUnderstood"));
        assert_eq!(o.tsih, TSIH);
    }

    fn redirect_to(detail: u8, address: &str) -> Result<LoginStep, LoginError> {
        let mut t = FakeTarget::new();
        let text = encode(&vec![pair("TargetAddress", address)]);
        t.first_status = Some((1, detail, text));
        drive(normal(), &mut t)
    }

    #[test]
    fn temporary_redirect_is_an_outcome() {
        let Ok(LoginStep::Redirect(r)) = redirect_to(1, "10.0.0.2:3261,2") else {
            panic!("expected a redirect")
        };
        assert!(!r.permanent);
        let p = r.portal().unwrap();
        assert_eq!((p.host, p.port, p.tag), ("10.0.0.2", 3261, Some(2)));
        assert_eq!(format!("{p}"), "10.0.0.2:3261");
    }

    #[test]
    fn permanent_redirect_to_ipv6() {
        let Ok(LoginStep::Redirect(r)) = redirect_to(2, "[2001:db8::5]:3262,7") else {
            panic!("expected a redirect")
        };
        assert!(r.permanent);
        assert_eq!(r.address.as_str(), "[2001:db8::5]:3262,7");
        let p = r.portal().unwrap();
        assert_eq!((p.host, p.port, p.tag), ("2001:db8::5", 3262, Some(7)));
        assert!(p.is_ipv6());
        assert_eq!(format!("{p}"), "[2001:db8::5]:3262");
    }

    #[test]
    fn redirect_without_usable_address_is_refused() {
        let mut t = FakeTarget::new();
        t.first_status = Some((1, 1, Vec::new()));
        assert_eq!(
            drive(normal(), &mut t),
            Err(ProtocolError::RedirectWithoutAddress.into())
        );
        assert_eq!(
            redirect_to(1, "[2001:db8::5:3260"),
            Err(ProtocolError::BadTargetAddress(AddressError::BadBracket).into())
        );
    }

    #[test]
    fn every_status_code_is_decoded() {
        let codes: [u16; 18] = [
            0x0000, 0x0101, 0x0102, 0x0200, 0x0201, 0x0202, 0x0203, 0x0204, 0x0205, 0x0206, 0x0207,
            0x0208, 0x0209, 0x020a, 0x020b, 0x0300, 0x0301, 0x0302,
        ];
        for (status, code) in LoginStatus::ALL.iter().zip(codes) {
            let [class, detail] = code.to_be_bytes();
            assert_eq!(LoginStatus::from_code(class, detail), *status);
            assert_eq!(status.code16(), code);
            assert!(!matches!(status, LoginStatus::Unknown { .. }));
            assert_eq!(status.is_redirect(), class == 1);
            assert_eq!(status.is_transient(), class == 1 || class == 3);
        }
        let mut descriptions: Vec<&str> = LoginStatus::ALL.iter().map(|s| s.describe()).collect();
        descriptions.sort_unstable();
        descriptions.dedup();
        assert_eq!(descriptions.len(), 18, "one distinct description each");
        assert_eq!(LoginStatus::from_code(2, 3).describe(), "target not found");
        assert_eq!(
            LoginStatus::from_code(3, 1).describe(),
            "service unavailable"
        );
        assert_eq!(
            LoginStatus::from_code(3, 2).describe(),
            "target out of resources"
        );
        assert_eq!(LoginStatus::from_code(3, 0).describe(), "target error");
        for (class, detail) in [(0, 1), (1, 3), (2, 0x0c), (3, 3), (4, 0), (0xff, 0xff)] {
            let s = LoginStatus::from_code(class, detail);
            assert_eq!(s, LoginStatus::Unknown { class, detail });
            assert_eq!(s.code(), (class, detail));
        }
        assert_eq!(
            format!("{}", LoginStatus::from_code(4, 7)),
            "unknown login status (status 0x0407)"
        );
    }

    #[test]
    fn failed_logins_surface_their_status() {
        for (class, detail, want) in [
            (2, 3, LoginStatus::NotFound),
            (2, 2, LoginStatus::AuthorizationFailure),
            (2, 0x0a, LoginStatus::SessionDoesNotExist),
            (3, 0, LoginStatus::TargetError),
            (3, 1, LoginStatus::ServiceUnavailable),
            (3, 2, LoginStatus::OutOfResources),
            (
                5,
                5,
                LoginStatus::Unknown {
                    class: 5,
                    detail: 5,
                },
            ),
        ] {
            let mut t = FakeTarget::new();
            t.first_status = Some((class, detail, Vec::new()));
            // Garbage stage bits on a failed response do not hide the status.
            t.tamper = Some((0, |p| p[1] = 0xca));
            assert_eq!(drive(normal(), &mut t), Err(LoginError::Status(want)));
        }
    }

    fn tampered(edit: Edit, at: usize) -> Result<LoginStep, LoginError> {
        let mut t = FakeTarget::new();
        t.tamper = Some((at, edit));
        drive(normal(), &mut t)
    }

    #[test]
    fn itt_and_isid_echo_are_checked() {
        assert_eq!(
            tampered(|p| p[19] ^= 1, 1),
            Err(ProtocolError::IttMismatch {
                expected: ITT,
                got: ITT ^ 1
            }
            .into())
        );
        let mut other = isid();
        other[5] ^= 0x80;
        assert_eq!(
            tampered(|p| p[13] ^= 0x80, 0),
            Err(ProtocolError::IsidMismatch {
                expected: isid(),
                got: other
            }
            .into())
        );
    }

    #[test]
    fn stage_violations_are_refused() {
        // A response to a security request that claims CSG=1.
        assert_eq!(
            tampered(|p| p[1] = 0x87, 0),
            Err(ProtocolError::StageMismatch {
                expected: Sec,
                got: Op
            }
            .into())
        );
        // Security → full feature when we asked for operational.
        assert_eq!(
            tampered(|p| p[1] = 0x83, 0),
            Err(ProtocolError::TransitBeyondRequest {
                requested: Op,
                got: Ffp
            }
            .into())
        );
        // T=1 while we sent T=0 (CHAP offered, choice pending).
        let mut t = FakeTarget::new();
        t.tamper = Some((0, |p| p[1] = 0x81));
        let mut c = with_chap(normal(), false);
        c.proposal.auth = AuthOffer::ChapOrNone;
        assert_eq!(
            drive(c, &mut t),
            Err(ProtocolError::UnrequestedTransit.into())
        );
        // T and C together on a successful response.
        assert!(matches!(
            tampered(|p| p[1] |= 0x40, 0),
            Err(LoginError::Protocol(ProtocolError::Pdu(
                PduError::TransitWithContinue
            )))
        ));
        assert_eq!(
            tampered(|p| p[3] = 1, 1),
            Err(ProtocolError::UnsupportedVersion { active: 1 }.into())
        );
    }

    #[test]
    fn unexpected_pdus_and_lengths_are_refused() {
        // A Text Response where a Login Response belongs.
        assert_eq!(
            tampered(|p| p[0] = 0x24, 0),
            Err(ProtocolError::UnexpectedOpcode { opcode: 0x24 }.into())
        );
        let mut rx = [0u8; 512];
        let mut tx = [0u8; 512];
        let mut login = Login::new(normal(), &mut rx, &mut tx).unwrap();
        let mut out = [0u8; 512];
        let n = login.next_request(&mut out).unwrap();
        let mut t = FakeTarget::new();
        let resp = t.respond(&out[..n]);
        let (h, d) = split_pdu(&resp);
        assert_eq!(
            login.handle_response(&h, &d[..d.len() - 1], &mut NoChap),
            Err(ProtocolError::DataLengthMismatch {
                announced: d.len() as u32,
                given: d.len() - 1
            }
            .into())
        );
        // Failed for good.
        assert_eq!(login.next_request(&mut out), Err(LoginError::OutOfOrder));
    }

    #[test]
    fn connection_login_keeps_the_sessions_tsih() {
        let mut t = FakeTarget::new();
        let mut c = normal();
        c.tsih = 0x1234;
        c.cid = 2;
        c.exp_stat_sn = 0x99;
        c.session = Some(SessionParams::DEFAULT);
        let o = complete(drive(c, &mut t));
        assert!(t
            .requests
            .iter()
            .all(|(r, _)| r.tsih == 0x1234 && r.cid == 2));
        assert_eq!(t.requests[0].0.exp_stat_sn, 0x99);
        assert_eq!((o.tsih, o.cid), (0x1234, 2));
        // A target that answers with another session's TSIH.
        let mut t = FakeTarget::new();
        t.tamper = Some((1, |p| p[15] ^= 1));
        assert_eq!(
            drive(c, &mut t),
            Err(ProtocolError::TsihMismatch {
                expected: 0x1234,
                got: 0x1235
            }
            .into())
        );
    }

    #[test]
    fn secondary_connection_offers_no_session_keys() {
        let mut t = FakeTarget::new();
        let mut c = normal();
        c.tsih = TSIH;
        c.cid = 1;
        let mut session = SessionParams::DEFAULT;
        session.max_burst_len = 131_072;
        c.session = Some(session);
        let o = complete(drive(c, &mut t));
        let op = kv(&t.requests[1].1);
        assert!(get(&op, "MaxBurstLength").is_none());
        assert!(get(&op, "MaxRecvDataSegmentLength").is_some());
        assert_eq!(o.params.max_burst_len, 131_072);
    }

    /// tgt's shape on a second connection: the operational response stays (T=0)
    /// and offers MaxConnections, a leading-only key, at the session's value or at
    /// tgt's configured one; the answer (the session's value, the outcome of min)
    /// goes in a third request and the login completes. An offer whose outcome
    /// differs fails.
    #[test]
    fn secondary_connection_confirms_a_repeated_leading_only_key() {
        let mut c = normal();
        c.tsih = TSIH;
        c.cid = 1;
        let mut session = SessionParams::DEFAULT;
        session.max_connections = 2;
        c.session = Some(session);
        for offered in ["2", "4"] {
            let mut t = FakeTarget::new();
            t.op_offers = vec![pair("MaxConnections", offered)];
            let o = complete(drive(c, &mut t));
            assert_eq!(t.requests.len(), 3, "{offered}");
            assert_eq!(bits(&t)[2], (true, false, Op, Ffp));
            assert_eq!(get(&t.answers_seen, "MaxConnections"), Some("2"));
            assert_eq!((o.cid, o.params.max_connections), (1, 2));
            // Every session-wide value stands (the target's declarations aside).
            let declared = SessionParams {
                max_xmit_data_segment_len: session.max_xmit_data_segment_len,
                target_portal_group_tag: session.target_portal_group_tag,
                ..o.params
            };
            assert_eq!(declared, session);
        }
        let refused = [
            ("MaxConnections", "1", Local::Number(2), Local::Number(1)),
            ("ImmediateData", "No", Local::Bool(true), Local::Bool(false)),
        ];
        for (key, offered, ours, theirs) in refused {
            let mut t = FakeTarget::new();
            t.op_offers = vec![pair(key, offered)];
            let changed = NegotiationError::LeadingOnlyChanged {
                key: Key::from_name(key).unwrap(),
                session: ours,
                offered: Some(theirs),
            };
            assert_eq!(
                drive(c, &mut t),
                Err(ProtocolError::Negotiation(changed).into()),
                "{key}={offered}"
            );
        }
    }

    #[test]
    fn new_session_needs_a_tsih() {
        assert_eq!(
            tampered(|p| p[14..16].fill(0), 1),
            Err(ProtocolError::MissingTsih.into())
        );
    }

    #[test]
    fn offers_in_a_transit_response_must_not_change_anything() {
        let mut t = FakeTarget::new();
        t.final_extra = vec![pair("TaskReporting", "RFC3720"), pair("X-vendor", "1")];
        complete(drive(normal(), &mut t));
        let mut t = FakeTarget::new();
        t.final_extra = vec![pair("RDMAExtensions", "Yes")];
        assert_eq!(
            drive(normal(), &mut t),
            Err(ProtocolError::OfferWithTransit {
                key: Key::RdmaExtensions
            }
            .into())
        );
    }

    #[test]
    fn a_target_that_never_moves_on_is_dropped() {
        let mut t = FakeTarget::new();
        t.t0_operational = 1000;
        assert_eq!(
            drive(normal(), &mut t),
            Err(ProtocolError::TooManyRounds.into())
        );
        assert_eq!(t.requests.len(), MAX_LOGIN_ROUNDS as usize + 1);
    }

    #[test]
    fn calls_out_of_turn_and_short_buffers() {
        let mut rx = [0u8; 1024];
        let mut tx = [0u8; 1024];
        let mut login = Login::new(normal(), &mut rx, &mut tx).unwrap();
        let h = [0u8; BHS_LEN];
        assert_eq!(
            login.handle_response(&h, &[], &mut NoChap),
            Err(LoginError::OutOfOrder)
        );
        let mut small = [0u8; 60];
        let Err(LoginError::BufferTooSmall { needed, available }) = login.next_request(&mut small)
        else {
            panic!("expected BufferTooSmall")
        };
        assert_eq!(available, 60);
        assert!(needed > 60 && needed % 4 == 0);
        // Nothing was consumed: the same request goes out with a bigger buffer.
        let mut out = vec![0u8; needed];
        assert_eq!(login.next_request(&mut out), Ok(needed));
        assert_eq!(login.next_request(&mut out), Err(LoginError::OutOfOrder));
        assert_eq!(login.stage(), Sec);
        // A work buffer too small for our own first offer.
        let mut rx = [0u8; 64];
        let mut tx = [0u8; 32];
        assert!(matches!(
            Login::new(normal(), &mut rx, &mut tx),
            Err(LoginError::BufferTooSmall { .. })
        ));
    }

    #[test]
    fn configuration_errors() {
        let new = |c: LoginConfig<'static>| {
            let mut rx = [0u8; 2048];
            let mut tx = [0u8; 2048];
            Login::new(c, &mut rx, &mut tx).map(|_| ())
        };
        let mut c = normal();
        c.proposal.auth = AuthOffer::Chap;
        assert_eq!(new(c), Err(ConfigError::ChapNotConfigured.into()));
        let mut c = with_chap(normal(), true);
        c.mutual_challenge = None;
        assert_eq!(
            new(c),
            Err(ConfigError::Chap(ChapError::MutualChallengeMissing).into())
        );
        c.mutual_challenge = Some(Challenge {
            identifier: 1,
            value: &OUR_CHALLENGE[..8],
        });
        assert_eq!(
            new(c),
            Err(ConfigError::Chap(ChapError::ChallengeTooShort { len: 8 }).into())
        );
        let mut c = with_chap(normal(), false);
        c.skip_security = true;
        assert_eq!(new(c), Err(ConfigError::SecurityStageSkipped.into()));
        let mut c = with_chap(normal(), false);
        if let Some(chap) = c.chap.as_mut() {
            chap.secret = b"short";
        }
        assert_eq!(
            new(c),
            Err(ConfigError::Chap(ChapError::SecretTooShort { len: 5 }).into())
        );
        let mut c = normal();
        c.proposal.max_burst_len = 100;
        assert_eq!(
            new(c),
            Err(ConfigError::Negotiation(NegotiationError::InvalidProposal {
                key: Key::MaxBurstLength
            })
            .into())
        );
        let mut c = normal();
        c.tsih = 7;
        assert_eq!(new(c), Err(ConfigError::MissingSessionParams.into()));
        c.tsih = 0;
        c.session = Some(SessionParams::DEFAULT);
        assert_eq!(new(c), Err(ConfigError::MissingSessionTsih.into()));
        assert!(new(with_chap(normal(), true)).is_ok());
    }

    #[test]
    fn isid_formats() {
        // Microsoft's Enterprise Number, as in pdu::login's round-trip test.
        assert_eq!(isid_enterprise(311, 1), Some([0x40, 0, 0x01, 0x37, 0, 1]));
        assert_eq!(
            isid_enterprise(MAX_ISID_ENTERPRISE_NUMBER, 0xbeef),
            Some([0x40, 0xff, 0xff, 0xff, 0xbe, 0xef])
        );
        assert_eq!(isid_enterprise(1 << 24, 0), None);
        // libiscsi's random ISID from the captured login.
        let random = isid_random([0x7a, 0xb9, 0xb6], 0);
        assert_eq!(random, [0x80, 0x7a, 0xb9, 0xb6, 0, 0]);
        assert_eq!(
            isid_oui(0x3f_1234, 0xab_cdef),
            Some([0x3f, 0x12, 0x34, 0xab, 0xcd, 0xef])
        );
        assert_eq!(isid_oui(0x40_0000, 0), None);
        assert_eq!(isid_oui(0, 0x100_0000), None);
        assert_eq!(IsidFormat::of(&isid()), IsidFormat::EnterpriseNumber);
        assert_eq!(IsidFormat::of(&random), IsidFormat::Random);
        assert_eq!(IsidFormat::of(&isid_oui(1, 1).unwrap()), IsidFormat::Oui);
        assert_eq!(IsidFormat::of(&[0xc0, 0, 0, 0, 0, 0]), IsidFormat::Reserved);
    }

    #[test]
    fn target_address_forms() {
        let p = Portal::parse("192.168.1.10").unwrap();
        assert_eq!(
            (p.host, p.port, p.tag),
            ("192.168.1.10", DEFAULT_PORT, None)
        );
        let p = Portal::parse("storage.example.com:860").unwrap();
        assert_eq!((p.host, p.port, p.tag), ("storage.example.com", 860, None));
        let p = Portal::parse("[::1],3").unwrap();
        assert_eq!((p.host, p.port, p.tag), ("::1", DEFAULT_PORT, Some(3)));
        let p = Portal::parse("fe80::1").unwrap();
        assert_eq!((p.host, p.port), ("fe80::1", DEFAULT_PORT));
        let p = Portal::parse("10.0.0.1:65535,65535").unwrap();
        assert_eq!((p.port, p.tag), (65535, Some(65535)));
        for (bad, err) in [
            ("", AddressError::EmptyHost),
            (":3260", AddressError::EmptyHost),
            ("[]:3260", AddressError::EmptyHost),
            ("[::1", AddressError::BadBracket),
            ("[::1]3260", AddressError::BadBracket),
            ("host:0", AddressError::BadPort),
            ("host:65536", AddressError::BadPort),
            ("host:+1", AddressError::BadPort),
            ("host:", AddressError::BadPort),
            ("host:3260,", AddressError::BadTag),
            ("host:3260,70000", AddressError::BadTag),
            ("host:3260,0x1", AddressError::BadTag),
            ("bad host:3260", AddressError::BadHost),
            ("a/b", AddressError::BadHost),
        ] {
            assert_eq!(Portal::parse(bad), Err(err), "{bad:?}");
        }
        let long = "a".repeat(300);
        assert_eq!(Portal::parse(&long), Err(AddressError::TooLong));
        assert_eq!(ShortText::new(&long), None);
    }

    #[test]
    fn logout_request_and_response() {
        let seq = Sequence {
            cmd_sn: 41,
            exp_stat_sn: 7,
            exp_cmd_sn: 41,
            max_cmd_sn: 60,
        };
        let logout = Logout::close_session(seq, 0x55);
        let mut out = [0u8; BHS_LEN];
        assert_eq!(logout.write_request(&mut out), Ok(BHS_LEN));
        let req = LogoutRequest::parse(&out).unwrap();
        assert!(req.immediate);
        assert_eq!(req.reason, LogoutReason::CloseSession);
        assert_eq!(
            (req.itt, req.cid, req.cmd_sn, req.exp_stat_sn),
            (0x55, 0, 41, 7)
        );
        assert_eq!(
            logout.write_request(&mut [0u8; 47]),
            Err(LogoutError::BufferTooSmall {
                needed: 48,
                available: 47
            })
        );
        let mut resp = LogoutResponse {
            response: LOGOUT_SUCCESS,
            itt: 0x55,
            stat_sn: 7,
            exp_cmd_sn: 41,
            max_cmd_sn: 60,
            time2wait: 0,
            time2retain: 0,
        };
        let mut h = [0u8; BHS_LEN];
        resp.emit(&mut h);
        let done = logout.handle_response(&h).unwrap();
        assert_eq!(
            (done.stat_sn, done.exp_cmd_sn, done.max_cmd_sn),
            (7, 41, 60)
        );
        resp.response = LOGOUT_RECOVERY_NOT_SUPPORTED;
        resp.emit(&mut h);
        let err = logout.handle_response(&h).unwrap_err();
        assert_eq!(err, LogoutError::Refused { response: 2 });
        assert!(format!("{err}").contains("recovery not supported"));
        resp.response = LOGOUT_SUCCESS;
        resp.itt = 0x56;
        resp.emit(&mut h);
        assert_eq!(
            logout.handle_response(&h),
            Err(ProtocolError::IttMismatch {
                expected: 0x55,
                got: 0x56
            }
            .into())
        );
        h[0] = 0x3f;
        assert_eq!(
            logout.handle_response(&h),
            Err(ProtocolError::UnexpectedOpcode { opcode: 0x3f }.into())
        );
        let conn = Logout::close_connection(seq, 0x56, 3);
        conn.write_request(&mut out).unwrap();
        let req = LogoutRequest::parse(&out).unwrap();
        assert_eq!((req.reason, req.cid), (LogoutReason::CloseConnection, 3));
    }

    /// A SendTargets answer from the fake target's portal list.
    fn text_response(itt: u32, stat_sn: u32, cmd_sn: u32, text: &[u8]) -> Vec<u8> {
        let mut h = [0u8; BHS_LEN];
        super::super::pdu::TextResponse {
            final_bit: true,
            cont: false,
            lun: 0,
            itt,
            ttt: 0xffff_ffff,
            stat_sn,
            exp_cmd_sn: cmd_sn,
            max_cmd_sn: cmd_sn.wrapping_add(16),
            data_segment_len: text.len() as u32,
        }
        .emit(&mut h);
        let mut v = h.to_vec();
        v.extend_from_slice(text);
        v
    }

    #[test]
    fn discovery_session_login_sendtargets_logout() {
        let mut t = FakeTarget::new();
        let o = complete(drive(config(Proposal::discovery(INAME)), &mut t));
        let first = kv(&t.requests[0].1);
        assert_eq!(get(&first, "SessionType"), Some("Discovery"));
        assert!(get(&first, "TargetName").is_none());
        let op = kv(&t.requests[1].1);
        assert!(
            get(&op, "MaxBurstLength").is_none(),
            "discovery offers framing keys only"
        );
        assert_eq!(o.params.session_type, SessionType::Discovery);

        let mut buf = [0u8; 1024];
        let mut st = SendTargets::new(o.sequence(), ITT + 1, &mut buf);
        let mut out = [0u8; 256];
        let n = st.next_request(&mut out).unwrap();
        let req = super::super::pdu::TextRequest::parse(&out[..n]).unwrap();
        assert_eq!((req.cmd_sn, req.exp_stat_sn), (CMD_SN, o.exp_stat_sn));
        let answer = b"TargetName=iqn.2003-01.org.linux-iscsi:t1\0TargetAddress=[::1]:3260,1\0";
        let resp = text_response(ITT + 1, o.exp_stat_sn, CMD_SN, answer);
        let (h, d) = split_pdu(&resp);
        assert_eq!(st.handle_response(&h, d), Ok(DiscoveryStep::Complete));
        let found: Vec<_> = st.targets().collect();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, TNAME);
        assert_eq!(found[0].addresses().next().unwrap().host, "::1");

        let seq = st.sequence();
        assert_eq!(seq.exp_stat_sn, o.exp_stat_sn + 1);
        let logout = Logout::close_session(seq, ITT + 2);
        logout.write_request(&mut out).unwrap();
        let req = LogoutRequest::parse(&out[..BHS_LEN]).unwrap();
        assert_eq!((req.cmd_sn, req.exp_stat_sn), (CMD_SN, o.exp_stat_sn + 1));
    }

    fn fixture(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text
            .bytes()
            .filter(|b| !b.is_ascii_whitespace())
            .map(|b| (b as char).to_digit(16).unwrap() as u8)
            .collect();
        digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
    }

    /// Replays the libiscsi ↔ tgtd discovery capture: our requests must match
    /// libiscsi's headers (the login text differs: we offer fewer keys) and tgtd's
    /// answers must drive us through login, SendTargets and logout.
    #[test]
    fn captured_discovery_session_replays() {
        let login_req = fixture(include_str!("fixtures/login_req.hex"));
        let login_resp = fixture(include_str!("fixtures/login_resp.hex"));
        let text_req = fixture(include_str!("fixtures/text_req.hex"));
        let text_resp = fixture(include_str!("fixtures/text_resp.hex"));
        let logout_req = fixture(include_str!("fixtures/logout_req.hex"));
        let logout_resp = fixture(include_str!("fixtures/logout_resp.hex"));

        let iname = "iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-ls";
        let mut c = LoginConfig::new(
            Proposal::discovery(iname),
            isid_random([0x7a, 0xb9, 0xb6], 0),
        );
        c.skip_security = true;
        c.itt = 0x265e_d4c6;
        c.cmd_sn = 0x5bae_831c;
        c.exp_stat_sn = 1; // libiscsi's first ExpStatSN
        let mut rx = [0u8; LOGIN_BUFFER_LEN];
        let mut tx = [0u8; LOGIN_BUFFER_LEN];
        let mut login = Login::new(c, &mut rx, &mut tx).unwrap();
        let mut out = [0u8; MAX_LOGIN_PDU_LEN];
        let n = login.next_request(&mut out).unwrap();
        let mut ours = out[..BHS_LEN].to_vec();
        let mut theirs = login_req[..BHS_LEN].to_vec();
        ours[5..8].fill(0);
        theirs[5..8].fill(0);
        assert_eq!(ours, theirs, "header equals libiscsi's but for the length");
        let data = &out[BHS_LEN..n];
        let prefix = format!("InitiatorName={iname}\0SessionType=Discovery\0");
        assert!(data.starts_with(prefix.as_bytes()));

        let (h, d) = split_pdu(&login_resp);
        let o = complete(login.handle_response(&h, d, &mut NoChap));
        assert_eq!(o.tsih, 0x0100);
        assert_eq!((o.stat_sn, o.exp_stat_sn), (0, 1));
        assert_eq!((o.exp_cmd_sn, o.max_cmd_sn), (0x5bae_831c, 0x5bae_831d));
        assert_eq!(o.target_portal_group_tag, Some(1));
        assert_eq!(o.params.header_digest, Digest::None);
        assert_eq!(o.params.default_time2retain, 0);

        let mut buf = [0u8; 512];
        let mut st = SendTargets::new(o.sequence(), 0x265e_d4c7, &mut buf);
        let n = st.next_request(&mut out).unwrap();
        assert_eq!(&out[..n], &text_req[..], "byte-exact SendTargets=All");
        let (h, d) = split_pdu(&text_resp);
        assert_eq!(st.handle_response(&h, d), Ok(DiscoveryStep::Complete));
        let found: Vec<_> = st.targets().collect();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "iqn.2024-01.rs.iscsi:fixtures");
        let portals: Vec<_> = found[0].addresses().collect();
        assert_eq!(
            portals,
            [Portal {
                host: "127.0.0.1",
                port: 3261,
                tag: Some(1)
            }]
        );

        let logout = Logout::close_session(st.sequence(), 0x265e_d4c8);
        let n = logout.write_request(&mut out).unwrap();
        assert_eq!(&out[..n], &logout_req[..], "byte-exact logout");
        let h: [u8; BHS_LEN] = logout_resp[..BHS_LEN].try_into().unwrap();
        let done = logout.handle_response(&h).unwrap();
        assert_eq!(done.stat_sn, 2);
    }
}
