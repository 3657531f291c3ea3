//! Who is at the other end of a connection, as far as the transport knows:
//! the remote address, the listener it came in on and, over TLS with client
//! certificates, the verified certificate's identity.

use std::{fmt, net::SocketAddr, sync::Arc};

/// The kind of listener a connection came in on (in TOML: `kind = "tcp"`,
/// `"tls"`, `"ws"` or `"wss"`; `"mqtt"` and `"mqtts"` are accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ListenerKind {
    /// Plain TCP (`mqtt://`).
    #[serde(alias = "mqtt")]
    Tcp,
    /// TLS over TCP (`mqtts://`).
    #[serde(alias = "mqtts")]
    Tls,
    /// WebSocket (`ws://`).
    Ws,
    /// WebSocket over TLS (`wss://`).
    Wss,
    /// A stream the embedding application brought itself
    /// ([`crate::BrokerHandle::serve_connection`]).
    #[serde(skip)]
    Custom,
}

impl ListenerKind {
    /// The URL scheme of the kind (`mqtt`, `mqtts`, `ws`, `wss`; `custom`).
    pub fn scheme(self) -> &'static str {
        match self {
            Self::Tcp => "mqtt",
            Self::Tls => "mqtts",
            Self::Ws => "ws",
            Self::Wss => "wss",
            Self::Custom => "custom",
        }
    }

    /// Whether the kind runs over TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Self::Tls | Self::Wss)
    }
}

impl fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme())
    }
}

/// The verified client certificate of a TLS connection (only present when the
/// listener asked for client certificates and the chain checked out against
/// its CA file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The subject's distinguished name, RFC 4514 style (`CN=dev-1, O=Acme`).
    pub subject: String,
    /// The subject's common name, if it has one.
    pub common_name: Option<String>,
    /// The certificate itself, DER-encoded.
    pub der: Vec<u8>,
}

/// A connection's other end. Cheap to clone.
///
/// ```
/// use pigeon::hooks::{ListenerKind, Peer};
/// let peer = Peer::new("10.0.0.7:50123".parse().unwrap())
///     .with_listener("ws-public", ListenerKind::Ws);
/// assert_eq!(peer.addr().port(), 50123);
/// assert_eq!(peer.listener(), "ws-public");
/// assert!(peer.certificate().is_none());
/// ```
///
/// A value, not a handle: a [`Client`](super::Client) holds its peer inline,
/// in its own allocation, so an idle client pays for no block of its own
/// here. A clone copies the address and shares the listener's part.
#[derive(Clone, PartialEq, Eq)]
pub struct Peer {
    addr: SocketAddr,
    /// What every connection of a listener shares (one allocation per
    /// listener, not per connection: see [`Peer::on_listener_of`]).
    listener: Arc<Listener>,
    /// Boxed: one word for the clients without one (most).
    certificate: Option<Box<PeerCertificate>>,
    identity_as_username: bool,
}

#[derive(Clone, PartialEq, Eq)]
struct Listener {
    name: Arc<str>,
    kind: ListenerKind,
    local_addr: Option<SocketAddr>,
}

/// A [`ListenerKind::Custom`] listener named `custom`, allocated once.
fn custom_listener() -> Arc<Listener> {
    static CUSTOM: std::sync::OnceLock<Arc<Listener>> = std::sync::OnceLock::new();
    CUSTOM
        .get_or_init(|| {
            Arc::new(Listener {
                name: Arc::from("custom"),
                kind: ListenerKind::Custom,
                local_addr: None,
            })
        })
        .clone()
}

impl Peer {
    /// A peer at `addr` on a [`ListenerKind::Custom`] listener named `custom`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            listener: custom_listener(),
            certificate: None,
            identity_as_username: false,
        }
    }

    /// A peer at `addr` on the listener of `template` (its name, kind and
    /// local address, shared rather than copied).
    pub(crate) fn on_listener_of(addr: SocketAddr, template: &Peer) -> Self {
        Self {
            addr,
            listener: template.listener.clone(),
            certificate: None,
            identity_as_username: false,
        }
    }

    /// Names the listener the connection came in on, and its kind.
    pub fn with_listener(mut self, name: impl Into<Arc<str>>, kind: ListenerKind) -> Self {
        let listener = Arc::make_mut(&mut self.listener);
        listener.name = name.into();
        listener.kind = kind;
        self
    }

    /// Sets the local address the connection was accepted on.
    pub fn with_local_addr(mut self, local_addr: SocketAddr) -> Self {
        Arc::make_mut(&mut self.listener).local_addr = Some(local_addr);
        self
    }

    /// Attaches the client's verified certificate.
    pub fn with_certificate(mut self, certificate: PeerCertificate) -> Self {
        self.certificate = Some(Box::new(certificate));
        self
    }

    /// Makes the certificate's common name the client's user name, replacing
    /// the one of CONNECT (Mosquitto's `use_identity_as_username`).
    pub fn with_identity_as_username(mut self, on: bool) -> Self {
        self.identity_as_username = on;
        self
    }

    /// The remote address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The local address the connection was accepted on, when known.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr
    }

    /// The name of the listener (its URL unless configured otherwise).
    pub fn listener(&self) -> &str {
        &self.listener.name
    }

    /// The kind of the listener.
    pub fn kind(&self) -> ListenerKind {
        self.listener.kind
    }

    /// The verified client certificate, over TLS with client certificates.
    pub fn certificate(&self) -> Option<&PeerCertificate> {
        self.certificate.as_deref()
    }

    /// The user name the certificate imposes, when the listener uses the
    /// identity as user name and the certificate has a common name.
    pub fn identity_username(&self) -> Option<&str> {
        if !self.identity_as_username {
            return None;
        }
        self.certificate()?.common_name.as_deref()
    }
}

impl From<SocketAddr> for Peer {
    fn from(addr: SocketAddr) -> Self {
        Peer::new(addr)
    }
}

impl From<&Peer> for Peer {
    fn from(peer: &Peer) -> Self {
        peer.clone()
    }
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Peer");
        s.field("addr", &self.addr)
            .field("listener", &self.listener.name)
            .field("kind", &self.listener.kind);
        if let Some(cert) = &self.certificate {
            s.field("subject", &cert.subject);
        }
        s.finish()
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} via {}", self.addr, self.listener.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_on_one_listener_share_its_part() {
        let local: SocketAddr = "127.0.0.1:1883".parse().unwrap();
        let on = Peer::new(local)
            .with_listener("mqtt://127.0.0.1:1883", ListenerKind::Tcp)
            .with_local_addr(local);
        let a = Peer::on_listener_of("10.0.0.1:5000".parse().unwrap(), &on);
        let b = Peer::on_listener_of("10.0.0.2:5000".parse().unwrap(), &a);
        assert_eq!(b.listener(), "mqtt://127.0.0.1:1883");
        assert_eq!((b.kind(), b.local_addr()), (ListenerKind::Tcp, Some(local)));
        assert_eq!(b.addr(), "10.0.0.2:5000".parse().unwrap());
        assert!(Arc::ptr_eq(&a.listener, &b.listener), "one allocation");
        let renamed = b.clone().with_listener("other", ListenerKind::Ws);
        assert_eq!(
            (renamed.listener(), b.listener()),
            ("other", "mqtt://127.0.0.1:1883")
        );
    }
}
