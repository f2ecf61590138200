//! Property tests of the engine against a model target: random reads, writes
//! and no-data commands served correctly (Data-In cut at random segment
//! sizes, phase collapse or a SCSI Response, R2Ts within MaxBurstLength and
//! MaxOutstandingR2T, NOP-In pings, window updates), then, for the mutated
//! runs, the target's PDUs dropped, duplicated, reordered, their ITTs swapped,
//! fields bumped or randomised. Everything goes as bytes through the
//! byte-level receiver (`wire.rs`), as in the kernel. Checked on every step:
//! no panic, no byte outside a command's buffer, no command completed twice,
//! no GOOD completion claiming bytes no Data-In delivered, every failure
//! named; after a failure the connection is lost and everything comes back,
//! so each command completes exactly once. Unmutated runs complete every
//! command with the right bytes and no error.

use std::collections::BTreeSet;
use std::format;
use std::string::ToString;

use proptest::prelude::*;

use super::wire::{encode, Done, Receiver, RxFail};
use super::*;
use crate::proto::session::engine::Refused;
use crate::proto::session::rx::HostResult;
use crate::proto::session::tx::{Burst, CommandPlan};

/// xorshift64*: the model's own randomness, seeded by proptest.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// In `lo..=hi`.
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next() % (u64::from(hi - lo) + 1)) as u32
    }
    fn chance(&mut self, percent: u32) -> bool {
        self.range(0, 99) < percent
    }
}

/// The byte the target holds at `off` for command `id`.
fn byte(id: u32, off: u32) -> u8 {
    (id.wrapping_mul(131) ^ off.wrapping_mul(7) ^ (off >> 8)) as u8
}

/// One step of the target's stream.
#[derive(Debug, Clone)]
enum Step {
    /// A PDU: header, data segment, and whether it takes a StatSN.
    Pdu([u8; BHS_LEN], Vec<u8>, bool),
    /// The initiator sends everything queued (the target waits for the
    /// Data-Out of its R2Ts here).
    DrainTx,
}

#[derive(Debug, Clone, Copy)]
struct Cfg {
    depth: u16,
    mrdsl: u32,
    max_burst: u32,
    max_out: u16,
    immediate: bool,
    initial_r2t: bool,
    hd: bool,
    dd: bool,
}

fn cfg() -> impl Strategy<Value = Cfg> {
    (
        1u16..=8,
        prop::sample::select(vec![512u32, 1024, 4096, 8192]),
        prop::sample::select(vec![512u32, 4096, 16384, 65536]),
        1u16..=4,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(depth, mrdsl, max_burst, max_out, immediate, initial_r2t, hd, dd)| Cfg {
                depth,
                mrdsl,
                max_burst,
                max_out,
                immediate,
                initial_r2t,
                hd,
                dd,
            },
        )
}

fn session_params(c: &Cfg) -> SessionParams {
    SessionParams {
        max_recv_data_segment_len: c.mrdsl,
        max_xmit_data_segment_len: c.mrdsl,
        max_burst_len: c.max_burst,
        first_burst_len: c.max_burst.min(65536),
        max_outstanding_r2t: c.max_out,
        immediate_data: c.immediate,
        initial_r2t: c.initial_r2t,
        ..params()
    }
}

/// A command of the run.
#[derive(Debug, Clone, Copy)]
struct Sent {
    id: u32,
    itt: u32,
    dir: Dir,
    len: u32,
}

