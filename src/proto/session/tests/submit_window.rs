//! `Engine::submit` and the command window: CmdSN order, credit, refusals
//! that give the command back untouched, and the header numbers it returns.

use super::*;
use crate::proto::session::engine::{Phase, Refused};
use crate::proto::session::task::InsertError;

#[test]
fn cmd_sns_are_consecutive_and_exp_stat_sn_is_current() {
    let mut e = engine(4);
    let a = submit(&mut e, 0, Dir::None, 0);
    let b = submit(&mut e, 1, Dir::None, 0);
    assert_eq!((a.cmd_sn, b.cmd_sn), (1, 2));
    feed_with(&mut e, |e| response(e, a.itt.get(), 0, 7)).unwrap();
    let c = submit(&mut e, 2, Dir::None, 0);
    assert_eq!((c.cmd_sn, c.exp_stat_sn), (3, 8));
}

#[test]
fn window_of_depth_admits_depth_commands() {
    let mut e = engine(4);
    for t in 0..4 {
        submit(&mut e, t, Dir::None, 0);
    }
    // Tag free? No: out of credit first.
    e.tasks.take(0);
    match e.submit(0, 0, TestCmd { id: 9 }, 0, Dir::None, 0, 0) {
        Err(Refused::NoCredit(c)) => assert_eq!(c.id, 9),
        other => panic!("{other:?}"),
    }
}

#[test]
fn credit_for_one_agrees_with_submit_and_starts_the_window_clock() {
    let mut e = engine(1);
    assert!(e.credit_for_one(5));
    assert!(!e.window_watch.is_closed());
    submit(&mut e, 0, Dir::None, 0);
    assert!(!e.credit_for_one(7));
    assert!(e.window_watch.is_closed());
    assert!(matches!(
        e.submit(0, 0, TestCmd { id: 1 }, 0, Dir::None, 0, 8),
        Err(Refused::NoCredit(_))
    ));
}

#[test]
fn refused_for_credit_takes_no_cmd_sn() {
    let mut e = engine(1);
    submit(&mut e, 0, Dir::None, 0);
    let next = e.seq.next_cmd_sn();
    assert!(e
        .submit(0, 0, TestCmd { id: 1 }, 0, Dir::None, 0, 0)
        .is_err());
    assert_eq!(e.seq.next_cmd_sn(), next);
}

#[test]
fn busy_tag_gives_the_command_back_and_takes_no_cmd_sn() {
    let mut e = engine(4);
    submit(&mut e, 1, Dir::None, 0);
    let next = e.seq.next_cmd_sn();
    match e.submit(0, 1, TestCmd { id: 77 }, 0, Dir::Read, 512, 0) {
        Err(Refused::Slot(InsertError::Busy(c))) => assert_eq!(c.id, 77),
        other => panic!("{other:?}"),
    }
    assert_eq!(e.seq.next_cmd_sn(), next);
    assert_eq!(e.tasks.in_flight(), 1);
}

#[test]
fn tag_beyond_the_depth_is_refused() {
    let mut e = engine(2);
    assert!(matches!(
        e.submit(0, 2, TestCmd { id: 5 }, 0, Dir::None, 0, 0),
        Err(Refused::Slot(InsertError::NoSuchTag(TestCmd { id: 5 })))
    ));
}

#[test]
fn not_running_phases_refuse_and_say_which() {
    for phase in [
        Phase::LoggingOut,
        Phase::Recovering,
        Phase::Offline,
        Phase::Closed,
    ] {
        let mut e = engine(2);
        e.phase = phase;
        match e.submit(0, 0, TestCmd { id: 3 }, 0, Dir::None, 0, 0) {
            Err(Refused::NotRunning(c, p)) => assert_eq!((c.id, p), (3, phase)),
            other => panic!("{other:?}"),
        }
        assert_eq!(e.tasks.in_flight(), 0);
    }
}

