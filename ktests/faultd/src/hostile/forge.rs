//! The hostile target's scenarios and the PDUs it sends: well-formed ones built
//! with iscsi-proto's Reprs, and for each scenario the malformed ones, made by
//! emitting a valid PDU with its Repr and then patching the named field (RFC
//! 7143 offsets in the comments). Digests are added later by `wire::encode`, over
//! the patched bytes, so the initiator sees a correctly digested but malformed PDU.

use iscsi_proto::bhs::{Bhs, Opcode, BHS_LEN, RESERVED_TAG};
use iscsi_proto::pdu::{
    ahs, AsyncEvent, AsyncMessage, DataIn, NopIn, R2t, Reject, RejectReason, ScsiResponse,
    ScsiResponseData,
};
use iscsi_proto::text::TextWriter;

use super::scsi::{Sense, CHECK_CONDITION, GOOD};

/// What sets a scenario off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The first READ at LBA >= [`TRIGGER_LBA`].
    Read,
    /// The first WRITE at LBA >= [`TRIGGER_LBA`].
    Write,
    /// The first READ or WRITE at LBA >= [`TRIGGER_LBA`].
    ReadWrite,
    /// Every Logout Response.
    Logout,
    /// Every normal-session login (operational stage).
    Login,
    /// Nothing: a correct target.
    Never,
    /// Every PDU of the full feature phase that the quirk concerns: a
    /// target that is wrong in one way all the time but never breaks the
    /// connection (the `quirk-*` scenarios and `flat-luns`).
    Always,
}

/// Default first LBA that triggers: commands below it are always served correctly,
/// so the SCSI scan and partition probing at LBA 0 pass. The last
/// [`END_ZONE_BLOCKS`] of the disk never trigger either (backup GPT headers and
/// RAID superblocks live there and get probed).
pub const TRIGGER_LBA: u64 = 1000;
/// Blocks at the end of the disk that never trigger (1 MiB).
pub const END_ZONE_BLOCKS: u64 = 2048;

macro_rules! scenarios {
    ($($variant:ident = $name:literal, $trigger:ident;)*) => {
        /// A misbehaviour of the hostile target (names as on the command line).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Scenario { $($variant,)* }

        impl Scenario {
            /// Every scenario.
            pub const ALL: &'static [Scenario] = &[$(Scenario::$variant,)*];

            /// The command-line name.
            pub fn name(self) -> &'static str {
                match self { $(Scenario::$variant => $name,)* }
            }

            /// What sets it off.
            pub fn trigger(self) -> Trigger {
                match self { $(Scenario::$variant => Trigger::$trigger,)* }
            }
        }
    };
}

scenarios! {
    DslTooLong = "dsl-too-long", Read;
    DataInOffset = "datain-offset", Read;
    DataInOverrun = "datain-overrun", Read;
    DataInUnknownItt = "datain-unknown-itt", Read;
    R2tBeyond = "r2t-beyond", Write;
    R2tZero = "r2t-zero", Write;
    StatSnBackwards = "statsn-backwards", Read;
    ExpCmdSnAhead = "expcmdsn-ahead", Read;
    WindowAbsurd = "window-absurd", Read;
    SenseOverflow = "sense-overflow", Read;
    AhsOverflow = "ahs-overflow", Read;
    UnknownOpcode = "unknown-opcode", Read;
    AsyncLogout = "async-logout", Read;
    AsyncDrop = "async-drop", Read;
    AsyncRenegotiate = "async-renegotiate", Read;
    LoginGarbage = "login-garbage", Login;
    RejectStorm = "reject-storm", ReadWrite;
    LogoutClose = "logout-close", Logout;
    LogoutCloseEarly = "logout-close-early", Logout;
    QuirkExpCmdSn = "quirk-expcmdsn", Always;
    QuirkStatSnRepeat = "quirk-statsn-repeat", Always;
    QuirkOuNonFinal = "quirk-ou-nonfinal", Always;
    FlatLuns = "flat-luns", Always;
    Good = "good", Never;
}

impl Scenario {
    /// Parses a command-line name.
    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.iter().copied().find(|s| s.name() == name)
    }
}

/// Bytes a forged Data-In carries where the disk has no say: recognisable in a
/// dump, and never what the RAM disk holds at LBA 1000+ unless a test wrote it.
pub const FORGED_FILL: u8 = 0xee;
/// Opcode of `unknown-opcode`: reserved, in the target range (bit 5 set), so only
/// the opcode itself is wrong (RFC 7143 §11.2.1.2 lists none at 0x3a).
pub const UNKNOWN_OPCODE: u8 = 0x3a;
/// How far `statsn-backwards` goes back.
pub const STATSN_BACK: u32 = 5;
/// How far ahead `expcmdsn-ahead` acknowledges.
pub const EXPCMDSN_AHEAD: u32 = 1000;
/// `window-absurd`: MaxCmdSN - ExpCmdSN.
pub const ABSURD_WINDOW: u32 = (1 << 31) + 5;
/// `sense-overflow`: SenseLength exceeds the sense bytes sent by this much.
pub const SENSE_EXCESS: u16 = 100;
/// `ahs-overflow`: the AHSLength written into an 8-byte AHS area.
pub const AHS_CLAIMED_LEN: u16 = 100;
/// `quirk-expcmdsn`: how far beyond the true ExpCmdSN every PDU acknowledges.
pub const QUIRK_EXPCMDSN_AHEAD: u32 = 1;
/// `quirk-ou-nonfinal`: the data segment of each Data-In of a read (never
/// above the initiator's MaxRecvDataSegmentLength), so reads take several.
pub const QUIRK_DATAIN_PIECE: u32 = 8192;
/// `flat-luns`: the flat-space LUNs reported, each its own RAM disk.
pub const FLAT_LUNS: [u16; 3] = [0, 1, 300];

