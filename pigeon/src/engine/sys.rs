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
        .map(|s| json!({ "topic": s.topic, "qos": s.qos() as u8 }))
        .collect();
    let payload = json!({ "clientId": client_id, "subs": subs }).to_string();
    engine.sys_publish("new/subscribers", payload).await;
}

/// `$SYS/<id>/new/unsubscribers`, payload `{"clientId":..,"subs":[filters]}`.
pub(crate) async fn new_unsubscribers(engine: &Engine, client_id: &str, filters: &[String]) {
    let payload = json!({ "clientId": client_id, "subs": filters }).to_string();
    engine.sys_publish("new/unsubscribers", payload).await;
}

/// Mosquitto's `$SYS/broker/...` tree, retained, every `sys_interval`, so
/// that dashboards made for Mosquitto read Pigeon too. Load figures are
/// Mosquitto's: exponential moving averages, per minute, over 1, 5 and 15
/// minutes.
pub(crate) async fn broker_tree(engine: Arc<Engine>) {
    let every = engine.config.sys_interval;
    let started = tokio::time::Instant::now();
    let mut loads = Loads::default();
    let mut last = Totals::read(&engine);
    let mut last_at = started;
    let version = format!("pigeon version {}", env!("CARGO_PKG_VERSION"));
    broker_publish(&engine, "version", version).await;
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = engine.shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = Totals::read(&engine);
        let elapsed = last_at.elapsed().as_secs_f64();
        if elapsed > 0.0 {
            loads.update(&last, &now, elapsed);
        }
        last = now;
        last_at = tokio::time::Instant::now();
        for (topic, value) in tree(&engine, &now, &loads, started.elapsed().as_secs()) {
            broker_publish(&engine, &topic, value).await;
        }
    }
}

/// The counters the tree reports, read at once.
#[derive(Default, Clone, Copy)]
struct Totals {
    received: u64,
    sent: u64,
    bytes_received: u64,
    bytes_sent: u64,
    connections: u64,
}

impl Totals {
    fn read(engine: &Engine) -> Self {
        let stats = &engine.stats;
        Self {
            received: stats.publish_received.sum(),
            sent: stats.publish_sent.sum(),
            bytes_received: stats.bytes_received.sum(),
            bytes_sent: stats.bytes_sent.sum(),
            connections: stats
                .connections_total
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    fn each(&self) -> [u64; 5] {
        [
            self.received,
            self.sent,
            self.bytes_received,
            self.bytes_sent,
            self.connections,
        ]
    }
}

/// What the load topics are named after, in [`Totals::each`]'s order.
const LOADS: [&str; 5] = [
    "messages/received",
    "messages/sent",
    "bytes/received",
    "bytes/sent",
    "connections",
];
/// The averaging windows, in seconds, and their names.
const WINDOWS: [(f64, &str); 3] = [(60.0, "1min"), (300.0, "5min"), (900.0, "15min")];

/// Per-minute moving averages, per [`LOADS`] entry and window.
#[derive(Default)]
struct Loads([[f64; 3]; 5]);

impl Loads {
    fn update(&mut self, last: &Totals, now: &Totals, elapsed: f64) {
        for (i, (before, after)) in last.each().into_iter().zip(now.each()).enumerate() {
            let per_minute = after.saturating_sub(before) as f64 * 60.0 / elapsed;
            for (w, (window, _)) in WINDOWS.iter().enumerate() {
                let keep = (-elapsed / window).exp();
                self.0[i][w] = self.0[i][w] * keep + per_minute * (1.0 - keep);
            }
        }
    }
}

/// Every topic of the tree but `version`, with its value.
fn tree(engine: &Engine, now: &Totals, loads: &Loads, uptime: u64) -> Vec<(String, String)> {
    let stats = &engine.stats;
    let gauges = engine.gauges();
    let connected = stats
        .clients_connected
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(0) as u64;
    let maximum = stats
        .clients_maximum
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(0);
    let retained = stats
        .retained
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(0);
    let mut topics = vec![
        ("uptime".to_owned(), format!("{uptime} seconds")),
        ("clients/connected".to_owned(), connected.to_string()),
        ("clients/total".to_owned(), gauges.sessions.to_string()),
        ("clients/maximum".to_owned(), maximum.to_string()),
        (
            "clients/disconnected".to_owned(),
            gauges.sessions.saturating_sub(connected).to_string(),
        ),
        ("messages/received".to_owned(), now.received.to_string()),
        ("messages/sent".to_owned(), now.sent.to_string()),
        (
            "publish/messages/received".to_owned(),
            now.received.to_string(),
        ),
        ("publish/messages/sent".to_owned(), now.sent.to_string()),
        ("bytes/received".to_owned(), now.bytes_received.to_string()),
        ("bytes/sent".to_owned(), now.bytes_sent.to_string()),
        (
            "subscriptions/count".to_owned(),
            gauges.subscriptions.to_string(),
        ),
        ("retained messages/count".to_owned(), retained.to_string()),
    ];
    for (i, name) in LOADS.iter().enumerate() {
        for (w, (_, window)) in WINDOWS.iter().enumerate() {
            topics.push((
                format!("load/{name}/{window}"),
                format!("{:.2}", loads.0[i][w]),
            ));
        }
    }
    topics
}

/// `$SYS/broker/<suffix>`, retained.
async fn broker_publish(engine: &Engine, suffix: &str, value: String) {
    let topic = format!("$SYS/broker/{suffix}");
    let mut publish = pigeon_codec::Publish::new(topic, pigeon_codec::QoS::AtMostOnce, value);
    publish.retain = true;
    engine.publish(None, None, publish).await;
}

#[cfg(test)]
mod tests {
    use super::{Loads, Totals};

    /// A steady 10 messages a second is 600 a minute in every window, in time.
    #[test]
    fn loads_converge_to_the_per_minute_rate() {
        let mut loads = Loads::default();
        let mut last = Totals::default();
        for _ in 0..3600 {
            let now = Totals {
                received: last.received + 100,
                ..last
            };
            loads.update(&last, &now, 10.0);
            last = now;
        }
        for w in 0..3 {
            assert!((loads.0[0][w] - 600.0).abs() < 1.0, "{:?}", loads.0[0]);
        }
        assert_eq!(loads.0[1], [0.0; 3]);
    }
}
