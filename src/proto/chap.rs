//! CHAP authentication, initiator side (RFC 1994; RFC 7143 §12.1.3 keys, §9.2.1
//! secret rules), one-way and mutual, over the CHAP_A/I/C/N/R text keys.
//!
//! The hash is the caller's ([`ChapDigest`]): the kernel never runs CHAP, and
//! iscsictl plugs in RustCrypto. Random challenges are the caller's too, since proto
//! has no RNG. All state lives in a [`ChapSession`] that must be
//! [`reset`](ChapSession::reset) before every leading login attempt, so nothing
//! (identifier, challenge, algorithm) leaks from one attempt into the next: the
//! EDK2 IScsiDxe bug this guards against kept CHAP state per connection.
//!
//! Flow: we send `CHAP_A=<list>`; the target answers `CHAP_A`, `CHAP_I`, `CHAP_C`;
//! we send `CHAP_N`, `CHAP_R=H(I || secret || C)` and, for mutual CHAP, our own
//! `CHAP_I`/`CHAP_C`; the target then proves itself with `CHAP_N`/`CHAP_R`, which
//! [`finish`](ChapSession::finish) checks in constant time.

use core::fmt;

use super::text::{self, TextError, TextWriter};

/// Largest digest of the supported algorithms (SHA-256, SHA3-256).
pub const MAX_DIGEST_LEN: usize = 32;
/// Shortest challenge accepted or sent. RFC 1994 sets no floor; 16 bytes is the
/// shortest LIO sends (it ties the length to the digest: 16 for MD5), tgt/IET send
/// 25..49, FreeBSD ctld 1024. Shorter would make responses cheap to precompute.
pub const MIN_CHALLENGE_LEN: usize = 16;
/// Longest challenge (RFC 7143 §12.1.3: binary length of C and R ≤ 1024 bytes;
/// LIO enforces the same).
pub const MAX_CHALLENGE_LEN: usize = 1024;
/// Shortest secret: RFC 7143 §9.2.1 requires at least 96 bits.
pub const MIN_SECRET_LEN: usize = 12;
/// Longest secret we accept (CHAP_R computations and configs stay bounded).
pub const MAX_SECRET_LEN: usize = 255;
/// Longest CHAP name we send or accept from the target.
pub const MAX_NAME_LEN: usize = 255;

/// A CHAP hash algorithm and its CHAP_A code (IANA "PPP Authentication Algorithms":
/// 5 MD5 per RFC 1994; 6 SHA-1, 7 SHA-256, 8 SHA3-256 as LIO implements them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChapAlgorithm {
    /// 5: MD5, the only algorithm RFC 7143 requires.
    Md5,
    /// 6: SHA-1.
    Sha1,
    /// 7: SHA-256.
    Sha256,
    /// 8: SHA3-256.
    Sha3_256,
}

impl ChapAlgorithm {
    /// Strongest first, MD5 last but present: RFC 7143 §12.1.3 has initiators always
    /// offer MD5, and LIO picks the first entry of *our* list it supports.
    pub const DEFAULT_PREFERENCE: [ChapAlgorithm; 4] = [
        ChapAlgorithm::Sha256,
        ChapAlgorithm::Sha3_256,
        ChapAlgorithm::Sha1,
        ChapAlgorithm::Md5,
    ];

    /// The CHAP_A code.
    pub const fn code(self) -> u8 {
        match self {
            ChapAlgorithm::Md5 => 5,
            ChapAlgorithm::Sha1 => 6,
            ChapAlgorithm::Sha256 => 7,
            ChapAlgorithm::Sha3_256 => 8,
        }
    }

    /// The algorithm for a CHAP_A code.
    pub const fn from_code(code: u64) -> Option<Self> {
        match code {
            5 => Some(ChapAlgorithm::Md5),
            6 => Some(ChapAlgorithm::Sha1),
            7 => Some(ChapAlgorithm::Sha256),
            8 => Some(ChapAlgorithm::Sha3_256),
            _ => None,
        }
    }

    /// Digest (= CHAP_R) length in bytes.
    pub const fn digest_len(self) -> usize {
        match self {
            ChapAlgorithm::Md5 => 16,
            ChapAlgorithm::Sha1 => 20,
            ChapAlgorithm::Sha256 | ChapAlgorithm::Sha3_256 => 32,
        }
    }

    const fn code_str(self) -> &'static str {
        match self {
            ChapAlgorithm::Md5 => "5",
            ChapAlgorithm::Sha1 => "6",
            ChapAlgorithm::Sha256 => "7",
            ChapAlgorithm::Sha3_256 => "8",
        }
    }
}

/// The hash functions, supplied by the caller.
pub trait ChapDigest {
    /// Hashes the concatenation of `parts` with `algorithm` into the front of `out`
    /// (which holds [`MAX_DIGEST_LEN`] bytes) and returns the digest length. Anything
    /// other than `algorithm.digest_len()` (e.g. 0 for "not available") fails the
    /// exchange with [`ChapError::DigestFailed`].
    fn digest(&mut self, algorithm: ChapAlgorithm, parts: &[&[u8]], out: &mut [u8]) -> usize;
}

/// The target's credentials for mutual CHAP. `Debug` does not print the secret.
#[derive(Clone, Copy)]
pub struct MutualChap<'a> {
    /// The CHAP_N the target must send; `None` accepts any name.
    pub target_name: Option<&'a str>,
    /// The secret the target proves it knows. Must differ from ours (RFC 7143 §9.2.1).
    pub target_secret: &'a [u8],
}

/// Our CHAP configuration. `Debug` does not print the secrets.
#[derive(Clone, Copy)]
pub struct ChapConfig<'a> {
    /// CHAP_N we send (the user name the target knows us by).
    pub name: &'a str,
    /// Our secret.
    pub secret: &'a [u8],
    /// Algorithms to offer, in order of preference.
    pub algorithms: &'a [ChapAlgorithm],
    /// Mutual CHAP: also authenticate the target.
    pub mutual: Option<MutualChap<'a>>,
}

// Hand-written so secrets never end up in a log line.
impl fmt::Debug for MutualChap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutualChap")
            .field("target_name", &self.target_name)
            .field("target_secret", &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for ChapConfig<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChapConfig")
            .field("name", &self.name)
            .field("secret", &"<redacted>")
            .field("algorithms", &self.algorithms)
            .field("mutual", &self.mutual)
            .finish()
    }
}

impl<'a> ChapConfig<'a> {
    /// One-way CHAP with the default algorithm preference.
    pub const fn new(name: &'a str, secret: &'a [u8]) -> Self {
        ChapConfig {
            name,
            secret,
            algorithms: &ChapAlgorithm::DEFAULT_PREFERENCE,
            mutual: None,
        }
    }
}

