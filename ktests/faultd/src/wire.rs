//! PDUs over std sockets for both tools, on iscsi-proto's framing only:
//! [`Deframer`] runs proto's `RxFramer` over byte chunks and hands out whole PDUs
//! (keeping each one's raw wire bytes, which the proxy forwards verbatim), and
//! [`encode`] puts proto's header digest, padding and data digest around a header
//! and data segment. No BHS layout is written here.

use iscsi_proto::bhs::{Bhs, Opcode, BHS_LEN, MAX_DATA_SEGMENT_LEN};
use iscsi_proto::crc32c::{crc32c, digest_bytes, DIGEST_LEN};
use iscsi_proto::framing::{self, FramingError, FramingSettings, RxEvent, RxFramer};

/// Digests in force on one direction of a connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Digests {
    /// HeaderDigest=CRC32C.
    pub header: bool,
    /// DataDigest=CRC32C.
    pub data: bool,
}

/// One received PDU.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The Basic Header Segment.
    pub bhs: [u8; BHS_LEN],
    /// The AHS bytes (TotalAHSLength * 4).
    pub ahs: Vec<u8>,
    /// The data segment, without padding or digest.
    pub data: Vec<u8>,
    /// Every byte of the PDU as it came off the wire (empty unless the
    /// [`Deframer`] keeps raw bytes).
    pub raw: Vec<u8>,
    /// The digests this PDU was framed with.
    pub digests: Digests,
}

impl Default for Frame {
    fn default() -> Self {
        Frame {
            bhs: [0; BHS_LEN],
            ahs: Vec::new(),
            data: Vec::new(),
            raw: Vec::new(),
            digests: Digests::default(),
        }
    }
}

impl Frame {
    /// The opcode in byte 0.
    pub fn opcode(&self) -> Opcode {
        Bhs::from_array(&self.bhs).opcode()
    }

    /// Offset of the data segment within [`Frame::raw`].
    pub fn data_offset(&self) -> usize {
        framing::header_segment_len(self.ahs.len(), self.digests.header)
    }
}

/// Settings for receiving: `max_recv` is the longest data segment accepted.
/// Neither tool polices opcodes at the framing level (the hostile target receives
/// initiator opcodes; the proxy sees both kinds).
pub fn settings(digests: Digests, max_recv: u32) -> FramingSettings {
    FramingSettings {
        header_digest: digests.header,
        data_digest: digests.data,
        max_recv_data_segment_len: max_recv,
        target_opcodes_only: false,
    }
}

/// Settings that never refuse a length the 24-bit field can carry (the proxy
/// must not be stricter than the endpoints it sits between).
pub fn permissive(digests: Digests) -> FramingSettings {
    settings(digests, MAX_DATA_SEGMENT_LEN)
}

/// Incremental PDU reassembly over proto's [`RxFramer`]. `push` bytes as they are
/// read, then call `next_frame` until it says `None`; settings may be changed
/// between frames (proto applies them from the next BHS).
pub struct Deframer {
    rx: RxFramer,
    buf: Vec<u8>,
    start: usize,
    cur: Frame,
    keep_raw: bool,
}

impl Deframer {
    /// A deframer at a PDU boundary; `keep_raw` collects each PDU's wire bytes.
    pub fn new(settings: FramingSettings, keep_raw: bool) -> Self {
        Deframer {
            rx: RxFramer::new(settings),
            buf: Vec::new(),
            start: 0,
            cur: Frame::default(),
            keep_raw,
        }
    }

