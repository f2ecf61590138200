//! The two things iscsi-proto leaves to its caller because `core` has neither:
//! the CHAP hash functions ([`RustCryptoDigest`], RustCrypto) and randomness
//! (CHAP challenges, identifiers, ISIDs) from the kernel's CSPRNG via getrandom.

use iscsi_proto::chap::{ChapAlgorithm, ChapDigest};
use iscsi_proto::login::isid_random;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use sha3::Sha3_256;

/// CHAP_A 5/6/7/8 backed by RustCrypto.
#[derive(Debug, Default, Clone, Copy)]
pub struct RustCryptoDigest;

impl ChapDigest for RustCryptoDigest {
    fn digest(&mut self, algorithm: ChapAlgorithm, parts: &[&[u8]], out: &mut [u8]) -> usize {
        match algorithm {
            ChapAlgorithm::Md5 => hash::<Md5>(parts, out),
            ChapAlgorithm::Sha1 => hash::<Sha1>(parts, out),
            ChapAlgorithm::Sha256 => hash::<Sha256>(parts, out),
            ChapAlgorithm::Sha3_256 => hash::<Sha3_256>(parts, out),
        }
    }
}

/// Hashes the concatenation of `parts` into the front of `out`; 0 when `out` is too
/// short, which iscsi-proto turns into a clean `DigestFailed` instead of a panic.
fn hash<D: Digest>(parts: &[&[u8]], out: &mut [u8]) -> usize {
    let mut h = D::new();
    for p in parts {
        h.update(p);
    }
    let sum = h.finalize();
    match out.get_mut(..sum.len()) {
        Some(dst) => {
            dst.copy_from_slice(&sum);
            sum.len()
        }
        None => 0,
    }
}

/// Why no random bytes could be had (no getrandom(2), no /dev/urandom).
#[derive(Debug, thiserror::Error)]
#[error("cannot get random bytes from the kernel: {0}")]
pub struct RandomError(String);

/// Fills `buf` from the kernel CSPRNG. CHAP challenges must be unpredictable
/// (RFC 1994 §2.3), so there is no weaker fallback.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(buf).map_err(|e| RandomError(e.to_string()))
}

/// A random-format ISID (iscsi-proto's `isid_random`: T=10b, 24 random bits, a
/// random qualifier). Fresh per session so our sessions never collide with each
/// other's or another initiator's.
pub fn random_isid() -> Result<[u8; 6], RandomError> {
    let mut r = [0u8; 5];
    random_bytes(&mut r)?;
    let [a, b, c, q0, q1] = r;
    Ok(isid_random([a, b, c], u16::from_be_bytes([q0, q1])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn run(alg: ChapAlgorithm, parts: &[&[u8]]) -> String {
        let mut out = [0u8; iscsi_proto::chap::MAX_DIGEST_LEN];
        let n = RustCryptoDigest.digest(alg, parts, &mut out);
        assert_eq!(n, alg.digest_len());
        hex(&out[..n])
    }

    #[test]
    fn known_answers_for_abc() {
        // FIPS 180 / RFC 1321 / FIPS 202 "abc" vectors, split to check concatenation.
        let abc: &[&[u8]] = &[b"a", b"", b"bc"];
        assert_eq!(
            run(ChapAlgorithm::Md5, abc),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            run(ChapAlgorithm::Sha1, abc),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            run(ChapAlgorithm::Sha256, abc),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            run(ChapAlgorithm::Sha3_256, abc),
            "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
        );
    }

    #[test]
    fn short_output_is_refused_not_panicked() {
        let mut out = [0u8; 8];
        assert_eq!(
            RustCryptoDigest.digest(ChapAlgorithm::Sha256, &[b"x"], &mut out),
            0
        );
    }

    #[test]
    fn isid_is_random_format() {
        let a = random_isid().unwrap();
        let b = random_isid().unwrap();
        assert_eq!(
            iscsi_proto::login::IsidFormat::of(&a),
            iscsi_proto::login::IsidFormat::Random
        );
        assert_ne!(a, b, "40 random bits should not repeat");
    }
}
