//! `Engine::poll`: keepalive pings, the NOP timeout, the closed-window rule,
//! the target-requested logout's deadline and the replacement timeout.

use super::*;
use crate::proto::pdu::AsyncEvent;
use crate::proto::session::engine::Phase;
use crate::proto::session::logout::LOGOUT_RESPONSE_TIMEOUT_MS;
use crate::proto::session::timers::{Expiry, Timers, IDLE_POLL_MS};
use crate::proto::session::window_watch::{WINDOW_PING_MS, WINDOW_STALL_MS};

const T: Timers = Timers {
    noop_interval_ms: 5_000,
    noop_timeout_ms: 10_000,
    replacement_ms: 120_000,
    failed_at_ms: 0,
};

#[test]
fn idle_engine_sleeps_until_the_keepalive() {
    let mut e = engine(2);
    let d = e.poll(1_000, &T);
    assert!(d.pings == 0 && d.fail.is_none() && !d.replacement_expired);
    // The idle poll (1 s) comes before the keepalive (5 s).
    assert_eq!(d.wake_at, 1_000 + IDLE_POLL_MS);
    let d = e.poll(4_500, &T);
    assert_eq!(d.wake_at, 5_000);
}

#[test]
fn silence_for_the_interval_queues_one_ping() {
    let mut e = engine(2);
    let d = e.poll(5_000, &T);
    assert!(d.pings != 0);
    assert_eq!(
        e.lanes[0].ctl_jobs.pop(),
        Some(TxJob::Ping {
            ordered_cmd_sn: None
        })
    );
    assert_eq!(e.lanes[0].ping_sent_ms, Some(5_000));
    // Not again while it is out.
    assert!(e.poll(6_000, &T).pings == 0);
    assert!(e.lanes[0].ctl_jobs.is_empty());
}

#[test]
fn unanswered_ping_fails_after_the_timeout() {
    let mut e = engine(2);
    e.poll(5_000, &T);
    let d = e.poll(14_999, &T);
    assert!(d.fail.is_none());
    assert_eq!(d.wake_at, 15_000);
    assert_eq!(e.poll(15_000, &T).fail, Some(Expiry::NoPingAnswer));
}

#[test]
fn any_pdu_after_the_ping_postpones_the_timeout() {
    let mut e = engine(2);
    e.poll(5_000, &T);
    let p = nop_in(&e, u32::MAX, u32::MAX, 1);
    feed_at(&mut e, &p, &[], 12_000).unwrap();
    assert!(e.poll(15_000, &T).fail.is_none());
    assert_eq!(e.poll(22_000, &T).fail, Some(Expiry::NoPingAnswer));
}

#[test]
fn ping_answer_rearms_the_keepalive() {
    let mut e = engine(2);
    e.poll(5_000, &T);
    let itt = e.ping_itt(0).get();
    let p = nop_in(&e, itt, u32::MAX, 1);
    let out = feed_at(&mut e, &p, &[], 6_000).unwrap();
    assert!(out.wake);
    let d = e.poll(10_999, &T);
    assert!(d.fail.is_none() && d.pings == 0);
    assert!(e.poll(11_000, &T).pings != 0);
}

#[test]
fn zero_interval_means_no_keepalive() {
    let mut e = engine(2);
    let t = Timers {
        noop_interval_ms: 0,
        ..T
    };
    let d = e.poll(1_000_000, &t);
    assert!(d.pings == 0);
    assert_eq!(d.wake_at, 1_000_000 + IDLE_POLL_MS);
}

#[test]
fn zero_timeout_never_fails_a_ping() {
    let mut e = engine(2);
    let t = Timers {
        noop_timeout_ms: 0,
        ..T
    };
    e.poll(5_000, &t);
    assert!(e.poll(10_000_000, &t).fail.is_none());
}

#[test]
fn closed_window_pings_then_fails() {
    // No NOP timeout: only the closed-window rule can fail the connection.
    let t = Timers {
        noop_interval_ms: 0,
        noop_timeout_ms: 0,
        ..T
    };
    let mut e = engine(1);
    submit(&mut e, 0, Dir::None, 0);
    // The next command finds no credit at t=100.
    assert!(matches!(
        e.submit(0, 1, TestCmd { id: 1 }, 0, Dir::None, 0, 100),
        Err(crate::proto::session::engine::Refused::NoCredit(_))
    ));
    let d = e.poll(100 + WINDOW_PING_MS, &t);
    assert!(d.pings != 0);
    let limit = t.noop_timeout_ms.max(WINDOW_STALL_MS);
    let d = e.poll(100 + WINDOW_PING_MS + limit, &t);
    assert_eq!(
        d.fail,
        Some(Expiry::WindowClosed {
            closed_ms: WINDOW_PING_MS + limit
        })
    );
}

