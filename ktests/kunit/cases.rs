//! KUnit cases, run inside the kernel when the test module iscsi_rs_kunit.ko
//! loads: the protocol core and the `src/sys` wrappers exercised with the
//! kernel's own compiler flags and allocator. Each case is a safe function;
//! `src/sys/kunit.rs` bridges them to KUnit.
#![deny(unsafe_code)]

use kernel::c_str;
use kernel::str::CStr;

use crate::proto::bhs::{Bhs, Opcode, BHS_LEN};
use crate::proto::crc32c::crc32c;
use crate::proto::framing::{write_pdu, FramingError, FramingSettings, RxFramer};
use crate::proto::negotiate::SessionParams;
use crate::proto::pdu::{DataIn, Pdu};
use crate::proto::uapi::{self, Handoff, HandoffKind, UapiError};

/// A case: name and body. The body returns a failure message.
pub(crate) type Case = (&'static CStr, fn() -> Result<(), &'static str>);

/// Every case, in run order.
pub(crate) static CASES: &[Case] = &[
    (
        c_str!("bhs_common_fields_round_trip"),
        bhs_common_fields_round_trip,
    ),
    (c_str!("bhs_rejects_short_buffer"), bhs_rejects_short_buffer),
    (c_str!("crc32c_rfc3720_vectors"), crc32c_rfc3720_vectors),
    (c_str!("data_in_emit_frame_parse"), data_in_emit_frame_parse),
    (
        c_str!("framer_catches_data_digest_error"),
        framer_catches_data_digest_error,
    ),
    (c_str!("uapi_ioctl_numbers"), uapi_ioctl_numbers),
    (
        c_str!("uapi_handoff_codec_and_validation"),
        uapi_handoff_codec_and_validation,
    ),
    (
        c_str!("spinlock_bh_disables_softirqs_and_waits"),
        crate::sys::lock::kunit_spinlock_bh,
    ),
    (
        c_str!("try_mutex_refuses_when_held"),
        crate::sys::lock::kunit_try_mutex,
    ),
    (
        c_str!("scsi_cmd_ownership_revocation"),
        crate::sys::scsi::kunit_cmd_slots,
    ),
];

fn check(cond: bool, msg: &'static str) -> Result<(), &'static str> {
    if cond {
        Ok(())
    } else {
        Err(msg)
    }
}

fn bhs_common_fields_round_trip() -> Result<(), &'static str> {
    let mut buf = [0u8; BHS_LEN];
    let mut bhs = Bhs::new_checked(&mut buf[..]).map_err(|_| "48 bytes refused")?;
    bhs.set_opcode(Opcode::ScsiCommand, true);
    check(
        bhs.set_data_segment_len(0x00ab_cdef),
        "24-bit length refused",
    )?;
    check(
        !bhs.set_data_segment_len(0x0100_0000),
        "25-bit length accepted",
    )?;
    bhs.set_itt(0x1234_5678);
    let bhs = Bhs::new_checked(&buf[..]).map_err(|_| "48 bytes refused")?;
    check(bhs.opcode() == Opcode::ScsiCommand, "opcode")?;
    check(bhs.immediate(), "immediate bit")?;
    check(bhs.data_segment_len() == 0x00ab_cdef, "data segment length")?;
    check(bhs.itt() == 0x1234_5678, "itt")
}

fn bhs_rejects_short_buffer() -> Result<(), &'static str> {
    check(
        Bhs::new_checked(&[0u8; BHS_LEN - 1][..]).is_err(),
        "47-byte BHS accepted",
    )
}

fn crc32c_rfc3720_vectors() -> Result<(), &'static str> {
    // RFC 3720 appendix B.4: 32 bytes of zeros, of 0xff, and "123456789".
    check(crc32c(&[0u8; 32]) == 0x8a91_36aa, "32 zero bytes")?;
    check(crc32c(&[0xffu8; 32]) == 0x62a8_ab43, "32 0xff bytes")?;
    check(crc32c(b"123456789") == 0xe306_9283, "check string")
}

/// A Data-In as a target would send it, with both digests, framed back one byte
/// at a time: the path every read takes, compiled with the kernel's flags.
fn sample_data_in(out: &mut [u8]) -> Result<usize, &'static str> {
    let data_in = DataIn {
        final_bit: true,
        ack: false,
        overflow: false,
        underflow: false,
        status: Some(0),
        lun: 0,
        itt: 7,
        ttt: 0xffff_ffff,
        stat_sn: 1,
        exp_cmd_sn: 2,
        max_cmd_sn: 33,
        data_sn: 0,
        buffer_offset: 0,
        residual_count: 0,
        data_segment_len: 5,
    };
    let mut bhs = [0u8; BHS_LEN];
    data_in.emit(&mut bhs);
    write_pdu(&bhs, &[], b"hello", true, true, out).map_err(|_| "write_pdu failed")
}

