//! `Pigeon::builder`: values and configuration known only when the program
//! runs (a path from a flag, a secret from the environment).

use std::{marker::PhantomData, sync::Arc};

use super::{App, BootstrapError, Module, Pigeon, ProviderDef};
use crate::Config;

type Configure<'a> = Box<dyn FnOnce(&mut Config) + Send + 'a>;

/// Starts module `M` with values given at run time: from [`Pigeon::builder`].
///
/// ```no_run
/// use std::{path::PathBuf, sync::Arc};
/// use pigeon::prelude::*;
///
/// /// Where the users are: given by the command line.
/// struct UsersFile(PathBuf);
///
/// #[injectable]
/// struct Users { file: Arc<UsersFile> }
///
/// #[module(port = 1884, providers = [Users])]
/// struct AppModule;
///
/// # async fn run() -> Result<(), pigeon::BootstrapError> {
/// let path = std::env::args().nth(1).unwrap_or_else(|| "users.toml".into());
/// let app = Pigeon::builder::<AppModule>()
///     .value(UsersFile(path.into()))
///     .configure(|config| config.port = 1885)
///     .bootstrap()
///     .await?;
/// # let _ = app; Ok(()) }
/// ```
#[must_use = "nothing starts until `bootstrap` is awaited"]
pub struct PigeonBuilder<'a, M> {
    configure: Vec<Configure<'a>>,
    providers: Vec<ProviderDef>,
    module: PhantomData<fn() -> M>,
}

impl Pigeon {
    /// A builder of module `M`: values and configuration given at run time,
    /// then [`PigeonBuilder::bootstrap`].
    pub fn builder<'a, M: Module>() -> PigeonBuilder<'a, M> {
        PigeonBuilder {
            configure: Vec::new(),
            providers: Vec::new(),
            module: PhantomData,
        }
    }
}

impl<'a, M: Module> PigeonBuilder<'a, M> {
    /// Gives `value` to every `Arc<T>` field (and factory argument) of type
    /// `T`, in place of the module's value or provider of that type.
    pub fn value<T: Send + Sync + 'static>(self, value: T) -> Self {
        self.provider(ProviderDef::value(Arc::new(value)))
    }

    /// Adds a provider definition, in place of the module's of the same type
    /// (e.g. [`ProviderDef::dyn_value`] for an `Arc<dyn Trait>`).
    pub fn provider(mut self, def: ProviderDef) -> Self {
        self.providers.retain(|d| d.type_id != def.type_id);
        self.providers.push(def);
        self
    }

    /// Changes the configuration (after the module's options), as
    /// [`Pigeon::bootstrap_with`] does; several calls apply in order.
    pub fn configure(mut self, configure: impl FnOnce(&mut Config) + Send + 'a) -> Self {
        self.configure.push(Box::new(configure));
        self
    }

    /// Builds the module and starts its broker, as [`Pigeon::bootstrap`].
    pub async fn bootstrap(self) -> Result<App, BootstrapError> {
        let configure = self.configure;
        Pigeon::bootstrap_providing::<M>(
            std::env::vars_os(),
            |config| configure.into_iter().for_each(|f| f(config)),
            self.providers,
        )
        .await
    }
}
