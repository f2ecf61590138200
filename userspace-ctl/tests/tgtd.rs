//! `iscsictl discover` and `login --dry-run` against a real tgtd (issue 4's "done
//! when"), a second connection of a session (issue 16), plus the failure
//! paths against fake servers: nothing listening, a peer that hangs up
//! mid-login, one that never answers, and redirects.
//!
//! Each test starts its own tgtd (see `fixture`), so they run in parallel. A
//! missing tgt package fails the tests with a message saying so.

#[path = "tgtd/fixture.rs"]
mod fixture;

#[path = "common/run.rs"]
mod run;
use run::{run_iscsictl, Run};

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use fixture::*;
use iscsi_proto::bhs::BHS_LEN;
use iscsi_proto::framing;
use iscsi_proto::pdu::{LoginRequest, LoginResponse, NopIn, NopOut};
use iscsictl::exit;
use iscsictl::transport::Phase;

const INITIATOR: &str = "iqn.2026-11.dev.iscsi-rs.test:initiator";
/// No single run may take this long; a hang fails the test instead of CI.
const RUN_LIMIT: Duration = Duration::from_secs(60);

fn iscsictl(args: &[&str]) -> Run {
    run_iscsictl(args, INITIATOR, RUN_LIMIT)
}

/// `login -p <tgtd> -t <iqn> --dry-run` plus `extra`.
fn dry_login(t: &Tgtd, iqn: &str, extra: &[&str]) -> Run {
    let portal = t.portal();
    let mut args = vec!["login", "-p", &portal, "-t", iqn, "--dry-run"];
    args.extend_from_slice(extra);
    iscsictl(&args)
}

fn chap_args(t: &Tgtd, secret: &str) -> Vec<String> {
    let f = t.secret_file("mine", secret);
    vec![
        "--chap-user".into(),
        CHAP_USER.into(),
        "--chap-secret-file".into(),
        f.display().to_string(),
    ]
}

