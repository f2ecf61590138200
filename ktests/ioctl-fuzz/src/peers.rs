//! Local TCP peers that are not iSCSI targets, each a listener thread on
//! 127.0.0.1 (and ::1 when the guest has it): the module gets a socket
//! connected to one of them and must fail the connection cleanly.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::thread;
use std::time::Duration;

use crate::rng::Rng;
use crate::sys;

/// What a peer does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerKind {
    /// Sends back every byte it receives.
    Echo,
    /// Sends a burst of random bytes at once, then reads until EOF.
    Garbage,
    /// Reads and discards, never sends.
    Silent,
    /// Closes at once with SO_LINGER 0 (a RST).
    Reset,
    /// Waits for the first byte from the module, then resets.
    ResetOnFirstByte,
    /// Waits for the first byte, then sends a FIN (and keeps reading).
    FinOnFirstByte,
    /// Closes at once, normally (a FIN).
    Fin,
    /// Nobody listens: the connect is refused (no peer thread).
    Refuse,
}

impl PeerKind {
    /// The peers with a listener.
    pub const LISTENING: [PeerKind; 7] = [
        PeerKind::Echo,
        PeerKind::Garbage,
        PeerKind::Silent,
        PeerKind::Reset,
        PeerKind::ResetOnFirstByte,
        PeerKind::FinOnFirstByte,
        PeerKind::Fin,
    ];

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            PeerKind::Echo => "echo",
            PeerKind::Garbage => "garbage",
            PeerKind::Silent => "silent",
            PeerKind::Reset => "reset",
            PeerKind::ResetOnFirstByte => "reset-on-first-byte",
            PeerKind::FinOnFirstByte => "fin-on-first-byte",
            PeerKind::Fin => "fin",
            PeerKind::Refuse => "refusing",
        }
    }
}

/// The running peers.
pub struct Peers {
    v4: Vec<(PeerKind, SocketAddr)>,
    /// A garbage peer on ::1, if IPv6 loopback works.
    v6_garbage: Option<SocketAddr>,
    /// A port nobody listens on.
    refused: SocketAddr,
}

fn serve(kind: PeerKind, mut s: TcpStream, mut rng: Rng) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(120)));
    let mut buf = vec![0u8; 64 * 1024];
    let drain = |s: &mut TcpStream, buf: &mut [u8]| while matches!(s.read(buf), Ok(n) if n > 0) {};
    match kind {
        PeerKind::Echo => loop {
            match s.read(&mut buf) {
                Ok(n) if n > 0 => {
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                _ => break,
            }
        },
        PeerKind::Garbage => {
            let n = rng.range(1, 64 * 1024) as usize;
            rng.fill(&mut buf[..n]);
            let _ = s.write_all(&buf[..n]);
            drain(&mut s, &mut buf);
        }
        PeerKind::Silent => drain(&mut s, &mut buf),
        PeerKind::Reset => {
            // Let the connecting side return from connect() first: a reset
            // that overtakes it makes connect() itself fail with ECONNRESET
            // (seen under TCG), and then no socket is left to hand over.
            thread::sleep(Duration::from_millis(50));
            sys::set_linger_zero(s.as_raw_fd());
        }
        PeerKind::ResetOnFirstByte => {
            let _ = s.read(&mut buf[..1]);
            sys::set_linger_zero(s.as_raw_fd());
        }
        PeerKind::FinOnFirstByte => {
            let _ = s.read(&mut buf[..1]);
            let _ = s.shutdown(Shutdown::Write);
            drain(&mut s, &mut buf);
        }
        PeerKind::Fin | PeerKind::Refuse => {}
    }
}

fn listen(kind: PeerKind, addr: &str, rng: &mut Rng) -> std::io::Result<SocketAddr> {
    let l = TcpListener::bind(addr)?;
    let a = l.local_addr()?;
    let mut r = rng.fork();
    thread::Builder::new()
        .name(format!("peer-{}", kind.name()))
        .spawn(move || {
            for s in l.incoming().flatten() {
                let cr = r.fork();
                let _ = thread::Builder::new()
                    .name("peer-conn".into())
                    .spawn(move || serve(kind, s, cr));
            }
        })?;
    Ok(a)
}

impl Peers {
    /// Starts every peer.
    pub fn start(rng: &mut Rng) -> std::io::Result<Peers> {
        let mut v4 = Vec::new();
        for k in PeerKind::LISTENING {
            v4.push((k, listen(k, "127.0.0.1:0", rng)?));
        }
        let v6_garbage = listen(PeerKind::Garbage, "[::1]:0", rng).ok();
        let refused = {
            let l = TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?
        };
        Ok(Peers {
            v4,
            v6_garbage,
            refused,
        })
    }

