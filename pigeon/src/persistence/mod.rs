//! Where the broker keeps state that outlives a connection: retained messages,
//! subscriptions, wills, QoS 1/2 messages queued for offline sessions, in-flight
//! outgoing messages and incoming QoS 2 packet ids of a parked session.
//!
//! The engine always goes through [`Persistence`]; [`MemoryPersistence`] is the
//! default, [`RedbPersistence`] the durable one (`--persistence redb:PATH`).
//! Methods return boxed futures so the trait is object-safe; an
//! implementation should apply each change when the method is called (before
//! the future is polled) where it can, so the engine's ordering holds.
//!
//! A durable store ([`Persistence::durable`]) is also told, as they happen,
//! of every QoS 1/2 copy queued for a persistent session and of what becomes
//! of it (sent, released, acknowledged), and of incoming QoS 2 ids; the engine
//! acknowledges a publisher only after [`Persistence::commit`] says the copies
//! it was given are on disk.

mod memory;
mod redb;
mod redis;
mod retained;

use std::{future::ready, sync::Arc, time::SystemTime};

pub use self::redb::{Durability, RedbPersistence, StoreError};
pub use self::redis::{RedisPersistence, RedisStoreError, HANDOVER_WAIT, TTL_MARGIN};
pub use memory::MemoryPersistence;
use pigeon_codec::{Protocol, Will};

pub use crate::model::{BoxFuture, Inflight, Parked, StoredSubscription};
use crate::model::{Delivery, Message, QueueLimits};

/// What a store keeps of a persistent session besides its subscriptions and
/// messages: enough to re-arm its expiry (and its will's delay) after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    /// MQTT 5.0 Session Expiry Interval in seconds (`u32::MAX`: never).
    pub expiry_interval: u32,
    /// When its last connection ended (wall clock, so that the time the broker
    /// was down counts); `None` while connected.
    pub offline_since: Option<SystemTime>,
    /// The user name it connected with (what a restored will is authorized as).
    pub username: Option<String>,
    /// The protocol it connected with.
    pub protocol: Protocol,
}

/// A session as a store gives it back at startup.
#[derive(Debug, Clone)]
pub struct StoredSession {
    /// The client id.
    pub client_id: String,
    /// Its subscriptions.
    pub subscriptions: Vec<StoredSubscription>,
    /// Its expiry state, when the store keeps it (a durable store does).
    pub state: Option<SessionState>,
    /// When its stored will is due (wall clock): `None` if it has no will, or
    /// its connection was still open when the broker stopped.
    pub will_at: Option<SystemTime>,
}

/// What a node of a cluster took over from a node that is gone
/// ([`Persistence::adoptions`]): every session the dead node still held.
/// Once they are restored, the engine has the emitter deliver to them what
/// waited in the dead node's inbox, and retire that node's routes.
///
/// ```
/// let adoption = pigeon::persistence::Adoption { from: "node-a".into(), sessions: Vec::new() };
/// assert!(adoption.sessions.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct Adoption {
    /// The node that is gone.
    pub from: String,
    /// Its sessions, now this node's (possibly none).
    pub sessions: Vec<StoredSession>,
}

/// A request from another node of a cluster for a session this node holds
/// ([`Persistence::handovers`]): the engine closes its connection, if any
/// (MQTT 5.0: DISCONNECT 0x8E, Session taken over), lets the session state be
/// parked in the store, forgets the session (without removing it from the
/// store) and then drops `done`.
///
/// ```
/// let (done, _waiting) = tokio::sync::oneshot::channel();
/// let handover = pigeon::persistence::Handover { client_id: "dev-1".into(), done };
/// assert_eq!(handover.client_id, "dev-1");
/// ```
#[derive(Debug)]
pub struct Handover {
    /// The client id whose session another node takes.
    pub client_id: String,
    /// Dropped (or sent) once the session is let go.
    pub done: tokio::sync::oneshot::Sender<()>,
}

