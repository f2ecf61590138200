//! Property tests for the byte-level core: PDU framing (RX against arbitrary bytes
//! and chunkings, TX → RX round trips), CRC32C and RFC 1982 serial arithmetic.
//!
//! Also the bounded "fuzz smoke" (`ktests/fuzz-smoke.sh` raises `PROPTEST_CASES`).

use iscsi_proto::crc32c::{crc32c, crc32c_finish, crc32c_update, Crc32c, CRC32C_INIT};
use iscsi_proto::framing::{
    data_trailer, header_digest, header_segment, pdu_wire_len, write_pdu, FramingError,
    FramingSettings, RxEvent, RxFramer,
};
use iscsi_proto::serial::{in_window, window_size, CmdWindow, Sn};
use proptest::prelude::*;

/// One PDU as the receiver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pdu {
    bhs: [u8; 48],
    ahs: Vec<u8>,
    data: Vec<u8>,
}

/// Outcome of feeding a whole stream.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    pdus: Vec<Pdu>,
    error: Option<FramingError>,
}

/// Feeds `stream` cut at `cuts`, checking the framer's contract at every call:
/// consumed ≤ input, `NeedMore` only when all input is taken, a bounded number of
/// zero-progress calls, and a sticky error.
fn drive(rx: &mut RxFramer, stream: &[u8], cuts: &[usize]) -> Outcome {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    bounds.push(0);
    bounds.push(stream.len());
    bounds.sort_unstable();
    let mut pdus = Vec::new();
    let mut cur: Option<(Pdu, u32)> = None;
    let mut calls = 0usize;
    // Each call consumes ≥ 1 byte or makes a state step that needs no input
    // (Header needs input, so only PduEnd can be free): ≤ 2 calls per byte + 1
    // per chunk boundary.
    let limit = 2 * stream.len() + 2 * bounds.len() + 4;
    for w in bounds.windows(2) {
        let mut chunk = &stream[w[0]..w[1]];
        loop {
            calls += 1;
            assert!(calls <= limit, "no progress");
            let (n, ev) = match rx.feed(chunk) {
                Ok(v) => v,
                Err(e) => {
                    assert_eq!(rx.feed(chunk), Err(e), "error must stick");
                    assert_eq!(rx.error(), Some(e));
                    return Outcome {
                        pdus,
                        error: Some(e),
                    };
                }
            };
            assert!(n <= chunk.len());
            chunk = &chunk[n..];
            match ev {
                RxEvent::NeedMore => {
                    assert!(chunk.is_empty(), "NeedMore with input left");
                    break;
                }
                RxEvent::Header {
                    bhs,
                    ahs_len,
                    data_len,
                } => {
                    assert!(cur.is_none(), "header inside a PDU");
                    assert!(n > 0, "header without input");
                    assert_eq!(rx.ahs().len(), ahs_len);
                    cur = Some((
                        Pdu {
                            bhs,
                            ahs: rx.ahs().to_vec(),
                            data: Vec::new(),
                        },
                        data_len,
                    ));
                }
                RxEvent::Data { offset, bytes } => {
                    let (p, len) = cur.as_mut().expect("data outside a PDU");
                    assert_eq!(offset as usize, p.data.len());
                    assert!(!bytes.is_empty() && bytes.len() == n);
                    p.data.extend_from_slice(bytes);
                    assert!(p.data.len() <= *len as usize);
                }
                RxEvent::PduEnd => {
                    let (p, len) = cur.take().expect("end outside a PDU");
                    assert_eq!(p.data.len(), len as usize);
                    pdus.push(p);
                }
            }
        }
    }
    // A trailing empty-data PDU completes without more input.
    loop {
        calls += 1;
        assert!(calls <= limit + 2, "no progress at end");
        match rx.feed(&[]) {
            Ok((0, RxEvent::NeedMore)) => break,
            Ok((0, RxEvent::PduEnd)) => {
                let (p, _) = cur.take().expect("end outside a PDU");
                pdus.push(p);
            }
            Ok(other) => panic!("unexpected {other:?} on empty input"),
            Err(e) => {
                return Outcome {
                    pdus,
                    error: Some(e),
                }
            }
        }
    }
    Outcome { pdus, error: None }
}

fn any_settings() -> impl Strategy<Value = FramingSettings> {
    (any::<bool>(), any::<bool>(), 0u32..70_000, any::<bool>()).prop_map(
        |(header_digest, data_digest, max_recv_data_segment_len, target_opcodes_only)| {
            FramingSettings {
                header_digest,
                data_digest,
                max_recv_data_segment_len,
                target_opcodes_only,
            }
        },
    )
}

