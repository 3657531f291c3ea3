//! `GET /api/v1/monitor?filter=...`: the messages matching a filter, as
//! server-sent events, while the page watches. Best effort: a reader that
//! falls 256 messages behind misses the next ones; the broker never waits.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{sse::Event, IntoResponse, Response, Sse},
};
use futures_util::stream;
use serde::Deserialize;
use serde_json::json;

use super::{
    admin::{error, payload_json},
    Http,
};

/// Messages waiting for a slow reader, at most.
const BACKLOG: usize = 256;

#[derive(Deserialize)]
pub(super) struct Watch {
    filter: Option<String>,
}

pub(super) async fn stream(State(http): State<Arc<Http>>, Query(watch): Query<Watch>) -> Response {
    let Some(filter) = watch.filter.filter(|f| !f.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "give a topic filter: ?filter=a/%23",
        );
    };
    if !pigeon_codec::topic::valid_topic_filter(&filter) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("not a topic filter: {filter:?}"),
        );
    }
    let (guard, rx) = http.engine.tap(filter, BACKLOG);
    let shutdown = http.engine.shutdown.clone();
    // The guard lives in the stream's state: the tap goes when the page does.
    let events = stream::unfold(
        (rx, guard, shutdown),
        |(mut rx, guard, shutdown)| async move {
            let message = tokio::select! {
                _ = shutdown.cancelled() => return None,
                m = rx.recv() => m?,
            };
            let p = &message.publish;
            let (text, encoded) = payload_json(&p.payload);
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let data = json!({
                "topic": p.topic.as_ref() as &str, "qos": p.qos as u8, "retain": p.retain,
                "size": p.payload.len(), "payload": text, "payload_base64": encoded, "at": at,
            });
            let event = Event::default().data(data.to_string());
            Some((Ok::<_, Infallible>(event), (rx, guard, shutdown)))
        },
    );
    Sse::new(events)
        .keep_alive(axum::response::sse::KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