/// The PDUs serving each command correctly, in per-command order.
fn serve(c: &Cfg, p: &SessionParams, s: &Sent, rng: &mut Rng) -> Vec<Step> {
    let mut v = Vec::new();
    let mut h = [0u8; BHS_LEN];
    let status_pdu = |v: &mut Vec<Step>, r: ScsiResponse| {
        let mut h = [0u8; BHS_LEN];
        Pdu::ScsiResponse(r).emit(&mut h);
        v.push(Step::Pdu(h, Vec::new(), true));
    };
    let good = ScsiResponse {
        bidi_overflow: false,
        bidi_underflow: false,
        overflow: false,
        underflow: false,
        response: crate::proto::pdu::RESPONSE_COMPLETED,
        status: 0,
        data_segment_len: 0,
        itt: s.itt,
        snack_tag: 0,
        stat_sn: 0,
        exp_cmd_sn: 0,
        max_cmd_sn: 0,
        exp_data_sn: 0,
        bidi_read_residual_count: 0,
        residual_count: 0,
    };
    match s.dir {
        Dir::Read => {
            let collapse = rng.chance(50) && s.len > 0;
            let mut off = 0;
            let mut sn = 0;
            while off < s.len {
                let n = rng.range(1, c.mrdsl).min(s.len - off);
                let last = off + n == s.len;
                let st = (last && collapse).then_some(0);
                DataIn {
                    final_bit: st.is_some() || rng.chance(20),
                    ack: false,
                    overflow: false,
                    underflow: false,
                    status: st,
                    lun: 0,
                    itt: s.itt,
                    ttt: u32::MAX,
                    stat_sn: 0,
                    exp_cmd_sn: 0,
                    max_cmd_sn: 0,
                    data_sn: sn,
                    buffer_offset: off,
                    residual_count: 0,
                    data_segment_len: n,
                }
                .emit(&mut h);
                let data = (off..off + n).map(|o| byte(s.id, o)).collect();
                v.push(Step::Pdu(h, data, st.is_some()));
                off += n;
                sn += 1;
            }
            if !collapse {
                status_pdu(&mut v, good);
            }
        }
        Dir::Write => {
            let plan = CommandPlan::new(p, Dir::Write, s.len, 1 << 18);
            let mut off = plan.unsolicited_end;
            let mut sn = 0;
            while off < s.len {
                for _ in 0..rng.range(1, u32::from(c.max_out)) {
                    if off >= s.len {
                        break;
                    }
                    let n = rng.range(1, c.max_burst).min(s.len - off);
                    R2t {
                        lun: 0,
                        itt: s.itt,
                        ttt: 0x1000 + sn,
                        stat_sn: 0,
                        exp_cmd_sn: 0,
                        max_cmd_sn: 0,
                        r2t_sn: sn,
                        buffer_offset: off,
                        desired_data_len: n,
                    }
                    .emit(&mut h);
                    v.push(Step::Pdu(h, Vec::new(), false));
                    off += n;
                    sn += 1;
                }
                v.push(Step::DrainTx);
            }
            status_pdu(&mut v, good);
        }
        Dir::None => status_pdu(&mut v, good),
    }
    v
}

/// A NOP-In: a ping wanting an answer (`ttt` set), a window update, or the
/// answer to our ping (`itt` set, takes a StatSN).
fn nop(itt: u32, ttt: u32) -> Step {
    let mut h = [0u8; BHS_LEN];
    NopIn {
        lun: 0,
        itt,
        ttt,
        stat_sn: 0,
        exp_cmd_sn: 0,
        max_cmd_sn: 0,
        data_segment_len: 0,
    }
    .emit(&mut h);
    Step::Pdu(h, Vec::new(), itt != u32::MAX)
}

fn put32(h: &mut [u8; BHS_LEN], at: usize, v: u32) {
    h[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn get32(h: &[u8; BHS_LEN], at: usize) -> u32 {
    u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]])
}

/// Interleaves the per-command lists at random (each keeps its order), adds
/// target pings, and numbers every PDU: StatSN in stream order, the window
/// open 64 past everything sent.
fn merge(
    mut lists: Vec<Vec<Step>>,
    extra: Vec<Step>,
    next_cmd_sn: u32,
    stat_sn: &mut u32,
    rng: &mut Rng,
) -> Vec<Step> {
    lists.extend(extra.into_iter().map(|s| vec![s, Step::DrainTx]));
    let mut out = Vec::new();
    let mut at: Vec<usize> = vec![0; lists.len()];
    loop {
        let open: Vec<usize> = (0..lists.len())
            .filter(|&i| at[i] < lists[i].len())
            .collect();
        if open.is_empty() {
            break;
        }
        let i = open[rng.range(0, open.len() as u32 - 1) as usize];
        let mut step = lists[i][at[i]].clone();
        at[i] += 1;
        if let Step::Pdu(h, _, takes) = &mut step {
            put32(h, 24, *stat_sn);
            if *takes {
                *stat_sn = stat_sn.wrapping_add(1);
            }
            put32(h, 28, next_cmd_sn);
            put32(h, 32, next_cmd_sn.wrapping_add(63));
        }
        out.push(step);
    }
    out
}

