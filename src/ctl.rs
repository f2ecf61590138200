//! The `/dev/iscsi_rs` ioctls (ABI in `proto::uapi`): ADD_SESSION validates a
//! handoff, builds the Session on the handed-over socket, registers its SCSI host
//! and scans it; REMOVE_SESSION and module unload remove the host, log out and
//! tear down; LIST reports every session; WAIT_EVENT, HANDOFF and FAIL_RELOGIN
//! are the recovery conversation with `iscsictl daemon` (see `recovery`);
//! ADD_CONNECTION adds a further connection to a session (MC/S, one lane
//! per connection) and LIST_CONNECTIONS reports its lanes.
//! `CAP_SYS_ADMIN` is checked by the chardev before any of this runs.
#![deny(unsafe_code)]

use kernel::c_str;
use kernel::prelude::*;
use kernel::sync::{new_mutex, Arc, Mutex};
use kernel::uaccess::UserSlice;
use kernel::ThisModule;

use crate::proto::uapi::{
    self, ConnInfo, ConnList, Event, Handoff, HandoffKind, List, ReloginFailed, RemoveSession,
    SessionConfig, SessionInfo,
};
use crate::recovery::{estale, Board};
use crate::session::Queues;
use crate::session::{Lane, Phase, Recipe, Session};
use crate::sys::chardev::ControlOps;
use crate::sys::scsi::{Host, HostConfig, HostTemplate, TemplateLimits};
use crate::sys::socket::TcpSocket;
use crate::sys::workqueue::{OwnedQueue, QueueKind};

/// Highest LUN the scan accepts: every LUN REPORT LUNS lists, whatever its
/// address method (a flat-space LUN n is Linux LUN 0x4000 | n; SCST, NetApp
/// and Pure use them), as open-iscsi does. A target without REPORT LUNS is
/// scanned sequentially only up to the midlayer's `max_scsi_luns`.
const MAX_LUN: u64 = u64::MAX;

/// A live session and its host.
struct Entry {
    host: Host<Session>,
    session: Arc<Session>,
}

/// Everything the control device owns.
#[pin_data]
struct Registry {
    template: Arc<HostTemplate<Session>>,
    wq: Arc<Queues>,
    board: Arc<Board>,
    /// Live sessions; a slot is emptied (not shifted) when its session goes.
    #[pin]
    sessions: Mutex<KVec<Option<Entry>>>,
}

/// Handler of the control device's ioctls.
pub(crate) struct Control {
    reg: Arc<Registry>,
}

/// The socket behind descriptor `fd` of the caller, logged in by iscsictl.
fn socket_from(fd: i32, what: &str) -> Result<TcpSocket<Lane>> {
    TcpSocket::from_fd(fd).inspect_err(|e| {
        pr_err!(
            "{}: fd {} is not a connected TCP socket ({:?})\n",
            what,
            fd,
            e
        );
    })
}

impl Control {
    /// The SCSI host template and the data-path workqueue, shared by sessions.
    pub(crate) fn new(module: &'static ThisModule) -> Result<Self> {
        let template = HostTemplate::new(
            c_str!("iscsi_rs"),
            module,
            TemplateLimits {
                can_queue: uapi::DEFAULT_QUEUE_DEPTH,
                sg_tablesize: 256,
                // 1 MiB commands: fio's largest block size in the tests.
                max_sectors: 2048,
            },
        )?;
        let wq = Arc::new(
            Queues {
                io: OwnedQueue::new(c_str!("iscsi_rs"), QueueKind::Io)?,
                watch: OwnedQueue::new(c_str!("iscsi_rs_watch"), QueueKind::LongRunning)?,
            },
            GFP_KERNEL,
        )?;
        let board = Board::new()?;
        let reg = Arc::pin_init(
            pin_init!(Registry {
                template,
                wq,
                board,
                sessions <- new_mutex!(KVec::new(), "iscsi_rs::Registry::sessions"),
            }),
            GFP_KERNEL,
        )?;
        Ok(Control { reg })
    }

    /// Module unload: every session is removed and logged out, then the
    /// workqueue is drained so no work of ours runs after this returns.
    pub(crate) fn shutdown(&self) {
        loop {
            let entry = {
                let mut list = self.reg.sessions.lock();
                list.iter_mut().find_map(Option::take)
            };
            match entry {
                Some(e) => teardown(e, false),
                None => break,
            }
        }
        self.reg.wq.io.drain();
        self.reg.wq.watch.drain();
    }

