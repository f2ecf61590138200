//! The command line (clap derive): verbs, flags and per-flag validation. Values are
//! parsed into their final types here (portals, names, digests) so a typo is a
//! usage error (exit 2) naming the flag, before anything touches the network.
//!
//! Secrets never appear as flag values: only `--*-secret-file` paths, because argv
//! is readable by every user through /proc.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};
use iscsi_proto::uapi;

use crate::names::{IscsiName, TargetName};
use crate::params::{parse_connections, parse_queue_depth, ChapAlgs, Digest, Param, Startup};
use crate::portal::{Portal, TaggedPortal};
use crate::transport::Source;

/// Default for both timeouts, open-iscsi's login_timeout.
pub const DEFAULT_TIMEOUT_SECS: u64 = 15;
/// Help text of -p (kept out of doc comments, where rustdoc reads [IPv6] as a link).
const PORTAL_HELP: &str = "Portal: HOST, HOST:PORT, [IPv6] or [IPv6]:PORT (default port 3260); \
     a link-local IPv6 address names its interface: [fe80::1%eth0]:3260";
/// Help text of login's -p.
const LOGIN_PORTAL_HELP: &str = "Portal of the target: HOST[:PORT], [IPv6][:PORT] or \
     [fe80::1%IFACE][:PORT], optionally with the ,TAG that discover prints (then the \
     login must reach that TargetPortalGroupTag)";

/// Upper bound for timeouts; more is surely a typo (ms instead of s).
pub const MAX_TIMEOUT_SECS: u64 = 3600;
/// Upper bound of the NOP-Out knobs (the kernel's limit).
pub const MAX_NOOP_SECS: u32 = 3600;

/// iSCSI initiator control for iscsi_rs.ko.
#[derive(Parser, Debug)]
#[command(
    name = "iscsictl",
    version,
    about = "iSCSI initiator control for iscsi_rs.ko",
    long_about = "Discovers iSCSI targets, logs in over TCP and hands the connection to the \
                  iscsi_rs kernel module.",
    arg_required_else_help = true,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the targets a portal offers (SendTargets discovery).
    Discover(Box<DiscoverArgs>),
    /// Log in to a target and attach it as a SCSI host.
    Login(Box<LoginArgs>),
    /// Show the sessions of the kernel module.
    List(ListArgs),
    /// Log out of sessions and remove their SCSI hosts.
    Logout(LogoutArgs),
    /// Serve the kernel module's re-login requests (connection recovery).
    Daemon(DaemonArgs),
    /// Print the /dev/disk/by-path name of an iscsi_rs disk (for the udev rule).
    UdevPath(UdevPathArgs),
    /// Print the host's initiator name, generating and saving one if none exists.
    Iname(InameArgs),
}

impl Cli {
    /// How many times `-v` was given to the verb (log level; for `list`, also
    /// the long listing).
    pub fn verbosity(&self) -> u8 {
        match &self.command {
            Command::Discover(a) => a.log.verbose,
            Command::Login(a) => a.log.verbose,
            Command::List(a) => a.verbose,
            Command::Logout(a) => a.log.verbose,
            Command::Daemon(a) => a.log.verbose,
            Command::Iname(a) => a.log.verbose,
            Command::UdevPath(_) => 0,
        }
    }
}

/// `-v`, on every verb.
#[derive(Args, Debug, Clone, Default)]
pub struct LogArgs {
    /// More log lines on stderr: -v adds debug lines, -vv trace lines.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// `iscsictl iname`.
#[derive(Args, Debug)]
pub struct InameArgs {
    #[command(flatten)]
    pub log: LogArgs,
}

/// CHAP credentials, the same for `discover` and `login`.
#[derive(Args, Debug, Clone, Default)]
pub struct ChapArgs {
    /// CHAP name we authenticate with (CHAP_N); needs --chap-secret-file.
    #[arg(long, value_name = "U", requires = "chap_secret_file", value_parser = parse_chap_name)]
    pub chap_user: Option<String>,

    /// File holding our CHAP secret (raw bytes, one trailing newline removed); must
    /// not be accessible by group or others.
    #[arg(long, value_name = "F", requires = "chap_user")]
    pub chap_secret_file: Option<PathBuf>,

