//! Host tests of the whole engine: a command handle that records what the
//! engine did to it, storage in `Vec`s, and target PDUs built with the
//! proto's own emitters and parsed back (so every test goes through the wire
//! format the kernel sees).

extern crate std;

use std::vec;
use std::vec::Vec;

use super::super::bhs::BHS_LEN;
use super::super::negotiate::SessionParams;
use super::super::pdu::{
    AsyncEvent, AsyncMessage, DataIn, LogoutResponse, NopIn, NopOut, Pdu, R2t, Reject,
    RejectReason, ScsiCommand, ScsiResponse, TaskAttr, TaskMgmtRequest, TaskMgmtResponse,
    TmfFunction, TmfResponse, RESPONSE_COMPLETED,
};
use super::super::serial::{CmdWindow, Sn};
use super::aborted;
use super::engine::{Engine, Parts, PingStart, Storage, Submitted};
use super::lane::{Lane, LaneParts, LaneStart};
use super::rx::{Completion, Placement, RxOutcome};
use super::seq::Sequencer;
use super::task::{Dir, Slot};
use super::tx::TxJob;

mod conn_lost;
mod engine_rx;
mod hostile;
mod lanes;
mod logout_async;
mod prop_engine;
mod quirks;
mod regressions;
mod reject;
mod rx_data_in;
mod rx_nop;
mod rx_response;
mod submit_window;
mod timers_poll;
mod tmf_flows;
mod tx_queue;
mod tx_r2t;
pub(crate) mod wire;

/// A command handle: its id and buffer, as the test's SCSI midlayer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TestCmd {
    pub id: u32,
}

pub(crate) struct VecStore;

impl Storage for VecStore {
    type Cmd = TestCmd;
    type Slots = Vec<Slot<TestCmd>>;
    type Itts = Vec<u32>;
    type Jobs = Vec<Option<TxJob>>;
    type Lanes = Vec<Lane<Vec<Option<TxJob>>>>;
}

/// What a connection negotiated as `p` with CID 0 and ExpStatSN
/// `exp_stat_sn` brings to its lane.
pub(crate) fn lead(p: SessionParams, exp_stat_sn: u32) -> LaneStart {
    LaneStart {
        cid: 0,
        exp_stat_sn: Sn(exp_stat_sn),
        params: p,
    }
}

/// A lane (down) over rings of these sizes.
pub(crate) fn one_lane(
    cmds: Vec<Option<TxJob>>,
    ctl_jobs: Vec<Option<TxJob>>,
    jobs: Vec<Option<TxJob>>,
) -> Lane<Vec<Option<TxJob>>> {
    Lane::new(LaneParts {
        cmds,
        ctl_jobs,
        jobs,
    })
}

pub(crate) type TestEngine = Engine<VecStore>;

/// Parameters as LIO offers them by default, with 8 KiB segments.
pub(crate) fn params() -> SessionParams {
    SessionParams {
        max_xmit_data_segment_len: 8192,
        max_recv_data_segment_len: 8192,
        first_burst_len: 65536,
        max_burst_len: 262_144,
        max_outstanding_r2t: 1,
        immediate_data: true,
        initial_r2t: true,
        ..SessionParams::default()
    }
}

/// An engine with `depth` tags, CmdSN 1, window [1, 1 + depth), StatSN 1.
pub(crate) fn engine_with(depth: usize, p: SessionParams) -> TestEngine {
    let jobs = super::super::uapi::r2t_job_capacity(depth as u32, p.max_outstanding_r2t);
    let parts = Parts {
        slots: (0..depth).map(|_| Slot::empty()).collect(),
        aborted: vec![0; aborted::capacity_for(depth)],
        lanes: vec![one_lane(
            vec![None; depth],
            vec![None; 64],
            vec![None; jobs],
        )],
    };
    let window = CmdWindow::new(Sn(1), Sn(depth as u32)).expect("valid window");
    Engine::new(parts, lead(p, 1), 1, Sequencer::new(Sn(1), window), 0)
}

