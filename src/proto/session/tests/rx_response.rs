//! SCSI Response through the engine: response codes, residuals for reads and
//! writes, sense data, StatSN and window, and responses for tasks that are gone.

use super::*;
use crate::proto::pdu::{ScsiResponseData, RESPONSE_TARGET_FAILURE};
use crate::proto::session::error::SessionError;
use crate::proto::session::rx::{HostResult, CHECK_CONDITION};
use crate::proto::session::seq::Quirk;

/// A data segment with `sense` (SenseLength + bytes).
fn sense_segment(sense: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 2 + sense.len()];
    let n = ScsiResponseData {
        sense,
        response_data: &[],
    }
    .emit(&mut buf)
    .unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn write_good_response_completes_with_no_residual() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Write, 4096);
    let c = completed(feed_with(&mut e, |e| response(e, s.itt.get(), 0, 1)).unwrap());
    assert_eq!((c.host, c.status, c.resid), (HostResult::Ok, 0, 0));
}

#[test]
fn write_underflow_residual_is_reported_as_sent() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Write, 4096);
    let mut r = resp_repr(&e, s.itt.get(), 0, 1);
    r.underflow = true;
    r.residual_count = 1000;
    let c = completed(feed(&mut e, &rt(Pdu::ScsiResponse(r)), &[]).unwrap());
    assert_eq!(c.resid, 1000);
}

#[test]
fn residual_beyond_the_command_is_a_bad_target() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Write, 4096);
    let mut r = resp_repr(&e, s.itt.get(), 0, 1);
    r.underflow = true;
    r.residual_count = 4097;
    let c = completed(feed(&mut e, &rt(Pdu::ScsiResponse(r)), &[]).unwrap());
    assert_eq!(c.host, HostResult::BadTarget);
}

#[test]
fn target_failure_response_fails_the_command_with_full_residual() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Read, 2048);
    let mut r = resp_repr(&e, s.itt.get(), 0, 1);
    r.response = RESPONSE_TARGET_FAILURE;
    let c = completed(feed(&mut e, &rt(Pdu::ScsiResponse(r)), &[]).unwrap());
    assert_eq!((c.host, c.resid, c.status), (HostResult::Error, 2048, 0));
}

#[test]
fn check_condition_carries_its_sense() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Read, 512);
    let sense = [
        0x70u8, 0, 3, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x11, 0x00, 0, 0, 0, 0,
    ];
    let seg = sense_segment(&sense);
    let mut r = resp_repr(&e, s.itt.get(), CHECK_CONDITION, 1);
    r.data_segment_len = seg.len() as u32;
    let c = completed(feed(&mut e, &rt(Pdu::ScsiResponse(r)), &seg).unwrap());
    assert_eq!(c.status, CHECK_CONDITION);
    assert_eq!(c.sense, &sense[..]);
    assert_eq!(c.resid, 512);
}

#[test]
fn good_status_drops_any_sense() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::None, 0);
    let seg = sense_segment(&[0x70, 0, 6]);
    let mut r = resp_repr(&e, s.itt.get(), 0, 1);
    r.data_segment_len = seg.len() as u32;
    let c = completed(feed(&mut e, &rt(Pdu::ScsiResponse(r)), &seg).unwrap());
    assert_eq!((c.host, c.status), (HostResult::Ok, 0));
    assert!(c.sense.is_empty());
}

#[test]
fn sense_longer_than_its_segment_fails_only_that_command() {
    let mut e = engine(2);
    let a = submit(&mut e, 0, Dir::Read, 512);
    let b = submit(&mut e, 1, Dir::Read, 512);
    let mut seg = sense_segment(&[0x70, 0, 3, 0, 0, 0, 0, 10]);
    seg[..2].copy_from_slice(&118u16.to_be_bytes());
    let mut r = resp_repr(&e, a.itt.get(), CHECK_CONDITION, 1);
    r.data_segment_len = seg.len() as u32;
    let c = completed(feed(&mut e, &rt(Pdu::ScsiResponse(r)), &seg).unwrap());
    assert_eq!((c.host, c.resid), (HostResult::Error, 512));
    assert!(matches!(e.take_quirk(), Some(Quirk::BadSense { .. })));
    // The connection and the other command carry on.
    let c = completed(feed_with(&mut e, |e| response(e, b.itt.get(), 0, 2)).unwrap());
    assert_eq!(c.host, HostResult::Ok);
}

