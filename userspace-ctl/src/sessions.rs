//! The verbs that talk to iscsi_rs.ko through `/dev/iscsi_rs`: hand a logged-in
//! connection to the kernel (`login` without `--dry-run`), `list` (with the
//! LUNs and disks sysfs shows under the session's SCSI host) and `logout`.
//! The ioctl client itself is `handoff.rs`; this file turns its results into what
//! the user reads and its errors into exit codes.

use std::io::Write;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use iscsi_proto::uapi::{
    self, c_str_field, conn_state, state, ConnInfo, SessionInfo, DIGEST_CRC32C,
};

use crate::exit::Error;
use crate::handoff::{self, HandoffArgs, HandoffError};
use crate::identity::IsidStore;
use crate::plan::{LoginRequest, SystemPaths};
use crate::recipe::Recipe;
use crate::report::{
    found_portal_str, session_json, session_verbose, sessions_json, ConnView, Lun, SessionView,
};
use crate::session::Session;
use crate::transport;

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

/// Gives `session`'s socket to the kernel (ADD_SESSION, with one lane per
/// connection), then each of `extras` (the further connections already logged
/// in, CIDs 1, 2, …) with ADD_CONNECTION as lanes 1, 2, …; returns the SCSI
/// host number. An extra the kernel refuses is a notice: the session runs on
/// the others.
pub fn hand_off(
    device: &Path,
    session: Session,
    extras: Vec<Session>,
    r: &LoginRequest,
    notices: &mut dyn Write,
) -> Result<u32, Error> {
    let target = r.target_name.as_ref().map(|t| t.as_str()).unwrap_or("");
    let portal = session.portal.to_string();
    let outcome = session.outcome;
    // What the daemon needs to log in again after a connection loss; kept by the
    // kernel with the session and wiped here when it goes out of scope.
    // The namespace we run in: the daemon logs in again from the same one.
    let netns = crate::netns::current().ok();
    let lanes = u16::try_from(extras.len() + 1).unwrap_or(u16::MAX);
    let recipe = Recipe::from_login(r, &session, netns)
        .and_then(|mut rc| {
            // The lanes the session gets, not the count wanted: the daemon
            // logs in as many as the kernel has lanes, and its re-login then
            // offers the same MaxConnections. One writes no key at all (a
            // target answering MaxConnections=1 leaves the recipe as before).
            rc.connections = (lanes > 1).then_some(lanes);
            rc.encode()
        })
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
        connections: lanes,
    };
    let host = match handoff::add_session(device, &stream, &args) {
        Ok(host) => host,
        Err(e) => {
            close_unhanded(vec![stream], extras, notices);
            return Err(kernel_error(e));
        }
    };
    // The kernel holds its own reference to the socket now.
    drop(stream);
    if !extras.is_empty() {
        let dev = handoff::Device::open(device).map_err(kernel_error)?;
        let up = add_connections(&dev, host, extras, &args, 0, notices);
        let _ = writeln!(
            notices,
            "iscsictl: SCSI host {host} runs on {} connection{}",
            up + 1,
            if up == 0 { "" } else { "s" }
        );
    }
    Ok(host)
}

/// ADD_CONNECTION for each of `extras` (lane = position + 1) to session
/// `host` in recovery `generation`; `lead` is the leading connection's
/// argument (names, depth). Returns how many the kernel took. A refusal is a
/// notice; ENOTTY/EINVAL on the first means a module without multiple
/// connections, and the rest are not tried.
pub fn add_connections(
    dev: &handoff::Device,
    host: u32,
    extras: Vec<Session>,
    lead: &HandoffArgs<'_>,
    generation: u32,
    notices: &mut dyn Write,
) -> usize {
    let mut up = 0;
    let mut refused = Vec::new();
    let mut extras = extras.into_iter().enumerate();
    for (i, extra) in extras.by_ref() {
        let lane = u16::try_from(i + 1).unwrap_or(u16::MAX);
        let cid = extra.outcome.cid;
        let outcome = extra.outcome;
        let Some(stream) = extra.conn.into_stream() else {
            let _ = writeln!(
                notices,
                "iscsictl: connection {cid}: the target sent data after the login \
                 response; not added"
            );
            continue;
        };
        let args = HandoffArgs {
            outcome: &outcome,
            recipe: None,
            ..*lead
        };
        let r = handoff::build_add_connection(&args, stream.as_raw_fd(), host, lane, generation)
            .map_err(|e| e.to_string())
            .and_then(|h| dev.add_connection(&h).map_err(|e| refusal(&e, up == 0)));
        match r {
            // The kernel holds its own reference.
            Ok(()) => up += 1,
            Err(why) => {
                refused.push(stream);
                let _ = writeln!(notices, "iscsictl: connection {cid} (lane {lane}): {why}");
                if why.starts_with(OLD_MODULE) {
                    break;
                }
            }
        }
    }
    // Logged in but refused (or not tried after an old module's refusal):
    // the target closes them before a login with the session's ISID may come
    // (a re-login of this session, say).
    close_unhanded(refused, extras.map(|(_, s)| s).collect(), notices);
    up
}

