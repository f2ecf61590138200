//! End-to-end checks of the `iscsictl` binary: exit codes and the one-sentence
//! error format, as scripts see them.

use std::path::Path;
use std::process::{Command, Output};

const MODULE_NOT_LOADED: i32 = iscsictl::exit::MODULE_NOT_LOADED as i32;
const NOT_IMPLEMENTED: i32 = iscsictl::exit::NOT_IMPLEMENTED as i32;
const CONFIG: i32 = iscsictl::exit::CONFIG as i32;
const USAGE: i32 = iscsictl::exit::USAGE as i32;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iscsictl"))
        .args(args)
        .output()
        .expect("run iscsictl")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Our own errors are exactly one line: "iscsictl: <sentence>".
fn one_sentence(o: &Output) -> String {
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("iscsictl: "), "{err}");
    lines[0].to_owned()
}

#[test]
fn help_version_and_usage() {
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    for verb in ["discover", "login", "list", "logout", "daemon"] {
        assert!(out.contains(verb), "{out}");
    }
    assert_eq!(run(&["--version"]).status.code(), Some(0));
    assert_eq!(run(&[]).status.code(), Some(USAGE));
    assert_eq!(run(&["frobnicate"]).status.code(), Some(USAGE));
    let o = run(&["discover", "-p", "[::1"]);
    assert_eq!(o.status.code(), Some(USAGE));
    assert!(stderr(&o).contains("missing ']'"), "{}", stderr(&o));
}

#[test]
fn list_and_logout_report_a_missing_module() {
    if Path::new(iscsictl::device::DEVICE_PATH).exists() {
        return; // Module loaded on this machine: nothing to check here.
    }
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["logout", "-a"],
        &["logout", "--host", "2"],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(MODULE_NOT_LOADED), "{args:?}");
        assert_eq!(
            one_sentence(&o),
            "iscsictl: iscsi_rs kernel module is not loaded (try: insmod iscsi_rs.ko)"
        );
    }
}

#[test]
fn login_dry_run_is_not_implemented_yet() {
    let o = run(&[
        "login",
        "-p",
        "127.0.0.1:3260",
        "-t",
        "iqn.2001-04.com.example:disk1",
        "--dry-run",
        "--initiator-name",
        "iqn.2001-04.com.example:host",
    ]);
    assert_eq!(o.status.code(), Some(NOT_IMPLEMENTED));
    assert_eq!(
        one_sentence(&o),
        "iscsictl: login is not implemented yet: it needs the iscsi-proto login state machine"
    );
}

#[test]
fn config_errors_exit_with_config_code() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("bad.conf");
    std::fs::write(&conf, "t {\n  TargetAddress = h\n  Colour = red\n}\n").unwrap();
    let o = run(&["login", "-n", "t", "-c", conf.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(CONFIG));
    let line = one_sentence(&o);
    assert!(
        line.starts_with(&format!(
            "iscsictl: {}:3: unknown key \"Colour\"",
            conf.display()
        )),
        "{line}"
    );
}
