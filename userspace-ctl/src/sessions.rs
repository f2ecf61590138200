//! The verbs that talk to iscsi_rs.ko through `/dev/iscsi_rs`: hand a logged-in
//! connection to the kernel (`login` without `--dry-run`), `list` and `logout`.
//! The ioctl client itself is `handoff.rs`; this file turns its results into what
//! the user reads and its errors into exit codes.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use iscsi_proto::uapi::{self, c_str_field, state, SessionInfo, DIGEST_CRC32C};

use crate::exit::Error;
use crate::handoff::{self, HandoffArgs, HandoffError};
use crate::plan::LoginRequest;
use crate::recipe::Recipe;
use crate::session::Session;

pub(crate) fn kernel_error(e: HandoffError) -> Error {
    match e {
        HandoffError::Open { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            Error::ModuleNotLoaded
        }
        HandoffError::TooLong { .. } => Error::Usage(e.to_string()),
        e => Error::Failed(format!("iscsi_rs: {e}")),
    }
}

/// The SCSI host's can_queue for a `--queue-depth` / `tags` wish.
pub fn queue_depth(wish: Option<u16>) -> u32 {
    wish.map(u32::from)
        .unwrap_or(uapi::DEFAULT_QUEUE_DEPTH)
        .min(uapi::MAX_QUEUE_DEPTH)
}

/// Gives `session`'s socket to the kernel, then reports the SCSI host and the
/// disks that the LUN scan brings up.
pub fn hand_off(
    device: &Path,
    session: Session,
    r: &LoginRequest,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let target = r.target_name.as_ref().map(|t| t.as_str()).unwrap_or("");
    let portal = session.portal.to_string();
    let outcome = session.outcome;
    // What the daemon needs to log in again after a connection loss; kept by the
    // kernel with the session and wiped here when it goes out of scope.
    // The namespace we run in: the daemon logs in again from the same one.
    let netns = crate::netns::current().ok();
    let recipe = Recipe::from_login(r, &session, netns)
        .and_then(|rc| rc.encode())
        .map_err(|e| Error::Usage(format!("{e}; not handing off")))?;
    let queue_depth = queue_depth(r.queue_depth);
    // The kernel must start at a PDU boundary with nothing buffered here.
    let stream = session.conn.into_stream().ok_or_else(|| {
        Error::Protocol("the target sent data after the login response; not handing off".into())
    })?;
    let args = HandoffArgs {
        outcome: &outcome,
        target_name: target,
        initiator_name: r.initiator_name.as_str(),
        portal: &portal,
        queue_depth,
        recipe: Some(&recipe),
        recovery: r.recovery,
    };
    let host = handoff::add_session(device, &stream, &args).map_err(kernel_error)?;
    // The kernel holds its own reference to the socket now.
    drop(stream);
    let disks = wait_for_disks(host, Duration::from_secs(10));
    let mut text = format!("logged in to {target} at {portal}: SCSI host {host}\n");
    if disks.is_empty() {
        text.push_str("no disks yet (the LUN scan may still be running; see lsscsi)\n");
    }
    for d in &disks {
        text.push_str(&format!("  /dev/{d}\n"));
    }
    out.write_all(text.as_bytes())
        .map_err(|e| Error::Failed(format!("cannot write the result: {e}")))
}

/// Block devices of SCSI host `host`, sorted.
fn disks_of(host: u32) -> Vec<String> {
    let mut found = Vec::new();
    let base = format!("/sys/class/scsi_host/host{host}/device");
    let Ok(targets) = std::fs::read_dir(&base) else {
        return found;
    };
    for t in targets.flatten() {
        if !t.file_name().to_string_lossy().starts_with("target") {
            continue;
        }
        let Ok(luns) = std::fs::read_dir(t.path()) else {
            continue;
        };
        for l in luns.flatten() {
            if let Ok(blocks) = std::fs::read_dir(l.path().join("block")) {
                found.extend(
                    blocks
                        .flatten()
                        .map(|b| b.file_name().to_string_lossy().into()),
                );
            }
        }
    }
    found.sort();
    found
}

/// Waits until the disk list stops growing (the scan is asynchronous) or `limit`.
fn wait_for_disks(host: u32, limit: Duration) -> Vec<String> {
    let start = Instant::now();
    let mut last = disks_of(host);
    let mut stable_since = Instant::now();
    while start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(100));
        let now = disks_of(host);
        if now != last {
            last = now;
            stable_since = Instant::now();
        } else if !last.is_empty() && stable_since.elapsed() >= Duration::from_millis(500) {
            break;
        }
    }
    last
}

fn state_name(s: u8) -> &'static str {
    match s {
        state::RUNNING => "running",
        state::LOGGING_OUT => "logging-out",
        state::FAILED => "failed",
        state::RECOVERING => "recovering",
        _ => "unknown",
    }
}

