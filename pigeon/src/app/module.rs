//! What `#[module(...)]` implements, and how imported modules join the
//! application.

use std::any::{type_name, TypeId};

use super::{BootstrapError, ProviderDef};
use crate::config::{ConfigError, Options};
use crate::Config;

/// A module: broker options, providers and the modules it imports.
/// Implemented by `#[module(...)]`.
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
///
/// Modules compose: `imports = [...]` brings in other modules' providers and
/// handlers (see [`Import`] for the order and which options win).
///
/// ```
/// use pigeon::prelude::*;
///
/// #[module(max_inflight = 5, queue_limit = 7, providers = [])]
/// struct AuthModule;
///
/// #[module(port = 0, queue_limit = 9, imports = [AuthModule], providers = [])]
/// struct AppModule;
///
/// let config = <AppModule as pigeon::app::Module>::config().unwrap();
/// assert_eq!(config.queue_limit, 9); // the importing module's own option wins
/// assert_eq!(config.max_inflight, 5); // an imported module's applies where it sets none
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a module",
    label = "not a #[module] struct",
    note = "`imports = [...]` lists structs marked `#[module(...)]`"
)]
pub trait Module: 'static {
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
    /// The modules this one imports, in the order listed (`imports = [...]`).
    fn imports() -> Vec<Import> {
        Vec::new()
    }
    /// The TOML file `Pigeon::bootstrap` reads over the module's options
    /// (`config_file = "pigeon.toml"`; a missing file is no error). The
    /// `PIGEON_CONFIG` variable names another one. Only the started module's counts.
    fn config_file() -> Option<&'static str> {
        None
    }
    /// Options of the hooks themselves (only the started module's count).
    fn hooks_options() -> HooksOptions {
        HooksOptions::default()
    }
    /// The default configuration with the options of the imported modules
    /// (see [`Import`]) and then [`Module::options`] applied (a `listen` URL
    /// that does not parse is an error naming it).
    fn config() -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let (modules, _cycle) = modules(Import::of::<Self>());
        for module in modules {
            (module.options)().apply_to(&mut config)?;
        }
        Ok(config)
    }
}

/// A module in another's `imports = [...]`.
///
/// What an import brings in:
/// - **providers and handlers**: every module reached through `imports`
///   (transitively; a module reached twice counts once) adds its providers,
///   and their `#[handlers]` run. A provider listed by several modules is one
///   singleton. The providers are in this order, which is the tie-break of
///   handler chains after `order`: depth first, a module's imports (in the
///   order listed) before its own providers, so an imported `AuthModule`'s
///   `#[on_authenticate]` runs before the application's at the same `order`.
/// - **broker options**: an imported module's options apply where the
///   modules closer to the started one set nothing: the started module's own
///   options win over all, an importing module's over what it imports, and a
///   later import's over an earlier one's.
/// - **not** its `config_file`, `allow_sys_publish` or `event_queue`: those are
///   the started module's alone (a library module must not open `$SYS/` to
///   clients of the application that imports it).
///
/// Modules that import each other in a cycle are a
/// [`BootstrapError::ImportCycle`] naming them.
#[derive(Clone, Copy)]
pub struct Import {
    /// The module's type name.
    pub name: &'static str,
    type_id: fn() -> TypeId,
    options: fn() -> Options,
    providers: fn() -> Vec<ProviderDef>,
    values: fn() -> Vec<ProviderDef>,
    imports: fn() -> Vec<Import>,
}

impl Import {
    /// The import of module `M` (what `imports = [M]` generates).
    ///
    /// ```
    /// use pigeon::prelude::*;
    /// #[module(providers = [])]
    /// struct AuthModule;
    /// assert!(pigeon::app::Import::of::<AuthModule>().name.ends_with("AuthModule"));
    /// ```
    pub fn of<M: Module + ?Sized>() -> Self {
        Self {
            name: type_name::<M>(),
            type_id: TypeId::of::<M>,
            options: M::options,
            providers: M::providers,
            values: M::values,
            imports: M::imports,
        }
    }
}

/// Every module reached from `root` through `imports`, each once, imports
/// before importers (so `root` is last), and the first cycle met, if any
/// (as `A -> B -> A`).
fn modules(root: Import) -> (Vec<Import>, Option<String>) {
    fn visit(
        module: Import,
        path: &mut Vec<Import>,
        done: &mut Vec<Import>,
        cycle: &mut Option<String>,
    ) {
        let id = (module.type_id)();
        if done.iter().any(|m| (m.type_id)() == id) {
            return;
        }
        if let Some(start) = path.iter().position(|m| (m.type_id)() == id) {
            if cycle.is_none() {
                let names: Vec<&str> = path[start..].iter().map(|m| m.name).collect();
                *cycle = Some(format!("{} -> {}", names.join(" -> "), module.name));
            }
            return;
        }
        path.push(module);
        for import in (module.imports)() {
            visit(import, path, done, cycle);
        }
        path.pop();
        done.push(module);
    }
    let (mut done, mut cycle) = (Vec::new(), None);
    visit(root, &mut Vec::new(), &mut done, &mut cycle);
    (done, cycle)
}

