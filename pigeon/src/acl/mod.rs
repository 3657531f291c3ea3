//! Topic access control in Mosquitto's `acl_file` format, so people moving from
//! Mosquitto keep their files.
//!
//! CONTRACT (used by the engine): `Acl::load(path)` / `Acl::parse(text)`, then
//! `can_publish` / `can_subscribe` per message and per SUBSCRIBE entry, and
//! `can_read` per delivered message.
//!
//! # The file
//!
//! ```text
//! # Comments are whole lines starting with `#`; blank lines are ignored.
//! # Before any `user` line: clients without a username.
//! topic read $SYS/#
//! user alice
//! # access: read | write | readwrite (the default) | deny
//! topic readwrite alice/#
//! topic deny alice/secret
//! # Every client; %c = its client id, %u = its username.
//! pattern write devices/%c/#
//! ```
//!
//! As in Mosquitto there are no end-of-line comments: the rest of a `topic`
//! line after the access word is the topic (it may contain spaces).
//!
//! # How a check is decided (Mosquitto 2.0's `acl_file` rules)
//!
//! - A client *with* a username uses the `topic` lines of its `user` section;
//!   a client *without* one uses the `topic` lines before the first `user` line.
//!   `pattern` lines apply to every client, with `%c` / `%u` replaced by its
//!   client id / username (a pattern using `%u` is skipped for a client without
//!   a username).
//! - `deny` entries are checked first: a matching one refuses, whatever grants
//!   exist (Mosquitto's documented rule; its code lets a user's grant win over a
//!   pattern's deny — Pigeon does not).
//! - Then a matching entry with the wanted access (write to publish, read to
//!   receive or subscribe) allows; with none, access is refused. An empty ACL
//!   refuses everything.
//! - When the file has `pattern` lines, a client whose id or username contains
//!   `+` or `#` gets no access through patterns (it could match other clients'
//!   topics).
//! - `#` and `+` in an ACL do not match `$`-topics; `$SYS/#` must be granted
//!   explicitly.
//!
//! # Subscriptions
//!
//! A subscription filter is allowed when a `read` / `readwrite` entry *covers*
//! it (every topic the filter can match is matched by the entry, Mosquitto's
//! `mosquitto_sub_matches_acl`: `a/#` covers `a/+/c` and `a`, `a/+` covers `a/b`
//! but not `a/#`, `a/b` does not cover `a/+`), and refused when a `deny` entry
//! covers it. A deny entry that covers only part of it (`deny a/secret` under a
//! subscription to `a/#`) does not refuse the subscription; `can_read` filters
//! those messages out at delivery. A shared subscription `$share/<group>/<filter>`
//! is checked as its `<filter>`.
//!
//! ```
//! use pigeon::acl::Acl;
//! let acl = Acl::parse("user alice\ntopic alice/#\ntopic deny alice/secret\n", "example").unwrap();
//! assert!(acl.can_publish("c1", Some("alice"), "alice/x"));
//! assert!(acl.can_subscribe("c1", Some("alice"), "alice/#"));
//! assert!(!acl.can_read("c1", Some("alice"), "alice/secret"));
//! assert!(!acl.can_publish("c2", Some("bob"), "alice/x"));
//! ```

mod check;
pub(crate) mod matching;
mod parse;
#[cfg(test)]
mod tests;

use std::{collections::HashMap, path::Path};

pub use check::ClientAcl;
use matching::{filter_covers, substitute, topic_matches};

/// A parsed ACL file.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    /// `topic` lines before the first `user` line: clients without a username.
    anonymous: Vec<Rule>,
    /// `topic` lines of each `user` section.
    users: HashMap<String, Vec<Rule>>,
    /// `pattern` lines: every client.
    patterns: Vec<Rule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Deny,
    Read,
    Write,
    ReadWrite,
}

impl Access {
    /// Does an entry with this access allow `wanted` (read or write)?
    fn grants(self, wanted: Access) -> bool {
        match self {
            Access::Deny => false,
            Access::ReadWrite => true,
            own => own == wanted,
        }
    }
}

#[derive(Debug, Clone)]
struct Rule {
    access: Access,
    topic: String,
}

