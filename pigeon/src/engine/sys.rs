//! The broker's `$SYS/<id>/...` topics (heartbeat, client and subscription notices).

use std::sync::Arc;

use serde_json::json;

use super::Engine;
use crate::hooks::Subscription;

/// Publishes `$SYS/<id>/heartbeat` (payload: the broker id) every
/// `heartbeat_interval` until shutdown.
pub(crate) async fn heartbeat(engine: Arc<Engine>) {
    let every = engine.config.heartbeat_interval;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = engine.shutdown.cancelled() => return,
            _ = ticks.tick() => {
                let id = engine.config.id.clone();
                engine.sys_publish("heartbeat", id).await;
            }
        }
    }
}

/// `$SYS/<id>/new/clients`, payload: the client id.
pub(crate) async fn new_client(engine: &Engine, client_id: &str) {
    engine
        .sys_publish("new/clients", client_id.to_owned())
        .await;
}

/// `$SYS/<id>/disconnect/clients`, payload: the client id.
pub(crate) async fn disconnect_client(engine: &Engine, client_id: &str) {
    engine
        .sys_publish("disconnect/clients", client_id.to_owned())
        .await;
}

/// `$SYS/<id>/new/subscribers`, payload `{"clientId":..,"subs":[{"topic":..,"qos":..}]}`.
pub(crate) async fn new_subscribers(engine: &Engine, client_id: &str, subs: &[Subscription]) {
    let subs: Vec<_> = subs
        .iter()
        .map(|s| json!({ "topic": s.topic, "qos": s.qos as u8 }))
        .collect();
    let payload = json!({ "clientId": client_id, "subs": subs }).to_string();
    engine.sys_publish("new/subscribers", payload).await;
}

/// `$SYS/<id>/new/unsubscribers`, payload `{"clientId":..,"subs":[filters]}`.
pub(crate) async fn new_unsubscribers(engine: &Engine, client_id: &str, filters: &[String]) {
    let payload = json!({ "clientId": client_id, "subs": filters }).to_string();
    engine.sys_publish("new/unsubscribers", payload).await;
}