/// One PDU to send: header, AHS and data segment (digests come later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Out {
    /// The BHS.
    pub bhs: [u8; BHS_LEN],
    /// AHS bytes (empty for all but `ahs-overflow`).
    pub ahs: Vec<u8>,
    /// Data segment.
    pub data: Vec<u8>,
}

impl Out {
    fn header(bhs: [u8; BHS_LEN]) -> Out {
        Out {
            bhs,
            ahs: Vec::new(),
            data: Vec::new(),
        }
    }
}

/// Session numbers and limits the PDUs are built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seq {
    /// StatSN the next response carries.
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
}

/// The command a scenario answers and what the session knows about it.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Sequence numbers now.
    pub seq: Seq,
    /// The command's ITT.
    pub itt: u32,
    /// The command's LUN field, raw.
    pub lun: u64,
    /// ExpectedDataTransferLength.
    pub edtl: u32,
    /// The initiator's MaxRecvDataSegmentLength.
    pub mrdsl: u32,
    /// MaxBurstLength.
    pub max_burst: u32,
    /// An ITT this session has never seen.
    pub unused_itt: u32,
    /// The correct read data (for scenarios that send it before misbehaving).
    pub data: Vec<u8>,
}

/// Data-In PDUs carrying `data` for a command: each at most `mrdsl` bytes, F at
/// the end of every MaxBurstLength sequence and at the end, DataSN from 0, no
/// status (the SCSI Response follows). Returns them and the next DataSN.
pub fn data_in(c: &Ctx, data: &[u8]) -> (Vec<Out>, u32) {
    data_in_pieces(c, data, c.mrdsl, None, false)
}

/// `quirk-ou-nonfinal`: a read's Data-In PDUs of at most
/// [`QUIRK_DATAIN_PIECE`] bytes (and `mrdsl`), the last one carrying GOOD
/// status (phase collapse, S and F set) from `status` (its StatSN, ExpCmdSN,
/// MaxCmdSN) with the correct O/U bit and residual for `sent` bytes against
/// the ExpectedDataTransferLength. Every earlier one has no S bit and yet
/// carries the U bit and a nonzero Residual Count (the bytes still to come):
/// RFC 7143 §11.7.1 makes O and U valid only when S is set, so a receiver
/// ignores them there. Empty `data` gives no PDU.
pub fn data_in_ou_quirk(c: &Ctx, data: &[u8], sent: u64, status: Seq) -> Vec<Out> {
    let piece = QUIRK_DATAIN_PIECE.min(c.mrdsl);
    data_in_pieces(c, data, piece, Some((status, sent)), true).0
}

/// The Data-In builder: pieces of at most `step` bytes that never straddle a
/// MaxBurstLength boundary; with `status`, the last PDU carries GOOD and the
/// residuals of `sent` bytes; `u_nonfinal` puts U and a residual on the others.
fn data_in_pieces(
    c: &Ctx,
    data: &[u8],
    step: u32,
    status: Option<(Seq, u64)>,
    u_nonfinal: bool,
) -> (Vec<Out>, u32) {
    let step = step.max(512) as usize;
    let burst = c.max_burst.max(512) as usize;
    let edtl = u64::from(c.edtl);
    let mut out = Vec::new();
    let mut offset = 0usize;
    let mut data_sn = 0u32;
    while offset < data.len() {
        // Never let a PDU straddle a burst boundary.
        let to_burst_end = burst - offset % burst;
        let n = step.min(to_burst_end).min(data.len() - offset);
        let end = offset + n;
        let last = end == data.len();
        let mut d = DataIn {
            final_bit: last || end.is_multiple_of(burst),
            ack: false,
            overflow: false,
            underflow: false,
            status: None,
            lun: c.lun,
            itt: c.itt,
            ttt: RESERVED_TAG,
            stat_sn: c.seq.stat_sn,
            exp_cmd_sn: c.seq.exp_cmd_sn,
            max_cmd_sn: c.seq.max_cmd_sn,
            data_sn,
            buffer_offset: offset as u32,
            residual_count: 0,
            data_segment_len: n as u32,
        };
        match status {
            Some((seq, sent)) if last => {
                d.status = Some(GOOD);
                d.overflow = sent > edtl;
                d.underflow = sent < edtl;
                d.residual_count = u32::try_from(sent.abs_diff(edtl)).unwrap_or(u32::MAX);
                d.stat_sn = seq.stat_sn;
                d.exp_cmd_sn = seq.exp_cmd_sn;
                d.max_cmd_sn = seq.max_cmd_sn;
            }
            _ if u_nonfinal && !last => {
                d.underflow = true;
                d.residual_count = (data.len() - end) as u32;
            }
            _ => {}
        }
        let mut h = [0u8; BHS_LEN];
        d.emit(&mut h);
        out.push(Out {
            bhs: h,
            ahs: Vec::new(),
            data: data[offset..end].to_vec(),
        });
        data_sn += 1;
        offset = end;
    }
    (out, data_sn)
}

