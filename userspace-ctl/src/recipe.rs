//! The login "recipe": everything `iscsictl daemon` needs to log in to the same
//! target again after the kernel lost the connection (portal, names, CHAP
//! credentials and algorithms, digests, the operational offer, timeouts).
//!
//! `iscsictl login` encodes it and passes it to ADD_SESSION; the kernel keeps it
//! as an opaque blob and hands it back with every relogin event. That way the
//! daemon needs no config file and re-logs in with exactly what the user asked
//! for, even for sessions made from the command line.
//!
//! Format: iscsi-proto's text codec (NUL-terminated `key=value` records, RFC 7143
//! §6.1 key syntax), [`VERSION_KEY`] first, at most [`uapi::RECIPE_MAX`] bytes.
//! Secrets are base64 binary values (`0b…`); since a text value holds at most
//! 255 bytes, a long secret continues in `ChapSecret.2`, `ChapSecret.3`, … The
//! decoder is strict: unknown or repeated keys, a missing required key or another
//! version are errors, because a half-understood recipe would log in differently
//! from the original login. The encoded bytes and every decoded secret are wiped
//! on drop (the recipe holds CHAP secrets).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use iscsi_proto::text::{self, TextError, TextWriter, MAX_VALUE_LEN};
use iscsi_proto::uapi;
use zeroize::Zeroizing;

use crate::cli::MAX_TIMEOUT_SECS;
use crate::cli::{parse_iface, parse_initiator_address};
use crate::names::{IscsiName, TargetName};
use crate::netns::{NetNs, NetNsId};
use crate::params::{
    parse_connections, parse_queue_depth, ChapAlgs, Connections, Digest, Param, SessionType,
};
use crate::plan::{Auth, ChapCredentials, LoginRequest, MutualChap};
use crate::portal::Portal;
use crate::secret::Secret;
use crate::session::Session;
use crate::transport::Source;

/// The first key of every recipe; its value is the format version.
pub const VERSION_KEY: &str = "RecipeVersion";
/// The format version this iscsictl writes and reads.
pub const VERSION: u64 = 1;
/// Secret bytes per record: 252 base64 characters plus "0b" fill a 255-byte value.
const SECRET_CHUNK: usize = (MAX_VALUE_LEN - 2) / 4 * 3;

/// Everything needed to log in again. Only Normal sessions have one: the kernel
/// never runs Discovery sessions.
#[derive(Debug, Clone)]
pub struct Recipe {
    /// The config block the login came from, for log lines.
    pub nickname: Option<String>,
    pub target_name: TargetName,
    pub initiator_name: IscsiName,
    /// The portal as the user gave it (a host name is resolved again, redirects
    /// are followed again).
    pub portal: Portal,
    /// The address the original login ended at (after resolution and any
    /// permanent redirect; never a temporary one's): the fallback when the
    /// portal as given does not answer.
    pub address: Option<SocketAddr>,
    /// The TargetPortalGroupTag the first portal tried (`moved`, else `portal`)
    /// must answer with: given by the user, or learned at the first login.
    pub portal_group_tag: Option<u16>,
    /// Where a permanent redirect (0x0102) sent the original login: re-logins
    /// go there first. Temporary redirects are never recorded.
    pub moved: Option<Portal>,
    /// Interface / address to connect from.
    pub source: Source,
    /// The network namespace the login ran in (None: recipes of older iscsictl,
    /// treated as the daemon's own).
    pub netns: Option<NetNs>,
    pub auth: Auth,
    pub header_digest: Digest,
    pub data_digest: Digest,
    pub queue_depth: Option<u16>,
    /// Connections: at `iscsictl login`, the count wanted (asked for or the
    /// default); in the recipe handed to the kernel, the session's lanes, so
    /// that a re-login offers what the daemon logs in. `None` for one, so that
    /// a single-connection recipe stays what older daemons decode.
    pub connections: Option<u16>,
    /// `--param` keys, in order.
    pub params: Vec<Param>,
    pub connect_timeout: Duration,
    pub login_timeout: Duration,
}

/// Why a recipe could not be written or read. Never quotes a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipeError {
    #[error("the login recipe is {len} bytes, more than the kernel keeps ({max})")]
    TooLarge { len: usize, max: usize },
    #[error("the login recipe is malformed: {0}")]
    Text(TextError),
    #[error("the login recipe does not start with {VERSION_KEY}")]
    NoVersion,
    #[error("login recipe format {0:?} is not understood (this iscsictl reads {VERSION})")]
    Version(String),
    #[error("the login recipe has an unknown key {0:?}")]
    UnknownKey(String),
    #[error("the login recipe has {0} twice")]
    DuplicateKey(String),
    #[error("the login recipe lacks {0}")]
    Missing(&'static str),
    #[error("the login recipe's {key} is invalid: {reason}")]
    BadValue { key: String, reason: String },
    #[error("no login recipe for a {0} session: only Normal sessions are recovered")]
    NotNormal(SessionType),
}

