//! `iscsi-faultd proxy`: a TCP proxy between the initiator and a real target that
//! frames the full-feature-phase PDUs of each direction with iscsi-proto and, on
//! command from the control socket, drops, refuses, stalls, delays, holds back
//! SCSI completions, or corrupts one byte of a PDU.
//!
//! Per proxied connection there are four threads: a reader per direction (frames
//! PDUs, learns the digests from the login, corrupts, counts) feeding a writer
//! per direction over a bounded channel (applies stall, delay and hold, so a held
//! SCSI Response never blocks the NOP-Ins and TMF Responses behind it).
//! Anything the framer cannot follow is forwarded as raw bytes from there on.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use iscsi_proto::bhs::Opcode;
use iscsi_proto::pdu::{LoginRequest, LoginResponse, Stage, TaskMgmtRequest, TmfFunction};
use iscsi_proto::text;

use crate::control::{Command, CorruptPart, Dir};
use crate::log;
use crate::wire::{permissive, Deframer, Digests, Frame};

/// BHS byte flipped by `corrupt-header`: bytes 44..48 hold an opcode-specific
/// word (ResidualCount, DesiredDataTransferLength, …; RFC 7143 §11), never a
/// length or the opcode, so the receiver still finds the header digest where it
/// expects it and reports a digest error rather than losing the framing.
const HEADER_CORRUPT_BYTE: usize = 44;
/// Smallest data segment `corrupt-data` hits.
const MIN_CORRUPT_DATA: usize = 512;
/// PDUs buffered between a reader and its writer: enough to let NOP-Ins pass a
/// hold, small enough that a stall pushes back on the sender through TCP.
const CHANNEL_DEPTH: usize = 256;
/// How often blocked writers re-check a hold's end.
const TICK: Duration = Duration::from_millis(50);

/// A time-limited switch (stall, hold).
#[derive(Debug, Clone, Copy)]
enum Gate {
    Off,
    Until(Instant),
    Forever,
}

impl Gate {
    fn from_ms(ms: u64) -> Gate {
        if ms == 0 {
            Gate::Forever
        } else {
            Gate::Until(Instant::now() + Duration::from_millis(ms))
        }
    }

    /// `None` when off; `Some(None)` when on until resumed; `Some(Some(d))` when on
    /// for `d` more.
    fn remaining(&self) -> Option<Option<Duration>> {
        match *self {
            Gate::Off => None,
            Gate::Forever => Some(None),
            Gate::Until(t) => t
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .map(Some),
        }
    }
}

#[derive(Debug, Default)]
struct Stats {
    accepted: u64,
    refused: u64,
    drops: u64,
    pdus_i2t: u64,
    pdus_t2i: u64,
    raw_fallbacks: u64,
    held: u64,
    discarded: u64,
    corrupt_data: u64,
    corrupt_header: u64,
    /// Task Management requests, indexed by function code (0 = unknown codes).
    tmf: [u64; 9],
}

/// The two sockets of a proxied connection, kept for `drop`.
struct ConnHandles {
    initiator: TcpStream,
    target: TcpStream,
    dropped: Arc<AtomicBool>,
}

struct State {
    conns: HashMap<u64, ConnHandles>,
    down: bool,
    stall: Gate,
    hold: Gate,
    /// Held PDUs are thrown away, not released, when the hold ends.
    hold_discard: bool,
    /// The hold ends at the next Task Management request.
    hold_until_tmf: bool,
    delay: Duration,
    corrupt_i2t: Option<CorruptPart>,
    corrupt_t2i: Option<CorruptPart>,
    stats: Stats,
}

/// Shared by the accept loop, the control server and every connection thread.
pub struct Proxy {
    target: SocketAddr,
    /// Everything the control commands change, and the counters.
    state: Mutex<State>,
    /// Signalled on every control change (stall/hold end, drop).
    changed: Condvar,
    next_id: AtomicU64,
}

