//! One iSCSI connection's I/O, free of session logic: received bytes go through
//! `proto::framing::RxFramer` and come out as header / data / end events to a
//! [`PduSink`] (which decides where each data segment lands: straight into a
//! command's pages, or a scratch buffer for small PDUs; without a data digest
//! Data-In payload goes from the socket to the pages with no bounce buffer),
//! and outgoing PDUs are
//! written as header (+ header digest) | data | pad (+ data digest) in one send.
#![deny(unsafe_code)]

use core::fmt;

use kernel::prelude::*;

use crate::proto::bhs::BHS_LEN;
use crate::proto::crc32c::DIGEST_LEN;
use crate::proto::framing::{
    data_trailer, header_segment, FramingError, FramingSettings, RxEvent, RxFramer,
};
use crate::sys::crc::{crc32c, crc32c_update};
use crate::sys::socket::{Recv, SocketEvents, TcpSocket};

/// Receive bounce buffer: what one `recvmsg` may return.
const RX_CHUNK: usize = 64 * 1024;

/// Where the data segment of the PDU being received goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Dest<D: Copy> {
    /// Collected whole in the scratch buffer, handed over at the end.
    Scratch,
    /// Streamed piece by piece to [`PduSink::data`] with this target.
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

    /// A piece of a directly placed data segment, at `offset` within it. Not yet
    /// covered by the data digest: only [`PduSink::end`] confirms it.
    fn data(&mut self, to: Self::Direct, offset: u32, bytes: &[u8]) -> Result<(), Self::Error>;

    /// Receives up to `len` bytes of a directly placed segment, from `offset`
    /// within it, straight from `sock` into the destination (no bounce buffer,
    /// one copy). `None` if the destination cannot take them that way (e.g. it
    /// is gone); the bytes then come through [`PduSink::data`].
    fn recv_direct<E: SocketEvents>(
        &mut self,
        _to: Self::Direct,
        _offset: u32,
        _len: u32,
        _sock: &TcpSocket<E>,
    ) -> Option<Result<Recv>> {
        None
    }

    /// The PDU is complete and verified. `scratch` holds the data segment if it
    /// was collected ([`Dest::Scratch`]), else is empty.
    fn end(
        &mut self,
        bhs: &[u8; BHS_LEN],
        dest: Dest<Self::Direct>,
        scratch: &[u8],
    ) -> Result<(), Self::Error>;
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
    /// `recvmsg` failed.
    Socket(Error),
    /// The byte stream is not valid iSCSI framing.
    Framing(FramingError),
    /// The sink refused a PDU.
    Sink(E),
}

/// A connection: the socket plus the digests negotiated for it.
pub(crate) struct Conn<E: SocketEvents> {
    pub(crate) sock: TcpSocket<E>,
    header_digest: bool,
    data_digest: bool,
}

impl<E: SocketEvents> Conn<E> {
    /// Wraps a logged-in socket.
    pub(crate) fn new(sock: TcpSocket<E>, header_digest: bool, data_digest: bool) -> Self {
        Conn {
            sock,
            header_digest,
            data_digest,
        }
    }

    /// Receives and dispatches PDUs until the socket is drained, `budget`
    /// reads were made, or something fails.
    pub(crate) fn receive<S: PduSink>(
        &self,
        rx: &mut RxState<S::Direct>,
        sink: &mut S,
        budget: usize,
    ) -> RxStop<S::Error> {
        for _ in 0..budget {
            // Inside a segment bound for a command's pages (no data digest):
            // receive it straight there.
            if let (Some((offset, left)), Some((_, _, Dest::Direct(to)))) =
                (rx.framer.data_pending(), rx.cur)
            {
                match sink.recv_direct(to, offset, left, &self.sock) {
                    Some(Ok(Recv::Data(n))) => {
                        let placed = u32::try_from(n).is_ok_and(|n| rx.framer.data_placed(n));
                        if !placed {
                            return RxStop::Socket(EINVAL);
                        }
                        // The segment may be complete: let the framer say so.
                        if let Err(stop) =
                            dispatch(&mut rx.framer, &mut rx.scratch, &mut rx.cur, &[], sink)
                        {
                            return stop;
                        }
                        continue;
                    }
                    Some(Ok(Recv::WouldBlock)) => return RxStop::Drained,
                    Some(Ok(Recv::Closed)) => return RxStop::Closed,
                    Some(Err(e)) => return RxStop::Socket(e),
                    None => {}
                }
            }
            let n = match self.sock.recv(&mut rx.buf) {
                Ok(Recv::Data(n)) => n,
                Ok(Recv::WouldBlock) => return RxStop::Drained,
                Ok(Recv::Closed) => return RxStop::Closed,
                Err(e) => return RxStop::Socket(e),
            };
            let input = rx.buf.get(..n).unwrap_or(&[]);
            if let Err(stop) = dispatch(&mut rx.framer, &mut rx.scratch, &mut rx.cur, input, sink) {
                return stop;
            }
        }
        RxStop::Budget
    }

    /// Sends one PDU: `bhs` (no AHS), then `data` with padding and digests.
    /// `more` tells TCP that another PDU follows immediately.
    pub(crate) fn send_pdu(&self, bhs: &[u8; BHS_LEN], data: &[u8], more: bool) -> Result {
        let mut hdr = [0u8; BHS_LEN + DIGEST_LEN];
        let hlen = header_segment(bhs, &[], self.header_digest, &mut hdr).map_err(|_| EINVAL)?;
        let len = u32::try_from(data.len()).map_err(|_| EINVAL)?;
        let crc = if self.data_digest && !data.is_empty() {
            Some(crc32c(data))
        } else {
            None
        };
        let mut tbuf = [0u8; 8];
        let trailer = data_trailer(len, crc, &mut tbuf);
        self.sock
            .send(&[hdr.get(..hlen).unwrap_or(&[]), data, trailer], more)
    }
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
                Some((_, _, Dest::Direct(d))) => {
                    sink.data(*d, offset, bytes).map_err(RxStop::Sink)?;
                }
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
