//! A device telemetry collector: topic patterns with named segments (`Param`)
//! and JSON payloads (`Json<T>`).
//!
//! Devices publish `{"temperature": 21.5, "humidity": 40}` to
//! `devices/<id>/telemetry`; malformed telemetry is refused; the collector keeps
//! per-device statistics and publishes them, retained, to `devices/<id>/summary`.
//!
//! `cargo run --release --example json_routes -- --port 1884`

use std::{collections::HashMap, sync::Mutex};

use clap::Parser;
use pigeon::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
struct Telemetry {
    temperature: f64,
    #[serde(default)]
    humidity: Option<f64>,
}

#[derive(Debug, Default, Clone, Serialize)]
struct Summary {
    device: String,
    readings: u64,
    min_temperature: f64,
    max_temperature: f64,
    mean_temperature: f64,
    last_humidity: Option<f64>,
}

#[injectable]
pub(crate) struct Collector {
    pigeon: PigeonService,
    #[inject(default)]
    devices: Mutex<HashMap<String, Summary>>,
}

#[handlers]
impl Collector {
    /// Only well-formed telemetry gets in (a v5 client gets PUBACK 0x87, a 3.1.1 client is disconnected).
    #[on_authorize_publish("devices/:id/telemetry")]
    async fn validate(&self, Param(id): Param<String>, payload: Payload) -> Result<(), Denied> {
        serde_json::from_slice::<Telemetry>(&payload)
            .map(drop)
            .map_err(|e| Denied::new(format!("bad telemetry from {id}: {e}")))
    }

    /// Summaries are the collector's to write.
    #[on_authorize_publish("devices/+/summary")]
    async fn summaries_are_ours(&self, client: Option<Client>) -> Result<(), Denied> {
        match client {
            Some(_) => Err(Denied::new("devices/+/summary is written by the collector")),
            None => Ok(()),
        }
    }

    #[on_publish("devices/:id/telemetry")]
    async fn collect(&self, Param(id): Param<String>, Json(t): Json<Telemetry>) {
        let summary = {
            let mut devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
            let s = devices.entry(id.clone()).or_insert_with(|| Summary {
                device: id.clone(),
                min_temperature: f64::INFINITY,
                max_temperature: f64::NEG_INFINITY,
                ..Summary::default()
            });
            s.readings += 1;
            s.min_temperature = s.min_temperature.min(t.temperature);
            s.max_temperature = s.max_temperature.max(t.temperature);
            s.mean_temperature += (t.temperature - s.mean_temperature) / s.readings as f64;
            s.last_humidity = t.humidity.or(s.last_humidity);
            s.clone()
        };
        let body = match serde_json::to_vec(&summary) {
            Ok(b) => b,
            Err(e) => return tracing::warn!("summary: {e}"),
        };
        let mut out = Publish::new(format!("devices/{id}/summary"), QoS::AtLeastOnce, body);
        out.retain = true;
        if let Err(e) = self.pigeon.publish(out).await {
            tracing::warn!("summary of {id}: {e:#}");
        }
    }

    #[on_client_error]
    async fn refused(&self, client: Client, error: Error) {
        tracing::warn!(client = client.id(), %error, "client error");
    }
}

#[module(port = 1884, id = "telemetry", providers = [Collector])]
pub(crate) struct AppModule;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = pigeon_examples::Args::parse();
    pigeon_examples::serve::<AppModule>(&args).await
}
