//! What an operator sees and does (the admin API, metrics, the dashboard):
//! client details, gauges summed over the sessions at read time, retained
//! messages, disconnecting a client, and taps that watch messages go by.
//!
//! Nothing here runs per message except [`Taps::offer`], and that only while
//! someone watches: the router checks one flag first.

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
};

use pigeon_codec::{Protocol, Publish, QoS};
use tokio::sync::mpsc;

use super::Engine;
use crate::model::Message;

/// One session as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client identifier.
    pub client_id: String,
    /// CONNECT's user name (connected clients only).
    pub username: Option<String>,
    /// True while a connection owns the session.
    pub connected: bool,
    /// The MQTT version spoken (connected clients only).
    pub protocol: Option<Protocol>,
    /// The peer's address (connected clients only).
    pub address: Option<SocketAddr>,
    /// The listener it came through (connected clients only).
    pub listener: Option<String>,
    /// The keep alive granted, in seconds (connected clients only).
    pub keep_alive: Option<u16>,
    /// When it connected, in seconds since the Unix epoch.
    pub connected_at: Option<u64>,
    /// True when the session outlives the connection.
    pub persistent: bool,
    /// Each filter (as subscribed, `$share/...` included) and its QoS, sorted.
    pub subscriptions: Vec<(String, QoS)>,
    /// Deliveries queued for it.
    pub queue_length: usize,
    /// Messages written to it and not yet acknowledged.
    pub inflight: usize,
}

/// Totals computed over every session when read (never kept per message).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Sessions, online or not.
    pub sessions: u64,
    /// Subscriptions, shared ones included.
    pub subscriptions: u64,
    /// Shared subscriptions (`$share/...`).
    pub shared_subscriptions: u64,
    /// Distinct filters subscribed to.
    pub topics: u64,
    /// Deliveries queued over all sessions.
    pub queued: u64,
    /// The longest session queue.
    pub queued_max: u64,
}

/// A retained message as the admin API lists it.
#[derive(Debug, Clone)]
pub(crate) struct RetainedInfo {
    /// Its topic.
    pub topic: String,
    /// Its QoS.
    pub qos: QoS,
    /// Its payload.
    pub payload: bytes::Bytes,
}

/// The watchers of messages going by (the dashboard's topic monitor).
#[derive(Default)]
pub(crate) struct Taps {
    /// True while at least one tap exists: the only cost to a publish.
    any: AtomicBool,
    list: Mutex<Vec<Tap>>,
    next: AtomicU64,
}

struct Tap {
    id: u64,
    filter: String,
    tx: mpsc::Sender<Arc<Message>>,
}

/// Removes its tap when dropped.
pub(crate) struct TapGuard {
    taps: Arc<Taps>,
    id: u64,
}

impl Drop for TapGuard {
    fn drop(&mut self) {
        self.taps.remove(self.id);
    }
}

impl Taps {
    /// Hands `message` to every tap whose filter matches; a tap that is full
    /// misses it (watching never slows a publisher). Inline: without taps it
    /// is one load.
    #[inline]
    pub(crate) fn offer(&self, message: &Arc<Message>) {
        if self.any.load(Relaxed) {
            self.offer_each(message);
        }
    }

    #[cold]
    fn offer_each(&self, message: &Arc<Message>) {
        let list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        for tap in list.iter() {
            if pigeon_codec::topic::matches(&tap.filter, &message.publish.topic) {
                let _ = tap.tx.try_send(message.clone());
            }
        }
    }

    fn add(
        self: &Arc<Self>,
        filter: String,
        capacity: usize,
    ) -> (TapGuard, mpsc::Receiver<Arc<Message>>) {
        let (tx, rx) = mpsc::channel(capacity);
        let id = self.next.fetch_add(1, Relaxed);
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        list.push(Tap { id, filter, tx });
        self.any.store(true, Relaxed);
        let guard = TapGuard {
            taps: self.clone(),
            id,
        };
        (guard, rx)
    }

    fn remove(&self, id: u64) {
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|t| t.id != id);
        self.any.store(!list.is_empty(), Relaxed);
    }
}

impl Engine {
    /// Every session's details, sorted by client id.
    pub(crate) fn client_infos(&self) -> Vec<ClientInfo> {
        let mut all: Vec<_> = self.sessions().iter().map(|s| s.info()).collect();
        all.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        all
    }

    /// One session's details.
    pub(crate) fn client_info(&self, client_id: &str) -> Option<ClientInfo> {
        self.session(client_id).map(|s| s.info())
    }

    /// Disconnects `client_id` (MQTT 5.0: DISCONNECT 0x98). False when it is
    /// not connected.
    pub(crate) fn kick_out(&self, client_id: &str) -> bool {
        self.session(client_id).is_some_and(|s| s.kick_out())
    }

    /// Sums over the sessions and the topic tree.
    pub(crate) fn gauges(&self) -> Gauges {
        let mut gauges = Gauges::default();
        let mut filters = HashSet::new();
        for session in self.sessions() {
            gauges.sessions += 1;
            let queued = session.queue_len() as u64;
            gauges.queued += queued;
            gauges.queued_max = gauges.queued_max.max(queued);
            for (filter, _) in session.subscriptions() {
                gauges.subscriptions += 1;
                if pigeon_codec::topic::parse_shared(&filter).is_some() {
                    gauges.shared_subscriptions += 1;
                }
                filters.insert(filter);
            }
        }
        gauges.topics = filters.len() as u64;
        gauges
    }

    /// Every retained message (`$`-topics included), sorted by topic.
    pub(crate) async fn retained_all(&self) -> Vec<RetainedInfo> {
        let mut all = self.persistence.retained("#").await;
        all.extend(self.persistence.retained("$SYS/#").await);
        let mut all: Vec<_> = all
            .into_iter()
            .map(|m| RetainedInfo {
                topic: m.publish.topic.to_string(),
                qos: m.publish.qos,
                payload: m.publish.payload.clone(),
            })
            .collect();
        all.sort_by(|a, b| a.topic.cmp(&b.topic));
        all.dedup_by(|a, b| a.topic == b.topic);
        all
    }

    /// Deletes the retained message of `topic`. False when there was none.
    pub(crate) async fn delete_retained(&self, topic: &str) -> bool {
        let mut clear = Publish::new(topic.to_owned(), QoS::AtMostOnce, bytes::Bytes::new());
        clear.retain = true;
        let delta = self
            .persistence
            .store_retained(Message::new(clear, None))
            .await;
        if delta != 0 {
            self.stats.retained.fetch_add(delta, Relaxed);
        }
        let _ = self.persistence.commit().await;
        delta < 0
    }

    /// Watches the messages matching `filter`: each goes into the receiver
    /// (best effort, up to `capacity` waiting) until the guard is dropped.
    pub(crate) fn tap(
        &self,
        filter: String,
        capacity: usize,
    ) -> (TapGuard, mpsc::Receiver<Arc<Message>>) {
        self.router.taps.add(filter, capacity)
    }
}
