//! Generated documentation for `make install`: the man pages iscsictl(8) (one page
//! per verb too, iscsictl-login(8) …, from the clap definition in
//! `iscsictl::cli`), iscsi-rs.conf(5) (from the maintained text source
//! `iscsi-rs.conf.5.txt`, whose keys the tests hold against the config parser) and
//! shell completions for bash, zsh and fish. Nothing here is written by hand twice:
//! flags, help texts and exit codes come from iscsictl itself.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use iscsictl::cli::Cli;
use iscsictl::exit;
use roff::{bold, roman, Inline, Roff};

pub mod conf;

/// The `.TH` date field: explicitly empty (the pages carry the version, and a
/// build date would make them differ on every build). Written as `""` because an
/// empty argument would vanish and shift source and manual into its place.
pub const NO_DATE: &str = "\"\"";

/// `source` field of every page: project and version (the workspace version).
pub const SOURCE: &str = concat!("iscsi-rs ", env!("CARGO_PKG_VERSION"));

/// The conf(5) text source, compiled in so the binary needs no data files.
pub const CONF_SOURCE: &str = include_str!("../iscsi-rs.conf.5.txt");

/// Where each generated file goes below the output directory; `make install`
/// copies from these paths.
pub mod layout {
    /// Section 8 pages.
    pub const MAN8: &str = "man/man8";
    /// Section 5 pages.
    pub const MAN5: &str = "man/man5";
    /// Completions, named as each shell looks them up.
    pub const COMPLETIONS: &str = "completions";
}

/// Exit codes for the EXIT STATUS section: the numbers are iscsictl's own
/// constants, so a renumbering cannot leave the page behind.
const EXIT_CODES: &[(u8, &str)] = &[
    (exit::OK, "success"),
    (
        exit::FAILURE,
        "any other failure, including the target's own (out of resources, unavailable)",
    ),
    (exit::USAGE, "bad command line"),
    (
        exit::CONFIG,
        "bad config file, secret file or initiator name file (syntax, value, permissions)",
    ),
    (
        exit::UNREACHABLE,
        "the portal could not be reached, or a connect or login timeout expired",
    ),
    (
        exit::AUTH_FAILED,
        "authentication failed (credentials refused, no common CHAP algorithm, mutual CHAP failed)",
    ),
    (
        exit::TARGET_NOT_FOUND,
        "the target name is unknown at this portal",
    ),
    (
        exit::PROTOCOL,
        "the target broke the protocol or refused the login as malformed",
    ),
    (
        exit::MODULE_NOT_LOADED,
        "/dev/iscsi_rs is missing: the iscsi_rs module is not loaded",
    ),
    (exit::NOT_IMPLEMENTED, "the verb is not implemented yet"),
    (
        exit::SESSION_EXISTS,
        "login: a session on this path (target name and portal, or the path's ISID) exists \
         already; nothing was changed (iscsiadm's ISCSI_ERR_SESS_EXISTS). login -a reports \
         such targets and skips them without failing",
    ),
];

/// The clap command with every subcommand's names filled in (display names like
/// `iscsictl-login`, usage lines like `iscsictl login …`).
pub fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Writes every page and completion below `out` and returns their paths relative
/// to `out`, sorted.
pub fn generate(out: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let cmd = command();

    let man8 = out.join(layout::MAN8);
    fs::create_dir_all(&man8)?;
    let top = man_page(&cmd)?;
    written.push(write(
        out,
        &Path::new(layout::MAN8).join("iscsictl.8"),
        &top,
    )?);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let page = verb_page(sub)?;
        let name = format!("{}.8", display_name(sub));
        written.push(write(out, &Path::new(layout::MAN8).join(name), &page)?);
    }

    let page = conf::render(CONF_SOURCE, SOURCE).map_err(io::Error::other)?;
    written.push(write(
        out,
        &Path::new(layout::MAN5).join("iscsi-rs.conf.5"),
        page.as_bytes(),
    )?);

    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "iscsictl", &mut buf);
        let name = match shell {
            Shell::Bash => "iscsictl.bash",
            Shell::Zsh => "_iscsictl",
            _ => "iscsictl.fish",
        };
        written.push(write(
            out,
            &Path::new(layout::COMPLETIONS).join(name),
            &buf,
        )?);
    }
    written.sort();
    Ok(written)
}

fn write(out: &Path, rel: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    let path = out.join(rel);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(&path, bytes)?;
    Ok(rel.to_path_buf())
}

