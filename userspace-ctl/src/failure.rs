//! Turns iscsi-proto's login, discovery and logout errors into what the user
//! reads: one plain sentence (with the RFC status code where there is one, and a
//! hint at what to check) and the exit code scripts branch on.
//!
//! | what happened                                         | exit code        |
//! |-------------------------------------------------------|------------------|
//! | 0x0201 authentication failure, 0x0202 authorization   | `AUTH_FAILED`    |
//! | mutual CHAP: the target failed to prove itself        | `AUTH_FAILED`    |
//! | no common CHAP algorithm; target skipped required CHAP | `AUTH_FAILED`   |
//! | 0x0203 not found, 0x0204 removed                      | `TARGET_NOT_FOUND` |
//! | other class 2 statuses, unknown statuses, bad PDUs    | `PROTOCOL`       |
//! | the target will not digest although we require it    | `PROTOCOL`       |
//! | class 3 (target error, unavailable, out of resources) | `FAILURE`        |
//! | our settings cannot work (e.g. secret too short)      | `USAGE`          |

use iscsi_proto::chap::ChapError;
use iscsi_proto::discovery::DiscoveryError;
use iscsi_proto::login::{LoginError, LoginStatus, LogoutError, ProtocolError};
use iscsi_proto::negotiate::{Key, NegotiationError};

use crate::exit::Error;

/// What the hints may refer to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// CHAP credentials were given.
    pub chap: bool,
    /// The portal, for the "discover" hint.
    pub portal: &'a str,
    /// Our initiator name, for the ACL hint.
    pub initiator: &'a str,
    /// The CHAP_A offer as the user wrote it.
    pub chap_algs: &'a str,
}

/// The error for a failed login.
pub fn login(e: LoginError, cx: &Context<'_>) -> Error {
    match e {
        LoginError::Status(s) => status(s, cx),
        LoginError::Protocol(p) => protocol(p, cx),
        LoginError::Config(c) => Error::Usage(format!("cannot log in with these settings: {c}")),
        LoginError::BufferTooSmall { .. } | LoginError::OutOfOrder => {
            Error::Failed(format!("internal error during login: {e}"))
        }
    }
}

/// `login failed: <status> (0xCCDD)[ — hint]` with the status's exit code.
pub fn status(s: LoginStatus, cx: &Context<'_>) -> Error {
    let head = format!("login failed: {} ({:#06x})", s.describe(), s.code16());
    let with = |hint: &str| format!("{head} — {hint}");
    match s {
        LoginStatus::AuthenticationFailure if cx.chap => {
            Error::AuthFailed(with("check the CHAP user and secret"))
        }
        LoginStatus::AuthenticationFailure => Error::AuthFailed(with(
            "the target wants CHAP: pass --chap-user and --chap-secret-file",
        )),
        LoginStatus::AuthorizationFailure => Error::AuthFailed(with(&format!(
            "check the target's access list for initiator {}",
            cx.initiator
        ))),
        LoginStatus::NotFound | LoginStatus::TargetRemoved => {
            Error::TargetNotFound(with(&format!(
                "check the target name (iscsictl discover -p {} lists them)",
                cx.portal
            )))
        }
        LoginStatus::InitiatorError if cx.chap => Error::Protocol(with(
            "the target found our CHAP exchange malformed; if it only knows MD5, offer \
             --chap-algs md5",
        )),
        // LIO answers a TargetName it does not have with 0x0301, not 0x0203.
        LoginStatus::ServiceUnavailable => Error::Failed(with(&format!(
            "the target cannot take the login now; try again later, and check the \
             target name (iscsictl discover -p {} lists them)",
            cx.portal
        ))),
        LoginStatus::TargetError | LoginStatus::OutOfResources => Error::Failed(with(
            "the target cannot take the login now; try again later",
        )),
        _ => Error::Protocol(head),
    }
}

fn protocol(p: ProtocolError, cx: &Context<'_>) -> Error {
    let auth = |msg: &str| Error::AuthFailed(format!("login failed: {msg}"));
    match p {
        ProtocolError::Chap(ChapError::MutualAuthFailed) => auth(
            "the target failed mutual CHAP authentication — check the mutual CHAP user and \
             secret; the target may not be who it claims",
        ),
        ProtocolError::Chap(ChapError::TargetNameMismatch) => {
            auth("the target answered mutual CHAP under another name — check the mutual CHAP user")
        }
        ProtocolError::Chap(ChapError::MutualResponseMissing) => auth(
            "the target did not answer our mutual CHAP challenge — does it have an outgoing \
             (mutual) account?",
        ),
        ProtocolError::Chap(ChapError::AlgorithmRejected) => auth(&format!(
            "the target supports none of the offered CHAP algorithms ({}) — add md5 to \
             --chap-algs",
            cx.chap_algs
        )),
        ProtocolError::SecuritySkipped => auth(
            "the target skipped authentication although CHAP credentials were given; \
             refusing an unauthenticated session",
        ),
        ProtocolError::Negotiation(
            NegotiationError::NotOffered { key }
            | NegotiationError::Rejected { key }
            | NegotiationError::NoResponse { key },
        ) if matches!(key, Key::HeaderDigest | Key::DataDigest) => Error::Protocol(format!(
            "login failed: the target would not agree to {key}=CRC32C ({p}) — enable CRC32C \
             digests on the target, or log in without --header-digest/--data-digest"
        )),
        other => Error::Protocol(format!(
            "login failed: protocol violation by the target: {other}"
        )),
    }
}