/// A SCSI Response: `status` with `sense` (CHECK CONDITION) or none, residuals
/// from `sent` bytes against the ExpectedDataTransferLength, the given StatSN.
pub fn response(c: &Ctx, status: u8, sense: Option<Sense>, sent: u64, exp_data_sn: u32) -> Out {
    let edtl = u64::from(c.edtl);
    let data = match sense {
        Some(s) => {
            let fixed = s.fixed();
            let mut buf = vec![0u8; 2 + fixed.len()];
            let n = ScsiResponseData {
                sense: &fixed,
                response_data: &[],
            }
            .emit(&mut buf)
            .unwrap_or(0);
            buf.truncate(n);
            buf
        }
        None => Vec::new(),
    };
    let mut h = [0u8; BHS_LEN];
    ScsiResponse {
        bidi_overflow: false,
        bidi_underflow: false,
        overflow: sent > edtl,
        underflow: sent < edtl && status == GOOD,
        response: iscsi_proto::pdu::RESPONSE_COMPLETED,
        status,
        data_segment_len: data.len() as u32,
        itt: c.itt,
        snack_tag: 0,
        stat_sn: c.seq.stat_sn,
        exp_cmd_sn: c.seq.exp_cmd_sn,
        max_cmd_sn: c.seq.max_cmd_sn,
        exp_data_sn,
        bidi_read_residual_count: 0,
        residual_count: if status == GOOD {
            u32::try_from(sent.abs_diff(edtl)).unwrap_or(u32::MAX)
        } else {
            0
        },
    }
    .emit(&mut h);
    Out {
        bhs: h,
        ahs: Vec::new(),
        data,
    }
}

/// A Data-In of `len` bytes of [`FORGED_FILL`] at `offset` for `itt`, F set,
/// no status.
fn forged_data_in(c: &Ctx, itt: u32, offset: u32, len: u32) -> Out {
    let mut h = [0u8; BHS_LEN];
    DataIn {
        final_bit: true,
        ack: false,
        overflow: false,
        underflow: false,
        status: None,
        lun: c.lun,
        itt,
        ttt: RESERVED_TAG,
        stat_sn: c.seq.stat_sn,
        exp_cmd_sn: c.seq.exp_cmd_sn,
        max_cmd_sn: c.seq.max_cmd_sn,
        data_sn: 0,
        buffer_offset: offset,
        residual_count: 0,
        data_segment_len: len,
    }
    .emit(&mut h);
    Out {
        bhs: h,
        ahs: Vec::new(),
        data: vec![FORGED_FILL; len as usize],
    }
}

fn r2t(c: &Ctx, ttt: u32, offset: u32, len: u32) -> Out {
    let mut h = [0u8; BHS_LEN];
    R2t {
        lun: c.lun,
        itt: c.itt,
        ttt,
        stat_sn: c.seq.stat_sn,
        exp_cmd_sn: c.seq.exp_cmd_sn,
        max_cmd_sn: c.seq.max_cmd_sn,
        r2t_sn: 0,
        buffer_offset: offset,
        desired_data_len: len,
    }
    .emit(&mut h);
    Out::header(h)
}

/// The correct data followed by a GOOD response built from `seq`: the frame
/// for the sequence-number scenarios, which only lie in the response.
fn data_then_response(c: &Ctx, seq: Seq) -> Vec<Out> {
    let (mut out, data_sn) = data_in(c, &c.data);
    let lying = Ctx { seq, ..c.clone() };
    out.push(response(&lying, GOOD, None, c.data.len() as u64, data_sn));
    out
}

