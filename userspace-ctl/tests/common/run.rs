//! Running the built `iscsictl` from an integration test: its exit code and
//! output, with a time limit (a hang fails the test instead of stalling it).

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// One finished run.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    #[allow(dead_code)] // not every test binary looks at it
    pub elapsed: Duration,
}

impl Run {
    pub fn expect(&self, code: u8) -> &Self {
        assert_eq!(
            self.code,
            Some(i32::from(code)),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn stdout_has(&self, want: &str) -> &Self {
        assert!(
            self.stdout.contains(want),
            "{want:?} not in\n{}",
            self.stdout
        );
        self
    }

    pub fn stderr_has(&self, want: &str) -> &Self {
        assert!(
            self.stderr.contains(want),
            "{want:?} not in\n{}",
            self.stderr
        );
        self
    }
}

/// Runs the built binary with `args` and `--initiator-name initiator`, killing
/// it (and failing) after `limit`.
pub fn run_iscsictl(args: &[&str], initiator: &str, limit: Duration) -> Run {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_iscsictl"))
        .args(args)
        .args(["--initiator-name", initiator])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run iscsictl");
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("iscsictl {args:?} still running after {limit:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code(),
        stdout: out_t.join().expect("stdout thread"),
        stderr: err_t.join().expect("stderr thread"),
        elapsed: start.elapsed(),
    }
}
