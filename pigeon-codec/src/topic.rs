//! Topic names and filters: validation, matching, shared subscriptions.
//!
//! ```
//! use pigeon_codec::topic;
//! assert!(topic::matches("sport/+/player1", "sport/tennis/player1"));
//! assert!(!topic::matches("#", "$SYS/uptime"));
//! assert_eq!(topic::parse_shared("$share/g1/a/#"), Some(("g1", "a/#")));
//! ```

/// The most levels a topic name or filter may have before the broker refuses it.
pub const MAX_TOPIC_LEVELS: usize = 128;

const SHARE_PREFIX: &str = "$share/";

/// Counts levels, stopping early once the limit is passed.
fn within_level_limit(s: &str) -> bool {
    s.bytes()
        .filter(|&b| b == b'/')
        .take(MAX_TOPIC_LEVELS)
        .count()
        < MAX_TOPIC_LEVELS
}

/// A topic name is non-empty, has no `+`/`#` and no U+0000, and at most [`MAX_TOPIC_LEVELS`] levels.
///
/// ```
/// use pigeon_codec::topic::valid_topic_name;
/// assert!(valid_topic_name("a/b/c"));
/// assert!(!valid_topic_name("a/+/c"));
/// assert!(!valid_topic_name(""));
/// ```
pub fn valid_topic_name(name: &str) -> bool {
    valid_topic_name_bytes(name.as_bytes())
}

/// [`valid_topic_name`] on the bytes of a string already known to be UTF-8.
pub(crate) fn valid_topic_name_bytes(name: &[u8]) -> bool {
    !name.is_empty() && !scan(name).forbidden && levels_within_limit(name)
}

/// True when `name` has at most [`MAX_TOPIC_LEVELS`] levels.
pub(crate) fn levels_within_limit(name: &[u8]) -> bool {
    // Fewer bytes than the limit cannot hold too many levels.
    name.len() < MAX_TOPIC_LEVELS || name.iter().filter(|&&b| b == b'/').count() < MAX_TOPIC_LEVELS
}

/// What one pass over a topic name found.
pub(crate) struct Scan {
    /// Every byte is ASCII, so the bytes are valid UTF-8 without further checks.
    pub(crate) ascii: bool,
    /// A `+`, `#` or U+0000 is present.
    pub(crate) forbidden: bool,
}

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
const PLUS: u64 = u64::from_ne_bytes([b'+'; 8]);
const HASH: u64 = u64::from_ne_bytes([b'#'; 8]);

/// True when some byte of `v` is zero (the classic word trick).
fn has_zero(v: u64) -> bool {
    v.wrapping_sub(ONES) & !v & HIGHS != 0
}

/// Runs `word` over `bytes` eight bytes at a time: whole words, then the last
/// eight bytes (overlapping) for the tail. Shorter inputs are padded with
/// spaces, which are ASCII and neither a wildcard nor U+0000.
fn for_words(bytes: &[u8], mut word: impl FnMut(u64)) {
    let load = |chunk: &[u8]| <[u8; 8]>::try_from(chunk).map(u64::from_ne_bytes);
    if bytes.len() < 8 {
        let mut w = [b' '; 8];
        for (slot, &b) in w.iter_mut().zip(bytes) {
            *slot = b;
        }
        return word(u64::from_ne_bytes(w));
    }
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        if let Ok(v) = load(chunk) {
            word(v);
        }
    }
    if !chunks.remainder().is_empty() {
        if let Some(Ok(v)) = bytes.get(bytes.len() - 8..).map(load) {
            word(v);
        }
    }
}

/// Scans `bytes` once, a word at a time: this runs on every PUBLISH, and for
/// the usual ASCII topic it replaces both the UTF-8 validation and the
/// wildcard check.
pub(crate) fn scan(bytes: &[u8]) -> Scan {
    let mut out = Scan {
        ascii: true,
        forbidden: false,
    };
    for_words(bytes, |v| {
        out.ascii &= v & HIGHS == 0;
        out.forbidden |= has_zero(v) | has_zero(v ^ PLUS) | has_zero(v ^ HASH);
    });
    out
}

/// True when `bytes` holds U+0000 (cheaper than memchr on short strings).
pub(crate) fn has_nul(bytes: &[u8]) -> bool {
    if bytes.len() < 8 {
        // A plain loop: `contains` calls memchr, whose set-up dominates here.
        #[allow(clippy::manual_contains)]
        return bytes.iter().any(|&b| b == 0);
    }
    let mut nul = false;
    for_words(bytes, |v| nul |= has_zero(v));
    nul
}

