//! A private tgtd per test: its own portal on 127.0.0.1 (or ::1), its own control socket,
//! two targets (one open, one behind one-way + mutual CHAP) with file-backed LUNs
//! and CRC32C digests allowed, torn down on drop even when the test panics; plus
//! small helpers for the fake servers.
//!
//! tgtd ignores SIGTERM while a target exists, so teardown deletes the targets
//! (`--force`: our login sessions may still linger), asks the daemon to exit
//! (`--op delete --mode system`), and only kills it if it is still there after
//! a grace period.

use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const PLAIN_IQN: &str = "iqn.2026-11.dev.iscsi-rs.test:plain";
pub const CHAP_IQN: &str = "iqn.2026-11.dev.iscsi-rs.test:chap";
/// Incoming account of the CHAP target: what we authenticate with.
pub const CHAP_USER: &str = "alice";
pub const CHAP_SECRET: &str = "alice-secret-0123";
/// Outgoing account of the CHAP target: what it proves to us (mutual CHAP).
pub const MUTUAL_USER: &str = "target-bob";
pub const MUTUAL_SECRET: &str = "bob-secret-456789";

const START_TIMEOUT: Duration = Duration::from_secs(15);
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// A running tgtd with the two targets configured.
pub struct Tgtd {
    child: Child,
    tgtadm: PathBuf,
    /// The portal's address and port.
    host: &'static str,
    pub port: u16,
    /// The control "port": names tgtd's management socket; tgtd refuses one that
    /// another tgtd holds (lock file) and anything above 32767.
    ctl: u16,
    pub dir: tempfile::TempDir,
    tids: Vec<u32>,
}

impl Tgtd {
    /// Starts tgtd and configures both targets; panics with a clear message when
    /// tgt is not installed (the test must fail, not pass vacuously).
    /// On 127.0.0.1.
    pub fn start() -> Tgtd {
        Tgtd::start_on("127.0.0.1")
    }

