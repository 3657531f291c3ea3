//! Local delivery: matches a message against the topic tree and offers it to
//! each subscribed session without ever waiting on a subscriber.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{stats::Counters, topic_tree::TopicTree, Delivery, Message, Offer};
use crate::{
    emitter::{BoxFuture, Completion, Deliver},
    persistence::Persistence,
};

/// The [`Deliver`] sink the engine binds to its emitter.
pub struct Router {
    tree: RwLock<TopicTree>,
    persistence: Arc<dyn Persistence>,
    stats: Arc<Counters>,
    /// Per-session queue limit (`max_queued_messages`).
    limit: usize,
}

impl Router {
    /// A router with an empty topic tree; `limit` is `max_queued_messages`.
    pub fn new(persistence: Arc<dyn Persistence>, stats: Arc<Counters>, limit: usize) -> Self {
        Self {
            tree: RwLock::new(TopicTree::default()),
            persistence,
            stats,
            limit,
        }
    }

    /// Read access to the subscription index.
    pub fn tree(&self) -> RwLockReadGuard<'_, TopicTree> {
        // No invariant of the tree spans a panic point, so poisoning is ignored.
        self.tree.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Write access to the subscription index.
    pub fn tree_mut(&self) -> RwLockWriteGuard<'_, TopicTree> {
        self.tree.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Deliver for Router {
    fn deliver(&self, message: Arc<Message>) -> Completion<'_> {
        let mut matched = Vec::new();
        self.tree().matches(&message.publish.topic, &mut matched);
        let mut offline: Vec<BoxFuture<'_, bool>> = Vec::new();
        let mut dropped = 0;
        for entry in matched {
            let session = &entry.session;
            if entry.options.no_local && message.origin.as_deref() == Some(&*session.client_id) {
                continue;
            }
            message.mark_matched();
            let delivery = Delivery {
                qos: message.publish.qos.min(entry.options.qos),
                retain: entry.options.retain_as_published && message.publish.retain,
                message: message.clone(),
            };
            let id = session.client_id.clone();
            let offer = session.offer(delivery, self.limit, |d| {
                self.persistence.enqueue(id, d, self.limit)
            });
            match offer {
                Offer::Queued | Offer::Skipped => {}
                Offer::Dropped => dropped += 1,
                Offer::Offline(f) => offline.push(f),
            }
        }
        if dropped > 0 {
            Counters::add(&self.stats.messages_dropped, dropped);
        }
        if offline.is_empty() {
            return Completion::Done;
        }
        Completion::Pending(Box::pin(async move {
            for f in offline {
                if !f.await {
                    Counters::add(&self.stats.messages_dropped, 1);
                    tracing::debug!(topic = %message.publish.topic, "offline queue full, message dropped");
                }
            }
        }))
    }
}
