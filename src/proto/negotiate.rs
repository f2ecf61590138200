//! Login/text key negotiation (RFC 7143 §6.2 and §13, RFC 7144 iSCSIProtocolLevel):
//! the key table (result function, range, scope), the RFC defaults, the initiator's
//! offer built from a [`Proposal`], the checks applied to every answer the target
//! sends, our answers to keys the target offers, and the negotiated [`SessionParams`].
//!
//! The responder rules ([`respond`]) are generic: the initiator uses them to answer
//! target-initiated keys, and test targets use them to answer our offers.
//! CHAP keys are not negotiated here: [`Negotiator::apply_response`] hands them back as
//! [`Reply::Auth`] for `super::chap`.

use core::fmt;

use super::text::{self, Special, TextError, TextWriter};

/// How the result of a key is computed from the offer and the responder's value
/// (RFC 7143 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFunction {
    /// The first value of the offered list that the responder supports.
    List,
    /// Numerical minimum of offer and responder's value.
    Min,
    /// Numerical maximum of offer and responder's value.
    Max,
    /// Boolean AND.
    And,
    /// Boolean OR.
    Or,
    /// Declared by one side; no answer is expected.
    Declarative,
    /// Obsoleted by RFC 7143 §13.26 (markers): always answered `Reject`.
    Obsolete,
}

/// Every key this negotiator understands. Anything else is answered `NotUnderstood`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// AuthMethod (list; security stage).
    AuthMethod,
    /// HeaderDigest (list: CRC32C, None).
    HeaderDigest,
    /// DataDigest (list: CRC32C, None).
    DataDigest,
    /// MaxConnections (min, 1..65535).
    MaxConnections,
    /// SendTargets (initiator only, full feature phase).
    SendTargets,
    /// TargetName (declarative).
    TargetName,
    /// InitiatorName (declarative, initiator only).
    InitiatorName,
    /// TargetAlias (declarative, target only).
    TargetAlias,
    /// InitiatorAlias (declarative, initiator only).
    InitiatorAlias,
    /// TargetAddress (declarative, target only; may repeat).
    TargetAddress,
    /// TargetPortalGroupTag (declarative, target only, 0..65535).
    TargetPortalGroupTag,
    /// InitialR2T (OR).
    InitialR2T,
    /// ImmediateData (AND).
    ImmediateData,
    /// MaxRecvDataSegmentLength (declarative per direction, 512..2^24-1).
    MaxRecvDataSegmentLength,
    /// MaxBurstLength (min, 512..2^24-1).
    MaxBurstLength,
    /// FirstBurstLength (min, 512..2^24-1, not above MaxBurstLength).
    FirstBurstLength,
    /// DefaultTime2Wait (max, 0..3600).
    DefaultTime2Wait,
    /// DefaultTime2Retain (min, 0..3600).
    DefaultTime2Retain,
    /// MaxOutstandingR2T (min, 1..65535).
    MaxOutstandingR2T,
    /// DataPDUInOrder (OR).
    DataPduInOrder,
    /// DataSequenceInOrder (OR).
    DataSequenceInOrder,
    /// ErrorRecoveryLevel (min, 0..2).
    ErrorRecoveryLevel,
    /// SessionType (declarative, initiator only: Normal or Discovery).
    SessionType,
    /// IFMarker (obsolete).
    IfMarker,
    /// OFMarker (obsolete).
    OfMarker,
    /// IFMarkInt (obsolete).
    IfMarkInt,
    /// OFMarkInt (obsolete).
    OfMarkInt,
    /// iSCSIProtocolLevel (RFC 7144: min, 0..31; 0 when not negotiated).
    ProtocolLevel,
    /// TaskReporting (RFC 7144: list; we only do RFC3720).
    TaskReporting,
    /// RDMAExtensions (RFC 7145: AND; always No over TCP).
    RdmaExtensions,
}

impl Key {
    /// All keys, in table order.
    pub const ALL: [Key; 30] = [
        Key::AuthMethod,
        Key::HeaderDigest,
        Key::DataDigest,
        Key::MaxConnections,
        Key::SendTargets,
        Key::TargetName,
        Key::InitiatorName,
        Key::TargetAlias,
        Key::InitiatorAlias,
        Key::TargetAddress,
        Key::TargetPortalGroupTag,
        Key::InitialR2T,
        Key::ImmediateData,
        Key::MaxRecvDataSegmentLength,
        Key::MaxBurstLength,
        Key::FirstBurstLength,
        Key::DefaultTime2Wait,
        Key::DefaultTime2Retain,
        Key::MaxOutstandingR2T,
        Key::DataPduInOrder,
        Key::DataSequenceInOrder,
        Key::ErrorRecoveryLevel,
        Key::SessionType,
        Key::IfMarker,
        Key::OfMarker,
        Key::IfMarkInt,
        Key::OfMarkInt,
        Key::ProtocolLevel,
        Key::TaskReporting,
        Key::RdmaExtensions,
    ];

    /// The key's name on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            Key::AuthMethod => "AuthMethod",
            Key::HeaderDigest => "HeaderDigest",
            Key::DataDigest => "DataDigest",
            Key::MaxConnections => "MaxConnections",
            Key::SendTargets => "SendTargets",
            Key::TargetName => "TargetName",
            Key::InitiatorName => "InitiatorName",
            Key::TargetAlias => "TargetAlias",
            Key::InitiatorAlias => "InitiatorAlias",
            Key::TargetAddress => "TargetAddress",
            Key::TargetPortalGroupTag => "TargetPortalGroupTag",
            Key::InitialR2T => "InitialR2T",
            Key::ImmediateData => "ImmediateData",
            Key::MaxRecvDataSegmentLength => "MaxRecvDataSegmentLength",
            Key::MaxBurstLength => "MaxBurstLength",
            Key::FirstBurstLength => "FirstBurstLength",
            Key::DefaultTime2Wait => "DefaultTime2Wait",
            Key::DefaultTime2Retain => "DefaultTime2Retain",
            Key::MaxOutstandingR2T => "MaxOutstandingR2T",
            Key::DataPduInOrder => "DataPDUInOrder",
            Key::DataSequenceInOrder => "DataSequenceInOrder",
            Key::ErrorRecoveryLevel => "ErrorRecoveryLevel",
            Key::SessionType => "SessionType",
            Key::IfMarker => "IFMarker",
            Key::OfMarker => "OFMarker",
            Key::IfMarkInt => "IFMarkInt",
            Key::OfMarkInt => "OFMarkInt",
            Key::ProtocolLevel => "iSCSIProtocolLevel",
            Key::TaskReporting => "TaskReporting",
            Key::RdmaExtensions => "RDMAExtensions",
        }
    }

    /// Looks a key up by its exact (case-sensitive) wire name.
    pub fn from_name(name: &str) -> Option<Key> {
        Key::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// The key's result function.
    pub const fn function(self) -> ResultFunction {
        match self {
            Key::AuthMethod | Key::HeaderDigest | Key::DataDigest | Key::TaskReporting => {
                ResultFunction::List
            }
            Key::MaxConnections
            | Key::MaxBurstLength
            | Key::FirstBurstLength
            | Key::DefaultTime2Retain
            | Key::MaxOutstandingR2T
            | Key::ErrorRecoveryLevel
            | Key::ProtocolLevel => ResultFunction::Min,
            Key::DefaultTime2Wait => ResultFunction::Max,
            Key::ImmediateData | Key::RdmaExtensions => ResultFunction::And,
            Key::InitialR2T | Key::DataPduInOrder | Key::DataSequenceInOrder => ResultFunction::Or,
            Key::SendTargets
            | Key::TargetName
            | Key::InitiatorName
            | Key::TargetAlias
            | Key::InitiatorAlias
            | Key::TargetAddress
            | Key::TargetPortalGroupTag
            | Key::MaxRecvDataSegmentLength
            | Key::SessionType => ResultFunction::Declarative,
            Key::IfMarker | Key::OfMarker | Key::IfMarkInt | Key::OfMarkInt => {
                ResultFunction::Obsolete
            }
        }
    }

    /// Valid range of a numerical key (inclusive), `None` for other keys.
    pub const fn range(self) -> Option<(u64, u64)> {
        match self {
            Key::MaxConnections | Key::MaxOutstandingR2T => Some((1, 65535)),
            Key::TargetPortalGroupTag => Some((0, 65535)),
            Key::MaxRecvDataSegmentLength | Key::MaxBurstLength | Key::FirstBurstLength => {
                Some((512, 16_777_215))
            }
            Key::DefaultTime2Wait | Key::DefaultTime2Retain => Some((0, 3600)),
            Key::ErrorRecoveryLevel => Some((0, 2)),
            Key::ProtocolLevel => Some((0, 31)),
            _ => None,
        }
    }

    /// Session-wide keys that only the leading connection may negotiate ("LO").
    pub const fn leading_only(self) -> bool {
        matches!(
            self,
            Key::MaxConnections
                | Key::InitialR2T
                | Key::ImmediateData
                | Key::MaxBurstLength
                | Key::FirstBurstLength
                | Key::DefaultTime2Wait
                | Key::DefaultTime2Retain
                | Key::MaxOutstandingR2T
                | Key::DataPduInOrder
                | Key::DataSequenceInOrder
                | Key::ErrorRecoveryLevel
                | Key::SessionType
                | Key::ProtocolLevel
                | Key::TaskReporting
                | Key::RdmaExtensions
        )
    }

    /// Keys the RFCs declare Irrelevant when SessionType=Discovery.
    pub const fn irrelevant_for_discovery(self) -> bool {
        matches!(
            self,
            Key::MaxConnections
                | Key::InitialR2T
                | Key::ImmediateData
                | Key::MaxBurstLength
                | Key::FirstBurstLength
                | Key::MaxOutstandingR2T
                | Key::DataPduInOrder
                | Key::DataSequenceInOrder
                | Key::ProtocolLevel
                | Key::TaskReporting
                | Key::RdmaExtensions
        )
    }

    /// Keys added after RFC 3720 that a compliant older target may not know, so a
    /// `NotUnderstood` answer just leaves their default.
    const fn may_be_unknown(self) -> bool {
        matches!(
            self,
            Key::ProtocolLevel | Key::TaskReporting | Key::RdmaExtensions
        )
    }

    const fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

const _: () = assert!(Key::ALL.len() <= 32);

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// True for the CHAP keys, which belong to `super::chap` rather than to negotiation.
pub fn is_chap_key(key: &str) -> bool {
    key.starts_with("CHAP_")
}

/// A set of [`Key`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeySet(u32);

impl KeySet {
    /// The empty set.
    pub const EMPTY: KeySet = KeySet(0);

    /// True if `key` is in the set.
    pub const fn contains(self, key: Key) -> bool {
        self.0 & key.bit() != 0
    }

    /// Adds `key`.
    pub fn insert(&mut self, key: Key) {
        self.0 |= key.bit();
    }

    /// True if the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Keys in `self` but not in `other`.
    pub const fn difference(self, other: KeySet) -> KeySet {
        KeySet(self.0 & !other.0)
    }

    /// Iterates over the keys in table order.
    pub fn iter(self) -> impl Iterator<Item = Key> {
        Key::ALL.into_iter().filter(move |k| self.contains(*k))
    }
}

/// A negotiated digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    /// No digest.
    None,
    /// CRC32C (RFC 7143 §13.1).
    Crc32c,
}

impl Digest {
    fn from_value(v: &str) -> Option<Self> {
        match v {
            "None" => Some(Digest::None),
            "CRC32C" => Some(Digest::Crc32c),
            _ => None,
        }
    }
}

/// What we offer for HeaderDigest/DataDigest, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestOffer {
    /// `None` only.
    None,
    /// `CRC32C` only: the login fails if the target will not digest.
    Crc32c,
    /// `CRC32C,None`.
    PreferCrc32c,
    /// `None,CRC32C`.
    PreferNone,
}

impl DigestOffer {
    /// The list as sent on the wire.
    pub const fn as_list(self) -> &'static str {
        match self {
            DigestOffer::None => "None",
            DigestOffer::Crc32c => "CRC32C",
            DigestOffer::PreferCrc32c => "CRC32C,None",
            DigestOffer::PreferNone => "None,CRC32C",
        }
    }

    /// True if `d` is in the offer.
    pub const fn accepts(self, d: Digest) -> bool {
        match d {
            Digest::None => !matches!(self, DigestOffer::Crc32c),
            Digest::Crc32c => !matches!(self, DigestOffer::None),
        }
    }
}

/// A negotiated authentication method. Only these two are implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// No authentication.
    None,
    /// CHAP (RFC 1994, RFC 7143 §12.1.3), run by `super::chap`.
    Chap,
}

