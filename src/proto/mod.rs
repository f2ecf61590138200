//! iSCSI (RFC 7143) protocol core: wire format, framing, text keys, negotiation,
//! login and CHAP, as sans-IO state machines over caller-provided buffers.
//!
//! Compiled twice from the same files: into `iscsi_rs.ko` (as `pub mod proto;` in the
//! crate root) and into iscsictl (as the cargo crate `iscsi-proto`). It therefore uses
//! only `core`: no allocation, no I/O, no clock, no locks, no floats, no `unsafe`.
//! Paths inside it are written `super::…` so they resolve in both crates.
#![forbid(unsafe_code)]

pub mod bhs;
pub mod chap;
pub mod crc32c;
pub mod discovery;
pub mod framing;
pub mod login;
pub mod negotiate;
pub mod pdu;
pub mod serial;
pub mod session;
pub mod text;
pub mod uapi;

#[cfg(test)]
mod test_support;
