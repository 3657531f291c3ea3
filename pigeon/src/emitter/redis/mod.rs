//! The Redis emitter: nodes sharing one Redis server behave as one broker.
//!
//! - **Interest-based routing.** Each node keeps the filters it has local
//!   subscribers for in `pigeon:node:{id}:filters` (a SET) and announces each
//!   change on the channel `pigeon:routes`; every node loads all the sets at
//!   start (and after any reconnect) into an [`interest::Index`]. A publish is
//!   matched against it and goes once to each other node with a matching
//!   filter, and to no other node. A shared group (`$share/g/f`) is served by
//!   one node per message, picked round robin by the publishing node among
//!   the nodes with members (the frame names the groups the receiver serves).
//! - **Inboxes.** QoS 0 rides pub/sub (`pigeon:inbox:{id}`, at most once);
//!   QoS 1/2 go through the stream `pigeon:stream:{id}` (`XADD MAXLEN ~`),
//!   read by the node with a consumer group and acknowledged (`XACK`) only
//!   once handed to its local sessions. The publisher's completion waits for
//!   the `XADD`s: a PUBACK means the message is in Redis for every node that
//!   needs it. While Redis is away those `XADD`s are retried (the publisher
//!   is held, not acknowledged) and QoS 0 to other nodes is dropped.
//! - **Membership.** `pigeon:node:{id}:alive` (a TTL key holding this
//!   instance's nonce, refreshed every second) makes a second node with the
//!   same id fail at start; `pigeon:format` refuses nodes of another format.
//!
//! Files: `conn` (connection, health, liveness), `interest` (the index),
//! `announce` (writing this node's interest), `outbound` (to other nodes),
//! `inbox` (the routes channel, the QoS 0 channel and the stream), `recover`
//! (what a killed node was sent, for the sessions taken from it), `wire`.

mod announce;
mod conn;
mod inbox;
mod interest;
mod outbound;
mod recover;
mod wire;

use std::{
    sync::{atomic::AtomicU64, Arc, Mutex, OnceLock, RwLock},
    time::Duration,
};

use ::redis::{aio::ConnectionManager, Client};
use tokio::sync::{mpsc, Notify};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{BoxFuture, Completion, Deliver, Emitter, EmitterError, Recovery, Shares};
use crate::model::Message;

/// The keys and channels, all under `pigeon:`.
mod keys {
    /// The cluster's wire format version.
    pub(super) const FORMAT: &str = "pigeon:format";
    /// Every node id that registered (pruned when a node's keys are gone).
    pub(super) const NODES: &str = "pigeon:nodes";
    /// Interest changes: `+{node}\t{filter}`, `-{node}\t{filter}`, `={node}` (reload it).
    pub(super) const ROUTES: &str = "pigeon:routes";
    /// The consumer group reading each node's stream.
    pub(super) const GROUP: &str = "pigeon";

    pub(super) fn alive(node: &str) -> String {
        format!("pigeon:node:{node}:alive")
    }
    pub(super) fn filters(node: &str) -> String {
        format!("pigeon:node:{node}:filters")
    }
    pub(super) fn stream(node: &str) -> String {
        format!("pigeon:stream:{node}")
    }
    pub(super) fn inbox(node: &str) -> String {
        format!("pigeon:inbox:{node}")
    }
}

/// How a [`RedisEmitter`] connects and what it keeps.
///
/// ```
/// use pigeon::emitter::RedisEmitterOptions;
/// let opts = RedisEmitterOptions::new("redis://127.0.0.1:6379/0", "node-1");
/// assert_eq!(opts.stream_maxlen, 100_000);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisEmitterOptions {
    /// `redis://HOST:PORT[/DB]`.
    pub url: String,
    /// This node's id, unique in the cluster (`--node-id`).
    pub node_id: String,
    /// How long an unreachable Redis is retried at start.
    pub startup_timeout: Duration,
    /// The liveness key's TTL (refreshed every `alive_ttl / 5`).
    pub alive_ttl: Duration,
    /// What a node's inbox stream is trimmed to (`XADD MAXLEN ~`).
    pub stream_maxlen: usize,
    /// How long the interest set of a node that stopped refreshing is kept
    /// (its inbox stream too), so a node that comes back finds what was sent
    /// to it meanwhile.
    pub node_grace: Duration,
}

impl RedisEmitterOptions {
    /// The defaults for `url` and `node_id`.
    pub fn new(url: impl Into<String>, node_id: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            node_id: node_id.into(),
            startup_timeout: Duration::from_secs(5),
            alive_ttl: Duration::from_secs(5),
            stream_maxlen: 100_000,
            node_grace: Duration::from_secs(3600),
        }
    }
}

