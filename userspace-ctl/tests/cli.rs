//! End-to-end checks of the `iscsictl` binary: exit codes and the one-sentence
//! error format, as scripts see them.

use std::path::Path;
use std::process::{Command, Output};

const MODULE_NOT_LOADED: i32 = iscsictl::exit::MODULE_NOT_LOADED as i32;
const UNREACHABLE: i32 = iscsictl::exit::UNREACHABLE as i32;
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
    for verb in ["discover", "login", "list", "logout", "daemon", "iname"] {
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
    // Host tests run where the module is not loaded; fail loudly rather than
    // pass without checking anything if that ever stops being true.
    assert!(
        !Path::new(iscsictl::device::DEVICE_PATH).exists(),
        "{} exists: unload iscsi_rs to run this test",
        iscsictl::device::DEVICE_PATH
    );
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
fn login_to_a_closed_port_is_one_sentence() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let portal = format!("127.0.0.1:{port}");
    let o = run(&[
        "login",
        "-p",
        &portal,
        "-t",
        "iqn.2001-04.com.example:disk1",
        "--dry-run",
        "--initiator-name",
        "iqn.2001-04.com.example:host",
    ]);
    assert_eq!(o.status.code(), Some(UNREACHABLE));
    assert_eq!(
        one_sentence(&o),
        format!("iscsictl: connection to {portal} refused: no iSCSI target listens there")
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

#[test]
fn log_lines_carry_journal_priorities_only_on_the_journal_stream() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stderr");
    let run_with = |journal_stream: &dyn Fn(&std::fs::Metadata) -> String| {
        let f = std::fs::File::create(&path).unwrap();
        let meta = f.metadata().unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_iscsictl"))
            .args(["list"])
            .env("JOURNAL_STREAM", journal_stream(&meta))
            .stderr(f)
            .output()
            .expect("run iscsictl");
        assert_eq!(o.status.code(), Some(MODULE_NOT_LOADED));
        std::fs::read_to_string(&path).unwrap()
    };
    // stderr is the stream systemd names: the line starts with <3> (error).
    let err = run_with(&|m| format!("{}:{}", m.dev(), m.ino()));
    assert_eq!(
        err,
        "<3>iscsictl: iscsi_rs kernel module is not loaded (try: insmod iscsi_rs.ko)\n"
    );
    // Inherited by a process whose stderr went elsewhere: plain.
    let err = run_with(&|m| format!("{}:{}", m.dev(), m.ino() + 1));
    assert_eq!(
        err,
        "iscsictl: iscsi_rs kernel module is not loaded (try: insmod iscsi_rs.ko)\n"
    );
}

#[test]
fn iname_is_stable_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let iname = || {
        let o = Command::new(env!("CARGO_BIN_EXE_iscsictl"))
            .arg("iname")
            .env(iscsictl::identity::STATE_DIR_ENV, &state)
            .output()
            .expect("run iscsictl");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        (
            String::from_utf8_lossy(&o.stdout).trim().to_owned(),
            stderr(&o),
        )
    };
    let (first, note) = iname();
    assert!(iscsictl::names::IscsiName::parse(&first).is_ok(), "{first}");
    let (second, again) = iname();
    assert_eq!(first, second);
    assert_eq!(again, "", "nothing to announce the second time");
    if !Path::new(iscsictl::names::INITIATORNAME_FILE).exists() {
        // No open-iscsi name on this host: ours was generated once and saved.
        assert!(note.contains("saved to"), "{note}");
        let saved = std::fs::read_to_string(state.join("initiatorname.iscsi")).unwrap();
        assert!(
            saved.contains(&format!("InitiatorName={first}\n")),
            "{saved}"
        );
    }
}
