//! A session on several connections (MC/S): CmdSN and the window shared,
//! ExpStatSN per connection, every PDU of a task on its command's connection,
//! answers and bursts queued on the connection that asked, keepalive per
//! connection, and ERL 0 taking every connection down together.

use super::*;
use crate::proto::pdu::{RejectReason, TmfResponse};
use crate::proto::session::engine::{AddError, Phase, Refused};
use crate::proto::session::error::SessionError;
use crate::proto::session::lane::{lane_bit, ping_low, LaneStart};
use crate::proto::session::timers::{Expiry, Timers};

/// An engine with `n` lanes all up: lane k has CID k and ExpStatSN 100·k + 1.
fn engine_lanes(depth: usize, n: usize) -> TestEngine {
    let p = params();
    let cap = crate::proto::uapi::r2t_job_capacity(depth as u32, p.max_outstanding_r2t);
    let parts = Parts {
        slots: (0..depth).map(|_| Slot::empty()).collect(),
        aborted: vec![0; aborted::capacity_for(depth)],
        lanes: (0..n)
            .map(|_| one_lane(vec![None; depth], vec![None; 8], vec![None; cap]))
            .collect(),
    };
    let window = CmdWindow::new(Sn(1), Sn(depth as u32)).expect("valid window");
    let mut e = Engine::new(parts, lead(p, 1), 1, Sequencer::new(Sn(1), window), 0);
    for k in 1..n {
        e.add_connection(k, start(k as u16, 100 * k as u32 + 1), None, 0)
            .expect("lane joins");
    }
    e
}

fn start(cid: u16, exp_stat_sn: u32) -> LaneStart {
    LaneStart {
        cid,
        exp_stat_sn: Sn(exp_stat_sn),
        params: params(),
    }
}

fn on(
    e: &mut TestEngine,
    lane: usize,
    pdu: &Pdu,
) -> Result<RxOutcome<'static, TestCmd>, SessionError> {
    if let Pdu::DataIn(d) = pdu {
        e.data_in_header(lane, d)?;
    }
    e.on_pdu(lane, pdu, &[], 0)
}

fn submit_on(e: &mut TestEngine, lane: usize, tag: u16, dir: Dir) -> Submitted {
    let s = e
        .submit(lane, tag, TestCmd { id: u32::from(tag) }, 0, dir, 4096, 0)
        .expect("accepted");
    assert_eq!(e.lanes[s.lane].cmds.pop(), Some(command_job(tag, &s)));
    s
}

#[test]
fn cmd_sn_is_the_sessions_and_each_command_queues_on_its_lane() {
    let mut e = engine_lanes(8, 3);
    let a = e
        .submit(2, 0, TestCmd { id: 0 }, 0, Dir::Read, 512, 0)
        .unwrap();
    let b = e
        .submit(0, 1, TestCmd { id: 1 }, 0, Dir::Read, 512, 0)
        .unwrap();
    let c = e
        .submit(1, 2, TestCmd { id: 2 }, 0, Dir::Read, 512, 0)
        .unwrap();
    assert_eq!((a.cmd_sn, b.cmd_sn, c.cmd_sn), (1, 2, 3));
    assert_eq!((a.lane, b.lane, c.lane), (2, 0, 1));
    // Each lane's own ExpStatSN goes in its commands.
    assert_eq!((a.exp_stat_sn, b.exp_stat_sn, c.exp_stat_sn), (201, 1, 101));
    assert_eq!(e.next_job(2), Some(command_job(0, &a)));
    assert_eq!(e.next_job(0), Some(command_job(1, &b)));
    assert_eq!(e.next_job(1), Some(command_job(2, &c)));
    assert!((0..3).all(|k| !e.has_jobs(k)));
    assert_eq!(e.tasks.peek(0).map(|t| t.lane), Some(2));
}