/// A well-formed AHS: 0..3 entries with 0..40 specific bytes each.
fn any_ahs() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((1u8..4, prop::collection::vec(any::<u8>(), 0..40)), 0..3).prop_map(
        |entries| {
            let mut out = Vec::new();
            for (ty, specific) in entries {
                out.extend_from_slice(&(specific.len() as u16).to_be_bytes());
                out.push(ty);
                out.extend_from_slice(&specific);
                while out.len() % 4 != 0 {
                    out.push(0);
                }
            }
            out
        },
    )
}

/// A valid target PDU: target opcode, random BHS body, AHS, data up to 3000 bytes.
fn any_pdu() -> impl Strategy<Value = Pdu> {
    (
        0x20u8..0x40,
        any::<bool>(),
        prop::array::uniform32(any::<u8>()),
        any::<[u8; 8]>(),
        any_ahs(),
        prop::collection::vec(any::<u8>(), 0..3000),
    )
        .prop_map(|(op, imm, tail, lun, ahs, data)| {
            let mut bhs = [0u8; 48];
            bhs[0] = op | if imm { 0x40 } else { 0 };
            bhs[1] = tail[0];
            bhs[2] = tail[1];
            bhs[3] = tail[2];
            bhs[4] = (ahs.len() / 4) as u8;
            bhs[5..8].copy_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
            bhs[8..16].copy_from_slice(&lun);
            bhs[16..45].copy_from_slice(&tail[3..32]);
            Pdu { bhs, ahs, data }
        })
}

fn encode(p: &Pdu, hd: bool, dd: bool) -> Vec<u8> {
    let len = pdu_wire_len(p.ahs.len(), p.data.len() as u32, hd, dd).unwrap();
    let mut out = vec![0u8; len];
    assert_eq!(
        write_pdu(&p.bhs, &p.ahs, &p.data, hd, dd, &mut out),
        Ok(len)
    );
    out
}

