//! The twelve `ktests/faultd` hostile-target scenarios (src/hostile/forge.rs)
//! as host tests of the core: the same forged PDUs, as bytes, through the
//! byte-level receiver (RxFramer with target opcodes only, then the engine),
//! with the outcome ktests/cases/53-hostile-target.sh expects: the connection
//! fails with the named violation (and after the reconnect the command is
//! retried and served), or the quirk is ridden through and the command
//! completes with exactly the bytes the target sent.

use super::wire::{encode, Got, Receiver, RxFail};
use super::*;
use crate::proto::bhs::{Bhs, Opcode};
use crate::proto::pdu::{ahs, ScsiResponseData};
use crate::proto::session::rx::{HostResult, CHECK_CONDITION};
use crate::proto::session::seq::Quirk;
use std::string::ToString;

/// Our MaxRecvDataSegmentLength (what the framer enforces).
const MRDSL: u32 = 8192;
/// The command the scenarios fire on: a 64 KiB read or write (dd bs=64k).
const EDTL: u32 = 65536;
/// forge.rs constants.
const STATSN_BACK: u32 = 5;
const EXPCMDSN_AHEAD: u32 = 1000;
const ABSURD_WINDOW: u32 = (1 << 31) + 5;
const SENSE_EXCESS: u16 = 100;
const AHS_CLAIMED_LEN: u16 = 100;
const UNKNOWN_OPCODE: u8 = 0x3a;
const FORGED_FILL: u8 = 0xee;

fn pattern(len: u32) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) >> 3) as u8).collect()
}

/// One session against the hostile target: engine, receiver, target StatSN.
struct Bench {
    e: TestEngine,
    rx: Receiver,
    stat_sn: u32,
    next_id: u32,
}

impl Bench {
    fn new() -> Self {
        Bench {
            e: engine(4),
            rx: Receiver::new(MRDSL, false, false),
            stat_sn: 1,
            next_id: 100,
        }
    }

    /// Submits a command under `tag` and registers its buffer.
    fn submit(&mut self, tag: u16, dir: Dir) -> Submitted {
        let id = self.next_id;
        self.next_id += 1;
        let s = match self.e.submit(0, tag, TestCmd { id }, 0, dir, EDTL, 0) {
            Ok(s) => {
                super::send_command(&mut self.e, tag, &s);
                s
            }
            Err(r) => panic!("refused {r:?}"),
        };
        self.rx.bufs.insert(id, super::wire::CmdBuf::new(EDTL));
        s
    }

    fn id_of(&self, tag: u16) -> u32 {
        self.e.tasks.peek(tag).map(|t| t.cmd.id).expect("task")
    }

    fn send(&mut self, wire: &[u8]) -> Result<Vec<Got>, RxFail> {
        self.rx.receive(&mut self.e, wire, 0)
    }

    fn take_stat_sn(&mut self) -> u32 {
        let s = self.stat_sn;
        self.stat_sn += 1;
        s
    }

    /// Correct Data-Ins for `itt` carrying `data` at MRDSL pieces, no status.
    fn data_ins(&self, itt: u32, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (sn, chunk) in data.chunks(MRDSL as usize).enumerate() {
            let off = sn as u32 * MRDSL;
            let Pdu::DataIn(d) = data_in(&self.e, itt, off, chunk.len() as u32, sn as u32, None, 0)
            else {
                unreachable!()
            };
            let mut h = [0u8; BHS_LEN];
            d.emit(&mut h);
            out.extend(encode(&h, &[], chunk, false, false));
        }
        out
    }

    /// A SCSI Response header for `itt` (GOOD) with the target's numbers.
    fn response_hdr(&mut self, itt: u32) -> [u8; BHS_LEN] {
        let stat = self.take_stat_sn();
        let mut h = [0u8; BHS_LEN];
        Pdu::ScsiResponse(resp_repr(&self.e, itt, 0, stat)).emit(&mut h);
        h
    }

