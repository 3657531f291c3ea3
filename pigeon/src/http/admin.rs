//! The admin API under `/api/v1`: JSON in and out, errors as `{"error": ...}`,
//! lists paginated with `?page=1&limit=50`.

use std::sync::Arc;

use axum::{
    extract::{
        rejection::{JsonRejection, QueryRejection},
        Path, Query, State,
    },
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{delete, get, post},
    Json, Router,
};
use base64::Engine as _;
use bytes::Bytes;
use pigeon_codec::{Protocol, Publish, QoS};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::Http;
use crate::engine::{ClientInfo, DropReason};

type Shared = State<Arc<Http>>;

pub(super) fn routes() -> Router<Arc<Http>> {
    Router::new()
        .route("/overview", get(overview))
        .route("/history", get(history))
        .route("/clients", get(clients))
        .route("/clients/{client_id}", get(client).delete(disconnect))
        .route("/subscriptions", get(subscriptions))
        .route("/retained", get(retained))
        .route("/retained/{*topic}", delete(delete_retained))
        .route("/publish", post(publish))
}

/// A JSON error: `{"error": message}` with `status`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({ "error": message.into() });
    (status, Json(body)).into_response()
}

/// `?page=&limit=`: pages from 1, at most 1000 items each. (Each query
/// struct carries the two fields itself: `serde(flatten)` would make the URL
/// decoder see numbers as strings.)
struct Page {
    page: Option<usize>,
    limit: Option<usize>,
}

impl Page {
    /// The items of this page in their envelope, or why the page is wrong.
    fn of<T: Serialize>(&self, all: Vec<T>) -> Response {
        let page = self.page.unwrap_or(1);
        let limit = self.limit.unwrap_or(50);
        if page == 0 {
            return error(StatusCode::BAD_REQUEST, "page starts at 1");
        }
        if !(1..=1000).contains(&limit) {
            return error(StatusCode::BAD_REQUEST, "limit must be 1..=1000");
        }
        let count = all.len();
        let data: Vec<T> = all
            .into_iter()
            .skip((page - 1).saturating_mul(limit))
            .take(limit)
            .collect();
        Json(json!({
            "data": data,
            "meta": { "page": page, "limit": limit, "count": count },
        }))
        .into_response()
    }
}

fn bad_query(rejection: QueryRejection) -> Response {
    error(StatusCode::BAD_REQUEST, rejection.body_text())
}

async fn overview(State(http): Shared) -> Json<Value> {
    let engine = &http.engine;
    let stats = &engine.stats;
    let gauges = engine.gauges();
    let mut drops = serde_json::Map::new();
    drops.insert("no_subscribers".into(), stats.no_subscribers.sum().into());
    for reason in DropReason::ALL {
        drops.insert(reason.label().into(), stats.drops_of(reason).into());
    }
    Json(json!({
        "node": engine.config.id,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": http.started.elapsed().as_secs(),
        "connections": stats.clients_connected.load(std::sync::atomic::Ordering::Relaxed).max(0),
        "connections_max": stats.clients_maximum.load(std::sync::atomic::Ordering::Relaxed).max(0),
        "sessions": gauges.sessions,
        "subscriptions": gauges.subscriptions,
        "retained": stats.retained.load(std::sync::atomic::Ordering::Relaxed).max(0),
        "messages_received": stats.publish_received.sum(),
        "messages_sent": stats.publish_sent.sum(),
        "bytes_received": stats.bytes_received.sum(),
        "bytes_sent": stats.bytes_sent.sum(),
        "drops": drops,
    }))
}

async fn history(State(http): Shared) -> Json<Value> {
    Json(json!({ "interval_secs": 1, "samples": http.history.samples() }))
}

/// `?prefix=&username=&state=connected|disconnected`.
#[derive(Deserialize)]
struct ClientFilter {
    prefix: Option<String>,
    username: Option<String>,
    state: Option<String>,
    page: Option<usize>,
    limit: Option<usize>,
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::V3_1 => "3.1",
        Protocol::V3_1_1 => "3.1.1",
        Protocol::V5 => "5.0",
    }
}

fn client_json(c: &ClientInfo, with_subscriptions: bool) -> Value {
    let mut value = json!({
        "client_id": c.client_id,
        "username": c.username,
        "connected": c.connected,
        "protocol": c.protocol.map(protocol_name),
        "address": c.address.map(|a| a.to_string()),
        "listener": c.listener,
        "keep_alive": c.keep_alive,
        "connected_at": c.connected_at,
        "persistent": c.persistent,
        "subscription_count": c.subscriptions.len(),
        "queue_length": c.queue_length,
        "inflight": c.inflight,
    });
    if with_subscriptions {
        let subs: Vec<_> = c
            .subscriptions
            .iter()
            .map(|(filter, qos)| json!({ "filter": filter, "qos": *qos as u8 }))
            .collect();
        value["subscriptions"] = subs.into();
    }
    value
}

