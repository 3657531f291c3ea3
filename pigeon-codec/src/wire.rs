//! Primitive readers and writers: integers, variable byte integers, strings, binary data.
//!
//! Reading works on a frozen [`Bytes`] holding exactly one packet body, so strings
//! and binary fields can be sliced out of it without copying. Writing goes through
//! the [`Sink`] trait, implemented once by a byte counter and once by the real
//! writer: each packet describes its layout once and gets both `encoded_len` and
//! `encode` from it, so the two can never disagree.

use bytes::{Buf, Bytes, BytesMut};

use crate::{DecodeError, EncodeError};

/// The largest value a variable byte integer can hold (spec §1.5.5).
pub(crate) const MAX_VAR_INT: u32 = 268_435_455;

/// A cursor over one packet body.
pub(crate) struct Reader {
    buf: Bytes,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Self {
        Self { buf }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Fails with `TrailingBytes` unless everything was read.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.buf.try_get_u8().map_err(|_| DecodeError::Truncated)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.buf.try_get_u16().map_err(|_| DecodeError::Truncated)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.buf.try_get_u32().map_err(|_| DecodeError::Truncated)
    }

    /// A variable byte integer: at most 4 bytes, minimally encoded.
    pub(crate) fn var_int(&mut self) -> Result<u32, DecodeError> {
        match parse_var_int(&self.buf) {
            VarInt::Value { value, len } => {
                self.buf.advance(len);
                Ok(value)
            }
            VarInt::Incomplete => Err(DecodeError::Truncated),
            VarInt::Malformed => Err(DecodeError::MalformedVarInt),
        }
    }

    /// `n` bytes, sliced out of the packet (no copy).
    pub(crate) fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(self.buf.split_to(n))
    }

    /// Everything left (the PUBLISH payload).
    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// A sub-reader over the next `n` bytes (a property block).
    pub(crate) fn sub(&mut self, n: usize) -> Result<Reader, DecodeError> {
        self.take(n).map(Reader::new)
    }

    /// Binary data: a two-byte length, then the bytes.
    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }

    /// A UTF-8 string copied into a `String`.
    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.u16()?;
        let len = usize::from(len);
        let raw = self.buf.get(..len).ok_or(DecodeError::Truncated)?;
        let s = check_utf8(raw)?.to_owned();
        self.buf.advance(len);
        Ok(s)
    }
}

/// Checks the spec's rules for a UTF-8 encoded string (§1.5.4): well-formed UTF-8
/// (which also excludes the surrogates U+D800..U+DFFF, [MQTT-1.5.4-1]) and no U+0000
/// [MQTT-1.5.4-2].
///
/// Control characters and non-characters are allowed on purpose: the spec says
/// senders SHOULD NOT use them and receivers MAY close the connection, and real
/// clients do send them in client ids and user properties; refusing them would
/// break those clients for no safety gain.
pub(crate) fn check_utf8(raw: &[u8]) -> Result<&str, DecodeError> {
    let s = std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)?;
    // The word scan beats memchr's set-up cost on the short strings MQTT carries.
    if crate::topic::has_nul(raw) {
        return Err(DecodeError::NullCharacter);
    }
    Ok(s)
}

/// The outcome of parsing a variable byte integer from a prefix of a buffer.
pub(crate) enum VarInt {
    Value { value: u32, len: usize },
    Incomplete,
    Malformed,
}

/// Parses a variable byte integer from the start of `buf`. More than four bytes,
/// or a non-minimal encoding [MQTT-1.5.5-1], is malformed.
pub(crate) fn parse_var_int(buf: &[u8]) -> VarInt {
    let mut value: u32 = 0;
    for (i, &byte) in buf.iter().take(4).enumerate() {
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            // A last byte of 0 after a first byte means the value fit in fewer bytes.
            if i > 0 && byte == 0 {
                return VarInt::Malformed;
            }
            return VarInt::Value { value, len: i + 1 };
        }
    }
    if buf.len() >= 4 {
        VarInt::Malformed
    } else {
        VarInt::Incomplete
    }
}

/// The number of bytes the variable byte integer `value` takes.
pub(crate) fn var_int_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Where a packet's layout is written: a [`Counter`] (for `encoded_len`, which
/// also validates) or a [`Writer`] over the output buffer.
pub(crate) trait Sink {
    fn u8(&mut self, v: u8);
    fn u16(&mut self, v: u16);
    fn u32(&mut self, v: u32);
    fn var_int(&mut self, v: u32);
    /// Raw bytes with no length prefix (a payload).
    fn raw(&mut self, v: &[u8]);
    /// A length-prefixed string or binary field. The counting pass has already
    /// refused anything longer than 65535 bytes before the writing pass runs.
    fn prefixed(&mut self, v: &[u8]) {
        self.u16(u16::try_from(v.len()).unwrap_or(u16::MAX));
        self.raw(v);
    }
    /// Reports a value that cannot be encoded; only the counting pass records it.
    fn fail(&mut self, _error: EncodeError) {}
    /// A property block: its length as a variable byte integer, then what
    /// `emit` writes. The counting pass measures each block and remembers its
    /// length, so the writing pass does not measure it again.
    fn block<F: Fn(&mut Self)>(&mut self, emit: F)
    where
        Self: Sized;
}

