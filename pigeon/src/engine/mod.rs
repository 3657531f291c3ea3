//! The engine: sessions, the topic tree, routing, expiry and `$SYS`. It does
//! no I/O and knows no connection or transport: a connection drives it through
//! [`Engine`] (publish, subscribe, take over a session) and reads what to send
//! from its [`Session`]'s queue; the seams below it (`persistence`, `emitter`,
//! hooks, ACL) are reached through traits.
//!
//! How it works: a publisher's task matches the topic tree itself (`router`)
//! and offers the shared [`Message`](crate::model::Message) to each
//! subscriber's `Session` queue without waiting; the subscriber's own task
//! drains that queue within its in-flight window. A full queue makes the
//! publisher wait (`router::Sink::wait_for_room`), never drops a QoS 1/2 copy.

mod admission;
mod budget;
mod deadlines;
mod expiry;
mod inspect;
mod router;
mod session;
mod state;
mod stats;
mod subscriber;
pub(crate) mod sys;
mod topic_tree;

pub(crate) use admission::{ConnectionCount, Slot};
pub(crate) use deadlines::{Deadlines, Due};
pub(crate) use expiry::NEVER;
pub use inspect::{ClientInfo, Gauges};
pub(crate) use session::{Ctrl, Link, Offer, Owner, Session};
pub(crate) use state::{Engine, Routed};
pub use stats::DropReason;
pub(crate) use subscriber::{LocalSubscription, Subscriber};

/// Counters of a running broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Clients with an established connection.
    pub clients_connected: u64,
    /// Connected clients that were idle for `park_idle_after` and wait off
    /// the runtime, holding no task until they are needed again.
    pub clients_parked: u64,
    /// PUBLISH packets received from clients.
    pub messages_received: u64,
    /// PUBLISH packets written to clients.
    pub messages_sent: u64,
    /// Message copies not delivered, all reasons together (see `drops`).
    pub messages_dropped: u64,
    /// Message copies not delivered, by reason.
    pub drops: Drops,
    /// Bytes the online sessions' queues have reserved from
    /// `max_queued_bytes_total` (what they hold, each copy counted at its full
    /// size, plus at most 32 KiB ahead per session).
    pub queued_bytes: u64,
    /// Retained messages stored.
    pub retained: u64,
    /// Subscriptions in the topic tree (offline persistent sessions included,
    /// and the application's own: `PigeonService::subscribe`, `#[on_request]`).
    pub subscriptions: u64,
}

/// Message copies not delivered, by reason (see [`DropReason`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drops {
    /// QoS 0 to a subscriber that took nothing from its full queue for a while.
    pub slow_subscriber: u64,
    /// QoS 1/2 refused by an offline session's full queue.
    pub queue_full: u64,
    /// QoS 0 while the broker-wide queue budget was exhausted.
    pub memory_budget: u64,
    /// Expired (MQTT 5.0 Message Expiry Interval) before they could be sent.
    pub expired: u64,
    /// Larger than the subscriber's Maximum Packet Size.
    pub too_large: u64,
}
