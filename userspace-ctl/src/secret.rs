//! CHAP secrets: a byte string that never prints itself and is wiped on drop, plus
//! the rules for loading one from the config file (plain or `0x` hex) or from a
//! `--*-secret-file`, and the ssh-style ownership/mode check both sources share.
//!
//! Secrets never come from a command-line value: argv is world-readable in /proc.

use std::fmt;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Longest secret accepted. RFC 7143 sets no bound; this only stops a mistaken
/// `--chap-secret-file /dev/zero`-like path from being slurped whole.
pub const MAX_SECRET_LEN: usize = 1024;

/// Mode bits that must be clear on a file holding secrets (what ssh demands of keys).
const GROUP_OTHER_BITS: u32 = 0o077;

/// A CHAP secret. Debug and Display print `<redacted>`; only [`Secret::expose`]
/// gives the bytes, so every use of them is easy to find.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps raw bytes; refuses an empty or oversized secret.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Secret, SecretValueError> {
        let bytes = Zeroizing::new(bytes);
        if bytes.is_empty() {
            return Err(SecretValueError::Empty);
        }
        if bytes.len() > MAX_SECRET_LEN {
            return Err(SecretValueError::TooLong);
        }
        Ok(Secret(bytes))
    }

    /// Parses a config-file value: `0x` followed by hex digits gives those raw bytes
    /// (FreeBSD iscsi.conf(5) convention), anything else is taken as its UTF-8 bytes.
    pub fn parse_config_value(value: &str) -> Result<Secret, SecretValueError> {
        let Some(hex) = value
            .strip_prefix("0x")
            .or_else(|| value.strip_prefix("0X"))
        else {
            return Secret::from_bytes(value.as_bytes().to_vec());
        };
        if hex.is_empty() {
            return Err(SecretValueError::Empty);
        }
        if hex.len() % 2 != 0 {
            return Err(SecretValueError::OddHex);
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(hex.len() / 2));
        for pair in hex.as_bytes().chunks_exact(2) {
            let (Some(hi), Some(lo)) = (hex_digit(pair[0]), hex_digit(pair[1])) else {
                return Err(SecretValueError::BadHex);
            };
            bytes.push((hi << 4) | lo);
        }
        Secret::from_bytes(std::mem::take(&mut *bytes))
    }

    /// The secret bytes. Callers must not log or print them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false for a constructed secret; present for API completeness.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when both secrets hold the same bytes (RFC 7143 §12.1.3 forbids using
    /// one secret in both directions).
    pub fn same_as(&self, other: &Secret) -> bool {
        self.expose() == other.expose()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Why a secret value was refused. Never carries the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretValueError {
    #[error("the secret is empty")]
    Empty,
    #[error("the secret starts with 0x but has an odd number of hex digits")]
    OddHex,
    #[error("the secret starts with 0x but holds a character that is not a hex digit")]
    BadHex,
    #[error("the secret is longer than {MAX_SECRET_LEN} bytes")]
    TooLong,
}

/// A file holding secrets is too open or has the wrong owner.
#[derive(Debug, thiserror::Error)]
pub enum PermissionError {
    #[error(
        "{} holds secrets but is accessible by group or others (mode {mode:04o}); run: chmod 600 {}",
        path.display(),
        path.display()
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error(
        "{} holds secrets but is owned by uid {owner}; it must be owned by root or by uid {me}",
        path.display()
    )]
    BadOwner { path: PathBuf, owner: u32, me: u32 },
}

