//! PDU framing on the TCP byte stream (RFC 7143 §11.2): the incremental receiver
//! [`RxFramer`] and the transmit helpers that produce header digest, padding and
//! data digest around caller-owned slices.
//!
//! A PDU on the wire is
//! `BHS(48) | AHS(TotalAHSLength*4) | HeaderDigest(4)? | Data | Pad(0..3) | DataDigest(4)?`.
//! The header digest covers BHS + AHS; the data digest covers data + pad and is
//! present only when DataDigest is negotiated *and* DataSegmentLength > 0. Both
//! directions use the same rule functions ([`pad_len`], [`data_digest_present`],
//! [`header_digest`], [`pdu_wire_len`]) so they cannot drift apart.
//!
//! The receiver never copies the data segment: it hands out subslices of the
//! caller's input as [`RxEvent::Data`] so the kernel can place Data-In payload
//! directly into the command's pages, while the data digest is folded in as the
//! pieces pass.

use super::bhs::{self, Bhs, BHS_LEN};
use super::crc32c::{crc32c_update, digest_bytes, digest_from_bytes, Crc32c, DIGEST_LEN};

/// Largest AHS the receiver buffers. An extended-CDB AHS for the longest
/// (260-byte) CDB takes 248 bytes, so 256 covers it plus slack; more is refused.
pub const MAX_AHS_LEN: usize = 256;

/// Largest AHS the 8-bit TotalAHSLength field can describe.
pub const MAX_WIRE_AHS_LEN: usize = 255 * 4;

/// Default MaxRecvDataSegmentLength (RFC 7143 §13.12), also the login limit.
pub const DEFAULT_MAX_RECV_DATA_SEGMENT_LEN: u32 = 8192;

/// Pad bytes after a data segment of `data_len` bytes (to a 4-byte boundary).
pub const fn pad_len(data_len: u32) -> usize {
    bhs::pad_len(data_len) as usize
}

/// Whether a data digest follows a data segment of `data_len` bytes: only when
/// DataDigest=CRC32C was negotiated and the segment is not empty.
pub const fn data_digest_present(enabled: bool, data_len: u32) -> bool {
    enabled && data_len > 0
}

/// Header digest value over BHS + AHS.
pub fn header_digest(bhs: &[u8; BHS_LEN], ahs: &[u8]) -> u32 {
    let mut h = Crc32c::new();
    h.update(bhs);
    h.update(ahs);
    h.finish()
}

/// Total bytes of one PDU on the wire, or `None` if it does not fit a `usize`.
pub fn pdu_wire_len(
    ahs_len: usize,
    data_len: u32,
    header_digest: bool,
    data_digest: bool,
) -> Option<usize> {
    let hd = if header_digest { DIGEST_LEN } else { 0 };
    let dd = if data_digest_present(data_digest, data_len) {
        DIGEST_LEN
    } else {
        0
    };
    let data = usize::try_from(data_len).ok()?;
    BHS_LEN
        .checked_add(ahs_len)?
        .checked_add(hd)?
        .checked_add(data)?
        .checked_add(pad_len(data_len))?
        .checked_add(dd)
}

/// Why framing stopped. After any of these the receiver stays failed until
/// [`RxFramer::reset`]; the policy is to drop the connection (RFC 7143 ERL0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// The received header digest does not match BHS + AHS.
    HeaderDigest {
        /// CRC32C computed over the received BHS + AHS.
        expected: u32,
        /// CRC32C carried in the PDU.
        got: u32,
    },
    /// The received data digest does not match data + pad.
    DataDigest {
        /// CRC32C computed over the received data + pad.
        expected: u32,
        /// CRC32C carried in the PDU.
        got: u32,
    },
    /// DataSegmentLength exceeds our MaxRecvDataSegmentLength.
    DataSegmentTooLong {
        /// DataSegmentLength from the BHS.
        len: u32,
        /// The limit in force.
        max: u32,
    },
    /// TotalAHSLength exceeds what is buffered ([`MAX_AHS_LEN`]) or, on transmit,
    /// what the field can carry.
    AhsTooLong {
        /// AHS length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The AHS bytes are not a sequence of well-formed AHS entries.
    AhsMalformed {
        /// Offset within the AHS of the first entry that is cut short.
        offset: usize,
    },
    /// A PDU with an initiator opcode arrived where only target opcodes may.
    OpcodeNotAllowed {
        /// The 6-bit opcode.
        opcode: u8,
    },
    /// The BHS buffer was shorter than 48 bytes (defensive: never with `[u8; 48]`).
    BhsTruncated,
    /// A caller buffer is too small for what must be written or collected.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        have: usize,
    },
    /// Transmit: the BHS length fields disagree with the slices given.
    LengthMismatch {
        /// Length the BHS announces (AHS or data, in bytes).
        bhs: usize,
        /// Length actually supplied.
        given: usize,
    },
}

/// Parameters the receiver frames with. Change them between PDUs with
/// [`RxFramer::set_settings`] (login turns digests on for the full-feature phase).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramingSettings {
    /// HeaderDigest=CRC32C negotiated.
    pub header_digest: bool,
    /// DataDigest=CRC32C negotiated.
    pub data_digest: bool,
    /// Our declared MaxRecvDataSegmentLength: longer data segments are refused.
    pub max_recv_data_segment_len: u32,
    /// Refuse initiator opcodes (an initiator only ever receives target PDUs).
    pub target_opcodes_only: bool,
}

impl Default for FramingSettings {
    /// The login-phase settings of an initiator: no digests, 8192-byte limit.
    fn default() -> Self {
        FramingSettings {
            header_digest: false,
            data_digest: false,
            max_recv_data_segment_len: DEFAULT_MAX_RECV_DATA_SEGMENT_LEN,
            target_opcodes_only: true,
        }
    }
}

/// Checks that `ahs` is a sequence of whole AHS entries: each is AHSLength (2
/// bytes, big endian, counting the AHS-specific bytes from byte 3 on), AHSType
/// (1 byte), then the specific bytes, padded to a multiple of 4.
pub fn validate_ahs(ahs: &[u8]) -> Result<(), FramingError> {
    let mut it = AhsEntries::new(ahs);
    for entry in &mut it {
        entry?;
    }
    Ok(())
}

/// One Additional Header Segment entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AhsEntry<'a> {
    /// AHSType (1 = extended CDB, 2 = bidirectional expected read data length).
    pub ahs_type: u8,
    /// The AHS-specific bytes (AHSLength of them, starting with the reserved byte).
    pub specific: &'a [u8],
}

/// Iterator over the entries of an AHS; yields an error once and then stops if
/// an entry runs past the end.
#[derive(Debug, Clone)]
pub struct AhsEntries<'a> {
    ahs: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> AhsEntries<'a> {
    /// Iterates over the entries in `ahs` (the TotalAHSLength*4 bytes after the BHS).
    pub fn new(ahs: &'a [u8]) -> Self {
        AhsEntries {
            ahs,
            offset: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for AhsEntries<'a> {
    type Item = Result<AhsEntry<'a>, FramingError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.ahs.get(self.offset..).unwrap_or(&[]);
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        let bad = FramingError::AhsMalformed {
            offset: self.offset,
        };
        let parsed = match rest {
            [l0, l1, ahs_type, ..] => {
                let specific_len = usize::from(u16::from_be_bytes([*l0, *l1]));
                // 3 header bytes + specific, padded to 4; cannot overflow a usize
                // since specific_len < 2^16.
                let entry_len = (3 + specific_len + 3) & !3;
                match (rest.get(3..3 + specific_len), entry_len <= rest.len()) {
                    (Some(specific), true) => Some((
                        entry_len,
                        AhsEntry {
                            ahs_type: *ahs_type,
                            specific,
                        },
                    )),
                    _ => None,
                }
            }
            _ => None,
        };
        match parsed {
            Some((len, entry)) => {
                self.offset = self.offset.saturating_add(len);
                Some(Ok(entry))
            }
            None => {
                self.done = true;
                Some(Err(bad))
            }
        }
    }
}

/// What one [`RxFramer::feed`] call produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxEvent<'a> {
    /// All input was consumed without completing anything; feed more.
    NeedMore,
    /// A header was received (and its digest verified). The AHS bytes are
    /// available from [`RxFramer::ahs`] until the next header.
    Header {
        /// The Basic Header Segment.
        bhs: [u8; BHS_LEN],
        /// AHS length in bytes.
        ahs_len: usize,
        /// DataSegmentLength (without padding).
        data_len: u32,
    },
    /// A piece of the data segment, a subslice of the input. Pieces arrive in
    /// order and cover the segment exactly once. With DataDigest they are only
    /// confirmed by [`RxEvent::PduEnd`]: a consumer that places them early (the
    /// kernel, into a command's pages) must not complete the command before that,
    /// and a digest error fails the connection, so the command is retried.
    Data {
        /// Offset of `bytes` within the data segment.
        offset: u32,
        /// The bytes.
        bytes: &'a [u8],
    },
    /// The PDU is complete: padding consumed and data digest (if any) verified.
    PduEnd,
}