/// Our identifier and challenge for mutual CHAP: fresh random bytes from the caller
/// for every login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge<'c> {
    /// CHAP_I we send.
    pub identifier: u8,
    /// CHAP_C we send ([`MIN_CHALLENGE_LEN`]..=[`MAX_CHALLENGE_LEN`] bytes).
    pub value: &'c [u8],
}

/// A CHAP failure. Configuration errors come from [`ChapSession::new`]; the rest
/// are protocol violations or failed authentication and end the login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChapError {
    /// Our secret is shorter than [`MIN_SECRET_LEN`] (RFC 7143 §9.2.1: 96 bits).
    SecretTooShort {
        /// Its length.
        len: usize,
    },
    /// Our secret is longer than [`MAX_SECRET_LEN`].
    SecretTooLong {
        /// Its length.
        len: usize,
    },
    /// The target's (mutual) secret is shorter than [`MIN_SECRET_LEN`].
    TargetSecretTooShort {
        /// Its length.
        len: usize,
    },
    /// The target's (mutual) secret is longer than [`MAX_SECRET_LEN`].
    TargetSecretTooLong {
        /// Its length.
        len: usize,
    },
    /// Both directions use the same secret (RFC 7143 §9.2.1 forbids it: it enables
    /// reflection attacks).
    SameSecretBothWays,
    /// Our CHAP name is empty, too long, or has control characters.
    InvalidName,
    /// The algorithm list is empty, longer than 4 or has duplicates.
    InvalidAlgorithmList,
    /// A CHAP key arrived in a state where it makes no sense (e.g. a challenge before
    /// we offered algorithms, or after we answered).
    OutOfOrder,
    /// A CHAP key we do not know, or CHAP_N/CHAP_R without mutual CHAP.
    UnexpectedKey,
    /// The target sent the same CHAP key twice.
    DuplicateKey,
    /// A CHAP value does not decode.
    Malformed {
        /// The key.
        key: &'static str,
        /// Why.
        error: TextError,
    },
    /// The target answered CHAP_A=Reject: no common algorithm.
    AlgorithmRejected,
    /// CHAP_A is not a single number.
    InvalidAlgorithm,
    /// The target chose an algorithm we did not offer.
    AlgorithmNotOffered {
        /// The code it chose.
        code: u64,
    },
    /// CHAP_I is above 255.
    InvalidIdentifier,
    /// A challenge is shorter than [`MIN_CHALLENGE_LEN`].
    ChallengeTooShort {
        /// Its length.
        len: usize,
    },
    /// A challenge is longer than [`MAX_CHALLENGE_LEN`].
    ChallengeTooLong {
        /// Its length.
        len: usize,
    },
    /// The target's challenge equals the one we sent, or ours equals the target's:
    /// a reflection attempt (RFC 7143 §12.1.3).
    ChallengeReflected,
    /// We were asked to respond before CHAP_A, CHAP_I and CHAP_C all arrived.
    MissingChallenge,
    /// Mutual CHAP is configured but no challenge of ours was supplied.
    MutualChallengeMissing,
    /// The target's CHAP_N is not the configured target name.
    TargetNameMismatch,
    /// The target's CHAP_R has the wrong length for the algorithm.
    ResponseLength {
        /// Digest length of the algorithm.
        expected: usize,
        /// Decoded length received.
        got: usize,
    },
    /// The target did not send CHAP_N and CHAP_R although we asked for mutual CHAP.
    MutualResponseMissing,
    /// The target's CHAP_R is wrong: it does not know the secret.
    MutualAuthFailed,
    /// The caller's digest returned the wrong length.
    DigestFailed,
    /// Writing our keys failed (buffer too small); nothing was written.
    Text(TextError),
}

impl From<TextError> for ChapError {
    fn from(e: TextError) -> Self {
        ChapError::Text(e)
    }
}

impl fmt::Display for ChapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::SecretTooShort { len } => write!(
                f,
                "CHAP secret is {len} bytes; RFC 7143 requires at least {MIN_SECRET_LEN}"
            ),
            Self::SecretTooLong { len } => {
                write!(f, "CHAP secret is {len} bytes (max {MAX_SECRET_LEN})")
            }
            Self::TargetSecretTooShort { len } => write!(
                f,
                "mutual CHAP secret is {len} bytes; RFC 7143 requires at least {MIN_SECRET_LEN}"
            ),
            Self::TargetSecretTooLong { len } => {
                write!(
                    f,
                    "mutual CHAP secret is {len} bytes (max {MAX_SECRET_LEN})"
                )
            }
            Self::SameSecretBothWays => {
                f.write_str("mutual CHAP secret must differ from the initiator secret")
            }
            Self::InvalidName => f.write_str("invalid CHAP name"),
            Self::InvalidAlgorithmList => f.write_str("invalid CHAP algorithm list"),
            Self::OutOfOrder => f.write_str("CHAP key out of order"),
            Self::UnexpectedKey => f.write_str("unexpected CHAP key"),
            Self::DuplicateKey => f.write_str("CHAP key sent twice"),
            Self::Malformed { key, error } => write!(f, "malformed {key}: {error}"),
            Self::AlgorithmRejected => f.write_str("target supports none of our CHAP algorithms"),
            Self::InvalidAlgorithm => f.write_str("CHAP_A answer is not a single algorithm"),
            Self::AlgorithmNotOffered { code } => {
                write!(
                    f,
                    "target chose CHAP algorithm {code}, which we did not offer"
                )
            }
            Self::InvalidIdentifier => f.write_str("CHAP_I above 255"),
            Self::ChallengeTooShort { len } => {
                write!(f, "CHAP challenge is {len} bytes (min {MIN_CHALLENGE_LEN})")
            }
            Self::ChallengeTooLong { len } => {
                write!(f, "CHAP challenge is {len} bytes (max {MAX_CHALLENGE_LEN})")
            }
            Self::ChallengeReflected => f.write_str("CHAP challenge reflected"),
            Self::MissingChallenge => f.write_str("target's CHAP challenge incomplete"),
            Self::MutualChallengeMissing => f.write_str("no challenge supplied for mutual CHAP"),
            Self::TargetNameMismatch => f.write_str("target's CHAP name does not match"),
            Self::ResponseLength { expected, got } => {
                write!(f, "target's CHAP_R is {got} bytes, expected {expected}")
            }
            Self::MutualResponseMissing => {
                f.write_str("target did not answer our mutual CHAP challenge")
            }
            Self::MutualAuthFailed => f.write_str("target failed mutual CHAP authentication"),
            Self::DigestFailed => f.write_str("CHAP digest computation failed"),
            Self::Text(e) => write!(f, "writing CHAP keys: {e}"),
        }
    }
}

/// Compares without an early exit, so timing does not reveal how many leading
/// bytes of a forged response were right.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    core::hint::black_box(diff) == 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing sent yet this attempt.
    Idle,
    /// CHAP_A sent; collecting the target's A, I, C.
    AlgorithmsSent,
    /// N and R (and our I, C) sent; collecting the target's N, R if mutual.
    ResponseSent,
    /// Authenticated.
    Done,
}

