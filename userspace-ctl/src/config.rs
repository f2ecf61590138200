//! The config file, `/etc/iscsi-rs.conf` or `-c FILE`, in the iscontrol /
//! FreeBSD iscsi.conf(5) shape:
//!
//! ```text
//! # comment
//! port = 3260                 # globals: before the first block, apply to every block
//! nickname {
//!     TargetName = iqn.2001-04.com.example:disk1
//!     TargetAddress = [2001:db8::1]:3260; AuthMethod = CHAP
//!     chapSecret = "with spaces # and ;"
//! }
//! ```
//!
//! Keys are case-insensitive; entries end at a newline, `;` or the closing `}`;
//! values containing whitespace, `#`, `;`, `=`, `{`, `}` or `"` must be quoted
//! (`\"` and `\\` escape inside quotes). Every error names the file, line and key.
//! A file holding any secret must be private to its owner (ssh's rule), and no
//! error message ever quotes a secret.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::cli::{
    parse_iface, parse_initiator_address, parse_noop_interval, parse_noop_timeout,
    parse_replacement_timeout,
};
use crate::names::{IscsiName, TargetName};
use crate::params::{
    parse_connections, parse_queue_depth, AuthMethod, ChapAlgs, Digest, SessionType, Startup,
};
use crate::portal::{Host, Portal, TargetAddress, DEFAULT_PORT};
use crate::secret::{check_private, PermissionError, Secret};

/// Where the config lives when `-c` is not given.
pub const DEFAULT_PATH: &str = "/etc/iscsi-rs.conf";

/// One target block with the globals folded in: what `login -n NAME` uses.
#[derive(Debug, Clone)]
pub struct Target {
    /// The block's name, as given to `login -n`.
    pub nickname: String,
    /// Line of the block's opening, for messages about the block as a whole.
    pub line: usize,
    /// Required for Normal sessions, absent for Discovery ones.
    pub target_name: Option<TargetName>,
    /// Host and port (TargetAddress's port, else `port =`, else 3260).
    pub portal: Portal,
    /// The `,tag` suffix of TargetAddress, if any.
    pub portal_group_tag: Option<u16>,
    pub initiator_name: Option<IscsiName>,
    /// As written; when absent, a chapSecret implies CHAP (see [`Target::wants_chap`]).
    pub auth_method: Option<AuthMethod>,
    /// CHAP_N we send (chapIName).
    pub chap_name: Option<String>,
    pub chap_secret: Option<Secret>,
    /// CHAP_N we expect from the target in mutual CHAP (tgtChapName).
    pub tgt_chap_name: Option<String>,
    pub tgt_chap_secret: Option<Secret>,
    pub header_digest: Option<Digest>,
    pub data_digest: Option<Digest>,
    pub session_type: SessionType,
    /// `tags`: queue depth.
    pub queue_depth: Option<u16>,
    /// `connections` (or iscsi.conf's `MaxConnections`): TCP connections
    /// (None: the default, one per CPU up to 16).
    pub connections: Option<u16>,
    pub chap_algs: Option<ChapAlgs>,
    /// `replacementTimeout`: seconds I/O waits for a lost connection.
    pub replacement_timeout: Option<u32>,
    /// `noopOutInterval`: seconds of silence before a NOP-Out ping.
    pub noop_out_interval: Option<u16>,
    /// `noopOutTimeout`: seconds a ping may go unanswered.
    pub noop_out_timeout: Option<u16>,
    /// `InitiatorAddress`: the local address to connect from (iscsi.conf(5)).
    pub initiator_address: Option<IpAddr>,
    /// `InitiatorInterface`: the interface to bind to (SO_BINDTODEVICE).
    pub initiator_interface: Option<String>,
    /// `startup`: whether `login --startup automatic` (the boot unit) picks the
    /// block; manual when unset.
    pub startup: Startup,
}

impl Target {
    /// CHAP when AuthMethod says so, or when it is unset and a chapSecret is given
    /// (a configured secret that silently goes unused would surprise).
    pub fn wants_chap(&self) -> bool {
        match self.auth_method {
            Some(m) => m == AuthMethod::Chap,
            None => self.chap_secret.is_some(),
        }
    }
}

/// A parsed and checked config file.
#[derive(Debug, Clone)]
pub struct Config {
    path: PathBuf,
    targets: Vec<Target>,
    has_secrets: bool,
}

impl Config {
    /// Reads, parses and checks `path`, including the permission check when the
    /// file holds a secret. Mode and contents come from the same open file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read_err = |e: io::Error| ConfigError::new(path, None, ConfigErrorKind::Read(e));
        let mut file = File::open(path).map_err(read_err)?;
        let meta = file.metadata().map_err(read_err)?;
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(read_err)?;
        let config = Config::parse(&text, path)?;
        if config.has_secrets {
            check_private(path, &meta)
                .map_err(|e| ConfigError::new(path, None, ConfigErrorKind::Permission(e)))?;
        }
        Ok(config)
    }

    /// Parses `text`; `path` is only used in messages. No permission check.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let err = |line, kind| ConfigError::new(path, Some(line), kind);
        let tokens = lex(text).map_err(|(line, msg)| err(line, ConfigErrorKind::Syntax(msg)))?;
        let (global, blocks) = Parser {
            tokens: &tokens,
            pos: 0,
        }
        .parse()
        .map_err(|(line, kind)| err(line, kind))?;
        global
            .check_scope()
            .map_err(|(line, kind)| err(line, kind))?;
        let mut has_secrets = global.has_secrets();
        let mut targets = Vec::with_capacity(blocks.len());
        for block in &blocks {
            block
                .settings
                .check_scope()
                .map_err(|(line, kind)| err(line, kind))?;
            has_secrets |= block.settings.has_secrets();
            targets.push(resolve(&global, block).map_err(|(line, kind)| err(line, kind))?);
        }
        Ok(Config {
            path: path.to_path_buf(),
            targets,
            has_secrets,
        })
    }

    /// The file this came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All target blocks, in file order.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The block named `nickname` (exact, case-sensitive match).
    pub fn target(&self, nickname: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.nickname == nickname)
    }

    /// Whether any chapSecret/tgtChapSecret is present (then the file must be private).
    pub fn has_secrets(&self) -> bool {
        self.has_secrets
    }
}

