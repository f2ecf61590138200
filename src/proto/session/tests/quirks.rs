//! Target quirks the engine rides through (issue 12), each reported once per
//! kind and never failing the connection: ExpCmdSN ahead, StatSN repeated or
//! back, an invalid window, bad sense length, O/U on a non-final Data-In.

use std::string::ToString;

use super::*;
use crate::proto::session::seq::Quirk;

#[test]
fn quirk_expcmdsn_on_every_pdu_keeps_the_session_flowing() {
    // quirk-expcmdsn: every PDU acknowledges one command more than sent.
    let mut e = engine(4);
    for i in 0..200u32 {
        let s = submit(&mut e, (i % 4) as u16, Dir::None, 0);
        let mut r = resp_repr(&e, s.itt.get(), 0, 1 + i);
        r.exp_cmd_sn = s.cmd_sn + 2;
        r.max_cmd_sn = s.cmd_sn + 1 + 31;
        let c = completed(feed(&mut e, &rt(Pdu::ScsiResponse(r)), &[]).unwrap());
        assert_eq!(c.cmd.id, i % 4);
    }
    assert!(matches!(e.take_quirk(), Some(Quirk::ExpCmdSnAhead { .. })));
    assert_eq!(e.take_quirk(), None, "reported once");
}

#[test]
fn quirk_statsn_repeat_every_second_pdu() {
    // quirk-statsn-repeat: N, N, N+1, N+1, ...
    let mut e = engine(4);
    for i in 0..50u32 {
        let s = submit(&mut e, (i % 4) as u16, Dir::None, 0);
        let stat = 0x1000 + i / 2;
        completed(feed_with(&mut e, |e| response(e, s.itt.get(), 0, stat)).unwrap());
        assert_eq!(e.lanes[0].stat.exp_stat_sn().get(), stat + 1);
    }
    assert!(matches!(e.take_quirk(), Some(Quirk::StatSnBack { .. })));
    assert_eq!(e.take_quirk(), None);
}

#[test]
fn quirk_ou_nonfinal_read_completes_with_the_right_residual() {
    // quirk-ou-nonfinal: 8 KiB pieces, U and the bytes to come on each but
    // the last, which carries status.
    let mut e = engine(2);
    let s = submit(&mut e, 0, Dir::Read, 32768);
    for i in 0..4u32 {
        let last = i == 3;
        let mut d = data_in_repr(&e, s.itt.get(), i * 8192, 8192, i, last.then_some(0), 1);
        if !last {
            d.underflow = true;
            d.residual_count = 32768 - (i + 1) * 8192;
        }
        let out = feed(&mut e, &rt(Pdu::DataIn(d)), &[]).unwrap();
        if last {
            assert_eq!(completed(out).resid, 0);
        }
    }
    assert!(matches!(e.take_quirk(), Some(Quirk::StrayResidual { .. })));
    assert_eq!(e.take_quirk(), None);
}

#[test]
fn different_quirk_kinds_are_each_reported() {
    let mut e = engine(4);
    let a = submit(&mut e, 0, Dir::None, 0);
    let b = submit(&mut e, 1, Dir::None, 0);
    feed_with(&mut e, |e| response(e, a.itt.get(), 0, 10)).unwrap();
    feed_with(&mut e, |e| response(e, b.itt.get(), 0, 5)).unwrap();
    let Pdu::NopIn(mut n) = nop_in(&e, u32::MAX, u32::MAX, 1) else {
        unreachable!()
    };
    n.exp_cmd_sn = 3;
    n.max_cmd_sn = 1;
    feed(&mut e, &rt(Pdu::NopIn(n)), &[]).unwrap();
    let mut kinds = Vec::new();
    while let Some(q) = e.take_quirk() {
        assert!(!q.to_string().is_empty());
        kinds.push(core::mem::discriminant(&q));
    }
    assert_eq!(kinds.len(), 2);
}

#[test]
fn bad_window_is_ignored_whole_and_reported() {
    let mut e = engine(4);
    let before = e.seq.window();
    let Pdu::NopIn(mut n) = nop_in(&e, u32::MAX, u32::MAX, 1) else {
        unreachable!()
    };
    n.exp_cmd_sn = 1;
    n.max_cmd_sn = 1u32.wrapping_add((1 << 31) + 5);
    feed(&mut e, &rt(Pdu::NopIn(n)), &[]).unwrap();
    assert_eq!(e.seq.window(), before);
    assert!(matches!(e.take_quirk(), Some(Quirk::BadWindow { .. })));
}

#[test]
fn quirk_lines_read_as_the_guest_case_expects() {
    // ktests/cases/53-hostile-target.sh greps these words.
    let lines = [
        Quirk::StatSnBack {
            stat_sn: 1,
            expected: 6,
        }
        .to_string(),
        Quirk::ExpCmdSnAhead {
            exp_cmd_sn: 1001,
            next_cmd_sn: 2,
        }
        .to_string(),
        Quirk::BadWindow {
            exp_cmd_sn: 1,
            max_cmd_sn: 0x8000_0006,
        }
        .to_string(),
    ];
    assert!(lines[0].contains("repeats or goes back (expected 6)"));
    assert!(lines[1].starts_with("ExpCmdSN 1001 beyond the next CmdSN 2"));
    assert!(lines[2].starts_with("invalid command window ExpCmdSN 1 MaxCmdSN"));
    assert!(lines[2].ends_with("ignored"));
}

#[test]
fn more_quirk_kinds_than_pending_slots_never_panics() {
    let mut e = engine(2);
    for _ in 0..3 {
        e.quirk(Some(Quirk::StrayResidual { itt: 1 }));
        e.quirk(Some(Quirk::BadWindow {
            exp_cmd_sn: 0,
            max_cmd_sn: 0,
        }));
        e.quirk(None);
    }
    assert!(e.take_quirk().is_some());
    assert!(e.take_quirk().is_some());
    assert!(e.take_quirk().is_none());
}
