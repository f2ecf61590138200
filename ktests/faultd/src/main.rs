//! `iscsi-faultd`: the test tools of issue 6, one binary. `proxy` sits between an
//! initiator and a target and injects faults on command (`ctl` sends the
//! commands); `hostile` is a target that turns malicious on a trigger. Both speak
//! iSCSI only through iscsi-proto: nothing about the wire is written here twice.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use iscsi_faultd::hostile::forge::{Scenario, TRIGGER_LBA};
use iscsi_faultd::{control, hostile, log, proxy};

#[derive(Parser)]
#[command(
    name = "iscsi-faultd",
    version,
    about = "iSCSI fault-injection proxy and hostile target (tests only)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// TCP proxy with fault injection, controlled over a unix socket.
    Proxy {
        /// Where initiators connect (ADDR:PORT; port 0 picks one, logged).
        #[arg(long, value_parser = parse_addr)]
        listen: SocketAddr,
        /// The real target (ADDR:PORT).
        #[arg(long, value_parser = parse_addr)]
        target: SocketAddr,
        /// Control socket path: one command line per connection (see `ctl`).
        #[arg(long)]
        control: PathBuf,
    },
    /// Send one command to a proxy and print its reply; exit 0 on "ok …".
    /// Commands: drop | drop-one | down | up | stall MS | resume | hold-scsi MS [discard] [until-tmf] | delay MS |
    /// corrupt-data t2i|i2t | corrupt-header t2i|i2t | stats
    Ctl {
        /// The proxy's control socket.
        path: PathBuf,
        /// The command and its argument.
        #[arg(required = true, num_args = 1.., trailing_var_arg = true)]
        command: Vec<String>,
    },
    /// An iSCSI target that misbehaves on a trigger.
    Hostile {
        /// Portal to listen on (ADDR:PORT; port 0 picks one, logged).
        #[arg(long, value_parser = parse_addr)]
        listen: SocketAddr,
        /// dsl-too-long | datain-offset | datain-overrun | datain-unknown-itt |
        /// r2t-beyond | r2t-zero | statsn-backwards | expcmdsn-ahead |
        /// window-absurd | sense-overflow | ahs-overflow | unknown-opcode |
        /// login-garbage | reject-storm | logout-close | logout-close-early |
        /// quirk-expcmdsn | quirk-statsn-repeat | quirk-ou-nonfinal | flat-luns | good.
        /// reject-storm: from the first READ/WRITE at the trigger LBA on, every
        /// SCSI Command, NOP-Out with an ITT and TMF (all connections) gets a
        /// Reject (protocol error); logout-close: FIN right after every Logout
        /// Response; logout-close-early: Logout Response and FIN in one segment.
        /// quirk-*: wrong on every PDU concerned, never a trigger: ExpCmdSN one
        /// beyond the true one; every other status StatSN repeated; O/U on the
        /// Data-Ins without status. flat-luns: flat-space LUNs 0, 1 and 300
        #[arg(long, value_parser = parse_scenario)]
        scenario: Scenario,
        /// RAM disk size in MiB.
        #[arg(long, default_value_t = 64)]
        lun_size_mb: u64,
        /// READs/WRITEs that trigger in this process; 0 = every one. Later
        /// ones (e.g. the retry after recovery) are served correctly.
        #[arg(long, default_value_t = 1)]
        trigger_count: u64,
        /// First LBA that triggers.
        #[arg(long, default_value_t = TRIGGER_LBA)]
        trigger_lba: u64,
    },
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.to_socket_addrs()
        .map_err(|e| format!("{s}: {e}"))?
        .next()
        .ok_or_else(|| format!("{s}: no address"))
}

fn parse_scenario(s: &str) -> Result<Scenario, String> {
    Scenario::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
        format!("unknown scenario {s:?}; one of: {}", names.join(", "))
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Proxy {
            listen,
            target,
            control,
        } => proxy::run(listen, target, &control),
        Cmd::Ctl { path, command } => return ExitCode::from(control::ctl_main(&path, &command)),
        Cmd::Hostile {
            listen,
            scenario,
            lun_size_mb,
            trigger_count,
            trigger_lba,
        } => hostile::run(
            listen,
            hostile::Options {
                scenario,
                lun_size_mb,
                trigger_count,
                trigger_lba,
            },
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log!("iscsi-faultd: {e}");
            ExitCode::FAILURE
        }
    }
}
