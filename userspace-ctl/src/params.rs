//! Small value types shared by the command line and the config file: digests, CHAP
//! algorithms, auth method, session type, queue depth, connection count and
//! `--param Key=Value`.
//!
//! Each has one parser used by both front ends, so `--header-digest crc32c` and
//! `HeaderDigest = CRC32C` cannot drift apart. These are the user's wishes only;
//! what goes on the wire is decided by iscsi-proto's negotiation.

use std::fmt;

use clap::ValueEnum;

/// HeaderDigest / DataDigest wish (RFC 7143 §13.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Digest {
    None,
    Crc32c,
}

impl Digest {
    /// Case-insensitive, for the config file (`CRC32C`, `None`).
    pub fn parse(s: &str) -> Result<Digest, String> {
        <Digest as ValueEnum>::from_str(s, true)
            .map_err(|_| format!("{s:?} is not a digest (expected None or CRC32C)"))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Digest::None => "None",
            Digest::Crc32c => "CRC32C",
        })
    }
}

/// A CHAP hash the initiator may offer in CHAP_A (RFC 7143 §12.1.3, plus the
/// SHA-1/SHA-256/SHA3-256 entries of the IANA CHAP registry). Wire numbers are iscsi-proto's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChapAlg {
    #[value(name = "sha256", alias = "sha-256")]
    Sha256,
    #[value(name = "sha3-256", alias = "sha3_256")]
    Sha3_256,
    #[value(name = "sha1", alias = "sha-1")]
    Sha1,
    #[value(name = "md5")]
    Md5,
}

impl ChapAlg {
    /// Offer order when nothing is configured: strongest first, MD5 last so targets
    /// that only know MD5 still work.
    pub const DEFAULT_OFFER: [ChapAlg; 4] = [
        ChapAlg::Sha256,
        ChapAlg::Sha3_256,
        ChapAlg::Sha1,
        ChapAlg::Md5,
    ];
}

impl fmt::Display for ChapAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChapAlg::Sha256 => "sha256",
            ChapAlg::Sha3_256 => "sha3-256",
            ChapAlg::Sha1 => "sha1",
            ChapAlg::Md5 => "md5",
        })
    }
}

/// An ordered, non-empty CHAP_A offer without repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChapAlgs(pub Vec<ChapAlg>);

impl ChapAlgs {
    /// Parses `sha256,sha3-256,sha1,md5` (any subset, any order, case-insensitive).
    pub fn parse(s: &str) -> Result<ChapAlgs, String> {
        let mut algs = Vec::new();
        for item in s.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(format!("{s:?} has an empty entry (write e.g. sha256,md5)"));
            }
            let alg = <ChapAlg as ValueEnum>::from_str(item, true).map_err(|_| {
                format!("{item:?} is not a CHAP algorithm (expected sha256, sha3-256, sha1 or md5)")
            })?;
            if algs.contains(&alg) {
                return Err(format!("{alg} is listed twice"));
            }
            algs.push(alg);
        }
        Ok(ChapAlgs(algs))
    }
}

impl Default for ChapAlgs {
    fn default() -> Self {
        ChapAlgs(ChapAlg::DEFAULT_OFFER.to_vec())
    }
}

impl fmt::Display for ChapAlgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            a.fmt(f)?;
        }
        Ok(())
    }
}

/// AuthMethod wish (RFC 7143 §12.1); SRP and Kerberos are not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMethod {
    None,
    Chap,
}

impl AuthMethod {
    /// Case-insensitive, for the config file.
    pub fn parse(s: &str) -> Result<AuthMethod, String> {
        <AuthMethod as ValueEnum>::from_str(s, true)
            .map_err(|_| format!("{s:?} is not an auth method (expected None or CHAP)"))
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthMethod::None => "None",
            AuthMethod::Chap => "CHAP",
        })
    }
}

/// SessionType (RFC 7143 §13.21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum SessionType {
    #[default]
    Normal,
    Discovery,
}

impl SessionType {
    /// Case-insensitive, for the config file.
    pub fn parse(s: &str) -> Result<SessionType, String> {
        <SessionType as ValueEnum>::from_str(s, true)
            .map_err(|_| format!("{s:?} is not a session type (expected Normal or Discovery)"))
    }
}

impl fmt::Display for SessionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionType::Normal => "Normal",
            SessionType::Discovery => "Discovery",
        })
    }
}

/// When a target is logged in: `startup = automatic` blocks at boot
/// (`iscsictl login --startup automatic`, run by iscsi-rs-login.service),
/// `manual` ones only when asked (open-iscsi's node.startup).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Startup {
    #[default]
    Manual,
    Automatic,
}

impl Startup {
    /// Case-insensitive, for the config file.
    pub fn parse(s: &str) -> Result<Startup, String> {
        <Startup as ValueEnum>::from_str(s, true)
            .map_err(|_| format!("{s:?} is not a startup mode (expected automatic or manual)"))
    }
}

