//! The oracle: what the module must answer to a call, from the argument's
//! placement, its bytes (judged by `iscsi_proto::uapi`'s validation, the very
//! code the kernel runs) and the descriptor inside it.
//!
//! Reading the argument comes first (a fault there can only be EFAULT); the
//! later checks (field validation, the nested buffer, the descriptor, the
//! session lookup) may come in any order, so each defect adds its errno to the
//! accepted set and success is accepted only when there is no defect at all.

use iscsi_proto::uapi::{
    ConnList, Event, Handoff, HandoffKind, List, ReloginFailed, RemoveSession,
};

use crate::mem::Ptr;
use crate::peers::PeerKind;
use crate::sys::{errno_name, Outcome};

/// The kind of descriptor put in a handoff's `fd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdKind {
    /// A negative number (refused by validation).
    Negative(i32),
    /// A number that is not open.
    Closed,
    /// `i32::MAX`.
    Huge,
    /// An O_PATH descriptor (fget refuses it).
    OPath,
    /// Read end of a pipe.
    PipeRead,
    /// Write end of a pipe.
    PipeWrite,
    /// A regular file.
    Regular,
    /// /dev/null.
    DevNull,
    /// /dev/iscsi_rs itself.
    Device,
    /// An eventfd.
    EventFd,
    /// A UDP socket.
    Udp,
    /// An unconnected AF_UNIX stream socket.
    UnixStream,
    /// One end of an AF_UNIX socketpair (connected, but not TCP).
    UnixPair,
    /// A listening TCP socket.
    Listening,
    /// A TCP socket never connected.
    Unconnected,
    /// A connected TCP socket after shutdown(SHUT_WR) (FIN_WAIT).
    HalfClosed,
    /// A connected MPTCP socket (stream, inet, but not IPPROTO_TCP).
    Mptcp,
    /// A TCP socket connected to one of our peers.
    Peer(PeerKind),
}

impl FdKind {
    /// Every kind that needs no peer.
    pub const PLAIN: [FdKind; 19] = [
        FdKind::Negative(-1),
        FdKind::Negative(i32::MIN),
        FdKind::Closed,
        FdKind::Huge,
        FdKind::OPath,
        FdKind::PipeRead,
        FdKind::PipeWrite,
        FdKind::Regular,
        FdKind::DevNull,
        FdKind::Device,
        FdKind::EventFd,
        FdKind::Udp,
        FdKind::UnixStream,
        FdKind::UnixPair,
        FdKind::Listening,
        FdKind::Unconnected,
        FdKind::HalfClosed,
        FdKind::Mptcp,
        FdKind::Peer(PeerKind::Refuse),
    ];

    /// What `sockfd_lookup` and the "established TCP" check make of it.
    pub fn verdict(self) -> FdVerdict {
        match self {
            FdKind::Negative(_) => FdVerdict::Refused(&[libc::EINVAL]),
            FdKind::Closed | FdKind::Huge | FdKind::OPath => FdVerdict::Refused(&[libc::EBADF]),
            FdKind::PipeRead
            | FdKind::PipeWrite
            | FdKind::Regular
            | FdKind::DevNull
            | FdKind::Device
            | FdKind::EventFd => FdVerdict::Refused(&[libc::ENOTSOCK]),
            FdKind::Udp | FdKind::UnixStream | FdKind::UnixPair | FdKind::Mptcp => {
                FdVerdict::Refused(&[libc::EINVAL])
            }
            FdKind::Listening | FdKind::Unconnected | FdKind::HalfClosed => {
                FdVerdict::Refused(&[libc::ENOTCONN])
            }
            // A connect() that was refused leaves an unconnected socket.
            FdKind::Peer(PeerKind::Refuse) => FdVerdict::Refused(&[libc::ENOTCONN]),
            // The peer's RST or FIN may arrive before the ioctl looks.
            FdKind::Peer(PeerKind::Reset) | FdKind::Peer(PeerKind::Fin) => {
                FdVerdict::Racy(&[libc::ENOTCONN])
            }
            FdKind::Peer(_) => FdVerdict::Accepted,
        }
    }

    /// Short text for the log.
    pub fn name(self) -> String {
        match self {
            FdKind::Negative(v) => format!("fd {v}"),
            FdKind::Peer(p) => format!("TCP to {} peer", p.name()),
            other => format!("{other:?}"),
        }
    }
}

