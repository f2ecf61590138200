//! The send queue `Engine::submit` fills: accepted commands wait as
//! `TxJob::Command` in CmdSN order for whoever holds the transmit side, behind
//! control jobs and ahead of Data-Out bursts; a full queue refuses without
//! taking a CmdSN, and a lost connection drops what was not sent.

use super::*;
use crate::proto::bhs::RESERVED_TAG;
use crate::proto::session::engine::Refused;
use crate::proto::session::tx::TxJob;

/// Submits without sending: the Command PDU stays queued.
fn accept(e: &mut TestEngine, tag: u16) -> Submitted {
    match e.submit(
        0,
        tag,
        TestCmd { id: u32::from(tag) },
        0,
        Dir::Write,
        4096,
        0,
    ) {
        Ok(s) => s,
        Err(r) => panic!("refused {r:?}"),
    }
}

#[test]
fn accepted_commands_go_out_in_cmd_sn_order_after_control_before_bursts() {
    let mut p = params();
    p.max_outstanding_r2t = 4;
    let mut e = engine_with(4, p);
    let a = accept(&mut e, 2);
    let b = accept(&mut e, 0);
    assert!(e.has_jobs(0));
    // An R2T for `a` (as if it had gone out) and a ping queue behind and
    // ahead of the commands respectively.
    feed_with(&mut e, |e| r2t(e, a.itt.get(), 0, 4096, 0)).unwrap();
    assert_eq!(e.start_ping(0, 0), PingStart::Queued);
    assert_eq!(
        e.next_job(0),
        Some(TxJob::Ping {
            ordered_cmd_sn: None
        })
    );
    assert_eq!(e.next_job(0), Some(command_job(2, &a)));
    assert_eq!(e.next_job(0), Some(command_job(0, &b)));
    assert!(b.cmd_sn == a.cmd_sn + 1);
    assert!(matches!(e.next_job(0), Some(TxJob::DataOut { tag: 2, .. })));
    assert_eq!(e.next_job(0), None);
    assert!(!e.has_jobs(0));
}

#[test]
fn a_full_send_queue_refuses_without_taking_a_cmd_sn() {
    // One room per tag: a task taken back before it went out keeps its room
    // until the sender pops (and skips) its job.
    let mut e = engine(2);
    let a = accept(&mut e, 0);
    accept(&mut e, 1);
    e.take_back(0);
    // Credit is not what stops it.
    e.window(1, 10);
    assert!(e.seq.credits() > 0);
    let next = e.seq.next_cmd_sn();
    match e.submit(0, 0, TestCmd { id: 7 }, 0, Dir::None, 0, 0) {
        Err(Refused::Backlog(c)) => assert_eq!(c.id, 7),
        other => panic!("{other:?}"),
    }
    assert_eq!(e.seq.next_cmd_sn(), next);
    assert!(e.tasks.is_free(0));
    // The sender catches up: the taken-back task's job no longer finds it
    // (the sender fills its CmdSN with a NOP-Out, see below).
    assert_eq!(e.next_job(0), Some(command_job(0, &a)));
    assert!(e.tasks.get(0, a.seq).is_none());
    assert!(e
        .submit(0, 0, TestCmd { id: 8 }, 0, Dir::None, 0, 0)
        .is_ok());
}

#[test]
fn a_lost_connection_drops_unsent_commands() {
    let mut e = engine(4);
    accept(&mut e, 0);
    accept(&mut e, 1);
    e.connection_lost();
    assert!(!e.has_jobs(0));
    assert_eq!(e.next_job(0), None);
    // The tasks stay for the caller to hand back.
    assert_eq!(e.tasks.in_flight(), 2);
}

#[test]
fn the_answer_to_a_nop_out_filling_a_taken_back_commands_cmd_sn_is_dropped() {
    let mut e = engine(4);
    let a = accept(&mut e, 0);
    e.take_back(0);
    assert_eq!(e.next_job(0), Some(command_job(0, &a)));
    // The target answers the stand-in NOP-Out (ITT of the taken-back task).
    let out = feed_with(&mut e, |e| nop_in(e, a.itt.get(), RESERVED_TAG, 1));
    let out = out.expect("the answer is dropped, not a violation");
    assert!(out.complete.is_none());
    // An ITT nobody owns still fails the connection.
    assert!(feed_with(&mut e, |e| nop_in(e, 0x0bad_0001, RESERVED_TAG, 2)).is_err());
}

#[test]
fn a_new_connection_sends_nothing_queued_for_the_old_one() {
    // A session that failed during its final logout is replaced without
    // `connection_lost`: its queued command, burst and ping must not reach
    // the new connection (old CmdSNs, old ITTs).
    let mut p = params();
    p.max_outstanding_r2t = 4;
    let mut e = engine_with(4, p);
    let a = accept(&mut e, 0);
    feed_with(&mut e, |e| r2t(e, a.itt.get(), 0, 4096, 0)).unwrap();
    assert_eq!(e.start_ping(0, 0), PingStart::Queued);
    accept(&mut e, 1);
    assert!(e.has_jobs(0));
    e.phase = crate::proto::session::engine::Phase::Offline;
    let w = CmdWindow::new(Sn(100), Sn(110)).unwrap();
    e.connection_replaced(lead(params(), 7), Sequencer::new(Sn(100), w), None, 0);
    assert!(!e.has_jobs(0));
    assert_eq!(e.next_job(0), None);
}