/// A topic filter is non-empty, `#` only as the whole last level, `+` only as a
/// whole level, no U+0000, at most [`MAX_TOPIC_LEVELS`] levels. `$share/...` filters
/// are valid when the share name is non-empty without wildcards and a filter follows.
///
/// ```
/// use pigeon_codec::topic::valid_topic_filter;
/// assert!(valid_topic_filter("a/+/#"));
/// assert!(valid_topic_filter("$share/group/a/#"));
/// assert!(!valid_topic_filter("a/#/b"));
/// assert!(!valid_topic_filter("a/b+"));
/// assert!(!valid_topic_filter("$share/group"));
/// ```
pub fn valid_topic_filter(filter: &str) -> bool {
    if filter.starts_with(SHARE_PREFIX) {
        return parse_shared(filter).is_some_and(|(_, inner)| valid_plain_filter(inner));
    }
    valid_plain_filter(filter)
}

fn valid_plain_filter(filter: &str) -> bool {
    if filter.is_empty() || !within_level_limit(filter) {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        let ok = match level {
            "#" => last,
            "+" => true,
            _ => !level.bytes().any(|b| matches!(b, b'+' | b'#' | 0)),
        };
        if !ok {
            return false;
        }
    }
    true
}

/// True when `filter` matches `topic`. Filters starting with a wildcard do not
/// match topics starting with `$`. A `$share/<group>/` prefix is ignored: the
/// filter after it is matched.
///
/// ```
/// use pigeon_codec::topic::matches;
/// assert!(matches("a/#", "a"));
/// assert!(matches("a/+", "a/"));
/// assert!(matches("$share/g/a/+", "a/b"));
/// assert!(!matches("+/x", "$SYS/x"));
/// assert!(matches("$SYS/#", "$SYS/x"));
/// ```
pub fn matches(filter: &str, topic: &str) -> bool {
    let filter = match parse_shared(filter) {
        Some((_, inner)) => inner,
        None => filter,
    };
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for f in filter.split('/') {
        if f == "#" {
            return true;
        }
        match topic_levels.next() {
            Some(t) if f == "+" || f == t => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}

/// Splits `$share/<group>/<filter>` into `(group, filter)`; `None` for other filters
/// or a malformed share (empty group, a group with a wildcard, no filter).
///
/// ```
/// use pigeon_codec::topic::parse_shared;
/// assert_eq!(parse_shared("$share/g/a/b"), Some(("g", "a/b")));
/// assert_eq!(parse_shared("a/b"), None);
/// assert_eq!(parse_shared("$share//a"), None);
/// ```
pub fn parse_shared(filter: &str) -> Option<(&str, &str)> {
    let rest = filter.strip_prefix(SHARE_PREFIX)?;
    let (group, inner) = rest.split_once('/')?;
    if group.is_empty() || inner.is_empty() || group.contains(['+', '#']) {
        return None;
    }
    Some((group, inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_topic_name("/"));
        assert!(valid_topic_name("$SYS/x"));
        assert!(!valid_topic_name("a/#"));
        assert!(!valid_topic_name("a\0b"));
        let deep = vec!["x"; MAX_TOPIC_LEVELS].join("/");
        assert!(valid_topic_name(&deep));
        assert!(!valid_topic_name(&format!("{deep}/x")));
    }

    #[test]
    fn word_scan_agrees_with_a_byte_loop() {
        for len in 0..40 {
            for pos in 0..len {
                for special in [b'+', b'#', 0, 0xC3, b'/'] {
                    let mut bytes = vec![b'a'; len];
                    bytes[pos] = special;
                    let s = scan(&bytes);
                    assert_eq!(
                        s.forbidden,
                        matches!(special, b'+' | b'#' | 0),
                        "{len} {pos}"
                    );
                    assert_eq!(s.ascii, special != 0xC3, "{len} {pos}");
                }
            }
        }
    }

    #[test]
    fn filters() {
        for ok in [
            "#",
            "+",
            "/",
            "+/+",
            "a/#",
            "/#",
            "+/a/#",
            "a//b",
            "$share/g/#",
        ] {
            assert!(valid_topic_filter(ok), "{ok}");
        }
        for bad in [
            "",
            "a#",
            "#/a",
            "a/+b",
            "++",
            "a\0",
            "$share/",
            "$share/g",
            "$share/g/",
            "$share//a",
            "$share/+/a",
            "$share/g/a/#/b",
        ] {
            assert!(!valid_topic_filter(bad), "{bad}");
        }
        let deep = vec!["+"; MAX_TOPIC_LEVELS + 1].join("/");
        assert!(!valid_topic_filter(&deep));
    }

    #[test]
    fn matching() {
        let cases = [
            ("a/b", "a/b", true),
            ("a/b", "a/c", false),
            ("a/+", "a/b", true),
            ("a/+", "a/b/c", false),
            ("a/#", "a/b/c", true),
            ("a/#", "a", true),
            ("a/b/#", "a", false),
            ("#", "a/b", true),
            ("#", "$SYS/a", false),
            ("+/a", "$SYS/a", false),
            ("$SYS/+", "$SYS/a", true),
            ("+", "", true),
            ("+/+", "/", true),
            ("/+", "/a", true),
            ("a", "a/b", false),
            ("a/b", "a", false),
            ("$share/g/a/+", "a/x", true),
        ];
        for (f, t, want) in cases {
            assert_eq!(matches(f, t), want, "{f} vs {t}");
        }
    }
}
