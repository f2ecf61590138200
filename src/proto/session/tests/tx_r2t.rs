//! The transmit side driven through the engine: what a new write sends
//! (CommandPlan), R2T checks (R2TSN, range, MaxBurstLength,
//! MaxOutstandingR2T), the bursts they queue and how Burst cuts them.

use super::*;
use crate::proto::session::error::SessionError;
use crate::proto::session::tx::{Burst, CommandPlan};

fn p_r2t(max_out: u16, max_burst: u32) -> SessionParams {
    SessionParams {
        max_outstanding_r2t: max_out,
        max_burst_len: max_burst,
        ..params()
    }
}

/// Pops every queued Data-Out job as (offset, len).
fn drain(e: &mut TestEngine) -> Vec<(u32, u32)> {
    let mut v = Vec::new();
    while let Some(j) = e.lanes[0].jobs.pop() {
        match j {
            TxJob::DataOut { offset, len, .. } => v.push((offset, len)),
            other => panic!("unexpected job {other:?}"),
        }
    }
    v
}

#[test]
fn r2t_sequence_covers_a_write_in_bursts() {
    let mut e = engine_with(2, p_r2t(1, 65536));
    let s = submit(&mut e, 0, Dir::Write, 200_000);
    let mut off = 0;
    let mut sn = 0;
    while off < 200_000 {
        let len = (200_000 - off).min(65536);
        feed_with(&mut e, |e| r2t(e, s.itt.get(), off, len, sn)).unwrap();
        assert_eq!(drain(&mut e), vec![(off, len)]);
        e.burst_sent(0, s.seq, true);
        off += len;
        sn += 1;
    }
    assert_eq!(sn, 4);
    let c = completed(feed_with(&mut e, |e| response(e, s.itt.get(), 0, 1)).unwrap());
    assert_eq!(c.resid, 0);
}

#[test]
fn r2t_with_wrong_r2t_sn_is_named() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Write, 65536);
    assert_eq!(
        feed_with(&mut e, |e| r2t(e, s.itt.get(), 0, 4096, 1)).unwrap_err(),
        SessionError::R2tSn {
            itt: s.itt.get(),
            got: 1,
            expected: 0
        }
    );
}

#[test]
fn repeated_r2t_sn_is_named() {
    let mut e = engine_with(2, p_r2t(4, 65536));
    let s = submit(&mut e, 0, Dir::Write, 65536);
    feed_with(&mut e, |e| r2t(e, s.itt.get(), 0, 4096, 0)).unwrap();
    assert!(matches!(
        feed_with(&mut e, |e| r2t(e, s.itt.get(), 4096, 4096, 0)),
        Err(SessionError::R2tSn {
            got: 0,
            expected: 1,
            ..
        })
    ));
}

#[test]
fn r2t_longer_than_max_burst_is_named() {
    let mut e = engine_with(2, p_r2t(1, 65536));
    let s = submit(&mut e, 0, Dir::Write, 1 << 20);
    assert_eq!(
        feed_with(&mut e, |e| r2t(e, s.itt.get(), 0, 65537, 0)).unwrap_err(),
        SessionError::R2tBurst {
            len: 65537,
            max: 65536
        }
    );
}

#[test]
fn r2t_exactly_max_burst_is_accepted() {
    let mut e = engine_with(2, p_r2t(1, 65536));
    let s = submit(&mut e, 0, Dir::Write, 1 << 20);
    assert!(feed_with(&mut e, |e| r2t(e, s.itt.get(), 0, 65536, 0)).is_ok());
}

#[test]
fn r2t_for_a_read_is_named() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Read, 4096);
    assert_eq!(
        feed_with(&mut e, |e| r2t(e, s.itt.get(), 0, 512, 0)).unwrap_err(),
        SessionError::R2tNotWrite { itt: s.itt.get() }
    );
}

#[test]
fn r2t_for_an_unknown_itt_is_named_and_for_an_aborted_one_dropped() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Write, 4096);
    assert!(matches!(
        feed_with(&mut e, |e| r2t(e, 0x0001_0001, 0, 512, 0)),
        Err(SessionError::UnknownItt { what: "R2T", .. })
    ));
    e.take_back(0).unwrap();
    let out = feed_with(&mut e, |e| r2t(e, s.itt.get(), 0, 512, 0)).unwrap();
    assert!(!out.kick_tx);
    assert!(e.lanes[0].jobs.is_empty());
}

#[test]
fn r2t_offset_plus_length_overflowing_u32_is_a_range_error() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Write, 4096);
    assert!(matches!(
        feed_with(&mut e, |e| r2t(e, s.itt.get(), u32::MAX, 2, 0)),
        Err(SessionError::R2tRange { .. })
    ));
}

#[test]
fn max_outstanding_r2t_counts_per_command() {
    let mut e = engine_with(4, p_r2t(2, 65536));
    let a = submit(&mut e, 0, Dir::Write, 65536);
    let b = submit(&mut e, 1, Dir::Write, 65536);
    for s in [a, b] {
        feed_with(&mut e, |e| r2t(e, s.itt.get(), 0, 4096, 0)).unwrap();
        feed_with(&mut e, |e| r2t(e, s.itt.get(), 4096, 4096, 1)).unwrap();
    }
    assert_eq!(e.lanes[0].jobs.len(), 4);
    assert!(matches!(
        feed_with(&mut e, |e| r2t(e, a.itt.get(), 8192, 4096, 2)),
        Err(SessionError::R2tTooMany { max: 2, .. })
    ));
}

