//! Runs the verbs. Each does all the checking it can before touching the network
//! or the kernel (arguments, config, secret files, initiator name, module
//! presence); `discover` and `login` then talk to the target, `list`/`logout`
//! to the kernel, and `daemon` to both (connection recovery).

use std::io::{self, Write};

use crate::cli::{Cli, Command};
use crate::device::require_module;
use crate::exit::Error;
use crate::names;
use crate::plan::{plan_discovery, plan_login, LoginRequest, SystemPaths};
use crate::{discover, login};

/// Runs `cli` against the real system paths: results to stdout, notices to stderr.
pub fn run(cli: Cli) -> Result<(), Error> {
    run_with(
        cli,
        &SystemPaths::default(),
        &mut io::stdout(),
        &mut io::stderr(),
    )
}

/// Runs `cli` with explicit paths; results go to `out`, one-time notices (a
/// generated initiator name, warnings, redirects) to `notices`.
pub fn run_with(
    cli: Cli,
    paths: &SystemPaths,
    out: &mut dyn Write,
    notices: &mut dyn Write,
) -> Result<(), Error> {
    match cli.command {
        Command::Discover(args) => {
            let (request, generated) = plan_discovery(&args, paths)?;
            if let Some(name) = &generated {
                announce_generated(notices, name, paths);
            }
            discover::run(&request, args.json, out, notices)
        }
        Command::Login(args) => {
            let plan = plan_login(&args, paths)?;
            if let Some(name) = &plan.generated_name {
                announce_generated(notices, name, paths);
            }
            for w in &plan.warnings {
                let _ = writeln!(notices, "iscsictl: warning: {w}");
            }
            // A real login ends in a handoff to the module: do not log in for nothing.
            if !args.dry_run {
                require_module(&paths.device)?;
            }
            login_all(&plan.requests, out, notices)
        }
        Command::List(args) => {
            require_module(&paths.device)?;
            crate::sessions::list(&paths.device, args.json, out)
        }
        Command::Logout(args) => {
            require_module(&paths.device)?;
            let target = args.target.as_ref().map(|t| t.as_str());
            crate::sessions::logout(&paths.device, target, args.all, args.host, out)
        }
        Command::Daemon(args) => {
            let device = args.device.as_deref().unwrap_or(&paths.device);
            require_module(device)?;
            crate::daemon::run(device)
        }
        Command::UdevPath(args) => {
            crate::udev::run(std::path::Path::new(crate::udev::SYSFS), &args.device, out)
        }
    }
}

