use std::{
    collections::HashMap,
    future::ready,
    sync::{Arc, Mutex, MutexGuard},
};

use pigeon_codec::{topic, Will};

use super::{BoxFuture, Parked, Persistence, StoredSubscription};
use crate::broker::{Delivery, Message};

/// The default persistence: everything in process memory, lost on exit.
/// Every method does its work synchronously and returns a ready future.
#[derive(Default)]
pub struct MemoryPersistence {
    retained: Mutex<HashMap<String, Arc<Message>>>,
    sessions: Mutex<HashMap<String, Stored>>,
}

#[derive(Default)]
struct Stored {
    subscriptions: Vec<StoredSubscription>,
    will: Option<Will>,
    parked: Parked,
}

impl MemoryPersistence {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Stored>> {
        // A poisoned lock only means another thread panicked mid-update of plain
        // data; the maps stay usable.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn retained_map(&self) -> MutexGuard<'_, HashMap<String, Arc<Message>>> {
        self.retained.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn done<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(ready(value))
}

impl Persistence for MemoryPersistence {
    fn store_retained(&self, message: Arc<Message>) -> BoxFuture<'_, i64> {
        let topic = message.publish.topic.to_string();
        let mut map = self.retained_map();
        let delta = if message.publish.payload.is_empty() {
            -i64::from(map.remove(&topic).is_some())
        } else {
            i64::from(map.insert(topic, message).is_none())
        };
        done(delta)
    }

    fn retained<'a>(&'a self, filter: &'a str) -> BoxFuture<'a, Vec<Arc<Message>>> {
        let map = self.retained_map();
        let found = map
            .iter()
            .filter(|(t, _)| topic::matches(filter, t))
            .map(|(_, m)| m.clone())
            .collect();
        done(found)
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
        let stored = &mut sessions.entry(client_id.to_owned()).or_default().parked;
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
        limit: usize,
    ) -> BoxFuture<'_, bool> {
        let mut sessions = self.sessions();
        let stored = &mut sessions.entry(client_id.to_string()).or_default().parked;
        let accepted = stored.queued.len() < limit;
        if accepted {
            stored.queued.push_back(delivery);
        }
        done(accepted)
    }

    fn unpark<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, Parked> {
        let parked = self
            .sessions()
            .get_mut(client_id)
            .map(|s| std::mem::take(&mut s.parked))
            .unwrap_or_default();
        done(parked)
    }

    fn sessions(&self) -> BoxFuture<'_, Vec<(String, Vec<StoredSubscription>)>> {
        let all = self
            .sessions()
            .iter()
            .map(|(id, s)| (id.clone(), s.subscriptions.clone()))
            .collect();
        done(all)
    }

    fn remove_session<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, ()> {
        self.sessions().remove(client_id);
        done(())
    }
}

#[cfg(test)]
mod tests {
    use pigeon_codec::{Publish, QoS};

    use super::*;

    fn delivery(payload: &'static str) -> Delivery {
        Delivery {
            message: Message::new(Publish::new("t", QoS::AtLeastOnce, payload), None),
            qos: QoS::AtLeastOnce,
            retain: false,
        }
    }

    fn payloads(parked: &Parked) -> Vec<String> {
        parked
            .queued
            .iter()
            .map(|d| String::from_utf8_lossy(&d.message.publish.payload).into_owned())
            .collect()
    }

    #[tokio::test]
    async fn offline_queue_is_bounded_and_keeps_order_across_park() {
        let store = MemoryPersistence::new();
        let id: Arc<str> = Arc::from("c");
        assert!(store.enqueue(id.clone(), delivery("late1"), 3).await);
        // The connection parks what it still held: older than what arrived meanwhile.
        let mut parked = Parked::default();
        parked.queued.push_back(delivery("held"));
        store.park("c", parked).await;
        assert!(store.enqueue(id.clone(), delivery("late2"), 3).await);
        assert!(
            !store.enqueue(id.clone(), delivery("over"), 3).await,
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
