//! Cargo shim: the protocol core lives in `mod.rs` so that the kernel module can
//! include the very same files as `pub mod proto;`.
#![no_std]

#[path = "mod.rs"]
pub mod proto;
pub use proto::*;
