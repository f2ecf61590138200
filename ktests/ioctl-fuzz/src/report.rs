//! Counting checks: each failure is printed at once (so a later hang or crash
//! loses nothing) and counted for the summary and the exit status.

use std::io::Write;

use crate::expect::Expect;
use crate::sys::{show, Outcome};

/// Tallies of one run.
#[derive(Debug, Default)]
pub struct Report {
    /// ioctls made.
    pub calls: u64,
    /// Checks passed.
    pub passed: u64,
    /// Checks failed.
    pub failed: u64,
    /// Suspicious findings that are not (yet) counted as failures.
    pub warnings: u64,
    /// Print every check.
    pub verbose: bool,
    suite: &'static str,
}

impl Report {
    /// A report; `verbose` prints passing checks too.
    pub fn new(verbose: bool) -> Self {
        Report {
            verbose,
            ..Report::default()
        }
    }

    /// Names the suite for the following lines.
    pub fn suite(&mut self, name: &'static str) {
        self.suite = name;
        println!("== {name}");
        let _ = std::io::stdout().flush();
    }

    /// One check.
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) -> bool {
        if ok {
            self.passed += 1;
            if self.verbose {
                println!("ok   {}: {}", self.suite, what());
            }
        } else {
            self.failed += 1;
            println!("FAIL {}: {}", self.suite, what());
            let _ = std::io::stdout().flush();
        }
        ok
    }

    /// Checks an ioctl outcome against the oracle.
    pub fn outcome(&mut self, label: &str, got: &Outcome, want: &Expect) -> bool {
        let ok = want.accepts(got);
        self.check(ok, || {
            format!("{label}: got {}, want {}", show(got), want.describe())
        })
    }

    /// A suspicious finding.
    pub fn warn(&mut self, what: impl AsRef<str>) {
        self.warnings += 1;
        println!("WARN {}: {}", self.suite, what.as_ref());
        let _ = std::io::stdout().flush();
    }

    /// A note (not a check).
    pub fn note(&self, what: impl AsRef<str>) {
        println!("note {}: {}", self.suite, what.as_ref());
    }
}
