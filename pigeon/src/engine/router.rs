//! Local delivery: matches a message against the topic tree and offers it to
//! each subscribed session. A copy that finds its session's queue full makes
//! the delivery wait for room (backpressure on the publisher) instead of
//! dropping it; only QoS 0 to a subscriber that is not keeping up is dropped.

use std::{cell::Cell, sync::Arc};

use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard, ShardedLockWriteGuard};

use super::{
    budget::QueuePolicy,
    stats::{Counters, DropReason},
    topic_tree::{Target, TopicTree},
    Offer, Session,
};
use crate::{
    emitter::{Completion, Deliver, Shares},
    model::{BoxFuture, Delivery, Message},
    persistence::Persistence,
};

thread_local! {
    /// This thread's spare vector for a publish's targets.
    static TARGETS: Cell<Vec<Target<'static>>> = const { Cell::new(Vec::new()) };
}

/// Spare targets vectors no larger than this are kept (a fan-out to more
/// subscribers allocates its own).
const SPARE_TARGETS: usize = 64;

/// An empty vector for a publish's targets: this thread's spare, so that
/// routing a message allocates none (allocating and freeing one was some
/// 150 instructions of a QoS 1 message's 4600 in the pairs benchmark).
fn spare_targets<'a>() -> Vec<Target<'a>> {
    relifetime(TARGETS.take())
}

/// Keeps an emptied targets vector as this thread's spare.
fn give_targets(targets: Vec<Target<'_>>) {
    if targets.capacity() <= SPARE_TARGETS {
        TARGETS.set(relifetime(targets));
    }
}

/// The same allocation, emptied, for targets borrowed for another lifetime:
/// collecting a `vec::IntoIter` into elements of the same size and alignment
/// reuses its allocation (and, were it not to, would only allocate anew). It
/// is empty, so the closure never runs.
fn relifetime<'b>(mut targets: Vec<Target<'_>>) -> Vec<Target<'b>> {
    targets.clear();
    targets
        .into_iter()
        .map(|_| unreachable!("the vector is empty"))
        .collect()
}

/// The [`Deliver`] sink the engine binds to its emitter.
pub(crate) struct Router {
    /// Read on every publish, from every core: a sharded lock, whose readers
    /// each take the shard of their own thread (writers take them all).
    tree: ShardedLock<TopicTree>,
    sink: Arc<Sink>,
    /// Watchers of the messages going by (the admin API's monitor).
    pub(crate) taps: Arc<super::inspect::Taps>,
}

/// What offering a copy needs, shared with the futures that wait for room.
struct Sink {
    persistence: Arc<dyn Persistence>,
    stats: Arc<Counters>,
    policy: Arc<QueuePolicy>,
}

/// A copy that could not be queued at once.
enum Waiting {
    /// The session's queue is full: wait for room.
    Full(Arc<Session>, Delivery),
    /// Going to the offline session's stored queue.
    Offline(BoxFuture<'static, bool>),
}

/// How the copies of one message fared.
#[derive(Default)]
struct Tally {
    /// Copies queued (online, or in an offline session's store).
    queued: u64,
    /// QoS 1/2 copies an offline session's full store refused.
    unqueued: u64,
}

/// What became of one copy that had to wait.
enum Fate {
    Queued,
    /// Refused by an offline session's full store (QoS 1/2).
    Refused,
    /// Dropped (QoS 0) or not for the session any more.
    Gone,
}

impl Fate {
    fn stored(stored: bool) -> Self {
        if stored {
            Fate::Queued
        } else {
            Fate::Refused
        }
    }
}

impl Router {
    /// A router with an empty topic tree, holding sessions to `policy`.
    pub(crate) fn new(
        persistence: Arc<dyn Persistence>,
        stats: Arc<Counters>,
        policy: Arc<QueuePolicy>,
    ) -> Self {
        Self {
            tree: ShardedLock::new(TopicTree::default()),
            sink: Arc::new(Sink {
                persistence,
                stats,
                policy,
            }),
            taps: Arc::default(),
        }
    }

