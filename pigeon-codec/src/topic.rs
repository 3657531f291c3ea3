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

/// A topic name is non-empty, has no `+`/`#` and no U+0000, and at most [`MAX_TOPIC_LEVELS`] levels.
pub fn valid_topic_name(name: &str) -> bool {
    let _ = name;
    todo!("pigeon-codec: valid_topic_name")
}

/// A topic filter is non-empty, `#` only as the whole last level, `+` only as a
/// whole level, no U+0000, at most [`MAX_TOPIC_LEVELS`] levels. `$share/...` filters
/// are valid when the share name is non-empty without wildcards and a filter follows.
pub fn valid_topic_filter(filter: &str) -> bool {
    let _ = filter;
    todo!("pigeon-codec: valid_topic_filter")
}

/// True when `filter` matches `topic`. Filters starting with a wildcard do not
/// match topics starting with `$`.
pub fn matches(filter: &str, topic: &str) -> bool {
    let _ = (filter, topic);
    todo!("pigeon-codec: matches")
}

/// Splits `$share/<group>/<filter>` into `(group, filter)`; `None` for other filters
/// or a malformed share.
pub fn parse_shared(filter: &str) -> Option<(&str, &str)> {
    let _ = filter;
    todo!("pigeon-codec: parse_shared")
}
