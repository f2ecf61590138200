//! Logout flows, ours (closing the session) and the target's (Async Message
//! event 1), and the other Async Message events: drop connection (2), drop
//! all connections (3), renegotiate (4), SCSI events and the rest.

use super::*;
use crate::proto::pdu::{AsyncEvent, ScsiResponseData, LOGOUT_SUCCESS};
use crate::proto::session::engine::Phase;
use crate::proto::session::error::SessionError;
use crate::proto::session::rx::{Note, Reconnect};

/// Our own logout as the kernel's `logout()` starts it.
fn our_logout(e: &mut TestEngine) {
    e.phase = Phase::LoggingOut;
    e.reconnect_delay_ms = None;
}

fn ask_logout(e: &mut TestEngine, now: i64) -> RxOutcome<'static, TestCmd> {
    let a = async_msg(e, AsyncEvent::LogoutRequest, (0, 0, 20), 1, 0);
    feed_at(e, &a, &[], now).unwrap()
}

#[test]
fn our_logout_response_wakes_the_waiter() {
    let mut e = engine(2);
    our_logout(&mut e);
    let out = feed_with(&mut e, |e| logout_resp(e, LOGOUT_SUCCESS, 0, 1)).unwrap();
    assert!(out.wake);
    assert!(out.reconnect.is_none());
    assert_eq!(e.logout_response, Some(LOGOUT_SUCCESS));
}

#[test]
fn logout_response_while_running_is_unexpected() {
    let mut e = engine(2);
    assert_eq!(
        feed_with(&mut e, |e| logout_resp(e, 0, 0, 1)).unwrap_err(),
        SessionError::Unexpected("Logout Response")
    );
}

#[test]
fn a_second_logout_response_is_unexpected() {
    let mut e = engine(2);
    our_logout(&mut e);
    feed_with(&mut e, |e| logout_resp(e, 0, 0, 1)).unwrap();
    assert!(matches!(
        feed_with(&mut e, |e| logout_resp(e, 0, 0, 2)),
        Err(SessionError::Unexpected("Logout Response"))
    ));
}

#[test]
fn logout_response_for_another_itt_is_no_answer() {
    let mut e = engine(2);
    our_logout(&mut e);
    let mut pdu = logout_resp(&e, LOGOUT_SUCCESS, 0, 1);
    if let Pdu::LogoutResponse(l) = &mut pdu {
        l.itt = e.ping_itt(0).get();
    }
    assert!(matches!(
        feed(&mut e, &pdu, &[]),
        Err(SessionError::UnknownItt {
            what: "Logout Response",
            ..
        })
    ));
    assert_eq!(e.logout_response, None);
}

#[test]
fn logout_response_from_an_older_connection_is_no_answer() {
    let mut e = engine(2);
    let old = logout_resp(&e, LOGOUT_SUCCESS, 0, 1);
    e.phase = Phase::Recovering;
    e.connection_lost();
    let seq = e.seq;
    e.connection_replaced(lead(params(), 1), seq, None, 0);
    our_logout(&mut e);
    assert!(feed(&mut e, &old, &[]).is_err());
}

#[test]
fn failed_logout_response_code_is_kept() {
    let mut e = engine(2);
    our_logout(&mut e);
    feed_with(&mut e, |e| logout_resp(e, 3, 0, 1)).unwrap();
    assert_eq!(e.logout_response, Some(3));
}

#[test]
fn target_asks_logout_and_we_log_out_at_once() {
    let mut e = engine(2);
    let out = ask_logout(&mut e, 500);
    assert_eq!(out.note, Some(Note::TargetAsksLogout));
    assert!(out.kick_tx);
    assert_eq!(e.phase, Phase::LoggingOut);
    assert_eq!(e.lanes[0].ctl_jobs.pop(), Some(TxJob::Logout));
    assert_eq!(e.reconnect_delay_ms, Some(2_000));
    // No new commands meanwhile.
    assert!(e
        .submit(0, 0, TestCmd { id: 0 }, 0, Dir::None, 0, 0)
        .is_err());
}

#[test]
fn target_asks_logout_twice_queues_one_logout() {
    let mut e = engine(2);
    ask_logout(&mut e, 0);
    let out = ask_logout(&mut e, 10);
    assert!(!out.kick_tx);
    assert_eq!(e.lanes[0].ctl_jobs.len(), 1);
}

#[test]
fn logout_response_after_the_targets_request_asks_for_a_reconnect() {
    let mut e = engine(2);
    ask_logout(&mut e, 0);
    let out = feed_with(&mut e, |e| logout_resp(e, 0, 0, 2)).unwrap();
    assert_eq!(out.reconnect, Some(Reconnect::LoggedOut));
    assert_eq!(e.connection_lost(), 2_000);
}