    /// CHAP name the target (or discovery portal) must present for mutual CHAP; needs --mutual-secret-file.
    #[arg(long, value_name = "U", requires = "mutual_secret_file",
          value_parser = parse_chap_name)]
    pub mutual_user: Option<String>,

    /// File holding the target's (or portal's) CHAP secret for mutual CHAP (same rules as
    /// --chap-secret-file; must differ from our secret).
    #[arg(long, value_name = "F", requires = "mutual_user")]
    pub mutual_secret_file: Option<PathBuf>,

    /// CHAP algorithms to offer, in order of preference (sha256, sha3-256, sha1,
    /// md5) [default: sha256,sha3-256,sha1,md5].
    #[arg(long, value_name = "LIST", value_parser = ChapAlgs::parse)]
    pub chap_algs: Option<ChapAlgs>,
}

/// Options shared by every verb that opens a connection.
#[derive(Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Initiator name to log in with. Takes precedence over InitiatorName in the
    /// config file and over /etc/iscsi/initiatorname.iscsi; without any of them a
    /// name is generated and printed.
    #[arg(long, value_name = "NAME", value_parser = parse_initiator_name)]
    pub initiator_name: Option<IscsiName>,

    /// Seconds to wait for the TCP connection.
    #[arg(long, value_name = "S", default_value_t = DEFAULT_TIMEOUT_SECS,
          value_parser = parse_seconds)]
    pub connect_timeout: u64,

    /// Seconds to wait for the whole login exchange.
    #[arg(long, value_name = "S", default_value_t = DEFAULT_TIMEOUT_SECS,
          value_parser = parse_seconds)]
    pub login_timeout: u64,

    /// Bind the connection to this network interface (SO_BINDTODEVICE) before
    /// connecting; re-logins do the same. Config key: InitiatorInterface.
    #[arg(long, value_name = "NAME", value_parser = parse_iface)]
    pub iface: Option<String>,

    /// Connect from this local address (the source address the target sees);
    /// re-logins do the same. Config key: InitiatorAddress.
    #[arg(long, value_name = "ADDR", value_parser = parse_initiator_address)]
    pub initiator_address: Option<IpAddr>,
}

impl ConnectArgs {
    /// `--iface` / `--initiator-address` as given (the config may add to them).
    pub fn source(&self) -> Source {
        Source {
            iface: self.iface.clone(),
            address: self.initiator_address,
        }
    }

    /// `--connect-timeout` as a Duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout)
    }

    /// `--login-timeout` as a Duration.
    pub fn login_timeout(&self) -> Duration {
        Duration::from_secs(self.login_timeout)
    }
}

/// `iscsictl discover (-p HOST[:PORT] | -n NICKNAME) [--json] [CHAP]`.
#[derive(Args, Debug)]
#[command(
    override_usage = "iscsictl discover (-p HOST[:PORT] | -n NICKNAME) [OPTIONS]",
    group(ArgGroup::new("where").required(true).multiple(false)
        .args(["portal", "nickname"])),
)]
pub struct DiscoverArgs {
    /// Portal to ask.
    #[arg(short, long, value_name = "HOST[:PORT]", value_parser = parse_portal,
          help = PORTAL_HELP)]
    pub portal: Option<Portal>,

    /// Ask the portal of the config file's block with this nickname, with its
    /// CHAP settings (chapIName, chapSecret, tgtChapName, tgtChapSecret, chapAlgs).
    #[arg(short, long, value_name = "NICKNAME")]
    pub nickname: Option<String>,

    /// Config file for -n [default: /etc/iscsi-rs.conf].
    #[arg(
        short,
        long,
        value_name = "CONFIG",
        requires = "nickname",
        conflicts_with = "portal"
    )]
    pub config: Option<PathBuf>,

    /// Print the targets as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub chap: ChapArgs,

    #[command(flatten)]
    pub connect: ConnectArgs,

    #[command(flatten)]
    pub log: LogArgs,
}