    /// On `host`, an IP literal ("127.0.0.1", "::1").
    pub fn start_on(host: &'static str) -> Tgtd {
        let tgtd = find_tool("tgtd");
        let tgtadm = find_tool("tgtadm");
        let mut last_log = String::new();
        // A port freed by bind(0) can be taken by a parallel test before tgtd
        // binds it; then tgtd fails and we try another.
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = free_port_on(host);
            // Derived from the free port so parallel tests rarely clash; a clash
            // makes tgtd exit ("another tgtd is using …") and we try again.
            let ctl = (port & 0x7fff).max(1);
            let log = dir.path().join("tgtd.log");
            let log_file = fs::File::create(&log).expect("tgtd log file");
            let child = Command::new(&tgtd)
                .args(["-f", "-C", &ctl.to_string(), "--iscsi"])
                .arg(format!("portal={}", bracketed(host, port)))
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("dup log"))
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", tgtd.display()));
            let mut t = Tgtd {
                child,
                host,
                tgtadm: tgtadm.clone(),
                port,
                ctl,
                dir,
                tids: Vec::new(),
            };
            if t.wait_ready() {
                t.configure();
                return t;
            }
            last_log = fs::read_to_string(&log).unwrap_or_default();
            // Drop tears down whatever came up.
        }
        panic!("tgtd did not come up on a free port after 5 tries; last log:\n{last_log}");
    }

    /// `host:port`, IPv6 in brackets.
    pub fn portal(&self) -> String {
        bracketed(self.host, self.port)
    }

    /// Writes a 0600 secret file in the fixture's directory.
    pub fn secret_file(&self, name: &str, secret: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::write(&p, format!("{secret}\n")).expect("write secret");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).expect("chmod secret");
        p
    }

    /// True once the control socket answers and our portal accepts connections.
    /// tgtd that cannot bind the portal falls back to 0.0.0.0:3260 instead of
    /// failing, hence the check that the portal list has ours.
    fn wait_ready(&mut self) -> bool {
        let start = Instant::now();
        while start.elapsed() < START_TIMEOUT {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let ctl_ok = self
                .tgtadm_quiet(&["--op", "show", "--mode", "portal"])
                .map(|o| {
                    o.status.success()
                        && String::from_utf8_lossy(&o.stdout).contains(&self.portal())
                })
                .unwrap_or(false);
            if ctl_ok && TcpStream::connect((self.host, self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn configure(&mut self) {
        for (tid, iqn) in [(1u32, PLAIN_IQN), (2, CHAP_IQN)] {
            self.tgtadm(&format!("--op new --mode target --tid {tid}"), &["-T", iqn]);
            self.tids.push(tid);
            let lun = self.dir.path().join(format!("lun{tid}.img"));
            let f = fs::File::create(&lun).expect("create LUN file");
            f.set_len(4 << 20).expect("size LUN file");
            let lun = lun.to_str().expect("utf-8 temp path");
            let new_lun = format!("--op new --mode logicalunit --tid {tid} --lun 1");
            self.tgtadm(&new_lun, &["-b", lun]);
            self.tgtadm(&format!("--op bind --mode target --tid {tid} -I ALL"), &[]);
            // tgtd answers None to a CRC32C offer unless told it may digest.
            for key in ["HeaderDigest", "DataDigest"] {
                let update = format!("--op update --mode target --tid {tid} -n {key}");
                self.tgtadm(&update, &["-v", "CRC32C,None"]);
            }
        }
        let account = "--op new --mode account --user";
        self.tgtadm(account, &[CHAP_USER, "--password", CHAP_SECRET]);
        self.tgtadm(account, &[MUTUAL_USER, "--password", MUTUAL_SECRET]);
        let bind = "--op bind --mode account --tid 2 --user";
        self.tgtadm(bind, &[CHAP_USER]);
        self.tgtadm(bind, &[MUTUAL_USER, "--outgoing"]);
    }

    /// Sets target `tid`'s iSCSI parameter `key` (tgtadm -n/-v).
    pub fn set_target_param(&self, tid: u32, key: &str, value: &str) {
        let update = format!("--op update --mode target --tid {tid} -n {key}");
        self.tgtadm(&update, &["-v", value]);
    }

    /// tgtadm's `--op show --mode conn` listing of target `tid`: one entry
    /// ("Session: <TSIH>", "Connection: <CID>", the initiator, its address) for
    /// each connection tgtd holds in a session of that target.
    pub fn show_connections(&self, tid: u32) -> String {
        let tid = tid.to_string();
        let args = ["--op", "show", "--mode", "conn", "--tid", &tid];
        let o = self
            .tgtadm_quiet(&args)
            .unwrap_or_else(|e| panic!("cannot run tgtadm: {e}"));
        assert!(o.status.success(), "tgtadm {args:?} failed: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs tgtadm against this daemon with the words of `cmd` then `extra`
    /// (values that may hold spaces); panics with its output on failure.
    fn tgtadm(&self, cmd: &str, extra: &[&str]) {
        let args: Vec<&str> = cmd
            .split_whitespace()
            .chain(extra.iter().copied())
            .collect();
        let o = self
            .tgtadm_quiet(&args)
            .unwrap_or_else(|e| panic!("cannot run tgtadm: {e}"));
        assert!(
            o.status.success(),
            "tgtadm {args:?} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn tgtadm_quiet(&self, args: &[&str]) -> std::io::Result<Output> {
        Command::new(&self.tgtadm)
            .args(["-C", &self.ctl.to_string(), "--lld", "iscsi"])
            .args(args)
            .stdin(Stdio::null())
            .output()
    }
}

impl Drop for Tgtd {
    fn drop(&mut self) {
        for tid in std::mem::take(&mut self.tids).into_iter().rev() {
            let _ = self.tgtadm_quiet(&[
                "--op",
                "delete",
                "--mode",
                "target",
                "--force",
                "--tid",
                &tid.to_string(),
            ]);
        }
        let _ = self.tgtadm_quiet(&["--op", "delete", "--mode", "system"]);
        let start = Instant::now();
        while start.elapsed() < EXIT_GRACE {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // tgtd leaves its control socket and lock file behind.
        for suffix in ["", ".lock"] {
            let _ = fs::remove_file(format!("/var/run/tgtd/socket.{}{suffix}", self.ctl));
        }
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

fn free_port_on(host: &str) -> u16 {
    let l = TcpListener::bind((host, 0)).unwrap_or_else(|e| panic!("bind {host}:0: {e}"));
    l.local_addr().expect("local addr").port()
}

fn bracketed(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `name` from PATH or the sbin directories (cargo's PATH may lack them).
fn find_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    for d in dirs {
        let p = d.join(name);
        if is_executable(&p) {
            return p;
        }
    }
    panic!(
        "{name} not found: these tests need the tgt package (apt-get install tgt; \
         `make deps` installs it)"
    );
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Drains a connection until the peer closes or `limit` passes (fake servers).
pub fn drain(mut s: TcpStream, limit: Duration) {
    let _ = s.set_read_timeout(Some(limit));
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}
