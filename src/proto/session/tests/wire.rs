//! A byte-level receiver that does what the kernel's `conn.rs` + `session/rx.rs`
//! do with the engine: bytes go through `RxFramer` (target opcodes only) in
//! chunks of at most `feed_limit()`, a Data-In header goes to `data_in_header`
//! first and its payload is placed by the receiver itself (`data_slot`, the
//! bytes folded into the digest's register under DataDigest)
//! exactly where `Placement` says (dropped if the task is gone), every other
//! data segment is collected, and `on_pdu` sees the whole PDU at its end.
//! Used by the hostile-target scenarios and the property tests.

extern crate std;

use std::collections::BTreeMap;
use std::fmt;
use std::string::String;
use std::vec::Vec;

use super::super::super::bhs::{pad_len, BHS_LEN};
use super::super::super::crc32c::{crc32c, crc32c_update};
use super::super::super::framing::{
    header_digest, FramingError, FramingSettings, RxEvent, RxFramer,
};
use super::super::super::pdu::Pdu;
use super::super::error::SessionError;
use super::super::rx::{HostResult, Note, Placement, Reconnect, RxOutcome};
use super::{TestCmd, TestEngine};

/// A PDU on the wire, from its parts: BHS, AHS (not checked), data, pad and
/// the digests asked for. The BHS's lengths are sent as they are, so a
/// forged DataSegmentLength or TotalAHSLength reaches the framer unchanged.
pub(crate) fn encode(bhs: &[u8; BHS_LEN], ahs: &[u8], data: &[u8], hd: bool, dd: bool) -> Vec<u8> {
    let mut v = Vec::with_capacity(BHS_LEN + ahs.len() + data.len() + 12);
    v.extend_from_slice(bhs);
    v.extend_from_slice(ahs);
    if hd {
        v.extend_from_slice(&header_digest(bhs, ahs).to_le_bytes());
    }
    let start = v.len();
    v.extend_from_slice(data);
    let pad = pad_len(u32::try_from(data.len()).unwrap_or(u32::MAX)) as usize;
    v.resize(v.len() + pad, 0);
    if dd && !data.is_empty() {
        let crc = crc32c(&v[start..]);
        v.extend_from_slice(&crc.to_le_bytes());
    }
    v
}

/// Why the receiver failed the connection (the kernel's two log prefixes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RxFail {
    /// The byte stream is not valid framing.
    Framing(FramingError),
    /// The engine named a violation.
    Session(SessionError),
}

impl fmt::Display for RxFail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RxFail::Framing(e) => write!(f, "framing violation: {e:?}"),
            RxFail::Session(e) => write!(f, "protocol violation: {e}"),
        }
    }
}

/// A completion, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Done {
    pub id: u32,
    pub host: HostResult,
    pub status: u8,
    pub resid: u32,
    pub sense: Vec<u8>,
}

/// What one PDU asked of the caller, owned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Got {
    pub done: Option<Done>,
    pub wake: bool,
    pub kick_tx: bool,
    pub note: Option<Note>,
    pub reconnect: Option<Reconnect>,
}

impl From<RxOutcome<'_, TestCmd>> for Got {
    fn from(o: RxOutcome<'_, TestCmd>) -> Self {
        Got {
            done: o.complete.map(|c| Done {
                id: c.cmd.id,
                host: c.host,
                status: c.status,
                resid: c.resid,
                sense: c.sense.to_vec(),
            }),
            wake: o.wake,
            kick_tx: o.kick_tx,
            note: o.note,
            reconnect: o.reconnect,
        }
    }
}

/// A command's buffer and the byte ranges Data-In placed into it.
#[derive(Debug, Clone, Default)]
pub(crate) struct CmdBuf {
    pub data: Vec<u8>,
    /// Half-open ranges, in arrival order.
    pub delivered: Vec<(u32, u32)>,
}

impl CmdBuf {
    pub(crate) fn new(len: u32) -> Self {
        CmdBuf {
            data: std::vec![0u8; len as usize],
            delivered: Vec::new(),
        }
    }

    /// Whether every byte of `[0, end)` was delivered by some Data-In.
    pub(crate) fn covered(&self, end: u32) -> bool {
        let mut r = self.delivered.clone();
        r.sort_unstable();
        let mut at = 0u32;
        for (s, e) in r {
            if s > at {
                break;
            }
            at = at.max(e);
        }
        at >= end
    }
}