async fn clients(
    State(http): Shared,
    query: Result<Query<ClientFilter>, QueryRejection>,
) -> Response {
    let Query(filter) = match query {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    let wanted_state = match filter.state.as_deref() {
        None | Some("") => None,
        Some("connected") => Some(true),
        Some("disconnected") => Some(false),
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("state must be connected or disconnected, not {other:?}"),
            )
        }
    };
    let matching: Vec<Value> = http
        .engine
        .client_infos()
        .iter()
        .filter(|c| {
            filter
                .prefix
                .as_deref()
                .is_none_or(|p| c.client_id.starts_with(p))
        })
        .filter(|c| (filter.username.as_deref()).is_none_or(|u| c.username.as_deref() == Some(u)))
        .filter(|c| wanted_state.is_none_or(|s| c.connected == s))
        .map(|c| client_json(c, false))
        .collect();
    Page {
        page: filter.page,
        limit: filter.limit,
    }
    .of(matching)
    .into_response()
}

async fn client(State(http): Shared, Path(client_id): Path<String>) -> Response {
    match http.engine.client_info(&client_id) {
        Some(c) => Json(client_json(&c, true)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no session for client {client_id:?}"),
        ),
    }
}

async fn disconnect(State(http): Shared, Path(client_id): Path<String>) -> Response {
    if http.engine.kick_out(&client_id) {
        tracing::info!(client_id, "disconnected through the admin API");
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            format!("client {client_id:?} is not connected"),
        )
    }
}

/// `?client_id=&filter=`.
#[derive(Deserialize)]
struct SubscriptionFilter {
    client_id: Option<String>,
    filter: Option<String>,
    page: Option<usize>,
    limit: Option<usize>,
}

async fn subscriptions(
    State(http): Shared,
    query: Result<Query<SubscriptionFilter>, QueryRejection>,
) -> Response {
    let Query(wanted) = match query {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    let mut all = Vec::new();
    for c in http.engine.client_infos() {
        if wanted
            .client_id
            .as_deref()
            .is_some_and(|id| id != c.client_id)
        {
            continue;
        }
        for (filter, qos) in &c.subscriptions {
            if wanted.filter.as_deref().is_some_and(|f| f != filter) {
                continue;
            }
            all.push(json!({ "client_id": c.client_id, "filter": filter, "qos": *qos as u8 }));
        }
    }
    Page {
        page: wanted.page,
        limit: wanted.limit,
    }
    .of(all)
    .into_response()
}

/// A payload as JSON: the text when it is UTF-8, and always base64.
pub(super) fn payload_json(payload: &Bytes) -> (Value, String) {
    let text = std::str::from_utf8(payload)
        .ok()
        .map(Value::from)
        .unwrap_or(Value::Null);
    let encoded = base64::engine::general_purpose::STANDARD.encode(payload);
    (text, encoded)
}

/// `?filter=` (default `#`, and `$`-topics too).
#[derive(Deserialize)]
struct RetainedFilter {
    filter: Option<String>,
    page: Option<usize>,
    limit: Option<usize>,
}

async fn retained(
    State(http): Shared,
    query: Result<Query<RetainedFilter>, QueryRejection>,
) -> Response {
    let Query(wanted) = match query {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    if let Some(filter) = wanted.filter.as_deref() {
        if !pigeon_codec::topic::valid_topic_filter(filter) {
            return error(
                StatusCode::BAD_REQUEST,
                format!("not a topic filter: {filter:?}"),
            );
        }
    }
    let all: Vec<Value> = http
        .engine
        .retained_all()
        .await
        .into_iter()
        .filter(|r| {
            (wanted.filter.as_deref()).is_none_or(|f| pigeon_codec::topic::matches(f, &r.topic))
        })
        .map(|r| {
            let (text, encoded) = payload_json(&r.payload);
            json!({
                "topic": r.topic, "qos": r.qos as u8, "size": r.payload.len(),
                "payload": text, "payload_base64": encoded,
            })
        })
        .collect();
    Page {
        page: wanted.page,
        limit: wanted.limit,
    }
    .of(all)
    .into_response()
}

async fn delete_retained(State(http): Shared, Path(topic): Path<String>) -> Response {
    if !pigeon_codec::topic::valid_topic_name(&topic) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("not a topic name: {topic:?}"),
        );
    }
    if http.engine.delete_retained(&topic).await {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            format!("no retained message on {topic:?}"),
        )
    }
}

/// `POST /publish`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    topic: String,
    #[serde(default)]
    payload: String,
    #[serde(default)]
    qos: u8,
    #[serde(default)]
    retain: bool,
    /// `plain` (the default) or `base64`.
    encoding: Option<String>,
}

async fn publish(State(http): Shared, body: Result<Json<PublishBody>, JsonRejection>) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if !pigeon_codec::topic::valid_topic_name(&body.topic) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("not a topic name: {:?}", body.topic),
        );
    }
    let Ok(qos) = QoS::try_from(body.qos) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("qos must be 0, 1 or 2, not {}", body.qos),
        );
    };
    let payload = match body.encoding.as_deref() {
        None | Some("plain") => Bytes::from(body.payload),
        Some("base64") => match base64::engine::general_purpose::STANDARD.decode(&body.payload) {
            Ok(bytes) => Bytes::from(bytes),
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("payload is not base64: {e}"),
                )
            }
        },
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("encoding must be plain or base64, not {other:?}"),
            )
        }
    };
    if http.engine.is_shutting_down() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the broker is shutting down",
        );
    }
    let mut message = Publish::new(body.topic, qos, payload);
    message.retain = body.retain;
    http.engine.publish(None, None, message).await;
    Json(json!({ "status": "published" })).into_response()
}