#[test]
fn erl2_takes_the_logout_responses_time2wait() {
    let p = SessionParams {
        error_recovery_level: 2,
        ..params()
    };
    let mut e = engine_with(2, p);
    ask_logout(&mut e, 0);
    feed_with(&mut e, |e| logout_resp(e, 0, 7, 2)).unwrap();
    assert_eq!(e.connection_lost(), 7_000);
}

#[test]
fn target_asks_logout_while_we_log_out_keeps_our_logout() {
    let mut e = engine(2);
    our_logout(&mut e);
    let out = ask_logout(&mut e, 0);
    assert_eq!(out.note, Some(Note::TargetAsksLogout));
    assert!(e.lanes[0].ctl_jobs.is_empty());
    assert_eq!(e.reconnect_delay_ms, None);
}

#[test]
fn drop_connection_reconnects_after_its_time2wait() {
    let mut e = engine(2);
    let a = async_msg(&e, AsyncEvent::DropConnection, (0, 5, 20), 1, 0);
    let out = feed(&mut e, &a, &[]).unwrap();
    assert_eq!(out.reconnect, Some(Reconnect::Dropped));
    assert_eq!(e.connection_lost(), 5_000);
    // Used once: the next loss waits DefaultTime2Wait.
    assert_eq!(e.connection_lost(), 2_000);
}

#[test]
fn drop_all_connections_reconnects_after_its_time2wait() {
    let mut e = engine(2);
    let a = async_msg(&e, AsyncEvent::DropAllConnections, (0, 0, 0), 1, 0);
    let out = feed(&mut e, &a, &[]).unwrap();
    assert_eq!(out.reconnect, Some(Reconnect::Dropped));
    assert_eq!(e.connection_lost(), 0);
}

#[test]
fn renegotiate_reconnects() {
    let mut e = engine(2);
    let a = async_msg(&e, AsyncEvent::Renegotiate, (0, 0, 0), 1, 0);
    let out = feed(&mut e, &a, &[]).unwrap();
    assert_eq!(out.reconnect, Some(Reconnect::Renegotiate));
    assert!(!Reconnect::Renegotiate.text().is_empty());
    assert_eq!(e.phase, Phase::Running);
}

#[test]
fn scsi_event_names_key_asc_ascq() {
    let mut e = engine(2);
    let mut sense = [0u8; 18];
    sense[0] = 0x70;
    sense[2] = 0x06;
    sense[12] = 0x3f;
    sense[13] = 0x0e;
    let mut seg = vec![0u8; 20];
    let n = ScsiResponseData {
        sense: &sense,
        response_data: &[],
    }
    .emit(&mut seg)
    .unwrap();
    let a = async_msg(&e, AsyncEvent::ScsiEvent, (0, 0, 0), 1, n as u32);
    let out = feed(&mut e, &a, &seg[..n]).unwrap();
    assert_eq!(
        out.note,
        Some(Note::ScsiEvent {
            lun: 0x0001_0000_0000_0000,
            key: 6,
            asc: 0x3f,
            ascq: 0x0e
        })
    );
}

#[test]
fn scsi_event_with_garbage_data_is_noted_with_zeros() {
    let mut e = engine(2);
    let a = async_msg(&e, AsyncEvent::ScsiEvent, (0, 0, 0), 1, 3);
    let out = feed(&mut e, &a, &[0xff, 0xff, 1]).unwrap();
    assert!(matches!(
        out.note,
        Some(Note::ScsiEvent {
            key: 0,
            asc: 0,
            ascq: 0,
            ..
        })
    ));
}

#[test]
fn other_async_events_are_only_noted() {
    for ev in [
        AsyncEvent::TaskTermination,
        AsyncEvent::VendorSpecific,
        AsyncEvent::Unknown(200),
    ] {
        let mut e = engine(2);
        let a = async_msg(&e, ev, (0, 0, 0), 1, 0);
        let out = feed(&mut e, &a, &[]).unwrap();
        assert_eq!(out.note, Some(Note::AsyncEvent(ev)));
        assert!(out.reconnect.is_none() && !out.kick_tx);
        assert_eq!(e.phase, Phase::Running);
    }
}

#[test]
fn async_message_acks_stat_sn() {
    let mut e = engine(2);
    let a = async_msg(&e, AsyncEvent::VendorSpecific, (0, 0, 0), 41, 0);
    feed(&mut e, &a, &[]).unwrap();
    assert_eq!(e.lanes[0].stat.exp_stat_sn().get(), 42);
}

#[test]
fn connection_lost_ends_the_logout_deadline() {
    let mut e = engine(2);
    ask_logout(&mut e, 0);
    e.connection_lost();
    e.phase = Phase::Recovering;
    let t = crate::proto::session::timers::Timers {
        noop_interval_ms: 0,
        noop_timeout_ms: 0,
        replacement_ms: 1_000_000,
        failed_at_ms: 0,
    };
    assert!(e.poll(60_000, &t).fail.is_none());
    assert!(e.lanes[0].ctl_jobs.is_empty());
}
