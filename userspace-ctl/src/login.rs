//! `iscsictl login`: for every planned request, a full login (CHAP, digests,
//! redirects: all iscsi-proto's), then either `--dry-run`'s report of the
//! negotiated parameters and a Logout, or the handoff to the kernel: after
//! checking that the kernel has no session on this path yet, with the path's
//! stable ISID (`identity.rs`), and with more than one connection wanted
//! (`--connections N`, or by default one per CPU up to 16) the logins of the
//! session's further connections before the handoff. The connect-and-login
//! step and the further connections are shared with the recovery daemon's
//! re-login.

use std::io::Write;
use std::time::Duration;

use iscsi_proto::chap::{ChapAlgorithm, ChapConfig};
use iscsi_proto::negotiate::Proposal;
use iscsi_proto::uapi::{SessionInfo, MAX_CONNECTIONS};

use crate::exit::Error;
use crate::failure::Context;
use crate::handoff;
use crate::identity::{isid_hex, IsidStore, Lock};
use crate::offer;
use crate::plan::{Auth, LoginRequest, SystemPaths};
use crate::recipe::Recipe;
use crate::report::{self, SessionView};
use crate::session::{self, Session, Timeouts};
use crate::sessions::{attached_text, field, hand_off, kernel_error, view, wait_for_disks};

/// What one login produced, for `login --json` (`None` when printing text).
pub type JsonRow = Option<serde_json::Value>;

/// Logs in as `r` asks; prints on `out` (text, or nothing and the JSON row
/// returned when `json`), remarks on `notices`.
pub fn login_one(
    r: &LoginRequest,
    paths: &SystemPaths,
    json: bool,
    out: &mut dyn Write,
    notices: &mut dyn Write,
) -> Result<JsonRow, Error> {
    if !r.dry_run {
        // A session the daemon could not log in again would only fail later, at
        // the worst moment: refuse it before connecting.
        Recipe::from_request(r, None)
            .and_then(|rc| rc.encode())
            .map_err(|e| Error::Usage(e.to_string()))?;
        return attach(r, paths, json, out, notices);
    }
    // A dry run takes a random ISID and records nothing: with the path's own
    // ISID it would reinstate (end) a session the kernel has on that path.
    let session = connect_and_login(r, None, notices)?;
    let target = r.target_name.as_ref().map(|t| t.as_str());
    let pairs = report::negotiated(&session.outcome, target, &session.portal.to_string());
    let (text, row) = if json {
        let view = SessionView {
            host: None,
            target: target.unwrap_or_default().to_owned(),
            initiator: r.initiator_name.as_str().to_owned(),
            portal: report::found_portal(&session.portal, session.outcome.target_portal_group_tag),
            isid: session.outcome.isid,
            tsih: session.outcome.tsih,
            state: "dry-run".into(),
            params: pairs
                .iter()
                .filter(|(k, _)| !IDENTITY_KEYS.contains(&k.as_str()))
                .cloned()
                .collect(),
            ..SessionView::default()
        };
        (String::new(), Some(report::session_json(&view)))
    } else {
        let mut text = format!(
            "logged in to {} at {} (dry run)\n",
            target.unwrap_or("the discovery service"),
            session.portal
        );
        text.push_str(&report::lines(&pairs));
        (text, None)
    };
    // Log out even when stdout is gone (`| head`): the target should not keep a
    // session around for a broken pipe.
    let written = write_out(out, &text);
    let seq = session.outcome.sequence();
    session.logout(seq)?;
    written?;
    if !json {
        write_out(out, "logged out\n")?;
    }
    Ok(row)
}

/// Keys of [`report::negotiated`] that the session object has fields for.
const IDENTITY_KEYS: &[&str] = &[
    "TargetName",
    "Portal",
    "TargetPortalGroupTag",
    "ISID",
    "TSIH",
];

