//! Turns `iscsictl login` arguments, and the config file for `-n`/`-a`, into fully
//! resolved [`LoginRequest`]s: the one place where command line, config block,
//! config globals and defaults meet, in that order of precedence.
//!
//! The requests are what the login engine (iscsi-proto driven, to come) consumes;
//! nothing here speaks the protocol.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use iscsi_proto::uapi;

use crate::cli::{ChapArgs, DiscoverArgs, LoginArgs};
use crate::config::{self, Config, ConfigError, ConfigErrorKind, Target};
use crate::exit::Error;
use crate::identity::HostName;
use crate::names::{self, IscsiName, NameSource, TargetName};
use crate::params::{self, AuthMethod, ChapAlgs, Connections, Digest, Param, SessionType};
use crate::portal::{Portal, TaggedPortal};
use crate::secret::{read_secret_file, Secret};
use crate::transport::Source;

/// Files iscsictl reads from fixed places, and the machine's CPU count; tests
/// point the files into a tempdir and fix the count.
#[derive(Debug, Clone)]
pub struct SystemPaths {
    /// The kernel module's control device.
    pub device: PathBuf,
    /// Config file used when `-c` is not given.
    pub default_config: PathBuf,
    /// open-iscsi's initiator name file (read, never written).
    pub initiatorname_file: PathBuf,
    /// iscsictl's state: the generated initiator name and the ISID store
    /// (`/etc/iscsi-rs`, or `$ISCSI_RS_DIR`).
    pub state_dir: PathBuf,
    /// The program run to load iscsi_rs when the device is missing.
    pub modprobe: PathBuf,
    /// Where sysfs is mounted (SCSI hosts, their LUNs and disks).
    pub sysfs: PathBuf,
    /// Online CPUs ([`params::online_cpus`]): the default connection count
    /// comes from it ([`params::default_connections`]).
    pub cpus: usize,
}

impl SystemPaths {
    /// Every path below `dir` (tests); modprobe is a program that does not
    /// exist; 4 CPUs, whatever the host has.
    pub fn under(dir: &std::path::Path) -> SystemPaths {
        SystemPaths {
            device: dir.join("iscsi_rs"),
            default_config: dir.join("iscsi-rs.conf"),
            initiatorname_file: dir.join("initiatorname.iscsi"),
            state_dir: dir.join("state"),
            modprobe: dir.join("no-modprobe"),
            sysfs: dir.join("sys"),
            cpus: 4,
        }
    }
}

impl Default for SystemPaths {
    fn default() -> Self {
        SystemPaths {
            device: PathBuf::from(crate::device::DEVICE_PATH),
            default_config: PathBuf::from(config::DEFAULT_PATH),
            initiatorname_file: PathBuf::from(names::INITIATORNAME_FILE),
            state_dir: crate::identity::default_state_dir(),
            modprobe: PathBuf::from("modprobe"),
            sysfs: PathBuf::from("/sys"),
            cpus: params::online_cpus(),
        }
    }
}

/// Mutual CHAP: the target must prove it knows this secret under this name.
#[derive(Debug, Clone)]
pub struct MutualChap {
    pub name: String,
    pub secret: Secret,
}

/// Credentials and offer for CHAP.
#[derive(Debug, Clone)]
pub struct ChapCredentials {
    /// CHAP_N we send: chapIName / --chap-user, else the initiator name.
    pub name: String,
    pub secret: Secret,
    /// CHAP_A offer, most preferred first.
    pub algs: ChapAlgs,
    pub mutual: Option<MutualChap>,
}

/// Authentication for one login.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Chap(ChapCredentials),
}

/// Everything one login needs, with every default applied.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    /// Config nickname, when the request came from a block.
    pub nickname: Option<String>,
    /// Absent only for Discovery sessions.
    pub target_name: Option<TargetName>,
    pub portal: Portal,
    /// The TargetPortalGroupTag the login must reach (`-p …,TAG`, the config's
    /// `TargetAddress = …,TAG`), when known.
    pub portal_group_tag: Option<u16>,
    /// Interface / local address to connect from.
    pub source: Source,
    pub initiator_name: IscsiName,
    pub session_type: SessionType,
    pub auth: Auth,
    pub header_digest: Digest,
    pub data_digest: Digest,
    /// None: the kernel module's default.
    pub queue_depth: Option<u16>,
    /// Connections wanted: the command line's or the block's count, else one
    /// per CPU up to 16 for a Normal session (one for Discovery); the target's
    /// MaxConnections bounds either.
    pub connections: Connections,
    pub params: Vec<Param>,
    pub connect_timeout: Duration,
    pub login_timeout: Duration,
    pub lun_scan: bool,
    pub dry_run: bool,
    /// What the kernel does when the connection is lost (ADD_SESSION only).
    pub recovery: RecoveryKnobs,
}

/// The per-session recovery settings handed to the kernel with the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryKnobs {
    /// Seconds I/O is held after a connection loss before it fails fast (0: at once).
    pub replacement_timeout: u32,
    /// Seconds of silence before a NOP-Out ping (0: no pings).
    pub noop_out_interval: u16,
    /// Seconds a ping may go unanswered before the connection is declared dead.
    pub noop_out_timeout: u16,
}

