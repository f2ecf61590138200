//! iscsictl: the userspace half of iscsi-rs. It discovers targets and logs in over
//! its own TCP socket, then hands the connected socket to `iscsi_rs.ko`.

use std::process::ExitCode;

use clap::Parser;
use iscsictl::cli::Cli;
use iscsictl::exit;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help/--version land here too: printed to stdout, exit 0.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    iscsictl::logging::init(cli.verbosity());
    match iscsictl::run(cli) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
