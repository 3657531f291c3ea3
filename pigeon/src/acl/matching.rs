//! Topic matching as Mosquitto's ACL check does it: a topic against an ACL
//! filter (publish and delivery), an ACL filter covering a subscription filter
//! (subscribe), and `%c` / `%u` substitution for `pattern` lines.

/// True when the ACL filter `filter` matches the topic name `topic`.
///
/// `$`-topics only match filters that start with `$` too, so `#` never grants
/// `$SYS/...` (as in Mosquitto). `a/#` also matches `a` (MQTT-4.7.1-2).
pub(crate) fn topic_matches(filter: &str, topic: &str) -> bool {
    if filter.starts_with('$') != topic.starts_with('$') {
        return false;
    }
    let mut filter_levels = filter.split('/');
    let mut topic_levels = topic.split('/');
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(f), Some(t)) if f == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// True when every topic the subscription filter `sub` can match is also
/// matched by the ACL filter `acl` — Mosquitto's `mosquitto_sub_matches_acl`.
///
/// Level by level: an ACL `#` covers the rest (wildcards included); an ACL `+`
/// covers any single level of the subscription, including `+` but not `#`; a
/// literal ACL level covers only the same literal (a subscription `+` is wider
/// than it). `a/#` covers the subscription `a`.
pub(crate) fn filter_covers(acl: &str, sub: &str) -> bool {
    if acl.starts_with('$') != sub.starts_with('$') {
        return false;
    }
    let mut acl_levels = acl.split('/');
    let mut sub_levels = sub.split('/');
    loop {
        match (acl_levels.next(), sub_levels.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(s)) if s != "#" => {}
            (Some(a), Some(s)) if a == s => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Replaces every `%c` with `client_id` and every `%u` with `username`, in one
/// pass so that an id that itself contains `%u` is not substituted again.
/// `None` when the pattern uses `%u` and the client has no username (Mosquitto
/// skips such patterns).
pub(crate) fn substitute(pattern: &str, client_id: &str, username: Option<&str>) -> Option<String> {
    let mut out = String::with_capacity(pattern.len() + client_id.len());
    let mut rest = pattern;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('c') {
            out.push_str(client_id);
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('u') {
            out.push_str(username?);
            rest = tail;
        } else {
            out.push('%');
            rest = after;
        }
    }
    out.push_str(rest);
    Some(out)
}

/// Checks an ACL line's topic the way Mosquitto's `mosquitto_sub_topic_check`
/// does: `+` only as a whole level, `#` only as the whole last level.
pub(crate) fn check_filter(filter: &str) -> Result<(), String> {
    if filter.is_empty() {
        return Err("empty topic".into());
    }
    if filter.contains('\0') {
        return Err(format!("topic `{filter}` contains a NUL character"));
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(format!(
                "invalid topic `{filter}`: `#` must be the whole last level"
            ));
        }
        if level.contains('+') && level != "+" {
            return Err(format!(
                "invalid topic `{filter}`: `+` must be a whole level"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_matching_follows_mqtt_rules() {
        assert!(topic_matches("a/b", "a/b"));
        assert!(!topic_matches("a/b", "a/c"));
        assert!(topic_matches("a/+", "a/b"));
        assert!(!topic_matches("a/+", "a/b/c"));
        assert!(topic_matches("a/+", "a/"));
        assert!(topic_matches("a/#", "a"));
        assert!(topic_matches("a/#", "a/b/c"));
        assert!(topic_matches("+/#", "a"));
        assert!(topic_matches("#", "a/b"));
        assert!(!topic_matches("#", "$SYS/x"));
        assert!(!topic_matches("+/x", "$SYS/x"));
        assert!(topic_matches("$SYS/#", "$SYS/broker/load"));
        assert!(!topic_matches("a/b/c", "a/b"));
    }

    #[test]
    fn acl_filter_covers_narrower_subscriptions_only() {
        assert!(filter_covers("a/#", "a/#"));
        assert!(filter_covers("a/#", "a/+/c"));
        assert!(filter_covers("a/#", "a"));
        assert!(filter_covers("#", "x/#"));
        assert!(filter_covers("a/+", "a/+"));
        assert!(filter_covers("a/+", "a/b"));
        assert!(!filter_covers("a/+", "a/#"));
        assert!(!filter_covers("a/+", "a/b/c"));
        assert!(!filter_covers("a/b", "a/+"));
        assert!(!filter_covers("a/b", "a/#"));
        assert!(!filter_covers("a/b/#", "a/#"));
        assert!(!filter_covers("#", "$SYS/#"));
        assert!(filter_covers("$SYS/#", "$SYS/+/heartbeat"));
    }

    #[test]
    fn substitution_replaces_every_placeholder_once() {
        assert_eq!(
            substitute("d/%c/%u/x", "id1", Some("bob")).as_deref(),
            Some("d/id1/bob/x")
        );
        assert_eq!(substitute("d/%u", "id1", None), None);
        assert_eq!(substitute("d/%c", "%u", None).as_deref(), Some("d/%u"));
        assert_eq!(
            substitute("d/100%/%c", "x", None).as_deref(),
            Some("d/100%/x")
        );
    }

    #[test]
    fn filter_check_rejects_misplaced_wildcards() {
        assert!(check_filter("a/+/b/#").is_ok());
        assert!(check_filter("#").is_ok());
        assert!(check_filter("a/#/b").is_err());
        assert!(check_filter("a/b#").is_err());
        assert!(check_filter("a/b+").is_err());
        assert!(check_filter("").is_err());
    }
}