/// The kernel session `r` would duplicate: same target and initiator, and the
/// same portal or the same ISID (the path's, from the store).
fn existing<'a>(
    sessions: &'a [SessionInfo],
    target: &str,
    initiator: &str,
    portals: &[&str],
    isid: Option<[u8; 6]>,
) -> Option<&'a SessionInfo> {
    sessions.iter().find(|i| {
        field("target_name", &i.target_name) == target
            && (portals.contains(&field("portal", &i.portal).as_str())
                || (isid == Some(i.isid)
                    && field("initiator_name", &i.initiator_name) == initiator))
    })
}

fn exists_error(i: &SessionInfo) -> Error {
    Error::SessionExists(format!(
        "already logged in to {} at {} (SCSI host {}, ISID {}); not logging in again \
         (iscsictl logout --host {} first for a new session)",
        field("target_name", &i.target_name),
        field("portal", &i.portal),
        i.host_no,
        isid_hex(&i.isid),
        i.host_no
    ))
}

/// A real login: refuse a second session on the same path, log in with the
/// path's stable ISID (a new one is drawn and recorded the first time), hand
/// the connection to the kernel, report the host and its disks.
fn attach(
    r: &LoginRequest,
    paths: &SystemPaths,
    json: bool,
    out: &mut dyn Write,
    notices: &mut dyn Write,
) -> Result<JsonRow, Error> {
    let target = r.target_name.as_ref().map(|t| t.as_str()).unwrap_or("");
    let initiator = r.initiator_name.as_str();
    let asked = r.portal.to_string();
    let store = IsidStore::new(&paths.state_dir);
    let known = store.lookup(initiator, target, &asked)?;
    let _serialised = Lock::login(&paths.state_dir, known.as_ref().map(|e| e.isid));
    let sessions = handoff::list_sessions(&paths.device).map_err(kernel_error)?;
    if let Some(i) = existing(
        &sessions,
        target,
        initiator,
        &[&asked],
        known.as_ref().map(|e| e.isid),
    ) {
        return Err(exists_error(i));
    }
    let isid = match &known {
        Some(e) => {
            log::debug!(
                "{target} at {asked}: ISID {} from {}",
                isid_hex(&e.isid),
                store.path().display()
            );
            e.isid
        }
        None => {
            let isid = store.fresh_isid(initiator, target)?;
            log::debug!(
                "{target} at {asked}: first login on this path, new ISID {}",
                isid_hex(&isid)
            );
            isid
        }
    };
    let session = connect_and_login(r, Some(isid), notices)?;
    let reached = session.portal.to_string();
    // After a redirect the session runs at another portal: one of ours there
    // (logged in before the store knew this path) is the same path.
    if reached != asked {
        if let Some(i) = existing(&sessions, target, initiator, &[&reached], None) {
            let seq = session.outcome.sequence();
            let _ = session.logout(seq);
            return Err(exists_error(i));
        }
    }
    match session.outcome.target_portal_group_tag {
        Some(tpgt) => {
            if let Err(e) = store.record(initiator, target, tpgt, &[&asked, &reached], isid) {
                let _ = writeln!(
                    notices,
                    "iscsictl: warning: {e}; the next login to {asked} will use another ISID"
                );
            }
        }
        None => {
            let _ = writeln!(
                notices,
                "iscsictl: warning: {reached} sent no TargetPortalGroupTag; ISID {} not recorded",
                isid_hex(&isid)
            );
        }
    }
    let wanted = r.connections.count();
    let extras = if connection_count(wanted, session.outcome.params.max_connections) > 1 {
        let dev = handoff::Device::open(&paths.device).map_err(kernel_error)?;
        if dev.has_connections() {
            further_connections(&session, r, wanted, notices)
        } else {
            let why = format!(
                "this iscsi_rs module has one connection per session \
                 (no LIST_CONNECTIONS); logging in one, not {wanted}"
            );
            // Only a count someone chose is worth a notice.
            if r.connections.asked() {
                let _ = writeln!(notices, "iscsictl: {why}");
            } else {
                log::debug!("{why}");
            }
            Vec::new()
        }
    } else {
        // One connection, wanted or all the target allows (MaxConnections=1):
        // the single-connection path, without asking the kernel anything;
        // this only says so when a larger count was asked for.
        further_connections(&session, r, wanted, notices)
    };
    let host = hand_off(&paths.device, session, extras, r, notices)?;
    // The kernel lists the session now: the next login's check sees it.
    drop(_serialised);
    let disks = wait_for_disks(&paths.sysfs, host, Duration::from_secs(10));
    if json {
        // The same object `list --json` shows for this session.
        let now = handoff::list_sessions(&paths.device).map_err(kernel_error)?;
        let row = match now.iter().find(|i| i.host_no == host) {
            Some(i) => report::session_json(&view(i, &paths.sysfs, Some(&store))),
            None => {
                return Err(Error::Failed(format!(
                    "SCSI host {host} went away right after the login (see dmesg)"
                )))
            }
        };
        return Ok(Some(row));
    }
    write_out(out, &attached_text(target, &reached, host, &disks))?;
    Ok(None)
}

