//! The suites: privilege, ioctl numbers, argument placement, descriptors,
//! random calls, sessions over hostile peers (and a concurrent double use of
//! one socket), the recovery conversation (WAIT_EVENT / FAIL_RELOGIN /
//! HANDOFF) on a failed session, and the final "nothing left over" check.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use iscsi_proto::uapi::{
    self, state, ConnInfo, ConnList, Event, Handoff, HandoffKind, List, ReloginFailed,
    RemoveSession, SessionInfo, EVENT_RESCAN,
};

use crate::expect::{self, Expect, FdKind, Target};
use crate::gen::{self, KNOWN};
use crate::guard::{Interrupter, Watchdog};
use crate::mem::{Ptr, Region};
use crate::peers::{PeerKind, Peers};
use crate::report::Report;
use crate::rng::Rng;
use crate::sys::{self, show, Outcome, Unpriv};

/// Knobs of a run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seed of every random choice.
    pub seed: u64,
    /// Random calls in the `random` suite.
    pub iterations: u64,
    /// The control device.
    pub device: String,
    /// How long to let a blocking WAIT_EVENT sleep before interrupting it.
    pub interrupt_after: Duration,
    /// At most this many session-creating tests (None: all).
    pub sessions: Option<usize>,
    /// Seconds a session over a hostile peer may take to fail.
    pub fail_within: Duration,
}

/// Whether `$a` and `$b` agree in every field named.
macro_rules! same_fields {
    ($a:expr, $b:expr; $($field:ident),+ $(,)?) => {
        true $(&& $a.$field == $b.$field)+
    };
}

/// A session the module should have failed by now.
const SESSION_FAILED: [u8; 2] = [state::FAILED, state::RECOVERING];

/// Host numbers no session has (the SCSI midlayer counts up from 0).
const NO_HOST: [u32; 5] = [0xffff_fff0, u32::MAX, 0x7fff_ffff, 0x8000_0000, 65_535];

/// The fuzzer.
pub struct Fuzzer {
    dev: OwnedFd,
    opts: Options,
    rng: Rng,
    main: Region,
    nested: Region,
    peers: Peers,
    wd: Watchdog,
    intr: Interrupter,
    /// The tallies.
    pub rep: Report,
    /// Sessions that existed before we started (not ours to touch).
    foreign: Vec<u32>,
    /// Sessions we created and have not removed.
    ours: Vec<u32>,
    scratch: PathBuf,
}

/// A descriptor for a handoff: the number, and what keeps it open.
struct Fd {
    raw: i32,
    _keep: Vec<OwnedFd>,
}

impl Fd {
    /// A number that nothing of ours keeps open.
    fn bare(raw: i32) -> Fd {
        Fd {
            raw,
            _keep: Vec::new(),
        }
    }

    /// `fd` itself.
    fn own(fd: OwnedFd) -> Fd {
        Fd {
            raw: fd.as_raw_fd(),
            _keep: vec![fd],
        }
    }

    /// `raw`, one of `pair`, with both kept open.
    fn of_pair(raw: i32, (a, b): (OwnedFd, OwnedFd)) -> Fd {
        Fd {
            raw,
            _keep: vec![a, b],
        }
    }
}

/// ADD_SESSION, HANDOFF or ADD_CONNECTION, with what the oracle needs
/// besides the argument.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// ADD_SESSION, its recipe at the `Ptr`.
    Add(Ptr),
    /// HANDOFF, its host number naming the `Target`.
    Handoff(Target),
    /// ADD_CONNECTION, its host number naming the `Target`.
    AddConnection(Target),
}

impl Via {
    /// The ioctl, and what the oracle expects of it with `bytes` at `main`
    /// and a descriptor of `kind`.
    fn judge(self, main: Ptr, bytes: &[u8; Handoff::SIZE], kind: FdKind) -> (u32, Expect) {
        match self {
            Via::Add(recipe) => (
                uapi::ADD_SESSION,
                expect::add_session(main, bytes, recipe, kind),
            ),
            Via::Handoff(target) => (uapi::HANDOFF, expect::handoff(main, bytes, kind, target)),
            Via::AddConnection(target) => (
                uapi::ADD_CONNECTION,
                expect::add_connection(main, bytes, kind, target),
            ),
        }
    }
}

/// A WAIT_EVENT of the recovery conversation: the argument at `main`, the
/// recipe buffer at `recipe` with room for `cap` bytes.
#[derive(Debug, Clone, Copy)]
struct Wait {
    main: Ptr,
    recipe: Ptr,
    cap: u32,
    flags: u32,
}

impl Wait {
    /// Argument and recipe buffer valid, no flags.
    fn new(cap: u32) -> Wait {
        Wait {
            main: Ptr::Valid,
            recipe: Ptr::Valid,
            cap,
            flags: 0,
        }
    }

    /// With EVENT_RESCAN.
    fn rescan(self) -> Wait {
        Wait {
            flags: EVENT_RESCAN,
            ..self
        }
    }

    /// The argument at `main`, the recipe buffer at `recipe`.
    fn at(self, main: Ptr, recipe: Ptr) -> Wait {
        Wait {
            main,
            recipe,
            ..self
        }
    }
}

/// What a WAIT_EVENT of the recovery conversation gave.
struct Waited {
    r: Outcome,
    /// The argument afterwards (if it can be read).
    back: Option<Event>,
    /// Address of the recipe buffer.
    raddr: u64,
    /// The argument as sent.
    sent: Event,
}

/// What to check after a WAIT_EVENT of the recovery conversation.
enum After {
    /// The expected outcome is all.
    Nothing,
    /// Refused with ENOSPC: neither the argument nor the recipe buffer written.
    Untouched,
    /// When it succeeds: the event delivered for this attempt.
    Delivered(u32),
}

/// One call of the recovery conversation (labels without "recovery: ").
enum Step {
    /// A WAIT_EVENT.
    Wait(String, Wait, Expect, After),
    /// A FAIL_RELOGIN with its argument at the `Ptr`.
    Fail(String, Ptr, ReloginFailed, Expect),
}

impl Step {
    /// A WAIT_EVENT that must deliver the request's `attempt`.
    fn delivers(what: &str, w: Wait, attempt: u32) -> Step {
        Step::Wait(what.into(), w, Expect::success(), After::Delivered(attempt))
    }

    /// A WAIT_EVENT that must fail with (or be ended by) `e`.
    fn refused(what: impl Into<String>, w: Wait, e: i32, why: &str) -> Step {
        Step::Wait(what.into(), w, Expect::error(e, why), After::Nothing)
    }

    /// A FAIL_RELOGIN with a valid argument.
    fn fail(what: &str, f: ReloginFailed, want: Expect) -> Step {
        Step::Fail(what.into(), Ptr::Valid, f, want)
    }
}

/// The session of the recovery conversation.
struct Conv {
    host: u32,
    /// The generation of its first failure.
    g: u32,
    /// The ADD_SESSION argument that created it.
    h: Handoff,
    recipe: Vec<u8>,
}

/// The initiator name of the sessions the fuzzer creates.
const INITIATOR: &str = "iqn.2026-11.dev.iscsi-rs:ioctl-fuzz";

impl Fuzzer {
    /// Opens the device and starts the peers and helper threads.
    pub fn new(opts: Options, wd: Watchdog, verbose: bool) -> Result<Fuzzer, String> {
        let dev = sys::open(&opts.device, libc::O_RDWR)
            .map_err(|e| format!("cannot open {}: {e}", opts.device))?;
        let mut rng = Rng::new(opts.seed);
        let peers = Peers::start(&mut rng).map_err(|e| format!("starting the peers: {e}"))?;
        let scratch = std::env::temp_dir().join(format!("iscsi-ioctl-fuzz.{}", std::process::id()));
        std::fs::write(&scratch, b"not a socket\n")
            .map_err(|e| format!("{}: {e}", scratch.display()))?;
        let mut f = Fuzzer {
            dev,
            rng,
            main: Region::new().map_err(|e| e.to_string())?,
            nested: Region::new().map_err(|e| e.to_string())?,
            peers,
            wd,
            intr: Interrupter::start(),
            rep: Report::new(verbose),
            foreign: Vec::new(),
            ours: Vec::new(),
            scratch,
            opts,
        };
        f.rep.suite("setup");
        let mut probe = List::new(0, 0).to_bytes();
        let r = f.call("LIST (probe)", uapi::LIST, probe.as_mut_ptr() as u64);
        if let Err(e) = r {
            return Err(format!(
                "LIST on {} failed with {} (not iscsi_rs's control device?)",
                f.opts.device,
                sys::errno_name(e)
            ));
        }
        f.foreign = f.sessions().iter().map(|s| s.host_no).collect();
        if !f.foreign.is_empty() {
            f.rep.note(format!(
                "sessions present before the run (left alone): {:?}",
                f.foreign
            ));
        }
        Ok(f)
    }

    // ---------------------------------------------------------------- calls

    fn call(&mut self, label: &str, cmd: u32, arg: u64) -> Outcome {
        self.rep.calls += 1;
        let slot = self.wd.enter(label);
        let r = sys::ioctl(self.dev.as_raw_fd(), cmd, arg);
        self.wd.leave(slot);
        r
    }

    /// A call that may sleep in WAIT_EVENT: interrupted after a while.
    fn call_blocking(&mut self, label: &str, cmd: u32, arg: u64) -> Outcome {
        self.intr.arm(self.opts.interrupt_after);
        let r = self.call(label, cmd, arg);
        self.intr.disarm();
        r
    }

    /// A call checked against `want`; returns the outcome.
    fn expect_r(&mut self, label: &str, cmd: u32, arg: u64, want: &Expect) -> Outcome {
        let got = self.call(label, cmd, arg);
        self.rep.outcome(label, &got, want);
        got
    }

    /// A call checked against `want`.
    fn expect(&mut self, label: &str, cmd: u32, arg: u64, want: &Expect) {
        let _ = self.expect_r(label, cmd, arg, want);
    }

    /// A call with `bytes` placed at `main`, checked against `want`; returns
    /// the outcome.
    fn send_r(&mut self, label: &str, cmd: u32, main: Ptr, bytes: &[u8], want: &Expect) -> Outcome {
        let arg = self.main.place(main, bytes);
        self.expect_r(label, cmd, arg, want)
    }

    /// A call with `bytes` placed at `main`, checked against `want`.
    fn send(&mut self, label: &str, cmd: u32, main: Ptr, bytes: &[u8], want: &Expect) {
        let _ = self.send_r(label, cmd, main, bytes, want);
    }

    /// ADD_SESSION of `h` (argument valid) that must succeed.
    fn add_session(&mut self, label: &str, h: &Handoff) -> Outcome {
        let b = h.to_bytes();
        self.send_r(label, uapi::ADD_SESSION, Ptr::Valid, &b, &Expect::success())
    }

