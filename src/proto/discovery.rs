//! SendTargets discovery (RFC 7143 §13.3 and Appendix C) after a
//! `SessionType=Discovery` login: the Text Request/Response exchange, including
//! responses spread over several PDUs (C bit for a cut inside a pair, F=0 with a
//! Target Transfer Tag for "more to come"), and reading the result as targets with
//! their portals, all over caller buffers.
//!
//! The login itself is `super::login::Login`; the logout that ends the session is
//! `super::login::Logout`.

use core::fmt;

use super::bhs::{Bhs, Opcode, BHS_LEN, RESERVED_TAG};
use super::framing;
use super::login::{Portal, ProtocolError, Sequence};
use super::pdu::{Reject, RejectReason, TextRequest, TextResponse};
use super::serial::{self, Sn};
use super::text::{self, Pairs, TextAssembler, TextError, TextWriter, MAX_VALUE_LEN};

/// Responses one exchange may take. Every non-final response but an empty one
/// adds text, so the reassembly buffer bounds the exchange; this bounds a target
/// that keeps sending empty F=0 responses.
pub const MAX_TEXT_ROUNDS: u32 = 1024;

/// The key of a SendTargets record's name.
const TARGET_NAME: &str = "TargetName";
/// The key of a SendTargets record's portal.
const TARGET_ADDRESS: &str = "TargetAddress";

/// Why a discovery exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryError {
    /// The target broke the protocol.
    Protocol(ProtocolError),
    /// The target rejected our Text Request (e.g. LIO refuses C=1 text requests).
    Rejected {
        /// The reason it gave.
        reason: RejectReason,
    },
    /// A non-immediate request cannot go out: its CmdSN is outside the window.
    WindowClosed {
        /// The CmdSN it would carry.
        cmd_sn: u32,
        /// The target's ExpCmdSN.
        exp_cmd_sn: u32,
        /// The target's MaxCmdSN.
        max_cmd_sn: u32,
    },
    /// The query is not a valid text value.
    InvalidQuery(TextError),
    /// The output buffer is too small (nothing changed; retry with a larger one).
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A call out of turn.
    OutOfOrder,
}

impl From<ProtocolError> for DiscoveryError {
    fn from(e: ProtocolError) -> Self {
        DiscoveryError::Protocol(e)
    }
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Protocol(e) => write!(f, "protocol error: {e}"),
            Self::Rejected { reason } => {
                write!(
                    f,
                    "target rejected SendTargets (reason {:#04x})",
                    reason.to_u8()
                )
            }
            Self::WindowClosed {
                cmd_sn,
                exp_cmd_sn,
                max_cmd_sn,
            } => write!(
                f,
                "CmdSN {cmd_sn} outside the target's window {exp_cmd_sn}..={max_cmd_sn}"
            ),
            Self::InvalidQuery(e) => write!(f, "invalid SendTargets value: {e}"),
            Self::BufferTooSmall { needed, available } => {
                write!(f, "buffer of {available} bytes, {needed} needed")
            }
            Self::OutOfOrder => f.write_str("discovery call out of order"),
        }
    }
}

/// What [`SendTargets::handle_response`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryStep {
    /// The target has more: call [`SendTargets::next_request`] and send its PDU.
    SendNext,
    /// The whole answer is in; read it with [`SendTargets::targets`].
    Complete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Send,
    Await,
    Done,
    Failed,
}

/// One `SendTargets` exchange (initiator side).
///
/// The first request carries `SendTargets=<query>` with TTT 0xffffffff; while the
/// target answers F=0 we send empty requests carrying its TTT. Our requests have
/// F=1 and C=0 always (LIO refuses C=1 Text Requests). The answer is reassembled in
/// the caller's buffer and checked whole before [`DiscoveryStep::Complete`].
#[derive(Debug)]
pub struct SendTargets<'a> {
    query: &'a str,
    itt: u32,
    ttt: u32,
    immediate: bool,
    seq: Sequence,
    rx: TextAssembler<'a>,
    state: State,
    rounds: u32,
}

