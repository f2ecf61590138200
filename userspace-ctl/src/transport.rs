//! One TCP connection to a portal, as the login engine sees it: connect with a
//! timeout, send whole PDUs framed by iscsi-proto's `write_pdu`, receive whole PDUs
//! through `RxFramer::feed_collect`, every read and write bounded by one deadline.
//!
//! Only I/O lives here; what the bytes mean is iscsi-proto's business. Every I/O
//! failure becomes a [`TransportError`] whose `Display` is the sentence the user
//! reads and whose [`exit_code`](TransportError::exit_code) is the script's answer:
//!
//! * refused, unreachable, unresolvable, connect or answer timeout → `UNREACHABLE`:
//!   nobody usable is there, retrying later may help;
//! * the peer closing (or resetting) an established connection mid-exchange →
//!   `PROTOCOL`: a target must answer a login with a Login Response (a reject
//!   carries a status), so hanging up instead is the target breaking RFC 7143,
//!   or the port belonging to something that does not speak iSCSI;
//! * a PDU that does not frame (digest mismatch, oversized segment) → `PROTOCOL`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, SocketAddrV6, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use iscsi_proto::bhs::{Bhs, BHS_LEN};
use iscsi_proto::framing::{self, FramingError, FramingSettings, RxFramer};

use crate::exit;
use crate::portal::{Host, Portal, Zone};

/// Bytes asked of the kernel per read(2); PDUs larger than this arrive in pieces.
const READ_CHUNK: usize = 64 * 1024;

/// What the connection is doing, for error sentences ("… during login").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Login,
    Discovery,
    Logout,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Login => "login",
            Phase::Discovery => "discovery",
            Phase::Logout => "logout",
        })
    }
}

/// Where our end of the connection sits: `--iface` binds the socket to an
/// interface (SO_BINDTODEVICE: only routes through it are used), `--initiator-address`
/// to a local address (the source address the target sees). Both apply before
/// connect(), to every connection a login opens (redirects and re-logins too).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    pub iface: Option<String>,
    pub address: Option<IpAddr>,
}

impl Source {
    /// Nothing to bind: the kernel picks interface and address.
    pub fn is_default(&self) -> bool {
        self.iface.is_none() && self.address.is_none()
    }
}

/// An I/O failure, worded for the user.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot bind the connection to {what}: {reason}")]
    Source { what: String, reason: String },
    #[error("no interface {zone:?} for the IPv6 zone of {portal}: {reason}")]
    Zone {
        zone: String,
        portal: String,
        reason: String,
    },
    #[error("cannot resolve {host:?}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("connection to {addr} refused: no iSCSI target listens there")]
    Refused { addr: SocketAddr },
    #[error("cannot reach {addr}: {reason}")]
    Unreachable { addr: SocketAddr, reason: String },
    #[error("no TCP connection to {portal} within {} (--connect-timeout)", secs(*.limit))]
    ConnectTimeout { portal: String, limit: Duration },
    #[error("target {addr} did not answer within {} during {phase} (--login-timeout)",
            secs(*.limit))]
    Timeout {
        addr: SocketAddr,
        phase: Phase,
        limit: Duration,
    },
    #[error("target closed the connection during {phase} ({addr})")]
    Closed { addr: SocketAddr, phase: Phase },
    #[error("connection to {addr} failed during {phase}: {reason}")]
    Io {
        addr: SocketAddr,
        phase: Phase,
        reason: String,
    },
    #[error("target {addr} sent a PDU that does not frame during {phase}: {error:?}")]
    Framing {
        addr: SocketAddr,
        phase: Phase,
        error: FramingError,
    },
}

impl TransportError {
    /// The exit code (see the module docs for the reasoning).
    pub fn exit_code(&self) -> u8 {
        match self {
            // Our own settings name something this host does not have.
            TransportError::Source { .. } | TransportError::Zone { .. } => exit::USAGE,
            TransportError::Resolve { .. }
            | TransportError::Refused { .. }
            | TransportError::Unreachable { .. }
            | TransportError::ConnectTimeout { .. }
            | TransportError::Timeout { .. }
            | TransportError::Io { .. } => exit::UNREACHABLE,
            TransportError::Closed { .. } | TransportError::Framing { .. } => exit::PROTOCOL,
        }
    }
}

