//! The recovery daemon's re-login step against a real tgtd, without the kernel:
//! a recipe goes through encode/decode (as it would through ADD_SESSION and
//! WAIT_EVENT), then `daemon::relogin` logs in twice with the same ISID — the
//! second login is a session reinstatement (TSIH 0, same ISID) while the first
//! session's connection is still open — with no auth, one-way CHAP and mutual
//! CHAP, and each login yields a HANDOFF argument the kernel would accept.

// Shared with tgtd.rs, which uses the helpers this file does not.
#[allow(dead_code)]
#[path = "tgtd/fixture.rs"]
mod fixture;

use std::io::Read;
use std::time::{Duration, Instant};

use fixture::*;
use iscsi_proto::uapi::HandoffKind;
use iscsictl::daemon::{relogin, relogin_handoff};
use iscsictl::names::{IscsiName, TargetName};
use iscsictl::params::{ChapAlgs, Digest};
use iscsictl::plan::{Auth, ChapCredentials, MutualChap};
use iscsictl::portal::Portal;
use iscsictl::recipe::Recipe;
use iscsictl::secret::Secret;

const INITIATOR: &str = "iqn.2026-11.dev.iscsi-rs.test:daemon";

fn recipe(t: &Tgtd, target: &str, auth: Auth) -> Recipe {
    Recipe {
        nickname: None,
        target_name: TargetName::parse(target).unwrap(),
        initiator_name: IscsiName::parse(INITIATOR).unwrap(),
        portal: Portal::parse(&t.portal()).unwrap(),
        address: None,
        portal_group_tag: None,
        moved: None,
        source: Default::default(),
        netns: None,
        auth,
        header_digest: Digest::Crc32c,
        data_digest: Digest::None,
        queue_depth: Some(16),
        connections: None,
        params: Vec::new(),
        connect_timeout: Duration::from_secs(5),
        login_timeout: Duration::from_secs(5),
    }
}

fn chap(mutual: bool) -> Auth {
    let secret = |s: &str| Secret::from_bytes(s.as_bytes().to_vec()).unwrap();
    Auth::Chap(ChapCredentials {
        name: CHAP_USER.into(),
        secret: secret(CHAP_SECRET),
        algs: ChapAlgs::default(),
        mutual: mutual.then(|| MutualChap {
            name: MUTUAL_USER.into(),
            secret: secret(MUTUAL_SECRET),
        }),
    })
}

/// True when the peer closes `s` within `limit` (the target dropped it).
fn closed_by_peer(s: &mut std::net::TcpStream, limit: Duration) -> bool {
    let start = Instant::now();
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = [0u8; 512];
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Two re-logins with one ISID; both hand-offs validate for HANDOFF.
fn twice(target: &str, auth: Auth) {
    let t = Tgtd::start();
    // Through the bytes, as the kernel would hand it back.
    let bytes = recipe(&t, target, auth).encode().unwrap();
    let r = Recipe::decode(&bytes).unwrap();
    let isid = [0x80, 0x12, 0x34, 0x56, 0x00, 0x01];
    let mut notices = Vec::new();

    let first = relogin(&r, isid, &mut notices).unwrap_or_else(|e| panic!("first login: {e}"));
    assert_eq!(first.outcome.isid, isid);
    let (h1, mut s1) = relogin_handoff(first, &r, 3, 1, 0).unwrap();
    let c = h1
        .validate(HandoffKind::Handoff)
        .unwrap_or_else(|e| panic!("first handoff: {e}"));
    assert_eq!((c.raw.host_no, c.raw.generation), (3, 1));
    assert_eq!(c.raw.isid, isid);
    assert_eq!(c.queue_depth, 16);
    assert_eq!(
        c.params.header_digest,
        iscsi_proto::negotiate::Digest::Crc32c
    );
    assert_eq!(c.target_name(), target);
    assert_eq!((c.raw.recipe, c.raw.recipe_len), (0, 0));
    // One connection: the multiple-connection fields stay zero, as before.
    assert_eq!((c.raw.connections, c.raw.lane, c.connections), (0, 0, 0));

    // The first session is still logged in: this is session reinstatement.
    let second = relogin(&r, isid, &mut notices).unwrap_or_else(|e| panic!("reinstatement: {e}"));
    assert_eq!(second.outcome.isid, isid);
    let (h2, _s2) = relogin_handoff(second, &r, 3, 2, 0).unwrap();
    let c2 = h2
        .validate(HandoffKind::Handoff)
        .unwrap_or_else(|e| panic!("second handoff: {e}"));
    assert_eq!((c2.raw.generation, c2.raw.isid), (2, isid));
    assert_ne!(c2.raw.tsih, 0);
    // The target ended the session it replaced.
    assert!(
        closed_by_peer(&mut s1, Duration::from_secs(5)),
        "tgtd kept the reinstated session's connection open"
    );
    let _ = notices;
}

#[test]
fn relogin_twice_without_auth() {
    twice(PLAIN_IQN, Auth::None);
}

#[test]
fn relogin_twice_with_one_way_chap() {
    twice(CHAP_IQN, chap(false));
}

#[test]
fn relogin_twice_with_mutual_chap() {
    twice(CHAP_IQN, chap(true));
}

#[test]
fn relogin_falls_back_to_the_address_of_the_first_login() {
    let t = Tgtd::start();
    let mut r = recipe(&t, PLAIN_IQN, Auth::None);
    r.address = Some(t.portal().parse().unwrap());
    // A portal that refuses at once: the daemon tries where the first login ended.
    r.portal = Portal::parse(&format!("127.0.0.1:{}", free_port())).unwrap();
    let mut notices = Vec::new();
    let s = relogin(&r, [0x80, 0, 0, 0, 0, 9], &mut notices).unwrap();
    assert_eq!(s.portal.to_string(), t.portal());
    let notices = String::from_utf8(notices).unwrap();
    assert!(notices.contains("is unreachable"), "{notices}");
}
