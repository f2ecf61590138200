//! iscsictl: the userspace half of iscsi-rs. It discovers targets and logs in over
//! its own TCP socket, then hands the connected socket to `iscsi_rs.ko`.

use clap::Parser;

/// Command line of iscsictl.
#[derive(Parser, Debug)]
#[command(name = "iscsictl", version, about = "iSCSI initiator control for iscsi_rs.ko")]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