/// How long connections we close wait for the target to close its end.
pub const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// Closes the logged-in connections of a session the kernel did not take,
/// `streams` and `extras`, and, when there are two or more, waits (at most
/// [`CLOSE_WAIT`]) until the target closed them; a notice says how many it
/// had not. The next login on this path reinstates that session by its ISID,
/// and must not meet several of its connections closing (LIO oopses).
pub fn close_unhanded(mut streams: Vec<TcpStream>, extras: Vec<Session>, notices: &mut dyn Write) {
    streams.extend(extras.into_iter().map(|s| s.conn.into_raw_stream()));
    if streams.len() < 2 {
        return;
    }
    let open = transport::close_awaiting_peer(streams, CLOSE_WAIT);
    if open > 0 {
        let _ = writeln!(
            notices,
            "iscsictl: the target has not closed {open} unused connections after {} s",
            CLOSE_WAIT.as_secs()
        );
    }
}

/// How [`add_connections`] words a module without ADD_CONNECTION.
const OLD_MODULE: &str = "this iscsi_rs module does not add connections";

fn refusal(e: &HandoffError, first: bool) -> String {
    match e.errno() {
        Some(handoff::ENOTTY) => format!(
            "{OLD_MODULE} (ADD_CONNECTION unknown: load a newer module); \
             the session runs on one connection"
        ),
        Some(handoff::EINVAL) if first => format!(
            "{OLD_MODULE} (ADD_CONNECTION refused its arguments; the kernel log \
             says which); the session runs on one connection"
        ),
        _ => format!("not added: iscsi_rs: {e}"),
    }
}

/// What `login` prints for a new session: the host and its disks.
pub fn attached_text(target: &str, portal: &str, host: u32, disks: &[String]) -> String {
    let mut text = format!("logged in to {target} at {portal}: SCSI host {host}\n");
    if disks.is_empty() {
        text.push_str("no disks yet (the LUN scan may still be running; see lsscsi)\n");
    }
    for d in disks {
        text.push_str(&format!("  /dev/{d}\n"));
    }
    text
}

/// The logical units of SCSI host `host` under `sysfs`, sorted by H:C:T:L:
/// `class/scsi_host/hostN/device/target*/H:C:T:L/` with `block/sdX`,
/// `vendor`, `model` and `state` beside it.
pub fn luns_of(sysfs: &Path, host: u32) -> Vec<Lun> {
    let mut found = Vec::new();
    let base = sysfs.join(format!("class/scsi_host/host{host}/device"));
    let Ok(targets) = std::fs::read_dir(&base) else {
        return found;
    };
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    for t in targets.flatten() {
        if !t.file_name().to_string_lossy().starts_with("target") {
            continue;
        }
        let Ok(devs) = std::fs::read_dir(t.path()) else {
            continue;
        };
        for d in devs.flatten() {
            let hctl = d.file_name().to_string_lossy().into_owned();
            let parts: Vec<&str> = hctl.split(':').collect();
            let [_, _, _, lun] = parts[..] else {
                continue; // power/, subsystem … are not devices
            };
            let Ok(lun) = lun.parse::<u64>() else {
                continue;
            };
            let dir = d.path();
            let disk = std::fs::read_dir(dir.join("block")).ok().and_then(|b| {
                b.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .min()
            });
            found.push(Lun {
                hctl: hctl.clone(),
                lun,
                disk,
                vendor: read(&dir.join("vendor")),
                model: read(&dir.join("model")),
                state: read(&dir.join("state")),
            });
        }
    }
    found.sort_by_key(|l| hctl_key(&l.hctl));
    found
}

