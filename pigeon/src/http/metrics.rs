//! `/metrics` in the Prometheus text format (version 0.0.4), names prefixed
//! `pigeon_` in EMQX's vocabulary. Everything is read when scraped: the hot
//! path only adds to per-core counters (`engine/stats.rs`).
//!
//! Written by hand: the format is three kinds of line, and a client library
//! would want to own the counters, which are the engine's.

use std::{fmt::Write, sync::atomic::Ordering::Relaxed, sync::Arc};

use axum::{extract::State, http::header, response::IntoResponse};

use super::{process, Http};
use crate::{
    engine::DropReason,
    hooks::timing::{Hook, BUCKETS},
};

/// The exposition being written.
struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(
            self.0,
            "# HELP pigeon_{name} {help}\n# TYPE pigeon_{name} {kind}"
        );
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let _ = write!(self.0, "pigeon_{name}");
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (key, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{key}=\"{}\"", escape(val));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A family with one unlabelled sample.
    fn one(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(super) async fn render(State(http): State<Arc<Http>>) -> impl IntoResponse {
    let mut text = Text(String::with_capacity(8 * 1024));
    clients(&http, &mut text);
    messages(&http, &mut text);
    checks(&http, &mut text);
    hooks(&http, &mut text);
    process_metrics(&http, &mut text);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text.0,
    )
}

fn clients(http: &Http, t: &mut Text) {
    let engine = &http.engine;
    let stats = &engine.stats;
    let gauges = engine.gauges();
    t.one(
        "connections",
        "gauge",
        "Clients connected now.",
        stats.clients_connected.load(Relaxed).max(0),
    );
    t.one(
        "connections_parked",
        "gauge",
        "Connected clients parked off the runtime while idle (park_idle_after).",
        stats.clients_parked.load(Relaxed).max(0),
    );
    t.one(
        "connections_max",
        "gauge",
        "The most clients connected at once since start.",
        stats.clients_maximum.load(Relaxed),
    );
    t.one(
        "connections_total",
        "counter",
        "Connections accepted since start.",
        stats.connections_total.load(Relaxed),
    );
    t.family(
        "listener_connections",
        "gauge",
        "Clients connected now, by listener.",
    );
    for (listener, n) in stats.by_listener() {
        t.sample("listener_connections", &[("listener", &listener)], n);
    }
    t.one(
        "sessions",
        "gauge",
        "Sessions, online or not.",
        gauges.sessions,
    );
    t.one(
        "subscriptions",
        "gauge",
        "Subscriptions, shared ones included.",
        gauges.subscriptions,
    );
    t.one(
        "subscriptions_shared",
        "gauge",
        "Shared subscriptions ($share/...).",
        gauges.shared_subscriptions,
    );
    t.one(
        "topics",
        "gauge",
        "Distinct topic filters subscribed to.",
        gauges.topics,
    );
    t.one(
        "retained",
        "gauge",
        "Retained messages stored.",
        stats.retained.load(Relaxed).max(0),
    );
    t.one(
        "queued_messages",
        "gauge",
        "Deliveries queued over every session.",
        gauges.queued,
    );
    t.one(
        "queued_messages_max",
        "gauge",
        "The longest session queue.",
        gauges.queued_max,
    );
    t.one(
        "queued_bytes",
        "gauge",
        "Bytes reserved by the session queues.",
        engine.policy.budget.used(),
    );
}

