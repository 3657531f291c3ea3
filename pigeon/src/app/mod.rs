//! Module bootstrap: build the container, register the providers' handlers,
//! start the broker.

mod builder;
mod container;
mod module;
mod provider;
mod settings;
#[cfg(feature = "testing")]
pub mod testing;

use std::{any::Any, any::TypeId, ffi::OsString, net::SocketAddr, sync::Arc, time::Duration};

pub use builder::PigeonBuilder;
pub use container::{BootstrapError, Container, Inject, Injectable, ProviderDef};
// What the macros' generated code calls (through `pigeon::__private`).
#[doc(hidden)]
pub use container::InjectableEntry;
pub use module::{HooksOptions, Import, Module, ModuleEntry};
#[doc(hidden)]
pub use provider::{factory, DestroyOutput, InitOutput};
pub use provider::{Factory, FactoryOutput};
use provider::{Shutdown, Startup};
pub use settings::{Section, Settings};

use crate::{hooks::Hooks, Broker, BrokerHandle, Config, PigeonService};

/// Entry point: `Pigeon::bootstrap::<AppModule>().await?.listen().await?`.
pub struct Pigeon;

/// The container's providers and the hooks built from them, before the broker starts.
pub struct Built {
    /// The hooks built from the providers' handlers.
    pub hooks: Arc<Hooks>,
    /// The service the providers were given (attached once the broker starts).
    pub service: PigeonService,
    providers: Vec<(TypeId, Arc<dyn Any + Send + Sync>)>,
    /// Run by `Pigeon::start` once the broker listens; a `Built` that is
    /// never started (`Pigeon::build`) never runs them.
    startup: Startup,
    shutdown: Shutdown,
}

impl Pigeon {
    /// Builds module `M` (with the modules it imports) and starts its broker.
    ///
    /// The configuration is, lowest first: the defaults, the module's options
    /// (see [`Import`] for imported modules'), the TOML config file (the one
    /// the `PIGEON_CONFIG` variable names, else the module's `config_file`
    /// when it exists), then the `PIGEON_*` environment variables — the keys
    /// and errors of the standalone binary. The file's other tables and the
    /// `PIGEON_<SECTION>__<KEY>` variables are the application's settings,
    /// injected as [`Settings<T>`]. Without the `toml` feature: the module's
    /// options alone.
    pub async fn bootstrap<M: Module>() -> Result<App, BootstrapError> {
        Self::bootstrap_with::<M>(|_| {}).await
    }

    /// As [`Pigeon::bootstrap`], letting `configure` change the configuration
    /// last (over the file and the environment; e.g. a `--port` flag).
    pub async fn bootstrap_with<M: Module>(
        configure: impl FnOnce(&mut Config),
    ) -> Result<App, BootstrapError> {
        Self::bootstrap_with_env::<M>(std::env::vars_os(), configure).await
    }