fn digest_settings() -> FramingSettings {
    FramingSettings {
        header_digest: true,
        data_digest: true,
        ..FramingSettings::default()
    }
}

fn data_in_emit_frame_parse() -> Result<(), &'static str> {
    let mut wire = [0u8; 128];
    let len = sample_data_in(&mut wire)?;
    check(
        len == BHS_LEN + 4 + 8 + 4,
        "wire length with digests and padding",
    )?;
    let mut framer = RxFramer::new(digest_settings());
    let mut data = [0u8; 16];
    let mut done = None;
    for byte in wire.get(..len).ok_or("length")?.chunks(1) {
        let (used, pdu) = framer
            .feed_collect(byte, &mut data)
            .map_err(|_| "framing error")?;
        check(used == 1, "framer did not take the byte")?;
        if pdu.is_some() {
            done = pdu;
        }
    }
    let pdu = done.ok_or("no PDU came out")?;
    check(data.get(..5) == Some(&b"hello"[..]), "payload")?;
    match Pdu::parse(&pdu.bhs) {
        Ok(Pdu::DataIn(d)) => check(d.itt == 7 && d.status == Some(0), "Data-In fields"),
        _ => Err("not parsed as Data-In"),
    }
}

fn framer_catches_data_digest_error() -> Result<(), &'static str> {
    let mut wire = [0u8; 128];
    let len = sample_data_in(&mut wire)?;
    // Corrupt one payload byte: only the data digest can notice.
    *wire.get_mut(BHS_LEN + 4 + 1).ok_or("index")? ^= 0x20;
    let mut framer = RxFramer::new(digest_settings());
    let mut data = [0u8; 16];
    match framer.feed_collect(wire.get(..len).ok_or("length")?, &mut data) {
        Err(FramingError::DataDigest { .. }) => Ok(()),
        _ => Err("corrupted payload not reported as a data digest error"),
    }
}

fn uapi_ioctl_numbers() -> Result<(), &'static str> {
    // The numbers iscsictl and the test helper compute: _IOWR/_IOW(0xe3, nr, size).
    check(Handoff::SIZE == 672, "Handoff size")?;
    check(uapi::ADD_SESSION == 0xc2a0_e301, "ADD_SESSION number")?;
    check(uapi::REMOVE_SESSION == 0x4020_e302, "REMOVE_SESSION number")?;
    check(uapi::LIST == 0xc030_e303, "LIST number")
}

/// The handoff codec and validation, compiled with the kernel's flags: what
/// ADD_SESSION runs on every argument.
fn uapi_handoff_codec_and_validation() -> Result<(), &'static str> {
    let mut h = Handoff::from_login(
        &SessionParams::DEFAULT,
        [0x80, 0, 0, 0, 0, 1],
        5,
        0,
        1,
        2,
        33,
    );
    h.fd = 4;
    uapi::set_c_str("iqn.2026-11.dev.iscsi-rs:t", &mut h.target_name).ok_or("target name")?;
    uapi::set_c_str("iqn.2026-11.dev.iscsi-rs:i", &mut h.initiator_name).ok_or("initiator")?;
    uapi::set_c_str("127.0.0.1:3260", &mut h.portal).ok_or("portal")?;
    check(Handoff::from_bytes(&h.to_bytes()) == h, "byte round trip")?;
    let c = h.validate(HandoffKind::Add).map_err(|_| "valid handoff refused")?;
    check(
        c.cmd_sn.get() == 2 && c.exp_stat_sn.get() == 2,
        "sequence numbers",
    )?;
    check(
        c.target_name() == "iqn.2026-11.dev.iscsi-rs:t",
        "target name read back",
    )?;
    let mut bad = h;
    bad.queue_depth = 0;
    check(
        matches!(bad.validate(HandoffKind::Add), Err(UapiError::OutOfRange { .. })),
        "queue depth 0 accepted",
    )?;
    let mut bad = h;
    bad.portal = [b'x'; uapi::PORTAL_LEN];
    check(
        matches!(bad.validate(HandoffKind::Add), Err(UapiError::Unterminated { .. })),
        "unterminated portal accepted",
    )?;
    let mut bad = h;
    bad.max_cmd_sn = bad.exp_cmd_sn.wrapping_sub(3);
    check(
        bad.validate(HandoffKind::Add) == Err(UapiError::BadWindow),
        "bad window accepted",
    )
}