/// Connections a session gets: what was wanted, within what the target
/// negotiated (MaxConnections) and the kernel's lanes; at least one.
pub fn connection_count(wanted: u16, negotiated: u16) -> u16 {
    wanted.min(negotiated).clamp(1, MAX_CONNECTIONS)
}

/// Logs in connections 1..n of the session `lead` logged in (n from
/// [`connection_count`]), before anything runs on it: each login then carries
/// the leading one's CmdSN. CHAP runs afresh on each. A target allowing fewer
/// than `wanted` is a notice when `r` asked for its count, and quiet when the
/// count is the default (one per CPU). The first that fails
/// (the target refusing with "too many connections", or any other error) is
/// a notice and ends the series, so that the lanes stay contiguous: the
/// session goes on with the connections logged in so far.
pub fn further_connections(
    lead: &Session,
    r: &LoginRequest,
    wanted: u16,
    notices: &mut dyn Write,
) -> Vec<Session> {
    let negotiated = lead.outcome.params.max_connections;
    let n = connection_count(wanted, negotiated);
    if n < wanted {
        let plural = if negotiated == 1 { "" } else { "s" };
        if r.connections.asked() {
            let _ = writeln!(
                notices,
                "iscsictl: {} allows {negotiated} connection{plural} per session \
                 (MaxConnections); using {n} of the {wanted} asked for",
                lead.portal,
            );
        } else {
            log::debug!(
                "{} allows {negotiated} connection{plural} per session (MaxConnections); \
                 using {n} (the default is {wanted}, one per CPU)",
                lead.portal,
            );
        }
    }
    let mut extras = Vec::new();
    for cid in 1..n {
        let got = with_login_inputs(r, |proposal, chap, cx, _| {
            session::add_connection(lead, cid, proposal, chap, cx)
        })
        .and_then(|x| x);
        match got {
            Ok(s) => extras.push(s),
            Err(e) => {
                let _ = writeln!(
                    notices,
                    "iscsictl: connection {cid} not logged in ({e}); the session goes on \
                     with {cid} connection{}",
                    if cid == 1 { "" } else { "s" }
                );
                break;
            }
        }
    }
    extras
}