/// The error for a failed SendTargets exchange.
pub fn discovery(e: DiscoveryError) -> Error {
    match e {
        DiscoveryError::Protocol(p) => Error::Protocol(format!(
            "discovery failed: protocol violation by the target: {p}"
        )),
        DiscoveryError::Rejected { .. } | DiscoveryError::WindowClosed { .. } => {
            Error::Protocol(format!("discovery failed: {e}"))
        }
        DiscoveryError::InvalidQuery(_)
        | DiscoveryError::BufferTooSmall { .. }
        | DiscoveryError::OutOfOrder => {
            Error::Failed(format!("internal error during discovery: {e}"))
        }
    }
}

/// The error for a failed logout.
pub fn logout(e: LogoutError) -> Error {
    match e {
        LogoutError::Protocol(p) => Error::Protocol(format!(
            "logout failed: protocol violation by the target: {p}"
        )),
        LogoutError::Refused { .. } => Error::Protocol(format!("logout failed: {e}")),
        LogoutError::BufferTooSmall { .. } => {
            Error::Failed(format!("internal error during logout: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit;

    fn cx(chap: bool) -> Context<'static> {
        Context {
            chap,
            portal: "192.0.2.1:3260",
            initiator: "iqn.2001-04.com.example:me",
            chap_algs: "md5",
        }
    }

    #[test]
    fn every_rfc_status_has_a_sentence_and_a_code() {
        for s in LoginStatus::ALL {
            if s == LoginStatus::Success || s.is_redirect() {
                continue;
            }
            let e = status(s, &cx(true));
            let msg = e.to_string();
            assert!(msg.starts_with("login failed: "), "{msg}");
            assert!(msg.contains(&format!("({:#06x})", s.code16())), "{msg}");
            assert_ne!(e.exit_code(), exit::OK);
        }
    }

    #[test]
    fn the_issue_examples() {
        let e = status(LoginStatus::AuthenticationFailure, &cx(true));
        assert_eq!(
            e.to_string(),
            "login failed: authentication failure (0x0201) — check the CHAP user and secret"
        );
        assert_eq!(e.exit_code(), exit::AUTH_FAILED);
        let e = status(LoginStatus::NotFound, &cx(false));
        assert!(
            e.to_string()
                .starts_with("login failed: target not found (0x0203) — "),
            "{e}"
        );
        assert!(e.to_string().contains("discover -p 192.0.2.1:3260"), "{e}");
        assert_eq!(e.exit_code(), exit::TARGET_NOT_FOUND);
        let e = status(LoginStatus::TargetRemoved, &cx(false));
        assert_eq!(e.exit_code(), exit::TARGET_NOT_FOUND);
    }

    #[test]
    fn codes_by_class() {
        let code = |s| status(s, &cx(false)).exit_code();
        assert_eq!(code(LoginStatus::AuthorizationFailure), exit::AUTH_FAILED);
        assert_eq!(code(LoginStatus::MissingParameter), exit::PROTOCOL);
        assert_eq!(code(LoginStatus::ServiceUnavailable), exit::FAILURE);
        assert_eq!(
            code(LoginStatus::Unknown {
                class: 9,
                detail: 9
            }),
            exit::PROTOCOL
        );
    }

    #[test]
    fn mutual_chap_failures_are_auth_failures() {
        for c in [
            ChapError::MutualAuthFailed,
            ChapError::TargetNameMismatch,
            ChapError::MutualResponseMissing,
            ChapError::AlgorithmRejected,
        ] {
            let e = login(LoginError::Protocol(ProtocolError::Chap(c)), &cx(true));
            assert_eq!(e.exit_code(), exit::AUTH_FAILED, "{e}");
        }
        let digest = ProtocolError::Negotiation(NegotiationError::NotOffered {
            key: Key::HeaderDigest,
        });
        let e = login(LoginError::Protocol(digest), &cx(false));
        assert_eq!(e.exit_code(), exit::PROTOCOL);
        assert!(e.to_string().contains("HeaderDigest=CRC32C"), "{e}");
        let e = login(LoginError::Protocol(ProtocolError::MissingTsih), &cx(false));
        assert_eq!(e.exit_code(), exit::PROTOCOL);
        assert!(e.to_string().contains("protocol violation"), "{e}");
    }
}
