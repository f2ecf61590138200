//! `iscsictl daemon`: answers iscsi_rs.ko's re-login requests (connection
//! recovery, ERL 0). It waits on `/dev/iscsi_rs` with WAIT_EVENT (FreeBSD's
//! ISCSIDWAIT), and for each request, on its own thread so sessions recover in
//! parallel: waits the `delay_ms` the kernel asks for (DefaultTime2Wait or the
//! backoff of the last failure, nothing added), logs in again from the recipe
//! `iscsictl login` stored with the session, and hands the new socket over with
//! HANDOFF, or reports the failure with FAIL_RELOGIN and a retry delay.
//!
//! # TSIH 0 with the old ISID (session reinstatement), not the old TSIH
//!
//! A login with the old, non-zero TSIH asks the target to add a connection to
//! the existing session (RFC 7143 §6.3.5 rows 4/5). At ERL 0 that session does not
//! survive the loss of its only connection: LIO's `iscsit_close_connection()`
//! sets `session_fall_back_to_erl0` for every non-ERL-2 session whose connection
//! drops without a Logout and, as it was the last connection, calls
//! `iscsit_close_session()` at once; `iscsi_login_non_zero_tsih_s2()` skips
//! sessions with that flag and refuses the login with "Initiator attempting to
//! add a connection to a non-existent session" (status 0x020a, session does not
//! exist). If LIO has not noticed the loss yet (our NOP timed out but its socket
//! is still up), a non-zero TSIH with the same CID would be connection
//! reinstatement, an ERL 2 mechanism. TSIH 0 with the same ISID and
//! InitiatorName is session reinstatement (§6.3.5 row 2), which both LIO
//! (`iscsi_login_zero_tsih_s1()`: finds the old session by ISID + InitiatorName,
//! stops it with `iscsit_stop_session()` and builds a new one) and tgt handle,
//! whether or not the target noticed the loss. So the daemon always logs in with
//! TSIH 0 and the session's ISID; the new TSIH goes to the kernel in HANDOFF.
//!
//! The daemon keeps no state of its own: the kernel's `attempt` counter drives
//! the backoff (it restarts at 0 with every new connection loss, which is the
//! reset on success), and a restarted daemon asks for the unanswered requests
//! again with EVENT_RESCAN.

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use iscsi_proto::login::LoginOutcome;
use iscsi_proto::uapi::{self, reason, Event, Handoff, ReloginFailed, SessionInfo};
use zeroize::Zeroizing;

use crate::exit::{self, Error};
use crate::handoff::{self, Device, HandoffArgs, HandoffError};
use crate::identity::{default_state_dir, Lock};
use crate::login::{connect_and_login, further_connections};
use crate::names::{IscsiName, TargetName};
use crate::netns::NetNsCache;
use crate::params::Digest;
use crate::plan::{Auth, RecoveryKnobs};
use crate::portal::Portal;
use crate::recipe::Recipe;
use crate::session::Session;
use crate::sessions::{add_connections, close_unhanded, queue_depth, CLOSE_WAIT};

/// First retry delay after a failed re-login.
pub const BACKOFF_FIRST_MS: u32 = 1_000;
/// Longest retry delay: a target that comes back is found within this.
pub const BACKOFF_MAX_MS: u32 = 30_000;
// FAIL_RELOGIN refuses longer delays.
const _: () = assert!(BACKOFF_MAX_MS <= uapi::MAX_RETRY_MS);

// errno values the ioctls answer with, from rustix rather than by number.
const EINTR: i32 = rustix::io::Errno::INTR.raw_os_error();
const ENOENT: i32 = rustix::io::Errno::NOENT.raw_os_error();
const ENXIO: i32 = rustix::io::Errno::NXIO.raw_os_error();
const ENODEV: i32 = rustix::io::Errno::NODEV.raw_os_error();
const ENOTTY: i32 = rustix::io::Errno::NOTTY.raw_os_error();
const ESTALE: i32 = rustix::io::Errno::STALE.raw_os_error();