#[test]
fn stat_sn_counts_per_connection() {
    let mut e = engine_lanes(4, 2);
    let s0 = submit_on(&mut e, 0, 0, Dir::None);
    let s1 = submit_on(&mut e, 1, 1, Dir::None);
    let r = response(&e, s1.itt.get(), 0, 101);
    assert!(on(&mut e, 1, &r).unwrap().complete.is_some());
    assert_eq!(e.exp_stat_sn(1), 102);
    assert_eq!(e.exp_stat_sn(0), 1);
    let r = response(&e, s0.itt.get(), 0, 1);
    assert!(on(&mut e, 0, &r).unwrap().complete.is_some());
    assert_eq!(e.exp_stat_sn(0), 2);
    assert_eq!(e.exp_stat_sn(1), 102);
    // No quirk: neither StatSN went back on its own connection.
    assert_eq!(e.take_quirk(), None);
}

#[test]
fn a_tasks_pdus_on_another_connection_are_a_violation() {
    let mut e = engine_lanes(4, 2);
    let r = submit_on(&mut e, 0, 0, Dir::Read);
    let w = submit_on(&mut e, 0, 1, Dir::Write);
    let din = data_in(&e, r.itt.get(), 0, 512, 0, None, 0);
    assert!(matches!(
        on(&mut e, 1, &din),
        Err(SessionError::WrongConnection {
            what: "Data-In",
            lane: 1,
            task_lane: 0,
            ..
        })
    ));
    let rt = r2t(&e, w.itt.get(), 0, 4096, 0);
    assert!(matches!(
        on(&mut e, 1, &rt),
        Err(SessionError::WrongConnection { what: "R2T", .. })
    ));
    let resp = response(&e, r.itt.get(), 0, 101);
    assert!(matches!(
        on(&mut e, 1, &resp),
        Err(SessionError::WrongConnection {
            what: "SCSI Response",
            ..
        })
    ));
    // On its own connection the same PDUs are fine.
    assert!(on(&mut e, 0, &din).is_ok());
    assert_eq!(e.tasks.peek(0).map(|t| t.received), Some(512));
}

#[test]
fn a_tmf_answer_and_a_reject_come_on_their_requests_connection() {
    let mut e = engine_lanes(4, 2);
    let s = submit_on(&mut e, 1, 0, Dir::Read);
    let age_bits = e.internal_itt(0).get();
    // ABORT TASK goes on the task's lane, 1: its answer on lane 0 is a
    // violation and answers nothing.
    let itt = e.tmf.start(age_bits, 1);
    let answer = tmf_resp(&e, itt, TmfResponse::Complete, 1);
    assert!(matches!(
        on(&mut e, 0, &answer),
        Err(SessionError::WrongConnection {
            what: "Task Management Response",
            lane: 0,
            task_lane: 1,
            ..
        })
    ));
    assert!(e.tmf.is_waiting(itt));
    let reject = reject_pdu(&e, RejectReason::ProtocolError, 1);
    assert!(matches!(
        e.on_pdu(0, &reject, &rejected_tmf(itt), 0),
        Err(SessionError::WrongConnection {
            what: "Reject of a TMF",
            ..
        })
    ));
    assert!(e.tmf.is_waiting(itt));
    // A Reject of the command itself on the wrong connection completes nothing.
    assert!(matches!(
        e.on_pdu(0, &reject, &rejected_cmd(s.itt.get()), 0),
        Err(SessionError::WrongConnection {
            what: "Reject of a SCSI Command",
            lane: 0,
            task_lane: 1,
            ..
        })
    ));
    assert_eq!(e.tasks.in_flight(), 1);
    // On lane 1 both are what they always were.
    let answer = tmf_resp(&e, itt, TmfResponse::Complete, 101);
    assert!(on(&mut e, 1, &answer).unwrap().wake);
    assert_eq!(e.tmf.take_answer(itt), Some(TmfResponse::Complete));
    let reject = reject_pdu(&e, RejectReason::ProtocolError, 102);
    let data = rejected_cmd(s.itt.get());
    let out = e.on_pdu(1, &reject, &data, 0).unwrap();
    assert_eq!(out.complete.map(|c| c.cmd.id), Some(0));
}