fn display_name(cmd: &clap::Command) -> String {
    cmd.get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_owned()
}

fn man(cmd: &clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd.clone())
        .section("8")
        .date(NO_DATE)
        .source(SOURCE)
        .manual("System Administration")
}

/// clap's sections of `cmd`'s page, then `extra`, then the version.
fn page(cmd: &clap::Command, extra: &Roff) -> io::Result<Vec<u8>> {
    let m = man(cmd);
    let mut buf = Vec::new();
    m.render_title(&mut buf)?;
    m.render_name_section(&mut buf)?;
    m.render_synopsis_section(&mut buf)?;
    m.render_description_section(&mut buf)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        m.render_options_section(&mut buf)?;
    }
    if cmd.has_subcommands() {
        m.render_subcommands_section(&mut buf)?;
    }
    extra.to_writer(&mut buf)?;
    m.render_version_section(&mut buf)?;
    Ok(buf)
}

/// iscsictl(8): the clap sections, then exit status, files and see also.
fn man_page(cmd: &clap::Command) -> io::Result<Vec<u8>> {
    let mut r = Roff::new();
    r.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in EXIT_CODES {
        r.control("TP", []);
        r.text([bold(code.to_string())]);
        r.text([roman(*meaning)]);
    }
    r.control("SH", ["FILES"]);
    for (file, what) in [
        (
            "/dev/iscsi_rs",
            "the control device of the iscsi_rs kernel module",
        ),
        (
            "/etc/iscsi-rs.conf",
            "target blocks for login -n and login -a, see iscsi-rs.conf(5)",
        ),
        (
            "/etc/iscsi/initiatorname.iscsi",
            "the initiator name, in open-iscsi's format (read, never written)",
        ),
        (
            "/etc/iscsi-rs/initiatorname.iscsi",
            "the initiator name iscsictl generated, once, when neither --initiator-name, \
             InitiatorName in the config nor open-iscsi's file gives one (iscsictl iname prints it)",
        ),
        (
            "/etc/iscsi-rs/isids",
            "one ISID per path (initiator name, target name, portal) with the portal group tag \
             it reached: every login on that path uses it, so the target and SCSI persistent \
             reservations see the same initiator port across logins and reboots (RFC 7143 \
             section 4.4.3). One line per path, ISID TPGT INITIATOR TARGET PORTAL[,PORTAL]; \
             rewritten atomically. Dry runs and discovery use a random ISID and record nothing",
        ),
    ] {
        r.control("TP", []);
        r.text([bold(file)]);
        r.text([roman(what)]);
    }
    r.control("SH", ["ENVIRONMENT"]);
    for (var, what) in [
        (
            iscsictl::identity::STATE_DIR_ENV,
            "the state directory instead of /etc/iscsi-rs (generated name and ISID store)",
        ),
        (
            "JOURNAL_STREAM",
            "set by systemd: when it names stderr, every log line starts with its syslog \
             priority (<3> for errors to <7> for debug lines) for journald; otherwise lines are plain \
             (iscsictl: message). -v adds debug lines, -vv trace lines",
        ),
    ] {
        r.control("TP", []);
        r.text([bold(var)]);
        r.text([roman(what)]);
    }
    see_also(
        &mut r,
        cmd.get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| (display_name(s), "8".to_owned()))
            .chain([("iscsi-rs.conf".to_owned(), "5".to_owned())]),
    );
    page(cmd, &r)
}

/// iscsictl-VERB(8): clap's page plus a pointer back to iscsictl(8).
fn verb_page(cmd: &clap::Command) -> io::Result<Vec<u8>> {
    let mut r = Roff::new();
    see_also(
        &mut r,
        [
            ("iscsictl".to_owned(), "8".to_owned()),
            ("iscsi-rs.conf".to_owned(), "5".to_owned()),
        ],
    );
    page(cmd, &r)
}