impl From<TextError> for RecipeError {
    fn from(e: TextError) -> Self {
        match e {
            TextError::BufferFull { needed, .. } => RecipeError::TooLarge {
                len: needed,
                max: uapi::RECIPE_MAX as usize,
            },
            e => RecipeError::Text(e),
        }
    }
}

impl Recipe {
    /// The recipe of a planned login that ended at `address`.
    pub fn from_request(
        r: &LoginRequest,
        address: Option<SocketAddr>,
    ) -> Result<Recipe, RecipeError> {
        let target_name = match (r.session_type, &r.target_name) {
            (SessionType::Normal, Some(t)) => t.clone(),
            (SessionType::Normal, None) => return Err(RecipeError::Missing("TargetName")),
            (other, _) => return Err(RecipeError::NotNormal(other)),
        };
        Ok(Recipe {
            nickname: r.nickname.clone(),
            target_name,
            initiator_name: r.initiator_name.clone(),
            portal: r.portal.clone(),
            address,
            portal_group_tag: r.portal_group_tag,
            moved: None,
            source: r.source.clone(),
            netns: None,
            auth: r.auth.clone(),
            header_digest: r.header_digest,
            data_digest: r.data_digest,
            queue_depth: r.queue_depth,
            connections: Some(r.connections.count()).filter(|&n| n > 1),
            params: r.params.clone(),
            connect_timeout: r.connect_timeout,
            login_timeout: r.login_timeout,
        })
    }

    /// The recipe of the login `r` that ended in `s`, made in namespace `netns`:
    /// what redirects taught (a permanent one is remembered, a temporary one
    /// not) and the portal group tag to expect next time.
    pub fn from_login(
        r: &LoginRequest,
        s: &Session,
        netns: Option<NetNs>,
    ) -> Result<Recipe, RecipeError> {
        let learned = s.outcome.target_portal_group_tag;
        let redirected = s.portal != r.portal;
        let mut rc = Recipe::from_request(r, (!s.temporary).then(|| s.conn.peer()))?;
        rc.moved = s.moved.clone();
        rc.portal_group_tag = match (redirected, &s.moved, s.temporary) {
            // Straight in: the tag given, else the one the target answered.
            (false, _, _) => r.portal_group_tag.or(learned),
            // Ended where a permanent redirect sent us: that portal's tag.
            (true, Some(_), false) => learned,
            // Only temporary redirects: the original portal, whose tag the user
            // may have given.
            (true, None, _) => r.portal_group_tag,
            // Permanent, then temporary: the moved-to portal's tag is unknown.
            (true, Some(_), true) => None,
        };
        rc.netns = netns;
        Ok(rc)
    }

    /// The portals a re-login tries, in order: where a permanent redirect moved
    /// the target, the portal as given, the address the first login ended at
    /// (each once), with the portal group tag each must answer with (known
    /// only for the first).
    pub fn portals(&self) -> Vec<(Portal, Option<u16>)> {
        let mut v: Vec<(Portal, Option<u16>)> = Vec::new();
        let fallback = self
            .address
            .and_then(|a| Portal::parse(&a.to_string()).ok());
        for p in self
            .moved
            .iter()
            .cloned()
            .chain(std::iter::once(self.portal.clone()))
            .chain(fallback)
        {
            if !v.iter().any(|(q, _)| *q == p) {
                let tag = if v.is_empty() {
                    self.portal_group_tag
                } else {
                    None
                };
                v.push((p, tag));
            }
        }
        v
    }

    /// The login request that repeats the original login at `portal` (which
    /// may differ from the recipe's: see [`Self::portals`]), expecting portal
    /// group `tag`.
    pub fn request(&self, portal: Portal, tag: Option<u16>) -> LoginRequest {
        LoginRequest {
            nickname: self.nickname.clone(),
            target_name: Some(self.target_name.clone()),
            portal,
            portal_group_tag: tag,
            source: self.source.clone(),
            initiator_name: self.initiator_name.clone(),
            session_type: SessionType::Normal,
            auth: self.auth.clone(),
            header_digest: self.header_digest,
            data_digest: self.data_digest,
            queue_depth: self.queue_depth,
            // What the session ran on: a count asked for, so that a target
            // now allowing fewer is a notice in the daemon's log.
            connections: Connections::Asked(self.connections.unwrap_or(1)),
            params: self.params.clone(),
            connect_timeout: self.connect_timeout,
            login_timeout: self.login_timeout,
            lun_scan: false,
            dry_run: false,
            recovery: Default::default(),
        }
    }

