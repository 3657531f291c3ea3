//! A device registry answering typed requests (`#[on_request]`): any MQTT
//! client calls it, no client library of ours needed.
//!
//! - `rpc/devices/register` with `{"id": "th-1", "model": "thermo"}` answers
//!   the registered device, or an error if the id is taken or empty;
//! - `rpc/devices/<id>/get` answers the device, or an error if it is unknown.
//!
//! An MQTT 5 requester sets the Response Topic (and Correlation Data) of its
//! request; the answer arrives there with the same Correlation Data, Content
//! Type `application/json`, and for an error the user property `error`. A
//! 3.1.1 requester wraps its request in the JSON envelope
//! `{"response_topic": "...", "correlation_data": ..., "payload": {...}}` and
//! gets `{"correlation_data": ..., "payload": ...}` or `{..., "error": "..."}`.
//!
//! Once listening, the registry announces its methods, retained, on
//! `services/devices` (an init hook).
//!
//! `cargo run --release --example rpc -- --port 1884`, then e.g.
//! `mosquitto_rr -V 5 -p 1884 -t rpc/devices/register -e replies/me -m '{"id":"th-1","model":"thermo"}'`

use std::{collections::HashMap, fmt, sync::Mutex};

use clap::Parser;
use pigeon::prelude::*;
use serde::{Deserialize, Serialize};

/// What `register` is asked.
#[derive(Debug, Deserialize)]
pub(crate) struct Register {
    id: String,
    model: String,
}

/// A registered device, as every method answers it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Device {
    id: String,
    model: String,
    /// The client that registered it (`None` for the application's own requests).
    registered_by: Option<String>,
}

/// Why a request is refused: its message is the answer's `error`.
#[derive(Debug)]
pub(crate) enum RegistryError {
    EmptyId,
    Taken(String),
    Unknown(String),
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyId => write!(f, "a device id may not be empty"),
            Self::Taken(id) => write!(f, "device {id} is already registered"),
            Self::Unknown(id) => write!(f, "no device {id}"),
        }
    }
}

/// The methods announced on `services/devices`.
const METHODS: &str = r#"{"methods":["rpc/devices/register","rpc/devices/:id/get"]}"#;

#[injectable(init = Self::announce)]
pub(crate) struct Registry {
    pigeon: PigeonService,
    #[inject(default)]
    devices: Mutex<HashMap<String, Device>>,
}

impl Registry {
    /// Runs once the broker listens: a late subscriber still learns the methods.
    async fn announce(&self) -> Result<(), pigeon::broker::PublishError> {
        let mut methods = Publish::new("services/devices", QoS::AtLeastOnce, METHODS);
        methods.retain = true;
        self.pigeon.publish(methods).await
    }
}

#[handlers]
impl Registry {
    #[on_request("rpc/devices/register", timeout = 2000)]
    async fn register(
        &self,
        client: Option<Client>,
        Json(request): Json<Register>,
    ) -> Result<Json<Device>, RegistryError> {
        if request.id.is_empty() {
            return Err(RegistryError::EmptyId);
        }
        let mut devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        if devices.contains_key(&request.id) {
            return Err(RegistryError::Taken(request.id));
        }
        let device = Device {
            id: request.id.clone(),
            model: request.model,
            registered_by: client.map(|c| c.id().to_owned()),
        };
        devices.insert(request.id, device.clone());
        Ok(Json(device))
    }

    #[on_request("rpc/devices/:id/get")]
    async fn get(&self, Param(id): Param<String>) -> Result<Json<Device>, RegistryError> {
        let devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        devices
            .get(&id)
            .cloned()
            .map(Json)
            .ok_or(RegistryError::Unknown(id))
    }
}

#[module(port = 1884, id = "registry", providers = [Registry])]
pub(crate) struct AppModule;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = pigeon_examples::Args::parse();
    pigeon_examples::serve::<AppModule>(&args).await
}
