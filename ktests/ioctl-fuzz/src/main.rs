//! `iscsi-ioctl-fuzz`: hostile and random ioctls on `/dev/iscsi_rs` (run as
//! root in a test guest with iscsi_rs.ko loaded). Deterministic per `--seed`;
//! prints every failed check at once, a summary at the end, and exits 1 when a
//! check failed (3 when a call hung and the watchdog ended the run, 2 when it
//! could not start).

mod expect;
#[cfg(test)]
mod fake;
mod fuzz;
mod gen;
mod guard;
mod mem;
mod peers;
mod report;
mod rng;
mod sys;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

/// Fuzz the iscsi_rs control device's ioctls.
#[derive(Parser, Debug)]
#[command(name = "iscsi-ioctl-fuzz", version)]
struct Cli {
    /// Seed of every random choice (same seed, same calls).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Random calls in the `random` suite.
    #[arg(long, default_value_t = 500)]
    iterations: u64,
    /// The control device.
    #[arg(long, default_value = "/dev/iscsi_rs")]
    device: String,
    /// At most this many session-creating tests (0: none; default: all).
    /// The recovery conversation comes first, the rest in a seed-chosen order.
    #[arg(long)]
    sessions: Option<usize>,
    /// Seconds one ioctl may take before the watchdog ends the run.
    #[arg(long, default_value_t = 120)]
    call_timeout: u64,
    /// Seconds the whole run may take.
    #[arg(long, default_value_t = 900)]
    total_timeout: u64,
    /// Milliseconds a blocking WAIT_EVENT sleeps before it is interrupted.
    #[arg(long, default_value_t = 150)]
    interrupt_ms: u64,
    /// Seconds a session over a hostile peer may take to fail.
    #[arg(long, default_value_t = 30)]
    fail_within: u64,
    /// Count warnings (suspicious findings) as failures.
    #[arg(long)]
    strict: bool,
    /// Print passing checks too.
    #[arg(short, long)]
    verbose: bool,
    /// Suites to skip: privilege, numbers, pointers, descriptors, random, sessions.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if sys::euid() != 0 {
        eprintln!("iscsi-ioctl-fuzz: must run as root (the device is root-only and the privilege checks drop from root)");
        return ExitCode::from(2);
    }
    let wd = guard::Watchdog::start(
        Duration::from_secs(cli.call_timeout),
        Duration::from_secs(cli.total_timeout),
    );
    let opts = fuzz::Options {
        seed: cli.seed,
        iterations: cli.iterations,
        device: cli.device.clone(),
        interrupt_after: Duration::from_millis(cli.interrupt_ms),
        sessions: cli.sessions,
        fail_within: Duration::from_secs(cli.fail_within),
    };
    let start = Instant::now();
    let mut f = match fuzz::Fuzzer::new(opts, wd, cli.verbose) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("iscsi-ioctl-fuzz: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "iscsi-ioctl-fuzz: seed {} iterations {}",
        cli.seed, cli.iterations
    );
    let run = |name: &str| !cli.skip.iter().any(|s| s == name);
    let mut timings = Vec::new();
    let mut timed = |name: &'static str, f: &mut fuzz::Fuzzer, go: fn(&mut fuzz::Fuzzer)| {
        if run(name) {
            let t = Instant::now();
            go(f);
            timings.push(format!("{name} {:.1}s", t.elapsed().as_secs_f64()));
        }
    };
    timed("privilege", &mut f, fuzz::Fuzzer::privilege);
    timed("numbers", &mut f, fuzz::Fuzzer::numbers);
    timed("pointers", &mut f, fuzz::Fuzzer::pointers);
    timed("descriptors", &mut f, fuzz::Fuzzer::descriptors);
    timed("random", &mut f, fuzz::Fuzzer::random);
    timed("sessions", &mut f, fuzz::Fuzzer::sessions_suite);
    f.final_check();
    let r = &f.rep;
    println!(
        "iscsi-ioctl-fuzz: seed {}: {} calls, {} checks passed, {} failed, {} warnings in {:.1} s ({})",
        cli.seed,
        r.calls,
        r.passed,
        r.failed,
        r.warnings,
        start.elapsed().as_secs_f64(),
        timings.join(", ")
    );
    if r.failed > 0 || (cli.strict && r.warnings > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
