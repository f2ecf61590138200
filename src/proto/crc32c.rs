//! Software CRC32C (Castagnoli, RFC 7143 §13.1 / RFC 3720 appendix B.4) for the
//! iSCSI header and data digests, and the byte order in which a digest goes on the
//! wire.
//!
//! The register convention matches the kernel's `crc32c(seed, buf, len)`: the
//! *state* is the raw shift register, started at [`CRC32C_INIT`] and turned into the
//! CRC value by [`crc32c_finish`] (a bitwise NOT). The kernel build may therefore
//! swap [`crc32c_update`] for its own accelerated routine without changing callers.
//!
//! Slicing-by-8: eight 256-entry tables (8 KiB, built at compile time) let the hot
//! loop fold eight input bytes per step.

/// Reflected Castagnoli polynomial (0x1EDC6F41 bit-reversed).
pub const CRC32C_POLY: u32 = 0x82F6_3B78;

/// Initial register value; also the state of an empty message.
pub const CRC32C_INIT: u32 = 0xFFFF_FFFF;

/// Size of an iSCSI digest on the wire, in bytes.
pub const DIGEST_LEN: usize = 4;

/// Builds table `k` of slicing-by-8: `T[0]` is the classic byte table, and
/// `T[k][i]` is `T[k-1][i]` advanced by one more zero byte.
const fn make_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ CRC32C_POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        t[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

static TABLES: [[u32; 256]; 8] = make_tables();

/// Table lookup by a byte: a `u8` index into a 256-entry array is always in
/// bounds, so this cannot panic whatever the input.
#[inline(always)]
fn t(k: usize, b: u8) -> u32 {
    match TABLES.get(k) {
        Some(table) => table[usize::from(b)],
        None => 0,
    }
}

/// Advances the raw CRC register `crc_state` over `data` (no initial or final
/// inversion). Start from [`CRC32C_INIT`], finish with [`crc32c_finish`].
pub fn crc32c_update(crc_state: u32, data: &[u8]) -> u32 {
    let mut crc = crc_state;
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        // chunks_exact yields 8-byte chunks only, so the default never occurs.
        let [b0, b1, b2, b3, b4, b5, b6, b7] = <[u8; 8]>::try_from(chunk).unwrap_or_default();
        let lo = crc ^ u32::from_le_bytes([b0, b1, b2, b3]);
        let [l0, l1, l2, l3] = lo.to_le_bytes();
        crc = t(7, l0) ^ t(6, l1) ^ t(5, l2) ^ t(4, l3) ^ t(3, b4) ^ t(2, b5) ^ t(1, b6) ^ t(0, b7);
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ t(0, (crc as u8) ^ b);
    }
    crc
}

/// Turns a raw register into the CRC32C value.
#[inline]
pub const fn crc32c_finish(crc_state: u32) -> u32 {
    !crc_state
}

/// CRC32C of `data` in one call (e.g. `crc32c(b"123456789") == 0xE306_9283`).
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_finish(crc32c_update(CRC32C_INIT, data))
}

/// The four digest bytes as sent on the wire for CRC value `crc`.
///
/// RFC 3720 B.4 lists the CRC of 32 zero bytes as the byte sequence
/// `aa 36 91 8a`, while the CRC value is `0x8A9136AA`: the digest travels
/// least-significant byte first (a consequence of the reflected bit order), so
/// it is `crc.to_le_bytes()`, not network order. Linux and LIO agree.
#[inline]
pub const fn digest_bytes(crc: u32) -> [u8; DIGEST_LEN] {
    crc.to_le_bytes()
}

/// The CRC value carried by four digest bytes received from the wire; inverse of
/// [`digest_bytes`].
#[inline]
pub const fn digest_from_bytes(bytes: [u8; DIGEST_LEN]) -> u32 {
    u32::from_le_bytes(bytes)
}

