//! Test-only helpers shared by the protocol core's unit tests: RustCrypto behind
//! the `ChapDigest` trait (as iscsictl plugs it in) and the independent CHAP
//! response a target computes straight from the hash crates.

extern crate std;

use std::vec::Vec;

use super::chap::{ChapAlgorithm, ChapDigest};

/// RustCrypto behind the trait.
pub(crate) struct RustCrypto;

fn run<D: sha2::Digest>(parts: &[&[u8]], out: &mut [u8]) -> usize {
    let mut h = D::new();
    for p in parts {
        h.update(p);
    }
    let r = h.finalize();
    out[..r.len()].copy_from_slice(&r);
    r.len()
}

impl ChapDigest for RustCrypto {
    fn digest(&mut self, alg: ChapAlgorithm, parts: &[&[u8]], out: &mut [u8]) -> usize {
        match alg {
            ChapAlgorithm::Md5 => run::<md5::Md5>(parts, out),
            ChapAlgorithm::Sha1 => run::<sha1::Sha1>(parts, out),
            ChapAlgorithm::Sha256 => run::<sha2::Sha256>(parts, out),
            ChapAlgorithm::Sha3_256 => run::<sha3::Sha3_256>(parts, out),
        }
    }
}

/// H(identifier || secret || challenge), computed without going through proto.
pub(crate) fn chap_hash(alg: ChapAlgorithm, id: u8, secret: &[u8], challenge: &[u8]) -> Vec<u8> {
    fn h<D: sha2::Digest>(id: u8, secret: &[u8], challenge: &[u8]) -> Vec<u8> {
        D::new()
            .chain_update([id])
            .chain_update(secret)
            .chain_update(challenge)
            .finalize()
            .to_vec()
    }
    match alg {
        ChapAlgorithm::Md5 => h::<md5::Md5>(id, secret, challenge),
        ChapAlgorithm::Sha1 => h::<sha1::Sha1>(id, secret, challenge),
        ChapAlgorithm::Sha256 => h::<sha2::Sha256>(id, secret, challenge),
        ChapAlgorithm::Sha3_256 => h::<sha3::Sha3_256>(id, secret, challenge),
    }
}
