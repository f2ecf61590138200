//! Property tests for every parser that reads peer bytes: each PDU `Repr`, the AHS
//! iterator, SCSI Response sense splitting, Reject payloads, LUNs and the text
//! codec. Random input must give `Ok` or `Err`, never a panic or an out-of-bounds
//! access; what parses must re-emit to a header that parses to the same value.
//! Part of the bounded fuzz smoke (`ktests/fuzz-smoke.sh`).

use iscsi_proto::bhs::BHS_LEN;
use iscsi_proto::pdu::{
    ahs, lun::Lun, AsyncMessage, DataIn, DataOut, LoginRequest, LoginResponse, LogoutRequest,
    LogoutResponse, NopIn, NopOut, Pdu, R2t, Reject, ScsiCommand, ScsiResponse, SnackRequest,
    TaskMgmtRequest, TaskMgmtResponse, TextRequest, TextResponse,
};
use iscsi_proto::text::{decode_binary, pairs, parse_number, TextAssembler};
use proptest::prelude::*;

/// Any 48-byte header, with the opcode byte biased towards known opcodes so the
/// per-opcode parsers get exercised past their opcode check.
fn header() -> impl Strategy<Value = [u8; BHS_LEN]> {
    let opcodes = prop::sample::select(vec![
        0x00u8, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26,
        0x31, 0x32, 0x3f, 0x1c, 0x3d, 0x11,
    ]);
    (
        opcodes,
        any::<bool>(),
        prop::array::uniform32(any::<u8>()),
        prop::array::uniform16(any::<u8>()),
    )
        .prop_map(|(op, imm, a, b)| {
            let mut h = [0u8; BHS_LEN];
            h[..32].copy_from_slice(&a);
            h[32..].copy_from_slice(&b);
            h[0] = op | if imm { 0x40 } else { 0 } | (a[0] & 0x80);
            h
        })
}

/// Parses with `parse`; if that succeeds, emit must produce a header that
/// parses to the same value (parse ∘ emit is the identity on parsed values).
macro_rules! stable {
    ($ty:ty, $h:expr) => {
        if let Ok(v) = <$ty>::parse(&$h[..]) {
            let mut out = [0u8; BHS_LEN];
            v.emit(&mut out);
            prop_assert_eq!(
                <$ty>::parse(&out[..]),
                Ok(v),
                "{} not stable",
                stringify!($ty)
            );
        }
    };
}

proptest! {
    #[test]
    fn every_repr_parser_is_total_and_stable(h in header()) {
        stable!(NopOut, h);
        stable!(ScsiCommand, h);
        stable!(TaskMgmtRequest, h);
        stable!(LoginRequest, h);
        stable!(TextRequest, h);
        stable!(DataOut, h);
        stable!(LogoutRequest, h);
        stable!(SnackRequest, h);
        stable!(NopIn, h);
        stable!(ScsiResponse, h);
        stable!(TaskMgmtResponse, h);
        stable!(LoginResponse, h);
        stable!(TextResponse, h);
        stable!(DataIn, h);
        stable!(LogoutResponse, h);
        stable!(R2t, h);
        stable!(AsyncMessage, h);
        stable!(Reject, h);
        stable!(Pdu, h);
    }

    #[test]
    fn pdu_parse_never_fails_on_full_headers_for_unknown_opcodes(h in header()) {
        if let Ok(Pdu::Unknown { opcode, header }) = Pdu::parse(&h[..]) {
            prop_assert_eq!(opcode, h[0] & 0x3f);
            prop_assert_eq!(header, h);
        }
    }

    #[test]
    fn truncated_headers_are_errors(h in header(), len in 0usize..BHS_LEN) {
        prop_assert!(Pdu::parse(&h[..len]).is_err());
        prop_assert!(DataIn::parse(&h[..len]).is_err());
        prop_assert!(LoginResponse::parse(&h[..len]).is_err());
    }

    #[test]
    fn ahs_iterator_terminates_without_panic(area in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut n = 0usize;
        let mut covered = 0usize;
        for item in ahs::iter(&area) {
            n += 1;
            prop_assert!(n <= area.len() / 4 + 1, "AHS iterator does not terminate");
            match item {
                Ok(_) => covered += 4,
                Err(_) => break,
            }
        }
        prop_assert!(covered <= area.len() + 4);
    }

    #[test]
    fn sense_split_stays_inside_the_segment(data in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(split) = ScsiResponse::split_data(&data) {
            prop_assert!(split.sense.len() + split.response_data.len() + 2 <= data.len().max(2));
        }
    }

    #[test]
    fn reject_payload_is_checked(data in prop::collection::vec(any::<u8>(), 0..100)) {
        match Reject::rejected_header(&data) {
            Ok(h) => prop_assert_eq!(&h[..], &data[..BHS_LEN]),
            Err(_) => prop_assert!(data.len() < BHS_LEN),
        }
    }

    #[test]
    fn lun_round_trips(raw in any::<u64>()) {
        prop_assert_eq!(Lun::from_u64(raw).to_u64(), raw);
    }

    #[test]
    fn text_parsers_are_total(data in prop::collection::vec(any::<u8>(), 0..600), split in 0usize..600) {
        let mut count = 0usize;
        for item in pairs(&data) {
            count += 1;
            prop_assert!(count <= data.len() + 1, "text iterator does not terminate");
            if let Ok((_key, v)) = item {
                let _ = parse_number(v);
                let mut out = [0u8; 64];
                let _ = decode_binary(v, &mut out);
            } else {
                break;
            }
        }
        let mut buf = [0u8; 256];
        let mut asm = TextAssembler::new(&mut buf);
        let cut = split.min(data.len());
        let _ = asm.push(&data[..cut], true);
        let _ = asm.push(&data[cut..], false);
        for item in asm.pairs() {
            if item.is_err() { break; }
        }
    }
}