impl fmt::Display for Startup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Startup::Manual => "manual",
            Startup::Automatic => "automatic",
        })
    }
}

/// Queue depth (iscontrol's `tags`): commands in flight per session, 1..=65535.
pub fn parse_queue_depth(s: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a number"));
    }
    match s.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("queue depth {s} is out of range 1..65535")),
        Ok(n) => Ok(n),
    }
}

/// Most connections a session gets by default, however many CPUs there are.
pub const DEFAULT_CONNECTIONS_MAX: u16 = 16;
const _: () = assert!(DEFAULT_CONNECTIONS_MAX <= iscsi_proto::uapi::MAX_CONNECTIONS);

/// The connection count of a session nobody chose one for, on a machine with
/// `cpus` online CPUs: one per CPU (blk-mq makes at most one hardware queue
/// per CPU, so more would carry nothing), at most [`DEFAULT_CONNECTIONS_MAX`].
/// The target's MaxConnections then bounds it like any other count.
pub fn default_connections(cpus: usize) -> u16 {
    u16::try_from(cpus)
        .unwrap_or(u16::MAX)
        .clamp(1, DEFAULT_CONNECTIONS_MAX)
}

/// This machine's online CPUs as [`default_connections`] counts them
/// (`std::thread::available_parallelism`: CPUs this process may run on; 1
/// when that cannot be told).
pub fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// How many connections a login asks for, and whether someone chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connections {
    /// `--connections`, the config's `connections`, or a recipe repeating a
    /// session's lanes: a target that allows fewer is worth a notice.
    Asked(u16),
    /// Nobody said ([`default_connections`]): quietly as many as the target
    /// allows, so a target answering MaxConnections=1 gets one, as it always did.
    Default(u16),
}

impl Connections {
    /// The count wanted.
    pub fn count(self) -> u16 {
        match self {
            Connections::Asked(n) | Connections::Default(n) => n,
        }
    }

    /// Whether the count was chosen rather than defaulted.
    pub fn asked(self) -> bool {
        matches!(self, Connections::Asked(_))
    }
}

/// Parses a connection count (`--connections`, config `connections`,
/// recipe `Connections`): 1..=16, the kernel's lane limit.
pub fn parse_connections(s: &str) -> Result<u16, String> {
    let max = iscsi_proto::uapi::MAX_CONNECTIONS;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a number"));
    }
    match s.parse::<u16>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("connections {s} is out of range 1..{max}")),
    }
}

/// Keys with their own option or owned by the login machinery: setting them with
/// `--param` would bypass validation or contradict the dedicated option.
const RESERVED_KEYS: &[(&str, &str)] = &[
    ("InitiatorName", "use --initiator-name"),
    ("TargetName", "use -t"),
    ("SessionType", "it follows from the command"),
    ("HeaderDigest", "use --header-digest"),
    ("DataDigest", "use --data-digest"),
    ("AuthMethod", "use --chap-user/--chap-secret-file"),
    ("CHAP_A", "use --chap-algs"),
    ("CHAP_I", "it is part of the CHAP exchange"),
    ("CHAP_C", "it is part of the CHAP exchange"),
    ("CHAP_N", "use --chap-user"),
    ("CHAP_R", "it is part of the CHAP exchange"),
    ("SendTargets", "use iscsictl discover"),
    ("TargetAddress", "it is declared by the target"),
    ("TargetAlias", "it is declared by the target"),
    ("TargetPortalGroupTag", "it is declared by the target"),
];

/// Longest key name (RFC 7143 §6.1).
const MAX_KEY_LEN: usize = 63;
/// Longest simple value we let through; iscsi-proto checks each key's own limits.
const MAX_VALUE_LEN: usize = 255;

/// One `--param Key=Value`: an extra operational key to propose in the login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub key: String,
    pub value: String,
}