    /// ADD_SESSION or HANDOFF (as `via` says) of `h` at `main`, its
    /// descriptor of `kind`, checked against the oracle.
    fn handoff_call(
        &mut self,
        label: &str,
        via: Via,
        main: Ptr,
        h: &Handoff,
        kind: FdKind,
    ) -> Outcome {
        let b = h.to_bytes();
        let (cmd, want) = via.judge(main, &b, kind);
        self.send_r(label, cmd, main, &b, &want)
    }

    /// Every session in the module (bookkeeping LIST on the heap).
    fn sessions(&mut self) -> Vec<SessionInfo> {
        let mut cap = 64usize;
        loop {
            let mut buf = vec![0u8; cap * SessionInfo::SIZE];
            let mut arg = List::new(cap as u32, buf.as_mut_ptr() as u64).to_bytes();
            let r = self.call("LIST (bookkeeping)", uapi::LIST, arg.as_mut_ptr() as u64);
            let Ok(n) = r else {
                self.rep
                    .check(false, || format!("bookkeeping LIST failed: {}", show(&r)));
                return Vec::new();
            };
            let l = List::from_bytes(&arg);
            self.rep.check(l.count as i64 == n, || {
                format!("LIST returned {n} but count = {}", l.count)
            });
            if n as usize > cap {
                cap = n as usize;
                continue;
            }
            return buf
                .chunks_exact(SessionInfo::SIZE)
                .take(n as usize)
                .map(|c| SessionInfo::from_bytes(c.try_into().expect("chunk size")))
                .collect();
        }
    }

    /// How many sessions the module should list.
    fn known_sessions(&self) -> usize {
        self.foreign.len() + self.ours.len()
    }

    fn session(&mut self, host: u32) -> Option<SessionInfo> {
        self.sessions().into_iter().find(|s| s.host_no == host)
    }

    /// Host numbers in use (never aimed at by the random suite).
    fn live(&self) -> Vec<u32> {
        self.foreign
            .iter()
            .chain(self.ours.iter())
            .copied()
            .collect()
    }

    fn no_host(&mut self) -> u32 {
        loop {
            let h = if self.rng.chance(1, 2) {
                self.rng.pick(&NO_HOST)
            } else {
                self.rng.range(10_000, u32::MAX)
            };
            if !self.live().contains(&h) {
                return h;
            }
        }
    }

    /// Waits until `host` has failed a connection newer than `after_gen`.
    fn wait_failed(&mut self, host: u32, after_gen: u32) -> Option<SessionInfo> {
        let t = Instant::now();
        while t.elapsed() < self.opts.fail_within {
            match self.session(host) {
                Some(s) if SESSION_FAILED.contains(&s.state) && s.generation != after_gen => {
                    return Some(s)
                }
                Some(_) => thread::sleep(Duration::from_millis(100)),
                None => return None,
            }
        }
        None
    }

    /// REMOVE_SESSION with FORCE for one of our sessions, checked.
    fn remove_ours(&mut self, host: u32, why: &str) {
        let mut arg = RemoveSession::new(host, true).to_bytes();
        let r = self.call(
            &format!("REMOVE_SESSION host{host} ({why})"),
            uapi::REMOVE_SESSION,
            arg.as_mut_ptr() as u64,
        );
        self.rep.check(r == Ok(0), || {
            format!("removing host{host} ({why}): {}", show(&r))
        });
        self.ours.retain(|&h| h != host);
        let still = self.session(host).is_some();
        self.rep.check(!still, || {
            format!("host{host} still listed after REMOVE_SESSION")
        });
    }

    /// Takes care of a session an ADD_SESSION created (expected or not).
    fn adopt(&mut self, r: &Outcome) -> Option<u32> {
        let host = u32::try_from(*r.as_ref().ok()?).ok()?;
        self.ours.push(host);
        Some(host)
    }

    /// Removes the session an ADD_SESSION (outcome `r`) created, if any.
    fn discard(&mut self, r: &Outcome, why: &str) {
        if let Some(host) = self.adopt(r) {
            self.remove_ours(host, why);
        }
    }

    /// Checks that `host` fails (`what` names the failure to), then removes it.
    fn fails_then_remove(&mut self, host: u32, what: impl FnOnce() -> String, why: &str) {
        let failed = self.wait_failed(host, 0);
        self.rep.check(failed.is_some(), what);
        self.remove_ours(host, why);
    }

    /// A socket connected to `kind`; a failed check (`what`) if it cannot be.
    fn connect_checked(
        &mut self,
        kind: PeerKind,
        what: impl FnOnce(std::io::Error) -> String,
    ) -> Option<OwnedFd> {
        match self.peers.connect(kind) {
            Ok(fd) => Some(fd),
            Err(e) => {
                self.rep.check(false, || what(e));
                None
            }
        }
    }