impl<'a> SendTargets<'a> {
    /// `SendTargets=All` as an immediate request (no CmdSN window to wait for; what
    /// libiscsi does), continuing from `seq` (e.g. `LoginOutcome::sequence`), with
    /// task tag `itt` and `buf` to reassemble the answer in.
    pub fn new(seq: Sequence, itt: u32, buf: &'a mut [u8]) -> Self {
        SendTargets {
            query: "All",
            itt,
            ttt: RESERVED_TAG,
            immediate: true,
            seq,
            rx: TextAssembler::new(buf),
            state: State::Send,
            rounds: 0,
        }
    }

    /// Asks about one target (`<iSCSI name>`), or, in a Normal session, the
    /// session's own target (an empty value), instead of `All`.
    pub fn with_query(mut self, query: &'a str) -> Self {
        self.query = query;
        self
    }

    /// Sends non-immediate requests, which take a CmdSN from the window each.
    pub fn with_immediate(mut self, immediate: bool) -> Self {
        self.immediate = immediate;
        self
    }

    /// The numbers as they stand (for the Logout that follows).
    pub fn sequence(&self) -> Sequence {
        self.seq
    }

    /// Writes the next Text Request into `out` and returns its length.
    pub fn next_request(&mut self, out: &mut [u8]) -> Result<usize, DiscoveryError> {
        if self.state != State::Send {
            return Err(DiscoveryError::OutOfOrder);
        }
        if !self.immediate {
            let window = serial::in_window(
                Sn(self.seq.cmd_sn),
                Sn(self.seq.exp_cmd_sn),
                Sn(self.seq.max_cmd_sn),
            );
            if window != Ok(true) {
                return Err(DiscoveryError::WindowClosed {
                    cmd_sn: self.seq.cmd_sn,
                    exp_cmd_sn: self.seq.exp_cmd_sn,
                    max_cmd_sn: self.seq.max_cmd_sn,
                });
            }
        }
        // "SendTargets=" + value + NUL.
        let mut text_buf = [0u8; MAX_VALUE_LEN + 16];
        let mut w = TextWriter::new(&mut text_buf);
        if self.ttt == RESERVED_TAG {
            w.push("SendTargets", self.query)
                .map_err(DiscoveryError::InvalidQuery)?;
        }
        let data = w.as_bytes();
        let data_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let mut header = [0u8; BHS_LEN];
        TextRequest {
            final_bit: true,
            cont: false,
            immediate: self.immediate,
            lun: 0,
            itt: self.itt,
            ttt: self.ttt,
            cmd_sn: self.seq.cmd_sn,
            exp_stat_sn: self.seq.exp_stat_sn,
            data_segment_len: data_len,
        }
        .emit(&mut header);
        let needed = framing::pdu_wire_len(0, data_len, false, false).unwrap_or(usize::MAX);
        let available = out.len();
        let n = framing::write_pdu(&header, &[], data, false, false, out)
            .map_err(|_| DiscoveryError::BufferTooSmall { needed, available })?;
        if !self.immediate {
            self.seq.cmd_sn = self.seq.cmd_sn.wrapping_add(1);
        }
        self.state = State::Await;
        Ok(n)
    }

    /// Takes the target's answer: `header` is its BHS, `data` its data segment
    /// without padding or digest.
    pub fn handle_response(
        &mut self,
        header: &[u8; BHS_LEN],
        data: &[u8],
    ) -> Result<DiscoveryStep, DiscoveryError> {
        if self.state != State::Await {
            return Err(DiscoveryError::OutOfOrder);
        }
        let step = self.receive(header, data);
        self.state = match step {
            Ok(DiscoveryStep::SendNext) => State::Send,
            Ok(DiscoveryStep::Complete) => State::Done,
            Err(_) => State::Failed,
        };
        step
    }