/// "15 s", or "0.5 s" for the sub-second limits tests use.
fn secs(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// One PDU as received: its header and data segment (digests already checked).
#[derive(Debug)]
pub struct Received<'a> {
    pub bhs: [u8; BHS_LEN],
    pub data: &'a [u8],
}

/// A connected socket plus the framing state of both directions.
pub struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    phase: Phase,
    /// The budget the current deadline was set from, for the timeout message.
    limit: Duration,
    deadline: Instant,
    framer: RxFramer,
    /// Bytes read but not yet framed: `inbuf[in_start..in_end]`.
    inbuf: Box<[u8]>,
    in_start: usize,
    in_end: usize,
    /// Data segment of the PDU being received; as long as our MaxRecvDataSegmentLength.
    data: Vec<u8>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .field("phase", &self.phase)
            .field("settings", &self.framer.settings())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Resolves `portal` and connects to the first address that answers, all within
    /// `connect_timeout`, from `source`; the exchange then has `phase_timeout` (see
    /// [`Self::begin`]).
    pub fn connect(
        portal: &Portal,
        source: &Source,
        connect_timeout: Duration,
        phase: Phase,
        phase_timeout: Duration,
    ) -> Result<Connection, TransportError> {
        let addrs = resolve(portal)?;
        let start = Instant::now();
        let mut last = None;
        for addr in addrs {
            let left = connect_timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                break;
            }
            match connect_from(portal, addr, source, left) {
                Ok(stream) => return Connection::from_stream(stream, phase, phase_timeout),
                Err(Dial::Setup(e)) => return Err(e),
                Err(Dial::Connect(a, e)) => {
                    last = Some(connect_error(a, e, portal, connect_timeout))
                }
            }
        }
        Err(last.unwrap_or_else(|| TransportError::ConnectTimeout {
            portal: portal.to_string(),
            limit: connect_timeout,
        }))
    }

    /// Wraps an already connected stream (tests, and the kernel handoff's reverse).
    pub fn from_stream(
        stream: TcpStream,
        phase: Phase,
        phase_timeout: Duration,
    ) -> Result<Connection, TransportError> {
        let peer = stream
            .peer_addr()
            .map_err(|e| TransportError::Unreachable {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                reason: e.to_string(),
            })?;
        // Login is strict request/response: do not let Nagle hold a PDU back.
        let _ = stream.set_nodelay(true);
        let settings = FramingSettings::default();
        Ok(Connection {
            stream,
            peer,
            phase,
            limit: phase_timeout,
            deadline: Instant::now() + phase_timeout,
            framer: RxFramer::new(settings),
            inbuf: vec![0; READ_CHUNK].into_boxed_slice(),
            in_start: 0,
            in_end: 0,
            data: vec![0; data_buf_len(settings)],
        })
    }

    /// The address actually connected to.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Starts a new phase with a fresh deadline `timeout` from now: logout after a
    /// long login still gets its full budget.
    pub fn begin(&mut self, phase: Phase, timeout: Duration) {
        self.phase = phase;
        self.limit = timeout;
        self.deadline = Instant::now() + timeout;
    }

    /// Switches digests and the receive limit, from the next PDU on both ways (login
    /// turns the negotiated values on for the full feature phase). The receive
    /// buffer follows our declared MaxRecvDataSegmentLength.
    pub fn set_framing(&mut self, settings: FramingSettings) {
        self.framer.set_settings(settings);
        self.data.resize(data_buf_len(settings), 0);
    }

    /// The framing in force for the next PDU.
    pub fn framing(&self) -> FramingSettings {
        self.framer.settings()
    }

    /// Sends one PDU as iscsi-proto's writers produce it (BHS, data, padding, no
    /// digests), adding the digests now in force.
    pub fn send(&mut self, pdu: &[u8]) -> Result<(), TransportError> {
        let s = self.framer.settings();
        if !(s.header_digest || s.data_digest) {
            return self.write_all(pdu);
        }
        let wire = self.with_digests(pdu, s)?;
        self.write_all(&wire)
    }

    /// Rebuilds `pdu` with the digests of `s`. Login, text and logout PDUs never
    /// carry an AHS; one that does is refused rather than mangled.
    fn with_digests(&self, pdu: &[u8], s: FramingSettings) -> Result<Vec<u8>, TransportError> {
        let header: [u8; BHS_LEN] = pdu
            .get(..BHS_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(self.framing_error(FramingError::BhsTruncated))?;
        let view = Bhs::new_checked(&header[..])
            .map_err(|_| self.framing_error(FramingError::BhsTruncated))?;
        let data_len = view.data_segment_len();
        let len = usize::try_from(data_len).unwrap_or(usize::MAX);
        let mismatch = FramingError::LengthMismatch {
            bhs: len,
            given: pdu.len().saturating_sub(BHS_LEN),
        };
        let data = pdu
            .get(BHS_LEN..BHS_LEN.saturating_add(len))
            .filter(|_| view.total_ahs_len() == 0)
            .ok_or(self.framing_error(mismatch))?;
        // `data` is a slice of `pdu`, so this length is bounded by the input.
        let total = framing::pdu_wire_len(0, data_len, s.header_digest, s.data_digest)
            .ok_or(self.framing_error(mismatch))?;
        let mut wire = vec![0u8; total];
        let n = framing::write_pdu(
            &header,
            &[],
            data,
            s.header_digest,
            s.data_digest,
            &mut wire,
        )
        .map_err(|e| self.framing_error(e))?;
        wire.truncate(n);
        Ok(wire)
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        let timeout = self.remaining()?;
        self.stream
            .set_write_timeout(Some(timeout))
            .map_err(|e| self.io_error(e))?;
        self.stream.write_all(bytes).map_err(|e| self.io_error(e))
    }

    /// Receives the next whole PDU, waiting until the deadline.
    pub fn recv(&mut self) -> Result<Received<'_>, TransportError> {
        loop {
            let input = self.inbuf.get(self.in_start..self.in_end).unwrap_or(&[]);
            let (used, pdu) = self
                .framer
                .feed_collect(input, &mut self.data)
                .map_err(|e| TransportError::Framing {
                    addr: self.peer,
                    phase: self.phase,
                    error: e,
                })?;
            self.in_start = self.in_start.saturating_add(used).min(self.in_end);
            if let Some(pdu) = pdu {
                let len = usize::try_from(pdu.data_len).unwrap_or(usize::MAX);
                return Ok(Received {
                    bhs: pdu.bhs,
                    data: self.data.get(..len).unwrap_or(&[]),
                });
            }
            self.fill()?;
        }
    }

    /// Closes both directions; errors are moot at this point.
    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// The socket, to close it: whatever was read past the last PDU is lost.
    pub fn into_raw_stream(self) -> TcpStream {
        self.stream
    }

    /// Gives up the socket, e.g. to hand it to the kernel after login; `None`
    /// when bytes past the last PDU were already read, since they would be lost.
    pub fn into_stream(self) -> Option<TcpStream> {
        (self.in_start == self.in_end && self.framer.at_pdu_boundary()).then_some(self.stream)
    }

    /// Reads more bytes into the (drained) input buffer.
    fn fill(&mut self) -> Result<(), TransportError> {
        let timeout = self.remaining()?;
        self.stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| self.io_error(e))?;
        self.in_start = 0;
        self.in_end = 0;
        loop {
            match self.stream.read(&mut self.inbuf) {
                Ok(0) => {
                    return Err(TransportError::Closed {
                        addr: self.peer,
                        phase: self.phase,
                    })
                }
                Ok(n) => {
                    self.in_end = n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_error(e)),
            }
        }
    }

    /// Time left before the deadline; a spent budget is a timeout, not a zero
    /// socket timeout (which std refuses).
    fn remaining(&self) -> Result<Duration, TransportError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.timeout());
        }
        Ok(left)
    }

    fn timeout(&self) -> TransportError {
        TransportError::Timeout {
            addr: self.peer,
            phase: self.phase,
            limit: self.limit,
        }
    }

    fn framing_error(&self, error: FramingError) -> TransportError {
        TransportError::Framing {
            addr: self.peer,
            phase: self.phase,
            error,
        }
    }

    fn io_error(&self, e: io::Error) -> TransportError {
        use io::ErrorKind as K;
        match e.kind() {
            // SO_RCVTIMEO/SO_SNDTIMEO expiry shows up as EAGAIN.
            K::WouldBlock | K::TimedOut => self.timeout(),
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                TransportError::Closed {
                    addr: self.peer,
                    phase: self.phase,
                }
            }
            _ => TransportError::Io {
                addr: self.peer,
                phase: self.phase,
                reason: e.to_string(),
            },
        }
    }
}

