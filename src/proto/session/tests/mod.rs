//! Host tests of the whole engine: a command handle that records what the
//! engine did to it, storage in `Vec`s, and target PDUs built with the
//! proto's own emitters and parsed back (so every test goes through the wire
//! format the kernel sees).

extern crate std;

use std::vec;
use std::vec::Vec;

use super::super::bhs::BHS_LEN;
use super::super::negotiate::SessionParams;
use super::super::pdu::{DataIn, NopIn, Pdu, R2t, ScsiResponse, RESPONSE_COMPLETED};
use super::super::serial::{CmdWindow, Sn};
use super::aborted;
use super::engine::{Engine, Parts, Storage, Submitted};
use super::rx::{Completion, Placement, RxOutcome};
use super::seq::Sequencer;
use super::task::{Dir, Slot};
use super::tx::TxJob;

mod engine_rx;

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
        jobs: vec![None; jobs],
        ctl_jobs: vec![None; 64],
    };
    let window = CmdWindow::new(Sn(1), Sn(depth as u32)).expect("valid window");
    Engine::new(parts, p, 1, Sequencer::new(Sn(1), window, Sn(1)), 0)
}

pub(crate) fn engine(depth: usize) -> TestEngine {
    engine_with(depth, params())
}

/// Submits command `id` under tag `tag`.
pub(crate) fn submit(e: &mut TestEngine, tag: u16, dir: Dir, len: u32) -> Submitted {
    match e.submit(tag, TestCmd { id: u32::from(tag) }, 0, dir, len, 0) {
        Ok(s) => s,
        Err(r) => panic!("submit refused: {r:?}"),
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
        stat_sn: e.seq.exp_stat_sn().get(),
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
        e.data_in_header(d)?;
    }
    e.on_pdu(pdu, data, 0)
}

/// The completion in `out`, which must be there.
pub(crate) fn completed<'d>(out: RxOutcome<'d, TestCmd>) -> Completion<'d, TestCmd> {
    out.complete.expect("a completion")
}

pub(crate) fn placement(e: &mut TestEngine, pdu: &Pdu) -> Placement {
    match pdu {
        Pdu::DataIn(d) => e.data_in_header(d).expect("header accepted"),
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