/// The PDUs `s` answers the triggering command with (`ttt` for forged R2Ts).
/// Empty for scenarios that do not fire on a command.
pub fn forge(s: Scenario, c: &Ctx, ttt: u32) -> Vec<Out> {
    let small = c.mrdsl.clamp(512, 1024);
    match s {
        // Event 1: "log out within Parameter3 seconds"; the triggering
        // command is never answered (it comes back for retry on relogin).
        Scenario::AsyncLogout => vec![async_message(
            c,
            AsyncEvent::LogoutRequest,
            0,
            0,
            ASYNC_LOGOUT_WITHIN,
        )],
        // Event 2 for CID 0 (Parameter1), Time2Wait in Parameter2; the
        // connection is closed right after (see `hostile::Conn`).
        Scenario::AsyncDrop => vec![async_message(
            c,
            AsyncEvent::DropConnection,
            0,
            ASYNC_DROP_TIME2WAIT,
            0,
        )],
        // Event 4: the initiator is to log in again and renegotiate.
        Scenario::AsyncRenegotiate => vec![async_message(c, AsyncEvent::Renegotiate, 0, 0, 0)],
        // DataSegmentLength (BHS bytes 5..8) above the initiator's declared
        // MaxRecvDataSegmentLength; really followed by that many bytes.
        Scenario::DslTooLong => {
            let len = c.mrdsl.saturating_add(512);
            let mut o = forged_data_in(c, c.itt, 0, len);
            let n = o.data.len().min(c.data.len());
            o.data[..n].copy_from_slice(&c.data[..n]);
            vec![o]
        }
        // BufferOffset (bytes 40..44) past the end of the command's buffer.
        Scenario::DataInOffset => vec![forged_data_in(c, c.itt, c.edtl.saturating_add(4096), 512)],
        // In the buffer, but offset + length runs past ExpectedDataTransferLength.
        Scenario::DataInOverrun => {
            vec![forged_data_in(
                c,
                c.itt,
                c.edtl.saturating_sub(small / 2),
                small,
            )]
        }
        // ITT (bytes 16..20) of no task.
        Scenario::DataInUnknownItt => vec![forged_data_in(c, c.unused_itt, 0, 512)],
        // Offset + DesiredDataTransferLength (bytes 40..48) past the buffer.
        Scenario::R2tBeyond => {
            let len = c.edtl.min(c.max_burst).max(512);
            vec![r2t(c, ttt, c.edtl.saturating_sub(len / 2), len)]
        }
        // DesiredDataTransferLength (bytes 44..48) 0.
        Scenario::R2tZero => vec![r2t(c, ttt, 0, 0)],
        // StatSN (bytes 24..28) below StatSNs already sent.
        Scenario::StatSnBackwards => data_then_response(
            c,
            Seq {
                stat_sn: c.seq.stat_sn.wrapping_sub(STATSN_BACK),
                ..c.seq
            },
        ),
        // ExpCmdSN (bytes 28..32) acknowledging commands never sent; MaxCmdSN
        // (32..36) keeps the usual window above it.
        Scenario::ExpCmdSnAhead => {
            let window = c.seq.max_cmd_sn.wrapping_sub(c.seq.exp_cmd_sn);
            let exp = c.seq.exp_cmd_sn.wrapping_add(EXPCMDSN_AHEAD);
            data_then_response(
                c,
                Seq {
                    exp_cmd_sn: exp,
                    max_cmd_sn: exp.wrapping_add(window),
                    ..c.seq
                },
            )
        }
        // MaxCmdSN - ExpCmdSN beyond 2^31: not a serial-number window at all.
        Scenario::WindowAbsurd => data_then_response(
            c,
            Seq {
                max_cmd_sn: c.seq.exp_cmd_sn.wrapping_add(ABSURD_WINDOW),
                ..c.seq
            },
        ),
        // CHECK CONDITION whose SenseLength (data segment bytes 0..2, RFC 7143
        // §11.4.7.2) claims more than the segment holds.
        Scenario::SenseOverflow => {
            let mut o = response(c, CHECK_CONDITION, Some(Sense::MEDIUM), 0, 0);
            let claimed = (o.data.len() as u16 - 2).saturating_add(SENSE_EXCESS);
            o.data[..2].copy_from_slice(&claimed.to_be_bytes());
            vec![o]
        }
        // The data, then a SCSI Response with an 8-byte AHS area (TotalAHSLength
        // = 2 words, BHS byte 4) whose one AHS says AHSLength (AHS bytes 0..2,
        // RFC 7143 §11.2.2.1) = 100: more than the area carries.
        Scenario::AhsOverflow => {
            let (mut out, data_sn) = data_in(c, &c.data);
            let mut resp = response(c, GOOD, None, c.data.len() as u64, data_sn);
            let mut area = vec![0u8; ahs::BIDI_READ_LEN_AHS_LEN];
            let n = ahs::emit_bidi_read_len(c.edtl, &mut area).unwrap_or(0);
            area.truncate(n);
            Bhs::from_array_mut(&mut resp.bhs).set_total_ahs_len(area.len());
            area[..2].copy_from_slice(&AHS_CLAIMED_LEN.to_be_bytes());
            resp.ahs = area;
            out.push(resp);
            out
        }
        // A NOP-In with byte 0's opcode (RFC 7143 §11.2.1.2) set to 0x3a, naming
        // the command's ITT.
        Scenario::UnknownOpcode => {
            let mut h = [0u8; BHS_LEN];
            NopIn {
                lun: c.lun,
                itt: c.itt,
                ttt: RESERVED_TAG,
                stat_sn: c.seq.stat_sn,
                exp_cmd_sn: c.seq.exp_cmd_sn,
                max_cmd_sn: c.seq.max_cmd_sn,
                data_segment_len: 0,
            }
            .emit(&mut h);
            Bhs::from_array_mut(&mut h).set_opcode(Opcode::Unknown(UNKNOWN_OPCODE), false);
            vec![Out::header(h)]
        }
        Scenario::LoginGarbage
        | Scenario::RejectStorm
        | Scenario::LogoutClose
        | Scenario::LogoutCloseEarly
        | Scenario::QuirkExpCmdSn
        | Scenario::QuirkStatSnRepeat
        | Scenario::QuirkOuNonFinal
        | Scenario::FlatLuns
        | Scenario::Good => Vec::new(),
    }
}