impl Default for RecoveryKnobs {
    fn default() -> Self {
        RecoveryKnobs {
            replacement_timeout: uapi::DEFAULT_REPLACEMENT_TIMEOUT,
            noop_out_interval: uapi::DEFAULT_NOOP_OUT_INTERVAL,
            noop_out_timeout: uapi::DEFAULT_NOOP_OUT_TIMEOUT,
        }
    }
}

/// The result of planning: requests plus what the user must be told once.
#[derive(Debug)]
pub struct LoginPlan {
    pub requests: Vec<LoginRequest>,
    /// Set when no initiator name was configured and one was made up (and
    /// where it was saved).
    pub generated_name: Option<HostName>,
    /// Non-fatal remarks (e.g. a target name that bends RFC 3720).
    pub warnings: Vec<String>,
}

/// Credentials given on the command line, read once for all targets.
struct CliAuth {
    chap: Option<(String, Secret)>,
    mutual: Option<MutualChap>,
}

/// Builds the login requests for `args`; reads the config (for -n/-a), secret
/// files and the initiator name file as needed.
pub fn plan_login(args: &LoginArgs, paths: &SystemPaths) -> Result<LoginPlan, Error> {
    let cli_auth = CliAuth::read(&args.chap)?;
    let mut seen = HashSet::new();
    for p in &args.params {
        if !seen.insert(p.key.as_str()) {
            return Err(Error::Usage(format!("--param {} is given twice", p.key)));
        }
    }

    let mut planner = Planner {
        args,
        paths,
        cli_auth,
        host_name: None,
        warnings: Vec::new(),
    };
    let mut requests = Vec::new();
    match (&args.portal, &args.target, &args.nickname) {
        (Some(portal), Some(target), _) => {
            requests.push(planner.plan_cli(portal, Some(target))?);
        }
        (_, _, Some(nickname)) => {
            let config = load_config(args, paths)?;
            let Some(target) = config.target(nickname) else {
                return Err(Error::Usage(format!(
                    "no block {nickname:?} in {} (blocks: {})",
                    config.path().display(),
                    block_list(&config)
                )));
            };
            requests.push(planner.plan_block(&config, target)?);
        }
        _ if args.startup.is_some() => {
            let config = load_config(args, paths)?;
            let mode = args.startup.unwrap_or_default();
            for target in config.targets().iter().filter(|t| t.startup == mode) {
                requests.push(planner.plan_block(&config, target)?);
            }
            if requests.is_empty() {
                planner.warnings.push(format!(
                    "no block of {} has startup = {mode}: nothing to log in to",
                    config.path().display()
                ));
            }
        }
        _ if args.all => {
            let config = load_config(args, paths)?;
            if config.targets().is_empty() {
                return Err(Error::Usage(format!(
                    "{} has no target blocks to log in to",
                    config.path().display()
                )));
            }
            for target in config.targets() {
                requests.push(planner.plan_block(&config, target)?);
            }
        }
        // clap's selector group makes this unreachable; say so rather than panic.
        _ => {
            return Err(Error::Usage(
                "login needs -p and -t, -n NICKNAME or -a".into(),
            ))
        }
    }
    let generated_name = match &planner.host_name {
        Some(h @ HostName { resolved, .. })
            if resolved.source == NameSource::Generated
                && requests.iter().any(|r| r.initiator_name == resolved.name) =>
        {
            Some(h.clone())
        }
        _ => None,
    };
    Ok(LoginPlan {
        requests,
        generated_name,
        warnings: planner.warnings,
    })
}

impl CliAuth {
    fn read(chap: &ChapArgs) -> Result<CliAuth, Error> {
        let ChapArgs {
            chap_user,
            chap_secret_file,
            mutual_user,
            mutual_secret_file,
            ..
        } = chap;
        Ok(CliAuth {
            chap: match (chap_user, chap_secret_file) {
                (Some(u), Some(f)) => Some((u.clone(), read_secret_file(f)?)),
                _ => None,
            },
            mutual: match (mutual_user, mutual_secret_file) {
                (Some(u), Some(f)) => Some(MutualChap {
                    name: u.clone(),
                    secret: read_secret_file(f)?,
                }),
                _ => None,
            },
        })
    }
}