    /// The bytes for ADD_SESSION; wiped when dropped.
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>, RecipeError> {
        let max = uapi::RECIPE_MAX as usize;
        // One allocation of the final capacity: nothing reallocates, so no unwiped
        // copy of a secret is left behind in freed memory.
        let mut buf = Zeroizing::new(vec![0u8; max]);
        let len = {
            let mut w = TextWriter::new(&mut buf);
            w.push_u64(VERSION_KEY, VERSION)?;
            if let Some(n) = &self.nickname {
                push(&mut w, "Nickname", n)?;
            }
            push(&mut w, "TargetName", self.target_name.as_str())?;
            push(&mut w, "InitiatorName", self.initiator_name.as_str())?;
            push(&mut w, "Portal", &self.portal.to_string())?;
            if let Some(a) = self.address {
                push(&mut w, "PortalAddress", &a.to_string())?;
            }
            if let Some(t) = self.portal_group_tag {
                w.push_u64("PortalGroupTag", t.into())?;
            }
            if let Some(m) = &self.moved {
                push(&mut w, "MovedTo", &m.to_string())?;
            }
            if let Some(i) = &self.source.iface {
                push(&mut w, "Interface", i)?;
            }
            if let Some(a) = self.source.address {
                push(&mut w, "InitiatorAddress", &a.to_string())?;
            }
            if let Some(ns) = &self.netns {
                push(&mut w, "NetNs", &ns.id.to_string())?;
                if let Some(p) = &ns.path {
                    let p = p.to_str().ok_or_else(|| RecipeError::BadValue {
                        key: "NetNsPath".into(),
                        reason: "the path is not UTF-8".into(),
                    })?;
                    push(&mut w, "NetNsPath", p)?;
                }
            }
            match &self.auth {
                Auth::None => push(&mut w, "AuthMethod", "None")?,
                Auth::Chap(c) => {
                    push(&mut w, "AuthMethod", "CHAP")?;
                    push(&mut w, "ChapName", &c.name)?;
                    push_secret(&mut w, "ChapSecret", &c.secret)?;
                    push(&mut w, "ChapAlgs", &c.algs.to_string())?;
                    if let Some(m) = &c.mutual {
                        push(&mut w, "MutualName", &m.name)?;
                        push_secret(&mut w, "MutualSecret", &m.secret)?;
                    }
                }
            }
            push(&mut w, "HeaderDigest", &self.header_digest.to_string())?;
            push(&mut w, "DataDigest", &self.data_digest.to_string())?;
            if let Some(q) = self.queue_depth {
                w.push_u64("QueueDepth", q.into())?;
            }
            // Only when > 1: an older daemon's strict decoder refuses the key.
            if let Some(n) = self.connections.filter(|&n| n > 1) {
                w.push_u64("Connections", n.into())?;
            }
            for p in &self.params {
                push(&mut w, "Param", &p.to_string())?;
            }
            w.push_u64("ConnectTimeout", self.connect_timeout.as_secs())?;
            w.push_u64("LoginTimeout", self.login_timeout.as_secs())?;
            w.len()
        };
        buf.truncate(len);
        Ok(buf)
    }

    /// Reads a recipe the kernel handed back.
    pub fn decode(data: &[u8]) -> Result<Recipe, RecipeError> {
        let max = uapi::RECIPE_MAX as usize;
        if data.len() > max {
            return Err(RecipeError::TooLarge {
                len: data.len(),
                max,
            });
        }
        let mut pairs = text::pairs(data);
        match pairs.next() {
            Some(Ok((VERSION_KEY, v))) => {
                if text::parse_number(v).ok() != Some(VERSION) {
                    return Err(RecipeError::Version(v.chars().take(32).collect()));
                }
            }
            Some(Err(e)) => return Err(e.into()),
            _ => return Err(RecipeError::NoVersion),
        }
        let mut f = Fields::default();
        for pair in pairs {
            let (key, value) = pair?;
            f.set(key, value)?;
        }
        f.finish()
    }
}

fn push(w: &mut TextWriter<'_>, key: &str, value: &str) -> Result<(), RecipeError> {
    w.push(key, value).map_err(|e| match e {
        TextError::ValueTooLong { len, max, .. } => RecipeError::BadValue {
            key: key.to_owned(),
            reason: format!("{len} bytes, a recipe value holds at most {max}"),
        },
        e => e.into(),
    })
}

/// `key`, `key.2`, `key.3`, … each with at most [`SECRET_CHUNK`] bytes.
fn push_secret(w: &mut TextWriter<'_>, key: &str, secret: &Secret) -> Result<(), RecipeError> {
    for (i, chunk) in secret.expose().chunks(SECRET_CHUNK).enumerate() {
        if i == 0 {
            w.push_base64(key, chunk)?;
        } else {
            w.push_base64(&format!("{key}.{}", i + 1), chunk)?;
        }
    }
    Ok(())
}

/// A secret being read back, chunk by chunk.
#[derive(Default)]
struct SecretParts {
    bytes: Zeroizing<Vec<u8>>,
    parts: usize,
}

