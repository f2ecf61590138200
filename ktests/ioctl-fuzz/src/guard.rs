//! Never hang the case: a watchdog thread ends the process when an ioctl does
//! not return in time (printing which one), and an interrupter thread ends a
//! blocking WAIT_EVENT with SIGUSR1 (EINTR) after a short while.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::sys;

struct Slots {
    calls: Vec<Option<(String, Instant)>>,
}

/// The watchdog.
#[derive(Clone)]
pub struct Watchdog {
    slots: Arc<Mutex<Slots>>,
}

/// Exit status when the watchdog fires.
pub const HANG_EXIT: i32 = 3;

impl Watchdog {
    /// Starts the thread: a call running longer than `per_call`, or the whole
    /// run exceeding `total`, prints a FAIL line and exits with [`HANG_EXIT`].
    pub fn start(per_call: Duration, total: Duration) -> Watchdog {
        let slots = Arc::new(Mutex::new(Slots { calls: Vec::new() }));
        let s = slots.clone();
        let start = Instant::now();
        thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || loop {
                thread::sleep(Duration::from_millis(200));
                let hung = {
                    let g = s.lock().unwrap_or_else(|e| e.into_inner());
                    g.calls
                        .iter()
                        .flatten()
                        .find(|(_, t)| t.elapsed() > per_call)
                        .map(|(l, t)| (l.clone(), t.elapsed()))
                };
                if let Some((label, took)) = hung {
                    let _ = writeln!(
                        std::io::stdout(),
                        "FAIL hang: {label} has not returned after {:.1} s (limit {} s); aborting",
                        took.as_secs_f64(),
                        per_call.as_secs()
                    );
                    let _ = std::io::stdout().flush();
                    sys::exit_now(HANG_EXIT);
                }
                if start.elapsed() > total {
                    let _ = writeln!(
                        std::io::stdout(),
                        "FAIL hang: the run exceeded its total limit of {} s; aborting",
                        total.as_secs()
                    );
                    let _ = std::io::stdout().flush();
                    sys::exit_now(HANG_EXIT);
                }
            })
            .expect("spawn the watchdog");
        Watchdog { slots }
    }

    /// Marks the start of a call; returns its slot for [`Watchdog::leave`].
    pub fn enter(&self, label: &str) -> usize {
        let mut g = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let entry = Some((label.to_string(), Instant::now()));
        if let Some(i) = g.calls.iter().position(Option::is_none) {
            g.calls[i] = entry;
            i
        } else {
            g.calls.push(entry);
            g.calls.len() - 1
        }
    }

    /// Marks the end of the call in `slot`.
    pub fn leave(&self, slot: usize) {
        let mut g = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = g.calls.get_mut(slot) {
            *s = None;
        }
    }
}

/// The interrupter (one armed call at a time).
#[derive(Clone)]
pub struct Interrupter {
    armed: Arc<Mutex<Option<(libc::pthread_t, Instant)>>>,
}

impl Interrupter {
    /// Installs the SIGUSR1 handler and starts the thread.
    pub fn start() -> Interrupter {
        sys::install_interrupt_handler();
        let armed: Arc<Mutex<Option<(libc::pthread_t, Instant)>>> = Arc::new(Mutex::new(None));
        let a = armed.clone();
        thread::Builder::new()
            .name("interrupter".into())
            .spawn(move || loop {
                thread::sleep(Duration::from_millis(20));
                let mut g = a.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((t, at)) = g.as_mut() {
                    if Instant::now() >= *at {
                        // Again every 100 ms, in case the first signal came
                        // before the thread went to sleep in the kernel.
                        sys::interrupt(*t);
                        *at = Instant::now() + Duration::from_millis(100);
                    }
                }
            })
            .expect("spawn the interrupter");
        Interrupter { armed }
    }

    /// Signals the calling thread `after` from now, and every 100 ms after
    /// that, until [`Interrupter::disarm`].
    pub fn arm(&self, after: Duration) {
        *self.armed.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((sys::this_thread(), Instant::now() + after));
    }

    /// Stops signalling.
    pub fn disarm(&self) {
        *self.armed.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupter_ends_a_blocking_read_with_eintr() {
        let i = Interrupter::start();
        let (r, _w) = sys::pipe().unwrap();
        use std::os::fd::AsRawFd;
        let t = Instant::now();
        i.arm(Duration::from_millis(50));
        let mut b = [0u8; 1];
        // SAFETY: read into a local buffer.
        let n = unsafe { libc::read(r.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
        let e = sys::last_errno();
        i.disarm();
        assert_eq!(n, -1);
        assert_eq!(e, libc::EINTR);
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn watchdog_slots_are_reused() {
        let w = Watchdog::start(Duration::from_secs(600), Duration::from_secs(3600));
        let a = w.enter("a");
        let b = w.enter("b");
        assert_ne!(a, b);
        w.leave(a);
        assert_eq!(w.enter("c"), a);
    }
}
