//! iSCSI names (RFC 3720 §3.2.6, RFC 3721, RFC 7143 §4.2.7): strict validation of
//! the initiator name we send, a looser check for target names, the open-iscsi
//! `/etc/iscsi/initiatorname.iscsi` file, a generated fallback name, and the
//! precedence between them (flag > config > file > generated).
//!
//! Target names are checked loosely on purpose: the target owns its name and we
//! must send it back byte for byte, even when it bends the rules (the seed talk's
//! own example is `iqn.1900.com.com:sn.123456`, which has no month).

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest iSCSI name, in UTF-8 bytes (RFC 7143 §4.2.7.1).
pub const MAX_NAME_LEN: usize = 223;
/// Where open-iscsi keeps the host's initiator name; we share it.
pub const INITIATORNAME_FILE: &str = "/etc/iscsi/initiatorname.iscsi";
/// Naming authority of generated names (iscsi-rs.dev, reversed, dated).
pub const GENERATED_PREFIX: &str = "iqn.2026-11.dev.iscsi-rs";

const IQN_EXAMPLE: &str = "iqn.2005-01.com.example:disk1";

/// Which rule of RFC 3720 §3.2.6.3 a name follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// `iqn.` iSCSI Qualified Name.
    Iqn,
    /// `eui.` IEEE EUI-64.
    Eui,
    /// `naa.` T11 Network Address Authority (RFC 3980).
    Naa,
}

/// A name that passed [`IscsiName::parse`]: safe to send as InitiatorName.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IscsiName {
    name: String,
    kind: NameKind,
}

impl IscsiName {
    /// Validates `s` against the iqn./eui./naa. formats; the error says what is wrong.
    pub fn parse(s: &str) -> Result<IscsiName, NameError> {
        match check_strict(s) {
            Ok(kind) => Ok(IscsiName {
                name: s.to_owned(),
                kind,
            }),
            Err(reason) => Err(NameError::Invalid {
                name: s.to_owned(),
                reason,
            }),
        }
    }

    /// The name as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Which naming format the name uses.
    pub fn kind(&self) -> NameKind {
        self.kind
    }
}

impl FromStr for IscsiName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IscsiName::parse(s)
    }
}

impl fmt::Display for IscsiName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A target's name as the target spells it: non-empty, at most 223 bytes, no
/// whitespace or control characters. [`TargetName::conformance`] tells whether it
/// also follows the RFC, for a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetName(String);

impl TargetName {
    /// Accepts any name that can travel as a text value; see the type docs.
    pub fn parse(s: &str) -> Result<TargetName, NameError> {
        check_basic(s).map_err(|reason| NameError::Invalid {
            name: s.to_owned(),
            reason,
        })?;
        Ok(TargetName(s.to_owned()))
    }

    /// The name as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `Err` with the reason when the name does not follow RFC 3720 §3.2.6.
    pub fn conformance(&self) -> Result<(), NameError> {
        IscsiName::parse(&self.0).map(|_| ())
    }
}

impl FromStr for TargetName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TargetName::parse(s)
    }
}

impl fmt::Display for TargetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A name was refused or the initiator name file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    #[error("invalid iSCSI name {name:?}: {reason}")]
    Invalid { name: String, reason: String },
    #[error("cannot read {}: {source} (or pass --initiator-name)", path.display())]
    FileRead { path: PathBuf, source: io::Error },
    #[error("{}:{line}: {source}", path.display())]
    FileName {
        path: PathBuf,
        line: usize,
        source: Box<NameError>,
    },
    #[error("{} has no InitiatorName= line (add one, or pass --initiator-name)", path.display())]
    FileNoName { path: PathBuf },
}

/// Length and character checks every name must pass, conforming or not.
fn check_basic(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("the name is empty".into());
    }
    if s.len() > MAX_NAME_LEN {
        return Err(format!(
            "it is {} bytes long; the limit is {MAX_NAME_LEN}",
            s.len()
        ));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains whitespace or control characters".into());
    }
    Ok(())
}