/// The receiver: framer, the PDU in progress and the command buffers.
pub(crate) struct Receiver {
    pub framer: RxFramer,
    cur: Option<([u8; BHS_LEN], u32, Placement)>,
    scratch: Vec<u8>,
    /// Buffers by command id (register one per command before its Data-In).
    pub bufs: BTreeMap<u32, CmdBuf>,
    /// Bytes placed outside a buffer: must stay empty.
    pub outside: Vec<String>,
}

impl Receiver {
    /// A receiver framing as the kernel does for MaxRecvDataSegmentLength
    /// `mrdsl` with the digests given.
    pub(crate) fn new(mrdsl: u32, hd: bool, dd: bool) -> Self {
        Receiver {
            framer: RxFramer::new(FramingSettings {
                header_digest: hd,
                data_digest: dd,
                max_recv_data_segment_len: mrdsl,
                target_opcodes_only: true,
            }),
            cur: None,
            scratch: Vec::new(),
            bufs: BTreeMap::new(),
            outside: Vec::new(),
        }
    }

    /// A new connection: framing starts over (buffers stay).
    pub(crate) fn reset(&mut self) {
        self.framer.reset();
        self.cur = None;
        self.scratch.clear();
    }

    fn place(&mut self, e: &mut TestEngine, to: Placement, offset: u32, bytes: &[u8]) {
        let Placement::Into { tag, seq, base } = to else {
            return;
        };
        // Gone (taken back) meanwhile: the kernel drops the bytes.
        let Some(t) = e.tasks.get(tag, seq) else {
            return;
        };
        let id = t.cmd.id;
        let len = t.len;
        let at = u64::from(base) + u64::from(offset);
        let end = at + bytes.len() as u64;
        let Some(buf) = self.bufs.get_mut(&id) else {
            panic!("no buffer registered for command {id}");
        };
        if end > u64::from(len) || end > buf.data.len() as u64 {
            self.outside.push(std::format!(
                "cmd {id}: bytes {at}..{end} of a {len}-byte buffer"
            ));
            return;
        }
        buf.data[at as usize..end as usize].copy_from_slice(bytes);
        buf.delivered.push((at as u32, end as u32));
    }

    /// Feeds `input` at `now_ms`; returns what each PDU completed in it asked
    /// for, or the failure that ends the connection.
    pub(crate) fn receive(
        &mut self,
        e: &mut TestEngine,
        mut input: &[u8],
        now_ms: i64,
    ) -> Result<Vec<Got>, RxFail> {
        let mut out = Vec::new();
        loop {
            // Inside a Data-In segment bound for a buffer: placed straight
            // from the input, as the kernel does from the skbs.
            if let (Some((_, _, to @ Placement::Into { .. })), Some(slot)) =
                (self.cur, self.framer.data_slot())
            {
                if input.is_empty() {
                    return Ok(out);
                }
                let n = input.len().min(slot.left as usize);
                let bytes = &input[..n];
                self.place(e, to, slot.offset, bytes);
                let crc = slot.crc.map(|c| crc32c_update(c, bytes));
                assert!(
                    self.framer.data_placed(n as u32, crc),
                    "the framer refused bytes it offered"
                );
                input = &input[n..];
            }
            let limit = self.framer.feed_limit().min(input.len());
            let (used, ev) = self.framer.feed(&input[..limit]).map_err(RxFail::Framing)?;
            input = &input[used..];
            match ev {
                RxEvent::NeedMore if input.is_empty() => return Ok(out),
                RxEvent::NeedMore => {}
                RxEvent::Header { bhs, data_len, .. } => {
                    let to = match Pdu::parse(&bhs)
                        .map_err(|x| RxFail::Session(SessionError::Malformed(x)))?
                    {
                        Pdu::DataIn(d) => e.data_in_header(0, &d).map_err(RxFail::Session)?,
                        _ => Placement::Discard,
                    };
                    self.scratch.clear();
                    self.cur = Some((bhs, data_len, to));
                }
                RxEvent::Data { offset, bytes } => match self.cur {
                    Some((_, _, to @ Placement::Into { .. })) => self.place(e, to, offset, bytes),
                    Some(_) => self.scratch.extend_from_slice(bytes),
                    None => {}
                },
                RxEvent::PduEnd => {
                    let Some((bhs, _, _)) = self.cur.take() else {
                        continue;
                    };
                    let pdu = Pdu::parse(&bhs)
                        .map_err(|x| RxFail::Session(SessionError::Malformed(x)))?;
                    let data: &[u8] = match pdu {
                        Pdu::DataIn(_) => &[],
                        _ => &self.scratch,
                    };
                    let got = e.on_pdu(0, &pdu, data, now_ms).map_err(RxFail::Session)?;
                    out.push(Got::from(got));
                }
            }
        }
    }
}