    /// Read access to the subscription index.
    pub(crate) fn tree(&self) -> ShardedLockReadGuard<'_, TopicTree> {
        // No invariant of the tree spans a panic point, so poisoning is ignored.
        self.tree.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Write access to the subscription index.
    pub(crate) fn tree_mut(&self) -> ShardedLockWriteGuard<'_, TopicTree> {
        self.tree.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands a shared-subscription delivery a leaving member did not complete
    /// to another member of its group (MQTT 5.0 4.8.2). Gives it back when the
    /// group has no other member (or it is not a shared delivery).
    pub(crate) async fn redistribute(
        &self,
        leaving: &str,
        delivery: Delivery,
    ) -> Result<(), Delivery> {
        let Some(key) = &delivery.share else {
            return Err(delivery);
        };
        let mut waiting = Vec::new();
        let mut tally = Tally::default();
        {
            // The target borrows from the tree: offered under its read lock.
            let tree = self.tree();
            let Some(target) = tree.pick_shared(key, leaving, Session::has_room) else {
                return Err(delivery);
            };
            self.sink.offer_all(
                &delivery.message,
                &mut vec![target],
                &mut waiting,
                &mut tally,
            );
        }
        self.sink.clone().settle(waiting, &mut tally).await;
        Ok(())
    }
}

impl Sink {
    /// Offers `message` to each target; copies that cannot be queued at once
    /// go to `waiting`. Called under the tree's read lock (the targets borrow
    /// from it), which is why offering must never take the tree's lock: it
    /// takes only the session's, and the store's `journal`/`enqueue` take
    /// only their own, under which nothing takes the tree's.
    fn offer_all(
        &self,
        message: &Arc<Message>,
        targets: &mut Vec<Target<'_>>,
        waiting: &mut Vec<Waiting>,
        tally: &mut Tally,
    ) {
        for target in targets.drain(..) {
            let delivery = Delivery {
                qos: message.publish.qos.min(target.qos),
                retain: target.retain_as_published && message.publish.retain,
                message: message.clone(),
                identifiers: target.identifiers.into_boxed_slice(),
                share: target.share.cloned(),
                stored: None,
            };
            match self.offer(target.session, delivery) {
                Offer::Queued => tally.queued += 1,
                Offer::Skipped => {}
                Offer::Dropped(reason) => self.stats.dropped(reason, 1),
                Offer::Offline(f) => waiting.push(Waiting::Offline(f)),
                Offer::Full { delivery, .. } => {
                    waiting.push(Waiting::Full(target.session.clone(), delivery))
                }
            }
        }
    }

    fn offer(&self, session: &Session, delivery: Delivery) -> Offer {
        let limits = self.policy.limits;
        let persistence = &self.persistence;
        session.offer_journaled(
            delivery,
            |d| {
                persistence
                    .durable()
                    .then(|| persistence.journal(&session.client_id, d))
            },
            |d| persistence.enqueue(session.client_id.clone(), d, limits),
        )
    }

    /// Waits until every copy in `waiting` is queued or given up on.
    async fn settle(self: Arc<Self>, waiting: Vec<Waiting>, tally: &mut Tally) {
        for wait in waiting {
            let fate = match wait {
                Waiting::Offline(f) => Fate::stored(f.await),
                Waiting::Full(session, delivery) => self.wait_for_room(&session, delivery).await,
            };
            match fate {
                Fate::Queued => tally.queued += 1,
                Fate::Refused => {
                    tally.unqueued += 1;
                    self.stats.dropped(DropReason::QueueFull, 1);
                }
                Fate::Gone => {}
            }
        }
    }