pub(crate) fn engine(depth: usize) -> TestEngine {
    engine_with(depth, params())
}

/// Submits command `id` under tag `tag` and sends it.
pub(crate) fn submit(e: &mut TestEngine, tag: u16, dir: Dir, len: u32) -> Submitted {
    submit_lun(e, tag, 0, dir, len)
}

/// The transmitter takes the Command PDU `submit` queued for (`tag`, `s`):
/// it is the next thing to send once control jobs are out.
pub(crate) fn send_command(e: &mut TestEngine, tag: u16, s: &Submitted) {
    while e.lanes[0].ctl_jobs.pop().is_some() {}
    assert_eq!(e.next_job(0), Some(command_job(tag, s)));
}

/// The job `submit` queues for (`tag`, `s`).
pub(crate) fn command_job(tag: u16, s: &Submitted) -> TxJob {
    TxJob::Command {
        tag,
        seq: s.seq,
        itt: s.itt.get(),
        cmd_sn: s.cmd_sn,
    }
}

/// Parses what an emitter wrote, as the kernel's receiver does.
pub(crate) fn parse(hdr: &[u8; BHS_LEN]) -> Pdu {
    Pdu::parse(hdr).expect("emitted header parses")
}

/// The window the target advertises: ExpCmdSN = next CmdSN, room for 64.
pub(crate) fn win(e: &TestEngine) -> (u32, u32) {
    let next = e.seq.next_cmd_sn().get();
    (next, next.wrapping_add(63))
}

/// A Data-In for `itt` with `len` bytes at `offset`, DataSN `sn`; status
/// `Some(s)` makes it the last with StatSN `stat_sn`.
pub(crate) fn data_in(
    e: &TestEngine,
    itt: u32,
    offset: u32,
    len: u32,
    sn: u32,
    status: Option<u8>,
    stat_sn: u32,
) -> Pdu {
    let (exp, max) = win(e);
    let mut h = [0u8; BHS_LEN];
    DataIn {
        final_bit: status.is_some(),
        ack: false,
        overflow: false,
        underflow: false,
        status,
        lun: 0,
        itt,
        ttt: u32::MAX,
        stat_sn: if status.is_some() { stat_sn } else { 0 },
        exp_cmd_sn: exp,
        max_cmd_sn: max,
        data_sn: sn,
        buffer_offset: offset,
        residual_count: 0,
        data_segment_len: len,
    }
    .emit(&mut h);
    parse(&h)
}

/// A SCSI Response for `itt` with `status` and StatSN `stat_sn`.
pub(crate) fn response(e: &TestEngine, itt: u32, status: u8, stat_sn: u32) -> Pdu {
    let (exp, max) = win(e);
    let mut h = [0u8; BHS_LEN];
    ScsiResponse {
        bidi_overflow: false,
        bidi_underflow: false,
        overflow: false,
        underflow: false,
        response: RESPONSE_COMPLETED,
        status,
        data_segment_len: 0,
        itt,
        snack_tag: 0,
        stat_sn,
        exp_cmd_sn: exp,
        max_cmd_sn: max,
        exp_data_sn: 0,
        bidi_read_residual_count: 0,
        residual_count: 0,
    }
    .emit(&mut h);
    parse(&h)
}

/// An R2T for `itt`: `len` bytes at `offset`, R2TSN `sn`.
pub(crate) fn r2t(e: &TestEngine, itt: u32, offset: u32, len: u32, sn: u32) -> Pdu {
    let (exp, max) = win(e);
    let mut h = [0u8; BHS_LEN];
    R2t {
        lun: 0,
        itt,
        ttt: 0x100 + sn,
        stat_sn: e.lanes[0].stat.exp_stat_sn().get(),
        exp_cmd_sn: exp,
        max_cmd_sn: max,
        r2t_sn: sn,
        buffer_offset: offset,
        desired_data_len: len,
    }
    .emit(&mut h);
    parse(&h)
}