/// Receive stage inside one PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Bhs,
    Ahs,
    HeaderDigest,
    Data,
    Pad,
    DataDigest,
}

/// A CRC32C register update, `(state, bytes) -> state` without the final
/// inversion (the kernel's `crc32c()` has this shape): the receiver's digests
/// run on the caller's implementation, e.g. one with CPU instructions.
pub type CrcUpdate = fn(u32, &[u8]) -> u32;

/// Feeds `bytes` into `crc` with `update`.
fn crc_feed(update: CrcUpdate, crc: &mut Crc32c, bytes: &[u8]) {
    *crc = Crc32c::from_state(update(crc.state(), bytes));
}

/// The rest of a data segment that the receiver may place itself (see
/// [`RxFramer::data_slot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataSlot {
    /// Offset of the next data byte within the segment.
    pub offset: u32,
    /// Data bytes left in the segment (more than 0).
    pub left: u32,
    /// Under DataDigest, the digest's CRC32C register so far.
    pub crc: Option<u32>,
}

/// Incremental, allocation-free PDU receiver. Feed it byte chunks of any size;
/// it reports each PDU as `Header`, zero or more `Data`, then `PduEnd`.
///
/// Progress guarantee: every [`feed`](RxFramer::feed) either consumes at least
/// one byte or returns an event other than `NeedMore`, and `NeedMore` means the
/// whole input was consumed; so a loop that re-feeds the unconsumed rest always
/// terminates.
#[derive(Debug, Clone)]
pub struct RxFramer {
    settings: FramingSettings,
    /// Settings latched when the current PDU's BHS completed.
    cur: FramingSettings,
    stage: Stage,
    /// Bytes received so far in the current stage.
    filled: usize,
    bhs: [u8; BHS_LEN],
    ahs: [u8; MAX_AHS_LEN],
    ahs_len: usize,
    data_len: u32,
    data_done: u32,
    digest: [u8; DIGEST_LEN],
    header_crc: Crc32c,
    data_crc: Crc32c,
    /// How digests are computed (proto's software CRC32C unless replaced).
    crc_update: CrcUpdate,
    failed: Option<FramingError>,
}

impl Default for RxFramer {
    fn default() -> Self {
        Self::new(FramingSettings::default())
    }
}

impl RxFramer {
    /// A receiver at a PDU boundary.
    pub const fn new(settings: FramingSettings) -> Self {
        RxFramer {
            settings,
            cur: settings,
            stage: Stage::Bhs,
            filled: 0,
            bhs: [0; BHS_LEN],
            ahs: [0; MAX_AHS_LEN],
            ahs_len: 0,
            data_len: 0,
            data_done: 0,
            digest: [0; DIGEST_LEN],
            header_crc: Crc32c::new(),
            data_crc: Crc32c::new(),
            crc_update: crc32c_update,
            failed: None,
        }
    }

    /// The same receiver computing digests with `update` (it must compute
    /// CRC32C: a wrong one fails every digest check).
    pub const fn with_crc_update(mut self, update: CrcUpdate) -> Self {
        self.crc_update = update;
        self
    }

    /// Replaces the settings; they apply from the next PDU whose BHS completes
    /// (the PDU in flight keeps the ones it started with).
    pub fn set_settings(&mut self, settings: FramingSettings) {
        self.settings = settings;
    }

    /// The settings that the next PDU will use.
    pub const fn settings(&self) -> FramingSettings {
        self.settings
    }

    /// Back to a PDU boundary with no error, keeping the settings (for a new
    /// connection).
    pub fn reset(&mut self) {
        *self = Self::new(self.settings);
    }

    /// True between PDUs (nothing of a next PDU received yet) and not failed.
    pub const fn at_pdu_boundary(&self) -> bool {
        self.failed.is_none() && matches!(self.stage, Stage::Bhs) && self.filled == 0
    }

    /// The error the receiver is stuck in, if any.
    pub const fn error(&self) -> Option<FramingError> {
        self.failed
    }

    /// The BHS of the current (or last) PDU.
    pub const fn bhs(&self) -> &[u8; BHS_LEN] {
        &self.bhs
    }

    /// The AHS bytes of the current (or last) PDU, valid once its `Header` event
    /// has been returned.
    pub fn ahs(&self) -> &[u8] {
        self.ahs.get(..self.ahs_len).unwrap_or(&[])
    }

    fn fail(&mut self, e: FramingError) -> FramingError {
        self.failed = Some(e);
        e
    }

    /// Copies from `input` into the current fixed-size stage buffer; returns
    /// how many bytes were taken and whether the stage is now full.
    fn fill(buf: &mut [u8], filled: &mut usize, input: &[u8]) -> (usize, bool) {
        let want = buf.len().saturating_sub(*filled);
        let n = want.min(input.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(*filled..*filled + n), input.get(..n)) {
            dst.copy_from_slice(src);
        }
        *filled += n;
        (n, *filled == buf.len())
    }

    /// Inside a data segment: where the receiver may place the rest itself
    /// (the kernel: straight from the socket's buffers into a command's pages)
    /// and account for it with [`Self::data_placed`]. Under DataDigest the
    /// slot carries the digest's CRC32C register so far (no final inversion,
    /// the shape of [`CrcUpdate`]): the receiver folds the bytes it places
    /// into it, and the digest is still checked at the segment's end. `None`
    /// outside a segment's data.
    pub fn data_slot(&self) -> Option<DataSlot> {
        if self.failed.is_some() || self.stage != Stage::Data {
            return None;
        }
        let left = self.data_len.saturating_sub(self.data_done);
        (left > 0).then(|| DataSlot {
            offset: self.data_done,
            left,
            crc: self.cur.data_digest.then(|| self.data_crc.state()),
        })
    }

    /// The most bytes to feed next without passing the end of the current
    /// PDU's header before its `Header` event (so the caller can then place
    /// the data segment itself, see [`Self::data_slot`]) nor the end of the
    /// current PDU. Lets a receiver that copies out of the socket's buffers
    /// copy each byte once. At least 1.
    pub fn feed_limit(&self) -> usize {
        let hd = |s: &FramingSettings| if s.header_digest { DIGEST_LEN } else { 0 };
        let dd = if data_digest_present(self.cur.data_digest, self.data_len) {
            DIGEST_LEN
        } else {
            0
        };
        let data_left =
            usize::try_from(self.data_len.saturating_sub(self.data_done)).unwrap_or(usize::MAX);
        let limit = match self.stage {
            // The AHS length is not known yet: assume none (a PDU with one
            // just takes another call).
            Stage::Bhs => (BHS_LEN - self.filled.min(BHS_LEN)) + hd(&self.settings),
            Stage::Ahs => self.ahs_len.saturating_sub(self.filled) + hd(&self.cur),
            Stage::HeaderDigest => hd(&self.cur).saturating_sub(self.filled),
            Stage::Data => data_left
                .saturating_add(pad_len(self.data_len))
                .saturating_add(dd),
            Stage::Pad => pad_len(self.data_len).saturating_sub(self.filled) + dd,
            Stage::DataDigest => dd.saturating_sub(self.filled),
        };
        limit.max(1)
    }

    /// Accounts `n` data bytes the receiver placed itself after
    /// [`Self::data_slot`] offered them; under DataDigest `crc` is the
    /// slot's register with those bytes folded in, and must be given (and
    /// must not be without it). Returns false (and changes nothing) if no
    /// slot was open, `n` exceeds it, or `crc` does not match the digest
    /// setting.
    pub fn data_placed(&mut self, n: u32, crc: Option<u32>) -> bool {
        match (self.data_slot(), crc) {
            (Some(slot), None) if n <= slot.left && slot.crc.is_none() => {
                self.data_done += n;
                true
            }
            (Some(slot), Some(c)) if n <= slot.left && slot.crc.is_some() => {
                self.data_done += n;
                self.data_crc = Crc32c::from_state(c);
                true
            }
            _ => false,
        }
    }