    /// Serves a read correctly; the completion must be GOOD with the data.
    fn serve_read(&mut self, s: Submitted) {
        let id = self.id_of(s.itt.tag());
        let data = pattern(EDTL);
        let mut wire = self.data_ins(s.itt.get(), &data);
        let h = self.response_hdr(s.itt.get());
        wire.extend(encode(&h, &[], &[], false, false));
        let got = self.send(&wire).expect("served");
        let done = got.into_iter().find_map(|g| g.done).expect("completed");
        assert_eq!((done.id, done.host, done.resid), (id, HostResult::Ok, 0));
        assert_eq!(self.rx.bufs[&id].data, data);
    }

    /// Serves a write correctly (R2Ts for what immediate data left).
    fn serve_write(&mut self, s: Submitted) {
        let id = self.id_of(s.itt.tag());
        let mut off = self.e.params.max_xmit_data_segment_len.min(EDTL);
        let mut sn = 0;
        while off < EDTL {
            let len = (EDTL - off).min(self.e.params.max_burst_len);
            let Pdu::R2t(r) = r2t(&self.e, s.itt.get(), off, len, sn) else {
                unreachable!()
            };
            let mut h = [0u8; BHS_LEN];
            r.emit(&mut h);
            self.send(&encode(&h, &[], &[], false, false)).expect("R2T");
            assert!(self.e.lanes[0].jobs.pop().is_some());
            self.e.burst_sent(s.itt.tag(), s.seq, true);
            off += len;
            sn += 1;
        }
        let h = self.response_hdr(s.itt.get());
        let got = self
            .send(&encode(&h, &[], &[], false, false))
            .expect("served");
        let done = got.into_iter().find_map(|g| g.done).expect("completed");
        assert_eq!((done.id, done.host), (id, HostResult::Ok));
    }

    /// The connection failed with `f`: what the kernel does (ERL 0), then
    /// the retry of the command under `tag` on a new connection is served.
    fn recover_and_retry(&mut self, f: RxFail, tag: u16, dir: Dir) {
        assert!(!f.to_string().is_empty());
        let id = self.id_of(tag);
        self.e.connection_lost();
        let back = take_all(&mut self.e);
        assert_eq!(back, vec![id], "handed back exactly once");
        assert!(self.rx.outside.is_empty());
        let next = self.e.seq.next_cmd_sn().get();
        let w = CmdWindow::new(Sn(next), Sn(next + 31)).unwrap();
        let p = self.e.params;
        self.e
            .connection_replaced(lead(p, self.stat_sn), Sequencer::new(Sn(next), w), None, 0);
        self.rx.reset();
        let s = self.submit(tag, dir);
        match dir {
            Dir::Write => self.serve_write(s),
            _ => self.serve_read(s),
        }
    }
}

/// A forged Data-In (forge.rs `forged_data_in`): F set, no status, DataSN 0.
fn forged_data_in(e: &TestEngine, itt: u32, offset: u32, len: u32) -> Vec<u8> {
    let mut d = data_in_repr(e, itt, offset, len, 0, None, 0);
    d.final_bit = true;
    let mut h = [0u8; BHS_LEN];
    d.emit(&mut h);
    encode(&h, &[], &vec![FORGED_FILL; len as usize], false, false)
}

fn forged_r2t(e: &TestEngine, itt: u32, offset: u32, len: u32) -> Vec<u8> {
    let mut h = [0u8; BHS_LEN];
    r2t(e, itt, offset, len, 0).emit(&mut h);
    encode(&h, &[], &[], false, false)
}

/// The scenarios that fail the connection: the log text must match the
/// guest case's pattern, and the command comes back once and is retried.
fn expect_fail(b: &mut Bench, wire: &[u8], tag: u16, dir: Dir, want: &[&str]) {
    let f = b.send(wire).expect_err("the connection must fail");
    let line = f.to_string();
    assert!(
        want.iter().any(|w| line.contains(w)),
        "{line:?} names none of {want:?}"
    );
    b.recover_and_retry(f, tag, dir);
}