/// A NOP-In: an answer to our ping (`itt` set) or a ping (`ttt` set).
pub(crate) fn nop_in(e: &TestEngine, itt: u32, ttt: u32, stat_sn: u32) -> Pdu {
    let (exp, max) = win(e);
    let mut h = [0u8; BHS_LEN];
    NopIn {
        lun: 0,
        itt,
        ttt,
        stat_sn,
        exp_cmd_sn: exp,
        max_cmd_sn: max,
        data_segment_len: 0,
    }
    .emit(&mut h);
    parse(&h)
}

/// Feeds `pdu` (a Data-In's header first, as the receiver does).
pub(crate) fn feed<'d>(
    e: &mut TestEngine,
    pdu: &Pdu,
    data: &'d [u8],
) -> Result<RxOutcome<'d, TestCmd>, super::error::SessionError> {
    if let Pdu::DataIn(d) = pdu {
        e.data_in_header(0, d)?;
    }
    e.on_pdu(0, pdu, data, 0)
}

/// The completion in `out`, which must be there.
pub(crate) fn completed<'d>(out: RxOutcome<'d, TestCmd>) -> Completion<'d, TestCmd> {
    out.complete.expect("a completion")
}

pub(crate) fn placement(e: &mut TestEngine, pdu: &Pdu) -> Placement {
    match pdu {
        Pdu::DataIn(d) => e.data_in_header(0, d).expect("header accepted"),
        _ => panic!("not a Data-In"),
    }
}

/// Builds a PDU from the engine's current state, then feeds it.
pub(crate) fn feed_with(
    e: &mut TestEngine,
    build: impl FnOnce(&TestEngine) -> Pdu,
) -> Result<RxOutcome<'static, TestCmd>, super::error::SessionError> {
    let pdu = build(e);
    feed(e, &pdu, &[])
}

/// Emits `p` and parses it back, so a hand-tweaked Repr goes through the wire
/// format too.
pub(crate) fn rt(p: Pdu) -> Pdu {
    let mut h = [0u8; BHS_LEN];
    p.emit(&mut h);
    parse(&h)
}

/// A SCSI Response Repr for `itt` (GOOD unless `status` says otherwise) with
/// the engine's window, for tests to tweak before [`rt`].
pub(crate) fn resp_repr(e: &TestEngine, itt: u32, status: u8, stat_sn: u32) -> ScsiResponse {
    match response(e, itt, status, stat_sn) {
        Pdu::ScsiResponse(r) => r,
        _ => unreachable!(),
    }
}

/// A Data-In Repr, as [`data_in`] builds it.
pub(crate) fn data_in_repr(
    e: &TestEngine,
    itt: u32,
    offset: u32,
    len: u32,
    sn: u32,
    status: Option<u8>,
    stat_sn: u32,
) -> DataIn {
    match data_in(e, itt, offset, len, sn, status, stat_sn) {
        Pdu::DataIn(d) => d,
        _ => unreachable!(),
    }
}

/// A TMF Response for `itt`.
pub(crate) fn tmf_resp(e: &TestEngine, itt: u32, response: TmfResponse, stat_sn: u32) -> Pdu {
    let (exp, max) = win(e);
    rt(Pdu::TaskMgmtResponse(TaskMgmtResponse {
        response,
        itt,
        stat_sn,
        exp_cmd_sn: exp,
        max_cmd_sn: max,
    }))
}

/// A Logout Response to our Logout (its ITT), with `response` and `time2wait`.
pub(crate) fn logout_resp(e: &TestEngine, response: u8, time2wait: u16, stat_sn: u32) -> Pdu {
    let (exp, max) = win(e);
    rt(Pdu::LogoutResponse(LogoutResponse {
        response,
        itt: e.internal_itt(super::itt::LOGOUT_LOW).get(),
        stat_sn,
        exp_cmd_sn: exp,
        max_cmd_sn: max,
        time2wait,
        time2retain: 0,
    }))
}

