//! The only place with `unsafe`: thin safe wrappers over the C objects iscsi_rs
//! uses (misc chardev now; SCSI host and socket with the data path), on bindings
//! this module generates itself. Everything above this layer is safe Rust.

pub(crate) mod bindings;
pub(crate) mod chardev;
#[cfg(CONFIG_KUNIT)]
pub(crate) mod kunit;
