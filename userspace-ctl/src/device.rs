//! The kernel module's control device, `/dev/iscsi_rs`: its path, the check
//! that turns a missing device into "module not loaded" before any ioctl is
//! tried, and loading the module (`modprobe iscsi_rs`) for the verbs that need
//! it (the ioctls themselves are in `handoff.rs`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::exit::Error;

/// The module's name for modprobe.
pub const MODULE: &str = "iscsi_rs";
/// How long the device may take to appear after modprobe returns (devtmpfs
/// creates it at once; a udev-managed /dev may lag).
const APPEAR_WITHIN: Duration = Duration::from_secs(5);

/// Misc device registered by iscsi_rs.ko.
pub const DEVICE_PATH: &str = "/dev/iscsi_rs";

/// `Err(ModuleNotLoaded)` when `dev` does not exist. Any other stat failure is
/// left for the later open() to report with its real cause.
pub fn require_module(dev: &Path) -> Result<(), Error> {
    match dev.try_exists() {
        Ok(false) => Err(Error::ModuleNotLoaded),
        Ok(true) | Err(_) => Ok(()),
    }
}

/// `dev` exists, or `modprobe iscsi_rs` (`modprobe` being the program to run)
/// makes it appear: `login` and `daemon` load the module themselves, as
/// iscsid does for iscsi_tcp. Errors say what failed and exit 8.
pub fn ensure_module(dev: &Path, modprobe: &Path) -> Result<(), Error> {
    if require_module(dev).is_ok() {
        return Ok(());
    }
    let hint = "install it (make install) or load it by hand (insmod iscsi_rs.ko)";
    let out = Command::new(modprobe)
        .arg(MODULE)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| {
            Error::ModuleLoad(format!(
                "{} is missing and {} could not run: {e}; {hint}",
                dev.display(),
                modprobe.display()
            ))
        })?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        let why = why
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let status = match out.status.code() {
            Some(c) => format!("exit status {c}"),
            None => "killed by a signal".into(),
        };
        return Err(Error::ModuleLoad(format!(
            "{} is missing and `modprobe {MODULE}` failed ({status}{}{}); {hint}",
            dev.display(),
            if why.is_empty() { "" } else { ": " },
            why.trim()
        )));
    }
    let start = Instant::now();
    while start.elapsed() < APPEAR_WITHIN {
        if require_module(dev).is_ok() {
            log::info!("loaded the {MODULE} kernel module (modprobe {MODULE})");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(Error::ModuleLoad(format!(
        "`modprobe {MODULE}` succeeded but {} did not appear within {} s",
        dev.display(),
        APPEAR_WITHIN.as_secs()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_device_means_module_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("iscsi_rs");
        let e = require_module(&dev).unwrap_err();
        assert!(matches!(e, Error::ModuleNotLoaded));
        assert!(e.to_string().contains("insmod iscsi_rs.ko"));
        std::fs::write(&dev, b"").unwrap();
        assert!(require_module(&dev).is_ok());
    }

    fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn modprobe_loads_or_says_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("iscsi_rs");
        let args = dir.path().join("args");
        // A modprobe that "loads" the module: the device appears.
        let good = script(
            dir.path(),
            "good",
            &format!("echo \"$@\" > {}; : > {}", args.display(), dev.display()),
        );
        ensure_module(&dev, &good).unwrap();
        assert!(dev.exists());
        assert_eq!(std::fs::read_to_string(&args).unwrap(), "iscsi_rs\n");
        // Present already: modprobe is not run again.
        std::fs::remove_file(&args).unwrap();
        ensure_module(&dev, &good).unwrap();
        assert!(!args.exists());

        std::fs::remove_file(&dev).unwrap();
        let bad = script(
            dir.path(),
            "bad",
            "echo \"modprobe: FATAL: Module iscsi_rs not found in directory /lib/modules/x\" >&2; exit 1",
        );
        let e = ensure_module(&dev, &bad).unwrap_err();
        assert_eq!(e.exit_code(), crate::exit::MODULE_NOT_LOADED);
        let msg = e.to_string();
        assert!(msg.contains("`modprobe iscsi_rs` failed (exit status 1: modprobe: FATAL: Module iscsi_rs not found"), "{msg}");
        assert!(msg.contains("insmod iscsi_rs.ko"), "{msg}");

        let e = ensure_module(&dev, &dir.path().join("nothing-here")).unwrap_err();
        assert_eq!(e.exit_code(), crate::exit::MODULE_NOT_LOADED);
        assert!(e.to_string().contains("could not run"), "{e}");
    }
}
