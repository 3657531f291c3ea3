//! The broker: the wiring on top of every layer.
//!
//! - [`Broker::start`] checks the configuration, binds the listeners (through
//!   [`crate::transport`]), builds the `crate::engine` on the chosen
//!   [`Backends`] and returns a handle;
//! - [`BrokerHandle`] is cheap to clone and offers `local_addr`, `listeners`,
//!   `serve_connection`, `publish`, `close`, `closed`, `stats`, `clients`,
//!   `subscriptions`, `reload` (the ACL, password and TLS files, without
//!   dropping connections).
//!
//! Nothing below imports this module: data flows transport → connection →
//! engine → subscribers' sessions → their connections.

mod error;
mod reload;
mod requests;
mod subscribe;

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use pigeon_codec::Publish;
use tokio::io::{AsyncRead, AsyncWrite};

pub use crate::engine::{ClientInfo, DropReason, Drops, Gauges, Stats};
pub use crate::model::{Delivery, Message, QueueLimits};
pub use error::{PublishError, StartError, SubscribeError};
pub use reload::ReloadError;
pub use subscribe::Deliveries;

use crate::{
    auth::Authenticator,
    config::Store,
    emitter::{Emitter, LocalEmitter},
    engine::Engine,
    hooks::{Event, EventKind, Hooks},
    hooks::{ListenerKind, Peer},
    persistence::{MemoryPersistence, Persistence, RedbPersistence, RedisPersistence, StoreError},
    transport::BoundListener,
    Config,
};

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
    /// binds every listener of the configuration ([`Config::effective_listeners`]:
    /// `config.host:config.port` unless `config.listeners` says otherwise) and
    /// starts serving. A listener's bad TLS file or taken port is an error naming it.
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
        let budget = config.max_queued_bytes_total;
        let persistence: Arc<dyn Persistence> = match &config.persistence {
            Store::Memory => Arc::new(MemoryPersistence::with_queue_budget(budget)),
            Store::Redb(path) => {
                config.validate()?;
                let durability = config.durability;
                let path = path.clone();
                // Opening reads the whole store: off the async threads.
                let store = tokio::task::spawn_blocking(move || {
                    RedbPersistence::open_with_budget(path, durability, budget)
                })
                .await
                .map_err(|e| {
                    StartError::Store(StoreError::Open {
                        path: PathBuf::new(),
                        reason: e.to_string(),
                    })
                })??;
                Arc::new(store)
            }
            // A store shared by the nodes of a cluster; this node's id names
            // its sessions and its lease holdings in Redis.
            Store::Redis(url) => {
                config.validate()?;
                let node = config.node_id.as_deref().unwrap_or(&config.id);
                let store = RedisPersistence::connect(url, node).await?;
                refuse_local_emitter_beside(&config, &store).await?;
                Arc::new(store)
            }
        };
        let emitter: Arc<dyn Emitter> = match &config.emitter {
            crate::config::EmitterKind::Local => Arc::new(LocalEmitter::new()),
            crate::config::EmitterKind::Redis(url) => {
                // Checked before connecting: a bad option is not worth the wait.
                config.validate()?;
                // The node id defaults to the broker id (`--node-id`, `--id`).
                let node = config.node_id.clone().unwrap_or_else(|| config.id.clone());
                let opts = crate::emitter::RedisEmitterOptions::new(url.clone(), node);
                Arc::new(crate::emitter::RedisEmitter::connect(opts).await?)
            }
        };
        let backends = Backends {
            persistence,
            emitter,
        };
        Self::start_with(config, hooks, backends).await
    }

    /// As [`Broker::start`], with a chosen persistence and emitter.
    pub async fn start_with(
        config: Config,
        hooks: Arc<Hooks>,
        backends: Backends,
    ) -> Result<BrokerHandle, StartError> {
        let files = config.validated()?;
        let passwords = config.password_file.clone().zip(files.passwords);
        let authenticator = Authenticator::new(config.anonymous_allowed(), passwords);
        let acl = files.acl;
        let bound = crate::transport::bind(&config).await?;
        let http = match config.http {
            Some(addr) => Some(
                crate::http::bind(addr)
                    .await
                    .map_err(|error| StartError::Http { addr, error })?,
            ),
            None => None,
        };
        let http_addr = http.as_ref().and_then(|l| l.local_addr().ok());
        let listeners: Arc<[BoundListener]> = bound.iter().map(|b| b.describe()).collect();
        let endpoints = bound.iter().map(|b| b.endpoint.clone()).collect();
        let engine = Arc::new(Engine::new(
            config,
            hooks,
            acl,
            authenticator,
            backends.persistence,
            backends.emitter,
        ));
        engine.restore_sessions().await;
        engine.serve_handovers();
        // Before the listeners: a request that arrives finds its handler subscribed.
        requests::serve(&engine).await;
        // A clustered emitter reads what waited for this node only now that
        // its persistent sessions are back.
        engine.emitter.start();
        for b in bound {
            let listener = b.describe();
            tracing::info!(addr = %listener.addr, listener = %listener.name, id = %engine.config.id, "pigeon listening");
            engine
                .tracker
                .spawn(crate::transport::accept_loop(engine.clone(), b));
        }
        engine
            .tracker
            .spawn(crate::engine::sys::heartbeat(engine.clone()));
        if !engine.config.sys_interval.is_zero() {
            engine
                .tracker
                .spawn(crate::engine::sys::broker_tree(engine.clone()));
        }
        if let (Some(listener), Some(addr)) = (http, http_addr) {
            tracing::info!("http listening on {addr}");
            crate::http::spawn(engine.clone(), listener);
        }
        Ok(BrokerHandle {
            engine,
            listeners,
            endpoints,
            http_addr,
        })
    }
}