/// Field offsets worth mutating: opcode/flags, TotalAHSLength and
/// DataSegmentLength, ITT, TTT, StatSN, ExpCmdSN, MaxCmdSN, DataSN/R2TSN,
/// BufferOffset, length/residual.
const FIELDS: [usize; 10] = [0, 4, 16, 20, 24, 28, 32, 36, 40, 44];

fn mutate(steps: &mut Vec<Step>, rng: &mut Rng, ops: u32) {
    for _ in 0..ops {
        if steps.is_empty() {
            return;
        }
        let n = steps.len() as u32;
        let i = rng.range(0, n - 1) as usize;
        let j = rng.range(0, n - 1) as usize;
        match rng.range(0, 9) {
            0 => {
                steps.remove(i);
            }
            1 => {
                let s = steps[i].clone();
                steps.insert(j, s);
            }
            2 => steps.swap(i, j),
            3 => {
                let s = steps.remove(i);
                steps.insert(j.min(steps.len()), s);
            }
            4 => {
                // Swap ITTs.
                if let (Step::Pdu(a, ..), Step::Pdu(b, ..)) = (steps[i].clone(), steps[j].clone()) {
                    if let Step::Pdu(h, ..) = &mut steps[i] {
                        put32(h, 16, get32(&b, 16));
                    }
                    if let Step::Pdu(h, ..) = &mut steps[j] {
                        put32(h, 16, get32(&a, 16));
                    }
                }
            }
            5 | 6 => {
                // Bump a field by a little.
                if let Step::Pdu(h, ..) = &mut steps[i] {
                    let at = FIELDS[rng.range(2, FIELDS.len() as u32 - 1) as usize];
                    let d = rng.range(1, 600);
                    let v = get32(h, at);
                    put32(
                        h,
                        at,
                        if rng.chance(50) {
                            v.wrapping_add(d)
                        } else {
                            v.wrapping_sub(d)
                        },
                    );
                }
            }
            7 => {
                // Randomise a field.
                if let Step::Pdu(h, ..) = &mut steps[i] {
                    let at = FIELDS[rng.range(2, FIELDS.len() as u32 - 1) as usize];
                    put32(h, at, rng.next() as u32);
                }
            }
            8 => {
                // Flags, opcode or a length byte.
                if let Step::Pdu(h, d, _) = &mut steps[i] {
                    match rng.range(0, 3) {
                        0 => h[0] = 0x20 | (rng.next() as u8 & 0x1f),
                        1 => h[1] = rng.next() as u8,
                        2 => {
                            // DataSegmentLength, the data following suit.
                            let len = rng.range(0, 9000);
                            h[5..8].copy_from_slice(&len.to_be_bytes()[1..]);
                            d.resize(len as usize, 0x5a);
                        }
                        _ => h[4] = rng.range(0, 3) as u8,
                    }
                }
            }
            _ => {
                // Any byte of any header.
                if let Step::Pdu(h, ..) = &mut steps[i] {
                    let at = rng.range(0, BHS_LEN as u32 - 1) as usize;
                    h[at] = rng.next() as u8;
                }
            }
        }
    }
}

/// The run's bookkeeping and the checks made on every step.
struct Run {
    e: TestEngine,
    rx: Receiver,
    cfg: Cfg,
    sent: Vec<Sent>,
    done: BTreeSet<u32>,
    next_id: u32,
    stat_sn: u32,
    errors: u32,
    /// A correct target: every completion must be GOOD with nothing missing.
    strict: bool,
    /// GOOD completions seen.
    good: u32,
    /// The kinds of failure seen.
    kinds: BTreeSet<std::string::String>,
}