/// Closes `streams` and waits, at most `within` in all, until the peer has
/// closed its end of each (end of stream or a reset), throwing away what it
/// still sends. Returns how many it had not closed by then. Logged-in
/// connections of a session we give up are closed this way before a login
/// with the session's ISID may follow: a target reinstating a session while
/// several of its connections still close can fail badly (LIO oopses).
pub fn close_awaiting_peer(streams: Vec<TcpStream>, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    for s in &streams {
        let _ = s.shutdown(Shutdown::Write);
    }
    let mut open = 0;
    let mut buf = [0u8; 4096];
    for mut s in streams {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // Past the bound only what already came counts (no waiting).
            let set = if left.is_zero() {
                s.set_nonblocking(true)
            } else {
                s.set_nonblocking(false)
                    .and_then(|()| s.set_read_timeout(Some(left)))
            };
            if set.is_err() {
                open += 1;
                break;
            }
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if left.is_zero() {
                        open += 1;
                        break;
                    }
                }
                // Reset: closed too.
                Err(_) => break,
            }
        }
    }
    open
}

/// Receive buffer length for `settings`: what the framer lets through, at least the
/// login limit so a login PDU always fits.
fn data_buf_len(settings: FramingSettings) -> usize {
    let max = settings
        .max_recv_data_segment_len
        .max(framing::DEFAULT_MAX_RECV_DATA_SEGMENT_LEN);
    usize::try_from(max).unwrap_or(usize::MAX)
}