    fn add(&self, arg: usize) -> Result<isize> {
        let (h, cfg) = read_handoff(arg, HandoffKind::Add, "ADD_SESSION")?;
        let mut recipe = KVec::new();
        if h.recipe_len > 0 {
            recipe = KVec::from_elem(0u8, h.recipe_len as usize, GFP_KERNEL)?;
            UserSlice::new(h.recipe as usize, recipe.len())
                .reader()
                .read_slice(&mut recipe)?;
        }
        let recipe = Recipe::new(recipe);
        let sock = socket_from(h.fd, "ADD_SESSION")?;
        // A lane per connection the session may run: the others join by
        // ADD_CONNECTION.
        let lanes = usize::from(cfg.connections.max(1));
        let session = Session::new(
            cfg,
            recipe,
            sock,
            lanes,
            self.reg.wq.clone(),
            self.reg.board.clone(),
        )?;
        // The host is allocated before the session starts, so that everything
        // the session logs or posts (a failure during the scan, say) already
        // names its host; the handle acts on it only once it is added.
        let hcfg = HostConfig {
            can_queue: cfg.queue_depth,
            nr_hw_queues: lanes as u32,
            max_lun: MAX_LUN,
            max_cmd_len: 16,
        };
        let mut host = match Host::new(&self.reg.template, session.clone(), hcfg) {
            Ok(h) => h,
            Err(e) => {
                // Not started, so no receiver for a Logout Response: the
                // target sees the connection close instead.
                session.close();
                return Err(e);
            }
        };
        session.set_host_no(host.host_no());
        session.set_host(host.handle());
        if let Err(e) = session.start() {
            session.close();
            return Err(e);
        }
        if let Err(e) = host.add() {
            teardown(Entry { host, session }, false);
            return Err(e);
        }
        let host_no = host.host_no();
        pr_info!(
            "host{}: session to {} at {} (TSIH {}, queue depth {}, replacement timeout {} s)\n",
            host_no,
            cfg.target_name(),
            cfg.portal(),
            cfg.raw.tsih,
            cfg.queue_depth,
            cfg.replacement_timeout
        );
        // Registered before the scan, so a failure during the scan has its
        // relogin request answered (WAIT_EVENT looks the session up) and a
        // REMOVE_SESSION can end it; the scan itself stops once removal began.
        let scanner = host.scanner();
        let keep = session.clone();
        let pushed = {
            let mut list = self.reg.sessions.lock();
            let entry = Entry { host, session };
            match list.iter_mut().find(|s| s.is_none()) {
                Some(slot) => {
                    *slot = Some(entry);
                    Ok(())
                }
                // On failure `push` drops the entry, which removes the host.
                None => list.push(Some(entry), GFP_KERNEL),
            }
        };
        if pushed.is_err() {
            keep.logout();
            keep.close();
            return Err(ENOMEM);
        }
        drop(keep);
        match scanner {
            Some(s) => s.scan(),
            None => return Err(ENODEV),
        }
        let mut out = h;
        out.host_no = host_no;
        // Best effort: the ioctl's value carries the host number as well.
        let _ = UserSlice::new(arg, Handoff::SIZE)
            .writer()
            .write_slice(&out.to_bytes());
        Ok(host_no as isize)
    }

    fn remove(&self, arg: usize) -> Result<isize> {
        let mut bytes = [0u8; RemoveSession::SIZE];
        UserSlice::new(arg, RemoveSession::SIZE)
            .reader()
            .read_slice(&mut bytes)?;
        let r = RemoveSession::from_bytes(&bytes);
        let force = r.validate().map_err(|e| {
            pr_err!("REMOVE_SESSION refused: {}\n", e);
            EINVAL
        })?;
        let entry = {
            let mut list = self.reg.sessions.lock();
            list.iter_mut()
                .find(|s| s.as_ref().is_some_and(|e| e.host.host_no() == r.host_no))
                .and_then(Option::take)
        };
        let entry = entry.ok_or(ENODEV)?;
        teardown(entry, force);
        Ok(0)
    }

    fn session(&self, host_no: u32) -> Option<Arc<Session>> {
        let list = self.reg.sessions.lock();
        list.iter()
            .flatten()
            .find(|e| e.host.host_no() == host_no)
            .map(|e| e.session.clone())
    }

