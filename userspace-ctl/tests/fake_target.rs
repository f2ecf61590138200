//! Issue 12's login behaviours against a scripted fake target (no tgtd, no
//! kernel): discovery with CHAP, the MD5-alone retry after a refused CHAP_A
//! list (old LIO, Synology), the TargetPortalGroupTag check, permanent
//! redirects remembered for re-logins (temporary ones not), IPv6 zones, source
//! binding, and re-login inside the session's network namespace; issue 16's
//! logins of a session's further connections (TSIH and CID, connection keys
//! only, a target refusing with "too many connections").
//!
//! The fake target speaks just enough RFC 7143 login, built on iscsi-proto's
//! PDU writers and its target-side negotiation (`negotiate::respond`): CHAP
//! with MD5 only (as the old targets do), operational keys answered with
//! LIO-like values, SendTargets, Logout. It records what it saw per connection
//! so the tests can check what was offered, not only the outcome.

#[path = "common/run.rs"]
mod run;
use run::{run_iscsictl, Run};

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use iscsi_proto::bhs::BHS_LEN;
use iscsi_proto::framing;
use iscsi_proto::negotiate::{respond, Key, Local, ReplyValue};
use iscsi_proto::pdu::{
    LoginRequest, LoginResponse, LogoutRequest, LogoutResponse, Stage, TextRequest, TextResponse,
};
use iscsi_proto::text;
use iscsictl::daemon::{relogin, relogin_in_namespace};
use iscsictl::exit::{self, Error};
use iscsictl::login::{connect_and_login, further_connections};
use iscsictl::names::{IscsiName, TargetName};
use iscsictl::netns::{NetNs, NetNsCache, NetNsId};
use iscsictl::params::{default_connections, online_cpus, Connections, Digest};
use iscsictl::plan::Auth;
use iscsictl::portal::Portal;
use iscsictl::recipe::Recipe;
use iscsictl::transport::Source;
use md5::{Digest as _, Md5};

const INITIATOR: &str = "iqn.2026-11.dev.iscsi-rs.test:fake-initiator";
const IQN: &str = "iqn.2026-11.dev.iscsi-rs.test:fake";
const USER: &str = "alice";
const SECRET: &str = "alice-secret-0123";
const RUN_LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// The fake target
// ---------------------------------------------------------------------------

/// How the fake refuses a CHAP_A list (anything but a single value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListRefusal {
    /// Takes a list like RFC 7143 says (picks MD5 from it).
    No,
    /// Login Response 0x0201, as LIO before 3.15 ("CHAP_A is not MD5").
    Status,
    /// CHAP_A=Reject.
    Reject,
}

#[derive(Debug, Clone)]
struct Script {
    /// CHAP required (for every session type), with this secret.
    chap: Option<&'static str>,
    lists: ListRefusal,
    /// TargetPortalGroupTag sent to a login naming a TargetName.
    tag: u16,
    /// Answer the first Login Request with a redirect (detail, address).
    redirect: Option<(u8, String)>,
    /// Hang up on the first Login Request without answering (LIO's way with an
    /// AuthMethod=None discovery login when discovery auth is enforced).
    hang_up: bool,
    /// The target's MaxConnections.
    max_connections: u16,
    /// Connections a session may really have: a further login beyond them is
    /// refused with 0x0206 (too many connections), as LIO does when full.
    room: u16,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            chap: None,
            lists: ListRefusal::No,
            tag: 1,
            redirect: None,
            hang_up: false,
            max_connections: 1,
            room: u16::MAX,
        }
    }
}

/// A session the fake gave a TSIH to.
#[derive(Debug, Clone, Copy)]
struct Issued {
    tsih: u16,
    isid: [u8; 6],
    connections: u16,
}

type Issuer = Arc<Mutex<Vec<Issued>>>;

/// What one connection showed.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// CHAP_A values offered, in order.
    chap_a: Vec<String>,
    /// The initiator's address.
    peer: Option<SocketAddr>,
    session_type: Option<String>,
    /// Accept order.
    n: usize,
    /// TSIH, CID and CmdSN of the first Login Request.
    tsih: u16,
    cid: u16,
    cmd_sn: u32,
    /// Every key the initiator sent, in order.
    keys: Vec<String>,
    /// The login's answer: 0 or the refusal (class << 8 | detail).
    status: u16,
}

struct Fake {
    portal: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    /// Serves `script` on `l`, one connection at a time, for as long as the
    /// test runs (the thread is detached; the listener dies with the process).
    fn serve(l: TcpListener, script: Script) -> Fake {
        let addr = l.local_addr().expect("addr");
        let portal = match addr {
            SocketAddr::V4(a) => a.to_string(),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        };
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = Arc::clone(&seen);
        let issuer: Issuer = Arc::default();
        thread::spawn(move || {
            for (n, s) in l.incoming().enumerate() {
                let Ok(s) = s else { return };
                // A thread per connection: a session may stay open while the
                // next login (a re-login) arrives.
                let log = Arc::clone(&log);
                let script = script.clone();
                let issuer = Arc::clone(&issuer);
                thread::spawn(move || {
                    let mut one = Seen {
                        peer: s.peer_addr().ok(),
                        n,
                        ..Seen::default()
                    };
                    let _ = Conn::new(s, &script, issuer).run(&mut one);
                    log.lock().unwrap().push(one);
                });
            }
        });
        Fake { portal, seen }
    }

    fn start(script: Script) -> Fake {
        Fake::serve(TcpListener::bind("127.0.0.1:0").expect("bind"), script)
    }