    /// Replaces the settings; call between frames.
    pub fn set_settings(&mut self, settings: FramingSettings) {
        self.rx.set_settings(settings);
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete PDU, `None` when more bytes are needed. After an error
    /// the deframer stays failed; [`Deframer::take_unframed`] gives back the bytes
    /// not yet handed out so the proxy can forward them raw.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        loop {
            // Fed even when empty: a PDU may end (padding, digest done) without
            // consuming another byte.
            let input = self.buf.get(self.start..).unwrap_or(&[]);
            let (n, ev) = self.rx.feed(input)?;
            if self.keep_raw {
                self.cur
                    .raw
                    .extend_from_slice(input.get(..n).unwrap_or(&[]));
            }
            match ev {
                // NeedMore means all input was consumed.
                RxEvent::NeedMore => {
                    self.buf.clear();
                    self.start = 0;
                    return Ok(None);
                }
                RxEvent::Header { bhs, .. } => {
                    let s = self.rx.settings();
                    self.cur.bhs = bhs;
                    self.cur.ahs = self.rx.ahs().to_vec();
                    self.cur.digests = Digests {
                        header: s.header_digest,
                        data: s.data_digest,
                    };
                }
                RxEvent::Data { bytes, .. } => self.cur.data.extend_from_slice(bytes),
                RxEvent::PduEnd => {
                    self.start += n;
                    return Ok(Some(std::mem::take(&mut self.cur)));
                }
            }
            self.start += n;
        }
    }

    /// After a framing error: the raw bytes of the PDU in progress plus all input
    /// not yet framed (the failing feed reports no consumption, so nothing is
    /// counted twice).
    pub fn take_unframed(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.cur.raw);
        out.extend_from_slice(self.buf.get(self.start..).unwrap_or(&[]));
        self.buf.clear();
        self.start = 0;
        self.cur = Frame::default();
        out
    }
}

/// A whole PDU on the wire: `bhs`, `ahs`, header digest (proto's
/// `framing::header_digest`), data, padding and data digest (proto's
/// `framing::data_trailer`). Unlike `framing::write_pdu` it does not insist on a
/// well-formed AHS, so a forged one can go out with a correct digest.
pub fn encode(bhs: &[u8; BHS_LEN], ahs: &[u8], data: &[u8], digests: Digests) -> Vec<u8> {
    let mut v = Vec::with_capacity(BHS_LEN + ahs.len() + data.len() + 2 * DIGEST_LEN + 3);
    v.extend_from_slice(bhs);
    v.extend_from_slice(ahs);
    if digests.header {
        v.extend_from_slice(&digest_bytes(framing::header_digest(bhs, ahs)));
    }
    v.extend_from_slice(data);
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let crc = digests.data.then(|| crc32c(data));
    let mut trailer = [0u8; 8];
    v.extend_from_slice(framing::data_trailer(len, crc, &mut trailer));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_proto::pdu::{NopIn, Pdu};

    fn nop(data_len: u32) -> [u8; BHS_LEN] {
        let mut h = [0u8; BHS_LEN];
        NopIn {
            lun: 0,
            itt: 7,
            ttt: 0xffff_ffff,
            stat_sn: 1,
            exp_cmd_sn: 2,
            max_cmd_sn: 3,
            data_segment_len: data_len,
        }
        .emit(&mut h);
        h
    }

    #[test]
    fn encode_then_deframe_byte_by_byte_with_digests() {
        let d = Digests {
            header: true,
            data: true,
        };
        let mut wire = encode(&nop(5), &[], b"hello", d);
        wire.extend(encode(&nop(0), &[], &[], d));
        assert_eq!(wire.len(), 48 + 4 + 5 + 3 + 4 + 48 + 4);
        let mut df = Deframer::new(permissive(d), true);
        let mut frames = Vec::new();
        for b in &wire {
            df.push(&[*b]);
            while let Some(f) = df.next_frame().unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].data, b"hello");
        assert_eq!(frames[0].data_offset(), 52);
        assert!(matches!(Pdu::parse(&frames[0].bhs), Ok(Pdu::NopIn(n)) if n.itt == 7));
        let raw: Vec<u8> = frames.iter().flat_map(|f| f.raw.clone()).collect();
        assert_eq!(raw, wire);
    }

    #[test]
    fn framing_error_gives_back_all_unframed_bytes() {
        let d = Digests {
            header: true,
            data: false,
        };
        let mut wire = encode(&nop(0), &[], &[], d);
        let mut bad = encode(&nop(4), &[], b"abcd", d);
        bad[20] ^= 1; // a BHS byte: header digest no longer matches
        wire.extend(&bad);
        let mut df = Deframer::new(permissive(d), true);
        df.push(&wire[..60]);
        assert!(df.next_frame().unwrap().is_some());
        df.push(&wire[60..]);
        assert!(matches!(
            df.next_frame(),
            Err(FramingError::HeaderDigest { .. })
        ));
        assert_eq!(df.take_unframed(), bad);
    }
}
