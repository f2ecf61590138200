//! `iscsictl-gen OUT_DIR`: writes iscsictl's man pages and shell completions below
//! OUT_DIR (man/man8, man/man5, completions) and lists what it wrote; `make
//! install` runs it and copies the files to their places.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: iscsictl-gen OUT_DIR");
        return ExitCode::from(2);
    };
    let out = PathBuf::from(out);
    match iscsictl_gen::generate(&out) {
        Ok(files) => {
            for f in files {
                println!("{}", out.join(f).display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("iscsictl-gen: {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}
