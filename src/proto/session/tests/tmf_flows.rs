//! Task management as the kernel's EH drives it, through `on_pdu`: ABORT
//! TASK and its outcomes, LUN and target resets taking tasks back, late and
//! rejected TMF answers, and the stragglers of what was taken back.

use super::*;
use crate::proto::pdu::{RejectReason, TmfResponse};
use crate::proto::session::error::SessionError;
use crate::proto::session::rx::Note;
use crate::proto::session::tmf::{abort_outcome, AbortOutcome, TMF_LOW_FIRST};

/// Starts a TMF as eh.rs does: its ITT under this connection's age.
fn start_tmf(e: &mut TestEngine) -> u32 {
    let age_bits = e.internal_itt(0).get();
    e.tmf.start(age_bits, 0)
}

const LUN1: u64 = 0x0001_0000_0000_0000;

#[test]
fn tmf_itts_carry_the_age_and_never_a_task() {
    let mut e = engine(64);
    let s = submit(&mut e, 63, Dir::None, 0);
    for _ in 0..100 {
        let itt = start_tmf(&mut e);
        assert_eq!(itt >> 16, u32::from(e.age));
        assert!(itt & 0xffff >= TMF_LOW_FIRST);
        assert_ne!(itt, s.itt.get());
        assert!(e
            .tasks
            .by_itt(crate::proto::session::itt::Itt::from_wire(itt))
            .is_none());
    }
}

#[test]
fn abort_task_complete_hands_the_command_back() {
    let mut e = engine(4);
    let s = submit(&mut e, 2, Dir::Read, 4096);
    let itt = start_tmf(&mut e);
    let out = feed_with(&mut e, |e| tmf_resp(e, itt, TmfResponse::Complete, 1)).unwrap();
    assert!(out.wake);
    let answer = e.tmf.take_answer(itt);
    let ours = e.tasks.peek(2).is_some_and(|t| t.itt == s.itt);
    assert_eq!(abort_outcome(answer, ours), AbortOutcome::HandBack);
    assert_eq!(e.take_back(2).map(|t| t.cmd.id), Some(2));
    // Its late Data-In is dropped.
    let d = data_in(&e, s.itt.get(), 0, 512, 0, None, 0);
    assert_eq!(placement(&mut e, &d), Placement::Discard);
    assert!(e.on_pdu(0, &d, &[], 0).is_ok());
}

#[test]
fn abort_answered_after_the_commands_response_is_already_done() {
    let mut e = engine(4);
    let s = submit(&mut e, 0, Dir::None, 0);
    let itt = start_tmf(&mut e);
    // The target finished the command before answering the abort.
    let c = completed(feed_with(&mut e, |e| response(e, s.itt.get(), 0, 1)).unwrap());
    assert_eq!(c.cmd.id, 0);
    feed_with(&mut e, |e| {
        tmf_resp(e, itt, TmfResponse::TaskDoesNotExist, 2)
    })
    .unwrap();
    let ours = e.tasks.peek(0).is_some_and(|t| t.itt == s.itt);
    assert_eq!(
        abort_outcome(e.tmf.take_answer(itt), ours),
        AbortOutcome::AlreadyDone
    );
}

#[test]
fn tmf_response_acks_stat_sn_and_window() {
    let mut e = engine(4);
    let itt = start_tmf(&mut e);
    feed_with(&mut e, |e| tmf_resp(e, itt, TmfResponse::Complete, 90)).unwrap();
    assert_eq!(e.lanes[0].stat.exp_stat_sn().get(), 91);
}

#[test]
fn tmf_answer_with_a_wrong_itt_is_late_not_an_answer() {
    let mut e = engine(4);
    let itt = start_tmf(&mut e);
    let out = feed_with(&mut e, |e| tmf_resp(e, itt + 1, TmfResponse::Complete, 1)).unwrap();
    assert!(!out.wake);
    assert_eq!(out.note, Some(Note::LateTmf { itt: itt + 1 }));
    assert!(e.tmf.is_waiting(itt));
}

