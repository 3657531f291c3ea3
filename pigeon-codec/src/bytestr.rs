use std::{borrow::Borrow, fmt, ops::Deref, str};

use bytes::Bytes;

/// An immutable UTF-8 string backed by [`Bytes`]: cloning and slicing are
/// reference-count bumps, so a decoded topic name shares the read buffer.
///
/// ```
/// use pigeon_codec::ByteStr;
/// let topic = ByteStr::from("a/b");
/// assert_eq!(&*topic, "a/b");
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteStr(Bytes);

impl ByteStr {
    /// Wraps bytes that are UTF-8; fails otherwise. ASCII (the usual topic) is
    /// checked a word at a time.
    pub fn from_utf8(bytes: Bytes) -> Result<Self, str::Utf8Error> {
        if !bytes.is_ascii() {
            str::from_utf8(&bytes)?;
        }
        Ok(Self(bytes))
    }

    /// A string from a `&'static str`, without allocating.
    pub const fn from_static(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }

    /// The string's view.
    // The workspace's one `unsafe` (denied everywhere else); justified below.
    #[allow(unsafe_code)]
    pub fn as_str(&self) -> &str {
        // SAFETY: the field is private and `Bytes` is immutable, and every constructor
        // either takes a `str` (`from_static`, `From<&str>`, `From<String>`, `Default`
        // gives empty bytes) or checks the bytes are UTF-8 (`from_utf8`). So the bytes
        // are valid UTF-8 for the whole life of the value. Checking again here would
        // cost a pass over the topic on every comparison in the routing hot path.
        unsafe { str::from_utf8_unchecked(&self.0) }
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl Deref for ByteStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ByteStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for ByteStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for ByteStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ByteStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for ByteStr {
    fn from(s: &str) -> Self {
        Self(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for ByteStr {
    fn from(s: String) -> Self {
        Self(Bytes::from(s))
    }
}

impl PartialEq<str> for ByteStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ByteStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
