//! The application's own configuration, injected: `Settings<T>` reads the
//! section `T::NAME` of the configuration into the user's `serde` type.

use std::{fmt, ops::Deref, sync::Arc};

use serde::de::DeserializeOwned;

use super::{BootstrapError, Container, Inject};
use crate::Config;

/// A section of the application's configuration, read into `Self`: a table
/// `[NAME]` of the config file, `PIGEON_<NAME>__<KEY>` variables over it (see
/// [`Sections::get`](crate::config::Sections::get)).
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct Greeting { text: String }
///
/// impl pigeon::app::Section for Greeting {
///     const NAME: &'static str = "greeting"; // `[greeting]`, `PIGEON_GREETING__TEXT`
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a settings section",
    label = "`Settings<T>` needs `T: pigeon::app::Section`",
    note = "derive `serde::Deserialize` for it and write `impl pigeon::app::Section for {Self} {{ const NAME: &'static str = \"...\"; }}`"
)]
pub trait Section: DeserializeOwned + Send + Sync + 'static {
    /// The section's name: the file's `[NAME]` table, the `PIGEON_<NAME>__`
    /// variables (so: lower case letters, digits and single `_`, and not the
    /// key of a broker option such as `http`).
    const NAME: &'static str;
}

/// The settings section `T` of the configuration, as a provider's field
/// (`settings: Settings<AppSettings>`). Read when the provider is built: a
/// section that does not deserialize is a [`BootstrapError::Config`] naming
/// the file or variable, the section and the key.
///
/// ```
/// use pigeon::prelude::*;
///
/// #[derive(serde::Deserialize)]
/// struct Welcome { text: String, #[serde(default)] times: u32 }
///
/// impl Section for Welcome {
///     const NAME: &'static str = "welcome";
/// }
///
/// #[injectable]
/// struct Greeter { welcome: Settings<Welcome> }
///
/// #[module(providers = [Greeter])]
/// struct AppModule;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut config = <AppModule as Module>::config().unwrap();
/// // In a file: `[welcome]` / `text = "hello"`; or `PIGEON_WELCOME__TEXT=hello`.
/// config.sections.set("welcome", serde_json::json!({ "text": "hello" }));
/// let built = Pigeon::build::<AppModule>(&config).await.unwrap();
/// let greeter = built.get::<Greeter>().unwrap();
/// assert_eq!((greeter.welcome.text.as_str(), greeter.welcome.times), ("hello", 0));
/// # }
/// ```
pub struct Settings<T>(Arc<T>);

impl<T> Settings<T> {
    /// Settings given as they are (e.g. in a test of a provider built by hand).
    pub fn new(value: T) -> Self {
        Self(Arc::new(value))
    }
}

impl<T> Deref for Settings<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Clone for Settings<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: fmt::Debug> fmt::Debug for Settings<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Settings").field(&*self.0).finish()
    }
}

impl<T: Section> Inject for Settings<T> {
    async fn inject(
        container: &Container,
        owner: &'static str,
        field: &'static str,
    ) -> Result<Self, BootstrapError> {
        let config = Config::inject(container, owner, field).await?;
        let value = config
            .sections
            .get::<T>(T::NAME)
            .map_err(BootstrapError::Config)?;
        Ok(Self::new(value))
    }
}
