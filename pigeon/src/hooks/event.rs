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

/// The kind of an [`Event`], for [`super::Hooks::wants`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
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
