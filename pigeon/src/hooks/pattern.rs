//! Topic patterns of `#[on_publish("devices/:id/status")]`: MQTT filters whose
//! single-level segments may be named (`:id`) so handlers can extract them.

/// Values of the named segments of a matched pattern, in pattern order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(&'static str, String)>);

impl Params {
    /// The value of the segment named `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Exact(&'static str),
    /// `+` or `:name`.
    One(Option<&'static str>),
    /// `#`, only last.
    Rest,
}

/// A parsed pattern. The macro validates patterns at compile time; [`TopicPattern::parse`]
/// re-checks them so hand-built registrations fail loudly too.
///
/// ```
/// use pigeon::hooks::TopicPattern;
/// let p = TopicPattern::parse("devices/:id/status").unwrap();
/// let params = p.matches("devices/42/status").unwrap();
/// assert_eq!(params.get("id"), Some("42"));
/// assert!(p.matches("devices/42/other").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern {
    segments: Vec<Segment>,
}

impl TopicPattern {
    /// Parses `a/:name/+/#`; `None` when `#` is not last, a segment mixes
    /// wildcards, or the pattern is empty (as for every topic filter: the codec's
    /// `valid_topic_filter` and the ACL file refuse `""` too).
    pub fn parse(pattern: &'static str) -> Option<Self> {
        if pattern.is_empty() {
            return None;
        }
        let parts: Vec<&'static str> = pattern.split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let seg = match *part {
                "#" if i + 1 == parts.len() => Segment::Rest,
                "+" => Segment::One(None),
                p if p.starts_with(':') && p.len() > 1 => {
                    let name = &p[1..];
                    if !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                        return None;
                    }
                    Segment::One(Some(name))
                }
                p if p.contains(['#', '+']) || p.starts_with(':') => return None,
                p => Segment::Exact(p),
            };
            segments.push(seg);
        }
        Some(Self { segments })
    }

    /// The named segments' values when `topic` matches.
    pub fn matches(&self, topic: &str) -> Option<Params> {
        let mut params = Vec::new();
        let mut levels = topic.split('/');
        // MQTT-4.7.2-1: wildcards at the first level never match `$` topics.
        let dollar = topic.starts_with('$');
        for (i, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::Rest => {
                    return (!(dollar && i == 0)).then_some(Params(params));
                }
                Segment::One(name) => {
                    let level = levels.next()?;
                    if dollar && i == 0 {
                        return None;
                    }
                    if let Some(name) = name {
                        params.push((*name, level.to_owned()));
                    }
                }
                Segment::Exact(e) => {
                    if levels.next()? != *e {
                        return None;
                    }
                }
            }
        }
        levels.next().is_none().then_some(Params(params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The handler patterns, the codec's filters and the ACL file agree on which
    /// plain filters (no `:name`) are valid.
    #[test]
    fn patterns_filters_and_acl_topics_agree() {
        for filter in [
            "", "a", "a/+/b", "a/#", "#", "+", "a/#/b", "a/b+", "a+", "/", "a//b",
        ] {
            let pattern = TopicPattern::parse(filter).is_some();
            let codec = pigeon_codec::topic::valid_topic_filter(filter);
            let acl = crate::acl::matching::check_filter(filter).is_ok();
            assert_eq!((pattern, acl), (codec, codec), "{filter:?}");
        }
    }

    #[test]
    fn named_and_wildcard_segments() {
        let p = TopicPattern::parse("a/:x/+/#").unwrap();
        let m = p.matches("a/1/2/3/4").unwrap();
        assert_eq!(m.0, vec![("x", "1".to_owned())]);
        assert!(p.matches("a/1").is_none());
        assert!(TopicPattern::parse("a/#").unwrap().matches("a").is_some());
        assert!(TopicPattern::parse("#")
            .unwrap()
            .matches("$SYS/x")
            .is_none());
        assert!(TopicPattern::parse("a/#/b").is_none());
        assert!(TopicPattern::parse("a/b+").is_none());
        assert!(TopicPattern::parse("exact")
            .unwrap()
            .matches("exact/more")
            .is_none());
    }
}
