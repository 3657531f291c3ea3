//! Local delivery: matches a message against the topic tree and offers it to
//! each subscribed session without ever waiting on a subscriber.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{
    stats::Counters,
    topic_tree::{Target, TopicTree},
    Delivery, Message, Offer,
};
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

impl Router {
    /// Offers `message` to each target; offline persistent sessions' copies go to
    /// persistence (the futures returned).
    fn offer_all<'a>(
        &'a self,
        message: &Arc<Message>,
        targets: Vec<Target>,
        offline: &mut Vec<BoxFuture<'a, bool>>,
    ) -> u64 {
        let mut dropped = 0;
        for target in targets {
            let delivery = Delivery {
                qos: message.publish.qos.min(target.qos),
                retain: target.retain_as_published && message.publish.retain,
                message: message.clone(),
                identifiers: target.identifiers,
                share: target.share,
            };
            let session = &target.session;
            // The id is only needed when the session is offline.
            let offer = session.offer(delivery, self.limit, |d| {
                self.persistence
                    .enqueue(session.client_id.clone(), d, self.limit)
            });
            match offer {
                Offer::Queued | Offer::Skipped => {}
                Offer::Dropped => dropped += 1,
                Offer::Offline(f) => offline.push(f),
            }
        }
        dropped
    }

    /// Hands a shared-subscription delivery a leaving member did not complete
    /// to another member of its group (MQTT 5.0 4.8.2). Gives it back when the
    /// group has no other member (or it is not a shared delivery).
    pub async fn redistribute(&self, leaving: &str, delivery: Delivery) -> Result<(), Delivery> {
        let Some(key) = &delivery.share else {
            return Err(delivery);
        };
        let target = self
            .tree()
            .pick_shared(key, leaving, |s| s.has_room(self.limit));
        let Some(target) = target else {
            return Err(delivery);
        };
        let mut offline = Vec::new();
        let mut dropped = self.offer_all(&delivery.message, vec![target], &mut offline);
        for f in offline {
            if !f.await {
                dropped += 1;
            }
        }
        if dropped > 0 {
            Counters::add(&self.stats.messages_dropped, dropped);
        }
        Ok(())
    }
}

impl Deliver for Router {
    fn deliver(&self, message: Arc<Message>) -> Completion<'_> {
        let mut targets = Vec::new();
        self.tree().matches(
            &message.publish.topic,
            message.origin.as_deref(),
            |s| s.has_room(self.limit),
            &mut targets,
        );
        let matched = targets.len() as u64;
        if matched > 0 {
            message.mark_matched();
        }
        let mut offline: Vec<BoxFuture<'_, bool>> = Vec::new();
        let dropped = self.offer_all(&message, targets, &mut offline);
        if dropped > 0 {
            Counters::add(&self.stats.messages_dropped, dropped);
        }
        if offline.is_empty() {
            if matched > 0 && dropped == matched {
                message.mark_unqueued();
            }
            return Completion::Done;
        }
        Completion::Pending(Box::pin(async move {
            let mut unqueued = dropped;
            for f in offline {
                if !f.await {
                    unqueued += 1;
                    Counters::add(&self.stats.messages_dropped, 1);
                    tracing::debug!(topic = %message.publish.topic, "offline queue full, message dropped");
                }
            }
            if unqueued == matched {
                message.mark_unqueued();
            }
        }))
    }
}