/// RFC 3720 §3.2.6: the full format rules. Non-ASCII characters are accepted when
/// they are lowercase or caseless letters/digits, an approximation of the RFC 3722
/// stringprep profile (which would have folded them already).
fn check_strict(s: &str) -> Result<NameKind, String> {
    check_basic(s)?;
    let (prefix, rest) = match (s.get(..4), s.get(4..)) {
        (Some(p), Some(r)) => (p, r),
        _ => return Err("it must start with \"iqn.\", \"eui.\" or \"naa.\"".into()),
    };
    let kind = match prefix {
        "iqn." => NameKind::Iqn,
        "eui." => NameKind::Eui,
        "naa." => NameKind::Naa,
        _ if prefix.eq_ignore_ascii_case("iqn.")
            || prefix.eq_ignore_ascii_case("eui.")
            || prefix.eq_ignore_ascii_case("naa.") =>
        {
            return Err(format!(
                "the type prefix must be lowercase: {:?}",
                prefix.to_ascii_lowercase()
            ));
        }
        _ => return Err("it must start with \"iqn.\", \"eui.\" or \"naa.\"".into()),
    };
    match kind {
        NameKind::Eui => {
            if rest.len() != 16 || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(
                    "an eui. name is \"eui.\" followed by exactly 16 hex digits \
                     (e.g. eui.02004567A425678D)"
                        .into(),
                );
            }
        }
        NameKind::Naa => {
            if !matches!(rest.len(), 16 | 32) || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err("a naa. name is \"naa.\" followed by 16 or 32 hex digits \
                     (e.g. naa.52004567BA64678D)"
                    .into());
            }
        }
        NameKind::Iqn => check_iqn(s, rest)?,
    }
    Ok(kind)
}

/// `iqn.YYYY-MM.reversed.domain[:anything]`; `rest` is what follows "iqn.".
fn check_iqn(full: &str, rest: &str) -> Result<(), String> {
    if full.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "iqn. names are lowercase (RFC 3722 folds case); use {:?}",
            full.to_ascii_lowercase()
        ));
    }
    if let Some(bad) = full.chars().find(|&c| !allowed_char(c)) {
        return Err(format!(
            "character {bad:?} is not allowed (iSCSI names use a-z, 0-9, '-', '.' and ':')"
        ));
    }
    let b = rest.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r)
            .is_some_and(|d| d.iter().all(|c| c.is_ascii_digit()))
    };
    if !(digits(0..4) && b.get(4) == Some(&b'-') && digits(5..7) && b.get(7) == Some(&b'.')) {
        return Err(format!(
            "\"iqn.\" must be followed by a date as YYYY-MM and a dot (e.g. {IQN_EXAMPLE})"
        ));
    }
    let month = &rest[5..7];
    if !("01"..="12").contains(&month) {
        return Err(format!("month {month} in the date is not 01..12"));
    }
    let after_date = &rest[8..];
    let authority = after_date.split(':').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!(
            "the naming authority (a reversed domain name such as com.example) is \
             missing after the date (e.g. {IQN_EXAMPLE})"
        ));
    }
    for label in authority.split('.') {
        if label.is_empty() {
            return Err(format!(
                "the naming authority {authority:?} has an empty label (two dots in a row, \
                 or a dot at an end)"
            ));
        }
        if !label
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        {
            return Err(format!(
                "the naming authority {authority:?} may only hold a-z, 0-9, '-' and '.'"
            ));
        }
    }
    Ok(())
}

fn allowed_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | ':')
    } else {
        c.is_alphanumeric() && !c.is_uppercase()
    }
}

/// Reads the `InitiatorName=` line of an open-iscsi initiatorname file.
/// `Ok(None)` when the file does not exist; an error when it exists but cannot be
/// read or holds no valid name (silently inventing another name would break ACLs).
pub fn read_initiatorname_file(path: &Path) -> Result<Option<IscsiName>, NameError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(NameError::FileRead {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    for (idx, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() != "InitiatorName" {
            continue; // e.g. InitiatorAlias=
        }
        return IscsiName::parse(value.trim())
            .map(Some)
            .map_err(|e| NameError::FileName {
                path: path.to_path_buf(),
                line: idx + 1,
                source: Box::new(e),
            });
    }
    Err(NameError::FileNoName {
        path: path.to_path_buf(),
    })
}

/// A fresh `iqn.2026-11.dev.iscsi-rs:<hostname>-<12 hex>` name. Random so two
/// hosts with the same hostname do not collide; the caller prints it once.
pub fn generate_initiator_name() -> IscsiName {
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    // RandomState is keyed from the OS RNG: enough for a name suffix, no extra crate.
    let mut h = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    generated_name(&host, h.finish())
}

/// Builds the generated name from a hostname and random bits (split out for tests).
fn generated_name(hostname: &str, random: u64) -> IscsiName {
    let mut host: String = hostname
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    host = host.trim_matches(|c| c == '-' || c == '.').to_owned();
    if host.is_empty() {
        host = "host".into();
    }
    let name = format!(
        "{GENERATED_PREFIX}:{host}-{:012x}",
        random & 0xffff_ffff_ffff
    );
    IscsiName {
        name,
        kind: NameKind::Iqn,
    }
}

/// Where the initiator name in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameSource {
    /// `--initiator-name`.
    Flag,
    /// `InitiatorName` in the config file (block or global).
    Config,
    /// `/etc/iscsi/initiatorname.iscsi`.
    File,
    /// iscsictl's own saved name (`/etc/iscsi-rs/initiatorname.iscsi`), generated
    /// by an earlier run.
    Saved,
    /// Made up by [`generate_initiator_name`]; the user should be told.
    Generated,
}