impl AuthMethod {
    fn from_value(v: &str) -> Option<Self> {
        match v {
            "None" => Some(AuthMethod::None),
            "CHAP" => Some(AuthMethod::Chap),
            _ => None,
        }
    }
}

/// What we offer for AuthMethod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOffer {
    /// `None`: no credentials configured.
    None,
    /// `CHAP` only: a target that will not authenticate fails the login (needed for
    /// mutual CHAP, where skipping authentication would skip verifying the target).
    Chap,
    /// `CHAP,None`.
    ChapOrNone,
}

impl AuthOffer {
    /// The list as sent on the wire.
    pub const fn as_list(self) -> &'static str {
        match self {
            AuthOffer::None => "None",
            AuthOffer::Chap => "CHAP",
            AuthOffer::ChapOrNone => "CHAP,None",
        }
    }

    /// True if `m` is in the offer.
    pub const fn accepts(self, m: AuthMethod) -> bool {
        match m {
            AuthMethod::None => !matches!(self, AuthOffer::Chap),
            AuthMethod::Chap => !matches!(self, AuthOffer::None),
        }
    }
}

/// SessionType.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionType {
    /// A session carrying SCSI commands to one target.
    Normal,
    /// A session for SendTargets only.
    Discovery,
}

impl SessionType {
    /// The value on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionType::Normal => "Normal",
            SessionType::Discovery => "Discovery",
        }
    }
}

/// The operational parameters of a session/connection after login, starting from the
/// RFC 7143 §13 defaults.
///
/// MaxRecvDataSegmentLength is declared separately by each side:
/// `max_recv_data_segment_len` is what we declared (the most the target may put in one
/// PDU to us) and `max_xmit_data_segment_len` is what the target declared (the most we
/// may put in one PDU to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionParams {
    /// Normal or Discovery.
    pub session_type: SessionType,
    /// The authentication method used on this connection.
    pub auth_method: AuthMethod,
    /// Header digest in use on this connection.
    pub header_digest: Digest,
    /// Data digest in use on this connection.
    pub data_digest: Digest,
    /// MaxConnections.
    pub max_connections: u16,
    /// InitialR2T: unsolicited data needs an R2T first.
    pub initial_r2t: bool,
    /// ImmediateData: data may ride in the SCSI Command PDU.
    pub immediate_data: bool,
    /// Our declared MaxRecvDataSegmentLength: the target sends at most this per PDU.
    pub max_recv_data_segment_len: u32,
    /// The target's declared MaxRecvDataSegmentLength: we send at most this per PDU.
    pub max_xmit_data_segment_len: u32,
    /// MaxBurstLength.
    pub max_burst_len: u32,
    /// FirstBurstLength (never above `max_burst_len`).
    pub first_burst_len: u32,
    /// DefaultTime2Wait, seconds.
    pub default_time2wait: u16,
    /// DefaultTime2Retain, seconds.
    pub default_time2retain: u16,
    /// MaxOutstandingR2T.
    pub max_outstanding_r2t: u16,
    /// DataPDUInOrder.
    pub data_pdu_in_order: bool,
    /// DataSequenceInOrder.
    pub data_sequence_in_order: bool,
    /// ErrorRecoveryLevel.
    pub error_recovery_level: u8,
    /// iSCSIProtocolLevel (0 when not negotiated).
    pub protocol_level: u8,
    /// TargetPortalGroupTag as declared by the target, if it did.
    pub target_portal_group_tag: Option<u16>,
}

impl SessionParams {
    /// The RFC 7143 §13 defaults.
    pub const DEFAULT: SessionParams = SessionParams {
        session_type: SessionType::Normal,
        auth_method: AuthMethod::None,
        header_digest: Digest::None,
        data_digest: Digest::None,
        max_connections: 1,
        initial_r2t: true,
        immediate_data: true,
        max_recv_data_segment_len: 8192,
        max_xmit_data_segment_len: 8192,
        max_burst_len: 262_144,
        first_burst_len: 65_536,
        default_time2wait: 2,
        default_time2retain: 20,
        max_outstanding_r2t: 1,
        data_pdu_in_order: true,
        data_sequence_in_order: true,
        error_recovery_level: 0,
        protocol_level: 0,
        target_portal_group_tag: None,
    };

    /// Resets `key` to its RFC default.
    fn set_default(&mut self, key: Key) {
        let d = SessionParams::DEFAULT;
        match key {
            Key::AuthMethod => self.auth_method = d.auth_method,
            Key::HeaderDigest => self.header_digest = d.header_digest,
            Key::DataDigest => self.data_digest = d.data_digest,
            Key::MaxConnections => self.max_connections = d.max_connections,
            Key::InitialR2T => self.initial_r2t = d.initial_r2t,
            Key::ImmediateData => self.immediate_data = d.immediate_data,
            Key::MaxBurstLength => self.max_burst_len = d.max_burst_len,
            Key::FirstBurstLength => self.first_burst_len = d.first_burst_len,
            Key::DefaultTime2Wait => self.default_time2wait = d.default_time2wait,
            Key::DefaultTime2Retain => self.default_time2retain = d.default_time2retain,
            Key::MaxOutstandingR2T => self.max_outstanding_r2t = d.max_outstanding_r2t,
            Key::DataPduInOrder => self.data_pdu_in_order = d.data_pdu_in_order,
            Key::DataSequenceInOrder => self.data_sequence_in_order = d.data_sequence_in_order,
            Key::ErrorRecoveryLevel => self.error_recovery_level = d.error_recovery_level,
            Key::ProtocolLevel => self.protocol_level = d.protocol_level,
            _ => {}
        }
    }

    /// Stores a numerical result already checked against the key's range.
    fn set_number(&mut self, key: Key, v: u64) {
        // The range checks done before this bound every value to its field's width;
        // saturate rather than truncate should a caller ever skip them.
        let v16 = u16::try_from(v).unwrap_or(u16::MAX);
        let v32 = u32::try_from(v).unwrap_or(u32::MAX);
        let v8 = u8::try_from(v).unwrap_or(u8::MAX);
        match key {
            Key::MaxConnections => self.max_connections = v16,
            Key::MaxBurstLength => self.max_burst_len = v32,
            Key::FirstBurstLength => self.first_burst_len = v32,
            Key::DefaultTime2Wait => self.default_time2wait = v16,
            Key::DefaultTime2Retain => self.default_time2retain = v16,
            Key::MaxOutstandingR2T => self.max_outstanding_r2t = v16,
            Key::ErrorRecoveryLevel => self.error_recovery_level = v8,
            Key::ProtocolLevel => self.protocol_level = v8,
            Key::TargetPortalGroupTag => self.target_portal_group_tag = Some(v16),
            Key::MaxRecvDataSegmentLength => self.max_xmit_data_segment_len = v32,
            _ => {}
        }
    }

    /// Stores a boolean result.
    fn set_bool(&mut self, key: Key, v: bool) {
        match key {
            Key::InitialR2T => self.initial_r2t = v,
            Key::ImmediateData => self.immediate_data = v,
            Key::DataPduInOrder => self.data_pdu_in_order = v,
            Key::DataSequenceInOrder => self.data_sequence_in_order = v,
            _ => {}
        }
    }
}

impl Default for SessionParams {
    fn default() -> Self {
        SessionParams::DEFAULT
    }
}

/// The values we want for a session. Built with [`Proposal::normal`] or
/// [`Proposal::discovery`] (RFC defaults), then adjusted field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal<'a> {
    /// Our iSCSI name (InitiatorName).
    pub initiator_name: &'a str,
    /// Our alias, sent only if set.
    pub initiator_alias: Option<&'a str>,
    /// The target's iSCSI name; required for Normal sessions, unused for Discovery.
    pub target_name: Option<&'a str>,
    /// Normal or Discovery.
    pub session_type: SessionType,
    /// AuthMethod offer.
    pub auth: AuthOffer,
    /// HeaderDigest offer.
    pub header_digest: DigestOffer,
    /// DataDigest offer.
    pub data_digest: DigestOffer,
    /// MaxConnections wanted.
    pub max_connections: u16,
    /// InitialR2T wanted.
    pub initial_r2t: bool,
    /// ImmediateData wanted.
    pub immediate_data: bool,
    /// MaxRecvDataSegmentLength we declare (what our receive path can take per PDU).
    pub max_recv_data_segment_len: u32,
    /// MaxBurstLength wanted.
    pub max_burst_len: u32,
    /// FirstBurstLength wanted (must not exceed `max_burst_len`).
    pub first_burst_len: u32,
    /// DefaultTime2Wait wanted.
    pub default_time2wait: u16,
    /// DefaultTime2Retain wanted.
    pub default_time2retain: u16,
    /// MaxOutstandingR2T wanted.
    pub max_outstanding_r2t: u16,
    /// DataPDUInOrder wanted.
    pub data_pdu_in_order: bool,
    /// DataSequenceInOrder wanted.
    pub data_sequence_in_order: bool,
    /// ErrorRecoveryLevel wanted.
    pub error_recovery_level: u8,
    /// iSCSIProtocolLevel to offer (RFC 7144); 0 means do not offer it. Some
    /// targets (LIO) answer NotUnderstood, which leaves 0.
    pub protocol_level: u8,
}

impl<'a> Proposal<'a> {
    /// A Normal session to `target_name`, every value at its RFC default, no
    /// authentication, no digests.
    pub const fn normal(initiator_name: &'a str, target_name: &'a str) -> Self {
        Self::with_defaults(initiator_name, Some(target_name), SessionType::Normal)
    }

    /// A Discovery session, every value at its RFC default.
    pub const fn discovery(initiator_name: &'a str) -> Self {
        Self::with_defaults(initiator_name, None, SessionType::Discovery)
    }

    const fn with_defaults(
        initiator_name: &'a str,
        target_name: Option<&'a str>,
        session_type: SessionType,
    ) -> Self {
        let d = SessionParams::DEFAULT;
        Proposal {
            initiator_name,
            initiator_alias: None,
            target_name,
            session_type,
            auth: AuthOffer::None,
            header_digest: DigestOffer::None,
            data_digest: DigestOffer::None,
            max_connections: d.max_connections,
            initial_r2t: d.initial_r2t,
            immediate_data: d.immediate_data,
            max_recv_data_segment_len: d.max_recv_data_segment_len,
            max_burst_len: d.max_burst_len,
            first_burst_len: d.first_burst_len,
            default_time2wait: d.default_time2wait,
            default_time2retain: d.default_time2retain,
            max_outstanding_r2t: d.max_outstanding_r2t,
            data_pdu_in_order: d.data_pdu_in_order,
            data_sequence_in_order: d.data_sequence_in_order,
            error_recovery_level: d.error_recovery_level,
            protocol_level: 0,
        }
    }

    /// Our value for `key` in the typed form [`respond`] takes, if we have one.
    pub fn local(&self, key: Key) -> Option<Local<'static>> {
        Some(match key {
            Key::AuthMethod => Local::List(self.auth.as_list()),
            Key::HeaderDigest => Local::List(self.header_digest.as_list()),
            Key::DataDigest => Local::List(self.data_digest.as_list()),
            Key::TaskReporting => Local::List("RFC3720"),
            Key::MaxConnections => Local::Number(self.max_connections.into()),
            Key::MaxRecvDataSegmentLength => Local::Number(self.max_recv_data_segment_len.into()),
            Key::MaxBurstLength => Local::Number(self.max_burst_len.into()),
            Key::FirstBurstLength => Local::Number(self.first_burst_len.into()),
            Key::DefaultTime2Wait => Local::Number(self.default_time2wait.into()),
            Key::DefaultTime2Retain => Local::Number(self.default_time2retain.into()),
            Key::MaxOutstandingR2T => Local::Number(self.max_outstanding_r2t.into()),
            Key::ErrorRecoveryLevel => Local::Number(self.error_recovery_level.into()),
            Key::ProtocolLevel => Local::Number(self.protocol_level.into()),
            Key::InitialR2T => Local::Bool(self.initial_r2t),
            Key::ImmediateData => Local::Bool(self.immediate_data),
            Key::DataPduInOrder => Local::Bool(self.data_pdu_in_order),
            Key::DataSequenceInOrder => Local::Bool(self.data_sequence_in_order),
            Key::RdmaExtensions => Local::Bool(false),
            _ => return None,
        })
    }

    /// Checks every value against its key's range and the cross-key rules.
    fn validate(&self) -> Result<(), NegotiationError> {
        let bad = |key| Err(NegotiationError::InvalidProposal { key });
        if self.initiator_name.is_empty() {
            return bad(Key::InitiatorName);
        }
        let has_target = matches!(self.target_name, Some(t) if !t.is_empty());
        if self.session_type == SessionType::Normal && !has_target {
            return bad(Key::TargetName);
        }
        for key in Key::ALL {
            if let (Some((lo, hi)), Some(Local::Number(v))) = (key.range(), self.local(key)) {
                if v < lo || v > hi {
                    return bad(key);
                }
            }
        }
        if self.first_burst_len > self.max_burst_len {
            return bad(Key::FirstBurstLength);
        }
        Ok(())
    }
}

