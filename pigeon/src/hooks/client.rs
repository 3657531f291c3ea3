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
    /// Shared with the session's `client_id` (one allocation per client).
    id: Arc<str>,
    peer: Peer,
    /// A box, not a `String`: a word less, which keeps a client in a
    /// smaller allocation class.
    username: Option<Box<str>>,
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
            id: Arc::from(id.into()),
            peer: peer.into(),
            username: username.map(String::into_boxed_str),
            protocol,
            connected: AtomicBool::new(false),
        }))
    }

    /// The client identifier (the assigned one when the client sent none).
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// The client identifier, shared (the session and the sessions' map keep
    /// this one rather than a copy).
    pub(crate) fn shared_id(&self) -> Arc<str> {
        self.0.id.clone()
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

/// One subscription as handlers see it: the topic filter and its options
/// (QoS, and No Local, Retain As Published, Retain Handling for MQTT 5.0).
///
/// The QoS lives in one place, [`Subscription::options`]: a handler that
/// rewrites it with [`Subscription::set_qos`] changes what the SUBACK grants
/// and what deliveries use.
///
/// ```
/// use pigeon::codec::QoS;
/// use pigeon::hooks::Subscription;
/// let mut sub = Subscription::new("sensors/#", QoS::ExactlyOnce);
/// sub.set_qos(QoS::AtLeastOnce);
/// assert_eq!(sub.qos(), QoS::AtLeastOnce);
/// assert_eq!(sub.options.qos, QoS::AtLeastOnce);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The topic filter (a shared one keeps its `$share/<group>/` prefix).
    pub topic: String,
    /// The maximum QoS asked for, and the MQTT 5.0 options.
    pub options: SubscriptionOptions,
}

impl Subscription {
    /// A subscription to `topic` at `qos`, with the default MQTT 5.0 options.
    pub fn new(topic: impl Into<String>, qos: QoS) -> Self {
        Self::with_options(
            topic,
            SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            },
        )
    }

    /// A subscription to `topic` with all of its options.
    pub fn with_options(topic: impl Into<String>, options: SubscriptionOptions) -> Self {
        Self {
            topic: topic.into(),
            options,
        }
    }

    /// The maximum QoS asked for (`options.qos`).
    pub fn qos(&self) -> QoS {
        self.options.qos
    }

    /// Rewrites the maximum QoS (`options.qos`); the broker still caps it at
    /// its own `maximum_qos`.
    pub fn set_qos(&mut self, qos: QoS) {
        self.options.qos = qos;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connected client holds one `Client` allocation, with its peer
    /// inline (it was two, the peer's own `Arc` beside it): it must not grow.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_client_is_one_small_allocation() {
        let peer = std::mem::size_of::<Peer>();
        assert!(peer <= 56, "Peer is {peer} bytes");
        let inner = std::mem::size_of::<ClientInner>();
        // With the `Arc`'s counts, in the allocator's 112-byte class.
        assert!(inner <= 96, "ClientInner is {inner} bytes");
    }
}
