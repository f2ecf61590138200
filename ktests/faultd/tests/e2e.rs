//! End-to-end checks of the `iscsi-faultd` binary on the host, no kernel needed:
//! `iscsictl discover` / `login --dry-run` through the proxy and against the
//! hostile target (good and login-garbage), a small iscsi-proto initiator driving
//! SCSI I/O through the proxy while it holds, stalls, delays, corrupts and drops,
//! every I/O scenario of the hostile target fired over TCP, `reject-storm`
//! (Rejects for commands, NOP-Outs and TMFs, Logout still answered) and
//! `logout-close[-early]` (the connection ends right after the Logout Response).

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use iscsi_faultd::hostile::forge::Scenario;
use iscsi_faultd::wire::{encode, settings, Deframer, Digests, Frame};
use iscsi_proto::bhs::{Bhs, Opcode, BHS_LEN, RESERVED_TAG};
use iscsi_proto::framing::FramingSettings;
use iscsi_proto::login::{
    isid_random, Login, LoginConfig, LoginStep, NoChap, LOGIN_BUFFER_LEN, MAX_LOGIN_PDU_LEN,
};
use iscsi_proto::negotiate::{Digest, DigestOffer, Proposal, SessionParams};
use iscsi_proto::pdu::{
    DataOut, LogoutReason, LogoutRequest, LogoutResponse, NopOut, Pdu, Reject, ScsiCommand,
    ScsiResponse, TaskAttr, TaskMgmtRequest, TmfFunction,
};

const TARGET: &str = "iqn.2026-11.dev.iscsi-rs:hostile";
const INAME: &str = "iqn.2026-11.dev.iscsi-rs.test:faultd";

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

/// A running iscsi-faultd, killed on drop; its stderr collected for assertions.
struct Daemon {
    child: Child,
    log: Arc<Mutex<String>>,
    addr: SocketAddr,
}

impl Daemon {
    fn start(args: &[&str]) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_iscsi-faultd"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start iscsi-faultd");
        let err = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    if let Some(i) = line.find("listening on ") {
                        let rest = &line[i + "listening on ".len()..];
                        let a = rest.split([',', ' ']).next().unwrap_or("");
                        let _ = tx.send(a.parse::<SocketAddr>().ok());
                    }
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("iscsi-faultd {args:?} did not start"));
        Daemon { child, log, addr }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn wait_log(&self, needle: &str) -> bool {
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if self.log().contains(needle) {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hostile(scenario: &str) -> Daemon {
    Daemon::start(&[
        "hostile",
        "--listen",
        "127.0.0.1:0",
        "--scenario",
        scenario,
        "--lun-size-mb",
        "8",
    ])
}

/// A proxy in front of `target` and its control socket path.
fn proxy(target: SocketAddr) -> (Daemon, PathBuf) {
    static N: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "faultd-test-{}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let d = Daemon::start(&[
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--target",
        &target.to_string(),
        "--control",
        path.to_str().unwrap(),
    ]);
    (d, path)
}

/// `iscsi-faultd ctl`: exit code and reply.
fn ctl(path: &Path, cmd: &str) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_iscsi-faultd"))
        .arg("ctl")
        .arg(path)
        .args(cmd.split_whitespace())
        .output()
        .expect("run ctl");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).trim().to_owned(),
    )
}

fn ctl_ok(path: &Path, cmd: &str) -> String {
    let (code, reply) = ctl(path, cmd);
    assert_eq!(code, 0, "{cmd}: {reply}");
    reply
}

