//! What `#[module(...)]` implements.

use super::ProviderDef;
use crate::Config;

/// A module: broker options and providers. Implemented by `#[module(...)]`.
pub trait Module {
    /// The broker configuration the module's attribute describes.
    fn config() -> Config;
    /// The providers, in module order (the tie-break of handler chains after `order`).
    fn providers() -> Vec<ProviderDef>;
    /// Options of the hooks themselves.
    fn hooks_options() -> HooksOptions {
        HooksOptions::default()
    }
    /// The module's `listen = [...]` URLs (`mqtt://`, `mqtts://`, `ws://`,
    /// `wss://`), bound instead of `host:port` when there are some.
    fn listen() -> &'static [&'static str] {
        &[]
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