/// The Discovery-session login behind `iscsictl discover`: `-p` with the CHAP
/// flags, or a config block (`-n`) whose TargetAddress, CHAP keys and source
/// binding apply (its TargetName, if any, is not used: discovery names no target).
/// The command line wins over the block, as for `login`. Also returns the
/// generated initiator name, if one was made up, for the caller to announce.
pub fn plan_discovery(
    args: &DiscoverArgs,
    paths: &SystemPaths,
) -> Result<(LoginRequest, Option<HostName>), Error> {
    let cli_auth = CliAuth::read(&args.chap)?;
    // The login planner's view of these flags: a dry run of a discovery login.
    let as_login = LoginArgs {
        portal: args
            .portal
            .clone()
            .map(|portal| TaggedPortal { portal, tag: None }),
        target: None,
        nickname: args.nickname.clone(),
        all: false,
        startup: None,
        config: args.config.clone(),
        lun_scan: false,
        chap: args.chap.clone(),
        header_digest: None,
        data_digest: None,
        params: Vec::new(),
        queue_depth: None,
        connections: None,
        replacement_timeout: None,
        noop_interval: None,
        noop_timeout: None,
        dry_run: true,
        json: false,
        connect: args.connect.clone(),
        log: args.log.clone(),
    };
    let mut planner = Planner {
        args: &as_login,
        paths,
        cli_auth,
        host_name: None,
        warnings: Vec::new(),
    };
    let mut r = match (&as_login.portal, &args.nickname) {
        (Some(p), _) => planner.plan_cli(p, None)?,
        (None, Some(nickname)) => {
            let config = load_config(&as_login, paths)?;
            let Some(target) = config.target(nickname) else {
                return Err(Error::Usage(format!(
                    "no block {nickname:?} in {} (blocks: {})",
                    config.path().display(),
                    block_list(&config)
                )));
            };
            planner.plan_block(&config, target)?
        }
        // clap's "where" group makes this unreachable.
        (None, None) => return Err(Error::Usage("discover needs -p or -n".into())),
    };
    r.session_type = SessionType::Discovery;
    r.target_name = None;
    // Digests are for the data path; the block's apply to its Normal session.
    r.header_digest = Digest::None;
    r.data_digest = Digest::None;
    let generated = match planner.host_name {
        Some(h)
            if h.resolved.source == NameSource::Generated
                && h.resolved.name == r.initiator_name =>
        {
            Some(h)
        }
        _ => None,
    };
    Ok((r, generated))
}

fn load_config(args: &LoginArgs, paths: &SystemPaths) -> Result<Config, Error> {
    let path = args.config.as_deref().unwrap_or(&paths.default_config);
    Ok(Config::load(path)?)
}

fn block_list(config: &Config) -> String {
    let names: Vec<&str> = config
        .targets()
        .iter()
        .map(|t| t.nickname.as_str())
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// The per-target part of a [`LoginRequest`].
struct Identity {
    nickname: Option<String>,
    target_name: Option<TargetName>,
    portal: Portal,
    portal_group_tag: Option<u16>,
    initiator_name: IscsiName,
    session_type: SessionType,
    auth: Auth,
}

struct Planner<'a> {
    args: &'a LoginArgs,
    paths: &'a SystemPaths,
    cli_auth: CliAuth,
    /// The host-wide default name, looked up (or generated) at most once so `-a`
    /// uses one generated name for every target.
    host_name: Option<HostName>,
    warnings: Vec<String>,
}