/// Logs in to every request; with several (`-a`), one failing does not stop the
/// others: each failure is reported as it happens and the first decides the exit
/// code.
fn login_all(
    requests: &[LoginRequest],
    out: &mut dyn Write,
    notices: &mut dyn Write,
) -> Result<(), Error> {
    if let [only] = requests {
        return login::login_one(only, out, notices);
    }
    let mut first = None;
    for r in requests {
        if let Err(e) = login::login_one(r, out, notices) {
            let who = r.nickname.as_deref().unwrap_or("?");
            let _ = writeln!(notices, "iscsictl: {who}: {e}");
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// Said once per run: the name changes on every run until it is saved.
fn announce_generated(out: &mut dyn Write, name: &names::IscsiName, paths: &SystemPaths) {
    let _ = writeln!(
        out,
        "iscsictl: no initiator name configured; using generated name {name} (to keep it, \
         write InitiatorName={name} to {} or pass --initiator-name)",
        paths.initiatorname_file.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit;
    use clap::Parser;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    struct Bench {
        _dir: tempfile::TempDir,
        paths: SystemPaths,
    }

    fn bench() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let paths = SystemPaths {
            device: dir.path().join("iscsi_rs"),
            default_config: dir.path().join("iscsi-rs.conf"),
            initiatorname_file: dir.path().join("initiatorname.iscsi"),
        };
        Bench { _dir: dir, paths }
    }

    fn run_args(b: &Bench, args: &[&str]) -> (Result<(), Error>, String) {
        let cli = Cli::try_parse_from(std::iter::once("iscsictl").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let mut out = Vec::new();
        let r = run_with(cli, &b.paths, &mut Vec::new(), &mut out);
        (r, String::from_utf8(out).unwrap())
    }

    /// A portal on this host where nothing listens: connecting fails at once.
    fn closed_portal() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("127.0.0.1:{}", l.local_addr().unwrap().port())
    }

    fn write_private(p: &Path, text: &str) {
        std::fs::write(p, text).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn list_logout_daemon_need_the_module() {
        let b = bench();
        for args in [
            &["list"][..],
            &["list", "--json"],
            &["logout", "-a"],
            &["daemon"],
        ] {
            let (r, _) = run_args(&b, args);
            let e = r.unwrap_err();
            assert_eq!(e.exit_code(), exit::MODULE_NOT_LOADED, "{args:?}");
            assert_eq!(
                e.to_string(),
                "iscsi_rs kernel module is not loaded (try: insmod iscsi_rs.ko)"
            );
        }
        // A device that is not ours: the LIST ioctl is refused, and said so.
        std::fs::write(&b.paths.device, b"").unwrap();
        let (r, _) = run_args(&b, &["list"]);
        let e = r.unwrap_err();
        assert_eq!(e.exit_code(), exit::FAILURE);
        assert!(e.to_string().starts_with("iscsi_rs: LIST"), "{e}");
        // The daemon's WAIT_EVENT gets ENOTTY from it: no module behind that path.
        let (r, _) = run_args(&b, &["daemon"]);
        assert_eq!(r.unwrap_err().exit_code(), exit::MODULE_NOT_LOADED);
    }

    #[test]
    fn discover_announces_a_generated_name_once() {
        let b = bench();
        let portal = closed_portal();
        let (r, out) = run_args(&b, &["discover", "-p", &portal]);
        assert_eq!(r.unwrap_err().exit_code(), exit::UNREACHABLE);
        assert_eq!(
            out.matches("using generated name iqn.2026-11.dev.iscsi-rs:")
                .count(),
            1
        );
        // With a name file, nothing to announce.
        std::fs::write(
            &b.paths.initiatorname_file,
            "InitiatorName=iqn.2001-04.com.example:h\n",
        )
        .unwrap();
        let (_, out) = run_args(&b, &["discover", "-p", &portal]);
        assert_eq!(out, "");
    }

    #[test]
    fn login_dry_run_validates_then_connects() {
        let b = bench();
        let (p1, p2) = (closed_portal(), closed_portal());
        write_private(
            &b.paths.default_config,
            &format!(
                "a {{ TargetAddress = {p1}; TargetName = iqn.1900.com.com:sn.1 }}\n\
                 b {{ TargetAddress = {p2}; TargetName = iqn.2001-04.com.example:b }}\n"
            ),
        );
        let (r, out) = run_args(&b, &["login", "-a", "--dry-run"]);
        let e = r.unwrap_err();
        assert_eq!(e.exit_code(), exit::UNREACHABLE, "{e}");
        // -a tries every block and names each failure.
        assert!(out.contains("iscsictl: a: connection to"), "{out}");
        assert!(out.contains("iscsictl: b: connection to"), "{out}");
        // One generated name for both targets, announced once, plus the RFC warning.
        assert_eq!(out.matches("using generated name").count(), 1, "{out}");
        assert_eq!(out.matches("does not follow RFC 3720").count(), 1, "{out}");
        // Without --dry-run the missing module is reported first.
        let (r, _) = run_args(&b, &["login", "-a"]);
        assert_eq!(r.unwrap_err().exit_code(), exit::MODULE_NOT_LOADED);
    }

    #[test]
    fn login_startup_picks_the_automatic_blocks() {
        let b = bench();
        let (p1, p2) = (closed_portal(), closed_portal());
        write_private(
            &b.paths.default_config,
            &format!(
                "InitiatorName = iqn.2001-04.com.example:h\n\
                 auto {{ TargetAddress = {p1}; TargetName = iqn.2001-04.com.example:a; \
                 startup = automatic }}\n\
                 hand {{ TargetAddress = {p2}; TargetName = iqn.2001-04.com.example:b }}\n"
            ),
        );
        // Only `auto` is tried (one failure, not named: a single request).
        for (mode, tried, left) in [("automatic", &p1, &p2), ("manual", &p2, &p1)] {
            let (r, out) = run_args(&b, &["login", "--startup", mode, "--dry-run"]);
            let e = r.unwrap_err();
            assert_eq!(e.exit_code(), exit::UNREACHABLE);
            let msg = e.to_string();
            assert!(msg.contains(tried.as_str()), "{mode}: {msg}");
            assert!(
                !msg.contains(left.as_str()) && !out.contains(left.as_str()),
                "{mode}: {out}"
            );
        }
        // No automatic block: nothing to do, which is no error (a boot without
        // automatic targets must not fail the unit).
        write_private(
            &b.paths.default_config,
            &format!("hand {{ TargetAddress = {p2}; TargetName = iqn.2001-04.com.example:b }}\n"),
        );
        let (r, out) = run_args(&b, &["login", "--startup", "automatic", "--dry-run"]);
        assert!(r.is_ok(), "{r:?}");
        assert!(
            out.contains("has startup = automatic: nothing to log in to"),
            "{out}"
        );
    }

    #[test]
    fn login_config_errors_come_first() {
        let b = bench();
        let (r, _) = run_args(&b, &["login", "-n", "x"]);
        let e = r.unwrap_err();
        assert_eq!(e.exit_code(), exit::CONFIG);
        assert!(e.to_string().contains("cannot read the config file"), "{e}");
        write_private(&b.paths.default_config, "a {\n  Colour = red\n}\n");
        let (r, _) = run_args(&b, &["login", "-n", "a"]);
        let e = r.unwrap_err();
        assert_eq!(e.exit_code(), exit::CONFIG);
        assert!(
            e.to_string()
                .contains("iscsi-rs.conf:2: unknown key \"Colour\""),
            "{e}"
        );
    }

    #[test]
    fn daemon_device_flag() {
        let b = bench();
        let dev = b._dir.path().join("elsewhere");
        let dev_s = dev.to_str().unwrap();
        let (r, _) = run_args(&b, &["daemon", "--device", dev_s]);
        assert_eq!(r.unwrap_err().exit_code(), exit::MODULE_NOT_LOADED);
        std::fs::write(&dev, b"").unwrap();
        let (r, _) = run_args(&b, &["daemon", "--device", dev_s]);
        assert_eq!(r.unwrap_err().exit_code(), exit::MODULE_NOT_LOADED);
    }
}