/// A side's own value for a key, in typed form, as given to [`respond`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local<'a> {
    /// A number (min/max keys).
    Number(u64),
    /// A boolean (AND/OR keys).
    Bool(bool),
    /// The values we support, comma-separated (list keys).
    List(&'a str),
}

impl fmt::Display for Local<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Local::Number(n) => write!(f, "{n}"),
            Local::Bool(b) => f.write_str(if b { "Yes" } else { "No" }),
            Local::List(l) => f.write_str(l),
        }
    }
}

/// A value to send back for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyValue<'a> {
    /// A text value: a list item, or a special constant such as `Reject`.
    Text(&'a str),
    /// A number, sent in decimal.
    Number(u64),
    /// A boolean, sent as Yes/No.
    Bool(bool),
}

impl ReplyValue<'_> {
    /// Appends `key=<this value>` to `w`.
    pub fn write(&self, key: &str, w: &mut TextWriter<'_>) -> Result<(), TextError> {
        match *self {
            ReplyValue::Text(t) => w.push(key, t),
            ReplyValue::Number(n) => w.push_u64(key, n),
            ReplyValue::Bool(b) => w.push_bool(key, b),
        }
    }
}

impl<'a> From<Local<'a>> for ReplyValue<'a> {
    /// The value as sent: a list is sent as it stands (one item, for a result).
    fn from(l: Local<'a>) -> Self {
        match l {
            Local::Number(n) => ReplyValue::Number(n),
            Local::Bool(b) => ReplyValue::Bool(b),
            Local::List(t) => ReplyValue::Text(t),
        }
    }
}

impl From<Special> for ReplyValue<'static> {
    fn from(s: Special) -> Self {
        ReplyValue::Text(s.as_str())
    }
}

/// What to do after feeding one of the target's keys to [`Negotiator::apply_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// Nothing to send back.
    Nothing,
    /// A CHAP key: give it to the `super::chap::ChapSession`.
    Auth,
    /// Send `key=value` in our next PDU.
    Answer {
        /// Key to send (the target's spelling for unknown keys).
        key: &'a str,
        /// Value to send.
        value: ReplyValue<'a>,
    },
}

impl Reply<'_> {
    /// Appends the answer, if any, to `w` (no-op for `Nothing` and `Auth`).
    pub fn write_to(&self, w: &mut TextWriter<'_>) -> Result<(), TextError> {
        match self {
            Reply::Answer { key, value } => value.write(key, w),
            Reply::Nothing | Reply::Auth => Ok(()),
        }
    }
}

/// A negotiation failure: the login must be abandoned (and the connection dropped,
/// RFC 7143 §6.2: the initiator drops on a protocol error in negotiation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegotiationError {
    /// Our own [`Proposal`] has a value outside the key's range or rules.
    InvalidProposal {
        /// The offending key.
        key: Key,
    },
    /// A value from the target does not parse as the key's type.
    Malformed {
        /// The key.
        key: Key,
        /// Why it did not parse.
        error: TextError,
    },
    /// A number from the target is outside the key's range.
    OutOfRange {
        /// The key.
        key: Key,
        /// The value received.
        value: u64,
    },
    /// A list answer is not one of the values we offered (or is itself a list).
    NotOffered {
        /// The key.
        key: Key,
    },
    /// A numerical answer breaks the key's result function (e.g. a min key answered
    /// above our offer).
    ResultViolated {
        /// The key.
        key: Key,
        /// What we offered.
        offered: u64,
        /// What the target answered.
        answered: u64,
    },
    /// A boolean answer breaks the key's result function (e.g. OR: Yes answered No).
    BooleanViolated {
        /// The key.
        key: Key,
        /// What we offered.
        offered: bool,
        /// What the target answered.
        answered: bool,
    },
    /// The target sent a key twice (RFC 7143 §6.2: drop the connection).
    Duplicate {
        /// The key.
        key: Key,
    },
    /// The target sent a key only an initiator may send.
    NotAllowedFromTarget {
        /// The key.
        key: Key,
    },
    /// The target offered a leading-only key on a non-leading connection that has
    /// no session value to compare with.
    LeadingOnly {
        /// The key.
        key: Key,
    },
    /// On a non-leading connection the target offered a leading-only key whose
    /// outcome under the key's rule (min, max, AND, OR, list) is not the session's
    /// value (what the leading login settled, or the RFC default where it settled
    /// nothing): a session-wide value cannot change there.
    LeadingOnlyChanged {
        /// The key.
        key: Key,
        /// The session's value.
        session: Local<'static>,
        /// The target's value (for a number or boolean also the outcome it would
        /// give); `None` for a list that lacks the session's value.
        offered: Option<Local<'static>>,
    },
    /// The target answered `Reject` (or `Irrelevant`) where the default is not
    /// acceptable to us (e.g. AuthMethod, or a digest we require).
    Rejected {
        /// The key.
        key: Key,
    },
    /// The target answered `NotUnderstood` to a key every RFC 7143 target must know.
    NotUnderstood {
        /// The key.
        key: Key,
    },
    /// The target never answered a key whose default is not acceptable to us.
    NoResponse {
        /// The key.
        key: Key,
    },
    /// The target's SessionType differs from ours.
    SessionTypeMismatch,
    /// FirstBurstLength ended above MaxBurstLength.
    FirstBurstExceedsMaxBurst {
        /// FirstBurstLength.
        first_burst_len: u32,
        /// MaxBurstLength.
        max_burst_len: u32,
    },
    /// Writing our keys failed (buffer too small).
    Text(TextError),
}

impl From<TextError> for NegotiationError {
    fn from(e: TextError) -> Self {
        NegotiationError::Text(e)
    }
}

impl fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::InvalidProposal { key } => write!(f, "our {key} value is out of range"),
            Self::Malformed { key, error } => write!(f, "target sent malformed {key}: {error}"),
            Self::OutOfRange { key, value } => write!(f, "target sent {key}={value}, out of range"),
            Self::NotOffered { key } => write!(f, "target chose a {key} value we did not offer"),
            Self::ResultViolated {
                key,
                offered,
                answered,
            } => write!(
                f,
                "target answered {key}={answered} to our {offered}, against the result function"
            ),
            Self::BooleanViolated {
                key,
                offered,
                answered,
            } => write!(
                f,
                "target answered {key}={answered} to our {offered}, against the result function"
            ),
            Self::Duplicate { key } => write!(f, "target sent {key} twice"),
            Self::NotAllowedFromTarget { key } => write!(f, "target sent initiator-only key {key}"),
            Self::LeadingOnly { key } => {
                write!(f, "target negotiated {key} on a non-leading connection")
            }
            Self::LeadingOnlyChanged {
                key,
                session,
                offered: Some(offered),
            } => write!(
                f,
                "target offered {key}={offered} on a non-leading connection, but the session \
                 has {key}={session} (leading-only: only the leading login sets it)"
            ),
            Self::LeadingOnlyChanged {
                key,
                session,
                offered: None,
            } => write!(
                f,
                "target offered a {key} list without the session's {session} on a non-leading \
                 connection (leading-only: only the leading login sets it)"
            ),
            Self::Rejected { key } => write!(f, "target rejected {key}"),
            Self::NotUnderstood { key } => write!(f, "target does not understand {key}"),
            Self::NoResponse { key } => write!(f, "target never answered {key}"),
            Self::SessionTypeMismatch => f.write_str("target sent a different SessionType"),
            Self::FirstBurstExceedsMaxBurst {
                first_burst_len,
                max_burst_len,
            } => write!(
                f,
                "FirstBurstLength {first_burst_len} exceeds MaxBurstLength {max_burst_len}"
            ),
            Self::Text(e) => write!(f, "writing keys: {e}"),
        }
    }
}

fn check_range(key: Key, v: u64) -> Result<u64, NegotiationError> {
    match key.range() {
        Some((lo, hi)) if v < lo || v > hi => Err(NegotiationError::OutOfRange { key, value: v }),
        _ => Ok(v),
    }
}

fn parse_number(key: Key, value: &str) -> Result<u64, NegotiationError> {
    let v =
        text::parse_number(value).map_err(|error| NegotiationError::Malformed { key, error })?;
    check_range(key, v)
}

fn parse_bool(key: Key, value: &str) -> Result<bool, NegotiationError> {
    text::parse_bool(value).map_err(|error| NegotiationError::Malformed { key, error })
}

/// The responder's answer to an offered `key=offered`, given the responder's own
/// value `ours` (RFC 7143 §6.2):
///
/// - List: the first value of the *offer* that `ours` also lists, else `Reject`.
/// - Min/Max: the smaller/larger of the two numbers.
/// - And/Or: the boolean function of the two.
/// - Declarative: no answer (`Ok(None)`).
/// - Obsolete (markers): `Reject` (RFC 7143 §13.26).
///
/// An offer that does not parse, or a number outside the key's range, is an error:
/// an initiator drops such a target; a target would answer `Reject` instead.
/// `ours` of the wrong type for the key is `InvalidProposal`.
pub fn respond<'o>(
    key: Key,
    offered: &'o str,
    ours: Local<'_>,
) -> Result<Option<ReplyValue<'o>>, NegotiationError> {
    let wrong_type = Err(NegotiationError::InvalidProposal { key });
    let answer = match key.function() {
        ResultFunction::Declarative => return Ok(None),
        ResultFunction::Obsolete => ReplyValue::Text(Special::Reject.as_str()),
        ResultFunction::List => {
            let Local::List(supported) = ours else {
                return wrong_type;
            };
            text::check_list(offered)
                .map_err(|error| NegotiationError::Malformed { key, error })?;
            match text::list_items(offered).find(|item| text::list_contains(supported, item)) {
                Some(item) => ReplyValue::Text(item),
                None => Special::Reject.into(),
            }
        }
        ResultFunction::Min | ResultFunction::Max => {
            let Local::Number(mine) = ours else {
                return wrong_type;
            };
            let theirs = parse_number(key, offered)?;
            ReplyValue::Number(if key.function() == ResultFunction::Min {
                theirs.min(mine)
            } else {
                theirs.max(mine)
            })
        }
        ResultFunction::And | ResultFunction::Or => {
            let Local::Bool(mine) = ours else {
                return wrong_type;
            };
            let theirs = parse_bool(key, offered)?;
            ReplyValue::Bool(if key.function() == ResultFunction::And {
                theirs && mine
            } else {
                theirs || mine
            })
        }
    };
    Ok(Some(answer))
}

/// Login stage whose keys [`Negotiator::write_offer`] writes. LIO refuses keys sent in
/// the wrong stage, so operational keys wait for the operational stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Security negotiation (CSG=0): names, SessionType, AuthMethod.
    Security,
    /// Operational negotiation (CSG=1): everything else (plus the names and
    /// SessionType if the login started here).
    Operational,
}

const SECURITY_KEYS: [Key; 5] = [
    Key::InitiatorName,
    Key::InitiatorAlias,
    Key::SessionType,
    Key::TargetName,
    Key::AuthMethod,
];

const OPERATIONAL_KEYS: [Key; 19] = [
    Key::InitiatorName,
    Key::InitiatorAlias,
    Key::SessionType,
    Key::TargetName,
    Key::HeaderDigest,
    Key::DataDigest,
    Key::MaxConnections,
    Key::InitialR2T,
    Key::ImmediateData,
    Key::MaxRecvDataSegmentLength,
    Key::MaxBurstLength,
    Key::FirstBurstLength,
    Key::DefaultTime2Wait,
    Key::DefaultTime2Retain,
    Key::MaxOutstandingR2T,
    Key::DataPduInOrder,
    Key::DataSequenceInOrder,
    Key::ErrorRecoveryLevel,
    Key::ProtocolLevel,
];

/// The initiator's side of one connection's login negotiation.
///
/// Use: [`write_offer`](Self::write_offer) for each stage, feed every key of every
/// target response to [`apply_response`](Self::apply_response) (sending back the
/// answers it returns), then [`finish`](Self::finish) when the target moves to full
/// feature phase.
#[derive(Debug, Clone)]
pub struct Negotiator<'a> {
    proposal: Proposal<'a>,
    params: SessionParams,
    leading: bool,
    /// Keys we have written into an offer.
    offered: KeySet,
    /// Keys the target has sent (any role), for duplicate detection.
    received: KeySet,
    /// Offered keys that fell back to their default (Reject/Irrelevant/NotUnderstood).
    defaulted: KeySet,
}

