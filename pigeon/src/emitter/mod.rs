//! Message distribution, as Aedes' `mq`: the engine publishes every message
//! THROUGH an [`Emitter`] and receives what it must deliver locally FROM it
//! (through the [`Deliver`] sink it binds at startup). The default
//! [`LocalEmitter`] hands messages straight to the local sink; a clustered
//! emitter (e.g. Redis) would also forward them to, and receive them from, the
//! other nodes.

mod local;

use std::sync::Arc;

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

/// The local delivery side: matches a message against this node's
/// subscriptions and queues it for each subscriber.
pub trait Deliver: Send + Sync + 'static {
    /// Delivers `message` to this node's subscribers.
    fn deliver(&self, message: Arc<Message>) -> Completion;
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
}