fn messages(http: &Http, t: &mut Text) {
    let stats = &http.engine.stats;
    let received = stats.publish_received.each();
    let sent = stats.publish_sent.each();
    t.one(
        "messages_received_total",
        "counter",
        "PUBLISH packets received from clients.",
        received.iter().sum::<u64>(),
    );
    t.one(
        "messages_sent_total",
        "counter",
        "PUBLISH packets sent to clients.",
        sent.iter().sum::<u64>(),
    );
    t.family(
        "publish_received_total",
        "counter",
        "PUBLISH packets received, by QoS.",
    );
    for (qos, n) in received.iter().enumerate() {
        t.sample("publish_received_total", &[("qos", &qos.to_string())], n);
    }
    t.family(
        "publish_sent_total",
        "counter",
        "PUBLISH packets sent, by QoS.",
    );
    for (qos, n) in sent.iter().enumerate() {
        t.sample("publish_sent_total", &[("qos", &qos.to_string())], n);
    }
    t.one(
        "bytes_received_total",
        "counter",
        "Bytes read from clients.",
        stats.bytes_received.sum(),
    );
    t.one(
        "bytes_sent_total",
        "counter",
        "Bytes written to clients.",
        stats.bytes_sent.sum(),
    );
    t.family(
        "messages_dropped_total",
        "counter",
        "Messages not delivered, by reason.",
    );
    t.sample(
        "messages_dropped_total",
        &[("reason", "no_subscribers")],
        stats.no_subscribers.sum(),
    );
    for reason in DropReason::ALL {
        t.sample(
            "messages_dropped_total",
            &[("reason", reason.label())],
            stats.drops_of(reason),
        );
    }
    // QoS 0 copies for other nodes of a cluster while Redis is away.
    t.sample(
        "messages_dropped_total",
        &[("reason", "cluster_unreachable")],
        http.engine.emitter.dropped(),
    );
}

fn checks(http: &Http, t: &mut Text) {
    let stats = &http.engine.stats;
    t.family(
        "authentication_total",
        "counter",
        "CONNECTs by authentication result.",
    );
    t.sample(
        "authentication_total",
        &[("result", "success")],
        stats.authentication.allow.sum(),
    );
    t.sample(
        "authentication_total",
        &[("result", "failure")],
        stats.authentication.deny.load(Relaxed),
    );
    t.family(
        "authorization_total",
        "counter",
        "PUBLISH and SUBSCRIBE checks by result.",
    );
    t.sample(
        "authorization_total",
        &[("result", "allow")],
        stats.authorization.allow.sum(),
    );
    t.sample(
        "authorization_total",
        &[("result", "deny")],
        stats.authorization.deny.load(Relaxed),
    );
}

fn hooks(http: &Http, t: &mut Text) {
    let hooks = &http.engine.hooks;
    let name = "hook_duration_seconds";
    t.family(
        name,
        "histogram",
        "Time the handlers of each hook took per call.",
    );
    for hook in Hook::ALL {
        let s = hooks.timings().of(hook).snapshot();
        let label = hook.label();
        for (bound, n) in BUCKETS.iter().zip(&s.cumulative) {
            let le = bound.to_string();
            t.sample(
                &format!("{name}_bucket"),
                &[("hook", label), ("le", &le)],
                n,
            );
        }
        t.sample(
            &format!("{name}_bucket"),
            &[("hook", label), ("le", "+Inf")],
            s.count,
        );
        t.sample(&format!("{name}_sum"), &[("hook", label)], s.sum_seconds);
        t.sample(&format!("{name}_count"), &[("hook", label)], s.count);
    }
    t.one(
        "events_dropped_total",
        "counter",
        "Handler events dropped by a full event queue.",
        hooks.dropped_events(),
    );
}

fn process_metrics(http: &Http, t: &mut Text) {
    let p = process::read();
    if let Some(cpu) = p.cpu_seconds {
        t.one(
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time of the broker process.",
            cpu,
        );
    }
    if let Some(rss) = p.resident_bytes {
        t.one(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory of the broker process.",
            rss,
        );
    }
    if let Some(fds) = p.open_fds {
        t.one("process_open_fds", "gauge", "Open file descriptors.", fds);
    }
    t.one(
        "uptime_seconds",
        "gauge",
        "Seconds since the broker started.",
        http.started.elapsed().as_secs(),
    );
    t.family("info", "gauge", "The broker's version and node id.");
    t.sample(
        "info",
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("node", &http.engine.config.id),
        ],
        1,
    );
}
