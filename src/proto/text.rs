//! Text key=value codec (RFC 7143 §6.1): parsing a data segment into NUL-terminated
//! `key=value` pairs, reassembling text split over several PDUs with the C (continue)
//! bit, writing pairs into a caller buffer and cutting it into PDU-sized chunks, and
//! decoding the value types (numbers, booleans, hex/base64 binary, lists, the special
//! constants Reject/Irrelevant/NotUnderstood).
//!
//! Nothing here allocates: keys and values are `&str` slices into the caller's bytes,
//! binary values decode into a caller buffer, and every error says where it happened.

use core::fmt;

/// Longest key name (RFC 7143 §6.1: "MUST NOT exceed 63 characters").
pub const MAX_KEY_LEN: usize = 63;
/// Longest value for most keys (RFC 7143 §6.1 simple-value limit; LIO's VALUE_MAXLEN).
pub const MAX_VALUE_LEN: usize = 255;
/// Longest value for authentication keys carrying large binary or name values
/// (CHAP_C/CHAP_R/CHAP_N up to 1024 binary bytes, SRP/Kerberos/SPKM tokens).
pub const MAX_LONG_VALUE_LEN: usize = 8192;

/// A text-level error: malformed pairs in a received segment, a value that does not
/// decode as its type, or a caller buffer that is too small.
///
/// `offset` fields are byte offsets into the data being parsed (or, for the writer,
/// the position where the rejected pair would have started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextError {
    /// A record has no `=` between key and value.
    MissingEquals {
        /// Start of the record.
        offset: usize,
    },
    /// A record starts with `=`.
    EmptyKey {
        /// Start of the record.
        offset: usize,
    },
    /// A key is longer than [`MAX_KEY_LEN`].
    KeyTooLong {
        /// Start of the record.
        offset: usize,
        /// Length of the key.
        len: usize,
    },
    /// A key contains a byte outside letters, digits and `.-+@_#`.
    InvalidKeyChar {
        /// Offset of the offending byte.
        offset: usize,
        /// The offending byte.
        byte: u8,
    },
    /// A value is longer than [`max_value_len`] allows for its key.
    ValueTooLong {
        /// Start of the record.
        offset: usize,
        /// Length of the value.
        len: usize,
        /// Limit for this key.
        max: usize,
    },
    /// A value is not valid UTF-8.
    InvalidUtf8 {
        /// Start of the value.
        offset: usize,
    },
    /// A value contains a control character (or, when writing, a NUL).
    ControlChar {
        /// Offset of the offending byte.
        offset: usize,
        /// The offending byte.
        byte: u8,
    },
    /// The last record is not terminated by a NUL byte.
    MissingNul {
        /// Start of the unterminated record.
        offset: usize,
    },
    /// The caller's buffer cannot hold the data.
    BufferFull {
        /// Bytes needed in total.
        needed: usize,
        /// Bytes the buffer holds.
        available: usize,
    },
    /// A segment with the C (continue) bit set carried no data.
    EmptyContinuation,
    /// A value that must not be empty is empty.
    EmptyValue,
    /// A number is not a decimal, `0x` hex or `0b` base64 constant.
    InvalidNumber,
    /// A number does not fit in 64 bits.
    NumberOverflow,
    /// A boolean is neither `Yes` nor `No`.
    InvalidBoolean,
    /// A binary value lacks the `0x`/`0b` prefix.
    NotBinary,
    /// A `0x` value has a non-hex digit or no digits.
    InvalidHex,
    /// A `0b` value is not valid base64.
    InvalidBase64,
    /// A decoded binary value does not fit the caller's buffer.
    BinaryTooLong {
        /// Decoded length.
        len: usize,
        /// Room in the buffer.
        max: usize,
    },
    /// A list of values has an empty element (`a,,b`).
    EmptyListItem,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::MissingEquals { offset } => write!(f, "text record at {offset} has no '='"),
            Self::EmptyKey { offset } => write!(f, "text record at {offset} has an empty key"),
            Self::KeyTooLong { offset, len } => {
                write!(f, "key at {offset} is {len} bytes (max {MAX_KEY_LEN})")
            }
            Self::InvalidKeyChar { offset, byte } => {
                write!(f, "invalid key byte {byte:#04x} at {offset}")
            }
            Self::ValueTooLong { offset, len, max } => {
                write!(f, "value of record at {offset} is {len} bytes (max {max})")
            }
            Self::InvalidUtf8 { offset } => write!(f, "value at {offset} is not UTF-8"),
            Self::ControlChar { offset, byte } => {
                write!(f, "control byte {byte:#04x} in value at {offset}")
            }
            Self::MissingNul { offset } => {
                write!(f, "text record at {offset} is not NUL-terminated")
            }
            Self::BufferFull { needed, available } => {
                write!(f, "text needs {needed} bytes, buffer holds {available}")
            }
            Self::EmptyContinuation => f.write_str("empty text segment with the C bit set"),
            Self::EmptyValue => f.write_str("empty value"),
            Self::InvalidNumber => f.write_str("invalid number"),
            Self::NumberOverflow => f.write_str("number exceeds 64 bits"),
            Self::InvalidBoolean => f.write_str("boolean is neither Yes nor No"),
            Self::NotBinary => f.write_str("binary value lacks 0x/0b prefix"),
            Self::InvalidHex => f.write_str("invalid hex constant"),
            Self::InvalidBase64 => f.write_str("invalid base64 constant"),
            Self::BinaryTooLong { len, max } => {
                write!(f, "binary value is {len} bytes (max {max})")
            }
            Self::EmptyListItem => f.write_str("empty item in list of values"),
        }
    }
}