/// `async-drop`: the Time2Wait (Parameter2, seconds) the target asks for.
pub const ASYNC_DROP_TIME2WAIT: u16 = 1;
/// `async-logout`: the seconds (Parameter3) the initiator has to log out.
pub const ASYNC_LOGOUT_WITHIN: u16 = 20;

/// An Asynchronous Message with `event` and its parameters; it takes the
/// StatSN in `c.seq` (RFC 7143 §11.9).
fn async_message(c: &Ctx, event: AsyncEvent, p1: u16, p2: u16, p3: u16) -> Out {
    let mut h = [0u8; BHS_LEN];
    AsyncMessage {
        lun: c.lun,
        stat_sn: c.seq.stat_sn,
        exp_cmd_sn: c.seq.exp_cmd_sn,
        max_cmd_sn: c.seq.max_cmd_sn,
        event,
        vcode: 0,
        parameter1: p1,
        parameter2: p2,
        parameter3: p3,
        data_segment_len: 0,
    }
    .emit(&mut h);
    Out::header(h)
}

/// A Reject for the PDU whose BHS is `rejected` (RFC 7143 §11.17): ITT
/// 0xffffffff, the rejected BHS (without its digest or AHS) as the data
/// segment, StatSN/ExpCmdSN/MaxCmdSN from `seq` ("its usual value and ... not
/// related to the rejected command", §11.17.3). The StatSN is advanced after a
/// Reject: the caller counts it as used.
pub fn reject(seq: Seq, reason: RejectReason, rejected: &[u8; BHS_LEN]) -> Out {
    let mut h = [0u8; BHS_LEN];
    Reject {
        reason,
        stat_sn: seq.stat_sn,
        exp_cmd_sn: seq.exp_cmd_sn,
        max_cmd_sn: seq.max_cmd_sn,
        data_sn: 0,
        data_segment_len: BHS_LEN as u32,
    }
    .emit(&mut h);
    Out {
        bhs: h,
        ahs: Vec::new(),
        data: rejected.to_vec(),
    }
}

