//! Retained messages as the memory store keeps them: one allocation per
//! message holding its topic and payload together, in a set keyed by the
//! topic itself (the topic is not stored a second time as a map key).
//!
//! A retained message is its own copy, never a slice of the read buffer it
//! arrived in (which it would keep alive whole), and carries its MQTT 5.0
//! properties only when it has some. A subscriber matching it gets a
//! [`Message`] rebuilt from it.

use std::{
    borrow::Borrow,
    collections::HashSet,
    hash::{Hash, Hasher},
    sync::Arc,
    time::Instant,
};

use bytes::Bytes;
use pigeon_codec::{topic, BoxedPublishProperties, ByteStr, Publish, QoS};

use crate::model::Message;

/// The retained messages, one per topic.
#[derive(Default)]
pub(super) struct RetainedSet {
    kept: HashSet<Kept>,
}

impl RetainedSet {
    /// Keeps `message` as its topic's retained message (an empty payload
    /// clears it). Returns the change in the number kept: 1, 0 or -1.
    pub(super) fn store(&mut self, message: &Message) -> i64 {
        let topic = message.publish.topic.as_str();
        if message.publish.payload.is_empty() {
            return -i64::from(self.kept.remove(topic));
        }
        i64::from(self.kept.replace(Kept::of(message)).is_none())
    }

    /// The retained messages whose topics match `filter`.
    pub(super) fn matching(&self, filter: &str) -> Vec<Arc<Message>> {
        // A filter without wildcards names one topic: a lookup, not a scan
        // of every retained message.
        if !filter.contains(['+', '#']) {
            return self
                .kept
                .get(filter)
                .map(Kept::message)
                .into_iter()
                .collect();
        }
        self.kept
            .iter()
            .filter(|k| topic::matches(filter, k.topic()))
            .map(Kept::message)
            .collect()
    }
}

/// One retained message.
struct Kept {
    /// The topic's bytes, then the payload's.
    data: Box<[u8]>,
    topic_len: u32,
    qos: QoS,
    properties: BoxedPublishProperties,
    origin: Option<Arc<str>>,
    received_at: Option<Instant>,
}

impl Kept {
    fn of(message: &Message) -> Self {
        let p = &message.publish;
        let topic = p.topic.as_bytes();
        let mut data = Vec::with_capacity(topic.len() + p.payload.len());
        data.extend_from_slice(topic);
        data.extend_from_slice(&p.payload);
        let properties = p.properties.clone();
        Kept {
            data: data.into_boxed_slice(),
            // Within `data`, so it fits (no allocation reaches 4 GiB here).
            topic_len: u32::try_from(topic.len()).unwrap_or(u32::MAX),
            qos: p.qos,
            properties,
            origin: message.origin.clone(),
            received_at: message.received_at,
        }
    }

    fn topic(&self) -> &str {
        let bytes = self.data.get(..self.topic_len as usize).unwrap_or_default();
        // Copied from a `str` in `of`, so never the fallback.
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    fn payload(&self) -> &[u8] {
        self.data.get(self.topic_len as usize..).unwrap_or_default()
    }

    fn message(&self) -> Arc<Message> {
        let payload = Bytes::copy_from_slice(self.payload());
        let mut publish = Publish::new(ByteStr::from(self.topic()), self.qos, payload);
        publish.retain = true;
        publish.properties = self.properties.clone();
        Message::received(publish, self.origin.clone(), self.received_at)
    }
}

// Hashed, compared and looked up by topic alone, as a `str` (so that
// `HashSet::remove(&str)` finds it).
impl Borrow<str> for Kept {
    fn borrow(&self) -> &str {
        self.topic()
    }
}

impl Hash for Kept {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.topic().hash(state);
    }
}

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.topic() == other.topic()
    }
}

impl Eq for Kept {}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(topic: &str, payload: &str) -> Arc<Message> {
        let mut publish = Publish::new(topic, QoS::AtLeastOnce, payload.to_owned());
        publish.retain = true;
        Message::new(publish, None)
    }

    #[test]
    fn one_per_topic_replaced_and_cleared() {
        let mut set = RetainedSet::default();
        assert_eq!(set.store(&msg("a/b", "1")), 1);
        assert_eq!(set.store(&msg("a/b", "2")), 0, "replaced");
        assert_eq!(set.store(&msg("a/c", "3")), 1);
        let mut got: Vec<_> = set
            .matching("a/+")
            .iter()
            .map(|m| (m.publish.topic.to_string(), m.publish.payload.clone()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("a/b".into(), Bytes::from("2")),
                ("a/c".into(), Bytes::from("3"))
            ]
        );
        let exact: Vec<_> = set
            .matching("a/c")
            .iter()
            .map(|m| m.publish.payload.clone())
            .collect();
        assert_eq!(exact, [Bytes::from("3")], "an exact filter finds its topic");
        assert!(set.matching("a").is_empty() && set.matching("a/b/c").is_empty());
        assert_eq!(set.store(&msg("a/b", "")), -1, "cleared");
        assert_eq!(set.store(&msg("a/b", "")), 0, "nothing to clear");
        assert_eq!(set.matching("#").len(), 1);
    }
}