#[test]
fn hostile_dsl_too_long() {
    let mut b = Bench::new();
    let s = b.submit(0, Dir::Read);
    let mut w = forged_data_in(&b.e, s.itt.get(), 0, MRDSL + 512);
    // The real data where the disk has a say, as forge.rs does.
    w[BHS_LEN..BHS_LEN + 100].copy_from_slice(&pattern(100));
    let f = b.send(&w).expect_err("fails");
    assert!(matches!(
        f,
        RxFail::Framing(crate::proto::framing::FramingError::DataSegmentTooLong { .. })
    ));
    assert!(f.to_string().starts_with("framing violation"));
    // Nothing of the oversized segment reached the buffer.
    assert!(b.rx.bufs.values().all(|c| c.delivered.is_empty()));
    b.recover_and_retry(f, 0, Dir::Read);
}

#[test]
fn hostile_datain_offset() {
    let mut b = Bench::new();
    let s = b.submit(0, Dir::Read);
    let w = forged_data_in(&b.e, s.itt.get(), EDTL + 4096, 512);
    expect_fail(&mut b, &w, 0, Dir::Read, &["at offset"]);
}

#[test]
fn hostile_datain_overrun() {
    let mut b = Bench::new();
    let s = b.submit(0, Dir::Read);
    let small = MRDSL.clamp(512, 1024);
    let w = forged_data_in(&b.e, s.itt.get(), EDTL - small / 2, small);
    expect_fail(&mut b, &w, 0, Dir::Read, &["beyond the", "at offset"]);
}

#[test]
fn hostile_datain_overrun_after_in_order_data_is_beyond_the_buffer() {
    // The same overrun with every byte before it delivered: now the offset
    // is the next one and only the buffer's end is crossed.
    let mut b = Bench::new();
    let s = b.submit(0, Dir::Read);
    let small = MRDSL.clamp(512, 1024);
    let at = EDTL - small / 2;
    let mut w = b.data_ins(s.itt.get(), &pattern(at));
    let sn = at.div_ceil(MRDSL);
    let mut d = data_in_repr(&b.e, s.itt.get(), at, small, sn, None, 0);
    d.final_bit = true;
    let mut h = [0u8; BHS_LEN];
    d.emit(&mut h);
    w.extend(encode(
        &h,
        &[],
        &vec![FORGED_FILL; small as usize],
        false,
        false,
    ));
    let f = b.send(&w).expect_err("fails");
    assert!(f.to_string().contains("beyond the"), "{f}");
    // Not one forged byte landed.
    let id = b.id_of(0);
    assert_eq!(
        &b.rx.bufs[&id].data[at as usize..],
        &vec![0u8; (EDTL - at) as usize][..]
    );
    assert!(b.rx.bufs[&id].covered(at));
    assert!(!b.rx.bufs[&id].covered(at + 1));
    b.recover_and_retry(f, 0, Dir::Read);
}

#[test]
fn hostile_datain_unknown_itt() {
    let mut b = Bench::new();
    b.submit(0, Dir::Read);
    let w = forged_data_in(&b.e, 0x7ead_0001, 0, 512);
    expect_fail(&mut b, &w, 0, Dir::Read, &["Data-In for unknown ITT"]);
}

#[test]
fn hostile_r2t_beyond() {
    let mut b = Bench::new();
    let s = b.submit(0, Dir::Write);
    let len = EDTL.min(b.e.params.max_burst_len).max(512);
    let w = forged_r2t(&b.e, s.itt.get(), EDTL - len / 2, len);
    expect_fail(&mut b, &w, 0, Dir::Write, &["asks for"]);
    assert!(b.e.lanes[0].jobs.is_empty());
}

#[test]
fn hostile_r2t_zero() {
    let mut b = Bench::new();
    let s = b.submit(0, Dir::Write);
    let w = forged_r2t(&b.e, s.itt.get(), 0, 0);
    expect_fail(&mut b, &w, 0, Dir::Write, &["asks for 0 bytes"]);
}

