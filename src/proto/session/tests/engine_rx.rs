//! The engine end to end on well-behaved and misbehaving single PDUs.

use super::*;
use crate::proto::session::error::SessionError;
use crate::proto::session::rx::HostResult;

#[test]
fn read_completes_with_data_and_status() {
    let mut e = engine(4);
    let s = submit(&mut e, 0, Dir::Read, 8192);
    let d0 = data_in(&e, s.itt.get(), 0, 4096, 0, None, 0);
    assert_eq!(
        placement(&mut e, &d0),
        Placement::Into {
            tag: 0,
            seq: s.seq,
            base: 0
        }
    );
    assert!(e.on_pdu(0, &d0, &[], 0).unwrap().complete.is_none());
    let d1 = data_in(&e, s.itt.get(), 4096, 4096, 1, Some(0), 1);
    let c = completed(feed(&mut e, &d1, &[]).unwrap());
    assert_eq!(c.cmd, TestCmd { id: 0 });
    assert_eq!((c.host, c.status, c.resid), (HostResult::Ok, 0, 0));
    assert_eq!(e.tasks.in_flight(), 0);
    assert_eq!(e.lanes[0].stat.exp_stat_sn().get(), 2);
}

#[test]
fn short_read_reports_what_was_not_delivered() {
    let mut e = engine(4);
    let s = submit(&mut e, 1, Dir::Read, 8192);
    // Status with 4 KiB delivered and no U bit: the residual is still 4 KiB.
    let d = data_in(&e, s.itt.get(), 0, 4096, 0, Some(0), 1);
    let c = completed(feed(&mut e, &d, &[]).unwrap());
    assert_eq!(c.resid, 4096);
}

#[test]
fn read_with_response_and_no_data_has_full_residual() {
    let mut e = engine(4);
    let s = submit(&mut e, 1, Dir::Read, 512);
    let r = response(&e, s.itt.get(), 0, 1);
    let c = completed(feed(&mut e, &r, &[]).unwrap());
    assert_eq!(c.resid, 512);
}

#[test]
fn data_in_out_of_order_is_named() {
    let mut e = engine(4);
    let s = submit(&mut e, 0, Dir::Read, 8192);
    let d = data_in(&e, s.itt.get(), 4096, 4096, 0, None, 0);
    assert_eq!(
        feed(&mut e, &d, &[]).unwrap_err(),
        SessionError::DataInOffset {
            itt: s.itt.get(),
            offset: 4096,
            expected: 0
        }
    );
}

#[test]
fn data_in_wrong_data_sn_is_named() {
    let mut e = engine(4);
    let s = submit(&mut e, 0, Dir::Read, 8192);
    let d = data_in(&e, s.itt.get(), 0, 4096, 3, None, 0);
    assert!(matches!(
        feed(&mut e, &d, &[]),
        Err(SessionError::DataInSn {
            data_sn: 3,
            expected: 0,
            ..
        })
    ));
}

#[test]
fn data_in_beyond_buffer_is_refused_before_placement() {
    let mut e = engine(4);
    let s = submit(&mut e, 0, Dir::Read, 4096);
    let d = data_in(&e, s.itt.get(), 0, 4097, 0, None, 0);
    assert!(matches!(
        feed(&mut e, &d, &[]),
        Err(SessionError::DataInBeyond {
            end: 4097,
            len: 4096,
            ..
        })
    ));
}

#[test]
fn data_in_for_a_write_is_named() {
    let mut e = engine(4);
    let s = submit(&mut e, 0, Dir::Write, 4096);
    let d = data_in(&e, s.itt.get(), 0, 512, 0, None, 0);
    assert!(matches!(
        feed(&mut e, &d, &[]),
        Err(SessionError::DataInNotRead { .. })
    ));
}

#[test]
fn data_in_for_unknown_itt_fails() {
    let mut e = engine(4);
    let d = data_in(&e, 0x0001_1003, 0, 512, 0, None, 0);
    assert!(matches!(
        feed(&mut e, &d, &[]),
        Err(SessionError::UnknownItt {
            what: "Data-In",
            ..
        })
    ));
}

#[test]
fn data_in_for_aborted_task_is_dropped() {
    let mut e = engine(4);
    let s = submit(&mut e, 2, Dir::Read, 4096);
    assert!(e.take_back(2).is_some());
    let d = data_in(&e, s.itt.get(), 0, 512, 0, None, 0);
    assert_eq!(placement(&mut e, &d), Placement::Discard);
    let out = e.on_pdu(0, &d, &[], 0).unwrap();
    assert!(out.complete.is_none());
}

#[test]
fn response_completes_once_only() {
    let mut e = engine(4);
    let s = submit(&mut e, 0, Dir::None, 0);
    let r = response(&e, s.itt.get(), 0, 1);
    assert!(feed(&mut e, &r, &[]).unwrap().complete.is_some());
    let again = response(&e, s.itt.get(), 0, 2);
    assert!(matches!(
        feed(&mut e, &again, &[]),
        Err(SessionError::UnknownItt { .. })
    ));
}

#[test]
fn r2t_queues_a_burst() {
    let mut e = engine(4);
    let s = submit(&mut e, 3, Dir::Write, 65536);
    let out = feed_with(&mut e, |e| r2t(e, s.itt.get(), 8192, 16384, 0)).unwrap();
    assert!(out.kick_tx);
    assert_eq!(
        e.lanes[0].jobs.pop(),
        Some(TxJob::DataOut {
            tag: 3,
            seq: s.seq,
            ttt: 0x100,
            offset: 8192,
            len: 16384
        })
    );
}

#[test]
fn r2t_beyond_max_outstanding_is_named() {
    let mut e = engine(4);
    let s = submit(&mut e, 0, Dir::Write, 65536);
    feed_with(&mut e, |e| r2t(e, s.itt.get(), 0, 8192, 0)).unwrap();
    assert!(matches!(
        feed_with(&mut e, |e| r2t(e, s.itt.get(), 8192, 8192, 1)),
        Err(SessionError::R2tTooMany { max: 1, .. })
    ));
}

#[test]
fn r2t_slot_frees_when_burst_sent() {
    let mut e = engine(4);
    let s = submit(&mut e, 0, Dir::Write, 65536);
    feed_with(&mut e, |e| r2t(e, s.itt.get(), 0, 8192, 0)).unwrap();
    e.burst_sent(0, s.seq, true);
    assert!(feed_with(&mut e, |e| r2t(e, s.itt.get(), 8192, 8192, 1)).is_ok());
}

#[test]
fn nop_in_ping_from_target_is_answered() {
    let mut e = engine(4);
    let out = feed_with(&mut e, |e| nop_in(e, u32::MAX, 0x55, 1)).unwrap();
    assert!(out.kick_tx);
    assert_eq!(
        e.lanes[0].ctl_jobs.pop(),
        Some(TxJob::NopOut { ttt: 0x55, lun: 0 })
    );
}

#[test]
fn nop_in_answers_our_ping() {
    let mut e = engine(4);
    assert_eq!(e.start_ping(0, 5), PingStart::Queued);
    assert_eq!(
        e.lanes[0].ctl_jobs.pop(),
        Some(TxJob::Ping {
            ordered_cmd_sn: None
        })
    );
    let itt = e.ping_itt(0).get();
    let out = feed_with(&mut e, |e| nop_in(e, itt, u32::MAX, 1)).unwrap();
    assert!(out.wake);
    assert!(e.lanes[0].ping_sent_ms.is_none());
}