/// Longest value accepted (and written) for `key`: [`MAX_LONG_VALUE_LEN`] for
/// authentication keys whose values are large binaries or names, [`MAX_VALUE_LEN`]
/// for everything else.
pub fn max_value_len(key: &str) -> usize {
    let long = matches!(key, "CHAP_C" | "CHAP_R" | "CHAP_N")
        || key.starts_with("SRP_")
        || key.starts_with("KRB_")
        || key.starts_with("SPKM_");
    if long {
        MAX_LONG_VALUE_LEN
    } else {
        MAX_VALUE_LEN
    }
}

/// RFC 7143 §6.1 key-name characters, plus `#` for the `X#` vendor-key form.
fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'@' | b'_' | b'#')
}

/// Checks a key name; `offset` is where the key starts, for error reports.
fn check_key(key: &[u8], offset: usize) -> Result<(), TextError> {
    if key.is_empty() {
        return Err(TextError::EmptyKey { offset });
    }
    if key.len() > MAX_KEY_LEN {
        return Err(TextError::KeyTooLong {
            offset,
            len: key.len(),
        });
    }
    match key.iter().position(|&b| !is_key_byte(b)) {
        Some(i) => Err(TextError::InvalidKeyChar {
            offset: offset.saturating_add(i),
            byte: key.get(i).copied().unwrap_or(0),
        }),
        None => Ok(()),
    }
}

/// Checks value bytes for NUL and control characters (UTF-8 is checked separately).
fn check_value_bytes(value: &[u8], offset: usize) -> Result<(), TextError> {
    match value.iter().position(|&b| b < 0x20 || b == 0x7f) {
        Some(i) => Err(TextError::ControlChar {
            offset: offset.saturating_add(i),
            byte: value.get(i).copied().unwrap_or(0),
        }),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Iterates over the `key=value` pairs of a complete text (one data segment, or
/// several reassembled with [`TextAssembler`]).
///
/// Empty records (consecutive NULs, as some targets pad) are skipped. The first error
/// ends the iteration: after it `next()` returns `None`.
pub fn pairs(data: &[u8]) -> Pairs<'_> {
    Pairs {
        data,
        pos: 0,
        failed: false,
    }
}

/// Iterator returned by [`pairs`].
#[derive(Debug, Clone)]
pub struct Pairs<'a> {
    data: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Pairs<'a> {
    /// Byte offset of the next record.
    pub fn offset(&self) -> usize {
        self.pos
    }

    fn parse_record(
        &self,
        start: usize,
        record: &'a [u8],
    ) -> Result<(&'a str, &'a str), TextError> {
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or(TextError::MissingEquals { offset: start })?;
        let (key, rest) = record.split_at(eq);
        check_key(key, start)?;
        let value = rest.get(1..).unwrap_or(&[]);
        let value_at = start.saturating_add(eq).saturating_add(1);
        // Keys are ASCII by now, so this cannot fail; map it anyway rather than unwrap.
        let key = core::str::from_utf8(key).map_err(|_| TextError::EmptyKey { offset: start })?;
        let max = max_value_len(key);
        if value.len() > max {
            return Err(TextError::ValueTooLong {
                offset: start,
                len: value.len(),
                max,
            });
        }
        let value =
            core::str::from_utf8(value).map_err(|_| TextError::InvalidUtf8 { offset: value_at })?;
        check_value_bytes(value.as_bytes(), value_at)?;
        Ok((key, value))
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = Result<(&'a str, &'a str), TextError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let start = self.pos;
            let rest = self.data.get(start..)?;
            if rest.is_empty() {
                return None;
            }
            let Some(nul) = rest.iter().position(|&b| b == 0) else {
                self.failed = true;
                return Some(Err(TextError::MissingNul { offset: start }));
            };
            self.pos = start.saturating_add(nul).saturating_add(1);
            let record = rest.get(..nul).unwrap_or(&[]);
            if record.is_empty() {
                continue;
            }
            let item = self.parse_record(start, record);
            if item.is_err() {
                self.failed = true;
            }
            return Some(item);
        }
    }
}

impl core::iter::FusedIterator for Pairs<'_> {}

/// Progress of a [`TextAssembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assembly {
    /// The last segment had the C bit set: more segments follow.
    NeedMore,
    /// C was clear: the text is complete and may be parsed.
    Complete,
}

/// Accumulates the data segments of a text split over several PDUs with the C
/// (continue) bit into a caller buffer, then parses the whole.
///
/// A key or value may be cut anywhere between PDUs (RFC 7143 §6.1), so nothing is
/// parsed before the segment with C=0 arrives. After `Complete`, the next `push`
/// starts a fresh text.
#[derive(Debug)]
pub struct TextAssembler<'b> {
    buf: &'b mut [u8],
    len: usize,
    complete: bool,
}

impl<'b> TextAssembler<'b> {
    /// Uses `buf` as the reassembly area; its length caps the total text size.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self {
            buf,
            len: 0,
            complete: false,
        }
    }

    /// Drops any partial or complete text.
    pub fn reset(&mut self) {
        self.len = 0;
        self.complete = false;
    }

    /// Appends one PDU's data segment; `continues` is the PDU's C bit.
    ///
    /// A complete text must end with NUL. An empty segment with C set is refused: it
    /// makes no progress and would let a peer keep us looping. After an error the
    /// text is unusable; [`reset`](Self::reset) before reusing the assembler.
    pub fn push(&mut self, segment: &[u8], continues: bool) -> Result<Assembly, TextError> {
        if self.complete {
            self.reset();
        }
        if continues && segment.is_empty() {
            return Err(TextError::EmptyContinuation);
        }
        let end = self
            .len
            .checked_add(segment.len())
            .ok_or(TextError::BufferFull {
                needed: usize::MAX,
                available: self.buf.len(),
            })?;
        let available = self.buf.len();
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(TextError::BufferFull {
                needed: end,
                available,
            })?;
        dst.copy_from_slice(segment);
        self.len = end;
        if continues {
            return Ok(Assembly::NeedMore);
        }
        let data = self.data();
        if let Some(&last) = data.last() {
            if last != 0 {
                let offset = data.iter().rposition(|&b| b == 0).map_or(0, |i| i + 1);
                return Err(TextError::MissingNul { offset });
            }
        }
        self.complete = true;
        Ok(Assembly::Complete)
    }

    /// True once a segment with C=0 has been accepted.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The bytes gathered so far.
    pub fn data(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Pairs of the gathered text (meant for use once `Complete`).
    pub fn pairs(&self) -> Pairs<'_> {
        pairs(self.data())
    }
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// Appends `key=value\0` records into a caller buffer. A pair that does not fit is
/// not written at all (the buffer keeps only whole pairs) and reports `BufferFull`.
#[derive(Debug)]
pub struct TextWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