#[test]
fn a_one_byte_segment_is_a_bad_sense_quirk() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::None, 0);
    let mut r = resp_repr(&e, s.itt.get(), CHECK_CONDITION, 1);
    r.data_segment_len = 1;
    let c = completed(feed(&mut e, &rt(Pdu::ScsiResponse(r)), &[0x00]).unwrap());
    assert_eq!(c.host, HostResult::Error);
    assert!(matches!(e.take_quirk(), Some(Quirk::BadSense { .. })));
}

#[test]
fn response_acks_stat_sn_and_window_before_anything_else() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::None, 0);
    let mut r = resp_repr(&e, s.itt.get(), 0, 500);
    r.exp_cmd_sn = 2;
    r.max_cmd_sn = 300;
    feed(&mut e, &rt(Pdu::ScsiResponse(r)), &[]).unwrap();
    assert_eq!(e.lanes[0].stat.exp_stat_sn().get(), 501);
    assert_eq!(e.seq.window().max_cmd_sn().get(), 300);
    // Also for a response that is then refused.
    let r = response(&e, 0x0001_0fff, 0, 501);
    assert!(feed(&mut e, &r, &[]).is_err());
    assert_eq!(e.lanes[0].stat.exp_stat_sn().get(), 502);
}

#[test]
fn response_for_an_unknown_itt_is_named() {
    let mut e = engine(2);
    submit(&mut e, 0, Dir::None, 0);
    let r = response(&e, 0x0001_1001, 0, 1);
    assert_eq!(
        feed(&mut e, &r, &[]).unwrap_err(),
        SessionError::UnknownItt {
            what: "SCSI Response",
            itt: 0x0001_1001
        }
    );
    assert_eq!(e.tasks.in_flight(), 1);
}

#[test]
fn response_for_an_aborted_task_is_dropped() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Write, 512);
    e.take_back(0).unwrap();
    let out = feed_with(&mut e, |e| response(e, s.itt.get(), 0, 1)).unwrap();
    assert!(out.complete.is_none());
}

#[test]
fn response_for_an_older_connection_age_is_unknown() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::None, 0);
    let other_age = crate::proto::session::itt::Itt::task(
        e.age.wrapping_add(1),
        s.itt.generation(),
        s.itt.tag(),
    );
    let r = response(&e, other_age.get(), 0, 1);
    assert!(matches!(
        feed(&mut e, &r, &[]),
        Err(SessionError::UnknownItt { .. })
    ));
    assert_eq!(e.tasks.in_flight(), 1);
}

#[test]
fn response_after_part_of_a_read_keeps_the_undelivered_residual() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Read, 8192);
    feed_with(&mut e, |e| data_in(e, s.itt.get(), 0, 3000, 0, None, 0)).unwrap();
    let c = completed(feed_with(&mut e, |e| response(e, s.itt.get(), 0, 1)).unwrap());
    assert_eq!(c.resid, 8192 - 3000);
}

#[test]
fn responses_complete_in_any_order() {
    let mut e = engine(4);
    let its: Vec<_> = (0..4).map(|t| submit(&mut e, t, Dir::None, 0)).collect();
    for (n, i) in [2usize, 0, 3, 1].into_iter().enumerate() {
        let c = completed(
            feed_with(&mut e, |e| response(e, its[i].itt.get(), 0, 1 + n as u32)).unwrap(),
        );
        assert_eq!(c.cmd.id, i as u32);
    }
    assert_eq!(e.tasks.in_flight(), 0);
}
