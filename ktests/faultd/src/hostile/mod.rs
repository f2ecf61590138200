//! `iscsi-faultd hostile`: an iSCSI target that logs in properly (AuthMethod=None,
//! operational keys answered with iscsi-proto's responder rules, SendTargets for
//! discovery sessions), serves a RAM disk correctly, and then, on its trigger,
//! answers with the malformed PDU(s) of one scenario ([`forge`]) and keeps the
//! connection open, so the initiator must notice and close it.
//!
//! One thread per connection, blocking I/O. The RAM disk and the trigger count
//! are shared by all connections, so a retry after recovery finds the data and,
//! with the default `--trigger-count 1`, a well-behaved target.
//!
//! Some scenarios misbehave differently:
//! - `reject-storm`: from the first READ or WRITE at the trigger LBA on, for
//!   the rest of the process (every connection, later logins too), every SCSI
//!   Command, every NOP-Out with an ITT and every Task Management Function
//!   Request is answered with a Reject, reason 0x04 (protocol error), carrying
//!   the rejected BHS (RFC 7143 §11.17). Each Reject takes a StatSN (§11.17.3).
//!   A rejected non-immediate PDU's CmdSN is not "received" (§7.3, Usage of
//!   Reject PDU in Recovery; LIO rejects before sequencing too), so ExpCmdSN
//!   stays where it was and the window does not move. Data-Outs of rejected
//!   writes are dropped silently; Login, Text and Logout are answered normally.
//! - Logout: by default the target sends the Logout Response, then waits up
//!   to 5 s for the initiator to close and shuts down after that (an orderly
//!   FIN). `logout-close` shuts down (FIN) and drops the socket right after
//!   the Logout Response is written, without waiting; `logout-close-early`
//!   corks the socket so the Logout Response and the FIN leave in one TCP
//!   segment. Both do this on every Logout, discovery sessions included.
//! - The quirks (`quirk-expcmdsn`, `quirk-statsn-repeat`, `quirk-ou-nonfinal`)
//!   are wrong in one way on every PDU they concern, from the first of the
//!   full feature phase on, in normal sessions (discovery is left alone), and
//!   serve everything correctly otherwise: an initiator that rides through
//!   them sees a working disk. Each connection logs the first lie and, when
//!   it ends, how many PDUs lied.
//! - `flat-luns` is a correct target with three flat-space LUNs ([`scsi::Luns`]).

pub mod forge;
pub mod scsi;

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use iscsi_proto::bhs::{Bhs, Opcode, BHS_LEN, RESERVED_TAG};
use iscsi_proto::framing::DEFAULT_MAX_RECV_DATA_SEGMENT_LEN;
use iscsi_proto::negotiate::{self, Key, Local, ReplyValue};
use iscsi_proto::pdu::{
    DataOut, LoginRequest, LoginResponse, LogoutResponse, NopIn, NopOut, Pdu, RejectReason,
    ScsiCommand, Stage, TaskMgmtRequest, TaskMgmtResponse, TextRequest, TextResponse, TmfFunction,
    TmfResponse, LOGOUT_SUCCESS,
};
use iscsi_proto::text::{self, Special, TextWriter};

use crate::log;
use crate::wire::{encode, settings, Deframer, Digests, Frame};
use forge::{Ctx, Out, Scenario, Seq, Trigger, END_ZONE_BLOCKS, FLAT_LUNS, QUIRK_EXPCMDSN_AHEAD};
use scsi::{Luns, Outcome, Sense, CHECK_CONDITION, GOOD};

/// The one target this portal reports to SendTargets.
pub const TARGET_NAME: &str = "iqn.2026-11.dev.iscsi-rs:hostile";
/// The MaxRecvDataSegmentLength we declare.
const OUR_MRDSL: u32 = 262_144;
/// CmdSN window we open (MaxCmdSN - ExpCmdSN + 1).
const WINDOW: u32 = 32;

/// Command-line options.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// What to misbehave with.
    pub scenario: Scenario,
    /// RAM disk size.
    pub lun_size_mb: u64,
    /// How many commands trigger the scenario in this process (0: every one).
    pub trigger_count: u64,
    /// First LBA that triggers.
    pub trigger_lba: u64,
}

struct Shared {
    opts: Options,
    luns: Luns,
    fired: AtomicU64,
    /// `reject-storm` has triggered: reject from now on.
    storm: AtomicBool,
    next_tsih: AtomicU16,
    next_conn: AtomicU64,
}