// Bits of `ChapSession::seen`, for duplicate detection.
const SEEN_A: u8 = 1;
const SEEN_I: u8 = 2;
const SEEN_C: u8 = 4;
const SEEN_N: u8 = 8;
const SEEN_R: u8 = 16;

/// One CHAP exchange (initiator side). About 2 KiB: it keeps the target's challenge
/// and ours, up to [`MAX_CHALLENGE_LEN`] each. `Debug` shows the state only.
#[derive(Clone)]
pub struct ChapSession<'a> {
    config: ChapConfig<'a>,
    state: State,
    seen: u8,
    algorithm: Option<ChapAlgorithm>,
    identifier: u8,
    challenge: [u8; MAX_CHALLENGE_LEN],
    challenge_len: usize,
    our_identifier: u8,
    /// Our last sent challenge. Survives `reset` so a target cannot replay it to us
    /// on a later attempt to get it answered with our secret.
    our_challenge: [u8; MAX_CHALLENGE_LEN],
    our_challenge_len: usize,
    /// Whether `our_challenge` was sent in the current attempt.
    our_challenge_current: bool,
    target_response: [u8; MAX_DIGEST_LEN],
    target_response_len: usize,
}

impl fmt::Debug for ChapSession<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChapSession")
            .field("config", &self.config)
            .field("state", &self.state)
            .field("algorithm", &self.algorithm)
            .field("challenge_len", &self.challenge_len)
            .field("our_challenge_len", &self.our_challenge_len)
            .finish_non_exhaustive()
    }
}

fn check_secret(
    secret: &[u8],
    short: fn(usize) -> ChapError,
    long: fn(usize) -> ChapError,
) -> Result<(), ChapError> {
    match secret.len() {
        n if n < MIN_SECRET_LEN => Err(short(n)),
        n if n > MAX_SECRET_LEN => Err(long(n)),
        _ => Ok(()),
    }
}

impl<'a> ChapSession<'a> {
    /// Checks `config` (secret lengths, distinct secrets, name, algorithm list) and
    /// starts in the reset state.
    pub fn new(config: ChapConfig<'a>) -> Result<Self, ChapError> {
        check_secret(
            config.secret,
            |len| ChapError::SecretTooShort { len },
            |len| ChapError::SecretTooLong { len },
        )?;
        if let Some(m) = config.mutual {
            check_secret(
                m.target_secret,
                |len| ChapError::TargetSecretTooShort { len },
                |len| ChapError::TargetSecretTooLong { len },
            )?;
            if ct_eq(m.target_secret, config.secret) {
                return Err(ChapError::SameSecretBothWays);
            }
        }
        let name = config.name.as_bytes();
        if name.is_empty()
            || name.len() > MAX_NAME_LEN
            || name.iter().any(|&b| b < 0x20 || b == 0x7f)
        {
            return Err(ChapError::InvalidName);
        }
        let algs = config.algorithms;
        let duplicate = algs
            .iter()
            .enumerate()
            .any(|(i, a)| algs.iter().skip(i + 1).any(|b| a == b));
        if algs.is_empty() || algs.len() > ChapAlgorithm::DEFAULT_PREFERENCE.len() || duplicate {
            return Err(ChapError::InvalidAlgorithmList);
        }
        Ok(Self {
            config,
            state: State::Idle,
            seen: 0,
            algorithm: None,
            identifier: 0,
            challenge: [0; MAX_CHALLENGE_LEN],
            challenge_len: 0,
            our_identifier: 0,
            our_challenge: [0; MAX_CHALLENGE_LEN],
            our_challenge_len: 0,
            our_challenge_current: false,
            target_response: [0; MAX_DIGEST_LEN],
            target_response_len: 0,
        })
    }

    /// Forgets the current attempt. Call before every leading login attempt.
    pub fn reset(&mut self) {
        self.state = State::Idle;
        self.seen = 0;
        self.algorithm = None;
        self.identifier = 0;
        self.challenge.fill(0);
        self.challenge_len = 0;
        self.our_identifier = 0;
        self.our_challenge_current = false;
        self.target_response.fill(0);
        self.target_response_len = 0;
    }

    /// The algorithm the target chose, once known.
    pub fn algorithm(&self) -> Option<ChapAlgorithm> {
        self.algorithm
    }

    /// True once the target's CHAP_A, CHAP_I and CHAP_C have all arrived, i.e.
    /// [`write_response`](Self::write_response) can be called.
    pub fn has_challenge(&self) -> bool {
        self.state == State::AlgorithmsSent
            && self.seen & (SEEN_A | SEEN_I | SEEN_C) == (SEEN_A | SEEN_I | SEEN_C)
    }

    /// True once [`finish`](Self::finish) succeeded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Appends `CHAP_A=<our list>` (the first CHAP step, after AuthMethod=CHAP).
    pub fn write_algorithms(&mut self, w: &mut TextWriter<'_>) -> Result<(), ChapError> {
        if self.state != State::Idle {
            return Err(ChapError::OutOfOrder);
        }
        let mut items = [""; 4];
        for (slot, alg) in items.iter_mut().zip(self.config.algorithms) {
            *slot = alg.code_str();
        }
        let n = self.config.algorithms.len().min(items.len());
        w.push_list("CHAP_A", items.get(..n).unwrap_or(&[]))?;
        self.state = State::AlgorithmsSent;
        Ok(())
    }

    fn mark_seen(&mut self, bit: u8) -> Result<(), ChapError> {
        if self.seen & bit != 0 {
            return Err(ChapError::DuplicateKey);
        }
        self.seen |= bit;
        Ok(())
    }

    /// Takes one CHAP key from a target Login Response.
    pub fn receive(&mut self, key: &str, value: &str) -> Result<(), ChapError> {
        match key {
            "CHAP_A" | "CHAP_I" | "CHAP_C" if self.state != State::AlgorithmsSent => {
                Err(ChapError::OutOfOrder)
            }
            "CHAP_A" => {
                self.mark_seen(SEEN_A)?;
                self.take_algorithm(value)
            }
            "CHAP_I" => {
                self.mark_seen(SEEN_I)?;
                let id = text::parse_number(value).map_err(|error| ChapError::Malformed {
                    key: "CHAP_I",
                    error,
                })?;
                self.identifier = u8::try_from(id).map_err(|_| ChapError::InvalidIdentifier)?;
                Ok(())
            }
            "CHAP_C" => {
                self.mark_seen(SEEN_C)?;
                self.take_challenge(value)
            }
            "CHAP_N" | "CHAP_R" if self.config.mutual.is_none() => Err(ChapError::UnexpectedKey),
            "CHAP_N" | "CHAP_R" if self.state != State::ResponseSent => Err(ChapError::OutOfOrder),
            "CHAP_N" => {
                self.mark_seen(SEEN_N)?;
                let expected = self.config.mutual.and_then(|m| m.target_name);
                if value.is_empty() || value.len() > MAX_NAME_LEN {
                    return Err(ChapError::TargetNameMismatch);
                }
                match expected {
                    Some(name) if name != value => Err(ChapError::TargetNameMismatch),
                    _ => Ok(()),
                }
            }
            "CHAP_R" => {
                self.mark_seen(SEEN_R)?;
                self.take_target_response(value)
            }
            _ => Err(ChapError::UnexpectedKey),
        }
    }