impl<'a> Negotiator<'a> {
    /// Starts negotiating the leading connection of a new session.
    pub fn new(proposal: Proposal<'a>) -> Result<Self, NegotiationError> {
        proposal.validate()?;
        let mut params = SessionParams::DEFAULT;
        params.session_type = proposal.session_type;
        Ok(Self {
            proposal,
            params,
            leading: true,
            offered: KeySet::EMPTY,
            received: KeySet::EMPTY,
            defaulted: KeySet::EMPTY,
        })
    }

    /// Starts negotiating an additional connection of an existing session: only
    /// connection-scoped keys are offered, session-wide values come from `session`
    /// and stay as they are: a leading-only key the target offers again is answered
    /// with the session's value when negotiating the offer against it gives that
    /// value (MaxConnections=4 against 2 gives 2), and fails the login otherwise.
    pub fn new_secondary(
        proposal: Proposal<'a>,
        session: &SessionParams,
    ) -> Result<Self, NegotiationError> {
        let mut n = Self::new(proposal)?;
        let d = SessionParams::DEFAULT;
        n.params = SessionParams {
            auth_method: d.auth_method,
            header_digest: d.header_digest,
            data_digest: d.data_digest,
            max_recv_data_segment_len: d.max_recv_data_segment_len,
            max_xmit_data_segment_len: d.max_xmit_data_segment_len,
            ..*session
        };
        n.leading = false;
        Ok(n)
    }