fn digest_name(d: u8) -> &'static str {
    if d == DIGEST_CRC32C {
        "CRC32C"
    } else {
        "None"
    }
}

fn field(name: &'static str, raw: &[u8]) -> String {
    c_str_field(name, raw).unwrap_or("?").to_string()
}

/// `iscsictl list [--json]`.
pub fn list(device: &Path, json: bool, out: &mut dyn Write) -> Result<(), Error> {
    let sessions = handoff::list_sessions(device).map_err(kernel_error)?;
    let text = if json {
        let rows: Vec<serde_json::Value> = sessions.iter().map(session_json).collect();
        let mut s = serde_json::to_string_pretty(&rows)
            .map_err(|e| Error::Failed(format!("cannot encode JSON: {e}")))?;
        s.push('\n');
        s
    } else if sessions.is_empty() {
        "no sessions\n".to_string()
    } else {
        sessions
            .iter()
            .map(|i| session_line(i, &disks_of(i.host_no)))
            .collect()
    };
    out.write_all(text.as_bytes())
        .map_err(|e| Error::Failed(format!("cannot write the result: {e}")))
}

/// One session of the text listing.
fn session_line(i: &SessionInfo, disks: &[String]) -> String {
    format!(
        "host{} {} {} {} recoveries={} HeaderDigest={} DataDigest={} disks: {}\n",
        i.host_no,
        field("target_name", &i.target_name),
        field("portal", &i.portal),
        state_name(i.state),
        i.recoveries,
        digest_name(i.header_digest),
        digest_name(i.data_digest),
        disks.join(",")
    )
}

fn session_json(i: &SessionInfo) -> serde_json::Value {
    serde_json::json!({
        "host": i.host_no,
        "target": field("target_name", &i.target_name),
        "initiator": field("initiator_name", &i.initiator_name),
        "portal": field("portal", &i.portal),
        "state": state_name(i.state),
        "recoveries": i.recoveries,
        "replacement_timeout": i.replacement_timeout,
        "tsih": i.tsih,
        "header_digest": digest_name(i.header_digest),
        "data_digest": digest_name(i.data_digest),
        "queue_depth": i.queue_depth,
        "max_recv_data_segment_length": i.max_recv_data_segment_len,
        "max_xmit_data_segment_length": i.max_xmit_data_segment_len,
        "disks": disks_of(i.host_no),
    })
}

/// `iscsictl logout (-t IQN | -a | --host N)`: Logout through the kernel, then
/// the host is removed.
pub fn logout(
    device: &Path,
    target: Option<&str>,
    all: bool,
    host: Option<u32>,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let sessions = handoff::list_sessions(device).map_err(kernel_error)?;
    let chosen: Vec<&SessionInfo> = sessions
        .iter()
        .filter(|i| {
            all || host == Some(i.host_no)
                || target.is_some_and(|t| c_str_field("target_name", &i.target_name) == Ok(t))
        })
        .collect();
    if chosen.is_empty() && all {
        // Nothing to do is done: `logout -a` is the boot unit's ExecStop, which
        // must not fail on a host without sessions.
        return out
            .write_all(b"no sessions\n")
            .map_err(|e| Error::Failed(format!("cannot write the result: {e}")));
    }
    if chosen.is_empty() {
        return Err(Error::Failed(
            "no matching session (see iscsictl list)".into(),
        ));
    }
    for i in chosen {
        handoff::remove_session(device, i.host_no, false).map_err(kernel_error)?;
        let line = format!(
            "logged out of {} (host{})\n",
            field("target_name", &i.target_name),
            i.host_no
        );
        out.write_all(line.as_bytes())
            .map_err(|e| Error::Failed(format!("cannot write the result: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovering_sessions_show_state_and_count() {
        let mut i = SessionInfo::zeroed();
        i.host_no = 4;
        i.state = state::RECOVERING;
        i.recoveries = 3;
        i.replacement_timeout = 120;
        i.header_digest = DIGEST_CRC32C;
        uapi::set_c_str("iqn.2001-04.com.example:t", &mut i.target_name).unwrap();
        uapi::set_c_str("127.0.0.1:3260", &mut i.portal).unwrap();
        assert_eq!(
            session_line(&i, &["sdb".into()]),
            "host4 iqn.2001-04.com.example:t 127.0.0.1:3260 recovering recoveries=3 \
             HeaderDigest=CRC32C DataDigest=None disks: sdb\n"
        );
        let j = session_json(&i);
        assert_eq!(j["state"], "recovering");
        assert_eq!(j["recoveries"], 3);
        assert_eq!(j["replacement_timeout"], 120);
        for (s, name) in [
            (state::RUNNING, "running"),
            (state::LOGGING_OUT, "logging-out"),
            (state::FAILED, "failed"),
            (0, "unknown"),
        ] {
            assert_eq!(state_name(s), name);
        }
    }
}
