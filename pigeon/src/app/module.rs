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
    /// The module's plain values (`values = [...]`), each injected into the
    /// `Arc<T>` fields of its type; evaluated when the module is built.
    fn values() -> Vec<ProviderDef> {
        Vec::new()
    }
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

/// A `#[module]` as the bootstrap sees every module of the program (through
/// `inventory`): which providers it lists. Submitted by the attribute.
pub struct ModuleEntry {
    /// The module's type name.
    pub name: &'static str,
    /// The type ids of its providers.
    pub providers: fn() -> Vec<std::any::TypeId>,
}

inventory::collect!(ModuleEntry);

/// The `#[handlers]` types that no module of the program lists in its
/// `providers = [...]` (and are not `#[handlers(optional)]`): their handlers
/// would never run, which for a deny-all `#[on_authenticate]` lets everyone in.
/// `also` is the module being started (listed whether or not it was
/// submitted). Sorted, each once.
pub(crate) fn unprovided_handlers(also: &[std::any::TypeId]) -> Vec<&'static str> {
    let mut provided: std::collections::HashSet<std::any::TypeId> = also.iter().copied().collect();
    for module in inventory::iter::<ModuleEntry> {
        provided.extend((module.providers)());
    }
    let mut missing: Vec<&'static str> = inventory::iter::<crate::hooks::HandlerSet>
        .into_iter()
        .filter(|set| !set.optional && !provided.contains(&(set.provider)()))
        .map(|set| set.name)
        .collect();
    missing.sort_unstable();
    missing.dedup();
    missing
}

/// Options of a module's hooks.
#[derive(Debug, Clone, Copy, Default)]
pub struct HooksOptions {
    /// Let clients publish to `$SYS/` (default false, even with an authorize-publish handler).
    pub allow_sys_publish: bool,
    /// Capacity of each provider's event queue (0 = default).
    pub event_queue: usize,
}
