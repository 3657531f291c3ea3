//! The broker engine.
//!
//! CONTRACT (public API used by the framework and the binary; the engine's
//! internals are free):
//! - `Broker::start(config, hooks)` binds the listener and returns a handle;
//! - `BrokerHandle` is cheap to clone and offers `local_addr`, `publish`,
//!   `close`, `closed`, `stats`, `clients`, `subscriptions`.
//!
//! How it works: one task per connection (`crate::connection`). A publisher's
//! task matches the topic tree itself (`router`) and offers the shared
//! [`Message`] to each subscriber's `Session` queue without waiting; the
//! subscriber's own task drains that queue within its in-flight window. State
//! that outlives a connection goes through [`crate::persistence`], distribution
//! through [`crate::emitter`].

mod engine;
mod error;
mod expiry;
mod message;
mod router;
mod session;
mod stats;
mod topic_tree;

use std::{net::SocketAddr, sync::Arc};

use pigeon_codec::Publish;

pub(crate) use engine::Engine;
pub use error::{PublishError, StartError};
pub(crate) use expiry::NEVER;
pub use message::{Delivery, Message};
pub(crate) use session::{Ctrl, Link, Offer, Session};

use crate::{
    emitter::{Emitter, LocalEmitter},
    hooks::{Event, EventKind, Hooks},
    persistence::{MemoryPersistence, Persistence},
    Config,
};

/// Counters of a running broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Clients with an established connection.
    pub clients_connected: u64,
    /// PUBLISH packets received from clients.
    pub messages_received: u64,
    /// PUBLISH packets written to clients.
    pub messages_sent: u64,
    /// Messages dropped because a session's queue was full.
    pub messages_dropped: u64,
    /// Retained messages stored.
    pub retained: u64,
    /// Subscriptions in the topic tree (offline persistent sessions included).
    pub subscriptions: u64,
}

/// The persistence and emitter a broker runs on (in-memory and local by default).
#[derive(Clone)]
pub struct Backends {
    /// Where sessions, subscriptions, retained messages and wills are kept.
    pub persistence: Arc<dyn Persistence>,
    /// How messages are distributed (to other nodes too, for a clustered emitter).
    pub emitter: Arc<dyn Emitter>,
}

impl Default for Backends {
    fn default() -> Self {
        Self {
            persistence: Arc::new(MemoryPersistence::new()),
            emitter: Arc::new(LocalEmitter::new()),
        }
    }
}

/// Entry point of the engine.
pub struct Broker;

impl Broker {
    /// Checks `config` ([`Config::validate`]: the same rules, the same errors),
    /// binds `config.host:config.port` and starts serving.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), pigeon::broker::StartError> {
    /// let mut config = pigeon::Config::default();
    /// config.port = 0; // ephemeral
    /// let broker = pigeon::Broker::start(config, pigeon::hooks::Hooks::none()).await?;
    /// println!("listening on {}", broker.local_addr());
    /// broker.close().await;
    /// # Ok(()) }
    /// ```
    pub async fn start(config: Config, hooks: Arc<Hooks>) -> Result<BrokerHandle, StartError> {
        Self::start_with(config, hooks, Backends::default()).await
    }

    /// As [`Broker::start`], with a chosen persistence and emitter.
    pub async fn start_with(
        config: Config,
        hooks: Arc<Hooks>,
        backends: Backends,
    ) -> Result<BrokerHandle, StartError> {
        let acl = config.validated_acl()?;
        let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
            .await
            .map_err(|source| StartError::Bind {
                host: config.host.clone(),
                port: config.port,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(StartError::LocalAddr)?;
        let engine = Arc::new(Engine::new(
            config,
            hooks,
            acl,
            backends.persistence,
            backends.emitter,
        ));
        engine.restore_sessions().await;
        tracing::info!(%local_addr, id = %engine.config.id, "pigeon listening");
        engine
            .tracker
            .spawn(crate::transport::tcp::accept_loop(engine.clone(), listener));
        engine.tracker.spawn(crate::sys::heartbeat(engine.clone()));
        Ok(BrokerHandle { engine, local_addr })
    }
}

/// A cheap, clonable handle on a running broker.
#[derive(Clone)]
pub struct BrokerHandle {
    engine: Arc<Engine>,
    local_addr: SocketAddr,
}

impl BrokerHandle {
    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Publishes on behalf of the broker (bypasses authorize-publish) and resolves
    /// once the message is handed to every matching subscriber's session.
    pub async fn publish(&self, publish: Publish) -> Result<(), PublishError> {
        if !pigeon_codec::topic::valid_topic_name(&publish.topic) {
            return Err(PublishError::InvalidTopic(publish.topic.to_string()));
        }
        if self.engine.shutdown.is_cancelled() {
            return Err(PublishError::Closed);
        }
        self.engine.publish(None, None, publish).await;
        Ok(())
    }

    /// Disconnects every client, stops listening and emits `closed`.
    pub async fn close(&self) {
        if self.engine.shutdown.is_cancelled() {
            self.closed().await;
            return;
        }
        self.engine.shutdown.cancel();
        self.engine.tracker.close();
        self.engine.tracker.wait().await;
        self.engine.event(EventKind::Closed, || Event::Closed);
        tracing::info!("pigeon closed");
        self.engine.closed.cancel();
    }

    /// Resolves when the broker has closed.
    pub async fn closed(&self) {
        self.engine.closed.cancelled().await
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        let subscriptions = self.engine.router.tree().len();
        self.engine.stats.snapshot(subscriptions)
    }

    /// Ids of the connected clients.
    pub fn clients(&self) -> Vec<String> {
        self.engine
            .sessions()
            .into_iter()
            .filter(|s| s.is_online())
            .map(|s| s.client_id.to_string())
            .collect()
    }

    /// `(client id, filter, qos)` of every subscription.
    pub fn subscriptions(&self) -> Vec<(String, String, pigeon_codec::QoS)> {
        let mut all = Vec::new();
        for session in self.engine.sessions() {
            for (filter, options) in session.subscriptions() {
                all.push((session.client_id.to_string(), filter, options.qos));
            }
        }
        all
    }
}