impl SecretParts {
    /// Adds the chunk numbered `index` (1 for the bare key), which must be next.
    fn add(&mut self, key: &str, index: usize, value: &str) -> Result<(), RecipeError> {
        if index != self.parts + 1 {
            return Err(if index <= self.parts {
                RecipeError::DuplicateKey(key.to_owned())
            } else {
                RecipeError::BadValue {
                    key: key.to_owned(),
                    reason: format!("part {index} follows part {}", self.parts),
                }
            });
        }
        let bad = |reason: String| RecipeError::BadValue {
            key: key.to_owned(),
            reason,
        };
        let len = text::binary_len(value).map_err(|e| bad(e.to_string()))?;
        let mut chunk = Zeroizing::new(vec![0u8; len]);
        let n = text::decode_binary(value, &mut chunk).map_err(|e| bad(e.to_string()))?;
        // Reserve first so extending never reallocates (and leaves a copy behind).
        let mut all = Zeroizing::new(Vec::with_capacity(self.bytes.len() + n));
        all.extend_from_slice(&self.bytes);
        all.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        self.bytes = all;
        self.parts = index;
        Ok(())
    }

    fn secret(mut self, key: &'static str) -> Result<Option<Secret>, RecipeError> {
        if self.parts == 0 {
            return Ok(None);
        }
        // Moves the bytes out (no copy); Secret wipes them from now on.
        Secret::from_bytes(std::mem::take(&mut *self.bytes))
            .map(Some)
            .map_err(|e| RecipeError::BadValue {
                key: key.to_owned(),
                reason: e.to_string(),
            })
    }
}

/// Splits `ChapSecret.3` into ("ChapSecret", 3); the bare key is part 1.
fn secret_part(key: &str) -> Option<(&'static str, usize)> {
    for base in ["ChapSecret", "MutualSecret"] {
        if key == base {
            return Some((base, 1));
        }
        if let Some(n) = key.strip_prefix(base).and_then(|r| r.strip_prefix('.')) {
            // "2", not "02" or "+2": one spelling per part.
            if n.starts_with(|c: char| c.is_ascii_digit() && c != '0') {
                if let Ok(i) = n.parse::<usize>() {
                    if i >= 2 {
                        return Some((base, i));
                    }
                }
            }
        }
    }
    None
}

#[derive(Default)]
struct Fields {
    nickname: Option<String>,
    target_name: Option<TargetName>,
    initiator_name: Option<IscsiName>,
    portal: Option<Portal>,
    address: Option<SocketAddr>,
    portal_group_tag: Option<u16>,
    moved: Option<Portal>,
    iface: Option<String>,
    initiator_address: Option<IpAddr>,
    netns: Option<NetNsId>,
    netns_path: Option<PathBuf>,
    auth_method: Option<String>,
    chap_name: Option<String>,
    chap_secret: SecretParts,
    chap_algs: Option<ChapAlgs>,
    mutual_name: Option<String>,
    mutual_secret: SecretParts,
    header_digest: Option<Digest>,
    data_digest: Option<Digest>,
    queue_depth: Option<u16>,
    connections: Option<u16>,
    params: Vec<Param>,
    connect_timeout: Option<Duration>,
    login_timeout: Option<Duration>,
}

fn once<T>(slot: &mut Option<T>, key: &str, value: Result<T, String>) -> Result<(), RecipeError> {
    if slot.is_some() {
        return Err(RecipeError::DuplicateKey(key.to_owned()));
    }
    let v = value.map_err(|reason| RecipeError::BadValue {
        key: key.to_owned(),
        reason,
    })?;
    *slot = Some(v);
    Ok(())
}

fn seconds(value: &str) -> Result<Duration, String> {
    match text::parse_number(value) {
        Ok(n) if (1..=MAX_TIMEOUT_SECS).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(format!("expected whole seconds, 1..={MAX_TIMEOUT_SECS}")),
    }
}

fn nonempty(value: &str) -> Result<String, String> {
    if value.is_empty() {
        Err("it is empty".into())
    } else {
        Ok(value.to_owned())
    }
}