    fn make_fd(&mut self, kind: FdKind) -> Option<Fd> {
        Some(match kind {
            FdKind::Negative(v) => Fd::bare(v),
            FdKind::Closed => {
                // Above RLIMIT_NOFILE's usual soft limit, so no thread of ours
                // (a peer accepting) can be handed this number meanwhile.
                loop {
                    let n = self.rng.range(1100, 1 << 20) as i32;
                    if !sys::fd_is_open(n) {
                        break Fd::bare(n);
                    }
                }
            }
            FdKind::Huge => Fd::bare(i32::MAX),
            FdKind::OPath => Fd::own(sys::open("/", libc::O_PATH).ok()?),
            FdKind::PipeRead | FdKind::PipeWrite => {
                let p = sys::pipe().ok()?;
                let raw = if kind == FdKind::PipeRead { &p.0 } else { &p.1 }.as_raw_fd();
                Fd::of_pair(raw, p)
            }
            FdKind::Regular => Fd::own(sys::open(self.scratch.to_str()?, libc::O_RDWR).ok()?),
            FdKind::DevNull => Fd::own(sys::open("/dev/null", libc::O_RDWR).ok()?),
            FdKind::Device => Fd::bare(self.dev.as_raw_fd()),
            FdKind::EventFd => Fd::own(sys::eventfd().ok()?),
            FdKind::Udp => {
                let s = sys::socket(libc::AF_INET, libc::SOCK_DGRAM, 0).ok()?;
                if self.rng.chance(1, 2) {
                    if let Ok(std::net::SocketAddr::V4(a)) =
                        self.peers.portal(PeerKind::Silent).parse()
                    {
                        let _ = sys::connect_v4(&s, a);
                    }
                }
                Fd::own(s)
            }
            FdKind::UnixStream => Fd::own(sys::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0).ok()?),
            FdKind::UnixPair => {
                let p = sys::unix_pair().ok()?;
                Fd::of_pair(p.0.as_raw_fd(), p)
            }
            FdKind::Listening => Fd::own(Peers::listening().ok()?),
            FdKind::Unconnected => {
                let fam = if self.rng.chance(1, 2) {
                    libc::AF_INET
                } else {
                    libc::AF_INET6
                };
                Fd::own(
                    sys::socket(fam, libc::SOCK_STREAM, 0)
                        .or_else(|_| sys::socket(libc::AF_INET, libc::SOCK_STREAM, 0))
                        .ok()?,
                )
            }
            FdKind::HalfClosed => Fd::own(self.peers.connect_half_closed().ok()?),
            FdKind::Mptcp => Fd::own(self.peers.connect_mptcp()?),
            FdKind::Peer(k) => Fd::own(self.peers.connect(k).ok()?),
        })
    }

    /// `h` with a fresh descriptor of `kind` (kept open by the `Fd`).
    fn with_fd(&mut self, h: &Handoff, kind: FdKind) -> Option<(Fd, Handoff)> {
        let fd = self.make_fd(kind)?;
        let mut x = *h;
        x.fd = fd.raw;
        Some((fd, x))
    }

    /// A random valid handoff for `fd`, safe to run over a hostile peer.
    fn tame_handoff(&mut self, add: bool, fd: i32, replacement_timeout: u32) -> Handoff {
        let mut h = gen::valid_handoff(&mut self.rng, add, fd);
        gen::tame(&mut h, replacement_timeout);
        h
    }

    /// A valid ADD_CONNECTION argument for `fd` naming a host no session has.
    fn orphan_connection(&mut self, fd: i32) -> Handoff {
        let mut h = gen::valid_handoff_kind(&mut self.rng, HandoffKind::AddConnection, fd);
        h.host_no = self.no_host();
        h
    }

    /// LIST_CONNECTIONS of `host` (whose lane count is `lanes`, `None` if it
    /// is no session) into up to `cap` entries at `entries`, the argument at
    /// `main`; checked against the oracle, and the entries read back when
    /// they can be. Returns the entries read.
    fn list_connections(
        &mut self,
        label: &str,
        host: u32,
        lanes: Option<usize>,
        (main, entries): (Ptr, Ptr),
        cap: u32,
    ) -> Vec<ConnInfo> {
        let eaddr = self.nested.place(entries, &[]);
        let b = ConnList::new(host, cap, eaddr).to_bytes();
        let want = expect::list_connections(main, &b, entries, lanes);
        let arg = self.main.place(main, &b);
        let r = self.expect_r(label, uapi::LIST_CONNECTIONS, arg, &want);
        let (Ok(n), Some(lanes)) = (r, lanes) else {
            return Vec::new();
        };
        self.rep.check(n as usize == lanes, || {
            format!("{label}: LIST_CONNECTIONS says {n} lanes, expected {lanes}")
        });
        if let Some(back) = self.main.read_array(arg) {
            let got = ConnList::from_bytes(&back);
            self.rep.check(got.count as i64 == n, || {
                format!("{label}: count {} != return {n}", got.count)
            });
        }
        let written = (cap as usize).min(lanes);
        if !entries.writable() {
            return Vec::new();
        }
        let end = eaddr + (written * ConnInfo::SIZE) as u64;
        self.rep.check(self.nested.canary_intact_from(end), || {
            format!("{label}: LIST_CONNECTIONS wrote past {written} entries")
        });
        let Some(bytes) = self.nested.read(eaddr, written * ConnInfo::SIZE) else {
            return Vec::new();
        };
        let infos: Vec<ConnInfo> = bytes
            .chunks_exact(ConnInfo::SIZE)
            .map(|c| ConnInfo::from_bytes(c.try_into().expect("chunk size")))
            .collect();
        let in_order = infos
            .iter()
            .enumerate()
            .all(|(i, c)| usize::from(c.lane) == i);
        self.rep.check(in_order, || {
            format!("{label}: LIST_CONNECTIONS entries not one per lane in order: {infos:?}")
        });
        infos
    }

    /// A tame HANDOFF argument for `fd` naming a host no session has.
    fn orphan_handoff(&mut self, fd: i32) -> Handoff {
        let mut h = self.tame_handoff(false, fd, 0);
        h.host_no = self.no_host();
        h
    }

    /// Puts `recipe` at `at` as `h`'s recipe.
    fn put_recipe(&mut self, h: &mut Handoff, at: Ptr, recipe: &[u8]) {
        h.recipe = self.nested.place(at, recipe);
        h.recipe_len = recipe.len() as u32;
    }

    /// Random recipe bytes, `min..=RECIPE_MAX` of them.
    fn random_recipe(&mut self, min: u32) -> Vec<u8> {
        let mut r = vec![0u8; self.rng.range(min, uapi::RECIPE_MAX) as usize];
        self.rng.fill(&mut r);
        r
    }

    /// Names `h` after the test `test` with its portal at the `kind` peer.
    fn name_test(&self, h: &mut Handoff, test: &str, kind: PeerKind) {
        let portal = self.peers.portal(kind);
        let target = format!("iqn.2026-11.dev.iscsi-rs:fuzz-{test}");
        gen::set_names(h, &target, INITIATOR, &portal);
    }

    // ------------------------------------------------------------ privilege

    /// Unprivileged callers are refused before anything is looked at.
    pub fn privilege(&mut self) {
        self.rep.suite("privilege");
        // Heap buffers: still mapped in the forked child.
        let mut list = List::new(0, 0).to_bytes().to_vec();
        let mut remove = RemoveSession::new(0xffff_fff0, true).to_bytes().to_vec();
        let mut wait = Event::request(0, 0, 0).to_bytes().to_vec();
        let mut add = self.tame_handoff(true, -1, 0).to_bytes().to_vec();
        let mut fail = ReloginFailed::new(0xffff_fff0, 1, 1, 0).to_bytes().to_vec();
        let mut conn = self.orphan_connection(-1).to_bytes().to_vec();
        let mut conns = ConnList::new(0xffff_fff0, 0, 0).to_bytes().to_vec();
        let named = [
            ("LIST", uapi::LIST, list.as_mut_ptr() as u64),
            (
                "REMOVE_SESSION",
                uapi::REMOVE_SESSION,
                remove.as_mut_ptr() as u64,
            ),
            ("WAIT_EVENT", uapi::WAIT_EVENT, wait.as_mut_ptr() as u64),
            ("ADD_SESSION", uapi::ADD_SESSION, add.as_mut_ptr() as u64),
            ("FAIL_RELOGIN", uapi::FAIL_RELOGIN, fail.as_mut_ptr() as u64),
            (
                "ADD_CONNECTION",
                uapi::ADD_CONNECTION,
                conn.as_mut_ptr() as u64,
            ),
            (
                "LIST_CONNECTIONS",
                uapi::LIST_CONNECTIONS,
                conns.as_mut_ptr() as u64,
            ),
            ("unknown", 0xe3_00, 0),
        ];
        let calls = named.map(|(_, cmd, arg)| (cmd, arg));
        let dev = self.dev.as_raw_fd();
        let path = self.opts.device.clone();
        for how in [
            Unpriv::NobodyOpen,
            Unpriv::NobodyInherit,
            Unpriv::DropCapSysAdmin,
        ] {
            self.rep.calls += calls.len() as u64;
            match sys::run_unprivileged(how, &path, dev, &calls) {
                Err(e) => {
                    self.rep.check(false, || format!("{how:?}: {e}"));
                }
                Ok((open, results)) => {
                    if how == Unpriv::NobodyOpen {
                        let refused = open == libc::EACCES || open == libc::EPERM;
                        self.rep.check(refused || open == 0, || {
                            format!("{how:?}: open gave {}", show(&Err(open)))
                        });
                        if open == 0 {
                            self.rep.warn(format!(
                                "{path} can be opened by uid 65534 (mode not 0600?)"
                            ));
                        } else {
                            continue;
                        }
                    }
                    for (r, (n, _, _)) in results.iter().zip(named) {
                        self.rep.check(*r == libc::EPERM, || {
                            let got = if *r == 0 {
                                "success".into()
                            } else {
                                show(&Err(*r))
                            };
                            format!("{how:?}: {n} gave {got}, want EPERM")
                        });
                    }
                }
            }
        }
    }

    // -------------------------------------------------------------- numbers

    /// Unknown numbers and the known ones with wrong size/direction bits.
    pub fn numbers(&mut self) {
        self.rep.suite("numbers");
        for (cmd, what) in gen::wrong_encodings() {
            let p = self
                .rng
                .pick(&[Ptr::Valid, Ptr::Null, Ptr::Kernel(u64::MAX), Ptr::ReadOnly]);
            let content = gen::random_struct(&mut self.rng, 700);
            let arg = self.main.place(p, &content);
            self.expect(
                &format!("{what} ({cmd:#010x}), arg {}", p.name()),
                cmd,
                arg,
                &expect::unknown(),
            );
            // Whatever the kernel did, it must not have written a valid buffer.
            if p.writable() {
                let back = self.main.read(arg, content.len());
                self.rep.check(back.as_deref() == Some(&content[..]), || {
                    format!("{what}: unknown ioctl wrote to its argument")
                });
            }
        }
        for _ in 0..48 {
            let cmd = gen::unknown_cmd(&mut self.rng);
            let arg = match self.rng.below(3) {
                0 => 0,
                1 => self.rng.next_u64(),
                _ => {
                    let c = gen::random_struct(&mut self.rng, 256);
                    self.main.place(Ptr::Valid, &c)
                }
            };
            self.expect(
                &format!("unknown ioctl {cmd:#010x} arg {arg:#x}"),
                cmd,
                arg,
                &expect::unknown(),
            );
        }
        for (cmd, name) in KNOWN {
            for a in [0u64, 1, u64::MAX] {
                let want = Expect::error(libc::EFAULT, "bad argument address");
                self.expect(&format!("{name} arg {a:#x}"), cmd, a, &want);
            }
        }
    }

    // ------------------------------------------------------------- pointers

    /// Every ioctl with its argument in every kind of place, its content valid
    /// as far as it can be without a session.
    pub fn pointers(&mut self) {
        self.rep.suite("pointers");
        let classes = Ptr::all();
        let pipe = FdKind::PipeRead;
        for (cmd, name) in KNOWN {
            for &p in &classes {
                let label = format!("{name} argument {}", p.name());
                match cmd {
                    uapi::ADD_SESSION => {
                        let Some(fd) = self.make_fd(pipe) else {
                            continue;
                        };
                        let h = self.tame_handoff(true, fd.raw, 0);
                        let r = self.handoff_call(&label, Via::Add(Ptr::Null), p, &h, pipe);
                        self.discard(&r, "ADD_SESSION over a pipe succeeded");
                    }
                    uapi::HANDOFF => {
                        let Some(fd) = self.make_fd(pipe) else {
                            continue;
                        };
                        let h = self.orphan_handoff(fd.raw);
                        let via = Via::Handoff(Target::Missing);
                        let _ = self.handoff_call(&label, via, p, &h, pipe);
                    }
                    uapi::REMOVE_SESSION => {
                        let host = self.no_host();
                        let b = RemoveSession::new(host, self.rng.chance(1, 2)).to_bytes();
                        self.send(&label, cmd, p, &b, &expect::remove_session(p, &b, false));
                    }
                    uapi::LIST => self.list_once(&label, p, Ptr::Valid, 4),
                    uapi::ADD_CONNECTION => {
                        let Some(fd) = self.make_fd(pipe) else {
                            continue;
                        };
                        let h = self.orphan_connection(fd.raw);
                        let via = Via::AddConnection(Target::Missing);
                        let _ = self.handoff_call(&label, via, p, &h, pipe);
                    }
                    uapi::LIST_CONNECTIONS => {
                        let host = self.no_host();
                        let _ = self.list_connections(&label, host, None, (p, Ptr::Valid), 4);
                    }
                    uapi::WAIT_EVENT => {
                        let b = Event::request(0, 0, 0).to_bytes();
                        self.wait_idle(&label, p, &b);
                    }
                    _ => {
                        let f = ReloginFailed::new(self.no_host(), self.rng.next_u32(), 1, 0);
                        let b = f.to_bytes();
                        self.send(&label, cmd, p, &b, &expect::fail_relogin(p, &b, false));
                    }
                }
            }
        }
        // Nested pointers: the recipe of ADD_SESSION (on a usable socket, so
        // the recipe is the only defect), LIST's entries, WAIT_EVENT's recipe.
        for &p in classes.iter().filter(|p| !p.readable()) {
            let len = self.rng.pick(&[1, 100, uapi::RECIPE_MAX]);
            let garbage = FdKind::Peer(PeerKind::Garbage);
            let Some(fd) = self.make_fd(garbage) else {
                continue;
            };
            let mut h = self.tame_handoff(true, fd.raw, 0);
            self.put_recipe(&mut h, p, &vec![0x5au8; len as usize]);
            let label = format!("ADD_SESSION recipe {} len {len}", p.name());
            let r = self.handoff_call(&label, Via::Add(p), Ptr::Valid, &h, garbage);
            drop(fd);
            self.discard(&r, "ADD_SESSION with a bad recipe address succeeded");
        }
        for &p in &classes {
            let cap = self.rng.pick(&[1, 2, u32::MAX]);
            self.list_once(
                &format!("LIST entries {} capacity {cap}", p.name()),
                Ptr::Valid,
                p,
                cap,
            );
        }
        for p in [
            Ptr::Guard,
            Ptr::Kernel(0xffff_8880_0000_0000),
            Ptr::Straddle(1),
            Ptr::Null,
            Ptr::ReadOnly,
        ] {
            let cap = self.rng.pick(&[1, uapi::RECIPE_MAX, u32::MAX]);
            let addr = self.nested.place(p, &[0u8; 64]);
            let b = Event::request(0, addr, cap).to_bytes();
            self.wait_idle(
                &format!("WAIT_EVENT recipe {} capacity {cap}", p.name()),
                Ptr::Valid,
                &b,
            );
        }
    }

    /// One LIST with the argument at `main`, a valid argument whose entries go
    /// to `entries` (up to `cap`), checked against the oracle and the
    /// bookkeeping: count, untouched input fields, no write past the entries.
    fn list_once(&mut self, label: &str, main: Ptr, entries: Ptr, cap: u32) {
        let n = self.known_sessions();
        let eaddr = self.nested.place(entries, &[]);
        let b = List::new(cap, eaddr).to_bytes();
        self.list_bytes(label, main, entries, eaddr, &b, n);
    }

    fn list_bytes(
        &mut self,
        label: &str,
        main: Ptr,
        entries: Ptr,
        eaddr: u64,
        b: &[u8; List::SIZE],
        n: usize,
    ) {
        let want = expect::list(main, b, entries, n);
        let arg = self.main.place(main, b);
        let r = self.expect_r(label, uapi::LIST, arg, &want);
        let Ok(v) = r else { return };
        self.rep.check(v as usize == n, || {
            format!("{label}: LIST says {v} sessions, expected {n}")
        });
        if let Some(back) = self.main.read_array(arg) {
            let mut got = List::from_bytes(&back);
            self.rep.check(got.count as i64 == v, || {
                format!("{label}: count {} != return {v}", got.count)
            });
            got.count = List::from_bytes(b).count;
            self.rep.check(got == List::from_bytes(b), || {
                format!("{label}: LIST changed input fields")
            });
        }
        let l = List::from_bytes(b);
        let written = (l.capacity as usize).min(n);
        if entries.writable() {
            let end = eaddr + (written * SessionInfo::SIZE) as u64;
            self.rep.check(self.nested.canary_intact_from(end), || {
                format!("{label}: LIST wrote past {written} entries")
            });
        }
    }

    /// A WAIT_EVENT expected not to deliver anything (no request pending).
    fn wait_idle(&mut self, label: &str, p: Ptr, b: &[u8; Event::SIZE]) {
        let want = expect::wait_event_idle(p, b);
        let arg = self.main.place(p, b);
        let r = if expect::wait_event_passes(p, b) {
            self.call_blocking(label, uapi::WAIT_EVENT, arg)
        } else {
            self.call(label, uapi::WAIT_EVENT, arg)
        };
        if r == Ok(0) {
            // A request of someone else's session is not our business.
            if let Some(back) = self.main.read_array(arg) {
                let e = Event::from_bytes(&back);
                if self.foreign.contains(&e.host_no) {
                    self.rep.note(format!(
                        "{label}: delivered a request of foreign host{}",
                        e.host_no
                    ));
                    return;
                }
                self.rep.check(false, || {
                    format!("{label}: WAIT_EVENT delivered a request for host{} (gen {}) nobody should have posted", e.host_no, e.generation)
                });
                return;
            }
        }
        self.rep.outcome(label, &r, &want);
    }

    // ---------------------------------------------------------- descriptors

    /// ADD_SESSION and HANDOFF with every kind of descriptor that is not a
    /// usable socket (the rest of the argument valid).
    pub fn descriptors(&mut self) {
        self.rep.suite("descriptors");
        for kind in FdKind::PLAIN {
            let Some(fd) = self.make_fd(kind) else {
                self.rep
                    .note(format!("{} not available here; skipped", kind.name()));
                continue;
            };
            let mut h = self.tame_handoff(true, fd.raw, 0);
            if self.rng.chance(1, 2) {
                let r = vec![1u8; self.rng.range(1, uapi::RECIPE_MAX) as usize];
                self.put_recipe(&mut h, Ptr::Valid, &r);
            }
            let label = format!("ADD_SESSION with {}", kind.name());
            let r = self.handoff_call(&label, Via::Add(Ptr::Valid), Ptr::Valid, &h, kind);
            self.discard(
                &r,
                "ADD_SESSION accepted a descriptor that is not a TCP connection",
            );
            let h = self.orphan_handoff(fd.raw);
            let label = format!("HANDOFF with {} to no session", kind.name());
            let via = Via::Handoff(Target::Missing);
            let _ = self.handoff_call(&label, via, Ptr::Valid, &h, kind);
            let h = self.orphan_connection(fd.raw);
            let label = format!("ADD_CONNECTION with {} to no session", kind.name());
            let via = Via::AddConnection(Target::Missing);
            let _ = self.handoff_call(&label, via, Ptr::Valid, &h, kind);
        }
        // The same socket handed over while nothing else is wrong but the
        // host number: ENODEV, and the socket is left alone.
        if let Some(fd) = self.make_fd(FdKind::Peer(PeerKind::Silent)) {
            let h = self.orphan_handoff(fd.raw);
            self.send(
                "HANDOFF of a connected socket to no session",
                uapi::HANDOFF,
                Ptr::Valid,
                &h.to_bytes(),
                &Expect::error(libc::ENODEV, "no session"),
            );
            let st = sys::tcp_state(fd.raw);
            self.rep.check(st == Some(1), || {
                format!("a refused HANDOFF changed its socket's state to {st:?}")
            });
        }
    }

    // --------------------------------------------------------------- random

    /// `iterations` random calls.
    pub fn random(&mut self) {
        self.rep.suite("random");
        let encodings = gen::wrong_encodings();
        for i in 0..self.opts.iterations {
            let roll = self.rng.below(100);
            if roll < 8 {
                let cmd = gen::unknown_cmd(&mut self.rng);
                let arg = self.rng.next_u64();
                self.expect(
                    &format!("#{i} unknown {cmd:#010x}"),
                    cmd,
                    arg,
                    &expect::unknown(),
                );
                continue;
            }
            if roll < 14 {
                let (cmd, what) =
                    encodings[self.rng.below(encodings.len() as u64) as usize].clone();
                let c = gen::random_struct(&mut self.rng, 128);
                let arg = self.main.place(Ptr::Valid, &c);
                self.expect(&format!("#{i} {what}"), cmd, arg, &expect::unknown());
                continue;
            }
            let main = self.random_ptr();
            match self.rng.below(8) {
                0 => self.random_handoff(i, main, HandoffKind::Add),
                1 => self.random_handoff(i, main, HandoffKind::Handoff),
                6 => self.random_handoff(i, main, HandoffKind::AddConnection),
                7 => {
                    let ep = self.random_ptr();
                    let eaddr = self.nested.place(ep, &[]);
                    let mut l = ConnList::new(self.no_host(), self.rng.edgy_u32(), eaddr);
                    let what = self.maybe_break(1, 2, &mut l, gen::break_conn_list);
                    let b = self.maybe_random(l.to_bytes());
                    if self.live().contains(&ConnList::from_bytes(&b).host_no) {
                        // Random bytes named a live session: checked elsewhere.
                        continue;
                    }
                    let want = expect::list_connections(main, &b, ep, None);
                    self.send(
                        &format!(
                            "#{i} LIST_CONNECTIONS {what} at {} entries {}",
                            main.name(),
                            ep.name()
                        ),
                        uapi::LIST_CONNECTIONS,
                        main,
                        &b,
                        &want,
                    );
                }
                2 => {
                    let mut r = RemoveSession::new(self.no_host(), self.rng.chance(1, 2));
                    let what = self.maybe_break(2, 3, &mut r, gen::break_remove);
                    let b = self.maybe_random(r.to_bytes());
                    if self.live().contains(&RemoveSession::from_bytes(&b).host_no) {
                        // Random bytes named a live session: not ours to remove.
                        continue;
                    }
                    self.send(
                        &format!("#{i} REMOVE_SESSION {what} at {}", main.name()),
                        uapi::REMOVE_SESSION,
                        main,
                        &b,
                        &expect::remove_session(main, &b, false),
                    );
                }
                3 => {
                    let ep = self.random_ptr();
                    let eaddr = self.nested.place(ep, &[]);
                    let mut l = List::new(self.rng.edgy_u32(), eaddr);
                    let what = self.maybe_break(1, 2, &mut l, gen::break_list);
                    let b = self.maybe_random(l.to_bytes());
                    let n = self.known_sessions();
                    self.list_bytes(
                        &format!("#{i} LIST {what} at {} entries {}", main.name(), ep.name()),
                        main,
                        ep,
                        eaddr,
                        &b,
                        n,
                    );
                }
                4 => {
                    let rp = self.random_ptr();
                    let raddr = self.nested.place(rp, &[0u8; 16]);
                    let flags = if self.rng.chance(1, 4) {
                        EVENT_RESCAN
                    } else {
                        0
                    };
                    let mut e = Event::request(flags, raddr, self.rng.edgy_u32());
                    if self.rng.chance(1, 2) {
                        gen::junk_event_outputs(&mut e, &mut self.rng);
                    }
                    if self.rng.chance(1, 8) {
                        // Not checked by the module: must be accepted.
                        e._pad0 = [0xff, 0xff];
                    }
                    let what = self.maybe_break(2, 3, &mut e, gen::break_event);
                    let b = self.maybe_random(e.to_bytes());
                    self.wait_idle(
                        &format!(
                            "#{i} WAIT_EVENT {what} at {} recipe {}",
                            main.name(),
                            rp.name()
                        ),
                        main,
                        &b,
                    );
                }
                _ => {
                    let host = if self.rng.chance(1, 2) {
                        self.no_host()
                    } else {
                        self.rng.edgy_u32()
                    };
                    if self.live().contains(&host) {
                        continue;
                    }
                    let mut f = ReloginFailed::new(
                        host,
                        self.rng.edgy_u32(),
                        self.rng.next_u32(),
                        self.rng.range(0, uapi::MAX_RETRY_MS),
                    );
                    let what = self.maybe_break(1, 2, &mut f, gen::break_fail);
                    let b = self.maybe_random(f.to_bytes());
                    if self.live().contains(&ReloginFailed::from_bytes(&b).host_no) {
                        continue;
                    }
                    let want = expect::fail_relogin(main, &b, false);
                    let arg = self.main.place(main, &b);
                    let label =
                        format!("#{i} FAIL_RELOGIN {what} host {host:#x} at {}", main.name());
                    let r = self.call(&label, uapi::FAIL_RELOGIN, arg);
                    if r == Ok(0) && host == u32::MAX {
                        self.rep.warn(format!(
                            "{label}: accepted: a relogin request is posted under host {host:#x}, i.e. a session failed before it had its host number"
                        ));
                    } else {
                        self.rep.outcome(&label, &r, &want);
                    }
                }
            }
        }
    }

    fn random_ptr(&mut self) -> Ptr {
        match self.rng.below(20) {
            0..=9 => Ptr::Valid,
            10 | 11 => Ptr::Misaligned(self.rng.range(1, 7) as u8),
            12 | 13 => Ptr::ReadOnly,
            _ => match self.rng.pick(&Ptr::all()) {
                Ptr::Straddle(_) => Ptr::Straddle(self.rng.range(1, 64)),
                p => p,
            },
        }
    }

    /// With probability `num / den`, breaks `v` with `how` (which names the
    /// defect); "valid" otherwise.
    fn maybe_break<T>(
        &mut self,
        num: u64,
        den: u64,
        v: &mut T,
        how: fn(&mut T, &mut Rng) -> &'static str,
    ) -> &'static str {
        if self.rng.chance(num, den) {
            how(v, &mut self.rng)
        } else {
            "valid"
        }
    }

    /// Applies one of the hostile handoff mutations, chosen at random.
    fn break_randomly(&mut self, h: &mut Handoff, k: HandoffKind) -> Option<&'static str> {
        let n = self.rng.below(gen::HANDOFF_BREAKS as u64) as usize;
        let raddr = self.nested.place(Ptr::Valid, &[1u8; 16]);
        gen::break_handoff(h, n, &mut self.rng, k, raddr)
    }

    /// Sometimes replaces a struct's bytes with random ones.
    fn maybe_random<const N: usize>(&mut self, b: [u8; N]) -> [u8; N] {
        if self.rng.chance(1, 6) {
            let r = gen::random_struct(&mut self.rng, N);
            r.try_into().expect("size")
        } else {
            b
        }
    }

    fn random_handoff(&mut self, i: u64, main: Ptr, k: HandoffKind) {
        let add = k == HandoffKind::Add;
        let name = gen::kind_name(k);
        // Any descriptor; a usable socket only with some other defect below.
        let kind = if self.rng.chance(1, 3) {
            FdKind::Peer(self.rng.pick(&PeerKind::LISTENING))
        } else {
            self.rng.pick(&FdKind::PLAIN)
        };
        let Some(fd) = self.make_fd(kind) else { return };
        let mut h = gen::valid_handoff_kind(&mut self.rng, k, fd.raw);
        if add {
            gen::tame(&mut h, 0);
        } else {
            h.host_no = self.no_host();
        }
        let rp = self.random_ptr();
        let rlen = if add || self.rng.chance(1, 4) {
            self.rng.pick(&[
                0,
                0,
                1,
                100,
                uapi::RECIPE_MAX,
                uapi::RECIPE_MAX + 1,
                u32::MAX,
            ])
        } else {
            0
        };
        let recipe = vec![0x77u8; (rlen as usize).min(Region::capacity())];
        if rlen > 0 || self.rng.chance(1, 8) {
            self.put_recipe(&mut h, rp, &recipe);
            h.recipe_len = rlen;
        }
        let mut what: Vec<&str> = Vec::new();
        let roll = self.rng.below(10);
        if roll < 6 {
            for _ in 0..self.rng.range(1, 3) {
                what.extend(self.break_randomly(&mut h, k));
            }
        } else if roll < 8 {
            let n = self.rng.below(gen::HANDOFF_NUDGES as u64) as usize;
            what.extend(gen::nudge_handoff(&mut h, n, &mut self.rng, k));
        }
        let via = match k {
            HandoffKind::Add => Via::Add(rp),
            HandoffKind::Handoff => Via::Handoff(Target::Missing),
            HandoffKind::AddConnection => Via::AddConnection(Target::Missing),
        };
        let mut b = self.maybe_random(h.to_bytes());
        let (cmd, mut want) = via.judge(main, &b, kind);
        if want.ok {
            // Would create a session over an arbitrary peer with arbitrary
            // timeouts: break it instead (a session is the sessions suite's job).
            let mut h2 = Handoff::from_bytes(&b);
            match self.break_randomly(&mut h2, k) {
                Some(w) => what.push(w),
                None => {
                    h2.tsih = 0;
                    what.push("tsih 0");
                }
            }
            b = h2.to_bytes();
            want = via.judge(main, &b, kind).1;
        }
        let label = format!(
            "#{i} {name} [{}] fd {} at {} recipe {} len {rlen}",
            if what.is_empty() {
                "random".to_string()
            } else {
                what.join(", ")
            },
            kind.name(),
            main.name(),
            rp.name()
        );
        let r = self.send_r(&label, cmd, main, &b, &want);
        drop(fd);
        if add {
            self.discard(&r, "an invalid ADD_SESSION succeeded");
        }
    }

    // ------------------------------------------------------------- sessions

    /// Sessions over sockets whose peer is not a target, at most
    /// `opts.sessions` of them (chosen by the seed), the double use of one
    /// socket, and the recovery conversation.
    pub fn sessions_suite(&mut self) {
        self.rep.suite("sessions");
        #[derive(Debug, Clone, Copy)]
        enum T {
            Peer(PeerKind),
            V6,
            Extreme(u8),
            Busy,
            ScanRace,
            Recovery,
        }
        let mut tests: Vec<T> = PeerKind::LISTENING.iter().map(|&k| T::Peer(k)).collect();
        tests.extend([T::V6, T::Extreme(0), T::Extreme(1), T::Busy, T::ScanRace]);
        // Deterministic shuffle, then the recovery conversation first.
        for i in (1..tests.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            tests.swap(i, j);
        }
        tests.insert(0, T::Recovery);
        if let Some(n) = self.opts.sessions {
            tests.truncate(n);
        }
        for t in tests {
            let started = Instant::now();
            match t {
                T::Peer(k) => self.peer_session(k, None),
                T::V6 => self.peer_session(PeerKind::Garbage, Some(255)),
                T::Extreme(n) => self.peer_session(PeerKind::Echo, Some(n)),
                T::Busy => self.busy(),
                T::ScanRace => self.scan_race(),
                T::Recovery => self.recovery(),
            }
            self.rep.note(format!(
                "{t:?} took {:.1} s",
                started.elapsed().as_secs_f64()
            ));
        }
    }

    /// ADD_SESSION over a socket to `kind`; `variant` 0/1: extreme valid
    /// parameters, 255: over IPv6.
    fn peer_session(&mut self, kind: PeerKind, variant: Option<u8>) {
        let fd = if variant == Some(255) {
            match self.peers.connect_v6() {
                Some(fd) => fd,
                None => {
                    self.rep.note("no IPv6 loopback; IPv6 session skipped");
                    return;
                }
            }
        } else {
            let connect = |e| format!("connect to the {} peer: {e}", kind.name());
            let Some(fd) = self.connect_checked(kind, connect) else {
                return;
            };
            fd
        };
        let mut h = self.tame_handoff(true, fd.as_raw_fd(), 0);
        self.name_test(&mut h, kind.name(), kind);
        let what = match variant {
            Some(0) => {
                h.queue_depth = uapi::MAX_QUEUE_DEPTH;
                let (recv, other) = (uapi::MAX_RECV_DATA_SEGMENT_LEN, uapi::MAX_DATA_SEGMENT_LEN);
                set_segments(&mut h, recv, other, uapi::DIGEST_CRC32C);
                h.itt_base = 0xfffe_0000;
                h.max_outstanding_r2t = (uapi::MAX_R2T_JOBS / uapi::MAX_QUEUE_DEPTH) as u16;
                h.max_connections = u16::MAX;
                h.default_time2wait = 3600;
                h.default_time2retain = 3600;
                h.exp_cmd_sn = u32::MAX;
                h.max_cmd_sn = 0x3fff_fffe;
                h.cmd_sn = u32::MAX;
                h.stat_sn = u32::MAX;
                h.exp_stat_sn = 0;
                h.tsih = u16::MAX;
                h.tpgt = u16::MAX;
                let long_t = "t".repeat(uapi::NAME_LEN - 1);
                let long_i = "i".repeat(uapi::NAME_LEN - 1);
                let long_p = "p".repeat(uapi::PORTAL_LEN - 1);
                gen::set_names(&mut h, &long_t, &long_i, &long_p);
                "maximal parameters"
            }
            Some(1) => {
                h.queue_depth = 1;
                let min = uapi::MIN_DATA_SEGMENT_LEN;
                set_segments(&mut h, min, min, uapi::DIGEST_NONE);
                h.itt_base = 0;
                h.max_outstanding_r2t = 1;
                h.default_time2wait = 0;
                // A closed command window: the scan cannot send; the ping can.
                h.max_cmd_sn = h.exp_cmd_sn.wrapping_sub(1);
                h.cmd_sn = h.exp_cmd_sn;
                "minimal parameters, closed window"
            }
            Some(_) => "IPv6",
            None => "random valid parameters",
        };
        let recipe = self.random_recipe(1);
        let rp = self
            .rng
            .pick(&[Ptr::Valid, Ptr::Misaligned(5), Ptr::ReadOnly]);
        self.put_recipe(&mut h, rp, &recipe);
        let b = h.to_bytes();
        let fk = FdKind::Peer(kind);
        let main = self
            .rng
            .pick(&[Ptr::Valid, Ptr::Valid, Ptr::Misaligned(3), Ptr::ReadOnly]);
        let want = expect::add_session(main, &b, rp, fk);
        self.rep.check(want.ok, || {
            format!("internal: handoff for {what} invalid: {}", want.describe())
        });
        let arg = self.main.place(main, &b);
        let label = format!(
            "ADD_SESSION over {} ({what}, argument {})",
            fk.name(),
            main.name()
        );
        let r = self.expect_r(&label, uapi::ADD_SESSION, arg, &want);
        drop(fd);
        let Some(host) = self.adopt(&r) else { return };
        // host_no written back (best effort: not to a read-only argument).
        if let Some(back) = self.main.read_array(arg) {
            let got = Handoff::from_bytes(&back);
            let mut exp = h;
            if main.writable() {
                exp.host_no = host;
            }
            let mut rest = got;
            rest.host_no = exp.host_no;
            self.rep.check(got == exp, || {
                format!(
                    "{label}: argument after the call: host_no {} (want {}), other fields changed: {}",
                    got.host_no,
                    exp.host_no,
                    rest != exp
                )
            });
        }
        match self.session(host) {
            None => {
                self.rep
                    .check(false, || format!("{label}: host{host} not in LIST"));
            }
            Some(s) => {
                let ok = same_fields!(s, h; target_name, initiator_name, portal, isid, cid,
                    queue_depth, replacement_timeout, max_recv_data_segment_len,
                    max_xmit_data_segment_len, header_digest)
                    && s.recoveries == 0
                    && s.lanes == h.connections.max(1)
                    && s.connections <= s.lanes;
                self.rep.check(ok, || {
                    format!("{label}: LIST entry does not match the handoff: {s:?}")
                });
                self.rep.check(
                    [
                        state::RUNNING,
                        state::FAILED,
                        state::RECOVERING,
                        state::LOGGING_OUT,
                    ]
                    .contains(&s.state),
                    || format!("{label}: state {}", s.state),
                );
            }
        }
        let lanes = usize::from(h.connections.max(1));
        let entries = self.rng.pick(&[Ptr::Valid, Ptr::Misaligned(1), Ptr::Guard]);
        let cap = self.rng.pick(&[0, 1, lanes as u32, u32::MAX]);
        let infos = self.list_connections(
            &format!("LIST_CONNECTIONS of host{host} ({what})"),
            host,
            Some(lanes),
            (Ptr::Valid, entries),
            cap,
        );
        // Only the leading connection was handed over.
        let extra_up = infos
            .iter()
            .skip(1)
            .any(|c| c.state != uapi::conn_state::ABSENT);
        self.rep.check(!extra_up, || {
            format!("{label}: lanes other than 0 up without ADD_CONNECTION: {infos:?}")
        });
        let secs = self.opts.fail_within.as_secs();
        let failed = || format!("{label}: the session did not fail within {secs} s");
        let now = self.wait_failed(host, 0);
        self.rep.check(now.is_some(), failed);
        if let Some(now) = now {
            // A further connection for the failed session, in its current
            // generation: refused as it is not running (and, with one lane,
            // as it has no lane 1).
            let mut x = handoff_to(&h, host);
            x.generation = now.generation;
            (x.connections, x.lane, x.cid) = (0, 1, 1);
            let silent = FdKind::Peer(PeerKind::Silent);
            if let Some((_fd, x)) = self.with_fd(&x, silent) {
                let mut targets = vec![Target::Stale];
                if lanes == 1 {
                    targets.push(Target::Mismatch);
                }
                let b = x.to_bytes();
                let want = expect::add_connection_to(Ptr::Valid, &b, silent, &targets);
                let label = format!("ADD_CONNECTION to failed host{host} ({what}, {lanes} lanes)");
                self.send(&label, uapi::ADD_CONNECTION, Ptr::Valid, &b, &want);
            }
        }
        self.remove_ours(host, &label);
        let _ = self.list_connections(
            &format!("LIST_CONNECTIONS of removed host{host}"),
            host,
            None,
            (Ptr::Valid, Ptr::Valid),
            4,
        );
        // Gone for every ioctl.
        self.send(
            &format!("REMOVE_SESSION host{host} again"),
            uapi::REMOVE_SESSION,
            Ptr::Valid,
            &RemoveSession::new(host, true).to_bytes(),
            &Expect::error(libc::ENODEV, "removed"),
        );
        let mut hh = handoff_to(&h, host);
        hh.fd = -1;
        let label = format!("HANDOFF to removed host{host}");
        let fd_missing = Expect::error(libc::EINVAL, "fd -1");
        self.send(
            &label,
            uapi::HANDOFF,
            Ptr::Valid,
            &hh.to_bytes(),
            &fd_missing,
        );
        if let Some((_fd, x)) = self.with_fd(&hh, FdKind::Peer(PeerKind::Silent)) {
            let removed = Expect::error(libc::ENODEV, "removed");
            self.send(&label, uapi::HANDOFF, Ptr::Valid, &x.to_bytes(), &removed);
            let mut y = x;
            y.lane = 1;
            y.connections = 0;
            let label = format!("ADD_CONNECTION to removed host{host}");
            self.send(
                &label,
                uapi::ADD_CONNECTION,
                Ptr::Valid,
                &y.to_bytes(),
                &removed,
            );
        }
    }

    /// Two ADD_SESSIONs on one socket at once: one wins, the other gets
    /// EBUSY; the loser must not disturb the winner's socket.
    fn busy(&mut self) {
        let Some(fd) = self.connect_checked(PeerKind::Silent, |e| format!("connect: {e}")) else {
            return;
        };
        let raw = fd.as_raw_fd();
        let mut h = self.tame_handoff(true, raw, 0);
        // Silent peer: fails by ping after ~6 s, long after the second call.
        h.noop_out_interval = 3;
        h.noop_out_timeout = 3;
        let spawn = |delay: Duration, h: Handoff, wd: Watchdog, tag: &'static str| {
            thread::spawn(move || {
                thread::sleep(delay);
                let label = format!("ADD_SESSION busy race ({tag})");
                let t = Instant::now();
                let r = thread_call(&wd, &label, uapi::ADD_SESSION, &mut h.to_bytes());
                let took = t.elapsed();
                // The socket's state right after the call returned.
                (r, sys::tcp_state(h.fd), took)
            })
        };
        set_raw_dev(self.dev.as_raw_fd());
        let a = spawn(Duration::ZERO, h, self.wd.clone(), "first");
        let b = spawn(Duration::from_millis(300), h, self.wd.clone(), "second");
        let (ra, sa, ta) = a.join().expect("thread");
        let (rb, sb, tb) = b.join().expect("thread");
        self.rep.calls += 2;
        let busy = [libc::EBUSY, libc::ENOTCONN];
        let (winner, loser, loser_state) = match (&ra, &rb) {
            (Ok(_), Err(e)) if busy.contains(e) => (ra, rb, sb),
            (Err(e), Ok(_)) if busy.contains(e) => (rb, ra, sa),
            _ => {
                self.rep.check(false, || {
                    format!("ADD_SESSION twice on one socket: {} and {}, want one success and one EBUSY", show(&ra), show(&rb))
                });
                for r in [&ra, &rb] {
                    self.discard(r, "busy race");
                }
                return;
            }
        };
        self.rep
            .check(true, || "one ADD_SESSION won, the other was refused".into());
        self.rep.note(format!(
            "busy race: {} after {:.1} s, {} after {:.1} s",
            show(&ra),
            ta.as_secs_f64(),
            show(&rb),
            tb.as_secs_f64()
        ));
        if loser == Err(libc::EBUSY) && loser_state != Some(1) {
            self.rep.warn(format!(
                "the ADD_SESSION refused with EBUSY left the winner's socket in TCP state {loser_state:?} (not ESTABLISHED): the refused call shut down a socket owned by another session"
            ));
        }
        drop(fd);
        if let Some(host) = self.adopt(&winner) {
            let failed = || "busy race: the winner's session did not fail".into();
            self.fails_then_remove(host, failed, "busy race");
        }
    }

    /// A daemon waiting (WAIT_EVENT) while an ADD_SESSION's connection fails
    /// during its initial scan: the relogin request must reach the daemon,
    /// or at least still be there once ADD_SESSION has returned.
    fn scan_race(&mut self) {
        let Some(fd) = self.connect_checked(PeerKind::ResetOnFirstByte, reset_peer) else {
            return;
        };
        let rt = 3;
        let mut h = self.tame_handoff(true, fd.as_raw_fd(), rt);
        h.recipe = 0;
        h.recipe_len = 0;
        set_raw_dev(self.dev.as_raw_fd());
        let wd = self.wd.clone();
        let intr = self.intr.clone();
        let waiter = thread::spawn(move || {
            let mut e = Event::request(0, 0, 0).to_bytes();
            // Ended by the interrupter well after the ADD_SESSION returned.
            intr.arm(Duration::from_secs(u64::from(rt) + 4));
            let label = "WAIT_EVENT during an ADD_SESSION's scan";
            let r = thread_call(&wd, label, uapi::WAIT_EVENT, &mut e);
            intr.disarm();
            (r, Event::from_bytes(&e))
        });
        thread::sleep(Duration::from_millis(100));
        let t = Instant::now();
        let r = self.add_session(
            "ADD_SESSION over a peer that resets during the scan (a WAIT_EVENT pending)",
            &h,
        );
        let took = t.elapsed();
        drop(fd);
        let (wr, ev) = waiter.join().expect("waiter");
        self.rep.calls += 1;
        let Some(host) = self.adopt(&r) else { return };
        self.rep.note(format!(
            "ADD_SESSION took {:.1} s (replacement timeout {rt} s); the pending WAIT_EVENT gave {}",
            took.as_secs_f64(),
            show(&wr)
        ));
        let delivered = wr == Ok(0) && ev.host_no == host;
        self.rep.check(wr == Ok(0) || wr == Err(libc::EINTR), || {
            format!("WAIT_EVENT during the scan: {}", show(&wr))
        });
        if !delivered {
            // Is the request still there for the daemon's next wait?
            let e = Event::request(EVENT_RESCAN, 0, 0).to_bytes();
            let a = self.main.place(Ptr::Valid, &e);
            let r2 = self.call_blocking(
                "WAIT_EVENT RESCAN after the ADD_SESSION",
                uapi::WAIT_EVENT,
                a,
            );
            let again = r2 == Ok(0)
                && self
                    .main
                    .read_array(a)
                    .is_some_and(|v| Event::from_bytes(&v).host_no == host);
            if !again {
                self.rep.warn(format!(
                    "host{host} failed during its initial scan while a WAIT_EVENT was pending: the relogin request was never delivered and is gone afterwards ({}); the session cannot be relogged in and ADD_SESSION blocked for the whole replacement timeout ({:.1} s)",
                    show(&r2),
                    took.as_secs_f64()
                ));
            }
        }
        let failed = || "scan race: the session did not fail".into();
        self.fails_then_remove(host, failed, "scan race");
    }

    // ------------------------------------------------------------- recovery

    /// A session whose connection is reset by the peer, then the whole
    /// recovery conversation with hostile and valid answers.
    fn recovery(&mut self) {
        let Some(fd) = self.connect_checked(PeerKind::ResetOnFirstByte, reset_peer) else {
            return;
        };
        // Replacement timeout 1 s: the session recovers (a relogin request is
        // posted) and the scan's commands are held only that long. Pings of
        // 1 s (from `tame`) make a reconnected session over a peer that
        // stalls the receiver fail too.
        let mut h = self.tame_handoff(true, fd.as_raw_fd(), 1);
        self.name_test(&mut h, "recovery", PeerKind::ResetOnFirstByte);
        // Several lanes, so that an ADD_CONNECTION can fit one and be refused
        // only because the session is not running.
        h.max_connections = h.max_connections.max(2);
        let most = h.max_connections.min(uapi::MAX_CONNECTIONS);
        h.connections = self.rng.range(2, u32::from(most)) as u16;
        let recipe = self.random_recipe(16);
        let rlen = recipe.len() as u32;
        self.put_recipe(&mut h, Ptr::Valid, &recipe);
        let r = self.add_session("recovery: ADD_SESSION over a peer that resets", &h);
        drop(fd);
        let Some(host) = self.adopt(&r) else { return };
        let Some(info) = self.wait_failed(host, 0) else {
            self.rep
                .check(false, || format!("recovery: host{host} did not fail"));
            self.remove_ours(host, "recovery");
            return;
        };
        let g = info.generation;
        self.rep.check(
            g != 0 && info.recoveries == 0 && info.replacement_timeout == 1,
            || format!("recovery: after the failure: {info:?}"),
        );
        let c = Conv { host, g, h, recipe };

        // LIST's entries buffer, now that there is something to write.
        let n = self.known_sessions();
        for p in Ptr::all() {
            let cap = self.rng.pick(&[1, n as u32, u32::MAX]);
            self.list_once(
                &format!("recovery: LIST entries {} capacity {cap}", p.name()),
                Ptr::Valid,
                p,
                cap,
            );
        }
        self.list_once(
            "recovery: LIST answer read-only",
            Ptr::ReadOnly,
            Ptr::Valid,
            8,
        );
        let lanes = usize::from(h.connections.max(1));
        for p in Ptr::all() {
            let cap = self.rng.pick(&[1, lanes as u32, u32::MAX]);
            let _ = self.list_connections(
                &format!(
                    "recovery: LIST_CONNECTIONS entries {} capacity {cap}",
                    p.name()
                ),
                host,
                Some(lanes),
                (Ptr::Valid, p),
                cap,
            );
        }
        let infos = self.list_connections(
            "recovery: LIST_CONNECTIONS of the failed session",
            host,
            Some(lanes),
            (Ptr::Misaligned(3), Ptr::Valid),
            u32::MAX,
        );
        self.rep.check(
            infos.iter().all(|c| c.state == uapi::conn_state::ABSENT),
            || format!("recovery: a lane of the failed session is up: {infos:?}"),
        );

        // WAIT_EVENT with the request pending.
        let mut steps = vec![Step::Wait(
            "WAIT_EVENT recipe buffer 1 byte short".into(),
            Wait::new(rlen - 1),
            Expect::error(libc::ENOSPC, "recipe larger than the buffer"),
            After::Untouched,
        )];
        let bad_recipes = [
            Ptr::Guard,
            Ptr::Kernel(0xffff_8880_0000_0000),
            Ptr::Kernel(u64::MAX - 4095),
            Ptr::Straddle(1),
            Ptr::ReadOnly,
            Ptr::NonCanonical(0x8000_0000_0000_0000),
        ];
        steps.extend(bad_recipes.map(|p| {
            let w = Wait::new(rlen).at(Ptr::Valid, p);
            let what = format!("WAIT_EVENT recipe {}", p.name());
            Step::refused(what, w, libc::EFAULT, "recipe buffer")
        }));
        let odd = Wait::new(uapi::RECIPE_MAX).at(Ptr::Misaligned(1), Ptr::Misaligned(7));
        steps.extend([
            Step::refused(
                "WAIT_EVENT answer read-only",
                Wait::new(rlen).at(Ptr::ReadOnly, Ptr::Valid),
                libc::EFAULT,
                "answer",
            ),
            Step::delivers("WAIT_EVENT", odd, 0),
            Step::refused(
                "WAIT_EVENT after delivery (blocks)",
                Wait::new(uapi::RECIPE_MAX),
                libc::EINTR,
                "delivered already",
            ),
            Step::delivers("WAIT_EVENT RESCAN", Wait::new(rlen).rescan(), 0),
        ]);
        self.converse(&c, steps);

        // FAIL_RELOGIN (a few of them to answers that are not pending).
        let other = self.no_host();
        let stale = |why| Expect::error(libc::ESTALE, why);
        let fail = |error, retry_ms| ReloginFailed::new(host, g, error, retry_ms);
        let mut spare = fail(1, 0);
        spare._spare[3] = 1;
        let newer = ReloginFailed::new(host, g.wrapping_add(1), 1, 0);
        let older = ReloginFailed::new(host, g.wrapping_sub(1), 1, 0);
        let too_long = fail(1, uapi::MAX_RETRY_MS + 1);
        self.converse(
            &c,
            vec![
                Step::fail("FAIL_RELOGIN newer generation", newer, stale("generation")),
                Step::fail("FAIL_RELOGIN older generation", older, stale("generation")),
                Step::fail(
                    "FAIL_RELOGIN other host",
                    ReloginFailed::new(other, g, 1, 0),
                    stale("host"),
                ),
                Step::fail(
                    "FAIL_RELOGIN retry_ms too long",
                    too_long,
                    Expect::error(libc::EINVAL, "retry_ms"),
                ),
                Step::Fail(
                    "FAIL_RELOGIN argument in the guard page".into(),
                    Ptr::Guard,
                    fail(1, 0),
                    Expect::error(libc::EFAULT, "argument"),
                ),
                Step::fail(
                    "FAIL_RELOGIN _spare",
                    spare,
                    Expect::error(libc::EINVAL, "_spare"),
                ),
                Step::Fail(
                    "FAIL_RELOGIN".into(),
                    Ptr::ReadOnly,
                    fail(u32::MAX, 0),
                    Expect::success(),
                ),
                Step::delivers("WAIT_EVENT after FAIL_RELOGIN", Wait::new(rlen), 1),
                Step::fail(
                    "FAIL_RELOGIN retry in 10 min",
                    fail(2, uapi::MAX_RETRY_MS),
                    Expect::success(),
                ),
                Step::refused(
                    "WAIT_EVENT RESCAN before the retry is due (blocks)",
                    Wait::new(rlen).rescan(),
                    libc::EINTR,
                    "not due",
                ),
            ],
        );

        // REMOVE_SESSION refused without harm.
        type Spoil = fn(&mut RemoveSession);
        let removes: [(&str, Ptr, Spoil, Expect); 3] = [
            (
                "unknown flag",
                Ptr::Valid,
                |r| r.flags = 2 | uapi::REMOVE_FORCE,
                Expect::error(libc::EINVAL, "flags"),
            ),
            (
                "_spare",
                Ptr::Valid,
                |r| r._spare[0] = 1,
                Expect::error(libc::EINVAL, "_spare"),
            ),
            (
                "straddling the guard page",
                Ptr::Straddle(4),
                |_| {},
                Expect::error(libc::EFAULT, "argument"),
            ),
        ];
        for (what, main, spoil, want) in removes {
            let mut rm = RemoveSession::new(host, true);
            spoil(&mut rm);
            let label = format!("recovery: REMOVE_SESSION {what}");
            self.send(&label, uapi::REMOVE_SESSION, main, &rm.to_bytes(), &want);
        }

        // HANDOFF: refused ones first; none may change the session.
        let mut good = handoff_to(&h, host);
        good.generation = g;
        good.tsih = good.tsih.wrapping_add(1).max(1);
        self.refused_handoffs(&good);
        self.refused_connections(&c);
        let now = self.session(host);
        self.rep.check(
            now.is_some_and(|s| {
                s.generation == g && s.recoveries == 0 && SESSION_FAILED.contains(&s.state)
            }),
            || format!("recovery: refused HANDOFFs changed the session: {now:?}"),
        );

        // A valid HANDOFF onto another hostile peer: accepted, then it fails.
        let garbage = FdKind::Peer(PeerKind::Garbage);
        let Some((fd, x)) = self.with_fd(&good, garbage) else {
            return;
        };
        let main = self
            .rng
            .pick(&[Ptr::Valid, Ptr::ReadOnly, Ptr::Misaligned(2)]);
        let r = self.send_r(
            &format!(
                "recovery: HANDOFF to a garbage peer (argument {})",
                main.name()
            ),
            uapi::HANDOFF,
            main,
            &x.to_bytes(),
            &Expect::success(),
        );
        self.rep.check(r.is_err() || r == Ok(i64::from(host)), || {
            format!("recovery: HANDOFF returned {} for host{host}", show(&r))
        });
        if let Some((_fd2, y)) = self.with_fd(&good, garbage) {
            self.send(
                "recovery: the same HANDOFF again",
                uapi::HANDOFF,
                Ptr::Valid,
                &y.to_bytes(),
                &Expect::error(libc::ESTALE, "answered already"),
            );
        }
        drop(fd);
        let mut g2 = g;
        if r.is_ok() {
            match self.wait_failed(host, g) {
                None => {
                    self.rep.check(false, || {
                        "recovery: the session over the garbage peer did not fail".into()
                    });
                }
                Some(s) => {
                    g2 = s.generation;
                    self.rep.check(s.recoveries == 1, || {
                        format!("recovery: recoveries {} after one HANDOFF", s.recoveries)
                    });
                    let got = self.pending_wait(
                        "recovery: WAIT_EVENT for the second failure",
                        Wait::new(rlen).rescan(),
                        &Expect::success(),
                    );
                    if got.r == Ok(0) {
                        let e = got.back.unwrap_or(Event::request(0, 0, 0));
                        self.rep.check(e.host_no == host && e.generation == g2 && e.attempt == 0, || {
                            format!("recovery: second event host{} gen {} attempt {} (want host{host} gen {g2} attempt 0)", e.host_no, e.generation, e.attempt)
                        });
                    }
                }
            }
        }
        good.generation = g2;
        // A second reconnect onto a peer that goes away at once: accepted or
        // ENOTCONN (the RST/FIN raced the call).
        let k = self.rng.pick(&[PeerKind::Reset, PeerKind::Fin]);
        if let Some((fd, x)) = self.with_fd(&good, FdKind::Peer(k)) {
            let label = format!("recovery: HANDOFF to a {} peer", k.name());
            let answers = Via::Handoff(Target::Answers);
            let r = self.handoff_call(&label, answers, Ptr::Valid, &x, FdKind::Peer(k));
            drop(fd);
            if r.is_ok() && self.wait_failed(host, g2).is_none() {
                self.rep.check(false, || {
                    format!(
                        "recovery: the session over the {} peer did not fail",
                        k.name()
                    )
                });
            }
        }

        // Gone: nothing answers for it any more.
        self.remove_ours(host, "recovery");
        let withdrawn = Wait::new(rlen).rescan();
        let what = "WAIT_EVENT RESCAN after removal (blocks)";
        self.step(&c, Step::refused(what, withdrawn, libc::EINTR, "withdrawn"));
        let last = self.session(host);
        self.rep
            .check(last.is_none(), || "recovery: host still listed".into());
        let removed = Expect::error(libc::ESTALE, "removed");
        let f = ReloginFailed::new(host, g2, 1, 0);
        self.step(&c, Step::fail("FAIL_RELOGIN after removal", f, removed));
        if let Some((_fd, x)) = self.with_fd(&good, garbage) {
            self.send(
                "recovery: HANDOFF after removal",
                uapi::HANDOFF,
                Ptr::Valid,
                &x.to_bytes(),
                &Expect::error(libc::ENODEV, "removed"),
            );
        }
    }

    /// HANDOFFs to the failed session `good` answers that must be refused:
    /// each defect alone, every descriptor that is not a usable socket, the
    /// argument where it cannot be read.
    fn refused_handoffs(&mut self, good: &Handoff) {
        type Mutate = fn(&mut Handoff);
        let refused: [(&str, Mutate, Target); 8] = [
            (
                "newer generation",
                |x| x.generation = x.generation.wrapping_add(1),
                Target::Stale,
            ),
            (
                "older generation",
                |x| x.generation = x.generation.wrapping_sub(1),
                Target::Stale,
            ),
            (
                "other target name",
                |x| x.target_name[0] ^= 1,
                Target::Mismatch,
            ),
            (
                "other initiator name",
                |x| x.initiator_name[1] ^= 1,
                Target::Mismatch,
            ),
            ("other ISID", |x| x.isid[5] ^= 0x80, Target::Mismatch),
            (
                "other queue depth",
                |x| {
                    if x.queue_depth == 1 {
                        x.queue_depth = 2;
                        // Still within MAX_R2T_JOBS: the mismatch, not the
                        // limit, must refuse it.
                        x.max_outstanding_r2t = x.max_outstanding_r2t.min(0x7fff);
                    } else {
                        x.queue_depth -= 1;
                    }
                },
                Target::Mismatch,
            ),
            (
                "recipe set",
                |x| {
                    x.recipe = 0x1000;
                    x.recipe_len = 1
                },
                Target::Answers,
            ),
            ("no such host", |x| x.host_no = 0xffff_fff0, Target::Missing),
        ];
        let garbage = FdKind::Peer(PeerKind::Garbage);
        for (what, m, target) in refused {
            let Some((_fd, mut x)) = self.with_fd(good, garbage) else {
                continue;
            };
            m(&mut x);
            let label = format!("recovery: HANDOFF {what}");
            let _ = self.handoff_call(&label, Via::Handoff(target), Ptr::Valid, &x, garbage);
        }
        for kind in FdKind::PLAIN {
            let Some((_fd, x)) = self.with_fd(good, kind) else {
                continue;
            };
            let label = format!("recovery: HANDOFF with {}", kind.name());
            let answers = Via::Handoff(Target::Answers);
            if self
                .handoff_call(&label, answers, Ptr::Valid, &x, kind)
                .is_ok()
            {
                // Accepted a socket it should not have: the session runs on it
                // now; let it fail again before going on.
                let _ = self.wait_failed(good.host_no, good.generation);
                break;
            }
        }
        for p in [
            Ptr::Null,
            Ptr::Guard,
            Ptr::Straddle(100),
            Ptr::Kernel(0xffff_ffff_8100_0000),
            Ptr::CrossTaskEnd,
        ] {
            self.send(
                &format!("recovery: HANDOFF argument {}", p.name()),
                uapi::HANDOFF,
                p,
                &good.to_bytes(),
                &Expect::error(libc::EFAULT, "argument"),
            );
        }
    }

    /// ADD_CONNECTIONs to the failed session of the recovery conversation:
    /// it is not running, so even one that fits is refused (ESTALE); each
    /// other defect adds its own errno.
    fn refused_connections(&mut self, c: &Conv) {
        let lanes = c.h.connections.max(1);
        let mut base = handoff_to(&c.h, c.host);
        base.generation = c.g;
        base.connections = 0;
        base.lane = if lanes > 1 {
            self.rng.range(1, u32::from(lanes) - 1) as u16
        } else {
            1
        };
        base.cid = base.lane;
        type Mutate = fn(&mut Handoff, u16);
        let cases: [(&str, Mutate, &[Target]); 7] = [
            ("to a session that is not running", |_, _| {}, &[]),
            (
                "lane beyond the session's lanes",
                |x, lanes| x.lane = lanes.clamp(1, uapi::MAX_CONNECTIONS - 1),
                &[Target::Mismatch],
            ),
            (
                "other InitialR2T",
                |x, _| x.initial_r2t ^= 1,
                &[Target::Mismatch],
            ),
            (
                "other MaxBurstLength",
                |x, _| {
                    if x.max_burst_len > uapi::MIN_DATA_SEGMENT_LEN {
                        x.max_burst_len -= 1;
                    } else {
                        x.max_burst_len += 1;
                    }
                    x.first_burst_len = x.first_burst_len.min(x.max_burst_len);
                },
                &[Target::Mismatch],
            ),
            ("other ISID", |x, _| x.isid[0] ^= 1, &[Target::Mismatch]),
            (
                "newer generation",
                |x, _| x.generation = x.generation.wrapping_add(1),
                &[],
            ),
            (
                "no such host",
                |x, _| x.host_no = 0xffff_fff0,
                &[Target::Missing],
            ),
        ];
        let garbage = FdKind::Peer(PeerKind::Garbage);
        for (what, m, extra) in cases {
            let Some((_fd, mut x)) = self.with_fd(&base, garbage) else {
                continue;
            };
            m(&mut x, lanes);
            let mut targets = extra.to_vec();
            if !targets.contains(&Target::Missing) {
                targets.push(Target::Stale);
                if x.lane >= lanes && !targets.contains(&Target::Mismatch) {
                    targets.push(Target::Mismatch);
                }
            }
            let label = format!("recovery: ADD_CONNECTION {what}");
            let b = x.to_bytes();
            let want = expect::add_connection_to(Ptr::Valid, &b, garbage, &targets);
            self.send(&label, uapi::ADD_CONNECTION, Ptr::Valid, &b, &want);
        }
        for kind in FdKind::PLAIN {
            let Some((_fd, x)) = self.with_fd(&base, kind) else {
                continue;
            };
            let label = format!("recovery: ADD_CONNECTION with {}", kind.name());
            let b = x.to_bytes();
            let want = expect::add_connection(Ptr::Valid, &b, kind, Target::Stale);
            self.send(&label, uapi::ADD_CONNECTION, Ptr::Valid, &b, &want);
        }
    }

    /// A WAIT_EVENT while a request is pending, as `w` says, checked against
    /// `want`.
    fn pending_wait(&mut self, label: &str, w: Wait, want: &Expect) -> Waited {
        // A straddling buffer needs its mapped part; the others stay
        // poisoned so a write past the recipe shows.
        let fill = if matches!(w.recipe, Ptr::Straddle(_)) {
            vec![0u8; (w.cap as usize).min(Region::capacity())]
        } else {
            Vec::new()
        };
        let raddr = self.nested.place(w.recipe, &fill);
        let mut sent = Event::request(w.flags, raddr, w.cap);
        gen::junk_event_outputs(&mut sent, &mut self.rng);
        let arg = self.main.place(w.main, &sent.to_bytes());
        let r = self.call_blocking(label, uapi::WAIT_EVENT, arg);
        self.rep.outcome(label, &r, want);
        let back = self.main.read_array(arg).map(|v| Event::from_bytes(&v));
        Waited {
            r,
            back,
            raddr,
            sent,
        }
    }

    /// Runs the steps of the recovery conversation, in order.
    fn converse(&mut self, c: &Conv, steps: Vec<Step>) {
        for s in steps {
            self.step(c, s);
        }
    }

    /// One step of the recovery conversation.
    fn step(&mut self, c: &Conv, s: Step) {
        match s {
            Step::Wait(what, w, want, after) => {
                let got = self.pending_wait(&format!("recovery: {what}"), w, &want);
                match after {
                    After::Nothing => {}
                    After::Untouched => {
                        self.rep.check(got.back == Some(got.sent), || {
                            "recovery: WAIT_EVENT refused with ENOSPC but wrote its argument".into()
                        });
                        self.rep.check(self.nested.canary_intact_from(got.raddr), || {
                            "recovery: WAIT_EVENT refused with ENOSPC but wrote the recipe buffer"
                                .into()
                        });
                    }
                    After::Delivered(attempt) if got.r == Ok(0) => {
                        self.check_event(c, &got, attempt);
                    }
                    After::Delivered(_) => {}
                }
            }
            Step::Fail(what, main, f, want) => {
                let label = format!("recovery: {what}");
                self.send(&label, uapi::FAIL_RELOGIN, main, &f.to_bytes(), &want);
            }
        }
    }

    /// The event a WAIT_EVENT of the recovery conversation delivered.
    fn check_event(&mut self, c: &Conv, got: &Waited, attempt: u32) {
        let (host, g, h, recipe) = (c.host, c.g, &c.h, &c.recipe[..]);
        let Some(e) = got.back else {
            self.rep
                .check(false, || "recovery: WAIT_EVENT answer not readable".into());
            return;
        };
        if e.host_no != host && self.foreign.contains(&e.host_no) {
            self.rep.note(format!(
                "recovery: WAIT_EVENT delivered foreign host{}",
                e.host_no
            ));
            return;
        }
        let fields = e.kind == uapi::EVENT_RELOGIN
            && e.host_no == host
            && e.generation == g
            && (1..=7).contains(&e.reason)
            && e.attempt == attempt
            && same_fields!(e, h; cid, isid, target_name, initiator_name, portal)
            && e.recipe_len == recipe.len() as u32
            && e.connections == if h.connections > 1 { h.connections } else { 0 }
            && e.lane < e.connections.max(1);
        self.rep.check(fields, || {
            format!(
                "recovery: event kind {} host{} gen {} reason {} attempt {} recipe_len {} (want host{host} gen {g} attempt {attempt} recipe_len {})",
                e.kind, e.host_no, e.generation, e.reason, e.attempt, e.recipe_len, recipe.len()
            )
        });
        if attempt > 0 {
            self.rep.check(e.delay_ms == 0, || {
                format!("recovery: delay_ms {} after FAIL_RELOGIN", e.delay_ms)
            });
        }
        let sent = got.sent;
        let inputs =
            same_fields!(e, sent; version, size, flags, recipe, recipe_capacity, _spare, _pad0);
        self.rep.check(inputs, || {
            "recovery: WAIT_EVENT changed input fields".into()
        });
        let back = self.nested.read(got.raddr, recipe.len());
        self.rep.check(back.as_deref() == Some(recipe), || {
            "recovery: recipe handed back differs".into()
        });
        self.rep.check(
            self.nested
                .canary_intact_from(got.raddr + recipe.len() as u64),
            || "recovery: WAIT_EVENT wrote past the recipe".into(),
        );
    }

    // ---------------------------------------------------------------- final

    /// No session of ours is left.
    pub fn final_check(&mut self) {
        self.rep.suite("final");
        let now: Vec<u32> = self.sessions().iter().map(|s| s.host_no).collect();
        let extra: Vec<u32> = now
            .iter()
            .copied()
            .filter(|h| !self.foreign.contains(h))
            .collect();
        self.rep.check(extra.is_empty(), || {
            format!("sessions left over: {extra:?}")
        });
        for h in extra {
            self.remove_ours(h, "left over");
        }
        let _ = std::fs::remove_file(&self.scratch);
    }
}

