//! `iscsictl login`: for every planned request, a full login (CHAP, digests,
//! redirects: all iscsi-proto's), then either `--dry-run`'s report of the
//! negotiated parameters and a Logout, or the handoff to the kernel. The
//! connect-and-login step is shared with the recovery daemon's re-login.

use std::io::Write;

use iscsi_proto::chap::ChapAlgorithm;

use crate::exit::Error;
use crate::failure::Context;
use crate::offer;
use crate::plan::{Auth, LoginRequest};
use crate::recipe::Recipe;
use crate::report;
use crate::session::{self, Session, Timeouts};

/// Logs in as `r` asks; prints on `out`, remarks on `notices`.
pub fn login_one(
    r: &LoginRequest,
    out: &mut dyn Write,
    notices: &mut dyn Write,
) -> Result<(), Error> {
    if !r.dry_run {
        // A session the daemon could not log in again would only fail later, at
        // the worst moment: refuse it before connecting.
        Recipe::from_request(r, None)
            .and_then(|rc| rc.encode())
            .map_err(|e| Error::Usage(e.to_string()))?;
    }
    let session = connect_and_login(r, None, notices)?;
    if !r.dry_run {
        return handoff(session, r, out);
    }
    let target = r.target_name.as_ref().map(|t| t.as_str());
    let mut text = format!(
        "logged in to {} at {} (dry run)\n",
        target.unwrap_or("the discovery service"),
        session.portal
    );
    text.push_str(&report::lines(&report::negotiated(
        &session.outcome,
        target,
        &session.portal.to_string(),
    )));
    // Log out even when stdout is gone (`| head`): the target should not keep a
    // session around for a broken pipe.
    let written = write_out(out, &text);
    let seq = session.outcome.sequence();
    session.logout(seq)?;
    written?;
    write_out(out, "logged out\n")
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
    match isid {
        None => session::login(&r.portal, proposal, chap, timeouts, &cx, notices),
        Some(isid) => {
            session::login_with_isid(&r.portal, proposal, chap, timeouts, &cx, isid, notices)
        }
    }
}

/// Gives the logged-in connection to iscsi_rs.ko (LUN scan, /dev/sdX).
fn handoff(session: Session, r: &LoginRequest, out: &mut dyn Write) -> Result<(), Error> {
    let device = std::path::Path::new(crate::device::DEVICE_PATH);
    crate::sessions::hand_off(device, session, r, out)
}

fn write_out(out: &mut dyn Write, text: &str) -> Result<(), Error> {
    out.write_all(text.as_bytes())
        .map_err(|e| Error::Failed(format!("cannot write the result: {e}")))
}