impl Fields {
    fn set(&mut self, key: &str, v: &str) -> Result<(), RecipeError> {
        let name_err = |e: crate::names::NameError| e.to_string();
        match key {
            VERSION_KEY => Err(RecipeError::DuplicateKey(key.to_owned())),
            "Nickname" => once(&mut self.nickname, key, nonempty(v)),
            "TargetName" => once(
                &mut self.target_name,
                key,
                TargetName::parse(v).map_err(name_err),
            ),
            "InitiatorName" => once(
                &mut self.initiator_name,
                key,
                IscsiName::parse(v).map_err(name_err),
            ),
            "Portal" => once(
                &mut self.portal,
                key,
                Portal::parse(v).map_err(|e| e.reason),
            ),
            "PortalAddress" => once(
                &mut self.address,
                key,
                v.parse::<SocketAddr>().map_err(|e| e.to_string()),
            ),
            "PortalGroupTag" => once(
                &mut self.portal_group_tag,
                key,
                text::parse_number(v)
                    .ok()
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or_else(|| "expected 0..65535".to_owned()),
            ),
            "MovedTo" => once(&mut self.moved, key, Portal::parse(v).map_err(|e| e.reason)),
            "Interface" => once(&mut self.iface, key, parse_iface(v)),
            "InitiatorAddress" => {
                once(&mut self.initiator_address, key, parse_initiator_address(v))
            }
            "NetNs" => once(&mut self.netns, key, NetNsId::parse(v)),
            "NetNsPath" => once(
                &mut self.netns_path,
                key,
                if v.starts_with('/') {
                    Ok(PathBuf::from(v))
                } else {
                    Err("not an absolute path".into())
                },
            ),
            "AuthMethod" => once(
                &mut self.auth_method,
                key,
                match v {
                    "None" | "CHAP" => Ok(v.to_owned()),
                    _ => Err(format!("{v:?} is neither None nor CHAP")),
                },
            ),
            "ChapName" => once(&mut self.chap_name, key, nonempty(v)),
            "MutualName" => once(&mut self.mutual_name, key, nonempty(v)),
            "ChapAlgs" => once(&mut self.chap_algs, key, ChapAlgs::parse(v)),
            "HeaderDigest" => once(&mut self.header_digest, key, Digest::parse(v)),
            "DataDigest" => once(&mut self.data_digest, key, Digest::parse(v)),
            "QueueDepth" => once(&mut self.queue_depth, key, parse_queue_depth(v)),
            "Connections" => once(&mut self.connections, key, parse_connections(v)),
            "ConnectTimeout" => once(&mut self.connect_timeout, key, seconds(v)),
            "LoginTimeout" => once(&mut self.login_timeout, key, seconds(v)),
            "Param" => {
                let p = Param::parse(v).map_err(|reason| RecipeError::BadValue {
                    key: key.to_owned(),
                    reason,
                })?;
                if self.params.iter().any(|q| q.key == p.key) {
                    return Err(RecipeError::DuplicateKey(format!("Param {}", p.key)));
                }
                self.params.push(p);
                Ok(())
            }
            _ => match secret_part(key) {
                Some(("ChapSecret", i)) => self.chap_secret.add(key, i, v),
                Some((_, i)) => self.mutual_secret.add(key, i, v),
                None => Err(RecipeError::UnknownKey(key.chars().take(64).collect())),
            },
        }
    }