    fn receive(
        &mut self,
        header: &[u8; BHS_LEN],
        data: &[u8],
    ) -> Result<DiscoveryStep, DiscoveryError> {
        match Bhs::from_array(header).opcode() {
            Opcode::TextResponse => {}
            Opcode::Reject => {
                let reject = Reject::parse(header).map_err(ProtocolError::Pdu)?;
                // A Reject takes a StatSN: acknowledge it in the Logout that follows.
                self.take_numbers(reject.stat_sn, reject.exp_cmd_sn, reject.max_cmd_sn);
                return Err(DiscoveryError::Rejected {
                    reason: reject.reason,
                });
            }
            other => {
                return Err(ProtocolError::UnexpectedOpcode {
                    opcode: other.to_u8(),
                }
                .into())
            }
        }
        let resp = TextResponse::parse(header).map_err(ProtocolError::Pdu)?;
        if usize::try_from(resp.data_segment_len).ok() != Some(data.len()) {
            return Err(ProtocolError::DataLengthMismatch {
                announced: resp.data_segment_len,
                given: data.len(),
            }
            .into());
        }
        if resp.itt != self.itt {
            return Err(ProtocolError::IttMismatch {
                expected: self.itt,
                got: resp.itt,
            }
            .into());
        }
        self.take_numbers(resp.stat_sn, resp.exp_cmd_sn, resp.max_cmd_sn);
        if !resp.final_bit {
            if resp.ttt == RESERVED_TAG {
                return Err(ProtocolError::MissingTargetTransferTag.into());
            }
            self.ttt = resp.ttt;
            // F=0 means more PDUs either way, so the text is not complete even
            // when C=0 cut it at a pair boundary (as LIO does).
            if !data.is_empty() || resp.cont {
                self.rx.push(data, true).map_err(rx_error)?;
            }
            self.rounds = self.rounds.saturating_add(1);
            if self.rounds >= MAX_TEXT_ROUNDS {
                return Err(ProtocolError::TooManyRounds.into());
            }
            return Ok(DiscoveryStep::SendNext);
        }
        // With C=0 the push completes the text or fails.
        self.rx.push(data, false).map_err(rx_error)?;
        check_targets(self.rx.data())?;
        Ok(DiscoveryStep::Complete)
    }

    fn take_numbers(&mut self, stat_sn: u32, exp_cmd_sn: u32, max_cmd_sn: u32) {
        self.seq.exp_stat_sn = stat_sn.wrapping_add(1);
        // RFC 7143 §4.2.2.1: an invalid window pair is ignored, not fatal.
        if serial::window_update_valid(Sn(exp_cmd_sn), Sn(max_cmd_sn)) {
            self.seq.exp_cmd_sn = exp_cmd_sn;
            self.seq.max_cmd_sn = max_cmd_sn;
        }
    }

    /// The reassembled answer (complete after [`DiscoveryStep::Complete`]).
    pub fn text(&self) -> &[u8] {
        self.rx.data()
    }

    /// The targets of the answer (meant for use after [`DiscoveryStep::Complete`]).
    pub fn targets(&self) -> Targets<'_> {
        targets(self.rx.data())
    }
}

fn rx_error(e: TextError) -> DiscoveryError {
    match e {
        TextError::BufferFull { needed, available } => {
            ProtocolError::ResponseTooBig { needed, available }.into()
        }
        other => ProtocolError::Text(other).into(),
    }
}

/// Checks a SendTargets answer: well-formed pairs, no `TargetAddress` before the
/// first `TargetName`, no empty name, every address a valid portal. Other keys are
/// ignored. Returns the number of targets.
pub fn check_targets(text: &[u8]) -> Result<usize, ProtocolError> {
    let mut count = 0usize;
    for item in text::pairs(text) {
        let (key, value) = item.map_err(ProtocolError::Text)?;
        match key {
            TARGET_NAME if value.is_empty() => return Err(ProtocolError::EmptyTargetName),
            TARGET_NAME => count = count.saturating_add(1),
            TARGET_ADDRESS if count == 0 => return Err(ProtocolError::AddressWithoutTarget),
            TARGET_ADDRESS => {
                Portal::parse(value).map_err(ProtocolError::BadTargetAddress)?;
            }
            _ => {}
        }
    }
    Ok(count)
}