/// `iscsictl login (-p HOST[:PORT] -t IQN | -n NICKNAME | -a | --startup MODE) …`.
#[derive(Args, Debug)]
#[command(
    override_usage = "iscsictl login (-p HOST[:PORT] -t IQN | -n NICKNAME | -a | --startup MODE) \
                      [OPTIONS]",
    group(ArgGroup::new("selector").required(true).multiple(true)
        .args(["portal", "target", "nickname", "all", "startup"])),
    group(ArgGroup::new("from_config").multiple(false).args(["nickname", "all", "startup"])),
)]
pub struct LoginArgs {
    /// Portal of the target.
    #[arg(short, long, value_name = "HOST[:PORT][,TAG]", value_parser = parse_tagged_portal,
          requires = "target", help = LOGIN_PORTAL_HELP)]
    pub portal: Option<TaggedPortal>,

    /// Target name (IQN) to log in to; needs -p.
    #[arg(short, long, value_name = "IQN", value_parser = parse_target_name,
          requires = "portal")]
    pub target: Option<TargetName>,

    /// Log in to the config file's block with this nickname.
    #[arg(short, long, value_name = "NICKNAME", conflicts_with_all = ["portal", "target"])]
    pub nickname: Option<String>,

    /// Log in to every block of the config file.
    #[arg(short, long, conflicts_with_all = ["portal", "target"])]
    pub all: bool,

    /// Log in to every block of the config file whose `startup` key is MODE
    /// (automatic: what iscsi-rs-login.service runs at boot). No such block is
    /// not an error.
    #[arg(long, value_name = "MODE", ignore_case = true,
          conflicts_with_all = ["portal", "target"])]
    pub startup: Option<Startup>,

    /// Config file for -n/-a [default: /etc/iscsi-rs.conf].
    #[arg(short, long, value_name = "CONFIG", requires = "from_config")]
    pub config: Option<PathBuf>,

    /// Scan LUNs after login (otherwise the kernel's default scan policy applies).
    #[arg(long)]
    pub lun_scan: bool,

    #[command(flatten)]
    pub chap: ChapArgs,

    /// Header digest to ask for [default: none].
    #[arg(long, value_name = "DIGEST", ignore_case = true)]
    pub header_digest: Option<Digest>,

    /// Data digest to ask for [default: none].
    #[arg(long, value_name = "DIGEST", ignore_case = true)]
    pub data_digest: Option<Digest>,

    /// Extra operational key to propose, e.g. MaxRecvDataSegmentLength=262144
    /// (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = Param::parse)]
    pub params: Vec<Param>,

    /// Commands in flight per session (1-65535).
    #[arg(long, value_name = "N", value_parser = parse_queue_depth)]
    pub queue_depth: Option<u16>,

    /// TCP connections per session (1-16; more than one needs a target that
    /// negotiates MaxConnections above 1, and gets as many as it allows; 1
    /// keeps one connection whatever the target allows) [default: number of
    /// CPUs, at most 16].
    #[arg(long, value_name = "N", value_parser = parse_connections)]
    pub connections: Option<u16>,

    /// Seconds I/O waits for a lost connection to come back before it fails fast
    /// (0: fail at once) [default: 120].
    #[arg(long, value_name = "SECS", value_parser = parse_replacement_timeout)]
    pub replacement_timeout: Option<u32>,

    /// Seconds of silence on the connection before a NOP-Out ping (0: no pings)
    /// [default: 5].
    #[arg(long, value_name = "SECS", value_parser = parse_noop_interval)]
    pub noop_interval: Option<u16>,

    /// Seconds a NOP-Out ping may go unanswered before the connection counts as
    /// lost [default: 5].
    #[arg(long, value_name = "SECS", value_parser = parse_noop_timeout)]
    pub noop_timeout: Option<u16>,

    /// Log in, print the negotiated parameters, log out; do not attach to the kernel.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the sessions made as JSON (the shape of list --json).
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub connect: ConnectArgs,

    #[command(flatten)]
    pub log: LogArgs,
}