/// The lengths of a packet's property blocks, in the order they are written.
/// A packet has at most two (CONNECT and its will); more spill to the heap.
#[derive(Default)]
pub(crate) struct Blocks {
    inline: [u32; 2],
    spill: Vec<u32>,
    count: usize,
}

impl Blocks {
    fn push(&mut self, len: u32) {
        match self.inline.get_mut(self.count) {
            Some(slot) => *slot = len,
            None => self.spill.push(len),
        }
        self.count += 1;
    }

    fn get(&self, index: usize) -> u32 {
        match self.inline.get(index) {
            Some(&len) => len,
            None => self
                .spill
                .get(index - self.inline.len())
                .copied()
                .unwrap_or(0),
        }
    }
}

/// Counts bytes instead of writing them, and records the first encoding error.
#[derive(Default)]
pub(crate) struct Counter {
    pub(crate) len: usize,
    pub(crate) error: Option<EncodeError>,
    pub(crate) blocks: Blocks,
}

impl Counter {
    /// The counted length, or the first error met.
    pub(crate) fn result(&self) -> Result<usize, EncodeError> {
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(self.len),
        }
    }
}

impl Sink for Counter {
    fn u8(&mut self, _: u8) {
        self.len += 1;
    }
    fn u16(&mut self, _: u16) {
        self.len += 2;
    }
    fn u32(&mut self, _: u32) {
        self.len += 4;
    }
    fn var_int(&mut self, v: u32) {
        if v > MAX_VAR_INT {
            self.fail(EncodeError::OutOfRange(
                "variable byte integer above 268435455",
            ));
        }
        self.len += var_int_len(v as usize);
    }
    fn raw(&mut self, v: &[u8]) {
        self.len += v.len();
    }
    fn prefixed(&mut self, v: &[u8]) {
        if v.len() > usize::from(u16::MAX) {
            self.fail(EncodeError::StringTooLong(v.len()));
        }
        self.len += 2 + v.len();
    }
    fn fail(&mut self, error: EncodeError) {
        self.error.get_or_insert(error);
    }
    fn block<F: Fn(&mut Self)>(&mut self, emit: F) {
        let start = self.len;
        emit(self);
        let len = u32::try_from(self.len - start).unwrap_or(u32::MAX);
        self.var_int(len);
        self.blocks.push(len);
    }
}

/// Writes into the output buffer, using the block lengths a [`Counter`] measured.
pub(crate) struct Writer<'a> {
    buf: &'a mut BytesMut,
    blocks: &'a Blocks,
    next_block: usize,
}

impl<'a> Writer<'a> {
    /// A writer appending to `buf`, after `counter` ran over the same layout.
    pub(crate) fn new(buf: &'a mut BytesMut, counter: &'a Counter) -> Self {
        Self {
            buf,
            blocks: &counter.blocks,
            next_block: 0,
        }
    }
}

impl Sink for Writer<'_> {
    fn u8(&mut self, v: u8) {
        self.buf.extend_from_slice(&[v]);
    }
    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn var_int(&mut self, v: u32) {
        let mut bytes = [0u8; 4];
        let mut n = 0;
        let mut v = v;
        for slot in bytes.iter_mut() {
            let mut byte = (v & 0x7F) as u8;
            v >>= 7;
            if v > 0 {
                byte |= 0x80;
            }
            *slot = byte;
            n += 1;
            if v == 0 {
                break;
            }
        }
        self.buf.extend_from_slice(bytes.get(..n).unwrap_or(&bytes));
    }
    fn raw(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    fn block<F: Fn(&mut Self)>(&mut self, emit: F) {
        let len = self.blocks.get(self.next_block);
        self.next_block += 1;
        self.var_int(len);
        emit(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_var_int(v: u32) -> Vec<u8> {
        let mut b = BytesMut::new();
        let counter = Counter::default();
        Writer::new(&mut b, &counter).var_int(v);
        b.to_vec()
    }

    #[test]
    fn var_int_boundaries_round_trip() {
        for (v, len) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (2_097_151, 3),
            (2_097_152, 4),
            (MAX_VAR_INT, 4),
        ] {
            let bytes = encode_var_int(v);
            assert_eq!(bytes.len(), len, "{v}");
            assert_eq!(var_int_len(v as usize), len);
            match parse_var_int(&bytes) {
                VarInt::Value { value, len: l } => assert_eq!((value, l), (v, len)),
                _ => panic!("{v} did not parse"),
            }
        }
    }

    #[test]
    fn var_int_rejects_five_bytes_and_non_minimal() {
        assert!(matches!(
            parse_var_int(&[0xFF, 0xFF, 0xFF, 0xFF, 0x7F]),
            VarInt::Malformed
        ));
        assert!(matches!(parse_var_int(&[0x80, 0x00]), VarInt::Malformed));
        assert!(matches!(parse_var_int(&[0x80, 0x80]), VarInt::Incomplete));
    }

    #[test]
    fn strings_reject_surrogates_and_nul() {
        assert_eq!(check_utf8(b"a\0b"), Err(DecodeError::NullCharacter));
        // U+D800 encoded as if it were a scalar value.
        assert_eq!(
            check_utf8(&[0xED, 0xA0, 0x80]),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(check_utf8("\u{1}ok\u{7f}".as_bytes()), Ok("\u{1}ok\u{7f}"));
    }
}