/// The correct data, then a GOOD response patched by `lie`: the frame of
/// the sequence-number scenarios. Returns the completion and the quirk.
fn data_then_lying_response(lie: impl FnOnce(&mut ScsiResponse)) -> (super::wire::Done, Quirk) {
    let mut b = Bench::new();
    let s = b.submit(0, Dir::Read);
    let id = b.id_of(0);
    let data = pattern(EDTL);
    let mut w = b.data_ins(s.itt.get(), &data);
    let stat = b.take_stat_sn();
    let mut r = resp_repr(&b.e, s.itt.get(), 0, stat);
    lie(&mut r);
    let mut h = [0u8; BHS_LEN];
    Pdu::ScsiResponse(r).emit(&mut h);
    w.extend(encode(&h, &[], &[], false, false));
    let got = b.send(&w).expect("a quirk, not a failure");
    let done = got.into_iter().find_map(|g| g.done).expect("completed");
    assert_eq!(done.id, id);
    assert_eq!(b.rx.bufs[&id].data, data);
    let q = b.e.take_quirk().expect("a quirk");
    assert_eq!(b.e.take_quirk(), None, "logged once");
    // The session carries on: the next read is served.
    let s = b.submit(1, Dir::Read);
    b.serve_read(s);
    (done, q)
}

#[test]
fn hostile_statsn_backwards() {
    // Earlier status-bearing PDUs so that going back is possible.
    let (done, q) = data_then_lying_response(|r| r.stat_sn = r.stat_sn.wrapping_sub(STATSN_BACK));
    assert_eq!((done.host, done.resid), (HostResult::Ok, 0));
    let line = q.to_string();
    assert!(matches!(q, Quirk::StatSnBack { .. }), "{line}");
    assert!(line.contains("repeats or goes back (expected"));
}

#[test]
fn hostile_expcmdsn_ahead() {
    let (done, q) = data_then_lying_response(|r| {
        let window = r.max_cmd_sn.wrapping_sub(r.exp_cmd_sn);
        r.exp_cmd_sn = r.exp_cmd_sn.wrapping_add(EXPCMDSN_AHEAD);
        r.max_cmd_sn = r.exp_cmd_sn.wrapping_add(window);
    });
    assert_eq!(done.host, HostResult::Ok);
    assert!(matches!(q, Quirk::ExpCmdSnAhead { .. }));
    assert!(q.to_string().contains("beyond the next CmdSN"));
}

#[test]
fn hostile_window_absurd() {
    let (done, q) =
        data_then_lying_response(|r| r.max_cmd_sn = r.exp_cmd_sn.wrapping_add(ABSURD_WINDOW));
    assert_eq!(done.host, HostResult::Ok);
    assert!(matches!(q, Quirk::BadWindow { .. }));
    assert!(q.to_string().starts_with("invalid command window ExpCmdSN"));
}

#[test]
fn hostile_sense_overflow() {
    let mut b = Bench::new();
    let s = b.submit(0, Dir::Read);
    let id = b.id_of(0);
    let sense = [
        0x70u8, 0, 3, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x11, 0, 0, 0, 0, 0,
    ];
    let mut seg = vec![0u8; 2 + sense.len()];
    let n = ScsiResponseData {
        sense: &sense,
        response_data: &[],
    }
    .emit(&mut seg)
    .unwrap();
    seg.truncate(n);
    let claimed = (seg.len() as u16 - 2).saturating_add(SENSE_EXCESS);
    seg[..2].copy_from_slice(&claimed.to_be_bytes());
    let stat = b.take_stat_sn();
    let mut r = resp_repr(&b.e, s.itt.get(), CHECK_CONDITION, stat);
    r.data_segment_len = seg.len() as u32;
    let mut h = [0u8; BHS_LEN];
    Pdu::ScsiResponse(r).emit(&mut h);
    let got = b.send(&encode(&h, &[], &seg, false, false)).expect("quirk");
    let done = got.into_iter().find_map(|g| g.done).expect("fails alone");
    assert_eq!(
        (done.id, done.host, done.resid),
        (id, HostResult::Error, EDTL)
    );
    let q = b.e.take_quirk().expect("quirk");
    assert!(
        q.to_string().contains("exceeds the 18-byte data segment"),
        "{q}"
    );
    // The midlayer's retry is served on the same connection.
    let s = b.submit(0, Dir::Read);
    b.serve_read(s);
}