/// `iscsictl list [-v | --json]`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print the sessions as JSON: {"sessions": [...]}, each with its portal,
    /// ISID, state, timeouts, negotiated parameters, LUNs and disks.
    #[arg(long, conflicts_with = "verbose")]
    pub json: bool,

    /// Everything about each session (like iscsiadm -m session -P 3): portal and
    /// group tag, ISID, state, recoveries, timeouts, negotiated parameters, the
    /// command window, and the LUNs with their disks. Also raises the log level.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// `iscsictl logout (-t IQN | -n NICKNAME | -p PORTAL | -a | --host N)`.
#[derive(Args, Debug)]
#[command(
    override_usage = "iscsictl logout (-t IQN | -n NICKNAME | -p HOST[:PORT] | -a | --host N)"
)]
#[command(group(ArgGroup::new("which").required(true).multiple(false)
    .args(["target", "nickname", "portal", "all", "host"])))]
pub struct LogoutArgs {
    /// Log out of every session with this target.
    #[arg(short, long, value_name = "IQN", value_parser = parse_target_name)]
    pub target: Option<TargetName>,

    /// Log out of the session of the config file's block with this nickname (its
    /// TargetName at its TargetAddress).
    #[arg(short, long, value_name = "NICKNAME")]
    pub nickname: Option<String>,

    /// Config file for -n [default: /etc/iscsi-rs.conf].
    #[arg(short, long, value_name = "CONFIG", requires = "nickname")]
    pub config: Option<PathBuf>,

    /// Log out of every session through this portal.
    #[arg(short, long, value_name = "HOST[:PORT]", value_parser = parse_portal,
          help = PORTAL_HELP)]
    pub portal: Option<Portal>,

    /// Log out of every session.
    #[arg(short, long)]
    pub all: bool,

    /// Log out of the session behind SCSI host N (as in /sys/class/scsi_host/hostN).
    #[arg(long, value_name = "N")]
    pub host: Option<u32>,

    #[command(flatten)]
    pub log: LogArgs,
}

/// `iscsictl daemon [--device PATH]`.
#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// The module's control device [default: /dev/iscsi_rs]. Everything a re-login
    /// needs comes from the kernel (the recipe `login` stored with the session),
    /// so the daemon reads no config file.
    #[arg(long, value_name = "PATH")]
    pub device: Option<PathBuf>,

    #[command(flatten)]
    pub log: LogArgs,
}

/// `iscsictl udev-path DEVICE`.
#[derive(Args, Debug)]
#[command(
    long_about = "Prints the /dev/disk/by-path name of a disk on an iscsi_rs session, \
    in open-iscsi's form ip-ADDRESS:PORT-iscsi-TARGET-lun-N (with -partN for a partition), \
    from sysfs alone. The udev rule 71-iscsi-rs.rules runs it for every SCSI disk; it exits 1 \
    for a disk that is not on an iscsi_rs session."
)]
pub struct UdevPathArgs {
    /// The disk: a devpath as udev's %p gives it (/devices/.../block/sdc), a sysfs
    /// path, /dev/sdc or sdc.
    #[arg(value_name = "DEVICE")]
    pub device: String,
}

// clap value parsers: return the reason only; clap adds the flag and the value.

fn parse_portal(s: &str) -> Result<Portal, String> {
    Portal::parse(s).map_err(|e| e.reason)
}

fn parse_tagged_portal(s: &str) -> Result<TaggedPortal, String> {
    TaggedPortal::parse(s).map_err(|e| e.reason)
}

/// An interface name as Linux allows it (`dev_valid_name`).
pub fn parse_iface(s: &str) -> Result<String, String> {
    crate::portal::Zone::parse(s)
        .map(|z| z.as_str().to_owned())
        .map_err(|e| e.replace("zone", "interface name"))
}

/// A literal local address (no name: binding must not depend on DNS).
pub fn parse_initiator_address(s: &str) -> Result<IpAddr, String> {
    let t = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    let ip: IpAddr = t
        .parse()
        .map_err(|_| format!("{s:?} is not an IPv4 or IPv6 address"))?;
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(format!("{ip} cannot be a source address"));
    }
    Ok(ip)
}

fn parse_initiator_name(s: &str) -> Result<IscsiName, String> {
    IscsiName::parse(s).map_err(|e| name_reason(e.to_string()))
}