/// The retry delay after a failure, given how many attempts for this loss had
/// already failed before it (the event's `attempt`): 1 s, 2 s, 4 s, … 30 s.
pub fn backoff_ms(failed_before: u32) -> u32 {
    // 2^15 s is far past the cap already; stopping there keeps the shift in range.
    let factor = 1u32 << failed_before.min(15);
    BACKOFF_FIRST_MS.saturating_mul(factor).min(BACKOFF_MAX_MS)
}

/// Connects and logs in from `recipe` with `isid` (TSIH 0: session
/// reinstatement, see the file comment), trying [`Recipe::portals`] in turn
/// while they are unreachable: where a permanent redirect moved the target, the
/// portal as given (resolved again, redirects followed again), the address the
/// original login ended at. Fresh CHAP exchange every time. No ioctl here, and
/// no namespace change: the caller runs this in the session's namespace.
pub fn relogin(recipe: &Recipe, isid: [u8; 6], notices: &mut dyn Write) -> Result<Session, Error> {
    let mut last: Option<(Portal, Error)> = None;
    for (portal, tag) in recipe.portals() {
        if let Some((prev, Error::Unreachable(why))) = &last {
            let where_ = if Some(&portal) == recipe.moved.as_ref() {
                "where the target moved permanently"
            } else if portal == recipe.portal {
                "the portal as given"
            } else {
                "where the first login ended"
            };
            let _ = writeln!(
                notices,
                "{prev} is unreachable ({why}); trying {portal}, {where_}"
            );
        }
        match connect_and_login(&recipe.request(portal.clone(), tag), Some(isid), notices) {
            Err(e @ Error::Unreachable(_)) => last = Some((portal, e)),
            other => return other,
        }
    }
    Err(last
        .map(|(_, e)| e)
        .unwrap_or_else(|| Error::Failed("the login recipe names no portal to log in to".into())))
}

/// [`relogin`] from the network namespace the session was logged in from
/// (the recipe's; none recorded: the caller's own). Moves the calling thread
/// into that namespace for good, so call it on a thread of its own.
pub fn relogin_in_namespace(
    netns: &NetNsCache,
    recipe: &Recipe,
    isid: [u8; 6],
    notices: &mut dyn Write,
) -> Result<Session, Error> {
    if let Some(ns) = &recipe.netns {
        netns.enter(ns).map_err(|e| Error::Failed(e.to_string()))?;
        if let Some(p) = &ns.path {
            let _ = writeln!(notices, "logging in from network namespace {}", p.display());
        }
    }
    relogin(recipe, isid, notices)
}

/// The HANDOFF argument for a re-logged-in `session` of SCSI host `host_no`,
/// answering the event of `generation`, telling the kernel that `connections`
/// lanes come back (0: no word, one-connection sessions), and the socket it
/// names (keep it open until the ioctl returns; the kernel takes its own
/// reference).
pub fn relogin_handoff(
    session: Session,
    recipe: &Recipe,
    host_no: u32,
    generation: u32,
    connections: u16,
) -> Result<(Handoff, TcpStream), Error> {
    let portal = session.portal.to_string();
    let outcome = session.outcome;
    // The kernel must start at a PDU boundary with nothing buffered here.
    let stream = session.conn.into_stream().ok_or_else(|| {
        Error::Protocol("the target sent data after the login response; not handing off".into())
    })?;
    let args = relogin_args(&outcome, recipe, &portal, connections);
    let h = handoff::build_relogin_handoff(&args, stream.as_raw_fd(), host_no, generation)
        .map_err(|e| Error::Usage(e.to_string()))?;
    Ok((h, stream))
}

/// What HANDOFF and ADD_CONNECTION after a re-login carry besides the login.
fn relogin_args<'a>(
    outcome: &'a LoginOutcome,
    recipe: &'a Recipe,
    portal: &'a str,
    connections: u16,
) -> HandoffArgs<'a> {
    HandoffArgs {
        outcome,
        target_name: recipe.target_name.as_str(),
        initiator_name: recipe.initiator_name.as_str(),
        portal,
        queue_depth: queue_depth(recipe.queue_depth),
        recipe: None,
        // Ignored by HANDOFF: the session keeps what ADD_SESSION set.
        recovery: RecoveryKnobs::default(),
        connections,
    }
}

