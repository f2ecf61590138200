//! One iSCSI connection's I/O, free of session logic: received bytes go through
//! `proto::framing::RxFramer` and come out as header / data / end events to a
//! [`PduSink`], which decides where each data segment lands: straight into a
//! command's pages, or a scratch buffer for small PDUs. The socket's skbs are
//! read in place (`tcp_read_sock`): headers are copied out a header at a time
//! (the framer's `feed_limit`), so without a data digest Data-In payload goes
//! from the skb to the pages in one copy. Outgoing PDUs are framed
//! ([`Framed`]: header (+ header digest) and pad (+ data digest)) and written
//! around their data segment, bytes or pages by reference, resumable from
//! any byte when a non-blocking send stops at a full send buffer.
#![deny(unsafe_code)]

use core::fmt;

use kernel::prelude::*;

use crate::proto::bhs::BHS_LEN;
use crate::proto::crc32c::DIGEST_LEN;
use crate::proto::framing::{
    data_trailer, header_segment, FramingError, FramingSettings, RxEvent, RxFramer,
};
use crate::sys::crc::{crc32c, crc32c_update};
use crate::sys::lock::{new_spinlock_bh, SpinLockBh};
use crate::sys::socket::{ReadEnd, Reading, SkbSlice, SocketEvents, TcpSocket, TxPages};

/// Receive bounce buffer: headers, and data segments the framer must see
/// (scratch PDUs, data under a data digest), copied out of the skbs.
const RX_CHUNK: usize = 64 * 1024;

/// Where the data segment of the PDU being received goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Dest<D: Copy> {
    /// Collected whole in the scratch buffer, handed over at the end.
    Scratch,
    /// Placed piece by piece from the skbs by [`PduSink::place`] with this
    /// target.
    Direct(D),
}

/// The consumer of received PDUs. Any error fails the connection; its
/// `Display` is the log line naming the violation.
pub(crate) trait PduSink {
    /// Identifies a direct destination (e.g. a command and an offset).
    type Direct: Copy;
    /// A protocol violation.
    type Error: fmt::Display;

    /// A header arrived (digest verified); say where its `data_len` bytes go.
    fn header(
        &mut self,
        bhs: &[u8; BHS_LEN],
        data_len: u32,
    ) -> Result<Dest<Self::Direct>, Self::Error>;

    /// Places `len` bytes of a direct segment, from `offset` within it, by
    /// copying them out of `skb` from byte `from` (one copy, no bounce
    /// buffer), folding them into `crc` when given (the data digest's
    /// register). `Ok(false)` if the destination is gone: the bytes are then
    /// dropped by the caller (and still digested).
    fn place(
        &mut self,
        to: Self::Direct,
        offset: u32,
        skb: &SkbSlice<'_>,
        from: usize,
        len: usize,
        crc: Option<&mut u32>,
    ) -> Result<bool, Self::Error>;

    /// The PDU is complete and verified. `scratch` holds the data segment if it
    /// was collected ([`Dest::Scratch`]), else is empty.
    fn end(
        &mut self,
        bhs: &[u8; BHS_LEN],
        dest: Dest<Self::Direct>,
        scratch: &[u8],
    ) -> Result<(), Self::Error>;

    /// The skb piece being read is consumed: release anything held across
    /// the events of one piece (a lock taken lazily by the first of them).
    fn piece_done(&mut self) {}
}

/// Receive-side state of a connection; used by one receiver at a time.
pub(crate) struct RxState<D: Copy> {
    framer: RxFramer,
    buf: KVVec<u8>,
    scratch: KVVec<u8>,
    /// The PDU in progress: its header, data length and destination.
    cur: CurrentPdu<D>,
}

impl<D: Copy> RxState<D> {
    /// Buffers for a connection whose MaxRecvDataSegmentLength is `max_recv`.
    pub(crate) fn new(settings: FramingSettings) -> Result<Self> {
        let scratch_len = settings.max_recv_data_segment_len as usize;
        Ok(RxState {
            framer: RxFramer::new(settings).with_crc_update(crc32c_update),
            buf: KVVec::from_elem(0u8, RX_CHUNK, GFP_KERNEL)?,
            scratch: KVVec::from_elem(0u8, scratch_len, GFP_KERNEL)?,
            cur: None,
        })
    }
}

