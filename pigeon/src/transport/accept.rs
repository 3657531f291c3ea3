//! The accept loop shared by every listener kind, and the per-connection
//! transport handshake (TLS, WebSocket upgrade) before MQTT starts.

use std::{net::SocketAddr, sync::Arc};

use futures_util::{future::OptionFuture, FutureExt};
use pigeon_codec::Protocol;
use tokio::net::TcpStream;

use super::{shed, tls, ws, Bound, Endpoint};
use crate::{
    connection::{ByteStream, Open},
    engine::Engine,
    hooks::{Client, Event, EventKind, ListenerKind, Peer},
};

/// Over-limit connections being answered (CONNACK 0x97) at once per
/// listener; past it they are closed without a word, so that refusing costs
/// at most this many descriptors.
const REFUSERS: usize = 64;

/// Accepts connections until shutdown, one task each, so that a slow
/// handshake never holds up the next client.
pub(crate) async fn accept_loop(engine: Arc<Engine>, bound: Bound) {
    let Bound { listener, endpoint } = bound;
    let mut shed = Shedding::new();
    // What its connections' peers share: the listener's name, kind and
    // address, allocated once here rather than once per connection.
    let on = Peer::new(endpoint.local_addr)
        .with_listener(endpoint.name.clone(), endpoint.kind)
        .with_local_addr(endpoint.local_addr);
    loop {
        let accepted = tokio::select! {
            _ = engine.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, addr)) => {
                shed.backoff.reset();
                admit(&engine, &endpoint, &on, &mut shed, stream, addr);
            }
            Err(error) => {
                if shed::out_of_descriptors(&error) {
                    shed.drain_one(&listener);
                }
                if let Some(held_back) = shed.accept_log.allow(std::time::Instant::now()) {
                    tracing::warn!(%error, listener = %endpoint.name, held_back, "accept failed; backing off");
                }
                // Back off instead of spinning while descriptors are short.
                let delay = shed.backoff.next_delay();
                tokio::select! {
                    _ = engine.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// A listener's state for shedding load.
struct Shedding {
    backoff: shed::Backoff,
    spare: shed::Spare,
    accept_log: shed::LogThrottle,
    limit_log: shed::LogThrottle,
    refusers: Arc<tokio::sync::Semaphore>,
}

impl Shedding {
    fn new() -> Self {
        Self {
            backoff: shed::Backoff::default(),
            spare: shed::Spare::new(),
            accept_log: shed::LogThrottle::new(shed::LOG_INTERVAL),
            limit_log: shed::LogThrottle::new(shed::LOG_INTERVAL),
            refusers: Arc::new(tokio::sync::Semaphore::new(REFUSERS)),
        }
    }

    /// Out of descriptors: gives up the spare one to accept the waiting
    /// connection and close it at once, then takes the spare back.
    fn drain_one(&mut self, listener: &tokio::net::TcpListener) {
        if !self.spare.release() {
            return;
        }
        // The waiting connection is ready: accepting it does not block.
        if let Some(Ok((stream, _))) = listener.accept().now_or_never() {
            drop(stream);
        }
        self.spare.restore();
    }
}

/// Counts the connection against the listener's and the broker's limits and
/// serves it, or refuses it when either is reached.
fn admit(
    engine: &Arc<Engine>,
    endpoint: &Arc<Endpoint>,
    on: &Peer,
    shed: &mut Shedding,
    stream: TcpStream,
    addr: SocketAddr,
) {
    let listener_slot = endpoint.connections.try_acquire();
    let broker_slot = listener_slot
        .as_ref()
        .and_then(|_| engine.connections.try_acquire());
    let (Some(listener_slot), Some(broker_slot)) = (listener_slot, broker_slot) else {
        refuse(engine, endpoint, shed, stream, addr);
        return;
    };
    // Small MQTT packets must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    // Held for the connection's whole life, whatever way it ends: by its
    // driver, and by the lot while it is parked.
    let slots = (listener_slot, broker_slot);
    // Boxed, and made before the task: what the task's future captures it
    // keeps for good (a generator's captures are never overlapped with its
    // later states), so it captures only the slots and this box, which is
    // freed at CONNACK; an idle connection's task holds `Open::run`'s future.
    let peer = Peer::on_listener_of(addr, on);
    let opening = Box::pin(open(engine.clone(), endpoint.clone(), stream, peer));
    let task = async move {
        // One expression, so that no `Open` or `Option` local keeps room
        // beside the running future, and the slots are not moved into a
        // second place of their own.
        OptionFuture::from(opening.await.map(move |open| open.run(Some(slots)))).await;
    };
    engine.tracker.spawn(task);
}

/// A connection over `max_connections`: plain TCP clients get CONNACK 0x97
/// (3.x: 0x03) if their CONNECT comes at once; everything else is closed.
fn refuse(
    engine: &Arc<Engine>,
    endpoint: &Endpoint,
    shed: &mut Shedding,
    stream: TcpStream,
    addr: SocketAddr,
) {
    if let Some(held_back) = shed.limit_log.allow(std::time::Instant::now()) {
        let (open, limit) = if endpoint.connections.limit() != 0
            && endpoint.connections.open() >= endpoint.connections.limit()
        {
            (endpoint.connections.open(), endpoint.connections.limit())
        } else {
            (engine.connections.open(), engine.connections.limit())
        };
        tracing::warn!(%addr, listener = %endpoint.name, open, limit, held_back, "max_connections reached; connection refused");
    }
    let plain = endpoint.kind == ListenerKind::Tcp && !endpoint.proxy_protocol;
    let permit = shed.refusers.clone().try_acquire_owned();
    let (true, Ok(permit)) = (plain, permit) else {
        return; // dropping the stream closes it
    };
    let engine = engine.clone();
    engine.tracker.clone().spawn(async move {
        crate::connection::refuse_busy(&engine, Box::new(stream)).await;
        drop(permit);
    });
}

/// Runs the transport's handshake within `connect_timeout`, then MQTT's;
/// the connection if it was accepted.
async fn open(
    engine: Arc<Engine>,
    endpoint: Arc<Endpoint>,
    stream: TcpStream,
    peer: Peer,
) -> Option<Open> {
    let addr = peer.addr();
    if endpoint.kind == ListenerKind::Tcp && !endpoint.proxy_protocol {
        // One box around the socket, nothing more (see `ByteStream`).
        return crate::connection::open(engine, Box::new(stream), peer).await;
    }
    // Boxed apart: the TLS and WebSocket handshakes' state is large, and a
    // plain TCP handshake's own allocation need not hold room for it.
    let handshake = Box::pin(upgrade(&endpoint, stream, peer.clone()));
    let upgraded = tokio::select! {
        _ = engine.shutdown.cancelled() => return None,
        upgraded = tokio::time::timeout(engine.config.connect_timeout, handshake) => upgraded,
    };
    let error = match upgraded {
        Ok(Ok((stream, peer))) => return crate::connection::open(engine, stream, peer).await,
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
    None
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
) -> Result<(ByteStream, Peer), HandshakeError> {
    if endpoint.proxy_protocol {
        if let Some(client) = super::proxy::read_header(&mut stream).await? {
            // The client's real address, for handlers and for the logs.
            peer = Peer::on_listener_of(client, &peer);
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