/// The initiator name to use, and where it came from.
#[derive(Debug, Clone)]
pub struct ResolvedName {
    pub name: IscsiName,
    pub source: NameSource,
}

/// The host-wide default: the initiatorname file when present, else a generated name.
pub fn host_initiator_name(file: &Path) -> Result<ResolvedName, NameError> {
    Ok(match read_initiatorname_file(file)? {
        Some(name) => ResolvedName {
            name,
            source: NameSource::File,
        },
        None => ResolvedName {
            name: generate_initiator_name(),
            source: NameSource::Generated,
        },
    })
}

/// Precedence: an explicit `--initiator-name` wins (what a user typing it expects),
/// then the config file, then [`host_initiator_name`].
pub fn resolve_initiator_name(
    flag: Option<&IscsiName>,
    config: Option<&IscsiName>,
    file: &Path,
) -> Result<ResolvedName, NameError> {
    if let Some(name) = flag {
        return Ok(ResolvedName {
            name: name.clone(),
            source: NameSource::Flag,
        });
    }
    if let Some(name) = config {
        return Ok(ResolvedName {
            name: name.clone(),
            source: NameSource::Config,
        });
    }
    host_initiator_name(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(s: &str) -> String {
        match IscsiName::parse(s) {
            Err(NameError::Invalid { reason, .. }) => reason,
            other => panic!("{s:?} should be invalid, got {other:?}"),
        }
    }

    #[test]
    fn accepts_rfc_examples() {
        for ok in [
            "iqn.2001-04.com.example:storage:diskarrays-sn-a8675309",
            "iqn.2001-04.com.example",
            "iqn.2001-04.com.example:storage.tape1.sys1.xyz",
            "iqn.1993-08.org.debian:01:a858151b31bc",
            "iqn.2003-01.org.linux-iscsi.host.x8664:sn.abcdef",
            "iqn.2005-01.il.ac.huji.cs:somebody",
            "iqn.2001-04.com.example:",
            "iqn.2001-04.com.example:ünïcode",
            "eui.02004567A425678D",
            "eui.02004567a425678d",
            "naa.52004567BA64678D",
            "naa.52004567BA64678D52004567BA64678D",
        ] {
            let n = IscsiName::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(n.as_str(), ok);
        }
        assert_eq!(
            IscsiName::parse("eui.02004567A425678D").unwrap().kind(),
            NameKind::Eui
        );
        assert_eq!(
            IscsiName::parse("naa.52004567BA64678D").unwrap().kind(),
            NameKind::Naa
        );
    }

    #[test]
    fn rejects_with_reasons() {
        assert!(reason("").contains("empty"));
        assert!(reason("iqn").contains("must start with"));
        assert!(reason("foo.2001-04.com.example").contains("must start with"));
        assert!(reason("IQN.2001-04.com.example").contains("lowercase: \"iqn.\""));
        assert!(reason("iqn.2001-04.com.Example:x").contains("\"iqn.2001-04.com.example:x\""));
        assert!(reason("iqn.2001-04.com.example:a b").contains("whitespace"));
        assert!(reason("iqn.2001-04.com.example:a_b").contains("'_' is not allowed"));
        assert!(reason("iqn.1900.com.com:sn.123456").contains("YYYY-MM"));
        assert!(reason("iqn.01-2001.com.example").contains("YYYY-MM"));
        assert!(reason("iqn.2001-4.com.example").contains("YYYY-MM"));
        assert!(reason("iqn.2001-04com.example").contains("YYYY-MM"));
        assert!(reason("iqn.2001-13.com.example").contains("month 13"));
        assert!(reason("iqn.2001-00.com.example").contains("month 00"));
        assert!(reason("iqn.2001-04.").contains("naming authority"));
        assert!(reason("iqn.2001-04.:disk").contains("naming authority"));
        assert!(reason("iqn.2001-04.com..example").contains("empty label"));
        assert!(reason("iqn.2001-04.com.example.:x").contains("empty label"));
        assert!(reason("eui.02004567A425678").contains("16 hex digits"));
        assert!(reason("eui.02004567A425678G").contains("16 hex digits"));
        assert!(reason("EUI.02004567A425678D").contains("lowercase"));
        assert!(reason("naa.52004567BA64678D5").contains("16 or 32"));
        assert!(reason("iqn.2001-04.com.example:\u{2026}").contains("not allowed"));
        let long = format!("iqn.2001-04.com.example:{}", "a".repeat(200));
        assert!(reason(&long).contains("limit is 223"));
        let max = format!("iqn.2001-04.com.example:{}", "a".repeat(223 - 24));
        assert_eq!(max.len(), 223);
        assert!(IscsiName::parse(&max).is_ok());
    }

    #[test]
    fn error_message_names_the_name() {
        let e = IscsiName::parse("iqn.2001-13.com.example").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid iSCSI name \"iqn.2001-13.com.example\": month 13 in the date is not 01..12"
        );
    }

    #[test]
    fn target_names_are_lenient_but_sane() {
        let t = TargetName::parse("iqn.1900.com.com:sn.123456").unwrap();
        assert!(t.conformance().is_err());
        assert!(TargetName::parse("iqn.2001-04.com.example:x")
            .unwrap()
            .conformance()
            .is_ok());
        assert!(TargetName::parse("").is_err());
        assert!(TargetName::parse("a b").is_err());
        assert!(TargetName::parse("a\0b").is_err());
        assert!(TargetName::parse(&"a".repeat(224)).is_err());
    }

    #[test]
    fn generated_names_are_valid() {
        for host in [
            "myhost",
            "My_Host.example.com",
            "",
            "--",
            "ÿ",
            &"x".repeat(300),
        ] {
            let n = generated_name(host, 0xdead_beef_cafe_f00d);
            assert!(IscsiName::parse(n.as_str()).is_ok(), "{n}");
            assert!(n.as_str().starts_with("iqn.2026-11.dev.iscsi-rs:"), "{n}");
            assert!(n.as_str().ends_with("-beefcafef00d"), "{n}");
        }
        assert_eq!(
            generated_name("My_Host", 1).as_str(),
            "iqn.2026-11.dev.iscsi-rs:my-host-000000000001"
        );
        let a = generate_initiator_name();
        let b = generate_initiator_name();
        assert!(IscsiName::parse(a.as_str()).is_ok());
        assert_ne!(a, b, "two generated names must differ");
    }

    #[test]
    fn initiatorname_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("initiatorname.iscsi");
        assert!(read_initiatorname_file(&p).unwrap().is_none());

        std::fs::write(
            &p,
            "## DO NOT EDIT\n# InitiatorName=iqn.2000-01.com.commented:out\n\n\
             InitiatorAlias=box\n  InitiatorName = iqn.1993-08.org.debian:01:a858151b31bc  \n",
        )
        .unwrap();
        let n = read_initiatorname_file(&p).unwrap().unwrap();
        assert_eq!(n.as_str(), "iqn.1993-08.org.debian:01:a858151b31bc");

        std::fs::write(&p, "# nothing\n").unwrap();
        let msg = read_initiatorname_file(&p).unwrap_err().to_string();
        assert!(msg.contains("has no InitiatorName= line"), "{msg}");

        std::fs::write(&p, "#\nInitiatorName=iqn.bad\n").unwrap();
        let msg = read_initiatorname_file(&p).unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!("{}:2: invalid iSCSI name", p.display())),
            "{msg}"
        );

        let msg = read_initiatorname_file(dir.path()).unwrap_err().to_string();
        assert!(msg.starts_with("cannot read"), "{msg}");
    }

    #[test]
    fn precedence_flag_config_file_generated() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("initiatorname.iscsi");
        let flag = IscsiName::parse("iqn.2001-04.com.example:flag").unwrap();
        let conf = IscsiName::parse("iqn.2001-04.com.example:conf").unwrap();

        let r = resolve_initiator_name(None, None, &file).unwrap();
        assert_eq!(r.source, NameSource::Generated);
        assert!(r.name.as_str().starts_with(GENERATED_PREFIX));

        std::fs::write(&file, "InitiatorName=iqn.2001-04.com.example:file\n").unwrap();
        let r = resolve_initiator_name(None, None, &file).unwrap();
        assert_eq!(
            (r.source, r.name.as_str()),
            (NameSource::File, "iqn.2001-04.com.example:file")
        );
        let r = resolve_initiator_name(None, Some(&conf), &file).unwrap();
        assert_eq!(r.source, NameSource::Config);
        assert_eq!(r.name, conf);
        let r = resolve_initiator_name(Some(&flag), Some(&conf), &file).unwrap();
        assert_eq!(r.source, NameSource::Flag);
        assert_eq!(r.name, flag);

        // A broken file is an error, not a reason to invent a name...
        std::fs::write(&file, "InitiatorName=nonsense\n").unwrap();
        assert!(resolve_initiator_name(None, None, &file).is_err());
        // ...unless an explicit name makes the file irrelevant.
        assert!(resolve_initiator_name(Some(&flag), None, &file).is_ok());
    }
}
