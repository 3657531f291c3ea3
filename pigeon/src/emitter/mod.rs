//! Message distribution, as Aedes' `mq`: the engine publishes every message
//! THROUGH an [`Emitter`] and receives what it must deliver locally FROM it
//! (through the [`Deliver`] sink it binds at startup). The default
//! [`LocalEmitter`] hands messages straight to the local sink; the clustered
//! [`RedisEmitter`] also forwards them to, and receives them from, the other
//! nodes, sending each node only what matches its subscriptions (interest-based
//! routing: the engine reports this node's interest through
//! [`Emitter::interest_added`] / [`Emitter::interest_removed`]).

mod local;
mod redis;

use std::sync::Arc;

pub use self::redis::{RedisEmitter, RedisEmitterOptions};
pub use local::LocalEmitter;

pub use crate::model::BoxFuture;
use crate::model::Message;

/// The result of handing a message on: either finished synchronously (the
/// common, allocation-free case) or a future to await.
pub enum Completion {
    /// Already handed over.
    Done,
    /// Still in progress (waiting for room in a subscriber's queue, persisting
    /// for offline sessions, or a network hop). It owns what it needs, so the
    /// publisher's connection can keep serving its own subscriptions meanwhile.
    Pending(BoxFuture<'static, ()>),
}

impl Completion {
    /// Waits for the hand-over to finish.
    pub async fn wait(self) {
        if let Completion::Pending(f) = self {
            f.await;
        }
    }
}

/// Which shared subscription groups (`$share/<group>/<filter>`) a local
/// delivery serves. A clustered emitter picks one node per group and message;
/// the other nodes deliver the message to their plain subscribers only.
///
/// ```
/// use std::sync::Arc;
/// use pigeon::emitter::Shares;
/// let picked: Vec<Arc<str>> = vec![Arc::from("$share/g/t")];
/// assert!(Shares::All.serves("$share/h/t"));
/// assert!(Shares::Only(&picked).serves("$share/g/t"));
/// assert!(!Shares::Only(&picked).serves("$share/h/t"));
/// ```
#[derive(Debug, Clone, Copy)]
pub enum Shares<'a> {
    /// Every group (a single node, or no shared subscription in the cluster matched).
    All,
    /// Only the groups with these keys.
    Only(&'a [Arc<str>]),
}

impl Shares<'_> {
    /// True when the group `key` (`$share/<group>/<filter>`) is served.
    pub fn serves(&self, key: &str) -> bool {
        match self {
            Shares::All => true,
            Shares::Only(keys) => keys.iter().any(|k| &**k == key),
        }
    }
}

/// The local delivery side: matches a message against this node's
/// subscriptions and queues it for each subscriber.
pub trait Deliver: Send + Sync + 'static {
    /// Delivers `message` to this node's subscribers.
    fn deliver(&self, message: Arc<Message>) -> Completion;

    /// As [`Deliver::deliver`], serving only the shared groups `shares` names.
    /// The default serves every group (right for a single node; a sink used
    /// by a clustered emitter should honour `shares`, as the engine's does).
    fn deliver_shares(&self, message: Arc<Message>, shares: Shares<'_>) -> Completion {
        let _ = shares;
        self.deliver(message)
    }

    /// As [`Deliver::deliver_shares`], to the sessions of `clients` only:
    /// what a node that is gone was sent for sessions that are now here. The
    /// default delivers nothing (a sink that does not know sessions).
    fn deliver_to(
        &self,
        message: Arc<Message>,
        shares: Shares<'_>,
        clients: &[Arc<str>],
    ) -> Completion {
        let _ = (message, shares, clients);
        Completion::Done
    }
}