/// A config problem: file, line when known, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub kind: ConfigErrorKind,
}

impl ConfigError {
    fn new(path: &Path, line: Option<usize>, kind: ConfigErrorKind) -> ConfigError {
        ConfigError {
            path: path.to_path_buf(),
            line,
            kind,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let ConfigErrorKind::Permission(e) = &self.kind {
            return e.fmt(f); // already names the file
        }
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}", self.kind)
    }
}

/// What is wrong; see [`ConfigError`] for where.
#[derive(Debug, thiserror::Error)]
pub enum ConfigErrorKind {
    #[error("cannot read the config file: {0}")]
    Read(io::Error),
    #[error("{0}")]
    Syntax(String),
    #[error("unknown key {0:?} (known keys: {KNOWN_KEYS})")]
    UnknownKey(String),
    #[error("key {0:?} is not supported by iscsi-rs")]
    UnsupportedKey(String),
    #[error("{key} is set twice in {scope} (first at line {first})")]
    DuplicateKey {
        key: &'static str,
        scope: String,
        first: usize,
    },
    #[error("duplicate block {name:?} (first defined at line {first})")]
    DuplicateBlock { name: String, first: usize },
    #[error("bad value for {key}: {reason}")]
    BadValue { key: &'static str, reason: String },
    #[error("block {0:?} is never closed (missing '}}')")]
    UnterminatedBlock(String),
    #[error("block {name:?}: {reason}")]
    Invalid { name: String, reason: String },
    #[error(transparent)]
    Permission(PermissionError),
}

type Located = (usize, ConfigErrorKind);

// ---------------------------------------------------------------------------
// Keys

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    TargetName,
    TargetAddress,
    InitiatorName,
    AuthMethod,
    ChapIName,
    ChapSecret,
    TgtChapName,
    TgtChapSecret,
    HeaderDigest,
    DataDigest,
    SessionType,
    Port,
    Tags,
    Connections,
    ChapAlgs,
    ReplacementTimeout,
    NoopOutInterval,
    NoopOutTimeout,
    InitiatorAddress,
    InitiatorInterface,
    Startup,
}

/// Canonical spellings, used in messages; lookup ignores case.
const KEYS: &[(&str, Key)] = &[
    ("TargetName", Key::TargetName),
    ("TargetAddress", Key::TargetAddress),
    ("InitiatorName", Key::InitiatorName),
    ("AuthMethod", Key::AuthMethod),
    ("chapIName", Key::ChapIName),
    ("chapSecret", Key::ChapSecret),
    ("tgtChapName", Key::TgtChapName),
    ("tgtChapSecret", Key::TgtChapSecret),
    ("HeaderDigest", Key::HeaderDigest),
    ("DataDigest", Key::DataDigest),
    ("SessionType", Key::SessionType),
    ("port", Key::Port),
    ("tags", Key::Tags),
    ("connections", Key::Connections),
    // iscsi.conf(5)'s spelling: the same wish.
    ("MaxConnections", Key::Connections),
    ("chapAlgs", Key::ChapAlgs),
    ("replacementTimeout", Key::ReplacementTimeout),
    ("noopOutInterval", Key::NoopOutInterval),
    ("noopOutTimeout", Key::NoopOutTimeout),
    ("InitiatorAddress", Key::InitiatorAddress),
    ("InitiatorInterface", Key::InitiatorInterface),
    ("startup", Key::Startup),
];

const KNOWN_KEYS: &str = "TargetName, TargetAddress, InitiatorName, AuthMethod, chapIName, \
     chapSecret, tgtChapName, tgtChapSecret, HeaderDigest, DataDigest, SessionType, port, \
     tags, connections, chapAlgs, replacementTimeout, noopOutInterval, noopOutTimeout, InitiatorAddress, \
     InitiatorInterface, startup";

/// Keys of iscsi.conf(5)/iscontrol we recognise but do not implement: saying so
/// beats "unknown key" for someone bringing a FreeBSD config.
const UNSUPPORTED_KEYS: &[&str] = &[
    "InitiatorAlias",
    "TargetAlias",
    "Offload",
    "Protocol",
    "Enable",
    "PingTimeout",
    "LoginTimeout",
    "dscp",
    "pcp",
    "MaxRecvDataSegmentLength",
    "MaxBurstLength",
    "FirstBurstLength",
    "chapDigest",
];

impl Key {
    fn lookup(word: &str) -> Option<Key> {
        KEYS.iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(word))
            .map(|&(_, k)| k)
    }

    fn name(self) -> &'static str {
        KEYS.iter()
            .find(|&&(_, k)| k == self)
            .map(|&(n, _)| n)
            .unwrap_or("?")
    }

    fn is_secret(self) -> bool {
        matches!(self, Key::ChapSecret | Key::TgtChapSecret)
    }
}

// ---------------------------------------------------------------------------
// Settings of one scope (global or a block)

#[derive(Debug, Clone)]
struct At<T> {
    value: T,
    line: usize,
}

#[derive(Debug, Clone, Default)]
struct Settings {
    scope: String,
    target_name: Option<At<TargetName>>,
    target_address: Option<At<TargetAddress>>,
    initiator_name: Option<At<IscsiName>>,
    auth_method: Option<At<AuthMethod>>,
    chap_name: Option<At<String>>,
    chap_secret: Option<At<Secret>>,
    tgt_chap_name: Option<At<String>>,
    tgt_chap_secret: Option<At<Secret>>,
    header_digest: Option<At<Digest>>,
    data_digest: Option<At<Digest>>,
    session_type: Option<At<SessionType>>,
    port: Option<At<u16>>,
    queue_depth: Option<At<u16>>,
    connections: Option<At<u16>>,
    chap_algs: Option<At<ChapAlgs>>,
    replacement_timeout: Option<At<u32>>,
    noop_out_interval: Option<At<u16>>,
    noop_out_timeout: Option<At<u16>>,
    initiator_address: Option<At<IpAddr>>,
    initiator_interface: Option<At<String>>,
    startup: Option<At<Startup>>,
}