fn hctl_key(s: &str) -> Vec<u64> {
    s.split(':')
        .map(|p| p.parse().unwrap_or(u64::MAX))
        .collect()
}

/// Block devices of SCSI host `host`, sorted.
pub fn disks_of(sysfs: &Path, host: u32) -> Vec<String> {
    let mut d: Vec<String> = luns_of(sysfs, host)
        .into_iter()
        .filter_map(|l| l.disk)
        .collect();
    d.sort();
    d
}

/// Waits until the disk list stops growing (the scan is asynchronous) or `limit`.
pub fn wait_for_disks(sysfs: &Path, host: u32, limit: Duration) -> Vec<String> {
    let start = Instant::now();
    let mut last = disks_of(sysfs, host);
    let mut stable_since = Instant::now();
    while start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(100));
        let now = disks_of(sysfs, host);
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

fn yes_no(b: u8) -> &'static str {
    if b != 0 {
        "Yes"
    } else {
        "No"
    }
}

pub(crate) fn field(name: &'static str, raw: &[u8]) -> String {
    c_str_field(name, raw).unwrap_or("?").to_string()
}

/// A sysfs attribute of SCSI host `host` as a number.
fn host_attr(sysfs: &Path, host: u32, name: &str) -> Option<u32> {
    let p = sysfs.join(format!("class/scsi_host/host{host}/{name}"));
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Everything known about a kernel session: LIST, the host's sysfs attributes
/// and LUNs, and the portal group tag from the ISID store (LIST has none).
pub fn view(i: &SessionInfo, sysfs: &Path, store: Option<&IsidStore>) -> SessionView {
    let target = field("target_name", &i.target_name);
    let initiator = field("initiator_name", &i.initiator_name);
    let tag = store
        .and_then(|s| s.by_isid(&initiator, &target, i.isid).ok().flatten())
        .map(|e| e.tpgt);
    let h = i.host_no;
    let mut timeouts = vec![("replacement_timeout", i.replacement_timeout)];
    for name in ["noop_out_interval", "noop_out_timeout"] {
        if let Some(v) = host_attr(sysfs, h, name) {
            timeouts.push((name, v));
        }
    }
    let mut params: Vec<(String, String)> = vec![
        ("HeaderDigest", digest_name(i.header_digest).to_owned()),
        ("DataDigest", digest_name(i.data_digest).to_owned()),
        (
            "MaxRecvDataSegmentLength",
            i.max_recv_data_segment_len.to_string(),
        ),
        (
            "MaxXmitDataSegmentLength",
            i.max_xmit_data_segment_len.to_string(),
        ),
        ("FirstBurstLength", i.first_burst_len.to_string()),
        ("MaxBurstLength", i.max_burst_len.to_string()),
        ("ImmediateData", yes_no(i.immediate_data).to_owned()),
        ("InitialR2T", yes_no(i.initial_r2t).to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(v) = host_attr(sysfs, h, "max_outstanding_r2t") {
        params.push(("MaxOutstandingR2T".into(), v.to_string()));
    }
    SessionView {
        host: Some(h),
        portal: found_portal_str(&field("portal", &i.portal), tag),
        target,
        initiator,
        isid: i.isid,
        tsih: i.tsih,
        state: state_name(i.state).to_owned(),
        recoveries: Some(i.recoveries),
        timeouts,
        params,
        counters: vec![
            ("queue_depth", u64::from(i.queue_depth)),
            ("in_flight", u64::from(i.in_flight)),
            ("cmd_sn", u64::from(i.cmd_sn)),
            ("exp_cmd_sn", u64::from(i.exp_cmd_sn)),
            ("max_cmd_sn", u64::from(i.max_cmd_sn)),
            ("exp_stat_sn", u64::from(i.exp_stat_sn)),
        ],
        luns: luns_of(sysfs, h),
        connections: None,
    }
}

/// The lanes of a session for `list -v` / `--json`; `None` when the module
/// does not know LIST_CONNECTIONS (or the session went away meanwhile).
fn connections_of(device: &Path, host: u32) -> Option<Vec<ConnView>> {
    let conns = handoff::list_connections(device, host).ok()?;
    Some(conns.iter().map(conn_view).collect())
}

fn conn_view(c: &ConnInfo) -> ConnView {
    ConnView {
        lane: c.lane,
        cid: c.cid,
        state: match c.state {
            conn_state::UP => "up",
            conn_state::CLOSING => "closing",
            _ => "absent",
        },
        exp_stat_sn: c.exp_stat_sn,
        header_digest: digest_name(c.header_digest),
        data_digest: digest_name(c.data_digest),
        max_recv_data_segment_len: c.max_recv_data_segment_len,
        max_xmit_data_segment_len: c.max_xmit_data_segment_len,
        local_port: c.local_port,
        in_flight: c.in_flight,
        tx_stalled: c.tx_stalled,
    }
}

/// How `list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// One line per session.
    Short,
    /// `-v`: everything, like `iscsiadm -m session -P 3`.
    Verbose,
    /// `--json`: `{"sessions": [...]}`.
    Json,
}

/// `iscsictl list [-v | --json]`.
pub fn list(paths: &SystemPaths, format: ListFormat, out: &mut dyn Write) -> Result<(), Error> {
    let sessions = handoff::list_sessions(&paths.device).map_err(kernel_error)?;
    let store = IsidStore::new(&paths.state_dir);
    let full = |i: &SessionInfo| SessionView {
        connections: connections_of(&paths.device, i.host_no),
        ..view(i, &paths.sysfs, Some(&store))
    };
    let text = match format {
        ListFormat::Json => {
            let rows: Vec<serde_json::Value> =
                sessions.iter().map(|i| session_json(&full(i))).collect();
            sessions_json(&rows)
        }
        _ if sessions.is_empty() => "no sessions\n".to_string(),
        ListFormat::Verbose => sessions
            .iter()
            .map(|i| session_verbose(&full(i)))
            .collect::<Vec<_>>()
            .join("\n"),
        ListFormat::Short => sessions
            .iter()
            .map(|i| session_line(i, &disks_of(&paths.sysfs, i.host_no)))
            .collect(),
    };
    out.write_all(text.as_bytes())
        .map_err(|e| Error::Failed(format!("cannot write the result: {e}")))
}

/// One session of the text listing; `connections=up/lanes` only for a
/// session with more than one lane (a module without them reports 0).
fn session_line(i: &SessionInfo, disks: &[String]) -> String {
    let conns = if i.lanes > 1 {
        format!(" connections={}/{}", i.connections, i.lanes)
    } else {
        String::new()
    };
    format!(
        "host{} {} {} {}{conns} recoveries={} HeaderDigest={} DataDigest={} disks: {}\n",
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

/// Which sessions `logout` ends.
#[derive(Debug, Clone, Default)]
pub struct LogoutWhich {
    pub all: bool,
    pub host: Option<u32>,
    pub target: Option<String>,
    /// Sessions through this portal (`-p`), or of a config block (`-n`: with
    /// `target`). Also matches a session whose ISID the store has for this
    /// portal (it was logged in there and redirected).
    pub portal: Option<String>,
}

impl LogoutWhich {
    fn matches(&self, i: &SessionInfo, store: &IsidStore) -> bool {
        if self.all || self.host == Some(i.host_no) {
            return true;
        }
        let target = field("target_name", &i.target_name);
        if self.target.as_ref().is_some_and(|t| *t != target) {
            return false;
        }
        match &self.portal {
            None => self.target.is_some(),
            Some(p) => {
                *p == field("portal", &i.portal)
                    || store
                        .by_isid(&field("initiator_name", &i.initiator_name), &target, i.isid)
                        .ok()
                        .flatten()
                        .is_some_and(|e| e.portals.iter().any(|q| q == p))
            }
        }
    }
}

/// `iscsictl logout (-t IQN | -n NICK | -p PORTAL | -a | --host N)`: Logout
/// through the kernel, then the host is removed.
pub fn logout(paths: &SystemPaths, which: &LogoutWhich, out: &mut dyn Write) -> Result<(), Error> {
    let sessions = handoff::list_sessions(&paths.device).map_err(kernel_error)?;
    let store = IsidStore::new(&paths.state_dir);
    let chosen: Vec<&SessionInfo> = sessions
        .iter()
        .filter(|i| which.matches(i, &store))
        .collect();
    if chosen.is_empty() && which.all {
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
        handoff::remove_session(&paths.device, i.host_no, false).map_err(kernel_error)?;
        let line = format!(
            "logged out of {} at {} (host{})\n",
            field("target_name", &i.target_name),
            field("portal", &i.portal),
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
        let j = session_json(&view(&i, Path::new("/nonexistent"), None));
        assert_eq!(j["state"], "recovering");
        assert_eq!(j["recoveries"], 3);
        assert_eq!(j["timeouts"]["replacement_timeout"], 120);
        assert_eq!(j["portal"]["port"], 3260);
        assert_eq!(j["params"]["HeaderDigest"], "CRC32C");
        // No word on connections from a session with one lane, or from a
        // module that reports none (zeros).
        assert!(j.get("connections").is_none());
        assert!(
            !session_verbose(&view(&i, Path::new("/nonexistent"), None)).contains("Connections")
        );
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

#[cfg(test)]
mod connection_tests {
    use super::*;

    #[test]
    fn a_multi_connection_session_shows_its_lanes() {
        let mut i = SessionInfo::zeroed();
        i.host_no = 6;
        i.state = state::RUNNING;
        uapi::set_c_str("iqn.2001-04.com.example:t", &mut i.target_name).unwrap();
        uapi::set_c_str("127.0.0.1:3260", &mut i.portal).unwrap();
        let line = |i: &SessionInfo| session_line(i, &[]);
        i.lanes = 1;
        i.connections = 1;
        assert!(!line(&i).contains("connections="), "{}", line(&i));
        i.lanes = 4;
        i.connections = 3;
        assert_eq!(
            line(&i),
            "host6 iqn.2001-04.com.example:t 127.0.0.1:3260 running connections=3/4 \
             recoveries=0 HeaderDigest=None DataDigest=None disks: \n"
        );
        let mut up = ConnInfo::zeroed();
        up.lane = 0;
        up.cid = 0;
        up.state = conn_state::UP;
        up.header_digest = DIGEST_CRC32C;
        up.exp_stat_sn = 77;
        up.max_recv_data_segment_len = 262_144;
        up.max_xmit_data_segment_len = 65_536;
        up.local_port = 40_001;
        up.tx_stalled = 5;
        let mut gone = ConnInfo::zeroed();
        gone.lane = 1;
        gone.cid = 1;
        let mut closing = ConnInfo::zeroed();
        closing.lane = 2;
        closing.cid = 2;
        closing.state = conn_state::CLOSING;
        let mut unknown = ConnInfo::zeroed();
        unknown.state = 9;
        let v = SessionView {
            connections: Some(vec![
                conn_view(&up),
                conn_view(&gone),
                conn_view(&closing),
                conn_view(&unknown),
            ]),
            ..view(&i, Path::new("/nonexistent"), None)
        };
        let j = session_json(&v);
        let c = &j["connections"];
        assert_eq!(c.as_array().map(Vec::len), Some(4));
        assert_eq!(c[2]["state"], "closing");
        // A state a newer module may add reads as no connection.
        assert_eq!(c[3]["state"], "absent");
        assert_eq!(c[0]["state"], "up");
        assert_eq!(c[0]["exp_stat_sn"], 77);
        assert_eq!(c[0]["HeaderDigest"], "CRC32C");
        assert_eq!(c[0]["local_port"], 40_001);
        assert_eq!(c[0]["tx_stalled"], 5);
        assert_eq!(c[1]["state"], "absent");
        assert_eq!(c[1]["cid"], 1);
        let t = session_verbose(&v);
        assert!(
            t.contains(
                "    Connections:\n        CID 0 lane 0: up ExpStatSN=77 HeaderDigest=CRC32C \
                 DataDigest=None MaxRecvDataSegmentLength=262144 \
                 MaxXmitDataSegmentLength=65536 local-port=40001 in_flight=0 tx_stalled=5\n"
            ),
            "{t}"
        );
        assert!(t.contains("        CID 1 lane 1: absent "), "{t}");
    }

    #[test]
    fn no_module_no_connections() {
        // A device that is no iscsi_rs: LIST_CONNECTIONS fails, nothing shown.
        assert_eq!(connections_of(Path::new("/nonexistent/iscsi_rs"), 1), None);
        assert_eq!(connections_of(Path::new("/dev/null"), 1), None);
    }
}

#[cfg(test)]
mod sysfs_tests {
    use super::*;

    /// A sysfs tree like the kernel's for host 5: two LUNs, one of them a disk.
    fn fake_sysfs(root: &Path) {
        let host = root.join("class/scsi_host/host5");
        let dev = root.join("devices/platform/host5");
        let t = dev.join("target5:0:0");
        for (hctl, disk, vendor) in [
            ("5:0:0:0", Some("sdc"), "LIO-ORG"),
            ("5:0:0:10", None, "LIO-ORG"),
        ] {
            let d = t.join(hctl);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("vendor"), format!("{vendor}  \n")).unwrap();
            std::fs::write(d.join("model"), "FILEIO          \n").unwrap();
            std::fs::write(d.join("state"), "running\n").unwrap();
            if let Some(disk) = disk {
                std::fs::create_dir_all(d.join("block").join(disk)).unwrap();
            }
        }
        std::fs::create_dir_all(t.join("power")).unwrap();
        std::fs::create_dir_all(&host).unwrap();
        std::os::unix::fs::symlink(&dev, host.join("device")).unwrap();
        std::fs::write(host.join("noop_out_interval"), "7\n").unwrap();
        std::fs::write(host.join("max_outstanding_r2t"), "1\n").unwrap();
    }

    #[test]
    fn luns_disks_and_the_verbose_listing() {
        let dir = tempfile::tempdir().unwrap();
        fake_sysfs(dir.path());
        let luns = luns_of(dir.path(), 5);
        assert_eq!(luns.len(), 2, "{luns:?}");
        assert_eq!((luns[0].lun, luns[0].disk.as_deref()), (0, Some("sdc")));
        assert_eq!((luns[1].lun, luns[1].disk.as_deref()), (10, None));
        assert_eq!(luns[0].vendor, "LIO-ORG");
        assert_eq!(disks_of(dir.path(), 5), vec!["sdc"]);
        assert!(luns_of(dir.path(), 6).is_empty());

        let mut i = SessionInfo::zeroed();
        i.host_no = 5;
        i.state = state::RUNNING;
        i.isid = [0x80, 0xaa, 0xbb, 0xcc, 0, 1];
        i.max_recv_data_segment_len = 262_144;
        uapi::set_c_str("iqn.2001-04.com.example:t", &mut i.target_name).unwrap();
        uapi::set_c_str("iqn.2001-04.com.example:me", &mut i.initiator_name).unwrap();
        uapi::set_c_str("127.0.0.1:3260", &mut i.portal).unwrap();
        let store = IsidStore::new(&dir.path().join("state"));
        store
            .record(
                "iqn.2001-04.com.example:me",
                "iqn.2001-04.com.example:t",
                1,
                &["127.0.0.1:3260"],
                i.isid,
            )
            .unwrap();
        let v = view(&i, dir.path(), Some(&store));
        let text = session_verbose(&v);
        for want in [
            "Target: iqn.2001-04.com.example:t\n",
            "    Portal: 127.0.0.1:3260,1\n",
            "ISID: 80aabbcc0001",
            "    SCSI host: 5\n",
            "        noop_out_interval: 7\n",
            "        MaxRecvDataSegmentLength: 262144\n",
            "        MaxOutstandingR2T: 1\n",
            "        5:0:0:0 (LUN 0): /dev/sdc [running] LIO-ORG FILEIO\n",
            "        5:0:0:10 (LUN 10): no disk [running]",
        ] {
            assert!(text.contains(want), "{want:?} not in\n{text}");
        }
        let j = session_json(&v);
        assert_eq!(j["portal"]["portal_group_tag"], 1);
        assert_eq!(j["luns"][0]["disk"], "sdc");
        assert_eq!(j["disks"][0], "sdc");
        assert_eq!(j["isid"], "80aabbcc0001");

        // logout -p matches by portal, and by the store's portals for the ISID.
        let by = |portal: &str| LogoutWhich {
            portal: Some(portal.into()),
            ..LogoutWhich::default()
        };
        assert!(by("127.0.0.1:3260").matches(&i, &store));
        assert!(!by("127.0.0.2:3260").matches(&i, &store));
        let nick = LogoutWhich {
            target: Some("iqn.2001-04.com.example:t".into()),
            portal: Some("127.0.0.1:3260".into()),
            ..LogoutWhich::default()
        };
        assert!(nick.matches(&i, &store));
        let other = LogoutWhich {
            target: Some("iqn.2001-04.com.example:u".into()),
            portal: Some("127.0.0.1:3260".into()),
            ..LogoutWhich::default()
        };
        assert!(!other.matches(&i, &store));
    }
}