#[test]
fn hostile_ahs_overflow() {
    let mut b = Bench::new();
    let s = b.submit(0, Dir::Read);
    let mut w = b.data_ins(s.itt.get(), &pattern(EDTL));
    let mut h = b.response_hdr(s.itt.get());
    let mut area = vec![0u8; ahs::BIDI_READ_LEN_AHS_LEN];
    let n = ahs::emit_bidi_read_len(EDTL, &mut area).unwrap();
    area.truncate(n);
    Bhs::from_array_mut(&mut h).set_total_ahs_len(area.len());
    area[..2].copy_from_slice(&AHS_CLAIMED_LEN.to_be_bytes());
    w.extend(encode(&h, &area, &[], false, false));
    let f = b.send(&w).expect_err("fails");
    assert!(matches!(f, RxFail::Framing(_)), "{f}");
    assert!(f.to_string().starts_with("framing violation"));
    // The data before it was placed, but the command never completed.
    assert_eq!(b.e.tasks.in_flight(), 1);
    b.recover_and_retry(f, 0, Dir::Read);
}

#[test]
fn hostile_unknown_opcode() {
    let mut b = Bench::new();
    let s = b.submit(0, Dir::Read);
    let mut h = [0u8; BHS_LEN];
    nop_in(&b.e, s.itt.get(), u32::MAX, b.stat_sn).emit(&mut h);
    Bhs::from_array_mut(&mut h).set_opcode(Opcode::Unknown(UNKNOWN_OPCODE), false);
    let w = encode(&h, &[], &[], false, false);
    expect_fail(
        &mut b,
        &w,
        0,
        Dir::Read,
        &["framing violation", "unexpected PDU opcode"],
    );
}

#[test]
fn hostile_initiator_opcode_is_a_framing_violation() {
    // Not a faultd scenario, its sibling: a target sending an initiator PDU
    // (opcode 0x01) fails framing, never reaching the engine.
    let mut b = Bench::new();
    let s = b.submit(0, Dir::Read);
    let h = rejected_cmd(s.itt.get());
    let f = b.send(&encode(&h, &[], &[], false, false)).unwrap_err();
    assert!(matches!(
        f,
        RxFail::Framing(crate::proto::framing::FramingError::OpcodeNotAllowed { opcode: 1 })
    ));
    b.recover_and_retry(f, 0, Dir::Read);
}

#[test]
fn good_target_serves_reads_and_writes_with_digests() {
    let mut b = Bench::new();
    b.rx = Receiver::new(MRDSL, true, true);
    for tag in 0..4u16 {
        let s = b.submit(tag, Dir::Read);
        let data = pattern(EDTL);
        let mut w = Vec::new();
        for (sn, chunk) in data.chunks(MRDSL as usize).enumerate() {
            let mut h = [0u8; BHS_LEN];
            data_in(
                &b.e,
                s.itt.get(),
                sn as u32 * MRDSL,
                chunk.len() as u32,
                sn as u32,
                None,
                0,
            )
            .emit(&mut h);
            w.extend(encode(&h, &[], chunk, true, true));
        }
        let h = b.response_hdr(s.itt.get());
        w.extend(encode(&h, &[], &[], true, true));
        // Byte by byte: the framer's every stage boundary is crossed.
        let mut done = None;
        for byte in w.chunks(1) {
            for g in b.send(byte).expect("good") {
                done = done.or(g.done);
            }
        }
        let id = done.expect("completed").id;
        assert_eq!(b.rx.bufs[&id].data, data);
    }
}
