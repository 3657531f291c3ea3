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
    !name.is_empty()
        && !name.bytes().any(|b| matches!(b, b'+' | b'#' | 0))
        && within_level_limit(name)
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