#[test]
fn an_r2ts_burst_and_a_ping_answer_queue_on_the_lane_they_came_on() {
    let mut e = engine_lanes(4, 2);
    let w = submit_on(&mut e, 1, 0, Dir::Write);
    let pdu = r2t(&e, w.itt.get(), 0, 4096, 0);
    let out = on(&mut e, 1, &pdu).unwrap();
    assert!(out.kick_tx);
    assert!(e.lanes[0].jobs.is_empty());
    assert!(matches!(e.next_job(1), Some(TxJob::DataOut { tag: 0, .. })));
    let ping = nop_in(&e, u32::MAX, 0x77, 0);
    on(&mut e, 0, &ping).unwrap();
    assert_eq!(e.next_job(0), Some(TxJob::NopOut { ttt: 0x77, lun: 0 }));
    assert!(!e.has_jobs(1));
}

#[test]
fn pings_are_per_connection_and_answered_only_on_their_own() {
    let mut e = engine_lanes(4, 3);
    assert_eq!(e.start_ping(2, 0), PingStart::Queued);
    assert_eq!(
        e.next_job(2),
        Some(TxJob::Ping {
            ordered_cmd_sn: Some(1)
        })
    );
    assert_ne!(e.ping_itt(2), e.ping_itt(0));
    assert_eq!(e.ping_itt(2).get() & 0xffff, u32::from(ping_low(2)));
    // The answer to lane 2's ping on lane 0 answers nothing there.
    let ans = nop_in(&e, e.ping_itt(2).get(), u32::MAX, 1);
    assert!(matches!(
        on(&mut e, 0, &ans),
        Err(SessionError::UnknownItt { what: "NOP-In", .. })
    ));
    let ans = nop_in(&e, e.ping_itt(2).get(), u32::MAX, 201);
    assert!(on(&mut e, 2, &ans).unwrap().wake);
    assert_eq!(e.lanes[2].ping_sent_ms, None);
    assert_eq!(e.exp_stat_sn(2), 202);
}

#[test]
fn a_silent_connection_is_pinged_and_then_fails_the_session() {
    let mut e = engine_lanes(4, 2);
    let t = Timers {
        noop_interval_ms: 5_000,
        noop_timeout_ms: 5_000,
        replacement_ms: 60_000,
        failed_at_ms: 0,
    };
    // Lane 0 hears from the target; lane 1 does not.
    let quiet = nop_in(&e, u32::MAX, u32::MAX, 0);
    on(&mut e, 0, &quiet).unwrap();
    e.lanes[0].last_rx_ms = 4_000;
    let d = e.poll(6_000, &t);
    assert_eq!(d.pings, lane_bit(1));
    assert_eq!(
        e.next_job(1),
        Some(TxJob::Ping {
            ordered_cmd_sn: Some(1)
        })
    );
    assert!(!e.has_jobs(0));
    e.lanes[0].last_rx_ms = 10_500;
    assert_eq!(e.poll(10_999, &t).fail, None);
    assert_eq!(e.poll(11_000, &t).fail, Some(Expiry::NoPingAnswer));
}

const KEEPALIVE: Timers = Timers {
    noop_interval_ms: 5_000,
    noop_timeout_ms: 5_000,
    replacement_ms: 60_000,
    failed_at_ms: 0,
};

