//! Exit codes of iscsictl and the top-level error type that maps onto them.
//!
//! Every failure a user can meet ends up here as one plain sentence plus one of the
//! distinct codes below, so scripts can tell "wrong password" from "target down"
//! without parsing text. The codes are part of the command-line interface: never
//! renumber one, only add.

use crate::config::ConfigError;
use crate::names::NameError;
use crate::secret::SecretError;

/// Success.
pub const OK: u8 = 0;
/// A failure that none of the codes below describes, including the target's own
/// trouble (login status class 3: target error, unavailable, out of resources).
pub const FAILURE: u8 = 1;
/// Bad command line; clap uses 2 as well, so all usage errors share it.
pub const USAGE: u8 = 2;
/// Bad config file, secret file, initiator name file or ISID store (syntax, value,
/// permissions).
pub const CONFIG: u8 = 3;
/// The portal could not be reached: unresolvable, refused, unreachable, or the
/// connect/login timeout expired.
pub const UNREACHABLE: u8 = 4;
/// The target rejected our credentials (0x0201) or our initiator (0x0202), offered
/// no CHAP algorithm we know, or failed mutual CHAP (proved the wrong secret).
pub const AUTH_FAILED: u8 = 5;
/// The target does not know the requested TargetName (login status 0x0203/0x0204).
pub const TARGET_NOT_FOUND: u8 = 6;
/// The target broke the protocol (malformed PDU, illegal negotiation answer,
/// hanging up mid-login instead of answering) or refused our login as malformed
/// (the other class-2 statuses).
pub const PROTOCOL: u8 = 7;
/// `/dev/iscsi_rs` is missing: the kernel module is not loaded.
pub const MODULE_NOT_LOADED: u8 = 8;
/// The verb exists on the command line but its implementation has not landed yet.
pub const NOT_IMPLEMENTED: u8 = 9;
/// `login`: a session to this target portal group exists already (nothing was
/// changed). The number is iscsiadm's ISCSI_ERR_SESS_EXISTS, so scripts written
/// for open-iscsi keep working; `login -a` reports such targets and skips them
/// instead of failing.
pub const SESSION_EXISTS: u8 = 15;

/// Every error `iscsictl` reports; `Display` is the one sentence printed to the user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command-line combination clap cannot express (checked after parsing).
    #[error("{0}")]
    Usage(String),
    /// The config file is unreadable, malformed, inconsistent or too open.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The initiator name file is unreadable or holds a bad name.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A secret file is unreadable, empty or too open.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The ISID store (`/etc/iscsi-rs/isids`) cannot be parsed.
    #[error("{0}")]
    State(String),
    /// `/dev/iscsi_rs` does not exist.
    #[error("iscsi_rs kernel module is not loaded (try: insmod iscsi_rs.ko)")]
    ModuleNotLoaded,
    /// `/dev/iscsi_rs` did not exist and `modprobe iscsi_rs` did not bring it.
    #[error("{0}")]
    ModuleLoad(String),
    /// `login`: the kernel has a session to this target portal group already.
    #[error("{0}")]
    SessionExists(String),
    /// The portal could not be reached or did not answer in time.
    #[error("{0}")]
    Unreachable(String),
    /// The target refused our credentials, or failed to prove its own.
    #[error("{0}")]
    AuthFailed(String),
    /// The target does not exist (any more) at this portal.
    #[error("{0}")]
    TargetNotFound(String),
    /// The target broke the protocol, or hung up mid-exchange.
    #[error("{0}")]
    Protocol(String),
    /// Any other failure: the target refused for a reason none of the above
    /// names (out of resources, not allowed, …), or the host could not help.
    #[error("{0}")]
    Failed(String),
    /// The verb is recognised but cannot run yet.
    #[error("{verb} is not implemented yet: it needs {needs}")]
    NotImplemented {
        /// The verb as typed, e.g. "login".
        verb: &'static str,
        /// What is missing, e.g. "the iscsi-proto login state machine".
        needs: &'static str,
    },
}

impl From<crate::transport::TransportError> for Error {
    fn from(e: crate::transport::TransportError) -> Self {
        let msg = e.to_string();
        match e.exit_code() {
            UNREACHABLE => Error::Unreachable(msg),
            PROTOCOL => Error::Protocol(msg),
            USAGE => Error::Usage(msg),
            _ => Error::Failed(msg),
        }
    }
}

impl From<crate::crypto::RandomError> for Error {
    fn from(e: crate::crypto::RandomError) -> Self {
        Error::Failed(e.to_string())
    }
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => USAGE,
            Error::Config(_) | Error::Name(_) | Error::Secret(_) | Error::State(_) => CONFIG,
            Error::ModuleNotLoaded | Error::ModuleLoad(_) => MODULE_NOT_LOADED,
            Error::SessionExists(_) => SESSION_EXISTS,
            Error::Unreachable(_) => UNREACHABLE,
            Error::AuthFailed(_) => AUTH_FAILED,
            Error::TargetNotFound(_) => TARGET_NOT_FOUND,
            Error::Protocol(_) => PROTOCOL,
            Error::Failed(_) => FAILURE,
            Error::NotImplemented { .. } => NOT_IMPLEMENTED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let all = [
            OK,
            FAILURE,
            USAGE,
            CONFIG,
            UNREACHABLE,
            AUTH_FAILED,
            TARGET_NOT_FOUND,
            PROTOCOL,
            MODULE_NOT_LOADED,
            NOT_IMPLEMENTED,
            SESSION_EXISTS,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(
            USAGE, 2,
            "clap exits with 2 on usage errors; keep them equal"
        );
        assert_eq!(SESSION_EXISTS, 15, "iscsiadm's ISCSI_ERR_SESS_EXISTS");
        assert_eq!(
            Error::SessionExists(String::new()).exit_code(),
            SESSION_EXISTS
        );
    }

    #[test]
    fn module_not_loaded_message() {
        let e = Error::ModuleNotLoaded;
        assert_eq!(
            e.to_string(),
            "iscsi_rs kernel module is not loaded (try: insmod iscsi_rs.ko)"
        );
        assert_eq!(e.exit_code(), MODULE_NOT_LOADED);
    }
}