/// An Async Message with `event` and Parameter1..3, data segment `data_len`.
pub(crate) fn async_msg(
    e: &TestEngine,
    event: AsyncEvent,
    params: (u16, u16, u16),
    stat_sn: u32,
    data_len: u32,
) -> Pdu {
    let (exp, max) = win(e);
    rt(Pdu::AsyncMessage(AsyncMessage {
        lun: 0x0001_0000_0000_0000,
        stat_sn,
        exp_cmd_sn: exp,
        max_cmd_sn: max,
        event,
        vcode: 0,
        parameter1: params.0,
        parameter2: params.1,
        parameter3: params.2,
        data_segment_len: data_len,
    }))
}

/// A Reject with `reason` whose data segment (built by [`rejected_cmd`] and
/// friends) is 48 bytes.
pub(crate) fn reject_pdu(e: &TestEngine, reason: RejectReason, stat_sn: u32) -> Pdu {
    let (exp, max) = win(e);
    rt(Pdu::Reject(Reject {
        reason,
        stat_sn,
        exp_cmd_sn: exp,
        max_cmd_sn: max,
        data_sn: 0,
        data_segment_len: BHS_LEN as u32,
    }))
}

/// The BHS of our SCSI Command with `itt`, as a Reject carries it back.
pub(crate) fn rejected_cmd(itt: u32) -> [u8; BHS_LEN] {
    let mut h = [0u8; BHS_LEN];
    ScsiCommand {
        immediate: false,
        final_bit: true,
        read: true,
        write: false,
        attr: TaskAttr::Simple,
        total_ahs_len: 0,
        data_segment_len: 0,
        lun: 0,
        itt,
        expected_data_len: 512,
        cmd_sn: 1,
        exp_stat_sn: 1,
        cdb: [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
    }
    .emit(&mut h);
    h
}

/// The BHS of our NOP-Out with `itt`, as a Reject carries it back.
pub(crate) fn rejected_nop(itt: u32) -> [u8; BHS_LEN] {
    let mut h = [0u8; BHS_LEN];
    NopOut {
        immediate: true,
        lun: 0,
        itt,
        ttt: u32::MAX,
        cmd_sn: 1,
        exp_stat_sn: 1,
        data_segment_len: 0,
    }
    .emit(&mut h);
    h
}

/// The BHS of our TMF request with `itt`, as a Reject carries it back.
pub(crate) fn rejected_tmf(itt: u32) -> [u8; BHS_LEN] {
    let mut h = [0u8; BHS_LEN];
    TaskMgmtRequest {
        immediate: true,
        function: TmfFunction::AbortTask,
        lun: 0,
        itt,
        referenced_task_tag: 0,
        cmd_sn: 1,
        exp_stat_sn: 1,
        ref_cmd_sn: 1,
        exp_data_sn: 0,
    }
    .emit(&mut h);
    h
}

/// Feeds `pdu` at `now_ms` (a Data-In's header first).
pub(crate) fn feed_at<'d>(
    e: &mut TestEngine,
    pdu: &Pdu,
    data: &'d [u8],
    now_ms: i64,
) -> Result<RxOutcome<'d, TestCmd>, super::error::SessionError> {
    if let Pdu::DataIn(d) = pdu {
        e.data_in_header(0, d)?;
    }
    e.on_pdu(0, pdu, data, now_ms)
}

/// Submits command `id` under `tag` on `lun` and sends it.
pub(crate) fn submit_lun(e: &mut TestEngine, tag: u16, lun: u64, dir: Dir, len: u32) -> Submitted {
    match e.submit(0, tag, TestCmd { id: u32::from(tag) }, lun, dir, len, 0) {
        Ok(s) => {
            send_command(e, tag, &s);
            s
        }
        Err(r) => panic!("submit refused: {r:?}"),
    }
}

/// Takes back every task (the connection failed); returns their ids.
pub(crate) fn take_all(e: &mut TestEngine) -> Vec<u32> {
    let mut ids = Vec::new();
    while let Some(t) = e.tasks.take_any() {
        ids.push(t.cmd.id);
    }
    ids.sort_unstable();
    ids
}

/// Opens the window to 64 commands past the next CmdSN (as a NOP-In would).
pub(crate) fn open_window(e: &mut TestEngine) {
    let (exp, max) = win(e);
    e.window(exp, max);
}
