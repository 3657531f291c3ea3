//! MQTT 5.0 topic aliases, per connection and per direction.
//!
//! Inbound: the client may use aliases 1..=`topic_alias_maximum` (the value
//! the broker announced in CONNACK). Outbound: the broker assigns aliases to
//! the first topics it sends, up to the client's own Topic Alias Maximum
//! (first-come, never reassigned: a repeated topic is then sent as the alias
//! alone); nothing is aliased for a client that announced none, nor for 3.x.

use std::collections::HashMap;

use pigeon_codec::{ByteStr, Publish, ReasonCode};

use crate::connection::Exit;

/// A map made on first use: most clients never use aliases, and an empty
/// `HashMap` in every connection would still cost six words.
type Lazy<K, V> = Option<Box<HashMap<K, V>>>;

/// Aliases the client set up for its PUBLISHes.
pub(crate) struct Inbound {
    max: u16,
    topics: Lazy<u16, ByteStr>,
}

impl Inbound {
    /// `max` is the Topic Alias Maximum the broker announced.
    pub(crate) fn new(max: u16) -> Self {
        Self { max, topics: None }
    }

    /// Replaces an aliased PUBLISH's empty topic by the alias's topic, or
    /// records the alias of a PUBLISH carrying both.
    pub(crate) fn resolve(&mut self, publish: &mut Publish) -> Result<(), Exit> {
        let Some(alias) = publish.properties.topic_alias else {
            return Ok(());
        };
        if alias == 0 || alias > self.max {
            return Err(Exit::Violation(
                ReasonCode::TopicAliasInvalid,
                format!("topic alias {alias} outside 1..={}", self.max),
            ));
        }
        if publish.topic.is_empty() {
            match self.topics.as_ref().and_then(|t| t.get(&alias)) {
                Some(topic) => publish.topic = topic.clone(),
                None => {
                    return Err(Exit::Violation(
                        ReasonCode::ProtocolError,
                        format!("topic alias {alias} was never set"),
                    ))
                }
            }
        } else {
            (self.topics.get_or_insert_with(Default::default)).insert(alias, publish.topic.clone());
        }
        Ok(())
    }
}

/// Aliases the broker set up for its PUBLISHes to the client.
pub(crate) struct Outbound {
    max: u16,
    assigned: Lazy<ByteStr, u16>,
}

impl Outbound {
    /// `max` is the client's Topic Alias Maximum (0: no aliases).
    pub(crate) fn new(max: u16) -> Self {
        Self {
            max,
            assigned: None,
        }
    }

    /// True when the client accepts aliases.
    pub(crate) fn enabled(&self) -> bool {
        self.max > 0
    }

    /// Sends a topic already aliased as the alias alone; assigns a free alias
    /// to a new topic while some are left. True when an alias was assigned
    /// now (undo with [`Outbound::forget`] if the PUBLISH is not sent).
    pub(crate) fn apply(&mut self, publish: &mut Publish) -> bool {
        if let Some(&alias) = self.assigned.as_ref().and_then(|a| a.get(&publish.topic)) {
            publish.properties.make_mut().topic_alias = Some(alias);
            publish.topic = ByteStr::default();
            return false;
        }
        let used = self.assigned.as_ref().map_or(0, |a| a.len());
        if used >= usize::from(self.max) {
            return false;
        }
        // used < max <= u16::MAX, so used + 1 fits.
        let alias = u16::try_from(used + 1).unwrap_or(self.max);
        (self.assigned.get_or_insert_with(Default::default)).insert(publish.topic.clone(), alias);
        publish.properties.make_mut().topic_alias = Some(alias);
        true
    }

    /// Forgets the alias just assigned to `topic` (its PUBLISH was not sent).
    pub(crate) fn forget(&mut self, topic: &ByteStr) {
        if let Some(assigned) = &mut self.assigned {
            assigned.remove(topic);
        }
    }
}

#[cfg(test)]
mod tests {
    use pigeon_codec::QoS;

    use super::*;

    fn publish(topic: &str, alias: Option<u16>) -> Publish {
        let mut p = Publish::new(topic, QoS::AtMostOnce, "x");
        p.properties.make_mut().topic_alias = alias;
        p
    }

    fn code(result: Result<(), Exit>) -> Option<ReasonCode> {
        match result {
            Ok(()) => None,
            Err(Exit::Violation(code, _)) => Some(code),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn inbound_sets_resolves_and_refuses() {
        let mut inbound = Inbound::new(2);
        let mut p = publish("a/b", Some(2));
        assert_eq!(code(inbound.resolve(&mut p)), None);
        let mut p = publish("", Some(2));
        assert_eq!(code(inbound.resolve(&mut p)), None);
        assert_eq!(&*p.topic, "a/b");
        let mut p = publish("", Some(1));
        assert_eq!(
            code(inbound.resolve(&mut p)),
            Some(ReasonCode::ProtocolError)
        );
        let mut p = publish("a", Some(3));
        assert_eq!(
            code(inbound.resolve(&mut p)),
            Some(ReasonCode::TopicAliasInvalid)
        );
        let mut p = publish("a", None);
        assert_eq!(code(inbound.resolve(&mut p)), None, "no alias: untouched");
    }

    #[test]
    fn outbound_assigns_first_n_and_forgets_unsent() {
        let mut out = Outbound::new(1);
        let mut p = publish("t/1", None);
        assert!(out.apply(&mut p), "assigned");
        assert_eq!((&*p.topic, p.properties.topic_alias), ("t/1", Some(1)));
        out.forget(&ByteStr::from("t/1"));
        let mut p = publish("t/2", None);
        assert!(out.apply(&mut p), "alias 1 free again");
        let mut p = publish("t/2", None);
        assert!(!out.apply(&mut p));
        assert_eq!((&*p.topic, p.properties.topic_alias), ("", Some(1)));
        let mut p = publish("t/3", None);
        assert!(!out.apply(&mut p));
        assert_eq!(
            (&*p.topic, p.properties.topic_alias),
            ("t/3", None),
            "none left"
        );
        assert!(!Outbound::new(0).enabled());
    }
}