/// Incremental CRC32C over scattered buffers (BHS then AHS; data pages then pad).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crc32c {
    state: u32,
}

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32c {
    /// A hasher over the empty message.
    pub const fn new() -> Self {
        Crc32c { state: CRC32C_INIT }
    }

    /// Resumes from a raw register (e.g. one the kernel's `crc32c()` returned).
    pub const fn from_state(state: u32) -> Self {
        Crc32c { state }
    }

    /// Resumes after a message whose finished CRC is `crc`, so that hashing more
    /// bytes gives the CRC of the concatenation.
    pub const fn from_crc(crc: u32) -> Self {
        Crc32c { state: !crc }
    }

    /// The raw register, for handing to another implementation.
    pub const fn state(&self) -> u32 {
        self.state
    }

    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.state = crc32c_update(self.state, data);
    }

    /// Feeds `n` zero bytes (used for the up-to-3 pad bytes of a data segment).
    pub fn update_zeros(&mut self, n: usize) {
        const ZEROS: [u8; 8] = [0; 8];
        let mut left = n;
        while left > 0 {
            let take = left.min(ZEROS.len());
            self.update(ZEROS.get(..take).unwrap_or(&[]));
            left -= take;
        }
    }

    /// The CRC of everything fed so far; the hasher stays usable.
    pub const fn finish(&self) -> u32 {
        crc32c_finish(self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit-at-a-time reference, independent of the tables.
    fn crc_bitwise(data: &[u8]) -> u32 {
        let mut crc = CRC32C_INIT;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ CRC32C_POLY
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// RFC 3720 B.4: the iSCSI Read(10) command PDU (48-byte BHS).
    const READ_PDU: [u8; 48] = [
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00,
        0x00, 0x18, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00,
    ];

    #[test]
    fn rfc3720_b4_vectors_as_wire_bytes() {
        let zeros = [0u8; 32];
        let ones = [0xffu8; 32];
        let mut inc = [0u8; 32];
        let mut dec = [0u8; 32];
        for i in 0..32u8 {
            inc[usize::from(i)] = i;
            dec[usize::from(i)] = 31 - i;
        }
        // The RFC prints the digest bytes in wire order.
        assert_eq!(digest_bytes(crc32c(&zeros)), [0xaa, 0x36, 0x91, 0x8a]);
        assert_eq!(digest_bytes(crc32c(&ones)), [0x43, 0xab, 0xa8, 0x62]);
        assert_eq!(digest_bytes(crc32c(&inc)), [0x4e, 0x79, 0xdd, 0x46]);
        assert_eq!(digest_bytes(crc32c(&dec)), [0x5c, 0xdb, 0x3f, 0x11]);
        assert_eq!(digest_bytes(crc32c(&READ_PDU)), [0x56, 0x3a, 0x96, 0xd9]);
    }

    #[test]
    fn rfc3720_b4_vectors_as_values() {
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        assert_eq!(crc32c(&READ_PDU), 0xD996_3A56);
    }

    #[test]
    fn check_value_and_empty() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        assert_eq!(Crc32c::new().finish(), 0);
    }

    #[test]
    fn digest_byte_order_round_trips() {
        for crc in [0u32, 1, 0x8A91_36AA, 0xffff_ffff, 0x1234_5678] {
            assert_eq!(digest_from_bytes(digest_bytes(crc)), crc);
        }
        assert_eq!(digest_bytes(0x1234_5678), [0x78, 0x56, 0x34, 0x12]);
    }

    #[test]
    fn tables_match_bitwise_for_every_length_and_alignment() {
        let mut buf = [0u8; 300];
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(151).wrapping_add(7);
        }
        for start in 0..9 {
            for end in start..buf.len() {
                assert_eq!(crc32c(&buf[start..end]), crc_bitwise(&buf[start..end]));
            }
        }
    }

    #[test]
    fn incremental_equals_one_shot_at_every_split() {
        let data: [u8; 64] = core::array::from_fn(|i| (i * 37 + 3) as u8);
        let whole = crc32c(&data);
        for split in 0..=data.len() {
            let mut h = Crc32c::new();
            h.update(&data[..split]);
            h.update(&data[split..]);
            assert_eq!(h.finish(), whole, "split {split}");
            let raw = crc32c_update(crc32c_update(CRC32C_INIT, &data[..split]), &data[split..]);
            assert_eq!(crc32c_finish(raw), whole);
        }
    }

    #[test]
    fn byte_by_byte_and_resume() {
        let data = b"The quick brown fox jumps over the lazy dog";
        let mut h = Crc32c::default();
        for b in data.iter() {
            h.update(core::slice::from_ref(b));
        }
        assert_eq!(h.finish(), crc32c(data));
        // Resume from a finished CRC or from a raw register.
        let mut r = Crc32c::from_crc(crc32c(&data[..10]));
        r.update(&data[10..]);
        assert_eq!(r.finish(), crc32c(data));
        let mut s = Crc32c::from_state(crc32c_update(CRC32C_INIT, &data[..20]));
        s.update(&data[20..]);
        assert_eq!(s.finish(), crc32c(data));
        assert_eq!(s.state(), !s.finish());
    }

    #[test]
    fn update_zeros_equals_zero_bytes() {
        for n in 0..40 {
            let mut a = Crc32c::new();
            a.update(b"abc");
            a.update_zeros(n);
            let mut b = Crc32c::new();
            b.update(b"abc");
            b.update(&[0u8; 40][..n]);
            assert_eq!(a.finish(), b.finish());
        }
    }

    #[test]
    fn digest_residue_is_constant() {
        // Appending the digest in wire order gives the fixed CRC32C residue, which
        // confirms the little-endian placement.
        for msg in [&b""[..], b"a", b"123456789", &READ_PDU[..]] {
            let mut h = Crc32c::new();
            h.update(msg);
            let d = digest_bytes(h.finish());
            h.update(&d);
            assert_eq!(h.state(), 0xB798_B438);
        }
    }
}