impl Param {
    /// Checks the syntax of RFC 7143 §6.1 (key charset and length, value printable);
    /// whether the key and value make sense is iscsi-proto's negotiation's call.
    pub fn parse(s: &str) -> Result<Param, String> {
        let Some((key, value)) = s.split_once('=') else {
            return Err(format!("{s:?} is not Key=Value"));
        };
        if key.is_empty() {
            return Err("the key before '=' is empty".into());
        }
        if key.len() > MAX_KEY_LEN {
            return Err(format!("key {key:?} is longer than {MAX_KEY_LEN} bytes"));
        }
        if let Some(c) = key
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '@' | '_')))
        {
            return Err(format!(
                "key {key:?} holds {c:?}; keys use letters, digits and . - + @ _"
            ));
        }
        // Keys are case-sensitive on the wire, but a near-miss of a reserved key is
        // still a mistake worth stopping.
        if let Some((name, why)) = RESERVED_KEYS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
        {
            return Err(format!("{name} cannot be set with --param: {why}"));
        }
        if value.is_empty() {
            return Err(format!("the value of {key} is empty"));
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(format!(
                "the value of {key} is longer than {MAX_VALUE_LEN} bytes"
            ));
        }
        if value.chars().any(|c| c.is_control()) {
            return Err(format!("the value of {key} holds a control character"));
        }
        Ok(Param {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_parse_case_insensitively() {
        assert_eq!(Digest::parse("CRC32C"), Ok(Digest::Crc32c));
        assert_eq!(Digest::parse("none"), Ok(Digest::None));
        assert!(Digest::parse("crc32")
            .unwrap_err()
            .contains("None or CRC32C"));
        assert_eq!(AuthMethod::parse("CHAP"), Ok(AuthMethod::Chap));
        assert_eq!(AuthMethod::parse("None"), Ok(AuthMethod::None));
        assert!(AuthMethod::parse("SRP").is_err());
        assert_eq!(SessionType::parse("discovery"), Ok(SessionType::Discovery));
        assert_eq!(SessionType::parse("Normal"), Ok(SessionType::Normal));
        assert!(SessionType::parse("full").is_err());
    }

    #[test]
    fn chap_alg_lists() {
        let a = ChapAlgs::parse("sha256,sha3-256,sha1,md5").unwrap();
        assert_eq!(a, ChapAlgs::default());
        assert_eq!(a.to_string(), "sha256,sha3-256,sha1,md5");
        assert_eq!(
            ChapAlgs::parse("MD5, SHA-256").unwrap().0,
            vec![ChapAlg::Md5, ChapAlg::Sha256]
        );
        assert!(ChapAlgs::parse("md5,md5").unwrap_err().contains("twice"));
        assert!(ChapAlgs::parse("md5,").unwrap_err().contains("empty entry"));
        assert!(ChapAlgs::parse("").unwrap_err().contains("empty entry"));
        assert!(ChapAlgs::parse("sha512")
            .unwrap_err()
            .contains("not a CHAP"));
    }

    #[test]
    fn queue_depth() {
        assert_eq!(parse_queue_depth("8"), Ok(8));
        assert_eq!(parse_queue_depth("65535"), Ok(65535));
        assert!(parse_queue_depth("0").is_err());
        assert!(parse_queue_depth("65536").is_err());
        assert!(parse_queue_depth("-1").is_err());
        assert!(parse_queue_depth("").is_err());
    }

    #[test]
    fn default_connections_one_per_cpu_at_most_16() {
        assert_eq!(default_connections(1), 1);
        assert_eq!(default_connections(2), 2);
        assert_eq!(default_connections(12), 12);
        assert_eq!(default_connections(16), 16);
        assert_eq!(default_connections(17), 16);
        assert_eq!(default_connections(256), 16);
        assert_eq!(default_connections(usize::MAX), 16);
        // No CPU count at all still means one connection.
        assert_eq!(default_connections(0), 1);
        // Every default is a count `--connections` and the kernel accept.
        for cpus in 0..300 {
            let n = default_connections(cpus);
            assert_eq!(parse_connections(&n.to_string()), Ok(n));
        }
        assert!(online_cpus() >= 1);
        assert_eq!(Connections::Default(3).count(), 3);
        assert!(!Connections::Default(3).asked());
        assert!(Connections::Asked(1).asked());
    }

    #[test]
    fn params() {
        let p = Param::parse("MaxRecvDataSegmentLength=262144").unwrap();
        assert_eq!(
            (p.key.as_str(), p.value.as_str()),
            ("MaxRecvDataSegmentLength", "262144")
        );
        assert_eq!(p.to_string(), "MaxRecvDataSegmentLength=262144");
        // Only the first '=' splits.
        assert_eq!(Param::parse("X-com.example.k=a=b").unwrap().value, "a=b");
        assert!(Param::parse("novalue").unwrap_err().contains("Key=Value"));
        assert!(Param::parse("=1").unwrap_err().contains("key before"));
        assert!(Param::parse("Max=").unwrap_err().contains("empty"));
        assert!(Param::parse("Bad Key=1").unwrap_err().contains("keys use"));
        assert!(Param::parse("k=a\tb").unwrap_err().contains("control"));
        assert!(Param::parse(&format!("{}=1", "K".repeat(64))).is_err());
        assert!(Param::parse(&format!("K={}", "v".repeat(256))).is_err());
        let e = Param::parse("headerdigest=CRC32C").unwrap_err();
        assert!(
            e.contains("HeaderDigest cannot be set") && e.contains("--header-digest"),
            "{e}"
        );
        assert!(Param::parse("CHAP_A=5")
            .unwrap_err()
            .contains("--chap-algs"));
    }
}