/// The persistence seam.
pub trait Persistence: Send + Sync + 'static {
    /// Stores a retained message (an empty payload clears the topic). Returns the
    /// change in the number of retained messages (-1, 0 or 1).
    fn store_retained(&self, message: Arc<Message>) -> BoxFuture<'_, i64>;
    /// Retained messages whose topic matches `filter`.
    fn retained<'a>(&'a self, filter: &'a str) -> BoxFuture<'a, Vec<Arc<Message>>>;
    /// Adds (or replaces, by filter) subscriptions of a persistent session.
    fn add_subscriptions<'a>(
        &'a self,
        client_id: &'a str,
        subs: Vec<StoredSubscription>,
    ) -> BoxFuture<'a, ()>;
    /// Removes subscriptions of a persistent session.
    fn remove_subscriptions<'a>(
        &'a self,
        client_id: &'a str,
        filters: Vec<String>,
    ) -> BoxFuture<'a, ()>;
    /// The stored subscriptions of a session.
    fn subscriptions<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, Vec<StoredSubscription>>;
    /// Stores the will of a connected client.
    fn put_will<'a>(&'a self, client_id: &'a str, will: Will) -> BoxFuture<'a, ()>;
    /// Removes and returns the will of a client.
    fn take_will<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, Option<Will>>;
    /// Keeps a session's message state while it is offline (appended to any
    /// already parked state).
    fn park<'a>(&'a self, client_id: &'a str, parked: Parked) -> BoxFuture<'a, ()>;
    /// Queues a QoS 1/2 message for an offline session; `false` when its queue
    /// is at `limits` (count or bytes) and the message cannot be stored. The
    /// change is applied when called; the future, which borrows nothing,
    /// reports when it is done.
    fn enqueue(
        &self,
        client_id: Arc<str>,
        delivery: Delivery,
        limits: QueueLimits,
    ) -> BoxFuture<'static, bool>;
    /// Takes a session's parked state (empty when there is none).
    fn unpark<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, Parked>;
    /// Every stored session with its subscriptions: read once at startup to
    /// rebuild the subscription index (a durable store survives restarts).
    fn sessions(&self) -> BoxFuture<'_, Vec<StoredSession>>;
    /// Forgets everything about a session (subscriptions, will, parked state).
    fn remove_session<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, ()>;

    /// True when the store outlives the process: the engine then reports every
    /// change below and waits for [`Persistence::commit`] before acknowledging.
    fn durable(&self) -> bool {
        false
    }
    /// `Err(why)` while the store cannot take changes (a failing disk, an
    /// unreachable server): `/readyz` answers 503 with it.
    fn health(&self) -> Result<(), String> {
        Ok(())
    }
    /// Records a persistent session's expiry state (on connect, and when its
    /// connection ends).
    fn save_session(&self, _client_id: &str, _state: SessionState) {}
    /// Records when a delayed will is due (wall clock).
    fn will_due(&self, _client_id: &str, _at: SystemTime) {}
    /// Keeps a QoS 1/2 copy queued for an online persistent session and
    /// returns its key. The calls made per message take the session's shared
    /// client id, so that a store keeps it without copying. Called under the session's lock, before the copy can
    /// be sent, so it must not block.
    fn journal(&self, _client_id: &Arc<str>, _delivery: &Delivery) -> u64 {
        0
    }
    /// The copy with `key` was sent with `packet_id` (or resent).
    fn sent(&self, _client_id: &Arc<str>, _key: u64, _packet_id: u16) {}
    /// QoS 2: PUBREC came for the copy with `key`, PUBREL was sent.
    fn released(&self, _client_id: &Arc<str>, _key: u64) {}
    /// The copy with `key` is acknowledged (PUBACK, PUBCOMP) or dropped.
    fn forget(&self, _client_id: &Arc<str>, _key: u64) {}
    /// An incoming QoS 2 packet id of a persistent session awaits PUBREL
    /// (`pending`), or got it.
    fn incoming_qos2(&self, _client_id: &Arc<str>, _packet_id: u16, _pending: bool) {}
    /// Resolves once every change reported so far is durable: `false` when the
    /// store could not write it (the publisher is then refused).
    fn commit(&self) -> BoxFuture<'static, bool> {
        Box::pin(ready(true))
    }
    /// A store shared by several nodes: the session of `client_id` as another
    /// node left it, read when a client resumes a session this node does not
    /// hold (`None`: no such session; the default, for a store of one node).
    fn load_session<'a>(&'a self, _client_id: &'a str) -> BoxFuture<'a, Option<StoredSession>> {
        Box::pin(ready(None))
    }
    /// A store shared by several nodes: this node takes the session of
    /// `client_id` (an ownership lease); resolves once the node that held it,
    /// if any, has let it go (bounded). Called on every CONNECT before the
    /// session is looked up. Resolves to the node it was taken from when that
    /// node is gone (killed: what other nodes sent it for this session waits
    /// in its inbox). The default does nothing.
    fn claim_session<'a>(&'a self, _client_id: &'a str) -> BoxFuture<'a, Option<String>> {
        Box::pin(ready(None))
    }
    /// A session claimed with [`Persistence::claim_session`] ended on this
    /// node (a non-persistent session's connection closed, or the session
    /// expired): the lease is given back.
    fn release_session(&self, _client_id: &str) {}
    /// A store shared by several nodes: the requests of other nodes to take
    /// sessions this node holds, taken once by the engine at start (`None`:
    /// the default, nothing is ever asked).
    fn handovers(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Handover>> {
        None
    }
    /// A store shared by several nodes: sessions this node took from a node
    /// that is gone (killed), for the engine to restore as at a restart, one
    /// [`Adoption`] per node; taken once by the engine at start (`None`: the
    /// default).
    fn adoptions(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Adoption>> {
        None
    }
    /// Resolves once every change reported so far is on disk, whatever the
    /// durability setting (a commit window is cut short): called at shutdown.
    fn flush(&self) -> BoxFuture<'static, bool> {
        self.commit()
    }
}
