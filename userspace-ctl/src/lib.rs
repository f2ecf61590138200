//! iscsictl as a library: the binary's `main` only parses argv and calls [`run`];
//! everything else lives in these modules so it can be unit-tested.

pub mod cli;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod daemon;
pub mod device;
pub mod discover;
pub mod exit;
pub mod failure;
pub mod handoff;
pub mod identity;
pub mod logging;
pub mod login;
pub mod names;
pub mod netns;
pub mod offer;
pub mod params;
pub mod plan;
pub mod portal;
pub mod recipe;
pub mod report;
pub mod secret;
pub mod session;
pub mod sessions;
pub mod transport;
pub mod udev;

pub use commands::{run, run_with};