/// How the module treats a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdVerdict {
    /// Always refused with one of these.
    Refused(&'static [i32]),
    /// A usable socket.
    Accepted,
    /// Usable, or refused with one of these, depending on timing.
    Racy(&'static [i32]),
}

/// The accepted outcomes of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// Success is acceptable.
    pub ok: bool,
    /// Acceptable errnos.
    pub errs: Vec<i32>,
    /// Why (the defects found).
    pub why: Vec<String>,
}

impl Expect {
    /// Success expected.
    pub fn success() -> Self {
        Expect {
            ok: true,
            errs: Vec::new(),
            why: Vec::new(),
        }
    }

    /// Exactly this error.
    pub fn error(e: i32, why: impl Into<String>) -> Self {
        let mut x = Expect::success();
        x.defect(e, why);
        x
    }

    /// Records a defect: success is no longer acceptable, `e` is.
    pub fn defect(&mut self, e: i32, why: impl Into<String>) {
        self.ok = false;
        self.also(e);
        self.why.push(why.into());
    }

    /// Accepts `e` as well, without ruling success out.
    pub fn also(&mut self, e: i32) {
        if !self.errs.contains(&e) {
            self.errs.push(e);
        }
    }

    /// Whether `o` is acceptable.
    pub fn accepts(&self, o: &Outcome) -> bool {
        match o {
            Ok(_) => self.ok,
            Err(e) => self.errs.contains(e),
        }
    }

    /// "ok or EINVAL/ENOTCONN (why...)".
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if self.ok {
            parts.push("ok".into());
        }
        parts.extend(self.errs.iter().map(|&e| errno_name(e).to_string()));
        let mut s = parts.join(" or ");
        if !self.why.is_empty() {
            s.push_str(&format!(" ({})", self.why.join("; ")));
        }
        s
    }

    fn fd(&mut self, fd: FdKind) {
        match fd.verdict() {
            FdVerdict::Refused(errs) => {
                for &e in errs {
                    self.defect(e, fd.name());
                }
            }
            FdVerdict::Racy(errs) => errs.iter().for_each(|&e| self.also(e)),
            FdVerdict::Accepted => {}
        }
    }
}

/// What a call with its argument at `main` gives: EFAULT if the argument
/// cannot be read (nothing else is looked at then), else what `judge` says.
fn read_first(main: Ptr, judge: impl FnOnce() -> Expect) -> Expect {
    if main.readable() {
        judge()
    } else {
        Expect::error(libc::EFAULT, format!("argument {}", main.name()))
    }
}

/// ADD_SESSION, HANDOFF or ADD_CONNECTION (`kind`): the argument validated,
/// then (if valid) the checks of `valid` and the descriptor's, in any order.
fn handoff_like(
    main: Ptr,
    bytes: &[u8; Handoff::SIZE],
    kind: HandoffKind,
    fd: FdKind,
    valid: impl FnOnce(&Handoff, &mut Expect),
) -> Expect {
    read_first(main, || {
        let h = Handoff::from_bytes(bytes);
        let mut x = Expect::success();
        match h.validate(kind) {
            Err(e) => x.defect(libc::EINVAL, e.to_string()),
            Ok(_) => {
                valid(&h, &mut x);
                x.fd(fd);
            }
        }
        x
    })
}

/// ADD_SESSION with the argument at `main` holding `bytes`, its recipe (if
/// any) at `recipe`, and a descriptor of kind `fd`.
pub fn add_session(main: Ptr, bytes: &[u8; Handoff::SIZE], recipe: Ptr, fd: FdKind) -> Expect {
    handoff_like(main, bytes, HandoffKind::Add, fd, |h, x| {
        if h.recipe_len > 0 && !recipe.readable() {
            x.defect(libc::EFAULT, format!("recipe {}", recipe.name()));
        }
    })
}

/// What HANDOFF finds when the argument is valid: the session named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// No session with that host number.
    Missing,
    /// The session exists; the handoff matches it and answers its current
    /// generation while it is failed.
    Answers,
    /// The session exists but target, initiator, ISID or queue depth differ,
    /// or (ADD_CONNECTION) `lane` is not below its lanes, or the TSIH or a
    /// session-wide key is not the session's.
    Mismatch,
    /// The session exists but the generation is not current, or it is running.
    Stale,
}