fn mutual_args(t: &Tgtd, secret: &str) -> Vec<String> {
    let f = t.secret_file("theirs", secret);
    vec![
        "--mutual-user".into(),
        MUTUAL_USER.into(),
        "--mutual-secret-file".into(),
        f.display().to_string(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

// ---------------------------------------------------------------------------
// Against tgtd
// ---------------------------------------------------------------------------

#[test]
fn discovery_lists_both_targets_with_portal_and_tag() {
    let t = Tgtd::start();
    let portal = t.portal();
    let r = iscsictl(&["discover", "-p", &portal]);
    r.expect(exit::OK);
    assert_eq!(
        r.stdout,
        format!("{PLAIN_IQN}\n    {portal},1\n{CHAP_IQN}\n    {portal},1\n")
    );
}

#[test]
fn discovery_as_json() {
    let t = Tgtd::start();
    let portal = t.portal();
    let r = iscsictl(&["discover", "-p", &portal, "--json"]);
    r.expect(exit::OK);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("valid JSON");
    let targets = v["targets"].as_array().expect("targets array");
    let names: Vec<&str> = targets.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, [PLAIN_IQN, CHAP_IQN]);
    for target in targets {
        let p = &target["portals"][0];
        assert_eq!(p["address"], portal.as_str());
        assert_eq!(p["host"], "127.0.0.1");
        assert_eq!(p["port"], t.port);
        assert_eq!(p["portal_group_tag"], 1);
    }
}

#[test]
fn ipv6_portal_discovery_and_login() {
    let t = Tgtd::start_on("::1");
    let portal = t.portal();
    assert!(portal.starts_with("[::1]:"), "{portal}");
    let r = iscsictl(&["discover", "-p", &portal]);
    r.expect(exit::OK)
        .stdout_has(&format!("{PLAIN_IQN}\n    {portal},1\n"));
    dry_login(&t, PLAIN_IQN, &[])
        .expect(exit::OK)
        .stdout_has(&format!("Portal = {portal}\n"))
        .stdout_has("logged out\n");
}

#[test]
fn login_without_auth_prints_negotiated_parameters() {
    let t = Tgtd::start();
    let r = dry_login(&t, PLAIN_IQN, &[]);
    r.expect(exit::OK)
        .stdout_has(&format!("TargetName = {PLAIN_IQN}\n"))
        .stdout_has(&format!("Portal = {}\n", t.portal()))
        .stdout_has("TargetPortalGroupTag = 1\n")
        .stdout_has("AuthMethod = None\n")
        .stdout_has("HeaderDigest = None\n")
        .stdout_has("MaxBurstLength = ")
        .stdout_has("ErrorRecoveryLevel = 0\n")
        // tgt's default MaxConnections is 1: whatever the default count
        // offered (one per CPU), the session keeps one connection.
        .stdout_has("MaxConnections = 1\n")
        .stdout_has("logged out\n");
    assert!(!r.stdout.contains("CHAP_A"), "{}", r.stdout);
}

#[test]
fn one_way_chap_logs_in() {
    let t = Tgtd::start();
    let chap = chap_args(&t, CHAP_SECRET);
    // The default offer starts with sha256, which tgtd mistakes for SHA-1: the
    // login must still succeed, on MD5, after one announced retry.
    let r = dry_login(&t, CHAP_IQN, &strs(&chap));
    r.expect(exit::OK)
        .stdout_has("AuthMethod = CHAP\n")
        .stdout_has("CHAP_A = 5 (md5)\n")
        .stdout_has("logged out\n")
        .stderr_has("retrying without sha256");
}

#[test]
fn mutual_chap_logs_in() {
    let t = Tgtd::start();
    let mut args = chap_args(&t, CHAP_SECRET);
    args.extend(mutual_args(&t, MUTUAL_SECRET));
    let r = dry_login(&t, CHAP_IQN, &strs(&args));
    r.expect(exit::OK)
        .stdout_has("AuthMethod = CHAP\n")
        .stdout_has("CHAP_A = 5 (md5)\n")
        .stdout_has("logged out\n");
}

#[test]
fn chap_restricted_to_md5_needs_no_retry() {
    let t = Tgtd::start();
    let mut args = chap_args(&t, CHAP_SECRET);
    args.extend(["--chap-algs".into(), "md5".into()]);
    let r = dry_login(&t, CHAP_IQN, &strs(&args));
    r.expect(exit::OK).stdout_has("CHAP_A = 5 (md5)\n");
    assert_eq!(r.stderr, "", "no retry, no notice");
}

#[test]
fn wrong_secret_is_an_authentication_failure() {
    let t = Tgtd::start();
    let chap = chap_args(&t, "not-the-secret-42");
    let r = dry_login(&t, CHAP_IQN, &strs(&chap));
    r.expect(exit::AUTH_FAILED).stderr_has(
        "iscsictl: login failed: authentication failure (0x0201) — check the CHAP user and \
         secret\n",
    );
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

#[test]
fn target_failing_mutual_chap_is_a_hard_auth_failure() {
    let t = Tgtd::start();
    let mut args = chap_args(&t, CHAP_SECRET);
    // tgtd proves it knows MUTUAL_SECRET; we expect another one.
    args.extend(mutual_args(&t, "some-other-secret-9"));
    let r = dry_login(&t, CHAP_IQN, &strs(&args));
    r.expect(exit::AUTH_FAILED)
        .stderr_has("the target failed mutual CHAP authentication");
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

#[test]
fn chap_target_without_credentials_is_an_authentication_failure() {
    let t = Tgtd::start();
    dry_login(&t, CHAP_IQN, &[])
        .expect(exit::AUTH_FAILED)
        .stderr_has("authentication failure (0x0201) — the target wants CHAP");
}

#[test]
fn unknown_target_is_not_found() {
    let t = Tgtd::start();
    dry_login(&t, "iqn.2026-11.dev.iscsi-rs.test:nosuch", &[])
        .expect(exit::TARGET_NOT_FOUND)
        .stderr_has("iscsictl: login failed: target not found (0x0203) — ");
}

#[test]
fn crc32c_digests_are_negotiated() {
    let t = Tgtd::start();
    let args = ["--header-digest", "crc32c", "--data-digest", "crc32c"];
    // The Logout then travels with a header digest; "logged out" proves tgtd took it.
    dry_login(&t, PLAIN_IQN, &args)
        .expect(exit::OK)
        .stdout_has("HeaderDigest = CRC32C\n")
        .stdout_has("DataDigest = CRC32C\n")
        .stdout_has("logged out\n");
}

#[test]
fn params_are_proposed() {
    let t = Tgtd::start();
    let args = [
        "--param",
        "MaxRecvDataSegmentLength=65536",
        "--param",
        "ImmediateData=No",
    ];
    dry_login(&t, PLAIN_IQN, &args)
        .expect(exit::OK)
        .stdout_has("MaxRecvDataSegmentLength = 65536\n")
        .stdout_has("ImmediateData = No\n");
}

#[test]
fn redirect_is_followed() {
    let t = Tgtd::start();
    let (l, portal) = fake_server();
    let to = t.portal();
    let server = thread::spawn(move || {
        let (s, _) = l.accept().expect("accept");
        redirect(s, &to, 1);
    });
    let r = iscsictl(&["login", "-p", &portal, "-t", PLAIN_IQN, "--dry-run"]);
    server.join().expect("fake redirector");
    r.expect(exit::OK)
        .stdout_has(&format!("Portal = {}\n", t.portal()))
        .stderr_has(&format!(
            "iscsictl: {portal} redirects temporarily to {}; following",
            t.portal()
        ));
}

// ---------------------------------------------------------------------------
// Failures without a target
// ---------------------------------------------------------------------------

#[test]
fn nothing_listening_fails_fast() {
    let portal = format!("127.0.0.1:{}", free_port());
    let r = iscsictl(&["login", "-p", &portal, "-t", PLAIN_IQN, "--dry-run"]);
    r.expect(exit::UNREACHABLE).stderr_has(&format!(
        "iscsictl: connection to {portal} refused: no iSCSI target listens there\n"
    ));
    assert!(r.elapsed < Duration::from_secs(5), "{:?}", r.elapsed);
    let r = iscsictl(&["discover", "-p", &portal]);
    r.expect(exit::UNREACHABLE);
}

#[test]
fn peer_closing_mid_login_is_reported() {
    let (l, portal) = fake_server();
    let server = thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        // Take the first Login Request, then hang up without an answer.
        let mut buf = [0u8; BHS_LEN];
        let _ = s.read_exact(&mut buf);
    });
    let r = iscsictl(&[
        "login",
        "-p",
        &portal,
        "-t",
        PLAIN_IQN,
        "--dry-run",
        "--login-timeout",
        "10",
    ]);
    server.join().expect("fake server");
    r.expect(exit::PROTOCOL).stderr_has(&format!(
        "iscsictl: target closed the connection during login ({portal})\n"
    ));
    assert!(r.elapsed < Duration::from_secs(5), "{:?}", r.elapsed);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

#[test]
fn silent_target_hits_the_login_timeout() {
    let (l, portal) = fake_server();
    let server = thread::spawn(move || {
        let (s, _) = l.accept().expect("accept");
        // Read everything, answer nothing, until the initiator gives up.
        drain(s, Duration::from_secs(20));
    });
    let r = iscsictl(&[
        "login",
        "-p",
        &portal,
        "-t",
        PLAIN_IQN,
        "--dry-run",
        "--login-timeout",
        "1",
    ]);
    server.join().expect("fake server");
    r.expect(exit::UNREACHABLE).stderr_has(&format!(
        "iscsictl: target {portal} did not answer within 1 s during login (--login-timeout)\n"
    ));
    assert!(
        r.elapsed >= Duration::from_millis(900) && r.elapsed < Duration::from_secs(5),
        "{:?}",
        r.elapsed
    );
}

#[test]
fn redirect_loops_end() {
    let (l, portal) = fake_server();
    let me = portal.clone();
    let server = thread::spawn(move || {
        // The initial login plus four followed redirects, each to ourselves.
        for _ in 0..5 {
            let (s, _) = l.accept().expect("accept");
            redirect(s, &me, 2);
        }
    });
    let r = iscsictl(&["login", "-p", &portal, "-t", PLAIN_IQN, "--dry-run"]);
    server.join().expect("fake redirector");
    r.expect(exit::PROTOCOL)
        .stderr_has("login failed: more than 4 redirects");
    assert_eq!(r.stderr.matches("redirects permanently to").count(), 4);
}

// ---------------------------------------------------------------------------
// Fake servers
// ---------------------------------------------------------------------------

fn fake_server() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let portal = format!("127.0.0.1:{}", l.local_addr().expect("addr").port());
    (l, portal)
}

/// Answers the first Login Request on `s` with a redirect (detail 1: temporary,
/// 2: permanent) to `to`, built with iscsi-proto's PDU writer.
fn redirect(mut s: TcpStream, to: &str, detail: u8) {
    let mut bhs = [0u8; BHS_LEN];
    s.read_exact(&mut bhs).expect("login request");
    let req = LoginRequest::parse(&bhs).expect("a Login Request");
    let mut skip =
        vec![
            0u8;
            framing::pdu_wire_len(0, req.data_segment_len, false, false).expect("length") - BHS_LEN
        ];
    s.read_exact(&mut skip).expect("login text");
    let text = format!("TargetAddress={to}\0");
    let mut header = [0u8; BHS_LEN];
    LoginResponse {
        transit: false,
        cont: false,
        csg: req.csg,
        nsg: req.nsg,
        version_max: 0,
        version_active: 0,
        isid: req.isid,
        tsih: 0,
        itt: req.itt,
        stat_sn: 0,
        exp_cmd_sn: req.cmd_sn,
        max_cmd_sn: req.cmd_sn,
        status_class: 1,
        status_detail: detail,
        data_segment_len: u32::try_from(text.len()).expect("short"),
    }
    .emit(&mut header);
    let mut out = vec![0u8; 512];
    let n =
        framing::write_pdu(&header, &[], text.as_bytes(), false, false, &mut out).expect("frame");
    s.write_all(&out[..n]).expect("send redirect");
    // Let the initiator read it before the socket goes away.
    drain(s, Duration::from_secs(5));
}

/// A login request for `iqn` at tgtd wanting `connections` connections (a
/// re-login recipe's, as the daemon would make it).
fn mcs_request(t: &Tgtd, iqn: &str, connections: u16) -> iscsictl::plan::LoginRequest {
    let text = format!(
        "RecipeVersion=1\0TargetName={iqn}\0InitiatorName={INITIATOR}\0Portal={}\0\
         AuthMethod=None\0HeaderDigest=None\0DataDigest=None\0Connections={connections}\0\
         ConnectTimeout=5\0LoginTimeout=10\0",
        t.portal()
    );
    let rc = iscsictl::recipe::Recipe::decode(text.as_bytes()).expect("recipe");
    rc.request(rc.portal.clone(), None)
}

/// (TSIH, CID) of each connection tgtd holds for target `tid`, from its
/// `--op show --mode conn` listing (TSIH as tgtd prints it, in host order).
fn tgtd_connections(t: &Tgtd, tid: u32) -> Vec<(u32, u16)> {
    let text = t.show_connections(tid);
    let mut out = Vec::new();
    let mut session = None;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Session: ") {
            session = Some(v.parse().expect("session number"));
        } else if let Some(v) = line.strip_prefix("Connection: ") {
            let s = session.expect("a session before its connection");
            out.push((s, v.parse().expect("CID")));
        }
    }
    out.sort_unstable();
    out
}

