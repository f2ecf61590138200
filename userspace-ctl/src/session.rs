//! Drives iscsi-proto's sans-IO exchanges over a [`Connection`]: the login
//! (following redirects), SendTargets, and the Logout that ends a session. The
//! protocol decisions are all iscsi-proto's; this file only moves PDUs, supplies
//! randomness and hashes, and switches framing when the full feature phase starts.

use std::io::Write;
use std::time::Duration;

use iscsi_proto::chap::{Challenge, ChapAlgorithm, ChapConfig};
use iscsi_proto::discovery::{DiscoveryStep, SendTargets};
use iscsi_proto::framing::FramingSettings;
use iscsi_proto::login::{
    Login, LoginConfig, LoginError, LoginOutcome, LoginStatus, LoginStep, Logout, Redirect,
    Sequence, LOGIN_BUFFER_LEN, MAX_LOGIN_PDU_LEN,
};
use iscsi_proto::negotiate::{Digest, Proposal, SessionParams};

use crate::crypto::{random_bytes, random_isid, RustCryptoDigest};
use crate::exit::Error;
use crate::failure::{self, Context};
use crate::portal::Portal;
use crate::transport::{Connection, Phase};

/// Redirects followed before giving up (a loop between two portals ends here).
pub const MAX_REDIRECTS: usize = 4;
/// Length of our mutual CHAP challenge: the longest digest we support, so the
/// challenge never is the weak part (RFC 1994 leaves the length to us).
const MUTUAL_CHALLENGE_LEN: usize = 32;
/// Reassembly room for a SendTargets answer: thousands of targets.
const SENDTARGETS_BUFFER_LEN: usize = 1 << 20;
/// Task tags: login uses 0 (LoginConfig's default); later exchanges need others.
const SENDTARGETS_ITT: u32 = 1;
const LOGOUT_ITT: u32 = 2;

/// Where and how long.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// For the TCP connection.
    pub connect: Duration,
    /// For the whole login exchange on one connection; also for logout and
    /// discovery, each on its own clock.
    pub login: Duration,
}

/// A connection in the full feature phase.
#[derive(Debug)]
pub struct Session {
    pub conn: Connection,
    pub outcome: LoginOutcome,
    /// The portal logged in to (differs from the one asked for after a redirect).
    pub portal: Portal,
    timeouts: Timeouts,
}

/// How one login attempt on one connection ended, when not with an error.
enum Attempt {
    Complete(LoginOutcome),
    Redirect(Redirect),
    /// The target refused with this status (class 2 or 3).
    Refused(LoginStatus),
}

/// Logs in at `portal`, following up to [`MAX_REDIRECTS`] redirects; each is
/// announced on `notices`, as is the one CHAP retry described at
/// [`without_sha256`].
pub fn login(
    portal: &Portal,
    proposal: Proposal<'_>,
    chap: Option<ChapConfig<'_>>,
    timeouts: Timeouts,
    cx: &Context<'_>,
    notices: &mut dyn Write,
) -> Result<Session, Error> {
    // One ISID for the whole attempt: a redirect continues the same session.
    let isid = random_isid()?;
    login_with_isid(portal, proposal, chap, timeouts, cx, isid, notices)
}

/// [`login`] with a given ISID and TSIH 0: with the ISID of a session the target
/// still knows, this is session reinstatement (RFC 7143 §6.3.5), which the
/// recovery daemon uses to replace a lost connection. Every attempt runs a fresh
/// login (a fresh CHAP exchange with new challenges); nothing carries over.
pub fn login_with_isid(
    portal: &Portal,
    proposal: Proposal<'_>,
    chap: Option<ChapConfig<'_>>,
    timeouts: Timeouts,
    cx: &Context<'_>,
    isid: [u8; 6],
    notices: &mut dyn Write,
) -> Result<Session, Error> {
    let mut portal = portal.clone();
    let mut chap = chap;
    let fallback = chap.and_then(|c| without_sha256(c.algorithms));
    let mut retried = false;
    let mut hops = 0usize;
    loop {
        let mut conn =
            Connection::connect(&portal, timeouts.connect, Phase::Login, timeouts.login)?;
        match login_once(&mut conn, proposal, chap, isid, cx)? {
            Attempt::Complete(outcome) => {
                conn.set_framing(full_feature_framing(&outcome.params));
                return Ok(Session {
                    conn,
                    outcome,
                    portal,
                    timeouts,
                });
            }
            Attempt::Refused(LoginStatus::InitiatorError) if !retried && fallback.is_some() => {
                conn.close();
                retried = true;
                if let (Some(c), Some(algs)) = (chap.as_mut(), fallback.as_deref()) {
                    c.algorithms = algs;
                }
                let _ = writeln!(
                    notices,
                    "iscsictl: {portal} refused the CHAP login with an initiator error; \
                     retrying without sha256, which some targets (tgt) take for SHA-1"
                );
            }
            Attempt::Refused(status) => return Err(failure::status(status, cx)),
            Attempt::Redirect(r) => {
                conn.close();
                let next = r
                    .portal()
                    .ok()
                    .and_then(|p| Portal::parse(&p.to_string()).ok())
                    .ok_or_else(|| {
                        Error::Protocol(format!(
                            "login failed: the target redirected to {:?}, which is not a portal",
                            r.address.as_str()
                        ))
                    })?;
                hops += 1;
                if hops > MAX_REDIRECTS {
                    return Err(Error::Protocol(format!(
                        "login failed: more than {MAX_REDIRECTS} redirects (the last from \
                         {portal} to {next}); the targets send us around in circles"
                    )));
                }
                let how = if r.permanent {
                    "permanently"
                } else {
                    "temporarily"
                };
                let _ = writeln!(
                    notices,
                    "iscsictl: {portal} redirects {how} to {next}; following"
                );
                portal = next;
            }
        }
    }
}