/// The pieces of a login as `r` asks for it, handed to `f`: the proposal, the
/// CHAP settings, the context for error messages, the timeouts.
fn with_login_inputs<T>(
    r: &LoginRequest,
    f: impl FnOnce(Proposal<'_>, Option<ChapConfig<'_>>, &Context<'_>, Timeouts) -> T,
) -> Result<T, Error> {
    let proposal = offer::proposal(r)?;
    let (chap_creds, algs): (_, Vec<ChapAlgorithm>) = match &r.auth {
        Auth::Chap(c) => (Some(c), offer::algorithms(&c.algs)),
        Auth::None => (None, Vec::new()),
    };
    let chap = chap_creds.map(|c| offer::chap_config(c, &algs));
    let portal_s = r.portal.to_string();
    let algs_s = chap_creds.map(|c| c.algs.to_string()).unwrap_or_default();
    let cx = Context {
        chap: chap.is_some(),
        portal: &portal_s,
        initiator: r.initiator_name.as_str(),
        chap_algs: &algs_s,
    };
    let timeouts = Timeouts {
        connect: r.connect_timeout,
        login: r.login_timeout,
        source: r.source.clone(),
        tag: r.portal_group_tag,
    };
    Ok(f(proposal, chap, &cx, timeouts))
}

/// Connects to `r.portal` and logs in as `r` asks: a fresh ISID, or `isid` for
/// a re-login of a session the target may still know (session reinstatement:
/// TSIH 0 with the old ISID). Every call starts a fresh login; nothing
/// (CHAP challenges included) is reused from an earlier one.
pub fn connect_and_login(
    r: &LoginRequest,
    isid: Option<[u8; 6]>,
    notices: &mut dyn Write,
) -> Result<Session, Error> {
    with_login_inputs(r, |proposal, chap, cx, timeouts| match isid {
        None => session::login(&r.portal, proposal, chap, timeouts, cx, notices),
        Some(isid) => {
            session::login_with_isid(&r.portal, proposal, chap, timeouts, cx, isid, notices)
        }
    })?
}

fn write_out(out: &mut dyn Write, text: &str) -> Result<(), Error> {
    out.write_all(text.as_bytes())
        .map_err(|e| Error::Failed(format!("cannot write the result: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_proto::uapi;

    fn info(host: u32, target: &str, portal: &str, isid: [u8; 6]) -> SessionInfo {
        let mut i = SessionInfo::zeroed();
        i.host_no = host;
        i.isid = isid;
        uapi::set_c_str(target, &mut i.target_name).unwrap();
        uapi::set_c_str("iqn.2001-04.com.example:me", &mut i.initiator_name).unwrap();
        uapi::set_c_str(portal, &mut i.portal).unwrap();
        i
    }

    #[test]
    fn connections_within_the_target_and_the_kernel() {
        assert_eq!(connection_count(1, 4), 1);
        assert_eq!(connection_count(4, 4), 4);
        assert_eq!(connection_count(4, 2), 2);
        // A target answering MaxConnections=1: one, as before.
        assert_eq!(connection_count(8, 1), 1);
        assert_eq!(connection_count(16, u16::MAX), MAX_CONNECTIONS);
        assert_eq!(connection_count(u16::MAX, u16::MAX), MAX_CONNECTIONS);
        // Never none, whatever a confused peer says.
        assert_eq!(connection_count(4, 0), 1);
        assert_eq!(connection_count(0, 4), 1);
    }

    #[test]
    fn a_second_session_on_a_path_is_found() {
        const T: &str = "iqn.2001-04.com.example:t";
        const ME: &str = "iqn.2001-04.com.example:me";
        let a = [0x80, 0, 0, 0, 0, 1];
        let b = [0x80, 0, 0, 0, 0, 2];
        let s = [info(3, T, "192.0.2.1:3260", a)];
        // Same target and portal.
        assert_eq!(
            existing(&s, T, ME, &["192.0.2.1:3260"], None).map(|i| i.host_no),
            Some(3)
        );
        // Same path by its ISID although the portal is spelled otherwise
        // (a host name, or where a redirect ended).
        assert!(existing(&s, T, ME, &["array:3260"], Some(a)).is_some());
        // Another portal with another ISID: a second path (multipath), allowed.
        assert!(existing(&s, T, ME, &["192.0.2.2:3260"], Some(b)).is_none());
        assert!(existing(&s, T, ME, &["192.0.2.2:3260"], None).is_none());
        // Another target at the same portal.
        assert!(existing(
            &s,
            "iqn.2001-04.com.example:u",
            ME,
            &["192.0.2.1:3260"],
            Some(a)
        )
        .is_none());
        // The same ISID under another initiator name is another initiator port.
        assert!(existing(&s, T, "iqn.2001-04.com.example:you", &["x:1"], Some(a)).is_none());
        let e = exists_error(&s[0]);
        assert_eq!(e.exit_code(), crate::exit::SESSION_EXISTS);
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!(
                "already logged in to {T} at 192.0.2.1:3260 (SCSI host 3, ISID 800000000001)"
            )),
            "{msg}"
        );
    }
}
