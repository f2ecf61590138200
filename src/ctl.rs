//! The `/dev/iscsi_rs` ioctls (ABI in `proto::uapi`): ADD_SESSION validates a
//! handoff, builds the Session on the handed-over socket, registers its SCSI host
//! and scans it; REMOVE_SESSION and module unload remove the host, log out and
//! tear down; LIST reports every session. `CAP_SYS_ADMIN` is checked by the
//! chardev before any of this runs.

use kernel::c_str;
use kernel::prelude::*;
use kernel::sync::{new_mutex, Arc, Mutex};
use kernel::uaccess::UserSlice;
use kernel::ThisModule;

use crate::proto::uapi::{self, Handoff, List, RemoveSession, SessionInfo};
use crate::session::{Phase, Session};
use crate::sys::chardev::ControlOps;
use crate::sys::scsi::{Host, HostConfig, HostTemplate, TemplateLimits};
use crate::sys::socket::TcpSocket;
use crate::sys::workqueue::OwnedQueue;

/// Highest LUN the scan looks for (flat addressing covers 0..16383).
const MAX_LUN: u64 = 16384;

/// A live session and its host.
struct Entry {
    host: Host<Session>,
    session: Arc<Session>,
}

/// Everything the control device owns.
#[pin_data]
struct Registry {
    template: Arc<HostTemplate<Session>>,
    wq: Arc<OwnedQueue>,
    /// Live sessions; a slot is emptied (not shifted) when its session goes.
    #[pin]
    sessions: Mutex<KVec<Option<Entry>>>,
}

/// Handler of the control device's ioctls.
pub(crate) struct Control {
    reg: Arc<Registry>,
}

fn errno(e: u32) -> Error {
    Error::from_errno(-(e as i32))
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
        let wq = Arc::new(OwnedQueue::new(c_str!("iscsi_rs"))?, GFP_KERNEL)?;
        let reg = Arc::pin_init(
            pin_init!(Registry {
                template,
                wq,
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
        self.reg.wq.drain();
    }

    fn add(&self, arg: usize) -> Result<isize> {
        let mut bytes = [0u8; Handoff::SIZE];
        UserSlice::new(arg, Handoff::SIZE)
            .reader()
            .read_slice(&mut bytes)?;
        let h = Handoff::from_bytes(&bytes);
        let cfg = h.validate(true).map_err(|e| {
            pr_err!("ADD_SESSION refused: {}\n", e);
            EINVAL
        })?;
        let sock = TcpSocket::from_fd(h.fd).inspect_err(|e| {
            pr_err!(
                "ADD_SESSION: fd {} is not a connected TCP socket ({:?})\n",
                h.fd,
                e
            );
        })?;
        let session = Session::new(cfg, sock, self.reg.wq.clone())?;
        if let Err(e) = session.start() {
            session.close();
            return Err(e);
        }
        let hcfg = HostConfig {
            can_queue: cfg.queue_depth,
            max_lun: MAX_LUN,
            max_cmd_len: 16,
        };
        let mut host = match Host::new(&self.reg.template, session.clone(), hcfg) {
            Ok(h) => h,
            Err(e) => {
                session.logout();
                session.close();
                return Err(e);
            }
        };
        session.set_host_no(host.host_no());
        if let Err(e) = host.add() {
            teardown(Entry { host, session }, false);
            return Err(e);
        }
        let host_no = host.host_no();
        pr_info!(
            "host{}: session to {} at {} (TSIH {}, queue depth {})\n",
            host_no,
            cfg.target_name(),
            cfg.portal(),
            cfg.raw.tsih,
            cfg.queue_depth
        );
        host.scan();
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
        let want = (l.capacity as usize).min(infos.len());
        if want > 0 {
            let len = want.checked_mul(SessionInfo::SIZE).ok_or(EINVAL)?;
            let mut w = UserSlice::new(l.entries as usize, len).writer();
            for i in infos.iter().take(want) {
                w.write_slice(&i.to_bytes())?;
            }
        }
        l.count = infos.len() as u32;
        UserSlice::new(arg, List::SIZE)
            .writer()
            .write_slice(&l.to_bytes())?;
        Ok(infos.len() as isize)
    }
}

/// Removes the host (its devices flush through the live connection), logs out
/// unless `force`, and closes the session.
fn teardown(entry: Entry, force: bool) {
    let Entry { mut host, session } = entry;
    let host_no = host.host_no();
    host.remove();
    // A failed connection has nobody to log out from.
    if !force && session.phase() == Phase::Running && !session.logout() {
        pr_warn!("host{}: logout not confirmed by the target\n", host_no);
    }
    session.close();
    drop(host);
    pr_info!("host{}: session removed\n", host_no);
}

impl ControlOps for Control {
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            uapi::ADD_SESSION => self.add(arg),
            uapi::REMOVE_SESSION => self.remove(arg),
            uapi::LIST => self.list(arg),
            uapi::HANDOFF => Err(errno(kernel::bindings::EOPNOTSUPP)),
            _ => Err(ENOTTY),
        }
    }
}
