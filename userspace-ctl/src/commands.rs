//! Runs the verbs. Each does all the checking it can before touching the network
//! or the kernel (arguments, config, secret files, initiator name, module
//! presence); `discover` and `login` then talk to the target, `list`/`logout`
//! to the kernel, and `daemon` to both (connection recovery).

use std::io::{self, Write};

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::device::{ensure_module, require_module};
use crate::exit::Error;
use crate::identity::{host_initiator_name, HostName};
use crate::names::NameSource;
use crate::plan::{plan_discovery, plan_login, LoginRequest, SystemPaths};
use crate::sessions::{ListFormat, LogoutWhich};
use crate::{discover, login, report};

/// Runs `cli` against the real system paths: results to stdout, notices to
/// the log (stderr; see `logging.rs`).
pub fn run(cli: Cli) -> Result<(), Error> {
    run_with(
        cli,
        &SystemPaths::default(),
        &mut io::stdout(),
        &mut crate::logging::NoticeLog::default(),
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
    let verbose = cli.verbosity();
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
                ensure_module(&paths.device, &paths.modprobe)?;
            }
            // `--startup` selects blocks like `-a` does, and like it skips a
            // target already logged in: the boot unit may start again.
            let many = args.all || args.startup.is_some();
            login_all(&plan.requests, many, paths, args.json, out, notices)
        }
        Command::List(args) => {
            require_module(&paths.device)?;
            let format = if args.json {
                ListFormat::Json
            } else if verbose > 0 {
                ListFormat::Verbose
            } else {
                ListFormat::Short
            };
            crate::sessions::list(paths, format, out)
        }
        Command::Logout(args) => {
            let mut which = LogoutWhich {
                all: args.all,
                host: args.host,
                target: args.target.as_ref().map(|t| t.as_str().to_owned()),
                portal: args.portal.as_ref().map(|p| p.to_string()),
            };
            if args.config.is_some() && args.nickname.is_none() {
                return Err(Error::Usage(
                    "logout -c CONFIG goes with -n NICKNAME".into(),
                ));
            }
            if let Some(nick) = &args.nickname {
                // The block's identity: its TargetName at its TargetAddress.
                let path = args.config.as_deref().unwrap_or(&paths.default_config);
                let config = Config::load(path)?;
                let Some(t) = config.target(nick) else {
                    return Err(Error::Usage(format!(
                        "no block {nick:?} in {}",
                        config.path().display()
                    )));
                };
                let Some(name) = &t.target_name else {
                    return Err(Error::Usage(format!(
                        "block {nick:?} names no TargetName: it has no session to log out of"
                    )));
                };
                which.target = Some(name.as_str().to_owned());
                which.portal = Some(t.portal.to_string());
            }
            require_module(&paths.device)?;
            crate::sessions::logout(paths, &which, out)
        }
        Command::Daemon(args) => {
            let device = args.device.as_deref().unwrap_or(&paths.device);
            ensure_module(device, &paths.modprobe)?;
            crate::daemon::run(device)
        }
        Command::UdevPath(args) => {
            crate::udev::run(std::path::Path::new(crate::udev::SYSFS), &args.device, out)
        }
        Command::Iname(_) => {
            let h = host_initiator_name(&paths.initiatorname_file, &paths.state_dir)?;
            if h.resolved.source == NameSource::Generated {
                announce_generated(notices, &h, paths);
            }
            writeln!(out, "{}", h.resolved.name)
                .map_err(|e| Error::Failed(format!("cannot write the result: {e}")))
        }
    }
}

/// Logs in to every request; with several (`-a`), one failing does not stop the
/// others: each failure is reported as it happens and the first decides the exit
/// code. With `-a`, a target that already has its session is reported and
/// skipped, not a failure, so `login -a` (and `--startup`) can run again (at
/// boot, after adding a block); `-p`/`-t` and `-n` fail with exit 15 then, as
/// iscsiadm does.
fn login_all(
    requests: &[LoginRequest],
    all: bool,
    paths: &SystemPaths,
    json: bool,
    out: &mut dyn Write,
    notices: &mut dyn Write,
) -> Result<(), Error> {
    let mut rows = Vec::new();
    let mut first = None;
    match requests {
        [only] if !all => rows.extend(login::login_one(only, paths, json, out, notices)?),
        _ => {
            for r in requests {
                let who = r.nickname.as_deref().unwrap_or("?");
                match login::login_one(r, paths, json, out, notices) {
                    Ok(row) => rows.extend(row),
                    Err(e @ Error::SessionExists(_)) => {
                        let _ = writeln!(notices, "iscsictl: {who}: {e}; skipped");
                    }
                    Err(e) => {
                        let _ = writeln!(notices, "iscsictl: {who}: {e}");
                        first.get_or_insert(e);
                    }
                }
            }
        }
    }
    if json {
        out.write_all(report::sessions_json(&rows).as_bytes())
            .map_err(|e| Error::Failed(format!("cannot write the result: {e}")))?;
    }
    first.map_or(Ok(()), Err)
}

/// Said once: where the generated name went, or that it will change.
fn announce_generated(out: &mut dyn Write, name: &HostName, paths: &SystemPaths) {
    let n = &name.resolved.name;
    let _ = match &name.saved {
        Some(Ok(path)) => writeln!(
            out,
            "iscsictl: no initiator name configured; using generated name {n}, saved to {} \
             (used from now on; InitiatorName= in {} takes precedence)",
            path.display(),
            paths.initiatorname_file.display()
        ),
        other => writeln!(
            out,
            "iscsictl: warning: no initiator name configured; using generated name {n}, \
             but it could not be saved ({}) and changes on every run: write \
             InitiatorName={n} to {} or pass --initiator-name",
            match other {
                Some(Err(why)) => why.as_str(),
                _ => "not attempted",
            },
            paths.initiatorname_file.display()
        ),
    };
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
        let paths = SystemPaths::under(dir.path());
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
            &["list", "-v"],
            &["logout", "-a"],
            &["logout", "-p", "192.0.2.1"],
        ] {
            let (r, _) = run_args(&b, args);
            let e = r.unwrap_err();
            assert_eq!(e.exit_code(), exit::MODULE_NOT_LOADED, "{args:?}");
            assert_eq!(
                e.to_string(),
                "iscsi_rs kernel module is not loaded (try: insmod iscsi_rs.ko)"
            );
        }
        // The daemon (and a real login) load the module first; here modprobe
        // does not exist, which is said.
        let (r, _) = run_args(&b, &["daemon"]);
        let e = r.unwrap_err();
        assert_eq!(e.exit_code(), exit::MODULE_NOT_LOADED);
        assert!(e.to_string().contains("no-modprobe could not run"), "{e}");
        let (r, _) = run_args(&b, &["logout", "-a", "-c", "/x"]);
        assert_eq!(r.unwrap_err().exit_code(), exit::USAGE);
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