    /// Feeds bytes from the stream. Returns how many bytes of `input` were
    /// consumed and what happened; call again with the rest (`&input[consumed..]`).
    /// `Data` events borrow from `input`.
    pub fn feed<'a>(&mut self, input: &'a [u8]) -> Result<(usize, RxEvent<'a>), FramingError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let mut pos = 0usize;
        loop {
            let rest = input.get(pos..).unwrap_or(&[]);
            match self.stage {
                Stage::Bhs => {
                    let (n, full) = Self::fill(&mut self.bhs, &mut self.filled, rest);
                    pos += n;
                    if !full {
                        return Ok((pos, RxEvent::NeedMore));
                    }
                    self.start_pdu()?;
                }
                Stage::Ahs => {
                    let want = self.ahs_len.saturating_sub(self.filled);
                    let n = want.min(rest.len());
                    let piece = rest.get(..n).unwrap_or(&[]);
                    // Only the first MAX_AHS_LEN bytes are kept; the digest still
                    // covers all so a corrupt length shows up as a digest error.
                    if let Some(dst) = self.ahs.get_mut(self.filled..) {
                        let k = dst.len().min(n);
                        if let (Some(d), Some(s)) = (dst.get_mut(..k), piece.get(..k)) {
                            d.copy_from_slice(s);
                        }
                    }
                    if self.cur.header_digest {
                        crc_feed(self.crc_update, &mut self.header_crc, piece);
                    }
                    self.filled += n;
                    pos += n;
                    if self.filled < self.ahs_len {
                        return Ok((pos, RxEvent::NeedMore));
                    }
                    self.filled = 0;
                    self.stage = Stage::HeaderDigest;
                }
                Stage::HeaderDigest => {
                    if self.cur.header_digest {
                        let (n, full) = Self::fill(&mut self.digest, &mut self.filled, rest);
                        pos += n;
                        if !full {
                            return Ok((pos, RxEvent::NeedMore));
                        }
                        let got = digest_from_bytes(self.digest);
                        let expected = self.header_crc.finish();
                        if got != expected {
                            return Err(self.fail(FramingError::HeaderDigest { expected, got }));
                        }
                    }
                    let ev = self.header_complete()?;
                    return Ok((pos, ev));
                }
                Stage::Data => {
                    let left = self.data_len.saturating_sub(self.data_done);
                    if left == 0 {
                        self.filled = 0;
                        self.stage = Stage::Pad;
                        continue;
                    }
                    if rest.is_empty() {
                        return Ok((pos, RxEvent::NeedMore));
                    }
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(rest.len());
                    let bytes = rest.get(..n).unwrap_or(&[]);
                    let offset = self.data_done;
                    // CRC32C is the receive path's biggest cost when it is not
                    // needed (11.7% of guest CPU on 1 MiB reads, make bench-profile).
                    if self.cur.data_digest {
                        crc_feed(self.crc_update, &mut self.data_crc, bytes);
                    }
                    // n <= left, so the conversion holds and data_done stays
                    // <= data_len.
                    let n32 = u32::try_from(n).unwrap_or(left);
                    self.data_done = self.data_done.saturating_add(n32);
                    return Ok((pos + n, RxEvent::Data { offset, bytes }));
                }
                Stage::Pad => {
                    let want = pad_len(self.data_len).saturating_sub(self.filled);
                    let n = want.min(rest.len());
                    // The digest covers the pad bytes as sent (they should be 0,
                    // but RFC 7143 does not let a receiver insist).
                    if self.cur.data_digest {
                        crc_feed(
                            self.crc_update,
                            &mut self.data_crc,
                            rest.get(..n).unwrap_or(&[]),
                        );
                    }
                    self.filled += n;
                    pos += n;
                    if n < want {
                        return Ok((pos, RxEvent::NeedMore));
                    }
                    self.filled = 0;
                    self.stage = Stage::DataDigest;
                }
                Stage::DataDigest => {
                    if data_digest_present(self.cur.data_digest, self.data_len) {
                        let (n, full) = Self::fill(&mut self.digest, &mut self.filled, rest);
                        pos += n;
                        if !full {
                            return Ok((pos, RxEvent::NeedMore));
                        }
                        let got = digest_from_bytes(self.digest);
                        let expected = self.data_crc.finish();
                        if got != expected {
                            return Err(self.fail(FramingError::DataDigest { expected, got }));
                        }
                    }
                    self.filled = 0;
                    self.stage = Stage::Bhs;
                    return Ok((pos, RxEvent::PduEnd));
                }
            }
        }
    }

    /// The BHS is complete: latch settings, read the lengths, start the header
    /// digest. Field checks wait until the digest is verified so that a corrupt
    /// header is reported as a digest error, not as a bogus field.
    fn start_pdu(&mut self) -> Result<(), FramingError> {
        self.cur = self.settings;
        let view = match Bhs::new_checked(&self.bhs[..]) {
            Ok(v) => v,
            Err(_) => return Err(self.fail(FramingError::BhsTruncated)),
        };
        self.ahs_len = view.total_ahs_len();
        self.data_len = view.data_segment_len();
        self.data_done = 0;
        self.header_crc = Crc32c::new();
        if self.cur.header_digest {
            crc_feed(self.crc_update, &mut self.header_crc, &self.bhs);
        }
        self.data_crc = Crc32c::new();
        self.filled = 0;
        self.stage = Stage::Ahs;
        Ok(())
    }

    /// Header and digest are in: validate the fields and announce the header.
    fn header_complete<'a>(&mut self) -> Result<RxEvent<'a>, FramingError> {
        let opcode = match Bhs::new_checked(&self.bhs[..]) {
            Ok(v) => v.opcode(),
            Err(_) => return Err(self.fail(FramingError::BhsTruncated)),
        };
        if self.cur.target_opcodes_only && !opcode.is_target_opcode() {
            return Err(self.fail(FramingError::OpcodeNotAllowed {
                opcode: opcode.to_u8(),
            }));
        }
        if self.ahs_len > MAX_AHS_LEN {
            return Err(self.fail(FramingError::AhsTooLong {
                len: self.ahs_len,
                max: MAX_AHS_LEN,
            }));
        }
        if let Err(e) = validate_ahs(self.ahs()) {
            return Err(self.fail(e));
        }
        let max = self.cur.max_recv_data_segment_len;
        if self.data_len > max {
            return Err(self.fail(FramingError::DataSegmentTooLong {
                len: self.data_len,
                max,
            }));
        }
        self.filled = 0;
        self.stage = Stage::Data;
        Ok(RxEvent::Header {
            bhs: self.bhs,
            ahs_len: self.ahs_len,
            data_len: self.data_len,
        })
    }

    /// Convenience for small PDUs (login, text, NOP-In): frames from `input`,
    /// copying the data segment into `data_buf`, until one PDU is complete.
    /// Returns the bytes consumed and, when a PDU finished, its lengths; the BHS
    /// and AHS are then in [`bhs`](RxFramer::bhs) / [`ahs`](RxFramer::ahs) and the
    /// data in `data_buf[..data_len]`. Stops right after a PDU so the caller can
    /// change settings before the next one. A segment longer than `data_buf`
    /// fails with [`FramingError::BufferTooSmall`].
    pub fn feed_collect(
        &mut self,
        input: &[u8],
        data_buf: &mut [u8],
    ) -> Result<(usize, Option<CollectedPdu>), FramingError> {
        let mut pos = 0usize;
        loop {
            let rest = input.get(pos..).unwrap_or(&[]);
            let (n, ev) = self.feed(rest)?;
            pos += n;
            match ev {
                RxEvent::NeedMore => return Ok((pos, None)),
                RxEvent::Header { data_len, .. } => {
                    let needed = usize::try_from(data_len).unwrap_or(usize::MAX);
                    if needed > data_buf.len() {
                        return Err(self.fail(FramingError::BufferTooSmall {
                            needed,
                            have: data_buf.len(),
                        }));
                    }
                }
                RxEvent::Data { offset, bytes } => {
                    let start = usize::try_from(offset).unwrap_or(usize::MAX);
                    let end = start.saturating_add(bytes.len());
                    match data_buf.get_mut(start..end) {
                        Some(dst) => dst.copy_from_slice(bytes),
                        None => {
                            return Err(self.fail(FramingError::BufferTooSmall {
                                needed: end,
                                have: data_buf.len(),
                            }))
                        }
                    }
                }
                RxEvent::PduEnd => {
                    return Ok((
                        pos,
                        Some(CollectedPdu {
                            bhs: self.bhs,
                            ahs_len: self.ahs_len,
                            data_len: self.data_len,
                        }),
                    ))
                }
            }
        }
    }
}

/// A whole PDU gathered by [`RxFramer::feed_collect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectedPdu {
    /// The Basic Header Segment.
    pub bhs: [u8; BHS_LEN],
    /// AHS length in bytes (bytes in [`RxFramer::ahs`]).
    pub ahs_len: usize,
    /// Data segment length (bytes at the start of the caller's buffer).
    pub data_len: u32,
}

