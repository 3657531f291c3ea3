//! Everything a module needs: `use pigeon::prelude::*;`.
//!
//! - the attributes: [`module`], [`injectable`], [`handlers`] and the `on_*`
//!   handler attributes, each documented with when it runs, the parameters it
//!   takes and what it may return ([`on_authenticate`], [`on_publish`], ...);
//! - the entry points [`Pigeon`] and [`App`], the traits [`Module`] and
//!   [`Injectable`], and what providers inject: [`PigeonService`], [`Config`],
//!   [`Settings`] (of a [`Section`] of the configuration);
//! - the handler parameters (extractors): [`Client`], [`Credential`],
//!   [`Json`], [`Param`], [`Params`], [`Payload`], [`Topic`], [`Packet`],
//!   [`Subscription`], [`Subscriptions`], [`Unsubscriptions`], [`Error`],
//!   [`Peer`], [`PeerCertificate`], [`AuthExchange`];
//! - what handlers return: [`AuthError`], [`AuthStep`], [`Denied`],
//!   [`HookError`];
//! - the packets handlers see and build: [`Publish`], [`Connect`],
//!   [`ConnAck`], [`QoS`], [`Protocol`].
//!
//! ```no_run
//! use pigeon::prelude::*;
//!
//! #[derive(serde::Deserialize)]
//! struct Temp { celsius: f64 }
//!
//! #[injectable]                       // fields are resolved from the module's container
//! pub struct TestService { pigeon: PigeonService }
//!
//! #[handlers]                         // registers every #[on_*] method below through `inventory`
//! impl TestService {
//!     #[on_authenticate]
//!     async fn auth(&self, client: Client, credential: Credential) -> Result<(), AuthError> {
//!         match credential.username.as_deref() {
//!             Some("admin") => Ok(()),
//!             _ => Err(AuthError::bad_credentials("who are you?")),
//!         }
//!     }
//!
//!     #[on_authorize_publish(order = 10)]   // chains run by `order`, then module order
//!     async fn can_publish(&self, client: Option<Client>, packet: &mut Publish) -> Result<(), Denied> {
//!         if packet.topic == "bbb" {
//!             packet.payload = "overwrite packet payload".into();
//!         }
//!         Ok(())
//!     }
//!
//!     #[on_publish("sensors/:id/temp")]  // runs only for matching topics
//!     async fn temp(&self, Param(id): Param<String>, Json(t): Json<Temp>) {
//!         let alert = Publish::new(format!("alerts/{id}"), QoS::AtLeastOnce, "hot");
//!         if t.celsius > 30.0 {
//!             let _ = self.pigeon.publish(alert).await;
//!         }
//!     }
//! }
//!
//! #[module(port = 1884, id = "binarybeast", providers = [TestService])]
//! pub struct AppModule;
//!
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     Pigeon::bootstrap::<AppModule>().await?.listen().await?;
//!     Ok(())
//! }
//! ```

pub use crate::app::{App, Injectable, Module, Pigeon};
pub use crate::app::{Section, Settings};
pub use crate::codec::{ConnAck, Connect, Protocol, Publish, QoS};
pub use crate::hooks::{
    AuthError, AuthExchange, AuthStep, Client, Credential, Denied, Error, HookError, Json, Packet,
    Param, Params, Payload, Peer, PeerCertificate, Subscription, Subscriptions, Topic,
    Unsubscriptions,
};
pub use crate::hooks::{Decode, Decoded, Text};
pub use crate::{Config, PigeonService};
pub use bytes::Bytes;
pub use pigeon_macros::on_request;
pub use pigeon_macros::{
    handlers, injectable, module, on_ack, on_authenticate, on_authorize_forward,
    on_authorize_publish, on_authorize_subscribe, on_client, on_client_disconnect, on_client_error,
    on_client_ready, on_closed, on_connack_sent, on_connection_error, on_keepalive_timeout,
    on_ping, on_pre_connect, on_publish, on_published, on_subscribe, on_unsubscribe,
};