    fn finish(self) -> Result<Recipe, RecipeError> {
        let chap_secret = self.chap_secret.secret("ChapSecret")?;
        let mutual_secret = self.mutual_secret.secret("MutualSecret")?;
        let inconsistent = |reason: &str| RecipeError::BadValue {
            key: "AuthMethod".into(),
            reason: reason.into(),
        };
        let auth = match self.auth_method.as_deref() {
            None => return Err(RecipeError::Missing("AuthMethod")),
            Some("None") => {
                if self.chap_name.is_some()
                    || chap_secret.is_some()
                    || self.chap_algs.is_some()
                    || self.mutual_name.is_some()
                    || mutual_secret.is_some()
                {
                    return Err(inconsistent("None, but CHAP credentials are present"));
                }
                Auth::None
            }
            Some(_) => {
                let mutual = match (self.mutual_name, mutual_secret) {
                    (Some(name), Some(secret)) => Some(MutualChap { name, secret }),
                    (None, None) => None,
                    (Some(_), None) => return Err(RecipeError::Missing("MutualSecret")),
                    (None, Some(_)) => return Err(RecipeError::Missing("MutualName")),
                };
                Auth::Chap(ChapCredentials {
                    name: self.chap_name.ok_or(RecipeError::Missing("ChapName"))?,
                    secret: chap_secret.ok_or(RecipeError::Missing("ChapSecret"))?,
                    algs: self.chap_algs.ok_or(RecipeError::Missing("ChapAlgs"))?,
                    mutual,
                })
            }
        };
        Ok(Recipe {
            nickname: self.nickname,
            target_name: self.target_name.ok_or(RecipeError::Missing("TargetName"))?,
            initiator_name: self
                .initiator_name
                .ok_or(RecipeError::Missing("InitiatorName"))?,
            portal: self.portal.ok_or(RecipeError::Missing("Portal"))?,
            address: self.address,
            portal_group_tag: self.portal_group_tag,
            moved: self.moved,
            source: Source {
                iface: self.iface,
                address: self.initiator_address,
            },
            netns: match (self.netns, self.netns_path) {
                (Some(id), path) => Some(NetNs { id, path }),
                (None, None) => None,
                (None, Some(_)) => return Err(RecipeError::Missing("NetNs")),
            },
            auth,
            header_digest: self
                .header_digest
                .ok_or(RecipeError::Missing("HeaderDigest"))?,
            data_digest: self.data_digest.ok_or(RecipeError::Missing("DataDigest"))?,
            queue_depth: self.queue_depth,
            connections: self.connections.filter(|&n| n > 1),
            params: self.params,
            connect_timeout: self
                .connect_timeout
                .ok_or(RecipeError::Missing("ConnectTimeout"))?,
            login_timeout: self
                .login_timeout
                .ok_or(RecipeError::Missing("LoginTimeout"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::MAX_SECRET_LEN;

    fn secret(b: &[u8]) -> Secret {
        Secret::from_bytes(b.to_vec()).unwrap()
    }

    fn chap_recipe(mine: &[u8], theirs: Option<&[u8]>) -> Recipe {
        Recipe {
            nickname: Some("disk1".into()),
            target_name: TargetName::parse("iqn.2001-04.com.example:disk1").unwrap(),
            initiator_name: IscsiName::parse("iqn.2001-04.com.example:host").unwrap(),
            portal: Portal::parse("storage.example").unwrap(),
            address: Some("[2001:db8::7]:3261".parse().unwrap()),
            portal_group_tag: Some(7),
            moved: Some(Portal::parse("[fe80::2%eth1]:3262").unwrap()),
            source: Source {
                iface: Some("eth1".into()),
                address: Some("2001:db8::9".parse().unwrap()),
            },
            netns: Some(NetNs {
                id: NetNsId {
                    dev: 4,
                    ino: 4026532281,
                },
                path: Some("/run/netns/t".into()),
            }),
            auth: Auth::Chap(ChapCredentials {
                name: "alice user".into(),
                secret: secret(mine),
                algs: ChapAlgs::parse("sha256,md5").unwrap(),
                mutual: theirs.map(|t| MutualChap {
                    name: "bob".into(),
                    secret: secret(t),
                }),
            }),
            header_digest: Digest::Crc32c,
            data_digest: Digest::None,
            queue_depth: Some(32),
            connections: Some(4),
            params: vec![
                Param::parse("MaxBurstLength=1048576").unwrap(),
                Param::parse("ImmediateData=No").unwrap(),
            ],
            connect_timeout: Duration::from_secs(5),
            login_timeout: Duration::from_secs(30),
        }
    }

    fn plain() -> Recipe {
        let mut r = chap_recipe(b"x", None);
        r.auth = Auth::None;
        r.nickname = None;
        r.address = None;
        r.queue_depth = None;
        r.connections = None;
        r.params.clear();
        r.portal_group_tag = None;
        r.moved = None;
        r.source = Source::default();
        r.netns = None;
        r
    }

    /// Every field, compared through Debug (secrets print redacted, so they are
    /// compared separately).
    fn same(a: &Recipe, b: &Recipe) {
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        let secrets = |r: &Recipe| match &r.auth {
            Auth::Chap(c) => (
                c.secret.expose().to_vec(),
                c.mutual.as_ref().map(|m| m.secret.expose().to_vec()),
            ),
            Auth::None => (Vec::new(), None),
        };
        assert_eq!(secrets(a), secrets(b));
    }

    fn text(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in pairs {
            out.extend_from_slice(format!("{k}={v}\0").as_bytes());
        }
        out
    }

    fn minimal() -> Vec<(&'static str, &'static str)> {
        vec![
            (VERSION_KEY, "1"),
            ("TargetName", "iqn.2001-04.com.example:t"),
            ("InitiatorName", "iqn.2001-04.com.example:i"),
            ("Portal", "127.0.0.1:3260"),
            ("AuthMethod", "None"),
            ("HeaderDigest", "None"),
            ("DataDigest", "None"),
            ("ConnectTimeout", "15"),
            ("LoginTimeout", "15"),
        ]
    }

    #[test]
    fn round_trip_without_auth() {
        let r = plain();
        let bytes = r.encode().unwrap();
        assert!(bytes.starts_with(b"RecipeVersion=1\0TargetName=iqn."));
        same(&Recipe::decode(&bytes).unwrap(), &r);
    }

    #[test]
    fn round_trip_with_mutual_chap_and_binary_secrets() {
        // Secrets are raw bytes (secret files may hold anything, NUL included).
        let r = chap_recipe(b"\0\x01secret=;\xff", Some(b"another one\n"));
        let bytes = r.encode().unwrap();
        let back = Recipe::decode(&bytes).unwrap();
        same(&back, &r);
        // The secret is not in the recipe as plain text.
        assert!(!bytes.windows(11).any(|w| w == b"another one"));
        // The request repeats the login.
        let req = back.request(back.portal.clone(), None);
        assert_eq!(req.portal.to_string(), "storage.example:3260");
        assert_eq!(req.queue_depth, Some(32));
        assert_eq!(req.source.iface.as_deref(), Some("eth1"));
        assert!(!req.dry_run);
        let s = String::from_utf8_lossy(&bytes);
        for want in [
            "\0PortalGroupTag=7\0",
            "\0MovedTo=[fe80::2%eth1]:3262\0",
            "\0Interface=eth1\0",
            "\0InitiatorAddress=2001:db8::9\0",
            "\0NetNs=4:4026532281\0",
            "\0NetNsPath=/run/netns/t\0",
        ] {
            assert!(s.contains(want), "{want:?} not in {s:?}");
        }
    }

    #[test]
    fn connections_only_when_more_than_one() {
        let one = plain();
        let bytes = one.encode().unwrap();
        assert!(!bytes.windows(11).any(|w| w == b"Connections"));
        // 1 is written as nothing: the recipe an older iscsictl wrote.
        let mut explicit = plain();
        explicit.connections = Some(1);
        assert_eq!(*explicit.encode().unwrap(), *bytes);
        assert_eq!(Recipe::decode(&bytes).unwrap().connections, None);
        let mut four = plain();
        four.connections = Some(4);
        let b4 = four.encode().unwrap();
        let s = String::from_utf8_lossy(&b4);
        assert!(s.contains("\0Connections=4\0"), "{s:?}");
        let back = Recipe::decode(&b4).unwrap();
        assert_eq!(back.connections, Some(4));
        assert_eq!(
            back.request(back.portal.clone(), None).connections,
            Connections::Asked(4)
        );
        // No Connections: the re-login asks for one, as before MC/S.
        assert_eq!(
            one.request(one.portal.clone(), None).connections,
            Connections::Asked(1)
        );
        // A login's count becomes the recipe's only when more than one,
        // whether asked for or the default.
        let mut req = one.request(one.portal.clone(), None);
        for (c, want) in [
            (Connections::Default(1), None),
            (Connections::Asked(1), None),
            (Connections::Default(2), Some(2)),
            (Connections::Asked(4), Some(4)),
        ] {
            req.connections = c;
            assert_eq!(Recipe::from_request(&req, None).unwrap().connections, want);
        }
        // Out of range or twice: refused like any bad value.
        let bad =
            String::from_utf8_lossy(&bytes).replace("LoginTimeout", "Connections=17\0LoginTimeout");
        assert!(Recipe::decode(bad.as_bytes()).is_err());
        let twice = s.replace("Connections=4", "Connections=4\0Connections=2");
        assert!(Recipe::decode(twice.as_bytes()).is_err());
    }

    #[test]
    fn relogin_portal_order() {
        // Moved first (with the tag), then the portal as given, then the address.
        let r = chap_recipe(b"x", None);
        let got: Vec<(String, Option<u16>)> = r
            .portals()
            .into_iter()
            .map(|(p, t)| (p.to_string(), t))
            .collect();
        assert_eq!(
            got,
            [
                ("[fe80::2%eth1]:3262".to_owned(), Some(7)),
                ("storage.example:3260".to_owned(), None),
                ("[2001:db8::7]:3261".to_owned(), None),
            ]
        );
        // Nothing moved: the portal carries the tag; no duplicates.
        let mut r = plain();
        r.portal_group_tag = Some(1);
        r.address = Some("127.0.0.1:3260".parse().unwrap());
        r.portal = Portal::parse("127.0.0.1").unwrap();
        let got = r.portals();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, Some(1));
    }

    #[test]
    fn new_keys_are_checked() {
        let mut v = minimal();
        v.push(("NetNsPath", "/run/netns/t"));
        assert_eq!(
            Recipe::decode(&text(&v)).unwrap_err(),
            RecipeError::Missing("NetNs")
        );
        for (k, bad) in [
            ("PortalGroupTag", "65536"),
            ("MovedTo", "[fe80::1]:3260"),
            ("Interface", "a/b"),
            ("InitiatorAddress", "host"),
            ("NetNs", "x"),
            ("NetNsPath", "run/netns/t"),
        ] {
            let mut v = minimal();
            v.push((k, bad));
            let e = Recipe::decode(&text(&v)).unwrap_err();
            assert!(
                matches!(e, RecipeError::BadValue { ref key, .. } if key == k),
                "{k}: {e}"
            );
        }
    }

    #[test]
    fn longest_secrets_fit_in_parts() {
        let mine: Vec<u8> = (0..MAX_SECRET_LEN).map(|i| i as u8).collect();
        let theirs: Vec<u8> = (0..MAX_SECRET_LEN).map(|i| (i * 7) as u8).collect();
        let r = chap_recipe(&mine, Some(&theirs));
        let bytes = r.encode().unwrap();
        assert!(bytes.len() <= uapi::RECIPE_MAX as usize, "{}", bytes.len());
        let s = String::from_utf8_lossy(&bytes);
        assert!(s.contains("\0ChapSecret.6=0b"), "{s}");
        assert!(!s.contains("ChapSecret.7"), "{s}");
        same(&Recipe::decode(&bytes).unwrap(), &r);
        // A secret of exactly one chunk takes one record.
        let r = chap_recipe(&mine[..SECRET_CHUNK], None);
        let bytes = r.encode().unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("ChapSecret.2"));
        same(&Recipe::decode(&bytes).unwrap(), &r);
    }

    #[test]
    fn too_large() {
        let mut r = chap_recipe(&[7; MAX_SECRET_LEN], Some(&[8; MAX_SECRET_LEN]));
        for i in 0..40 {
            r.params
                .push(Param::parse(&format!("X-vendor-key-{i}={}", "v".repeat(40))).unwrap());
        }
        assert!(matches!(
            r.encode(),
            Err(RecipeError::TooLarge { max: 4096, .. })
        ));
        let big = vec![b'a'; uapi::RECIPE_MAX as usize + 1];
        assert_eq!(
            Recipe::decode(&big).unwrap_err(),
            RecipeError::TooLarge {
                len: 4097,
                max: 4096
            }
        );
        // A value beyond the codec's 255 bytes is named.
        let mut r = plain();
        r.nickname = Some("n".repeat(300));
        let e = r.encode().unwrap_err();
        assert!(
            e.to_string().contains("Nickname is invalid: 300 bytes"),
            "{e}"
        );
    }

    #[test]
    fn strict_decoding() {
        let ok = minimal();
        Recipe::decode(&text(&ok)).unwrap();
        let with = |extra: (&'static str, &'static str)| {
            let mut v = ok.clone();
            v.push(extra);
            Recipe::decode(&text(&v)).unwrap_err()
        };
        let without = |key: &str| {
            let v: Vec<_> = ok.iter().copied().filter(|(k, _)| *k != key).collect();
            Recipe::decode(&text(&v)).unwrap_err()
        };
        assert_eq!(
            with(("Colour", "red")),
            RecipeError::UnknownKey("Colour".into())
        );
        assert_eq!(
            with(("Portal", "h")),
            RecipeError::DuplicateKey("Portal".into())
        );
        assert_eq!(
            with((VERSION_KEY, "1")),
            RecipeError::DuplicateKey(VERSION_KEY.into())
        );
        assert_eq!(without("TargetName"), RecipeError::Missing("TargetName"));
        assert_eq!(
            without("LoginTimeout"),
            RecipeError::Missing("LoginTimeout")
        );
        assert_eq!(without("AuthMethod"), RecipeError::Missing("AuthMethod"));
        assert_eq!(without(VERSION_KEY), RecipeError::NoVersion);
        assert_eq!(Recipe::decode(b"").unwrap_err(), RecipeError::NoVersion);
        let mut v = ok.clone();
        v[0] = (VERSION_KEY, "2");
        let e = Recipe::decode(&text(&v)).unwrap_err();
        assert_eq!(e, RecipeError::Version("2".into()));
        assert!(e.to_string().contains("this iscsictl reads 1"), "{e}");
        assert!(matches!(
            with(("ConnectTimeout", "0")),
            RecipeError::DuplicateKey(_)
        ));
        let e = with(("QueueDepth", "0"));
        assert!(
            matches!(e, RecipeError::BadValue { ref key, .. } if key == "QueueDepth"),
            "{e}"
        );
        let e = with(("ChapSecret", "0bc2VjcmV0"));
        assert!(e.to_string().contains("None, but CHAP"), "{e}");
        // Not NUL-terminated, or not text at all.
        let mut t = text(&ok);
        t.extend_from_slice(b"DataDigest=None");
        assert!(matches!(
            Recipe::decode(&t).unwrap_err(),
            RecipeError::Text(TextError::MissingNul { .. })
        ));
    }

    #[test]
    fn chap_parts_and_consistency() {
        let mut ok = minimal();
        ok[4] = ("AuthMethod", "CHAP");
        ok.extend([("ChapName", "u"), ("ChapAlgs", "md5")]);
        let decode = |extra: &[(&'static str, &'static str)]| {
            let mut v = ok.clone();
            v.extend_from_slice(extra);
            Recipe::decode(&text(&v))
        };
        let r = decode(&[("ChapSecret", "0x6162"), ("ChapSecret.2", "0b Yw==")]);
        assert!(matches!(r, Err(RecipeError::BadValue { .. })));
        let r = decode(&[("ChapSecret", "0x6162"), ("ChapSecret.2", "0bYw==")]).unwrap();
        let Auth::Chap(c) = &r.auth else { panic!() };
        assert_eq!(c.secret.expose(), b"abc");
        assert_eq!(
            decode(&[("ChapSecret.2", "0x61")]).unwrap_err().to_string(),
            "the login recipe's ChapSecret.2 is invalid: part 2 follows part 0"
        );
        assert_eq!(
            decode(&[("ChapSecret", "0x61"), ("ChapSecret", "0x61")]).unwrap_err(),
            RecipeError::DuplicateKey("ChapSecret".into())
        );
        assert_eq!(
            decode(&[("ChapSecret", "0x61"), ("ChapSecret.02", "0x61")]).unwrap_err(),
            RecipeError::UnknownKey("ChapSecret.02".into())
        );
        assert_eq!(decode(&[]).unwrap_err(), RecipeError::Missing("ChapSecret"));
        assert_eq!(
            decode(&[("ChapSecret", "0x61"), ("MutualName", "t")]).unwrap_err(),
            RecipeError::Missing("MutualSecret")
        );
        assert!(decode(&[("ChapSecret", "plain")]).is_err());
    }

    #[test]
    fn only_normal_sessions() {
        use crate::params::SessionType;
        let mut req = plain().request(Portal::parse("h").unwrap(), None);
        req.session_type = SessionType::Discovery;
        assert!(matches!(
            Recipe::from_request(&req, None),
            Err(RecipeError::NotNormal(SessionType::Discovery))
        ));
        req.session_type = SessionType::Normal;
        let r = Recipe::from_request(&req, "127.0.0.1:3260".parse().ok()).unwrap();
        assert_eq!(r.address.unwrap().to_string(), "127.0.0.1:3260");
    }
}