/// The CHAP_A offer to retry with when the first one contained SHA-256 (and
/// something else), or `None`.
///
/// WORKAROUND (tgt): tgtd reads CHAP_A=7 as SHA-1 (IANA assigns 7 to SHA-256,
/// 6 to SHA-1), so when our offer starts with sha256 it picks 7, cannot decode our
/// 32-byte response and refuses with 0x0200. Dropping sha256 lets it fall back to
/// what it really supports (MD5), which RFC 7143 has every initiator offer anyway.
/// Targets that implement SHA-256 correctly never get here: they accept.
fn without_sha256(offer: &[ChapAlgorithm]) -> Option<Vec<ChapAlgorithm>> {
    if !offer.contains(&ChapAlgorithm::Sha256) {
        return None;
    }
    let rest: Vec<ChapAlgorithm> = offer
        .iter()
        .copied()
        .filter(|a| *a != ChapAlgorithm::Sha256)
        .collect();
    (!rest.is_empty()).then_some(rest)
}

/// One login on one connection, until it completes or redirects.
fn login_once(
    conn: &mut Connection,
    proposal: Proposal<'_>,
    chap: Option<ChapConfig<'_>>,
    isid: [u8; 6],
    cx: &Context<'_>,
) -> Result<Attempt, Error> {
    // Fresh for every attempt: a replayed challenge would let a recorded answer pass.
    let mut challenge = [0u8; MUTUAL_CHALLENGE_LEN];
    let mut identifier = [0u8; 1];
    let mutual = chap.is_some_and(|c| c.mutual.is_some());
    if mutual {
        random_bytes(&mut challenge)?;
        random_bytes(&mut identifier)?;
    }
    let mut config = LoginConfig::new(proposal, isid);
    config.chap = chap;
    if mutual {
        config.mutual_challenge = Some(Challenge {
            identifier: identifier[0],
            value: &challenge,
        });
    }
    let mut rx = vec![0u8; LOGIN_BUFFER_LEN];
    let mut tx = vec![0u8; LOGIN_BUFFER_LEN];
    let mut login = Login::new(config, &mut rx, &mut tx).map_err(|e| failure::login(e, cx))?;
    let mut out = vec![0u8; MAX_LOGIN_PDU_LEN];
    loop {
        let n = login
            .next_request(&mut out)
            .map_err(|e| failure::login(e, cx))?;
        conn.send(out.get(..n).unwrap_or(&[]))?;
        let pdu = conn.recv()?;
        match login.handle_response(&pdu.bhs, pdu.data, &mut RustCryptoDigest) {
            Ok(LoginStep::SendNext) => continue,
            Ok(LoginStep::Complete(o)) => return Ok(Attempt::Complete(o)),
            Ok(LoginStep::Redirect(r)) => return Ok(Attempt::Redirect(r)),
            Err(LoginError::Status(s)) => return Ok(Attempt::Refused(s)),
            Err(e) => return Err(failure::login(e, cx)),
        }
    }
}

/// Digests and receive limit of the full feature phase.
fn full_feature_framing(p: &SessionParams) -> FramingSettings {
    FramingSettings {
        header_digest: p.header_digest == Digest::Crc32c,
        data_digest: p.data_digest == Digest::Crc32c,
        max_recv_data_segment_len: p.max_recv_data_segment_len,
        target_opcodes_only: true,
    }
}

impl Session {
    /// SendTargets=All; returns the raw answer text for [`iscsi_proto::discovery::targets`].
    pub fn send_targets(&mut self) -> Result<(Vec<u8>, Sequence), Error> {
        self.conn.begin(Phase::Discovery, self.timeouts.login);
        let mut buf = vec![0u8; SENDTARGETS_BUFFER_LEN];
        let mut st = SendTargets::new(self.outcome.sequence(), SENDTARGETS_ITT, &mut buf);
        let mut out = vec![0u8; MAX_LOGIN_PDU_LEN];
        loop {
            let n = st.next_request(&mut out).map_err(failure::discovery)?;
            self.conn.send(out.get(..n).unwrap_or(&[]))?;
            let pdu = self.conn.recv()?;
            match st
                .handle_response(&pdu.bhs, pdu.data)
                .map_err(failure::discovery)?
            {
                DiscoveryStep::SendNext => continue,
                DiscoveryStep::Complete => break,
            }
        }
        let seq = st.sequence();
        Ok((st.text().to_vec(), seq))
    }

    /// Closes the session with a Logout (from `seq`, the numbers after the last
    /// exchange) and the connection after it.
    pub fn logout(mut self, seq: Sequence) -> Result<(), Error> {
        self.conn.begin(Phase::Logout, self.timeouts.login);
        let logout = Logout::close_session(seq, LOGOUT_ITT);
        let mut out = [0u8; iscsi_proto::bhs::BHS_LEN];
        let n = logout.write_request(&mut out).map_err(failure::logout)?;
        self.conn.send(out.get(..n).unwrap_or(&[]))?;
        let pdu = self.conn.recv()?;
        logout.handle_response(&pdu.bhs).map_err(failure::logout)?;
        self.conn.close();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChapAlgorithm::*;

    #[test]
    fn sha256_fallback_offer() {
        assert_eq!(
            without_sha256(&[Sha256, Sha3_256, Sha1, Md5]),
            Some(vec![Sha3_256, Sha1, Md5])
        );
        assert_eq!(without_sha256(&[Md5, Sha256]), Some(vec![Md5]));
        assert_eq!(without_sha256(&[Sha256]), None);
        assert_eq!(without_sha256(&[Sha1, Md5]), None);
    }
}