impl Run {
    fn new(cfg: Cfg) -> Self {
        Run {
            e: engine_with(usize::from(cfg.depth), session_params(&cfg)),
            rx: Receiver::new(cfg.mrdsl, cfg.hd, cfg.dd),
            cfg,
            sent: Vec::new(),
            done: BTreeSet::new(),
            next_id: 1,
            stat_sn: 1,
            errors: 0,
            strict: false,
            good: 0,
            kinds: BTreeSet::new(),
        }
    }

    fn sent(&self, id: u32) -> Sent {
        *self
            .sent
            .iter()
            .find(|s| s.id == id)
            .expect("a command of the run")
    }

    /// Marks `id` completed, once.
    fn finish(&mut self, id: u32) {
        assert!(self.done.insert(id), "command {id} completed twice");
    }

    fn check_done(&mut self, d: &Done) {
        self.finish(d.id);
        let s = self.sent(d.id);
        if self.strict {
            assert_eq!((d.host, d.status, d.resid), (HostResult::Ok, 0, 0));
        }
        if d.host == HostResult::Ok {
            self.good += 1;
            assert!(d.resid <= s.len, "resid {} of {}", d.resid, s.len);
            if s.dir == Dir::Read {
                let claimed = s.len - d.resid;
                assert!(
                    self.rx.bufs[&d.id].covered(claimed),
                    "command {} claims {claimed} bytes; delivered {:?}",
                    d.id,
                    self.rx.bufs[&d.id].delivered
                );
            }
        }
    }

    /// The transmitter sends every queued job; Data-Out jobs are checked
    /// against their task and cut into pieces.
    fn drain_tx(&mut self) {
        while self.e.lanes[0].ctl_jobs.pop().is_some() {}
        while let Some(j) = self.e.lanes[0].jobs.pop() {
            if let TxJob::DataOut {
                tag,
                seq,
                offset,
                len,
                ..
            } = j
            {
                let Some(t) = self.e.tasks.get(tag, seq) else {
                    continue;
                };
                assert_eq!(t.dir, Dir::Write);
                assert!(u64::from(offset) + u64::from(len) <= u64::from(t.len));
                let mut b = Burst::new(offset, len);
                let mut at = offset;
                while let Some(piece) = b.next_piece(self.e.params.max_xmit_data_segment_len) {
                    assert_eq!(piece.offset, at);
                    at += piece.len;
                }
                assert_eq!(at, offset + len);
                self.e.burst_sent(tag, seq, true);
            }
        }
    }

    /// Submits up to the depth's worth of random commands.
    fn submit_batch(&mut self, rng: &mut Rng) -> Vec<Sent> {
        let mut batch = Vec::new();
        for tag in 0..self.cfg.depth {
            if !self.e.tasks.is_free(tag) || rng.chance(20) {
                continue;
            }
            let dir = match rng.range(0, 2) {
                0 => Dir::Read,
                1 => Dir::Write,
                _ => Dir::None,
            };
            let len = match dir {
                Dir::None => 0,
                _ => match rng.range(0, 3) {
                    0 => rng.range(1, 600),
                    1 => rng.range(1, 20_000),
                    _ => rng.range(1, 150_000),
                },
            };
            let id = self.next_id;
            match self.e.submit(0, tag, TestCmd { id }, 0, dir, len, 0) {
                Ok(sub) => {
                    super::send_command(&mut self.e, tag, &sub);
                    self.next_id += 1;
                    let s = Sent {
                        id,
                        itt: sub.itt.get(),
                        dir,
                        len,
                    };
                    self.rx.bufs.insert(id, super::wire::CmdBuf::new(len));
                    self.sent.push(s);
                    batch.push(s);
                }
                Err(Refused::NoCredit(_)) => break,
                Err(r) => panic!("refused {r:?}"),
            }
        }
        batch
    }