/// Iterates over the targets of a SendTargets answer: each `TargetName` with the
/// records up to the next one. Run [`check_targets`] first to refuse bad input;
/// here a malformed pair ends the iteration and a bad address is skipped.
pub fn targets(text: &[u8]) -> Targets<'_> {
    Targets {
        text,
        pairs: text::pairs(text),
        next: None,
    }
}

/// Iterator returned by [`targets`].
#[derive(Debug, Clone)]
pub struct Targets<'t> {
    text: &'t [u8],
    pairs: Pairs<'t>,
    /// A `TargetName` already read, and where its records start.
    next: Option<(&'t str, usize)>,
}

impl<'t> Iterator for Targets<'t> {
    type Item = DiscoveredTarget<'t>;

    fn next(&mut self) -> Option<Self::Item> {
        let (name, start) = match self.next.take() {
            Some(found) => found,
            None => loop {
                let (key, value) = self.pairs.next()?.ok()?;
                if key == TARGET_NAME {
                    break (value, self.pairs.offset());
                }
            },
        };
        let end = loop {
            let at = self.pairs.offset();
            match self.pairs.next() {
                Some(Ok((TARGET_NAME, value))) => {
                    self.next = Some((value, self.pairs.offset()));
                    break at;
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => break at,
            }
        };
        Some(DiscoveredTarget {
            name,
            records: self.text.get(start..end).unwrap_or(&[]),
        })
    }
}

impl core::iter::FusedIterator for Targets<'_> {}

/// One target of a SendTargets answer. A target listed without any
/// `TargetAddress` is reachable through the portal the discovery session used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscoveredTarget<'t> {
    /// The target's iSCSI name.
    pub name: &'t str,
    /// Its records after `TargetName`, up to the next target.
    records: &'t [u8],
}

impl<'t> DiscoveredTarget<'t> {
    /// The target's portals, in the order given.
    pub fn addresses(&self) -> Addresses<'t> {
        Addresses {
            pairs: text::pairs(self.records),
        }
    }
}

/// Iterator returned by [`DiscoveredTarget::addresses`].
#[derive(Debug, Clone)]
pub struct Addresses<'t> {
    pairs: Pairs<'t>,
}

impl<'t> Iterator for Addresses<'t> {
    type Item = Portal<'t>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (key, value) = self.pairs.next()?.ok()?;
            if key == TARGET_ADDRESS {
                if let Ok(portal) = Portal::parse(value) {
                    return Some(portal);
                }
            }
        }
    }
}