    /// As [`Pigeon::bootstrap_with`], with the environment given as
    /// `(name, value)` pairs instead of read from the process.
    ///
    /// ```no_run
    /// # use pigeon::prelude::*;
    /// #[module(port = 0, config_file = "pigeon.toml", providers = [])]
    /// struct AppModule;
    ///
    /// # async fn run() -> Result<(), pigeon::BootstrapError> {
    /// let env = [("PIGEON_QUEUE_LIMIT", "7"), ("PIGEON_CONFIG", "/etc/app/pigeon.toml")];
    /// let app = Pigeon::bootstrap_with_env::<AppModule>(env, |c| c.host = "127.0.0.1".into()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn bootstrap_with_env<M: Module>(
        vars: impl IntoIterator<Item = (impl Into<OsString>, impl Into<OsString>)>,
        configure: impl FnOnce(&mut Config),
    ) -> Result<App, BootstrapError> {
        Self::bootstrap_providing::<M>(vars, configure, Vec::new()).await
    }

    /// As [`Pigeon::bootstrap_with_env`], with `extra` providers and values
    /// each replacing the module's of the same type, or added (what
    /// [`PigeonBuilder::bootstrap`] runs).
    pub(crate) async fn bootstrap_providing<M: Module>(
        vars: impl IntoIterator<Item = (impl Into<OsString>, impl Into<OsString>)>,
        configure: impl FnOnce(&mut Config),
        extra: Vec<ProviderDef>,
    ) -> Result<App, BootstrapError> {
        install_logging();
        let mut config = Self::load_config::<M>(vars)?;
        configure(&mut config);
        Self::start::<M>(config, Vec::new(), extra).await
    }

    /// The configuration [`Pigeon::bootstrap_with_env`] starts module `M`
    /// with (before its `configure`), validated; nothing is started.
    ///
    /// ```
    /// # use pigeon::prelude::*;
    /// #[module(port = 0, queue_limit = 9, providers = [])]
    /// struct AppModule;
    ///
    /// let config = Pigeon::load_config::<AppModule>([("PIGEON_QUEUE_LIMIT", "7")]).unwrap();
    /// assert_eq!((config.port, config.queue_limit), (0, 7));
    /// let err = Pigeon::load_config::<AppModule>([("PIGEON_QUEUE_LIMIT", "0")]).err().unwrap();
    /// assert_eq!(err.to_string(), "configuration: invalid value for PIGEON_QUEUE_LIMIT: 0 (must be at least 1)");
    /// ```
    pub fn load_config<M: Module>(
        vars: impl IntoIterator<Item = (impl Into<OsString>, impl Into<OsString>)>,
    ) -> Result<Config, BootstrapError> {
        let config = M::config().map_err(BootstrapError::Options)?;
        #[cfg(feature = "toml")]
        let config = config
            .with_file_and_env(M::config_file().map(std::path::Path::new), vars)
            .map_err(BootstrapError::Config)?;
        #[cfg(not(feature = "toml"))]
        drop(vars.into_iter());
        Ok(config)
    }

    /// Builds module `M` with `overrides` in place of the module's providers
    /// of the same types, and starts its broker with `config` as it is.
    // The testing builder's entry point (its `override_provider`s).
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) async fn launch<M: Module>(
        config: Config,
        overrides: Vec<ProviderDef>,
    ) -> Result<App, BootstrapError> {
        Self::start::<M>(config, overrides, Vec::new()).await
    }

    /// Builds module `M` (see [`Pigeon::build_with`]), starts its broker,
    /// then runs the providers' init hooks; a failure to start, or of a
    /// hook, closes the broker and destroys the providers already created.
    async fn start<M: Module>(
        config: Config,
        overrides: Vec<ProviderDef>,
        extra: Vec<ProviderDef>,
    ) -> Result<App, BootstrapError> {
        let built = Self::build_with::<M>(&config, overrides, extra).await?;
        let handle = match Broker::start(config, built.hooks.clone()).await {
            Ok(handle) => handle,
            Err(e) => {
                built.shutdown.run().await;
                return Err(BootstrapError::Start(e));
            }
        };
        built.service.attach(handle.clone());
        // After `attach`: a hook may publish through its `PigeonService`, or
        // connect to the broker's address.
        if let Err(e) = built.startup.run().await {
            handle.close().await;
            built.hooks.flush_events(Duration::from_secs(5)).await;
            built.shutdown.run().await;
            return Err(e);
        }
        Ok(App {
            handle,
            hooks: built.hooks,
            service: built.service,
            providers: built.providers,
            shutdown: built.shutdown,
        })
    }

    /// Instantiates the providers of `M` and of the modules it imports and
    /// builds the hooks, without starting a broker
    /// (must run inside a tokio runtime when the module has event handlers).
    /// The providers' init hooks do not run: they wait for a listening broker.
    pub async fn build<M: Module>(config: &Config) -> Result<Built, BootstrapError> {
        Self::build_with::<M>(config, Vec::new(), Vec::new()).await
    }

    /// As [`Pigeon::build`], each of `overrides` replacing the provider of
    /// the same type among those of the module and its imports (an override of
    /// a type none of them provides is an error naming it), and each of
    /// `extra` replacing it or, when none has one of its type, added. A
    /// failure destroys the providers already created.
    pub(crate) async fn build_with<M: Module>(
        config: &Config,
        overrides: Vec<ProviderDef>,
        extra: Vec<ProviderDef>,
    ) -> Result<Built, BootstrapError> {
        let service = PigeonService::detached();
        let mut defs = module::providers::<M>()?;
        for replacement in overrides {
            let name = replacement.name;
            let slot = defs.iter_mut().find(|d| d.type_id == replacement.type_id);
            *slot.ok_or(BootstrapError::NotAProvider(name))? = replacement;
        }
        for def in extra {
            match defs.iter_mut().find(|d| d.type_id == def.type_id) {
                Some(slot) => *slot = def,
                None => defs.push(def),
            }
        }
        let mine: Vec<TypeId> = defs.iter().map(|d| d.type_id).collect();
        let missing = module::unprovided_handlers(&mine);
        if !missing.is_empty() {
            return Err(BootstrapError::UnprovidedHandlers(missing.join(", ")));
        }
        let container = Container::new(config.clone(), service.clone(), defs);
        let instances = match container.instantiate_all().await {
            Ok(instances) => instances,
            Err(e) => {
                container.shutdown().run().await;
                return Err(e);
            }
        };
        let shutdown = container.shutdown();
        let startup = container.startup();
        // Only now is it known which settings sections the providers read.
        if let Err(e) = config.sections.check_read() {
            shutdown.run().await;
            return Err(BootstrapError::Config(e));
        }
        let options = M::hooks_options();
        let mut builder = Hooks::builder();
        builder.allow_sys_publish = options.allow_sys_publish;
        builder.event_capacity = options.event_queue;
        for (index, (def, instance)) in instances.iter().enumerate() {
            builder.provider(index, def.type_id, instance);
        }
        let hooks = match builder.build() {
            Ok(hooks) => hooks,
            Err(e) => {
                shutdown.run().await;
                return Err(BootstrapError::Hooks(e));
            }
        };
        Ok(Built {
            hooks: Arc::new(hooks),
            service,
            providers: instances.into_iter().map(|(d, i)| (d.type_id, i)).collect(),
            startup,
            shutdown,
        })
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), unless the
/// application installed a `tracing` subscriber of its own (then nothing
/// changes), or the `log` feature is off.
fn install_logging() {
    #[cfg(feature = "log")]
    if !tracing::dispatcher::has_been_set() {
        use tracing_subscriber::EnvFilter;
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        // Err only when another subscriber won the race: that one stays.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
}

impl Built {
    /// The singleton of provider `T` (or the module's value of type `T`).
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        get(&self.providers)
    }

    /// Runs the providers' destroy hooks (newest first), once; what
    /// [`App::close`] does after the broker has stopped.
    pub async fn destroy(&self) {
        self.shutdown.run().await;
    }
}

