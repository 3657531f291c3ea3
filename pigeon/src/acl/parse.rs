//! The `acl_file` grammar, line by line, as Mosquitto reads it.

use super::{matching::check_filter, Access, Acl, AclError, Rule};

/// Splits off the first space- or tab-separated token.
fn first_token(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches([' ', '\t']);
    match s.find([' ', '\t']) {
        Some(end) => (&s[..end], &s[end..]),
        None => (s, ""),
    }
}

fn parse_access(word: &str) -> Option<Access> {
    match word {
        "read" => Some(Access::Read),
        "write" => Some(Access::Write),
        "readwrite" => Some(Access::ReadWrite),
        "deny" => Some(Access::Deny),
        _ => None,
    }
}

/// Parses the text of an ACL file; `source` names it in errors.
pub(super) fn parse(text: &str, source: &str) -> Result<Acl, AclError> {
    let mut acl = Acl::default();
    let mut user: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let error = |message: String| AclError {
            path: source.to_owned(),
            line: index + 1,
            message,
            io: None,
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keyword, rest) = first_token(line);
        match keyword {
            "topic" | "pattern" => {
                let (first, remainder) = first_token(rest);
                let remainder = remainder.trim();
                if first.is_empty() {
                    return Err(error(format!("`{keyword}` needs a topic")));
                }
                // `topic foo` grants readwrite on foo; the topic may contain spaces
                // after an access word, as in Mosquitto.
                let (access, topic) = if remainder.is_empty() {
                    if parse_access(first).is_some() {
                        // Mosquitto would grant readwrite on a topic named `read`;
                        // that is always a forgotten topic, so it is refused.
                        return Err(error(format!("missing topic after `{keyword} {first}`")));
                    }
                    (Access::ReadWrite, first)
                } else {
                    let access = parse_access(first).ok_or_else(|| {
                        error(format!(
                            "invalid access `{first}` (expected read, write, readwrite or deny)"
                        ))
                    })?;
                    (access, remainder)
                };
                check_filter(topic).map_err(error)?;
                let rule = Rule {
                    access,
                    topic: topic.to_owned(),
                };
                if keyword == "pattern" {
                    if !topic.contains("%c") && !topic.contains("%u") {
                        tracing::warn!(
                            acl_file = source,
                            line = index + 1,
                            "ACL pattern `{topic}` contains neither %c nor %u"
                        );
                    }
                    acl.patterns.push(rule);
                } else if let Some(name) = &user {
                    acl.users.entry(name.clone()).or_default().push(rule);
                } else {
                    acl.anonymous.push(rule);
                }
            }
            "user" => {
                let name = rest.trim();
                if name.is_empty() {
                    return Err(error("`user` needs a username".into()));
                }
                user = Some(name.to_owned());
            }
            other => {
                return Err(error(format!(
                    "unknown keyword `{other}` (expected user, topic or pattern)"
                )))
            }
        }
    }
    Ok(acl)
}