    /// What the connections so far showed, waiting a moment for the last one
    /// to be logged (the initiator may exit before the fake's thread logs).
    fn seen(&self, at_least: usize) -> Vec<Seen> {
        let start = Instant::now();
        loop {
            let mut v = self.seen.lock().unwrap().clone();
            v.sort_by_key(|s| s.n);
            if v.len() >= at_least || start.elapsed() > Duration::from_secs(5) {
                return v;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

struct Conn<'a> {
    s: TcpStream,
    script: &'a Script,
    issuer: Issuer,
    /// The TSIH this login completes with: the one the request named (a
    /// further connection), or a new one.
    tsih: u16,
    first: bool,
    stat_sn: u32,
    auth_done: bool,
    challenge: Option<(u8, Vec<u8>)>,
    sent_mrdsl: bool,
    redirected: bool,
}

fn pair(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

fn encode(pairs: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        out.extend_from_slice(format!("{k}={v}\0").as_bytes());
    }
    out
}

fn hex(b: &[u8]) -> String {
    let mut s = String::from("0x");
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

fn unhex(s: &str) -> Vec<u8> {
    let mut out = vec![0u8; 64];
    let n = text::decode_binary(s, &mut out).expect("binary value");
    out.truncate(n);
    out
}

/// LIO-like values for the operational keys, with `max_connections`.
fn target_local(key: Key, max_connections: u16) -> Option<Local<'static>> {
    Some(match key {
        Key::HeaderDigest | Key::DataDigest => Local::List("None"),
        Key::MaxConnections => Local::Number(max_connections.into()),
        Key::MaxOutstandingR2T => Local::Number(1),
        Key::MaxBurstLength => Local::Number(262_144),
        Key::FirstBurstLength => Local::Number(65_536),
        Key::DefaultTime2Wait => Local::Number(2),
        Key::DefaultTime2Retain => Local::Number(20),
        Key::ErrorRecoveryLevel => Local::Number(0),
        Key::InitialR2T | Key::ImmediateData => Local::Bool(true),
        Key::DataPduInOrder | Key::DataSequenceInOrder => Local::Bool(true),
        _ => return None,
    })
}

fn reply_string(v: ReplyValue<'_>) -> String {
    match v {
        ReplyValue::Text(t) => t.to_string(),
        ReplyValue::Number(n) => n.to_string(),
        ReplyValue::Bool(b) => (if b { "Yes" } else { "No" }).to_string(),
    }
}

impl<'a> Conn<'a> {
    fn new(s: TcpStream, script: &'a Script, issuer: Issuer) -> Conn<'a> {
        let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
        Conn {
            s,
            script,
            issuer,
            tsih: 0,
            first: true,
            stat_sn: 100,
            auth_done: script.chap.is_none(),
            challenge: None,
            sent_mrdsl: false,
            redirected: false,
        }
    }

    fn read_pdu(&mut self) -> std::io::Result<([u8; BHS_LEN], Vec<u8>)> {
        let mut bhs = [0u8; BHS_LEN];
        self.s.read_exact(&mut bhs)?;
        let len = u32::from_be_bytes([0, bhs[5], bhs[6], bhs[7]]) as usize;
        let mut data = vec![0u8; len.div_ceil(4) * 4];
        self.s.read_exact(&mut data)?;
        data.truncate(len);
        Ok((bhs, data))
    }

    fn send(&mut self, header: &[u8; BHS_LEN], data: &[u8]) -> std::io::Result<()> {
        let mut out = vec![0u8; BHS_LEN + data.len() + 8];
        let n = framing::write_pdu(header, &[], data, false, false, &mut out).expect("frame");
        self.s.write_all(&out[..n])
    }

    /// Serves until the initiator logs out or hangs up.
    fn run(mut self, seen: &mut Seen) -> std::io::Result<()> {
        if self.script.hang_up {
            let _ = self.read_pdu()?;
            return Ok(());
        }
        loop {
            let (bhs, data) = self.read_pdu()?;
            match bhs[0] & 0x3f {
                0x03 => {
                    if !self.login(&bhs, &data, seen)? {
                        // Refused: the initiator must close; drain until it does.
                        let mut sink = [0u8; 512];
                        while self.s.read(&mut sink).map(|n| n > 0).unwrap_or(false) {}
                        return Ok(());
                    }
                }
                0x04 => self.text(&bhs)?,
                0x06 => {
                    let req = LogoutRequest::parse(&bhs).expect("logout");
                    let mut h = [0u8; BHS_LEN];
                    self.stat_sn += 1;
                    LogoutResponse {
                        response: 0,
                        itt: req.itt,
                        stat_sn: self.stat_sn,
                        exp_cmd_sn: req.cmd_sn + u32::from(!req.immediate),
                        max_cmd_sn: req.cmd_sn + 16,
                        time2wait: 0,
                        time2retain: 0,
                    }
                    .emit(&mut h);
                    self.send(&h, &[])?;
                    return Ok(());
                }
                other => panic!("fake target: unexpected opcode {other:#x}"),
            }
        }
    }

    fn text(&mut self, bhs: &[u8; BHS_LEN]) -> std::io::Result<()> {
        let req = TextRequest::parse(bhs).expect("text");
        let body = encode(&[
            pair("TargetName", IQN),
            pair(
                "TargetAddress",
                &format!("{},{}", self.portal(), self.script.tag),
            ),
        ]);
        self.stat_sn += 1;
        let mut h = [0u8; BHS_LEN];
        TextResponse {
            final_bit: true,
            cont: false,
            lun: 0,
            itt: req.itt,
            ttt: 0xffff_ffff,
            stat_sn: self.stat_sn,
            exp_cmd_sn: req.cmd_sn + u32::from(!req.immediate),
            max_cmd_sn: req.cmd_sn + 16,
            data_segment_len: body.len() as u32,
        }
        .emit(&mut h);
        self.send(&h, &body)
    }

    fn portal(&self) -> String {
        match self.s.local_addr().expect("local") {
            SocketAddr::V4(a) => a.to_string(),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        }
    }

    fn respond_login(
        &mut self,
        req: &LoginRequest,
        transit: bool,
        nsg: Stage,
        status: (u8, u8),
        body: &[u8],
    ) -> std::io::Result<()> {
        let mut h = [0u8; BHS_LEN];
        LoginResponse {
            transit,
            cont: false,
            csg: req.csg,
            nsg: if transit { nsg } else { req.csg },
            version_max: 0,
            version_active: 0,
            isid: req.isid,
            tsih: if transit && nsg == Stage::FullFeature {
                self.tsih
            } else {
                req.tsih
            },
            itt: req.itt,
            stat_sn: self.stat_sn,
            exp_cmd_sn: req.cmd_sn,
            max_cmd_sn: req.cmd_sn + 16,
            status_class: status.0,
            status_detail: status.1,
            data_segment_len: body.len() as u32,
        }
        .emit(&mut h);
        self.send(&h, body)
    }

    /// The TSIH for a login: a new session gets the next one; a further
    /// connection must name a session this fake issued (else 0x020a, session
    /// does not exist) that has room for it (else 0x0206).
    fn admit(&mut self, req: &LoginRequest) -> Result<(), (u8, u8)> {
        let mut issued = self.issuer.lock().unwrap();
        if req.tsih == 0 {
            let tsih = 0x1234 + issued.len() as u16;
            issued.push(Issued {
                tsih,
                isid: req.isid,
                connections: 1,
            });
            self.tsih = tsih;
            return Ok(());
        }
        let s = issued
            .iter_mut()
            .find(|s| s.tsih == req.tsih && s.isid == req.isid)
            .ok_or((2, 0x0a))?;
        if s.connections >= self.script.room.min(self.script.max_connections) {
            return Err((2, 0x06));
        }
        s.connections += 1;
        self.tsih = req.tsih;
        Ok(())
    }

    /// One Login Request; false when it was refused.
    fn login(
        &mut self,
        bhs: &[u8; BHS_LEN],
        data: &[u8],
        seen: &mut Seen,
    ) -> std::io::Result<bool> {
        let req = LoginRequest::parse(bhs).expect("login request");
        let pairs: Vec<(String, String)> = text::pairs(data)
            .map(|p| {
                let (k, v) = p.expect("pair");
                pair(k, v)
            })
            .collect();
        let get = |k: &str| pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
        if let Some(t) = get("SessionType") {
            seen.session_type = Some(t);
        }
        seen.keys.extend(pairs.iter().map(|(k, _)| k.clone()));
        if std::mem::take(&mut self.first) {
            (seen.tsih, seen.cid, seen.cmd_sn) = (req.tsih, req.cid, req.cmd_sn);
            if let Err(status) = self.admit(&req) {
                seen.status = u16::from(status.0) << 8 | u16::from(status.1);
                self.respond_login(&req, false, req.csg, status, &[])?;
                return Ok(false);
            }
        }
        if let (Some((detail, to)), false) = (&self.script.redirect, self.redirected) {
            self.redirected = true;
            let body = encode(&[pair("TargetAddress", to)]);
            let (detail, _) = (*detail, ());
            self.respond_login(&req, false, req.csg, (1, detail), &body)?;
            return Ok(false);
        }
        let mut out = Vec::new();
        if req.csg == Stage::Security {
            if let Some(methods) = get("AuthMethod") {
                if get("TargetName").is_some() {
                    out.push(pair("TargetPortalGroupTag", &self.script.tag.to_string()));
                }
                let offered: Vec<&str> = methods.split(',').collect();
                let choice = match self.script.chap {
                    Some(_) if offered.contains(&"CHAP") => "CHAP",
                    Some(_) => {
                        self.respond_login(&req, false, req.csg, (2, 1), &[])?;
                        return Ok(false);
                    }
                    None if offered.contains(&"None") => "None",
                    None => "CHAP",
                };
                out.push(pair("AuthMethod", choice));
            }
            if let Some(a) = get("CHAP_A") {
                seen.chap_a.push(a.clone());
                let is_list = a.contains(',');
                match (is_list, self.script.lists) {
                    (true, ListRefusal::Status) => {
                        self.respond_login(&req, false, req.csg, (2, 1), &[])?;
                        return Ok(false);
                    }
                    (true, ListRefusal::Reject) => {
                        out.push(pair("CHAP_A", "Reject"));
                        let body = encode(&out);
                        self.respond_login(&req, false, req.csg, (0, 0), &body)?;
                        return Ok(true);
                    }
                    _ => {}
                }
                if !a.split(',').any(|c| c == "5") {
                    out.push(pair("CHAP_A", "Reject"));
                } else {
                    let challenge: Vec<u8> = (0..16u8).map(|i| i.wrapping_mul(29) ^ 0x5a).collect();
                    out.push(pair("CHAP_A", "5"));
                    out.push(pair("CHAP_I", "42"));
                    out.push(pair("CHAP_C", &hex(&challenge)));
                    self.challenge = Some((42, challenge));
                }
            }
            if let Some(r) = get("CHAP_R") {
                let (id, challenge) = self.challenge.clone().expect("challenge first");
                let mut h = Md5::new();
                h.update([id]);
                h.update(self.script.chap.unwrap_or("").as_bytes());
                h.update(&challenge);
                if get("CHAP_N").as_deref() != Some(USER) || unhex(&r) != h.finalize().to_vec() {
                    self.respond_login(&req, false, req.csg, (2, 1), &[])?;
                    return Ok(false);
                }
                self.auth_done = true;
            }
            let transit = req.transit && self.auth_done;
            let body = encode(&out);
            self.respond_login(&req, transit, Stage::Operational, (0, 0), &body)?;
            return Ok(true);
        }
        // Operational stage.
        for (k, v) in &pairs {
            let Some(key) = Key::from_name(k) else {
                continue;
            };
            if let Some(local) = target_local(key, self.script.max_connections) {
                if let Ok(Some(answer)) = respond(key, v, local) {
                    out.push(pair(k, &reply_string(answer)));
                }
            }
        }
        if !self.sent_mrdsl {
            self.sent_mrdsl = true;
            out.push(pair("MaxRecvDataSegmentLength", "8192"));
        }
        let body = encode(&out);
        self.respond_login(&req, req.transit, Stage::FullFeature, (0, 0), &body)?;
        Ok(true)
    }
}

// ---------------------------------------------------------------------------
// Running iscsictl
// ---------------------------------------------------------------------------

fn iscsictl(args: &[&str]) -> Run {
    run_iscsictl(args, INITIATOR, RUN_LIMIT)
}

/// A private file holding `secret`, kept alive by the returned TempDir.
fn secret_file(secret: &str) -> (tempfile::TempDir, String) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("secret");
    std::fs::write(&p, secret).expect("write");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    (dir, p.display().to_string())
}

fn chap_login(fake: &Fake, secret: &str, extra: &[&str]) -> Run {
    let (_dir, f) = secret_file(secret);
    let mut args = vec![
        "login",
        "-p",
        &fake.portal,
        "-t",
        IQN,
        "--dry-run",
        "--chap-user",
        USER,
        "--chap-secret-file",
        &f,
    ];
    args.extend_from_slice(extra);
    iscsictl(&args)
}

// ---------------------------------------------------------------------------
// CHAP with old targets
// ---------------------------------------------------------------------------

#[test]
fn refused_chap_a_list_is_retried_with_md5_alone() {
    for how in [ListRefusal::Status, ListRefusal::Reject] {
        let fake = Fake::start(Script {
            chap: Some(SECRET),
            lists: how,
            ..Script::default()
        });
        let r = chap_login(&fake, SECRET, &[]);
        r.expect(exit::OK)
            .stdout_has("CHAP_A = 5 (md5)\n")
            .stdout_has("logged out\n")
            .stderr_has(&format!(
                "iscsictl: {} refused our CHAP_A list (7,8,6,5); retrying once offering MD5 \
                 alone (CHAP_A=5)",
                fake.portal
            ));
        let offers: Vec<String> = fake.seen(2).into_iter().flat_map(|s| s.chap_a).collect();
        assert_eq!(offers, ["7,8,6,5", "5"], "{how:?}");
    }
}

#[test]
fn a_target_taking_the_list_needs_no_retry() {
    let fake = Fake::start(Script {
        chap: Some(SECRET),
        ..Script::default()
    });
    let r = chap_login(&fake, SECRET, &[]);
    r.expect(exit::OK).stdout_has("CHAP_A = 5 (md5)\n");
    assert_eq!(r.stderr, "", "no retry, no notice");
    assert_eq!(fake.seen(1).len(), 1);
}

#[test]
fn wrong_secret_is_tried_once_with_md5_and_then_fails() {
    let fake = Fake::start(Script {
        chap: Some(SECRET),
        lists: ListRefusal::Status,
        ..Script::default()
    });
    let r = chap_login(&fake, "not-the-secret-99", &[]);
    r.expect(exit::AUTH_FAILED)
        .stderr_has("retrying once offering MD5 alone")
        .stderr_has("authentication failure (0x0201) — check the CHAP user and secret");
    // The list, then MD5 alone; no third attempt.
    thread::sleep(Duration::from_millis(200));
    assert_eq!(fake.seen(2).len(), 2);
}

#[test]
fn no_md5_retry_when_md5_was_not_allowed() {
    let fake = Fake::start(Script {
        chap: Some(SECRET),
        lists: ListRefusal::Status,
        ..Script::default()
    });
    let r = chap_login(&fake, SECRET, &["--chap-algs", "sha256,sha1"]);
    r.expect(exit::AUTH_FAILED);
    assert!(!r.stderr.contains("MD5 alone"), "{}", r.stderr);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(fake.seen(1).len(), 1);
}

// ---------------------------------------------------------------------------
// Discovery with CHAP
// ---------------------------------------------------------------------------

#[test]
fn discovery_with_chap() {
    let fake = Fake::start(Script {
        chap: Some(SECRET),
        tag: 3,
        ..Script::default()
    });
    let (_dir, f) = secret_file(SECRET);
    let r = iscsictl(&[
        "discover",
        "-p",
        &fake.portal,
        "--chap-user",
        USER,
        "--chap-secret-file",
        &f,
    ]);
    r.expect(exit::OK)
        .stdout_has(&format!("{IQN}\n    {},3\n", fake.portal));
    let seen = fake.seen(1);
    assert_eq!(seen[0].session_type.as_deref(), Some("Discovery"));
    assert!(!seen[0].chap_a.is_empty(), "discovery did authenticate");

    // No credentials: the portal wants CHAP, said so, exit 5.
    iscsictl(&["discover", "-p", &fake.portal])
        .expect(exit::AUTH_FAILED)
        .stderr_has("the target wants CHAP: pass --chap-user and --chap-secret-file");
    // The wrong secret: exit 5 as well.
    let (_d2, wrong) = secret_file("not-the-secret-99");
    iscsictl(&[
        "discover",
        "-p",
        &fake.portal,
        "--chap-user",
        USER,
        "--chap-secret-file",
        &wrong,
    ])
    .expect(exit::AUTH_FAILED)
    .stderr_has("check the CHAP user and secret");
}

#[test]
fn a_portal_hanging_up_on_auth_none_discovery_wants_chap() {
    let fake = Fake::start(Script {
        hang_up: true,
        ..Script::default()
    });
    iscsictl(&["discover", "-p", &fake.portal])
        .expect(exit::AUTH_FAILED)
        .stderr_has(&format!(
            "target closed the connection during login ({}), in answer to our first login \
             request (which offered no authentication) and without a Login Response: the \
             portal probably requires CHAP",
            fake.portal
        ));
    // A Normal login hung up on stays a protocol error: targets refuse those
    // with a status.
    let r = iscsictl(&["login", "-p", &fake.portal, "-t", IQN, "--dry-run"]);
    r.expect(exit::PROTOCOL);
    assert!(!r.stderr.contains("probably requires CHAP"), "{}", r.stderr);
}

#[test]
fn discovery_with_chap_from_a_config_block() {
    use std::os::unix::fs::PermissionsExt;
    let fake = Fake::start(Script {
        chap: Some(SECRET),
        ..Script::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("iscsi-rs.conf");
    std::fs::write(
        &conf,
        format!(
            "disc {{\n  TargetAddress = {}\n  SessionType = Discovery\n  chapIName = {USER}\n  \
             chapSecret = \"{SECRET}\"\n}}\n",
            fake.portal
        ),
    )
    .expect("write");
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let c = conf.display().to_string();
    iscsictl(&["discover", "-n", "disc", "-c", &c, "--json"])
        .expect(exit::OK)
        .stdout_has(IQN);
    assert!(!fake.seen(1)[0].chap_a.is_empty());
    iscsictl(&["discover", "-n", "nosuch", "-c", &c])
        .expect(exit::USAGE)
        .stderr_has("no block \"nosuch\"");
}

// ---------------------------------------------------------------------------
// TargetPortalGroupTag
// ---------------------------------------------------------------------------

#[test]
fn portal_group_tag_is_checked_against_discovery() {
    let fake = Fake::start(Script {
        tag: 2,
        ..Script::default()
    });
    let with = format!("{},1", fake.portal);
    iscsictl(&["login", "-p", &with, "-t", IQN, "--dry-run"])
        .expect(exit::PROTOCOL)
        .stderr_has(&format!(
            "login failed: {} answered for portal group 2, but discovery reported portal \
             group 1 there (TargetPortalGroupTag mismatch)",
            fake.portal
        ));
    let right = format!("{},2", fake.portal);
    iscsictl(&["login", "-p", &right, "-t", IQN, "--dry-run"])
        .expect(exit::OK)
        .stdout_has("TargetPortalGroupTag = 2\n");
    // Without a tag there is nothing to check.
    iscsictl(&["login", "-p", &fake.portal, "-t", IQN, "--dry-run"]).expect(exit::OK);
}

// ---------------------------------------------------------------------------
// Redirects remembered (permanent) or not (temporary)
// ---------------------------------------------------------------------------

fn recipe(portal: &str, source: Source) -> Recipe {
    Recipe {
        nickname: None,
        target_name: TargetName::parse(IQN).unwrap(),
        initiator_name: IscsiName::parse(INITIATOR).unwrap(),
        portal: Portal::parse(portal).unwrap(),
        address: None,
        portal_group_tag: None,
        moved: None,
        source,
        netns: None,
        auth: Auth::None,
        header_digest: Digest::None,
        data_digest: Digest::None,
        queue_depth: None,
        connections: None,
        params: Vec::new(),
        connect_timeout: Duration::from_secs(5),
        login_timeout: Duration::from_secs(5),
    }
}

fn closed_portal() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("127.0.0.1:{}", l.local_addr().unwrap().port())
}

#[test]
fn permanent_redirect_is_remembered_for_relogins() {
    let home = Fake::start(Script {
        tag: 5,
        ..Script::default()
    });
    let mover = Fake::start(Script {
        redirect: Some((2, format!("{},5", home.portal))),
        ..Script::default()
    });
    let r = recipe(&mover.portal, Source::default())
        .request(Portal::parse(&mover.portal).unwrap(), None);
    let mut notices = Vec::new();
    let s = iscsictl::login::connect_and_login(&r, None, &mut notices).expect("login");
    assert_eq!(
        s.moved.as_ref().map(|p| p.to_string()),
        Some(home.portal.clone())
    );
    assert!(!s.temporary);
    let rc = Recipe::from_login(&r, &s, None).unwrap();
    assert_eq!(
        rc.moved.as_ref().map(|p| p.to_string()),
        Some(home.portal.clone())
    );
    assert_eq!(rc.portal_group_tag, Some(5));
    assert_eq!(rc.address, Some(home.portal.parse().unwrap()));
    // Through the bytes, as the kernel keeps it.
    let rc = Recipe::decode(&rc.encode().unwrap()).unwrap();
    assert_eq!(
        rc.moved.as_ref().map(|p| p.to_string()),
        Some(home.portal.clone())
    );
    let before = mover.seen(1).len();
    // The re-login goes straight to where the target moved.
    let mut notices = Vec::new();
    let s2 = relogin(&rc, [0x80, 0, 0, 0, 0, 1], &mut notices).expect("relogin");
    assert_eq!(s2.portal.to_string(), home.portal);
    assert!(notices.is_empty(), "{}", String::from_utf8_lossy(&notices));
    thread::sleep(Duration::from_millis(100));
    assert_eq!(
        mover.seen(before).len(),
        before,
        "the old portal was not asked again"
    );
}

#[test]
fn temporary_redirect_is_not_remembered() {
    let home = Fake::start(Script::default());
    let mover = Fake::start(Script {
        redirect: Some((1, home.portal.clone())),
        ..Script::default()
    });
    let r = recipe(&mover.portal, Source::default())
        .request(Portal::parse(&mover.portal).unwrap(), None);
    let mut notices = Vec::new();
    let s = iscsictl::login::connect_and_login(&r, None, &mut notices).expect("login");
    assert_eq!(s.portal.to_string(), home.portal);
    assert!(s.moved.is_none() && s.temporary);
    let rc = Recipe::from_login(&r, &s, None).unwrap();
    assert!(rc.moved.is_none());
    // Not even as the fallback address.
    assert_eq!(rc.address, None);
    assert_eq!(rc.portal.to_string(), mover.portal);
}

#[test]
fn relogin_falls_back_from_an_unreachable_moved_portal() {
    let home = Fake::start(Script::default());
    let mut rc = recipe(&home.portal, Source::default());
    rc.moved = Some(Portal::parse(&closed_portal()).unwrap());
    let mut notices = Vec::new();
    let s = relogin(&rc, [0x80, 0, 0, 0, 0, 2], &mut notices).expect("relogin");
    assert_eq!(s.portal.to_string(), home.portal);
    let n = String::from_utf8(notices).unwrap();
    assert!(
        n.contains("is unreachable") && n.contains("the portal as given"),
        "{n}"
    );
}

// ---------------------------------------------------------------------------
// Source binding
// ---------------------------------------------------------------------------

#[test]
fn initiator_address_and_iface_bind_the_connection() {
    let fake = Fake::start(Script::default());
    iscsictl(&[
        "login",
        "-p",
        &fake.portal,
        "-t",
        IQN,
        "--dry-run",
        "--initiator-address",
        "127.0.0.2",
        "--iface",
        "lo",
    ])
    .expect(exit::OK);
    let peer = fake.seen(1)[0].peer.expect("peer");
    assert_eq!(peer.ip(), "127.0.0.2".parse::<IpAddr>().unwrap());
    // Re-logins bind the same way (the recipe carries it).
    let src = Source {
        iface: Some("lo".into()),
        address: Some("127.0.0.3".parse().unwrap()),
    };
    let rc = Recipe::decode(&recipe(&fake.portal, src).encode().unwrap()).unwrap();
    relogin(&rc, [0x80, 0, 0, 0, 0, 3], &mut Vec::new()).expect("relogin");
    let peer = fake.seen(2)[1].peer.expect("peer");
    assert_eq!(peer.ip(), "127.0.0.3".parse::<IpAddr>().unwrap());

    iscsictl(&[
        "login",
        "-p",
        &fake.portal,
        "-t",
        IQN,
        "--dry-run",
        "--iface",
        "nosuch0",
    ])
    .expect(exit::USAGE)
    .stderr_has("cannot bind the connection to interface nosuch0: no such interface");
    iscsictl(&[
        "login",
        "-p",
        &fake.portal,
        "-t",
        IQN,
        "--dry-run",
        "--initiator-address",
        "::1",
    ])
    .expect(exit::USAGE)
    .stderr_has("is of the other IP family");
}

// ---------------------------------------------------------------------------
// Network namespaces and IPv6 zones
// ---------------------------------------------------------------------------

/// A network namespace of its own, held by a `sleep` child (killed on drop),
/// with lo up and fe80::1 on it.
struct Ns {
    child: std::process::Child,
    ns: NetNs,
}

impl Ns {
    fn new() -> Ns {
        let child = Command::new("unshare")
            .args(["--net", "sleep", "120"])
            .spawn()
            .expect("unshare (util-linux) runs as root");
        let pid = child.id().to_string();
        let path = format!("/proc/{pid}/ns/net");
        // Wait until the child is in its own namespace.
        let mine = iscsictl::netns::current_id().unwrap();
        let start = Instant::now();
        let id = loop {
            let id = std::fs::File::open(&path).ok().and_then(|f| {
                use std::os::unix::fs::MetadataExt;
                let m = f.metadata().ok()?;
                Some(NetNsId {
                    dev: m.dev(),
                    ino: m.ino(),
                })
            });
            match id {
                Some(id) if id != mine => break id,
                _ if start.elapsed() > Duration::from_secs(5) => panic!("unshare did not start"),
                _ => thread::sleep(Duration::from_millis(10)),
            }
        };
        for cmd in [
            &["ip", "link", "set", "lo", "up"][..],
            &[
                "ip",
                "-6",
                "addr",
                "add",
                "fe80::1/64",
                "dev",
                "lo",
                "nodad",
            ],
        ] {
            let st = Command::new("nsenter")
                .args(["-t", &pid, "-n"])
                .args(cmd)
                .status()
                .expect("nsenter");
            assert!(st.success(), "{cmd:?} in the namespace");
        }
        Ns {
            child,
            ns: NetNs { id, path: None },
        }
    }

    /// Runs `f` on a thread inside the namespace.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let ns = self.ns.clone();
        thread::spawn(move || {
            NetNsCache::default()
                .enter(&ns)
                .expect("enter the namespace");
            f()
        })
        .join()
        .expect("namespace thread")
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn relogin_happens_in_the_sessions_namespace() {
    let ns = Ns::new();
    // A target that exists only inside the namespace.
    let fake = ns.run(|| Fake::start(Script::default()));
    assert!(
        TcpStream::connect(fake.portal.as_str()).is_err(),
        "precondition: nothing answers at {} outside the namespace",
        fake.portal
    );
    let mut rc = recipe(&fake.portal, Source::default());
    rc.netns = Some(ns.ns.clone());
    let rc = Recipe::decode(&rc.encode().unwrap()).unwrap();
    // From the daemon's namespace, the portal is unreachable...
    let plain = rc.clone();
    let e = thread::spawn(move || relogin(&plain, [0x80, 0, 0, 0, 0, 4], &mut Vec::new()))
        .join()
        .unwrap()
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(e, Error::Unreachable(_)), "{e}");
    // ...and the daemon's path enters the recorded namespace first.
    let cache = Arc::new(NetNsCache::default());
    let c = Arc::clone(&cache);
    let got = thread::spawn(move || {
        relogin_in_namespace(&c, &rc, [0x80, 0, 0, 0, 0, 4], &mut Vec::new())
            .map(|s| s.portal.to_string())
    })
    .join()
    .unwrap()
    .expect("relogin inside the namespace");
    assert_eq!(got, fake.portal);
    assert_eq!(fake.seen(1).len(), 1);
    // The calling thread of this test never moved.
    assert_ne!(iscsictl::netns::current_id().unwrap(), ns.ns.id);
}

#[test]
fn link_local_portal_with_a_zone() {
    let ns = Ns::new();
    let fake = ns.run(|| {
        // lo is interface 1 in every namespace.
        let a = SocketAddrV6::new("fe80::1".parse::<Ipv6Addr>().unwrap(), 0, 0, 1);
        Fake::serve(
            TcpListener::bind(a).expect("bind fe80::1%lo"),
            Script::default(),
        )
    });
    let port = fake.portal.rsplit(':').next().unwrap().to_owned();
    let by_name = format!("[fe80::1%lo]:{port}");
    let by_index = format!("[fe80::1%1]:{port}");
    let bin = env!("CARGO_BIN_EXE_iscsictl");
    let p = port.clone();
    let out = ns.run(move || {
        let port = p;
        let run = |p: &str| {
            Command::new(bin)
                .args([
                    "login",
                    "-p",
                    p,
                    "-t",
                    IQN,
                    "--dry-run",
                    "--initiator-name",
                    INITIATOR,
                ])
                .output()
                .expect("run iscsictl")
        };
        (
            run(&by_name),
            run(&by_index),
            run(&format!("[fe80::1%nosuch0]:{port}")),
        )
    });
    for (o, want) in [(&out.0, "%lo]"), (&out.1, "%1]")] {
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            stdout.contains(&format!("Portal = [fe80::1{want}:{port}\n")),
            "{stdout}"
        );
    }
    assert_eq!(out.2.status.code(), Some(i32::from(exit::USAGE)));
    let err = String::from_utf8_lossy(&out.2.stderr);
    assert!(
        err.contains("no interface \"nosuch0\" for the IPv6 zone"),
        "{err}"
    );
    // A link-local portal without its zone is a usage error before any I/O.
    iscsictl(&["login", "-p", "[fe80::1]:3260", "-t", IQN, "--dry-run"])
        .expect(exit::USAGE)
        .stderr_has("link-local");
}

#[test]
fn ipv6_loopback_discovery_and_login() {
    let fake = Fake::serve(
        TcpListener::bind("[::1]:0").expect("bind ::1"),
        Script::default(),
    );
    assert!(fake.portal.starts_with("[::1]:"));
    iscsictl(&["discover", "-p", &fake.portal])
        .expect(exit::OK)
        .stdout_has(&format!("{IQN}\n    {},1\n", fake.portal));
    iscsictl(&["login", "-p", &fake.portal, "-t", IQN, "--dry-run"])
        .expect(exit::OK)
        .stdout_has(&format!("Portal = {}\n", fake.portal));
}

// ---------------------------------------------------------------------------
// Further connections of a session (issue 16)
// ---------------------------------------------------------------------------

const LEAD_ISID: [u8; 6] = [0x80, 0x16, 0, 0, 0, 1];

/// Keys a login of a further connection may send: the connection's own
/// (RFC 7143 §13: declarative names, authentication, digests, receive size).
const CONNECTION_KEYS: &[&str] = &[
    "InitiatorName",
    "TargetName",
    "AuthMethod",
    "CHAP_A",
    "CHAP_N",
    "CHAP_R",
    "CHAP_I",
    "CHAP_C",
    "HeaderDigest",
    "DataDigest",
    "MaxRecvDataSegmentLength",
];

/// A login request wanting `connections` connections of the fake's target.
fn mcs_request(fake: &Fake, connections: u16, auth: Auth) -> iscsictl::plan::LoginRequest {
    let mut rc = recipe(&fake.portal, Source::default());
    rc.connections = Some(connections);
    rc.auth = auth;
    rc.request(Portal::parse(&fake.portal).unwrap(), None)
}

/// The leading login and the further ones, as `iscsictl login` does them
/// before the handoff; returns the sessions and the notices.
fn log_in_all(
    req: &iscsictl::plan::LoginRequest,
    wanted: u16,
) -> (
    iscsictl::session::Session,
    Vec<iscsictl::session::Session>,
    String,
) {
    let mut notices = Vec::new();
    let lead = connect_and_login(req, Some(LEAD_ISID), &mut notices).expect("leading login");
    let extras = further_connections(&lead, req, wanted, &mut notices);
    (lead, extras, String::from_utf8(notices).unwrap())
}

#[test]
fn further_connections_carry_the_tsih_and_their_cid_and_only_connection_keys() {
    let fake = Fake::start(Script {
        max_connections: 4,
        ..Script::default()
    });
    let req = mcs_request(&fake, 4, Auth::None);
    let (lead, extras, notices) = log_in_all(&req, 4);
    assert_eq!(notices, "");
    // We offered 4 and the target allows 4.
    assert_eq!(lead.outcome.params.max_connections, 4);
    assert_eq!(lead.outcome.cid, 0);
    assert_eq!(extras.len(), 3);
    for (i, x) in extras.iter().enumerate() {
        assert_eq!(x.outcome.tsih, lead.outcome.tsih);
        assert_eq!(x.outcome.isid, LEAD_ISID);
        assert_eq!(usize::from(x.outcome.cid), i + 1);
        // Session-wide values are the leading login's.
        assert_eq!(
            x.outcome.params.max_burst_len,
            lead.outcome.params.max_burst_len
        );
        assert_eq!(x.conn.peer(), lead.conn.peer());
    }
    // The fake logs a connection when it closes.
    let tsih = lead.outcome.tsih;
    drop((lead, extras));
    let seen = fake.seen(4);
    assert_eq!(seen.len(), 4);
    let lead_seen = &seen[0];
    assert_eq!((lead_seen.tsih, lead_seen.cid), (0, 0));
    assert!(lead_seen.keys.iter().any(|k| k == "MaxConnections"));
    let mut cids: Vec<u16> = seen[1..].iter().map(|s| s.cid).collect();
    cids.sort_unstable();
    assert_eq!(cids, [1, 2, 3]);
    for s in &seen[1..] {
        assert_eq!(s.tsih, tsih, "connection {}", s.cid);
        assert_eq!(s.status, 0);
        // Nothing ran yet: every login carries the leading login's CmdSN.
        assert_eq!(s.cmd_sn, lead_seen.cmd_sn);
        let foreign: Vec<&String> = s
            .keys
            .iter()
            .filter(|k| !CONNECTION_KEYS.contains(&k.as_str()))
            .collect();
        assert!(
            foreign.is_empty(),
            "connection {} offered {foreign:?}",
            s.cid
        );
        assert!(s.session_type.is_none());
    }
}

#[test]
fn every_further_connection_runs_its_own_chap() {
    let fake = Fake::start(Script {
        chap: Some(SECRET),
        max_connections: 2,
        ..Script::default()
    });
    let creds = iscsictl::plan::ChapCredentials {
        name: USER.into(),
        secret: iscsictl::secret::Secret::from_bytes(SECRET.as_bytes().to_vec()).unwrap(),
        algs: iscsictl::params::ChapAlgs::parse("sha256,md5").unwrap(),
        mutual: None,
    };
    let req = mcs_request(&fake, 2, Auth::Chap(creds));
    let (lead, extras, notices) = log_in_all(&req, 2);
    assert_eq!(notices, "");
    assert_eq!(extras.len(), 1);
    assert_eq!(extras[0].outcome.tsih, lead.outcome.tsih);
    drop((lead, extras));
    let seen = fake.seen(2);
    // The leading login offered the list; the further one the algorithm the
    // leading login ended with, and answered a challenge of its own.
    assert_eq!(seen[0].chap_a, ["7,5"]);
    assert_eq!(seen[1].chap_a, ["5"]);
    assert!(seen[1].keys.iter().any(|k| k == "CHAP_R"));
}

#[test]
fn a_target_without_room_gives_fewer_connections_and_no_error() {
    // MaxConnections says 4, but the session is full after 2 (0x0206).
    let fake = Fake::start(Script {
        max_connections: 4,
        room: 2,
        ..Script::default()
    });
    let req = mcs_request(&fake, 4, Auth::None);
    let (lead, extras, notices) = log_in_all(&req, 4);
    assert_eq!(extras.len(), 1, "{notices}");
    assert_eq!(extras[0].outcome.cid, 1);
    assert!(
        notices.contains("connection 2 not logged in")
            && notices.contains("too many connections")
            && notices.contains("goes on with 2 connections"),
        "{notices}"
    );
    assert_eq!(lead.outcome.params.max_connections, 4);
    drop((lead, extras));
    // The series stops at the first refusal: no login for CID 3.
    let seen = fake.seen(3);
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|s| s.cid != 3));
    assert_eq!(seen.iter().filter(|s| s.status == 0x0206).count(), 1);
}

#[test]
fn a_target_with_max_connections_1_gets_one_connection() {
    let fake = Fake::start(Script::default());
    let req = mcs_request(&fake, 4, Auth::None);
    let (lead, extras, notices) = log_in_all(&req, 4);
    assert_eq!(lead.outcome.params.max_connections, 1);
    assert!(extras.is_empty());
    assert!(
        notices.contains("allows 1 connection per session (MaxConnections); using 1 of the 4"),
        "{notices}"
    );
    drop(lead);
    thread::sleep(Duration::from_millis(100));
    assert_eq!(fake.seen(1).len(), 1, "no further login tried");
}

#[test]
fn a_target_with_max_connections_1_gives_the_default_one_connection_quietly() {
    // The default count (one per CPU, here a fixed 4 whatever the host has)
    // against a target answering MaxConnections=1: the single-connection
    // path, and nothing said about it.
    let fake = Fake::start(Script::default());
    let mut req = mcs_request(&fake, 4, Auth::None);
    req.connections = Connections::Default(4);
    let mut notices = Vec::new();
    let lead = connect_and_login(&req, Some(LEAD_ISID), &mut notices).expect("leading login");
    assert_eq!(lead.outcome.params.max_connections, 1);
    let extras = further_connections(&lead, &req, req.connections.count(), &mut notices);
    assert!(extras.is_empty());
    assert_eq!(String::from_utf8(notices).unwrap(), "");
    drop(lead);
    thread::sleep(Duration::from_millis(100));
    let seen = fake.seen(1);
    assert_eq!(seen.len(), 1, "no further login tried");
    // The default was offered (MaxConnections) and the target said 1.
    assert!(seen[0].keys.iter().any(|k| k == "MaxConnections"));
    // The same through the binary, with the host's own default: one
    // connection's worth of parameters and no notice.
    let r = iscsictl(&["login", "-p", &fake.portal, "-t", IQN, "--dry-run"]);
    r.expect(exit::OK).stdout_has("MaxConnections = 1\n");
    assert_eq!(r.stderr, "");
}

#[test]
fn connections_default_to_one_per_cpu_at_most_16_and_1_offers_as_before() {
    let fake = Fake::start(Script {
        max_connections: 16,
        ..Script::default()
    });
    // The host's CPU count decides the default; the expected value follows
    // it, so this holds on any host (the rule itself is tested with fixed
    // counts in params.rs and plan.rs).
    let n = default_connections(online_cpus());
    assert!((1..=16).contains(&n));
    let default = n.to_string();
    for (extra, offered) in [
        (&[][..], default.as_str()),
        // One asked for: MaxConnections=1, as before MC/S.
        (&["--connections", "1"][..], "1"),
        (&["--connections", "3"][..], "3"),
        // `--param MaxConnections` still wins over the default.
        (&["--param", "MaxConnections=1"][..], "1"),
    ] {
        let args = [
            &["login", "-p", &fake.portal, "-t", IQN, "--dry-run"][..],
            extra,
        ]
        .concat();
        iscsictl(&args)
            .expect(exit::OK)
            .stdout_has(&format!("MaxConnections = {offered}\n"));
    }
}