/// One info line (`iscsictl daemon: …`; under systemd with its journal
/// priority, see `logging.rs`, which writes whole lines so the threads' lines
/// do not interleave).
fn log(line: &str) {
    log::info!(target: crate::logging::DAEMON, "{line}");
}

/// One warning line: something failed (the daemon retries or gives up).
fn warn(line: &str) {
    log::warn!(target: crate::logging::DAEMON, "{line}");
}

/// Runs until the module goes away (exit 8) or WAIT_EVENT fails for good.
pub fn run(device: &Path) -> Result<(), Error> {
    let dev = Device::open(device).map_err(|e| match e.errno() {
        Some(ENOENT | ENXIO | ENODEV) => Error::ModuleNotLoaded,
        _ => Error::Failed(format!("iscsi_rs: {e}")),
    })?;
    let dev = Arc::new(dev);
    let state = Arc::new(State::default());
    log(&format!(
        "waiting for re-login requests on {}",
        device.display()
    ));
    // One re-login at a time per session: two logins with the same ISID would
    // reinstate each other.
    let busy: Arc<Mutex<HashMap<u32, Arc<Mutex<()>>>>> = Arc::default();
    let mut rescan = true;
    loop {
        let (ev, recipe) = match dev.wait_event(rescan) {
            Ok(got) => got,
            Err(e) => match e.errno() {
                Some(EINTR) => continue,
                Some(ENOTTY | ENODEV) => return Err(Error::ModuleNotLoaded),
                _ => return Err(Error::Failed(format!("iscsi_rs: {e}"))),
            },
        };
        rescan = false;
        if ev.kind != uapi::EVENT_RELOGIN {
            log(&format!(
                "host{}: ignoring event kind {} (unknown to this iscsictl)",
                ev.host_no, ev.kind
            ));
            continue;
        }
        let lock = {
            let mut map = busy.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(map.entry(ev.host_no).or_default())
        };
        let dev = Arc::clone(&dev);
        let state = Arc::clone(&state);
        let spawned = thread::Builder::new()
            .name(format!("relogin-host{}", ev.host_no))
            .spawn(move || {
                let _one = lock.lock().unwrap_or_else(|p| p.into_inner());
                serve(&dev, &state, &ev, recipe);
            });
        if let Err(e) = spawned {
            warn(&format!("cannot start a re-login thread: {e}"));
        }
    }
}

/// A session as the daemon tells them apart: SCSI host number and ISID.
type SessionKey = (u32, [u8; 6]);

/// What the daemon learns while it runs (it cannot write a session's recipe
/// back to the kernel).
#[derive(Debug, Default)]
struct State {
    /// Per session (SCSI host and ISID; a new session on the same path may
    /// get both again, and then inherits a permanent redirect of that path,
    /// which still holds for it): where a permanent redirect during a re-login sent
    /// it, and the portal group tag found there. Temporary redirects are not
    /// kept.
    moved: Mutex<HashMap<SessionKey, (Portal, Option<u16>)>>,
    /// Network namespaces of sessions logged in from elsewhere, kept open.
    netns: NetNsCache,
}