/// The iscsictl built next to this test (`cargo test --workspace` builds it for
/// its own tests); built on demand when this package is tested alone.
fn iscsictl_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join("iscsictl");
    if !p.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-p", "iscsictl"])
            .status()
            .expect("cargo build -p iscsictl");
        assert!(st.success());
    }
    p
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn iscsictl(args: &[&str]) -> Run {
    let o = Command::new(iscsictl_path())
        .args(args)
        .args(["--initiator-name", INAME, "--login-timeout", "10"])
        .stdin(Stdio::null())
        .output()
        .expect("run iscsictl");
    Run {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn dry_login(portal: SocketAddr, extra: &[&str]) -> Run {
    let p = portal.to_string();
    let mut args = vec!["login", "-p", &p, "-t", TARGET, "--dry-run"];
    args.extend_from_slice(extra);
    iscsictl(&args)
}

// ---------------------------------------------------------------------------
// A minimal initiator on iscsi-proto
// ---------------------------------------------------------------------------

struct Initiator {
    sock: TcpStream,
    df: Deframer,
    digests: Digests,
    params: SessionParams,
    cmd_sn: u32,
    exp_stat_sn: u32,
    next_itt: u32,
    /// The BHS of the last PDU sent.
    last_bhs: [u8; BHS_LEN],
    /// The LUN field commands and Data-Outs carry.
    lun: u64,
    /// Every PDU received in the full feature phase, with the CmdSN the next
    /// command would have had when it arrived.
    seen: Vec<([u8; BHS_LEN], u32)>,
}

fn initiator_settings(d: Digests, max: u32) -> FramingSettings {
    FramingSettings {
        target_opcodes_only: true,
        ..settings(d, max)
    }
}

impl Initiator {
    fn login(addr: SocketAddr, digests: bool) -> Initiator {
        Self::login_with(addr, digests, true)
    }

    /// `initial_r2t: false` also offers ImmediateData (the default), so writes
    /// carry immediate and unsolicited data.
    fn login_with(addr: SocketAddr, digests: bool, initial_r2t: bool) -> Initiator {
        Self::login_mrdsl(addr, digests, initial_r2t, 8192)
    }

    /// `login_with`, declaring MaxRecvDataSegmentLength `mrdsl`.
    fn login_mrdsl(addr: SocketAddr, digests: bool, initial_r2t: bool, mrdsl: u32) -> Initiator {
        let sock = TcpStream::connect(addr).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        sock.set_nodelay(true).unwrap();
        let mut proposal = Proposal::normal(INAME, TARGET);
        if digests {
            proposal.header_digest = DigestOffer::Crc32c;
            proposal.data_digest = DigestOffer::Crc32c;
        }
        proposal.initial_r2t = initial_r2t;
        proposal.max_recv_data_segment_len = mrdsl;
        let config = LoginConfig::new(proposal, isid_random([1, 2, 3], 7));
        let (mut rxb, mut txb) = (vec![0u8; LOGIN_BUFFER_LEN], vec![0u8; LOGIN_BUFFER_LEN]);
        let mut login = Login::new(config, &mut rxb, &mut txb).expect("login config");
        let mut me = Initiator {
            sock,
            df: Deframer::new(initiator_settings(Digests::default(), 8192), false),
            digests: Digests::default(),
            params: SessionParams::DEFAULT,
            cmd_sn: 0,
            exp_stat_sn: 0,
            next_itt: 0x10,
            last_bhs: [0; BHS_LEN],
            lun: 0,
            seen: Vec::new(),
        };
        let mut out = vec![0u8; MAX_LOGIN_PDU_LEN];
        let outcome = loop {
            let n = login.next_request(&mut out).expect("login request");
            me.sock.write_all(&out[..n]).unwrap();
            let f = me.frame().expect("login response");
            match login.handle_response(&f.bhs, &f.data, &mut NoChap) {
                Ok(LoginStep::SendNext) => {}
                Ok(LoginStep::Complete(o)) => break o,
                other => panic!("login: {other:?}"),
            }
        };
        me.params = outcome.params;
        me.digests = Digests {
            header: outcome.params.header_digest == Digest::Crc32c,
            data: outcome.params.data_digest == Digest::Crc32c,
        };
        me.df.set_settings(initiator_settings(
            me.digests,
            outcome.params.max_recv_data_segment_len,
        ));
        me.cmd_sn = outcome.cmd_sn;
        me.exp_stat_sn = outcome.exp_stat_sn;
        me.seen.clear();
        me
    }

    /// The next PDU; Err on a framing error, EOF or timeout.
    fn frame(&mut self) -> Result<Frame, String> {
        let mut buf = vec![0u8; 65536];
        loop {
            match self.df.next_frame() {
                Ok(Some(f)) => {
                    self.seen.push((f.bhs, self.cmd_sn));
                    if let Ok(p) = Pdu::parse(&f.bhs) {
                        let sn = match p {
                            Pdu::ScsiResponse(r) => Some(r.stat_sn),
                            Pdu::NopIn(n) if n.itt != RESERVED_TAG => Some(n.stat_sn),
                            Pdu::TaskMgmtResponse(t) => Some(t.stat_sn),
                            Pdu::Reject(r) => Some(r.stat_sn),
                            Pdu::LogoutResponse(l) => Some(l.stat_sn),
                            _ => None,
                        };
                        if let Some(sn) = sn {
                            self.exp_stat_sn = sn.wrapping_add(1);
                        }
                    }
                    return Ok(f);
                }
                Ok(None) => {}
                Err(e) => return Err(format!("framing: {e:?}")),
            }
            match std::io::Read::read(&mut self.sock, &mut buf) {
                Ok(0) => return Err("eof".into()),
                Ok(n) => self.df.push(&buf[..n]),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    fn send(&mut self, bhs: &[u8; BHS_LEN], data: &[u8]) {
        self.last_bhs = *bhs;
        self.sock
            .write_all(&encode(bhs, &[], data, self.digests))
            .expect("send");
    }

    fn command(&mut self, cdb: [u8; 16], edtl: u32, read: bool) -> u32 {
        self.command_with(cdb, edtl, read, &[], true)
    }

    /// A SCSI Command carrying `immediate` data; `final_bit` false announces
    /// unsolicited Data-Outs.
    fn command_with(
        &mut self,
        cdb: [u8; 16],
        edtl: u32,
        read: bool,
        immediate: &[u8],
        final_bit: bool,
    ) -> u32 {
        let itt = self.next_itt;
        self.next_itt += 1;
        let mut h = [0u8; BHS_LEN];
        ScsiCommand {
            immediate: false,
            final_bit,
            read,
            write: !read && edtl > 0,
            attr: TaskAttr::Simple,
            total_ahs_len: 0,
            data_segment_len: immediate.len() as u32,
            lun: self.lun,
            itt,
            expected_data_len: edtl,
            cmd_sn: self.cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
            cdb,
        }
        .emit(&mut h);
        self.cmd_sn = self.cmd_sn.wrapping_add(1);
        self.send(&h, immediate);
        itt
    }

    /// Data-Outs for `data[start..end]`, each at most MaxXmitDataSegmentLength,
    /// F on the last.
    fn data_out(&mut self, itt: u32, ttt: u32, data: &[u8], start: usize, end: usize) {
        let step = self.params.max_xmit_data_segment_len as usize;
        let mut off = start;
        let mut data_sn = 0;
        while off < end {
            let n = step.min(end - off);
            let mut h = [0u8; BHS_LEN];
            DataOut {
                final_bit: off + n == end,
                lun: self.lun,
                itt,
                ttt,
                exp_stat_sn: self.exp_stat_sn,
                data_sn,
                buffer_offset: off as u32,
                data_segment_len: n as u32,
            }
            .emit(&mut h);
            self.send(&h, &data[off..off + n]);
            off += n;
            data_sn += 1;
        }
    }

    fn rw_cdb(op: u8, lba: u32, blocks: u16) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[0] = op;
        c[2..6].copy_from_slice(&lba.to_be_bytes());
        c[7..9].copy_from_slice(&blocks.to_be_bytes());
        c
    }

    fn start_read(&mut self, lba: u32, blocks: u16) -> u32 {
        self.command(
            Self::rw_cdb(0x28, lba, blocks),
            u32::from(blocks) * 512,
            true,
        )
    }

    /// Collects a read's Data-In until its GOOD status (a SCSI Response, or a
    /// Data-In with the S bit). Data-In fields are read from the BHS directly:
    /// O/U bits without S (`quirk-ou-nonfinal`) are ignored here as RFC 7143
    /// §11.7.1 has them valid only with S, whatever proto's parser says.
    fn finish_read(&mut self, itt: u32, len: usize) -> Result<Vec<u8>, String> {
        let mut data = vec![0u8; len];
        loop {
            let f = self.frame()?;
            let b = Bhs::from_array(&f.bhs);
            if b.opcode() == Opcode::DataIn && b.itt() == itt {
                let o = b.be32(40..44) as usize;
                data.get_mut(o..o + f.data.len())
                    .ok_or("Data-In outside the buffer")?
                    .copy_from_slice(&f.data);
                if b.flags() & 0x01 != 0 {
                    return match b.byte(3) {
                        0 => Ok(data),
                        s => Err(format!("status {s:#x}")),
                    };
                }
                continue;
            }
            match Pdu::parse(&f.bhs).map_err(|e| e.to_string())? {
                Pdu::ScsiResponse(r) if r.itt == itt => {
                    return match r.status {
                        0 => Ok(data),
                        s => Err(format!("status {s:#x}")),
                    };
                }
                other => return Err(format!("unexpected {other:?}")),
            }
        }
    }

    fn read(&mut self, lba: u32, blocks: u16) -> Result<Vec<u8>, String> {
        let itt = self.start_read(lba, blocks);
        self.finish_read(itt, usize::from(blocks) * 512)
    }

    /// WRITE(10) as the negotiated keys allow: immediate data, unsolicited
    /// Data-Outs up to FirstBurstLength, then Data-Outs for each R2T.
    fn write(&mut self, lba: u32, data: &[u8]) -> Result<(), String> {
        let blocks = (data.len() / 512) as u16;
        let p = self.params;
        let first_burst = if p.initial_r2t && !p.immediate_data {
            0
        } else {
            (p.first_burst_len as usize).min(data.len())
        };
        let imm = if p.immediate_data {
            first_burst.min(p.max_xmit_data_segment_len as usize)
        } else {
            0
        };
        let unsolicited = if p.initial_r2t { imm } else { first_burst };
        let cdb = Self::rw_cdb(0x2a, lba, blocks);
        let itt = self.command_with(
            cdb,
            data.len() as u32,
            false,
            &data[..imm],
            unsolicited == imm,
        );
        if unsolicited > imm {
            self.data_out(itt, RESERVED_TAG, data, imm, unsolicited);
        }
        loop {
            let f = self.frame()?;
            match Pdu::parse(&f.bhs).map_err(|e| e.to_string())? {
                Pdu::R2t(r) if r.itt == itt => {
                    let start = r.buffer_offset as usize;
                    let end = start + r.desired_data_len as usize;
                    if start < unsolicited || end > data.len() {
                        return Err(format!("bad R2T {r:?}"));
                    }
                    self.data_out(itt, r.ttt, data, start, end);
                }
                Pdu::ScsiResponse(r) if r.itt == itt && r.status == 0 => return Ok(()),
                other => return Err(format!("unexpected {other:?}")),
            }
        }
    }

    fn nop(&mut self, itt: u32) {
        let mut h = [0u8; BHS_LEN];
        NopOut {
            immediate: true,
            lun: 0,
            itt,
            ttt: RESERVED_TAG,
            cmd_sn: self.cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
            data_segment_len: 0,
        }
        .emit(&mut h);
        self.send(&h, &[]);
    }

    /// NOP-Out and wait for its NOP-In.
    fn ping(&mut self) -> Duration {
        let t = Instant::now();
        self.nop(0x9999);
        let f = self.frame().expect("NOP-In");
        let p = Pdu::parse(&f.bhs);
        assert!(matches!(p, Ok(Pdu::NopIn(n)) if n.itt == 0x9999), "{p:?}");
        t.elapsed()
    }

    fn abort_task(&mut self, referenced: u32) -> u32 {
        let itt = self.next_itt;
        self.next_itt += 1;
        let mut h = [0u8; BHS_LEN];
        TaskMgmtRequest {
            immediate: true,
            function: TmfFunction::AbortTask,
            lun: 0,
            itt,
            referenced_task_tag: referenced,
            cmd_sn: self.cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
            ref_cmd_sn: self.cmd_sn.wrapping_sub(1),
            exp_data_sn: 0,
        }
        .emit(&mut h);
        self.send(&h, &[]);
        itt
    }

    /// An immediate Logout (close the session) and its response.
    fn logout(&mut self) -> LogoutResponse {
        let itt = self.next_itt;
        self.next_itt += 1;
        let mut h = [0u8; BHS_LEN];
        LogoutRequest {
            immediate: true,
            reason: LogoutReason::CloseSession,
            itt,
            cid: 0,
            cmd_sn: self.cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
        }
        .emit(&mut h);
        self.send(&h, &[]);
        let f = self.frame().expect("Logout Response");
        match Pdu::parse(&f.bhs) {
            Ok(Pdu::LogoutResponse(r)) if r.itt == itt => r,
            other => panic!("expected the Logout Response, got {other:?}"),
        }
    }

    /// The next PDU, which must be a Reject (protocol error) carrying the BHS
    /// just sent.
    fn expect_reject(&mut self, what: &str) -> Reject {
        let sent = self.last_bhs;
        let f = self.frame().unwrap_or_else(|e| panic!("{what}: {e}"));
        let r = match Pdu::parse(&f.bhs) {
            Ok(Pdu::Reject(r)) => r,
            other => panic!("{what}: expected a Reject, got {other:?}"),
        };
        assert_eq!(r.reason.to_u8(), 0x04, "{what}: reason");
        assert_eq!(f.bhs[16..20], [0xff; 4], "{what}: the Reject's ITT");
        assert_eq!(f.data.len(), BHS_LEN, "{what}: data segment");
        assert_eq!(
            Reject::rejected_header(&f.data),
            Ok(&sent),
            "{what}: the rejected BHS"
        );
        r
    }

    /// PDUs until `quiet` passes without one, or the first error.
    fn drain(&mut self, quiet: Duration) -> (Vec<Frame>, Option<String>) {
        self.sock.set_read_timeout(Some(quiet)).unwrap();
        let mut got = Vec::new();
        loop {
            match self.frame() {
                Ok(f) => got.push(f),
                Err(e) if e.contains("timed out") || e.contains("Resource temporarily") => {
                    return (got, None)
                }
                Err(e) => return (got, Some(e)),
            }
        }
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn stat(reply: &str, key: &str) -> u64 {
    reply
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} not in {reply}"))
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn iscsictl_through_the_proxy_and_control_commands() {
    let t = hostile("good");
    let (p, ctlp) = proxy(t.addr);
    let portal = p.addr.to_string();
    let r = iscsictl(&["discover", "-p", &portal]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains(TARGET), "{}", r.stdout);
    let r = dry_login(
        p.addr,
        &["--header-digest", "crc32c", "--data-digest", "crc32c"],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("HeaderDigest = CRC32C"), "{}", r.stdout);
    assert!(p.log().contains("HeaderDigest=CRC32C DataDigest=CRC32C"));

    let s = ctl_ok(&ctlp, "stats");
    assert_eq!(stat(&s, "accepted"), 2);
    assert_eq!(stat(&s, "raw_fallbacks"), 0);
    assert!(stat(&s, "pdus_i2t") >= 6, "{s}");
    assert_eq!(ctl_ok(&ctlp, "drop"), "ok dropped 0");
    assert_eq!(ctl(&ctlp, "reboot").0, 1);
    assert_eq!(ctl(&ctlp, "stall").0, 1);

    // down: connections are refused (reset) until up.
    assert_eq!(ctl_ok(&ctlp, "down"), "ok down dropped 0");
    let r = iscsictl(&["discover", "-p", &portal]);
    assert_ne!(r.code, Some(0));
    assert_eq!(stat(&ctl_ok(&ctlp, "stats"), "refused"), 1);
    ctl_ok(&ctlp, "up");
    assert_eq!(iscsictl(&["discover", "-p", &portal]).code, Some(0));
}

#[test]
fn a_stall_holds_back_a_half_close_until_resumed() {
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (p, ctlp) = proxy(target.local_addr().unwrap());
    let client = TcpStream::connect(p.addr).unwrap();
    let (mut server, _) = target.accept().unwrap();
    ctl_ok(&ctlp, "stall 0");
    client.shutdown(std::net::Shutdown::Write).unwrap();
    server
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut b = [0u8; 1];
    let e = server.read(&mut b).expect_err("the FIN passed a stall");
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{e}"
    );
    ctl_ok(&ctlp, "resume");
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(server.read(&mut b).unwrap(), 0, "EOF once resumed");
}

#[test]
fn iscsictl_against_the_hostile_target() {
    let t = hostile("good");
    let r = dry_login(t.addr, &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("logged out"), "{}", r.stdout);

    let t = hostile("login-garbage");
    let r = iscsictl(&["discover", "-p", &t.addr.to_string()]);
    assert_eq!(r.code, Some(0), "discovery is left alone: {}", r.stderr);
    let r = dry_login(t.addr, &[]);
    assert_eq!(r.code, Some(7), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("protocol violation"), "{}", r.stderr);
    assert!(t.log().contains("scenario login-garbage triggered"));
}

#[test]
fn io_through_the_proxy_with_faults() {
    let t = hostile("good");
    let (p, c) = proxy(t.addr);
    let mut s = Initiator::login(p.addr, true);
    assert!(s.digests.header && s.digests.data);

    // WRITE through R2Ts (InitialR2T=Yes) and READ back.
    let data = pattern(128 * 1024, 1);
    s.write(100, &data).expect("write");
    assert_eq!(s.read(100, 256).expect("read"), data);

    // hold-scsi: NOP-In and TMF Response pass, the read's Data-In waits.
    ctl_ok(&c, "hold-scsi 0");
    let itt = s.start_read(100, 8);
    s.ping();
    let tmf = s.abort_task(itt);
    let f = s.frame().expect("TMF response");
    assert!(matches!(Pdu::parse(&f.bhs), Ok(Pdu::TaskMgmtResponse(r)) if r.itt == tmf));
    let st = ctl_ok(&c, "stats");
    assert_eq!(stat(&st, "abort_task"), 1);
    assert!(stat(&st, "held") >= 2, "{st}");
    ctl_ok(&c, "resume");
    assert_eq!(s.finish_read(itt, 4096).expect("released"), data[..4096]);

    // hold-scsi … discard: the held completion never arrives.
    assert_eq!(
        ctl_ok(&c, "hold-scsi 200 discard"),
        "ok hold-scsi 200 discard"
    );
    let lost = s.start_read(100, 8);
    let (got, err) = s.drain(Duration::from_millis(600));
    assert!(got.is_empty() && err.is_none(), "{got:?} {err:?}");
    s.abort_task(lost);
    let f = s.frame().expect("TMF response");
    assert!(matches!(Pdu::parse(&f.bhs), Ok(Pdu::TaskMgmtResponse(_))));
    assert!(stat(&ctl_ok(&c, "stats"), "discarded") >= 2);
    s.sock
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();

    // stall and delay slow a round trip down.
    ctl_ok(&c, "stall 300");
    assert!(s.ping() >= Duration::from_millis(250));
    ctl_ok(&c, "delay 100");
    assert!(s.ping() >= Duration::from_millis(190));
    ctl_ok(&c, "delay 0");
    assert!(s.ping() < Duration::from_millis(150));

    // corrupt-data t2i: the next Data-In fails our data digest check.
    assert_eq!(ctl_ok(&c, "corrupt-data t2i"), "ok corrupt-data t2i armed");
    let e = s.read(100, 8).expect_err("digest error");
    assert!(e.contains("DataDigest"), "{e}");
    assert_eq!(stat(&ctl_ok(&c, "stats"), "corrupt_data"), 1);
    drop(s);

    // corrupt-header i2t: the target fails the header digest and hangs up.
    let mut s = Initiator::login(p.addr, true);
    ctl_ok(&c, "corrupt-header i2t");
    s.nop(0x77);
    let (_, err) = s.drain(Duration::from_secs(3));
    assert!(err.is_some(), "the target kept talking");
    assert!(t.wait_log("HeaderDigest"), "{}", t.log());
    drop(s);

    // drop: a live connection is reset.
    let mut s = Initiator::login(p.addr, true);
    s.ping();
    assert_eq!(ctl_ok(&c, "drop"), "ok dropped 1");
    let e = s.frame().expect_err("dropped");
    assert!(e.contains("reset"), "the initiator side gets a RST: {e}");
    // The data survived, and a new connection works.
    let mut s = Initiator::login(p.addr, false);
    assert_eq!(s.read(100, 256).expect("read"), data);
}

#[test]
fn every_io_scenario_fires_at_lba_1000_then_serves_correctly() {
    for &sc in Scenario::ALL {
        let write = match sc.trigger() {
            iscsi_faultd::hostile::forge::Trigger::Read => false,
            iscsi_faultd::hostile::forge::Trigger::Write => true,
            _ => continue,
        };
        let name = sc.name();
        let t = hostile(name);
        let mut s = Initiator::login(t.addr, true);
        // Below the trigger LBA all is well.
        let data = pattern(4096, 9);
        s.write(8, &data).expect("write below the trigger");
        assert_eq!(s.read(8, 8).expect("read below the trigger"), data);
        // The trigger.
        if write {
            s.command(Initiator::rw_cdb(0x2a, 1000, 8), 4096, false);
        } else {
            s.start_read(1000, 8);
        }
        let (got, err) = s.drain(Duration::from_millis(300));
        assert!(
            t.wait_log(&format!("scenario {name} triggered on ITT")),
            "{name}: {}",
            t.log()
        );
        let last = got.last().map(|f| Pdu::parse(&f.bhs));
        match sc {
            Scenario::DslTooLong => assert!(
                err.as_deref()
                    .is_some_and(|e| e.contains("DataSegmentTooLong")),
                "{name}: {err:?}"
            ),
            Scenario::AhsOverflow => assert!(
                err.as_deref().is_some_and(|e| e.contains("AhsMalformed")),
                "{name}: {err:?}"
            ),
            Scenario::UnknownOpcode => {
                assert!(
                    matches!(last, Some(Ok(Pdu::Unknown { opcode: 0x3a, .. }))),
                    "{name}"
                )
            }
            Scenario::SenseOverflow => {
                let f = got.last().expect("response");
                assert!(ScsiResponse::split_data(&f.data).is_err(), "{name}");
            }
            Scenario::R2tZero => {
                assert!(matches!(last, Some(Ok(Pdu::R2t(r))) if r.desired_data_len == 0))
            }
            Scenario::R2tBeyond => assert!(
                matches!(last, Some(Ok(Pdu::R2t(r))) if r.buffer_offset + r.desired_data_len > 4096)
            ),
            Scenario::DataInOffset | Scenario::DataInOverrun | Scenario::DataInUnknownItt => {
                assert!(matches!(last, Some(Ok(Pdu::DataIn(_)))), "{name}: {last:?}")
            }
            Scenario::AsyncLogout | Scenario::AsyncDrop | Scenario::AsyncRenegotiate => assert!(
                matches!(last, Some(Ok(Pdu::AsyncMessage(_)))),
                "{name}: {last:?}"
            ),
            _ => assert!(
                matches!(last, Some(Ok(Pdu::ScsiResponse(_)))),
                "{name}: {last:?}"
            ),
        }
        // The hostile target keeps the connection open after misbehaving,
        // except where it announced the drop.
        if err.is_none() && sc != Scenario::AsyncDrop {
            s.ping();
        }
        drop(s);
        // A new session (recovery) is served correctly: the trigger fired once.
        let mut s = Initiator::login(t.addr, true);
        if write {
            s.write(1000, &data).expect("write after the trigger");
        }
        let back = s.read(1000, 8).expect("read after the trigger");
        assert_eq!(back == data, write, "{name}");
    }
}

#[test]
fn unsolicited_writes_and_i2t_corruption() {
    let t = hostile("good");
    let (p, c) = proxy(t.addr);
    let mut s = Initiator::login_with(p.addr, true, false);
    assert!(!s.params.initial_r2t && s.params.immediate_data);
    // 64 KiB immediate+unsolicited (FirstBurstLength), the rest through R2Ts.
    let data = pattern(300 * 1024, 3);
    s.write(2000, &data).expect("write");
    assert_eq!(s.read(2000, 600).expect("read"), data);
    assert!(
        t.log().contains("InitialR2T=false ImmediateData=true"),
        "{}",
        t.log()
    );

    // corrupt-data i2t: the target sees a data digest error and hangs up.
    ctl_ok(&c, "corrupt-data i2t");
    let e = s.write(3000, &data[..8192]).expect_err("target hangs up");
    assert!(e == "eof" || e.contains("reset"), "{e}");
    assert!(t.wait_log("DataDigest"), "{}", t.log());
    assert_eq!(stat(&ctl_ok(&c, "stats"), "corrupt_data"), 1);
}

#[test]
fn reject_storm_rejects_commands_nops_and_tmfs_but_answers_logout() {
    let t = hostile("reject-storm");
    let mut s = Initiator::login(t.addr, true);
    // Before the trigger: a well-behaved target.
    let data = pattern(4096, 5);
    s.write(8, &data).expect("write below the trigger");
    assert_eq!(s.read(8, 8).expect("read below the trigger"), data);
    s.ping();
    s.command([0; 16], 0, false);
    let f = s.frame().expect("TEST UNIT READY response");
    assert!(
        matches!(Pdu::parse(&f.bhs), Ok(Pdu::ScsiResponse(r)) if r.status == 0),
        "TEST UNIT READY before the trigger"
    );
    assert!(!t.log().contains("triggered"), "{}", t.log());

    // The trigger: a READ at LBA 1000, itself rejected.
    let trigger_sn = s.cmd_sn;
    s.start_read(1000, 8);
    let mut rejects = vec![s.expect_reject("the triggering READ")];
    assert!(
        t.wait_log("hostile: scenario reject-storm triggered on ITT"),
        "{}",
        t.log()
    );

    // From now on every command, whatever its CDB or LBA.
    let mut inquiry = [0u8; 16];
    inquiry[0] = 0x12;
    inquiry[4] = 96;
    let mut report_luns = [0u8; 16];
    report_luns[0] = 0xa0;
    report_luns[6..10].copy_from_slice(&4096u32.to_be_bytes());
    for (cdb, edtl, read, what) in [
        ([0u8; 16], 0, false, "TEST UNIT READY"),
        (inquiry, 96, true, "INQUIRY"),
        (report_luns, 4096, true, "REPORT LUNS"),
        (
            Initiator::rw_cdb(0x28, 8, 8),
            4096,
            true,
            "READ below the trigger LBA",
        ),
    ] {
        s.command(cdb, edtl, read);
        rejects.push(s.expect_reject(what));
    }
    // A NOP-Out with an ITT and a TMF.
    s.nop(0x4242);
    rejects.push(s.expect_reject("NOP-Out with an ITT"));
    s.abort_task(0x10);
    rejects.push(s.expect_reject("ABORT TASK"));
    // A NOP-Out with the reserved ITT gets nothing.
    s.nop(RESERVED_TAG);
    let (got, err) = s.drain(Duration::from_millis(300));
    assert!(got.is_empty() && err.is_none(), "{got:?} {err:?}");
    s.sock
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();

    // Each Reject takes a StatSN; a rejected command's CmdSN is not taken, so
    // the window stays where the storm began.
    for w in rejects.windows(2) {
        assert_eq!(w[1].stat_sn, w[0].stat_sn.wrapping_add(1), "{rejects:?}");
    }
    for r in &rejects {
        assert_eq!(r.exp_cmd_sn, trigger_sn, "{r:?}");
        assert_eq!(r.max_cmd_sn, trigger_sn.wrapping_add(31), "{r:?}");
    }

    // Logout is still answered.
    let last = rejects.last().unwrap().stat_sn;
    let l = s.logout();
    assert_eq!(l.response, 0, "{l:?}");
    assert_eq!(l.stat_sn, last.wrapping_add(1), "{l:?}");
    drop(s);

    // A new session logs in, and the storm goes on there: a WRITE with
    // immediate and unsolicited data is rejected, its Data-Outs dropped silently.
    let mut s = Initiator::login_with(t.addr, true, false);
    assert!(!s.params.initial_r2t && s.params.immediate_data);
    let data = pattern(8192, 6);
    let cdb = Initiator::rw_cdb(0x2a, 2000, 16);
    let itt = s.command_with(cdb, 8192, false, &data[..4096], false);
    s.expect_reject("WRITE in a new session");
    s.data_out(itt, RESERVED_TAG, &data, 4096, 8192);
    s.nop(0x4343);
    s.expect_reject("NOP-Out after the Data-Outs");
    let (got, err) = s.drain(Duration::from_millis(300));
    assert!(got.is_empty() && err.is_none(), "{got:?} {err:?}");
    s.sock
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(s.logout().response, 0);
    let log = t.log();
    assert!(!log.contains("Data-Out for unknown ITT"), "{log}");
    assert_eq!(log.matches("scenario reject-storm triggered").count(), 1);
}

#[test]
fn logout_close_ends_the_connection_right_after_the_logout_response() {
    // The default target leaves the closing to the initiator (for 5 s).
    let t = hostile("good");
    let mut s = Initiator::login(t.addr, false);
    assert_eq!(s.logout().response, 0);
    s.sock
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let e = s.sock.read(&mut [0u8; 64]).expect_err("still open");
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{e}"
    );
    assert!(!t.log().contains("triggered"));

    for name in ["logout-close", "logout-close-early"] {
        let t = hostile(name);
        let mut s = Initiator::login(t.addr, true);
        let data = pattern(4096, 7);
        s.write(1000, &data).expect("write");
        assert_eq!(s.read(1000, 8).expect("read"), data, "{name}");
        s.ping();
        assert_eq!(s.logout().response, 0, "{name}");
        let start = Instant::now();
        s.sock
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        match s.sock.read(&mut [0u8; 64]) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("{name}: expected EOF or a reset, got {other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(1), "{name}");
        assert!(
            t.wait_log(&format!("scenario {name} triggered on ITT")),
            "{name}: {}",
            t.log()
        );
        // iscsictl's login/logout copes with it.
        let r = dry_login(t.addr, &[]);
        assert_eq!(r.code, Some(0), "{name}: {}", r.stderr);
    }
}

// ---------------------------------------------------------------------------
// Quirks: wrong all the time, never a dropped connection
// ---------------------------------------------------------------------------

/// StatSN of a status-bearing PDU (RFC 7143 §4.2.2.2: SCSI Response, Data-In
/// with S, NOP-In answering a NOP-Out, TMF/Text/Logout Response, Reject);
/// `None` for the others (R2T, Data-In without S, an unsolicited NOP-In).
fn status_sn(bhs: &[u8; BHS_LEN]) -> Option<u32> {
    let b = Bhs::from_array(bhs);
    let status = match b.opcode() {
        Opcode::ScsiResponse
        | Opcode::TaskMgmtResponse
        | Opcode::TextResponse
        | Opcode::LogoutResponse
        | Opcode::Reject => true,
        Opcode::NopIn => b.itt() != RESERVED_TAG,
        Opcode::DataIn => b.flags() & 0x01 != 0,
        _ => false,
    };
    status.then(|| b.be32(24..28))
}

/// The number in the `nth` (from 1) "hostile: conn N: scenario NAME applied
/// N times" line, logged when a connection ends: waits for it.
fn applied(t: &Daemon, name: &str, nth: usize) -> u64 {
    let tail = format!("scenario {name} applied ");
    let summaries = || -> Vec<u64> {
        t.log()
            .lines()
            .filter(|l| l.contains(&tail) && l.ends_with(" times"))
            .map(|l| l.rsplit(' ').nth(1).unwrap().parse().unwrap())
            .collect()
    };
    let end = Instant::now() + Duration::from_secs(10);
    while summaries().len() < nth && Instant::now() < end {
        thread::sleep(Duration::from_millis(10));
    }
    *summaries()
        .get(nth - 1)
        .unwrap_or_else(|| panic!("no summary {nth}: {}", t.log()))
}

/// Writes, reads back (R2T and unsolicited data paths), pings, aborts a task
/// that is not there and reads INQUIRY: one of each PDU the quirks touch.
fn exercise(s: &mut Initiator, lba: u32, seed: u8) {
    let data = pattern(128 * 1024, seed);
    s.write(lba, &data).expect("write");
    assert_eq!(s.read(lba, 256).expect("read"), data);
    let small = pattern(4096, seed ^ 0x55);
    s.write(lba + 512, &small).expect("small write");
    assert_eq!(s.read(lba + 512, 8).expect("small read"), small);
    s.ping();
    s.abort_task(0x7777);
    let f = s.frame().expect("TMF response");
    assert!(matches!(Pdu::parse(&f.bhs), Ok(Pdu::TaskMgmtResponse(_))));
    let mut inquiry = [0u8; 16];
    inquiry[0] = 0x12;
    inquiry[4] = 96;
    let itt = s.command(inquiry, 96, true);
    let inq = s.finish_read(itt, 96).expect("INQUIRY");
    assert_eq!(&inq[8..16], b"ISCSIRS ");
    s.ping();
}

#[test]
fn quirk_expcmdsn_acknowledges_one_command_more_on_every_pdu() {
    let name = "quirk-expcmdsn";
    let t = hostile(name);
    // Login and discovery are left alone.
    let r = iscsictl(&["discover", "-p", &t.addr.to_string()]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    for (conn, initial_r2t) in [(1, true), (2, false)] {
        let mut s = Initiator::login_with(t.addr, true, initial_r2t);
        exercise(&mut s, 2000, 1);
        let l = s.logout();
        assert_eq!(l.response, 0);
        let seen = std::mem::take(&mut s.seen);
        drop(s);
        // The initiator waits for each command, so the target has received
        // every CmdSN below `next`: the true ExpCmdSN is `next`.
        let mut kinds = std::collections::BTreeSet::new();
        for (bhs, next) in &seen {
            let b = Bhs::from_array(bhs);
            kinds.insert(format!("{:?}", b.opcode()));
            let (exp, max) = (b.be32(28..32), b.be32(32..36));
            assert_eq!(exp, next.wrapping_add(1), "{:?}", b.opcode());
            // MaxCmdSN: the true window of 32, so still >= ExpCmdSN - 1.
            assert_eq!(max, next.wrapping_add(31), "{:?}", b.opcode());
        }
        for k in [
            "DataIn",
            "ScsiResponse",
            "NopIn",
            "TaskMgmtResponse",
            "LogoutResponse",
        ] {
            assert!(kinds.contains(k), "no {k} in {kinds:?}");
        }
        if initial_r2t {
            assert!(kinds.contains("R2t"), "{kinds:?}");
        }
        assert_eq!(applied(&t, name, conn), seen.len() as u64, "{}", t.log());
        let firsts = t
            .log()
            .matches(&format!("scenario {name} applied first: "))
            .count();
        assert_eq!(firsts, conn, "one first-lie line per connection");
    }
}

#[test]
fn quirk_statsn_repeat_gives_every_other_status_the_previous_statsn() {
    let name = "quirk-statsn-repeat";
    let t = hostile(name);
    let r = iscsictl(&["discover", "-p", &t.addr.to_string()]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let mut s = Initiator::login_with(t.addr, true, false);
    let first = s.exp_stat_sn;
    exercise(&mut s, 3000, 2);
    // A PDU the target does not take (SNACK): its Reject takes a StatSN too.
    let mut snack = [0u8; BHS_LEN];
    snack[0] = 0x10;
    snack[1] = 0x80;
    snack[16..20].copy_from_slice(&RESERVED_TAG.to_be_bytes());
    s.send(&snack, &[]);
    let f = s.frame().expect("Reject");
    assert!(matches!(Pdu::parse(&f.bhs), Ok(Pdu::Reject(_))));
    assert_eq!(s.logout().response, 0);
    let seen = std::mem::take(&mut s.seen);
    drop(s);

    let sns: Vec<u32> = seen.iter().filter_map(|(b, _)| status_sn(b)).collect();
    assert!(sns.len() >= 10, "{sns:?}");
    for (i, sn) in sns.iter().enumerate() {
        // first, first, first+1, first+1, ...
        assert_eq!(
            *sn,
            first.wrapping_add(i as u32 / 2),
            "status PDU {i}: {sns:x?}"
        );
    }
    // An R2T carries the next StatSN: one past the last status sent, repeated or not.
    let (mut last, mut r2ts) = (first.wrapping_sub(1), 0);
    for (bhs, _) in &seen {
        let b = Bhs::from_array(bhs);
        match status_sn(bhs) {
            Some(sn) => last = sn,
            None if b.opcode() == Opcode::R2t => {
                assert_eq!(b.be32(24..28), last.wrapping_add(1), "R2T");
                r2ts += 1;
            }
            None => {}
        }
    }
    assert!(r2ts > 0);
    assert_eq!(applied(&t, name, 1), sns.len() as u64 / 2, "{}", t.log());
}

#[test]
fn quirk_ou_nonfinal_flags_every_data_in_but_the_last() {
    let name = "quirk-ou-nonfinal";
    let t = hostile(name);
    // The initiator takes 256 KiB per PDU; the target still sends 8 KiB ones.
    let mut s = Initiator::login_mrdsl(t.addr, true, true, 262_144);
    let data = pattern(1 << 20, 3);
    s.write(4000, &data).expect("write");
    s.seen.clear();
    assert_eq!(s.read(4000, 2048).expect("read"), data);
    let ins: Vec<[u8; BHS_LEN]> = s.seen.iter().map(|(b, _)| *b).collect();
    assert_eq!(
        ins.len(),
        128,
        "1 MiB in 8 KiB Data-Ins, status in the last"
    );
    for (i, bhs) in ins.iter().enumerate() {
        let b = Bhs::from_array(bhs);
        assert_eq!(b.opcode(), Opcode::DataIn, "PDU {i}");
        assert_eq!(b.data_segment_len(), 8192);
        let (flags, residual) = (b.flags() & 0x07, b.be32(44..48));
        if i < 127 {
            assert_eq!(flags, 0x02, "PDU {i}: U, no O, no S");
            assert_eq!(residual, (1 << 20) - (i as u32 + 1) * 8192, "PDU {i}");
        } else {
            assert_eq!(
                (flags, residual, b.byte(3)),
                (0x01, 0, 0),
                "the last: S only"
            );
            assert!(b.final_bit());
        }
    }
    // A short read: one Data-In with status and a true underflow.
    s.seen.clear();
    let mut inquiry = [0u8; 16];
    inquiry[0] = 0x12;
    inquiry[4] = 96;
    let itt = s.command(inquiry, 96, true);
    s.finish_read(itt, 96).expect("INQUIRY");
    assert_eq!(s.seen.len(), 1);
    let b = Bhs::from_array(&s.seen[0].0);
    assert_eq!(
        (b.flags() & 0x07, b.be32(44..48)),
        (0x03, 60),
        "U+S, residual 60"
    );
    // Nothing else followed; the connection is fine.
    s.ping();
    assert_eq!(s.seen.len(), 2);
    assert_eq!(s.logout().response, 0);
    drop(s);
    // The 1 MiB read's 127; the INQUIRY's only Data-In had status.
    assert_eq!(applied(&t, name, 1), 127, "{}", t.log());
}

/// A command to LUN field `lun`; its SCSI Response.
fn command_on(s: &mut Initiator, lun: u64, cdb: [u8; 16], edtl: u32) -> (ScsiResponse, Vec<u8>) {
    s.lun = lun;
    let itt = s.command(cdb, edtl, edtl > 0);
    loop {
        let f = s.frame().expect("response");
        if let Ok(Pdu::ScsiResponse(r)) = Pdu::parse(&f.bhs) {
            assert_eq!(r.itt, itt);
            return (r, f.data);
        }
    }
}

#[test]
fn flat_luns_report_three_independent_disks() {
    use iscsi_faultd::hostile::scsi::{flat_lun, PQ_NOT_CONNECTED};
    let t = hostile("flat-luns");
    let mut s = Initiator::login_with(t.addr, true, false);
    let luns = [flat_lun(0), flat_lun(1), flat_lun(300)];
    assert_eq!(luns[2].to_be_bytes()[..2], [0x41, 0x2c]);

    // REPORT LUNS to the all-zero LUN 0.
    let mut rl = [0u8; 16];
    rl[0] = 0xa0;
    rl[6..10].copy_from_slice(&4096u32.to_be_bytes());
    s.lun = 0;
    let itt = s.command(rl, 4096, true);
    let list = s.finish_read(itt, 4096).expect("REPORT LUNS");
    assert_eq!(list[..4], 24u32.to_be_bytes());
    for (i, l) in luns.iter().enumerate() {
        assert_eq!(list[8 + 8 * i..16 + 8 * i], l.to_be_bytes(), "entry {i}");
    }

    // INQUIRY: LUN 0 not connected, the flat ones disks.
    let mut inquiry = [0u8; 16];
    inquiry[0] = 0x12;
    inquiry[4] = 96;
    for (lun, want) in [
        (0, PQ_NOT_CONNECTED),
        (luns[0], 0),
        (luns[1], 0),
        (luns[2], 0),
    ] {
        s.lun = lun;
        let itt = s.command(inquiry, 96, true);
        let d = s.finish_read(itt, 96).expect("INQUIRY");
        assert_eq!(d[0], want, "LUN {lun:#018x}");
    }

    // Each disk takes a write; the others do not change.
    let blank = vec![0u8; 8192];
    for (i, lun) in luns.iter().enumerate() {
        s.lun = *lun;
        let data = pattern(8192, 0x10 + i as u8);
        s.write(100, &data).expect("write");
        for (j, other) in luns.iter().enumerate() {
            s.lun = *other;
            let want = if j <= i {
                pattern(8192, 0x10 + j as u8)
            } else {
                blank.clone()
            };
            assert_eq!(
                s.read(100, 16).expect("read"),
                want,
                "LUN {j} after writing {i}"
            );
        }
    }

    // Unreported LUNs: CHECK CONDITION, ILLEGAL REQUEST, 25h/00h; a write
    // there with unsolicited data is refused and its Data-Outs dropped.
    for lun in [0, 0x0001_0000_0000_0000, flat_lun(2)] {
        let (r, data) = command_on(&mut s, lun, [0u8; 16], 0);
        assert_eq!(r.status, 0x02, "LUN {lun:#018x}");
        let sense = ScsiResponse::split_data(&data).unwrap().sense;
        assert_eq!((sense[2] & 0x0f, sense[12], sense[13]), (0x05, 0x25, 0x00));
    }
    s.lun = flat_lun(2);
    let data = pattern(8192, 9);
    let itt = s.command_with(
        Initiator::rw_cdb(0x2a, 0, 16),
        8192,
        false,
        &data[..4096],
        false,
    );
    s.data_out(itt, RESERVED_TAG, &data, 4096, 8192);
    let f = s.frame().expect("response");
    assert!(matches!(Pdu::parse(&f.bhs), Ok(Pdu::ScsiResponse(r)) if r.status == 0x02));
    s.ping();
    assert_eq!(s.logout().response, 0);
    // The target logs after it answered: wait for the line, not just read.
    assert!(t.wait_log("LOGICAL UNIT NOT SUPPORTED"), "{}", t.log());
    let log = t.log();
    assert!(!log.contains("Data-Out for unknown ITT"), "{log}");
}