/// Why a receive pass stopped.
pub(crate) enum RxStop<E> {
    /// Everything available was consumed; the socket will signal for more.
    Drained,
    /// The pass used its budget; call again (fairness with other work).
    Budget,
    /// The peer closed the connection.
    Closed,
    /// The socket failed (reset, or an error reading it).
    Socket(Error),
    /// The byte stream is not valid iSCSI framing.
    Framing(FramingError),
    /// The sink refused a PDU.
    Sink(E),
}

/// A connection: the socket, the digests negotiated for it, and its owner's
/// receive side `R`, behind a lock that softirq (the socket callbacks) and
/// process context both take.
#[pin_data]
pub(crate) struct Conn<Ev: SocketEvents, R> {
    pub(crate) sock: TcpSocket<Ev>,
    header_digest: bool,
    data_digest: bool,
    /// Taken inside the socket lock, by one receiver at a time.
    #[pin]
    pub(crate) rx: SpinLockBh<R>,
}

impl<Ev: SocketEvents, R> Conn<Ev, R> {
    /// Wraps a logged-in socket.
    pub(crate) fn new(
        sock: TcpSocket<Ev>,
        header_digest: bool,
        data_digest: bool,
        rx: R,
    ) -> impl PinInit<Self> {
        pin_init!(Conn {
            sock,
            header_digest,
            data_digest,
            rx <- new_spinlock_bh!(rx, "iscsi_rs::Conn::rx"),
        })
    }