#[test]
fn window_growth_gives_credit() {
    let mut e = engine(1);
    let a = submit(&mut e, 0, Dir::None, 0);
    assert_eq!(e.seq.credits(), 0);
    let mut r = resp_repr(&e, a.itt.get(), 0, 1);
    r.exp_cmd_sn = 2;
    r.max_cmd_sn = 33;
    feed(&mut e, &rt(Pdu::ScsiResponse(r)), &[]).unwrap();
    assert_eq!(e.seq.credits(), 32);
}

#[test]
fn max_cmd_sn_never_goes_back() {
    let mut e = engine(4);
    let a = submit(&mut e, 0, Dir::None, 0);
    // ExpCmdSN 2, MaxCmdSN 1: closed.
    let mut r = resp_repr(&e, a.itt.get(), 0, 1);
    r.exp_cmd_sn = 2;
    r.max_cmd_sn = 1;
    feed(&mut e, &rt(Pdu::ScsiResponse(r)), &[]).unwrap();
    // MaxCmdSN does not go back (stale): the old window [1, 4] still holds.
    assert_eq!(e.seq.credits(), 3);
}

#[test]
fn stale_window_values_are_ignored() {
    let mut e = engine(4);
    submit(&mut e, 0, Dir::None, 0);
    let before = e.seq.window();
    let Pdu::NopIn(mut n) = nop_in(&e, u32::MAX, u32::MAX, 1) else {
        unreachable!()
    };
    n.exp_cmd_sn = 0;
    n.max_cmd_sn = 2;
    feed(&mut e, &rt(Pdu::NopIn(n)), &[]).unwrap();
    assert_eq!(e.seq.window(), before);
}

#[test]
fn cmd_sn_wraps_past_u32_max() {
    let p = params();
    let parts = Parts::<VecStore> {
        slots: (0..4).map(|_| Slot::empty()).collect(),
        aborted: vec![0; 8],
        lanes: vec![one_lane(vec![None; 4], vec![None; 8], vec![None; 8])],
    };
    let start = u32::MAX - 1;
    let w = CmdWindow::new(Sn(start), Sn(start.wrapping_add(3))).unwrap();
    let mut e = Engine::new(parts, lead(p, 1), 1, Sequencer::new(Sn(start), w), 0);
    let sns: Vec<u32> = (0..4)
        .map(|t| submit(&mut e, t, Dir::None, 0).cmd_sn)
        .collect();
    assert_eq!(sns, vec![u32::MAX - 1, u32::MAX, 0, 1]);
    assert_eq!(e.seq.credits(), 0);
}

#[test]
fn itts_carry_the_age_and_the_tag() {
    let mut e = engine(8);
    let s = submit(&mut e, 5, Dir::None, 0);
    assert_eq!((s.itt.age(), s.itt.tag()), (e.age, 5));
    assert!(e.tasks.by_itt(s.itt).is_some());
}

#[test]
fn seq_numbers_are_unique_across_tags_and_reuse() {
    let mut e = engine(2);
    let a = submit(&mut e, 0, Dir::None, 0);
    let b = submit(&mut e, 1, Dir::None, 0);
    feed_with(&mut e, |e| response(e, a.itt.get(), 0, 1)).unwrap();
    let c = submit(&mut e, 0, Dir::None, 0);
    assert!(a.seq != b.seq && a.seq != c.seq && b.seq != c.seq);
}

#[test]
fn task_remembers_lun_cmd_sn_dir_and_len() {
    let mut e = engine(2);
    let s = submit_lun(&mut e, 1, 0x0002_0000_0000_0000, Dir::Write, 12_345);
    let t = e.tasks.peek(1).unwrap();
    assert_eq!(
        (t.lun, t.cmd_sn, t.dir, t.len, t.itt),
        (0x0002_0000_0000_0000, s.cmd_sn, Dir::Write, 12_345, s.itt)
    );
}
