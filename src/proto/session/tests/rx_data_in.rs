//! Data-In through the engine: placement, DataSN and offset order, the buffer
//! bound, status in the last PDU (phase collapse), residuals, and Data-In for
//! tasks that are gone.

use super::*;
use crate::proto::session::error::SessionError;
use crate::proto::session::rx::{HostResult, Note};
use crate::proto::session::seq::Quirk;

#[test]
fn many_pieces_place_in_order_and_complete_once() {
    let mut e = engine(4);
    let s = submit(&mut e, 2, Dir::Read, 10_000);
    let mut off = 0;
    for (sn, len) in [1000u32, 4000, 5000].into_iter().enumerate() {
        let d = data_in(&e, s.itt.get(), off, len, sn as u32, None, 0);
        assert_eq!(
            placement(&mut e, &d),
            Placement::Into {
                tag: 2,
                seq: s.seq,
                base: off
            }
        );
        assert!(e.on_pdu(0, &d, &[], 0).unwrap().complete.is_none());
        off += len;
    }
    assert_eq!(e.tasks.peek(2).map(|t| t.received), Some(10_000));
    let c = completed(feed_with(&mut e, |e| response(e, s.itt.get(), 0, 1)).unwrap());
    assert_eq!((c.host, c.resid), (HostResult::Ok, 0));
    assert!(e.tasks.peek(2).is_none());
}

#[test]
fn zero_length_data_in_is_discarded_but_counts_its_data_sn() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Read, 512);
    let d = data_in(&e, s.itt.get(), 0, 0, 0, None, 0);
    assert_eq!(placement(&mut e, &d), Placement::Discard);
    e.on_pdu(0, &d, &[], 0).unwrap();
    // The next one must carry DataSN 1.
    let d = data_in(&e, s.itt.get(), 0, 512, 0, None, 0);
    assert!(matches!(
        feed(&mut e, &d, &[]),
        Err(SessionError::DataInSn {
            data_sn: 0,
            expected: 1,
            ..
        })
    ));
}

#[test]
fn repeated_data_in_is_an_offset_violation() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Read, 8192);
    let d = data_in(&e, s.itt.get(), 0, 4096, 0, None, 0);
    feed(&mut e, &d, &[]).unwrap();
    // The same PDU again: offset 0 where 4096 is due.
    assert_eq!(
        feed(&mut e, &d, &[]).unwrap_err(),
        SessionError::DataInOffset {
            itt: s.itt.get(),
            offset: 0,
            expected: 4096
        }
    );
}

#[test]
fn data_in_exactly_filling_the_buffer_is_accepted() {
    let mut e = engine(2);
    let s = submit(&mut e, 1, Dir::Read, 4096);
    let d = data_in(&e, s.itt.get(), 0, 4096, 0, Some(0), 1);
    let c = completed(feed(&mut e, &d, &[]).unwrap());
    assert_eq!((c.host, c.status, c.resid), (HostResult::Ok, 0, 0));
}

#[test]
fn data_in_one_byte_over_after_pieces_is_refused() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Read, 4096);
    feed_with(&mut e, |e| data_in(e, s.itt.get(), 0, 4000, 0, None, 0)).unwrap();
    let d = data_in(&e, s.itt.get(), 4000, 97, 1, None, 0);
    assert_eq!(
        feed(&mut e, &d, &[]).unwrap_err(),
        SessionError::DataInBeyond {
            itt: s.itt.get(),
            end: 4097,
            len: 4096
        }
    );
}

#[test]
fn data_in_offset_near_u32_max_does_not_wrap() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Read, 4096);
    let d = data_in(&e, s.itt.get(), u32::MAX - 10, 512, 0, None, 0);
    // Offset is checked first: it is not the next one.
    assert!(matches!(
        feed(&mut e, &d, &[]),
        Err(SessionError::DataInOffset { .. })
    ));
}

#[test]
fn data_in_for_a_no_data_command_is_named() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::None, 0);
    let d = data_in(&e, s.itt.get(), 0, 0, 0, Some(0), 1);
    assert_eq!(
        feed(&mut e, &d, &[]).unwrap_err(),
        SessionError::DataInNotRead { itt: s.itt.get() }
    );
}

#[test]
fn phase_collapse_with_underflow_reports_the_residual() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Read, 8192);
    let mut d = data_in_repr(&e, s.itt.get(), 0, 4096, 0, Some(0), 1);
    d.underflow = true;
    d.residual_count = 4096;
    let c = completed(feed(&mut e, &rt(Pdu::DataIn(d)), &[]).unwrap());
    assert_eq!((c.host, c.resid), (HostResult::Ok, 4096));
}

#[test]
fn underflow_residual_smaller_than_the_gap_is_raised_to_the_gap() {
    // The target claims 512 bytes missing but delivered only 1024 of 8192:
    // the midlayer must not believe bytes 1024.. arrived.
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Read, 8192);
    let mut d = data_in_repr(&e, s.itt.get(), 0, 1024, 0, Some(0), 1);
    d.underflow = true;
    d.residual_count = 512;
    let c = completed(feed(&mut e, &rt(Pdu::DataIn(d)), &[]).unwrap());
    assert_eq!(c.resid, 8192 - 1024);
}

#[test]
fn underflow_residual_larger_than_the_command_is_a_bad_target() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Read, 1024);
    let mut d = data_in_repr(&e, s.itt.get(), 0, 1024, 0, Some(0), 1);
    d.underflow = true;
    d.residual_count = 5000;
    let c = completed(feed(&mut e, &rt(Pdu::DataIn(d)), &[]).unwrap());
    assert_eq!(c.host, HostResult::BadTarget);
}