fn put<T>(
    slot: &mut Option<At<T>>,
    value: T,
    key: Key,
    line: usize,
    scope: &str,
) -> Result<(), ConfigErrorKind> {
    if let Some(prev) = slot {
        return Err(ConfigErrorKind::DuplicateKey {
            key: key.name(),
            scope: scope.to_owned(),
            first: prev.line,
        });
    }
    *slot = Some(At { value, line });
    Ok(())
}

fn text_value(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err("the value is empty".into());
    }
    if value.chars().any(char::is_control) {
        return Err("the value holds a control character".into());
    }
    Ok(value.to_owned())
}

impl Settings {
    fn new(scope: String) -> Settings {
        Settings {
            scope,
            ..Settings::default()
        }
    }

    /// Parses `value` for `key` and stores it, refusing a second setting.
    fn set(&mut self, key: Key, value: &str, line: usize) -> Result<(), ConfigErrorKind> {
        let bad = |reason: String| ConfigErrorKind::BadValue {
            key: key.name(),
            reason,
        };
        let scope = self.scope.clone();
        let s = scope.as_str();
        match key {
            Key::TargetName => {
                let v = TargetName::parse(value).map_err(|e| bad(e.to_string()))?;
                put(&mut self.target_name, v, key, line, s)
            }
            Key::TargetAddress => {
                let v = TargetAddress::parse(value).map_err(|e| bad(e.to_string()))?;
                put(&mut self.target_address, v, key, line, s)
            }
            Key::InitiatorName => {
                let v = IscsiName::parse(value).map_err(|e| bad(e.to_string()))?;
                put(&mut self.initiator_name, v, key, line, s)
            }
            Key::AuthMethod => {
                let v = AuthMethod::parse(value).map_err(bad)?;
                put(&mut self.auth_method, v, key, line, s)
            }
            Key::ChapIName => put(
                &mut self.chap_name,
                text_value(value).map_err(bad)?,
                key,
                line,
                s,
            ),
            Key::TgtChapName => put(
                &mut self.tgt_chap_name,
                text_value(value).map_err(bad)?,
                key,
                line,
                s,
            ),
            Key::ChapSecret => {
                let v = Secret::parse_config_value(value).map_err(|e| bad(e.to_string()))?;
                put(&mut self.chap_secret, v, key, line, s)
            }
            Key::TgtChapSecret => {
                let v = Secret::parse_config_value(value).map_err(|e| bad(e.to_string()))?;
                put(&mut self.tgt_chap_secret, v, key, line, s)
            }
            Key::HeaderDigest => {
                let v = Digest::parse(value).map_err(bad)?;
                put(&mut self.header_digest, v, key, line, s)
            }
            Key::DataDigest => {
                let v = Digest::parse(value).map_err(bad)?;
                put(&mut self.data_digest, v, key, line, s)
            }
            Key::SessionType => {
                let v = SessionType::parse(value).map_err(bad)?;
                put(&mut self.session_type, v, key, line, s)
            }
            Key::Port => {
                let v = parse_port_value(value).map_err(bad)?;
                put(&mut self.port, v, key, line, s)
            }
            Key::Tags => {
                let v = parse_queue_depth(value).map_err(bad)?;
                put(&mut self.queue_depth, v, key, line, s)
            }
            Key::Connections => {
                let v = parse_connections(value).map_err(bad)?;
                put(&mut self.connections, v, key, line, s)
            }
            Key::ChapAlgs => {
                let v = ChapAlgs::parse(value).map_err(bad)?;
                put(&mut self.chap_algs, v, key, line, s)
            }
            Key::ReplacementTimeout => {
                let v = parse_replacement_timeout(value).map_err(bad)?;
                put(&mut self.replacement_timeout, v, key, line, s)
            }
            Key::NoopOutInterval => {
                let v = parse_noop_interval(value).map_err(bad)?;
                put(&mut self.noop_out_interval, v, key, line, s)
            }
            Key::NoopOutTimeout => {
                let v = parse_noop_timeout(value).map_err(bad)?;
                put(&mut self.noop_out_timeout, v, key, line, s)
            }
            Key::InitiatorAddress => {
                let v = parse_initiator_address(value).map_err(bad)?;
                put(&mut self.initiator_address, v, key, line, s)
            }
            Key::InitiatorInterface => {
                let v = parse_iface(value).map_err(bad)?;
                put(&mut self.initiator_interface, v, key, line, s)
            }
            Key::Startup => {
                let v = Startup::parse(value).map_err(bad)?;
                put(&mut self.startup, v, key, line, s)
            }
        }
    }

    fn has_secrets(&self) -> bool {
        self.chap_secret.is_some() || self.tgt_chap_secret.is_some()
    }

    /// Contradictions inside one scope. Across scopes, a block's setting simply
    /// overrides the global one (e.g. `AuthMethod = None` under a global secret).
    fn check_scope(&self) -> Result<(), Located> {
        if let Some(am) = &self.auth_method {
            if am.value == AuthMethod::None {
                let chap_line = [
                    self.chap_name.as_ref().map(|a| (a.line, Key::ChapIName)),
                    self.chap_secret.as_ref().map(|a| (a.line, Key::ChapSecret)),
                    self.tgt_chap_name
                        .as_ref()
                        .map(|a| (a.line, Key::TgtChapName)),
                    self.tgt_chap_secret
                        .as_ref()
                        .map(|a| (a.line, Key::TgtChapSecret)),
                ]
                .into_iter()
                .flatten()
                .min_by_key(|&(line, _)| line);
                if let Some((line, key)) = chap_line {
                    return Err((
                        line,
                        ConfigErrorKind::BadValue {
                            key: key.name(),
                            reason: format!(
                                "CHAP settings conflict with AuthMethod = None (line {})",
                                am.line
                            ),
                        },
                    ));
                }
            }
        }
        if let (Some(addr), Some(port)) = (&self.target_address, &self.port) {
            if let Some(p) = addr.value.port {
                if p != port.value {
                    return Err((
                        port.line,
                        ConfigErrorKind::BadValue {
                            key: Key::Port.name(),
                            reason: format!(
                                "port {} contradicts TargetAddress's port {p} (line {})",
                                port.value, addr.line
                            ),
                        },
                    ));
                }
            }
        }
        Ok(())
    }
}