fn parse_target_name(s: &str) -> Result<TargetName, String> {
    TargetName::parse(s).map_err(|e| name_reason(e.to_string()))
}

/// Drops the "invalid iSCSI name "x": " prefix that clap's message already implies.
fn name_reason(msg: String) -> String {
    match msg.split_once("\": ") {
        Some((_, reason)) => reason.to_owned(),
        None => msg,
    }
}

fn parse_chap_name(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("the CHAP name is empty".into());
    }
    if s.chars().any(char::is_control) {
        return Err("the CHAP name holds a control character".into());
    }
    Ok(s.to_owned())
}

/// Whole seconds in `min..=max`, digits only.
fn seconds_in(s: &str, min: u32, max: u32) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!("expected whole seconds, {min}..={max}")),
    }
}

/// `--replacement-timeout`, also used for the config file's replacementTimeout.
pub fn parse_replacement_timeout(s: &str) -> Result<u32, String> {
    seconds_in(s, 0, uapi::MAX_REPLACEMENT_TIMEOUT)
}

/// `--noop-interval` / noopOutInterval: 0 turns pings off.
pub fn parse_noop_interval(s: &str) -> Result<u16, String> {
    seconds_in(s, 0, MAX_NOOP_SECS).map(|n| n as u16)
}

/// `--noop-timeout` / noopOutTimeout: a ping needs some time to be answered.
pub fn parse_noop_timeout(s: &str) -> Result<u16, String> {
    seconds_in(s, 1, MAX_NOOP_SECS).map(|n| n as u16)
}