impl Planner<'_> {
    fn initiator_name(&mut self, from_config: Option<&IscsiName>) -> Result<IscsiName, Error> {
        if let Some(n) = self.args.connect.initiator_name.as_ref().or(from_config) {
            return Ok(n.clone());
        }
        let resolved = match &self.host_name {
            Some(r) => r.clone(),
            None => {
                let r = crate::identity::host_initiator_name(
                    &self.paths.initiatorname_file,
                    &self.paths.state_dir,
                )?;
                self.host_name = Some(r.clone());
                r
            }
        };
        Ok(resolved.resolved.name)
    }

    fn check_target_name(&mut self, name: &TargetName) {
        if let Err(e) = name.conformance() {
            let reason = match e {
                names::NameError::Invalid { reason, .. } => reason,
                other => other.to_string(),
            };
            self.warnings.push(format!(
                "target name {:?} does not follow RFC 3720 ({reason}); using it as given",
                name.as_str()
            ));
        }
    }

    fn plan_cli(
        &mut self,
        portal: &TaggedPortal,
        target: Option<&TargetName>,
    ) -> Result<LoginRequest, Error> {
        if let Some(target) = target {
            self.check_target_name(target);
        }
        let initiator_name = self.initiator_name(None)?;
        let one_way = self.cli_auth.chap.clone();
        if one_way.is_none() && self.cli_auth.mutual.is_some() {
            return Err(Error::Usage(
                "--mutual-user needs --chap-user and --chap-secret-file too (mutual CHAP \
                 authenticates both ways)"
                    .into(),
            ));
        }
        let auth = self
            .build_auth(one_way, self.cli_auth.mutual.clone(), None)
            .map_err(Error::Usage)?;
        let who = Identity {
            nickname: None,
            target_name: target.cloned(),
            portal: portal.portal.clone(),
            portal_group_tag: portal.tag,
            initiator_name,
            session_type: if target.is_some() {
                SessionType::Normal
            } else {
                SessionType::Discovery
            },
            auth,
        };
        Ok(self.request(who, None))
    }

    fn plan_block(&mut self, config: &Config, t: &Target) -> Result<LoginRequest, Error> {
        let block_err = |reason: String| -> Error {
            Error::Config(ConfigError {
                path: config.path().to_path_buf(),
                line: Some(t.line),
                kind: ConfigErrorKind::Invalid {
                    name: t.nickname.clone(),
                    reason,
                },
            })
        };
        if let Some(name) = &t.target_name {
            self.check_target_name(name);
        }
        let initiator_name = self.initiator_name(t.initiator_name.as_ref())?;

        let one_way = match &self.cli_auth.chap {
            Some(c) => Some(c.clone()),
            None if t.wants_chap() => {
                let Some(secret) = &t.chap_secret else {
                    return Err(block_err(
                        "AuthMethod is CHAP but chapSecret is missing (set it, or pass \
                         --chap-user and --chap-secret-file)"
                            .into(),
                    ));
                };
                let name = t
                    .chap_name
                    .clone()
                    .unwrap_or_else(|| initiator_name.as_str().to_owned());
                Some((name, secret.clone()))
            }
            None => None,
        };
        let mutual = match (&self.cli_auth.mutual, &t.tgt_chap_name, &t.tgt_chap_secret) {
            (Some(m), _, _) => Some(m.clone()),
            // A block that explicitly says AuthMethod = None drops inherited mutual CHAP.
            _ if t.auth_method == Some(AuthMethod::None) && one_way.is_none() => None,
            (None, Some(name), Some(secret)) => Some(MutualChap {
                name: name.clone(),
                secret: secret.clone(),
            }),
            _ => None,
        };
        if one_way.is_none() && mutual.is_some() {
            return Err(match self.cli_auth.mutual {
                Some(_) => Error::Usage(format!(
                    "--mutual-user needs CHAP for block {:?} too: set AuthMethod = CHAP and \
                     chapSecret in {}, or pass --chap-user and --chap-secret-file",
                    t.nickname,
                    config.path().display()
                )),
                None => block_err(
                    "tgtChapName/tgtChapSecret need one-way CHAP as well (AuthMethod = CHAP \
                     and chapSecret)"
                        .into(),
                ),
            });
        }
        let auth = self
            .build_auth(one_way, mutual, t.chap_algs.as_ref())
            .map_err(block_err)?;
        let who = Identity {
            nickname: Some(t.nickname.clone()),
            target_name: t.target_name.clone(),
            portal: t.portal.clone(),
            portal_group_tag: t.portal_group_tag,
            initiator_name,
            session_type: t.session_type,
            auth,
        };
        Ok(self.request(who, Some(t)))
    }

    fn build_auth(
        &self,
        one_way: Option<(String, Secret)>,
        mutual: Option<MutualChap>,
        config_algs: Option<&ChapAlgs>,
    ) -> Result<Auth, String> {
        let Some((name, secret)) = one_way else {
            return Ok(Auth::None);
        };
        if let Some(m) = &mutual {
            if m.secret.same_as(&secret) {
                return Err(
                    "the mutual CHAP secret must differ from our own (RFC 7143 §12.1.3)".into(),
                );
            }
        }
        let algs = self
            .args
            .chap
            .chap_algs
            .clone()
            .or_else(|| config_algs.cloned())
            .unwrap_or_default();
        Ok(Auth::Chap(ChapCredentials {
            name,
            secret,
            algs,
            mutual,
        }))
    }

    /// Adds the options shared by every target: command line first, then the block.
    fn request(&self, who: Identity, block: Option<&Target>) -> LoginRequest {
        let a = self.args;
        LoginRequest {
            nickname: who.nickname,
            target_name: who.target_name,
            portal: who.portal,
            portal_group_tag: who.portal_group_tag,
            source: Source {
                iface: a
                    .connect
                    .iface
                    .clone()
                    .or_else(|| block.and_then(|t| t.initiator_interface.clone())),
                address: a
                    .connect
                    .initiator_address
                    .or(block.and_then(|t| t.initiator_address)),
            },
            initiator_name: who.initiator_name,
            session_type: who.session_type,
            auth: who.auth,
            header_digest: a
                .header_digest
                .or(block.and_then(|t| t.header_digest))
                .unwrap_or(Digest::None),
            data_digest: a
                .data_digest
                .or(block.and_then(|t| t.data_digest))
                .unwrap_or(Digest::None),
            queue_depth: a.queue_depth.or(block.and_then(|t| t.queue_depth)),
            connections: match a.connections.or(block.and_then(|t| t.connections)) {
                Some(n) => Connections::Asked(n),
                None if who.session_type == SessionType::Normal => {
                    Connections::Default(params::default_connections(self.paths.cpus))
                }
                None => Connections::Default(1),
            },
            params: a.params.clone(),
            connect_timeout: a.connect.connect_timeout(),
            login_timeout: a.connect.login_timeout(),
            lun_scan: a.lun_scan,
            dry_run: a.dry_run,
            recovery: {
                let d = RecoveryKnobs::default();
                RecoveryKnobs {
                    replacement_timeout: a
                        .replacement_timeout
                        .or(block.and_then(|t| t.replacement_timeout))
                        .unwrap_or(d.replacement_timeout),
                    noop_out_interval: a
                        .noop_interval
                        .or(block.and_then(|t| t.noop_out_interval))
                        .unwrap_or(d.noop_out_interval),
                    noop_out_timeout: a
                        .noop_timeout
                        .or(block.and_then(|t| t.noop_out_timeout))
                        .unwrap_or(d.noop_out_timeout),
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::exit;
    use crate::params::ChapAlg;
    use clap::Parser;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    const ISSUE_EXAMPLE: &str = "\
# comments
port = 3260                      # globals
myiscsi {
    targetname    = iqn.1900.com.com:sn.123456
    initiatorname = iqn.2005-01.il.ac.huji.cs:somebody
    targetaddress = iscsi1
    port = 3333
    tags = 8
}
chaptest { targetaddress = iscsi2; targetname = …; authmethod = CHAP; chapsecret = 0x3713c3336d9a224c2791c873d3d2b174 }
";

    struct Bench {
        dir: tempfile::TempDir,
        paths: SystemPaths,
    }

    impl Bench {
        fn new() -> Bench {
            let dir = tempfile::tempdir().unwrap();
            let paths = SystemPaths::under(dir.path());
            Bench { dir, paths }
        }

        fn file(&self, name: &str, text: &str, mode: u32) -> String {
            let p = self.dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p.to_str().unwrap().to_owned()
        }

        fn plan(&self, args: &[&str]) -> Result<LoginPlan, Error> {
            let argv = ["iscsictl", "login"]
                .into_iter()
                .chain(args.iter().copied());
            let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let Command::Login(l) = cli.command else {
                panic!()
            };
            plan_login(&l, &self.paths)
        }
    }

    fn chap(r: &LoginRequest) -> &ChapCredentials {
        match &r.auth {
            Auth::Chap(c) => c,
            Auth::None => panic!("expected CHAP"),
        }
    }

    const TGT: &str = "iqn.2001-04.com.example:disk1";

    #[test]
    fn cli_login_defaults() {
        let b = Bench::new();
        b.file(
            "initiatorname.iscsi",
            "InitiatorName=iqn.2001-04.com.example:file\n",
            0o644,
        );
        let p = b
            .plan(&["-p", "h", "-t", TGT, "--param", "ImmediateData=No"])
            .unwrap();
        assert!(p.generated_name.is_none() && p.warnings.is_empty());
        let [r] = &p.requests[..] else { panic!() };
        assert_eq!(r.initiator_name.as_str(), "iqn.2001-04.com.example:file");
        assert_eq!(r.portal.to_string(), "h:3260");
        assert_eq!(r.target_name.as_ref().unwrap().as_str(), TGT);
        assert_eq!(r.session_type, SessionType::Normal);
        assert!(matches!(r.auth, Auth::None));
        assert_eq!(
            (r.header_digest, r.data_digest),
            (Digest::None, Digest::None)
        );
        assert_eq!(r.queue_depth, None);
        assert_eq!(r.params[0].to_string(), "ImmediateData=No");
        assert_eq!(r.connect_timeout, Duration::from_secs(15));
        assert!(!r.dry_run && !r.lun_scan);
        // The flag beats the file.
        let p = b
            .plan(&[
                "-p",
                "h",
                "-t",
                TGT,
                "--initiator-name",
                "iqn.2001-04.com.example:flag",
            ])
            .unwrap();
        assert_eq!(
            p.requests[0].initiator_name.as_str(),
            "iqn.2001-04.com.example:flag"
        );
    }

    #[test]
    fn cli_chap_and_mutual() {
        let b = Bench::new();
        let mine = b.file("mine", "mysecret1234\n", 0o600);
        let theirs = b.file("theirs", "theirsecret5\n", 0o400);
        let p = b
            .plan(&[
                "-p",
                "h",
                "-t",
                TGT,
                "--chap-user",
                "me",
                "--chap-secret-file",
                &mine,
                "--mutual-user",
                "tgt",
                "--mutual-secret-file",
                &theirs,
            ])
            .unwrap();
        let c = chap(&p.requests[0]);
        assert_eq!(c.name, "me");
        assert_eq!(c.secret.expose(), b"mysecret1234");
        assert_eq!(c.algs, ChapAlgs::default());
        let m = c.mutual.as_ref().unwrap();
        assert_eq!(
            (m.name.as_str(), m.secret.expose()),
            ("tgt", &b"theirsecret5"[..])
        );
        // Debug of the whole plan is safe to log.
        let dbg = format!("{p:?}");
        assert!(
            !dbg.contains("mysecret") && !dbg.contains("theirsecret"),
            "{dbg}"
        );

        let e = b
            .plan(&[
                "-p",
                "h",
                "-t",
                TGT,
                "--chap-user",
                "me",
                "--chap-secret-file",
                &mine,
                "--mutual-user",
                "tgt",
                "--mutual-secret-file",
                &mine,
            ])
            .unwrap_err();
        assert_eq!(e.exit_code(), exit::USAGE);
        assert!(e.to_string().contains("must differ"), "{e}");

        let e = b
            .plan(&[
                "-p",
                "h",
                "-t",
                TGT,
                "--mutual-user",
                "t",
                "--mutual-secret-file",
                &theirs,
            ])
            .unwrap_err();
        assert_eq!(e.exit_code(), exit::USAGE);
        assert!(e.to_string().contains("needs --chap-user"), "{e}");

        let open = b.file("open", "secretsecret\n", 0o644);
        let e = b
            .plan(&[
                "-p",
                "h",
                "-t",
                TGT,
                "--chap-user",
                "me",
                "--chap-secret-file",
                &open,
            ])
            .unwrap_err();
        assert_eq!(e.exit_code(), exit::CONFIG);
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn duplicate_params_are_refused() {
        let b = Bench::new();
        let e = b
            .plan(&[
                "-p",
                "h",
                "-t",
                TGT,
                "--initiator-name",
                "iqn.2001-04.com.example:i",
                "--param",
                "ImmediateData=No",
                "--param",
                "ImmediateData=Yes",
            ])
            .unwrap_err();
        assert_eq!(e.exit_code(), exit::USAGE);
        assert!(
            e.to_string()
                .contains("--param ImmediateData is given twice"),
            "{e}"
        );
    }

    #[test]
    fn issue_example_by_nickname() {
        let b = Bench::new();
        b.file("iscsi-rs.conf", ISSUE_EXAMPLE, 0o600);
        b.file(
            "initiatorname.iscsi",
            "InitiatorName=iqn.2001-04.com.example:file\n",
            0o600,
        );
        let p = b.plan(&["-n", "myiscsi"]).unwrap();
        let r = &p.requests[0];
        assert_eq!(r.nickname.as_deref(), Some("myiscsi"));
        assert_eq!(
            r.initiator_name.as_str(),
            "iqn.2005-01.il.ac.huji.cs:somebody"
        );
        assert_eq!(r.portal.to_string(), "iscsi1:3333");
        assert_eq!(r.queue_depth, Some(8));
        assert!(matches!(r.auth, Auth::None));
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);

        let p = b.plan(&["-n", "chaptest"]).unwrap();
        let r = &p.requests[0];
        assert_eq!(r.initiator_name.as_str(), "iqn.2001-04.com.example:file");
        let c = chap(r);
        // No chapIName: CHAP_N defaults to the initiator name.
        assert_eq!(c.name, "iqn.2001-04.com.example:file");
        assert_eq!(c.secret.len(), 16);
        assert!(c.mutual.is_none());
    }

    #[test]
    fn connections_default_to_one_per_cpu_at_most_16() {
        let mut b = Bench::new();
        b.file(
            "iscsi-rs.conf",
            "a { TargetAddress = h; TargetName = iqn.2001-04.com.example:a }\n\
             b { TargetAddress = h; TargetName = iqn.2001-04.com.example:b; connections = 3 }\n\
             d { TargetAddress = h; SessionType = Discovery }\n",
            0o600,
        );
        let name = "--initiator-name=iqn.2001-04.com.example:i";
        let count = |b: &Bench, args: &[&str]| {
            let p = b.plan(&[args, &[name]].concat()).unwrap();
            let [r] = &p.requests[..] else { panic!() };
            r.connections
        };
        // The host's CPU count plays no part: the paths fix it.
        for (cpus, n) in [(1, 1), (2, 2), (4, 4), (16, 16), (17, 16), (64, 16)] {
            b.paths.cpus = cpus;
            assert_eq!(
                count(&b, &["-p", "h", "-t", TGT]),
                Connections::Default(n),
                "{cpus} CPUs"
            );
            assert_eq!(count(&b, &["-n", "a"]), Connections::Default(n));
            // The flag and the block's key win, asked for even when one.
            assert_eq!(
                count(&b, &["-p", "h", "-t", TGT, "--connections", "1"]),
                Connections::Asked(1)
            );
            assert_eq!(count(&b, &["-n", "b"]), Connections::Asked(3));
            assert_eq!(
                count(&b, &["-n", "b", "--connections", "2"]),
                Connections::Asked(2)
            );
            // Discovery sessions run one connection.
            assert_eq!(count(&b, &["-n", "d"]), Connections::Default(1));
        }
        assert_eq!(
            SystemPaths::default().cpus,
            crate::params::online_cpus(),
            "the real paths count this machine's CPUs"
        );
    }

    #[test]
    fn login_all_shares_one_generated_name() {
        let b = Bench::new();
        let conf = b.file("other.conf", ISSUE_EXAMPLE, 0o600);
        let p = b.plan(&["-a", "-c", &conf]).unwrap();
        assert_eq!(p.requests.len(), 2);
        let generated = p.generated_name.clone().unwrap().resolved.name;
        assert_eq!(p.requests[1].initiator_name, generated);
        assert_eq!(chap(&p.requests[1]).name, generated.as_str());
        // Saved: the next run uses the same name and has nothing to announce.
        let p = b.plan(&["-a", "-c", &conf]).unwrap();
        assert!(p.generated_name.is_none());
        assert_eq!(p.requests[1].initiator_name, generated);
        // Both target names of the example bend RFC 3720.
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
    }

    #[test]
    fn command_line_overrides_config() {
        let b = Bench::new();
        b.file(
            "iscsi-rs.conf",
            "HeaderDigest = CRC32C\nchapAlgs = sha1\ntags = 8\n\
             t { TargetAddress = h; TargetName = iqn.2001-04.com.example:t; \
                 AuthMethod = CHAP; chapIName = confuser; chapSecret = confsecret12; \
                 tgtChapName = tn; tgtChapSecret = tgtsecret123 }\n",
            0o600,
        );
        let mine = b.file("mine", "clisecret123", 0o600);
        let init = ["--initiator-name", "iqn.2001-04.com.example:i"];
        let p = b.plan(&[&["-n", "t"][..], &init].concat()).unwrap();
        let r = &p.requests[0];
        assert_eq!(r.header_digest, Digest::Crc32c);
        assert_eq!(r.queue_depth, Some(8));
        let c = chap(r);
        assert_eq!(
            (c.name.as_str(), c.secret.expose()),
            ("confuser", &b"confsecret12"[..])
        );
        assert_eq!(c.algs.0, vec![ChapAlg::Sha1]);
        assert_eq!(c.mutual.as_ref().unwrap().name, "tn");

        let p = b
            .plan(
                &[
                    &[
                        "-n",
                        "t",
                        "--header-digest",
                        "none",
                        "--data-digest",
                        "crc32c",
                        "--queue-depth",
                        "2",
                        "--chap-algs",
                        "md5",
                        "--chap-user",
                        "cliuser",
                        "--chap-secret-file",
                        &mine,
                    ][..],
                    &init,
                ]
                .concat(),
            )
            .unwrap();
        let r = &p.requests[0];
        assert_eq!(
            (r.header_digest, r.data_digest),
            (Digest::None, Digest::Crc32c)
        );
        assert_eq!(r.queue_depth, Some(2));
        let c = chap(r);
        assert_eq!(
            (c.name.as_str(), c.secret.expose()),
            ("cliuser", &b"clisecret123"[..])
        );
        assert_eq!(c.algs.0, vec![ChapAlg::Md5]);
        // Mutual CHAP still comes from the block.
        assert_eq!(c.mutual.as_ref().unwrap().name, "tn");
    }

    #[test]
    fn config_completeness_errors() {
        let b = Bench::new();
        b.file(
            "iscsi-rs.conf",
            "a { TargetAddress = h; TargetName = x; AuthMethod = CHAP }\n\
             b { TargetAddress = h; TargetName = x; tgtChapName = t; tgtChapSecret = s12345678901 }\n\
             tgtChapName = t\ntgtChapSecret = abcdefabcdef\n",
            0o600,
        );
        // Globals after blocks are refused before anything else.
        let e = b.plan(&["-n", "a"]).unwrap_err();
        assert!(
            e.to_string().contains("must come before the first block"),
            "{e}"
        );

        b.file(
            "iscsi-rs.conf",
            "a { TargetAddress = h; TargetName = x; AuthMethod = CHAP }\n\
             \n\
             b { TargetAddress = h; TargetName = x; tgtChapName = t; tgtChapSecret = s12345678901 }\n",
            0o600,
        );
        let init = "--initiator-name=iqn.2001-04.com.example:i";
        let e = b.plan(&["-n", "a", init]).unwrap_err();
        assert_eq!(e.exit_code(), exit::CONFIG);
        let msg = e.to_string();
        assert!(
            msg.contains(
                "iscsi-rs.conf:1: block \"a\": AuthMethod is CHAP but chapSecret is missing"
            ),
            "{msg}"
        );
        let e = b.plan(&["-n", "b", init]).unwrap_err();
        assert!(
            e.to_string().contains(
                "iscsi-rs.conf:3: block \"b\": tgtChapName/tgtChapSecret need one-way CHAP"
            ),
            "{e}"
        );
        // The command line can supply what the block lacks.
        let mine = b.file("mine", "clisecret123", 0o600);
        let p = b
            .plan(&[
                "-n",
                "a",
                init,
                "--chap-user",
                "u",
                "--chap-secret-file",
                &mine,
            ])
            .unwrap();
        assert_eq!(chap(&p.requests[0]).name, "u");

        let e = b.plan(&["-n", "zzz", init]).unwrap_err();
        assert_eq!(e.exit_code(), exit::USAGE);
        assert!(
            e.to_string().contains("no block \"zzz\"") && e.to_string().contains("(blocks: a, b)"),
            "{e}"
        );
    }

    #[test]
    fn block_auth_none_drops_inherited_mutual() {
        let b = Bench::new();
        b.file(
            "iscsi-rs.conf",
            "tgtChapName = t\ntgtChapSecret = abcdefabcdef\n\
             a { TargetAddress = h; TargetName = x; AuthMethod = None }\n",
            0o600,
        );
        let p = b
            .plan(&["-n", "a", "--initiator-name=iqn.2001-04.com.example:i"])
            .unwrap();
        assert!(matches!(p.requests[0].auth, Auth::None));
    }

    #[test]
    fn empty_config_and_discovery_blocks() {
        let b = Bench::new();
        b.file("iscsi-rs.conf", "# nothing\n", 0o644);
        let e = b.plan(&["-a"]).unwrap_err();
        assert!(e.to_string().contains("has no target blocks"), "{e}");

        b.file(
            "iscsi-rs.conf",
            "d { TargetAddress = [::1]:3261; SessionType = Discovery }\n",
            0o644,
        );
        let p = b
            .plan(&["-a", "--initiator-name=iqn.2001-04.com.example:i"])
            .unwrap();
        let r = &p.requests[0];
        assert_eq!(r.session_type, SessionType::Discovery);
        assert!(r.target_name.is_none());
        assert_eq!(r.portal.to_string(), "[::1]:3261");
        assert!(Path::new(&b.paths.default_config).exists());
    }

    #[test]
    fn source_binding_and_tag_from_block_and_flags() {
        let b = Bench::new();
        b.file(
            "iscsi-rs.conf",
            "InitiatorInterface = eth1\n\
             a { TargetAddress = [2001:db8::1]:3261,5; TargetName = iqn.2001-04.com.example:a; \
                 InitiatorAddress = 2001:db8::9 }\n",
            0o644,
        );
        let name = "--initiator-name=iqn.2001-04.com.example:i";
        let p = b.plan(&["-n", "a", name]).unwrap();
        let r = &p.requests[0];
        assert_eq!(r.portal_group_tag, Some(5));
        assert_eq!(r.source.iface.as_deref(), Some("eth1"));
        assert_eq!(r.source.address, Some("2001:db8::9".parse().unwrap()));
        // Flags win over the block.
        let p = b
            .plan(&[
                "-n",
                "a",
                name,
                "--iface",
                "eth2",
                "--initiator-address",
                "::1",
            ])
            .unwrap();
        let r = &p.requests[0];
        assert_eq!(r.source.iface.as_deref(), Some("eth2"));
        assert_eq!(r.source.address, Some("::1".parse().unwrap()));
        // -p with a tag.
        let p = b
            .plan(&["-p", "192.0.2.1:3261,9", "-t", TGT, name])
            .unwrap();
        assert_eq!(p.requests[0].portal_group_tag, Some(9));
        assert_eq!(p.requests[0].portal.to_string(), "192.0.2.1:3261");
        assert!(p.requests[0].source.is_default());
        // A bad InitiatorAddress is a config error naming the key.
        b.file(
            "iscsi-rs.conf",
            "a { TargetAddress = h; TargetName = x; InitiatorAddress = host.example }\n",
            0o644,
        );
        let e = b.plan(&["-n", "a", name]).unwrap_err();
        assert_eq!(e.exit_code(), exit::CONFIG);
        assert!(e.to_string().contains("InitiatorAddress"), "{e}");
    }

    #[test]
    fn discovery_plan_from_flags_and_block() {
        let b = Bench::new();
        b.file(
            "iscsi-rs.conf",
            "d { TargetAddress = 192.0.2.7; SessionType = Discovery; chapIName = du; \
                 chapSecret = dsecret12345; HeaderDigest = CRC32C }\n\
             n { TargetAddress = 192.0.2.8; TargetName = iqn.2001-04.com.example:n }\n",
            0o600,
        );
        let disc = |args: &[&str]| {
            let argv = ["iscsictl", "discover"]
                .into_iter()
                .chain(args.iter().copied());
            let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let Command::Discover(d) = cli.command else {
                panic!()
            };
            plan_discovery(&d, &b.paths)
        };
        let name = "--initiator-name=iqn.2001-04.com.example:i";
        let (r, generated) = disc(&["-n", "d", name]).unwrap();
        assert!(generated.is_none());
        assert_eq!(r.session_type, SessionType::Discovery);
        assert!(r.target_name.is_none());
        assert_eq!(r.portal.to_string(), "192.0.2.7:3260");
        assert_eq!(chap(&r).name, "du");
        assert_eq!(r.header_digest, Digest::None);
        // A Normal block still serves as a discovery portal; its name is dropped.
        let (r, _) = disc(&["-n", "n", name]).unwrap();
        assert!(r.target_name.is_none() && matches!(r.auth, Auth::None));
        // Flags: CHAP from the command line.
        let f = b.file("s", "flagsecret123", 0o600);
        let (r, _) = disc(&[
            "-p",
            "192.0.2.9",
            "--chap-user",
            "fu",
            "--chap-secret-file",
            &f,
            name,
        ])
        .unwrap();
        assert_eq!(chap(&r).name, "fu");
        // No initiator name anywhere: one is generated and reported.
        let (_, generated) = disc(&["-p", "192.0.2.9"]).unwrap();
        assert!(generated.is_some());
    }

    #[test]
    fn recovery_knobs_flag_block_global_default() {
        let b = Bench::new();
        b.file(
            "iscsi-rs.conf",
            "replacementTimeout = 30\nnoopOutTimeout = 9\n\
             a { TargetAddress = h; TargetName = iqn.2001-04.com.example:a; \
                 NoopOutInterval = 0 }\n\
             b { TargetAddress = h; TargetName = iqn.2001-04.com.example:b; \
                 replacementtimeout = 0 }\n",
            0o644,
        );
        let name = "--initiator-name=iqn.2001-04.com.example:i";
        let p = b.plan(&["-a", name]).unwrap();
        let knobs = |r: &LoginRequest| {
            let k = r.recovery;
            (
                k.replacement_timeout,
                k.noop_out_interval,
                k.noop_out_timeout,
            )
        };
        assert_eq!(knobs(&p.requests[0]), (30, 0, 9));
        assert_eq!(knobs(&p.requests[1]), (0, 5, 9));
        let p = b
            .plan(&[
                "-n",
                "a",
                name,
                "--replacement-timeout",
                "7",
                "--noop-interval",
                "2",
            ])
            .unwrap();
        assert_eq!(knobs(&p.requests[0]), (7, 2, 9));
        let p = b.plan(&["-p", "h", "-t", TGT, name]).unwrap();
        assert_eq!(knobs(&p.requests[0]), (120, 5, 5));
        b.file(
            "iscsi-rs.conf",
            "a { TargetAddress = h; TargetName = iqn.2001-04.com.example:a; \
                 noopOutTimeout = 0 }\n",
            0o644,
        );
        let e = b.plan(&["-a", name]).unwrap_err();
        assert_eq!(e.exit_code(), exit::CONFIG);
        assert!(e.to_string().contains("noopOutTimeout"), "{e}");
    }
}