#[test]
fn rejected_tmf_is_an_answer_that_escalates() {
    let mut e = engine(4);
    submit(&mut e, 0, Dir::None, 0);
    let itt = start_tmf(&mut e);
    let data = rejected_tmf(itt);
    let r = reject_pdu(&e, RejectReason::ProtocolError, 1);
    let out = feed(&mut e, &r, &data).unwrap();
    assert!(out.wake);
    let answer = e.tmf.take_answer(itt);
    assert_eq!(answer, Some(TmfResponse::Rejected));
    assert_eq!(abort_outcome(answer, true), AbortOutcome::Escalate);
}

#[test]
fn lun_reset_takes_back_only_that_luns_tasks() {
    let mut e = engine(8);
    for t in 0..8 {
        submit_lun(&mut e, t, if t % 2 == 0 { LUN1 } else { 0 }, Dir::Read, 512);
    }
    let itt = start_tmf(&mut e);
    feed_with(&mut e, |e| tmf_resp(e, itt, TmfResponse::Complete, 1)).unwrap();
    assert_eq!(e.tmf.take_answer(itt), Some(TmfResponse::Complete));
    let mut back = Vec::new();
    while let Some(t) = e.take_back_where(|t| t.lun == LUN1) {
        back.push(t.cmd.id);
    }
    back.sort_unstable();
    assert_eq!(back, vec![0, 2, 4, 6]);
    assert_eq!(e.tasks.in_flight(), 4);
    assert_eq!(e.aborted.len(), 4);
}

#[test]
fn target_reset_stragglers_of_every_kind_are_dropped() {
    let mut e = engine(8);
    let r = submit(&mut e, 0, Dir::Read, 4096);
    let w = submit(&mut e, 1, Dir::Write, 65536);
    let n = submit(&mut e, 2, Dir::None, 0);
    while e.take_back_where(|_| true).is_some() {}
    let d = data_in(&e, r.itt.get(), 0, 512, 0, None, 0);
    assert_eq!(placement(&mut e, &d), Placement::Discard);
    assert!(e.on_pdu(0, &d, &[], 0).is_ok());
    assert!(feed_with(&mut e, |e| r2t(e, w.itt.get(), 0, 4096, 0)).is_ok());
    assert!(e.lanes[0].jobs.is_empty());
    assert!(feed_with(&mut e, |e| response(e, n.itt.get(), 0, 1))
        .unwrap()
        .complete
        .is_none());
}

#[test]
fn straggler_for_a_task_never_taken_back_still_fails() {
    let mut e = engine(8);
    let s = submit(&mut e, 0, Dir::None, 0);
    feed_with(&mut e, |e| response(e, s.itt.get(), 0, 1)).unwrap();
    // Completed normally, not taken back: a second response is a violation.
    assert!(matches!(
        feed_with(&mut e, |e| response(e, s.itt.get(), 0, 2)),
        Err(SessionError::UnknownItt { .. })
    ));
}

#[test]
fn abandoned_tmf_answer_is_only_noted() {
    let mut e = engine(4);
    let itt = start_tmf(&mut e);
    e.tmf.abandon(itt);
    let out = feed_with(&mut e, |e| tmf_resp(e, itt, TmfResponse::Complete, 1)).unwrap();
    assert_eq!(out.note, Some(Note::LateTmf { itt }));
    assert!(!out.wake);
    assert_eq!(e.tmf.take_answer(itt), None);
}

#[test]
fn abort_not_answered_in_time_escalates() {
    let mut e = engine(4);
    submit(&mut e, 0, Dir::None, 0);
    let itt = start_tmf(&mut e);
    let answer = e.tmf.take_answer(itt);
    e.tmf.abandon(itt);
    assert_eq!(abort_outcome(answer, true), AbortOutcome::Escalate);
    assert_eq!(e.tasks.in_flight(), 1);
}