fn parse_seconds(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if (1..=MAX_TIMEOUT_SECS).contains(&n) && s.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(n)
        }
        _ => Err(format!("expected whole seconds, 1..={MAX_TIMEOUT_SECS}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("iscsictl").chain(args.iter().copied()))
    }

    fn login(args: &[&str]) -> LoginArgs {
        let mut full = vec!["login"];
        full.extend_from_slice(args);
        match parse(&full)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
        {
            Command::Login(l) => *l,
            other => panic!("{other:?}"),
        }
    }

    fn usage_error(args: &[&str]) -> String {
        let e = parse(args)
            .map(|c| panic!("{args:?} should fail: {c:?}"))
            .unwrap_err();
        assert!(e.use_stderr(), "{args:?}");
        assert_eq!(e.exit_code(), 2, "{args:?}");
        e.to_string()
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn discover() {
        let c = parse(&["discover", "-p", "[2001:db8::1]:3261", "--json"]).unwrap();
        let Command::Discover(d) = c.command else {
            panic!()
        };
        let d = *d;
        assert_eq!(d.portal.unwrap().to_string(), "[2001:db8::1]:3261");
        assert!(d.json);
        assert_eq!(d.connect.connect_timeout(), Duration::from_secs(15));
        assert_eq!(d.connect.login_timeout(), Duration::from_secs(15));
        let msg = usage_error(&["discover"]);
        assert!(msg.contains("--portal"), "{msg}");
        let msg = usage_error(&["discover", "-p", "host:0"]);
        assert!(msg.contains("out of range"), "{msg}");
        usage_error(&["discover", "-p", "h", "-n", "x"]);
        assert!(usage_error(&["discover", "-p", "h", "-c", "/x"]).contains("--config"));
        assert!(usage_error(&["discover", "-p", "h", "--chap-user", "u"])
            .contains("--chap-secret-file"));
        let Command::Discover(d) = parse(&[
            "discover",
            "-n",
            "disc",
            "-c",
            "/etc/x.conf",
            "--chap-user",
            "u",
            "--chap-secret-file",
            "/s",
            "--mutual-user",
            "t",
            "--mutual-secret-file",
            "/m",
            "--chap-algs",
            "md5",
            "--iface",
            "eth1",
            "--initiator-address",
            "[2001:db8::9]",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!(d.nickname.as_deref(), Some("disc"));
        assert_eq!(d.chap.chap_user.as_deref(), Some("u"));
        assert_eq!(d.chap.mutual_user.as_deref(), Some("t"));
        let src = d.connect.source();
        assert_eq!(src.iface.as_deref(), Some("eth1"));
        assert_eq!(src.address, Some("2001:db8::9".parse().unwrap()));
    }

    #[test]
    fn source_binding_values() {
        let base = ["login", "-p", "h", "-t", "iqn.2001-04.com.example:x"];
        let with = |extra: &[&str]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            usage_error(&v)
        };
        assert!(with(&["--iface", "a/b"]).contains("not a valid interface name"));
        assert!(with(&["--iface", "sixteen-chars-xx"]).contains("longer than"));
        assert!(with(&["--initiator-address", "host.example"]).contains("not an IPv4 or IPv6"));
        assert!(with(&["--initiator-address", "0.0.0.0"]).contains("cannot be a source"));
        let l = login(&[
            "-p",
            "h",
            "-t",
            "iqn.2001-04.com.example:x",
            "--iface",
            "eth0",
        ]);
        assert_eq!(l.connect.iface.as_deref(), Some("eth0"));
    }

    #[test]
    fn login_portal_with_tag() {
        let l = login(&[
            "-p",
            "[fe80::1%eth0]:3261,7",
            "-t",
            "iqn.2001-04.com.example:x",
        ]);
        let p = l.portal.unwrap();
        assert_eq!(p.portal.to_string(), "[fe80::1%eth0]:3261");
        assert_eq!(p.tag, Some(7));
        let l = login(&["-p", "192.0.2.1", "-t", "iqn.2001-04.com.example:x"]);
        assert_eq!(l.portal.unwrap().tag, None);
        let msg = usage_error(&["login", "-p", "h,x", "-t", "iqn.2001-04.com.example:x"]);
        assert!(msg.contains("portal group tag"), "{msg}");
    }

    #[test]
    fn login_by_portal_and_target() {
        let l = login(&[
            "-p",
            "192.0.2.1",
            "-t",
            "iqn.2001-04.com.example:disk1",
            "--lun-scan",
            "--chap-user",
            "me",
            "--chap-secret-file",
            "/root/s",
            "--mutual-user",
            "tgt",
            "--mutual-secret-file",
            "/root/m",
            "--chap-algs",
            "sha256,md5",
            "--header-digest",
            "crc32c",
            "--data-digest",
            "CRC32C",
            "--param",
            "MaxRecvDataSegmentLength=262144",
            "--param",
            "ImmediateData=No",
            "--queue-depth",
            "32",
            "--dry-run",
            "--initiator-name",
            "iqn.2001-04.com.example:host",
            "--connect-timeout",
            "5",
            "--login-timeout",
            "30",
        ]);
        assert_eq!(l.portal.unwrap().portal.to_string(), "192.0.2.1:3260");
        assert_eq!(l.target.unwrap().as_str(), "iqn.2001-04.com.example:disk1");
        assert!(l.lun_scan && l.dry_run && !l.all);
        assert_eq!(l.chap.chap_user.as_deref(), Some("me"));
        assert_eq!(l.chap.mutual_user.as_deref(), Some("tgt"));
        assert_eq!(l.chap.chap_algs.unwrap().to_string(), "sha256,md5");
        assert_eq!(l.header_digest, Some(Digest::Crc32c));
        assert_eq!(l.data_digest, Some(Digest::Crc32c));
        assert_eq!(l.params.len(), 2);
        assert_eq!(l.queue_depth, Some(32));
        assert_eq!(
            l.connect.initiator_name.as_ref().unwrap().as_str(),
            "iqn.2001-04.com.example:host"
        );
        assert_eq!(l.connect.connect_timeout(), Duration::from_secs(5));
        assert_eq!(l.connect.login_timeout(), Duration::from_secs(30));
    }

    #[test]
    fn login_from_config() {
        let l = login(&["-n", "myiscsi", "-c", "/tmp/x.conf"]);
        assert_eq!(l.nickname.as_deref(), Some("myiscsi"));
        assert_eq!(l.config, Some(PathBuf::from("/tmp/x.conf")));
        let l = login(&["-a"]);
        assert!(l.all && l.config.is_none());
        let l = login(&["--startup", "Automatic", "-c", "/tmp/x.conf"]);
        assert_eq!(l.startup, Some(Startup::Automatic));
        assert_eq!(l.config, Some(PathBuf::from("/tmp/x.conf")));
        assert!(!l.all && l.nickname.is_none());
        assert_eq!(
            login(&["--startup", "manual"]).startup,
            Some(Startup::Manual)
        );
    }

    #[test]
    fn login_selector_rules() {
        usage_error(&["login"]);
        let msg = usage_error(&["login", "-p", "h"]);
        assert!(msg.contains("--target"), "{msg}");
        let msg = usage_error(&["login", "-t", "iqn.2001-04.com.example:x"]);
        assert!(msg.contains("--portal"), "{msg}");
        usage_error(&["login", "-n", "a", "-a"]);
        usage_error(&["login", "-n", "a", "-p", "h", "-t", "x"]);
        usage_error(&["login", "-a", "-p", "h", "-t", "x"]);
        usage_error(&["login", "--startup", "automatic", "-a"]);
        usage_error(&["login", "--startup", "automatic", "-n", "a"]);
        usage_error(&["login", "--startup", "automatic", "-p", "h", "-t", "x"]);
        let msg = usage_error(&["login", "--startup", "onboot"]);
        assert!(msg.contains("automatic"), "{msg}");
        let msg = usage_error(&["login", "-p", "h", "-t", "x", "-c", "/etc/f"]);
        assert!(msg.contains("--nickname"), "{msg}");
    }

    #[test]
    fn login_flag_rules() {
        let base = ["login", "-p", "h", "-t", "iqn.2001-04.com.example:x"];
        let with = |extra: &[&str]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            usage_error(&v)
        };
        assert!(with(&["--chap-user", "u"]).contains("--chap-secret-file"));
        assert!(with(&["--chap-secret-file", "f"]).contains("--chap-user"));
        assert!(with(&["--mutual-user", "u"]).contains("--mutual-secret-file"));
        assert!(with(&["--mutual-secret-file", "f"]).contains("--mutual-user"));
        assert!(with(&["--chap-user", "", "--chap-secret-file", "f"]).contains("empty"));
        assert!(with(&["--chap-algs", "md5,md5"]).contains("twice"));
        assert!(with(&["--header-digest", "crc16"]).contains("crc32c"));
        assert!(with(&["--param", "HeaderDigest=None"]).contains("--header-digest"));
        assert!(with(&["--param", "oops"]).contains("Key=Value"));
        assert!(with(&["--queue-depth", "0"]).contains("out of range"));
        assert!(with(&["--connections", "0"]).contains("out of range 1..16"));
        assert!(with(&["--connections", "17"]).contains("out of range 1..16"));
        assert!(with(&["--connections", "two"]).contains("not a number"));
        let l = login(&[
            "-p",
            "h",
            "-t",
            "iqn.2001-04.com.example:x",
            "--connections",
            "4",
        ]);
        assert_eq!(l.connections, Some(4));
        let l = login(&["-p", "h", "-t", "iqn.2001-04.com.example:x"]);
        assert_eq!(l.connections, None);
        assert!(with(&["--connect-timeout", "0"]).contains("1..=3600"));
        assert!(with(&["--login-timeout", "1.5"]).contains("whole seconds"));
        assert!(with(&["--initiator-name", "iqn.2001-13.com.example"]).contains("month 13"));
        // No flag takes a secret itself.
        assert!(with(&["--chap-secret", "x"]).contains("unexpected argument"));
    }

    #[test]
    fn recovery_options() {
        let base = ["-p", "h", "-t", "iqn.2001-04.com.example:x"];
        let l = login(&base);
        assert_eq!(
            (l.replacement_timeout, l.noop_interval, l.noop_timeout),
            (None, None, None)
        );
        let mut v = base.to_vec();
        v.extend([
            "--replacement-timeout",
            "0",
            "--noop-interval",
            "0",
            "--noop-timeout",
            "3600",
        ]);
        let l = login(&v);
        assert_eq!(
            (l.replacement_timeout, l.noop_interval, l.noop_timeout),
            (Some(0), Some(0), Some(3600))
        );
        let mut v = base.to_vec();
        v.extend(["--replacement-timeout", "86400"]);
        assert_eq!(login(&v).replacement_timeout, Some(86_400));
        let with = |extra: &[&str]| {
            let mut v = vec!["login"];
            v.extend_from_slice(&base);
            v.extend_from_slice(extra);
            usage_error(&v)
        };
        assert!(with(&["--replacement-timeout", "86401"]).contains("0..=86400"));
        assert!(with(&["--replacement-timeout", "1e3"]).contains("whole seconds"));
        assert!(with(&["--noop-interval", "3601"]).contains("0..=3600"));
        assert!(with(&["--noop-timeout", "0"]).contains("1..=3600"));
        assert!(with(&["--noop-timeout", "+5"]).contains("whole seconds"));
    }

    #[test]
    fn bad_target_names_are_usage_errors() {
        let msg = usage_error(&["login", "-p", "h", "-t", "a b"]);
        assert!(msg.contains("whitespace"), "{msg}");
        let msg = usage_error(&["login", "-p", "h", "-t", ""]);
        assert!(msg.contains("empty"), "{msg}");
    }

    #[test]
    fn list_logout_daemon() {
        let Command::List(l) = parse(&["list", "--json"]).unwrap().command else {
            panic!()
        };
        assert!(l.json);
        let Command::Logout(l) = parse(&["logout", "--host", "3"]).unwrap().command else {
            panic!()
        };
        assert_eq!(l.host, Some(3));
        let Command::Logout(l) = parse(&["logout", "-a"]).unwrap().command else {
            panic!()
        };
        assert!(l.all);
        let Command::Logout(l) = parse(&["logout", "-t", "iqn.2001-04.com.example:x"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert!(l.target.is_some());
        usage_error(&["logout"]);
        usage_error(&["logout", "-a", "--host", "1"]);
        usage_error(&["logout", "--host", "-1"]);
        let Command::Logout(l) = parse(&["logout", "-n", "data", "-c", "/x.conf"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(l.nickname.as_deref(), Some("data"));
        assert_eq!(l.config, Some(PathBuf::from("/x.conf")));
        let Command::Logout(l) = parse(&["logout", "-p", "192.0.2.1"]).unwrap().command else {
            panic!()
        };
        assert_eq!(l.portal.unwrap().to_string(), "192.0.2.1:3260");
        usage_error(&["logout", "-p", "h", "-n", "x"]);
        usage_error(&["logout", "-p", "h", "-t", "iqn.2001-04.com.example:x"]);
        let c = parse(&["list", "-v"]).unwrap();
        assert_eq!(c.verbosity(), 1);
        usage_error(&["list", "-v", "--json"]);
        let c = parse(&["login", "-a", "-vv", "--json"]).unwrap();
        assert_eq!(c.verbosity(), 2);
        assert!(matches!(
            parse(&["iname"]).unwrap().command,
            Command::Iname(_)
        ));
        assert!(matches!(
            parse(&["daemon", "--device", "/x"]).unwrap().command,
            Command::Daemon(DaemonArgs { device: Some(ref d), .. }) if d == &PathBuf::from("/x")
        ));
        assert!(matches!(
            parse(&["daemon"]).unwrap().command,
            Command::Daemon(DaemonArgs { device: None, .. })
        ));
        usage_error(&["daemon", "-c", "/x"]);
    }

    #[test]
    fn help_and_version_are_not_errors() {
        for args in [&["--help"][..], &["--version"], &["login", "--help"]] {
            let e = parse(args).unwrap_err();
            assert!(!e.use_stderr(), "{args:?}");
            assert!(matches!(
                e.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ));
        }
        // No verb at all shows help but is still a usage error.
        let e = parse(&[]).unwrap_err();
        assert!(e.use_stderr());
    }

    #[test]
    fn help_mentions_precedence() {
        let help = Cli::command()
            .find_subcommand_mut("login")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(
            help.contains("Takes precedence over InitiatorName"),
            "{help}"
        );
        assert!(help.contains("[default: 15]"), "{help}");
    }
}