// istgt checks an immediate NOP-Out's CmdSN against its ExpCmdSN strictly and
// dropped a 2-connection session when a ping overtook a command sent earlier
// on the other connection (interop-istgt, now and then).
#[test]
fn a_ping_on_several_connections_waits_for_every_cmd_sn_and_then_takes_one() {
    let mut e = engine_lanes(8, 2);
    let s = submit_on(&mut e, 0, 0, Dir::Read);
    assert_eq!(s.cmd_sn, 1);
    // Lane 0 heard from the target lately; lane 1 did not.
    e.lanes[0].last_rx_ms = 4_500;
    // CmdSN 1 may still be on its way on lane 0: no ping on lane 1 yet, and
    // the next poll is no later than the idle poll.
    let d = e.poll(5_000, &KEEPALIVE);
    assert_eq!(d.pings, 0);
    assert!(d.wake_at <= 5_000 + crate::proto::session::timers::IDLE_POLL_MS);
    assert!(!e.has_jobs(1));
    assert_eq!(e.lanes[1].ping_sent_ms, None);
    assert_eq!(e.start_ping(1, 5_000), PingStart::Deferred);
    // The target acknowledges CmdSN 1: the ping goes, non-immediate, with
    // CmdSN 2, and the next command is ordered behind it.
    e.window(2, 9);
    let d = e.poll(6_000, &KEEPALIVE);
    assert_eq!(d.pings, lane_bit(1));
    assert_eq!(
        e.next_job(1),
        Some(TxJob::Ping {
            ordered_cmd_sn: Some(2)
        })
    );
    assert_eq!(e.lanes[1].ping_sent_ms, Some(6_000));
    let later = submit_on(&mut e, 0, 1, Dir::Read);
    assert_eq!(later.cmd_sn, 3);
    // Lane 0's own ping is due too, but CmdSN 2 and 3 are not acknowledged.
    assert_eq!(e.poll(9_500, &KEEPALIVE).pings, 0);
    // The ping's answer acknowledges its CmdSN and ends it like an
    // immediate one's.
    e.window(3, 10);
    let ans = nop_in(&e, e.ping_itt(1).get(), u32::MAX, 101);
    assert!(on(&mut e, 1, &ans).unwrap().wake);
    assert_eq!(e.lanes[1].ping_sent_ms, None);
    // The command's answer acknowledges CmdSN 3: lane 0's ping goes now.
    let r = response(&e, later.itt.get(), 0, 1);
    assert!(on(&mut e, 0, &r).unwrap().complete.is_some());
    assert_eq!(e.poll(9_600, &KEEPALIVE).pings, lane_bit(0));
    assert_eq!(
        e.next_job(0),
        Some(TxJob::Ping {
            ordered_cmd_sn: Some(4)
        })
    );
}

#[test]
fn with_the_window_closed_an_acknowledged_session_pings_immediately() {
    let mut e = engine_lanes(4, 2);
    // Every CmdSN acknowledged, MaxCmdSN = ExpCmdSN - 1: no CmdSN to take,
    // and no command can overtake the ping.
    for tag in 0..4 {
        submit_on(&mut e, 0, tag, Dir::None);
    }
    e.window(5, 4);
    assert_eq!(e.seq.credits(), 0);
    assert_eq!(e.start_ping(1, 0), PingStart::Queued);
    assert_eq!(
        e.next_job(1),
        Some(TxJob::Ping {
            ordered_cmd_sn: None
        })
    );
    assert_eq!(e.seq.next_cmd_sn(), Sn(5));
}

#[test]
fn one_connection_up_pings_immediately_with_commands_in_flight() {
    for n in [1, 3] {
        let mut e = engine_lanes(4, n);
        for k in 1..n {
            e.lanes[k].go_down();
        }
        submit_on(&mut e, 0, 0, Dir::Read);
        assert_eq!(e.start_ping(0, 0), PingStart::Queued);
        assert_eq!(
            e.next_job(0),
            Some(TxJob::Ping {
                ordered_cmd_sn: None
            })
        );
        assert_eq!(e.seq.next_cmd_sn(), Sn(2));
    }
}

#[test]
fn a_deferred_ping_is_not_a_busy_one_and_a_full_queue_takes_no_cmd_sn() {
    let mut e = engine_lanes(4, 2);
    // Fill lane 1's control queue with target-ping answers.
    let mut n = 0;
    while e.lanes[1].ctl_jobs.push(TxJob::NopOut { ttt: n, lun: 0 }) {
        n += 1;
    }
    assert_eq!(e.start_ping(1, 0), PingStart::Busy);
    assert_eq!(e.seq.next_cmd_sn(), Sn(1));
    assert_eq!(e.lanes[1].ping_sent_ms, None);
    e.lanes[1].go_down();
    assert_eq!(e.start_ping(1, 0), PingStart::Busy);
}

#[test]
fn a_command_for_a_lane_that_is_down_goes_on_the_next_one_up() {
    let mut e = engine_lanes(4, 3);
    e.lanes[1].go_down();
    assert_eq!(e.route(1), Some(2));
    assert_eq!(e.route(7), Some(2));
    let s = submit_on(&mut e, 1, 0, Dir::None);
    assert_eq!(s.lane, 2);
    assert_eq!(e.tasks.peek(0).map(|t| t.lane), Some(2));
    // A lane beyond the session's is a violation, never an index panic.
    let n = nop_in(&e, u32::MAX, u32::MAX, 0);
    assert_eq!(
        e.on_pdu(9, &n, &[], 0).err(),
        Some(SessionError::NoSuchLane { lane: 9 })
    );
}

