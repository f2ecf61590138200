//! Issue 13's five bugs, each through the engine (`on_pdu`, `poll`), with
//! the old rule shown failing where it can be rebuilt from storage sizes.

use super::*;
use crate::proto::pdu::{AsyncEvent, TmfResponse};
use crate::proto::session::engine::Phase;
use crate::proto::session::error::SessionError;
use crate::proto::session::logout::LOGOUT_RESPONSE_TIMEOUT_MS;
use crate::proto::session::rx::Note;
use crate::proto::session::timers::{Expiry, Timers};
use crate::proto::session::tmf::{abort_outcome, AbortOutcome};

const LUN1: u64 = 0x0001_0000_0000_0000;

fn start_tmf(e: &mut TestEngine) -> u32 {
    let age_bits = e.internal_itt(0).get();
    e.tmf.start(age_bits, 0)
}

#[test]
fn bug1_tmf_itt_per_tmf_late_abort_answer_not_taken_for_the_lun_reset() {
    let mut e = engine(4);
    let s = submit_lun(&mut e, 0, LUN1, Dir::Write, 4096);
    // ABORT TASK times out (eh.rs abandons it), LUN RESET follows.
    let abort = start_tmf(&mut e);
    e.tmf.abandon(abort);
    let reset = start_tmf(&mut e);
    // The old rule: every TMF under age<<16 | 0xfffe.
    assert_ne!(abort, reset, "each TMF has its own ITT");
    assert_ne!(abort & 0xffff, 0xfffe);
    // The ABORT's answer arrives late.
    let out = feed_with(&mut e, |e| tmf_resp(e, abort, TmfResponse::Complete, 1)).unwrap();
    assert_eq!(out.note, Some(Note::LateTmf { itt: abort }));
    assert!(!out.wake);
    // The LUN RESET is still waited for: nothing handed back yet.
    assert_eq!(e.tmf.take_answer(reset), None);
    assert!(e.tmf.is_waiting(reset));
    assert!(e.tasks.peek(0).is_some_and(|t| t.itt == s.itt));
    // Its own answer completes it.
    assert!(
        feed_with(&mut e, |e| tmf_resp(e, reset, TmfResponse::Complete, 2))
            .unwrap()
            .wake
    );
    assert_eq!(e.tmf.take_answer(reset), Some(TmfResponse::Complete));
}

/// Takes back every task on LUN1 as eh.rs's `reset_tasks` does.
fn lun_reset(e: &mut TestEngine) -> usize {
    let mut n = 0;
    while e.take_back_where(|t| t.lun == LUN1).is_some() {
        n += 1;
    }
    n
}

/// Stragglers (a Data-In and a SCSI Response) for each of `itts`: all
/// dropped, or the violation the first one not remembered caused.
fn stragglers(e: &mut TestEngine, itts: &[u32]) -> Result<usize, SessionError> {
    for &itt in itts {
        let d = data_in(e, itt, 0, 512, 0, None, 0);
        feed(e, &d, &[])?;
        feed_with(e, |e| response(e, itt, 0, 1))?;
    }
    Ok(itts.len())
}

#[test]
fn bug2_aborted_itts_sized_2x_depth_every_reset_straggler_is_dropped() {
    let depth = 64;
    let mut e = engine(depth);
    let first: Vec<u32> = (0..depth as u16)
        .map(|t| submit_lun(&mut e, t, LUN1, Dir::Read, 4096).itt.get())
        .collect();
    assert_eq!(lun_reset(&mut e), depth);
    // A second reset of a full queue before the first one's stragglers.
    open_window(&mut e);
    let second: Vec<u32> = (0..depth as u16)
        .map(|t| submit_lun(&mut e, t, LUN1, Dir::Read, 4096).itt.get())
        .collect();
    assert_eq!(lun_reset(&mut e), depth);
    assert_eq!(stragglers(&mut e, &second), Ok(depth));
    assert_eq!(stragglers(&mut e, &first), Ok(depth));
}

#[test]
fn bug2_old_rule_of_16_aborted_itts_failed_on_the_17th_straggler() {
    // The same reset with the old fixed 16-entry set: straggler 17 fails.
    let depth = 32;
    let p = params();
    let parts = Parts::<VecStore> {
        slots: (0..depth).map(|_| Slot::empty()).collect(),
        aborted: vec![0; 16],
        lanes: vec![one_lane(vec![None; depth], vec![None; 8], vec![None; 64])],
    };
    let w = CmdWindow::new(Sn(1), Sn(depth as u32)).unwrap();
    let mut e = Engine::new(parts, lead(p, 1), 1, Sequencer::new(Sn(1), w), 0);
    let itts: Vec<u32> = (0..depth as u16)
        .map(|t| submit_lun(&mut e, t, LUN1, Dir::Read, 4096).itt.get())
        .collect();
    lun_reset(&mut e);
    // The first 16 taken back were forgotten; the last 16 are dropped.
    assert_eq!(stragglers(&mut e, &itts[16..]), Ok(16));
    assert!(matches!(
        stragglers(&mut e, &itts[..1]),
        Err(SessionError::UnknownItt { .. })
    ));
    // With the rule's size the same straggler is dropped.
    assert!(crate::proto::session::aborted::capacity_for(depth) >= depth);
}