/// The clustered emitter on Redis (`--emitter redis://HOST:PORT[/DB]`): see
/// the README's "Cluster" section. [`Broker::start`](crate::Broker::start)
/// builds it from [`Config::emitter`](crate::Config::emitter) and
/// [`Config::node_id`](crate::Config::node_id); an embedder may build it
/// itself and pass it in [`Backends`](crate::broker::Backends).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use pigeon::{broker::Backends, emitter::{RedisEmitter, RedisEmitterOptions}};
/// let emitter = RedisEmitter::connect(RedisEmitterOptions::new("redis://127.0.0.1:6379", "n1")).await?;
/// let backends = Backends { emitter: Arc::new(emitter), ..Backends::default() };
/// let broker = pigeon::Broker::start_with(pigeon::Config::default(), pigeon::hooks::Hooks::none(), backends).await?;
/// # broker.close().await; Ok(()) }
/// ```
pub struct RedisEmitter {
    inner: Arc<Inner>,
}

/// What the emitter's tasks share.
struct Inner {
    opts: RedisEmitterOptions,
    node: Arc<str>,
    /// This instance's value of the liveness key.
    nonce: String,
    /// This instance's id in the frames it sends, and their sequence.
    instance: u64,
    seq: AtomicU64,
    client: Client,
    /// Commands (multiplexed; reconnects by itself).
    conn: ConnectionManager,
    sink: OnceLock<Arc<dyn Deliver>>,
    index: RwLock<interest::Index>,
    own: Mutex<interest::Own>,
    own_changed: Notify,
    health: conn::Health,
    /// QoS 0 frames for other nodes' channels, published by one task.
    qos0: mpsc::Sender<Qos0Frame>,
    qos0_rx: Mutex<Option<mpsc::Receiver<Qos0Frame>>>,
    /// QoS 0 copies for other nodes dropped (Redis away, or the channel full).
    dropped_qos0: AtomicU64,
    stop: CancellationToken,
    tasks: TaskTracker,
}

/// A QoS 0 frame for another node: its inbox channel and the frame.
type Qos0Frame = (String, Vec<u8>);

/// How many QoS 0 frames may wait for the publishing task.
const QOS0_BACKLOG: usize = 8192;