    /// Receives and dispatches PDUs until the socket is drained, about
    /// `budget` bytes were consumed, or something fails. `reading` must be
    /// this connection's socket lock.
    pub(crate) fn receive<S: PduSink>(
        &self,
        reading: &mut Reading<'_>,
        rx: &mut RxState<S::Direct>,
        sink: &mut S,
        budget: usize,
    ) -> RxStop<S::Error> {
        let mut stop: Option<RxStop<S::Error>> = None;
        let mut taken = 0usize;
        let mut reader = |skb: &SkbSlice<'_>| -> usize {
            // Stopped on an earlier piece: take nothing more this pass.
            if stop.is_some() {
                return 0;
            }
            let mut used = 0usize;
            while used < skb.len() {
                if taken >= budget {
                    stop = Some(RxStop::Budget);
                    break;
                }
                let avail = skb.len() - used;
                let n = match (rx.framer.data_slot(), rx.cur) {
                    // Inside a segment bound for a command's pages: straight
                    // from the skb (digested on the way when DataDigest is on).
                    (Some(slot), Some((_, _, Dest::Direct(to)))) => {
                        let n = avail.min(slot.left as usize);
                        let mut crc = slot.crc;
                        let placed = match sink.place(to, slot.offset, skb, used, n, crc.as_mut()) {
                            Ok(p) => p,
                            Err(e) => {
                                stop = Some(RxStop::Sink(e));
                                break;
                            }
                        };
                        if let (false, Some(c)) = (placed, crc.as_mut()) {
                            // Dropped, but the digest must still cover them.
                            match digest_skb(skb, used, n, *c, &mut rx.buf) {
                                Ok(v) => *c = v,
                                Err(e) => {
                                    stop = Some(RxStop::Socket(e));
                                    break;
                                }
                            }
                        }
                        // n <= left, so the framer accepts it.
                        let accounted =
                            u32::try_from(n).is_ok_and(|n| rx.framer.data_placed(n, crc));
                        if !accounted {
                            stop = Some(RxStop::Socket(EINVAL));
                            break;
                        }
                        // The segment may be complete: let the framer say so.
                        if let Err(e) =
                            dispatch(&mut rx.framer, &mut rx.scratch, &mut rx.cur, &[], sink)
                        {
                            stop = Some(e);
                            used += n;
                            break;
                        }
                        n
                    }
                    // Anything else through the framer, a header (or the rest
                    // of a PDU) at a time so no payload is copied twice.
                    _ => {
                        let n = avail.min(rx.framer.feed_limit()).min(rx.buf.len());
                        let Some(chunk) = rx.buf.get_mut(..n) else {
                            stop = Some(RxStop::Socket(EINVAL));
                            break;
                        };
                        if let Err(e) = skb.copy_to(used, chunk) {
                            stop = Some(RxStop::Socket(e));
                            break;
                        }
                        let input = rx.buf.get(..n).unwrap_or(&[]);
                        if let Err(e) =
                            dispatch(&mut rx.framer, &mut rx.scratch, &mut rx.cur, input, sink)
                        {
                            stop = Some(e);
                            used += n;
                            break;
                        }
                        n
                    }
                };
                used += n;
                taken += n;
            }
            sink.piece_done();
            used
        };
        let end = reading.read(&self.sock, &mut reader);
        if let Some(s) = stop {
            return s;
        }
        match end {
            Ok(ReadEnd::Open) => RxStop::Drained,
            Ok(ReadEnd::Closed) => RxStop::Closed,
            Err(e) => RxStop::Socket(e),
        }
    }

    /// Sends one PDU at once, blocking: `bhs` (no AHS), then `data` with
    /// padding and digests. `more` tells TCP that another PDU follows
    /// immediately.
    pub(crate) fn send_pdu(&self, bhs: &[u8; BHS_LEN], data: &[u8], more: bool) -> Result {
        let framed = self.frame(bhs, Segment::Bytes(data))?;
        let mut sent = 0;
        self.write(&framed, Segment::Bytes(data), &mut sent, more, true)?;
        Ok(())
    }

    /// Frames a PDU for [`Self::write`]: its header segment (`bhs`, no AHS,
    /// and the header digest) and the bytes after `data` (pad, data
    /// digest). With a data digest, pages must stay as they are until sent
    /// (a queue with stable writes): the CRC is computed over them here.
    pub(crate) fn frame(&self, bhs: &[u8; BHS_LEN], data: Segment<'_>) -> Result<Framed> {
        let mut f = Framed {
            hdr: [0; BHS_LEN + DIGEST_LEN],
            hdr_len: 0,
            data_len: data.len()?,
            trailer: [0; 8],
            trailer_len: 0,
        };
        f.hdr_len = header_segment(bhs, &[], self.header_digest, &mut f.hdr).map_err(|_| EINVAL)?;
        let crc = match data {
            _ if !self.data_digest || f.data_len == 0 => None,
            Segment::Bytes(b) => Some(crc32c(b)),
            Segment::Pages(p, _) => Some(p.crc32c()),
        };
        let mut tbuf = [0u8; 8];
        let trailer = data_trailer(f.data_len, crc, &mut tbuf);
        f.trailer_len = trailer.len();
        f.trailer = tbuf;
        Ok(f)
    }

    /// Sends the PDU `framed` with its data segment `data`, from byte
    /// `*sent` of the PDU on, advancing `*sent`; `more`: another PDU follows
    /// at once. With `wait` it blocks until all is queued; without, it stops
    /// at a full send buffer (the socket calls `write_space` when there is
    /// room). Returns whether the whole PDU is queued.
    pub(crate) fn write(
        &self,
        framed: &Framed,
        data: Segment<'_>,
        sent: &mut u32,
        more: bool,
        wait: bool,
    ) -> Result<bool> {
        let hdr = framed.hdr.get(..framed.hdr_len).unwrap_or(&[]);
        let trailer = framed.trailer.get(..framed.trailer_len).unwrap_or(&[]);
        let total = framed.total();
        match data {
            Segment::Bytes(d) => {
                let n = self
                    .sock
                    .send_from(&[hdr, d, trailer], *sent as usize, more, wait)?;
                *sent += n as u32;
            }
            Segment::Pages(pages, len) => {
                // Header, pages and trailer are three sends under MSG_MORE.
                let hlen = hdr.len() as u32;
                if *sent < hlen {
                    *sent += self.sock.send_from(&[hdr], *sent as usize, true, wait)? as u32;
                }
                let data_end = hlen + len;
                if *sent >= hlen && *sent < data_end {
                    let skip = (*sent - hlen) as usize;
                    let m = more || !trailer.is_empty();
                    *sent += self.sock.send_pages_from(pages, skip, m, wait)? as u32;
                }
                if *sent >= data_end && *sent < total {
                    let skip = (*sent - data_end) as usize;
                    *sent += self.sock.send_from(&[trailer], skip, more, wait)? as u32;
                }
            }
        }
        Ok(*sent >= total)
    }
}

