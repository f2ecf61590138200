//! Reject through the engine: a rejected command fails alone (retryable), a
//! rejected ping still proves the target alive, a rejected TMF answers it, and
//! a Reject too short to carry the rejected header is malformed.

use super::*;
use crate::proto::pdu::{PduError, RejectReason};
use crate::proto::session::error::SessionError;
use crate::proto::session::rx::{HostResult, Note};

#[test]
fn rejected_command_completes_with_error_and_full_residual() {
    let mut e = engine(4);
    let s = submit(&mut e, 1, Dir::Read, 4096);
    let r = reject_pdu(&e, RejectReason::CommandNotSupported, 1);
    let data = rejected_cmd(s.itt.get());
    let out = feed(&mut e, &r, &data).unwrap();
    let c = out.complete.expect("completion");
    assert_eq!((c.cmd.id, c.host, c.resid), (1, HostResult::Error, 4096));
    assert_eq!(
        out.note,
        Some(Note::Rejected {
            opcode: crate::proto::bhs::Opcode::ScsiCommand,
            itt: s.itt.get(),
            reason: RejectReason::CommandNotSupported
        })
    );
    assert_eq!(e.tasks.in_flight(), 0);
}

#[test]
fn reject_of_an_unknown_command_is_only_noted() {
    let mut e = engine(4);
    submit(&mut e, 0, Dir::None, 0);
    let r = reject_pdu(&e, RejectReason::ProtocolError, 1);
    let data = rejected_cmd(0x0001_0003);
    let out = feed(&mut e, &r, &data).unwrap();
    assert!(out.complete.is_none());
    assert!(matches!(out.note, Some(Note::Rejected { .. })));
    assert_eq!(e.tasks.in_flight(), 1);
}

#[test]
fn rejected_ping_wakes_the_pinger() {
    let mut e = engine(2);
    e.start_ping(0, 0);
    let itt = e.ping_itt(0).get();
    let r = reject_pdu(&e, RejectReason::ProtocolError, 1);
    let data = rejected_nop(itt);
    let out = feed(&mut e, &r, &data).unwrap();
    assert!(out.wake);
    assert!(e.lanes[0].ping_sent_ms.is_none());
}

#[test]
fn rejected_nop_out_answer_does_not_wake() {
    let mut e = engine(2);
    e.start_ping(0, 0);
    let r = reject_pdu(&e, RejectReason::ProtocolError, 1);
    // Our answer to a target ping carries the reserved ITT.
    let data = rejected_nop(u32::MAX);
    let out = feed(&mut e, &r, &data).unwrap();
    assert!(!out.wake);
    assert!(e.lanes[0].ping_sent_ms.is_some());
}

#[test]
fn reject_shorter_than_a_header_is_malformed() {
    let mut e = engine(2);
    let r = reject_pdu(&e, RejectReason::ProtocolError, 1);
    assert_eq!(
        feed(&mut e, &r, &[0u8; 47]).unwrap_err(),
        SessionError::Malformed(PduError::Truncated)
    );
}

#[test]
fn reject_acks_stat_sn_even_when_malformed() {
    let mut e = engine(2);
    let r = reject_pdu(&e, RejectReason::ProtocolError, 60);
    assert!(feed(&mut e, &r, &[]).is_err());
    assert_eq!(e.lanes[0].stat.exp_stat_sn().get(), 61);
}

#[test]
fn reject_of_a_data_out_changes_nothing() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Write, 8192);
    let mut h = rejected_cmd(s.itt.get());
    h[0] = 0x05; // Data-Out
    let r = reject_pdu(&e, RejectReason::DataDigestError, 1);
    let out = feed(&mut e, &r, &h).unwrap();
    assert!(out.complete.is_none());
    assert_eq!(e.tasks.in_flight(), 1);
}

#[test]
fn reject_storm_fails_each_command_once_and_freezes_the_window() {
    // reject-storm: every command rejected, the window never moves.
    let mut e = engine(4);
    let subs: Vec<_> = (0..4).map(|t| submit(&mut e, t, Dir::Read, 512)).collect();
    for (i, s) in subs.iter().enumerate() {
        let Pdu::Reject(mut r) = reject_pdu(&e, RejectReason::ProtocolError, 1 + i as u32) else {
            unreachable!()
        };
        r.exp_cmd_sn = 1;
        r.max_cmd_sn = 4;
        let data = rejected_cmd(s.itt.get());
        let out = feed(&mut e, &rt(Pdu::Reject(r)), &data).unwrap();
        assert_eq!(out.complete.map(|c| c.cmd.id), Some(i as u32));
    }
    assert_eq!(e.tasks.in_flight(), 0);
    assert_eq!(e.seq.credits(), 0);
    assert!(e
        .submit(0, 0, TestCmd { id: 9 }, 0, Dir::None, 0, 7)
        .is_err());
    assert!(e.window_watch.is_closed());
}

#[test]
fn reject_with_extra_data_after_the_header_is_fine() {
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::None, 0);
    let mut data = rejected_cmd(s.itt.get()).to_vec();
    data.extend_from_slice(&[1, 2, 3, 4]);
    let r = reject_pdu(&e, RejectReason::InvalidPduField, 1);
    assert!(feed(&mut e, &r, &data).unwrap().complete.is_some());
}