#[test]
fn credit_stops_the_closed_window_clock() {
    let t = Timers {
        noop_interval_ms: 0,
        ..T
    };
    let mut e = engine(1);
    let s = submit(&mut e, 0, Dir::None, 0);
    assert!(e
        .submit(0, 1, TestCmd { id: 1 }, 0, Dir::None, 0, 100)
        .is_err());
    assert!(e.window_watch.is_closed());
    feed_with(&mut e, |e| response(e, s.itt.get(), 0, 1)).unwrap();
    assert!(!e.window_watch.is_closed());
    assert!(e.poll(1_000_000, &t).fail.is_none());
}

#[test]
fn recovering_expires_into_offline_once() {
    let mut e = engine(2);
    e.phase = Phase::Recovering;
    let t = Timers {
        failed_at_ms: 1_000,
        ..T
    };
    let d = e.poll(60_000, &t);
    assert!(!d.replacement_expired);
    assert_eq!(d.wake_at, 61_000);
    let d = e.poll(121_000, &t);
    assert!(d.replacement_expired);
    assert_eq!(e.phase, Phase::Offline);
    assert!(!e.poll(200_000, &t).replacement_expired);
}

#[test]
fn recovering_sends_no_keepalive() {
    let mut e = engine(2);
    e.phase = Phase::Recovering;
    let d = e.poll(50_000, &T);
    assert!(d.pings == 0 && d.fail.is_none());
    assert!(e.lanes[0].ctl_jobs.is_empty());
}

#[test]
fn target_requested_logout_overdue_fails_once() {
    let mut e = engine(2);
    let a = async_msg(&e, AsyncEvent::LogoutRequest, (0, 0, 10), 1, 0);
    feed_at(&mut e, &a, &[], 1_000).unwrap();
    assert_eq!(e.phase, Phase::LoggingOut);
    let d = e.poll(5_000, &T);
    assert!(d.fail.is_none());
    assert_eq!(d.wake_at, (1_000 + LOGOUT_RESPONSE_TIMEOUT_MS).min(6_000));
    let d = e.poll(1_000 + LOGOUT_RESPONSE_TIMEOUT_MS, &T);
    assert_eq!(
        d.fail,
        Some(Expiry::LogoutOverdue {
            waited_ms: LOGOUT_RESPONSE_TIMEOUT_MS
        })
    );
    assert!(e.poll(60_000, &T).fail.is_none());
}

#[test]
fn logging_out_sends_no_keepalive() {
    let mut e = engine(2);
    let a = async_msg(&e, AsyncEvent::LogoutRequest, (0, 0, 10), 1, 0);
    feed_at(&mut e, &a, &[], 0).unwrap();
    assert_eq!(e.lanes[0].ctl_jobs.pop(), Some(TxJob::Logout));
    assert!(e.poll(9_000, &T).pings == 0);
    assert!(e.lanes[0].ctl_jobs.is_empty());
}

#[test]
fn offline_and_closed_do_nothing() {
    for phase in [Phase::Offline, Phase::Closed] {
        let mut e = engine(2);
        e.phase = phase;
        let d = e.poll(1_000_000, &T);
        assert!(d.pings == 0 && d.fail.is_none() && !d.replacement_expired);
    }
}

#[test]
fn full_control_queue_reports_no_ping() {
    let mut e = engine(2);
    while e.lanes[0].ctl_jobs.push(TxJob::NopOut { ttt: 1, lun: 0 }) {}
    let d = e.poll(5_000, &T);
    assert!(d.pings == 0);
    assert!(e.lanes[0].ping_sent_ms.is_none());
}

#[test]
fn wake_at_is_never_later_than_the_idle_poll() {
    let mut e = engine(2);
    let t = Timers {
        noop_interval_ms: 1_000_000,
        ..T
    };
    assert_eq!(e.poll(0, &t).wake_at, IDLE_POLL_MS);
}
