//! An in-process subscriber: a session of the broker's own, with no
//! connection, read by application code (`PigeonService::subscribe`, the
//! request handlers).
//!
//! It is a real [`Session`] in the topic tree, online while the subscriber
//! lives, so publishers offer it copies exactly as they offer a client's
//! session: its queue is bounded by the same limits, a full queue makes a QoS
//! 1/2 publisher wait (and so slows its PUBACKs) instead of dropping the copy,
//! and QoS 0 is dropped only for a subscriber that took nothing for a while.
//! A subscriber that takes nothing from its full queue for `drain_timeout` is
//! told to go, as a client is: the session goes offline at once (publishers
//! waiting for room move on) and the stream ends.
//!
//! It is not in the session registry: it is no client (the admin API, client
//! lists and takeovers never see it) and its id, which holds a U+0000 no MQTT
//! string may carry, can be no client's. Its subscription counts in
//! [`Stats::subscriptions`](super::Stats::subscriptions).

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use pigeon_codec::{QoS, RetainHandling, SubscriptionOptions};
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::{stats::DropReason, Ctrl, Engine, Link, Session};
use crate::model::Delivery;

/// Deliveries taken from the queue at once: what the subscriber holds beyond
/// the queue's own limits.
const BATCH: usize = 32;

/// How a subscription is made (see [`Engine::subscribe_local`]).
pub(crate) struct LocalSubscription<'a> {
    /// A plain filter or `$share/<group>/<filter>`.
    pub filter: &'a str,
    /// The most the subscriber gets (a copy goes at the lower of this and the publisher's).
    pub qos: QoS,
    /// Whether the retained messages matching the filter are queued first.
    pub retained: bool,
    /// Whether the subscriber ends when told it is too slow (as a client is
    /// disconnected). A request server, which takes only when a call slot is
    /// free, keeps going: its publishers wait until it takes again.
    pub end_when_slow: bool,
}

/// A live in-process subscription; dropping it unsubscribes.
pub(crate) struct Subscriber {
    engine: Arc<Engine>,
    session: Arc<Session>,
    conn_id: u64,
    /// Taken from the queue, not yet handed out.
    batch: Vec<Delivery>,
    pending: VecDeque<Delivery>,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    end_when_slow: bool,
    ended: bool,
}

impl Engine {
    /// Subscribes a new in-process subscriber to `sub.filter` (checked by the caller).
    pub(crate) async fn subscribe_local(
        self: &Arc<Self>,
        sub: LocalSubscription<'_>,
    ) -> Subscriber {
        let conn_id = self.next_conn_id();
        let id: Arc<str> = Arc::from(format!("\0pigeon/subscriber/{conn_id}"));
        let session = Arc::new(Session::new(id, self.policy.clone()));
        let link = Link::new(conn_id, None, 0, 0);
        session.attach(link, false);
        if sub.end_when_slow {
            session.mark_unattended();
        }
        let options = SubscriptionOptions {
            qos: sub.qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::OnSubscribe,
        };
        self.add_subscription(&session, sub.filter, options, None, false)
            .await;
        let shared = pigeon_codec::topic::parse_shared(sub.filter).is_some();
        if sub.retained && !shared && self.config.retain_available {
            for message in self.persistence.retained(sub.filter).await {
                let qos = message.publish.qos.min(sub.qos);
                session.push(Delivery::new(message, qos, true));
            }
        }
        Subscriber {
            engine: self.clone(),
            session,
            conn_id,
            batch: Vec::new(),
            pending: VecDeque::new(),
            shutdown: Box::pin(self.shutdown.clone().cancelled_owned()),
            end_when_slow: sub.end_when_slow,
            ended: false,
        }
    }
}

impl Subscriber {
    /// The next delivery, in the order the queue got them; `None` once the
    /// broker shuts down or the subscriber was told to go (too slow).
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            if self.shutdown.as_mut().poll(cx).is_ready() {
                self.end();
                continue;
            }
            // Nothing but slowness tells an in-process subscriber anything (it
            // is in no registry, so no takeover or operator reaches it); one
            // that ends when slow was already taken offline (`TakenOver`
            // then, as its link is gone).
            match self.session.told(self.conn_id) {
                Some(Ctrl::TooSlow) if !self.end_when_slow => {}
                Some(_) => {
                    tracing::warn!(
                        "an in-process subscriber took nothing from its full queue for drain_timeout: unsubscribed"
                    );
                    self.end();
                    continue;
                }
                None => {}
            }
            while let Some(delivery) = self.pending.pop_front() {
                if delivery.message.is_expired() {
                    self.engine.stats.dropped(DropReason::Expired, 1);
                    continue;
                }
                return Poll::Ready(Some(delivery));
            }
            self.session
                .take_batch(usize::MAX, BATCH, usize::MAX, &mut self.batch);
            if !self.batch.is_empty() {
                self.pending.extend(self.batch.drain(..));
                continue;
            }
            // Registered before the next look at the queue, so a delivery
            // queued in between wakes this task.
            if self.session.poll_woken(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    /// Unsubscribes and takes the session offline; publishers waiting for
    /// room in its queue find it gone and move on.
    fn end(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.pending.clear();
        self.engine.drop_local(&self.session, self.conn_id);
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.end();
    }
}