fn get<T: Send + Sync + 'static>(
    providers: &[(TypeId, Arc<dyn Any + Send + Sync>)],
) -> Option<Arc<T>> {
    let (_, i) = providers.iter().find(|(id, _)| *id == TypeId::of::<T>())?;
    i.clone().downcast::<T>().ok()
}

/// A running module.
pub struct App {
    handle: BrokerHandle,
    hooks: Arc<Hooks>,
    service: PigeonService,
    providers: Vec<(TypeId, Arc<dyn Any + Send + Sync>)>,
    shutdown: Shutdown,
}

impl App {
    /// The address the broker listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// The running broker: its listeners, stats, clients.
    pub fn broker(&self) -> &BrokerHandle {
        &self.handle
    }

    /// The module's [`PigeonService`].
    pub fn service(&self) -> PigeonService {
        self.service.clone()
    }

    /// The singleton of provider `T`, or the module's value of type `T` (e.g.
    /// to inspect its state in a test).
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        get(&self.providers)
    }

    /// The hooks the broker runs.
    pub fn hooks(&self) -> &Arc<Hooks> {
        &self.hooks
    }

    /// Waits until every event emitted so far was handled by its listeners.
    pub async fn flush_events(&self) {
        self.hooks.flush_events(Duration::from_secs(5)).await;
    }

    /// Closes the broker (fires `closed`), waits for the event listeners,
    /// then runs the providers' destroy hooks (`#[injectable(destroy = ...)]`)
    /// in reverse creation order: a provider is destroyed before the
    /// providers it depends on. A second call does nothing more.
    pub async fn close(&self) {
        self.handle.close().await;
        self.flush_events().await;
        self.shutdown.run().await;
    }

    /// Serves until SIGINT/SIGTERM or until the broker is closed (e.g. by
    /// `PigeonService::close`), then closes cleanly.
    ///
    /// Fails (after closing) only when no signal handler can be installed: the
    /// broker would otherwise run on with no way to stop it cleanly.
    pub async fn listen(self) -> std::io::Result<()> {
        let result = tokio::select! {
            () = self.handle.closed() => Ok(()),
            signal = shutdown_signal() => {
                tracing::info!("shutting down");
                signal
            }
        };
        self.close().await;
        result
    }
}

/// SIGINT or SIGTERM (Ctrl-C elsewhere); an error if neither can be listened to.
async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    interrupted = tokio::signal::ctrl_c() => interrupted,
                    _ = term.recv() => Ok(()),
                }
            }
            Err(_) => tokio::signal::ctrl_c().await,
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