    fn addr(&self, kind: PeerKind) -> SocketAddr {
        if kind == PeerKind::Refuse {
            return self.refused;
        }
        self.v4
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, a)| *a)
            .expect("every listening kind has a peer")
    }

    /// The portal string of a peer ("127.0.0.1:port").
    pub fn portal(&self, kind: PeerKind) -> String {
        self.addr(kind).to_string()
    }

    /// A TCP socket connected to `kind` (for `Refuse`: a socket whose connect
    /// failed).
    pub fn connect(&self, kind: PeerKind) -> std::io::Result<OwnedFd> {
        if kind == PeerKind::Refuse {
            let fd = sys::socket(libc::AF_INET, libc::SOCK_STREAM, 0)?;
            let SocketAddr::V4(a) = self.refused else {
                unreachable!("the refused address is IPv4")
            };
            let _ = sys::connect_v4(&fd, a);
            return Ok(fd);
        }
        // A peer that resets may still overtake connect() on a loaded
        // machine: try again a few times before calling it a failure.
        let mut tries = 0;
        loop {
            match TcpStream::connect(self.addr(kind)) {
                Ok(s) => return Ok(OwnedFd::from(s)),
                Err(e)
                    if kind == PeerKind::Reset
                        && e.kind() == std::io::ErrorKind::ConnectionReset
                        && tries < 5 =>
                {
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A TCP socket over IPv6 loopback to a garbage peer, if available.
    pub fn connect_v6(&self) -> Option<OwnedFd> {
        let a = self.v6_garbage?;
        TcpStream::connect(a).ok().map(OwnedFd::from)
    }

    /// An MPTCP socket connected to the silent peer, if the kernel has MPTCP.
    pub fn connect_mptcp(&self) -> Option<OwnedFd> {
        let fd = sys::socket(libc::AF_INET, libc::SOCK_STREAM, libc::IPPROTO_MPTCP).ok()?;
        let SocketAddr::V4(a) = self.addr(PeerKind::Silent) else {
            return None;
        };
        sys::connect_v4(&fd, a).ok()?;
        Some(fd)
    }

    /// A TCP socket connected to the silent peer, then shut down for writing.
    pub fn connect_half_closed(&self) -> std::io::Result<OwnedFd> {
        let s = TcpStream::connect(self.addr(PeerKind::Silent))?;
        s.shutdown(Shutdown::Write)?;
        Ok(OwnedFd::from(s))
    }

    /// A listening TCP socket.
    pub fn listening() -> std::io::Result<OwnedFd> {
        Ok(OwnedFd::from(TcpListener::bind("127.0.0.1:0")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_behave() {
        let mut rng = Rng::new(11);
        let p = Peers::start(&mut rng).unwrap();
        // Echo.
        let mut s = TcpStream::from(p.connect(PeerKind::Echo).unwrap());
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"hello").unwrap();
        let mut b = [0u8; 5];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hello");
        // Garbage arrives unasked.
        let mut g = TcpStream::from(p.connect(PeerKind::Garbage).unwrap());
        g.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(g.read(&mut b).unwrap() > 0);
        // Reset on first byte.
        let mut r = TcpStream::from(p.connect(PeerKind::ResetOnFirstByte).unwrap());
        r.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        r.write_all(b"x").unwrap();
        let e = r.read(&mut b);
        assert!(
            matches!(&e, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "{e:?}"
        );
        // FIN on first byte.
        let mut f = TcpStream::from(p.connect(PeerKind::FinOnFirstByte).unwrap());
        f.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        f.write_all(b"x").unwrap();
        assert_eq!(f.read(&mut b).unwrap(), 0);
        // Refused: not connected.
        let fd = p.connect(PeerKind::Refuse).unwrap();
        assert_ne!(sys::tcp_state(fd.as_raw_fd()), Some(1));
        // Half-closed: not established any more.
        let h = p.connect_half_closed().unwrap();
        assert_ne!(sys::tcp_state(h.as_raw_fd()), Some(1));
        // Silent stays established.
        let q = p.connect(PeerKind::Silent).unwrap();
        assert_eq!(sys::tcp_state(q.as_raw_fd()), Some(1));
        assert!(p.portal(PeerKind::Echo).starts_with("127.0.0.1:"));
    }
}