fn parse_port_value(value: &str) -> Result<u16, String> {
    match value.parse::<u16>() {
        Ok(p) if p != 0 && value.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err(format!("{value:?} is not a port number 1..65535")),
    }
}

/// Folds the globals into one block and checks that the result is usable.
fn resolve(global: &Settings, block: &Block) -> Result<Target, Located> {
    fn pick<'a, T>(b: &'a Option<At<T>>, g: &'a Option<At<T>>) -> Option<&'a T> {
        b.as_ref().or(g.as_ref()).map(|a| &a.value)
    }
    let b = &block.settings;
    let invalid = |reason: String| {
        (
            block.line,
            ConfigErrorKind::Invalid {
                name: block.name.clone(),
                reason,
            },
        )
    };
    let Some(addr) = pick(&b.target_address, &global.target_address) else {
        return Err(invalid("TargetAddress is missing".into()));
    };
    let session_type = pick(&b.session_type, &global.session_type)
        .copied()
        .unwrap_or_default();
    let target_name = pick(&b.target_name, &global.target_name).cloned();
    if session_type == SessionType::Normal && target_name.is_none() {
        return Err(invalid(
            "TargetName is missing (a Normal session needs it; set SessionType = Discovery \
             for a discovery block)"
                .into(),
        ));
    }
    // A global `startup = automatic` leaves Discovery blocks alone; the block's
    // own setting there is a mistake worth naming.
    let startup = match session_type {
        SessionType::Normal => pick(&b.startup, &global.startup)
            .copied()
            .unwrap_or_default(),
        SessionType::Discovery => match &b.startup {
            Some(At {
                value: Startup::Automatic,
                line,
            }) => {
                return Err((
                    *line,
                    ConfigErrorKind::BadValue {
                        key: Key::Startup.name(),
                        reason: "a Discovery block is never logged in at boot (automatic \
                                 needs SessionType = Normal)"
                            .into(),
                    },
                ))
            }
            _ => Startup::Manual,
        },
    };
    let port = addr
        .port
        .or_else(|| pick(&b.port, &global.port).copied())
        .unwrap_or(DEFAULT_PORT);
    let host: Host = addr.host.clone();
    let tgt_chap_name = pick(&b.tgt_chap_name, &global.tgt_chap_name).cloned();
    let tgt_chap_secret = pick(&b.tgt_chap_secret, &global.tgt_chap_secret).cloned();
    if tgt_chap_name.is_some() != tgt_chap_secret.is_some() {
        return Err(invalid(
            "tgtChapName and tgtChapSecret go together (mutual CHAP needs both)".into(),
        ));
    }
    let chap_secret = pick(&b.chap_secret, &global.chap_secret).cloned();
    if let (Some(mine), Some(theirs)) = (&chap_secret, &tgt_chap_secret) {
        if mine.same_as(theirs) {
            return Err(invalid(
                "chapSecret and tgtChapSecret must differ (RFC 7143 §12.1.3)".into(),
            ));
        }
    }
    Ok(Target {
        nickname: block.name.clone(),
        line: block.line,
        target_name,
        portal: Portal { host, port },
        portal_group_tag: addr.portal_group_tag,
        initiator_name: pick(&b.initiator_name, &global.initiator_name).cloned(),
        auth_method: pick(&b.auth_method, &global.auth_method).copied(),
        chap_name: pick(&b.chap_name, &global.chap_name).cloned(),
        chap_secret,
        tgt_chap_name,
        tgt_chap_secret,
        header_digest: pick(&b.header_digest, &global.header_digest).copied(),
        data_digest: pick(&b.data_digest, &global.data_digest).copied(),
        session_type,
        queue_depth: pick(&b.queue_depth, &global.queue_depth).copied(),
        connections: pick(&b.connections, &global.connections).copied(),
        chap_algs: pick(&b.chap_algs, &global.chap_algs).cloned(),
        replacement_timeout: pick(&b.replacement_timeout, &global.replacement_timeout).copied(),
        noop_out_interval: pick(&b.noop_out_interval, &global.noop_out_interval).copied(),
        noop_out_timeout: pick(&b.noop_out_timeout, &global.noop_out_timeout).copied(),
        initiator_address: pick(&b.initiator_address, &global.initiator_address).copied(),
        initiator_interface: pick(&b.initiator_interface, &global.initiator_interface).cloned(),
        startup,
    })
}

// ---------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Eq,
    Open,
    Close,
    Semi,
    Newline,
    Eof,
}

impl Tok {
    /// How the token reads in a message; `secret` hides values.
    fn describe(&self, secret: bool) -> String {
        match self {
            Tok::Word(_) | Tok::Quoted(_) if secret => "text".into(),
            Tok::Word(w) => format!("{w:?}"),
            Tok::Quoted(_) => "a quoted string".into(),
            Tok::Eq => "'='".into(),
            Tok::Open => "'{'".into(),
            Tok::Close => "'}'".into(),
            Tok::Semi => "';'".into(),
            Tok::Newline => "the end of the line".into(),
            Tok::Eof => "the end of the file".into(),
        }
    }
}

struct Token {
    tok: Tok,
    line: usize,
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '{' | '}' | ';' | '#' | '"')
}

fn lex(text: &str) -> Result<Vec<Token>, (usize, String)> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let tok = match c {
            '\n' => {
                out.push(Token {
                    tok: Tok::Newline,
                    line,
                });
                line += 1;
                continue;
            }
            '#' => {
                while chars.next_if(|&c| c != '\n').is_some() {}
                continue;
            }
            c if c.is_whitespace() => continue,
            c if c.is_control() => {
                return Err((line, format!("unexpected control character {c:?}")));
            }
            '=' => Tok::Eq,
            '{' => Tok::Open,
            '}' => Tok::Close,
            ';' => Tok::Semi,
            '"' => {
                let unterminated = || (line, "unterminated quoted string (missing '\"')".into());
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None | Some('\n') => return Err(unterminated()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\')) => s.push(e),
                            None | Some('\n') => return Err(unterminated()),
                            Some(other) => {
                                s.push('\\');
                                s.push(other);
                            }
                        },
                        Some(other) => s.push(other),
                    }
                }
                Tok::Quoted(s)
            }
            first => {
                let mut w = String::from(first);
                while let Some(c) =
                    chars.next_if(|&c| !c.is_whitespace() && !c.is_control() && !is_special(c))
                {
                    w.push(c);
                }
                Tok::Word(w)
            }
        };
        out.push(Token { tok, line });
    }
    out.push(Token {
        tok: Tok::Eof,
        line,
    });
    Ok(out)
}

