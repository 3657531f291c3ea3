//! Test a module as its clients see it: start it with fakes in place of
//! providers, connect MQTT clients over real sockets, assert what they
//! receive. NestJS's `Test.createTestingModule(...)`, for Pigeon.
//!
//! ```
//! use std::time::Duration;
//! use pigeon::{prelude::*, testing::Test};
//!
//! #[injectable]
//! pub struct Alerts { pigeon: PigeonService }
//!
//! #[handlers]
//! impl Alerts {
//!     #[on_publish("sensors/:id/temp")]
//!     async fn temp(&self, Param(id): Param<String>, Payload(p): Payload) {
//!         if p.as_ref() == b"hot" {
//!             let _ = self.pigeon.publish(Publish::new(format!("alerts/{id}"), QoS::AtLeastOnce, "!")).await;
//!         }
//!     }
//! }
//!
//! #[module(providers = [Alerts])]
//! struct AppModule;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() { a_hot_sensor_raises_an_alert().await }
//! // #[tokio::test]
//! async fn a_hot_sensor_raises_an_alert() {
//!     let app = Test::module::<AppModule>().start().await.unwrap();
//!     let watcher = app.client("watcher").connect().await.unwrap();
//!     watcher.subscribe("alerts/#", QoS::AtLeastOnce).await.unwrap();
//!     let sensor = app.client("sensor-7").v311().connect().await.unwrap();
//!     sensor.publish("sensors/7/temp", "hot").await.unwrap();
//!     let alert = watcher.expect_message(Duration::from_secs(1)).await;
//!     assert_eq!(alert.topic, "alerts/7");
//!     app.close().await;
//! }
//! ```
//!
//! Everything here is behind the `testing` cargo feature, on by default. An
//! application that turns the default features off adds it back for its
//! tests only: `[dev-dependencies] pigeon = { version = "…", default-features
//! = false, features = ["testing"] }` (cargo's resolver 2 keeps dev-dependency
//! features out of the release build).

mod client;
mod conn;
mod error;

use std::{marker::PhantomData, ops::Deref, sync::Arc};

pub use client::{ClientBuilder, Message, PublishBuilder, TestClient};
pub use error::{ClientError, Closed};

use super::{App, BootstrapError, Module, Pigeon, ProviderDef};
use crate::Config;

/// Starts a module for a test: `Test::module::<AppModule>()`.
///
/// ```no_run
/// # use pigeon::{prelude::*, testing::Test};
/// #[module(providers = [])]
/// struct AppModule;
///
/// # async fn test() {
/// let app = Test::module::<AppModule>().start().await.unwrap();
/// let addr = app.local_addr(); // 127.0.0.1:<ephemeral port>
/// # let _ = addr;
/// # }
/// ```
pub struct Test;

impl Test {
    /// A test of module `M`, to set up then [`start`](TestModule::start).
    pub fn module<M: Module>() -> TestModule<M> {
        TestModule {
            overrides: Vec::new(),
            configure: Vec::new(),
            module: PhantomData,
        }
    }
}

/// A change of the configuration, applied when the test module starts.
type Configure = Box<dyn FnOnce(&mut Config) + Send>;

/// Module `M` set up for a test: providers replaced by fakes, configuration
/// changed; [`start`](Self::start) runs it.
#[must_use = "a test module does nothing until `.start().await`"]
pub struct TestModule<M> {
    overrides: Vec<ProviderDef>,
    configure: Vec<Configure>,
    module: PhantomData<fn() -> M>,
}

