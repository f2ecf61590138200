//! Test-only access to the PDUs captured from real traffic (libiscsi clients against
//! tgtd on the loopback) by `ktests/fixtures/capture.sh`: one whole PDU (BHS, data
//! segment, padding) per file under `src/proto/fixtures/`, as hex text.

extern crate std;

use super::super::bhs::BHS_LEN;
use std::vec::Vec;

/// Bytes of the captured PDU `name` (file name without `.hex`).
pub(super) fn fixture(name: &str) -> Vec<u8> {
    let text = match name {
        "data_in" => include_str!("../fixtures/data_in.hex"),
        "data_out" => include_str!("../fixtures/data_out.hex"),
        "login_req" => include_str!("../fixtures/login_req.hex"),
        "login_resp" => include_str!("../fixtures/login_resp.hex"),
        "logout_req" => include_str!("../fixtures/logout_req.hex"),
        "logout_resp" => include_str!("../fixtures/logout_resp.hex"),
        "nop_in" => include_str!("../fixtures/nop_in.hex"),
        "nop_out" => include_str!("../fixtures/nop_out.hex"),
        "r2t" => include_str!("../fixtures/r2t.hex"),
        "scsi_cmd" => include_str!("../fixtures/scsi_cmd.hex"),
        "scsi_cmd_write" => include_str!("../fixtures/scsi_cmd_write.hex"),
        "scsi_resp" => include_str!("../fixtures/scsi_resp.hex"),
        "scsi_resp_good" => include_str!("../fixtures/scsi_resp_good.hex"),
        "text_req" => include_str!("../fixtures/text_req.hex"),
        "text_resp" => include_str!("../fixtures/text_resp.hex"),
        "tmf_req" => include_str!("../fixtures/tmf_req.hex"),
        "tmf_resp" => include_str!("../fixtures/tmf_resp.hex"),
        other => panic!("no fixture {other}"),
    };
    hex(text)
}

/// Decodes hex text, ignoring whitespace.
pub(super) fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => panic!("bad hex digit {b}"),
        })
        .collect();
    assert!(digits.len() & 1 == 0, "odd number of hex digits");
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

/// The first 48 bytes of a PDU as an array.
pub(super) fn header(pdu: &[u8]) -> [u8; BHS_LEN] {
    pdu[..BHS_LEN].try_into().unwrap()
}

/// The data segment of a whole captured PDU (without padding).
pub(super) fn data_segment(pdu: &[u8]) -> &[u8] {
    let len = u32::from_be_bytes([0, pdu[5], pdu[6], pdu[7]]) as usize;
    let ahs = usize::from(pdu[4]) * 4;
    &pdu[BHS_LEN + ahs..BHS_LEN + ahs + len]
}