#[test]
fn connections_join_only_a_running_session_on_a_free_lane_with_their_own_cid() {
    let mut e = engine_lanes(4, 3);
    e.lanes[2].go_down();
    assert_eq!(
        e.add_connection(1, start(5, 1), None, 0),
        Err(AddError::LaneBusy)
    );
    assert_eq!(
        e.add_connection(2, start(1, 1), None, 0),
        Err(AddError::DuplicateCid)
    );
    assert_eq!(
        e.add_connection(3, start(5, 1), None, 0),
        Err(AddError::NoSuchLane)
    );
    e.phase = Phase::Recovering;
    assert_eq!(
        e.add_connection(2, start(5, 1), None, 0),
        Err(AddError::NotRunning)
    );
    e.phase = Phase::Running;
    assert_eq!(e.add_connection(2, start(5, 42), None, 0), Ok(()));
    assert_eq!((e.lanes[2].cid, e.exp_stat_sn(2)), (5, 42));
    assert_eq!(e.lanes_up(), 3);
}

#[test]
fn losing_one_connection_takes_every_lane_down_and_reinstatement_brings_back_lane_0() {
    let mut e = engine_lanes(4, 3);
    assert_eq!(e.start_ping(2, 0), PingStart::Queued);
    submit_on(&mut e, 2, 0, Dir::Write);
    e.submit(1, 1, TestCmd { id: 1 }, 0, Dir::None, 0, 0)
        .unwrap();
    e.phase = Phase::Recovering;
    e.connection_lost();
    assert_eq!(e.lanes_up(), 0);
    assert!((0..3).all(|k| !e.has_jobs(k)));
    assert!(e.lanes.iter().all(|l| l.ping_sent_ms.is_none()));
    let seq = e.seq;
    let age = e.age;
    e.connection_replaced(lead(params(), 9), seq, None, 100);
    assert_ne!(e.age, age);
    assert_eq!(e.lanes_up(), 1);
    assert_eq!(e.route(2), Some(0));
    assert_eq!(e.exp_stat_sn(0), 9);
    // Lanes 1 and 2 come back by joining again.
    assert_eq!(e.add_connection(1, start(1, 50), None, 100), Ok(()));
    assert_eq!(e.route(1), Some(1));
}

#[test]
fn a_logout_the_target_asks_for_goes_and_is_answered_on_its_connection() {
    let mut e = engine_lanes(4, 2);
    let ask = async_msg(&e, AsyncEvent::LogoutRequest, (0, 0, 10), 101, 0);
    assert!(on(&mut e, 1, &ask).unwrap().kick_tx);
    assert_eq!(e.next_job(1), Some(TxJob::Logout));
    assert!(!e.has_jobs(0));
    let answer = logout_resp(&e, 0, 0, 102);
    assert!(matches!(
        on(&mut e, 0, &answer),
        Err(SessionError::WrongConnection {
            what: "Logout Response",
            lane: 0,
            task_lane: 1,
            ..
        })
    ));
    assert!(on(&mut e, 1, &answer).unwrap().reconnect.is_some());
}

#[test]
fn a_window_update_on_any_connection_opens_credit_for_all() {
    let mut e = engine_lanes(1, 2);
    let s = submit_on(&mut e, 0, 0, Dir::None);
    assert!(matches!(
        e.submit(1, 0, TestCmd { id: 9 }, 0, Dir::None, 0, 0),
        Err(Refused::NoCredit(_) | Refused::Slot(_))
    ));
    let mut r = resp_repr(&e, s.itt.get(), 0, 1);
    r.exp_cmd_sn = 2;
    r.max_cmd_sn = 2;
    // The answer comes on the task's lane; a NOP-In on lane 1 could equally
    // have carried the window.
    on(&mut e, 0, &super::rt(Pdu::ScsiResponse(r))).unwrap();
    assert_eq!(e.seq.credits(), 1);
    let s2 = submit_on(&mut e, 1, 0, Dir::None);
    assert_eq!((s2.lane, s2.cmd_sn), (1, 2));
}
