use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use bytes::Bytes;
use pigeon_codec::{Protocol, QoS, SubscriptionOptions};

use super::Peer;

/// A connected (or connecting) client, as handlers see it. Cheap to clone.
///
/// ```
/// use pigeon::hooks::Client;
/// use pigeon::codec::Protocol;
/// let c = Client::new("dev-1", "127.0.0.1:5000".parse().unwrap(), None, Protocol::V3_1_1);
/// assert_eq!(c.id(), "dev-1");
/// assert!(!c.connected());
/// ```
#[derive(Clone, Debug)]
pub struct Client(Arc<ClientInner>);

#[derive(Debug)]
struct ClientInner {
    id: String,
    peer: Peer,
    username: Option<String>,
    protocol: Protocol,
    connected: AtomicBool,
}

impl Client {
    /// A client in the connecting state, at `addr`.
    pub fn new(
        id: impl Into<String>,
        addr: SocketAddr,
        username: Option<String>,
        protocol: Protocol,
    ) -> Self {
        Self::with_peer(id, Peer::new(addr), username, protocol)
    }

    /// A client in the connecting state, with everything known of its [`Peer`].
    pub fn with_peer(
        id: impl Into<String>,
        peer: impl Into<Peer>,
        username: Option<String>,
        protocol: Protocol,
    ) -> Self {
        Self(Arc::new(ClientInner {
            id: id.into(),
            peer: peer.into(),
            username,
            protocol,
            connected: AtomicBool::new(false),
        }))
    }

    /// The client identifier (the assigned one when the client sent none).
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// The peer's address.
    pub fn addr(&self) -> SocketAddr {
        self.0.peer.addr()
    }

    /// The connection's other end: address, listener, TLS client certificate.
    pub fn peer(&self) -> &Peer {
        &self.0.peer
    }

    /// The user name of CONNECT, if any.
    pub fn username(&self) -> Option<&str> {
        self.0.username.as_deref()
    }

    /// The protocol version the client speaks.
    pub fn protocol(&self) -> Protocol {
        self.0.protocol
    }

    /// True once CONNACK 0 was sent and until the connection closes.
    pub fn connected(&self) -> bool {
        self.0.connected.load(Ordering::Acquire)
    }

    /// Set by the engine.
    pub(crate) fn set_connected(&self, connected: bool) {
        self.0.connected.store(connected, Ordering::Release);
    }
}

/// The user name and password of CONNECT, given to the authenticate handler.
#[derive(Clone, Debug, Default)]
pub struct Credential {
    /// CONNECT's user name, if any.
    pub username: Option<String>,
    /// CONNECT's password, if any (bytes: MQTT does not require UTF-8).
    pub password: Option<Bytes>,
}

/// One subscription as handlers see it: `{ topic, qos }` plus the MQTT 5.0 options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The topic filter (a shared one keeps its `$share/<group>/` prefix).
    pub topic: String,
    /// The maximum QoS asked for.
    pub qos: QoS,
    /// No Local, Retain As Published, Retain Handling (MQTT 5.0).
    pub options: SubscriptionOptions,
}