#[test]
fn unsolicited_bursts_do_not_free_an_r2t() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Write, 65536);
    feed_with(&mut e, |e| r2t(e, s.itt.get(), 0, 4096, 0)).unwrap();
    e.burst_sent(0, s.seq, false);
    assert!(matches!(
        feed_with(&mut e, |e| r2t(e, s.itt.get(), 4096, 4096, 1)),
        Err(SessionError::R2tTooMany { .. })
    ));
}

#[test]
fn burst_sent_for_a_replaced_task_changes_nothing() {
    let mut e = engine_with(1, p_r2t(1, 65536));
    let old = submit(&mut e, 0, Dir::Write, 65536);
    e.take_back(0).unwrap();
    open_window(&mut e);
    let new = submit(&mut e, 0, Dir::Write, 65536);
    feed_with(&mut e, |e| r2t(e, new.itt.get(), 0, 4096, 0)).unwrap();
    // The old task's burst finishing must not free the new task's R2T.
    e.burst_sent(0, old.seq, true);
    assert_eq!(e.tasks.peek(0).map(|t| t.r2t_outstanding), Some(1));
}

#[test]
fn r2t_job_names_the_task_seq_and_ttt() {
    let mut e = engine(2);
    let s = submit(&mut e, 1, Dir::Write, 8192);
    feed_with(&mut e, |e| r2t(e, s.itt.get(), 4096, 4096, 0)).unwrap();
    assert_eq!(
        e.lanes[0].jobs.pop(),
        Some(TxJob::DataOut {
            tag: 1,
            seq: s.seq,
            ttt: 0x100,
            offset: 4096,
            len: 4096
        })
    );
}

#[test]
fn r2t_acks_the_window_but_not_stat_sn() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Write, 8192);
    let Pdu::R2t(mut r) = r2t(&e, s.itt.get(), 0, 4096, 0) else {
        unreachable!()
    };
    r.stat_sn = 999;
    r.max_cmd_sn = 50;
    feed(&mut e, &rt(Pdu::R2t(r)), &[]).unwrap();
    assert_eq!(e.lanes[0].stat.exp_stat_sn().get(), 1);
    assert_eq!(e.seq.window().max_cmd_sn().get(), 50);
}

#[test]
fn plan_with_immediate_and_unsolicited_then_r2t_for_the_rest() {
    let p = SessionParams {
        initial_r2t: false,
        first_burst_len: 65536,
        ..params()
    };
    let plan = CommandPlan::new(&p, Dir::Write, 200_000, 1 << 18);
    assert_eq!(plan.immediate, 8192);
    assert_eq!(plan.unsolicited(), Some((8192, 65536 - 8192)));
    // The target asks for the rest: R2Ts start at FirstBurstLength.
    let mut e = engine_with(2, p);
    let s = submit(&mut e, 0, Dir::Write, 200_000);
    assert!(feed_with(&mut e, |e| r2t(e, s.itt.get(), 65536, 65536, 0)).is_ok());
}

#[test]
fn plan_immediate_is_capped_by_the_targets_segment_length() {
    let p = SessionParams {
        max_xmit_data_segment_len: 1024,
        ..params()
    };
    let plan = CommandPlan::new(&p, Dir::Write, 65536, 1 << 18);
    assert_eq!(plan.immediate, 1024);
    assert!(plan.final_bit());
}

#[test]
fn plan_unsolicited_is_capped_by_the_command_length() {
    let p = SessionParams {
        initial_r2t: false,
        immediate_data: false,
        ..params()
    };
    let plan = CommandPlan::new(&p, Dir::Write, 3000, 1 << 18);
    assert_eq!(plan.unsolicited(), Some((0, 3000)));
    assert!(!plan.final_bit());
}

#[test]
fn burst_data_sn_restarts_per_burst_and_offsets_are_absolute() {
    let mut b = Burst::new(65536, 10_000);
    let first = b.next_piece(8192).unwrap();
    let second = b.next_piece(8192).unwrap();
    assert_eq!((first.offset, first.data_sn, first.last), (65536, 0, false));
    assert_eq!(
        (second.offset, second.len, second.data_sn),
        (73728, 1808, 1)
    );
    assert!(second.last);
    assert!(b.next_piece(8192).is_none());
    let mut b2 = Burst::new(0, 1);
    assert_eq!(b2.next_piece(8192).unwrap().data_sn, 0);
}

#[test]
fn burst_near_u32_max_never_wraps() {
    let mut b = Burst::new(u32::MAX - 5, 4);
    let p = b.next_piece(2).unwrap();
    assert_eq!(p.offset, u32::MAX - 5);
    let p = b.next_piece(2).unwrap();
    assert_eq!(p.offset, u32::MAX - 3);
    assert!(p.last);
}

#[test]
fn tx_queue_full_is_named() {
    // Storage smaller than the rule asks for: the overflow is named, not lost.
    let p = p_r2t(4, 65536);
    let parts = Parts::<VecStore> {
        slots: (0..2).map(|_| Slot::empty()).collect(),
        aborted: vec![0; 4],
        lanes: vec![one_lane(vec![None; 2], vec![None; 2], vec![None; 2])],
    };
    let w = CmdWindow::new(Sn(1), Sn(2)).unwrap();
    let mut e = Engine::new(parts, lead(p, 1), 1, Sequencer::new(Sn(1), w), 0);
    let s = submit(&mut e, 0, Dir::Write, 65536);
    feed_with(&mut e, |e| r2t(e, s.itt.get(), 0, 4096, 0)).unwrap();
    feed_with(&mut e, |e| r2t(e, s.itt.get(), 4096, 4096, 1)).unwrap();
    assert_eq!(
        feed_with(&mut e, |e| r2t(e, s.itt.get(), 8192, 4096, 2)).unwrap_err(),
        SessionError::TxQueueFull
    );
}
