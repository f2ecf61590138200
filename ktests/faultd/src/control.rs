//! The proxy's control protocol: one text line per unix-socket connection, one
//! reply line back (`ok …` or `err …`). Owns the command grammar ([`Command::parse`])
//! and the client side (`iscsi-faultd ctl PATH <command…>`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A direction through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Initiator to target.
    I2t,
    /// Target to initiator.
    T2i,
}

impl Dir {
    /// As written in commands and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::I2t => "i2t",
            Dir::T2i => "t2i",
        }
    }

    fn parse(s: &str) -> Result<Dir, String> {
        match s {
            "i2t" => Ok(Dir::I2t),
            "t2i" => Ok(Dir::T2i),
            _ => Err(format!("direction must be i2t or t2i, not {s:?}")),
        }
    }
}

/// What a corruption hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorruptPart {
    /// One byte of a data segment of at least 512 bytes (DataDigest error).
    Data,
    /// One byte of a BHS (HeaderDigest error).
    Header,
}

/// One control command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Close every proxied connection now.
    Drop,
    /// Close one proxied connection now: the one accepted last (the others
    /// of a multi-connection session stay).
    DropOne,
    /// Drop, then refuse new connections until `Up`.
    Down,
    /// Accept connections again.
    Up,
    /// Stop forwarding both ways for this many ms (0: until `Resume`),
    /// half-closes included.
    Stall(u64),
    /// End a stall or a hold.
    Resume,
    /// Hold back SCSI Response and Data-In for this many ms (0: until `Resume`);
    /// with `discard`, throw them away when the hold ends instead of releasing;
    /// with `until-tmf`, the hold also ends when the initiator sends a Task
    /// Management request (so what error handling sends next gets through).
    HoldScsi(u64, bool, bool),
    /// Add this much latency to every PDU (0: none).
    Delay(u64),
    /// Corrupt the next qualifying PDU in a direction.
    Corrupt(CorruptPart, Dir),
    /// Print the counters.
    Stats,
}

impl Command {
    /// Parses one command line.
    pub fn parse(line: &str) -> Result<Command, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let ms = |w: Option<&&str>| -> Result<u64, String> {
            let w = w.ok_or("missing milliseconds")?;
            w.parse::<u64>()
                .map_err(|_| format!("{w:?} is not a number of milliseconds"))
        };
        let cmd = match words.first().copied() {
            Some("drop") => Command::Drop,
            Some("drop-one") => Command::DropOne,
            Some("down") => Command::Down,
            Some("up") => Command::Up,
            Some("stall") => Command::Stall(ms(words.get(1))?),
            Some("resume") => Command::Resume,
            Some("hold-scsi") => {
                let time = ms(words.get(1))?;
                let (mut discard, mut until_tmf) = (false, false);
                for w in words.iter().skip(2) {
                    match *w {
                        "discard" if !discard => discard = true,
                        "until-tmf" if !until_tmf => until_tmf = true,
                        w => {
                            return Err(format!(
                                "hold-scsi takes MS [discard] [until-tmf], not {w:?}"
                            ))
                        }
                    }
                }
                Command::HoldScsi(time, discard, until_tmf)
            }
            Some("delay") => Command::Delay(ms(words.get(1))?),
            Some("corrupt-data") | Some("corrupt-header") => {
                let part = if words[0] == "corrupt-data" {
                    CorruptPart::Data
                } else {
                    CorruptPart::Header
                };
                let dir = words.get(1).ok_or("missing direction (i2t or t2i)")?;
                Command::Corrupt(part, Dir::parse(dir)?)
            }
            Some("stats") => Command::Stats,
            Some(other) => return Err(format!("unknown command {other:?}")),
            None => return Err("empty command".into()),
        };
        let max_words = match cmd {
            Command::HoldScsi(_, discard, until_tmf) => {
                2 + usize::from(discard) + usize::from(until_tmf)
            }
            Command::Stall(_) | Command::Delay(_) | Command::Corrupt(..) => 2,
            _ => 1,
        };
        if words.len() > max_words {
            return Err(format!("too many words in {line:?}"));
        }
        Ok(cmd)
    }
}

/// Sends `command` to the proxy at `path`; returns its reply line.
pub fn send(path: &Path, command: &str) -> std::io::Result<String> {
    let mut s = UnixStream::connect(path)?;
    // A wedged proxy must not wedge the test case that asks it something.
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(command.as_bytes())?;
    s.write_all(b"\n")?;
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply)?;
    Ok(reply.trim_end().to_owned())
}

/// `iscsi-faultd ctl PATH words…`: prints the reply; exit 0 on `ok …`, else 1.
pub fn ctl_main(path: &Path, words: &[String]) -> u8 {
    match send(path, &words.join(" ")) {
        Ok(reply) => {
            println!("{reply}");
            if reply == "ok" || reply.starts_with("ok ") {
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("iscsi-faultd ctl: {}: {e}", path.display());
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        assert_eq!(Command::parse("drop"), Ok(Command::Drop));
        assert_eq!(Command::parse("drop-one"), Ok(Command::DropOne));
        assert_eq!(Command::parse(" stall 0 "), Ok(Command::Stall(0)));
        assert_eq!(
            Command::parse("hold-scsi 1500"),
            Ok(Command::HoldScsi(1500, false, false))
        );
        assert_eq!(
            Command::parse("hold-scsi 0 discard"),
            Ok(Command::HoldScsi(0, true, false))
        );
        assert_eq!(
            Command::parse("hold-scsi 0 discard until-tmf"),
            Ok(Command::HoldScsi(0, true, true))
        );
        assert_eq!(
            Command::parse("hold-scsi 0 until-tmf"),
            Ok(Command::HoldScsi(0, false, true))
        );
        assert!(Command::parse("hold-scsi 0 later").is_err());
        assert!(Command::parse("hold-scsi 0 discard discard").is_err());
        assert_eq!(Command::parse("delay 20"), Ok(Command::Delay(20)));
        assert_eq!(
            Command::parse("corrupt-data t2i"),
            Ok(Command::Corrupt(CorruptPart::Data, Dir::T2i))
        );
        assert_eq!(
            Command::parse("corrupt-header i2t"),
            Ok(Command::Corrupt(CorruptPart::Header, Dir::I2t))
        );
        for bad in [
            "",
            "stall",
            "stall x",
            "corrupt-data up",
            "drop now",
            "reboot",
        ] {
            assert!(Command::parse(bad).is_err(), "{bad:?}");
        }
    }
}
