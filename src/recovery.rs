//! Relogin requests between failed sessions and `iscsictl daemon`: a session
//! whose connection failed posts one here (by host number, so the board holds
//! no session alive); WAIT_EVENT hands the oldest due request to the daemon,
//! FAIL_RELOGIN puts it back with a retry delay, and a HANDOFF (or the
//! session's removal) withdraws it. Each loss of a connection is one
//! generation; answers for an older generation are stale.
#![deny(unsafe_code)]

use kernel::prelude::*;
use kernel::sync::{new_condvar, new_mutex, Arc, CondVar, CondVarTimeoutResult, Mutex};
use kernel::time::{msecs_to_jiffies, Ktime};

/// Longest sleep of a waiter between looks at the board while a request is
/// due later (a FAIL_RELOGIN retry delay).
const POLL_MS: u32 = 1000;
/// Sleep of a waiter while nothing is pending (it is woken by a post).
const IDLE_MS: u32 = 60_000;

/// Milliseconds on the monotonic clock.
pub(crate) fn now_ms() -> i64 {
    Ktime::ktime_get().to_ms()
}

/// ESTALE: the answer is for a request that no longer exists.
pub(crate) fn estale() -> Error {
    Error::from_errno(-(kernel::bindings::ESTALE as i32))
}

/// One session's pending relogin request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request {
    pub(crate) host_no: u32,
    pub(crate) generation: u32,
    /// One of `uapi::reason`.
    pub(crate) reason: u32,
    /// Failed attempts so far.
    pub(crate) attempt: u32,
    /// Wait this long before connecting (DefaultTime2Wait or the target's).
    pub(crate) delay_ms: u32,
    /// Handed to a waiter that has not answered yet.
    delivered: bool,
    /// Not offered before this time (ms, `now_ms`).
    not_before_ms: i64,
}

impl Request {
    /// The recovery generation.
    pub(crate) fn generation(&self) -> u32 {
        self.generation
    }
}

/// The board.
#[pin_data]
pub(crate) struct Board {
    /// A slot is emptied, not removed, when its request goes (6.12's KVec
    /// cannot remove); slots are reused.
    #[pin]
    requests: Mutex<KVec<Option<Request>>>,
    #[pin]
    posted: CondVar,
}

impl Board {
    /// An empty board.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Board {
                requests <- new_mutex!(KVec::new(), "iscsi_rs::Board::requests"),
                posted <- new_condvar!("iscsi_rs::Board::posted"),
            }),
            GFP_KERNEL,
        )
    }

    /// Posts the request for a new loss of `host_no`'s connection, replacing
    /// any older one of that session.
    pub(crate) fn post(&self, host_no: u32, generation: u32, reason: u32, delay_ms: u32) {
        let req = Request {
            host_no,
            generation,
            reason,
            attempt: 0,
            delay_ms,
            delivered: false,
            not_before_ms: 0,
        };
        let mut list = self.requests.lock();
        let slot = match list
            .iter()
            .position(|r| r.is_some_and(|r| r.host_no == host_no))
        {
            Some(i) => Some(i),
            None => list.iter().position(Option::is_none),
        };
        if let Some(r) = slot.and_then(|i| list.get_mut(i)) {
            *r = Some(req);
        } else if list.push(Some(req), GFP_KERNEL).is_err() {
            // The session stays in recovery and fails I/O after its
            // replacement timeout; the log says why nobody reconnects it.
            pr_err!("host{}: no memory to post the relogin request\n", host_no);
            return;
        }
        self.posted.notify_all();
    }

    /// Forgets `host_no`'s request (recovered, or the session is gone).
    pub(crate) fn withdraw(&self, host_no: u32) {
        for r in self.requests.lock().iter_mut() {
            if r.is_some_and(|r| r.host_no == host_no) {
                *r = None;
            }
        }
    }

    /// Waits (interruptibly) for a due, undelivered request and marks it
    /// delivered. `rescan` first offers again every delivered one (a new
    /// daemon taking over from one that died).
    pub(crate) fn wait(&self, rescan: bool) -> Result<Request> {
        let mut list = self.requests.lock();
        if rescan {
            for r in list.iter_mut().flatten() {
                r.delivered = false;
            }
        }
        loop {
            let now = now_ms();
            let mut next_due: Option<i64> = None;
            for r in list.iter_mut().flatten().filter(|r| !r.delivered) {
                if r.not_before_ms <= now {
                    r.delivered = true;
                    return Ok(*r);
                }
                next_due = Some(next_due.map_or(r.not_before_ms, |d| d.min(r.not_before_ms)));
            }
            let wait_ms = next_due.map_or(IDLE_MS, |d| {
                u32::try_from(d - now).unwrap_or(POLL_MS).clamp(1, POLL_MS)
            });
            if let CondVarTimeoutResult::Signal { .. } = self
                .posted
                .wait_interruptible_timeout(&mut list, msecs_to_jiffies(wait_ms))
            {
                return Err(EINTR);
            }
        }
    }

    /// Puts a delivered request back, e.g. when copying it to the waiter failed.
    pub(crate) fn undeliver(&self, host_no: u32, generation: u32) {
        let mut list = self.requests.lock();
        if let Some(r) = list
            .iter_mut()
            .flatten()
            .find(|r| r.host_no == host_no && r.generation == generation)
        {
            r.delivered = false;
            self.posted.notify_all();
        }
    }

    /// Records a failed attempt for (`host_no`, `generation`): offered again
    /// after `retry_ms`. Returns the attempt count, or `ESTALE`.
    pub(crate) fn failed(&self, host_no: u32, generation: u32, retry_ms: u32) -> Result<u32> {
        let mut list = self.requests.lock();
        let r = list
            .iter_mut()
            .flatten()
            .find(|r| r.host_no == host_no && r.generation == generation)
            .ok_or_else(estale)?;
        r.attempt = r.attempt.saturating_add(1);
        r.delivered = false;
        r.delay_ms = 0;
        r.not_before_ms = now_ms() + i64::from(retry_ms);
        self.posted.notify_all();
        Ok(r.attempt)
    }
}
