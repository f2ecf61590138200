//! KUnit cases run inside the kernel at module load: the protocol core and the
//! `src/sys` wrappers exercised with the kernel's own compiler flags and allocator.
//! Each case is a safe function; `src/sys/kunit.rs` bridges them to KUnit.

use kernel::c_str;
use kernel::str::CStr;

use crate::proto::bhs::{Bhs, Opcode, BHS_LEN};

/// A case: name and body. The body returns a failure message.
pub(crate) type Case = (&'static CStr, fn() -> Result<(), &'static str>);

/// Every case, in run order.
pub(crate) static CASES: &[Case] = &[
    (c_str!("bhs_common_fields_round_trip"), bhs_common_fields_round_trip),
    (c_str!("bhs_rejects_short_buffer"), bhs_rejects_short_buffer),
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
    check(bhs.set_data_segment_len(0x00ab_cdef), "24-bit length refused")?;
    check(!bhs.set_data_segment_len(0x0100_0000), "25-bit length accepted")?;
    bhs.set_itt(0x1234_5678);
    let bhs = Bhs::new_checked(&buf[..]).map_err(|_| "48 bytes refused")?;
    check(bhs.opcode() == Opcode::ScsiCommand, "opcode")?;
    check(bhs.immediate(), "immediate bit")?;
    check(bhs.data_segment_len() == 0x00ab_cdef, "data segment length")?;
    check(bhs.itt() == 0x1234_5678, "itt")
}

fn bhs_rejects_short_buffer() -> Result<(), &'static str> {
    check(Bhs::new_checked(&[0u8; BHS_LEN - 1][..]).is_err(), "47-byte BHS accepted")
}