/// An immediate NOP-Out ping (ITT `itt`) on `s`, and tgtd's NOP-In answer.
fn ping(s: &mut iscsictl::session::Session, itt: u32) -> NopIn {
    let o = &s.outcome;
    let mut h = [0u8; BHS_LEN];
    NopOut {
        immediate: true,
        lun: 0,
        itt,
        ttt: 0xffff_ffff,
        cmd_sn: o.cmd_sn,
        exp_stat_sn: o.exp_stat_sn,
        data_segment_len: 0,
    }
    .emit(&mut h);
    s.conn.begin(Phase::Discovery, Duration::from_secs(10));
    s.conn.send(&h).expect("send NOP-Out");
    let pdu = s.conn.recv().expect("NOP-In");
    let nop_in = NopIn::parse(&pdu.bhs).expect("a NOP-In");
    assert_eq!(nop_in.itt, itt);
    nop_in
}

/// Logs in to tgtd's plain target asking for two connections (`--connections
/// 2`) with an ISID ending in `isid_tail`, and checks the session got both: the
/// leading login settles MaxConnections=2, the second connection logs in on the
/// same ISID and TSIH without a notice and changes no session value, tgtd holds
/// connections 0 and 1 in one session and answers a ping on the second one.
/// The session then logs out on the leading connection.
fn two_connections_in_one_session(t: &Tgtd, isid_tail: u8) {
    let req = mcs_request(t, PLAIN_IQN, 2);
    let mut notices = Vec::new();
    let isid = [0x80, 0x16, 0, 0, 0, isid_tail];
    let lead =
        iscsictl::login::connect_and_login(&req, Some(isid), &mut notices).expect("leading login");
    assert_eq!(lead.outcome.params.max_connections, 2);
    let mut extras = iscsictl::login::further_connections(&lead, &req, 2, &mut notices);
    let notices = String::from_utf8_lossy(&notices);
    assert!(notices.is_empty(), "{notices}");
    assert_eq!(extras.len(), 1, "tgt refused the second connection");
    let second = extras[0].outcome;
    assert_eq!(second.cid, 1);
    assert_eq!(
        (second.isid, second.tsih),
        (lead.outcome.isid, lead.outcome.tsih)
    );
    // Answering MaxConnections changed no session value.
    assert_eq!(second.params, lead.outcome.params);
    // tgtd's own view: both connections in the one session.
    let conns = tgtd_connections(t, 1);
    assert_eq!(conns.len(), 2, "{conns:?}");
    assert_eq!(conns[0].0, conns[1].0, "one session: {conns:?}");
    assert_eq!((conns[0].1, conns[1].1), (0, 1));
    // The second connection is in full feature phase: tgtd answers a ping on it.
    let nop_in = ping(&mut extras[0], 0x1616);
    assert_eq!(nop_in.stat_sn, second.exp_stat_sn);
    // The session logs out normally on the leading connection.
    drop(extras);
    let seq = lead.outcome.sequence();
    lead.logout(seq).expect("logout");
}