/// Checks the lengths a BHS announces against the AHS and data length supplied.
fn check_tx_lengths(bhs: &[u8; BHS_LEN], ahs: &[u8], data_len: u32) -> Result<(), FramingError> {
    let view = Bhs::new_checked(&bhs[..]).map_err(|_| FramingError::BhsTruncated)?;
    if ahs.len() > MAX_WIRE_AHS_LEN {
        return Err(FramingError::AhsTooLong {
            len: ahs.len(),
            max: MAX_WIRE_AHS_LEN,
        });
    }
    if view.total_ahs_len() != ahs.len() {
        return Err(FramingError::LengthMismatch {
            bhs: view.total_ahs_len(),
            given: ahs.len(),
        });
    }
    validate_ahs(ahs)?;
    let announced = view.data_segment_len();
    // The 24-bit field cannot announce more than MAX_DATA_SEGMENT_LEN, so a match
    // also bounds data_len.
    if announced != data_len {
        return Err(FramingError::LengthMismatch {
            bhs: usize::try_from(announced).unwrap_or(usize::MAX),
            given: usize::try_from(data_len).unwrap_or(usize::MAX),
        });
    }
    Ok(())
}

/// Length of the header part (BHS + AHS + optional header digest).
/// Saturates instead of overflowing for absurd `ahs_len`.
pub const fn header_segment_len(ahs_len: usize, digest: bool) -> usize {
    let d = if digest { DIGEST_LEN } else { 0 };
    BHS_LEN.saturating_add(ahs_len).saturating_add(d)
}

/// Writes BHS + AHS + (header digest) into `out` and returns the length used.
/// The BHS's TotalAHSLength must match `ahs` and the AHS must be well formed.
pub fn header_segment(
    bhs: &[u8; BHS_LEN],
    ahs: &[u8],
    digest: bool,
    out: &mut [u8],
) -> Result<usize, FramingError> {
    let view = Bhs::new_checked(&bhs[..]).map_err(|_| FramingError::BhsTruncated)?;
    check_tx_lengths(bhs, ahs, view.data_segment_len())?;
    let len = header_segment_len(ahs.len(), digest);
    let have = out.len();
    let dst = out
        .get_mut(..len)
        .ok_or(FramingError::BufferTooSmall { needed: len, have })?;
    let (b, rest) = dst.split_at_mut(BHS_LEN);
    b.copy_from_slice(bhs);
    let (a, d) = rest.split_at_mut(ahs.len());
    a.copy_from_slice(ahs);
    if digest {
        d.copy_from_slice(&digest_bytes(header_digest(bhs, ahs)));
    }
    Ok(len)
}

/// The bytes that follow a data segment of `data_len` bytes: zero padding and,
/// when `data_crc` is `Some`, the data digest. `data_crc` is the CRC32C of the
/// data bytes alone (e.g. [`Crc32c`] run over the pages); the pad is folded in
/// here. Returns the slice of `out` to send (0..=7 bytes; empty for an empty
/// segment).
pub fn data_trailer(data_len: u32, data_crc: Option<u32>, out: &mut [u8; 8]) -> &[u8] {
    let pad = pad_len(data_len);
    *out = [0; 8];
    let mut len = pad;
    if let Some(crc) = data_crc {
        if data_digest_present(true, data_len) {
            let mut h = Crc32c::from_crc(crc);
            h.update_zeros(pad);
            if let Some(d) = out.get_mut(pad..pad + DIGEST_LEN) {
                d.copy_from_slice(&digest_bytes(h.finish()));
            }
            len += DIGEST_LEN;
        }
    }
    out.get(..len).unwrap_or(&[])
}

