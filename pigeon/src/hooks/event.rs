use pigeon_codec::{ConnAck, Publish};

use super::{Client, Subscription};

/// The notifications handlers may listen to (`#[on_client]`, `#[on_publish]`, …):
/// they never delay the packet they report.
#[derive(Debug, Clone)]
pub enum Event {
    /// A client registered itself; not ready yet.
    Client(Client),
    /// A client received its offline messages and is ready.
    ClientReady(Client),
    /// A client disconnected.
    ClientDisconnect(Client),
    /// An error on an established client.
    ClientError(Client, String),
    /// An error before the client was initialised.
    ConnectionError(Client, String),
    /// The client's keep alive ran out.
    KeepaliveTimeout(Client),
    /// A message was published (client `None` for the broker's own messages: $SYS, wills).
    Publish(Option<Client>, Publish),
    /// A QoS 1 PUBACK or QoS 2 PUBCOMP completed delivery to `client`.
    Ack(Client, Publish),
    /// A client's subscriptions were granted (negated ones with QoS 128 as failure).
    Subscribe(Client, Vec<Subscription>),
    /// A client unsubscribed.
    Unsubscribe(Client, Vec<String>),
    /// CONNACK was sent.
    ConnackSent(Client, ConnAck),
    /// The broker closed.
    Closed,
    /// A PINGREQ arrived.
    Ping(Client),
}

/// Declares [`EventKind`] and [`EventKind::ALL`] from one list, so the two cannot
/// disagree and the bitmask of wanted kinds is sized from it.
macro_rules! event_kinds {
    ($($(#[$doc:meta])* $kind:ident,)*) => {
        /// The kind of an [`Event`], for [`super::Hooks::wants`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventKind {
            $($(#[$doc])* $kind,)*
        }

        impl EventKind {
            /// Every kind, in declaration order: `kind as usize` is its index.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$kind),*];
        }
    };
}

event_kinds! {
    /// [`Event::Client`].
    Client,
    /// [`Event::ClientReady`].
    ClientReady,
    /// [`Event::ClientDisconnect`].
    ClientDisconnect,
    /// [`Event::ClientError`].
    ClientError,
    /// [`Event::ConnectionError`].
    ConnectionError,
    /// [`Event::KeepaliveTimeout`].
    KeepaliveTimeout,
    /// [`Event::Publish`].
    Publish,
    /// [`Event::Ack`].
    Ack,
    /// [`Event::Subscribe`].
    Subscribe,
    /// [`Event::Unsubscribe`].
    Unsubscribe,
    /// [`Event::ConnackSent`].
    ConnackSent,
    /// [`Event::Closed`].
    Closed,
    /// [`Event::Ping`].
    Ping,
}

/// A set of [`EventKind`]s, one bit each.
pub(crate) type KindSet = u64;

// A kind past the mask's width would silently share a bit with another.
const _: () = assert!(
    EventKind::ALL.len() <= KindSet::BITS as usize,
    "more event kinds than bits in KindSet: widen it"
);

impl EventKind {
    /// This kind's bit in a [`KindSet`].
    pub(crate) const fn bit(self) -> KindSet {
        1 << self as u32
    }
}

impl Event {
    /// The kind of this event.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Client(_) => EventKind::Client,
            Event::ClientReady(_) => EventKind::ClientReady,
            Event::ClientDisconnect(_) => EventKind::ClientDisconnect,
            Event::ClientError(..) => EventKind::ClientError,
            Event::ConnectionError(..) => EventKind::ConnectionError,
            Event::KeepaliveTimeout(_) => EventKind::KeepaliveTimeout,
            Event::Publish(..) => EventKind::Publish,
            Event::Ack(..) => EventKind::Ack,
            Event::Subscribe(..) => EventKind::Subscribe,
            Event::Unsubscribe(..) => EventKind::Unsubscribe,
            Event::ConnackSent(..) => EventKind::ConnackSent,
            Event::Closed => EventKind::Closed,
            Event::Ping(_) => EventKind::Ping,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EventKind;

    #[test]
    fn every_kind_has_its_own_index_and_bit() {
        let mut bits = 0;
        for (index, kind) in EventKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, index, "{kind:?}");
            assert_eq!(bits & kind.bit(), 0, "{kind:?} shares a bit");
            bits |= kind.bit();
        }
        assert_eq!(EventKind::ALL.last(), Some(&EventKind::Ping));
    }
}
