//! The broker engine.
//!
//! CONTRACT (public API used by the framework and the binary; the engine's
//! internals are free):
//! - `Broker::start(config, hooks)` binds the listener and returns a handle;
//! - `BrokerHandle` is cheap to clone and offers `local_addr`, `publish`,
//!   `close`, `closed`, `stats`, `clients`, `subscriptions`.

use std::{net::SocketAddr, sync::Arc};

use pigeon_codec::Publish;

use crate::{hooks::Hooks, Config};

/// Counters of a running broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub clients_connected: u64,
    pub messages_received: u64,
    pub messages_sent: u64,
    pub messages_dropped: u64,
    pub retained: u64,
    pub subscriptions: u64,
}

/// Entry point of the engine.
pub struct Broker;

impl Broker {
    /// Binds `config.host:config.port` and starts serving.
    pub async fn start(config: Config, hooks: Arc<Hooks>) -> anyhow::Result<BrokerHandle> {
        let _ = (config, hooks);
        todo!("engine")
    }
}

/// A cheap, clonable handle on a running broker.
#[derive(Clone)]
pub struct BrokerHandle {}

impl BrokerHandle {
    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        todo!("engine")
    }

    /// Publishes on behalf of the broker (bypasses authorize-publish) and resolves
    /// once the message is handed to every matching subscriber's session.
    pub async fn publish(&self, publish: Publish) -> anyhow::Result<()> {
        let _ = publish;
        todo!("engine")
    }

    /// Disconnects every client, stops listening and emits `closed`.
    pub async fn close(&self) {
        todo!("engine")
    }

    /// Resolves when the broker has closed.
    pub async fn closed(&self) {
        todo!("engine")
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        todo!("engine")
    }

    /// Ids of the connected clients.
    pub fn clients(&self) -> Vec<String> {
        todo!("engine")
    }

    /// `(client id, filter, qos)` of every subscription.
    pub fn subscriptions(&self) -> Vec<(String, String, pigeon_codec::QoS)> {
        todo!("engine")
    }
}