/// Serves until killed.
pub fn run(listen: SocketAddr, opts: Options) -> io::Result<()> {
    let listener = TcpListener::bind(listen)?;
    let shared = Arc::new(Shared {
        opts,
        luns: if opts.scenario == Scenario::FlatLuns {
            Luns::flat(opts.lun_size_mb, &FLAT_LUNS)
        } else {
            Luns::single(opts.lun_size_mb)
        },
        fired: AtomicU64::new(0),
        storm: AtomicBool::new(false),
        next_tsih: AtomicU16::new(1),
        next_conn: AtomicU64::new(1),
    });
    log!(
        "hostile: listening on {}, scenario {}, {}{} MiB, trigger LBA >= {}",
        listener.local_addr()?,
        opts.scenario.name(),
        if opts.scenario == Scenario::FlatLuns {
            "flat-space LUNs 0, 1 and 300 of "
        } else {
            "one LUN of "
        },
        opts.lun_size_mb,
        opts.trigger_lba
    );
    for s in listener.incoming() {
        match s {
            Ok(s) => {
                let shared = Arc::clone(&shared);
                thread::spawn(move || {
                    let id = shared.next_conn.fetch_add(1, Ordering::SeqCst);
                    let peer = s.peer_addr().ok();
                    log!("hostile: conn {id}: from {peer:?}");
                    match Conn::new(id, s, &shared).and_then(|mut c| c.run()) {
                        Ok(()) => log!("hostile: conn {id}: closed"),
                        Err(e) => log!("hostile: conn {id}: ended: {e}"),
                    }
                });
            }
            Err(e) => log!("hostile: accept: {e}"),
        }
    }
    Ok(())
}

/// What the login settled, starting from the RFC 7143 defaults.
#[derive(Debug, Clone)]
struct Params {
    initiator_mrdsl: u32,
    first_burst: u32,
    max_burst: u32,
    initial_r2t: bool,
    immediate_data: bool,
    digests: Digests,
    discovery: bool,
}

impl Default for Params {
    fn default() -> Self {
        let d = negotiate::SessionParams::DEFAULT;
        Params {
            initiator_mrdsl: DEFAULT_MAX_RECV_DATA_SEGMENT_LEN,
            first_burst: d.first_burst_len,
            max_burst: d.max_burst_len,
            initial_r2t: d.initial_r2t,
            immediate_data: d.immediate_data,
            digests: Digests::default(),
            discovery: false,
        }
    }
}

/// Our own value for each key we answer, as proto's [`negotiate::respond`] takes
/// it. OR/AND keys are set so the initiator's wish wins; numbers are generous so
/// the initiator's limits win.
fn target_local(key: Key) -> Option<Local<'static>> {
    Some(match key {
        Key::HeaderDigest | Key::DataDigest => Local::List("CRC32C,None"),
        Key::TaskReporting => Local::List("RFC3720"),
        Key::MaxConnections => Local::Number(1),
        Key::InitialR2T => Local::Bool(false),
        Key::ImmediateData => Local::Bool(true),
        Key::MaxBurstLength => Local::Number(1 << 20),
        Key::FirstBurstLength => Local::Number(1 << 20),
        Key::DefaultTime2Wait => Local::Number(0),
        Key::DefaultTime2Retain => Local::Number(0),
        Key::MaxOutstandingR2T => Local::Number(1),
        Key::DataPduInOrder | Key::DataSequenceInOrder => Local::Bool(true),
        Key::ErrorRecoveryLevel | Key::ProtocolLevel => Local::Number(0),
        Key::RdmaExtensions => Local::Bool(false),
        Key::IfMarker | Key::OfMarker | Key::IfMarkInt | Key::OfMarkInt => Local::Bool(false),
        _ => return None,
    })
}

/// A WRITE collecting its data.
struct WriteTask {
    lun: u64,
    /// Disk offset and the length the CDB asks for.
    offset: u64,
    len: u64,
    /// ExpectedDataTransferLength bytes.
    buf: Vec<u8>,
    received: usize,
    /// No more unsolicited data will come.
    unsolicited_done: bool,
    /// TTT of the R2T being answered.
    r2t: Option<u32>,
    r2t_sn: u32,
}

struct Conn<'a> {
    id: u64,
    sock: TcpStream,
    rbuf: Vec<u8>,
    df: Deframer,
    shared: &'a Shared,
    p: Params,
    /// Digests in force on what we send (none until the full feature phase).
    tx_digests: Digests,
    stat_sn: u32,
    exp_cmd_sn: u32,
    seen_itts: HashSet<u32>,
    writes: HashMap<u32, WriteTask>,
    /// Commands a scenario has answered: never completed.
    dead: HashSet<u32>,
    next_ttt: u32,
    /// The full feature phase has begun.
    ffp: bool,
    /// PDUs a quirk scenario has made wrong on this connection.
    quirks: u64,
    /// Status-bearing PDUs sent in the full feature phase (`quirk-statsn-repeat`).
    status_pdus: u64,
}