/// Lower-case hex digit for a nibble (values above 15 are masked).
fn hex_digit(nibble: u8) -> u8 {
    b"0123456789abcdef"
        .get(usize::from(nibble & 0x0f))
        .copied()
        .unwrap_or(b'0')
}

/// RFC 4648 base64 character for a sextet (values above 63 are masked).
fn base64_digit(sextet: u32) -> u8 {
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        .get((sextet & 0x3f) as usize)
        .copied()
        .unwrap_or(b'A')
}

impl<'b> TextWriter<'b> {
    /// Writes into `buf`, starting empty.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Size of the underlying buffer.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The records written so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Forgets everything written.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Drops everything after the first `len` bytes (no-op if `len` is beyond the
    /// end); pass an earlier [`len`](Self::len) to undo a group of pushes.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Splits what was written into chunks of at most `max_len` bytes, see [`chunks`].
    pub fn chunks(&self, max_len: usize) -> Chunks<'_> {
        chunks(self.as_bytes(), max_len)
    }

    /// Reserves room for `key=<value_len bytes>\0`, checks the key and length limit,
    /// and lets `fill` write exactly `value_len` value bytes.
    fn push_with(
        &mut self,
        key: &str,
        value_len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), TextError> {
        let start = self.len;
        check_key(key.as_bytes(), start)?;
        let max = max_value_len(key);
        if value_len > max {
            return Err(TextError::ValueTooLong {
                offset: start,
                len: value_len,
                max,
            });
        }
        // key + '=' + value + NUL; all small, but checked so no input can wrap.
        let needed = key
            .len()
            .checked_add(value_len)
            .and_then(|n| n.checked_add(2))
            .and_then(|n| n.checked_add(start))
            .ok_or(TextError::BufferFull {
                needed: usize::MAX,
                available: self.buf.len(),
            })?;
        let available = self.buf.len();
        let dst = self
            .buf
            .get_mut(start..needed)
            .ok_or(TextError::BufferFull { needed, available })?;
        let (k, rest) = dst.split_at_mut(key.len());
        k.copy_from_slice(key.as_bytes());
        let (eq, rest) = rest.split_at_mut(1);
        eq.fill(b'=');
        let (value, nul) = rest.split_at_mut(value_len);
        fill(value);
        nul.fill(0);
        self.len = needed;
        Ok(())
    }

    /// Appends `key=value\0`. The value must be free of control characters (NUL
    /// included) and within [`max_value_len`] for the key.
    pub fn push(&mut self, key: &str, value: &str) -> Result<(), TextError> {
        check_value_bytes(value.as_bytes(), self.len)?;
        self.push_with(key, value.len(), |dst| {
            dst.copy_from_slice(value.as_bytes())
        })
    }

    /// Appends a number in decimal.
    pub fn push_u64(&mut self, key: &str, value: u64) -> Result<(), TextError> {
        let mut digits = [0u8; 20];
        let n = format_decimal(value, &mut digits);
        let text = digits.get(digits.len().saturating_sub(n)..).unwrap_or(&[]);
        self.push_with(key, text.len(), |dst| dst.copy_from_slice(text))
    }

    /// Appends `Yes` or `No`.
    pub fn push_bool(&mut self, key: &str, value: bool) -> Result<(), TextError> {
        self.push(key, if value { "Yes" } else { "No" })
    }

    /// Appends a comma-separated list of values.
    pub fn push_list(&mut self, key: &str, items: &[&str]) -> Result<(), TextError> {
        let mut total: usize = 0;
        for (i, item) in items.iter().enumerate() {
            if item.is_empty() {
                return Err(TextError::EmptyListItem);
            }
            check_value_bytes(item.as_bytes(), self.len)?;
            if item.contains(',') {
                return Err(TextError::EmptyListItem);
            }
            total = total
                .saturating_add(item.len())
                .saturating_add(usize::from(i > 0));
        }
        self.push_with(key, total, |dst| {
            let mut at = 0usize;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    if let Some(b) = dst.get_mut(at) {
                        *b = b',';
                    }
                    at = at.saturating_add(1);
                }
                let end = at.saturating_add(item.len());
                if let Some(d) = dst.get_mut(at..end) {
                    d.copy_from_slice(item.as_bytes());
                }
                at = end;
            }
        })
    }

    /// Appends a binary value as a `0x` hex constant (lower case, two digits a byte).
    pub fn push_hex(&mut self, key: &str, bytes: &[u8]) -> Result<(), TextError> {
        let len = bytes
            .len()
            .checked_mul(2)
            .and_then(|n| n.checked_add(2))
            .ok_or(TextError::BinaryTooLong {
                len: bytes.len(),
                max: MAX_LONG_VALUE_LEN,
            })?;
        self.push_with(key, len, |dst| {
            let (prefix, digits) = dst.split_at_mut(2);
            prefix.copy_from_slice(b"0x");
            for (pair, &b) in digits.chunks_exact_mut(2).zip(bytes) {
                if let [hi, lo] = pair {
                    *hi = hex_digit(b >> 4);
                    *lo = hex_digit(b & 0x0f);
                }
            }
        })
    }

    /// Appends a binary value as a `0b` base64 constant (RFC 4648, with padding).
    pub fn push_base64(&mut self, key: &str, bytes: &[u8]) -> Result<(), TextError> {
        let len = bytes
            .len()
            .checked_add(2)
            .map(|n| n / 3)
            .and_then(|n| n.checked_mul(4))
            .and_then(|n| n.checked_add(2))
            .ok_or(TextError::BinaryTooLong {
                len: bytes.len(),
                max: MAX_LONG_VALUE_LEN,
            })?;
        self.push_with(key, len, |dst| {
            let (prefix, out) = dst.split_at_mut(2);
            prefix.copy_from_slice(b"0b");
            for (quad, group) in out.chunks_exact_mut(4).zip(bytes.chunks(3)) {
                let b0 = group.first().copied().unwrap_or(0);
                let b1 = group.get(1).copied().unwrap_or(0);
                let b2 = group.get(2).copied().unwrap_or(0);
                let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
                let sextet = |shift: u32| base64_digit((n >> shift) & 0x3f);
                if let [c0, c1, c2, c3] = quad {
                    *c0 = sextet(18);
                    *c1 = sextet(12);
                    *c2 = if group.len() > 1 { sextet(6) } else { b'=' };
                    *c3 = if group.len() > 2 { sextet(0) } else { b'=' };
                }
            }
        })
    }
}