impl RedisEmitter {
    /// Connects to Redis (retrying for `opts.startup_timeout`), checks the
    /// format version, claims the node id and loads the cluster's interest.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), pigeon::emitter::EmitterError> {
    /// use pigeon::emitter::{RedisEmitter, RedisEmitterOptions};
    /// let emitter = RedisEmitter::connect(RedisEmitterOptions::new("redis://127.0.0.1:6379", "n1")).await?;
    /// # drop(emitter); Ok(()) }
    /// ```
    pub async fn connect(opts: RedisEmitterOptions) -> Result<Self, EmitterError> {
        let client = Client::open(opts.url.as_str()).map_err(|e| EmitterError::BadUrl {
            url: opts.url.clone(),
            reason: e.to_string(),
        })?;
        let mut conn = conn::connect(&client, &opts, Duration::from_secs(5)).await?;
        conn::check_format(&mut conn, &opts).await?;
        let uuid = uuid::Uuid::new_v4();
        let nonce = uuid.to_string();
        let instance = uuid.as_u64_pair().0;
        conn::claim(&mut conn, &opts, &nonce).await?;
        let (qos0, qos0_rx) = mpsc::channel(QOS0_BACKLOG);
        let inner = Arc::new(Inner {
            node: Arc::from(opts.node_id.as_str()),
            opts,
            nonce,
            instance,
            seq: AtomicU64::new(0),
            client,
            conn,
            sink: OnceLock::new(),
            index: RwLock::default(),
            own: Mutex::new(interest::Own {
                resync: true,
                ..Default::default()
            }),
            own_changed: Notify::new(),
            health: conn::Health::default(),
            qos0,
            qos0_rx: Mutex::new(Some(qos0_rx)),
            dropped_qos0: AtomicU64::new(0),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        inbox::load_index(&inner)
            .await
            .map_err(|e| EmitterError::Redis {
                url: inner.opts.url.clone(),
                reason: e.to_string(),
            })?;
        tracing::info!(node = %inner.node, url = %inner.opts.url, "joined the cluster");
        Ok(Self { inner })
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.inner.node
    }

    /// QoS 0 copies for other nodes dropped so far (Redis away or too slow).
    pub fn dropped_qos0(&self) -> u64 {
        self.inner
            .dropped_qos0
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Inner {
    fn index(&self) -> std::sync::RwLockReadGuard<'_, interest::Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn index_mut(&self) -> std::sync::RwLockWriteGuard<'_, interest::Index> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    fn own(&self) -> std::sync::MutexGuard<'_, interest::Own> {
        self.own.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a change of this node's interest: in the index at once (a
    /// publish here sees it), in Redis by the announcing task.
    fn interest(&self, filter: &str, held: bool) {
        let changed = self.own().change(filter, held);
        if !changed {
            return;
        }
        if held {
            self.index_mut().add(&self.node, filter);
        } else {
            self.index_mut().remove(&self.node, filter);
        }
        self.own_changed.notify_one();
    }

    /// Retry delay after the `n`th failure in a row: 50 ms doubling to 1 s.
    fn backoff(n: u32) -> Duration {
        Duration::from_millis(50u64.saturating_mul(1 << n.min(5))).min(Duration::from_secs(1))
    }
}

impl Emitter for RedisEmitter {
    fn bind(&self, local: Arc<dyn Deliver>) {
        if self.inner.sink.set(local).is_err() {
            return; // one emitter serves one broker
        }
        let inner = &self.inner;
        inner.tasks.spawn(announce::run(inner.clone()));
        inner.tasks.spawn(announce::heartbeat(inner.clone()));
        inner.tasks.spawn(inbox::routes(inner.clone()));
        let rx = inner
            .qos0_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(rx) = rx {
            inner.tasks.spawn(outbound::qos0(inner.clone(), rx));
        }
    }

    fn start(&self) {
        let inner = &self.inner;
        if inner.sink.get().is_some() {
            inner.tasks.spawn(inbox::stream(inner.clone()));
        }
    }

    fn emit(&self, message: Arc<Message>) -> Completion {
        let inner = &self.inner;
        let Some(local) = inner.sink.get() else {
            return Completion::Done;
        };
        // `$SYS` topics are per node: never sent to the others.
        if message.publish.topic.starts_with("$SYS") {
            return local.deliver(message);
        }
        let plan = inner.index().plan(&message.publish.topic, &inner.node);
        let here = if plan.shared {
            local.deliver_shares(message.clone(), Shares::Only(&plan.local_shares))
        } else {
            local.deliver(message.clone())
        };
        if plan.remote.is_empty() {
            return here;
        }
        message.mark_matched();
        let there = outbound::send(inner, &message, plan.remote);
        match (here, there) {
            (c, Completion::Done) | (Completion::Done, c) => c,
            (Completion::Pending(a), Completion::Pending(b)) => {
                Completion::Pending(Box::pin(async move {
                    futures_util::future::join(a, b).await;
                }))
            }
        }
    }

    fn health(&self) -> Result<(), String> {
        self.inner.health.get()
    }

    fn interest_added(&self, filter: &str) {
        self.inner.interest(filter, true);
    }

    fn interest_removed(&self, filter: &str) {
        self.inner.interest(filter, false);
    }

    fn dropped(&self) -> u64 {
        self.dropped_qos0()
    }

    fn recover(&self, recovery: Recovery) {
        let inner = self.inner.clone();
        self.inner.tasks.spawn(async move {
            tokio::select! {
                () = recover::run(inner.clone(), recovery) => {}
                () = inner.stop.cancelled() => {}
            }
        });
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        Box::pin(async move {
            // The last interest changes (clean sessions closing), at most a second.
            let _ = tokio::time::timeout(Duration::from_secs(1), announce::flush(&inner)).await;
            inner.stop.cancel();
            inner.tasks.close();
            let _ = tokio::time::timeout(Duration::from_secs(2), inner.tasks.wait()).await;
            let mut conn = inner.conn.clone();
            let key = keys::alive(&inner.node);
            if let Err(e) = conn::release(&mut conn, &key, &inner.nonce).await {
                tracing::warn!(%e, "could not release the node id in redis");
            }
            tracing::info!(node = %inner.node, "left the cluster");
        })
    }
}

impl Drop for RedisEmitter {
    fn drop(&mut self) {
        let inner = &self.inner;
        if inner.stop.is_cancelled() {
            return; // closed: the node id is released already
        }
        // The tasks hold the shared state: without this they would run on.
        inner.stop.cancel();
        // Not closed (a broker that failed to start after joining, or dropped
        // without `close`): release the node id now rather than after its TTL.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let mut conn = inner.conn.clone();
            let key = keys::alive(&inner.node);
            let nonce = inner.nonce.clone();
            runtime.spawn(async move {
                let _ = conn::release(&mut conn, &key, &nonce).await;
            });
        }
    }
}
