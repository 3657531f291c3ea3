use std::{
    collections::HashMap,
    future::ready,
    sync::{
        atomic::{AtomicUsize, Ordering::Relaxed},
        Arc, Mutex, MutexGuard,
    },
};

use pigeon_codec::Will;

use super::{
    retained::RetainedSet, BoxFuture, Parked, Persistence, StoredSession, StoredSubscription,
};
use crate::model::{Delivery, Message, QueueLimits};

/// The default persistence: everything in process memory, lost on exit.
/// Every method does its work synchronously and returns a ready future.
///
/// Offline sessions' messages are held to a total byte budget besides each
/// session's own limits, so memory stays bounded however many sessions wait.
///
/// ```
/// let store = pigeon::persistence::MemoryPersistence::with_queue_budget(64 << 20);
/// # let _ = store;
/// ```
pub struct MemoryPersistence {
    retained: Mutex<RetainedSet>,
    sessions: Mutex<HashMap<String, Stored>>,
    /// What offline sessions' messages weigh ([`Message::cost`]), all together.
    offline_bytes: AtomicUsize,
    budget: usize,
}

#[derive(Default)]
struct Stored {
    subscriptions: Vec<StoredSubscription>,
    will: Option<Will>,
    parked: Parked,
    /// What `parked` weighs.
    bytes: usize,
}

/// The offline budget of [`MemoryPersistence::new`]: 256 MiB.
const DEFAULT_BUDGET: usize = 256 << 20;

impl Default for MemoryPersistence {
    fn default() -> Self {
        Self::with_queue_budget(DEFAULT_BUDGET)
    }
}

fn parked_bytes(parked: &Parked) -> usize {
    let queued: usize = parked.queued.iter().map(|d| d.message.cost()).sum();
    let inflight: usize = parked
        .inflight
        .iter()
        .map(|i| i.delivery.message.cost())
        .sum();
    queued + inflight
}

impl MemoryPersistence {
    /// An empty store holding offline messages to 256 MiB in all.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store holding offline messages to `bytes` in all.
    pub fn with_queue_budget(bytes: usize) -> Self {
        Self {
            retained: Mutex::default(),
            sessions: Mutex::default(),
            offline_bytes: AtomicUsize::new(0),
            budget: bytes,
        }
    }

    /// What offline sessions' stored messages weigh now.
    pub fn offline_bytes(&self) -> usize {
        self.offline_bytes.load(Relaxed)
    }