/// Writes `value` in decimal right-aligned into `out`, returning the digit count.
fn format_decimal(mut value: u64, out: &mut [u8; 20]) -> usize {
    let mut n = 0usize;
    for slot in out.iter_mut().rev() {
        // `value % 10` is below 10, so the cast cannot truncate.
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
        n += 1;
        if value == 0 {
            break;
        }
    }
    n
}

/// Cuts a text into PDU-sized pieces of at most `max_len` bytes (the peer's
/// MaxRecvDataSegmentLength), yielding `(chunk, continues)` where `continues` is the C
/// bit for that PDU.
///
/// Cuts fall after a NUL whenever a whole record fits, so a receiver that (against
/// the RFC) cannot join a pair split across PDUs still copes; only a record longer
/// than `max_len` is cut in the middle. An empty text yields one empty final chunk,
/// since a Login/Text PDU is sent even with no keys. A `max_len` of 0 is taken as 1.
pub fn chunks(data: &[u8], max_len: usize) -> Chunks<'_> {
    Chunks {
        data,
        pos: 0,
        max_len: max_len.max(1),
        done: false,
    }
}

/// Iterator returned by [`chunks`].
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    data: &'a [u8],
    pos: usize,
    max_len: usize,
    done: bool,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = (&'a [u8], bool);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        if rest.len() <= self.max_len {
            self.done = true;
            self.pos = self.data.len();
            return Some((rest, false));
        }
        let window = rest.get(..self.max_len).unwrap_or(rest);
        let cut = window
            .iter()
            .rposition(|&b| b == 0)
            .map_or(self.max_len, |i| i.saturating_add(1));
        let chunk = rest.get(..cut).unwrap_or(rest);
        self.pos = self.pos.saturating_add(cut);
        Some((chunk, true))
    }
}

impl core::iter::FusedIterator for Chunks<'_> {}

// ---------------------------------------------------------------------------
// Value types (RFC 7143 §6.1)
// ---------------------------------------------------------------------------

/// The reserved constants a responder may answer instead of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// "Reject": the offered value is refused; the key keeps its previous value.
    Reject,
    /// "Irrelevant": the key does not apply in this negotiation.
    Irrelevant,
    /// "NotUnderstood": the key is unknown to the responder.
    NotUnderstood,
}

impl Special {
    /// Recognises a special constant (case-sensitive, as the RFC spells them).
    pub fn from_value(value: &str) -> Option<Self> {
        match value {
            "Reject" => Some(Self::Reject),
            "Irrelevant" => Some(Self::Irrelevant),
            "NotUnderstood" => Some(Self::NotUnderstood),
            _ => None,
        }
    }

    /// The constant as sent on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Reject => "Reject",
            Self::Irrelevant => "Irrelevant",
            Self::NotUnderstood => "NotUnderstood",
        }
    }
}

/// Parses a boolean-value: exactly `Yes` or `No`.
pub fn parse_bool(value: &str) -> Result<bool, TextError> {
    match value {
        "Yes" => Ok(true),
        "No" => Ok(false),
        _ => Err(TextError::InvalidBoolean),
    }
}

/// Parses a numerical value: a decimal constant, a `0x`/`0X` hex constant, or a
/// `0b`/`0B` base64 constant of at most 8 bytes (big-endian).
///
/// Leading zeros are tolerated in decimal (the RFC grammar forbids them, but refusing
/// them would only hurt interoperability).
pub fn parse_number(value: &str) -> Result<u64, TextError> {
    let bytes = value.as_bytes();
    match bytes {
        [] => Err(TextError::EmptyValue),
        [b'0', b'x' | b'X', digits @ ..] => {
            if digits.is_empty() {
                return Err(TextError::InvalidHex);
            }
            digits.iter().try_fold(0u64, |acc, &d| {
                let v = hex_value(d).ok_or(TextError::InvalidHex)?;
                acc.checked_mul(16)
                    .and_then(|a| a.checked_add(u64::from(v)))
                    .ok_or(TextError::NumberOverflow)
            })
        }
        [b'0', b'b' | b'B', ..] => {
            let mut buf = [0u8; 8];
            let n = match decode_binary(value, &mut buf) {
                Ok(n) => n,
                Err(TextError::BinaryTooLong { .. }) => return Err(TextError::NumberOverflow),
                Err(e) => return Err(e),
            };
            Ok(buf
                .get(..n)
                .unwrap_or(&[])
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
        }
        digits => digits.iter().try_fold(0u64, |acc, &d| {
            if !d.is_ascii_digit() {
                return Err(TextError::InvalidNumber);
            }
            acc.checked_mul(10)
                .and_then(|a| a.checked_add(u64::from(d - b'0')))
                .ok_or(TextError::NumberOverflow)
        }),
    }
}

fn hex_value(d: u8) -> Option<u8> {
    match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        b'A'..=b'F' => Some(d - b'A' + 10),
        _ => None,
    }
}