    /// Our proposal.
    pub fn proposal(&self) -> &Proposal<'a> {
        &self.proposal
    }

    /// Parameters as negotiated so far (before [`finish`](Self::finish)'s defaults).
    pub fn params(&self) -> &SessionParams {
        &self.params
    }

    /// Keys written into an offer so far.
    pub fn offered(&self) -> KeySet {
        self.offered
    }

    /// Keys the target has sent so far.
    pub fn received(&self) -> KeySet {
        self.received
    }

    /// The AuthMethod the target chose, once it has answered.
    pub fn auth_method(&self) -> Option<AuthMethod> {
        // A Reject that fell back to the default has already set None.
        self.received
            .contains(Key::AuthMethod)
            .then_some(self.params.auth_method)
    }

    fn should_offer(&self, key: Key) -> bool {
        let p = &self.proposal;
        if !self.leading && key.leading_only() {
            return false;
        }
        let discovery = p.session_type == SessionType::Discovery;
        match key {
            Key::InitiatorAlias => p.initiator_alias.is_some(),
            Key::TargetName => !discovery,
            Key::ProtocolLevel => !discovery && p.protocol_level > 0,
            // A discovery session only needs the connection's framing keys.
            Key::HeaderDigest | Key::DataDigest | Key::MaxRecvDataSegmentLength => true,
            _ if discovery => {
                matches!(key, Key::InitiatorName | Key::SessionType | Key::AuthMethod)
            }
            _ => true,
        }
    }

    fn write_key(&self, key: Key, w: &mut TextWriter<'_>) -> Result<(), TextError> {
        let p = &self.proposal;
        let name = key.name();
        match key {
            Key::InitiatorName => w.push(name, p.initiator_name),
            Key::InitiatorAlias => w.push(name, p.initiator_alias.unwrap_or("")),
            Key::TargetName => w.push(name, p.target_name.unwrap_or("")),
            Key::SessionType => w.push(name, p.session_type.as_str()),
            _ => match p.local(key) {
                Some(Local::List(l)) => w.push(name, l),
                Some(Local::Number(n)) => w.push_u64(name, n),
                Some(Local::Bool(b)) => w.push_bool(name, b),
                None => Ok(()),
            },
        }
    }

    /// Appends our keys for `stage` that were not offered yet.
    ///
    /// Each key is marked offered only once written, so after a `BufferFull` error the
    /// caller may send what fits and call again with a fresh buffer to write the rest.
    pub fn write_offer(
        &mut self,
        stage: Stage,
        w: &mut TextWriter<'_>,
    ) -> Result<(), NegotiationError> {
        let keys: &[Key] = match stage {
            Stage::Security => &SECURITY_KEYS,
            Stage::Operational => &OPERATIONAL_KEYS,
        };
        for &key in keys {
            if self.offered.contains(key) || !self.should_offer(key) {
                continue;
            }
            self.write_key(key, w)?;
            self.offered.insert(key);
            if key == Key::MaxRecvDataSegmentLength {
                // Declarative: in force as soon as we say it.
                self.params.max_recv_data_segment_len = self.proposal.max_recv_data_segment_len;
            }
        }
        Ok(())
    }

    /// Processes one `key=value` from a target Login/Text Response.
    ///
    /// Returns what to send back: nothing (an answer to our offer, or a declaration),
    /// an answer to a key the target offered (including `NotUnderstood` for unknown
    /// keys and `Reject` for obsolete markers), or [`Reply::Auth`] for CHAP keys.
    pub fn apply_response<'k>(
        &mut self,
        key: &'k str,
        value: &'k str,
    ) -> Result<Reply<'k>, NegotiationError> {
        if is_chap_key(key) {
            return Ok(Reply::Auth);
        }
        let Some(k) = Key::from_name(key) else {
            // Never answer a special value: it is itself an answer (to something we
            // never sent), and replying could start a loop.
            if Special::from_value(value).is_some() {
                return Ok(Reply::Nothing);
            }
            return Ok(Reply::Answer {
                key,
                value: Special::NotUnderstood.into(),
            });
        };
        // TargetAddress may legitimately repeat (one per portal).
        if k != Key::TargetAddress {
            if self.received.contains(k) {
                return Err(NegotiationError::Duplicate { key: k });
            }
            self.received.insert(k);
        }
        match k.function() {
            ResultFunction::Declarative => self.take_declaration(k, value),
            ResultFunction::Obsolete => Ok(if Special::from_value(value).is_some() {
                Reply::Nothing
            } else {
                Reply::Answer {
                    key: k.name(),
                    value: Special::Reject.into(),
                }
            }),
            _ if self.offered.contains(k) => self.take_answer(k, value).map(|()| Reply::Nothing),
            _ => self.answer_offer(k, value),
        }
    }

    /// A declarative key from the target.
    fn take_declaration<'k>(
        &mut self,
        k: Key,
        value: &'k str,
    ) -> Result<Reply<'k>, NegotiationError> {
        match k {
            Key::SendTargets | Key::InitiatorName | Key::InitiatorAlias => {
                Err(NegotiationError::NotAllowedFromTarget { key: k })
            }
            // Some targets echo it; only a different value is wrong.
            Key::SessionType if value == self.proposal.session_type.as_str() => Ok(Reply::Nothing),
            Key::SessionType => Err(NegotiationError::SessionTypeMismatch),
            Key::TargetPortalGroupTag | Key::MaxRecvDataSegmentLength => {
                let v = parse_number(k, value)?;
                self.params.set_number(k, v);
                Ok(Reply::Nothing)
            }
            // TargetName, TargetAlias, TargetAddress: information for the caller, who
            // sees every pair anyway.
            _ => Ok(Reply::Nothing),
        }
    }

    /// The target's answer to a key we offered.
    fn take_answer(&mut self, k: Key, value: &str) -> Result<(), NegotiationError> {
        match Special::from_value(value) {
            Some(Special::NotUnderstood) if !k.may_be_unknown() => {
                return Err(NegotiationError::NotUnderstood { key: k });
            }
            // A digest list answered Reject refuses None too when we offered
            // it: falling back to None would leave the target (istgt with
            // `UseDigest Header Data` does this) framing with CRC32C while we
            // do not, and the login hangs on the next PDU. Fail instead.
            Some(Special::Reject) if matches!(k, Key::HeaderDigest | Key::DataDigest) => {
                return Err(NegotiationError::Rejected { key: k });
            }
            Some(_) => return self.fall_back(k),
            None => {}
        }
        let p = self.proposal;
        match k.function() {
            ResultFunction::List => {
                // An answer is one value, and one we offered.
                let not_offered = Err(NegotiationError::NotOffered { key: k });
                match k {
                    Key::AuthMethod => match AuthMethod::from_value(value) {
                        Some(m) if p.auth.accepts(m) => self.params.auth_method = m,
                        _ => return not_offered,
                    },
                    Key::HeaderDigest | Key::DataDigest => {
                        let offer = if k == Key::HeaderDigest {
                            p.header_digest
                        } else {
                            p.data_digest
                        };
                        match Digest::from_value(value) {
                            Some(d) if offer.accepts(d) => {
                                if k == Key::HeaderDigest {
                                    self.params.header_digest = d;
                                } else {
                                    self.params.data_digest = d;
                                }
                            }
                            _ => return not_offered,
                        }
                    }
                    _ => return not_offered,
                }
            }
            ResultFunction::Min | ResultFunction::Max => {
                let answered = parse_number(k, value)?;
                let Some(Local::Number(offered)) = p.local(k) else {
                    return Err(NegotiationError::NotOffered { key: k });
                };
                let ok = if k.function() == ResultFunction::Min {
                    answered <= offered
                } else {
                    answered >= offered
                };
                if !ok {
                    return Err(NegotiationError::ResultViolated {
                        key: k,
                        offered,
                        answered,
                    });
                }
                self.params.set_number(k, answered);
            }
            ResultFunction::And | ResultFunction::Or => {
                let answered = parse_bool(k, value)?;
                let Some(Local::Bool(offered)) = p.local(k) else {
                    return Err(NegotiationError::NotOffered { key: k });
                };
                // AND with our No can only be No; OR with our Yes can only be Yes.
                let forced = if k.function() == ResultFunction::And {
                    !offered && answered
                } else {
                    offered && !answered
                };
                if forced {
                    return Err(NegotiationError::BooleanViolated {
                        key: k,
                        offered,
                        answered,
                    });
                }
                self.params.set_bool(k, answered);
            }
            ResultFunction::Declarative | ResultFunction::Obsolete => {}
        }
        Ok(())
    }

    /// Reject/Irrelevant (or NotUnderstood for post-RFC 3720 keys): the key keeps its
    /// default, provided the default is acceptable to us.
    fn fall_back(&mut self, k: Key) -> Result<(), NegotiationError> {
        self.default_acceptable(k)
            .then_some(())
            .ok_or(NegotiationError::Rejected { key: k })?;
        self.params.set_default(k);
        self.defaulted.insert(k);
        Ok(())
    }

    /// Whether the RFC default of `k` is one we offered (only list keys can fail).
    fn default_acceptable(&self, k: Key) -> bool {
        let p = &self.proposal;
        match k {
            Key::AuthMethod => p.auth.accepts(AuthMethod::None),
            Key::HeaderDigest => p.header_digest.accepts(Digest::None),
            Key::DataDigest => p.data_digest.accepts(Digest::None),
            _ => true,
        }
    }

    /// A key the target offered on its own: compute and record our answer.
    fn answer_offer<'k>(&mut self, k: Key, value: &'k str) -> Result<Reply<'k>, NegotiationError> {
        if Special::from_value(value).is_some() {
            // An unsolicited Reject/Irrelevant/NotUnderstood answers nothing of ours.
            return Ok(Reply::Nothing);
        }
        if !self.leading && k.leading_only() {
            return self.confirm_session_value(k, value);
        }
        if self.proposal.session_type == SessionType::Discovery && k.irrelevant_for_discovery() {
            return Ok(Reply::Answer {
                key: k.name(),
                value: Special::Irrelevant.into(),
            });
        }
        let Some(ours) = self.proposal.local(k) else {
            return Ok(Reply::Nothing);
        };
        let Some(answer) = respond(k, value, ours)? else {
            return Ok(Reply::Nothing);
        };
        match answer {
            ReplyValue::Number(n) => self.params.set_number(k, n),
            ReplyValue::Bool(b) => self.params.set_bool(k, b),
            ReplyValue::Text(t) => match k {
                Key::AuthMethod => {
                    if let Some(m) = AuthMethod::from_value(t) {
                        self.params.auth_method = m;
                    }
                }
                Key::HeaderDigest => {
                    if let Some(d) = Digest::from_value(t) {
                        self.params.header_digest = d;
                    }
                }
                Key::DataDigest => {
                    if let Some(d) = Digest::from_value(t) {
                        self.params.data_digest = d;
                    }
                }
                _ => {}
            },
        }
        Ok(Reply::Answer {
            key: k.name(),
            value: answer,
        })
    }

    /// The session-wide value of leading-only key `k`, in the form [`respond`] takes.
    ///
    /// On a non-leading connection `params` holds what the leading login settled
    /// (see [`new_secondary`](Self::new_secondary)); nothing on this connection
    /// writes a leading-only field. A key the leading login never negotiated holds
    /// its RFC default there, which is then the session's value. TaskReporting and
    /// RDMAExtensions are not kept: RFC3720 and No are the only values we run with.
    fn session_value(&self, k: Key) -> Option<Local<'static>> {
        let p = &self.params;
        Some(match k {
            Key::MaxConnections => Local::Number(p.max_connections.into()),
            Key::MaxBurstLength => Local::Number(p.max_burst_len.into()),
            Key::FirstBurstLength => Local::Number(p.first_burst_len.into()),
            Key::DefaultTime2Wait => Local::Number(p.default_time2wait.into()),
            Key::DefaultTime2Retain => Local::Number(p.default_time2retain.into()),
            Key::MaxOutstandingR2T => Local::Number(p.max_outstanding_r2t.into()),
            Key::ErrorRecoveryLevel => Local::Number(p.error_recovery_level.into()),
            Key::ProtocolLevel => Local::Number(p.protocol_level.into()),
            Key::InitialR2T => Local::Bool(p.initial_r2t),
            Key::ImmediateData => Local::Bool(p.immediate_data),
            Key::DataPduInOrder => Local::Bool(p.data_pdu_in_order),
            Key::DataSequenceInOrder => Local::Bool(p.data_sequence_in_order),
            Key::TaskReporting => Local::List("RFC3720"),
            Key::RdmaExtensions => Local::Bool(false),
            // SessionType is declarative and checked in `take_declaration`.
            _ => return None,
        })
    }

    /// A leading-only key offered on a non-leading connection (RFC 7143 §13: "LO"
    /// keys belong to the leading login). Some targets offer them again anyway: tgt
    /// offers every session key it holds at a non-default value that the request
    /// left out, at its configured value (MaxConnections=4 when the session settled
    /// on 2), and waits one more round for an answer, which it takes. The offer is
    /// negotiated against the session's value by the key's own rule ([`respond`]:
    /// min, max, AND, OR, list); an outcome equal to the session's value changes
    /// nothing and is answered with that value. Any other outcome would change a
    /// session-wide parameter from one connection, and fails the login.
    fn confirm_session_value<'k>(
        &self,
        k: Key,
        value: &'k str,
    ) -> Result<Reply<'k>, NegotiationError> {
        let Some(session) = self.session_value(k) else {
            return Err(NegotiationError::LeadingOnly { key: k });
        };
        let ours = ReplyValue::from(session);
        match respond(k, value, session)? {
            Some(outcome) if outcome == ours => Ok(Reply::Answer {
                key: k.name(),
                value: ours,
            }),
            outcome => Err(NegotiationError::LeadingOnlyChanged {
                key: k,
                session,
                // Under min/max/AND/OR an outcome other than ours is the offer itself;
                // a list outcome other than ours is Reject (the offer lacks ours).
                offered: match outcome {
                    Some(ReplyValue::Number(n)) => Some(Local::Number(n)),
                    Some(ReplyValue::Bool(b)) => Some(Local::Bool(b)),
                    _ => None,
                },
            }),
        }
    }

    /// Offered keys the target has not answered (declarations excluded).
    pub fn unanswered(&self) -> KeySet {
        let mut expecting = KeySet::EMPTY;
        for k in self.offered.iter() {
            if !matches!(k.function(), ResultFunction::Declarative) {
                expecting.insert(k);
            }
        }
        expecting.difference(self.received)
    }

    /// Ends the negotiation and returns the parameters in force.
    ///
    /// Unanswered offers resolve per RFC 7143 §6.2: a boolean whose result our offer
    /// alone decides (AND with No, OR with Yes) takes that result; any other key keeps
    /// its default, unless that default is one we refused to offer (AuthMethod=None or
    /// a digest of None when we require CRC32C), which is `NoResponse`.
    /// FirstBurstLength above MaxBurstLength is an error if the target answered it,
    /// and is clamped if it is only a default.
    pub fn finish(&self) -> Result<SessionParams, NegotiationError> {
        let mut p = self.params;
        for k in self.unanswered().iter() {
            match (k.function(), self.proposal.local(k)) {
                (ResultFunction::And, Some(Local::Bool(false))) => p.set_bool(k, false),
                (ResultFunction::Or, Some(Local::Bool(true))) => p.set_bool(k, true),
                _ if !self.default_acceptable(k) => {
                    return Err(NegotiationError::NoResponse { key: k })
                }
                _ => p.set_default(k),
            }
        }
        let irrelevant = p.initial_r2t && !p.immediate_data;
        if p.first_burst_len > p.max_burst_len && !irrelevant {
            let answered = self.received.contains(Key::FirstBurstLength)
                && !self.defaulted.contains(Key::FirstBurstLength);
            if answered {
                return Err(NegotiationError::FirstBurstExceedsMaxBurst {
                    first_burst_len: p.first_burst_len,
                    max_burst_len: p.max_burst_len,
                });
            }
            p.first_burst_len = p.max_burst_len;
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    const INAME: &str = "iqn.2024-01.rs.iscsi:init";
    const TNAME: &str = "iqn.2003-01.org.linux-iscsi:t1";

    fn offer(
        n: &mut Negotiator<'_>,
        stage: Stage,
    ) -> Vec<(std::string::String, std::string::String)> {
        let mut buf = [0u8; 2048];
        let mut w = TextWriter::new(&mut buf);
        n.write_offer(stage, &mut w).unwrap();
        text::pairs(w.as_bytes())
            .map(|p| {
                let (k, v) = p.unwrap();
                (k.into(), v.into())
            })
            .collect()
    }

    fn value_of<'v>(
        pairs: &'v [(std::string::String, std::string::String)],
        key: &str,
    ) -> Option<&'v str> {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A negotiator that has offered both stages.
    fn offered(p: Proposal<'static>) -> Negotiator<'static> {
        let mut n = Negotiator::new(p).unwrap();
        offer(&mut n, Stage::Security);
        offer(&mut n, Stage::Operational);
        n
    }

    fn normal() -> Proposal<'static> {
        Proposal::normal(INAME, TNAME)
    }

    #[test]
    fn defaults_are_rfc_7143() {
        let d = SessionParams::default();
        assert_eq!(d.max_recv_data_segment_len, 8192);
        assert_eq!(d.max_xmit_data_segment_len, 8192);
        assert_eq!(d.max_burst_len, 262_144);
        assert_eq!(d.first_burst_len, 65_536);
        assert!(d.initial_r2t && d.immediate_data);
        assert_eq!(d.max_outstanding_r2t, 1);
        assert_eq!((d.default_time2wait, d.default_time2retain), (2, 20));
        assert!(d.data_pdu_in_order && d.data_sequence_in_order);
        assert_eq!(d.error_recovery_level, 0);
        assert_eq!(d.max_connections, 1);
        assert_eq!(
            (d.header_digest, d.data_digest),
            (Digest::None, Digest::None)
        );
        assert_eq!(d.protocol_level, 0);
    }

    #[test]
    fn key_names_round_trip() {
        for k in Key::ALL {
            assert_eq!(Key::from_name(k.name()), Some(k));
            assert!(k.name().len() <= text::MAX_KEY_LEN);
        }
        assert_eq!(Key::from_name("headerdigest"), None);
        assert_eq!(Key::from_name("DataPDUInOrder"), Some(Key::DataPduInOrder));
        assert_eq!(
            Key::from_name("iSCSIProtocolLevel"),
            Some(Key::ProtocolLevel)
        );
    }

    #[test]
    fn security_offer() {
        let mut p = normal();
        p.auth = AuthOffer::ChapOrNone;
        p.initiator_alias = Some("host1");
        let mut n = Negotiator::new(p).unwrap();
        let mut buf = [0u8; 512];
        let mut w = TextWriter::new(&mut buf);
        n.write_offer(Stage::Security, &mut w).unwrap();
        assert_eq!(
            w.as_bytes(),
            b"InitiatorName=iqn.2024-01.rs.iscsi:init\0InitiatorAlias=host1\0SessionType=Normal\0\
TargetName=iqn.2003-01.org.linux-iscsi:t1\0AuthMethod=CHAP,None\0"
        );
        // The operational stage does not repeat them.
        let ops = offer(&mut n, Stage::Operational);
        assert_eq!(value_of(&ops, "InitiatorName"), None);
        assert_eq!(value_of(&ops, "AuthMethod"), None);
        assert_eq!(value_of(&ops, "HeaderDigest"), Some("None"));
    }

    #[test]
    fn operational_offer_has_every_key() {
        let mut p = normal();
        p.header_digest = DigestOffer::PreferCrc32c;
        p.data_digest = DigestOffer::Crc32c;
        p.initial_r2t = false;
        p.max_recv_data_segment_len = 262_144;
        p.max_burst_len = 16_776_192;
        p.first_burst_len = 262_144;
        p.protocol_level = 1;
        let mut n = Negotiator::new(p).unwrap();
        // Login started at the operational stage: names come first.
        let ops = offer(&mut n, Stage::Operational);
        let keys: Vec<&str> = ops.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "InitiatorName",
                "SessionType",
                "TargetName",
                "HeaderDigest",
                "DataDigest",
                "MaxConnections",
                "InitialR2T",
                "ImmediateData",
                "MaxRecvDataSegmentLength",
                "MaxBurstLength",
                "FirstBurstLength",
                "DefaultTime2Wait",
                "DefaultTime2Retain",
                "MaxOutstandingR2T",
                "DataPDUInOrder",
                "DataSequenceInOrder",
                "ErrorRecoveryLevel",
                "iSCSIProtocolLevel",
            ]
        );
        assert_eq!(value_of(&ops, "HeaderDigest"), Some("CRC32C,None"));
        assert_eq!(value_of(&ops, "DataDigest"), Some("CRC32C"));
        assert_eq!(value_of(&ops, "InitialR2T"), Some("No"));
        assert_eq!(value_of(&ops, "MaxBurstLength"), Some("16776192"));
        assert_eq!(value_of(&ops, "iSCSIProtocolLevel"), Some("1"));
        assert_eq!(n.params().max_recv_data_segment_len, 262_144);
        // Nothing left to offer.
        assert!(offer(&mut n, Stage::Operational).is_empty());
    }

    #[test]
    fn discovery_offer_is_minimal() {
        let mut n = Negotiator::new(Proposal::discovery(INAME)).unwrap();
        let sec = offer(&mut n, Stage::Security);
        assert_eq!(value_of(&sec, "SessionType"), Some("Discovery"));
        assert_eq!(value_of(&sec, "TargetName"), None);
        let ops = offer(&mut n, Stage::Operational);
        let keys: Vec<&str> = ops.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["HeaderDigest", "DataDigest", "MaxRecvDataSegmentLength"]
        );
    }

    #[test]
    fn secondary_connection_offers_only_connection_keys() {
        let mut session = SessionParams::DEFAULT;
        session.max_burst_len = 65_536;
        session.max_connections = 4;
        let mut n = Negotiator::new_secondary(normal(), &session).unwrap();
        let sec = offer(&mut n, Stage::Security);
        assert_eq!(value_of(&sec, "SessionType"), None);
        assert_eq!(value_of(&sec, "InitiatorName"), Some(INAME));
        let ops = offer(&mut n, Stage::Operational);
        let keys: Vec<&str> = ops.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["HeaderDigest", "DataDigest", "MaxRecvDataSegmentLength"]
        );
        assert_eq!(
            n.apply_response("MaxBurstLength", "512"),
            Err(NegotiationError::LeadingOnlyChanged {
                key: Key::MaxBurstLength,
                session: Local::Number(65_536),
                offered: Some(Local::Number(512)),
            })
        );
        let p = n.finish().unwrap();
        assert_eq!((p.max_burst_len, p.max_connections), (65_536, 4));
    }

    /// A non-leading negotiator of `session`, past its own offers.
    fn secondary_of(session: &SessionParams) -> Negotiator<'static> {
        let mut n = Negotiator::new_secondary(normal(), session).unwrap();
        offer(&mut n, Stage::Security);
        offer(&mut n, Stage::Operational);
        n
    }

    /// A non-leading negotiator of a session whose leading login settled
    /// MaxConnections=2, MaxBurstLength=65536, InitialR2T=No, ImmediateData=No.
    fn secondary() -> Negotiator<'static> {
        let mut session = SessionParams::DEFAULT;
        session.max_connections = 2;
        session.max_burst_len = 65_536;
        session.first_burst_len = 65_536;
        session.initial_r2t = false;
        session.immediate_data = false;
        secondary_of(&session)
    }

    fn answer_text(r: Reply<'_>) -> std::string::String {
        let mut buf = [0u8; 64];
        let mut w = TextWriter::new(&mut buf);
        r.write_to(&mut w).unwrap();
        std::string::String::from_utf8(w.as_bytes().to_vec()).unwrap()
    }

    /// Asserts that every `(key, offer, answer)` is answered `key=answer` by one
    /// negotiator and that the session's values stand afterwards.
    fn confirmed(mut n: Negotiator<'static>, cases: &[(&str, &str, &str)]) {
        let before = n.params;
        for &(k, v, want) in cases {
            let r = n.apply_response(k, v).unwrap();
            assert_eq!(answer_text(r), std::format!("{k}={want}\0"), "{k}={v}");
        }
        let p = n.finish().unwrap();
        assert_eq!(p, before);
    }

    /// tgt on the second connection: the connection keys answered, then
    /// MaxConnections offered again at the value the session has.
    #[test]
    fn secondary_answers_a_repeated_leading_only_key_with_the_session_value() {
        let mut n = secondary();
        for (k, v) in [("HeaderDigest", "None"), ("DataDigest", "None")] {
            assert_eq!(n.apply_response(k, v), Ok(Reply::Nothing));
        }
        // Every kind of leading-only key, each at the session's value.
        confirmed(
            n,
            &[
                ("MaxConnections", "2", "2"),
                ("InitialR2T", "No", "No"),
                ("ImmediateData", "No", "No"),
                ("MaxBurstLength", "65536", "65536"),
                ("FirstBurstLength", "65536", "65536"),
                ("DefaultTime2Wait", "2", "2"),
                ("DefaultTime2Retain", "20", "20"),
                ("MaxOutstandingR2T", "1", "1"),
                ("DataPDUInOrder", "Yes", "Yes"),
                ("DataSequenceInOrder", "Yes", "Yes"),
                ("ErrorRecoveryLevel", "0", "0"),
            ],
        );
    }

    /// tgt offers its configured value, not the session's: MaxConnections=4 on the
    /// second connection of a session that settled on 2. Negotiated by the key's
    /// rule against the session's value, such an offer gives the session's value,
    /// which is the answer; the session changes in nothing.
    #[test]
    fn secondary_answers_an_offer_that_negotiates_to_the_session_value() {
        confirmed(
            secondary(),
            &[
                // min
                ("MaxConnections", "4", "2"),
                ("MaxBurstLength", "262144", "65536"),
                ("FirstBurstLength", "16777215", "65536"),
                ("DefaultTime2Retain", "3600", "20"),
                ("MaxOutstandingR2T", "8", "1"),
                ("ErrorRecoveryLevel", "2", "0"),
                ("iSCSIProtocolLevel", "1", "0"),
                // max
                ("DefaultTime2Wait", "0", "2"),
                // AND with the session's No
                ("ImmediateData", "Yes", "No"),
                ("RDMAExtensions", "Yes", "No"),
                // OR with the session's Yes
                ("DataPDUInOrder", "No", "Yes"),
                ("DataSequenceInOrder", "No", "Yes"),
                // list: the session's value is among the offered ones
                ("TaskReporting", "ResponseFence,RFC3720", "RFC3720"),
            ],
        );
        // The other way round: OR with the session's Yes takes any offer; AND with
        // its Yes and OR with its No take only the session's own value.
        let mut session = SessionParams::DEFAULT;
        session.max_connections = 2;
        session.data_pdu_in_order = false;
        confirmed(
            secondary_of(&session),
            &[
                ("InitialR2T", "No", "Yes"),
                ("ImmediateData", "Yes", "Yes"),
                ("DataPDUInOrder", "No", "No"),
            ],
        );
    }

    #[test]
    fn secondary_refuses_an_offer_that_negotiates_to_another_value() {
        let changed = |mut n: Negotiator<'static>, key, value, session, offered| {
            let e = n.apply_response(key, value).unwrap_err();
            assert_eq!(
                e,
                NegotiationError::LeadingOnlyChanged {
                    key: Key::from_name(key).unwrap(),
                    session,
                    offered,
                },
                "{key}={value}"
            );
            e
        };
        // min below the session's value: MaxConnections=1 would leave one connection.
        let e = changed(
            secondary(),
            "MaxConnections",
            "1",
            Local::Number(2),
            Some(Local::Number(1)),
        );
        assert_eq!(
            std::format!("{e}"),
            "target offered MaxConnections=1 on a non-leading connection, but the session has \
             MaxConnections=2 (leading-only: only the leading login sets it)"
        );
        changed(
            secondary(),
            "MaxBurstLength",
            "512",
            Local::Number(65_536),
            Some(Local::Number(512)),
        );
        // max above it.
        changed(
            secondary(),
            "DefaultTime2Wait",
            "5",
            Local::Number(2),
            Some(Local::Number(5)),
        );
        // OR with the session's No.
        let e = changed(
            secondary(),
            "InitialR2T",
            "Yes",
            Local::Bool(false),
            Some(Local::Bool(true)),
        );
        assert!(std::format!("{e}").contains("InitialR2T=Yes"), "{e}");
        // AND with the session's Yes.
        let mut session = SessionParams::DEFAULT;
        session.max_connections = 2;
        session.protocol_level = 1;
        let e = changed(
            secondary_of(&session),
            "ImmediateData",
            "No",
            Local::Bool(true),
            Some(Local::Bool(false)),
        );
        assert!(std::format!("{e}").contains("ImmediateData=No"), "{e}");
        changed(
            secondary_of(&session),
            "iSCSIProtocolLevel",
            "0",
            Local::Number(1),
            Some(Local::Number(0)),
        );
        // Malformed or out-of-range values are what they always were.
        let mut n = secondary();
        assert!(matches!(
            n.apply_response("MaxConnections", "many"),
            Err(NegotiationError::Malformed { .. })
        ));
        let mut n = secondary();
        assert_eq!(
            n.apply_response("MaxConnections", "0"),
            Err(NegotiationError::OutOfRange {
                key: Key::MaxConnections,
                value: 0
            })
        );
        let mut n = secondary();
        assert!(matches!(
            n.apply_response("ImmediateData", "Maybe"),
            Err(NegotiationError::Malformed { .. })
        ));
        // A repeat is still a duplicate, even of an accepted offer.
        let mut n = secondary();
        n.apply_response("MaxConnections", "4").unwrap();
        assert_eq!(
            n.apply_response("MaxConnections", "4"),
            Err(NegotiationError::Duplicate {
                key: Key::MaxConnections
            })
        );
    }

    /// Keys the leading login never negotiated have their RFC default as the
    /// session's value, and offers are negotiated against it.
    #[test]
    fn secondary_negotiates_keys_the_session_never_negotiated_against_their_default() {
        // iSCSIProtocolLevel was not offered on the leading login (0); min keeps 0.
        let mut n = secondary();
        let r = n.apply_response("iSCSIProtocolLevel", "0").unwrap();
        assert_eq!(answer_text(r), "iSCSIProtocolLevel=0\0");
        let mut n = secondary();
        let r = n.apply_response("iSCSIProtocolLevel", "2").unwrap();
        assert_eq!(answer_text(r), "iSCSIProtocolLevel=0\0");
        assert_eq!(n.finish().map(|p| p.protocol_level), Ok(0));
        let mut n = secondary();
        assert_eq!(
            n.apply_response("iSCSIProtocolLevel", "32"),
            Err(NegotiationError::OutOfRange {
                key: Key::ProtocolLevel,
                value: 32
            })
        );
        // RDMAExtensions: No over TCP, and AND keeps it No.
        let mut n = secondary();
        let r = n.apply_response("RDMAExtensions", "No").unwrap();
        assert_eq!(answer_text(r), "RDMAExtensions=No\0");
        // TaskReporting: a list without RFC3720 cannot give RFC3720.
        let mut n = secondary();
        let e = n
            .apply_response("TaskReporting", "ResponseFence")
            .unwrap_err();
        assert_eq!(
            e,
            NegotiationError::LeadingOnlyChanged {
                key: Key::TaskReporting,
                session: Local::List("RFC3720"),
                offered: None,
            }
        );
        assert_eq!(
            std::format!("{e}"),
            "target offered a TaskReporting list without the session's RFC3720 on a \
             non-leading connection (leading-only: only the leading login sets it)"
        );
        let mut n = secondary();
        assert!(matches!(
            n.apply_response("TaskReporting", "RFC3720,,x"),
            Err(NegotiationError::Malformed { .. })
        ));
        // An unsolicited special value still answers nothing of ours.
        let mut n = secondary();
        assert_eq!(
            n.apply_response("MaxConnections", "Irrelevant"),
            Ok(Reply::Nothing)
        );
        // SessionType stays a declaration: the same type passes, another fails.
        let mut n = secondary();
        assert_eq!(
            n.apply_response("SessionType", "Normal"),
            Ok(Reply::Nothing)
        );
        assert_eq!(n.finish().map(|p| p.session_type), Ok(SessionType::Normal));
        let mut n = secondary();
        assert_eq!(
            n.apply_response("SessionType", "Discovery"),
            Err(NegotiationError::SessionTypeMismatch)
        );
    }

    /// The leading login is unchanged: a leading-only key the target offers there
    /// is negotiated, not compared.
    #[test]
    fn leading_login_still_negotiates_leading_only_offers() {
        let mut n = offered(normal());
        let r = n.apply_response("TaskReporting", "RFC3720").unwrap();
        assert_eq!(answer_text(r), "TaskReporting=RFC3720\0");
        let mut n = Negotiator::new(normal()).unwrap();
        offer(&mut n, Stage::Security);
        // Not offered yet: the target's MaxConnections is an offer, answered by min.
        let r = n.apply_response("MaxConnections", "4").unwrap();
        assert_eq!(answer_text(r), "MaxConnections=1\0");
    }

    #[test]
    fn offer_resumes_after_buffer_full() {
        let mut n = Negotiator::new(normal()).unwrap();
        let mut small = [0u8; 100];
        let mut w = TextWriter::new(&mut small);
        assert!(matches!(
            n.write_offer(Stage::Operational, &mut w),
            Err(NegotiationError::Text(TextError::BufferFull { .. }))
        ));
        let first: Vec<_> = text::pairs(w.as_bytes()).map(|p| p.unwrap().0).collect();
        assert!(!first.is_empty());
        let rest = offer(&mut n, Stage::Operational);
        for (k, _) in &rest {
            assert!(!first.contains(&k.as_str()), "{k} offered twice");
        }
        assert_eq!(first.len() + rest.len(), 17);
    }

    #[test]
    fn proposal_validation() {
        let bad = |f: fn(&mut Proposal<'static>), key| {
            let mut p = normal();
            f(&mut p);
            assert_eq!(
                Negotiator::new(p).err(),
                Some(NegotiationError::InvalidProposal { key })
            );
        };
        bad(|p| p.initiator_name = "", Key::InitiatorName);
        bad(|p| p.target_name = None, Key::TargetName);
        bad(
            |p| p.max_recv_data_segment_len = 511,
            Key::MaxRecvDataSegmentLength,
        );
        bad(|p| p.max_burst_len = 1 << 24, Key::MaxBurstLength);
        bad(|p| p.first_burst_len = 300_000, Key::FirstBurstLength);
        bad(|p| p.max_connections = 0, Key::MaxConnections);
        bad(|p| p.max_outstanding_r2t = 0, Key::MaxOutstandingR2T);
        bad(|p| p.default_time2wait = 3601, Key::DefaultTime2Wait);
        bad(|p| p.error_recovery_level = 3, Key::ErrorRecoveryLevel);
        bad(|p| p.protocol_level = 32, Key::ProtocolLevel);
        assert!(Negotiator::new(Proposal::discovery(INAME)).is_ok());
    }

    /// What LIO answers to open-iscsi-like offers (captured shape, values ours).
    #[test]
    fn lio_like_login() {
        let mut p = normal();
        p.auth = AuthOffer::Chap;
        p.header_digest = DigestOffer::PreferCrc32c;
        p.data_digest = DigestOffer::PreferNone;
        p.initial_r2t = false;
        p.max_recv_data_segment_len = 262_144;
        p.max_burst_len = 16_776_192;
        p.first_burst_len = 262_144;
        p.protocol_level = 1;
        let mut n = Negotiator::new(p).unwrap();
        offer(&mut n, Stage::Security);
        assert_eq!(n.auth_method(), None);
        for (k, v) in [("TargetPortalGroupTag", "1"), ("AuthMethod", "CHAP")] {
            assert_eq!(n.apply_response(k, v), Ok(Reply::Nothing));
        }
        assert_eq!(n.auth_method(), Some(AuthMethod::Chap));
        for (k, v) in [("CHAP_A", "5"), ("CHAP_I", "1"), ("CHAP_C", "0x00")] {
            assert_eq!(n.apply_response(k, v), Ok(Reply::Auth));
        }
        offer(&mut n, Stage::Operational);
        let response = b"HeaderDigest=CRC32C\0DataDigest=None\0MaxConnections=1\0\
InitialR2T=No\0ImmediateData=Yes\0MaxRecvDataSegmentLength=65536\0MaxBurstLength=262144\0\
FirstBurstLength=65536\0DefaultTime2Wait=2\0DefaultTime2Retain=20\0MaxOutstandingR2T=1\0\
DataPDUInOrder=Yes\0DataSequenceInOrder=Yes\0ErrorRecoveryLevel=0\0\
iSCSIProtocolLevel=NotUnderstood\0";
        for pair in text::pairs(response) {
            let (k, v) = pair.unwrap();
            assert_eq!(n.apply_response(k, v), Ok(Reply::Nothing), "{k}");
        }
        assert!(n.unanswered().is_empty());
        let s = n.finish().unwrap();
        assert_eq!(s.auth_method, AuthMethod::Chap);
        assert_eq!(s.header_digest, Digest::Crc32c);
        assert_eq!(s.data_digest, Digest::None);
        assert!(!s.initial_r2t);
        assert!(s.immediate_data);
        assert_eq!(s.max_recv_data_segment_len, 262_144);
        assert_eq!(s.max_xmit_data_segment_len, 65_536);
        assert_eq!(s.max_burst_len, 262_144);
        assert_eq!(s.first_burst_len, 65_536);
        assert_eq!(s.protocol_level, 0);
        assert_eq!(s.target_portal_group_tag, Some(1));
    }

    #[test]
    fn min_keys_reject_answers_above_offer() {
        for (key, offered_v, ok, too_big) in [
            ("MaxConnections", 8u64, 2u64, 9u64),
            ("MaxBurstLength", 65_536, 8192, 65_537),
            ("FirstBurstLength", 16_384, 512, 16_385),
            ("DefaultTime2Retain", 20, 0, 21),
            ("MaxOutstandingR2T", 4, 1, 5),
            ("ErrorRecoveryLevel", 1, 0, 2),
            ("iSCSIProtocolLevel", 1, 0, 2),
        ] {
            let mut p = normal();
            p.max_connections = 8;
            p.max_burst_len = 65_536;
            p.first_burst_len = 16_384;
            p.max_outstanding_r2t = 4;
            p.error_recovery_level = 1;
            p.protocol_level = 1;
            let k = Key::from_name(key).unwrap();
            let mut n = offered(p);
            assert_eq!(
                n.apply_response(key, &std::format!("{too_big}")),
                Err(NegotiationError::ResultViolated {
                    key: k,
                    offered: offered_v,
                    answered: too_big
                }),
                "{key}"
            );
            let mut n = offered(p);
            n.apply_response(key, &std::format!("{ok}")).unwrap();
            let mut n2 = offered(p);
            n2.apply_response(key, &std::format!("{offered_v}"))
                .unwrap();
            let (a, b) = (n.finish().unwrap(), n2.finish().unwrap());
            assert_ne!(a, b, "{key} result not recorded");
        }
    }

    #[test]
    fn max_key_time2wait() {
        let mut p = normal();
        p.default_time2wait = 5;
        let mut n = offered(p);
        assert_eq!(
            n.apply_response("DefaultTime2Wait", "4"),
            Err(NegotiationError::ResultViolated {
                key: Key::DefaultTime2Wait,
                offered: 5,
                answered: 4
            })
        );
        let mut n = offered(p);
        n.apply_response("DefaultTime2Wait", "0x3c").unwrap();
        assert_eq!(n.finish().unwrap().default_time2wait, 60);
    }

    #[test]
    fn out_of_range_answers() {
        for (key, v) in [
            ("MaxRecvDataSegmentLength", "511"),
            ("MaxRecvDataSegmentLength", "16777216"),
            ("MaxBurstLength", "511"),
            ("FirstBurstLength", "100"),
            ("MaxConnections", "0"),
            ("MaxOutstandingR2T", "0"),
            ("DefaultTime2Wait", "3601"),
            ("DefaultTime2Retain", "3601"),
            ("ErrorRecoveryLevel", "3"),
            ("TargetPortalGroupTag", "65536"),
            ("iSCSIProtocolLevel", "32"),
        ] {
            let mut p = normal();
            p.protocol_level = 31;
            let mut n = offered(p);
            let k = Key::from_name(key).unwrap();
            let value = text::parse_number(v).unwrap();
            assert_eq!(
                n.apply_response(key, v),
                Err(NegotiationError::OutOfRange { key: k, value }),
                "{key}={v}"
            );
        }
    }

    #[test]
    fn malformed_answers() {
        for (key, v, err) in [
            ("MaxBurstLength", "lots", TextError::InvalidNumber),
            ("MaxBurstLength", "", TextError::EmptyValue),
            (
                "MaxBurstLength",
                "99999999999999999999",
                TextError::NumberOverflow,
            ),
            ("InitialR2T", "yes", TextError::InvalidBoolean),
            ("ImmediateData", "1", TextError::InvalidBoolean),
            ("MaxRecvDataSegmentLength", "None", TextError::InvalidNumber),
        ] {
            let mut n = offered(normal());
            let k = Key::from_name(key).unwrap();
            assert_eq!(
                n.apply_response(key, v),
                Err(NegotiationError::Malformed { key: k, error: err }),
                "{key}={v}"
            );
        }
    }

    #[test]
    fn boolean_result_functions() {
        // OR: our Yes cannot come back No; our No may come back either way.
        let mut p = normal();
        p.data_pdu_in_order = true;
        p.initial_r2t = false;
        let mut n = offered(p);
        assert_eq!(
            n.apply_response("DataPDUInOrder", "No"),
            Err(NegotiationError::BooleanViolated {
                key: Key::DataPduInOrder,
                offered: true,
                answered: false
            })
        );
        let mut n = offered(p);
        n.apply_response("InitialR2T", "Yes").unwrap();
        assert!(n.finish().unwrap().initial_r2t);
        // AND: our No cannot come back Yes; our Yes may come back No.
        let mut p = normal();
        p.immediate_data = false;
        let mut n = offered(p);
        assert_eq!(
            n.apply_response("ImmediateData", "Yes"),
            Err(NegotiationError::BooleanViolated {
                key: Key::ImmediateData,
                offered: false,
                answered: true
            })
        );
        let mut n = offered(normal());
        n.apply_response("ImmediateData", "No").unwrap();
        assert!(!n.finish().unwrap().immediate_data);
    }

    #[test]
    fn list_answers_must_be_one_offered_value() {
        let mut p = normal();
        p.header_digest = DigestOffer::Crc32c;
        for (v, want) in [
            ("CRC32C", Ok(Reply::Nothing)),
            (
                "None",
                Err(NegotiationError::NotOffered {
                    key: Key::HeaderDigest,
                }),
            ),
            (
                "CRC32C,None",
                Err(NegotiationError::NotOffered {
                    key: Key::HeaderDigest,
                }),
            ),
            (
                "crc32c",
                Err(NegotiationError::NotOffered {
                    key: Key::HeaderDigest,
                }),
            ),
            (
                "MD5",
                Err(NegotiationError::NotOffered {
                    key: Key::HeaderDigest,
                }),
            ),
        ] {
            let mut n = offered(p);
            assert_eq!(n.apply_response("HeaderDigest", v), want, "{v}");
        }
        let mut n = offered(normal());
        assert_eq!(
            n.apply_response("AuthMethod", "SRP"),
            Err(NegotiationError::NotOffered {
                key: Key::AuthMethod
            })
        );
        let mut n = offered(normal());
        assert_eq!(
            n.apply_response("AuthMethod", "CHAP"),
            Err(NegotiationError::NotOffered {
                key: Key::AuthMethod
            })
        );
    }

    #[test]
    fn reject_and_irrelevant_fall_back_to_defaults() {
        let mut p = normal();
        p.auth = AuthOffer::ChapOrNone;
        p.max_burst_len = 65_536;
        p.first_burst_len = 65_536;
        p.header_digest = DigestOffer::PreferCrc32c;
        let mut n = offered(p);
        n.apply_response("AuthMethod", "Reject").unwrap();
        assert_eq!(n.auth_method(), Some(AuthMethod::None));
        n.apply_response("MaxBurstLength", "Reject").unwrap();
        n.apply_response("FirstBurstLength", "Irrelevant").unwrap();
        n.apply_response("HeaderDigest", "Irrelevant").unwrap();
        let s = n.finish().unwrap();
        assert_eq!(s.auth_method, AuthMethod::None);
        assert_eq!(s.max_burst_len, 262_144);
        assert_eq!(s.first_burst_len, 65_536);
        assert_eq!(s.header_digest, Digest::None);
        // A digest offer answered Reject refuses None as well (istgt with
        // `UseDigest Header Data`): the login fails rather than fall back.
        for offer in [DigestOffer::PreferCrc32c, DigestOffer::None] {
            let mut p = normal();
            p.header_digest = offer;
            p.data_digest = offer;
            let mut n = offered(p);
            assert_eq!(
                n.apply_response("HeaderDigest", "Reject"),
                Err(NegotiationError::Rejected {
                    key: Key::HeaderDigest
                })
            );
            assert_eq!(
                n.apply_response("DataDigest", "Reject"),
                Err(NegotiationError::Rejected {
                    key: Key::DataDigest
                })
            );
        }
        // When the default is not in our offer, Reject fails the login.
        let mut p = normal();
        p.auth = AuthOffer::Chap;
        p.data_digest = DigestOffer::Crc32c;
        let mut n = offered(p);
        assert_eq!(
            n.apply_response("AuthMethod", "Reject"),
            Err(NegotiationError::Rejected {
                key: Key::AuthMethod
            })
        );
        assert_eq!(
            n.apply_response("DataDigest", "Reject"),
            Err(NegotiationError::Rejected {
                key: Key::DataDigest
            })
        );
    }

    #[test]
    fn not_understood_answers() {
        let mut p = normal();
        p.protocol_level = 1;
        let mut n = offered(p);
        assert_eq!(
            n.apply_response("iSCSIProtocolLevel", "NotUnderstood"),
            Ok(Reply::Nothing)
        );
        assert_eq!(n.finish().unwrap().protocol_level, 0);
        assert_eq!(
            n.apply_response("MaxBurstLength", "NotUnderstood"),
            Err(NegotiationError::NotUnderstood {
                key: Key::MaxBurstLength
            })
        );
        let mut n = offered(p);
        n.apply_response("iSCSIProtocolLevel", "1").unwrap();
        assert_eq!(n.finish().unwrap().protocol_level, 1);
    }

    #[test]
    fn unknown_keys_get_not_understood() {
        let mut n = offered(normal());
        for key in [
            "X-com.example.Foo",
            "X#Registered",
            "FutureKey",
            "InitiatorRecvDataSegmentLength",
        ] {
            let r = n.apply_response(key, "1").unwrap();
            assert_eq!(
                r,
                Reply::Answer {
                    key,
                    value: ReplyValue::Text("NotUnderstood")
                }
            );
            let mut buf = [0u8; 128];
            let mut w = TextWriter::new(&mut buf);
            r.write_to(&mut w).unwrap();
            assert_eq!(
                w.as_bytes(),
                std::format!("{key}=NotUnderstood\0").as_bytes()
            );
        }
        // A special value is never answered.
        for v in ["NotUnderstood", "Reject", "Irrelevant"] {
            assert_eq!(n.apply_response("X-vendor", v), Ok(Reply::Nothing));
        }
    }

    #[test]
    fn target_initiated_keys_are_answered() {
        let mut p = normal();
        p.header_digest = DigestOffer::PreferCrc32c;
        p.max_burst_len = 131_072;
        p.first_burst_len = 65_536;
        p.initial_r2t = false;
        p.error_recovery_level = 2;
        // Only the security stage was offered; the target proposes operational keys.
        let mut n = Negotiator::new(p).unwrap();
        offer(&mut n, Stage::Security);
        let answer = |n: &mut Negotiator<'_>, k: &'static str, v: &'static str| match n
            .apply_response(k, v)
        {
            Ok(Reply::Answer { key, value }) => {
                assert_eq!(key, k);
                value
            }
            other => panic!("{k}: {other:?}"),
        };
        // List: first value of the *target's* list that we support.
        assert_eq!(
            answer(&mut n, "HeaderDigest", "None,CRC32C"),
            ReplyValue::Text("None")
        );
        assert_eq!(
            answer(&mut n, "DataDigest", "CRC32C"),
            ReplyValue::Text("Reject")
        );
        assert_eq!(
            answer(&mut n, "MaxBurstLength", "262144"),
            ReplyValue::Number(131_072)
        );
        assert_eq!(
            answer(&mut n, "FirstBurstLength", "8192"),
            ReplyValue::Number(8192)
        );
        assert_eq!(
            answer(&mut n, "DefaultTime2Wait", "1"),
            ReplyValue::Number(2)
        );
        assert_eq!(answer(&mut n, "InitialR2T", "No"), ReplyValue::Bool(false));
        assert_eq!(
            answer(&mut n, "ImmediateData", "No"),
            ReplyValue::Bool(false)
        );
        assert_eq!(
            answer(&mut n, "DataSequenceInOrder", "No"),
            ReplyValue::Bool(true)
        );
        assert_eq!(
            answer(&mut n, "ErrorRecoveryLevel", "1"),
            ReplyValue::Number(1)
        );
        assert_eq!(
            answer(&mut n, "iSCSIProtocolLevel", "2"),
            ReplyValue::Number(0)
        );
        assert_eq!(
            answer(&mut n, "TaskReporting", "ResponseFence,RFC3720"),
            ReplyValue::Text("RFC3720")
        );
        assert_eq!(
            answer(&mut n, "RDMAExtensions", "Yes"),
            ReplyValue::Bool(false)
        );
        assert_eq!(
            answer(&mut n, "IFMarker", "Yes"),
            ReplyValue::Text("Reject")
        );
        assert_eq!(
            answer(&mut n, "OFMarkInt", "1~65535"),
            ReplyValue::Text("Reject")
        );
        assert_eq!(
            n.apply_response("MaxOutstandingR2T", "0"),
            Err(NegotiationError::OutOfRange {
                key: Key::MaxOutstandingR2T,
                value: 0
            })
        );
        let s = n.finish().unwrap();
        assert_eq!(s.header_digest, Digest::None);
        assert_eq!(s.max_burst_len, 131_072);
        assert_eq!(s.first_burst_len, 8192);
        assert!(!s.initial_r2t && !s.immediate_data);
        assert!(s.data_sequence_in_order);
        assert_eq!(s.error_recovery_level, 1);
    }

    #[test]
    fn declarations_from_target() {
        let mut n = offered(normal());
        for (k, v) in [
            ("TargetAlias", "LIO Target"),
            ("TargetAddress", "10.0.0.1:3260,1"),
            ("TargetAddress", "[fe80::1]:3260,1"),
            ("TargetName", TNAME),
            ("SessionType", "Normal"),
        ] {
            assert_eq!(n.apply_response(k, v), Ok(Reply::Nothing), "{k}");
        }
        n.apply_response("MaxRecvDataSegmentLength", "0x1000")
            .unwrap();
        n.apply_response("TargetPortalGroupTag", "7").unwrap();
        let s = n.finish().unwrap();
        assert_eq!(s.max_xmit_data_segment_len, 4096);
        assert_eq!(s.max_recv_data_segment_len, 8192);
        assert_eq!(s.target_portal_group_tag, Some(7));
    }

    #[test]
    fn initiator_only_keys_and_session_type_from_target() {
        for (k, v, e) in [
            (
                "InitiatorName",
                "iqn.x",
                NegotiationError::NotAllowedFromTarget {
                    key: Key::InitiatorName,
                },
            ),
            (
                "InitiatorAlias",
                "x",
                NegotiationError::NotAllowedFromTarget {
                    key: Key::InitiatorAlias,
                },
            ),
            (
                "SendTargets",
                "All",
                NegotiationError::NotAllowedFromTarget {
                    key: Key::SendTargets,
                },
            ),
            (
                "SessionType",
                "Discovery",
                NegotiationError::SessionTypeMismatch,
            ),
        ] {
            let mut n = offered(normal());
            assert_eq!(n.apply_response(k, v), Err(e), "{k}");
        }
    }

    #[test]
    fn duplicate_keys_are_fatal() {
        for (k, v) in [
            ("MaxBurstLength", "8192"),
            ("HeaderDigest", "None"),
            ("MaxRecvDataSegmentLength", "8192"),
            ("TargetPortalGroupTag", "1"),
            ("TargetAlias", "a"),
            ("FirstBurstLength", "Irrelevant"),
        ] {
            let mut n = offered(normal());
            n.apply_response(k, v).unwrap();
            let key = Key::from_name(k).unwrap();
            assert_eq!(
                n.apply_response(k, v),
                Err(NegotiationError::Duplicate { key }),
                "{k}"
            );
        }
    }

    #[test]
    fn discovery_session_answers_irrelevant() {
        let mut n = Negotiator::new(Proposal::discovery(INAME)).unwrap();
        offer(&mut n, Stage::Security);
        offer(&mut n, Stage::Operational);
        for k in [
            "MaxBurstLength",
            "InitialR2T",
            "MaxConnections",
            "DataPDUInOrder",
        ] {
            assert_eq!(
                n.apply_response(k, "1"),
                Ok(Reply::Answer {
                    key: k,
                    value: ReplyValue::Text("Irrelevant")
                })
            );
        }
        n.apply_response("MaxRecvDataSegmentLength", "32768")
            .unwrap();
        n.apply_response("HeaderDigest", "None").unwrap();
        n.apply_response("DataDigest", "None").unwrap();
        n.apply_response("AuthMethod", "None").unwrap();
        let s = n.finish().unwrap();
        assert_eq!(s.session_type, SessionType::Discovery);
        assert_eq!(s.max_xmit_data_segment_len, 32768);
        assert_eq!(s.max_burst_len, 262_144);
    }

    #[test]
    fn unanswered_keys_resolve_per_rfc() {
        let mut p = normal();
        p.immediate_data = false; // AND with No: decided by our offer
        p.data_sequence_in_order = true; // OR with Yes: decided by our offer
        p.initial_r2t = false; // OR with No: needs an answer; default Yes
        p.max_burst_len = 65_536; // min: needs an answer; default 262144
        p.first_burst_len = 65_536;
        let n = offered(p);
        let missing = n.unanswered();
        assert!(missing.contains(Key::ImmediateData));
        assert!(missing.contains(Key::AuthMethod));
        assert!(!missing.contains(Key::MaxRecvDataSegmentLength));
        assert!(!missing.contains(Key::InitiatorName));
        let s = n.finish().unwrap();
        assert!(!s.immediate_data);
        assert!(s.data_sequence_in_order);
        assert!(s.initial_r2t);
        assert_eq!(s.max_burst_len, 262_144);
        assert_eq!(s.auth_method, AuthMethod::None);
        // Required CHAP or CRC32C never answered: fail.
        let mut p = normal();
        p.auth = AuthOffer::Chap;
        assert_eq!(
            offered(p).finish(),
            Err(NegotiationError::NoResponse {
                key: Key::AuthMethod
            })
        );
        let mut p = normal();
        p.header_digest = DigestOffer::Crc32c;
        let mut n = offered(p);
        n.apply_response("AuthMethod", "None").unwrap();
        assert_eq!(
            n.finish(),
            Err(NegotiationError::NoResponse {
                key: Key::HeaderDigest
            })
        );
    }

    #[test]
    fn first_burst_never_exceeds_max_burst() {
        // Both answered, inconsistent: error.
        let mut n = offered(normal());
        n.apply_response("MaxBurstLength", "16384").unwrap();
        n.apply_response("FirstBurstLength", "65536").unwrap();
        assert_eq!(
            n.finish(),
            Err(NegotiationError::FirstBurstExceedsMaxBurst {
                first_burst_len: 65_536,
                max_burst_len: 16_384
            })
        );
        // FirstBurstLength only defaulted: clamped.
        let mut n = offered(normal());
        n.apply_response("MaxBurstLength", "16384").unwrap();
        assert_eq!(n.finish().unwrap().first_burst_len, 16_384);
        // Irrelevant (InitialR2T=Yes, ImmediateData=No): left alone.
        let mut p = normal();
        p.immediate_data = false;
        let mut n = offered(p);
        n.apply_response("MaxBurstLength", "16384").unwrap();
        n.apply_response("FirstBurstLength", "Irrelevant").unwrap();
        assert!(n.finish().is_ok());
    }

    #[test]
    fn chap_keys_go_to_auth() {
        let mut n = offered(normal());
        for k in ["CHAP_A", "CHAP_I", "CHAP_C", "CHAP_N", "CHAP_R", "CHAP_X"] {
            assert_eq!(n.apply_response(k, "x"), Ok(Reply::Auth));
        }
    }

    #[test]
    fn generic_responder_rules() {
        let r = |k, offered: &'static str, ours| respond(k, offered, ours);
        // List: offer order wins, not ours.
        assert_eq!(
            r(Key::HeaderDigest, "CRC32C,None", Local::List("None,CRC32C")),
            Ok(Some(ReplyValue::Text("CRC32C")))
        );
        assert_eq!(
            r(
                Key::AuthMethod,
                "KRB5,SRP,CHAP,None",
                Local::List("None,CHAP")
            ),
            Ok(Some(ReplyValue::Text("CHAP")))
        );
        assert_eq!(
            r(Key::DataDigest, "CRC32C", Local::List("None")),
            Ok(Some(ReplyValue::Text("Reject")))
        );
        assert_eq!(
            r(Key::DataDigest, "CRC32C,,None", Local::List("None")),
            Err(NegotiationError::Malformed {
                key: Key::DataDigest,
                error: TextError::EmptyListItem
            })
        );
        assert_eq!(
            r(Key::MaxBurstLength, "262144", Local::Number(65536)),
            Ok(Some(ReplyValue::Number(65536)))
        );
        assert_eq!(
            r(Key::DefaultTime2Wait, "0", Local::Number(2)),
            Ok(Some(ReplyValue::Number(2)))
        );
        assert_eq!(
            r(Key::ImmediateData, "Yes", Local::Bool(false)),
            Ok(Some(ReplyValue::Bool(false)))
        );
        assert_eq!(
            r(Key::InitialR2T, "No", Local::Bool(true)),
            Ok(Some(ReplyValue::Bool(true)))
        );
        assert_eq!(
            r(Key::MaxRecvDataSegmentLength, "8192", Local::Number(1)),
            Ok(None)
        );
        assert_eq!(
            r(Key::OfMarker, "Yes", Local::Bool(false)),
            Ok(Some(ReplyValue::Text("Reject")))
        );
        assert_eq!(
            r(Key::MaxBurstLength, "Yes", Local::Bool(true)),
            Err(NegotiationError::InvalidProposal {
                key: Key::MaxBurstLength
            })
        );
        assert_eq!(
            r(Key::ErrorRecoveryLevel, "5", Local::Number(0)),
            Err(NegotiationError::OutOfRange {
                key: Key::ErrorRecoveryLevel,
                value: 5
            })
        );
    }

    #[test]
    fn reply_values_write() {
        let mut buf = [0u8; 128];
        let mut w = TextWriter::new(&mut buf);
        Reply::Answer {
            key: "MaxBurstLength",
            value: ReplyValue::Number(512),
        }
        .write_to(&mut w)
        .unwrap();
        Reply::Answer {
            key: "InitialR2T",
            value: ReplyValue::Bool(true),
        }
        .write_to(&mut w)
        .unwrap();
        Reply::Nothing.write_to(&mut w).unwrap();
        Reply::Auth.write_to(&mut w).unwrap();
        assert_eq!(w.as_bytes(), b"MaxBurstLength=512\0InitialR2T=Yes\0");
    }

    #[test]
    fn errors_display() {
        let e = NegotiationError::ResultViolated {
            key: Key::MaxBurstLength,
            offered: 512,
            answered: 1024,
        };
        let s = std::format!("{e}");
        assert!(s.contains("MaxBurstLength") && s.contains("1024"), "{s}");
    }

    proptest::proptest! {
        #[test]
        fn hostile_responses_never_panic_and_respect_min(
            pairs in proptest::collection::vec(
                (proptest::sample::select(&Key::ALL[..]), "[0-9A-Za-z,~]{0,12}"),
                0..40,
            )
        ) {
            let mut p = normal();
            p.max_burst_len = 65_536;
            p.first_burst_len = 8192;
            p.max_connections = 2;
            let mut n = offered(p);
            for (k, v) in &pairs {
                if n.apply_response(k.name(), v).is_err() {
                    break;
                }
            }
            if let Ok(s) = n.finish() {
                proptest::prop_assert!(s.max_burst_len <= 262_144);
                proptest::prop_assert!(s.first_burst_len <= s.max_burst_len || (s.initial_r2t && !s.immediate_data));
                proptest::prop_assert!(s.max_connections <= 2);
                proptest::prop_assert!(s.error_recovery_level == 0);
            }
        }
    }
}
