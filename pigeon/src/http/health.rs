//! `/healthz`: the process answers. `/readyz`: it can serve: listeners bound,
//! not shutting down, and the persistence and emitter back-ends healthy.

use std::sync::Arc;

use axum::{extract::State, http::StatusCode, Json};
use serde_json::{json, Value};

use super::Http;

pub(super) async fn alive() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub(super) async fn ready(State(http): State<Arc<Http>>) -> (StatusCode, Json<Value>) {
    let engine = &http.engine;
    // The listeners were bound before this server started; they stop at shutdown.
    let listeners = if engine.is_shutting_down() {
        Err("the broker is shutting down".to_owned())
    } else {
        Ok(())
    };
    let checks = [
        ("listeners", listeners),
        ("persistence", engine.persistence.health()),
        ("emitter", engine.emitter.health()),
    ];
    let mut report = serde_json::Map::new();
    let mut reasons = Vec::new();
    for (name, check) in checks {
        match check {
            Ok(()) => {
                report.insert(name.into(), "ok".into());
            }
            Err(why) => {
                reasons.push(format!("{name}: {why}"));
                report.insert(name.into(), why.into());
            }
        }
    }
    if reasons.is_empty() {
        let body = json!({ "status": "ready", "checks": report });
        (StatusCode::OK, Json(body))
    } else {
        let body = json!({ "status": "not ready", "reason": reasons.join("; "), "checks": report });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}