impl Proxy {
    fn new(target: SocketAddr) -> Proxy {
        Proxy {
            target,
            state: Mutex::new(State {
                conns: HashMap::new(),
                down: false,
                stall: Gate::Off,
                hold: Gate::Off,
                hold_discard: false,
                hold_until_tmf: false,
                delay: Duration::ZERO,
                corrupt_i2t: None,
                corrupt_t2i: None,
                stats: Stats::default(),
            }),
            changed: Condvar::new(),
            next_id: AtomicU64::new(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking connection thread must not take the control socket with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes every proxied connection: RST to the initiator (SO_LINGER 0 and
    /// connect(AF_UNSPEC), which aborts the socket at once and wakes every thread
    /// blocked on it), FIN to the target. Returns how many.
    fn drop_all(&self, st: &mut State) -> usize {
        let n = st.conns.len();
        for (id, c) in st.conns.drain() {
            cut(id, &c);
        }
        st.stats.drops += n as u64;
        self.changed.notify_all();
        n
    }

    /// Drops the connection accepted last; how many were dropped (0 or 1).
    fn drop_newest(&self, st: &mut State) -> usize {
        let Some(id) = st.conns.keys().max().copied() else {
            return 0;
        };
        let Some(c) = st.conns.remove(&id) else {
            return 0;
        };
        cut(id, &c);
        st.stats.drops += 1;
        self.changed.notify_all();
        1
    }

    fn execute(&self, cmd: Command) -> String {
        let mut st = self.lock();
        let reply = match cmd {
            Command::Drop => format!("ok dropped {}", self.drop_all(&mut st)),
            Command::DropOne => format!("ok dropped {}", self.drop_newest(&mut st)),
            Command::Down => {
                st.down = true;
                format!("ok down dropped {}", self.drop_all(&mut st))
            }
            Command::Up => {
                st.down = false;
                "ok up".into()
            }
            Command::Stall(ms) => {
                st.stall = Gate::from_ms(ms);
                format!("ok stall {ms}")
            }
            Command::Resume => {
                st.stall = Gate::Off;
                st.hold = Gate::Off;
                "ok resume".into()
            }
            Command::HoldScsi(ms, discard, until_tmf) => {
                st.hold = Gate::from_ms(ms);
                st.hold_discard = discard;
                st.hold_until_tmf = until_tmf;
                format!(
                    "ok hold-scsi {ms}{}{}",
                    if discard { " discard" } else { "" },
                    if until_tmf { " until-tmf" } else { "" }
                )
            }
            Command::Delay(ms) => {
                st.delay = Duration::from_millis(ms);
                format!("ok delay {ms}")
            }
            Command::Corrupt(part, dir) => {
                let slot = match dir {
                    Dir::I2t => &mut st.corrupt_i2t,
                    Dir::T2i => &mut st.corrupt_t2i,
                };
                *slot = Some(part);
                let what = match part {
                    CorruptPart::Data => "corrupt-data",
                    CorruptPart::Header => "corrupt-header",
                };
                format!("ok {what} {} armed", dir.as_str())
            }
            Command::Stats => format!("ok {}", stats_line(&st)),
        };
        self.changed.notify_all();
        reply
    }

    /// Blocks while a stall is on; false if the connection was dropped meanwhile.
    fn wait_stall(&self, dropped: &AtomicBool) -> bool {
        let mut st = self.lock();
        loop {
            if dropped.load(Ordering::SeqCst) {
                return false;
            }
            st = match st.stall.remaining() {
                None => return true,
                Some(None) => self.changed.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(Some(d)) => {
                    self.changed
                        .wait_timeout(st, d)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    fn hold_active(&self) -> bool {
        self.lock().hold.remaining().is_some()
    }

    /// Applies an armed corruption to `frame` if it qualifies; true if it did.
    fn maybe_corrupt(&self, conn: u64, dir: Dir, frame: &mut Frame) -> bool {
        let mut st = self.lock();
        let armed = match dir {
            Dir::I2t => st.corrupt_i2t,
            Dir::T2i => st.corrupt_t2i,
        };
        let Some(part) = armed else { return false };
        let op = frame.opcode();
        let target = match part {
            // Only where a digest will catch it: corrupting undigested data would
            // silently change what reaches the disk, which no case wants.
            CorruptPart::Data => {
                let kind_ok = match dir {
                    Dir::T2i => op == Opcode::DataIn,
                    Dir::I2t => matches!(op, Opcode::DataOut | Opcode::ScsiCommand),
                };
                (kind_ok && frame.digests.data && frame.data.len() >= MIN_CORRUPT_DATA)
                    .then(|| frame.data_offset() + frame.data.len() / 2)
            }
            CorruptPart::Header => frame.digests.header.then_some(HEADER_CORRUPT_BYTE),
        };
        let Some(at) = target else { return false };
        let Some(b) = frame.raw.get_mut(at) else {
            return false;
        };
        *b ^= 0xff;
        match dir {
            Dir::I2t => st.corrupt_i2t = None,
            Dir::T2i => st.corrupt_t2i = None,
        }
        match part {
            CorruptPart::Data => st.stats.corrupt_data += 1,
            CorruptPart::Header => st.stats.corrupt_header += 1,
        }
        log!(
            "proxy: conn {conn}: corrupted {} byte {at} of a {op:?} PDU ({}, ITT {:#010x})",
            match part {
                CorruptPart::Data => "data",
                CorruptPart::Header => "header",
            },
            dir.as_str(),
            iscsi_proto::bhs::Bhs::from_array(&frame.bhs).itt()
        );
        true
    }
}

fn stats_line(st: &State) -> String {
    let s = &st.stats;
    const TMF_NAMES: [&str; 9] = [
        "tmf_other",
        "abort_task",
        "abort_task_set",
        "clear_aca",
        "clear_task_set",
        "lun_reset",
        "target_warm_reset",
        "target_cold_reset",
        "task_reassign",
    ];
    let mut line = format!(
        "accepted={} active={} refused={} drops={} pdus_i2t={} pdus_t2i={} raw_fallbacks={} held={} discarded={}",
        s.accepted,
        st.conns.len(),
        s.refused,
        s.drops,
        s.pdus_i2t,
        s.pdus_t2i,
        s.raw_fallbacks,
        s.held,
        s.discarded
    );
    for (name, n) in TMF_NAMES.iter().zip(s.tmf.iter()).skip(1) {
        line.push_str(&format!(" {name}={n}"));
    }
    line.push_str(&format!(
        " tmf_other={} corrupt_data={} corrupt_header={} down={}",
        s.tmf[0],
        s.corrupt_data,
        s.corrupt_header,
        u8::from(st.down)
    ));
    line
}

/// Abortive close: the peer sees a RST now, and every thread blocked on any
/// duplicate of this socket wakes with an error.
fn abort(s: &TcpStream) {
    let _ = rustix::net::sockopt::set_socket_linger(s, Some(Duration::ZERO));
    if rustix::net::connect_unspec(s).is_err() {
        let _ = s.shutdown(Shutdown::Both);
    }
}

/// Runs the proxy until killed.
pub fn run(listen: SocketAddr, target: SocketAddr, control: &Path) -> std::io::Result<()> {
    let proxy = Arc::new(Proxy::new(target));
    let _ = std::fs::remove_file(control);
    let ctl = UnixListener::bind(control)?;
    let listener = TcpListener::bind(listen)?;
    log!(
        "proxy: listening on {}, target {target}, control {}",
        listener.local_addr()?,
        control.display()
    );
    {
        let proxy = Arc::clone(&proxy);
        thread::spawn(move || {
            for s in ctl.incoming().flatten() {
                let proxy = Arc::clone(&proxy);
                thread::spawn(move || serve_control(&proxy, s));
            }
        });
    }
    for s in listener.incoming() {
        let s = match s {
            Ok(s) => s,
            Err(e) => {
                log!("proxy: accept: {e}");
                continue;
            }
        };
        if proxy.lock().down {
            proxy.lock().stats.refused += 1;
            log!("proxy: down: refusing {:?}", s.peer_addr().ok());
            abort(&s);
            continue;
        }
        let proxy = Arc::clone(&proxy);
        thread::spawn(move || handle_conn(&proxy, s));
    }
    Ok(())
}

fn serve_control(proxy: &Proxy, s: UnixStream) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(mut w) = s.try_clone() else { return };
    let mut line = String::new();
    if BufReader::new(s).read_line(&mut line).is_err() {
        return;
    }
    let line = line.trim();
    let reply = match Command::parse(line) {
        Ok(cmd) => proxy.execute(cmd),
        Err(e) => format!("err {e}"),
    };
    log!("proxy: control: {line:?} -> {reply}");
    let _ = w.write_all(format!("{reply}\n").as_bytes());
}

/// One PDU (or a run of raw bytes) on its way to a writer.
struct Item {
    bytes: Vec<u8>,
    /// Opcode of a framed PDU; `None` for raw bytes.
    opcode: Option<Opcode>,
    received: Instant,
}

/// What the login of one connection has shown so far.
#[derive(Default)]
struct LoginWatch {
    /// Text of a login PDU sequence (C bit) still being collected, per direction.
    text_i2t: Vec<u8>,
    text_t2i: Vec<u8>,
    header_digest: bool,
    data_digest: bool,
    discovery: bool,
    /// Digests of the full feature phase, once it has started.
    ffp: Option<Digests>,
}

impl LoginWatch {
    /// Notes HeaderDigest/DataDigest/SessionType from a complete login text. A
    /// single value (an answer, or a one-item offer about to be answered) sets the
    /// result; a list is an offer and waits for its answer; Reject and the other
    /// special values leave the default, None.
    fn note_keys(&mut self, text_bytes: &[u8]) {
        for pair in text::pairs(text_bytes) {
            let Ok((k, v)) = pair else {
                log!("proxy: login text does not parse; digests may be misjudged");
                return;
            };
            let single = !v.contains(',');
            match k {
                // Reject, Irrelevant and NotUnderstood all leave the default, None.
                "HeaderDigest" if single => self.header_digest = v == "CRC32C",
                "DataDigest" if single => self.data_digest = v == "CRC32C",
                "SessionType" => self.discovery = v == "Discovery",
                _ => {}
            }
        }
    }
}

struct ConnCtx {
    id: u64,
    proxy: Arc<Proxy>,
    dropped: Arc<AtomicBool>,
    login: Mutex<LoginWatch>,
}

impl ConnCtx {
    fn login(&self) -> MutexGuard<'_, LoginWatch> {
        self.login.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn handle_conn(proxy: &Arc<Proxy>, initiator: TcpStream) {
    let id = proxy.next_id.fetch_add(1, Ordering::SeqCst);
    let peer = initiator.peer_addr().ok();
    let target = match TcpStream::connect_timeout(&proxy.target, Duration::from_secs(5)) {
        Ok(t) => t,
        Err(e) => {
            log!("proxy: conn {id}: target {} unreachable: {e}", proxy.target);
            abort(&initiator);
            return;
        }
    };
    let _ = initiator.set_nodelay(true);
    let _ = target.set_nodelay(true);
    let dropped = Arc::new(AtomicBool::new(false));
    let clones = (
        initiator.try_clone(),
        target.try_clone(),
        initiator.try_clone(),
        target.try_clone(),
    );
    let (Ok(i_w), Ok(t_w), Ok(i_reg), Ok(t_reg)) = clones else {
        log!("proxy: conn {id}: cannot duplicate sockets");
        return;
    };
    {
        let mut st = proxy.lock();
        st.stats.accepted += 1;
        st.conns.insert(
            id,
            ConnHandles {
                initiator: i_reg,
                target: t_reg,
                dropped: Arc::clone(&dropped),
            },
        );
    }
    log!("proxy: conn {id}: {peer:?} <-> {}", proxy.target);
    let ctx = Arc::new(ConnCtx {
        id,
        proxy: Arc::clone(proxy),
        dropped,
        login: Mutex::new(LoginWatch::default()),
    });
    let (tx_i2t, rx_i2t) = sync_channel(CHANNEL_DEPTH);
    let (tx_t2i, rx_t2i) = sync_channel(CHANNEL_DEPTH);
    let threads = [
        {
            let ctx = Arc::clone(&ctx);
            thread::spawn(move || writer(&ctx, Dir::I2t, rx_i2t, t_w))
        },
        {
            let ctx = Arc::clone(&ctx);
            thread::spawn(move || writer(&ctx, Dir::T2i, rx_t2i, i_w))
        },
        {
            let ctx = Arc::clone(&ctx);
            thread::spawn(move || reader(&ctx, Dir::T2i, target, tx_t2i))
        },
    ];
    reader(&ctx, Dir::I2t, initiator, tx_i2t);
    for t in threads {
        let _ = t.join();
    }
    proxy.lock().conns.remove(&id);
    log!("proxy: conn {id}: closed");
}

/// Reads one direction, frames it and passes PDUs to the writer.
fn reader(ctx: &ConnCtx, dir: Dir, mut src: TcpStream, out: SyncSender<Item>) {
    let mut df = Deframer::new(permissive(Digests::default()), true);
    let mut applied: Option<Digests> = None;
    let mut raw_mode = false;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        if raw_mode {
            if send_raw(&out, chunk.to_vec()).is_err() {
                break;
            }
            continue;
        }
        // The initiator's first full-feature PDU follows the final Login Response,
        // which the target side forwards only after recording the digests.
        if dir == Dir::I2t && applied.is_none() {
            if let Some(d) = ctx.login().ffp {
                df.set_settings(permissive(d));
                applied = Some(d);
            }
        }
        df.push(chunk);
        loop {
            match df.next_frame() {
                Ok(Some(mut frame)) => {
                    let ffp_before = applied.is_some();
                    on_frame(ctx, dir, &mut frame, ffp_before);
                    if dir == Dir::T2i && applied.is_none() {
                        if let Some(d) = ctx.login().ffp {
                            df.set_settings(permissive(d));
                            applied = Some(d);
                        }
                    }
                    let item = Item {
                        opcode: Some(frame.opcode()),
                        bytes: frame.raw,
                        received: Instant::now(),
                    };
                    if out.send(item).is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    log!(
                        "proxy: conn {}: {}: framing lost ({e:?}); forwarding raw bytes from here",
                        ctx.id,
                        dir.as_str()
                    );
                    ctx.proxy.lock().stats.raw_fallbacks += 1;
                    raw_mode = true;
                    if send_raw(&out, df.take_unframed()).is_err() {
                        return;
                    }
                    break;
                }
            }
        }
    }
    // Dropping `out` lets the writer flush and half-close its side.
}

fn send_raw(out: &SyncSender<Item>, bytes: Vec<u8>) -> Result<(), ()> {
    out.send(Item {
        bytes,
        opcode: None,
        received: Instant::now(),
    })
    .map_err(|_| ())
}

/// Bookkeeping for one framed PDU: login tracking, counters, corruption.
fn on_frame(ctx: &ConnCtx, dir: Dir, frame: &mut Frame, ffp: bool) {
    let op = frame.opcode();
    {
        let mut st = ctx.proxy.lock();
        match dir {
            Dir::I2t => st.stats.pdus_i2t += 1,
            Dir::T2i => st.stats.pdus_t2i += 1,
        }
        if let (Dir::I2t, Ok(t)) = (dir, TaskMgmtRequest::parse(&frame.bhs)) {
            let i = match t.function {
                TmfFunction::Unknown(_) => 0,
                f => usize::from(f.to_u8()),
            };
            if let Some(n) = st.stats.tmf.get_mut(i) {
                *n += 1;
            }
            if st.hold_until_tmf && st.hold.remaining().is_some() {
                st.hold = Gate::Off;
                st.hold_until_tmf = false;
                ctx.proxy.changed.notify_all();
                log!("proxy: conn {}: hold ended by a TMF", ctx.id);
            }
            log!(
                "proxy: conn {}: TMF {:?} ITT {:#010x} RefTask {:#010x}",
                ctx.id,
                t.function,
                t.itt,
                t.referenced_task_tag
            );
        }
    }
    if ffp {
        ctx.proxy.maybe_corrupt(ctx.id, dir, frame);
        return;
    }
    match (dir, op) {
        (Dir::I2t, Opcode::LoginRequest) => {
            let Ok(req) = LoginRequest::parse(&frame.bhs) else {
                return;
            };
            let mut w = ctx.login();
            w.text_i2t.extend_from_slice(&frame.data);
            if !req.cont {
                let text = std::mem::take(&mut w.text_i2t);
                w.note_keys(&text);
            }
        }
        (Dir::T2i, Opcode::LoginResponse) => {
            let Ok(resp) = LoginResponse::parse(&frame.bhs) else {
                return;
            };
            let mut w = ctx.login();
            w.text_t2i.extend_from_slice(&frame.data);
            if !resp.cont {
                let text = std::mem::take(&mut w.text_t2i);
                w.note_keys(&text);
            }
            if resp.transit && resp.nsg == Stage::FullFeature && resp.status_class == 0 {
                let d = Digests {
                    header: w.header_digest,
                    data: w.data_digest,
                };
                w.ffp = Some(d);
                log!(
                    "proxy: conn {}: full feature phase ({} session), HeaderDigest={} DataDigest={}",
                    ctx.id,
                    if w.discovery { "discovery" } else { "normal" },
                    if d.header { "CRC32C" } else { "None" },
                    if d.data { "CRC32C" } else { "None" }
                );
            }
        }
        _ => {}
    }
}

fn is_scsi_completion(op: Option<Opcode>) -> bool {
    matches!(op, Some(Opcode::ScsiResponse) | Some(Opcode::DataIn))
}

/// Writes one direction, applying hold (t2i SCSI completions only), stall and delay.
fn writer(ctx: &ConnCtx, dir: Dir, rx: Receiver<Item>, mut dst: TcpStream) {
    let proxy = &ctx.proxy;
    let mut held: VecDeque<Item> = VecDeque::new();
    let mut input_done = false;
    loop {
        if ctx.dropped.load(Ordering::SeqCst) {
            return;
        }
        let hold_on = dir == Dir::T2i && proxy.hold_active();
        if !held.is_empty() && !hold_on && proxy.lock().hold_discard {
            let n = held.len();
            held.clear();
            proxy.lock().stats.discarded += n as u64;
            log!(
                "proxy: conn {}: hold over, {n} held PDU(s) discarded",
                ctx.id
            );
        }
        let item = if !held.is_empty() && !hold_on {
            held.pop_front().map(|i| (i, false))
        } else if input_done {
            if held.is_empty() {
                break;
            }
            thread::sleep(TICK);
            continue;
        } else {
            match rx.recv_timeout(TICK) {
                Ok(i) => Some((i, true)),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    input_done = true;
                    continue;
                }
            }
        };
        let Some((item, fresh)) = item else { continue };
        // Asked again: the hold may have started while we waited for the item.
        // Fresh completions queue behind held ones, so their order is kept.
        if fresh && dir == Dir::T2i && is_scsi_completion(item.opcode) {
            let hold_now = proxy.hold_active();
            if hold_now || !held.is_empty() {
                if hold_now {
                    proxy.lock().stats.held += 1;
                }
                held.push_back(item);
                continue;
            }
        }
        if !proxy.wait_stall(&ctx.dropped) {
            return;
        }
        let delay = proxy.lock().delay;
        if let Some(wait) = (item.received + delay).checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        if dst.write_all(&item.bytes).is_err() {
            return;
        }
    }
    // The source closed: pass the half-close on, once a stall lets it (a
    // stalled proxy is a peer that neither answers nor closes).
    if proxy.wait_stall(&ctx.dropped) {
        let _ = dst.shutdown(Shutdown::Write);
    }
}

/// Cuts proxied connection `id`: a reset towards the initiator, a shutdown
/// towards the target.
fn cut(id: u64, c: &ConnHandles) {
    c.dropped.store(true, Ordering::SeqCst);
    abort(&c.initiator);
    let _ = c.target.shutdown(Shutdown::Both);
    log!("proxy: conn {id}: dropped");
}
