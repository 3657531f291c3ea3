//! Byte transports the broker listens on: TCP, TLS, WebSocket and secure
//! WebSocket. Each accepts a stream, completes its own handshake (within
//! `connect_timeout`) and hands the stream to `crate::connection`, which
//! never learns which transport it runs on.

mod accept;
mod proxy;
mod shed;
mod tls;
mod ws;

use std::{net::SocketAddr, sync::Arc};

use tokio::net::TcpListener;

pub(crate) use accept::accept_loop;
pub(crate) use tls::reload_tls;
pub use ws::WsIo;

use crate::{
    config::{ConfigError, Listener},
    engine::ConnectionCount,
    hooks::ListenerKind,
    Config,
};

/// A listener the broker is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundListener {
    /// Its name (the URL unless configured otherwise).
    pub name: String,
    /// Its kind.
    pub kind: ListenerKind,
    /// The address it is bound to (the real port when 0 was asked for).
    pub addr: SocketAddr,
}

/// Why the listeners could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A listener's options (e.g. its TLS files) are unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The address could not be bound.
    #[error("cannot listen on {url}: {source}")]
    Bind {
        /// The listener's URL.
        url: String,
        /// The socket error.
        source: std::io::Error,
    },
}

/// What a connection needs to know of the listener it came in on.
pub(crate) struct Endpoint {
    pub(crate) name: Arc<str>,
    pub(crate) kind: ListenerKind,
    pub(crate) local_addr: SocketAddr,
    /// The TLS files and the configuration read from them (swapped by a reload).
    pub(crate) tls: Option<tls::TlsEndpoint>,
    /// Connections open on this listener, against its own `max_connections`.
    pub(crate) connections: Arc<ConnectionCount>,
    pub(crate) identity_as_username: bool,
    pub(crate) ws_path: String,
    pub(crate) ws_subprotocol: String,
    /// Largest WebSocket message accepted: room for one packet of `max_packet_size`.
    pub(crate) ws_max_message: usize,
    /// A PROXY protocol (v1 or v2) header must precede everything else.
    pub(crate) proxy_protocol: bool,
}

/// A bound socket and its endpoint, ready for [`accept_loop`].
pub(crate) struct Bound {
    pub(crate) listener: TcpListener,
    pub(crate) endpoint: Arc<Endpoint>,
}

impl Bound {
    /// What the broker handle reports.
    pub(crate) fn describe(&self) -> BoundListener {
        BoundListener {
            name: self.endpoint.name.to_string(),
            kind: self.endpoint.kind,
            addr: self.endpoint.local_addr,
        }
    }
}

/// Loads the TLS files and binds every listener of `config`, in order.
pub(crate) async fn bind(config: &Config) -> Result<Vec<Bound>, TransportError> {
    let mut bound = Vec::new();
    for listener in config.effective_listeners() {
        bound.push(bind_one(config, &listener).await?);
    }
    Ok(bound)
}

async fn bind_one(config: &Config, listener: &Listener) -> Result<Bound, TransportError> {
    let tls = match listener.tls_files(config)? {
        Some(files) => {
            Some(tls::TlsEndpoint::load(files).map_err(|source| ConfigError::Tls { source })?)
        }
        None => None,
    };
    let bind_error = |source| TransportError::Bind {
        url: listener.url(),
        source,
    };
    let socket = TcpListener::bind((listener.host.as_str(), listener.port))
        .await
        .map_err(bind_error)?;
    let local_addr = socket.local_addr().map_err(bind_error)?;
    let endpoint = Endpoint {
        // Named with the port really bound, so that port 0 logs something useful.
        name: Arc::from(listener.name.clone().unwrap_or_else(|| {
            Listener {
                port: local_addr.port(),
                ..listener.clone()
            }
            .url()
        })),
        kind: listener.kind,
        local_addr,
        tls,
        identity_as_username: listener.identity_as_username(config),
        ws_path: listener.path().to_owned(),
        ws_subprotocol: listener.subprotocol().to_owned(),
        ws_max_message: config.max_packet_size.saturating_add(64 * 1024),
        proxy_protocol: listener.proxy_protocol.unwrap_or(false),
        connections: ConnectionCount::new(listener.max_connections.unwrap_or(0)),
    };
    Ok(Bound {
        listener: socket,
        endpoint: Arc::new(endpoint),
    })
}

#[cfg(test)]
mod tests;