    /// HANDOFF: a re-logged-in socket for a session in recovery.
    fn handoff(&self, arg: usize) -> Result<isize> {
        let (h, cfg) = read_handoff(arg, HandoffKind::Handoff, "HANDOFF")?;
        let session = self.session(h.host_no).ok_or(ENODEV)?;
        let sock = socket_from(h.fd, "HANDOFF")?;
        session.reconnect(cfg, sock)?;
        Ok(h.host_no as isize)
    }

    /// ADD_CONNECTION: a further logged-in socket of a running session.
    fn add_connection(&self, arg: usize) -> Result<isize> {
        let (h, cfg) = read_handoff(arg, HandoffKind::AddConnection, "ADD_CONNECTION")?;
        let session = self.session(h.host_no).ok_or(ENODEV)?;
        let sock = socket_from(h.fd, "ADD_CONNECTION")?;
        session.add_connection(cfg, sock)?;
        Ok(h.host_no as isize)
    }

    /// LIST_CONNECTIONS: the lanes of one session.
    fn list_connections(&self, arg: usize) -> Result<isize> {
        let mut bytes = [0u8; ConnList::SIZE];
        UserSlice::new(arg, ConnList::SIZE)
            .reader()
            .read_slice(&mut bytes)?;
        let mut l = ConnList::from_bytes(&bytes);
        l.validate().map_err(|e| {
            pr_err!("LIST_CONNECTIONS refused: {}\n", e);
            EINVAL
        })?;
        let session = self.session(l.host_no).ok_or(ENODEV)?;
        // Snapshot first: copying to user memory may fault and sleep.
        let infos = session.conn_infos()?;
        write_entries(l.entries, l.capacity, infos.iter().map(ConnInfo::to_bytes))?;
        l.count = infos.len() as u32;
        UserSlice::new(arg, ConnList::SIZE)
            .writer()
            .write_slice(&l.to_bytes())?;
        Ok(infos.len() as isize)
    }

    /// WAIT_EVENT: blocks until a session needs a relogin and describes it.
    fn wait_event(&self, arg: usize) -> Result<isize> {
        let mut bytes = [0u8; Event::SIZE];
        UserSlice::new(arg, Event::SIZE)
            .reader()
            .read_slice(&mut bytes)?;
        let req_in = Event::from_bytes(&bytes);
        let mut rescan = req_in.validate_request().map_err(|e| {
            pr_err!("WAIT_EVENT refused: {}\n", e);
            EINVAL
        })?;
        loop {
            let req = self.reg.board.wait(rescan)?;
            rescan = false;
            let Some(session) = self.session(req.host_no) else {
                self.reg.board.withdraw(req.host_no);
                continue;
            };
            let c = session.config();
            let (_, tsih) = session.params();
            let recipe = session.recipe();
            let mut e = req_in;
            e.kind = uapi::EVENT_RELOGIN;
            e.host_no = req.host_no;
            e.generation = req.generation();
            e.reason = req.reason;
            e.attempt = req.attempt;
            e.delay_ms = req.delay_ms;
            e.tsih = tsih;
            e.cid = c.raw.cid;
            // Lanes the daemon restores (0: one connection, as before).
            let lanes = session.nr_lanes();
            e.connections = if lanes > 1 { lanes as u16 } else { 0 };
            // Every connection failed together (ERL 0): none is singled out.
            e.lane = 0;
            e.isid = c.raw.isid;
            e.target_name = c.raw.target_name;
            e.initiator_name = c.raw.initiator_name;
            e.portal = c.raw.portal;
            e.recipe_len = recipe.len() as u32;
            let copied = if recipe.len() > req_in.recipe_capacity as usize {
                Err(ENOSPC)
            } else if recipe.is_empty() {
                Ok(())
            } else {
                UserSlice::new(req_in.recipe as usize, recipe.len())
                    .writer()
                    .write_slice(recipe)
            }
            .and_then(|()| {
                UserSlice::new(arg, Event::SIZE)
                    .writer()
                    .write_slice(&e.to_bytes())
            });
            if let Err(err) = copied {
                self.reg.board.undeliver(req.host_no, req.generation());
                return Err(err);
            }
            pr_info!(
                "host{}: relogin request {} (attempt {}, {}) handed to the daemon\n",
                req.host_no,
                req.generation(),
                req.attempt + 1,
                uapi::reason::describe(req.reason)
            );
            return Ok(0);
        }
    }