fn base64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Splits a base64 body into its data characters, checking that padding (optional)
/// only appears at the end and is at most two `=`.
fn base64_body(body: &[u8]) -> Result<&[u8], TextError> {
    let data_len = body.iter().rposition(|&c| c != b'=').map_or(0, |i| i + 1);
    let pad = body.len().saturating_sub(data_len);
    let data = body.get(..data_len).unwrap_or(&[]);
    if data.is_empty() || pad > 2 || data.len() % 4 == 1 {
        return Err(TextError::InvalidBase64);
    }
    if pad > 0 && (data.len() + pad) % 4 != 0 {
        return Err(TextError::InvalidBase64);
    }
    Ok(data)
}

/// Decoded length of a `0x`/`0b` binary value, without decoding it. A hex constant
/// with n digits is (n+1)/2 bytes (RFC 7143 §6.1: a leading half byte counts).
pub fn binary_len(value: &str) -> Result<usize, TextError> {
    match value.as_bytes() {
        [b'0', b'x' | b'X', digits @ ..] => {
            if digits.is_empty() || !digits.iter().all(|&d| hex_value(d).is_some()) {
                return Err(TextError::InvalidHex);
            }
            Ok(digits.len() / 2 + digits.len() % 2)
        }
        [b'0', b'b' | b'B', body @ ..] => {
            let data = base64_body(body)?;
            Ok(data.len() / 4 * 3 + (data.len() % 4).saturating_sub(1))
        }
        _ => Err(TextError::NotBinary),
    }
}

/// Decodes a binary value (`0x` hex or `0b` base64) into `out`, returning the number
/// of bytes written. Base64 padding is optional; unused trailing bits are ignored.
pub fn decode_binary(value: &str, out: &mut [u8]) -> Result<usize, TextError> {
    let len = binary_len(value)?;
    if len > out.len() {
        return Err(TextError::BinaryTooLong {
            len,
            max: out.len(),
        });
    }
    match value.as_bytes() {
        [b'0', b'x' | b'X', digits @ ..] => {
            // An odd digit count means the first byte is a single low nibble.
            let (head, tail) = digits.split_at(digits.len() % 2);
            let mut n = 0usize;
            if let Some(&d) = head.first() {
                let slot = out.get_mut(n).ok_or(TextError::InvalidHex)?;
                *slot = hex_value(d).ok_or(TextError::InvalidHex)?;
                n += 1;
            }
            for pair in tail.chunks_exact(2) {
                let hi = pair.first().copied().and_then(hex_value);
                let lo = pair.get(1).copied().and_then(hex_value);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(TextError::InvalidHex);
                };
                let slot = out.get_mut(n).ok_or(TextError::InvalidHex)?;
                *slot = (hi << 4) | lo;
                n += 1;
            }
            Ok(n)
        }
        [b'0', b'b' | b'B', body @ ..] => {
            let data = base64_body(body)?;
            let mut acc: u32 = 0;
            let mut bits: u32 = 0;
            let mut n = 0usize;
            for &c in data {
                let v = base64_value(c).ok_or(TextError::InvalidBase64)?;
                acc = ((acc << 6) | u32::from(v)) & 0x00ff_ffff;
                bits += 6;
                if bits >= 8 {
                    bits -= 8;
                    let slot = out.get_mut(n).ok_or(TextError::InvalidBase64)?;
                    // Masked to one byte, so the cast only drops zero bits.
                    *slot = ((acc >> bits) & 0xff) as u8;
                    n += 1;
                }
            }
            Ok(n)
        }
        _ => Err(TextError::NotBinary),
    }
}

/// Iterates over the items of a list-of-values (`a,b,c`). Items are not checked; use
/// [`check_list`] to refuse empty items.
pub fn list_items(value: &str) -> core::str::Split<'_, char> {
    value.split(',')
}

/// Checks that a list-of-values has no empty item.
pub fn check_list(value: &str) -> Result<(), TextError> {
    if list_items(value).any(str::is_empty) {
        Err(TextError::EmptyListItem)
    } else {
        Ok(())
    }
}

