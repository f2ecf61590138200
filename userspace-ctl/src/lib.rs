//! iscsictl as a library: the binary's `main` only parses argv and calls [`run`];
//! everything else lives in these modules so it can be unit-tested.

pub mod cli;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod device;
pub mod exit;
pub mod names;
pub mod params;
pub mod plan;
pub mod portal;
pub mod secret;
pub mod transport;

pub use commands::{run, run_with};
