//! Where the broker keeps state that outlives a connection: retained messages,
//! subscriptions, wills, QoS 1/2 messages queued for offline sessions, in-flight
//! outgoing messages and incoming QoS 2 packet ids of a parked session.
//!
//! The engine always goes through [`Persistence`]; [`MemoryPersistence`] is the
//! default. Methods return boxed futures so the trait is object-safe; an
//! implementation should apply each change when the method is called (before
//! the future is polled) where it can, so the engine's ordering holds.

mod memory;

use std::sync::Arc;

pub use memory::MemoryPersistence;
use pigeon_codec::Will;

pub use crate::model::{BoxFuture, Inflight, Parked, StoredSubscription};
use crate::model::{Delivery, Message, QueueLimits};

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
    fn sessions(&self) -> BoxFuture<'_, Vec<(String, Vec<StoredSubscription>)>>;
    /// Forgets everything about a session (subscriptions, will, parked state).
    fn remove_session<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, ()>;
}