/// True if `item` is one of the list's values.
pub fn list_contains(value: &str, item: &str) -> bool {
    list_items(value).any(|v| v == item)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn collect(data: &[u8]) -> Vec<Result<(&str, &str), TextError>> {
        pairs(data).collect()
    }

    #[test]
    fn parses_pairs() {
        let data = b"HeaderDigest=None\0MaxRecvDataSegmentLength=8192\0TargetAlias=\0";
        let got = collect(data);
        assert_eq!(
            got,
            [
                Ok(("HeaderDigest", "None")),
                Ok(("MaxRecvDataSegmentLength", "8192")),
                Ok(("TargetAlias", "")),
            ]
        );
    }

    #[test]
    fn value_may_contain_equals() {
        assert_eq!(collect(b"CHAP_C=0bAA==\0"), [Ok(("CHAP_C", "0bAA=="))]);
    }

    #[test]
    fn empty_records_skipped_and_empty_data_is_empty() {
        assert!(collect(b"").is_empty());
        assert!(collect(b"\0\0").is_empty());
        assert_eq!(collect(b"\0A=1\0\0"), [Ok(("A", "1"))]);
    }

    #[test]
    fn missing_nul_at_end() {
        let got = collect(b"A=1\0B=2");
        assert_eq!(
            got,
            [Ok(("A", "1")), Err(TextError::MissingNul { offset: 4 })]
        );
    }

    #[test]
    fn missing_equals_and_empty_key() {
        assert_eq!(
            collect(b"A=1\0Bogus\0C=3\0"),
            [Ok(("A", "1")), Err(TextError::MissingEquals { offset: 4 })]
        );
        assert_eq!(collect(b"=x\0"), [Err(TextError::EmptyKey { offset: 0 })]);
    }

    #[test]
    fn key_length_limit() {
        let mut data = Vec::new();
        data.extend_from_slice(&[b'K'; 63]);
        data.extend_from_slice(b"=v\0");
        assert!(collect(&data)[0].is_ok());
        data.insert(0, b'K');
        assert_eq!(
            collect(&data),
            [Err(TextError::KeyTooLong { offset: 0, len: 64 })]
        );
    }

    #[test]
    fn key_characters() {
        assert_eq!(
            collect(b"X-com.example.Foo@bar+1_x=1\0X#Reg=2\0"),
            [Ok(("X-com.example.Foo@bar+1_x", "1")), Ok(("X#Reg", "2"))]
        );
        assert_eq!(
            collect(b"A=1\0Bad Key=1\0"),
            [
                Ok(("A", "1")),
                Err(TextError::InvalidKeyChar {
                    offset: 7,
                    byte: b' '
                })
            ]
        );
    }

    #[test]
    fn value_length_limits_per_key() {
        let mut data = Vec::new();
        data.extend_from_slice(b"TargetAlias=");
        data.extend_from_slice(&[b'a'; 255]);
        data.push(0);
        assert!(collect(&data)[0].is_ok());
        data.pop();
        data.push(b'a');
        data.push(0);
        assert_eq!(
            collect(&data),
            [Err(TextError::ValueTooLong {
                offset: 0,
                len: 256,
                max: 255
            })]
        );
        // CHAP_C carries up to 1024 binary bytes: 2050 hex characters.
        let mut chap = Vec::new();
        chap.extend_from_slice(b"CHAP_C=0x");
        chap.extend_from_slice(&[b'a'; 2048]);
        chap.push(0);
        assert!(collect(&chap)[0].is_ok());
        let mut huge = Vec::new();
        huge.extend_from_slice(b"CHAP_R=0x");
        huge.extend_from_slice(&[b'a'; 8192]);
        huge.push(0);
        assert!(matches!(
            collect(&huge)[0],
            Err(TextError::ValueTooLong { max: 8192, .. })
        ));
    }

    #[test]
    fn utf8_and_control_characters() {
        assert_eq!(
            collect("TargetAlias=Plattenkäfig\0".as_bytes()),
            [Ok(("TargetAlias", "Plattenkäfig"))]
        );
        assert_eq!(
            collect(b"TargetAlias=\xff\xfe\0"),
            [Err(TextError::InvalidUtf8 { offset: 12 })]
        );
        assert_eq!(
            collect(b"TargetAlias=a\nb\0"),
            [Err(TextError::ControlChar {
                offset: 13,
                byte: b'\n'
            })]
        );
    }

    #[test]
    fn iteration_stops_after_error() {
        let mut it = pairs(b"=\0A=1\0");
        assert!(matches!(it.next(), Some(Err(_))));
        assert_eq!(it.next(), None);
        assert_eq!(it.next(), None);
    }

    #[test]
    fn writer_round_trip() {
        let mut buf = [0u8; 256];
        let mut w = TextWriter::new(&mut buf);
        w.push("InitiatorName", "iqn.2024-01.rs.iscsi:host")
            .unwrap();
        w.push_u64("MaxBurstLength", 262144).unwrap();
        w.push_bool("InitialR2T", false).unwrap();
        w.push_list("HeaderDigest", &["CRC32C", "None"]).unwrap();
        w.push_u64("DefaultTime2Wait", 0).unwrap();
        assert_eq!(
            w.as_bytes(),
            b"InitiatorName=iqn.2024-01.rs.iscsi:host\0MaxBurstLength=262144\0\
InitialR2T=No\0HeaderDigest=CRC32C,None\0DefaultTime2Wait=0\0"
        );
        let got = collect(w.as_bytes());
        assert_eq!(got.len(), 5);
        assert_eq!(got[3], Ok(("HeaderDigest", "CRC32C,None")));
        w.push_u64("X", u64::MAX).unwrap();
        assert_eq!(
            pairs(w.as_bytes()).last(),
            Some(Ok(("X", "18446744073709551615")))
        );
    }

    #[test]
    fn writer_overflow_leaves_whole_pairs() {
        let mut buf = [0u8; 10];
        let mut w = TextWriter::new(&mut buf);
        w.push("A", "1234").unwrap(); // 7 bytes
        assert_eq!(
            w.push("B", "12"),
            Err(TextError::BufferFull {
                needed: 12,
                available: 10
            })
        );
        assert_eq!(w.len(), 7);
        assert_eq!(w.as_bytes(), b"A=1234\0");
        w.push("B", "").unwrap(); // exactly fits: 3 bytes
        assert_eq!(w.len(), 10);
    }

    #[test]
    fn writer_refuses_bad_keys_and_values() {
        let mut buf = [0u8; 512];
        let mut w = TextWriter::new(&mut buf);
        assert_eq!(w.push("", "x"), Err(TextError::EmptyKey { offset: 0 }));
        assert!(matches!(
            w.push("A B", "x"),
            Err(TextError::InvalidKeyChar { byte: b' ', .. })
        ));
        assert!(matches!(
            w.push("A", "x\0y"),
            Err(TextError::ControlChar { byte: 0, .. })
        ));
        let long = [b'v'; 256];
        let long = core::str::from_utf8(&long).unwrap();
        assert!(matches!(
            w.push("A", long),
            Err(TextError::ValueTooLong { max: 255, .. })
        ));
        assert_eq!(w.push_list("A", &["x", ""]), Err(TextError::EmptyListItem));
        assert!(w.is_empty());
    }

    #[test]
    fn writer_hex_and_base64() {
        let mut buf = [0u8; 128];
        let mut w = TextWriter::new(&mut buf);
        w.push_hex("CHAP_C", &[0x00, 0xab, 0x10]).unwrap();
        w.push_base64("CHAP_R", b"hello").unwrap();
        w.push_base64("K1", b"").unwrap();
        w.push_base64("K2", b"ab").unwrap();
        w.push_base64("K3", b"abc").unwrap();
        assert_eq!(
            w.as_bytes(),
            b"CHAP_C=0x00ab10\0CHAP_R=0baGVsbG8=\0K1=0b\0K2=0bYWI=\0K3=0bYWJj\0"
        );
        let mut out = [0u8; 8];
        assert_eq!(decode_binary("0baGVsbG8=", &mut out), Ok(5));
        assert_eq!(&out[..5], b"hello");
    }

    #[test]
    fn chunks_split_at_record_boundaries() {
        let data = b"AAAA=1\0BB=22\0C=333\0";
        let got: Vec<_> = chunks(data, 10).collect();
        assert_eq!(
            got,
            [
                (&b"AAAA=1\0"[..], true),
                (&b"BB=22\0"[..], true),
                (&b"C=333\0"[..], false)
            ]
        );
        let joined: Vec<u8> = got.iter().flat_map(|(c, _)| c.iter().copied()).collect();
        assert_eq!(joined, data);
        // Everything fits: one final chunk.
        assert_eq!(chunks(data, 100).count(), 1);
        // Empty text: one empty final chunk.
        assert_eq!(chunks(b"", 8).collect::<Vec<_>>(), [(&b""[..], false)]);
    }

    #[test]
    fn chunks_hard_split_long_record_and_reassemble() {
        let mut buf = [0u8; 4096];
        let mut w = TextWriter::new(&mut buf);
        w.push_hex("CHAP_C", &[0x5a; 1024]).unwrap();
        w.push("CHAP_N", "user").unwrap();
        let mut area = [0u8; 4096];
        let mut asm = TextAssembler::new(&mut area);
        let mut last = Assembly::NeedMore;
        let mut n = 0;
        for (chunk, more) in w.chunks(512) {
            assert!(chunk.len() <= 512);
            last = asm.push(chunk, more).unwrap();
            n += 1;
        }
        assert_eq!(last, Assembly::Complete);
        assert!(n >= 5);
        let got: Vec<_> = asm.pairs().collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], Ok(("CHAP_N", "user")));
        let (_, c) = got[0].unwrap();
        assert_eq!(binary_len(c), Ok(1024));
    }

    #[test]
    fn chunks_zero_max_is_one_byte() {
        let got: Vec<_> = chunks(b"A=\0", 0).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], (&b"\0"[..], false));
    }

    #[test]
    fn assembler_joins_split_pairs() {
        let mut area = [0u8; 64];
        let mut asm = TextAssembler::new(&mut area);
        assert_eq!(asm.push(b"TargetNa", true), Ok(Assembly::NeedMore));
        assert_eq!(asm.push(b"me=iqn.x\0Max", true), Ok(Assembly::NeedMore));
        assert!(!asm.is_complete());
        assert_eq!(asm.push(b"Connections=1\0", false), Ok(Assembly::Complete));
        let got: Vec<_> = asm.pairs().collect();
        assert_eq!(
            got,
            [Ok(("TargetName", "iqn.x")), Ok(("MaxConnections", "1"))]
        );
        // The next push starts over.
        assert_eq!(asm.push(b"A=1\0", false), Ok(Assembly::Complete));
        assert_eq!(asm.data(), b"A=1\0");
    }

    #[test]
    fn assembler_errors() {
        let mut area = [0u8; 8];
        let mut asm = TextAssembler::new(&mut area);
        assert_eq!(asm.push(b"", true), Err(TextError::EmptyContinuation));
        assert_eq!(asm.push(b"A=1\0", true), Ok(Assembly::NeedMore));
        assert_eq!(
            asm.push(b"B=22\0", false),
            Err(TextError::BufferFull {
                needed: 9,
                available: 8
            })
        );
        asm.reset();
        assert_eq!(
            asm.push(b"A=1\0B=2", false),
            Err(TextError::MissingNul { offset: 4 })
        );
        asm.reset();
        assert_eq!(asm.push(b"", false), Ok(Assembly::Complete));
        assert_eq!(asm.pairs().count(), 0);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("0"), Ok(0));
        assert_eq!(parse_number("8192"), Ok(8192));
        assert_eq!(parse_number("007"), Ok(7));
        assert_eq!(parse_number("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            parse_number("18446744073709551616"),
            Err(TextError::NumberOverflow)
        );
        assert_eq!(parse_number("0x2000"), Ok(8192));
        assert_eq!(parse_number("0XfFfF"), Ok(0xffff));
        assert_eq!(parse_number("0x00000000000000000001"), Ok(1));
        assert_eq!(
            parse_number("0x10000000000000000"),
            Err(TextError::NumberOverflow)
        );
        assert_eq!(parse_number("0x"), Err(TextError::InvalidHex));
        assert_eq!(parse_number("0xg"), Err(TextError::InvalidHex));
        assert_eq!(parse_number("0bIAA="), Ok(0x2000));
        assert_eq!(
            parse_number("0bAQIDBAUGBwgJ"),
            Err(TextError::NumberOverflow)
        );
        assert_eq!(parse_number(""), Err(TextError::EmptyValue));
        assert_eq!(parse_number("-1"), Err(TextError::InvalidNumber));
        assert_eq!(parse_number("12a"), Err(TextError::InvalidNumber));
        assert_eq!(parse_number(" 1"), Err(TextError::InvalidNumber));
        assert_eq!(parse_number("Reject"), Err(TextError::InvalidNumber));
    }

    #[test]
    fn booleans_and_specials() {
        assert_eq!(parse_bool("Yes"), Ok(true));
        assert_eq!(parse_bool("No"), Ok(false));
        assert_eq!(parse_bool("yes"), Err(TextError::InvalidBoolean));
        assert_eq!(parse_bool(""), Err(TextError::InvalidBoolean));
        assert_eq!(Special::from_value("Reject"), Some(Special::Reject));
        assert_eq!(Special::from_value("Irrelevant"), Some(Special::Irrelevant));
        assert_eq!(
            Special::from_value("NotUnderstood"),
            Some(Special::NotUnderstood)
        );
        assert_eq!(Special::from_value("None"), None);
        assert_eq!(Special::from_value("reject"), None);
        for s in [Special::Reject, Special::Irrelevant, Special::NotUnderstood] {
            assert_eq!(Special::from_value(s.as_str()), Some(s));
        }
    }

    #[test]
    fn binary_hex() {
        let mut out = [0u8; 4];
        assert_eq!(decode_binary("0x0102ff", &mut out), Ok(3));
        assert_eq!(&out[..3], &[1, 2, 0xff]);
        // Odd digit count: the leading half byte is its own byte.
        assert_eq!(decode_binary("0Xabc", &mut out), Ok(2));
        assert_eq!(&out[..2], &[0x0a, 0xbc]);
        assert_eq!(binary_len("0xabc"), Ok(2));
        assert_eq!(
            decode_binary("0x0102030405", &mut out),
            Err(TextError::BinaryTooLong { len: 5, max: 4 })
        );
        assert_eq!(
            decode_binary("0x12z4", &mut out),
            Err(TextError::InvalidHex)
        );
        assert_eq!(decode_binary("0x", &mut out), Err(TextError::InvalidHex));
        assert_eq!(decode_binary("1234", &mut out), Err(TextError::NotBinary));
        assert_eq!(decode_binary("", &mut out), Err(TextError::NotBinary));
    }

    #[test]
    fn binary_base64() {
        let mut out = [0u8; 16];
        for (text, want) in [
            ("0bTWFu", &b"Man"[..]),
            ("0bTWE=", b"Ma"),
            ("0bTWE", b"Ma"),
            ("0BTQ==", b"M"),
            ("0bTQ", b"M"),
            ("0b+/+/", &[0xfb, 0xff, 0xbf]),
        ] {
            let n = decode_binary(text, &mut out).unwrap();
            assert_eq!(&out[..n], want, "{text}");
            assert_eq!(binary_len(text), Ok(want.len()));
        }
        for bad in [
            "0b", "0b=", "0bT", "0bTQ===", "0bTQ=", "0bT=Q=", "0bTW-u", "0bTWFuT",
        ] {
            assert_eq!(
                decode_binary(bad, &mut out),
                Err(TextError::InvalidBase64),
                "{bad}"
            );
        }
    }

    #[test]
    fn lists() {
        let items: Vec<_> = list_items("CRC32C,None").collect();
        assert_eq!(items, ["CRC32C", "None"]);
        assert!(list_contains("CHAP,None", "None"));
        assert!(!list_contains("CHAP,None", "SRP"));
        assert_eq!(check_list("a,b"), Ok(()));
        assert_eq!(check_list("a,,b"), Err(TextError::EmptyListItem));
        assert_eq!(check_list(""), Err(TextError::EmptyListItem));
    }

    #[test]
    fn error_display_is_informative() {
        let mut s = std::string::String::new();
        use core::fmt::Write;
        write!(s, "{}", TextError::KeyTooLong { offset: 3, len: 70 }).unwrap();
        assert!(s.contains("70"));
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            for item in pairs(&data) {
                let _ = item;
            }
            let mut area = [0u8; 256];
            let mut asm = TextAssembler::new(&mut area);
            let _ = asm.push(&data, false);
        }

        #[test]
        fn values_never_panic(s in "\\PC{0,40}") {
            let mut out = [0u8; 8];
            let _ = parse_number(&s);
            let _ = decode_binary(&s, &mut out);
            let _ = binary_len(&s);
        }

        #[test]
        fn hex_and_base64_round_trip(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..100)) {
            let mut buf = [0u8; 512];
            let mut w = TextWriter::new(&mut buf);
            w.push_hex("H", &bytes).unwrap();
            w.push_base64("B", &bytes).unwrap();
            let mut out = [0u8; 100];
            for item in pairs(w.as_bytes()) {
                let (_, v) = item.unwrap();
                let n = decode_binary(v, &mut out).unwrap();
                proptest::prop_assert_eq!(&out[..n], &bytes[..]);
            }
        }

        #[test]
        fn chunks_reassemble(n in 0usize..40, max in 1usize..64) {
            let mut buf = [0u8; 2048];
            let mut w = TextWriter::new(&mut buf);
            for i in 0..n {
                w.push_u64("Key", i as u64 * 1_000_003).unwrap();
            }
            let mut area = [0u8; 2048];
            let mut asm = TextAssembler::new(&mut area);
            let mut done = false;
            for (chunk, more) in w.chunks(max) {
                proptest::prop_assert!(chunk.len() <= max);
                proptest::prop_assert!(!done);
                done = asm.push(chunk, more).unwrap() == Assembly::Complete;
            }
            proptest::prop_assert!(done);
            proptest::prop_assert_eq!(asm.data(), w.as_bytes());
            proptest::prop_assert_eq!(asm.pairs().count(), n);
        }

        #[test]
        fn decimal_round_trip(v in proptest::prelude::any::<u64>()) {
            let mut buf = [0u8; 64];
            let mut w = TextWriter::new(&mut buf);
            w.push_u64("N", v).unwrap();
            let (_, text) = pairs(w.as_bytes()).next().unwrap().unwrap();
            proptest::prop_assert_eq!(parse_number(text), Ok(v));
        }
    }
}
