//! The accept loop shared by every listener kind, and the per-connection
//! transport handshake (TLS, WebSocket upgrade) before MQTT starts.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use pigeon_codec::Protocol;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};

use super::{tls, ws, Bound, Endpoint};
use crate::{
    broker::Engine,
    hooks::{Client, Event, EventKind, ListenerKind, Peer},
};

/// Any stream the connection can run over, after the transport's handshake.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Accepts connections until shutdown, one task each, so that a slow
/// handshake never holds up the next client.
pub(crate) async fn accept_loop(engine: Arc<Engine>, bound: Bound) {
    let Bound { listener, endpoint } = bound;
    loop {
        let accepted = tokio::select! {
            _ = engine.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, addr)) => {
                // Small MQTT packets must not wait for Nagle.
                let _ = stream.set_nodelay(true);
                let task = serve(engine.clone(), endpoint.clone(), stream, addr);
                engine.tracker.spawn(task);
            }
            Err(error) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!(%error, listener = %endpoint.name, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Runs the transport's handshake within `connect_timeout`, then MQTT.
async fn serve(engine: Arc<Engine>, endpoint: Arc<Endpoint>, stream: TcpStream, addr: SocketAddr) {
    let peer = Peer::new(addr)
        .with_listener(endpoint.name.clone(), endpoint.kind)
        .with_local_addr(endpoint.local_addr);
    if endpoint.kind == ListenerKind::Tcp && !endpoint.proxy_protocol {
        // Split without a lock: the common case stays as fast as before.
        let (read, write) = stream.into_split();
        return crate::connection::serve_halves(engine, Box::new(read), Box::new(write), peer)
            .await;
    }
    let handshake = upgrade(&endpoint, stream, peer.clone());
    let upgraded = tokio::select! {
        _ = engine.shutdown.cancelled() => return,
        upgraded = tokio::time::timeout(engine.config.connect_timeout, handshake) => upgraded,
    };
    let error = match upgraded {
        Ok(Ok((stream, peer))) => return crate::connection::serve(engine, stream, peer).await,
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!(
            "{} handshake not completed within connect_timeout",
            endpoint.kind
        ),
    };
    tracing::info!(%addr, listener = %endpoint.name, "{error}; connection closed");
    engine.event(EventKind::ConnectionError, || {
        Event::ConnectionError(Client::with_peer("", peer, None, Protocol::V3_1_1), error)
    });
}

/// Why a transport handshake failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum HandshakeError {
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("WebSocket upgrade refused: {0}")]
    WebSocket(String),
    #[error("PROXY protocol header refused: {0}")]
    Proxy(String),
}

async fn upgrade(
    endpoint: &Endpoint,
    mut stream: TcpStream,
    mut peer: Peer,
) -> Result<(Box<dyn Io>, Peer), HandshakeError> {
    if endpoint.proxy_protocol {
        if let Some(client) = super::proxy::read_header(&mut stream).await? {
            // The client's real address, for handlers and for the logs.
            peer = Peer::new(client)
                .with_listener(endpoint.name.clone(), endpoint.kind)
                .with_local_addr(endpoint.local_addr);
            tracing::debug!(%client, "PROXY protocol header");
        }
    }
    match endpoint.kind {
        ListenerKind::Tls => {
            let (stream, peer) = tls::accept(endpoint, stream, peer).await?;
            Ok((Box::new(stream), peer))
        }
        ListenerKind::Ws => Ok((Box::new(ws::accept(endpoint, stream).await?), peer)),
        ListenerKind::Wss => {
            let (stream, peer) = tls::accept(endpoint, stream, peer).await?;
            Ok((Box::new(ws::accept(endpoint, stream).await?), peer))
        }
        ListenerKind::Tcp | ListenerKind::Custom => Ok((Box::new(stream), peer)),
    }
}
