//! iscsictl's log lines: a `log` backend writing one line per record to stderr,
//! so the journal gets levels when iscsictl runs as a systemd service.
//!
//! Under systemd (stderr is the journal stream that `$JOURNAL_STREAM` names,
//! as systemd.exec(5) says to check: device and inode of stderr), each line
//! starts with the syslog priority in angle brackets, `<3>` … `<7>`, which
//! journald reads as the entry's priority (sd-daemon(3)). Anywhere else the
//! line is plain, `iscsictl: message` (warnings say `warning:`), so a script
//! reading stderr through a pipe or a file sees the same sentence as a person
//! at a terminal: exit codes plus one-line messages are the interface.
//!
//! Levels: errors and warnings always, info (what a login did: a generated
//! name, a loaded module, the daemon's re-logins) by default, `-v` adds debug
//! (ISIDs chosen, sessions checked), `-vv` trace.

use std::io::{self, Write};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Log target of the recovery daemon's lines (`iscsictl daemon: …`).
pub const DAEMON: &str = "daemon";

/// The level for `-v` given `count` times.
pub fn level_for(verbose: u8) -> LevelFilter {
    match verbose {
        0 => LevelFilter::Info,
        1 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

/// Whether stderr is the journal stream `journal_stream` (`$JOURNAL_STREAM`,
/// "DEVICE:INODE") names; `stderr` is its (device, inode).
pub fn is_journal(journal_stream: Option<&str>, stderr: Option<(u64, u64)>) -> bool {
    let (Some(js), Some((dev, ino))) = (journal_stream, stderr) else {
        return false;
    };
    let Some((d, i)) = js.split_once(':') else {
        return false;
    };
    d.parse::<u64>() == Ok(dev) && i.parse::<u64>() == Ok(ino)
}

/// syslog priority of a level (sd-daemon(3)'s SD_ERR … SD_DEBUG).
pub fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// One record as a line (without the newline).
pub fn format_line(journal: bool, level: Level, target: &str, msg: &str) -> String {
    let who = if target == DAEMON {
        "iscsictl daemon"
    } else {
        "iscsictl"
    };
    let kind = match level {
        Level::Warn => "warning: ",
        Level::Debug => "debug: ",
        Level::Trace => "trace: ",
        Level::Error | Level::Info => "",
    };
    if journal {
        format!("<{}>{who}: {kind}{msg}", priority(level))
    } else {
        format!("{who}: {kind}{msg}")
    }
}

struct StderrLog {
    journal: bool,
    level: LevelFilter,
}

impl Log for StderrLog {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let msg = r.args().to_string();
        // Whole lines under the lock: the daemon's threads do not interleave.
        let mut err = io::stderr().lock();
        for line in msg.lines() {
            let _ = writeln!(
                err,
                "{}",
                format_line(self.journal, r.level(), r.target(), line)
            );
        }
    }

    fn flush(&self) {
        let _ = io::stderr().flush();
    }
}

/// Installs the logger (once per process; later calls change nothing).
pub fn init(verbose: u8) {
    // st_dev/st_ino are u64 here but narrower on some targets.
    #[allow(clippy::unnecessary_cast)]
    let id = rustix::fs::fstat(io::stderr())
        .ok()
        .map(|st| (st.st_dev as u64, st.st_ino as u64));
    let js = std::env::var("JOURNAL_STREAM").ok();
    let level = level_for(verbose);
    let logger = StderrLog {
        journal: is_journal(js.as_deref(), id),
        level,
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level);
    }
}

/// A `Write` for the `notices` of the verbs: each line becomes a log record
/// (`iscsictl: warning: …` a warning, other lines info), with the
/// `iscsictl: ` the verbs already wrote taken off.
#[derive(Debug, Default)]
pub struct NoticeLog {
    buf: Vec<u8>,
}

impl NoticeLog {
    fn emit(line: &str) {
        let line = line.strip_prefix("iscsictl: ").unwrap_or(line);
        match line.strip_prefix("warning: ") {
            Some(w) => log::warn!("{w}"),
            None => log::info!("{line}"),
        }
    }
}

impl Write for NoticeLog {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        while let Some(at) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=at).collect();
            let text = String::from_utf8_lossy(&line);
            NoticeLog::emit(text.trim_end_matches('\n'));
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let text = String::from_utf8_lossy(&self.buf).into_owned();
            self.buf.clear();
            NoticeLog::emit(&text);
        }
        Ok(())
    }
}

impl Drop for NoticeLog {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_only_when_stderr_is_the_named_stream() {
        assert!(is_journal(Some("8:12345"), Some((8, 12345))));
        assert!(!is_journal(Some("8:12345"), Some((8, 12346))));
        assert!(!is_journal(Some("8:12345"), None));
        assert!(!is_journal(None, Some((8, 12345))));
        assert!(!is_journal(Some("garbage"), Some((8, 12345))));
        assert!(!is_journal(Some(""), Some((0, 0))));
    }

    #[test]
    fn lines_and_priorities() {
        assert_eq!(
            format_line(true, Level::Error, "x", "boom"),
            "<3>iscsictl: boom"
        );
        assert_eq!(
            format_line(true, Level::Warn, "x", "careful"),
            "<4>iscsictl: warning: careful"
        );
        assert_eq!(
            format_line(true, Level::Info, DAEMON, "host3: back"),
            "<6>iscsictl daemon: host3: back"
        );
        assert_eq!(
            format_line(true, Level::Debug, "x", "d"),
            "<7>iscsictl: debug: d"
        );
        // Plain: the sentence scripts already parse.
        assert_eq!(
            format_line(false, Level::Error, "x", "boom"),
            "iscsictl: boom"
        );
        assert_eq!(
            format_line(false, Level::Warn, "x", "careful"),
            "iscsictl: warning: careful"
        );
    }

    #[test]
    fn verbosity_raises_the_level() {
        assert_eq!(level_for(0), LevelFilter::Info);
        assert_eq!(level_for(1), LevelFilter::Debug);
        assert_eq!(level_for(2), LevelFilter::Trace);
        assert_eq!(level_for(9), LevelFilter::Trace);
    }
}