/// Answers one relogin event. Runs on its own thread, which it may move into
/// the session's network namespace.
fn serve(dev: &Device, state: &State, ev: &Event, recipe: Zeroizing<Vec<u8>>) {
    let start = Instant::now();
    let host = ev.host_no;
    let attempt = ev.attempt.saturating_add(1);
    log(&format!(
        "host{host}: {} (generation {}); re-login attempt {attempt} in {} ms",
        reason::describe(ev.reason),
        ev.generation,
        ev.delay_ms
    ));
    // The kernel's delay already is DefaultTime2Wait (or the Async Message's
    // Time2Wait, or our backoff): add nothing.
    thread::sleep(Duration::from_millis(ev.delay_ms.into()));
    // `iscsictl login` holds this path's lock from its session check to its
    // handoff. The ISID of a path is stable: a re-login for a session that was
    // logged out meanwhile would reinstate, i.e. end, a new session on the
    // same path (same ISID, and often the same reused host number). So: wait
    // for a login on this path in progress, then go on only if the session
    // still waits for this re-login; the lock is held until the handoff.
    let _serialised = Lock::login(&default_state_dir(), Some(ev.isid));
    match dev.list() {
        Ok(sessions) if !still_waiting(&sessions, ev) => {
            log(&format!(
                "host{host}: the session no longer waits for re-login {} (logged out, \
                 or a new session took its place); dropped",
                ev.generation
            ));
            return;
        }
        Ok(_) => {}
        // The HANDOFF answers for the session anyway; LIST is only a precaution.
        Err(e) => warn(&format!("host{host}: {}", refused(&e))),
    }
    if ev.connections > 1 {
        await_old_connections(dev, host);
    }
    let mut recipe = match recipe_for(ev, &recipe) {
        Ok(r) => r,
        Err(e) => return fail(dev, ev, start, &Error::Usage(e)),
    };
    let remembered = state
        .moved
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&(host, ev.isid))
        .cloned();
    if let Some((p, tag)) = remembered {
        recipe.moved = Some(p);
        recipe.portal_group_tag = tag;
    }
    let mut notices = Vec::new();
    // This thread only: the socket must be made in the session's namespace.
    let result = relogin_in_namespace(&state.netns, &recipe, ev.isid, &mut notices);
    for line in String::from_utf8_lossy(&notices).lines() {
        log(&format!("host{host}: {line}"));
    }
    let session = match result {
        Ok(s) => s,
        Err(e) => return fail(dev, ev, start, &e),
    };
    if let Some(p) = &session.moved {
        let tag = (!session.temporary)
            .then_some(session.outcome.target_portal_group_tag)
            .flatten();
        log(&format!(
            "host{host}: the target moved permanently to {p}; later re-logins go there"
        ));
        state
            .moved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((host, ev.isid), (p.clone(), tag));
    }
    let tsih = session.outcome.tsih;
    let at = session.portal.to_string();
    let lead = session.outcome;
    // The session's further connections, logged in before the HANDOFF (as at
    // `iscsictl login`): nothing runs yet, so they carry the leading CmdSN. A
    // connection that does not come back leaves the session with fewer; it
    // is no reason to fail the re-login.
    let extras = if ev.connections > 1 {
        let mut notices = Vec::new();
        let req = recipe.request(session.portal.clone(), None);
        let extras = further_connections(&session, &req, ev.connections, &mut notices);
        warn_notices(host, &notices);
        extras
    } else {
        Vec::new()
    };
    let back = if ev.connections > 1 {
        u16::try_from(extras.len() + 1).unwrap_or(u16::MAX)
    } else {
        0
    };
    let (h, stream) = match relogin_handoff(session, &recipe, host, ev.generation, back) {
        Ok(got) => got,
        Err(e) => {
            close_unused(host, Vec::new(), extras);
            return fail(dev, ev, start, &e);
        }
    };
    let handed = dev.handoff(&h);
    // The kernel holds its own reference now; refused, the target drops the
    // unused session when its connections close.
    let extras = if handed.is_ok() {
        drop(stream);
        extras
    } else {
        close_unused(host, vec![stream], extras);
        Vec::new()
    };
    match handed {
        Ok(()) => {
            let mut up = 0;
            if !extras.is_empty() {
                let args = relogin_args(&lead, &recipe, &at, back);
                let mut notices = Vec::new();
                up = add_connections(dev, host, extras, &args, ev.generation, &mut notices);
                warn_notices(host, &notices);
            }
            let lanes = if ev.connections > 1 {
                format!(", {} of {} connections", up + 1, ev.connections)
            } else {
                String::new()
            };
            log(&format!(
                "host{host}: logged in again to {} at {at} (TSIH {tsih}) and handed off{lanes}, \
                 attempt {attempt}, {} ms",
                recipe.target_name,
                start.elapsed().as_millis()
            ))
        }
        Err(e) if matches!(e.errno(), Some(ESTALE | ENOENT | ENODEV)) => {
            warn(&format!("host{host}: {}", refused(&e)));
        }
        Err(e) => fail(dev, ev, start, &Error::Failed(format!("iscsi_rs: {e}"))),
    }
}

/// Whether the kernel still has the session `ev` asks a re-login for: same
/// SCSI host, ISID and recovery generation, and recovering (or failed: past
/// its replacement timeout it still waits for a connection). A new session
/// that reuses host number and ISID is running, at generation 0.
pub fn still_waiting(sessions: &[SessionInfo], ev: &Event) -> bool {
    sessions.iter().any(|i| {
        i.host_no == ev.host_no
            && i.isid == ev.isid
            && i.generation == ev.generation
            && matches!(i.state, uapi::state::RECOVERING | uapi::state::FAILED)
    })
}