    /// Feeds the steps; returns the failure that ended the connection.
    fn feed(&mut self, steps: &[Step], rng: &mut Rng) -> Option<RxFail> {
        for step in steps {
            match step {
                Step::DrainTx => self.drain_tx(),
                Step::Pdu(h, data, _) => {
                    let wire = encode(h, &[], data, self.cfg.hd, self.cfg.dd);
                    // Random chunking: the framer's every boundary.
                    let mut rest = &wire[..];
                    while !rest.is_empty() {
                        let n = (rng.range(1, 2 * BHS_LEN as u32) as usize).min(rest.len());
                        let r = self.rx.receive(&mut self.e, &rest[..n], 0);
                        assert!(self.rx.outside.is_empty(), "{:?}", self.rx.outside);
                        match r {
                            Ok(got) => {
                                for g in got {
                                    if let Some(d) = g.done {
                                        self.check_done(&d);
                                    }
                                }
                            }
                            Err(f) => return Some(f),
                        }
                        rest = &rest[n..];
                    }
                }
            }
            assert_eq!(
                self.e.tasks.in_flight() as usize,
                self.sent.len() - self.done.len()
            );
        }
        None
    }

    /// ERL 0 after a failure: everything in flight comes back (once), then a
    /// new connection.
    fn recover(&mut self, f: RxFail) {
        let line = f.to_string();
        assert!(line.len() > "protocol violation: ".len(), "{line:?}");
        if let RxFail::Session(e) = f {
            assert!(!e.to_string().is_empty());
            assert!(!format!("{e:?}").is_empty());
        }
        self.errors += 1;
        self.kinds.insert(match f {
            RxFail::Framing(x) => format!("{x:?}")
                .split([' ', '{', '('])
                .next()
                .unwrap_or("")
                .to_string(),
            RxFail::Session(x) => format!("{x:?}")
                .split([' ', '{', '('])
                .next()
                .unwrap_or("")
                .to_string(),
        });
        self.e.connection_lost();
        for id in take_all(&mut self.e) {
            self.finish(id);
        }
        let next = self.e.seq.next_cmd_sn().get();
        let w = CmdWindow::new(Sn(next), Sn(next.wrapping_add(63))).unwrap();
        let p = self.e.params;
        self.e
            .connection_replaced(lead(p, self.stat_sn), Sequencer::new(Sn(next), w), None, 0);
        self.rx.reset();
    }

    /// A round: a batch, the target's answer (mutated `ops` times), the checks.
    fn round(&mut self, rng: &mut Rng, ops: u32) {
        let batch = self.submit_batch(rng);
        let p = self.e.params;
        let lists: Vec<Vec<Step>> = batch.iter().map(|s| serve(&self.cfg, &p, s, rng)).collect();
        let mut extra = Vec::new();
        for _ in 0..rng.range(0, 3) {
            extra.push(nop(u32::MAX, if rng.chance(50) { 0x77 } else { u32::MAX }));
        }
        if rng.chance(30) && self.e.start_ping(0, 0) == PingStart::Queued {
            extra.push(nop(self.e.ping_itt(0).get(), u32::MAX));
        }
        let next = self.e.seq.next_cmd_sn().get();
        let mut steps = merge(lists, extra, next, &mut self.stat_sn, rng);
        mutate(&mut steps, rng, ops);
        if let Some(f) = self.feed(&steps, rng) {
            self.recover(f);
        }
        // Whatever is left (responses dropped) EH takes back.
        while let Some(t) = self.e.take_back_where(|_| true) {
            self.finish(t.cmd.id);
        }
        self.e.lanes[0].ping_sent_ms = None;
        self.drain_tx();
    }