/// Why one address could not be connected to.
enum Dial {
    /// Our own setup failed (bind, zone): trying other addresses will not help.
    Setup(TransportError),
    /// connect() failed for this address.
    Connect(SocketAddr, io::Error),
}

/// One TCP connection to `addr` (already resolved from `portal`), bound as
/// `source` asks, with the IPv6 zone turned into a scope id on this very socket
/// (so in the network namespace the socket lives in).
fn connect_from(
    portal: &Portal,
    addr: SocketAddr,
    source: &Source,
    timeout: Duration,
) -> Result<TcpStream, Dial> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let setup = |what: String, e: io::Error| {
        Dial::Setup(TransportError::Source {
            what,
            reason: e.to_string(),
        })
    };
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| setup("a new socket".into(), e))?;
    let mut addr = addr;
    if let (SocketAddr::V6(v6), Host::V6(_, Some(zone))) = (&mut addr, &portal.host) {
        v6.set_scope_id(scope_id(&sock, zone).map_err(|reason| {
            Dial::Setup(TransportError::Zone {
                zone: zone.to_string(),
                portal: portal.to_string(),
                reason,
            })
        })?);
    }
    if let Some(iface) = &source.iface {
        sock.bind_device(Some(iface.as_bytes())).map_err(|e| {
            let reason = if e.raw_os_error() == Some(rustix::io::Errno::NODEV.raw_os_error()) {
                "no such interface".to_owned()
            } else {
                e.to_string()
            };
            Dial::Setup(TransportError::Source {
                what: format!("interface {iface}"),
                reason,
            })
        })?;
    }
    if let Some(ip) = source.address {
        if ip.is_ipv4() != addr.is_ipv4() {
            return Err(Dial::Setup(TransportError::Source {
                what: format!("address {ip}"),
                reason: format!(
                    "the portal's address {} is of the other IP family",
                    addr.ip()
                ),
            }));
        }
        let local = match (ip, addr) {
            // A link-local source needs the same zone as the destination.
            (IpAddr::V6(a), SocketAddr::V6(d)) => {
                SocketAddr::V6(SocketAddrV6::new(a, 0, 0, d.scope_id()))
            }
            _ => SocketAddr::new(ip, 0),
        };
        sock.bind(&SockAddr::from(local))
            .map_err(|e| setup(format!("address {ip}"), e))?;
    }
    match sock.connect_timeout(&SockAddr::from(addr), timeout) {
        Ok(()) => Ok(TcpStream::from(sock)),
        Err(e) => Err(Dial::Connect(addr, e)),
    }
}

/// The scope id of `zone`: its number, or the index of the interface of that
/// name as seen by `sock`'s network namespace (SIOCGIFINDEX, what
/// if_nametoindex(3) does).
fn scope_id(sock: &socket2::Socket, zone: &Zone) -> Result<u32, String> {
    if let Some(i) = zone.index() {
        return Ok(i);
    }
    rustix::net::netdevice::name_to_index(sock, zone.as_str()).map_err(|e| {
        if e == rustix::io::Errno::NODEV {
            "no such interface".to_owned()
        } else {
            e.to_string()
        }
    })
}