/// With MaxConnections=2, tgt answers the second connection's operational
/// request with T=0 and offers MaxConnections=2 again, although it is a
/// leading-only key (RFC 7143 §13.2): tgt offers every key it holds at a
/// non-default value that the request left out, then waits one round for the
/// answer. iscsi-proto confirms it, since it is the session's value, and tgt
/// lets the connection in.
#[test]
fn tgtd_takes_a_second_connection_that_confirms_max_connections() {
    let t = Tgtd::start();
    t.set_target_param(1, "MaxConnections", "2");
    two_connections_in_one_session(&t, 2);
}

/// tgt offers its configured MaxConnections, not the session's: with 4
/// configured and 2 negotiated by the leading login (we asked for 2), the
/// second connection is offered MaxConnections=4. Negotiated against the
/// session's 2 by the key's rule (min) that gives 2, the session's value, so
/// iscsi-proto answers 2; tgt takes the answer and the session has two
/// connections. (An offer whose outcome differs, such as MaxConnections=1, is
/// still refused: see the negotiate.rs tests.)
#[test]
fn tgtd_configured_for_4_connections_gives_the_2_asked_for() {
    let t = Tgtd::start();
    t.set_target_param(1, "MaxConnections", "4");
    two_connections_in_one_session(&t, 4);
}

