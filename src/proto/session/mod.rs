//! The full-feature-phase session engine, sans IO (issue 13): the rules the
//! kernel's session applies to every target PDU, as plain state machines that
//! `cargo test` drives. The kernel side keeps the locks, work items, socket
//! and SCSI host, and acts on what these return.
//!
//! Rooms so far:
//! - [`seq`]: CmdSN, the command window, StatSN, and the target quirks the
//!   session rides through instead of failing the connection.
//! - [`window_watch`]: the closed-window rule (ping, then fail), as a timer
//!   polled with the current time.
//! - [`tmf`]: the TMF slot (an ITT per TMF, late answers ignored) and what an
//!   ABORT TASK answer means.
//! - [`aborted`]: ITTs taken back by aborts and resets, sized to the queue.
//! - [`logout`]: a target-requested logout's deadline and relogin delay.

pub mod aborted;
pub mod logout;
pub mod seq;
pub mod tmf;
pub mod window_watch;
