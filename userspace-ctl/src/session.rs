//! Drives iscsi-proto's sans-IO exchanges over a [`Connection`]: the login
//! (following redirects), the login of a further connection of a session
//! (multiple connections per session), SendTargets, and the Logout that ends
//! a session. The
//! protocol decisions are all iscsi-proto's; this file only moves PDUs, supplies
//! randomness and hashes, and switches framing when the full feature phase starts.

use std::io::Write;
use std::time::Duration;

use iscsi_proto::chap::{Challenge, ChapAlgorithm, ChapConfig, ChapError};
use iscsi_proto::discovery::{DiscoveryStep, SendTargets};
use iscsi_proto::framing::FramingSettings;
use iscsi_proto::login::{
    Login, LoginConfig, LoginError, LoginOutcome, LoginStatus, LoginStep, Logout, ProtocolError,
    Redirect, Sequence, LOGIN_BUFFER_LEN, MAX_LOGIN_PDU_LEN,
};
use iscsi_proto::negotiate::{Digest, Proposal, SessionParams, SessionType};

use crate::crypto::{random_bytes, random_isid, RustCryptoDigest};
use crate::exit::Error;
use crate::failure::{self, Context};
use crate::portal::Portal;
use crate::transport::{Connection, Phase, Source, TransportError};

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

/// How to reach the portal: from where, how long, and which portal group must
/// answer.
#[derive(Debug, Clone, Default)]
pub struct Timeouts {
    /// For the TCP connection.
    pub connect: Duration,
    /// For the whole login exchange on one connection; also for logout and
    /// discovery, each on its own clock.
    pub login: Duration,
    /// Interface / address our end binds to before connecting.
    pub source: Source,
    /// The TargetPortalGroupTag discovery reported for the portal (from
    /// `-p HOST:PORT,TAG`, the config's `TargetAddress = …,TAG`, or what the first
    /// login of a session answered): a login that lands in another portal group
    /// fails (see [`check_tag`]).
    pub tag: Option<u16>,
}

impl Timeouts {
    /// A TCP connection to `portal` from our source, ready for a login under
    /// these timeouts.
    fn connect_for_login(&self, portal: &Portal) -> Result<Connection, TransportError> {
        Connection::connect(portal, &self.source, self.connect, Phase::Login, self.login)
    }
}

/// A connection in the full feature phase.
#[derive(Debug)]
pub struct Session {
    pub conn: Connection,
    pub outcome: LoginOutcome,
    /// The portal logged in to (differs from the one asked for after a redirect).
    pub portal: Portal,
    /// Where the last permanent redirect (status 0x0102, "target moved
    /// permanently") of this login sent us: later logins go there first.
    /// Temporary redirects (0x0101) are followed but never remembered.
    pub moved: Option<Portal>,
    /// Whether the login ended at a portal a temporary redirect named (then
    /// `conn.peer()` is no address to come back to).
    pub temporary: bool,
    timeouts: Timeouts,
}

/// How one login attempt on one connection ended, when not with an error.
enum Attempt {
    Complete(LoginOutcome),
    Redirect(Redirect),
    /// The target refused with this status (class 2 or 3); `offer` is true when
    /// it came in answer to our CHAP_A list (see [`md5_alone`]).
    Refused {
        status: LoginStatus,
        offer: bool,
    },
    /// The target answered our CHAP_A list with CHAP_A=Reject.
    OfferRejected(LoginError),
}