impl<M: Module> TestModule<M> {
    /// Gives every field that asks for provider `T` (`Arc<T>`) the instance
    /// `value` instead of the one the module would build; its handlers are
    /// the ones that run. `value` is a `T` or an `Arc<T>` (to keep a handle
    /// on the fake and inspect it after).
    ///
    /// Starting fails with [`BootstrapError::NotAProvider`] when the module
    /// does not provide `T`. Overriding `T` twice keeps the last value.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use pigeon::{prelude::*, testing::Test};
    /// #[injectable]
    /// pub struct UserStore {}
    /// # impl UserStore { fn with_users(_: &[&str]) -> Self { UserStore {} } }
    ///
    /// #[module(providers = [UserStore])]
    /// struct AppModule;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let fake = Arc::new(UserStore::with_users(&["alice"]));
    /// let app = Test::module::<AppModule>()
    ///     .override_provider::<UserStore>(fake.clone())
    ///     .start()
    ///     .await
    ///     .unwrap();
    /// assert!(Arc::ptr_eq(&app.get::<UserStore>().unwrap(), &fake));
    /// # }
    /// ```
    pub fn override_provider<T: Send + Sync + 'static>(mut self, value: impl Into<Arc<T>>) -> Self {
        self.overrides.push(ProviderDef::value(value.into()));
        self
    }

    /// Replaces the implementation bound to a trait (`providers = [PgStore as
    /// dyn UserStore]`) with `fake`: every `Arc<dyn UserStore>` gets it.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use pigeon::{prelude::*, testing::Test};
    ///
    /// pub trait Clock: Send + Sync { fn now(&self) -> u64; }
    /// #[injectable]
    /// pub struct SystemClock;
    /// impl Clock for SystemClock { fn now(&self) -> u64 { 1 } }
    /// struct Frozen;
    /// impl Clock for Frozen { fn now(&self) -> u64 { 0 } }
    ///
    /// #[module(providers = [SystemClock as dyn Clock])]
    /// struct AppModule;
    ///
    /// # async fn run() {
    /// let app = Test::module::<AppModule>()
    ///     .override_binding::<dyn Clock>(Arc::new(Frozen))
    ///     .start()
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub fn override_binding<D: ?Sized + Send + Sync + 'static>(mut self, fake: Arc<D>) -> Self {
        self.overrides.push(ProviderDef::dyn_value(fake));
        self
    }

    /// Changes the configuration the module's options give (a queue limit, a
    /// listener, ...); several calls apply in order. The plain TCP listener
    /// is then set to `127.0.0.1` and an ephemeral port whatever `configure`
    /// did, so tests run in parallel. Neither a config file nor `PIGEON_*`
    /// variables are read: what a test runs with is in the test.
    pub fn configure(mut self, configure: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        self.configure.push(Box::new(configure));
        self
    }

    /// Builds the module with the overrides and starts its broker.
    ///
    /// With the `log` feature, the broker's logs go to the test's captured
    /// output (shown for a failing test), filtered by `RUST_LOG` (default
    /// `info`), unless a `tracing` subscriber is already installed.
    ///
    /// # Errors
    ///
    /// What bootstrapping reports ([`BootstrapError`]): a provider that
    /// cannot be built, an override of a type the module does not provide,
    /// a listener that cannot bind.
    pub async fn start(self) -> Result<TestApp, BootstrapError> {
        let configure = self.configure;
        run::<M>(self.overrides, |config| {
            for configure in configure {
                configure(config);
            }
        })
        .await
    }
}

/// Builds `M` with `overrides` and the module's options changed by
/// `configure`, on 127.0.0.1 with an ephemeral port.
async fn run<M: Module>(
    overrides: Vec<ProviderDef>,
    configure: impl FnOnce(&mut Config),
) -> Result<TestApp, BootstrapError> {
    install_test_logging();
    let mut config = M::config().map_err(BootstrapError::Options)?;
    configure(&mut config);
    config.host = "127.0.0.1".into();
    config.port = 0;
    let app = Pigeon::launch::<M>(config, overrides).await?;
    Ok(TestApp { app })
}

/// A module running for a test, from [`TestModule::start`]. It is an
/// [`App`] (`local_addr()`, `service()`, `get::<T>()`, `broker()`,
/// `flush_events()`, `close()`) that also makes test clients.
pub struct TestApp {
    app: App,
}

impl TestApp {
    /// A test client with id `id` for this broker, to set up and
    /// [`connect`](ClientBuilder::connect):
    /// `app.client("c1").v311().credentials("alice", "pw").connect().await?`.
    pub fn client(&self, id: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(self.app.local_addr(), id)
    }

    /// The running [`App`] itself.
    pub fn into_app(self) -> App {
        self.app
    }
}

impl Deref for TestApp {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}

/// Starts module `M` on `127.0.0.1` with an ephemeral port:
/// `Test::module::<M>().start()`, as an [`App`].
pub async fn start<M: Module>() -> Result<App, BootstrapError> {
    start_with::<M>(|_| {}).await
}

/// As [`start`], with a configuration tweak applied before the port override.
pub async fn start_with<M: Module>(
    configure: impl FnOnce(&mut Config),
) -> Result<App, BootstrapError> {
    Ok(run::<M>(Vec::new(), configure).await?.into_app())
}

/// Sends the broker's logs through libtest's capture (the test writer), so
/// that only a failing test shows them.
fn install_test_logging() {
    #[cfg(feature = "log")]
    if !tracing::dispatcher::has_been_set() {
        use tracing_subscriber::EnvFilter;
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        // Err only when another test's subscriber won the race: that one stays.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            // Captured output is read in files and CI logs, not terminals.
            .with_ansi(false)
            .try_init();
    }
}