impl<'a> Conn<'a> {
    fn new(id: u64, sock: TcpStream, shared: &'a Shared) -> io::Result<Conn<'a>> {
        sock.set_nodelay(true)?;
        Ok(Conn {
            id,
            sock,
            rbuf: vec![0u8; 256 * 1024],
            df: Deframer::new(
                settings(Digests::default(), DEFAULT_MAX_RECV_DATA_SEGMENT_LEN),
                false,
            ),
            shared,
            p: Params::default(),
            tx_digests: Digests::default(),
            // Any start value will do (RFC 7143 §11.13); an odd one shows up in logs.
            stat_sn: 0x1000,
            exp_cmd_sn: 0,
            seen_itts: HashSet::new(),
            writes: HashMap::new(),
            dead: HashSet::new(),
            next_ttt: 0x100,
            ffp: false,
            quirks: 0,
            status_pdus: 0,
        })
    }

    fn run(&mut self) -> io::Result<()> {
        if !self.login()? {
            return Ok(());
        }
        self.df.set_settings(settings(self.p.digests, OUR_MRDSL));
        self.tx_digests = self.p.digests;
        self.ffp = true;
        let r = self.serve();
        if self.quirky() {
            log!(
                "hostile: conn {}: scenario {} applied {} times",
                self.id,
                self.shared.opts.scenario.name(),
                self.quirks
            );
        }
        r
    }

    /// A quirk scenario is at work on this connection: full feature phase of
    /// a normal session.
    fn quirky(&self) -> bool {
        let s = self.shared.opts.scenario;
        self.ffp
            && !self.p.discovery
            && matches!(
                s,
                Scenario::QuirkExpCmdSn | Scenario::QuirkStatSnRepeat | Scenario::QuirkOuNonFinal
            )
    }

    /// Counts `times` PDUs a quirk made wrong; logs the first with `what`.
    fn quirk_applied(&mut self, times: u64, what: impl FnOnce() -> String) {
        if self.quirks == 0 {
            log!(
                "hostile: conn {}: scenario {} applied first: {}",
                self.id,
                self.shared.opts.scenario.name(),
                what()
            );
        }
        self.quirks = self.quirks.saturating_add(times);
    }

    fn read_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            match self.df.next_frame() {
                Ok(Some(f)) => return Ok(Some(f)),
                Ok(None) => {}
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("framing: {e:?}"),
                    ))
                }
            }
            let n = self.sock.read(&mut self.rbuf)?;
            if n == 0 {
                return Ok(None);
            }
            self.df.push(&self.rbuf[..n]);
        }
    }

    fn send(&mut self, o: &Out) -> io::Result<()> {
        if self.shared.opts.scenario == Scenario::QuirkExpCmdSn && self.quirky() {
            // Every target PDU of the full feature phase carries ExpCmdSN
            // (bytes 28..32) and MaxCmdSN (32..36); seq() made them.
            let b = Bhs::from_array(&o.bhs);
            self.quirk_applied(1, || {
                format!(
                    "{:?} ITT {:#010x} acknowledges ExpCmdSN {:#x}, {} beyond the true one, MaxCmdSN {:#x}",
                    b.opcode(),
                    b.itt(),
                    b.be32(28..32),
                    QUIRK_EXPCMDSN_AHEAD,
                    b.be32(32..36)
                )
            });
        }
        self.sock
            .write_all(&encode(&o.bhs, &o.ahs, &o.data, self.tx_digests))
    }

    fn max_cmd_sn(&self) -> u32 {
        self.exp_cmd_sn.wrapping_add(WINDOW - 1)
    }

    /// The numbers a PDU carries now; StatSN is the next one (what R2T and
    /// Data-In without status carry). `quirk-expcmdsn` acknowledges one
    /// command more than was received; MaxCmdSN stays the true window's.
    fn seq(&self) -> Seq {
        let exp_cmd_sn = if self.shared.opts.scenario == Scenario::QuirkExpCmdSn && self.quirky() {
            self.exp_cmd_sn.wrapping_add(QUIRK_EXPCMDSN_AHEAD)
        } else {
            self.exp_cmd_sn
        };
        Seq {
            stat_sn: self.stat_sn,
            exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn(),
        }
    }

    /// The StatSN of the next status-bearing PDU, advanced past it (RFC 7143
    /// §4.2.2.2). `quirk-statsn-repeat` gives every second status-bearing PDU
    /// of the full feature phase the previous one's StatSN again, without
    /// advancing.
    fn take_stat_sn(&mut self) -> u32 {
        if self.shared.opts.scenario == Scenario::QuirkStatSnRepeat && self.quirky() {
            self.status_pdus += 1;
            if self.status_pdus.is_multiple_of(2) {
                let sn = self.stat_sn.wrapping_sub(1);
                self.quirk_applied(1, || format!("StatSN {sn:#x} sent again"));
                return sn;
            }
        }
        let sn = self.stat_sn;
        self.stat_sn = sn.wrapping_add(1);
        sn
    }

    /// [`Conn::seq`] for a status-bearing PDU: takes its StatSN.
    fn status_seq(&mut self) -> Seq {
        let stat_sn = self.take_stat_sn();
        Seq {
            stat_sn,
            ..self.seq()
        }
    }

    /// A non-immediate request takes its CmdSN (RFC 7143 §4.2.2.1).
    fn take_cmd_sn(&mut self, immediate: bool, cmd_sn: u32) {
        if !immediate {
            self.exp_cmd_sn = cmd_sn.wrapping_add(1);
        }
    }

    // -----------------------------------------------------------------------
    // Login
    // -----------------------------------------------------------------------

    /// Runs the login; true when the full feature phase starts.
    fn login(&mut self) -> io::Result<bool> {
        let mut text_in = Vec::new();
        let mut tpgt_sent = false;
        let mut mrdsl_sent = false;
        loop {
            let Some(f) = self.read_frame()? else {
                return Ok(false);
            };
            let req = match (f.opcode(), LoginRequest::parse(&f.bhs)) {
                (Opcode::LoginRequest, Ok(r)) => r,
                (op, r) => {
                    log!("hostile: conn {}: {op:?} during login ({r:?})", self.id);
                    return Ok(false);
                }
            };
            self.exp_cmd_sn = req.cmd_sn;
            text_in.extend_from_slice(&f.data);
            if req.cont {
                // More text follows: an empty response asks for it.
                self.login_response(&req, false, req.csg, (0, 0), Vec::new())?;
                continue;
            }
            let text_bytes = std::mem::take(&mut text_in);
            let mut buf = vec![0u8; 8192];
            let mut w = TextWriter::new(&mut buf);
            let mut refuse = None;
            for pair in text::pairs(&text_bytes) {
                match pair {
                    Ok((k, v)) => {
                        if let Err(status) = self.negotiate_key(k, v, &mut w) {
                            refuse = Some(status);
                        }
                    }
                    Err(e) => {
                        log!("hostile: conn {}: bad login text: {e}", self.id);
                        refuse = Some((2, 0));
                        break;
                    }
                }
            }
            if req.csg == Stage::Security && !tpgt_sent {
                let _ = w.push("TargetPortalGroupTag", "1");
                tpgt_sent = true;
            }
            if req.csg == Stage::Operational && !mrdsl_sent {
                let _ = w.push_u64("MaxRecvDataSegmentLength", OUR_MRDSL.into());
                mrdsl_sent = true;
            }
            let mut data = w.as_bytes().to_vec();
            if let Some(status) = refuse {
                log!(
                    "hostile: conn {}: login refused with status {:#04x}{:02x}",
                    self.id,
                    status.0,
                    status.1
                );
                self.login_response(&req, false, req.csg, status, Vec::new())?;
                return Ok(false);
            }
            if self.shared.opts.scenario == Scenario::LoginGarbage
                && req.csg == Stage::Operational
                && !self.p.discovery
            {
                forge::login_garbage(&mut data);
                log!(
                    "hostile: scenario login-garbage triggered on ITT {:#010x} (operational stage Login Response)",
                    req.itt
                );
            }
            let nsg = if req.transit { req.nsg } else { req.csg };
            self.login_response(&req, req.transit, nsg, (0, 0), data)?;
            if req.transit && nsg == Stage::FullFeature {
                log!(
                    "hostile: conn {}: {} session in full feature phase: HeaderDigest={} DataDigest={} MaxRecvDataSegmentLength(initiator)={} FirstBurst={} MaxBurst={} InitialR2T={} ImmediateData={}",
                    self.id,
                    if self.p.discovery { "discovery" } else { "normal" },
                    self.p.digests.header,
                    self.p.digests.data,
                    self.p.initiator_mrdsl,
                    self.p.first_burst,
                    self.p.max_burst,
                    self.p.initial_r2t,
                    self.p.immediate_data
                );
                return Ok(true);
            }
        }
    }

    fn login_response(
        &mut self,
        req: &LoginRequest,
        transit: bool,
        nsg: Stage,
        status: (u8, u8),
        data: Vec<u8>,
    ) -> io::Result<()> {
        let done = transit && nsg == Stage::FullFeature && status == (0, 0);
        let tsih = match (done, req.tsih) {
            (true, 0) => {
                let t = self.shared.next_tsih.fetch_add(1, Ordering::SeqCst);
                if t == 0 {
                    self.shared.next_tsih.fetch_add(1, Ordering::SeqCst)
                } else {
                    t
                }
            }
            _ => req.tsih,
        };
        let mut h = [0u8; BHS_LEN];
        LoginResponse {
            transit,
            cont: false,
            csg: req.csg,
            nsg,
            version_max: 0,
            version_active: 0,
            isid: req.isid,
            tsih,
            itt: req.itt,
            stat_sn: self.stat_sn,
            exp_cmd_sn: req.cmd_sn,
            max_cmd_sn: req.cmd_sn.wrapping_add(WINDOW - 1),
            status_class: status.0,
            status_detail: status.1,
            data_segment_len: data.len() as u32,
        }
        .emit(&mut h);
        self.stat_sn = self.stat_sn.wrapping_add(1);
        self.send(&Out {
            bhs: h,
            ahs: Vec::new(),
            data,
        })
    }

    /// Answers one key; `Err(status)` refuses the login.
    fn negotiate_key(&mut self, k: &str, v: &str, w: &mut TextWriter<'_>) -> Result<(), (u8, u8)> {
        match k {
            "SessionType" => self.p.discovery = v == "Discovery",
            "InitiatorName" | "InitiatorAlias" | "TargetName" => {}
            "AuthMethod" => {
                if text::list_contains(v, "None") {
                    let _ = w.push(k, "None");
                } else {
                    // Only AuthMethod=None is on offer here: authentication failure.
                    let _ = w.push(k, Special::Reject.as_str());
                    return Err((2, 1));
                }
            }
            "MaxRecvDataSegmentLength" => match text::parse_number(v) {
                Ok(n) if (512..=0xff_ffff).contains(&n) => self.p.initiator_mrdsl = n as u32,
                _ => log!(
                    "hostile: conn {}: bad MaxRecvDataSegmentLength={v}",
                    self.id
                ),
            },
            _ if negotiate::is_chap_key(k) => {}
            _ => match Key::from_name(k) {
                None => {
                    let _ = w.push(k, Special::NotUnderstood.as_str());
                }
                // An answer to a key we offered (we offer none but declarations).
                Some(_) if Special::from_value(v).is_some() => {}
                Some(key) => {
                    let Some(local) = target_local(key) else {
                        return Ok(());
                    };
                    match negotiate::respond(key, v, local) {
                        Ok(Some(ans)) => {
                            self.record(key, ans);
                            let _ = ans.write(k, w);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            log!("hostile: conn {}: {k}={v}: {e}", self.id);
                            let _ = w.push(k, Special::Reject.as_str());
                        }
                    }
                }
            },
        }
        Ok(())
    }

    fn record(&mut self, key: Key, ans: ReplyValue<'_>) {
        let p = &mut self.p;
        match (key, ans) {
            (Key::HeaderDigest, ReplyValue::Text(t)) => p.digests.header = t == "CRC32C",
            (Key::DataDigest, ReplyValue::Text(t)) => p.digests.data = t == "CRC32C",
            (Key::InitialR2T, ReplyValue::Bool(b)) => p.initial_r2t = b,
            (Key::ImmediateData, ReplyValue::Bool(b)) => p.immediate_data = b,
            (Key::MaxBurstLength, ReplyValue::Number(n)) => p.max_burst = n as u32,
            (Key::FirstBurstLength, ReplyValue::Number(n)) => p.first_burst = n as u32,
            _ => {}
        }
        p.first_burst = p.first_burst.min(p.max_burst);
    }

    // -----------------------------------------------------------------------
    // Full feature phase
    // -----------------------------------------------------------------------

    fn serve(&mut self) -> io::Result<()> {
        while let Some(f) = self.read_frame()? {
            let pdu = match Pdu::parse(&f.bhs) {
                Ok(p) => p,
                Err(e) => {
                    log!("hostile: conn {}: bad PDU: {e}", self.id);
                    self.reject(&f.bhs, RejectReason::ProtocolError)?;
                    continue;
                }
            };
            if self.reject_storm(&pdu, &f.bhs)? {
                continue;
            }
            match pdu {
                Pdu::NopOut(n) => self.on_nop(n, &f.data)?,
                Pdu::ScsiCommand(c) if !self.p.discovery => self.on_command(c, &f.data)?,
                Pdu::DataOut(d) => self.on_data_out(d, &f.data)?,
                Pdu::TaskMgmtRequest(t) => self.on_tmf(t)?,
                Pdu::TextRequest(t) => self.on_text(t, &f.data)?,
                Pdu::LogoutRequest(l) => {
                    self.take_cmd_sn(l.immediate, l.cmd_sn);
                    let scenario = self.shared.opts.scenario;
                    if scenario == Scenario::LogoutCloseEarly {
                        // Held back until the FIN joins it (tcp_send_fin merges
                        // the FIN into unsent data; shutdown pushes it out).
                        rustix::net::sockopt::set_tcp_cork(&self.sock, true)?;
                    }
                    let seq = self.status_seq();
                    let mut h = [0u8; BHS_LEN];
                    LogoutResponse {
                        response: LOGOUT_SUCCESS,
                        itt: l.itt,
                        stat_sn: seq.stat_sn,
                        exp_cmd_sn: seq.exp_cmd_sn,
                        max_cmd_sn: seq.max_cmd_sn,
                        time2wait: 0,
                        time2retain: 0,
                    }
                    .emit(&mut h);
                    self.send(&Out {
                        bhs: h,
                        ahs: Vec::new(),
                        data: Vec::new(),
                    })?;
                    log!("hostile: conn {}: logged out", self.id);
                    if scenario.trigger() == Trigger::Logout {
                        // A FIN now; unread input, if any, makes the kernel's
                        // close send a RST instead.
                        let _ = self.sock.shutdown(Shutdown::Both);
                        log!(
                            "hostile: scenario {} triggered on ITT {:#010x} (Logout Response): connection closed{}",
                            scenario.name(),
                            l.itt,
                            if scenario == Scenario::LogoutCloseEarly {
                                " in the Logout Response's segment"
                            } else {
                                " right after the Logout Response"
                            }
                        );
                        return Ok(());
                    }
                    // The initiator closes; wait a little for it, then close anyway.
                    let _ = self.sock.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut sink = [0u8; 512];
                    while matches!(self.sock.read(&mut sink), Ok(n) if n > 0) {}
                    let _ = self.sock.shutdown(Shutdown::Both);
                    return Ok(());
                }
                other => {
                    log!("hostile: conn {}: unexpected {:?}", self.id, other.opcode());
                    self.reject(&f.bhs, RejectReason::CommandNotSupported)?;
                }
            }
        }
        Ok(())
    }

    fn reject(&mut self, bhs: &[u8; BHS_LEN], reason: RejectReason) -> io::Result<()> {
        // "The StatSN is advanced after a Reject" (RFC 7143 §11.17.3).
        let o = forge::reject(self.status_seq(), reason, bhs);
        self.send(&o)
    }

    /// `reject-storm`: rejects `pdu` (true) if the storm is on or this PDU sets
    /// it off. Its CmdSN is not taken (RFC 7143 §7.3: a rejected command's
    /// CmdSN is not considered received), so ExpCmdSN/MaxCmdSN stay put.
    fn reject_storm(&mut self, pdu: &Pdu, bhs: &[u8; BHS_LEN]) -> io::Result<bool> {
        if self.shared.opts.scenario != Scenario::RejectStorm {
            return Ok(false);
        }
        let itt = match pdu {
            Pdu::ScsiCommand(c) => c.itt,
            // A NOP-Out with the reserved ITT answers nothing: nothing to reject.
            Pdu::NopOut(n) if n.itt != RESERVED_TAG => n.itt,
            Pdu::TaskMgmtRequest(t) => t.itt,
            _ => return Ok(false),
        };
        if !self.shared.storm.load(Ordering::SeqCst) {
            let Pdu::ScsiCommand(c) = pdu else {
                return Ok(false);
            };
            let Some(rw) = scsi::rw(&c.cdb).filter(|rw| !self.p.discovery && self.fires(*rw))
            else {
                return Ok(false);
            };
            if !self.shared.storm.swap(true, Ordering::SeqCst) {
                log!(
                    "hostile: scenario reject-storm triggered on ITT {:#010x} ({} LBA {} x{}, EDTL {}): rejecting every SCSI Command, NOP-Out with an ITT and TMF from now on (reason 0x04)",
                    c.itt,
                    if rw.write { "WRITE" } else { "READ" },
                    rw.lba,
                    rw.blocks,
                    c.expected_data_len
                );
            }
        }
        if let Pdu::ScsiCommand(c) = pdu {
            // Its unsolicited Data-Outs are dropped silently.
            self.seen_itts.insert(c.itt);
            self.dead.insert(c.itt);
        }
        log!(
            "hostile: conn {}: reject-storm: Reject (protocol error) for {:?} ITT {:#010x}, StatSN {:#x} ExpCmdSN {:#x}",
            self.id,
            pdu.opcode(),
            itt,
            self.stat_sn,
            self.exp_cmd_sn
        );
        self.reject(bhs, RejectReason::ProtocolError)?;
        Ok(true)
    }

    fn on_nop(&mut self, n: NopOut, data: &[u8]) -> io::Result<()> {
        self.take_cmd_sn(n.immediate, n.cmd_sn);
        if n.itt == RESERVED_TAG {
            // An answer to a ping of ours (we send none) or a bare ExpStatSN update.
            return Ok(());
        }
        let echo = &data[..data.len().min(self.p.initiator_mrdsl as usize)];
        let seq = self.status_seq();
        let mut h = [0u8; BHS_LEN];
        NopIn {
            lun: n.lun,
            itt: n.itt,
            ttt: RESERVED_TAG,
            stat_sn: seq.stat_sn,
            exp_cmd_sn: seq.exp_cmd_sn,
            max_cmd_sn: seq.max_cmd_sn,
            data_segment_len: echo.len() as u32,
        }
        .emit(&mut h);
        self.send(&Out {
            bhs: h,
            ahs: Vec::new(),
            data: echo.to_vec(),
        })
    }

    fn on_tmf(&mut self, t: TaskMgmtRequest) -> io::Result<()> {
        self.take_cmd_sn(t.immediate, t.cmd_sn);
        log!(
            "hostile: conn {}: TMF {:?} ITT {:#010x} RefTask {:#010x}: function complete",
            self.id,
            t.function,
            t.itt,
            t.referenced_task_tag
        );
        match t.function {
            TmfFunction::AbortTask => {
                self.writes.remove(&t.referenced_task_tag);
            }
            TmfFunction::AbortTaskSet
            | TmfFunction::ClearTaskSet
            | TmfFunction::LogicalUnitReset
            | TmfFunction::TargetWarmReset
            | TmfFunction::TargetColdReset => self.writes.clear(),
            _ => {}
        }
        let seq = self.status_seq();
        let mut h = [0u8; BHS_LEN];
        TaskMgmtResponse {
            response: TmfResponse::Complete,
            itt: t.itt,
            stat_sn: seq.stat_sn,
            exp_cmd_sn: seq.exp_cmd_sn,
            max_cmd_sn: seq.max_cmd_sn,
        }
        .emit(&mut h);
        self.send(&Out {
            bhs: h,
            ahs: Vec::new(),
            data: Vec::new(),
        })
    }

    fn on_text(&mut self, t: TextRequest, data: &[u8]) -> io::Result<()> {
        self.take_cmd_sn(t.immediate, t.cmd_sn);
        let mut buf = vec![0u8; 1024];
        let mut w = TextWriter::new(&mut buf);
        let asks = text::pairs(data).any(|p| matches!(p, Ok(("SendTargets", _))));
        if asks {
            let addr = self.sock.local_addr()?;
            let _ = w.push("TargetName", TARGET_NAME);
            let _ = w.push("TargetAddress", &format!("{addr},1"));
        }
        let out = w.as_bytes().to_vec();
        let seq = self.status_seq();
        let mut h = [0u8; BHS_LEN];
        TextResponse {
            final_bit: true,
            cont: false,
            lun: t.lun,
            itt: t.itt,
            ttt: RESERVED_TAG,
            stat_sn: seq.stat_sn,
            exp_cmd_sn: seq.exp_cmd_sn,
            max_cmd_sn: seq.max_cmd_sn,
            data_segment_len: out.len() as u32,
        }
        .emit(&mut h);
        self.send(&Out {
            bhs: h,
            ahs: Vec::new(),
            data: out,
        })
    }

    fn ctx(&self, c: &ScsiCommand) -> Ctx {
        Ctx {
            seq: self.seq(),
            itt: c.itt,
            lun: c.lun,
            edtl: c.expected_data_len,
            mrdsl: self.p.initiator_mrdsl,
            max_burst: self.p.max_burst,
            unused_itt: self.unused_itt(),
            data: Vec::new(),
        }
    }

    fn unused_itt(&self) -> u32 {
        let mut itt = 0x7ead_0001u32;
        while self.seen_itts.contains(&itt) || itt == RESERVED_TAG {
            itt = itt.wrapping_add(0x0001_0001);
        }
        itt
    }

    /// True if this READ/WRITE sets the scenario off (counts it).
    fn fires(&self, rw: scsi::Rw) -> bool {
        let o = &self.shared.opts;
        let wanted = match o.scenario.trigger() {
            Trigger::Read => !rw.write,
            Trigger::Write => rw.write,
            Trigger::ReadWrite => true,
            Trigger::Login | Trigger::Logout | Trigger::Never | Trigger::Always => false,
        };
        // The triggering scenarios have one disk, whatever the LUN field.
        let Some(disk) = self.shared.luns.disk(0) else {
            return false;
        };
        let end_zone = disk.blocks().saturating_sub(END_ZONE_BLOCKS);
        if !wanted || rw.lba < o.trigger_lba || rw.lba.saturating_add(rw.blocks) > end_zone {
            return false;
        }
        o.trigger_count == 0 || self.shared.fired.fetch_add(1, Ordering::SeqCst) < o.trigger_count
    }

    fn send_all(&mut self, pdus: &[Out]) -> io::Result<()> {
        for o in pdus {
            self.send(o)?;
        }
        Ok(())
    }

    fn on_command(&mut self, c: ScsiCommand, data: &[u8]) -> io::Result<()> {
        self.take_cmd_sn(c.immediate, c.cmd_sn);
        self.seen_itts.insert(c.itt);
        // A new command under this ITT: whatever a scenario left of an
        // earlier one is over (the initiator reuses tags).
        self.dead.remove(&c.itt);
        let mut ctx = self.ctx(&c);
        let shared = self.shared;
        if let Some(rw) = scsi::rw(&c.cdb).filter(|rw| self.fires(*rw)) {
            if let (false, Some(disk)) = (rw.write, shared.luns.disk(c.lun)) {
                let len = (rw.blocks * scsi::BLOCK).min(u64::from(c.expected_data_len));
                ctx.data = disk.read(rw.lba * scsi::BLOCK, len);
            }
            self.next_ttt = self.next_ttt.wrapping_add(1);
            let scenario = self.shared.opts.scenario;
            let pdus = forge::forge(scenario, &ctx, self.next_ttt);
            log!(
                "hostile: scenario {} triggered on ITT {:#010x} ({} LBA {} x{}, EDTL {}): sending {} PDU(s): {}",
                scenario.name(),
                c.itt,
                if rw.write { "WRITE" } else { "READ" },
                rw.lba,
                rw.blocks,
                c.expected_data_len,
                pdus.len(),
                pdus.iter()
                    .map(|o| format!("{:?}", Pdu::parse(&o.bhs).map(|p| p.opcode())))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            self.send_all(&pdus)?;
            // A response or async message that carried the right StatSN used
            // it up.
            let used = pdus.iter().any(|o| match Pdu::parse(&o.bhs) {
                Ok(Pdu::ScsiResponse(r)) => r.stat_sn == self.stat_sn,
                Ok(Pdu::AsyncMessage(a)) => a.stat_sn == self.stat_sn,
                _ => false,
            });
            if used {
                self.stat_sn = self.stat_sn.wrapping_add(1);
            }
            self.dead.insert(c.itt);
            if scenario == Scenario::AsyncDrop {
                // The drop the message announced.
                let _ = self.sock.shutdown(Shutdown::Both);
            }
            return Ok(());
        }
        match shared.luns.execute(c.lun, &c.cdb) {
            Outcome::Read(bytes) => {
                let n = bytes.len().min(c.expected_data_len as usize);
                let sent = bytes.len() as u64;
                if self.shared.opts.scenario == Scenario::QuirkOuNonFinal && n > 0 {
                    let status = self.status_seq();
                    let pdus = forge::data_in_ou_quirk(&ctx, &bytes[..n], sent, status);
                    let flagged = pdus.len().saturating_sub(1);
                    if flagged > 0 && self.quirky() {
                        self.quirk_applied(flagged as u64, || {
                            format!(
                                "ITT {:#010x} (CDB {:#04x}, {n} bytes): U bit and a residual count on {flagged} Data-In PDUs without status, status in the last",
                                c.itt, c.cdb[0]
                            )
                        });
                    }
                    self.send_all(&pdus)?;
                } else {
                    let (mut pdus, data_sn) = forge::data_in(&ctx, &bytes[..n]);
                    ctx.seq = self.status_seq();
                    pdus.push(forge::response(&ctx, GOOD, None, sent, data_sn));
                    self.send_all(&pdus)?;
                }
            }
            Outcome::Good => {
                ctx.seq = self.status_seq();
                self.send(&forge::response(&ctx, GOOD, None, 0, 0))?;
            }
            Outcome::Check(sense) => {
                if sense == Sense::LUN_NOT_SUPPORTED {
                    log!(
                        "hostile: conn {}: CDB {:#04x} to LUN field {:#018x}: LOGICAL UNIT NOT SUPPORTED",
                        self.id,
                        c.cdb[0],
                        c.lun
                    );
                }
                if c.write && !c.final_bit {
                    // Unsolicited Data-Outs follow: dropped silently.
                    self.dead.insert(c.itt);
                }
                ctx.seq = self.status_seq();
                self.send(&forge::response(&ctx, CHECK_CONDITION, Some(sense), 0, 0))?;
            }
            Outcome::Write { offset, len } => {
                let mut buf = vec![0u8; c.expected_data_len as usize];
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                self.writes.insert(
                    c.itt,
                    WriteTask {
                        lun: c.lun,
                        offset,
                        len,
                        buf,
                        received: data.len(),
                        unsolicited_done: c.final_bit,
                        r2t: None,
                        r2t_sn: 0,
                    },
                );
                self.advance_write(c.itt)?;
            }
        }
        Ok(())
    }

    fn on_data_out(&mut self, d: DataOut, data: &[u8]) -> io::Result<()> {
        if self.dead.contains(&d.itt) {
            return Ok(());
        }
        let Some(t) = self.writes.get_mut(&d.itt) else {
            log!(
                "hostile: conn {}: Data-Out for unknown ITT {:#010x}",
                self.id,
                d.itt
            );
            return Ok(());
        };
        let off = d.buffer_offset as usize;
        if let Some(dst) = t.buf.get_mut(off..off.saturating_add(data.len())) {
            dst.copy_from_slice(data);
        }
        t.received = t.received.saturating_add(data.len());
        if d.final_bit {
            if d.ttt == RESERVED_TAG {
                t.unsolicited_done = true;
            } else if t.r2t == Some(d.ttt) {
                t.r2t = None;
            }
        }
        self.advance_write(d.itt)
    }

    /// Completes a WRITE whose data is all in, or asks for the next burst.
    fn advance_write(&mut self, itt: u32) -> io::Result<()> {
        let Some(t) = self.writes.get(&itt) else {
            return Ok(());
        };
        let mut ctx = Ctx {
            seq: self.seq(),
            itt,
            lun: t.lun,
            edtl: t.buf.len() as u32,
            mrdsl: self.p.initiator_mrdsl,
            max_burst: self.p.max_burst,
            unused_itt: 0,
            data: Vec::new(),
        };
        if t.received >= t.buf.len() {
            let Some(t) = self.writes.remove(&itt) else {
                return Ok(());
            };
            let n = (t.len as usize).min(t.buf.len());
            if let Some(disk) = self.shared.luns.disk(t.lun) {
                disk.write(t.offset, &t.buf[..n]);
            }
            ctx.seq = self.status_seq();
            self.send(&forge::response(&ctx, GOOD, None, t.len, t.r2t_sn))?;
        } else if t.unsolicited_done && t.r2t.is_none() {
            let offset = t.received;
            let len = (t.buf.len() - offset).min(self.p.max_burst as usize);
            self.next_ttt = self.next_ttt.wrapping_add(1);
            let ttt = self.next_ttt;
            let r2t_sn = t.r2t_sn;
            if let Some(t) = self.writes.get_mut(&itt) {
                t.r2t = Some(ttt);
                t.r2t_sn += 1;
            }
            let mut h = [0u8; BHS_LEN];
            iscsi_proto::pdu::R2t {
                lun: ctx.lun,
                itt,
                ttt,
                stat_sn: ctx.seq.stat_sn,
                exp_cmd_sn: ctx.seq.exp_cmd_sn,
                max_cmd_sn: ctx.seq.max_cmd_sn,
                r2t_sn,
                buffer_offset: offset as u32,
                desired_data_len: len as u32,
            }
            .emit(&mut h);
            self.send(&Out {
                bhs: h,
                ahs: Vec::new(),
                data: Vec::new(),
            })?;
        }
        Ok(())
    }
}
