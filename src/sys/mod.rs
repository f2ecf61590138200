//! The only place with `unsafe`: thin safe wrappers over the C objects iscsi_rs
//! uses (misc chardev, SCSI host and commands, TCP socket, workqueue), on bindings
//! this module generates itself. Everything above this layer is safe Rust.

pub(crate) mod bindings;
pub(crate) mod chardev;
pub(crate) mod crc;
#[cfg(iscsi_rs_kunit)]
pub(crate) mod kunit;
pub(crate) mod lock;
pub(crate) mod scsi;
pub(crate) mod socket;
pub(crate) mod workqueue;

/// Sleeps `ms` milliseconds (`msleep`). Process context only, no spinlock
/// held (its callers: ioctl, module exit and command revocation paths).
pub(crate) fn sleep_ms(ms: u32) {
    // SAFETY: a plain sleep; it touches no memory of ours.
    unsafe { bindings::iscsi_rs_sleep_ms(ms) };
}