proptest! {
    #[test]
    fn rx_survives_random_bytes(
        settings in any_settings(),
        stream in prop::collection::vec(any::<u8>(), 0..4000),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut rx = RxFramer::new(settings);
        let _ = drive(&mut rx, &stream, &cuts);
    }

    #[test]
    fn rx_survives_random_bytes_after_a_valid_header(
        settings in any_settings(),
        pdu in any_pdu(),
        junk in prop::collection::vec(any::<u8>(), 0..2000),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        // A plausible header followed by garbage reaches the deeper stages.
        let mut stream = encode(&pdu, settings.header_digest, settings.data_digest);
        stream.truncate(48 + pdu.ahs.len());
        stream.extend_from_slice(&junk);
        let mut rx = RxFramer::new(settings);
        let _ = drive(&mut rx, &stream, &cuts);
    }

    #[test]
    fn tx_then_rx_round_trips(
        pdus in prop::collection::vec(any_pdu(), 1..5),
        hd in any::<bool>(),
        dd in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..30),
    ) {
        let stream: Vec<u8> = pdus.iter().flat_map(|p| encode(p, hd, dd)).collect();
        let settings = FramingSettings {
            header_digest: hd,
            data_digest: dd,
            max_recv_data_segment_len: 3000,
            target_opcodes_only: true,
        };
        let mut rx = RxFramer::new(settings);
        let out = drive(&mut rx, &stream, &cuts);
        prop_assert_eq!(out, Outcome { pdus, error: None });
        prop_assert!(rx.at_pdu_boundary());
    }

    #[test]
    fn any_single_bit_flip_under_digests_is_caught(
        pdu in any_pdu(),
        bit in any::<usize>(),
    ) {
        // With both digests, flipping one bit of header, AHS, data, pad or a
        // digest never yields the original PDU back unnoticed.
        let mut stream = encode(&pdu, true, true);
        let bit = bit % (stream.len() * 8);
        stream[bit / 8] ^= 1 << (bit % 8);
        let settings = FramingSettings {
            header_digest: true,
            data_digest: true,
            max_recv_data_segment_len: 1 << 24,
            target_opcodes_only: false,
        };
        let mut rx = RxFramer::new(settings);
        let out = drive(&mut rx, &stream, &[]);
        prop_assert!(out.error.is_some() || out.pdus != vec![pdu]);
    }

    #[test]
    fn feed_collect_matches_events(
        pdus in prop::collection::vec(any_pdu(), 1..4),
        hd in any::<bool>(),
        dd in any::<bool>(),
        chunk in 1usize..700,
    ) {
        let stream: Vec<u8> = pdus.iter().flat_map(|p| encode(p, hd, dd)).collect();
        let settings = FramingSettings {
            header_digest: hd,
            data_digest: dd,
            max_recv_data_segment_len: 3000,
            target_opcodes_only: true,
        };
        let mut rx = RxFramer::new(settings);
        let mut buf = vec![0u8; 3000];
        let mut got = Vec::new();
        for piece in stream.chunks(chunk) {
            let mut rest = piece;
            loop {
                let (n, done) = rx.feed_collect(rest, &mut buf).unwrap();
                rest = &rest[n..];
                if let Some(c) = done {
                    got.push(Pdu {
                        bhs: c.bhs,
                        ahs: rx.ahs().to_vec(),
                        data: buf[..c.data_len as usize].to_vec(),
                    });
                }
                if rest.is_empty() && done.is_none() {
                    break;
                }
            }
        }
        // A final header-only PDU completes on an empty feed.
        if let (_, Some(c)) = rx.feed_collect(&[], &mut buf).unwrap() {
            got.push(Pdu { bhs: c.bhs, ahs: rx.ahs().to_vec(), data: Vec::new() });
        }
        prop_assert_eq!(got, pdus);
    }

    #[test]
    fn scattered_tx_equals_write_pdu(pdu in any_pdu(), hd in any::<bool>(), dd in any::<bool>()) {
        // header_segment + data (hashed in pieces) + data_trailer == write_pdu.
        let mut head = vec![0u8; 48 + pdu.ahs.len() + 4];
        let n = header_segment(&pdu.bhs, &pdu.ahs, hd, &mut head).unwrap();
        let crc = dd.then(|| {
            let mut h = Crc32c::new();
            for part in pdu.data.chunks(97) {
                h.update(part);
            }
            h.finish()
        });
        let mut t = [0u8; 8];
        let trailer = data_trailer(pdu.data.len() as u32, crc, &mut t);
        let mut iov = head[..n].to_vec();
        iov.extend_from_slice(&pdu.data);
        iov.extend_from_slice(trailer);
        prop_assert_eq!(iov, encode(&pdu, hd, dd));
        if hd {
            prop_assert_eq!(
                &head[n - 4..n],
                &header_digest(&pdu.bhs, &pdu.ahs).to_le_bytes()[..]
            );
        }
    }

    #[test]
    fn crc_incremental_equals_one_shot(
        data in prop::collection::vec(any::<u8>(), 0..2000),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        bounds.push(0);
        bounds.push(data.len());
        bounds.sort_unstable();
        let mut h = Crc32c::new();
        let mut raw = CRC32C_INIT;
        for w in bounds.windows(2) {
            h.update(&data[w[0]..w[1]]);
            raw = crc32c_update(raw, &data[w[0]..w[1]]);
        }
        prop_assert_eq!(h.finish(), crc32c(&data));
        prop_assert_eq!(crc32c_finish(raw), crc32c(&data));
    }

    #[test]
    fn serial_order_is_antisymmetric(a in any::<u32>(), b in any::<u32>()) {
        let (a, b) = (Sn(a), Sn(b));
        prop_assert_eq!(a.lt(b), b.gt(a));
        prop_assert_eq!(a.le(b), b.ge(a));
        prop_assert!(!(a.lt(b) && b.lt(a)));
        prop_assert_eq!(a.lt(b) || a.gt(b) || a == b, a.compare(b).is_some());
        prop_assert_eq!(a.add(a.distance(b)), b);
    }

    #[test]
    fn window_membership_matches_definition(exp in any::<u32>(), size in 0u32..1000, off in any::<u32>()) {
        let exp = Sn(exp);
        let max = exp.add(size).sub(1);
        prop_assert_eq!(window_size(exp, max), Ok(size));
        let cmd = exp.add(off % 2000);
        let inside = exp.le(cmd) && cmd.le(max);
        prop_assert_eq!(in_window(cmd, exp, max), Ok(inside && size > 0));
    }

    #[test]
    fn cmd_window_stays_valid(
        start in any::<u32>(),
        steps in prop::collection::vec((any::<u32>(), any::<u32>()), 0..30),
    ) {
        let mut w = CmdWindow::new(Sn(start), Sn(start).add(8)).unwrap();
        for (e, m) in steps {
            let before = w;
            match w.update(Sn(e), Sn(m)) {
                Ok(_) => {
                    prop_assert!(w.exp_cmd_sn().ge(before.exp_cmd_sn()));
                    prop_assert!(w.max_cmd_sn().ge(before.max_cmd_sn()));
                }
                Err(_) => prop_assert_eq!(w, before),
            }
            prop_assert!(window_size(w.exp_cmd_sn(), w.max_cmd_sn()).is_ok());
        }
    }
}
