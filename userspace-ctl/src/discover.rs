//! `iscsictl discover`: a Discovery session at one portal (with CHAP when asked:
//! discovery authentication), `SendTargets=All`, a Logout, then the targets with
//! their portals and portal group tags (text or `--json`).

use std::io::Write;

use crate::exit::Error;
use crate::login::connect_and_login;
use crate::plan::LoginRequest;
use crate::portal::Portal;
use crate::report::{self, FoundPortal};

/// Runs the discovery `r` plans (a Discovery-session login request) and prints
/// its result on `out`.
pub fn run(
    r: &LoginRequest,
    json: bool,
    out: &mut dyn Write,
    notices: &mut dyn Write,
) -> Result<(), Error> {
    let mut s = connect_and_login(r, None, notices)?;
    let asked = asked_portal(&s.portal, s.outcome.target_portal_group_tag);
    let (text, seq) = s.send_targets()?;
    s.logout(seq)?;
    let found = report::targets(&text, &asked);
    let shown = if json {
        report::targets_json(&found)
    } else {
        report::targets_text(&found)
    };
    out.write_all(shown.as_bytes())
        .map_err(|e| Error::Failed(format!("cannot write the result: {e}")))
}

/// The portal we ended up asking, for targets listed without an address.
fn asked_portal(p: &Portal, tag: Option<u16>) -> FoundPortal {
    report::found_portal(p, tag)
}