    fn take_algorithm(&mut self, value: &str) -> Result<(), ChapError> {
        if value == "Reject" {
            return Err(ChapError::AlgorithmRejected);
        }
        let code = text::parse_number(value).map_err(|_| ChapError::InvalidAlgorithm)?;
        let alg = ChapAlgorithm::from_code(code)
            .filter(|a| self.config.algorithms.contains(a))
            .ok_or(ChapError::AlgorithmNotOffered { code })?;
        self.algorithm = Some(alg);
        Ok(())
    }

    fn take_challenge(&mut self, value: &str) -> Result<(), ChapError> {
        let malformed = |error| ChapError::Malformed {
            key: "CHAP_C",
            error,
        };
        let len = text::binary_len(value).map_err(malformed)?;
        if len < MIN_CHALLENGE_LEN {
            return Err(ChapError::ChallengeTooShort { len });
        }
        if len > MAX_CHALLENGE_LEN {
            return Err(ChapError::ChallengeTooLong { len });
        }
        let n = text::decode_binary(value, &mut self.challenge).map_err(malformed)?;
        self.challenge_len = n;
        let ours = self
            .our_challenge
            .get(..self.our_challenge_len)
            .unwrap_or(&[]);
        if self.our_challenge_len > 0 && ct_eq(ours, self.target_challenge()) {
            return Err(ChapError::ChallengeReflected);
        }
        Ok(())
    }

    fn take_target_response(&mut self, value: &str) -> Result<(), ChapError> {
        let expected = self.algorithm.map_or(0, ChapAlgorithm::digest_len);
        let got = text::binary_len(value).map_err(|error| ChapError::Malformed {
            key: "CHAP_R",
            error,
        })?;
        if got != expected {
            return Err(ChapError::ResponseLength { expected, got });
        }
        let n = text::decode_binary(value, &mut self.target_response).map_err(|error| {
            ChapError::Malformed {
                key: "CHAP_R",
                error,
            }
        })?;
        self.target_response_len = n;
        Ok(())
    }

    fn target_challenge(&self) -> &[u8] {
        self.challenge.get(..self.challenge_len).unwrap_or(&[])
    }

    /// Computes H(identifier || secret || challenge) into `out`.
    fn compute<D: ChapDigest + ?Sized>(
        digest: &mut D,
        alg: ChapAlgorithm,
        identifier: u8,
        secret: &[u8],
        challenge: &[u8],
        out: &mut [u8; MAX_DIGEST_LEN],
    ) -> Result<usize, ChapError> {
        let n = digest.digest(alg, &[&[identifier], secret, challenge], out);
        if n != alg.digest_len() {
            return Err(ChapError::DigestFailed);
        }
        Ok(n)
    }

    /// Appends `CHAP_N` and `CHAP_R` answering the target's challenge, plus, for
    /// mutual CHAP, `CHAP_I` and `CHAP_C` from `ours` (ignored for one-way CHAP).
    /// On error nothing is appended.
    pub fn write_response<D: ChapDigest + ?Sized>(
        &mut self,
        digest: &mut D,
        ours: Option<Challenge<'_>>,
        w: &mut TextWriter<'_>,
    ) -> Result<(), ChapError> {
        if self.state != State::AlgorithmsSent {
            return Err(ChapError::OutOfOrder);
        }
        if !self.has_challenge() {
            return Err(ChapError::MissingChallenge);
        }
        let alg = self.algorithm.ok_or(ChapError::MissingChallenge)?;
        let mutual = match (self.config.mutual.is_some(), ours) {
            (true, None) => return Err(ChapError::MutualChallengeMissing),
            (true, Some(c)) => {
                let len = c.value.len();
                if len < MIN_CHALLENGE_LEN {
                    return Err(ChapError::ChallengeTooShort { len });
                }
                if len > MAX_CHALLENGE_LEN {
                    return Err(ChapError::ChallengeTooLong { len });
                }
                // RFC 7143 §12.1.3: never reuse the responder's challenge.
                if ct_eq(c.value, self.target_challenge()) {
                    return Err(ChapError::ChallengeReflected);
                }
                Some(c)
            }
            (false, _) => None,
        };
        let mut response = [0u8; MAX_DIGEST_LEN];
        let n = Self::compute(
            digest,
            alg,
            self.identifier,
            self.config.secret,
            self.target_challenge(),
            &mut response,
        )?;
        let start = w.len();
        let written = (|| {
            w.push("CHAP_N", self.config.name)?;
            w.push_hex("CHAP_R", response.get(..n).unwrap_or(&[]))?;
            if let Some(c) = mutual {
                w.push_u64("CHAP_I", c.identifier.into())?;
                w.push_hex("CHAP_C", c.value)?;
            }
            Ok::<(), TextError>(())
        })();
        response.fill(0);
        if let Err(e) = written {
            w.truncate(start);
            return Err(e.into());
        }
        if let Some(c) = mutual {
            self.our_identifier = c.identifier;
            let dst = self
                .our_challenge
                .get_mut(..c.value.len())
                .ok_or(ChapError::ChallengeTooLong { len: c.value.len() })?;
            dst.copy_from_slice(c.value);
            self.our_challenge_len = c.value.len();
            self.our_challenge_current = true;
        }
        self.state = State::ResponseSent;
        Ok(())
    }