/// What a failed check says when the reset peer cannot be reached.
fn reset_peer(_: std::io::Error) -> String {
    "connect to the reset peer".into()
}

/// Sets `h`'s data segment lengths (`recv` for the receiving side, `other` for
/// the rest) and both digests.
fn set_segments(h: &mut Handoff, recv: u32, other: u32, digest: u8) {
    h.max_recv_data_segment_len = recv;
    h.max_xmit_data_segment_len = other;
    h.max_burst_len = other;
    h.first_burst_len = other;
    h.header_digest = digest;
    h.data_digest = digest;
}

/// `h` as the answer for session `host`: no recipe (the recovery ioctls
/// carry none).
fn handoff_to(h: &Handoff, host: u32) -> Handoff {
    let mut x = *h;
    x.host_no = host;
    x.recipe = 0;
    x.recipe_len = 0;
    x
}

/// An ioctl from a helper thread on the device (see [`set_raw_dev`]), with
/// `arg` as the argument, watched by `wd`.
fn thread_call(wd: &Watchdog, label: &str, cmd: u32, arg: &mut [u8]) -> Outcome {
    let slot = wd.enter(label);
    let r = sys::ioctl(raw_dev(), cmd, arg.as_mut_ptr() as u64);
    wd.leave(slot);
    r
}