#[test]
fn overflow_on_the_last_data_in_is_not_a_residual() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Read, 1024);
    let mut d = data_in_repr(&e, s.itt.get(), 0, 1024, 0, Some(0), 1);
    d.overflow = true;
    d.residual_count = 4096;
    let c = completed(feed(&mut e, &rt(Pdu::DataIn(d)), &[]).unwrap());
    assert_eq!((c.host, c.resid), (HostResult::Ok, 0));
}

#[test]
fn stray_residual_bits_without_status_are_a_quirk_not_an_error() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Read, 8192);
    let mut d = data_in_repr(&e, s.itt.get(), 0, 4096, 0, None, 0);
    d.underflow = true;
    d.residual_count = 4096;
    let out = feed(&mut e, &rt(Pdu::DataIn(d)), &[]).unwrap();
    assert!(out.complete.is_none());
    assert_eq!(
        e.take_quirk(),
        Some(Quirk::StrayResidual { itt: s.itt.get() })
    );
    assert_eq!(e.take_quirk(), None);
}

#[test]
fn status_data_in_advances_exp_stat_sn_and_window() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Read, 512);
    let mut d = data_in_repr(&e, s.itt.get(), 0, 512, 0, Some(0), 40);
    d.max_cmd_sn = 100;
    feed(&mut e, &rt(Pdu::DataIn(d)), &[]).unwrap();
    assert_eq!(e.lanes[0].stat.exp_stat_sn().get(), 41);
    assert_eq!(e.seq.window().max_cmd_sn().get(), 100);
}

#[test]
fn non_status_data_in_does_not_touch_stat_sn() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Read, 1024);
    let mut d = data_in_repr(&e, s.itt.get(), 0, 512, 0, None, 0);
    d.stat_sn = 77;
    feed(&mut e, &rt(Pdu::DataIn(d)), &[]).unwrap();
    assert_eq!(e.lanes[0].stat.exp_stat_sn().get(), 1);
}

#[test]
fn check_condition_on_data_in_carries_no_sense() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Read, 512);
    let d = data_in(&e, s.itt.get(), 0, 512, 0, Some(CHECK), 1);
    let c = completed(feed(&mut e, &d, &[]).unwrap());
    assert_eq!((c.status, c.sense), (CHECK, &[][..]));
}

const CHECK: u8 = crate::proto::session::rx::CHECK_CONDITION;

#[test]
fn data_in_with_status_for_an_aborted_task_acks_its_stat_sn() {
    let mut e = engine(2);
    let s = submit(&mut e, 1, Dir::Read, 512);
    e.take_back(1).unwrap();
    let d = data_in(&e, s.itt.get(), 0, 512, 0, Some(0), 9);
    assert_eq!(placement(&mut e, &d), Placement::Discard);
    let out = e.on_pdu(0, &d, &[], 0).unwrap();
    assert!(out.complete.is_none());
    assert_eq!(e.lanes[0].stat.exp_stat_sn().get(), 10);
}

#[test]
fn data_in_for_a_reused_tags_old_generation_is_not_placed_in_the_new_task() {
    let mut e = engine(1);
    let old = submit(&mut e, 0, Dir::Read, 4096);
    e.take_back(0).unwrap();
    open_window(&mut e);
    let new = submit(&mut e, 0, Dir::Read, 4096);
    assert_ne!(old.itt, new.itt);
    let d = data_in(&e, old.itt.get(), 0, 4096, 0, None, 0);
    assert_eq!(placement(&mut e, &d), Placement::Discard);
    e.on_pdu(0, &d, &[], 0).unwrap();
    assert_eq!(e.tasks.peek(0).map(|t| t.received), Some(0));
}

#[test]
fn data_in_with_the_ping_itt_is_unknown() {
    let mut e = engine(2);
    let itt = e.ping_itt(0).get();
    let d = data_in(&e, itt, 0, 4, 0, None, 0);
    assert!(matches!(
        feed(&mut e, &d, &[]),
        Err(SessionError::UnknownItt {
            what: "Data-In",
            ..
        })
    ));
}

#[test]
fn data_in_with_the_reserved_itt_is_unknown_even_if_remembered() {
    let mut e = engine(2);
    e.aborted.insert(u32::MAX);
    let d = data_in(&e, u32::MAX, 0, 4, 0, None, 0);
    assert!(matches!(
        feed(&mut e, &d, &[]),
        Err(SessionError::UnknownItt { itt: u32::MAX, .. })
    ));
}

#[test]
fn placement_names_the_task_seq_so_a_later_task_is_never_hit() {
    let mut e = engine(1);
    let s = submit(&mut e, 0, Dir::Read, 4096);
    let d = data_in(&e, s.itt.get(), 0, 4096, 0, None, 0);
    let Placement::Into { tag, seq, .. } = placement(&mut e, &d) else {
        panic!("no placement");
    };
    // EH takes the task back and the tag is reused before the bytes land.
    e.take_back(0).unwrap();
    open_window(&mut e);
    submit(&mut e, 0, Dir::Read, 4096);
    assert!(e.tasks.get(tag, seq).is_none());
}

#[test]
fn data_in_note_is_none_for_plain_data() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Read, 512);
    let out = feed_with(&mut e, |e| data_in(e, s.itt.get(), 0, 256, 0, None, 0)).unwrap();
    assert!(!out.kick_tx && !out.wake && out.note.is_none() && out.reconnect.is_none());
    let _: Option<Note> = out.note;
}
