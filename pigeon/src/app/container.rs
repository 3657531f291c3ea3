//! The dependency-injection container: providers are singletons created on
//! first use, with their fields resolved from the container.

use std::{
    any::{type_name, Any, TypeId},
    cell::RefCell,
    collections::HashMap,
    sync::Arc,
};

use crate::{Config, PigeonService};

/// A failure while building a module.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// A field asks for a provider the module does not list.
    #[error("{owner}.{field}: provider `{provider}` is not in the module's `providers = [...]`")]
    MissingProvider {
        /// The provider whose field asks for it.
        owner: &'static str,
        /// The field.
        field: &'static str,
        /// The provider type asked for.
        provider: &'static str,
    },
    /// A hand-written `Injectable::create` failed (e.g. a provider's own file is missing).
    #[error("provider `{provider}`: {message}")]
    Provider {
        /// The provider type.
        provider: &'static str,
        /// Why it could not be built.
        message: String,
    },
    /// An override names a type the module does not provide.
    #[error(
        "override_provider::<{0}>: `{0}` is not a provider of the module (nothing to override)"
    )]
    NotAProvider(&'static str),
    /// Providers that depend on each other in a cycle.
    #[error("dependency cycle between providers: {0}")]
    Cycle(String),
    /// `#[handlers]` of types that no module lists in `providers = [...]`:
    /// their handlers would never run (a deny-all `#[on_authenticate]` left
    /// out would let everyone in).
    #[error(
        "#[handlers] of {0} would never run: no module lists it in `providers = [...]` \
         (add it to the module's providers, or write `#[handlers(optional)]` on a library's \
         handlers that applications may leave out)"
    )]
    UnprovidedHandlers(String),
    /// A provider's handlers could not be registered (e.g. an invalid topic pattern).
    #[error("handlers: {0}")]
    Hooks(#[source] crate::hooks::HooksError),
    /// An option of the module does not apply (e.g. a `listen` URL that is
    /// not a listener): the error names the option.
    #[error("module option: {0}")]
    Options(#[source] crate::config::ConfigError),
    /// The configuration read at startup (the config file, the `PIGEON_*`
    /// variables, a settings section) is refused: the error names the file or
    /// variable, and the key.
    #[error("configuration: {0}")]
    Config(#[source] crate::config::ConfigError),
    /// Modules that import each other in a cycle, in import order.
    #[error("modules import each other in a cycle: {0}")]
    ImportCycle(String),
    /// The broker could not start (e.g. the port is taken).
    #[error("the broker could not start: {0}")]
    Start(#[source] crate::broker::StartError),
}

/// A struct the container can build; implemented by `#[injectable]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a provider",
    label = "not an #[injectable] struct",
    note = "mark the struct `#[injectable]` (or implement `pigeon::app::Injectable` by hand)"
)]
pub trait Injectable: Sized + Send + Sync + 'static {
    /// Builds the provider, resolving its fields from `container`.
    fn create(container: &Container) -> Result<Self, BootstrapError>;
}

/// A field type of an `#[injectable]` struct.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be injected",
    label = "not resolvable from the container",
    note = "injectable fields are `PigeonService`, `Config`, `Arc<P>` for a provider `P` (an #[injectable] struct), or fields marked `#[inject(default)]`"
)]
pub trait Inject: Sized {
    /// Resolves the field `field` of provider `owner`.
    fn inject(
        container: &Container,
        owner: &'static str,
        field: &'static str,
    ) -> Result<Self, BootstrapError>;
}

impl Inject for PigeonService {
    fn inject(c: &Container, _: &'static str, _: &'static str) -> Result<Self, BootstrapError> {
        Ok(c.service.clone())
    }
}

impl Inject for Config {
    fn inject(c: &Container, _: &'static str, _: &'static str) -> Result<Self, BootstrapError> {
        Ok(c.config.clone())
    }
}

impl<T: Injectable> Inject for Arc<T> {
    fn inject(
        c: &Container,
        owner: &'static str,
        field: &'static str,
    ) -> Result<Self, BootstrapError> {
        c.resolve::<T>(owner, field)
    }
}

type Instance = Arc<dyn Any + Send + Sync>;

type Create = Arc<dyn Fn(&Container) -> Result<Instance, BootstrapError> + Send + Sync>;

/// How to build one provider listed in a module.
#[derive(Clone)]
pub struct ProviderDef {
    /// The provider's type.
    pub type_id: TypeId,
    /// The provider's type name, for errors.
    pub name: &'static str,
    create: Create,
}

impl ProviderDef {
    /// The definition of provider `T`.
    pub fn of<T: Injectable>() -> Self {
        Self {
            type_id: TypeId::of::<T>(),
            name: type_name::<T>(),
            create: Arc::new(|c| Ok(Arc::new(T::create(c)?) as Instance)),
        }
    }

    /// Provider `T` given as a ready instance (a test's fake in place of the
    /// module's own `T`): every `Arc<T>` field receives this one.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// struct Clock(u64);
    /// let def = pigeon::app::ProviderDef::value(Arc::new(Clock(7)));
    /// assert!(def.name.ends_with("Clock"));
    /// ```
    pub fn value<T: Send + Sync + 'static>(value: Arc<T>) -> Self {
        Self {
            type_id: TypeId::of::<T>(),
            name: type_name::<T>(),
            create: Arc::new(move |_| Ok(value.clone() as Instance)),
        }
    }
}

/// The providers of one module, the configuration and the [`PigeonService`].
pub struct Container {
    config: Config,
    service: PigeonService,
    defs: Vec<ProviderDef>,
    instances: RefCell<HashMap<TypeId, Instance>>,
    creating: RefCell<Vec<&'static str>>,
}

impl Container {
    /// A container for the providers `defs`; none is built until asked for.
    pub fn new(config: Config, service: PigeonService, defs: Vec<ProviderDef>) -> Self {
        Self {
            config,
            service,
            defs,
            instances: RefCell::default(),
            creating: RefCell::default(),
        }
    }

    /// The singleton of provider `T`, created on first use.
    pub fn resolve<T: Injectable>(
        &self,
        owner: &'static str,
        field: &'static str,
    ) -> Result<Arc<T>, BootstrapError> {
        let id = TypeId::of::<T>();
        let Some(def) = self.defs.iter().find(|d| d.type_id == id).cloned() else {
            return Err(BootstrapError::MissingProvider {
                owner,
                field,
                provider: type_name::<T>(),
            });
        };
        let instance = self.instance(&def)?;
        instance
            .downcast::<T>()
            .map_err(|_| BootstrapError::Cycle(format!("{} has an unexpected type", def.name)))
    }

    fn instance(&self, def: &ProviderDef) -> Result<Instance, BootstrapError> {
        if let Some(i) = self.instances.borrow().get(&def.type_id) {
            return Ok(i.clone());
        }
        if self.creating.borrow().contains(&def.name) {
            let mut chain = self.creating.borrow().clone();
            chain.push(def.name);
            return Err(BootstrapError::Cycle(chain.join(" -> ")));
        }
        self.creating.borrow_mut().push(def.name);
        let created = (def.create)(self);
        self.creating.borrow_mut().pop();
        let created = created?;
        self.instances
            .borrow_mut()
            .insert(def.type_id, created.clone());
        Ok(created)
    }

    /// Creates every provider, in module order; returns them in that order.
    pub fn instantiate_all(&self) -> Result<Vec<(ProviderDef, Instance)>, BootstrapError> {
        self.defs
            .iter()
            .map(|d| Ok((d.clone(), self.instance(d)?)))
            .collect()
    }
}
