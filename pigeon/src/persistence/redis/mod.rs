//! The cluster store: [`RedisPersistence`], on a Redis server shared by the
//! nodes of a cluster (`--persistence redis://HOST:PORT[/DB]`).
//!
//! Nothing is mirrored in memory: every read goes to Redis, so each node sees
//! what the others wrote (retained messages, a session another node served).
//! Records are the ones the redb store writes (MQTT packets encoded by
//! `pigeon-codec`, see `redb/records.rs`); the key layout is in `keys`.
//! Every call becomes a job on one ordered queue (`writer`), sent to Redis
//! as `MULTI`/`EXEC` pipelines that group whatever waited: a publisher is
//! acknowledged once [`Persistence::commit`] saw Redis apply the copies it
//! needs.
//!
//! Sessions move between nodes: on CONNECT the node claims the client's
//! ownership lease (`pigeon:owner:{client}`, 30 s, refreshed while the
//! client is connected); if another live node held the session, it is asked
//! on `pigeon:kick:{node}` to let it go (its connection closed with MQTT 5.0
//! 0x8E, its state parked in Redis) and this node waits for its answer (at
//! most [`HANDOVER_WAIT`]) before reading the session.

mod adopt;
mod keys;
mod scripts;
mod writer;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::StreamExt;
use pigeon_codec::{QoS, Will};
use redis::{aio::ConnectionManagerConfig, Cmd, Value};
use tokio::sync::{mpsc, oneshot};

use self::writer::{Reply, Writer};
use super::{
    redb::records, Adoption, BoxFuture, Handover, Inflight, Parked, Persistence, SessionState,
    StoredSession, StoredSubscription,
};
use crate::model::{Delivery, Message, QueueLimits};

/// MQTT 5.0's "never expires" Session Expiry Interval.
const NEVER: u32 = u32::MAX;

/// How long a node taking a session over waits for the node that held it.
///
/// ```
/// assert_eq!(pigeon::persistence::HANDOVER_WAIT.as_secs(), 5);
/// ```
pub const HANDOVER_WAIT: Duration = Duration::from_secs(5);
/// The ownership lease of a connected client (refreshed a third of it).
const LEASE: Duration = Duration::from_secs(30);
/// How long a node's "alive" key lives without a refresh (refreshed every
/// [`ALIVE_REFRESH`]): a node killed stops being waited for after that.
const ALIVE: Duration = Duration::from_secs(6);
const ALIVE_REFRESH: Duration = Duration::from_secs(2);
/// An offline session's keys outlive its expiry interval by this much, so
/// that the node that holds it expires it first (and publishes its will).
///
/// ```
/// // A session with a Session Expiry Interval of 120 s, offline: its keys' TTL.
/// let ttl = std::time::Duration::from_secs(120) + pigeon::persistence::TTL_MARGIN;
/// assert_eq!(ttl.as_secs(), 180);
/// ```
pub const TTL_MARGIN: Duration = Duration::from_secs(60);
/// How long [`RedisPersistence::connect`] tries to reach Redis.
const CONNECT_FOR: Duration = Duration::from_secs(5);
/// Sessions read per round trip at startup.
const LOAD_CHUNK: usize = 256;

/// Why [`RedisPersistence::connect`] failed: the message names the URL.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let err = pigeon::persistence::RedisPersistence::connect("http://127.0.0.1:6379", "n1").await.err().unwrap();
/// assert!(err.to_string().contains("http://127.0.0.1:6379"), "{err}");
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisStoreError {
    /// The URL is not one the Redis client accepts.
    #[error("{url}: not a Redis URL: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// What the client said.
        reason: String,
    },
    /// Redis did not answer within a few seconds.
    #[error("{url}: cannot reach Redis: {reason} (is it running, and is the address right?)")]
    Unreachable {
        /// The URL given.
        url: String,
        /// The last error.
        reason: String,
    },
}

