//! The kernel's CRC32C for the iSCSI digests: the crypto layer's `crc32c`
//! (CPU instructions where it has them) instead of proto's software table.

use super::bindings;
use crate::proto::crc32c::{crc32c_finish, CRC32C_INIT};

/// Feeds `data` into the raw CRC32C register `state` (no inversions: the
/// shape of `proto::framing::CrcUpdate`).
pub(crate) fn crc32c_update(mut state: u32, data: &[u8]) -> u32 {
    // The C length is 32 bits; a slice may be longer in principle.
    for chunk in data.chunks(u32::MAX as usize) {
        let len = chunk.len() as u32;
        // SAFETY: the pointer and length describe `chunk`, which is valid for
        // reads for the whole call; crc32c() only reads them and keeps
        // nothing.
        state = unsafe { bindings::iscsi_rs_crc32c(state, chunk.as_ptr().cast(), len) };
    }
    state
}

/// The CRC32C of `data` (RFC 7143 digest value).
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    crc32c_finish(crc32c_update(CRC32C_INIT, data))
}
