//! The operator's HTTP listener (`--http HOST:PORT`, off unless set), on axum:
//!
//! - `/metrics`: Prometheus text format ([`metrics`]);
//! - `/healthz` and `/readyz` ([`health`]);
//! - the admin API under `/api/v1` ([`admin`]; a bearer token, [`auth`]),
//!   with the topic monitor as server-sent events ([`monitor`]);
//! - the dashboard at `/` ([`dashboard`]: assets embedded in the binary).
//!
//! It reads the engine; nothing in the engine knows of it.

mod admin;
mod auth;
mod dashboard;
mod health;
mod history;
mod metrics;
mod monitor;
mod process;

use std::{net::SocketAddr, sync::Arc, time::Instant};

use axum::{middleware, routing::get, Router};
use tokio::net::TcpListener;

use crate::engine::Engine;

/// What every handler reads.
pub(crate) struct Http {
    engine: Arc<Engine>,
    started: Instant,
    history: history::History,
}

/// Binds the HTTP listener (before the broker reports itself started, so a
/// taken port fails startup).
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves the HTTP listener until the broker shuts down.
pub(crate) fn spawn(engine: Arc<Engine>, listener: TcpListener) {
    let http = Arc::new(Http {
        engine: engine.clone(),
        started: Instant::now(),
        history: history::History::default(),
    });
    if engine.config.admin_token.is_none() {
        tracing::warn!("the admin API and dashboard refuse every request: no admin_token is set");
    }
    let app = routes(http.clone());
    let shutdown = engine.shutdown.clone();
    engine
        .tracker
        .spawn(history::sample(http.clone(), shutdown.clone()));
    engine.tracker.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the HTTP listener failed");
        }
    });
}

fn routes(http: Arc<Http>) -> Router {
    let api = admin::routes()
        .route("/monitor", get(monitor::stream))
        .route_layer(middleware::from_fn_with_state(http.clone(), auth::require));
    Router::new()
        .route("/metrics", get(metrics::render))
        .route("/healthz", get(health::alive))
        .route("/readyz", get(health::ready))
        .nest("/api/v1", api)
        .merge(dashboard::routes())
        .with_state(http)
}