/// Closes the logged-in connections of a re-login that was not handed over
/// (see [`close_unhanded`]): this session's next re-login waits for this
/// thread.
fn close_unused(host: u32, streams: Vec<TcpStream>, extras: Vec<Session>) {
    let mut notices = Vec::new();
    close_unhanded(streams, extras, &mut notices);
    warn_notices(host, &notices);
}

/// Logs each line of `notices` (what a step wrote for a user) as a warning
/// about `host`.
fn warn_notices(host: u32, notices: &[u8]) {
    for line in String::from_utf8_lossy(notices).lines() {
        warn(&format!("host{host}: {line}"));
    }
}

/// Waits (at most [`CLOSE_WAIT`]) until the target has closed its end
/// of every old connection of a multi-connection session (none `closing` in
/// LIST_CONNECTIONS). Our login reinstates the session by its ISID, and LIO
/// crashes when it stops a session while two or more of its connections still
/// close (`iscsit_stop_session` walks the connection list with the lock
/// dropped). A module without LIST_CONNECTIONS, or a session gone, is not
/// waited for: the HANDOFF answers for it.
fn await_old_connections(dev: &Device, host: u32) {
    let start = Instant::now();
    loop {
        let closing = match dev.connections(host) {
            Ok(conns) => conns
                .iter()
                .filter(|c| c.state == uapi::conn_state::CLOSING)
                .count(),
            Err(_) => return,
        };
        let waited = start.elapsed();
        if closing == 0 {
            if waited >= Duration::from_millis(50) {
                log(&format!(
                    "host{host}: the target closed the old connections after {} ms",
                    waited.as_millis()
                ));
            }
            return;
        }
        if waited >= CLOSE_WAIT {
            warn(&format!(
                "host{host}: the target has not closed {closing} old connections after {} s; \
                 logging in anyway",
                waited.as_secs()
            ));
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Decodes the event's recipe. A session without one (added by an iscsictl
/// older than the recipe) is logged in again with what the event names and no
/// authentication: the best that can be done, and said so.
fn recipe_for(ev: &Event, bytes: &[u8]) -> Result<Recipe, String> {
    if !bytes.is_empty() {
        let r = Recipe::decode(bytes).map_err(|e| e.to_string())?;
        if r.target_name.as_str() != ev.target_name() {
            warn(&format!(
                "host{}: the recipe names {} but the session {}; using the recipe",
                ev.host_no,
                r.target_name,
                ev.target_name()
            ));
        }
        return Ok(r);
    }
    warn(&format!(
        "host{}: the session has no login recipe; logging in to {} at {} without \
         authentication",
        ev.host_no,
        ev.target_name(),
        ev.portal()
    ));
    let bad = |what: &str, e: String| format!("the event's {what} is unusable: {e}");
    Ok(Recipe {
        nickname: None,
        target_name: TargetName::parse(ev.target_name())
            .map_err(|e| bad("TargetName", e.to_string()))?,
        initiator_name: IscsiName::parse(ev.initiator_name())
            .map_err(|e| bad("InitiatorName", e.to_string()))?,
        portal: Portal::parse(ev.portal()).map_err(|e| bad("portal", e.reason))?,
        address: None,
        portal_group_tag: None,
        moved: None,
        source: Default::default(),
        netns: None,
        auth: Auth::None,
        header_digest: Digest::None,
        data_digest: Digest::None,
        queue_depth: None,
        // The lanes the kernel has, as a recipe records them.
        connections: (ev.connections > 1).then_some(ev.connections),
        params: Vec::new(),
        connect_timeout: Duration::from_secs(crate::cli::DEFAULT_TIMEOUT_SECS),
        login_timeout: Duration::from_secs(crate::cli::DEFAULT_TIMEOUT_SECS),
    })
}

/// Reports a failed attempt to the kernel, which offers the request again after
/// the backoff delay.
fn fail(dev: &Device, ev: &Event, start: Instant, e: &Error) {
    let host = ev.host_no;
    let code = e.exit_code();
    let retry = backoff_ms(ev.attempt);
    let hint = if code == exit::AUTH_FAILED {
        "; authentication was refused, retrying anyway in case the credentials are \
         fixed on the target"
    } else {
        ""
    };
    warn(&format!(
        "host{host}: re-login attempt {} failed after {} ms: {e} (exit {code}){hint}; \
         next attempt in {retry} ms",
        ev.attempt.saturating_add(1),
        start.elapsed().as_millis()
    ));
    let f = ReloginFailed::new(host, ev.generation, code.into(), retry);
    if let Err(e) = dev.fail_relogin(&f) {
        log(&format!("host{host}: {}", refused(&e)));
    }
}

/// The log text for a HANDOFF / FAIL_RELOGIN the kernel refused.
fn refused(e: &HandoffError) -> String {
    match e.errno() {
        Some(ESTALE | ENOENT | ENODEV) => {
            format!("{e}; the session is gone or recovered already, dropping this request")
        }
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_relogin_request_is_dropped() {
        let isid = [0x80, 1, 2, 3, 4, 5];
        let mut ev = Event::zeroed();
        ev.host_no = 2;
        ev.generation = 3;
        ev.isid = isid;
        let mut i = SessionInfo::zeroed();
        i.host_no = 2;
        i.generation = 3;
        i.isid = isid;
        i.state = uapi::state::RECOVERING;
        assert!(still_waiting(&[i], &ev));
        i.state = uapi::state::FAILED;
        assert!(still_waiting(&[i], &ev), "past the replacement timeout");
        // Logged out: gone from LIST.
        assert!(!still_waiting(&[], &ev));
        // A new session on the same path, same host number: running.
        let mut new = i;
        new.state = uapi::state::RUNNING;
        new.generation = 0;
        assert!(!still_waiting(&[new], &ev));
        // Recovered and lost again: a newer request exists for it.
        let mut later = i;
        later.generation = 4;
        assert!(!still_waiting(&[later], &ev));
        let mut other = i;
        other.isid = [0x80, 9, 9, 9, 9, 9];
        assert!(!still_waiting(&[other], &ev));
    }

    fn event(recipe_len: u32) -> Event {
        let mut ev = Event::zeroed();
        ev.host_no = 7;
        ev.recipe_len = recipe_len;
        uapi::set_c_str("iqn.2001-04.com.example:t", &mut ev.target_name).unwrap();
        uapi::set_c_str("iqn.2001-04.com.example:i", &mut ev.initiator_name).unwrap();
        uapi::set_c_str("[::1]:3261", &mut ev.portal).unwrap();
        ev
    }

    #[test]
    fn a_session_without_recipe_is_tried_without_auth() {
        let r = recipe_for(&event(0), &[]).unwrap();
        assert_eq!(r.target_name.as_str(), "iqn.2001-04.com.example:t");
        assert_eq!(r.initiator_name.as_str(), "iqn.2001-04.com.example:i");
        assert_eq!(r.portal.to_string(), "[::1]:3261");
        assert!(matches!(r.auth, Auth::None));
        // A recipe that does not decode is an error, never a silent fallback.
        let e = recipe_for(&event(4), b"x=1\0").unwrap_err();
        assert!(e.contains("does not start with RecipeVersion"), "{e}");
    }

    #[test]
    fn stale_answers_are_dropped_with_a_reason() {
        let e = HandoffError::Kernel {
            what: "HANDOFF",
            reason: "stale",
            errno: ESTALE,
        };
        assert!(refused(&e).ends_with("dropping this request"));
        let e = HandoffError::Kernel {
            what: "HANDOFF",
            reason: "bad",
            errno: 22,
        };
        assert_eq!(refused(&e), "HANDOFF: bad");
    }

    #[test]
    fn backoff_schedule() {
        let got: Vec<u32> = (0..8).map(backoff_ms).collect();
        assert_eq!(
            got,
            [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
        );
        // No overflow however long the target stays away.
        for n in [31, 32, 33, 1000, u32::MAX] {
            assert_eq!(backoff_ms(n), BACKOFF_MAX_MS, "{n}");
        }
    }
}