/// Logs in at `portal`, following up to [`MAX_REDIRECTS`] redirects; each is
/// announced on `notices`, as is the one CHAP retry (MD5 alone after a refused
/// CHAP_A list, see [`md5_alone`], or the one described at [`without_sha256`]).
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
    let mut want_tag = timeouts.tag;
    let offered = chap.map(|c| c.algorithms.to_vec()).unwrap_or_default();
    let md5 = md5_alone(&offered);
    let fallback = without_sha256(&offered);
    let mut retried = false;
    let mut hops = 0usize;
    let mut moved = None;
    let mut temporary = false;
    loop {
        let mut conn = timeouts.connect_for_login(&portal)?;
        match login_once(&mut conn, proposal, chap, isid, None, cx)? {
            Attempt::Complete(outcome) => {
                if let Err(e) = check_tag(want_tag, outcome.target_portal_group_tag, &portal) {
                    conn.close();
                    return Err(e);
                }
                if want_tag.is_some() && outcome.target_portal_group_tag.is_none() {
                    let _ = writeln!(
                        notices,
                        "iscsictl: warning: {portal} did not send its TargetPortalGroupTag \
                         (RFC 7143 §13.9 wants it); cannot check it against {}",
                        want_tag.unwrap_or_default()
                    );
                }
                conn.set_framing(full_feature_framing(&outcome.params));
                return Ok(Session {
                    conn,
                    outcome,
                    portal,
                    moved,
                    temporary,
                    timeouts,
                });
            }
            // Old targets (LIO before Linux 3.15, Synology) read CHAP_A as one
            // value and refuse a list: offer MD5 alone, once.
            Attempt::Refused { offer: true, .. } | Attempt::OfferRejected(_)
                if !retried && md5.is_some() =>
            {
                conn.close();
                retried = true;
                let list = offered
                    .iter()
                    .map(|a| a.code().to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                if let (Some(c), Some(algs)) = (chap.as_mut(), md5.as_deref()) {
                    c.algorithms = algs;
                }
                let _ = writeln!(
                    notices,
                    "iscsictl: {portal} refused our CHAP_A list ({list}); retrying once \
                     offering MD5 alone (CHAP_A=5), as targets that take CHAP_A for a \
                     single value need (LIO before Linux 3.15, Synology)"
                );
            }
            Attempt::OfferRejected(e) => return Err(failure::login(e, cx)),
            Attempt::Refused {
                status: LoginStatus::InitiatorError,
                offer: false,
            } if !retried && fallback.is_some() => {
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
            Attempt::Refused { status, .. } => return Err(failure::status(status, cx)),
            Attempt::Redirect(r) => {
                conn.close();
                let parsed = r.portal().ok();
                let next = parsed
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
                // The new portal may belong to another portal group; only the tag
                // the redirect names (if any) can be checked there.
                want_tag = parsed.and_then(|p| p.tag);
                if r.permanent {
                    moved = Some(next.clone());
                }
                temporary = !r.permanent;
                portal = next;
            }
        }
    }
}

/// A login that reached another portal group than discovery reported for the
/// portal is refused, as open-iscsi does (its `LOGIN_WRONG_PORTAL_GROUP` ends
/// the attempt). RFC 7143 §13.9 makes the tag the identity of the portal group
/// serving the login, and a session is identified by ISID *and* that portal
/// group (§4.4.3 "SSID"): landing elsewhere means the portal was reassigned or
/// another target answers there, and the ISID rules (and multipath's idea of
/// which paths are distinct) no longer hold. A clear error beats a session in
/// the wrong place; running discovery again gives the current tag.
pub fn check_tag(want: Option<u16>, got: Option<u16>, portal: &Portal) -> Result<(), Error> {
    match (want, got) {
        (Some(w), Some(g)) if w != g => Err(Error::Protocol(format!(
            "login failed: {portal} answered for portal group {g}, but discovery reported \
             portal group {w} there (TargetPortalGroupTag mismatch) — the target's portal \
             groups changed; run iscsictl discover -p {portal} again and log in with the \
             portal and tag it lists"
        ))),
        _ => Ok(()),
    }
}

/// The offer to retry with when the target refused our CHAP_A list: MD5 alone,
/// if the list had more than MD5 and MD5 was allowed at all (a user who left
/// md5 out of --chap-algs does not get it behind their back).
fn md5_alone(offer: &[ChapAlgorithm]) -> Option<Vec<ChapAlgorithm>> {
    (offer.len() > 1 && offer.contains(&ChapAlgorithm::Md5)).then(|| vec![ChapAlgorithm::Md5])
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

/// What a login of a further connection adds to a leading one's settings.
#[derive(Debug, Clone, Copy)]
struct Secondary {
    /// The session's, from the leading login.
    tsih: u16,
    /// This connection's.
    cid: u16,
    /// The session's current CmdSN (nothing has been sent yet: the leading
    /// login's).
    cmd_sn: u32,
    /// The session's negotiated values: only connection keys are offered.
    params: SessionParams,
}

/// Logs in a further connection of the session `lead` (RFC 7143 §6.3.5 row 5,
/// "add a new connection"): the same ISID and the TSIH the leading login got,
/// CID `cid`, at the address the leading login reached, offering only the
/// connection keys (digests, MaxRecvDataSegmentLength). CHAP runs afresh with
/// the algorithm the leading login ended with. A redirect is a failure here:
/// every connection of a session must reach the same portal group.
pub fn add_connection(
    lead: &Session,
    cid: u16,
    proposal: Proposal<'_>,
    chap: Option<ChapConfig<'_>>,
    cx: &Context<'_>,
) -> Result<Session, Error> {
    let o = &lead.outcome;
    let used = o.chap_algorithm.map(|a| [a]);
    let chap = match (chap, &used) {
        (Some(mut c), Some(one)) => {
            c.algorithms = one;
            Some(c)
        }
        (c, _) => c,
    };
    let peer = lead.conn.peer();
    let portal = Portal::parse(&peer.to_string()).map_err(|e| {
        Error::Failed(format!(
            "the leading connection's peer {peer}: {}",
            e.reason
        ))
    })?;
    let timeouts = &lead.timeouts;
    let mut conn = timeouts.connect_for_login(&portal)?;
    let second = Secondary {
        tsih: o.tsih,
        cid,
        cmd_sn: o.cmd_sn,
        params: o.params,
    };
    let outcome = match login_once(&mut conn, proposal, chap, o.isid, Some(second), cx)? {
        Attempt::Complete(outcome) => outcome,
        Attempt::Redirect(r) => {
            conn.close();
            return Err(Error::Protocol(format!(
                "login of connection {cid} failed: {portal} redirected it to {:?}; a \
                 session's connections must all reach one portal group",
                r.address.as_str()
            )));
        }
        Attempt::Refused { status, .. } => {
            conn.close();
            return Err(failure::status(status, cx));
        }
        Attempt::OfferRejected(e) => {
            conn.close();
            return Err(failure::login(e, cx));
        }
    };
    if let Err(e) = check_tag(
        o.target_portal_group_tag,
        outcome.target_portal_group_tag,
        &portal,
    ) {
        conn.close();
        return Err(e);
    }
    conn.set_framing(full_feature_framing(&outcome.params));
    Ok(Session {
        conn,
        outcome,
        portal,
        moved: None,
        temporary: false,
        timeouts: timeouts.clone(),
    })
}

/// One login on one connection, until it completes or redirects: a leading
/// one, or with `secondary` a further connection of a session.
fn login_once(
    conn: &mut Connection,
    proposal: Proposal<'_>,
    chap: Option<ChapConfig<'_>>,
    isid: [u8; 6],
    secondary: Option<Secondary>,
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
    if let Some(s) = secondary {
        config.tsih = s.tsih;
        config.cid = s.cid;
        config.cmd_sn = s.cmd_sn;
        config.session = Some(s.params);
    }
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
    let mut first = true;
    loop {
        let n = login
            .next_request(&mut out)
            .map_err(|e| failure::login(e, cx))?;
        conn.send(out.get(..n).unwrap_or(&[]))?;
        let pdu = match conn.recv() {
            Ok(pdu) => pdu,
            Err(e @ TransportError::Closed { .. })
                if first && chap.is_none() && proposal.session_type == SessionType::Discovery =>
            {
                return Err(hung_up_on_auth_none(e))
            }
            Err(e) => return Err(e.into()),
        };
        first = false;
        let offer = login.chap_offer_pending();
        match login.handle_response(&pdu.bhs, pdu.data, &mut RustCryptoDigest) {
            Ok(LoginStep::SendNext) => continue,
            Ok(LoginStep::Complete(o)) => return Ok(Attempt::Complete(o)),
            Ok(LoginStep::Redirect(r)) => return Ok(Attempt::Redirect(r)),
            // Class 2 only: a class-3 refusal is the target's own trouble.
            Err(LoginError::Status(status)) => {
                let offer = offer && status.code16() >> 8 == 2;
                return Ok(Attempt::Refused { status, offer });
            }
            Err(e @ LoginError::Protocol(ProtocolError::Chap(ChapError::AlgorithmRejected))) => {
                return Ok(Attempt::OfferRejected(e))
            }
            Err(e) => return Err(failure::login(e, cx)),
        }
    }
}

/// The portal hung up on the first Login Request of a Discovery session, which
/// offered only AuthMethod=None (no credentials were given), without a Login
/// Response.
/// RFC 7143 wants a refusal with a status (0x0201) or `AuthMethod=Reject`, but
/// LIO with discovery authentication enforced (`enforce_discovery_auth`) finds
/// no common AuthMethod and closes the connection instead. The likeliest cause
/// is a portal that requires CHAP, so that is the error (exit 5), worded as the
/// inference it is. Normal sessions keep the plain "closed" error (exit 7): LIO
/// and tgt refuse those with a status.
fn hung_up_on_auth_none(e: TransportError) -> Error {
    Error::AuthFailed(format!(
        "{e}, in answer to our first login request (which offered no authentication) \
         and without a Login Response: the portal probably requires CHAP (LIO does \
         this when discovery authentication is enforced) — pass --chap-user and \
         --chap-secret-file"
    ))
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

    #[test]
    fn md5_retry_offer() {
        assert_eq!(md5_alone(&[Sha256, Sha3_256, Sha1, Md5]), Some(vec![Md5]));
        assert_eq!(md5_alone(&[Md5, Sha1]), Some(vec![Md5]));
        // Nothing to retry: MD5 alone was the offer, or the user excluded it.
        assert_eq!(md5_alone(&[Md5]), None);
        assert_eq!(md5_alone(&[Sha256, Sha1]), None);
    }

    #[test]
    fn tag_check() {
        let p = Portal::parse("192.0.2.1:3260").unwrap();
        assert!(check_tag(None, Some(3), &p).is_ok());
        assert!(check_tag(Some(3), Some(3), &p).is_ok());
        assert!(check_tag(Some(3), None, &p).is_ok());
        let e = check_tag(Some(1), Some(2), &p).unwrap_err();
        assert_eq!(e.exit_code(), crate::exit::PROTOCOL);
        let msg = e.to_string();
        assert!(msg.contains("answered for portal group 2"), "{msg}");
        assert!(msg.contains("reported portal group 1"), "{msg}");
        assert!(msg.contains("discover -p 192.0.2.1:3260"), "{msg}");
    }
}