/// The cluster store on Redis (`--persistence redis://HOST:PORT[/DB]`).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use pigeon::{broker::Backends, persistence::RedisPersistence};
/// let store = RedisPersistence::connect("redis://127.0.0.1:6379/0", "node-1").await?;
/// let backends = Backends { persistence: Arc::new(store), ..Backends::default() };
/// let broker = pigeon::Broker::start_with(pigeon::Config::default(), pigeon::hooks::Hooks::none(), backends).await?;
/// # broker.close().await; Ok(()) }
/// ```
pub struct RedisPersistence {
    url: String,
    node: Arc<str>,
    writer: Writer,
    /// The last key given to a stored copy (microseconds since the epoch,
    /// at least one more than the previous: ordered across nodes as far as
    /// their clocks agree, and strictly on one node).
    last_key: AtomicU64,
    /// Clients connected here: their leases are refreshed.
    online: Arc<Mutex<HashSet<String>>>,
    /// Takeovers waiting for another node's answer, by client id.
    waiting: Arc<Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>>,
    handovers: Mutex<Option<mpsc::UnboundedReceiver<Handover>>>,
    /// Sessions adopted from nodes that are gone, for the engine.
    adoptions: Mutex<Option<mpsc::UnboundedReceiver<Adoption>>>,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for RedisPersistence {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked mid-update of
    // plain data; it stays usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn cmd(name: &str) -> Cmd {
    redis::cmd(name)
}

fn eval(script: &str, keys: &[&str]) -> Cmd {
    let mut c = cmd("EVAL");
    c.arg(script).arg(keys.len());
    for k in keys {
        c.arg(*k);
    }
    c
}

/// The bytes of a string reply (`None` for nil or another type).
fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        _ => 0,
    }
}

/// The field/value pairs of an HGETALL reply (RESP2 array or RESP3 map).
fn pairs(v: Value) -> Vec<(Vec<u8>, Vec<u8>)> {
    let take = |v: Value| match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    };
    match v {
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                if let (Some(k), Some(v)) = (take(k), take(v)) {
                    out.push((k, v));
                }
            }
            out
        }
        Value::Map(items) => items
            .into_iter()
            .filter_map(|(k, v)| Some((take(k)?, take(v)?)))
            .collect(),
        _ => Vec::new(),
    }
}

