//! NOP-In through the engine: the target's pings (answered on the control
//! queue), answers to ours (StatSN, wake), stray ITTs, and window updates.

use super::*;
use crate::proto::session::error::SessionError;

#[test]
fn target_ping_does_not_touch_stat_sn() {
    let mut e = engine(2);
    feed_with(&mut e, |e| nop_in(e, u32::MAX, 7, 1234)).unwrap();
    assert_eq!(e.lanes[0].stat.exp_stat_sn().get(), 1);
}

#[test]
fn unsolicited_nop_in_without_ttt_asks_nothing() {
    let mut e = engine(2);
    let out = feed_with(&mut e, |e| nop_in(e, u32::MAX, u32::MAX, 1)).unwrap();
    assert!(!out.kick_tx && !out.wake);
    assert!(e.lanes[0].ctl_jobs.is_empty());
}

#[test]
fn nop_in_opens_the_window() {
    let mut e = engine(1);
    submit(&mut e, 0, Dir::None, 0);
    assert_eq!(e.seq.credits(), 0);
    let Pdu::NopIn(mut n) = nop_in(&e, u32::MAX, u32::MAX, 1) else {
        unreachable!()
    };
    n.exp_cmd_sn = 2;
    n.max_cmd_sn = 9;
    feed(&mut e, &rt(Pdu::NopIn(n)), &[]).unwrap();
    assert_eq!(e.seq.credits(), 8);
}

#[test]
fn ping_answer_acks_its_stat_sn() {
    let mut e = engine(2);
    e.start_ping(0, 0);
    let itt = e.ping_itt(0).get();
    feed_with(&mut e, |e| nop_in(e, itt, u32::MAX, 30)).unwrap();
    assert_eq!(e.lanes[0].stat.exp_stat_sn().get(), 31);
}

#[test]
fn nop_in_with_a_task_itt_is_named() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::None, 0);
    assert_eq!(
        feed_with(&mut e, |e| nop_in(e, s.itt.get(), u32::MAX, 1)).unwrap_err(),
        SessionError::UnknownItt {
            what: "NOP-In",
            itt: s.itt.get()
        }
    );
}

#[test]
fn ping_answer_from_an_older_connection_age_is_named() {
    let mut e = engine(2);
    e.start_ping(0, 0);
    let old = e.internal_itt(crate::proto::session::itt::PING_LOW).get() - 0x1_0000;
    assert!(matches!(
        feed_with(&mut e, |e| nop_in(e, old, u32::MAX, 1)),
        Err(SessionError::UnknownItt { what: "NOP-In", .. })
    ));
    assert!(e.lanes[0].ping_sent_ms.is_some());
}

#[test]
fn each_target_ping_is_answered_in_order() {
    let mut e = engine(2);
    for ttt in 1..=5 {
        feed_with(&mut e, |e| nop_in(e, u32::MAX, ttt, 1)).unwrap();
    }
    for ttt in 1..=5 {
        assert_eq!(
            e.lanes[0].ctl_jobs.pop(),
            Some(TxJob::NopOut { ttt, lun: 0 })
        );
    }
}

#[test]
fn a_flood_of_target_pings_is_named_when_the_queue_is_full() {
    let mut e = engine(2);
    let cap = e.lanes[0].ctl_jobs.capacity() as u32;
    for ttt in 0..cap {
        feed_with(&mut e, |e| nop_in(e, u32::MAX, ttt, 1)).unwrap();
    }
    assert_eq!(
        feed_with(&mut e, |e| nop_in(e, u32::MAX, cap, 1)).unwrap_err(),
        SessionError::TxQueueFull
    );
}

#[test]
fn nop_in_refreshes_last_rx() {
    let mut e = engine(2);
    let p = nop_in(&e, u32::MAX, u32::MAX, 1);
    feed_at(&mut e, &p, &[], 4242).unwrap();
    assert_eq!(e.lanes[0].last_rx_ms, 4242);
}

#[test]
fn start_ping_twice_queues_one() {
    let mut e = engine(2);
    assert_eq!(e.start_ping(0, 10), PingStart::Queued);
    assert_eq!(e.start_ping(0, 20), PingStart::Queued);
    assert_eq!(e.lanes[0].ctl_jobs.len(), 1);
    assert_eq!(e.lanes[0].ping_sent_ms, Some(10));
}
