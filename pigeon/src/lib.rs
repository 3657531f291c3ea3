//! Pigeon: an MQTT 3.1, 3.1.1 and 5.0 broker you embed in your application
//! and program NestJS-style. Mark a struct `#[injectable]`, annotate its
//! methods with `#[on_authenticate]`, `#[on_publish("sensors/:id/temp")]` and
//! friends under `#[handlers]`, list it in a `#[module(...)]`, and the broker
//! calls them: guards in the packet's path, events beside it. In-memory by
//! default; a durable store, a cluster, TLS and WebSockets are options.
//!
//! # Example
//!
//! The README's service, started on a free port with [`testing::Test`] and
//! checked with two MQTT clients over real sockets, as a test of it would:
//!
//! ```
//! use std::time::Duration;
//! use pigeon::{prelude::*, testing::Test};
//!
//! #[derive(serde::Deserialize)]
//! struct Temp { celsius: f64 }
//!
//! #[injectable]                       // fields come from the module's container
//! pub struct TestService { pigeon: PigeonService }
//!
//! #[handlers]                         // registers every #[on_*] method below
//! impl TestService {
//!     #[on_authenticate]
//!     async fn auth(&self, credential: Credential) -> Result<(), AuthError> {
//!         match credential.username.as_deref() {
//!             Some("admin") => Ok(()),
//!             _ => Err(AuthError::bad_credentials("who are you?")),
//!         }
//!     }
//!
//!     #[on_authorize_publish]
//!     async fn can_publish(&self, packet: &mut Publish) -> Result<(), Denied> {
//!         if packet.topic == "aaaa" { return Err(Denied::new("wrong topic")); }
//!         Ok(())
//!     }
//!
//!     #[on_publish("sensors/:id/temp")]   // runs only for matching topics
//!     async fn temp(&self, Param(id): Param<String>, Json(t): Json<Temp>) {
//!         if t.celsius > 30.0 {
//!             let alert = Publish::new(format!("alerts/{id}"), QoS::AtLeastOnce, "hot");
//!             let _ = self.pigeon.publish(alert).await;
//!         }
//!     }
//! }
//!
//! #[module(port = 1884, id = "binarybeast", providers = [TestService])]
//! pub struct AppModule;
//!
//! /// What an application's `#[tokio::main] async fn main` runs: serves
//! /// port 1884 until SIGINT/SIGTERM, then closes cleanly.
//! async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//!     Pigeon::bootstrap::<AppModule>().await?.listen().await?;
//!     Ok(())
//! }
//!
//! // What a `#[tokio::test]` of the module does (on 127.0.0.1, a free port).
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! runtime.block_on(async {
//!     let app = Test::module::<AppModule>().start().await?;
//!     assert!(app.client("stranger").connect().await.is_err(), "no user name: refused");
//!
//!     let watcher = app.client("watcher").username("admin").connect().await?;
//!     watcher.subscribe("alerts/#", QoS::AtLeastOnce).await?;
//!     let sensor = app.client("sensor-7").username("admin").connect().await?;
//!     sensor.publish("sensors/7/temp", r#"{"celsius": 31.5}"#).await?;
//!     let alert = watcher.expect_message(Duration::from_secs(5)).await;
//!     assert_eq!((alert.topic.as_str(), &alert.payload[..]), ("alerts/7", &b"hot"[..]));
//!
//!     // MQTT 5 answers a refused QoS 1 publish with PUBACK 0x87.
//!     assert!(sensor.publish_with("aaaa", "x").qos(QoS::AtLeastOnce).await.is_err());
//!     app.close().await;
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # let _ = serve;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where things are
//!
//! - **Starting an application**: [`Pigeon::bootstrap`] builds a module
//!   (with the modules it imports) and starts its broker, configured by the
//!   module's options, then a TOML file and the `PIGEON_*` environment
//!   variables (with the default `toml` feature); [`Pigeon::bootstrap_with`] changes the [`Config`] last (a
//!   `--port` flag); [`Pigeon::builder`] also gives values known only at run
//!   time (a path, a secret). Each returns an [`App`]: [`App::listen`]
//!   serves until a signal, [`App::close`] stops, [`App::local_addr`],
//!   [`App::get`].
//! - **[`#[module]`](macro@module)**: broker options (`port`, `listen`,
//!   `persistence`, ...), `providers = [...]`, `values = [...]`,
//!   `imports = [...]` ([`app::Import`]) and `config_file = "..."`; it
//!   implements [`app::Module`].
//! - **[`#[injectable]`](macro@injectable)**: a provider, its fields
//!   injected from the container (`Arc<T>`, [`PigeonService`], [`Config`],
//!   the application's own configuration sections as [`app::Settings`]),
//!   or built by an async `factory`; implements [`app::Injectable`] (see
//!   [`app::Factory`]).
//! - **[`#[handlers]`](macro@handlers)** on an `impl` block of a provider,
//!   with the `#[on_*]` attributes of the [`prelude`] on its methods (each
//!   documents when it runs, its parameters and its return types). The
//!   machinery is in [`hooks`]: the parameters ([`hooks::extract`]), the
//!   return types ([`hooks::returns`]), request/response handlers
//!   ([`hooks::request`]), the events ([`hooks::Event`]).
//! - **[`PigeonService`]**: what a provider injects to act on its broker:
//!   [`publish`](PigeonService::publish),
//!   [`subscribe`](PigeonService::subscribe) in process,
//!   [`close`](PigeonService::close), [`broker`](PigeonService::broker).
//! - **[`testing`]** (the default `testing` feature):
//!   [`Test::module`](testing::Test::module) starts a module with fakes in
//!   place of providers; [`TestApp::client`](testing::TestApp::client)
//!   connects an MQTT 3.1.1 or 5 test client.
//! - **[`Broker`]** for embedders without the framework:
//!   [`Broker::start`] with a [`Config`] and [`hooks::Hooks`] (built with
//!   [`hooks::Hooks::builder`], or [`hooks::Hooks::none`]) returns a
//!   [`BrokerHandle`] (publish, stats, clients, reload, close).
//! - **[`config`]**: every option of the broker, the same keys in the
//!   module attribute, the `pigeon` binary's flags, its TOML file and
//!   `PIGEON_*` environment variables ([`config::Options`]).
//! - Beneath: [`codec`] (MQTT packets), [`acl`] and [`auth`] (Mosquitto ACL
//!   and password files), [`persistence`] (memory, redb, Redis), [`emitter`]
//!   (cluster distribution), [`transport`] and [`tls`] (listeners),
//!   [`model`] (the messages and session state they share).

// Without the `testing` feature the front page's links to `testing` have no
// target; they are right in the documentation built with the defaults.
#![cfg_attr(not(feature = "testing"), allow(rustdoc::broken_intra_doc_links))]

// Lets the macros' `::pigeon::...` paths work inside this crate's own tests.
extern crate self as pigeon;

pub mod acl;
pub mod app;
pub mod auth;
pub mod broker;
pub mod config;
pub(crate) mod connection;
pub mod emitter;
pub(crate) mod engine;
pub mod hooks;
mod http;
pub mod model;
pub mod persistence;
pub mod prelude;
pub mod service;
pub mod tls;
pub mod transport;

#[cfg(feature = "testing")]
pub use app::testing;
pub use app::{App, BootstrapError, Pigeon};
pub use broker::{Broker, BrokerHandle};
pub use config::Config;
pub use pigeon_codec as codec;
pub use pigeon_macros::{handlers, injectable, module};
pub use service::PigeonService;

/// Used by the code the macros generate; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::app::Import;
    pub use crate::app::InitOutput;
    pub use crate::app::{factory, DestroyOutput, InjectableEntry};
    pub use crate::app::{
        Container, HooksOptions, Inject, Injectable, Module, ModuleEntry, ProviderDef,
    };
    pub use crate::hooks::context::{
        kind, AuthenticateCx, AuthorizeForwardCx, AuthorizePublishCx, AuthorizeSubscribeCx,
        Context, EventCx, PreConnectCx, PublishedCx,
    };
    pub use crate::hooks::request::{RequestCx, RequestLimits};
    pub use crate::hooks::returns::HandlerReturn;
    pub use crate::hooks::{
        BoxFuture, ExtractError, FromEvent, FromEventMut, HandlerSet, HooksBuilder, Meta,
    };
    pub use crate::{config::Options, BootstrapError, Config};
    pub use inventory;
    pub use std::{
        any::{Any, TypeId},
        boxed::Box,
        result::Result::{Err, Ok},
        sync::Arc,
        time::Duration,
    };

    /// A module option written as a string literal (`id = "edge-1"`, `cert = "cert.pem"`).
    #[diagnostic::on_unimplemented(
        message = "this module option is not a string: `{Self}` expected",
        label = "write a `{Self}` here, not a string"
    )]
    pub trait StrOption {
        /// The option's value from the literal.
        fn from_literal(literal: &'static str) -> Self;
    }

    impl StrOption for String {
        fn from_literal(literal: &'static str) -> Self {
            literal.to_owned()
        }
    }

    impl StrOption for std::path::PathBuf {
        fn from_literal(literal: &'static str) -> Self {
            literal.into()
        }
    }

    /// The `TypeId` of `T`, as a function pointer for `inventory` statics.
    pub fn type_id_of<T: 'static>() -> TypeId {
        TypeId::of::<T>()
    }
}

/// The README's example compiles (as a doctest), so its first screen stays true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The migration guide's Rust example compiles too (its TypeScript is not tested).
#[doc = include_str!("../../docs/coming-from-pigeon-mqtt-nest.md")]
#[cfg(doctest)]
pub struct GuideDoctests;