/// The members of an SMEMBERS reply.
fn members(v: Value) -> Vec<Vec<u8>> {
    match v {
        Value::Array(items) | Value::Set(items) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::BulkString(b) => Some(b),
                Value::SimpleString(s) => Some(s.into_bytes()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Waits for a job's replies: `None` when Redis refused the batch (logged
/// by the writer) or the store is gone.
async fn replies(rx: oneshot::Receiver<Reply>) -> Option<Vec<Value>> {
    match rx.await {
        Ok(Ok(values)) => Some(values),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "redis store read failed");
            None
        }
        Err(_) => None,
    }
}

/// A session's keys, all of them.
fn session_keys(client: &str) -> Vec<String> {
    keys::SESSION_PARTS
        .iter()
        .map(|part| keys::session(client, part))
        .collect()
}

impl RedisPersistence {
    /// Connects to the Redis server at `url` as node `node` (the node id of
    /// a cluster: two nodes must not share one), trying for a few seconds.
    pub async fn connect(url: &str, node: &str) -> Result<Self, RedisStoreError> {
        let client = redis::Client::open(url).map_err(|e| RedisStoreError::Url {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(5))
            .set_number_of_retries(2)
            .set_factor(50)
            .set_max_delay(500);
        let deadline = tokio::time::Instant::now() + CONNECT_FOR;
        let conn = loop {
            match client
                .get_connection_manager_with_config(config.clone())
                .await
            {
                Ok(conn) => break conn,
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(RedisStoreError::Unreachable {
                        url: url.to_owned(),
                        reason: e.to_string(),
                    })
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        };
        let writer = Writer::start(conn);
        let node: Arc<str> = Arc::from(node);
        let online = Arc::new(Mutex::new(HashSet::new()));
        let waiting = Arc::new(Mutex::new(HashMap::new()));
        let (tx, rx) = mpsc::unbounded_channel();
        let (adopted, adoptions) = mpsc::unbounded_channel();
        let refresher = tokio::spawn(refresh(
            writer.clone(),
            node.clone(),
            online.clone(),
            adopted,
        ));
        // Alive (and known to the others) before anyone may ask this node
        // for a session.
        let mut known = cmd("SADD");
        known.arg(keys::NODES).arg(&*node);
        let _ = replies(writer.ask(vec![alive_cmd(&node), known])).await;
        let (subscribed, listening) = oneshot::channel();
        let listener = tokio::spawn(listen(
            client,
            writer.clone(),
            node.clone(),
            waiting.clone(),
            tx,
            subscribed,
        ));
        // Listening before the first takeover this node may ask for (or be
        // asked): an answer sent earlier would be missed, and waited for.
        if tokio::time::timeout(CONNECT_FOR, listening).await.is_err() {
            tracing::warn!(
                url,
                "redis store: pub/sub not subscribed yet; takeovers may wait"
            );
        }
        tracing::info!(url, %node, "redis store connected");
        Ok(Self {
            url: url.to_owned(),
            node,
            writer,
            last_key: AtomicU64::new(0),
            online,
            waiting,
            handovers: Mutex::new(Some(rx)),
            adoptions: Mutex::new(Some(adoptions)),
            tasks: vec![refresher.abort_handle(), listener.abort_handle()],
        })
    }

    /// The other nodes whose store is running on this Redis now (their
    /// alive key is fresh), sorted.
    ///
    /// ```no_run
    /// # async fn run(store: pigeon::persistence::RedisPersistence) {
    /// for node in store.other_live_nodes().await {
    ///     println!("sharing Redis with {node}");
    /// }
    /// # }
    /// ```
    pub async fn other_live_nodes(&self) -> Vec<String> {
        let mut c = cmd("SMEMBERS");
        c.arg(keys::NODES);
        let Some(known) = replies(self.writer.ask(vec![c])).await else {
            return Vec::new();
        };
        let others: Vec<String> = known
            .into_iter()
            .next()
            .map(members)
            .unwrap_or_default()
            .into_iter()
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .filter(|n| **n != *self.node)
            .collect();
        let checks = others
            .iter()
            .map(|n| {
                let mut c = cmd("EXISTS");
                c.arg(keys::alive(n));
                c
            })
            .collect();
        let Some(alive) = replies(self.writer.ask(checks)).await else {
            return Vec::new();
        };
        let mut live: Vec<String> = others
            .into_iter()
            .zip(alive)
            .filter(|(_, v)| matches!(v, Value::Int(1)))
            .map(|(n, _)| n)
            .collect();
        live.sort();
        live
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The URL this store was connected with.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn key(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let mut prev = self.last_key.load(Relaxed);
        loop {
            let next = now.max(prev + 1);
            match self
                .last_key
                .compare_exchange_weak(prev, next, Relaxed, Relaxed)
            {
                Ok(_) => return next,
                Err(p) => prev = p,
            }
        }
    }

    /// Commands storing `delivery` under `key` for `client`.
    fn store_copy(client: &str, key: u64, record: Vec<u8>) -> Cmd {
        let mut c = cmd("HSET");
        c.arg(keys::session(client, "msgs")).arg(key).arg(record);
        c
    }
}

/// Reads sessions (`None`: nothing stored): subscriptions, state, will and holder of each.
async fn read_sessions(
    writer: &Writer,
    clients: &[String],
) -> Vec<(String, Option<StoredSession>, Option<String>)> {
    let mut cmds = Vec::with_capacity(clients.len() * 4);
    for client in clients {
        let mut c = cmd("HGETALL");
        c.arg(keys::session(client, "subs"));
        cmds.push(c);
        for part in ["state", "will", "node"] {
            let mut c = cmd("GET");
            c.arg(keys::session(client, part));
            cmds.push(c);
        }
    }
    let Some(values) = replies(writer.ask(cmds)).await else {
        return Vec::new();
    };
    let mut values = values.into_iter();
    let mut out = Vec::with_capacity(clients.len());
    for client in clients {
        let (Some(subs), Some(state), Some(will), Some(node)) =
            (values.next(), values.next(), values.next(), values.next())
        else {
            break;
        };
        let node = bytes(&node).map(|b| String::from_utf8_lossy(b).into_owned());
        let subs = pairs(subs);
        if subs.is_empty() && bytes(&state).is_none() && bytes(&will).is_none() {
            out.push((client.clone(), None, node));
            continue;
        }
        let mut subscriptions = Vec::with_capacity(subs.len());
        for (filter, record) in subs {
            match records::decode_subscription(&record) {
                Ok(sub) => subscriptions.push(sub),
                Err(e) => tracing::warn!(
                    key = %keys::session(client, "subs"),
                    field = %String::from_utf8_lossy(&filter),
                    error = %e,
                    "bad subscription record skipped"
                ),
            }
        }
        let state = bytes(&state).and_then(|b| match records::decode_session(b) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(key = %keys::session(client, "state"), error = %e, "bad session record skipped");
                None
            }
        });
        let will_at = bytes(&will).and_then(|b| match records::decode_will(b) {
            Ok((_, due)) => due,
            Err(e) => {
                tracing::warn!(key = %keys::session(client, "will"), error = %e, "bad will record");
                None
            }
        });
        let stored = StoredSession {
            client_id: client.clone(),
            subscriptions,
            state,
            will_at,
        };
        out.push((client.clone(), Some(stored), node));
    }
    out
}

fn alive_cmd(node: &str) -> Cmd {
    let mut c = cmd("SET");
    c.arg(keys::alive(node))
        .arg("1")
        .arg("PX")
        .arg(ALIVE.as_millis() as u64);
    c
}

fn lease_cmd(node: &str, client: &str, ms: i64) -> Cmd {
    let owner = keys::owner(client);
    let mut c = eval(scripts::LEASE, &[&owner]);
    c.arg(node).arg(ms);
    c
}

/// Keeps this node's alive key and its connected clients' leases fresh.
/// Each round waits for the previous one: while Redis is away, one ping
/// waits (and the writer's retries set `failing`, what `health` reports).
async fn refresh(
    writer: Writer,
    node: Arc<str>,
    online: Arc<Mutex<HashSet<String>>>,
    adopted: mpsc::UnboundedSender<Adoption>,
) {
    let lease_every = (LEASE.as_millis() / 3 / ALIVE_REFRESH.as_millis()).max(1) as u32;
    let mut round: u32 = 0;
    loop {
        tokio::time::sleep(ALIVE_REFRESH).await;
        round = round.wrapping_add(1);
        let mut cmds = vec![alive_cmd(&node)];
        if round.is_multiple_of(lease_every) {
            let clients: Vec<String> = lock(&online).iter().cloned().collect();
            let ms = LEASE.as_millis() as i64;
            cmds.extend(clients.iter().map(|c| lease_cmd(&node, c, ms)));
        }
        let _ = writer.ask(cmds).await;
        adopt::round(&writer, &node, &adopted).await;
    }
}

/// Listens for other nodes' requests (`kick`) and answers (`released`).
async fn listen(
    client: redis::Client,
    writer: Writer,
    node: Arc<str>,
    waiting: Arc<Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>>,
    handovers: mpsc::UnboundedSender<Handover>,
    subscribed: oneshot::Sender<()>,
) {
    let mut subscribed = Some(subscribed);
    let kick = keys::kick(&node);
    let released = keys::released(&node);
    loop {
        let mut pubsub = match client.get_async_pubsub().await {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "redis store: pub/sub connection failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if let Err(e) = pubsub.subscribe(&[&kick, &released]).await {
            tracing::debug!(error = %e, "redis store: subscribe failed; retrying");
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        if let Some(subscribed) = subscribed.take() {
            let _ = subscribed.send(());
        }
        let mut messages = pubsub.on_message();
        while let Some(msg) = messages.next().await {
            let payload = String::from_utf8_lossy(msg.get_payload_bytes()).into_owned();
            if msg.get_channel_name() == released {
                for done in lock(&waiting).remove(&payload).unwrap_or_default() {
                    let _ = done.send(());
                }
                continue;
            }
            let Some((from, client_id)) = payload.split_once('\n') else {
                tracing::warn!(channel = %kick, %payload, "bad takeover request skipped");
                continue;
            };
            let (from, client_id) = (from.to_owned(), client_id.to_owned());
            let (done, let_go) = oneshot::channel();
            let handover = Handover {
                client_id: client_id.clone(),
                done,
            };
            // No engine listening: nothing to let go.
            let _ = handovers.send(handover);
            let writer = writer.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(HANDOVER_WAIT, let_go).await;
                // Behind the parked state in the writer's queue: the other
                // node reads the session after it.
                let mut c = cmd("PUBLISH");
                c.arg(keys::released(&from)).arg(client_id);
                writer.send(vec![c]);
            });
        }
        tracing::debug!("redis store: pub/sub connection lost; reconnecting");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn done<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl Persistence for RedisPersistence {
    fn store_retained(&self, message: Arc<Message>) -> BoxFuture<'_, i64> {
        let topic = message.publish.topic.to_string();
        let clear = message.publish.payload.is_empty();
        let mut c = if clear {
            let mut c = cmd("HDEL");
            c.arg(keys::RETAINED).arg(&topic);
            c
        } else {
            let mut c = cmd("HSET");
            c.arg(keys::RETAINED)
                .arg(&topic)
                .arg(records::retained(&message));
            c
        };
        let _ = &mut c;
        message.mark_stored();
        let rx = self.writer.ask(vec![c]);
        Box::pin(async move {
            let changed = replies(rx)
                .await
                .and_then(|v| v.first().map(int))
                .unwrap_or(0);
            match (clear, changed) {
                (true, 1) => -1,
                (false, 1) => 1,
                _ => 0,
            }
        })
    }

    fn retained<'a>(&'a self, filter: &'a str) -> BoxFuture<'a, Vec<Arc<Message>>> {
        let exact = !filter.contains(['+', '#']);
        let c = if exact {
            let mut c = cmd("HGET");
            c.arg(keys::RETAINED).arg(filter);
            c
        } else {
            let mut c = cmd("HGETALL");
            c.arg(keys::RETAINED);
            c
        };
        let rx = self.writer.ask(vec![c]);
        Box::pin(async move {
            let Some(mut values) = replies(rx).await else {
                return Vec::new();
            };
            let Some(value) = values.pop() else {
                return Vec::new();
            };
            let found = if exact {
                bytes(&value)
                    .map(|b| vec![(filter.as_bytes().to_vec(), b.to_vec())])
                    .unwrap_or_default()
            } else {
                pairs(value)
            };
            let mut out = Vec::new();
            for (topic, record) in found {
                let topic = String::from_utf8_lossy(&topic);
                if !exact && !pigeon_codec::topic::matches(filter, &topic) {
                    continue;
                }
                match records::decode_retained(&record) {
                    Ok(m) if !m.is_expired() => out.push(m),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(key = keys::RETAINED, field = %topic, error = %e, "bad retained record skipped")
                    }
                }
            }
            out
        })
    }

    fn add_subscriptions<'a>(
        &'a self,
        client_id: &'a str,
        subs: Vec<StoredSubscription>,
    ) -> BoxFuture<'a, ()> {
        if subs.is_empty() {
            return done(());
        }
        let key = keys::session(client_id, "subs");
        let mut c = cmd("HSET");
        c.arg(&key);
        for sub in &subs {
            c.arg(&sub.filter).arg(records::subscription(sub));
        }
        let state = keys::session(client_id, "state");
        self.writer
            .send(vec![c, eval(scripts::COPY_TTL, &[&state, &key])]);
        done(())
    }

    fn remove_subscriptions<'a>(
        &'a self,
        client_id: &'a str,
        filters: Vec<String>,
    ) -> BoxFuture<'a, ()> {
        if filters.is_empty() {
            return done(());
        }
        let mut c = cmd("HDEL");
        c.arg(keys::session(client_id, "subs")).arg(filters);
        self.writer.send(vec![c]);
        done(())
    }

    fn subscriptions<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, Vec<StoredSubscription>> {
        let mut c = cmd("HGETALL");
        c.arg(keys::session(client_id, "subs"));
        let rx = self.writer.ask(vec![c]);
        Box::pin(async move {
            let Some(mut values) = replies(rx).await else {
                return Vec::new();
            };
            let all = values.pop().map(pairs).unwrap_or_default();
            all.into_iter()
                .filter_map(|(_, record)| records::decode_subscription(&record).ok())
                .collect()
        })
    }

    fn put_will<'a>(&'a self, client_id: &'a str, will: Will) -> BoxFuture<'a, ()> {
        let key = keys::session(client_id, "will");
        let mut c = cmd("SET");
        c.arg(&key).arg(records::will(&will));
        let state = keys::session(client_id, "state");
        self.writer
            .send(vec![c, eval(scripts::COPY_TTL, &[&state, &key])]);
        done(())
    }

    fn take_will<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, Option<Will>> {
        let key = keys::session(client_id, "will");
        let mut c = cmd("GETDEL");
        c.arg(&key);
        let rx = self.writer.ask(vec![c]);
        Box::pin(async move {
            let values = replies(rx).await?;
            let record = bytes(values.first()?)?;
            match records::decode_will(record) {
                Ok((will, _)) => Some(will),
                Err(e) => {
                    tracing::warn!(%key, error = %e, "bad will record skipped");
                    None
                }
            }
        })
    }

    fn park<'a>(&'a self, client_id: &'a str, parked: Parked) -> BoxFuture<'a, ()> {
        let mut cmds = Vec::new();
        for i in &parked.inflight {
            let key = i.delivery.stored.unwrap_or_else(|| self.key());
            let record = records::delivery(&i.delivery, i.packet_id, i.released);
            cmds.push(Self::store_copy(client_id, key, record));
        }
        for d in &parked.queued {
            let key = d.stored.unwrap_or_else(|| self.key());
            cmds.push(Self::store_copy(
                client_id,
                key,
                records::delivery(d, 0, false),
            ));
        }
        let qos2 = keys::session(client_id, "qos2");
        if !parked.incoming_qos2.is_empty() {
            let mut c = cmd("SADD");
            c.arg(&qos2).arg(&parked.incoming_qos2);
            cmds.push(c);
        }
        if !cmds.is_empty() {
            let state = keys::session(client_id, "state");
            let msgs = keys::session(client_id, "msgs");
            cmds.push(eval(scripts::COPY_TTL, &[&state, &msgs, &qos2]));
        }
        let rx = self.writer.ask(cmds);
        Box::pin(async move {
            // Parked once Redis has it: the node taking the session next
            // (this one or another) reads it.
            let _ = rx.await;
        })
    }

    fn enqueue(
        &self,
        client_id: Arc<str>,
        mut delivery: Delivery,
        limits: QueueLimits,
    ) -> BoxFuture<'static, bool> {
        let key = *delivery.stored.get_or_insert_with(|| self.key());
        let record = records::delivery(&delivery, 0, false);
        let (msgs, bytes, state) = (
            keys::session(&client_id, "msgs"),
            keys::session(&client_id, "bytes"),
            keys::session(&client_id, "state"),
        );
        let mut c = eval(scripts::ENQUEUE, &[&msgs, &bytes, &state]);
        c.arg(key)
            .arg(record)
            .arg(delivery.message.cost())
            .arg(limits.messages)
            .arg(limits.bytes);
        let rx = self.writer.ask(vec![c]);
        let message = delivery.message.clone();
        Box::pin(async move {
            let accepted = replies(rx).await.and_then(|v| v.first().map(int)) == Some(1);
            if accepted {
                message.mark_stored();
            }
            accepted
        })
    }

    fn unpark<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, Parked> {
        let mut all = cmd("HGETALL");
        all.arg(keys::session(client_id, "msgs"));
        let mut ids = cmd("SMEMBERS");
        ids.arg(keys::session(client_id, "qos2"));
        // The copies stay stored until acknowledged (`forget`); the offline
        // queue's weight starts again from zero.
        let mut weight = cmd("DEL");
        weight.arg(keys::session(client_id, "bytes"));
        let rx = self.writer.ask(vec![all, ids, weight]);
        Box::pin(async move {
            let mut parked = Parked::default();
            let Some(values) = replies(rx).await else {
                return parked;
            };
            let mut values = values.into_iter();
            let (Some(all), Some(ids)) = (values.next(), values.next()) else {
                return parked;
            };
            let msgs = keys::session(client_id, "msgs");
            let mut copies = Vec::new();
            for (field, record) in pairs(all) {
                let key = std::str::from_utf8(&field)
                    .ok()
                    .and_then(|f| f.parse::<u64>().ok());
                let Some(key) = key else {
                    tracing::warn!(key = %msgs, field = %String::from_utf8_lossy(&field), "bad copy key skipped");
                    continue;
                };
                match records::decode_delivery(key, &record) {
                    Ok(stored) => copies.push((key, stored)),
                    Err(e) => {
                        tracing::warn!(key = %msgs, field = key, error = %e, "bad copy record skipped")
                    }
                }
            }
            copies.sort_by_key(|(key, _)| *key);
            for (_, stored) in copies {
                if stored.packet_id == 0 {
                    parked.queued.push_back(stored.delivery);
                } else {
                    parked.inflight.push(Inflight {
                        packet_id: stored.packet_id,
                        delivery: stored.delivery,
                        released: stored.released,
                    });
                }
            }
            for id in members(ids) {
                match std::str::from_utf8(&id).ok().and_then(|s| s.parse().ok()) {
                    Some(id) => parked.incoming_qos2.push(id),
                    None => {
                        tracing::warn!(key = %keys::session(client_id, "qos2"), "bad packet id skipped")
                    }
                }
            }
            parked
        })
    }

    fn sessions(&self) -> BoxFuture<'_, Vec<StoredSession>> {
        let mut c = cmd("SMEMBERS");
        c.arg(keys::node_sessions(&self.node));
        let rx = self.writer.ask(vec![c]);
        Box::pin(async move {
            let Some(mut values) = replies(rx).await else {
                return Vec::new();
            };
            let clients: Vec<String> = values
                .pop()
                .map(members)
                .unwrap_or_default()
                .into_iter()
                .map(|m| String::from_utf8_lossy(&m).into_owned())
                .collect();
            let mut all = Vec::new();
            let mut gone = Vec::new();
            for chunk in clients.chunks(LOAD_CHUNK) {
                for (client, stored, holder) in read_sessions(&self.writer, chunk).await {
                    match stored {
                        // Another node took it since: it is that node's.
                        Some(s) if holder.as_deref().is_none_or(|h| h == &*self.node) => {
                            all.push(s)
                        }
                        _ => gone.push(client),
                    }
                }
            }
            if !gone.is_empty() {
                let mut c = cmd("SREM");
                c.arg(keys::node_sessions(&self.node)).arg(gone);
                self.writer.send(vec![c]);
            }
            all
        })
    }

    fn remove_session<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, ()> {
        let mut del = cmd("DEL");
        del.arg(session_keys(client_id));
        let mut srem = cmd("SREM");
        srem.arg(keys::node_sessions(&self.node)).arg(client_id);
        self.writer.send(vec![del, srem]);
        done(())
    }

    fn durable(&self) -> bool {
        true
    }

    fn health(&self) -> Result<(), String> {
        if self.writer.failing.load(Relaxed) {
            let why = lock(&self.writer.last_error).clone();
            return Err(format!("redis unreachable at {}: {why}", self.url));
        }
        Ok(())
    }

    fn save_session(&self, client_id: &str, state: SessionState) {
        let mut cmds = Vec::new();
        let mut c = cmd("SET");
        c.arg(keys::session(client_id, "state"))
            .arg(records::session(&state));
        cmds.push(c);
        let mut c = cmd("SET");
        c.arg(keys::session(client_id, "node")).arg(&*self.node);
        cmds.push(c);
        let mut c = cmd("SADD");
        c.arg(keys::node_sessions(&self.node)).arg(client_id);
        cmds.push(c);
        let offline = state.offline_since.is_some();
        let ttl_ms = (state.expiry_interval != NEVER && offline).then(|| {
            (u64::from(state.expiry_interval) * 1000 + TTL_MARGIN.as_millis() as u64).max(1)
        });
        for key in session_keys(client_id) {
            let mut c = match ttl_ms {
                Some(ms) => {
                    let mut c = cmd("PEXPIRE");
                    c.arg(key).arg(ms);
                    c
                }
                None => {
                    let mut c = cmd("PERSIST");
                    c.arg(key);
                    c
                }
            };
            let _ = &mut c;
            cmds.push(c);
        }
        if offline {
            // Offline: this node still holds the session (others ask it to
            // let go) for as long as the session lives.
            lock(&self.online).remove(client_id);
            let ms = ttl_ms.map_or(0, |ms| ms as i64);
            cmds.push(lease_cmd(&self.node, client_id, ms));
        }
        self.writer.send(cmds);
    }

    fn will_due(&self, client_id: &str, at: SystemTime) {
        let key = keys::session(client_id, "will");
        let mut c = eval(scripts::WILL_DUE, &[&key]);
        c.arg(&records::unix_ms(at).to_be_bytes()[..]);
        self.writer.send(vec![c]);
    }

    fn journal(&self, client_id: &Arc<str>, delivery: &Delivery) -> u64 {
        let key = self.key();
        debug_assert!(delivery.qos != QoS::AtMostOnce);
        delivery.message.mark_stored();
        let record = records::delivery(delivery, 0, false);
        self.writer
            .send(vec![Self::store_copy(client_id, key, record)]);
        key
    }

    fn sent(&self, client_id: &Arc<str>, key: u64, packet_id: u16) {
        let msgs = keys::session(client_id, "msgs");
        let mut c = eval(scripts::SENT, &[&msgs]);
        c.arg(key).arg(&packet_id.to_be_bytes()[..]);
        self.writer.send(vec![c]);
    }

    fn released(&self, client_id: &Arc<str>, key: u64) {
        let msgs = keys::session(client_id, "msgs");
        let mut c = eval(scripts::RELEASED, &[&msgs]);
        c.arg(key);
        self.writer.send(vec![c]);
    }

    fn forget(&self, client_id: &Arc<str>, key: u64) {
        let mut c = cmd("HDEL");
        c.arg(keys::session(client_id, "msgs")).arg(key);
        self.writer.send(vec![c]);
    }

    fn incoming_qos2(&self, client_id: &Arc<str>, packet_id: u16, pending: bool) {
        let mut c = cmd(if pending { "SADD" } else { "SREM" });
        c.arg(keys::session(client_id, "qos2")).arg(packet_id);
        self.writer.send(vec![c]);
    }

    fn commit(&self) -> BoxFuture<'static, bool> {
        let rx = self.writer.barrier();
        Box::pin(async move { matches!(rx.await, Ok(Ok(_))) })
    }

    fn flush(&self) -> BoxFuture<'static, bool> {
        // Called at shutdown: this node stops counting as alive, so that a
        // node its clients move to takes their sessions without waiting for
        // it (it still answers takeovers until it is gone).
        if let Some(refresher) = self.tasks.first() {
            refresher.abort();
        }
        let mut c = cmd("DEL");
        c.arg(keys::alive(&self.node));
        self.writer.send(vec![c]);
        self.commit()
    }

    fn load_session<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, Option<StoredSession>> {
        Box::pin(async move {
            let clients = [client_id.to_owned()];
            read_sessions(&self.writer, &clients)
                .await
                .into_iter()
                .next()
                .and_then(|(_, stored, _)| stored)
        })
    }

    fn claim_session<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, Option<String>> {
        let mut c = cmd("SET");
        c.arg(keys::owner(client_id))
            .arg(&*self.node)
            .arg("PX")
            .arg(LEASE.as_millis() as u64)
            .arg("GET");
        lock(&self.online).insert(client_id.to_owned());
        let rx = self.writer.ask(vec![c]);
        Box::pin(async move {
            let values = replies(rx).await?;
            let prev = values.first().and_then(bytes)?;
            let prev = String::from_utf8_lossy(prev).into_owned();
            if prev == *self.node {
                return None;
            }
            let mut alive = cmd("EXISTS");
            alive.arg(keys::alive(&prev));
            let alive = replies(self.writer.ask(vec![alive]))
                .await
                .and_then(|v| v.first().map(int))
                == Some(1);
            if !alive {
                tracing::debug!(client_id, node = %prev, "session taken from a node that is gone");
                return Some(prev);
            }
            let (tx, rx) = oneshot::channel();
            lock(&self.waiting)
                .entry(client_id.to_owned())
                .or_default()
                .push(tx);
            let mut kick = cmd("PUBLISH");
            kick.arg(keys::kick(&prev))
                .arg(format!("{}\n{client_id}", self.node));
            self.writer.send(vec![kick]);
            if tokio::time::timeout(HANDOVER_WAIT, rx).await.is_err() {
                tracing::warn!(client_id, node = %prev, "the node holding the session did not let it go in time; taking it");
                lock(&self.waiting).remove(client_id);
                // Silent for HANDOVER_WAIT: killed (its alive key not yet
                // expired), so what it was sent for this session waits there.
                return Some(prev);
            }
            None
        })
    }

    fn release_session(&self, client_id: &str) {
        lock(&self.online).remove(client_id);
        self.writer.send(vec![lease_cmd(&self.node, client_id, -1)]);
    }

    fn handovers(&self) -> Option<mpsc::UnboundedReceiver<Handover>> {
        lock(&self.handovers).take()
    }

    fn adoptions(&self) -> Option<mpsc::UnboundedReceiver<Adoption>> {
        lock(&self.adoptions).take()
    }
}

#[cfg(test)]
mod tests;
