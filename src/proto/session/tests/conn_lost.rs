//! Connection lost and replaced: what is dropped, what comes back, the new
//! ITT age (so nothing of the old connection matches), and fresh numbers.

use super::*;
use crate::proto::session::engine::Phase;
use crate::proto::session::error::SessionError;
use crate::proto::session::itt::next_age;

fn replace(e: &mut TestEngine, cmd_sn: u32, now: i64) {
    let w = CmdWindow::new(Sn(cmd_sn), Sn(cmd_sn + 31)).unwrap();
    e.connection_replaced(
        lead(params(), 500),
        Sequencer::new(Sn(cmd_sn), w),
        None,
        now,
    );
}

#[test]
fn lost_connection_drops_queued_jobs_and_the_ping() {
    let mut e = engine(4);
    let s = submit(&mut e, 0, Dir::Write, 65536);
    feed_with(&mut e, |e| r2t(e, s.itt.get(), 0, 4096, 0)).unwrap();
    e.start_ping(0, 1);
    feed_with(&mut e, |e| nop_in(e, u32::MAX, 3, 1)).unwrap();
    assert_eq!(e.connection_lost(), 2_000);
    assert!(e.lanes[0].jobs.is_empty() && e.lanes[0].ctl_jobs.is_empty());
    assert!(e.lanes[0].ping_sent_ms.is_none());
}

#[test]
fn tasks_stay_until_taken_and_each_comes_back_once() {
    let mut e = engine(4);
    for t in 0..4 {
        submit(&mut e, t, Dir::Read, 512);
    }
    e.connection_lost();
    assert_eq!(e.tasks.in_flight(), 4);
    assert_eq!(take_all(&mut e), vec![0, 1, 2, 3]);
    assert!(take_all(&mut e).is_empty());
}

#[test]
fn replaced_connection_has_a_new_age_and_runs() {
    let mut e = engine(4);
    let age = e.age;
    e.phase = Phase::Recovering;
    e.connection_lost();
    replace(&mut e, 100, 5_000);
    assert_eq!(e.age, next_age(age));
    assert_eq!(e.phase, Phase::Running);
    assert_eq!(e.lanes[0].last_rx_ms, 5_000);
    let s = submit(&mut e, 0, Dir::None, 0);
    assert_eq!((s.itt.age(), s.cmd_sn, s.exp_stat_sn), (e.age, 100, 500));
}

#[test]
fn old_connections_itts_are_unknown_after_the_replacement() {
    let mut e = engine(4);
    let old = submit(&mut e, 0, Dir::Read, 4096);
    e.take_back(0).unwrap();
    e.connection_lost();
    replace(&mut e, 10, 0);
    // The aborted set was for the old age: it is cleared.
    assert!(e.aborted.is_empty());
    let new = submit(&mut e, 0, Dir::Read, 4096);
    assert_ne!(old.itt, new.itt);
    let d = data_in(&e, old.itt.get(), 0, 512, 0, None, 0);
    assert!(matches!(
        feed(&mut e, &d, &[]),
        Err(SessionError::UnknownItt { .. })
    ));
    assert_eq!(e.tasks.peek(0).map(|t| t.received), Some(0));
}

#[test]
fn task_left_in_the_table_does_not_match_its_old_itt_under_the_new_age() {
    // A caller that kept a task across the replacement: its old-age ITT
    // still finds it (by_itt compares the whole ITT), a new-age one doesn't.
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::None, 0);
    e.connection_lost();
    replace(&mut e, 10, 0);
    let same_tag_new_age =
        crate::proto::session::itt::Itt::task(e.age, s.itt.generation(), s.itt.tag());
    assert!(e.tasks.by_itt(same_tag_new_age).is_none());
    assert!(e.tasks.by_itt(s.itt).is_some());
}

#[test]
fn replacement_resets_logout_ping_window_watch_and_reconnect_delay() {
    let mut e = engine(1);
    submit(&mut e, 0, Dir::None, 0);
    assert!(e
        .submit(0, 0, TestCmd { id: 1 }, 0, Dir::None, 0, 5)
        .is_err());
    e.start_ping(0, 3);
    e.logout_response = Some(0);
    e.reconnect_delay_ms = Some(9);
    e.connection_lost();
    take_all(&mut e);
    replace(&mut e, 2, 0);
    assert!(!e.window_watch.is_closed());
    assert!(e.lanes[0].ping_sent_ms.is_none());
    assert!(e.logout_response.is_none());
    assert!(e.reconnect_delay_ms.is_none());
}

#[test]
fn replacement_can_swap_the_job_storage() {
    let mut e = engine(2);
    let p = SessionParams {
        max_outstanding_r2t: 8,
        ..params()
    };
    let cap = crate::proto::uapi::r2t_job_capacity(2, 8);
    let w = CmdWindow::new(Sn(1), Sn(32)).unwrap();
    e.connection_replaced(
        lead(p, 1),
        Sequencer::new(Sn(1), w),
        Some(vec![None; cap]),
        0,
    );
    assert_eq!(e.lanes[0].jobs.capacity(), cap);
    assert_eq!(e.params.max_outstanding_r2t, 8);
}

#[test]
fn many_replacements_never_reuse_the_live_age_nor_reach_the_reserved_itt() {
    let mut e = engine(1);
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..70_000u32 {
        let before = e.age;
        replace(&mut e, 1 + i, 0);
        assert_ne!(e.age, before);
        assert!(!e.ping_itt(0).is_reserved());
        seen.insert(e.age);
    }
    assert!(!seen.contains(&0) && !seen.contains(&0xffff));
}

#[test]
fn stale_pdus_after_replacement_never_complete_the_new_command() {
    let mut e = engine(1);
    let old = submit(&mut e, 0, Dir::None, 0);
    e.connection_lost();
    assert_eq!(take_all(&mut e), vec![0]);
    replace(&mut e, 2, 0);
    let new = submit(&mut e, 0, Dir::None, 0);
    // Same tag, same generation slot order: only the age tells them apart.
    assert_eq!(old.itt.tag(), new.itt.tag());
    assert!(feed_with(&mut e, |e| response(e, old.itt.get(), 0, 500)).is_err());
    assert_eq!(e.tasks.in_flight(), 1);
}

#[test]
fn connection_lost_is_idempotent() {
    let mut e = engine(2);
    e.reconnect_delay_ms = Some(1);
    assert_eq!(e.connection_lost(), 1);
    assert_eq!(e.connection_lost(), 2_000);
    assert_eq!(e.connection_lost(), 2_000);
}