/// Why an ACL file could not be read: its path, and the line of the error
/// (0 when the file could not be opened, the I/O error is then the source).
///
/// ```
/// let err = pigeon::acl::Acl::parse("topic read a\ntopic sometimes b\n", "site.acl").unwrap_err();
/// assert_eq!((err.path.as_str(), err.line), ("site.acl", 2));
/// assert_eq!(
///     err.to_string(),
///     "acl file site.acl: line 2: invalid access `sometimes` (expected read, write, readwrite or deny)"
/// );
/// ```
#[derive(Debug, thiserror::Error)]
#[error("acl file {path}: {}{message}", at_line(*.line))]
#[non_exhaustive]
pub struct AclError {
    /// The file (or the name given to [`Acl::parse`]).
    pub path: String,
    /// The 1-based line of the error; 0 when the file could not be read.
    pub line: usize,
    /// What is wrong.
    pub message: String,
    /// Why the file could not be read.
    #[source]
    pub io: Option<std::io::Error>,
}

fn at_line(line: usize) -> String {
    match line {
        0 => String::new(),
        n => format!("line {n}: "),
    }
}

impl Acl {
    /// Reads and parses an ACL file.
    pub fn load(path: &Path) -> Result<Self, AclError> {
        let text = std::fs::read_to_string(path).map_err(|e| AclError {
            path: path.display().to_string(),
            line: 0,
            message: format!("cannot read it: {e}"),
            io: Some(e),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses ACL text (`source` names it in errors).
    pub fn parse(text: &str, source: &str) -> Result<Self, AclError> {
        parse::parse(text, source)
    }

    /// Number of `topic` and `pattern` entries (for startup logs).
    pub fn len(&self) -> usize {
        self.anonymous.len()
            + self.users.values().map(Vec::len).sum::<usize>()
            + self.patterns.len()
    }

    /// True when the file has no entries (every check is refused).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// May this client publish to `topic`?
    pub fn can_publish(&self, client_id: &str, username: Option<&str>, topic: &str) -> bool {
        let (own, patterns) = self.rules_of(client_id, username);
        check::decide(own.iter().chain(&patterns), Access::Write, |acl| {
            topic_matches(acl, topic)
        })
    }

    /// May this client subscribe to `filter`? (A read entry must cover every topic
    /// the filter can match; see the module docs.)
    pub fn can_subscribe(&self, client_id: &str, username: Option<&str>, filter: &str) -> bool {
        let filter = unshared(filter);
        let (own, patterns) = self.rules_of(client_id, username);
        check::decide(own.iter().chain(&patterns), Access::Read, |acl| {
            filter_covers(acl, filter)
        })
    }

    /// May this client receive a message on `topic`? (Checked per delivered message.)
    pub fn can_read(&self, client_id: &str, username: Option<&str>, topic: &str) -> bool {
        let (own, patterns) = self.rules_of(client_id, username);
        check::decide(own.iter().chain(&patterns), Access::Read, |acl| {
            topic_matches(acl, topic)
        })
    }

    /// The rules that apply to one client, patterns expanded, to keep with its
    /// connection: its checks then allocate nothing.
    ///
    /// ```
    /// let acl = pigeon::acl::Acl::parse("pattern readwrite devices/%c/#\n", "example").unwrap();
    /// let rules = acl.for_client("lamp-1", None);
    /// assert!(rules.can_publish("devices/lamp-1/state"));
    /// assert!(!rules.can_read("devices/lamp-2/state"));
    /// ```
    pub fn for_client(&self, client_id: &str, username: Option<&str>) -> ClientAcl {
        let (own, patterns) = self.rules_of(client_id, username);
        ClientAcl {
            rules: own.iter().cloned().chain(patterns).collect(),
        }
    }

    /// The client's own `topic` rules, and the patterns that apply to it
    /// expanded (none for an id or username containing `+` or `#`; a pattern
    /// using `%u` is skipped for a client without a username).
    fn rules_of(&self, client_id: &str, username: Option<&str>) -> (&[Rule], Vec<Rule>) {
        let own: &[Rule] = match username {
            Some(name) => self.users.get(name).map_or(&[], Vec::as_slice),
            None => &self.anonymous,
        };
        let dangerous = |s: &str| s.contains(['+', '#']);
        if self.patterns.is_empty() || dangerous(client_id) || username.is_some_and(dangerous) {
            return (own, Vec::new());
        }
        let patterns = self
            .patterns
            .iter()
            .filter_map(|rule| {
                Some(Rule {
                    access: rule.access,
                    topic: substitute(&rule.topic, client_id, username)?,
                })
            })
            .collect();
        (own, patterns)
    }
}

/// The filter of a shared subscription `$share/<group>/<filter>`; other filters unchanged.
pub(crate) fn unshared(filter: &str) -> &str {
    filter
        .strip_prefix("$share/")
        .and_then(|rest| rest.split_once('/'))
        .map_or(filter, |(_group, inner)| inner)
}
