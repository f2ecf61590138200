//! `iscsictl discover`: a Discovery session at one portal, `SendTargets=All`, a
//! Logout, then the targets with their portals and portal group tags (text or
//! `--json`).

use std::io::Write;

use crate::cli::DiscoverArgs;
use crate::exit::Error;
use crate::failure::Context;
use crate::names::IscsiName;
use crate::portal::{Host, Portal};
use crate::report::{self, FoundPortal};
use crate::session::{self, Timeouts};
use iscsi_proto::negotiate::Proposal;

/// Runs the discovery and prints its result on `out`.
pub fn run(
    args: &DiscoverArgs,
    initiator: &IscsiName,
    out: &mut dyn Write,
    notices: &mut dyn Write,
) -> Result<(), Error> {
    let timeouts = Timeouts {
        connect: args.connect.connect_timeout(),
        login: args.connect.login_timeout(),
    };
    let portal_s = args.portal.to_string();
    let cx = Context {
        chap: false,
        portal: &portal_s,
        initiator: initiator.as_str(),
        chap_algs: "",
    };
    let proposal = Proposal::discovery(initiator.as_str());
    let mut s = session::login(&args.portal, proposal, None, timeouts, &cx, notices)?;
    let asked = asked_portal(&s.portal, s.outcome.target_portal_group_tag);
    let (text, seq) = s.send_targets()?;
    s.logout(seq)?;
    let found = report::targets(&text, &asked);
    let shown = if args.json {
        report::targets_json(&found)
    } else {
        report::targets_text(&found)
    };
    out.write_all(shown.as_bytes())
        .map_err(|e| Error::Failed(format!("cannot write the result: {e}")))
}

/// The portal we ended up asking, for targets listed without an address.
fn asked_portal(p: &Portal, tag: Option<u16>) -> FoundPortal {
    let host = match &p.host {
        Host::V4(a) => a.to_string(),
        Host::V6(a) => a.to_string(),
        Host::Name(n) => n.clone(),
    };
    FoundPortal {
        host,
        port: p.port,
        tag,
        address: p.to_string(),
    }
}