    fn forget(&self, stored: &mut Stored) {
        self.offline_bytes
            .fetch_sub(std::mem::take(&mut stored.bytes), Relaxed);
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Stored>> {
        // A poisoned lock only means another thread panicked mid-update of plain
        // data; the maps stay usable.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn retained_map(&self) -> MutexGuard<'_, RetainedSet> {
        self.retained.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn done<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(ready(value))
}

impl Persistence for MemoryPersistence {
    fn store_retained(&self, message: Arc<Message>) -> BoxFuture<'_, i64> {
        let delta = self.retained_map().store(&message);
        done(delta)
    }

    fn retained<'a>(&'a self, filter: &'a str) -> BoxFuture<'a, Vec<Arc<Message>>> {
        done(self.retained_map().matching(filter))
    }

    fn add_subscriptions<'a>(
        &'a self,
        client_id: &'a str,
        subs: Vec<StoredSubscription>,
    ) -> BoxFuture<'a, ()> {
        let mut sessions = self.sessions();
        let stored = sessions.entry(client_id.to_owned()).or_default();
        for sub in subs {
            match stored
                .subscriptions
                .iter_mut()
                .find(|s| s.filter == sub.filter)
            {
                Some(existing) => *existing = sub,
                None => stored.subscriptions.push(sub),
            }
        }
        done(())
    }

    fn remove_subscriptions<'a>(
        &'a self,
        client_id: &'a str,
        filters: Vec<String>,
    ) -> BoxFuture<'a, ()> {
        if let Some(stored) = self.sessions().get_mut(client_id) {
            stored
                .subscriptions
                .retain(|s| !filters.contains(&s.filter));
        }
        done(())
    }

    fn subscriptions<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, Vec<StoredSubscription>> {
        let subs = self
            .sessions()
            .get(client_id)
            .map(|s| s.subscriptions.clone())
            .unwrap_or_default();
        done(subs)
    }

    fn put_will<'a>(&'a self, client_id: &'a str, will: Will) -> BoxFuture<'a, ()> {
        self.sessions()
            .entry(client_id.to_owned())
            .or_default()
            .will = Some(will);
        done(())
    }

    fn take_will<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, Option<Will>> {
        let will = self
            .sessions()
            .get_mut(client_id)
            .and_then(|s| s.will.take());
        done(will)
    }

    fn park<'a>(&'a self, client_id: &'a str, parked: Parked) -> BoxFuture<'a, ()> {
        let mut sessions = self.sessions();
        let entry = sessions.entry(client_id.to_owned()).or_default();
        let bytes = parked_bytes(&parked);
        entry.bytes += bytes;
        self.offline_bytes.fetch_add(bytes, Relaxed);
        let stored = &mut entry.parked;
        stored.inflight.extend(parked.inflight);
        // Messages that reached the store while the session was handed over are
        // newer than the ones the connection still held.
        let newer = std::mem::replace(&mut stored.queued, parked.queued);
        stored.queued.extend(newer);
        stored.incoming_qos2.extend(parked.incoming_qos2);
        done(())
    }

    fn enqueue(
        &self,
        client_id: Arc<str>,
        delivery: Delivery,
        limits: QueueLimits,
    ) -> BoxFuture<'static, bool> {
        let size = delivery.message.cost();
        let mut sessions = self.sessions();
        let entry = sessions.entry(client_id.to_string()).or_default();
        let empty = entry.parked.queued.is_empty();
        let accepted = entry.parked.queued.len() < limits.messages
            && (empty || entry.bytes + size <= limits.bytes)
            && self.offline_bytes() + size <= self.budget;
        if accepted {
            entry.bytes += size;
            self.offline_bytes.fetch_add(size, Relaxed);
            entry.parked.queued.push_back(delivery);
        }
        done(accepted)
    }

    fn unpark<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, Parked> {
        let parked = self
            .sessions()
            .get_mut(client_id)
            .map(|s| {
                self.forget(s);
                std::mem::take(&mut s.parked)
            })
            .unwrap_or_default();
        done(parked)
    }

    fn sessions(&self) -> BoxFuture<'_, Vec<StoredSession>> {
        let all = self
            .sessions()
            .iter()
            .map(|(id, s)| StoredSession {
                client_id: id.clone(),
                subscriptions: s.subscriptions.clone(),
                state: None,
                will_at: None,
            })
            .collect();
        done(all)
    }

    fn remove_session<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, ()> {
        if let Some(mut stored) = self.sessions().remove(client_id) {
            self.forget(&mut stored);
        }
        done(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use pigeon_codec::{Publish, QoS};

    use super::*;

    #[tokio::test]
    async fn a_retained_message_keeps_its_own_bytes_not_the_buffer_it_came_in() {
        let store = MemoryPersistence::new();
        // A read buffer, and a PUBLISH decoded from it without a copy.
        let buffer = Bytes::from(vec![7u8; 64 * 1024]);
        let mut publish = Publish::new("r/t", QoS::AtLeastOnce, buffer.slice(100..164));
        publish.retain = true;
        publish.properties.make_mut().content_type = Some("text/plain".into());
        store.store_retained(Message::new(publish, None)).await;
        assert!(buffer.is_unique(), "the store must not pin the read buffer");
        let kept = store.retained("r/#").await;
        assert_eq!(kept.len(), 1);
        let p = &kept[0].publish;
        assert_eq!(
            (&*p.topic, &p.payload[..], p.retain),
            ("r/t", &[7u8; 64][..], true)
        );
        assert_eq!(p.properties.content_type.as_deref(), Some("text/plain"));
    }

    fn delivery(payload: &'static str) -> Delivery {
        Delivery::new(
            Message::new(Publish::new("t", QoS::AtLeastOnce, payload), None),
            QoS::AtLeastOnce,
            false,
        )
    }

    fn payloads(parked: &Parked) -> Vec<String> {
        parked
            .queued
            .iter()
            .map(|d| String::from_utf8_lossy(&d.message.publish.payload).into_owned())
            .collect()
    }

    fn limit(messages: usize) -> QueueLimits {
        QueueLimits {
            messages,
            bytes: usize::MAX,
            drain_timeout: std::time::Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn offline_queue_is_bounded_by_bytes_per_session_and_in_all() {
        let store = MemoryPersistence::with_queue_budget(3 * delivery("x").message.cost());
        let per_session = QueueLimits {
            bytes: 2 * delivery("x").message.cost(),
            ..limit(100)
        };
        let a: Arc<str> = Arc::from("a");
        let b: Arc<str> = Arc::from("b");
        assert!(store.enqueue(a.clone(), delivery("1"), per_session).await);
        assert!(store.enqueue(a.clone(), delivery("2"), per_session).await);
        assert!(
            !store.enqueue(a.clone(), delivery("3"), per_session).await,
            "a's bytes"
        );
        assert!(store.enqueue(b.clone(), delivery("4"), per_session).await);
        assert!(
            !store.enqueue(b.clone(), delivery("5"), per_session).await,
            "budget"
        );
        assert_eq!(store.offline_bytes(), 3 * delivery("x").message.cost());
        store.unpark("a").await;
        store.remove_session("b").await;
        assert_eq!(store.offline_bytes(), 0, "given back on unpark and removal");
    }

    #[tokio::test]
    async fn offline_queue_is_bounded_and_keeps_order_across_park() {
        let store = MemoryPersistence::new();
        let id: Arc<str> = Arc::from("c");
        assert!(store.enqueue(id.clone(), delivery("late1"), limit(3)).await);
        // The connection parks what it still held: older than what arrived meanwhile.
        let mut parked = Parked::default();
        parked.queued.push_back(delivery("held"));
        store.park("c", parked).await;
        assert!(store.enqueue(id.clone(), delivery("late2"), limit(3)).await);
        assert!(
            !store.enqueue(id.clone(), delivery("over"), limit(3)).await,
            "limit 3"
        );
        let parked = store.unpark("c").await;
        assert_eq!(payloads(&parked), ["held", "late1", "late2"]);
        assert!(store.unpark("c").await.queued.is_empty(), "taken");
    }

    #[tokio::test]
    async fn retained_store_replaces_clears_and_matches() {
        let store = MemoryPersistence::new();
        let msg = |t: &str, p: &'static str| {
            let mut publish = Publish::new(t.to_owned(), QoS::AtMostOnce, p);
            publish.retain = true;
            Message::new(publish, None)
        };
        assert_eq!(store.store_retained(msg("a/1", "x")).await, 1);
        assert_eq!(store.store_retained(msg("a/1", "y")).await, 0);
        assert_eq!(store.store_retained(msg("$SYS/a", "s")).await, 1);
        assert_eq!(store.retained("#").await.len(), 1, "# does not match $SYS");
        assert_eq!(store.retained("a/+").await[0].publish.payload, "y");
        assert_eq!(store.store_retained(msg("a/1", "")).await, -1);
        assert!(store.retained("a/#").await.is_empty());
    }
}
