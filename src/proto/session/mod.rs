//! The full-feature-phase session engine, sans IO (issue 13): the rules the
//! kernel's session applies to every command and every target PDU, as plain
//! state that `cargo test` drives. The kernel side keeps the locks, work
//! items, socket and SCSI host, and applies what these return.
//!
//! - [`engine`]: the session's state in one value ([`engine::Engine`]),
//!   generic over the caller's command handle and storage; submission.
//! - [`rx`]: what each target PDU does (placement, completion, R2T, NOP-In,
//!   Async Message, Reject, TMF and Logout responses).
//! - [`tx`]: immediate / unsolicited / solicited Data-Out planning and the
//!   transmit job ring.
//! - [`timers`]: keepalive, NOP timeout, closed window, logout deadline and
//!   replacement timeout as one poll.
//! - [`lane`]: what each connection of the session keeps (ExpStatSN, its
//!   transmit queues, ping state).
//! - [`task`]: the task table; [`itt`]: the ITT layout; [`error`]: every
//!   target violation by name.
//! - [`seq`]: CmdSN, the command window, StatSN and the target quirks ridden
//!   through; [`window_watch`]: the closed-window rule; [`tmf`]: the TMF slot
//!   and what an ABORT TASK answer means; [`aborted`]: ITTs taken back;
//!   [`logout`]: a target-requested logout's deadline and relogin delay.

pub mod aborted;
pub mod engine;
pub mod error;
pub mod itt;
pub mod lane;
pub mod logout;
pub mod rx;
pub mod seq;
pub mod task;
pub mod timers;
pub mod tmf;
pub mod tx;
pub mod window_watch;

#[cfg(test)]
mod tests;