/// `login-garbage`: after the valid answers in `text` (written with proto's
/// TextWriter), bytes no key=value codec may accept: a record without `=`, a key
/// longer than 63 characters, and a non-numeric MaxRecvDataSegmentLength.
pub fn login_garbage(text: &mut Vec<u8>) {
    text.extend_from_slice(b"\x01\x02garbage-without-an-equals-sign\0");
    text.extend_from_slice(&[b'K'; 100]);
    text.extend_from_slice(b"=1\0");
    let mut buf = [0u8; 64];
    let mut w = TextWriter::new(&mut buf);
    // The value is well-formed text, only wrong for the key: write it with the codec.
    if w.push("MaxRecvDataSegmentLength", "banana").is_ok() {
        text.extend_from_slice(w.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{encode, settings, Deframer, Digests};
    use iscsi_proto::framing::{FramingError, FramingSettings, RxFramer};
    use iscsi_proto::pdu::{Pdu, PduError};
    use iscsi_proto::serial::{window_size, Sn};
    use iscsi_proto::text;

    const MRDSL: u32 = 8192;
    const DIG: Digests = Digests {
        header: true,
        data: true,
    };

    fn ctx() -> Ctx {
        Ctx {
            seq: Seq {
                stat_sn: 100,
                exp_cmd_sn: 50,
                max_cmd_sn: 81,
            },
            itt: 0x0000_0011,
            lun: 0,
            edtl: 4096,
            mrdsl: MRDSL,
            max_burst: 262_144,
            unused_itt: 0x7ead_0001,
            data: (0..4096u32).map(|i| i as u8).collect(),
        }
    }

    /// An initiator's receive settings, as the kernel frames target PDUs.
    fn initiator() -> FramingSettings {
        FramingSettings {
            target_opcodes_only: true,
            ..settings(DIG, MRDSL)
        }
    }

    /// Frames the wire bytes of `pdus` like an initiator would; the PDUs proto
    /// accepted and the first framing error.
    fn receive(pdus: &[Out]) -> (Vec<Pdu>, Vec<Vec<u8>>, Option<FramingError>) {
        let mut df = Deframer::new(initiator(), false);
        for o in pdus {
            df.push(&encode(&o.bhs, &o.ahs, &o.data, DIG));
        }
        let (mut hdrs, mut data) = (Vec::new(), Vec::new());
        loop {
            match df.next_frame() {
                Ok(Some(f)) => {
                    hdrs.push(Pdu::parse(&f.bhs).expect("proto parses the header"));
                    data.push(f.data);
                }
                Ok(None) => return (hdrs, data, None),
                Err(e) => return (hdrs, data, Some(e)),
            }
        }
    }

    fn last_response(pdus: &[Pdu]) -> ScsiResponse {
        match pdus.last() {
            Some(Pdu::ScsiResponse(r)) => *r,
            other => panic!("expected a SCSI Response last, got {other:?}"),
        }
    }

    #[test]
    fn names_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::from_name(s.name()), Some(*s));
        }
        assert_eq!(Scenario::ALL.len(), 24);
        assert_eq!(Scenario::from_name("nope"), None);
    }

    #[test]
    fn async_scenarios_send_one_async_message_with_the_statsn() {
        let c = ctx();
        for (s, event, p2, p3) in [
            (
                Scenario::AsyncLogout,
                AsyncEvent::LogoutRequest,
                0,
                ASYNC_LOGOUT_WITHIN,
            ),
            (
                Scenario::AsyncDrop,
                AsyncEvent::DropConnection,
                ASYNC_DROP_TIME2WAIT,
                0,
            ),
            (Scenario::AsyncRenegotiate, AsyncEvent::Renegotiate, 0, 0),
        ] {
            let out = forge(s, &c, 1);
            assert_eq!(out.len(), 1, "{s:?}");
            match Pdu::parse(&out[0].bhs) {
                Ok(Pdu::AsyncMessage(a)) => {
                    assert_eq!(a.event, event);
                    assert_eq!((a.parameter2, a.parameter3), (p2, p3));
                    assert_eq!(a.stat_sn, c.seq.stat_sn);
                }
                other => panic!("{s:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn good_read_frames_cleanly() {
        let c = Ctx {
            mrdsl: 1000,
            max_burst: 2048,
            ..ctx()
        };
        let (mut out, sn) = data_in(&c, &c.data);
        out.push(response(&c, GOOD, None, 4096, sn));
        let (pdus, data, err) = receive(&out);
        assert_eq!(err, None);
        // 1000+1000+48 | 1000+1000+48, then the response.
        assert_eq!(pdus.len(), 7);
        let finals: Vec<bool> = pdus[..6]
            .iter()
            .map(|p| matches!(p, Pdu::DataIn(d) if d.final_bit))
            .collect();
        assert_eq!(finals, [false, false, true, false, false, true]);
        assert_eq!(data[..6].concat(), c.data);
        let r = last_response(&pdus);
        assert_eq!((r.stat_sn, r.exp_data_sn, r.underflow), (100, 6, false));
    }

    #[test]
    fn dsl_too_long_is_refused_by_the_framer() {
        let (pdus, _, err) = receive(&forge(Scenario::DslTooLong, &ctx(), 9));
        assert!(pdus.is_empty());
        assert_eq!(
            err,
            Some(FramingError::DataSegmentTooLong {
                len: MRDSL + 512,
                max: MRDSL
            })
        );
    }

    #[test]
    fn datain_offset_and_overrun_and_unknown_itt() {
        let c = ctx();
        let (p, _, err) = receive(&forge(Scenario::DataInOffset, &c, 9));
        assert_eq!(err, None);
        let Pdu::DataIn(d) = p[0] else { panic!() };
        assert!(d.buffer_offset >= c.edtl);
        assert_eq!(d.itt, c.itt);

        let (p, _, _) = receive(&forge(Scenario::DataInOverrun, &c, 9));
        let Pdu::DataIn(d) = p[0] else { panic!() };
        assert!(d.buffer_offset < c.edtl);
        assert!(d.buffer_offset + d.data_segment_len > c.edtl);
        assert!(d.data_segment_len <= MRDSL);

        let (p, data, _) = receive(&forge(Scenario::DataInUnknownItt, &c, 9));
        let Pdu::DataIn(d) = p[0] else { panic!() };
        assert_eq!(d.itt, c.unused_itt);
        assert_eq!(data[0], vec![FORGED_FILL; 512]);
    }

    #[test]
    fn r2t_beyond_and_zero() {
        let c = ctx();
        let (p, _, err) = receive(&forge(Scenario::R2tBeyond, &c, 9));
        assert_eq!(err, None);
        let Pdu::R2t(r) = p[0] else { panic!() };
        assert_eq!((r.itt, r.ttt), (c.itt, 9));
        assert!(r.buffer_offset + r.desired_data_len > c.edtl);
        let (p, _, _) = receive(&forge(Scenario::R2tZero, &c, 9));
        let Pdu::R2t(r) = p[0] else { panic!() };
        assert_eq!(r.desired_data_len, 0);
    }

    #[test]
    fn sequence_number_lies() {
        let c = ctx();
        let (p, data, err) = receive(&forge(Scenario::StatSnBackwards, &c, 9));
        assert_eq!(err, None);
        assert_eq!(data[..data.len() - 1].concat(), c.data);
        assert_eq!(last_response(&p).stat_sn, 95);

        let (p, _, _) = receive(&forge(Scenario::ExpCmdSnAhead, &c, 9));
        let r = last_response(&p);
        assert_eq!(r.exp_cmd_sn, 1050);
        assert_eq!(window_size(Sn(r.exp_cmd_sn), Sn(r.max_cmd_sn)), Ok(32));

        let (p, _, _) = receive(&forge(Scenario::WindowAbsurd, &c, 9));
        let r = last_response(&p);
        assert_eq!(r.max_cmd_sn.wrapping_sub(r.exp_cmd_sn), (1 << 31) + 5);
        assert!(window_size(Sn(r.exp_cmd_sn), Sn(r.max_cmd_sn)).is_err());
    }

    /// Frames the wire bytes of `pdus` like an initiator would, without
    /// parsing the headers (proto's DataIn parser may refuse what a quirk sends).
    fn frames(pdus: &[Out]) -> Vec<crate::wire::Frame> {
        let mut df = Deframer::new(initiator(), false);
        for o in pdus {
            df.push(&encode(&o.bhs, &o.ahs, &o.data, DIG));
        }
        let mut out = Vec::new();
        while let Some(f) = df.next_frame().expect("framing") {
            out.push(f);
        }
        out
    }

    // Data-In byte 1 (RFC 7143 §11.7.1): F A 0 0 0 O U S.
    const F: u8 = 0x80;
    const O: u8 = 0x04;
    const U: u8 = 0x02;
    const S: u8 = 0x01;

    /// (flags, DataSN, BufferOffset, ResidualCount, StatSN, status byte) of a
    /// Data-In, read straight from the BHS.
    fn data_in_fields(f: &crate::wire::Frame) -> (u8, u32, u32, u32, u32, u8) {
        let b = Bhs::from_array(&f.bhs);
        assert_eq!(b.opcode(), Opcode::DataIn);
        (
            b.flags(),
            b.be32(36..40),
            b.be32(40..44),
            b.be32(44..48),
            b.be32(24..28),
            b.byte(3),
        )
    }

    #[test]
    fn ou_quirk_flags_every_data_in_without_status() {
        let data: Vec<u8> = (0..65536u32).map(|i| (i * 7) as u8).collect();
        let c = Ctx {
            mrdsl: 262_144,
            edtl: 65536,
            data: Vec::new(),
            ..ctx()
        };
        let status = Seq {
            stat_sn: 777,
            ..c.seq
        };
        let f = frames(&data_in_ou_quirk(&c, &data, 65536, status));
        // 8 KiB pieces although the initiator takes 256 KiB.
        assert_eq!(f.len(), 8);
        for (i, fr) in f.iter().enumerate() {
            let (flags, data_sn, offset, residual, stat_sn, st) = data_in_fields(fr);
            assert_eq!(fr.data.len(), 8192);
            assert_eq!((data_sn, offset), (i as u32, i as u32 * 8192));
            if i < 7 {
                assert_eq!(flags & (F | O | U | S), U, "PDU {i}: U without S or F");
                assert_eq!(residual, 65536 - (i as u32 + 1) * 8192, "PDU {i}");
                assert_ne!(residual, 0);
            } else {
                assert_eq!(flags & (F | O | U | S), F | S, "the last is correct");
                assert_eq!((residual, stat_sn, st), (0, 777, GOOD));
            }
        }
        assert_eq!(
            f.iter().flat_map(|f| f.data.clone()).collect::<Vec<_>>(),
            data
        );
        // proto takes them all, and names the quirk on all but the last.
        let stray: Vec<bool> = f
            .iter()
            .map(|f| match Pdu::parse(&f.bhs) {
                Ok(Pdu::DataIn(d)) => d.stray_residual_bits(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(stray, [true, true, true, true, true, true, true, false]);
        let Ok(Pdu::DataIn(d)) = Pdu::parse(&f[7].bhs) else {
            panic!("the status-bearing Data-In must parse")
        };
        assert_eq!((d.status, d.stat_sn, d.underflow), (Some(GOOD), 777, false));
    }

    #[test]
    fn ou_quirk_keeps_bursts_mrdsl_and_a_true_underflow() {
        // MaxRecvDataSegmentLength below 8 KiB wins; F at each 16 KiB burst end.
        let data = vec![5u8; 40960];
        let c = Ctx {
            mrdsl: 4096,
            max_burst: 16384,
            edtl: 40960,
            ..ctx()
        };
        let f = frames(&data_in_ou_quirk(&c, &data, 40960, c.seq));
        assert_eq!(f.len(), 10);
        let flags: Vec<u8> = f
            .iter()
            .map(|f| data_in_fields(f).0 & (F | U | S))
            .collect();
        assert_eq!(
            flags,
            [U, U, U, F | U, U, U, U, F | U, U, F | S],
            "F at 16 KiB and 32 KiB, U on all but the last"
        );
        assert!(f.iter().all(|f| f.data.len() == 4096));

        // A short read (36 bytes of an EDTL of 96): one PDU, status with a
        // real underflow of 60.
        let c = Ctx { edtl: 96, ..ctx() };
        let f = frames(&data_in_ou_quirk(&c, &[1; 36], 36, c.seq));
        assert_eq!(f.len(), 1);
        let (flags, _, _, residual, _, _) = data_in_fields(&f[0]);
        assert_eq!((flags & (F | O | U | S), residual), (F | U | S, 60));
        assert!(data_in_ou_quirk(&c, &[], 0, c.seq).is_empty());
    }

    #[test]
    fn quirk_scenarios_never_trigger() {
        for s in [
            Scenario::QuirkExpCmdSn,
            Scenario::QuirkStatSnRepeat,
            Scenario::QuirkOuNonFinal,
            Scenario::FlatLuns,
        ] {
            assert_eq!(s.trigger(), Trigger::Always, "{s:?}");
            assert!(forge(s, &ctx(), 1).is_empty(), "{s:?}");
        }
        assert_eq!(
            Scenario::from_name("quirk-ou-nonfinal"),
            Some(Scenario::QuirkOuNonFinal)
        );
    }

    #[test]
    fn sense_overflow_is_refused_by_proto() {
        let (p, data, err) = receive(&forge(Scenario::SenseOverflow, &ctx(), 9));
        assert_eq!(err, None);
        assert_eq!(last_response(&p).status, CHECK_CONDITION);
        assert_eq!(
            ScsiResponse::split_data(&data[0]),
            Err(PduError::SenseTooLong {
                sense_len: 18 + SENSE_EXCESS,
                available: 18
            })
        );
    }

    #[test]
    fn ahs_overflow_is_refused_by_the_framer() {
        let c = ctx();
        let out = forge(Scenario::AhsOverflow, &c, 9);
        let last = out.last().unwrap();
        assert_eq!(Bhs::from_array(&last.bhs).total_ahs_len(), 8);
        assert_eq!(
            ahs::iter(&last.ahs).next(),
            Some(Err(PduError::AhsTruncated))
        );
        let (p, _, err) = receive(&out);
        assert_eq!(p.len(), 1, "the Data-In before it is fine");
        assert_eq!(err, Some(FramingError::AhsMalformed { offset: 0 }));
    }

    #[test]
    fn unknown_opcode_is_kept_as_unknown() {
        let (p, _, err) = receive(&forge(Scenario::UnknownOpcode, &ctx(), 9));
        assert_eq!(err, None);
        assert!(
            matches!(
                p[0],
                Pdu::Unknown {
                    opcode: UNKNOWN_OPCODE,
                    ..
                }
            ),
            "{p:?}"
        );
        assert_eq!(p[0].itt(), ctx().itt);
    }

    #[test]
    fn login_garbage_does_not_parse() {
        let mut t = b"HeaderDigest=None\0".to_vec();
        login_garbage(&mut t);
        let results: Vec<_> = text::pairs(&t).collect();
        assert_eq!(results[0], Ok(("HeaderDigest", "None")));
        assert!(results[1].is_err(), "{results:?}");
        assert!(t
            .windows(31)
            .any(|w| w == b"MaxRecvDataSegmentLength=banana"));
    }

    #[test]
    fn reject_carries_the_rejected_bhs() {
        use iscsi_proto::pdu::{ScsiCommand, TaskAttr};
        let mut cmd = [0u8; BHS_LEN];
        ScsiCommand {
            immediate: false,
            final_bit: true,
            read: true,
            write: false,
            attr: TaskAttr::Simple,
            total_ahs_len: 0,
            data_segment_len: 0,
            lun: 0,
            itt: 0x42,
            expected_data_len: 4096,
            cmd_sn: 7,
            exp_stat_sn: 3,
            cdb: [0x28, 0, 0, 0, 0x03, 0xe8, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0],
        }
        .emit(&mut cmd);
        let c = ctx();
        let (p, data, err) = receive(&[reject(c.seq, RejectReason::ProtocolError, &cmd)]);
        assert_eq!(err, None);
        let Pdu::Reject(r) = p[0] else {
            panic!("{p:?}")
        };
        assert_eq!(r.reason.to_u8(), 0x04);
        assert_eq!(
            (r.stat_sn, r.exp_cmd_sn, r.max_cmd_sn, r.data_segment_len),
            (100, 50, 81, 48)
        );
        assert_eq!(p[0].itt(), RESERVED_TAG);
        assert_eq!(Reject::rejected_header(&data[0]), Ok(&cmd));
        assert_eq!(data[0].len(), BHS_LEN);
    }

    #[test]
    fn triggers() {
        assert_eq!(Scenario::R2tZero.trigger(), Trigger::Write);
        assert_eq!(Scenario::AhsOverflow.trigger(), Trigger::Read);
        assert_eq!(Scenario::Good.trigger(), Trigger::Never);
        assert_eq!(Scenario::RejectStorm.trigger(), Trigger::ReadWrite);
        assert_eq!(Scenario::LogoutClose.trigger(), Trigger::Logout);
        assert_eq!(Scenario::LogoutCloseEarly.trigger(), Trigger::Logout);
        for s in [
            Scenario::Good,
            Scenario::RejectStorm,
            Scenario::LogoutClose,
            Scenario::LogoutCloseEarly,
        ] {
            assert!(forge(s, &ctx(), 1).is_empty(), "{s:?}");
        }
        // A plain RxFramer (no Deframer in between) refuses the same way.
        let o = &forge(Scenario::DslTooLong, &ctx(), 9)[0];
        let wire = encode(&o.bhs, &o.ahs, &o.data, DIG);
        let mut rx = RxFramer::new(initiator());
        assert!(matches!(
            rx.feed(&wire),
            Err(FramingError::DataSegmentTooLong { .. })
        ));
    }
}
