//! What `#[module(...)]` implements.

use super::ProviderDef;
use crate::config::{ConfigError, Options};
use crate::Config;

/// A module: broker options and providers. Implemented by `#[module(...)]`.
///
/// ```
/// use pigeon::prelude::*;
///
/// #[module(port = 0, queue_limit = 9, connect_timeout = 1500, providers = [])]
/// struct AppModule;
///
/// let config = <AppModule as pigeon::app::Module>::config().unwrap();
/// assert_eq!(config.queue_limit, 9);
/// assert_eq!(config.connect_timeout, std::time::Duration::from_millis(1500));
/// ```
pub trait Module {
    /// The broker options the module's attribute sets: the same keys, types and
    /// units as the binary's TOML file (durations in milliseconds).
    fn options() -> Options;
    /// The providers, in module order (the tie-break of handler chains after `order`).
    fn providers() -> Vec<ProviderDef>;
    /// Options of the hooks themselves.
    fn hooks_options() -> HooksOptions {
        HooksOptions::default()
    }
    /// The default configuration with [`Module::options`] applied (a `listen`
    /// URL that does not parse is an error naming it).
    fn config() -> Result<Config, ConfigError> {
        let mut config = Config::default();
        Self::options().apply_to(&mut config)?;
        Ok(config)
    }
}

/// Options of a module's hooks.
#[derive(Debug, Clone, Copy, Default)]
pub struct HooksOptions {
    /// Let clients publish to `$SYS/` (default false, even with an authorize-publish handler).
    pub allow_sys_publish: bool,
    /// Capacity of each provider's event queue (0 = default).
    pub event_queue: usize,
}