// The busy race's threads need the device descriptor without borrowing the
// fuzzer; it lives as long as the process.
static RAW_DEV: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

fn set_raw_dev(fd: i32) {
    RAW_DEV.store(fd, std::sync::atomic::Ordering::Relaxed);
}

fn raw_dev() -> i32 {
    RAW_DEV.load(std::sync::atomic::Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A whole run against the model of the module (`fake.rs`): the suites
    /// must raise no false alarm when the module behaves as ctl.rs says.
    #[test]
    fn whole_run_against_the_model_has_no_false_alarms() {
        if !crate::fake::usable() {
            eprintln!("process_vm_readv unavailable: model run skipped");
            return;
        }
        let dev = crate::fake::device();
        drop(dev);
        for seed in [1, 2] {
            let opts = Options {
                seed,
                iterations: 600,
                device: "/dev/null".into(),
                interrupt_after: Duration::from_millis(30),
                sessions: None,
                fail_within: Duration::from_secs(5),
            };
            let wd = Watchdog::start(Duration::from_secs(60), Duration::from_secs(600));
            let mut f = Fuzzer::new(opts, wd, false).expect("fuzzer");
            f.numbers();
            f.pointers();
            f.descriptors();
            f.random();
            f.sessions_suite();
            f.final_check();
            assert_eq!(
                f.rep.failed, 0,
                "seed {seed}: failures (see the FAIL lines above)"
            );
            assert!(f.rep.passed > 500);
        }
    }
}