/// Sessions that came to this node from a node that is gone (killed), for
/// [`Emitter::recover`].
///
/// ```
/// use std::sync::Arc;
/// let r = pigeon::emitter::Recovery { from: "a".into(), clients: vec![Arc::from("dev-1")], retire: false };
/// assert_eq!(r.clients.len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Recovery {
    /// The node that is gone.
    pub from: String,
    /// The sessions now here (restored before the call).
    pub clients: Vec<Arc<str>>,
    /// True when every session of `from` has been taken over (its sessions
    /// were adopted): the node will not come back for them, so its routes
    /// are retired and nothing is sent to it any more.
    pub retire: bool,
}

/// Distributes messages to every broker node, this one included.
pub trait Emitter: Send + Sync + 'static {
    /// Called once at startup with this node's delivery sink.
    fn bind(&self, local: Arc<dyn Deliver>);
    /// Distributes `message`; resolves once it is handed to every local subscriber.
    fn emit(&self, message: Arc<Message>) -> Completion;
    /// `Err(why)` while messages cannot reach the other nodes: `/readyz`
    /// answers 503 with it. A local emitter is always healthy.
    fn health(&self) -> Result<(), String> {
        Ok(())
    }
    /// This node's topic tree gained its first subscriber for `filter` (a
    /// plain filter or `$share/<group>/<filter>`), sessions restored at start
    /// included. Called with the tree locked: record it, do no I/O here. A
    /// clustered emitter tells the other nodes, which then send this node the
    /// messages matching it.
    fn interest_added(&self, filter: &str) {
        let _ = filter;
    }
    /// This node's topic tree lost its last subscriber for `filter`.
    fn interest_removed(&self, filter: &str) {
        let _ = filter;
    }
    /// Called once the engine has restored its stored sessions: a clustered
    /// emitter starts consuming its inbox then (so that what waited for this
    /// node finds its persistent sessions).
    fn start(&self) {}
    /// Copies for other nodes given up so far (a clustered emitter's QoS 0
    /// while Redis is away): `/metrics` reports them as
    /// `pigeon_messages_dropped_total{reason="cluster_unreachable"}`. A local
    /// emitter drops nothing.
    fn dropped(&self) -> u64 {
        0
    }
    /// Sessions came here from a node that is gone: a clustered emitter hands
    /// them (through [`Deliver::deliver_to`]) what other nodes had sent that
    /// node for them and it never delivered. Returns at once; the work runs
    /// in the background. The default does nothing (one node).
    fn recover(&self, recovery: Recovery) {
        let _ = recovery;
    }
    /// Called at shutdown, after the connections closed: a clustered emitter
    /// publishes its last interest changes and leaves the cluster.
    fn close(&self) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// Why a clustered emitter could not start. Each message names the option to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitterError {
    /// The URL is not one the Redis client accepts.
    #[error("invalid value for --emitter / emitter: {url}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What the client said.
        reason: String,
    },
    /// Redis did not answer within the startup grace.
    #[error("invalid value for --emitter / emitter: cannot reach Redis at {url} (tried for {secs} s): {reason}")]
    Unreachable {
        /// The URL as given.
        url: String,
        /// How long it was tried.
        secs: u64,
        /// The last error.
        reason: String,
    },
    /// A live node already uses this node id.
    #[error("invalid value for --node-id / node_id: node id {node:?} is already used by a running node (its key {key} is held by another instance); give each node its own --node-id")]
    NodeIdTaken {
        /// The node id.
        node: String,
        /// The liveness key in Redis.
        key: String,
    },
    /// The cluster's Redis holds another wire format version than this build's.
    #[error("invalid value for --emitter / emitter: the cluster at {url} uses message format {found:?}, this node speaks {ours}; run one Pigeon version per cluster")]
    FormatMismatch {
        /// The URL as given.
        url: String,
        /// What `pigeon:format` holds.
        found: String,
        /// This build's version.
        ours: u8,
    },
    /// Another Redis error at startup.
    #[error("invalid value for --emitter / emitter: Redis at {url}: {reason}")]
    Redis {
        /// The URL as given.
        url: String,
        /// What went wrong.
        reason: String,
    },
}