impl core::iter::FusedIterator for Addresses<'_> {}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::super::login::AddressError;
    use super::super::pdu::TextRequest;
    use super::*;
    use std::vec::Vec;

    const ITT: u32 = 0x0bad_cafe;
    const TTT: u32 = 0x1234;

    const ANSWER: &[u8] = b"TargetName=iqn.2003-01.org.linux-iscsi:disk1\0\
TargetAddress=192.168.1.10:3260,1\0\
TargetAddress=[2001:db8::10]:3260,1\0\
TargetName=iqn.2003-01.org.linux-iscsi:disk2\0\
TargetAddress=192.168.1.11:3261,2\0\
TargetAddress=[2001:db8::11]:3262,2\0";

    fn seq() -> Sequence {
        Sequence {
            cmd_sn: 100,
            exp_stat_sn: 20,
            exp_cmd_sn: 100,
            max_cmd_sn: 101,
        }
    }

    /// A Text Response header with StatSN `stat_sn` and a window of [100, 101].
    fn response(final_bit: bool, cont: bool, ttt: u32, stat_sn: u32, data: &[u8]) -> [u8; 48] {
        let mut h = [0u8; BHS_LEN];
        TextResponse {
            final_bit,
            cont,
            lun: 0,
            itt: ITT,
            ttt,
            stat_sn,
            exp_cmd_sn: 100,
            max_cmd_sn: 101,
            data_segment_len: data.len() as u32,
        }
        .emit(&mut h);
        h
    }

    fn request(st: &mut SendTargets<'_>) -> (TextRequest, Vec<u8>) {
        let mut out = [0u8; 512];
        let n = st.next_request(&mut out).unwrap();
        let req = TextRequest::parse(&out[..n]).unwrap();
        let len = req.data_segment_len as usize;
        assert_eq!(n, BHS_LEN + len + framing::pad_len(len as u32));
        (req, out[BHS_LEN..BHS_LEN + len].to_vec())
    }

    /// Serves `ANSWER` in pieces of `piece` bytes: with C=1 when `cut_pairs`, else
    /// at pair boundaries with F=0 C=0 (LIO's way). Returns the requests seen.
    fn serve(
        st: &mut SendTargets<'_>,
        piece: usize,
        cut_pairs: bool,
    ) -> Vec<(TextRequest, Vec<u8>)> {
        let pieces: Vec<&[u8]> = if cut_pairs {
            ANSWER.chunks(piece).collect()
        } else {
            ANSWER.split_inclusive(|&b| b == 0).collect()
        };
        let mut seen = Vec::new();
        for (i, p) in pieces.iter().enumerate() {
            let (req, data) = request(st);
            seen.push((req, data));
            let last = i + 1 == pieces.len();
            let ttt = if last { RESERVED_TAG } else { TTT };
            let h = response(last, cut_pairs && !last, ttt, 20 + i as u32, p);
            let want = if last {
                DiscoveryStep::Complete
            } else {
                DiscoveryStep::SendNext
            };
            assert_eq!(st.handle_response(&h, p), Ok(want));
        }
        seen
    }

    fn check_answer(st: &SendTargets<'_>) {
        let found: Vec<_> = st.targets().collect();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].name, "iqn.2003-01.org.linux-iscsi:disk1");
        assert_eq!(found[1].name, "iqn.2003-01.org.linux-iscsi:disk2");
        let a: Vec<_> = found[0].addresses().collect();
        assert_eq!(
            a,
            [
                Portal {
                    host: "192.168.1.10",
                    port: 3260,
                    tag: Some(1)
                },
                Portal {
                    host: "2001:db8::10",
                    port: 3260,
                    tag: Some(1)
                },
            ]
        );
        let b: Vec<_> = found[1]
            .addresses()
            .map(|p| (p.host, p.port, p.is_ipv6()))
            .collect();
        assert_eq!(
            b,
            [("192.168.1.11", 3261, false), ("2001:db8::11", 3262, true)]
        );
        assert_eq!(st.text(), ANSWER);
    }

    #[test]
    fn multi_pdu_answer_cut_inside_pairs() {
        let mut buf = [0u8; 1024];
        let mut st = SendTargets::new(seq(), ITT, &mut buf);
        let seen = serve(&mut st, 37, true);
        assert_eq!(seen.len(), ANSWER.len().div_ceil(37));
        let (first, data) = &seen[0];
        assert_eq!(data, b"SendTargets=All\0");
        assert!(first.final_bit && !first.cont && first.immediate);
        assert_eq!((first.itt, first.ttt), (ITT, RESERVED_TAG));
        for (i, (req, data)) in seen.iter().enumerate().skip(1) {
            assert!(data.is_empty(), "continuation requests are empty");
            assert!(req.final_bit && !req.cont, "F=1, never C=1 (LIO)");
            assert_eq!((req.itt, req.ttt), (ITT, TTT));
            assert_eq!(req.cmd_sn, 100, "immediate: CmdSN stays");
            assert_eq!(req.exp_stat_sn, 20 + i as u32, "acknowledges each response");
        }
        check_answer(&st);
        assert_eq!(st.sequence().exp_stat_sn, 20 + seen.len() as u32);
        let mut out = [0u8; 64];
        assert_eq!(st.next_request(&mut out), Err(DiscoveryError::OutOfOrder));
    }

    #[test]
    fn multi_pdu_answer_split_at_pairs_with_f0() {
        let mut buf = [0u8; 1024];
        let mut st = SendTargets::new(seq(), ITT, &mut buf);
        let seen = serve(&mut st, 0, false);
        assert_eq!(seen.len(), 6);
        check_answer(&st);
    }

    #[test]
    fn non_immediate_requests_use_the_window() {
        let mut buf = [0u8; 1024];
        let mut st = SendTargets::new(seq(), ITT, &mut buf).with_immediate(false);
        let (req, _) = request(&mut st);
        assert!(!req.immediate);
        assert_eq!(req.cmd_sn, 100);
        let h = response(false, false, TTT, 20, b"TargetName=a\0");
        assert_eq!(
            st.handle_response(&h, b"TargetName=a\0"),
            Ok(DiscoveryStep::SendNext)
        );
        let (req, _) = request(&mut st);
        assert_eq!(req.cmd_sn, 101);
        // The target's window is still [100, 101]: CmdSN 102 may not go out.
        let h = response(false, false, TTT, 21, &[]);
        assert_eq!(st.handle_response(&h, &[]), Ok(DiscoveryStep::SendNext));
        let mut out = [0u8; 64];
        assert_eq!(
            st.next_request(&mut out),
            Err(DiscoveryError::WindowClosed {
                cmd_sn: 102,
                exp_cmd_sn: 100,
                max_cmd_sn: 101
            })
        );
        assert_eq!(st.sequence().cmd_sn, 102);
    }

    #[test]
    fn queries_and_buffers() {
        let mut buf = [0u8; 64];
        let mut st = SendTargets::new(seq(), ITT, &mut buf).with_query("iqn.2003-01.x:y");
        assert_eq!(request(&mut st).1, b"SendTargets=iqn.2003-01.x:y\0");
        let mut buf = [0u8; 64];
        let mut st = SendTargets::new(seq(), ITT, &mut buf).with_query("");
        let mut small = [0u8; 60];
        assert_eq!(
            st.next_request(&mut small),
            Err(DiscoveryError::BufferTooSmall {
                needed: 64,
                available: 60
            })
        );
        assert_eq!(request(&mut st).1, b"SendTargets=\0");
        let mut buf = [0u8; 64];
        let mut st = SendTargets::new(seq(), ITT, &mut buf).with_query("a\nb");
        assert!(matches!(
            st.next_request(&mut [0u8; 128]),
            Err(DiscoveryError::InvalidQuery(TextError::ControlChar { .. }))
        ));
    }

    /// Sends the first request, then feeds `h`/`data` and returns the outcome.
    fn answer_with(
        h: [u8; 48],
        data: &[u8],
        buf_len: usize,
    ) -> Result<DiscoveryStep, DiscoveryError> {
        let mut buf = [0u8; 1024];
        let mut st = SendTargets::new(seq(), ITT, &mut buf[..buf_len]);
        request(&mut st);
        st.handle_response(&h, data)
    }

    fn proto(e: ProtocolError) -> Result<DiscoveryStep, DiscoveryError> {
        Err(DiscoveryError::Protocol(e))
    }

    #[test]
    fn target_violations_are_refused() {
        let data = b"TargetName=t\0";
        let mut h = response(true, false, RESERVED_TAG, 20, data);
        h[19] ^= 1;
        assert_eq!(
            answer_with(h, data, 1024),
            proto(ProtocolError::IttMismatch {
                expected: ITT,
                got: ITT ^ 1
            })
        );
        let h = response(false, true, RESERVED_TAG, 20, data);
        assert_eq!(
            answer_with(h, data, 1024),
            proto(ProtocolError::MissingTargetTransferTag)
        );
        let h = response(true, false, RESERVED_TAG, 20, data);
        assert_eq!(
            answer_with(h, &data[1..], 1024),
            proto(ProtocolError::DataLengthMismatch {
                announced: data.len() as u32,
                given: data.len() - 1
            })
        );
        assert_eq!(
            answer_with(h, data, 8),
            proto(ProtocolError::ResponseTooBig {
                needed: data.len(),
                available: 8
            })
        );
        let mut nop = h;
        nop[0] = 0x20;
        assert_eq!(
            answer_with(nop, data, 1024),
            proto(ProtocolError::UnexpectedOpcode { opcode: 0x20 })
        );
        // A Reject carrying our request's header (LIO refuses some text requests).
        let mut reject = [0u8; BHS_LEN];
        Reject {
            reason: RejectReason::ProtocolError,
            stat_sn: 20,
            exp_cmd_sn: 100,
            max_cmd_sn: 101,
            data_sn: 0,
            data_segment_len: 48,
        }
        .emit(&mut reject);
        let mut buf = [0u8; 64];
        let mut st = SendTargets::new(seq(), ITT, &mut buf);
        request(&mut st);
        assert_eq!(
            st.handle_response(&reject, &[0u8; 48]),
            Err(DiscoveryError::Rejected {
                reason: RejectReason::ProtocolError
            })
        );
        assert_eq!(
            st.sequence().exp_stat_sn,
            21,
            "the Reject's StatSN is acknowledged"
        );
        // C=1 with no data would make no progress.
        let h = response(false, true, TTT, 20, &[]);
        assert_eq!(
            answer_with(h, &[], 1024),
            proto(ProtocolError::Text(TextError::EmptyContinuation))
        );
    }

    #[test]
    fn malformed_answers_are_refused_whole() {
        for (text, err) in [
            (
                &b"TargetAddress=1.2.3.4\0TargetName=t\0"[..],
                ProtocolError::AddressWithoutTarget,
            ),
            (&b"TargetName=\0"[..], ProtocolError::EmptyTargetName),
            (
                &b"TargetName=t\0TargetAddress=1.2.3.4:99999\0"[..],
                ProtocolError::BadTargetAddress(AddressError::BadPort),
            ),
            (
                &b"TargetName=t"[..],
                ProtocolError::Text(TextError::MissingNul { offset: 0 }),
            ),
        ] {
            let h = response(true, false, RESERVED_TAG, 20, text);
            assert_eq!(answer_with(h, text, 1024), proto(err), "{text:?}");
            assert_eq!(check_targets(text), Err(err));
        }
    }

    #[test]
    fn targets_without_addresses_and_other_keys() {
        let text = b"TargetName=a\0X-vendor=1\0TargetName=b\0\0TargetAddress=h,5\0";
        assert_eq!(check_targets(text), Ok(2));
        let found: Vec<_> = targets(text).collect();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].name, "a");
        assert_eq!(
            found[0].addresses().count(),
            0,
            "reachable at the discovery portal"
        );
        let b: Vec<_> = found[1].addresses().collect();
        assert_eq!(
            b,
            [Portal {
                host: "h",
                port: 3260,
                tag: Some(5)
            }]
        );
        assert_eq!(targets(b"").count(), 0);
        assert_eq!(check_targets(b""), Ok(0));
        // Lenient iteration: a bad address is skipped, a bad pair ends the list.
        let text =
            b"TargetName=a\0TargetAddress=[x\0TargetAddress=ok:1\0TargetName=b\0=\0TargetName=c\0";
        let found: Vec<_> = targets(text).collect();
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[0].addresses().map(|p| p.host).collect::<Vec<_>>(),
            ["ok"]
        );
        assert_eq!(found[1].name, "b");
    }

    #[test]
    fn errors_print() {
        let e = DiscoveryError::Rejected {
            reason: RejectReason::CommandNotSupported,
        };
        assert_eq!(
            std::format!("{e}"),
            "target rejected SendTargets (reason 0x05)"
        );
        let e = DiscoveryError::from(ProtocolError::EmptyTargetName);
        assert_eq!(std::format!("{e}"), "protocol error: empty TargetName");
    }
}