/// HANDOFF, like [`add_session`]; `target` says what the host number names.
pub fn handoff(main: Ptr, bytes: &[u8; Handoff::SIZE], fd: FdKind, target: Target) -> Expect {
    session_call(main, bytes, HandoffKind::Handoff, fd, &[target])
}

/// ADD_CONNECTION, like [`handoff`]. `Stale` also covers a session that is
/// not running (recovering or failed): a lane is only added to a running
/// session, in the generation it runs in.
pub fn add_connection(
    main: Ptr,
    bytes: &[u8; Handoff::SIZE],
    fd: FdKind,
    target: Target,
) -> Expect {
    add_connection_to(main, bytes, fd, &[target])
}

/// ADD_CONNECTION with several defects found against the session (say a
/// lane beyond its lanes while it is recovering): any of their errnos.
pub fn add_connection_to(
    main: Ptr,
    bytes: &[u8; Handoff::SIZE],
    fd: FdKind,
    targets: &[Target],
) -> Expect {
    session_call(main, bytes, HandoffKind::AddConnection, fd, targets)
}

fn session_call(
    main: Ptr,
    bytes: &[u8; Handoff::SIZE],
    kind: HandoffKind,
    fd: FdKind,
    targets: &[Target],
) -> Expect {
    handoff_like(main, bytes, kind, fd, |h, x| {
        for t in targets {
            match t {
                Target::Missing => x.defect(libc::ENODEV, format!("no host {}", h.host_no)),
                Target::Mismatch => x.defect(
                    libc::EINVAL,
                    "not this session's (names/ISID/depth/lanes/keys)",
                ),
                Target::Stale => x.defect(libc::ESTALE, "stale generation or not running"),
                Target::Answers => {}
            }
        }
    })
}

/// REMOVE_SESSION; `live` says whether the host number names a session.
pub fn remove_session(main: Ptr, bytes: &[u8; RemoveSession::SIZE], live: bool) -> Expect {
    read_first(main, || {
        let r = RemoveSession::from_bytes(bytes);
        match r.validate() {
            Err(e) => Expect::error(libc::EINVAL, e.to_string()),
            Ok(_) if !live => Expect::error(libc::ENODEV, format!("no host {}", r.host_no)),
            Ok(_) => Expect::success(),
        }
    })
}

/// LIST with `sessions` sessions in the module and the entries buffer at
/// `entries`.
pub fn list(main: Ptr, bytes: &[u8; List::SIZE], entries: Ptr, sessions: usize) -> Expect {
    read_first(main, || {
        let l = List::from_bytes(bytes);
        if let Err(e) = l.validate() {
            return Expect::error(libc::EINVAL, e.to_string());
        }
        list_answer(main, entries, (l.capacity as usize).min(sessions))
    })
}

/// What a valid list request expects: `want` entries written to `entries`,
/// then the answer to `main`.
fn list_answer(main: Ptr, entries: Ptr, want: usize) -> Expect {
    let mut x = Expect::success();
    if want > 0 && !entries.writable() {
        x.defect(
            libc::EFAULT,
            format!("{want} entries to {}", entries.name()),
        );
    }
    if !main.writable() {
        x.defect(libc::EFAULT, format!("answer to {}", main.name()));
    }
    x
}

/// LIST_CONNECTIONS; `lanes` is the named session's lane count (`None`: no
/// such session) and the entries buffer is at `entries`.
pub fn list_connections(
    main: Ptr,
    bytes: &[u8; ConnList::SIZE],
    entries: Ptr,
    lanes: Option<usize>,
) -> Expect {
    read_first(main, || {
        let l = ConnList::from_bytes(bytes);
        if let Err(e) = l.validate() {
            return Expect::error(libc::EINVAL, e.to_string());
        }
        let Some(lanes) = lanes else {
            return Expect::error(libc::ENODEV, format!("no host {}", l.host_no));
        };
        list_answer(main, entries, (l.capacity as usize).min(lanes))
    })
}

/// WAIT_EVENT when no request is pending: a valid argument blocks until the
/// signal that ends it (EINTR).
pub fn wait_event_idle(main: Ptr, bytes: &[u8; Event::SIZE]) -> Expect {
    read_first(main, || match Event::from_bytes(bytes).validate_request() {
        Err(e) => Expect::error(libc::EINVAL, e.to_string()),
        Ok(_) => Expect::error(libc::EINTR, "blocks until interrupted"),
    })
}