/// The providers of module `M` and of every module it imports, in the order
/// [`Import`] describes, each type once (its first place).
pub(crate) fn providers<M: Module>() -> Result<Vec<ProviderDef>, BootstrapError> {
    let (modules, cycle) = modules(Import::of::<M>());
    if let Some(cycle) = cycle {
        return Err(BootstrapError::ImportCycle(cycle));
    }
    let mut all: Vec<ProviderDef> = Vec::new();
    for module in modules {
        for def in (module.providers)() {
            if !all.iter().any(|d| d.type_id == def.type_id) {
                all.push(def);
            }
        }
        // Imports come first: an importer's value replaces an imported one's.
        let values = (module.values)();
        for (i, value) in values.iter().enumerate() {
            if values[..i].iter().any(|v| v.type_id == value.type_id) {
                return Err(BootstrapError::DuplicateValue(value.name));
            }
        }
        for value in values {
            match all.iter_mut().find(|d| d.type_id == value.type_id) {
                Some(slot) => *slot = value,
                None => all.push(value),
            }
        }
    }
    Ok(all)
}

/// A `#[module]` as the bootstrap sees every module of the program (through
/// `inventory`): which providers it lists. Submitted by the attribute.
pub struct ModuleEntry {
    /// The module's type name.
    pub name: &'static str,
    /// The type ids of its providers.
    pub providers: fn() -> Vec<TypeId>,
}

inventory::collect!(ModuleEntry);

/// The `#[handlers]` types that no module of the program lists in its
/// `providers = [...]` (and are not `#[handlers(optional)]`): their handlers
/// would never run, which for a deny-all `#[on_authenticate]` lets everyone in.
/// `also` is the module being started with its imports (listed whether or
/// not they were submitted). Sorted, each once.
pub(crate) fn unprovided_handlers(also: &[TypeId]) -> Vec<&'static str> {
    let mut provided: std::collections::HashSet<TypeId> = also.iter().copied().collect();
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::app::{BootstrapError, Pigeon, ProviderDef};
    use crate::prelude::*;

    #[injectable]
    struct Clock {
        #[inject(default)]
        now: u64,
    }

    #[injectable]
    struct Scheduler {
        clock: Arc<Clock>,
    }

    #[module(providers = [Clock])]
    struct TimeModule;

    #[module(imports = [TimeModule], providers = [Scheduler])]
    struct AppModule;

    struct Greeting(&'static str);
    struct Farewell(&'static str);

    #[injectable]
    struct Greeter {
        greeting: Arc<Greeting>,
        farewell: Arc<Farewell>,
    }

    #[module(values = [Greeting("hello"), Farewell("bye")], providers = [])]
    struct WordsModule;

    #[module(imports = [WordsModule], values = [Greeting("hi")], providers = [Greeter])]
    struct ChattyModule;

    #[tokio::test]
    async fn imported_values_join_and_the_importer_s_own_win() {
        let config = <ChattyModule as Module>::config().unwrap();
        let built = Pigeon::build::<ChattyModule>(&config).await.unwrap();
        let greeter = built.get::<Greeter>().unwrap();
        assert_eq!(greeter.greeting.0, "hi", "the importer's value");
        assert_eq!(greeter.farewell.0, "bye", "the imported module's value");
    }

    #[tokio::test]
    async fn an_override_replaces_an_imported_modules_provider() {
        let config = <AppModule as Module>::config().unwrap();
        let fake = Arc::new(Clock { now: 42 });
        let overrides = vec![ProviderDef::value(fake.clone())];
        let built = Pigeon::build_with::<AppModule>(&config, overrides, Vec::new())
            .await
            .unwrap();
        let scheduler = built.get::<Scheduler>().unwrap();
        assert!(Arc::ptr_eq(&scheduler.clock, &fake));
        assert_eq!(scheduler.clock.now, 42);
        // A type that neither module provides is no override.
        let Err(error) = Pigeon::build_with::<AppModule>(
            &config,
            vec![ProviderDef::value(Arc::new(String::new()))],
            Vec::new(),
        )
        .await
        else {
            panic!("overrode a provider nobody has");
        };
        assert!(matches!(error, BootstrapError::NotAProvider(_)), "{error}");
    }
}