    /// Ends the exchange when the target leaves the security stage. For mutual CHAP
    /// this is where the target's CHAP_N/CHAP_R are required and verified; a missing
    /// or wrong answer is a hard error.
    pub fn finish<D: ChapDigest + ?Sized>(&mut self, digest: &mut D) -> Result<(), ChapError> {
        match self.state {
            State::Done => return Ok(()),
            State::ResponseSent => {}
            State::Idle | State::AlgorithmsSent => return Err(ChapError::OutOfOrder),
        }
        if let Some(m) = self.config.mutual {
            if self.seen & (SEEN_N | SEEN_R) != (SEEN_N | SEEN_R) || !self.our_challenge_current {
                return Err(ChapError::MutualResponseMissing);
            }
            let alg = self.algorithm.ok_or(ChapError::MissingChallenge)?;
            let mut expected = [0u8; MAX_DIGEST_LEN];
            let ours = self
                .our_challenge
                .get(..self.our_challenge_len)
                .unwrap_or(&[]);
            let n = Self::compute(
                digest,
                alg,
                self.our_identifier,
                m.target_secret,
                ours,
                &mut expected,
            )?;
            let got = self
                .target_response
                .get(..self.target_response_len)
                .unwrap_or(&[]);
            let ok = ct_eq(expected.get(..n).unwrap_or(&[]), got);
            expected.fill(0);
            if !ok {
                return Err(ChapError::MutualAuthFailed);
            }
        }
        self.state = State::Done;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    use super::super::test_support::{chap_hash as expected, RustCrypto};

    fn hex(bytes: &[u8]) -> String {
        let mut s = String::from("0x");
        for b in bytes {
            s.push_str(&std::format!("{b:02x}"));
        }
        s
    }

    const SECRET: &[u8] = b"initiator-secret";
    const TSECRET: &[u8] = b"target-secret-99";
    const ALL_ALGS: [ChapAlgorithm; 4] = [
        ChapAlgorithm::Md5,
        ChapAlgorithm::Sha1,
        ChapAlgorithm::Sha256,
        ChapAlgorithm::Sha3_256,
    ];

    fn write<F>(f: F) -> (Result<(), ChapError>, Vec<(String, String)>)
    where
        F: FnOnce(&mut TextWriter<'_>) -> Result<(), ChapError>,
    {
        let mut buf = [0u8; 8192];
        let mut w = TextWriter::new(&mut buf);
        let r = f(&mut w);
        let pairs = text::pairs(w.as_bytes())
            .map(|p| {
                let (k, v) = p.unwrap();
                (k.into(), v.into())
            })
            .collect();
        (r, pairs)
    }

    fn get<'p>(pairs: &'p [(String, String)], key: &str) -> &'p str {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    /// A target behaving like LIO's chap_server_open/compute_hash: it picks the first
    /// algorithm of the initiator's list it supports, sends a challenge of digest size.
    struct LioLike {
        supported: &'static [u8],
        id: u8,
        alg: Option<ChapAlgorithm>,
        challenge: Vec<u8>,
    }

    impl LioLike {
        fn new(supported: &'static [u8], id: u8) -> Self {
            Self {
                supported,
                id,
                alg: None,
                challenge: Vec::new(),
            }
        }

        fn challenge(&mut self, chap_a: &str) -> Vec<(String, String)> {
            let code = text::list_items(chap_a)
                .filter_map(|c| c.parse::<u8>().ok())
                .find(|c| self.supported.contains(c));
            let Some(code) = code else {
                return std::vec![("CHAP_A".into(), "Reject".into())];
            };
            let alg = ChapAlgorithm::from_code(code.into()).unwrap();
            self.alg = Some(alg);
            self.challenge = (0..alg.digest_len() as u8)
                .map(|i| i.wrapping_mul(37) ^ self.id)
                .collect();
            std::vec![
                ("CHAP_A".into(), std::format!("{code}")),
                ("CHAP_I".into(), std::format!("{}", self.id)),
                ("CHAP_C".into(), hex(&self.challenge)),
            ]
        }

        /// Checks the initiator's CHAP_R; returns the mutual N/R if asked.
        fn verify(&self, pairs: &[(String, String)]) -> Option<Vec<(String, String)>> {
            let alg = self.alg.unwrap();
            let mut r = [0u8; 32];
            let n = text::decode_binary(get(pairs, "CHAP_R"), &mut r).unwrap();
            assert_eq!(
                &r[..n],
                &expected(alg, self.id, SECRET, &self.challenge)[..]
            );
            let ci = pairs.iter().find(|(k, _)| k == "CHAP_I")?;
            let id = text::parse_number(&ci.1).unwrap() as u8;
            let mut c = [0u8; 1024];
            let n = text::decode_binary(get(pairs, "CHAP_C"), &mut c).unwrap();
            assert_ne!(&c[..n], &self.challenge[..]);
            Some(std::vec![
                ("CHAP_N".into(), "target-user".into()),
                ("CHAP_R".into(), hex(&expected(alg, id, TSECRET, &c[..n]))),
            ])
        }
    }

    fn mutual_config(algs: &'static [ChapAlgorithm]) -> ChapConfig<'static> {
        ChapConfig {
            name: "initiator-user",
            secret: SECRET,
            algorithms: algs,
            mutual: Some(MutualChap {
                target_name: Some("target-user"),
                target_secret: TSECRET,
            }),
        }
    }

    /// Runs a complete exchange; returns the outcome of `finish`.
    fn exchange(
        config: ChapConfig<'static>,
        target: &mut LioLike,
        our_challenge: &[u8],
        tamper: impl FnOnce(&mut Vec<(String, String)>),
    ) -> Result<(), ChapError> {
        let mut s = ChapSession::new(config)?;
        let (r, a) = write(|w| s.write_algorithms(w));
        r?;
        for (k, v) in target.challenge(get(&a, "CHAP_A")) {
            s.receive(&k, &v)?;
        }
        assert!(s.has_challenge());
        let ours = Challenge {
            identifier: 0x77,
            value: our_challenge,
        };
        let (r, nr) = write(|w| s.write_response(&mut RustCrypto, Some(ours), w));
        r?;
        assert_eq!(get(&nr, "CHAP_N"), config.name);
        if let Some(mut back) = target.verify(&nr) {
            tamper(&mut back);
            for (k, v) in back {
                s.receive(&k, &v)?;
            }
        }
        s.finish(&mut RustCrypto)?;
        assert!(s.is_done());
        Ok(())
    }

    #[test]
    fn algorithm_codes() {
        for a in ALL_ALGS {
            assert_eq!(ChapAlgorithm::from_code(a.code().into()), Some(a));
            assert!(a.digest_len() <= MAX_DIGEST_LEN);
        }
        assert_eq!(ChapAlgorithm::from_code(4), None);
        assert_eq!(ChapAlgorithm::from_code(9), None);
        assert_eq!(ChapAlgorithm::from_code(256 + 5), None);
    }

    #[test]
    fn offers_default_list() {
        let mut s = ChapSession::new(ChapConfig::new("u", SECRET)).unwrap();
        let (r, a) = write(|w| s.write_algorithms(w));
        r.unwrap();
        assert_eq!(a, [("CHAP_A".into(), "7,8,6,5".into())]);
        // Only once per attempt.
        assert_eq!(
            write(|w| s.write_algorithms(w)).0,
            Err(ChapError::OutOfOrder)
        );
    }

    #[test]
    fn one_way_md5_when_target_only_has_md5() {
        let mut target = LioLike::new(&[5], 3);
        let mut s = ChapSession::new(ChapConfig::new("iqn.user", SECRET)).unwrap();
        let (_, a) = write(|w| s.write_algorithms(w));
        for (k, v) in target.challenge(get(&a, "CHAP_A")) {
            s.receive(&k, &v).unwrap();
        }
        assert_eq!(s.algorithm(), Some(ChapAlgorithm::Md5));
        let (r, nr) = write(|w| s.write_response(&mut RustCrypto, None, w));
        r.unwrap();
        assert_eq!(nr.len(), 2);
        assert_eq!(
            get(&nr, "CHAP_R"),
            hex(&expected(ChapAlgorithm::Md5, 3, SECRET, &target.challenge))
        );
        assert!(target.verify(&nr).is_none());
        s.finish(&mut RustCrypto).unwrap();
    }

    #[test]
    fn fixed_md5_vector() {
        // Computed independently with Python: md5(b"\x2a" + secret + bytes(range(16))).
        let mut s = ChapSession::new(ChapConfig::new("u", b"twelve-bytes")).unwrap();
        write(|w| s.write_algorithms(w)).0.unwrap();
        s.receive("CHAP_A", "5").unwrap();
        s.receive("CHAP_I", "42").unwrap();
        s.receive("CHAP_C", "0x000102030405060708090a0b0c0d0e0f")
            .unwrap();
        let (_, nr) = write(|w| s.write_response(&mut RustCrypto, None, w));
        assert_eq!(get(&nr, "CHAP_R"), "0xabc5cd425b0c22b8d1fa813558750e83");
    }

    #[test]
    fn fixed_sha256_mutual_vector() {
        // Python: sha256(b"\x07" + b"target-secret-99" + bytes(range(100, 132))).
        static ALGS: [ChapAlgorithm; 1] = [ChapAlgorithm::Sha256];
        let mut s = ChapSession::new(mutual_config(&ALGS)).unwrap();
        write(|w| s.write_algorithms(w)).0.unwrap();
        s.receive("CHAP_A", "7").unwrap();
        s.receive("CHAP_I", "0").unwrap();
        s.receive("CHAP_C", &hex(&[0xee; 32])).unwrap();
        let ours: Vec<u8> = (100..132).collect();
        let c = Challenge {
            identifier: 7,
            value: &ours,
        };
        let (r, nr) = write(|w| s.write_response(&mut RustCrypto, Some(c), w));
        r.unwrap();
        assert_eq!(get(&nr, "CHAP_I"), "7");
        assert_eq!(get(&nr, "CHAP_C"), hex(&ours));
        s.receive("CHAP_N", "target-user").unwrap();
        s.receive(
            "CHAP_R",
            "0xac064f768ce08416dad39e7a18425ea0ee9fb7eebd56361eac7b9ff6da799c04",
        )
        .unwrap();
        s.finish(&mut RustCrypto).unwrap();
    }

    #[test]
    fn mutual_exchange_every_algorithm() {
        static ONE: [[ChapAlgorithm; 1]; 4] = [
            [ChapAlgorithm::Md5],
            [ChapAlgorithm::Sha1],
            [ChapAlgorithm::Sha256],
            [ChapAlgorithm::Sha3_256],
        ];
        for algs in &ONE {
            let mut target = LioLike::new(&[5, 6, 7, 8], 9);
            exchange(mutual_config(algs), &mut target, &[0x42; 20], |_| {}).unwrap();
            assert_eq!(target.alg, Some(algs[0]));
        }
        // Default list against LIO: SHA-256 wins (LIO walks our list in order).
        let mut target = LioLike::new(&[5, 6, 7, 8], 1);
        exchange(
            mutual_config(&ChapAlgorithm::DEFAULT_PREFERENCE),
            &mut target,
            &[1; 16],
            |_| {},
        )
        .unwrap();
        assert_eq!(target.alg, Some(ChapAlgorithm::Sha256));
    }

    #[test]
    fn mutual_failures() {
        let algs = &ChapAlgorithm::DEFAULT_PREFERENCE;
        // One flipped bit in the target's response.
        let r = exchange(
            mutual_config(algs),
            &mut LioLike::new(&[7], 1),
            &[9; 16],
            |back| {
                let v = &mut back[1].1;
                let last = v.pop().unwrap();
                v.push(if last == '0' { '1' } else { '0' });
            },
        );
        assert_eq!(r, Err(ChapError::MutualAuthFailed));
        // Wrong name.
        let r = exchange(
            mutual_config(algs),
            &mut LioLike::new(&[7], 1),
            &[9; 16],
            |back| {
                back[0].1 = "mallory".into();
            },
        );
        assert_eq!(r, Err(ChapError::TargetNameMismatch));
        // Target skips mutual authentication.
        let r = exchange(
            mutual_config(algs),
            &mut LioLike::new(&[7], 1),
            &[9; 16],
            |back| {
                back.clear();
            },
        );
        assert_eq!(r, Err(ChapError::MutualResponseMissing));
        // Only CHAP_N.
        let r = exchange(
            mutual_config(algs),
            &mut LioLike::new(&[7], 1),
            &[9; 16],
            |back| {
                back.truncate(1);
            },
        );
        assert_eq!(r, Err(ChapError::MutualResponseMissing));
        // Response of the wrong length (an MD5-sized answer to SHA-256).
        let r = exchange(
            mutual_config(algs),
            &mut LioLike::new(&[7], 1),
            &[9; 16],
            |back| {
                back[1].1 = hex(&[0; 16]);
            },
        );
        assert_eq!(
            r,
            Err(ChapError::ResponseLength {
                expected: 32,
                got: 16
            })
        );
    }

    #[test]
    fn mutual_accepts_any_target_name_when_unset() {
        static ALGS: [ChapAlgorithm; 1] = [ChapAlgorithm::Md5];
        let mut config = mutual_config(&ALGS);
        config.mutual = Some(MutualChap {
            target_name: None,
            target_secret: TSECRET,
        });
        let r = exchange(config, &mut LioLike::new(&[5], 2), &[3; 16], |back| {
            back[0].1 = "whoever".into();
        });
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn config_validation() {
        let cfg = |secret: &'static [u8]| ChapSession::new(ChapConfig::new("u", secret)).err();
        assert_eq!(
            cfg(b"elevenbytes"),
            Some(ChapError::SecretTooShort { len: 11 })
        );
        assert_eq!(cfg(b"twelve-bytes"), None);
        assert_eq!(cfg(&[b'x'; 255]), None);
        assert_eq!(
            cfg(&[b'x'; 256]),
            Some(ChapError::SecretTooLong { len: 256 })
        );
        let mut c = mutual_config(&ChapAlgorithm::DEFAULT_PREFERENCE);
        c.mutual = Some(MutualChap {
            target_name: None,
            target_secret: SECRET,
        });
        assert_eq!(
            ChapSession::new(c).err(),
            Some(ChapError::SameSecretBothWays)
        );
        c.mutual = Some(MutualChap {
            target_name: None,
            target_secret: b"short",
        });
        assert_eq!(
            ChapSession::new(c).err(),
            Some(ChapError::TargetSecretTooShort { len: 5 })
        );
        let mut c = ChapConfig::new("", SECRET);
        assert_eq!(ChapSession::new(c).err(), Some(ChapError::InvalidName));
        c.name = "a\nb";
        assert_eq!(ChapSession::new(c).err(), Some(ChapError::InvalidName));
        let mut c = ChapConfig::new("u", SECRET);
        c.algorithms = &[];
        assert_eq!(
            ChapSession::new(c).err(),
            Some(ChapError::InvalidAlgorithmList)
        );
        c.algorithms = &[ChapAlgorithm::Md5, ChapAlgorithm::Md5];
        assert_eq!(
            ChapSession::new(c).err(),
            Some(ChapError::InvalidAlgorithmList)
        );
    }

    fn challenged(algs: &'static [ChapAlgorithm]) -> ChapSession<'static> {
        let mut c = ChapConfig::new("u", SECRET);
        c.algorithms = algs;
        let mut s = ChapSession::new(c).unwrap();
        write(|w| s.write_algorithms(w)).0.unwrap();
        s
    }

    #[test]
    fn algorithm_answers() {
        static SHA: [ChapAlgorithm; 2] = [ChapAlgorithm::Sha256, ChapAlgorithm::Sha3_256];
        let mut s = challenged(&SHA);
        assert_eq!(
            s.receive("CHAP_A", "5"),
            Err(ChapError::AlgorithmNotOffered { code: 5 })
        );
        let mut s = challenged(&SHA);
        assert_eq!(
            s.receive("CHAP_A", "9"),
            Err(ChapError::AlgorithmNotOffered { code: 9 })
        );
        let mut s = challenged(&SHA);
        assert_eq!(
            s.receive("CHAP_A", "Reject"),
            Err(ChapError::AlgorithmRejected)
        );
        let mut s = challenged(&SHA);
        assert_eq!(s.receive("CHAP_A", "7,8"), Err(ChapError::InvalidAlgorithm));
        let mut s = challenged(&SHA);
        s.receive("CHAP_A", "8").unwrap();
        assert_eq!(s.algorithm(), Some(ChapAlgorithm::Sha3_256));
        assert_eq!(s.receive("CHAP_A", "8"), Err(ChapError::DuplicateKey));
    }

    #[test]
    fn identifier_range() {
        let mut s = challenged(&ChapAlgorithm::DEFAULT_PREFERENCE);
        assert_eq!(
            s.receive("CHAP_I", "256"),
            Err(ChapError::InvalidIdentifier)
        );
        let mut s = challenged(&ChapAlgorithm::DEFAULT_PREFERENCE);
        s.receive("CHAP_I", "0xff").unwrap();
        let mut s = challenged(&ChapAlgorithm::DEFAULT_PREFERENCE);
        assert!(matches!(
            s.receive("CHAP_I", "-1"),
            Err(ChapError::Malformed { key: "CHAP_I", .. })
        ));
    }

    #[test]
    fn challenge_length_limits() {
        for (len, want) in [
            (15, Err(ChapError::ChallengeTooShort { len: 15 })),
            (16, Ok(())),
            (1024, Ok(())),
            (1025, Err(ChapError::ChallengeTooLong { len: 1025 })),
        ] {
            let mut s = challenged(&ChapAlgorithm::DEFAULT_PREFERENCE);
            assert_eq!(
                s.receive("CHAP_C", &hex(&std::vec![0x5a; len])),
                want,
                "{len}"
            );
        }
        let mut s = challenged(&ChapAlgorithm::DEFAULT_PREFERENCE);
        assert!(matches!(
            s.receive("CHAP_C", "0x0011zz"),
            Err(ChapError::Malformed { key: "CHAP_C", .. })
        ));
        let mut s = challenged(&ChapAlgorithm::DEFAULT_PREFERENCE);
        assert!(matches!(
            s.receive("CHAP_C", "12345678901234567890"),
            Err(ChapError::Malformed {
                key: "CHAP_C",
                error: TextError::NotBinary
            })
        ));
    }

    #[test]
    fn base64_challenge_and_response() {
        let mut buf = [0u8; 256];
        let mut w = TextWriter::new(&mut buf);
        w.push_base64("CHAP_C", &[0xab; 16]).unwrap();
        let (_, c64) = text::pairs(w.as_bytes()).next().unwrap().unwrap();
        let mut s = challenged(&ChapAlgorithm::DEFAULT_PREFERENCE);
        s.receive("CHAP_A", "6").unwrap();
        s.receive("CHAP_I", "1").unwrap();
        s.receive("CHAP_C", c64).unwrap();
        let (_, nr) = write(|w| s.write_response(&mut RustCrypto, None, w));
        assert_eq!(
            get(&nr, "CHAP_R"),
            hex(&expected(ChapAlgorithm::Sha1, 1, SECRET, &[0xab; 16]))
        );
    }

    #[test]
    fn reflection_is_refused() {
        // Our challenge equal to the target's.
        let mut s = ChapSession::new(mutual_config(&ChapAlgorithm::DEFAULT_PREFERENCE)).unwrap();
        write(|w| s.write_algorithms(w)).0.unwrap();
        s.receive("CHAP_A", "7").unwrap();
        s.receive("CHAP_I", "1").unwrap();
        s.receive("CHAP_C", &hex(&[7; 32])).unwrap();
        let c = Challenge {
            identifier: 1,
            value: &[7; 32],
        };
        let (r, pairs) = write(|w| s.write_response(&mut RustCrypto, Some(c), w));
        assert_eq!(r, Err(ChapError::ChallengeReflected));
        assert!(pairs.is_empty());
        // A target replaying the challenge we sent on the previous attempt.
        let c = Challenge {
            identifier: 1,
            value: &[8; 32],
        };
        write(|w| s.write_response(&mut RustCrypto, Some(c), w))
            .0
            .unwrap();
        s.reset();
        write(|w| s.write_algorithms(w)).0.unwrap();
        s.receive("CHAP_A", "7").unwrap();
        s.receive("CHAP_I", "2").unwrap();
        assert_eq!(
            s.receive("CHAP_C", &hex(&[8; 32])),
            Err(ChapError::ChallengeReflected)
        );
    }

    #[test]
    fn reset_starts_a_clean_attempt() {
        let mut target = LioLike::new(&[7], 10);
        let mut s = ChapSession::new(ChapConfig::new("u", SECRET)).unwrap();
        let (_, a) = write(|w| s.write_algorithms(w));
        for (k, v) in target.challenge(get(&a, "CHAP_A")) {
            s.receive(&k, &v).unwrap();
        }
        // The attempt dies here (connection lost); a new leading login starts.
        s.reset();
        assert!(!s.has_challenge());
        assert_eq!(s.algorithm(), None);
        assert_eq!(
            write(|w| s.write_response(&mut RustCrypto, None, w)).0,
            Err(ChapError::OutOfOrder)
        );
        let mut target = LioLike::new(&[5], 11);
        let (_, a) = write(|w| s.write_algorithms(w));
        let keys = target.challenge(get(&a, "CHAP_A"));
        // Identifier and challenge of the old attempt must not be reused: the new
        // CHAP_I/CHAP_C are required again.
        s.receive(&keys[0].0, &keys[0].1).unwrap();
        assert_eq!(
            write(|w| s.write_response(&mut RustCrypto, None, w)).0,
            Err(ChapError::MissingChallenge)
        );
        for (k, v) in &keys[1..] {
            s.receive(k, v).unwrap();
        }
        let (r, nr) = write(|w| s.write_response(&mut RustCrypto, None, w));
        r.unwrap();
        assert!(target.verify(&nr).is_none());
        s.finish(&mut RustCrypto).unwrap();
    }

    #[test]
    fn order_and_unexpected_keys() {
        let mut s = ChapSession::new(ChapConfig::new("u", SECRET)).unwrap();
        assert_eq!(
            s.receive("CHAP_C", &hex(&[1; 16])),
            Err(ChapError::OutOfOrder)
        );
        assert_eq!(s.finish(&mut RustCrypto), Err(ChapError::OutOfOrder));
        write(|w| s.write_algorithms(w)).0.unwrap();
        assert_eq!(s.receive("CHAP_X", "1"), Err(ChapError::UnexpectedKey));
        // One-way CHAP: a target CHAP_R is not expected.
        assert_eq!(
            s.receive("CHAP_R", &hex(&[0; 16])),
            Err(ChapError::UnexpectedKey)
        );
        s.receive("CHAP_I", "1").unwrap();
        assert_eq!(s.receive("CHAP_I", "1"), Err(ChapError::DuplicateKey));
        // Mutual: CHAP_N before we answered is out of order.
        let mut s = ChapSession::new(mutual_config(&ChapAlgorithm::DEFAULT_PREFERENCE)).unwrap();
        write(|w| s.write_algorithms(w)).0.unwrap();
        assert_eq!(
            s.receive("CHAP_N", "target-user"),
            Err(ChapError::OutOfOrder)
        );
        s.receive("CHAP_A", "5").unwrap();
        s.receive("CHAP_I", "1").unwrap();
        s.receive("CHAP_C", &hex(&[1; 16])).unwrap();
        assert_eq!(
            write(|w| s.write_response(&mut RustCrypto, None, w)).0,
            Err(ChapError::MutualChallengeMissing)
        );
        let short = Challenge {
            identifier: 0,
            value: &[2; 8],
        };
        assert_eq!(
            write(|w| s.write_response(&mut RustCrypto, Some(short), w)).0,
            Err(ChapError::ChallengeTooShort { len: 8 })
        );
        // After answering, the target's challenge keys are out of order.
        let ok = Challenge {
            identifier: 0,
            value: &[2; 16],
        };
        write(|w| s.write_response(&mut RustCrypto, Some(ok), w))
            .0
            .unwrap();
        assert_eq!(s.receive("CHAP_I", "2"), Err(ChapError::OutOfOrder));
    }

    #[test]
    fn full_writer_leaves_nothing_behind() {
        let mut s = ChapSession::new(mutual_config(&ChapAlgorithm::DEFAULT_PREFERENCE)).unwrap();
        write(|w| s.write_algorithms(w)).0.unwrap();
        s.receive("CHAP_A", "7").unwrap();
        s.receive("CHAP_I", "1").unwrap();
        s.receive("CHAP_C", &hex(&[1; 16])).unwrap();
        let mut buf = [0u8; 120];
        let mut w = TextWriter::new(&mut buf);
        w.push("Other", "x").unwrap();
        let c = Challenge {
            identifier: 0,
            value: &[2; 64],
        };
        assert!(matches!(
            s.write_response(&mut RustCrypto, Some(c), &mut w),
            Err(ChapError::Text(TextError::BufferFull { .. }))
        ));
        assert_eq!(w.as_bytes(), b"Other=x\0");
        // Still answerable with a bigger buffer.
        let (r, _) = write(|w| s.write_response(&mut RustCrypto, Some(c), w));
        r.unwrap();
    }

    #[test]
    fn broken_digest_is_reported() {
        struct Broken;
        impl ChapDigest for Broken {
            fn digest(&mut self, _: ChapAlgorithm, _: &[&[u8]], _: &mut [u8]) -> usize {
                0
            }
        }
        let mut s = challenged(&ChapAlgorithm::DEFAULT_PREFERENCE);
        s.receive("CHAP_A", "5").unwrap();
        s.receive("CHAP_I", "1").unwrap();
        s.receive("CHAP_C", &hex(&[1; 16])).unwrap();
        let dynamic: &mut dyn ChapDigest = &mut Broken;
        assert_eq!(
            write(|w| s.write_response(dynamic, None, w)).0,
            Err(ChapError::DigestFailed)
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let s = ChapSession::new(mutual_config(&ChapAlgorithm::DEFAULT_PREFERENCE)).unwrap();
        let text = std::format!("{s:?}");
        assert!(text.contains("<redacted>"), "{text}");
        for secret in [SECRET, TSECRET] {
            let as_text = core::str::from_utf8(secret).unwrap();
            assert!(!text.contains(as_text), "{text}");
            assert!(!text.contains(&std::format!("{secret:?}")), "{text}");
        }
    }

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    #[test]
    fn errors_display() {
        let s = std::format!("{}", ChapError::SecretTooShort { len: 8 });
        assert!(s.contains("12") && s.contains('8'), "{s}");
    }

    proptest::proptest! {
        #[test]
        fn hostile_chap_keys_never_panic(
            keys in proptest::collection::vec(
                (
                    proptest::sample::select(&["CHAP_A", "CHAP_I", "CHAP_C", "CHAP_N", "CHAP_R", "CHAP_Z"][..]),
                    "(0x|0b)?[0-9a-fA-F=+/]{0,80}|[0-9,]{0,6}",
                ),
                0..12,
            )
        ) {
            let mut s = ChapSession::new(mutual_config(&ChapAlgorithm::DEFAULT_PREFERENCE)).unwrap();
            write(|w| s.write_algorithms(w)).0.unwrap();
            for (k, v) in &keys {
                let _ = s.receive(k, v);
            }
            let c = Challenge { identifier: 1, value: &[0x33; 16] };
            let _ = write(|w| s.write_response(&mut RustCrypto, Some(c), w));
            for (k, v) in &keys {
                let _ = s.receive(k, v);
            }
            // Random data never authenticates the target.
            proptest::prop_assert!(s.finish(&mut RustCrypto).is_err());
        }
    }
}