/// A data segment to send: bytes, or `len` bytes of pages held by reference.
pub(crate) enum Segment<'a> {
    Bytes(&'a [u8]),
    Pages(&'a mut TxPages, u32),
}

impl Segment<'_> {
    fn len(&self) -> Result<u32> {
        match self {
            Segment::Bytes(b) => u32::try_from(b.len()).map_err(|_| EINVAL),
            Segment::Pages(_, n) => Ok(*n),
        }
    }
}

/// A PDU framed by [`Conn::frame`] for [`Conn::write`]: the bytes around its
/// data segment.
pub(crate) struct Framed {
    hdr: [u8; BHS_LEN + DIGEST_LEN],
    hdr_len: usize,
    data_len: u32,
    trailer: [u8; 8],
    trailer_len: usize,
}

impl Framed {
    /// The PDU's length on the wire.
    fn total(&self) -> u32 {
        self.hdr_len as u32 + self.data_len + self.trailer_len as u32
    }
}

/// Folds bytes `from..from + len` of `skb` into the CRC32C register `crc`,
/// through `buf` (bytes whose destination is gone).
fn digest_skb(
    skb: &SkbSlice<'_>,
    from: usize,
    len: usize,
    mut crc: u32,
    buf: &mut [u8],
) -> Result<u32> {
    let mut done = 0;
    while done < len {
        let n = (len - done).min(buf.len());
        let chunk = buf.get_mut(..n).ok_or(EINVAL)?;
        skb.copy_to(from + done, chunk)?;
        crc = crc32c_update(crc, chunk);
        done += n;
    }
    Ok(crc)
}

/// The PDU being received: its header, data length and where its data goes.
type CurrentPdu<D> = Option<([u8; BHS_LEN], u32, Dest<D>)>;

/// Feeds one received chunk through the framer and the sink.
fn dispatch<S: PduSink>(
    framer: &mut RxFramer,
    scratch: &mut [u8],
    cur: &mut CurrentPdu<S::Direct>,
    mut input: &[u8],
    sink: &mut S,
) -> Result<(), RxStop<S::Error>> {
    // Feed until the framer asks for more, even with the input used up: the end
    // of a PDU whose last bytes were data (no pad, no digest) is only reported on
    // the call after them.
    loop {
        let (used, ev) = framer.feed(input).map_err(RxStop::Framing)?;
        input = input.get(used..).unwrap_or(&[]);
        match ev {
            RxEvent::NeedMore => return Ok(()),
            RxEvent::Header { bhs, data_len, .. } => {
                let dest = sink.header(&bhs, data_len).map_err(RxStop::Sink)?;
                *cur = Some((bhs, data_len, dest));
            }
            RxEvent::Data { offset, bytes } => match cur {
                // A direct segment is placed from the skbs (`data_slot`) and
                // never fed: its bytes cannot come here.
                Some((_, _, Dest::Direct(_))) => return Err(RxStop::Socket(EINVAL)),
                Some((_, _, Dest::Scratch)) => {
                    // The framer bounds data_len by MaxRecvDataSegmentLength,
                    // which is the scratch size, so this always fits.
                    let start = offset as usize;
                    if let Some(dst) = scratch.get_mut(start..start + bytes.len()) {
                        dst.copy_from_slice(bytes);
                    }
                }
                None => {}
            },
            RxEvent::PduEnd => {
                if let Some((bhs, data_len, dest)) = cur.take() {
                    let data = match dest {
                        Dest::Scratch => scratch.get(..data_len as usize).unwrap_or(&[]),
                        Dest::Direct(_) => &[],
                    };
                    sink.end(&bhs, dest, data).map_err(RxStop::Sink)?;
                }
            }
        }
    }
}
