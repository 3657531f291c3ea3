//! Primitive readers and writers: integers, variable byte integers, strings, binary data.
//!
//! Reading works on a frozen [`Bytes`] holding exactly one packet body, so strings
//! and binary fields can be sliced out of it without copying. Writing goes through
//! the [`Sink`] trait, implemented once by a byte counter and once by the real
//! writer: each packet describes its layout once and gets both `encoded_len` and
//! `encode` from it, so the two can never disagree.

use bytes::{Buf, BufMut, Bytes, BytesMut};

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
    if raw.contains(&0) {
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
/// also validates) or the output buffer.
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
}

/// Counts bytes instead of writing them, and records the first encoding error.
#[derive(Default)]
pub(crate) struct Counter {
    pub(crate) len: usize,
    pub(crate) error: Option<EncodeError>,
}

impl Counter {
    /// The counted length, or the first error met.
    pub(crate) fn result(self) -> Result<usize, EncodeError> {
        match self.error {
            Some(e) => Err(e),
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
}

impl Sink for BytesMut {
    fn u8(&mut self, v: u8) {
        self.put_u8(v);
    }
    fn u16(&mut self, v: u16) {
        self.put_u16(v);
    }
    fn u32(&mut self, v: u32) {
        self.put_u32(v);
    }
    fn var_int(&mut self, v: u32) {
        let mut v = v;
        loop {
            let mut byte = (v & 0x7F) as u8;
            v >>= 7;
            if v > 0 {
                byte |= 0x80;
            }
            self.put_u8(byte);
            if v == 0 {
                break;
            }
        }
    }
    fn raw(&mut self, v: &[u8]) {
        self.extend_from_slice(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_var_int(v: u32) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.var_int(v);
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