/// Logs in to tgtd's plain target (default MaxConnections=1) as `req` asks,
/// with ISID tail `isid_tail`, then its further connections; returns how
/// many further ones came up and the notices.
fn one_connection_target(req: &iscsictl::plan::LoginRequest, isid_tail: u8) -> (usize, String) {
    let mut notices = Vec::new();
    let lead = iscsictl::login::connect_and_login(
        req,
        Some([0x80, 0x16, 0, 0, 0, isid_tail]),
        &mut notices,
    )
    .expect("leading login");
    assert_eq!(lead.outcome.params.max_connections, 1);
    let extras =
        iscsictl::login::further_connections(&lead, req, req.connections.count(), &mut notices);
    let seq = lead.outcome.sequence();
    lead.logout(seq).expect("logout");
    (extras.len(), String::from_utf8(notices).unwrap())
}

#[test]
fn tgtd_with_max_connections_1_gives_one_connection() {
    let t = Tgtd::start();
    let (extras, notices) = one_connection_target(&mcs_request(&t, PLAIN_IQN, 2), 3);
    assert_eq!(extras, 0);
    assert!(notices.contains("using 1 of the 2 asked for"), "{notices}");
    // The default count (fixed at 4 here, whatever the host's CPUs): the
    // same single connection, and not a word about it.
    let mut req = mcs_request(&t, PLAIN_IQN, 4);
    req.connections = iscsictl::params::Connections::Default(4);
    assert_eq!(one_connection_target(&req, 4), (0, String::new()));
}