    /// Offers `delivery` again each time `session` (or the broker-wide budget)
    /// may have room, until it is queued, stored, dropped or skipped.
    async fn wait_for_room(&self, session: &Session, mut delivery: Delivery) -> Fate {
        loop {
            // Registered before the offer, so a release between the offer's
            // check and the wait is not missed (the session's own wake-up
            // comes with the offer, made under the lock that found it full).
            let budget = self.policy.budget.room();
            tokio::pin!(budget);
            budget.as_mut().enable();
            match self.offer(session, delivery) {
                Offer::Queued => return Fate::Queued,
                Offer::Skipped => return Fate::Gone,
                Offer::Dropped(reason) => {
                    self.stats.dropped(reason, 1);
                    return Fate::Gone;
                }
                Offer::Offline(f) => return Fate::stored(f.await),
                Offer::Full {
                    delivery: again,
                    recheck,
                    room,
                } => {
                    delivery = again;
                    tokio::select! {
                        _ = room => {}
                        _ = budget => {}
                        _ = tokio::time::sleep_until(recheck) => {}
                    }
                }
            }
        }
    }
}

impl Deliver for Router {
    fn deliver(&self, message: Arc<Message>) -> Completion {
        self.deliver_shares(message, Shares::All)
    }

    /// Local delivery, serving only the shared groups `shares` names (a
    /// clustered emitter's choice: each group's message goes to one node).
    fn deliver_shares(&self, message: Arc<Message>, shares: Shares<'_>) -> Completion {
        self.taps.offer(&message);
        let mut targets = spare_targets();
        let tree = self.tree();
        tree.matches_serving(
            &message.publish.topic,
            message.origin.as_deref(),
            Session::has_room,
            |key| shares.serves(key),
            &mut targets,
        );
        self.hand_out(message, targets)
    }

    /// Only to the sessions of `clients`: a shared group's message goes to
    /// one of them when its pick is one (a group is served once, not by every
    /// node a member moved to).
    fn deliver_to(
        &self,
        message: Arc<Message>,
        shares: Shares<'_>,
        clients: &[Arc<str>],
    ) -> Completion {
        let mut targets = spare_targets();
        let wanted = |s: &Session| clients.contains(&s.client_id);
        let tree = self.tree();
        tree.matches_serving(
            &message.publish.topic,
            message.origin.as_deref(),
            |s| wanted(s) && s.has_room(),
            |key| shares.serves(key),
            &mut targets,
        );
        targets.retain(|t| wanted(t.session));
        if targets.is_empty() {
            give_targets(targets);
            return Completion::Done; // for sessions elsewhere: not a loss
        }
        self.hand_out(message, targets)
    }
}

impl Router {
    /// Queues `message` for each of `targets` (borrowed from the tree, whose
    /// read lock the caller holds until this returns).
    #[inline]
    fn hand_out(&self, message: Arc<Message>, mut targets: Vec<Target<'_>>) -> Completion {
        if targets.is_empty() {
            give_targets(targets);
            // The broker's own `$SYS` notices are not counted as lost.
            if !message.publish.topic.starts_with('$') {
                self.sink.stats.no_subscribers.add(1);
            }
            return Completion::Done;
        }
        message.mark_matched();
        let mut waiting = Vec::new();
        let mut tally = Tally::default();
        self.sink
            .offer_all(&message, &mut targets, &mut waiting, &mut tally);
        give_targets(targets);
        if waiting.is_empty() {
            if tally.queued == 0 && tally.unqueued > 0 {
                message.mark_unqueued();
            }
            return Completion::Done;
        }
        let sink = self.sink.clone();
        Completion::Pending(Box::pin(async move {
            sink.settle(waiting, &mut tally).await;
            if tally.queued == 0 && tally.unqueued > 0 {
                message.mark_unqueued();
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spare vector is the point: routing on this thread takes back the
    /// allocation the last publish gave, whatever the lifetime it borrowed for.
    #[test]
    fn a_targets_vector_given_back_is_reused() {
        let mut first = spare_targets();
        first.reserve(4);
        let ptr = first.as_ptr() as usize;
        give_targets(first);
        let again = spare_targets();
        assert_eq!(again.as_ptr() as usize, ptr, "the same allocation");
        assert!(again.is_empty() && again.capacity() >= 4);

        let mut large = spare_targets();
        large.reserve(SPARE_TARGETS + 1);
        give_targets(large);
        assert_eq!(spare_targets().capacity(), 0, "a large one is not kept");
    }
}