    fn all_done_once(&self) {
        let ids: BTreeSet<u32> = self.sent.iter().map(|s| s.id).collect();
        assert_eq!(ids, self.done);
        assert_eq!(self.e.tasks.in_flight(), 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn unmutated_streams_complete_every_command_with_the_right_data(
        c in cfg(), seed in any::<u64>(), rounds in 1u32..4,
    ) {
        let mut rng = Rng(seed | 1);
        let mut run = Run::new(c);
        run.strict = true;
        for _ in 0..rounds {
            let batch = run.submit_batch(&mut rng);
            let p = run.e.params;
            let lists = batch.iter().map(|s| serve(&run.cfg, &p, s, &mut rng)).collect();
            let mut extra = vec![nop(u32::MAX, 0x55), nop(u32::MAX, u32::MAX)];
            if run.e.start_ping(0, 0) == PingStart::Queued {
                extra.push(nop(run.e.ping_itt(0).get(), u32::MAX));
            }
            let next = run.e.seq.next_cmd_sn().get();
            let steps = merge(lists, extra, next, &mut run.stat_sn, &mut rng);
            if let Some(f) = run.feed(&steps, &mut rng) {
                prop_assert!(false, "a correct target failed the connection: {}", f);
            }
            for s in &batch {
                prop_assert!(run.done.contains(&s.id), "command {} never completed", s.id);
                if s.dir == Dir::Read {
                    let want: Vec<u8> = (0..s.len).map(|o| byte(s.id, o)).collect();
                    prop_assert_eq!(&run.rx.bufs[&s.id].data, &want);
                }
            }
            prop_assert!(run.e.lanes[0].ping_sent_ms.is_none());
            prop_assert_eq!(run.e.take_quirk(), None);
            run.drain_tx();
        }
        run.all_done_once();
        prop_assert_eq!(run.errors, 0);
    }

    #[test]
    fn mutated_streams_keep_every_invariant(
        c in cfg(), seed in any::<u64>(), rounds in 1u32..4, ops in 1u32..8,
    ) {
        let mut rng = Rng(seed | 1);
        let mut run = Run::new(c);
        for _ in 0..rounds {
            run.round(&mut rng, ops);
        }
        run.all_done_once();
    }

    #[test]
    fn one_mutation_keeps_every_invariant(c in cfg(), seed in any::<u64>()) {
        let mut rng = Rng(seed | 1);
        let mut run = Run::new(c);
        run.round(&mut rng, 1);
        run.round(&mut rng, 0);
        run.all_done_once();
    }

    #[test]
    fn heavy_mutation_keeps_every_invariant(c in cfg(), seed in any::<u64>()) {
        let mut rng = Rng(seed | 1);
        let mut run = Run::new(c);
        for _ in 0..3 {
            run.round(&mut rng, 40);
        }
        run.all_done_once();
    }
}

#[test]
fn good_completions_are_checked_against_good_results() {
    // The harness itself: a GOOD read claiming undelivered bytes is caught.
    let mut run = Run::new(Cfg {
        depth: 1,
        mrdsl: 8192,
        max_burst: 65536,
        max_out: 1,
        immediate: true,
        initial_r2t: true,
        hd: false,
        dd: false,
    });
    let mut rng = Rng(7);
    run.sent.push(Sent {
        id: 99,
        itt: 0,
        dir: Dir::Read,
        len: 10,
    });
    run.rx.bufs.insert(99, super::wire::CmdBuf::new(10));
    let d = Done {
        id: 99,
        host: HostResult::Ok,
        status: 0,
        resid: 0,
        sense: Vec::new(),
    };
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.check_done(&d)));
    assert!(caught.is_err());
    let _ = rng.next();
}

#[test]
fn the_mutated_runs_have_teeth() {
    // Over a fixed set of seeds the mutations must both fail connections
    // (with many different violations) and let commands complete GOOD, or
    // the properties above would check nothing.
    let mut errors = 0;
    let mut good = 0;
    let mut kinds = BTreeSet::new();
    for seed in 1..300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let c = Cfg {
            depth: 1 + (seed % 8) as u16,
            mrdsl: [512, 4096, 8192][(seed % 3) as usize],
            max_burst: [4096, 65536][(seed % 2) as usize],
            max_out: 1 + (seed % 3) as u16,
            immediate: seed % 2 == 0,
            initial_r2t: seed % 3 == 0,
            hd: seed % 5 == 0,
            dd: seed % 7 == 0,
        };
        let mut run = Run::new(c);
        let before = run.errors;
        let batch_rng_ops = 1 + (seed % 4) as u32;
        run.round(&mut rng, batch_rng_ops);
        let _ = before;
        errors += run.errors;
        good += run.good;
        run.all_done_once();
        kinds.extend(run.kinds.iter().cloned());
    }
    assert!(errors > 50, "{errors} failures");
    assert!(good > 200, "{good} GOOD completions");
    assert!(kinds.len() >= 8, "{kinds:?}");
}