/// Whether a WAIT_EVENT argument gets past the checks (and so blocks or
/// delivers).
pub fn wait_event_passes(main: Ptr, bytes: &[u8; Event::SIZE]) -> bool {
    main.readable() && Event::from_bytes(bytes).validate_request().is_ok()
}

/// FAIL_RELOGIN; `pending` says whether (host, generation) names a request.
pub fn fail_relogin(main: Ptr, bytes: &[u8; ReloginFailed::SIZE], pending: bool) -> Expect {
    read_first(main, || match ReloginFailed::from_bytes(bytes).validate() {
        Err(e) => Expect::error(libc::EINVAL, e.to_string()),
        Ok(_) if !pending => Expect::error(libc::ESTALE, "no such request"),
        Ok(_) => Expect::success(),
    })
}

/// Any number the module does not know.
pub fn unknown() -> Expect {
    Expect::error(libc::ENOTTY, "unknown ioctl")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen;
    use crate::rng::Rng;

    fn valid(add: bool) -> Handoff {
        gen::valid_handoff(&mut Rng::new(9), add, 3)
    }

    #[test]
    fn add_session_oracle() {
        let h = valid(true);
        let b = h.to_bytes();
        assert_eq!(
            add_session(Ptr::Null, &b, Ptr::Null, FdKind::PipeRead),
            Expect::error(libc::EFAULT, "argument NULL")
        );
        let x = add_session(Ptr::Valid, &b, Ptr::Null, FdKind::PipeRead);
        assert!(!x.ok && x.errs == [libc::ENOTSOCK]);
        let x = add_session(Ptr::ReadOnly, &b, Ptr::Null, FdKind::Peer(PeerKind::Echo));
        assert!(x.ok && x.errs.is_empty());
        let x = add_session(Ptr::Valid, &b, Ptr::Null, FdKind::Peer(PeerKind::Reset));
        assert!(x.ok && x.errs == [libc::ENOTCONN]);
        let mut r = h;
        r.recipe = 0x1000;
        r.recipe_len = 10;
        let x = add_session(Ptr::Valid, &r.to_bytes(), Ptr::Guard, FdKind::Udp);
        assert!(!x.ok && x.errs == [libc::EFAULT, libc::EINVAL]);
        let mut bad = h;
        bad.tsih = 0;
        let x = add_session(
            Ptr::Misaligned(1),
            &bad.to_bytes(),
            Ptr::Valid,
            FdKind::Peer(PeerKind::Echo),
        );
        assert_eq!(x.errs, [libc::EINVAL]);
        assert!(!x.ok);
        assert!(x.accepts(&Err(libc::EINVAL)) && !x.accepts(&Ok(0)));
    }

    #[test]
    fn handoff_oracle() {
        let mut h = valid(false);
        h.host_no = 4;
        let b = h.to_bytes();
        let x = handoff(
            Ptr::Valid,
            &b,
            FdKind::Peer(PeerKind::Echo),
            Target::Missing,
        );
        assert_eq!(x.errs, [libc::ENODEV]);
        let x = handoff(Ptr::Valid, &b, FdKind::Closed, Target::Stale);
        assert_eq!(x.errs, [libc::ESTALE, libc::EBADF]);
        let x = handoff(
            Ptr::Valid,
            &b,
            FdKind::Peer(PeerKind::Silent),
            Target::Answers,
        );
        assert!(x.ok);
        assert!(
            handoff(Ptr::Kernel(u64::MAX), &b, FdKind::Closed, Target::Answers).errs
                == [libc::EFAULT]
        );
    }

    #[test]
    fn add_connection_oracle() {
        let mut h = gen::valid_handoff_kind(&mut Rng::new(9), HandoffKind::AddConnection, 3);
        h.host_no = 4;
        let b = h.to_bytes();
        let echo = FdKind::Peer(PeerKind::Echo);
        assert_eq!(
            add_connection(Ptr::Valid, &b, echo, Target::Missing).errs,
            [libc::ENODEV]
        );
        let x = add_connection(Ptr::Valid, &b, FdKind::Closed, Target::Mismatch);
        assert_eq!(x.errs, [libc::EINVAL, libc::EBADF]);
        assert!(!x.ok);
        assert_eq!(
            add_connection(Ptr::Valid, &b, echo, Target::Stale).errs,
            [libc::ESTALE]
        );
        assert!(add_connection(Ptr::ReadOnly, &b, echo, Target::Answers).ok);
        let both = add_connection_to(Ptr::Valid, &b, echo, &[Target::Mismatch, Target::Stale]);
        assert!(!both.ok && both.errs == [libc::EINVAL, libc::ESTALE]);
        // A leading-connection argument (lane 0) is refused before the lookup.
        let mut lead = h;
        lead.lane = 0;
        let x = add_connection(Ptr::Valid, &lead.to_bytes(), echo, Target::Answers);
        assert_eq!(x.errs, [libc::EINVAL]);
        // And a lane > 0 is refused by HANDOFF.
        let x = handoff(Ptr::Valid, &b, echo, Target::Answers);
        assert_eq!(x.errs, [libc::EINVAL]);
    }

    #[test]
    fn list_connections_oracle() {
        let l = ConnList::new(3, 4, 0x1000);
        let b = l.to_bytes();
        assert_eq!(
            list_connections(Ptr::Valid, &b, Ptr::Guard, None).errs,
            [libc::ENODEV]
        );
        assert!(list_connections(Ptr::Valid, &b, Ptr::Valid, Some(2)).ok);
        assert_eq!(
            list_connections(Ptr::Valid, &b, Ptr::Guard, Some(1)).errs,
            [libc::EFAULT]
        );
        assert_eq!(
            list_connections(Ptr::ReadOnly, &b, Ptr::Valid, Some(1)).errs,
            [libc::EFAULT]
        );
        let mut z = ConnList::new(3, 0, 0);
        assert!(list_connections(Ptr::Valid, &z.to_bytes(), Ptr::Null, Some(4)).ok);
        z.entry_size = 640;
        assert_eq!(
            list_connections(Ptr::Valid, &z.to_bytes(), Ptr::Null, None).errs,
            [libc::EINVAL]
        );
        assert_eq!(
            list_connections(Ptr::Guard, &b, Ptr::Valid, None).errs,
            [libc::EFAULT]
        );
    }

    #[test]
    fn list_oracle() {
        let l = List::new(4, 0x1000);
        let b = l.to_bytes();
        // No session: the entries buffer is never touched.
        assert!(list(Ptr::Valid, &b, Ptr::Guard, 0).ok);
        assert_eq!(list(Ptr::Valid, &b, Ptr::Guard, 1).errs, [libc::EFAULT]);
        assert_eq!(list(Ptr::ReadOnly, &b, Ptr::Valid, 0).errs, [libc::EFAULT]);
        assert!(list(Ptr::Misaligned(5), &b, Ptr::Misaligned(3), 3).ok);
        let mut z = List::new(0, 0);
        assert!(list(Ptr::Valid, &z.to_bytes(), Ptr::Null, 5).ok);
        z.entry_size = 1;
        assert_eq!(
            list(Ptr::Valid, &z.to_bytes(), Ptr::Null, 5).errs,
            [libc::EINVAL]
        );
    }

    #[test]
    fn small_oracles() {
        let e = Event::request(0, 0, 0).to_bytes();
        assert_eq!(wait_event_idle(Ptr::Valid, &e).errs, [libc::EINTR]);
        assert!(wait_event_passes(Ptr::ReadOnly, &e));
        assert!(!wait_event_passes(Ptr::Guard, &e));
        let f = ReloginFailed::new(1, 1, 1, 0).to_bytes();
        assert_eq!(fail_relogin(Ptr::Valid, &f, false).errs, [libc::ESTALE]);
        assert!(fail_relogin(Ptr::ReadOnly, &f, true).ok);
        let r = RemoveSession::new(3, true).to_bytes();
        assert_eq!(remove_session(Ptr::Valid, &r, false).errs, [libc::ENODEV]);
        assert!(remove_session(Ptr::ReadOnly, &r, true).ok);
        assert_eq!(
            remove_session(Ptr::Straddle(4), &r, true).errs,
            [libc::EFAULT]
        );
        assert_eq!(unknown().describe(), "ENOTTY (unknown ioctl)");
    }

    #[test]
    fn every_plain_fd_kind_is_refused() {
        for k in FdKind::PLAIN {
            assert!(matches!(k.verdict(), FdVerdict::Refused(_)), "{k:?}");
        }
    }
}