    /// FAIL_RELOGIN: the daemon's attempt failed; offer it again later.
    fn relogin_failed(&self, arg: usize) -> Result<isize> {
        let mut bytes = [0u8; ReloginFailed::SIZE];
        UserSlice::new(arg, ReloginFailed::SIZE)
            .reader()
            .read_slice(&mut bytes)?;
        let f = ReloginFailed::from_bytes(&bytes);
        f.validate().map_err(|e| {
            pr_err!("FAIL_RELOGIN refused: {}\n", e);
            EINVAL
        })?;
        let attempt = self
            .reg
            .board
            .failed(f.host_no, f.generation, f.retry_ms)
            .map_err(|_| estale())?;
        pr_warn!(
            "host{}: relogin attempt {} failed (iscsictl exit {}); next in {} ms\n",
            f.host_no,
            attempt,
            f.error,
            f.retry_ms
        );
        Ok(0)
    }

    fn list(&self, arg: usize) -> Result<isize> {
        let mut bytes = [0u8; List::SIZE];
        UserSlice::new(arg, List::SIZE)
            .reader()
            .read_slice(&mut bytes)?;
        let mut l = List::from_bytes(&bytes);
        l.validate().map_err(|e| {
            pr_err!("LIST refused: {}\n", e);
            EINVAL
        })?;
        // Snapshot first: copying to user memory may fault and sleep.
        let mut infos = KVec::new();
        {
            let list = self.reg.sessions.lock();
            for e in list.iter().flatten() {
                infos.push(e.session.info(), GFP_KERNEL)?;
            }
        }
        write_entries(
            l.entries,
            l.capacity,
            infos.iter().map(SessionInfo::to_bytes),
        )?;
        l.count = infos.len() as u32;
        UserSlice::new(arg, List::SIZE)
            .writer()
            .write_slice(&l.to_bytes())?;
        Ok(infos.len() as isize)
    }
}

/// Reads the [`Handoff`] at user address `arg` and validates it for `kind`
/// (`what` names the ioctl in the log line of a refusal).
fn read_handoff(arg: usize, kind: HandoffKind, what: &str) -> Result<(Handoff, SessionConfig)> {
    let mut bytes = [0u8; Handoff::SIZE];
    UserSlice::new(arg, Handoff::SIZE)
        .reader()
        .read_slice(&mut bytes)?;
    let h = Handoff::from_bytes(&bytes);
    let cfg = h.validate(kind).map_err(|e| {
        pr_err!("{} refused: {}\n", what, e);
        EINVAL
    })?;
    Ok((h, cfg))
}

/// Writes the first `capacity` of `entries` (LIST / LIST_CONNECTIONS entries,
/// each an ABI struct's bytes) to user address `to`.
fn write_entries<const N: usize>(
    to: u64,
    capacity: u32,
    entries: impl ExactSizeIterator<Item = [u8; N]>,
) -> Result {
    let want = (capacity as usize).min(entries.len());
    if want == 0 {
        return Ok(());
    }
    let len = want.checked_mul(N).ok_or(EINVAL)?;
    let mut w = UserSlice::new(to as usize, len).writer();
    for e in entries.take(want) {
        w.write_slice(&e)?;
    }
    Ok(())
}

/// Removes the host (its devices flush through the live connection), logs out
/// unless `force`, and closes the session.
fn teardown(entry: Entry, force: bool) {
    let Entry { mut host, session } = entry;
    let host_no = host.host_no();
    // No recovery from here on: I/O held for one fails, so the devices'
    // final flush does not wait for a relogin that will not come.
    session.begin_removal();
    host.remove();
    // A failed connection has nobody to log out from.
    if !force && session.phase() == Phase::Running && !session.logout() {
        pr_warn!("host{}: logout not confirmed by the target\n", host_no);
    }
    // Returns once the target let go of the connections, so that a login
    // on the same path right after cannot race their closing.
    session.close().linger(host_no);
    drop(host);
    pr_info!("host{}: session removed\n", host_no);
}

impl ControlOps for Control {
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            uapi::ADD_SESSION => self.add(arg),
            uapi::REMOVE_SESSION => self.remove(arg),
            uapi::LIST => self.list(arg),
            uapi::HANDOFF => self.handoff(arg),
            uapi::ADD_CONNECTION => self.add_connection(arg),
            uapi::LIST_CONNECTIONS => self.list_connections(arg),
            uapi::WAIT_EVENT => self.wait_event(arg),
            uapi::FAIL_RELOGIN => self.relogin_failed(arg),
            _ => Err(ENOTTY),
        }
    }
}