fn see_also(r: &mut Roff, pages: impl IntoIterator<Item = (String, String)>) {
    r.control("SH", ["SEE ALSO"]);
    let mut line: Vec<Inline> = Vec::new();
    for (i, (name, section)) in pages.into_iter().enumerate() {
        if i > 0 {
            line.push(roman(", "));
        }
        line.push(bold(name));
        line.push(roman(format!("({section})")));
    }
    r.text(line);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(dir: &Path, rel: &str) -> String {
        fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    #[test]
    fn generates_every_page_and_completion() {
        let dir = tempfile::tempdir().unwrap();
        let files = generate(dir.path()).unwrap();
        let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        for want in [
            "man/man8/iscsictl.8",
            "man/man8/iscsictl-discover.8",
            "man/man8/iscsictl-login.8",
            "man/man8/iscsictl-list.8",
            "man/man8/iscsictl-logout.8",
            "man/man8/iscsictl-daemon.8",
            "man/man8/iscsictl-iname.8",
            "man/man5/iscsi-rs.conf.5",
            "completions/iscsictl.bash",
            "completions/_iscsictl",
            "completions/iscsictl.fish",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
        }
        // One page per visible verb, nothing else in man8.
        let verbs = command()
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .count();
        let man8 = names.iter().filter(|n| n.starts_with("man/man8/")).count();
        assert_eq!(man8, verbs + 1, "{names:?}");
    }

    #[test]
    fn pages_carry_every_flag_and_the_exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path()).unwrap();
        let cmd = command();
        let top = read(dir.path(), "man/man8/iscsictl.8");
        assert!(top.starts_with(".ie \\n(.g"), "not roff: {}", &top[..40]);
        assert!(top.contains(".TH iscsictl 8"), "{top}");
        assert!(top.contains(".SH \"EXIT STATUS\""), "{top}");
        assert!(top.contains("\\fB8\\fR"), "exit code 8 missing");
        assert!(top.contains("\\fB15\\fR"), "exit code 15 missing");
        assert!(top.contains("/etc/iscsi\\-rs/isids"), "ISID store missing");
        assert!(top.contains("ISCSI_RS_DIR"), "ISCSI_RS_DIR missing");
        // groff warns on raw non-ASCII input (make check-pkg fails on that).
        if let Some(c) = top.chars().find(|c| !c.is_ascii()) {
            panic!("iscsictl.8 holds non-ASCII {c:?}");
        }
        for sub in cmd.get_subcommands() {
            let name = sub.get_name();
            // roff escapes '-' (udev-path) as '\-'.
            assert!(
                top.contains(&name.replace('-', "\\-")),
                "iscsictl.8 does not name {name}"
            );
            let page = read(dir.path(), &format!("man/man8/iscsictl-{name}.8"));
            for arg in sub.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                // roff escapes '-' as '\-'.
                let shown = format!("\\-\\-{}", long.replace('-', "\\-"));
                assert!(page.contains(&shown), "iscsictl-{name}.8 lacks --{long}");
            }
        }
    }

    /// Every exit code iscsictl defines (its `pub const NAME: u8 = N;` lines in
    /// exit.rs) has a line in EXIT STATUS, so a new code cannot go undocumented.
    #[test]
    fn exit_status_covers_every_code() {
        let source = include_str!("../../src/exit.rs");
        let defined: Vec<u8> = source
            .lines()
            .filter_map(|l| l.trim().strip_prefix("pub const "))
            .filter_map(|l| l.split_once(": u8 = "))
            .filter_map(|(_, v)| v.trim_end_matches(';').trim().parse().ok())
            .collect();
        assert!(defined.len() >= 10, "{defined:?}");
        let documented: Vec<u8> = EXIT_CODES.iter().map(|&(c, _)| c).collect();
        for code in &defined {
            assert!(
                documented.contains(code),
                "exit code {code} has no line in iscsictl(8)'s EXIT STATUS (EXIT_CODES)"
            );
        }
        assert_eq!(
            documented.len(),
            defined.len(),
            "{documented:?} vs {defined:?}"
        );
    }

    #[test]
    fn completions_know_the_verbs_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path()).unwrap();
        let bash = read(dir.path(), "completions/iscsictl.bash");
        let zsh = read(dir.path(), "completions/_iscsictl");
        let fish = read(dir.path(), "completions/iscsictl.fish");
        assert!(zsh.starts_with("#compdef iscsictl"));
        assert!(fish.contains("complete -c iscsictl"));
        for text in [&bash, &zsh, &fish] {
            for word in ["discover", "login", "logout", "daemon", "chap-secret-file"] {
                assert!(text.contains(word), "{word} missing");
            }
        }
        // The bash script must at least parse.
        let ok = std::process::Command::new("bash")
            .arg("-n")
            .arg(dir.path().join("completions/iscsictl.bash"))
            .status()
            .expect("bash runs");
        assert!(ok.success(), "bash -n rejected the completion script");
    }
}