/// Refuses a secret-holding file that group or others may access, or that someone
/// other than root or the caller owns (they could swap the secret): ssh's rule.
pub fn check_private(path: &Path, meta: &Metadata) -> Result<(), PermissionError> {
    let mode = meta.mode() & 0o7777;
    if mode & GROUP_OTHER_BITS != 0 {
        return Err(PermissionError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    let me = rustix::process::geteuid().as_raw();
    let owner = meta.uid();
    if owner != 0 && owner != me {
        return Err(PermissionError::BadOwner {
            path: path.to_path_buf(),
            owner,
            me,
        });
    }
    Ok(())
}

/// Loading a `--*-secret-file` failed.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret file {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("secret file {} is not a regular file", path.display())]
    NotRegular { path: PathBuf },
    #[error("secret file {}: {reason}", path.display())]
    Value {
        path: PathBuf,
        reason: SecretValueError,
    },
    #[error(transparent)]
    Permission(#[from] PermissionError),
}

/// Reads a secret file: raw bytes (no hex decoding, so any byte string works), one
/// trailing newline (`\n` or `\r\n`) removed, after the [`check_private`] test on
/// the opened file itself (no window between check and read).
pub fn read_secret_file(path: &Path) -> Result<Secret, SecretError> {
    let read_err = |source| SecretError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(SecretError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    check_private(path, &meta)?;
    // Two bytes of slack for the newline we strip, one more to detect "too long";
    // allocated up front so no reallocation leaves an unwiped copy behind.
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_SECRET_LEN + 3));
    file.take(MAX_SECRET_LEN as u64 + 3)
        .read_to_end(&mut buf)
        .map_err(read_err)?;
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    Secret::from_bytes(std::mem::take(&mut *buf)).map_err(|reason| SecretError::Value {
        path: path.to_path_buf(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn write_file(dir: &Path, name: &str, content: &[u8], mode: u32) -> PathBuf {
        let path = dir.join(name);
        let mut f = File::create(&path).unwrap();
        f.write_all(content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn never_prints_itself() {
        let s = Secret::parse_config_value("hunter2hunter2").unwrap();
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(<redacted>)");
        assert_eq!(s.expose(), b"hunter2hunter2");
    }

    #[test]
    fn hex_values_keep_raw_bytes() {
        let s = Secret::parse_config_value("0x3713c3336d9a224c2791c873d3d2b174").unwrap();
        assert_eq!(
            s.expose(),
            &[
                0x37, 0x13, 0xc3, 0x33, 0x6d, 0x9a, 0x22, 0x4c, 0x27, 0x91, 0xc8, 0x73, 0xd3, 0xd2,
                0xb1, 0x74
            ]
        );
        assert_eq!(
            Secret::parse_config_value("0XFF00").unwrap().expose(),
            &[0xff, 0]
        );
        assert_eq!(
            Secret::parse_config_value("0x123").unwrap_err(),
            SecretValueError::OddHex
        );
        assert_eq!(
            Secret::parse_config_value("0xzz").unwrap_err(),
            SecretValueError::BadHex
        );
        assert_eq!(
            Secret::parse_config_value("0x").unwrap_err(),
            SecretValueError::Empty
        );
        assert_eq!(
            Secret::parse_config_value("").unwrap_err(),
            SecretValueError::Empty
        );
        // Not a hex prefix: taken literally.
        assert_eq!(
            Secret::parse_config_value("x0ab").unwrap().expose(),
            b"x0ab"
        );
    }

    #[test]
    fn value_errors_do_not_leak() {
        let err = Secret::parse_config_value("0xsupersecretvalue!").unwrap_err();
        assert!(!err.to_string().contains("supersecret"));
    }

    #[test]
    fn same_as_compares_bytes() {
        let a = Secret::parse_config_value("0x41424344").unwrap();
        let b = Secret::parse_config_value("ABCD").unwrap();
        let c = Secret::parse_config_value("ABCE").unwrap();
        assert!(a.same_as(&b));
        assert!(!a.same_as(&c));
    }

    #[test]
    fn secret_file_trims_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_file(dir.path(), "s1", b"topsecret123\n", 0o600);
        assert_eq!(read_secret_file(&p).unwrap().expose(), b"topsecret123");
        let p = write_file(dir.path(), "s2", b"topsecret123\r\n", 0o600);
        assert_eq!(read_secret_file(&p).unwrap().expose(), b"topsecret123");
        let p = write_file(dir.path(), "s3", b"topsecret123\n\n", 0o400);
        assert_eq!(read_secret_file(&p).unwrap().expose(), b"topsecret123\n");
        // No hex decoding in files: the bytes are the secret.
        let p = write_file(dir.path(), "s4", b"0xabcd", 0o600);
        assert_eq!(read_secret_file(&p).unwrap().expose(), b"0xabcd");
    }

    #[test]
    fn secret_file_refuses_open_modes() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o640, 0o604, 0o620, 0o602, 0o644, 0o666, 0o610] {
            let p = write_file(dir.path(), "s", b"topsecret123", mode);
            let err = read_secret_file(&p).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(
                    err,
                    SecretError::Permission(PermissionError::TooOpen { .. })
                ),
                "{mode:o}: {msg}"
            );
            assert!(msg.contains(&format!("mode {mode:04o}")), "{msg}");
            assert!(msg.contains("chmod 600"), "{msg}");
            assert!(!msg.contains("topsecret"), "{msg}");
        }
    }

    #[test]
    fn secret_file_refuses_foreign_owner() {
        if !rustix::process::geteuid().is_root() {
            return; // Only root can hand a file to another uid.
        }
        let dir = tempfile::tempdir().unwrap();
        let p = write_file(dir.path(), "s", b"topsecret123", 0o600);
        std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
        let err = read_secret_file(&p).unwrap_err();
        assert!(err.to_string().contains("owned by uid 65534"), "{err}");
    }

    #[test]
    fn secret_file_other_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_file(dir.path(), "empty", b"\n", 0o600);
        assert!(matches!(
            read_secret_file(&p),
            Err(SecretError::Value {
                reason: SecretValueError::Empty,
                ..
            })
        ));
        let p = write_file(dir.path(), "big", &[b'a'; MAX_SECRET_LEN + 1], 0o600);
        assert!(matches!(
            read_secret_file(&p),
            Err(SecretError::Value {
                reason: SecretValueError::TooLong,
                ..
            })
        ));
        let p = write_file(dir.path(), "max", &[b'a'; MAX_SECRET_LEN], 0o600);
        assert_eq!(read_secret_file(&p).unwrap().len(), MAX_SECRET_LEN);
        let missing = dir.path().join("missing");
        let msg = read_secret_file(&missing).unwrap_err().to_string();
        assert!(msg.starts_with("cannot read secret file"), "{msg}");
        let msg = read_secret_file(dir.path()).unwrap_err().to_string();
        assert!(msg.contains("is not a regular file"), "{msg}");
    }
}