/// The addresses to try, in resolver order. Literal addresses skip the resolver.
fn resolve(portal: &Portal) -> Result<Vec<SocketAddr>, TransportError> {
    let ip = match &portal.host {
        Host::V4(a) => Some(IpAddr::V4(*a)),
        Host::V6(a, _) => Some(IpAddr::V6(*a)),
        Host::Name(_) => None,
    };
    if let Some(ip) = ip {
        return Ok(vec![SocketAddr::new(ip, portal.port)]);
    }
    let host = portal.host.to_string();
    // getaddrinfo has no timeout of its own; the resolver's (resolv.conf) applies.
    let addrs: Vec<SocketAddr> = (host.as_str(), portal.port)
        .to_socket_addrs()
        .map_err(|e| TransportError::Resolve {
            host: host.clone(),
            reason: e.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(TransportError::Resolve {
            host,
            reason: "the name has no addresses".into(),
        });
    }
    Ok(addrs)
}

fn connect_error(
    addr: SocketAddr,
    e: io::Error,
    portal: &Portal,
    limit: Duration,
) -> TransportError {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => TransportError::Refused { addr },
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TransportError::ConnectTimeout {
            portal: portal.to_string(),
            limit,
        },
        _ => TransportError::Unreachable {
            addr,
            reason: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    #[test]
    fn closing_waits_for_the_peer_to_close_and_no_longer() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        // A peer that closes once it reads our end of stream, after a while
        // and after sending something we must throw away.
        let polite = thread::spawn({
            let l = l.try_clone().unwrap();
            move || {
                let (mut s, _) = l.accept().unwrap();
                let mut b = [0u8; 16];
                while s.read(&mut b).unwrap() > 0 {}
                s.write_all(b"late bytes").unwrap();
                thread::sleep(Duration::from_millis(200));
            }
        });
        let a = TcpStream::connect(addr).unwrap();
        let t = Instant::now();
        assert_eq!(close_awaiting_peer(vec![a], Duration::from_secs(10)), 0);
        assert!(
            t.elapsed() >= Duration::from_millis(150),
            "{:?}",
            t.elapsed()
        );
        polite.join().unwrap();
        // A peer that never closes: counted as open once the bound passes.
        let b = TcpStream::connect(addr).unwrap();
        let (_held, _) = l.accept().unwrap();
        let c = TcpStream::connect(addr).unwrap();
        let (c_peer, _) = l.accept().unwrap();
        drop(c_peer);
        let t = Instant::now();
        assert_eq!(
            close_awaiting_peer(vec![b, c], Duration::from_millis(300)),
            1
        );
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

    fn listener() -> (TcpListener, Portal) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        (l, Portal::parse(&format!("127.0.0.1:{port}")).unwrap())
    }

    fn nop_in_bhs(data_len: u8) -> [u8; BHS_LEN] {
        let mut b = [0u8; BHS_LEN];
        b[0] = 0x20; // NOP-In, a target opcode
        b[1] = 0x80;
        b[7] = data_len;
        b[16..20].copy_from_slice(&[0xff; 4]);
        b
    }

    #[test]
    fn refused_is_unreachable() {
        let (l, portal) = listener();
        drop(l);
        let e = Connection::connect(
            &portal,
            &Source::default(),
            Duration::from_secs(2),
            Phase::Login,
            Duration::from_secs(2),
        )
        .unwrap_err();
        assert!(matches!(e, TransportError::Refused { .. }), "{e}");
        assert_eq!(e.exit_code(), exit::UNREACHABLE);
        assert!(e.to_string().contains("refused"), "{e}");
    }

    #[test]
    fn pdus_cross_in_pieces_and_leftovers_are_kept() {
        let (l, portal) = listener();
        let server = thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut wire = Vec::new();
            for n in [5u8, 0] {
                let data = vec![b'x'; n.into()];
                let mut out = vec![0u8; 128];
                let len =
                    framing::write_pdu(&nop_in_bhs(n), &[], &data, false, false, &mut out).unwrap();
                wire.extend_from_slice(&out[..len]);
            }
            // Dribble the first bytes, then the rest (second PDU whole) in one go.
            for b in &wire[..10] {
                s.write_all(&[*b]).unwrap();
                s.flush().unwrap();
            }
            s.write_all(&wire[10..]).unwrap();
            let mut got = [0u8; BHS_LEN];
            s.read_exact(&mut got).unwrap();
            got
        });
        let mut c = Connection::connect(
            &portal,
            &Source::default(),
            Duration::from_secs(5),
            Phase::Login,
            Duration::from_secs(5),
        )
        .unwrap();
        let r = c.recv().unwrap();
        assert_eq!((r.bhs[0], r.data), (0x20, &b"xxxxx"[..]));
        let r = c.recv().unwrap();
        assert_eq!(r.data.len(), 0);
        let mut out = [0u8; BHS_LEN];
        out[0] = 0x46; // Logout Request
        c.send(&out).unwrap();
        assert_eq!(server.join().unwrap()[0], 0x46);
    }

    #[test]
    fn silence_hits_the_deadline_and_close_is_reported() {
        let (l, portal) = listener();
        let server = thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            thread::sleep(Duration::from_millis(700));
            drop(s);
        });
        let mut c = Connection::connect(
            &portal,
            &Source::default(),
            Duration::from_secs(2),
            Phase::Login,
            Duration::from_millis(300),
        )
        .unwrap();
        let t = Instant::now();
        let e = c.recv().unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(matches!(e, TransportError::Timeout { .. }), "{e}");
        assert!(e.to_string().contains("within 0.3 s during login"), "{e}");
        assert_eq!(e.exit_code(), exit::UNREACHABLE);
        c.begin(Phase::Logout, Duration::from_secs(5));
        let e = c.recv().unwrap_err();
        server.join().unwrap();
        assert!(
            e.to_string()
                .starts_with("target closed the connection during logout"),
            "{e}"
        );
        assert_eq!(e.exit_code(), exit::PROTOCOL);
    }

    #[test]
    fn digests_are_added_once_negotiated_and_names_resolve() {
        let (l, portal) = listener();
        let server = thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut got = vec![0u8; BHS_LEN + 4];
            s.read_exact(&mut got).unwrap();
            got
        });
        // By name: "localhost" may resolve to ::1 first, which refuses; the next
        // address must be tried.
        let by_name = Portal::parse(&format!("localhost:{}", portal.port)).unwrap();
        let mut c = Connection::connect(
            &by_name,
            &Source::default(),
            Duration::from_secs(5),
            Phase::Logout,
            Duration::from_secs(5),
        )
        .unwrap();
        c.set_framing(FramingSettings {
            header_digest: true,
            data_digest: true,
            max_recv_data_segment_len: 65536,
            target_opcodes_only: true,
        });
        let mut bhs = [0u8; BHS_LEN];
        bhs[0] = 0x46;
        c.send(&bhs).unwrap();
        let got = server.join().unwrap();
        let crc = framing::header_digest(&bhs, &[]);
        assert_eq!(&got[..BHS_LEN], &bhs[..]);
        assert_eq!(&got[BHS_LEN..], &iscsi_proto::crc32c::digest_bytes(crc)[..]);
    }

    #[test]
    fn unresolvable_names_are_unreachable() {
        let p = Portal::parse("no-such-host.invalid:3260").unwrap();
        let e = Connection::connect(
            &p,
            &Source::default(),
            Duration::from_secs(5),
            Phase::Login,
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(matches!(e, TransportError::Resolve { .. }), "{e}");
        assert_eq!(e.exit_code(), exit::UNREACHABLE);
        assert!(
            e.to_string()
                .starts_with("cannot resolve \"no-such-host.invalid\""),
            "{e}"
        );
    }

    #[test]
    fn framing_errors_are_protocol_errors() {
        let (l, portal) = listener();
        let server = thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = nop_in_bhs(0);
            b[0] = 0x01; // SCSI Command: an initiator opcode
            s.write_all(&b).unwrap();
            thread::sleep(Duration::from_millis(200));
        });
        let mut c = Connection::connect(
            &portal,
            &Source::default(),
            Duration::from_secs(2),
            Phase::Discovery,
            Duration::from_secs(2),
        )
        .unwrap();
        let e = c.recv().unwrap_err();
        server.join().unwrap();
        assert!(matches!(e, TransportError::Framing { .. }), "{e}");
        assert_eq!(e.exit_code(), exit::PROTOCOL);
    }
}