#[test]
fn bug3_abort_task_does_not_exist_escalates_while_outstanding() {
    let mut e = engine(4);
    let s = submit(&mut e, 1, Dir::Read, 4096);
    let abort = start_tmf(&mut e);
    let out = feed_with(&mut e, |e| {
        tmf_resp(e, abort, TmfResponse::TaskDoesNotExist, 1)
    })
    .unwrap();
    assert!(out.wake);
    let answer = e.tmf.take_answer(abort);
    let ours = e.tasks.peek(1).is_some_and(|t| t.itt == s.itt);
    assert!(ours, "its status has not come");
    assert_eq!(abort_outcome(answer, ours), AbortOutcome::Escalate);
    // The command stays ours: a late response still completes it once.
    let c = completed(feed_with(&mut e, |e| response(e, s.itt.get(), 0, 2)).unwrap());
    assert_eq!(c.cmd.id, 1);
}

#[test]
fn bug4_logout_response_time2wait_ignored_at_erl0() {
    let mut e = engine(2);
    assert_eq!(e.params.error_recovery_level, 0);
    let a = async_msg(&e, AsyncEvent::LogoutRequest, (0, 0, 30), 1, 0);
    feed(&mut e, &a, &[]).unwrap();
    assert_eq!(e.lanes[0].ctl_jobs.pop(), Some(TxJob::Logout));
    // The target asks for an hour: ERL 0 waits DefaultTime2Wait (2 s).
    feed_with(&mut e, |e| logout_resp(e, 0, 3600, 2)).unwrap();
    assert_eq!(e.connection_lost(), 2_000);
}

#[test]
fn bug4_logging_out_has_a_deadline() {
    let mut e = engine(2);
    let a = async_msg(&e, AsyncEvent::LogoutRequest, (0, 0, 30), 1, 0);
    feed_at(&mut e, &a, &[], 100).unwrap();
    assert_eq!(e.phase, Phase::LoggingOut);
    let t = Timers {
        noop_interval_ms: 5_000,
        noop_timeout_ms: 5_000,
        replacement_ms: 120_000,
        failed_at_ms: 0,
    };
    assert!(e
        .poll(100 + LOGOUT_RESPONSE_TIMEOUT_MS - 1, &t)
        .fail
        .is_none());
    assert_eq!(
        e.poll(100 + LOGOUT_RESPONSE_TIMEOUT_MS, &t).fail,
        Some(Expiry::LogoutOverdue {
            waited_ms: LOGOUT_RESPONSE_TIMEOUT_MS
        })
    );
}

/// Every write of a `depth` queue gets MaxOutstandingR2T R2Ts before any
/// burst goes out; returns the first error.
fn r2t_flood(e: &mut TestEngine, depth: u16, max_out: u16) -> Result<(), SessionError> {
    let subs: Vec<_> = (0..depth)
        .map(|t| submit(e, t, Dir::Write, 1 << 20))
        .collect();
    for s in &subs {
        for sn in 0..u32::from(max_out) {
            feed_with(e, |e| r2t(e, s.itt.get(), 8192 + sn * 4096, 4096, sn))?;
        }
    }
    Ok(())
}

#[test]
fn bug5_r2t_job_ring_holds_max_outstanding_r2t_times_depth() {
    let p = SessionParams {
        max_outstanding_r2t: 32,
        ..params()
    };
    let mut e = engine_with(8, p);
    assert_eq!(r2t_flood(&mut e, 8, 32), Ok(()));
    assert_eq!(e.lanes[0].jobs.len(), 8 * 32);
}

#[test]
fn bug5_old_rule_capped_at_16_overflowed() {
    let p = SessionParams {
        max_outstanding_r2t: 32,
        ..params()
    };
    // The old sizing: depth × min(MaxOutstandingR2T, 16) + 64.
    let (depth, max_out, old_cap_r2t) = (8usize, 32usize, 16usize);
    let old_cap = depth * max_out.min(old_cap_r2t) + 64;
    let parts = Parts::<VecStore> {
        slots: (0..8).map(|_| Slot::empty()).collect(),
        aborted: vec![0; 16],
        lanes: vec![one_lane(vec![None; 8], vec![None; 8], vec![None; old_cap])],
    };
    let w = CmdWindow::new(Sn(1), Sn(8)).unwrap();
    let mut e = Engine::new(parts, lead(p, 1), 1, Sequencer::new(Sn(1), w), 0);
    assert_eq!(r2t_flood(&mut e, 8, 32), Err(SessionError::TxQueueFull));
}

#[test]
fn reused_tag_never_gets_the_itt_of_a_task_still_remembered_as_taken_back() {
    // A tag has 16 ITT generations per connection. Taken back (EH), the
    // task's late PDUs are dropped by its ITT; if the tag's 16th reuse got
    // that same ITT again, a late Data-In would land in the new command's
    // buffer and complete it GOOD with the old command's bytes.
    let mut e = engine(1);
    let old = submit(&mut e, 0, Dir::Read, 4096);
    e.take_back(0).unwrap();
    for i in 0..16u32 {
        open_window(&mut e);
        let s = submit(&mut e, 0, Dir::Read, 4096);
        assert_ne!(s.itt, old.itt, "reuse {} took the taken-back ITT", i + 1);
        feed_with(&mut e, |e| response(e, s.itt.get(), 0, 1 + i)).unwrap();
    }
    open_window(&mut e);
    let new = submit(&mut e, 0, Dir::Read, 4096);
    let d = data_in(&e, old.itt.get(), 0, 4096, 0, Some(0), 100);
    assert_eq!(placement(&mut e, &d), Placement::Discard);
    assert!(e.on_pdu(0, &d, &[], 0).unwrap().complete.is_none());
    assert!(e
        .tasks
        .peek(0)
        .is_some_and(|t| t.itt == new.itt && t.received == 0));
}