/// Writes a whole PDU (header, AHS, digests, data, padding) into `out`; for
/// small PDUs such as login, text and NOP-Out. Returns the length written.
pub fn write_pdu(
    bhs: &[u8; BHS_LEN],
    ahs: &[u8],
    data: &[u8],
    header_digest: bool,
    data_digest: bool,
    out: &mut [u8],
) -> Result<usize, FramingError> {
    let data_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    check_tx_lengths(bhs, ahs, data_len)?;
    let total = pdu_wire_len(ahs.len(), data_len, header_digest, data_digest).ok_or(
        FramingError::BufferTooSmall {
            needed: usize::MAX,
            have: out.len(),
        },
    )?;
    if out.len() < total {
        return Err(FramingError::BufferTooSmall {
            needed: total,
            have: out.len(),
        });
    }
    let h = header_segment(bhs, ahs, header_digest, out)?;
    let after_data = h + data.len();
    if let Some(dst) = out.get_mut(h..after_data) {
        dst.copy_from_slice(data);
    }
    let crc = if data_digest {
        Some(super::crc32c::crc32c(data))
    } else {
        None
    };
    let mut tbuf = [0u8; 8];
    let trailer = data_trailer(data_len, crc, &mut tbuf);
    if let Some(dst) = out.get_mut(after_data..after_data + trailer.len()) {
        dst.copy_from_slice(trailer);
    }
    Ok(after_data + trailer.len())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::crc32c::crc32c;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// An owned copy of one event, for comparing runs.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Header([u8; BHS_LEN], Vec<u8>, u32),
        Data(u32, Vec<u8>),
        End,
    }

    /// A received PDU with its data pieces joined.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Pdu {
        bhs: [u8; BHS_LEN],
        ahs: Vec<u8>,
        data: Vec<u8>,
    }

    fn settings(hd: bool, dd: bool) -> FramingSettings {
        FramingSettings {
            header_digest: hd,
            data_digest: dd,
            max_recv_data_segment_len: 65536,
            target_opcodes_only: true,
        }
    }

    /// A BHS with the given opcode and lengths; the ITT marks it.
    fn bhs_for(opcode: u8, ahs_len: usize, data_len: u32, itt: u32) -> [u8; BHS_LEN] {
        let mut b = [0u8; BHS_LEN];
        b[0] = opcode;
        b[1] = 0x80;
        b[4] = (ahs_len / 4) as u8;
        b[5..8].copy_from_slice(&data_len.to_be_bytes()[1..]);
        b[16..20].copy_from_slice(&itt.to_be_bytes());
        b
    }

    /// Extended-CDB AHS carrying `cdb_tail` (bytes 16.. of a long CDB).
    fn ext_cdb_ahs(cdb_tail: &[u8]) -> Vec<u8> {
        let specific_len = (cdb_tail.len() + 1) as u16;
        let mut a = Vec::new();
        a.extend_from_slice(&specific_len.to_be_bytes());
        a.push(1);
        a.push(0);
        a.extend_from_slice(cdb_tail);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn data_of(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Encodes one PDU with the TX helpers.
    fn encode(opcode: u8, ahs: &[u8], data: &[u8], hd: bool, dd: bool, itt: u32) -> Vec<u8> {
        let bhs = bhs_for(opcode, ahs.len(), data.len() as u32, itt);
        let mut out = vec![0u8; pdu_wire_len(ahs.len(), data.len() as u32, hd, dd).unwrap()];
        let n = write_pdu(&bhs, ahs, data, hd, dd, &mut out).unwrap();
        assert_eq!(n, out.len());
        out
    }

    /// Feeds `stream` cut at `cuts` (sorted offsets) and records every event.
    fn run(rx: &mut RxFramer, stream: &[u8], cuts: &[usize]) -> Result<Vec<Ev>, FramingError> {
        let mut evs = Vec::new();
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(stream.len());
        for w in bounds.windows(2) {
            let mut chunk = &stream[w[0]..w[1]];
            loop {
                let (n, ev) = rx.feed(chunk)?;
                assert!(n <= chunk.len());
                chunk = &chunk[n..];
                match ev {
                    RxEvent::NeedMore => {
                        assert!(chunk.is_empty());
                        break;
                    }
                    RxEvent::Header {
                        bhs,
                        ahs_len,
                        data_len,
                    } => {
                        assert_eq!(ahs_len, rx.ahs().len());
                        evs.push(Ev::Header(bhs, rx.ahs().to_vec(), data_len))
                    }
                    RxEvent::Data { offset, bytes } => {
                        assert!(!bytes.is_empty());
                        evs.push(Ev::Data(offset, bytes.to_vec()))
                    }
                    RxEvent::PduEnd => evs.push(Ev::End),
                }
            }
        }
        // A PDU without data ends without needing another byte.
        loop {
            match rx.feed(&[])? {
                (0, RxEvent::PduEnd) => evs.push(Ev::End),
                (0, RxEvent::NeedMore) => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        Ok(evs)
    }

    /// Joins events into PDUs, checking offsets are contiguous.
    fn pdus(evs: &[Ev]) -> Vec<Pdu> {
        let mut out = Vec::new();
        let mut cur: Option<(Pdu, u32)> = None;
        for e in evs {
            match e {
                Ev::Header(bhs, ahs, len) => {
                    assert!(cur.is_none());
                    cur = Some((
                        Pdu {
                            bhs: *bhs,
                            ahs: ahs.clone(),
                            data: Vec::new(),
                        },
                        *len,
                    ));
                }
                Ev::Data(off, bytes) => {
                    let (p, _) = cur.as_mut().unwrap();
                    assert_eq!(*off as usize, p.data.len());
                    p.data.extend_from_slice(bytes);
                }
                Ev::End => {
                    let (p, len) = cur.take().unwrap();
                    assert_eq!(p.data.len(), len as usize);
                    out.push(p);
                }
            }
        }
        assert!(cur.is_none(), "stream ended inside a PDU");
        out
    }

    fn expect_pdu(opcode: u8, ahs: &[u8], data: &[u8], itt: u32) -> Pdu {
        Pdu {
            bhs: bhs_for(opcode, ahs.len(), data.len() as u32, itt),
            ahs: ahs.to_vec(),
            data: data.to_vec(),
        }
    }

    /// Feeds `stream` in chunks of at most `feed_limit()` (and at most `cap`),
    /// as the kernel's skb reader does; returns the events, checking that no
    /// chunk carried bytes past a header into its data.
    fn run_limited(rx: &mut RxFramer, stream: &[u8], cap: usize) -> Vec<Ev> {
        let mut evs = Vec::new();
        let mut at = 0;
        while at < stream.len() {
            let n = rx.feed_limit().min(cap).min(stream.len() - at);
            let mut chunk = &stream[at..at + n];
            at += n;
            loop {
                let (used, ev) = rx.feed(chunk).unwrap();
                chunk = &chunk[used..];
                match ev {
                    RxEvent::NeedMore => break,
                    RxEvent::Header { bhs, data_len, .. } => {
                        assert!(chunk.is_empty(), "a chunk ran past a header");
                        evs.push(Ev::Header(bhs, rx.ahs().to_vec(), data_len));
                    }
                    RxEvent::Data { offset, bytes } => evs.push(Ev::Data(offset, bytes.to_vec())),
                    RxEvent::PduEnd => evs.push(Ev::End),
                }
            }
        }
        loop {
            match rx.feed(&[]).unwrap() {
                (0, RxEvent::PduEnd) => evs.push(Ev::End),
                (0, RxEvent::NeedMore) => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        evs
    }

    #[test]
    fn feed_limit_stops_at_each_header_and_pdu_end() {
        for (hd, dd) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut stream = Vec::new();
            let mut expected = Vec::new();
            let long_cdb = ext_cdb_ahs(&data_of(13, 9));
            for (i, (ahs, len)) in [
                (&[][..], 0usize),
                (&[][..], 5),
                (&long_cdb[..], 4096),
                (&[][..], 3),
                (&long_cdb[..], 0),
            ]
            .into_iter()
            .enumerate()
            {
                let data = data_of(len, i as u8);
                stream.extend(encode(0x25, ahs, &data, hd, dd, i as u32));
                expected.push(expect_pdu(0x25, ahs, &data, i as u32));
            }
            for cap in [1, 7, 48, 52, 4096, usize::MAX] {
                let mut rx = RxFramer::new(settings(hd, dd));
                let evs = run_limited(&mut rx, &stream, cap);
                assert_eq!(pdus(&evs), expected, "hd {hd} dd {dd} cap {cap}");
            }
        }
    }

    #[test]
    fn feed_limit_is_exactly_the_header_then_the_rest_of_the_pdu() {
        let data = data_of(4096, 3);
        let wire = encode(0x25, &[], &data, true, true, 1);
        let mut rx = RxFramer::new(settings(true, true));
        assert_eq!(rx.feed_limit(), 48 + 4);
        let (n, ev) = rx.feed(&wire[..52]).unwrap();
        assert_eq!(n, 52);
        assert!(matches!(ev, RxEvent::Header { .. }));
        assert_eq!(rx.feed_limit(), 4096 + 4);
        let mut rx = RxFramer::new(settings(false, false));
        let wire = encode(0x25, &[], &data_of(5, 1), false, false, 1);
        assert_eq!(rx.feed_limit(), 48);
        rx.feed(&wire[..48]).unwrap();
        assert_eq!(rx.feed_limit(), 5 + 3);
        assert_eq!(
            rx.data_slot(),
            Some(DataSlot {
                offset: 0,
                left: 5,
                crc: None
            })
        );
        assert!(rx.data_placed(5, None));
        assert_eq!(rx.feed_limit(), 3);
    }

    #[test]
    fn header_only_pdu() {
        let wire = encode(0x20, &[], &[], false, false, 7);
        assert_eq!(wire.len(), 48);
        let mut rx = RxFramer::new(settings(false, false));
        let (n, ev) = rx.feed(&wire).unwrap();
        assert_eq!(n, 48);
        assert!(matches!(
            ev,
            RxEvent::Header {
                data_len: 0,
                ahs_len: 0,
                ..
            }
        ));
        assert!(!rx.at_pdu_boundary());
        assert_eq!(rx.feed(&[]).unwrap(), (0, RxEvent::PduEnd));
        assert!(rx.at_pdu_boundary());
        assert_eq!(rx.feed(&[]).unwrap(), (0, RxEvent::NeedMore));
    }

    #[test]
    fn odd_data_without_digests() {
        let data = data_of(5, 1);
        let wire = encode(0x25, &[], &data, false, false, 1);
        assert_eq!(wire.len(), 48 + 8);
        assert_eq!(&wire[53..56], &[0, 0, 0]);
        let mut rx = RxFramer::new(settings(false, false));
        let evs = run(&mut rx, &wire, &[]).unwrap();
        assert_eq!(pdus(&evs), vec![expect_pdu(0x25, &[], &data, 1)]);
        assert_eq!(evs.len(), 3);
    }

    #[test]
    fn data_events_borrow_the_input() {
        let data = data_of(100, 9);
        let wire = encode(0x25, &[], &data, false, false, 1);
        let mut rx = RxFramer::new(settings(false, false));
        let (n, _) = rx.feed(&wire).unwrap();
        let (m, ev) = rx.feed(&wire[n..]).unwrap();
        match ev {
            RxEvent::Data { offset: 0, bytes } => {
                assert_eq!(bytes.as_ptr(), wire[48..].as_ptr());
                assert_eq!(bytes.len(), 100);
                assert_eq!(m, 100);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ahs_digests_odd_length_all_ways() {
        let ahs = ext_cdb_ahs(&data_of(13, 4));
        let data = data_of(1001, 2);
        for (hd, dd) in [(false, false), (true, false), (false, true), (true, true)] {
            let wire = encode(0x25, &ahs, &data, hd, dd, 3);
            let expected_len = 48 + ahs.len() + 1001 + 3 + 4 * (hd as usize + dd as usize);
            assert_eq!(wire.len(), expected_len);
            let want = vec![expect_pdu(0x25, &ahs, &data, 3)];
            let mut rx = RxFramer::new(settings(hd, dd));
            assert_eq!(pdus(&run(&mut rx, &wire, &[]).unwrap()), want);
            let one_byte: Vec<usize> = (1..wire.len()).collect();
            let mut rx = RxFramer::new(settings(hd, dd));
            assert_eq!(pdus(&run(&mut rx, &wire, &one_byte).unwrap()), want);
        }
    }

    #[test]
    fn one_byte_at_a_time_equals_all_at_once() {
        let wire = encode(0x24, &[], &data_of(37, 5), true, true, 11);
        let mut rx = RxFramer::new(settings(true, true));
        let whole = pdus(&run(&mut rx, &wire, &[]).unwrap());
        let mut rx = RxFramer::new(settings(true, true));
        let mut joined = Vec::new();
        for b in &wire {
            match rx.feed(core::slice::from_ref(b)).unwrap() {
                (1, RxEvent::NeedMore) => {}
                (1, RxEvent::Header { bhs, data_len, .. }) => {
                    joined.push(Ev::Header(bhs, Vec::new(), data_len));
                }
                (1, RxEvent::Data { offset, bytes }) => {
                    joined.push(Ev::Data(offset, bytes.to_vec()));
                }
                (1, RxEvent::PduEnd) => joined.push(Ev::End),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(pdus(&joined), whole);
    }

    #[test]
    fn every_split_point_of_two_pdus() {
        let ahs = ext_cdb_ahs(&data_of(5, 1));
        for (hd, dd) in [(false, false), (true, true)] {
            let mut wire = encode(0x21, &ahs, &data_of(6, 3), hd, dd, 1);
            wire.extend(encode(0x25, &[], &data_of(9, 8), hd, dd, 2));
            let want = vec![
                expect_pdu(0x21, &ahs, &data_of(6, 3), 1),
                expect_pdu(0x25, &[], &data_of(9, 8), 2),
            ];
            for a in 0..=wire.len() {
                let mut rx = RxFramer::new(settings(hd, dd));
                assert_eq!(pdus(&run(&mut rx, &wire, &[a]).unwrap()), want, "cut {a}");
            }
            // Two cuts, a coarse grid of them.
            for a in (0..=wire.len()).step_by(3) {
                for b in (a..=wire.len()).step_by(5) {
                    let mut rx = RxFramer::new(settings(hd, dd));
                    assert_eq!(pdus(&run(&mut rx, &wire, &[a, b]).unwrap()), want);
                }
            }
        }
    }

    #[test]
    fn header_digest_mismatch_reports_both_values_and_sticks() {
        let mut wire = encode(0x20, &[], &[], true, false, 1);
        let good = digest_from_bytes(wire[48..52].try_into().unwrap());
        wire[1] ^= 0x01;
        let expected = crc32c(&wire[..48]);
        assert_ne!(expected, good);
        let mut rx = RxFramer::new(settings(true, false));
        let err = FramingError::HeaderDigest {
            expected,
            got: good,
        };
        assert_eq!(rx.feed(&wire), Err(err));
        assert_eq!(rx.error(), Some(err));
        // Stays failed, whatever comes next.
        assert_eq!(rx.feed(&wire), Err(err));
        assert_eq!(rx.feed(&[]), Err(err));
        rx.reset();
        assert!(rx.at_pdu_boundary());
        let ok = encode(0x20, &[], &[], true, false, 1);
        assert_eq!(pdus(&run(&mut rx, &ok, &[]).unwrap()).len(), 1);
    }

    #[test]
    fn corrupt_length_is_a_digest_error_not_a_field_error() {
        // With header digests on, a flipped length bit must be caught by the
        // digest before the length is believed.
        let mut wire = encode(0x25, &[], &data_of(4, 0), true, false, 1);
        wire[5] = 0x7f;
        let mut rx = RxFramer::new(settings(true, false));
        assert!(matches!(
            rx.feed(&wire),
            Err(FramingError::HeaderDigest { .. })
        ));
    }

    /// A bit-at-a-time CRC32C register update: another correct
    /// implementation, as the kernel's `crc32c()` would be.
    fn bitwise_update(mut crc: u32, data: &[u8]) -> u32 {
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82f6_3b78
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    /// A broken update: proves the receiver really uses the one it is given.
    fn broken_update(crc: u32, data: &[u8]) -> u32 {
        crc ^ data.len() as u32
    }

    #[test]
    fn digests_with_the_callers_crc_update_verify_the_same() {
        let data = data_of(5000, 3);
        let wire = encode(0x25, &[], &data, true, true, 9);
        let mut soft = RxFramer::new(settings(true, true));
        let mut other = RxFramer::new(settings(true, true)).with_crc_update(bitwise_update);
        let a = run(&mut soft, &wire, &[7, 48, 1000]).unwrap();
        let b = run(&mut other, &wire, &[1, 52, 4096]).unwrap();
        assert_eq!(pdus(&a), pdus(&b));
        assert_eq!(pdus(&a)[0].data, data);
    }

    #[test]
    fn a_wrong_crc_update_fails_the_header_digest() {
        let wire = encode(0x25, &[], &data_of(8, 1), true, true, 9);
        let mut rx = RxFramer::new(settings(true, true)).with_crc_update(broken_update);
        assert!(matches!(
            run(&mut rx, &wire, &[]),
            Err(FramingError::HeaderDigest { .. })
        ));
    }

    #[test]
    fn a_wrong_crc_update_fails_the_data_digest_only_where_used() {
        // Header digest off: only the data digest runs through the update.
        let wire = encode(0x25, &[], &data_of(8, 1), false, true, 9);
        let mut rx = RxFramer::new(settings(false, true)).with_crc_update(broken_update);
        assert!(matches!(
            run(&mut rx, &wire, &[]),
            Err(FramingError::DataDigest { .. })
        ));
        let wire = encode(0x25, &[], &data_of(8, 1), false, false, 9);
        let mut rx = RxFramer::new(settings(false, false)).with_crc_update(broken_update);
        assert!(run(&mut rx, &wire, &[]).is_ok());
    }

    #[test]
    fn data_digest_mismatch_after_data_pieces() {
        let data = data_of(10, 1);
        let mut wire = encode(0x25, &[], &data, false, true, 1);
        let last = wire.len() - 1;
        wire[last] ^= 0x80;
        let mut rx = RxFramer::new(settings(false, true));
        let err = run(&mut rx, &wire, &[50, 60]).unwrap_err();
        let mut h = Crc32c::new();
        h.update(&data);
        h.update(&[0, 0]);
        match err {
            FramingError::DataDigest { expected, got } => {
                assert_eq!(expected, h.finish());
                assert_eq!(got, h.finish() ^ 0x8000_0000);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(rx.feed(&[0]), Err(err));
    }

    #[test]
    fn corrupt_pad_byte_fails_data_digest() {
        let mut wire = encode(0x25, &[], &data_of(3, 1), false, true, 1);
        wire[48 + 3] = 0xaa;
        let mut rx = RxFramer::new(settings(false, true));
        assert!(matches!(
            run(&mut rx, &wire, &[]),
            Err(FramingError::DataDigest { .. })
        ));
    }

    #[test]
    fn nonzero_pad_without_digest_is_tolerated() {
        let mut wire = encode(0x25, &[], &data_of(3, 1), false, false, 1);
        wire[51] = 0xaa;
        let mut rx = RxFramer::new(settings(false, false));
        assert_eq!(pdus(&run(&mut rx, &wire, &[]).unwrap()).len(), 1);
    }

    #[test]
    fn no_data_digest_for_empty_segment() {
        let wire = encode(0x20, &[], &[], false, true, 1);
        assert_eq!(wire.len(), 48);
        let mut rx = RxFramer::new(settings(false, true));
        let mut two = wire.clone();
        two.extend_from_slice(&wire);
        assert_eq!(pdus(&run(&mut rx, &two, &[]).unwrap()).len(), 2);
    }

    #[test]
    fn data_segment_above_limit() {
        let wire = encode(0x25, &[], &data_of(8193, 0), false, false, 1);
        let mut rx = RxFramer::new(FramingSettings::default());
        let err = FramingError::DataSegmentTooLong {
            len: 8193,
            max: 8192,
        };
        assert_eq!(rx.feed(&wire[..48]), Err(err));
        assert_eq!(rx.feed(&wire[48..]), Err(err));
        // Exactly the limit is fine.
        let wire = encode(0x25, &[], &data_of(8192, 0), false, false, 1);
        let mut rx = RxFramer::new(FramingSettings::default());
        assert_eq!(pdus(&run(&mut rx, &wire, &[]).unwrap())[0].data.len(), 8192);
    }

    #[test]
    fn ahs_longer_than_buffer() {
        // 65 words = 260 bytes > MAX_AHS_LEN; one well-formed entry.
        let ahs = ext_cdb_ahs(&data_of(253, 0));
        assert_eq!(ahs.len(), 260);
        for hd in [false, true] {
            let wire = encode(0x25, &ahs, &[], hd, false, 1);
            let mut rx = RxFramer::new(settings(hd, false));
            assert_eq!(
                run(&mut rx, &wire, &[100, 200]),
                Err(FramingError::AhsTooLong { len: 260, max: 256 })
            );
        }
    }

    #[test]
    fn ahs_entry_running_past_total() {
        // TotalAHSLength 2 words, but the entry claims 9 specific bytes (needs 12).
        let ahs = [0u8, 9, 1, 0, 1, 2, 3, 4];
        let mut wire = bhs_for(0x21, 8, 0, 1).to_vec();
        wire.extend_from_slice(&ahs);
        let mut rx = RxFramer::new(settings(false, false));
        assert_eq!(
            rx.feed(&wire),
            Err(FramingError::AhsMalformed { offset: 0 })
        );
        // Second entry is the bad one.
        let ahs = [0u8, 1, 2, 0, 0, 5, 1, 0];
        assert_eq!(
            validate_ahs(&ahs),
            Err(FramingError::AhsMalformed { offset: 4 })
        );
    }

    #[test]
    fn ahs_entries_iterate() {
        let mut ahs = ext_cdb_ahs(&data_of(6, 1));
        // Bidirectional expected read data length AHS: AHSLength 5, type 2.
        ahs.extend_from_slice(&[0, 5, 2, 0, 0, 0, 0x10, 0]);
        let entries: Vec<_> = AhsEntries::new(&ahs).collect::<Result<_, _>>().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].ahs_type, 1);
        assert_eq!(&entries[0].specific[1..], &data_of(6, 1)[..]);
        assert_eq!(entries[1].ahs_type, 2);
        assert_eq!(entries[1].specific, &[0, 0, 0, 0x10, 0]);
        assert_eq!(AhsEntries::new(&[]).count(), 0);
        assert_eq!(validate_ahs(&[]), Ok(()));
        // An error is yielded once, then the iterator ends.
        let mut it = AhsEntries::new(&[0, 200, 1, 0]);
        assert!(matches!(it.next(), Some(Err(_))));
        assert!(it.next().is_none());
    }

    #[test]
    fn initiator_opcode_refused_when_asked() {
        let wire = encode(0x01, &[], &[], false, false, 1);
        let mut rx = RxFramer::new(settings(false, false));
        assert_eq!(
            rx.feed(&wire),
            Err(FramingError::OpcodeNotAllowed { opcode: 0x01 })
        );
        // With the Immediate bit set the opcode is still seen correctly.
        let mut wire = wire;
        wire[0] = 0x45;
        let mut rx = RxFramer::new(settings(false, false));
        assert_eq!(
            rx.feed(&wire),
            Err(FramingError::OpcodeNotAllowed { opcode: 0x05 })
        );
        let mut s = settings(false, false);
        s.target_opcodes_only = false;
        let mut rx = RxFramer::new(s);
        assert_eq!(pdus(&run(&mut rx, &wire, &[]).unwrap()).len(), 1);
    }

    #[test]
    fn unknown_target_opcode_is_framed() {
        // Vendor-specific target opcode 0x3c: framed and left to the layer above
        // to answer, not dropped here.
        let wire = encode(0x3c, &[], &data_of(2, 0), false, false, 1);
        let mut rx = RxFramer::new(settings(false, false));
        assert_eq!(pdus(&run(&mut rx, &wire, &[]).unwrap()).len(), 1);
    }

    #[test]
    fn rfc3720_read_pdu_with_header_digest() {
        // RFC 3720 B.4 Read(10) command; its header digest in wire order follows.
        let mut wire = [0u8; 52];
        wire[..48].copy_from_slice(&[
            0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14,
            0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ]);
        wire[48..].copy_from_slice(&[0x56, 0x3a, 0x96, 0xd9]);
        let mut s = settings(true, true);
        s.target_opcodes_only = false;
        let mut rx = RxFramer::new(s);
        let evs = run(&mut rx, &wire, &[]).unwrap();
        assert_eq!(pdus(&evs).len(), 1);
        // And TX produces the same bytes.
        let bhs: [u8; 48] = wire[..48].try_into().unwrap();
        let mut out = [0u8; 52];
        assert_eq!(header_segment(&bhs, &[], true, &mut out), Ok(52));
        assert_eq!(out, wire);
    }

    #[test]
    fn settings_switch_between_pdus() {
        // Login response without digests, then a NOP-In with both digests.
        let mut wire = encode(0x23, &[], &data_of(20, 1), false, false, 1);
        let second = encode(0x20, &[], &data_of(4, 2), true, true, 2);
        wire.extend_from_slice(&second);
        let mut rx = RxFramer::new(settings(false, false));
        let mut buf = [0u8; 64];
        let (n, pdu) = rx.feed_collect(&wire, &mut buf).unwrap();
        assert_eq!(n, 48 + 20);
        assert_eq!(pdu.unwrap().data_len, 20);
        assert_eq!(&buf[..20], &data_of(20, 1)[..]);
        rx.set_settings(settings(true, true));
        let (m, pdu) = rx.feed_collect(&wire[n..], &mut buf).unwrap();
        assert_eq!(m, second.len());
        assert_eq!(pdu.unwrap().bhs, bhs_for(0x20, 0, 4, 2));
        assert_eq!(&buf[..4], &data_of(4, 2)[..]);
    }

    #[test]
    fn settings_change_mid_pdu_waits_for_next_pdu() {
        let mut wire = encode(0x25, &[], &data_of(6, 1), false, false, 1);
        wire.extend(encode(0x25, &[], &data_of(6, 1), true, true, 2));
        let mut rx = RxFramer::new(settings(false, false));
        let (n, ev) = rx.feed(&wire[..50]).unwrap();
        assert!(matches!(ev, RxEvent::Header { .. }));
        rx.set_settings(settings(true, true));
        assert_eq!(rx.settings(), settings(true, true));
        let evs = run(&mut rx, &wire[n..], &[]).unwrap();
        assert_eq!(evs.iter().filter(|e| **e == Ev::End).count(), 2);
    }

    #[test]
    fn feed_collect_across_chunks_and_errors() {
        let wire = encode(0x24, &[], &data_of(30, 3), true, true, 1);
        let mut rx = RxFramer::new(settings(true, true));
        let mut buf = [0u8; 30];
        let mut done = None;
        for chunk in wire.chunks(7) {
            let (n, pdu) = rx.feed_collect(chunk, &mut buf).unwrap();
            assert_eq!(n, chunk.len());
            if pdu.is_some() {
                done = pdu;
            }
        }
        assert_eq!(done.unwrap().data_len, 30);
        assert_eq!(&buf[..], &data_of(30, 3)[..]);
        // A buffer shorter than the segment is refused up front.
        let mut small = [0u8; 29];
        let mut rx = RxFramer::new(settings(true, true));
        let err = FramingError::BufferTooSmall {
            needed: 30,
            have: 29,
        };
        assert_eq!(rx.feed_collect(&wire, &mut small), Err(err));
        assert_eq!(rx.feed_collect(&wire, &mut small), Err(err));
    }

    #[test]
    fn feed_collect_keeps_ahs() {
        let ahs = ext_cdb_ahs(&[9, 9, 9]);
        let wire = encode(0x21, &ahs, &[], true, false, 1);
        let mut rx = RxFramer::new(settings(true, false));
        let (n, pdu) = rx.feed_collect(&wire, &mut []).unwrap();
        assert_eq!(n, wire.len());
        assert_eq!(pdu.unwrap().ahs_len, 8);
        assert_eq!(rx.ahs(), &ahs[..]);
        assert_eq!(rx.bhs()[4], 2);
    }

    #[test]
    fn tx_header_segment_checks() {
        let ahs = ext_cdb_ahs(&[1, 2, 3, 4]);
        let bhs = bhs_for(0x01, ahs.len(), 0, 1);
        let mut out = [0u8; 64];
        let n = header_segment(&bhs, &ahs, true, &mut out).unwrap();
        assert_eq!(n, header_segment_len(ahs.len(), true));
        assert_eq!(&out[..48], &bhs);
        assert_eq!(&out[48..48 + ahs.len()], &ahs[..]);
        assert_eq!(
            &out[48 + ahs.len()..n],
            &digest_bytes(header_digest(&bhs, &ahs))
        );
        // AHS length must match TotalAHSLength.
        assert_eq!(
            header_segment(&bhs, &ahs[..4], false, &mut out),
            Err(FramingError::LengthMismatch { bhs: 8, given: 4 })
        );
        // Malformed AHS is refused on transmit too.
        let bad = [0u8, 40, 1, 0];
        assert_eq!(
            header_segment(&bhs_for(0x01, 4, 0, 1), &bad, false, &mut out),
            Err(FramingError::AhsMalformed { offset: 0 })
        );
        // Output too small.
        let mut tiny = [0u8; 50];
        assert_eq!(
            header_segment(&bhs, &ahs, false, &mut tiny),
            Err(FramingError::BufferTooSmall {
                needed: 56,
                have: 50
            })
        );
        assert_eq!(header_segment_len(usize::MAX, true), usize::MAX);
    }

    #[test]
    fn tx_ahs_above_field_limit() {
        let ahs = vec![0u8; 1024];
        let bhs = bhs_for(0x01, 0, 0, 1);
        let mut out = vec![0u8; 2048];
        assert_eq!(
            header_segment(&bhs, &ahs, false, &mut out),
            Err(FramingError::AhsTooLong {
                len: 1024,
                max: 1020
            })
        );
    }

    #[test]
    fn tx_data_trailer() {
        let mut t = [0xeeu8; 8];
        assert_eq!(data_trailer(0, None, &mut t), &[] as &[u8]);
        assert_eq!(data_trailer(0, Some(0x1234), &mut t), &[] as &[u8]);
        assert_eq!(data_trailer(4, None, &mut t), &[] as &[u8]);
        assert_eq!(data_trailer(5, None, &mut t), &[0, 0, 0]);
        assert_eq!(data_trailer(6, None, &mut t), &[0, 0]);
        assert_eq!(data_trailer(7, None, &mut t), &[0]);
        let data = data_of(7, 4);
        let tr = data_trailer(7, Some(crc32c(&data)), &mut t).to_vec();
        let mut padded = data.clone();
        padded.push(0);
        assert_eq!(tr.len(), 5);
        assert_eq!(tr[0], 0);
        assert_eq!(&tr[1..], &digest_bytes(crc32c(&padded)));
        let data = data_of(8, 4);
        assert_eq!(
            data_trailer(8, Some(crc32c(&data)), &mut t),
            &digest_bytes(crc32c(&data))
        );
    }

    #[test]
    fn tx_write_pdu_checks() {
        let bhs = bhs_for(0x03, 0, 10, 1);
        let mut out = [0u8; 128];
        assert_eq!(
            write_pdu(&bhs, &[], &[0; 9], false, false, &mut out),
            Err(FramingError::LengthMismatch { bhs: 10, given: 9 })
        );
        let mut small = [0u8; 60];
        assert_eq!(
            write_pdu(&bhs, &[], &[0; 10], true, true, &mut small),
            Err(FramingError::BufferTooSmall {
                needed: 48 + 4 + 12 + 4,
                have: 60
            })
        );
        assert_eq!(write_pdu(&bhs, &[], &[0; 10], true, true, &mut out), Ok(68));
    }

    #[test]
    fn tx_rx_round_trip_many_lengths() {
        let ahs = ext_cdb_ahs(&data_of(3, 7));
        for len in 0..=13usize {
            for (hd, dd) in [(false, false), (true, false), (false, true), (true, true)] {
                for a in [&[][..], &ahs[..]] {
                    let data = data_of(len, len as u8);
                    let wire = encode(0x25, a, &data, hd, dd, len as u32);
                    assert_eq!(Some(wire.len()), pdu_wire_len(a.len(), len as u32, hd, dd));
                    assert_eq!(wire.len() % 4, 0);
                    let mut rx = RxFramer::new(settings(hd, dd));
                    let got = pdus(&run(&mut rx, &wire, &[len % 7 + 1]).unwrap());
                    assert_eq!(got, vec![expect_pdu(0x25, a, &data, len as u32)]);
                }
            }
        }
    }

    #[test]
    fn shared_rules() {
        assert_eq!(pad_len(0), 0);
        assert_eq!(pad_len(1), 3);
        assert_eq!(pad_len(3), 1);
        assert_eq!(pad_len(u32::MAX), 1);
        assert!(!data_digest_present(true, 0));
        assert!(!data_digest_present(false, 8));
        assert!(data_digest_present(true, 1));
        assert_eq!(pdu_wire_len(0, 0, true, true), Some(52));
        assert_eq!(pdu_wire_len(8, 1, true, true), Some(48 + 8 + 4 + 4 + 4));
        assert_eq!(pdu_wire_len(usize::MAX, 1, false, false), None);
        let bhs = [0u8; 48];
        assert_eq!(header_digest(&bhs, &[]), crc32c(&bhs));
        let mut both = bhs.to_vec();
        both.extend_from_slice(&[0, 1, 1, 0]);
        assert_eq!(header_digest(&bhs, &[0, 1, 1, 0]), crc32c(&both));
    }

    #[test]
    fn garbage_never_panics_and_always_progresses() {
        // A deterministic pseudo-random stream, fed in odd-sized chunks, with the
        // receiver reset after each error.
        let mut x: u32 = 0x1234_5678;
        let mut stream = vec![0u8; 20_000];
        for b in stream.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        let mut s = settings(true, true);
        s.target_opcodes_only = false;
        let mut rx = RxFramer::new(s);
        let mut pos = 0;
        let mut steps = 0;
        while pos < stream.len() {
            let end = (pos + 1 + (stream[pos] as usize % 97)).min(stream.len());
            let mut chunk = &stream[pos..end];
            loop {
                steps += 1;
                assert!(steps < 1_000_000);
                match rx.feed(chunk) {
                    Ok((n, ev)) => {
                        assert!(n <= chunk.len());
                        chunk = &chunk[n..];
                        if ev == RxEvent::NeedMore {
                            assert!(chunk.is_empty());
                            break;
                        }
                    }
                    Err(_) => {
                        rx.reset();
                        break;
                    }
                }
            }
            pos = end;
        }
    }

    #[test]
    fn digested_data_placed_by_the_receiver_is_still_checked() {
        let mut bhs = [0u8; BHS_LEN];
        bhs[0] = 0x25;
        bhs[7] = 10;
        let data = data_of(10, 4);
        for hd in [false, true] {
            let mut wire = [0u8; 4096];
            let n = write_pdu(&bhs, &[], &data, hd, true, &mut wire).unwrap();
            let hlen = BHS_LEN + if hd { DIGEST_LEN } else { 0 };
            for corrupt in [false, true] {
                let mut f = RxFramer::new(settings(hd, true));
                let (used, ev) = f.feed(&wire[..hlen]).unwrap();
                assert_eq!(used, hlen);
                assert!(matches!(ev, RxEvent::Header { data_len: 10, .. }));
                // Offered with the register, and only taken with one.
                let slot = f.data_slot().unwrap();
                assert_eq!((slot.offset, slot.left), (0, 10));
                let crc = slot.crc.unwrap();
                assert!(!f.data_placed(1, None));
                assert!(!f.data_placed(11, Some(crc)));
                // Place in two pieces, folding each into the register.
                let mut placed = data.clone();
                if corrupt {
                    placed[7] ^= 1;
                }
                let crc = crc32c_update(crc, &placed[..6]);
                assert!(f.data_placed(6, Some(crc)));
                let slot = f.data_slot().unwrap();
                assert_eq!((slot.offset, slot.left), (6, 4));
                let crc = crc32c_update(slot.crc.unwrap(), &placed[6..]);
                assert!(f.data_placed(4, Some(crc)));
                assert_eq!(f.data_slot(), None);
                // Pad and digest are left on the wire.
                let rest = &wire[hlen + 10..n];
                let mut got = None;
                let mut input = rest;
                loop {
                    match f.feed(input) {
                        Ok((u, RxEvent::NeedMore)) => {
                            assert_eq!(u, input.len());
                            break;
                        }
                        Ok((u, ev)) => {
                            input = &input[u..];
                            got = Some(Ok(ev));
                        }
                        Err(e) => {
                            got = Some(Err(e));
                            break;
                        }
                    }
                }
                match (corrupt, got) {
                    (false, Some(Ok(RxEvent::PduEnd))) => {}
                    (true, Some(Err(FramingError::DataDigest { .. }))) => {}
                    other => panic!("corrupt {corrupt}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn data_placed_by_the_receiver_skips_the_data_events() {
        let settings = FramingSettings {
            header_digest: true,
            ..FramingSettings::default()
        };
        let mut wire = [0u8; 4096];
        let mut bhs = [0u8; BHS_LEN];
        bhs[0] = 0x25;
        bhs[7] = 10; // DataSegmentLength
        let data = [7u8; 10];
        let n = write_pdu(&bhs, &[], &data, true, false, &mut wire).unwrap();
        let wire = &wire[..n];
        let mut f = RxFramer::new(settings);
        // Header (with digest) first, then the framer offers the data segment.
        let (used, ev) = f.feed(&wire[..BHS_LEN + DIGEST_LEN]).unwrap();
        assert_eq!(used, BHS_LEN + DIGEST_LEN);
        assert!(matches!(ev, RxEvent::Header { data_len: 10, .. }));
        let slot = |offset, left| {
            Some(DataSlot {
                offset,
                left,
                crc: None,
            })
        };
        assert_eq!(f.data_slot(), slot(0, 10));
        assert!(!f.data_placed(11, None));
        // Without DataDigest no register is taken.
        assert!(!f.data_placed(4, Some(0)));
        assert!(f.data_placed(4, None));
        assert_eq!(f.data_slot(), slot(4, 6));
        assert!(f.data_placed(6, None));
        assert_eq!(f.data_slot(), None);
        // Only the pad is left on the wire.
        let (used, ev) = f.feed(&wire[BHS_LEN + DIGEST_LEN + 10..]).unwrap();
        assert_eq!(used, 2);
        assert_eq!(ev, RxEvent::PduEnd);
        // With DataDigest the CRC must see the bytes: placing without the
        // register is refused.
        let mut f = RxFramer::new(FramingSettings {
            data_digest: true,
            ..FramingSettings::default()
        });
        let mut w2 = [0u8; 4096];
        write_pdu(&bhs, &[], &data, false, true, &mut w2).unwrap();
        f.feed(&w2[..BHS_LEN]).unwrap();
        assert!(f.data_slot().is_some_and(|s| s.crc.is_some()));
        assert!(!f.data_placed(1, None));
    }
}
