//! Network namespaces: a session logged in from inside one (`ip netns exec t
//! iscsictl login …`, a container) must be logged in again from inside the same
//! one, although `iscsictl daemon` runs in the initial namespace: the portal may
//! only be reachable there, and its addresses may mean something else outside.
//!
//! `login` records the namespace's identity in the recipe: the device and inode
//! of `/proc/thread-self/ns/net` (what `ip netns identify` compares) and, when one
//! exists, the path of a bind mount of it under `/run/netns` (`ip netns add`).
//! The daemon finds the namespace again by that path (checked against the
//! identity, since a name can be reused for a new namespace), else by any
//! process living in it (`/proc/PID/ns/net`, e.g. a container's init), keeps
//! the file descriptor open so the namespace stays reachable for later
//! re-logins even after those processes are gone, and `setns()`s the re-login
//! thread into it before the socket is created. setns(CLONE_NEWNET) changes the
//! calling thread only, so the daemon's other threads stay where they are.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

/// Where `ip netns add` bind-mounts named namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// A network namespace's identity: the nsfs device and inode of its
/// `/proc/…/ns/net` link. Stable for the namespace's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetNsId {
    pub dev: u64,
    pub ino: u64,
}

impl NetNsId {
    /// Parses [`Display`](fmt::Display)'s `DEV:INO` (decimal).
    pub fn parse(s: &str) -> Result<NetNsId, String> {
        let bad = || format!("{s:?} is not DEV:INO");
        let (d, i) = s.split_once(':').ok_or_else(bad)?;
        let num = |x: &str| -> Result<u64, String> {
            if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            x.parse().map_err(|_| bad())
        };
        Ok(NetNsId {
            dev: num(d)?,
            ino: num(i)?,
        })
    }

    fn of_file(f: &File) -> std::io::Result<NetNsId> {
        let st = rustix::fs::fstat(f)?;
        Ok(NetNsId {
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }
}

impl fmt::Display for NetNsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.dev, self.ino)
    }
}

/// The namespace a session was logged in from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetNs {
    pub id: NetNsId,
    /// Its bind mount under /run/netns, when it has one.
    pub path: Option<PathBuf>,
}

/// The calling thread's network namespace.
pub fn current_id() -> std::io::Result<NetNsId> {
    NetNsId::of_file(&File::open("/proc/thread-self/ns/net")?)
}

/// The calling thread's namespace with its /run/netns name, if it has one.
pub fn current() -> std::io::Result<NetNs> {
    let id = current_id()?;
    Ok(NetNs {
        id,
        path: named_path(Path::new(NETNS_RUN_DIR), id),
    })
}

/// The entry of `dir` that is a bind mount of namespace `id`.
fn named_path(dir: &Path, id: NetNsId) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    paths
        .into_iter()
        .find(|p| File::open(p).and_then(|f| NetNsId::of_file(&f)).ok() == Some(id))
}

/// Why a namespace could not be entered.
#[derive(Debug, thiserror::Error)]
pub enum NetNsError {
    #[error(
        "the session's network namespace (net {id}) is gone: no bind mount under \
         /run/netns{path} and no process holds it any more"
    )]
    Gone { id: NetNsId, path: String },
    #[error("cannot enter the session's network namespace (net {id}): {reason}")]
    Enter { id: NetNsId, reason: String },
}

/// The daemon's namespace handles, one open file per namespace entered.
#[derive(Debug, Default)]
pub struct NetNsCache {
    open: Mutex<HashMap<NetNsId, File>>,
}

impl NetNsCache {
    /// Moves the calling thread into `ns` (nothing when it is there already).
    /// Only for threads that do nothing else afterwards: they stay there.
    pub fn enter(&self, ns: &NetNs) -> Result<(), NetNsError> {
        let enter_err = |reason: String| NetNsError::Enter { id: ns.id, reason };
        if current_id().map_err(|e| enter_err(e.to_string()))? == ns.id {
            return Ok(());
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let f = match open.entry(ns.id) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert(find(ns).ok_or_else(|| {
                NetNsError::Gone {
                    id: ns.id,
                    path: ns
                        .path
                        .as_ref()
                        .map(|p| format!(" (was {})", p.display()))
                        .unwrap_or_default(),
                }
            })?),
        };
        move_into_link_name_space(f.as_fd(), Some(LinkNameSpaceType::Network))
            .map_err(|e| enter_err(e.to_string()))
    }
}

/// Opens namespace `ns`: by its recorded path, then by another /run/netns
/// entry, then through any process in it. Every candidate is checked against
/// the identity.
fn find(ns: &NetNs) -> Option<File> {
    let check = |p: &Path| -> Option<File> {
        let f = File::open(p).ok()?;
        (NetNsId::of_file(&f).ok()? == ns.id).then_some(f)
    };
    if let Some(f) = ns.path.as_deref().and_then(check) {
        return Some(f);
    }
    if let Some(f) = named_path(Path::new(NETNS_RUN_DIR), ns.id).and_then(|p| check(&p)) {
        return Some(f);
    }
    let procs = std::fs::read_dir("/proc").ok()?;
    procs
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .find_map(|e| check(&e.path().join("ns/net")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_round_trips() {
        let id = NetNsId {
            dev: 4,
            ino: 4026531840,
        };
        assert_eq!(id.to_string(), "4:4026531840");
        assert_eq!(NetNsId::parse("4:4026531840").unwrap(), id);
        for bad in [
            "",
            "4",
            ":5",
            "4:",
            "a:1",
            "+4:1",
            "4:1:2",
            "99999999999999999999:1",
        ] {
            assert!(NetNsId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_current_namespace_is_entered_trivially() {
        let me = current().unwrap();
        NetNsCache::default().enter(&me).unwrap();
        // A namespace nobody holds is reported as gone, naming the old path.
        let gone = NetNs {
            id: NetNsId { dev: 1, ino: 1 },
            path: Some("/run/netns/nonexistent-iscsi-rs".into()),
        };
        let e = NetNsCache::default().enter(&gone).unwrap_err();
        assert!(
            e.to_string().contains("is gone") && e.to_string().contains("nonexistent-iscsi-rs"),
            "{e}"
        );
    }
}