// ---------------------------------------------------------------------------
// Parser

struct Block {
    name: String,
    line: usize,
    settings: Settings,
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        // The lexer always ends with Eof and the parser never steps past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> &Token {
        let i = self.pos.min(self.tokens.len() - 1);
        if self.tokens[i].tok != Tok::Eof {
            self.pos += 1;
        }
        &self.tokens[i]
    }

    fn syntax(line: usize, msg: String) -> Located {
        (line, ConfigErrorKind::Syntax(msg))
    }

    fn parse(mut self) -> Result<(Settings, Vec<Block>), Located> {
        let mut global = Settings::new("the global section".into());
        let mut blocks: Vec<Block> = Vec::new();
        loop {
            let Token { tok, line } = self.bump();
            let line = *line;
            match tok.clone() {
                Tok::Newline | Tok::Semi => {}
                Tok::Eof => return Ok((global, blocks)),
                Tok::Word(word) => {
                    if self.peek().tok == Tok::Eq {
                        self.bump();
                        if let Some(first) = blocks.first() {
                            return Err(Self::syntax(
                                line,
                                format!(
                                    "global setting {word:?} must come before the first block \
                                     (line {})",
                                    first.line
                                ),
                            ));
                        }
                        self.assignment(&mut global, &word, line, false)?;
                        continue;
                    }
                    while self.peek().tok == Tok::Newline {
                        self.bump();
                    }
                    if self.peek().tok != Tok::Open {
                        let found = self.peek().tok.describe(false);
                        return Err(Self::syntax(
                            line,
                            format!(
                                "expected '=' or '{{' after {word:?}, found {found} \
                                 (missing '{{' to open block {word:?}?)"
                            ),
                        ));
                    }
                    self.bump();
                    if let Some(prev) = blocks.iter().find(|b| b.name == word) {
                        return Err((
                            line,
                            ConfigErrorKind::DuplicateBlock {
                                name: word,
                                first: prev.line,
                            },
                        ));
                    }
                    let settings = self.block_body(&word, line)?;
                    blocks.push(Block {
                        name: word,
                        line,
                        settings,
                    });
                }
                Tok::Close => {
                    return Err(Self::syntax(
                        line,
                        "unexpected '}' (no block is open)".into(),
                    ))
                }
                other => {
                    return Err(Self::syntax(
                        line,
                        format!(
                            "expected a key or a block name, found {}",
                            other.describe(false)
                        ),
                    ))
                }
            }
        }
    }

    fn block_body(&mut self, name: &str, open_line: usize) -> Result<Settings, Located> {
        let mut settings = Settings::new(format!("block {name:?}"));
        loop {
            let Token { tok, line } = self.bump();
            let line = *line;
            match tok.clone() {
                Tok::Newline | Tok::Semi => {}
                Tok::Close => return Ok(settings),
                Tok::Eof => {
                    return Err((
                        open_line,
                        ConfigErrorKind::UnterminatedBlock(name.to_owned()),
                    ))
                }
                Tok::Word(word) => match self.peek().tok {
                    Tok::Eq => {
                        self.bump();
                        self.assignment(&mut settings, &word, line, true)?;
                    }
                    Tok::Open => {
                        return Err(Self::syntax(
                            line,
                            format!(
                                "block {word:?} inside block {name:?} (opened at line \
                                 {open_line}): blocks cannot nest; is a '}}' missing?"
                            ),
                        ))
                    }
                    ref other => {
                        return Err(Self::syntax(
                            line,
                            format!(
                                "expected '=' after {word:?}, found {}",
                                other.describe(false)
                            ),
                        ))
                    }
                },
                other => {
                    return Err(Self::syntax(
                        line,
                        format!("expected a key, found {}", other.describe(false)),
                    ))
                }
            }
        }
    }

    /// `key =` has been consumed; reads the value and what may follow it.
    fn assignment(
        &mut self,
        settings: &mut Settings,
        word: &str,
        line: usize,
        in_block: bool,
    ) -> Result<(), Located> {
        let Some(key) = Key::lookup(word) else {
            let kind = match UNSUPPORTED_KEYS
                .iter()
                .find(|k| k.eq_ignore_ascii_case(word))
            {
                Some(_) => ConfigErrorKind::UnsupportedKey(word.to_owned()),
                None => ConfigErrorKind::UnknownKey(word.to_owned()),
            };
            return Err((line, kind));
        };
        let value = match &self.peek().tok {
            Tok::Word(v) | Tok::Quoted(v) => v.clone(),
            _ => {
                return Err(Self::syntax(
                    line,
                    format!("missing value for {}", key.name()),
                ))
            }
        };
        self.bump();
        match self.peek().tok {
            Tok::Newline | Tok::Semi | Tok::Eof => {}
            Tok::Close if in_block => {}
            ref other => {
                return Err(Self::syntax(
                    line,
                    format!(
                        "unexpected {} after the value of {} (quote values that contain \
                         spaces or any of = {{ }} ; # \")",
                        other.describe(key.is_secret()),
                        key.name()
                    ),
                ))
            }
        }
        settings.set(key, &value, line).map_err(|k| (line, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ChapAlg;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

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

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/test.conf"))
    }

    /// The error message, which must start with the file and the line.
    fn error_at(text: &str, line: usize) -> String {
        let e = parse(text).map(|_| ()).unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.line, Some(line), "{msg}");
        assert!(
            msg.starts_with(&format!("/etc/test.conf:{line}: ")),
            "{msg}"
        );
        msg
    }

    fn name(host: &str) -> Host {
        Host::Name(host.to_owned())
    }

    #[test]
    fn issue_example_exactly() {
        let c = parse(ISSUE_EXAMPLE).unwrap();
        assert_eq!(c.targets().len(), 2);
        assert!(c.has_secrets());

        let t = c.target("myiscsi").unwrap();
        assert_eq!(t.line, 3);
        assert_eq!(
            t.target_name.as_ref().unwrap().as_str(),
            "iqn.1900.com.com:sn.123456"
        );
        assert_eq!(
            t.initiator_name.as_ref().unwrap().as_str(),
            "iqn.2005-01.il.ac.huji.cs:somebody"
        );
        assert_eq!(
            t.portal,
            Portal {
                host: name("iscsi1"),
                port: 3333
            }
        );
        assert_eq!(t.queue_depth, Some(8));
        assert!(!t.wants_chap());
        assert_eq!(t.session_type, SessionType::Normal);

        let t = c.target("chaptest").unwrap();
        assert_eq!(t.line, 10);
        assert_eq!(t.target_name.as_ref().unwrap().as_str(), "…");
        // The global port applies where the block does not set one.
        assert_eq!(
            t.portal,
            Portal {
                host: name("iscsi2"),
                port: 3260
            }
        );
        assert_eq!(t.auth_method, Some(AuthMethod::Chap));
        assert!(t.wants_chap());
        assert_eq!(
            t.chap_secret.as_ref().unwrap().expose(),
            &[
                0x37, 0x13, 0xc3, 0x33, 0x6d, 0x9a, 0x22, 0x4c, 0x27, 0x91, 0xc8, 0x73, 0xd3, 0xd2,
                0xb1, 0x74
            ]
        );
        assert_eq!(t.chap_name, None);
        assert_eq!(t.initiator_name, None);
        assert!(c.target("nope").is_none());
        // Debug output of the whole config never shows the secret.
        let dbg = format!("{c:?}");
        assert!(dbg.contains("<redacted>") && !dbg.contains("3713"), "{dbg}");
    }

    #[test]
    fn freebsd_style_keys() {
        let c = parse(
            "\
t0 {
\tTargetAddress   = 10.10.10.10:3261
\tTargetName      = iqn.2012-06.com.example:target0
\tInitiatorName   = iqn.2012-06.com.example:host1
\tAuthMethod      = CHAP
\tchapIName       = user
\tchapSecret      = \"secretsecret\"
\ttgtChapName     = target0user
\ttgtChapSecret   = othersecret1
\tHeaderDigest    = CRC32C
\tDataDigest      = None
\tSessionType     = Normal
\tchapAlgs        = sha256,md5
}
d0 {
\tTARGETADDRESS = [2001:db8::1]
\tsessiontype = Discovery
}
",
        )
        .unwrap();
        let t = c.target("t0").unwrap();
        assert_eq!(t.portal.to_string(), "10.10.10.10:3261");
        assert_eq!(t.chap_name.as_deref(), Some("user"));
        assert_eq!(t.chap_secret.as_ref().unwrap().expose(), b"secretsecret");
        assert_eq!(t.tgt_chap_name.as_deref(), Some("target0user"));
        assert_eq!(
            t.tgt_chap_secret.as_ref().unwrap().expose(),
            b"othersecret1"
        );
        assert_eq!(t.header_digest, Some(Digest::Crc32c));
        assert_eq!(t.data_digest, Some(Digest::None));
        assert_eq!(
            t.chap_algs.as_ref().unwrap().0,
            vec![ChapAlg::Sha256, ChapAlg::Md5]
        );
        let d = c.target("d0").unwrap();
        assert_eq!(d.session_type, SessionType::Discovery);
        assert_eq!(d.target_name, None);
        assert_eq!(d.portal.to_string(), "[2001:db8::1]:3260");
    }

    #[test]
    fn connections_key_and_its_iscsi_conf_spelling() {
        let c = parse(
            "\
connections = 2
a { TargetAddress = h1; TargetName = iqn.2001-04.com.example:a }
b { TargetAddress = h2; TargetName = iqn.2001-04.com.example:b; MaxConnections = 4 }
",
        )
        .unwrap();
        assert_eq!(c.target("a").unwrap().connections, Some(2));
        assert_eq!(c.target("b").unwrap().connections, Some(4));
        // Both spellings name one setting: twice in a block is a duplicate.
        let e = parse(
            "a { TargetAddress = h; TargetName = iqn.2001-04.com.example:a; \
             connections = 2; MaxConnections = 2 }",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("connections"), "{e}");
    }

    #[test]
    fn global_inheritance_and_override() {
        let c = parse(
            "\
AuthMethod = CHAP
chapIName = globaluser
chapSecret = globalsecret
HeaderDigest = CRC32C
tags = 16
InitiatorName = iqn.2001-04.com.example:global
a { TargetAddress = h1; TargetName = iqn.2001-04.com.example:a }
b {
  TargetAddress = h2
  TargetName = iqn.2001-04.com.example:b
  AuthMethod = None
  HeaderDigest = None
  tags = 4
  InitiatorName = iqn.2001-04.com.example:own
}
",
        )
        .unwrap();
        let a = c.target("a").unwrap();
        assert!(a.wants_chap());
        assert_eq!(a.chap_name.as_deref(), Some("globaluser"));
        assert_eq!(a.chap_secret.as_ref().unwrap().expose(), b"globalsecret");
        assert_eq!(a.header_digest, Some(Digest::Crc32c));
        assert_eq!(a.queue_depth, Some(16));
        assert_eq!(
            a.initiator_name.as_ref().unwrap().as_str(),
            "iqn.2001-04.com.example:global"
        );
        let b = c.target("b").unwrap();
        // A block may turn off auth inherited from the globals.
        assert!(!b.wants_chap());
        assert_eq!(b.header_digest, Some(Digest::None));
        assert_eq!(b.queue_depth, Some(4));
        assert_eq!(
            b.initiator_name.as_ref().unwrap().as_str(),
            "iqn.2001-04.com.example:own"
        );
        assert_eq!(
            c.targets()
                .iter()
                .map(|t| t.nickname.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn quoting_and_separators() {
        let c = parse(
            "a { TargetAddress = \"h1:3261\" ; TargetName = \"iqn.2001-04.com.example:a\";;; \
             chapIName = \"name with spaces # not a comment; = {}\" ; chapSecret = \"q\\\"b\\\\s\\x\" }\r\n\
             ;b{TargetAddress=h2;TargetName=iqn.2001-04.com.example:b}\r\n",
        )
        .unwrap();
        let a = c.target("a").unwrap();
        assert_eq!(a.portal.port, 3261);
        assert_eq!(
            a.chap_name.as_deref(),
            Some("name with spaces # not a comment; = {}")
        );
        assert_eq!(a.chap_secret.as_ref().unwrap().expose(), b"q\"b\\s\\x");
        assert_eq!(c.target("b").unwrap().portal.host, name("h2"));
        // A '#' ends an unquoted value.
        let c = parse("a { TargetAddress = h1#comment\nTargetName = x }").unwrap();
        assert_eq!(c.target("a").unwrap().portal.host, name("h1"));
        // Block brace on its own line.
        assert!(parse("a\n{\nTargetAddress = h\nTargetName = x\n}\n").is_ok());
        // Empty file, comments only, globals only.
        assert!(parse("").unwrap().targets().is_empty());
        assert!(parse("# nothing\n\n   \n").unwrap().targets().is_empty());
        assert!(parse("port = 1\n").unwrap().targets().is_empty());
    }

    #[test]
    fn ports_and_tags() {
        let c = parse(
            "port = 1000\n\
             a { TargetAddress = h:2000; TargetName = x }\n\
             b { TargetAddress = h; TargetName = x; port = 3000 }\n\
             c { TargetAddress = h,7; TargetName = x }\n",
        )
        .unwrap();
        assert_eq!(c.target("a").unwrap().portal.port, 2000);
        assert_eq!(c.target("b").unwrap().portal.port, 3000);
        let t = c.target("c").unwrap();
        assert_eq!((t.portal.port, t.portal_group_tag), (1000, Some(7)));
        let c = parse("a { TargetAddress = h; TargetName = x }").unwrap();
        assert_eq!(c.target("a").unwrap().portal.port, DEFAULT_PORT);
    }

    #[test]
    fn startup_key() {
        let c = parse(
            "startup = automatic\n\
             a { TargetAddress = h; TargetName = x }\n\
             b { TargetAddress = h; TargetName = x; Startup = MANUAL }\n\
             d { TargetAddress = h; SessionType = Discovery }\n",
        )
        .unwrap();
        assert_eq!(c.target("a").unwrap().startup, Startup::Automatic);
        assert_eq!(c.target("b").unwrap().startup, Startup::Manual);
        // The global automatic does not reach a Discovery block.
        assert_eq!(c.target("d").unwrap().startup, Startup::Manual);
        let c = parse("a { TargetAddress = h; TargetName = x }").unwrap();
        assert_eq!(c.target("a").unwrap().startup, Startup::Manual);
        let msg = error_at(
            "a {\n TargetAddress = h\n TargetName = x\n startup = onboot\n}",
            4,
        );
        assert!(
            msg.contains("bad value for startup: \"onboot\" is not a startup mode"),
            "{msg}"
        );
        let msg = error_at(
            "d {\n TargetAddress = h\n SessionType = Discovery\n startup = automatic\n}",
            4,
        );
        assert!(
            msg.contains("a Discovery block is never logged in"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_key() {
        let msg = error_at("a {\n  TargetAddress = h\n  Colour = blue\n}\n", 3);
        assert!(msg.contains("unknown key \"Colour\""), "{msg}");
        assert!(msg.contains("TargetName"), "{msg}");
        let msg = error_at("bogus = 1\n", 1);
        assert!(msg.contains("unknown key \"bogus\""), "{msg}");
        let msg = error_at("\na { offload = yes }", 2);
        assert!(msg.contains("\"offload\" is not supported"), "{msg}");
    }

    #[test]
    fn missing_brace() {
        // Opening brace forgotten.
        let msg = error_at("port = 1\nmyiscsi\n  targetaddress = h\n}\n", 2);
        assert!(msg.contains("after \"myiscsi\""), "{msg}");
        assert!(msg.contains("missing '{'"), "{msg}");
        // Closing brace forgotten before the next block.
        let msg = error_at(
            "a {\n  TargetAddress = h\n  TargetName = x\nb {\n  TargetAddress = h\n}\n",
            4,
        );
        assert!(msg.contains("blocks cannot nest"), "{msg}");
        assert!(msg.contains("opened at line 1"), "{msg}");
        // Stray closing brace.
        let msg = error_at("a { TargetAddress = h; TargetName = x }\n}\n", 2);
        assert!(msg.contains("unexpected '}'"), "{msg}");
    }

    #[test]
    fn unterminated_block() {
        let msg = error_at("# c\nmyblock {\n  TargetAddress = h\n  TargetName = x\n", 2);
        assert!(msg.contains("block \"myblock\" is never closed"), "{msg}");
    }

    #[test]
    fn duplicate_nickname() {
        let msg = error_at(
            "a { TargetAddress = h; TargetName = x }\n\nb { TargetAddress = h; TargetName = x }\na {\n}\n",
            4,
        );
        assert!(msg.contains("duplicate block \"a\""), "{msg}");
        assert!(msg.contains("first defined at line 1"), "{msg}");
    }

    #[test]
    fn duplicate_key() {
        let msg = error_at("a {\n  TargetAddress = h\n  targetaddress = h2\n}", 3);
        assert!(
            msg.contains("TargetAddress is set twice in block \"a\""),
            "{msg}"
        );
        assert!(msg.contains("first at line 2"), "{msg}");
        let msg = error_at("port = 1\nport = 2\n", 2);
        assert!(msg.contains("the global section"), "{msg}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "a { HeaderDigest = CRC16 }",
                "HeaderDigest",
                "None or CRC32C",
            ),
            ("a { DataDigest = yes }", "DataDigest", "None or CRC32C"),
            ("a { AuthMethod = SRP }", "AuthMethod", "None or CHAP"),
            (
                "a { SessionType = Full }",
                "SessionType",
                "Normal or Discovery",
            ),
            ("a { port = 0 }", "port", "1..65535"),
            ("a { port = http }", "port", "1..65535"),
            ("a { tags = 0 }", "tags", "out of range"),
            ("a { connections = 17 }", "connections", "out of range"),
            ("a { MaxConnections = 0 }", "connections", "out of range"),
            (
                "a { TargetAddress = \"h h\" }",
                "TargetAddress",
                "whitespace",
            ),
            (
                "a { TargetAddress = h:99999 }",
                "TargetAddress",
                "out of range",
            ),
            ("a { InitiatorName = iqn.bad }", "InitiatorName", "YYYY-MM"),
            ("a { TargetName = \"\" }", "TargetName", "empty"),
            ("a { chapIName = \"\" }", "chapIName", "empty"),
            ("a { chapSecret = 0x123 }", "chapSecret", "odd number"),
            ("a { tgtChapSecret = \"\" }", "tgtChapSecret", "empty"),
            (
                "a { chapAlgs = sha512 }",
                "chapAlgs",
                "not a CHAP algorithm",
            ),
        ];
        for (text, key, what) in cases {
            let msg = error_at(text, 1);
            assert!(
                msg.contains(&format!("bad value for {key}: ")) && msg.contains(what),
                "{text}: {msg}"
            );
        }
    }

    #[test]
    fn syntax_errors() {
        let msg = error_at("a {\n  TargetAddress =\n}", 2);
        assert!(msg.contains("missing value for TargetAddress"), "{msg}");
        let msg = error_at("a {\n  TargetName = two words\n}", 2);
        assert!(
            msg.contains("unexpected \"words\" after the value of TargetName"),
            "{msg}"
        );
        let msg = error_at("a {\n  chapIName = \"open\n}", 2);
        assert!(msg.contains("unterminated quoted string"), "{msg}");
        let msg = error_at("a {\n  TargetName x\n}", 2);
        assert!(msg.contains("expected '=' after \"TargetName\""), "{msg}");
        let msg = error_at("= 3", 1);
        assert!(
            msg.contains("expected a key or a block name, found '='"),
            "{msg}"
        );
        let msg = error_at("a { TargetAddress = h; TargetName = x }\nport = 1\n", 2);
        assert!(msg.contains("must come before the first block"), "{msg}");
        let msg = error_at("a {\n = x }", 2);
        assert!(msg.contains("expected a key"), "{msg}");
        let msg = error_at("port = 1\u{7}\n", 1);
        assert!(msg.contains("control character"), "{msg}");
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        let msg = error_at("a {\n  chapSecret = hunter2 hunter3\n}", 2);
        assert!(!msg.contains("hunter"), "{msg}");
        assert!(msg.contains("after the value of chapSecret"), "{msg}");
        let msg = error_at("a {\n  tgtChapSecret = 0xhunter22\n}", 2);
        assert!(!msg.contains("hunter"), "{msg}");
    }

    #[test]
    fn block_level_checks() {
        let msg = error_at("\na { TargetName = x }", 2);
        assert!(
            msg.contains("block \"a\": TargetAddress is missing"),
            "{msg}"
        );
        let msg = error_at("a {\n TargetAddress = h\n}", 1);
        assert!(msg.contains("TargetName is missing"), "{msg}");
        let msg = error_at(
            "a {\n TargetAddress = h\n TargetName = x\n AuthMethod = None\n chapSecret = abcdefabcdef\n}",
            5,
        );
        assert!(
            msg.contains("conflict with AuthMethod = None (line 4)"),
            "{msg}"
        );
        let msg = error_at(
            "a {\n TargetAddress = h\n TargetName = x\n tgtChapName = t\n}",
            1,
        );
        assert!(
            msg.contains("tgtChapName and tgtChapSecret go together"),
            "{msg}"
        );
        let msg = error_at(
            "chapSecret = samesamesame\na {\n TargetAddress = h\n TargetName = x\n \
             tgtChapName = t\n tgtChapSecret = samesamesame\n}",
            2,
        );
        assert!(msg.contains("must differ"), "{msg}");
        let msg = error_at(
            "a {\n TargetAddress = h:1\n TargetName = x\n port = 2\n}",
            4,
        );
        assert!(
            msg.contains("contradicts TargetAddress's port 1 (line 2)"),
            "{msg}"
        );
    }

    fn write_conf(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let p = dir.join("iscsi-rs.conf");
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn permission_check() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_conf(dir.path(), ISSUE_EXAMPLE, 0o644);
        let e = Config::load(&p).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e.kind, ConfigErrorKind::Permission(_)), "{msg}");
        assert!(msg.contains("mode 0644"), "{msg}");
        assert!(msg.contains(&format!("chmod 600 {}", p.display())), "{msg}");

        for mode in [0o600, 0o400] {
            let p = write_conf(dir.path(), ISSUE_EXAMPLE, mode);
            assert_eq!(Config::load(&p).unwrap().targets().len(), 2);
        }
        for mode in [0o640, 0o660, 0o606, 0o604] {
            let p = write_conf(dir.path(), ISSUE_EXAMPLE, mode);
            assert!(Config::load(&p).is_err(), "{mode:o}");
        }
        // Without secrets the file may be world-readable.
        let p = write_conf(dir.path(), "a { TargetAddress = h; TargetName = x }", 0o644);
        let c = Config::load(&p).unwrap();
        assert!(!c.has_secrets());
        assert_eq!(c.path(), p.as_path());
        // A global secret counts too.
        let p = write_conf(dir.path(), "chapSecret = abcdefabcdef\n", 0o644);
        assert!(Config::load(&p).is_err());
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.conf");
        let msg = Config::load(&missing).unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!(
                "{}: cannot read the config file",
                missing.display()
            )),
            "{msg}"
        );
        let p = write_conf(dir.path(), "a {\n  Colour = red\n}", 0o600);
        let msg = Config::load(&p).unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!("{}:2: unknown key", p.display())),
            "{msg}"
        );
    }
}