/// Nodes sharing a Redis store must share messages too: with a local
/// emitter a publish on one would never reach the sessions the others hold
/// (the silent loss Aedes users meet with shared persistence and a local
/// mqemitter). Refused at startup, naming the option to set.
async fn refuse_local_emitter_beside(
    config: &Config,
    store: &RedisPersistence,
) -> Result<(), StartError> {
    if config.emitter != crate::config::EmitterKind::Local {
        return Ok(());
    }
    let others = store.other_live_nodes().await;
    if others.is_empty() {
        return Ok(());
    }
    Err(StartError::InvalidOption(crate::config::ConfigError::Invalid {
        key: "emitter",
        value: format!("local, while nodes {} share the Redis of --persistence", others.join(", ")),
        expected: "nodes that share a Redis store need --emitter redis://... to reach each other's clients",
    }))
}

/// A cheap, clonable handle on a running broker.
#[derive(Clone)]
pub struct BrokerHandle {
    engine: Arc<Engine>,
    listeners: Arc<[BoundListener]>,
    /// What `reload` re-reads the TLS files of.
    endpoints: Arc<[Arc<crate::transport::Endpoint>]>,
    /// The HTTP listener's address, when `http` is set.
    http_addr: Option<SocketAddr>,
}

impl BrokerHandle {
    /// The address the first listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners[0].addr
    }

    /// Every listener, in the order configured, with its bound address.
    pub fn listeners(&self) -> &[BoundListener] {
        &self.listeners
    }

    /// The address of the HTTP listener (metrics, health, admin API,
    /// dashboard), when [`Config::http`] is set; useful with port 0.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The bound address of the first listener of `kind`.
    pub fn addr_of(&self, kind: ListenerKind) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|l| l.kind == kind)
            .map(|l| l.addr)
    }

    /// Serves one client over a stream the application accepted itself (a
    /// Unix socket, QUIC, an in-memory pipe...), exactly as a listener's
    /// connection; resolves when the connection ends. `peer` is what handlers
    /// see through [`Client::peer`](crate::hooks::Client::peer). It counts
    /// against `max_connections`; over it the stream is closed at once.
    ///
    /// ```no_run
    /// use pigeon::hooks::{ListenerKind, Peer};
    /// # async fn run(broker: pigeon::BrokerHandle) -> std::io::Result<()> {
    /// let unix = tokio::net::UnixListener::bind("/run/pigeon.sock")?;
    /// loop {
    ///     let (stream, _) = unix.accept().await?;
    ///     let peer = Peer::new(([127, 0, 0, 1], 0).into()).with_listener("unix", ListenerKind::Custom);
    ///     tokio::spawn(broker.serve_connection(stream, peer));
    /// }
    /// # }
    /// ```
    pub fn serve_connection<S>(
        &self,
        stream: S,
        peer: Peer,
    ) -> impl std::future::Future<Output = ()> + Send + 'static
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        // Counted against `max_connections` and tracked like a listener's
        // connections, so that `close` waits for it.
        let slot = self.engine.connections.try_acquire();
        let serve = crate::connection::serve(self.engine.clone(), stream, peer);
        let task = self.engine.tracker.spawn(async move {
            let Some(_slot) = slot else {
                tracing::warn!("max_connections reached; connection refused");
                return; // the stream is dropped, closing it
            };
            serve.await;
        });
        async move {
            let _ = task.await;
        }
    }

    /// Publishes on behalf of the broker (bypasses authorize-publish) and resolves
    /// once the message is handed to every matching subscriber's session.
    pub async fn publish(&self, publish: Publish) -> Result<(), PublishError> {
        if !pigeon_codec::topic::valid_topic_name(&publish.topic) {
            return Err(PublishError::InvalidTopic(publish.topic.to_string()));
        }
        if self.engine.is_shutting_down() {
            return Err(PublishError::Closed);
        }
        self.engine.publish(None, None, publish).await;
        Ok(())
    }

    /// Stops listening, disconnects every client (MQTT 5.0: DISCONNECT 0x8B
    /// Server shutting down), commits the store and emits `closed`; waits at
    /// most [`Config::shutdown_timeout`] for the connections and the store.
    pub async fn close(&self) {
        if self.engine.is_shutting_down() {
            self.closed().await;
            return;
        }
        self.engine.begin_shutdown();
        self.engine.tracker.close();
        self.engine.drain().await; // connections, then the store, within shutdown_timeout
                                   // Leaves the cluster (its last interest changes, its node id) after the
                                   // connections, whose clean sessions' subscriptions end with them.
        self.engine.emitter.close().await;
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
        let queued = self.engine.policy.budget.used();
        self.engine.stats.snapshot(subscriptions, queued)
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

    /// What is known of `client_id`'s session: connection details while
    /// connected, subscriptions, queue length, messages in flight.
    ///
    /// ```no_run
    /// # async fn run(broker: pigeon::BrokerHandle) {
    /// if let Some(info) = broker.client_info("dev-1") {
    ///     println!("{} connected={} queued={}", info.client_id, info.connected, info.queue_length);
    /// }
    /// # }
    /// ```
    pub fn client_info(&self, client_id: &str) -> Option<ClientInfo> {
        self.engine.client_info(client_id)
    }

    /// Every session's [`ClientInfo`], sorted by client id.
    pub fn client_infos(&self) -> Vec<ClientInfo> {
        self.engine.client_infos()
    }

    /// Disconnects a connected client (MQTT 5.0 clients get DISCONNECT 0x98,
    /// Administrative action; its will is published). False when not connected.
    pub fn disconnect_client(&self, client_id: &str) -> bool {
        self.engine.kick_out(client_id)
    }

    /// Sessions, subscriptions and queue depths, summed now.
    pub fn gauges(&self) -> Gauges {
        self.engine.gauges()
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
