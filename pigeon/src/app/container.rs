//! The dependency-injection container: providers are singletons created on
//! first use, asynchronously, with their fields (or their factory's
//! arguments) resolved from the container.
//!
//! Every instance is kept as an `Arc<T>` (erased), so that a trait object
//! `Arc<dyn Trait>` is resolved like a concrete provider; concrete instances
//! are also kept as `Arc<dyn Any>` of `T` itself, the form the handlers and
//! `App::get` downcast.

use std::{
    any::{type_name, Any, TypeId},
    future::Future,
    sync::{Arc, Mutex, PoisonError},
};

use super::provider::{Destroy, DestroyHook, Init, InitHook, Shutdown, Startup};
use crate::{hooks::BoxFuture, Config, PigeonService};

/// A failure while building a module.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// A field asks for a provider (an `#[injectable]` struct) the module does not list.
    #[error("{owner}.{field}: provider `{provider}` is not in the module's `providers = [...]`")]
    MissingProvider {
        /// The provider whose field asks for it.
        owner: &'static str,
        /// The field (`load(#1)` for a factory's first argument).
        field: &'static str,
        /// The provider type asked for.
        provider: &'static str,
    },
    /// A field asks for a value (a type that is no provider) that nobody gave.
    #[error(
        "{owner}.{field}: no value of type `{value}`: give one in the module \
         (`values = [...]`) or when it starts (`Pigeon::builder::<M>().value(...)`)"
    )]
    MissingValue {
        /// The provider whose field asks for it.
        owner: &'static str,
        /// The field (`load(#1)` for a factory's first argument).
        field: &'static str,
        /// The value's type.
        value: &'static str,
    },
    /// A field asks for a trait object that no implementation is bound to.
    #[error(
        "{owner}.{field}: no implementation is bound to `{interface}`: \
         list one in the module as `providers = [Impl as {interface}]`"
    )]
    MissingBinding {
        /// The provider whose field asks for it.
        owner: &'static str,
        /// The field.
        field: &'static str,
        /// The trait object type (`dyn UserStore`).
        interface: &'static str,
    },
    /// A provider's factory (or a hand-written `Injectable::create`) failed:
    /// a database that does not answer, a file that is missing.
    #[error("provider `{provider}`: {message}")]
    Provider {
        /// The provider type.
        provider: &'static str,
        /// Why it could not be built.
        message: String,
    },
    /// A provider's init hook (`#[injectable(init = Self::start)]`) failed
    /// or panicked once the broker was listening: the broker was closed and
    /// the providers destroyed.
    #[error("provider `{provider}`: init hook failed: {message}")]
    Init {
        /// The provider type.
        provider: &'static str,
        /// The hook's error.
        message: String,
    },
    /// A provider definition's instance is not of the type it was registered
    /// under (a [`ProviderDef`] whose public `type_id` was changed by hand).
    #[error(
        "provider `{provider}` was asked for as `{expected}`, but its instance is another type"
    )]
    TypeMismatch {
        /// The type the definition was built for.
        provider: &'static str,
        /// The type a field asked for.
        expected: &'static str,
    },
    /// An override names a type the module does not provide.
    #[error(
        "override_provider::<{0}>: `{0}` is not a provider of the module (nothing to override)"
    )]
    NotAProvider(&'static str),
    /// The module gives two values of the same type: which one a field gets
    /// would be a guess.
    #[error("the module gives two values of type `{0}` (`values = [...]`): give one")]
    DuplicateValue(&'static str),
    /// Providers that depend on each other in a cycle, each step named
    /// `Provider.field` (`Chicken.egg -> Egg.chicken -> Chicken`).
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
///
/// By hand (rarely needed: `#[injectable(factory = ...)]` covers async
/// set-up):
///
/// ```
/// use pigeon::{app::{Container, Injectable}, BootstrapError};
///
/// struct Clock { started: std::time::Instant }
///
/// impl Injectable for Clock {
///     async fn create(_: &Container) -> Result<Self, BootstrapError> {
///         Ok(Clock { started: std::time::Instant::now() })
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a provider",
    label = "not an #[injectable] struct",
    note = "mark the struct `#[injectable]` (or implement `pigeon::app::Injectable` by hand)"
)]
pub trait Injectable: Sized + Send + Sync + 'static {
    /// Builds the provider, resolving its dependencies from `container`.
    fn create(container: &Container) -> impl Future<Output = Result<Self, BootstrapError>> + Send;

    /// Called once the broker is listening, before `Pigeon::bootstrap`
    /// returns, in creation order (a provider's dependencies first); an `Err`
    /// fails the bootstrap (the broker is closed, the providers destroyed).
    /// `#[injectable(init = Self::start)]` implements it:
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use pigeon::{broker::PublishError, prelude::*};
    ///
    /// #[injectable(init = Self::start)]
    /// struct Announcer {
    ///     pigeon: PigeonService,
    ///     #[inject(default)]
    ///     announced: AtomicBool,
    /// }
    ///
    /// impl Announcer {
    ///     // The broker is listening: publishing works here.
    ///     async fn start(&self) -> Result<(), PublishError> {
    ///         let mut status = Publish::new("status/announcer", QoS::AtLeastOnce, "up");
    ///         status.retain = true;
    ///         self.pigeon.publish(status).await?;
    ///         self.announced.store(true, Ordering::SeqCst);
    ///         Ok(())
    ///     }
    /// }
    ///
    /// #[module(providers = [Announcer])]
    /// struct AppModule;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let app = pigeon::testing::start::<AppModule>().await.unwrap();
    /// assert!(app.get::<Announcer>().unwrap().announced.load(Ordering::SeqCst));
    /// app.close().await;
    /// # }
    /// ```
    fn init(&self) -> impl Future<Output = Result<(), BootstrapError>> + Send {
        async { Ok(()) }
    }

    /// Called once when the application closes, dependents before their
    /// dependencies (the reverse of the creation order).
    /// `#[injectable(destroy = Self::close)]` implements it.
    fn destroy(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// A field type of an `#[injectable]` struct, or an argument of its factory.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be injected",
    label = "not resolvable from the container",
    note = "a provider, a value or a bound trait is injected as `Arc<T>`: if `{Self}` is one, write `Arc<{Self}>`",
    note = "injectable fields are `Arc<T>` (a provider, a value, or `Arc<dyn Trait>` bound in the module), `PigeonService`, `Config`, or fields marked `#[inject(default)]`"
)]
pub trait Inject: Sized + Send + 'static {
    /// Resolves the field `field` of provider `owner`.
    fn inject(
        container: &Container,
        owner: &'static str,
        field: &'static str,
    ) -> impl Future<Output = Result<Self, BootstrapError>> + Send;
}

impl Inject for PigeonService {
    async fn inject(
        c: &Container,
        _: &'static str,
        _: &'static str,
    ) -> Result<Self, BootstrapError> {
        Ok(c.service.clone())
    }
}

impl Inject for Config {
    async fn inject(
        c: &Container,
        _: &'static str,
        _: &'static str,
    ) -> Result<Self, BootstrapError> {
        Ok(c.config.clone())
    }
}

/// `Arc<T>`: the singleton of provider `T`, the module's value of type `T`, or
/// for `T = dyn Trait` the implementation bound to it.
impl<T: ?Sized + Send + Sync + 'static> Inject for Arc<T> {
    async fn inject(
        c: &Container,
        owner: &'static str,
        field: &'static str,
    ) -> Result<Self, BootstrapError> {
        c.resolve::<T>(owner, field).await
    }
}

/// What `#[injectable]` registers, so that a missing dependency can be told
/// apart: a provider left out of the module, or a value nobody gave.
pub struct InjectableEntry {
    /// The provider's type.
    pub type_id: fn() -> TypeId,
}

inventory::collect!(InjectableEntry);

/// One created instance.
#[derive(Clone)]
pub(crate) struct Instance {
    /// An `Arc<T>` boxed as `Any` (for every kind, trait objects included).
    shared: Arc<dyn Any + Send + Sync>,
    /// `T` itself as `Any`, for a concrete type (what handlers and
    /// `App::get` downcast); `None` for a trait object.
    pub(crate) concrete: Option<Arc<dyn Any + Send + Sync>>,
}

impl Instance {
    fn concrete<T: Send + Sync + 'static>(value: Arc<T>) -> Self {
        Self {
            shared: Arc::new(value.clone()),
            concrete: Some(value),
        }
    }
}

type Create = Arc<
    dyn for<'c> Fn(&'c Container) -> BoxFuture<'c, Result<Instance, BootstrapError>> + Send + Sync,
>;

/// How to build one provider listed in a module.
#[derive(Clone)]
pub struct ProviderDef {
    /// The provider's type (`dyn Trait` for a binding).
    pub type_id: TypeId,
    /// The provider's type name, for errors.
    pub name: &'static str,
    create: Create,
    init: Option<Init>,
    destroy: Option<Destroy>,
}

impl ProviderDef {
    /// The definition of provider `T`, built by its `Injectable::create`.
    pub fn of<T: Injectable>() -> Self {
        Self {
            type_id: TypeId::of::<T>(),
            name: type_name::<T>(),
            create: Arc::new(|c| {
                Box::pin(async move { Ok(Instance::concrete(Arc::new(T::create(c).await?))) })
            }),
            init: Some(super::provider::init_of::<T>),
            destroy: Some(super::provider::destroy_of::<T>),
        }
    }

    /// Provider `T` given as a ready instance (a module's value, a test's fake
    /// in place of the module's own `T`): every `Arc<T>` field receives this one.
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
            create: Arc::new(move |_| {
                let instance = Instance::concrete(value.clone());
                Box::pin(async move { Ok(instance) })
            }),
            init: None,
            destroy: None,
        }
    }

    /// A trait object given as a ready instance: every `Arc<dyn Trait>` field
    /// receives this one (a test's fake in place of the module's binding).
    ///
    /// ```
    /// use std::sync::Arc;
    /// trait UserStore: Send + Sync { fn count(&self) -> usize; }
    /// struct Fake;
    /// impl UserStore for Fake { fn count(&self) -> usize { 0 } }
    ///
    /// let def = pigeon::app::ProviderDef::dyn_value::<dyn UserStore>(Arc::new(Fake));
    /// assert!(def.name.contains("dyn"));
    /// ```
    pub fn dyn_value<D: ?Sized + Send + Sync + 'static>(value: Arc<D>) -> Self {
        Self {
            type_id: TypeId::of::<D>(),
            name: type_name::<D>(),
            create: Arc::new(move |_| {
                let instance = Instance {
                    shared: Arc::new(value.clone()),
                    concrete: None,
                };
                Box::pin(async move { Ok(instance) })
            }),
            init: None,
            destroy: None,
        }
    }

    /// Trait object `D` bound to provider `T`: an `Arc<D>` field receives the
    /// singleton of `T` (the one `Arc<T>` fields receive), converted by `cast`.
    /// What `providers = [T as D]` generates.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use pigeon::{app::ProviderDef, prelude::*};
    ///
    /// trait UserStore: Send + Sync {}
    /// #[injectable]
    /// struct PgStore;
    /// impl UserStore for PgStore {}
    ///
    /// let def = ProviderDef::bind::<dyn UserStore, PgStore>(|pg| pg);
    /// assert!(def.name.contains("UserStore"));
    /// ```
    pub fn bind<D: ?Sized + Send + Sync + 'static, T: Injectable>(
        cast: fn(Arc<T>) -> Arc<D>,
    ) -> Self {
        Self {
            type_id: TypeId::of::<D>(),
            name: type_name::<D>(),
            create: Arc::new(move |c| {
                Box::pin(async move {
                    let target = c.resolve::<T>(type_name::<D>(), "(binding)").await?;
                    Ok(Instance {
                        shared: Arc::new(cast(target)),
                        concrete: None,
                    })
                })
            }),
            init: None,
            destroy: None,
        }
    }
}

/// The providers of one module, the configuration and the [`PigeonService`].
///
/// Resolution runs on the task that builds the module, one dependency at a
/// time (a hand-written `Injectable::create` should not resolve two
/// dependencies concurrently: each would be created once per request).
pub struct Container {
    config: Config,
    service: PigeonService,
    defs: Vec<ProviderDef>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    instances: Vec<(TypeId, Instance)>,
    /// The providers being created, innermost last, each with the field it
    /// was asked for through (`None` for the module's own list).
    creating: Vec<(TypeId, Option<(&'static str, &'static str)>)>,
    /// What to initialise once the broker listens, in creation order.
    inits: Vec<InitHook>,
    /// What to destroy at close, in creation order.
    created: Vec<DestroyHook>,
}

impl Container {
    /// A container for the providers `defs` (the first of each type counts:
    /// a provider listed twice is one singleton); none is built until asked for.
    pub fn new(config: Config, service: PigeonService, defs: Vec<ProviderDef>) -> Self {
        let mut unique: Vec<ProviderDef> = Vec::with_capacity(defs.len());
        for def in defs {
            if !unique.iter().any(|d| d.type_id == def.type_id) {
                unique.push(def);
            }
        }
        Self {
            config,
            service,
            defs: unique,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned lock still has valid state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The singleton of `T` (a provider, a value, or the implementation bound
    /// to `dyn Trait`), created on first use; `owner.field` is who asks, for
    /// errors.
    pub async fn resolve<T: ?Sized + Send + Sync + 'static>(
        &self,
        owner: &'static str,
        field: &'static str,
    ) -> Result<Arc<T>, BootstrapError> {
        let id = TypeId::of::<T>();
        let Some(def) = self.defs.iter().find(|d| d.type_id == id) else {
            return Err(missing::<T>(owner, field));
        };
        let instance = self.instance(def, Some((owner, field))).await?;
        instance
            .shared
            .downcast_ref::<Arc<T>>()
            .cloned()
            .ok_or(BootstrapError::TypeMismatch {
                provider: def.name,
                expected: type_name::<T>(),
            })
    }

    async fn instance(
        &self,
        def: &ProviderDef,
        via: Option<(&'static str, &'static str)>,
    ) -> Result<Instance, BootstrapError> {
        {
            let mut state = self.state();
            if let Some((_, i)) = state.instances.iter().find(|(id, _)| *id == def.type_id) {
                return Ok(i.clone());
            }
            if let Some(at) = state.creating.iter().position(|(id, _)| *id == def.type_id) {
                return Err(BootstrapError::Cycle(cycle(
                    &state.creating[at + 1..],
                    via,
                    def,
                )));
            }
            state.creating.push((def.type_id, via));
        }
        let created = (def.create)(self).await;
        let mut state = self.state();
        state.creating.pop();
        let created = created?;
        if let (Some(init), Some(concrete)) = (def.init, &created.concrete) {
            state.inits.push((def.name, concrete.clone(), init));
        }
        if let (Some(destroy), Some(concrete)) = (def.destroy, &created.concrete) {
            state.created.push((def.name, concrete.clone(), destroy));
        }
        state.instances.push((def.type_id, created.clone()));
        Ok(created)
    }

    /// Creates every provider, in module order; returns the concrete ones
    /// (providers and values, not bindings) in that order.
    pub async fn instantiate_all(
        &self,
    ) -> Result<Vec<(ProviderDef, Arc<dyn Any + Send + Sync>)>, BootstrapError> {
        let mut all = Vec::with_capacity(self.defs.len());
        for def in &self.defs {
            let instance = self.instance(def, None).await?;
            if let Some(concrete) = instance.concrete {
                all.push((def.clone(), concrete));
            }
        }
        Ok(all)
    }

    /// The destroy hooks of the providers created so far, to run at close
    /// (in reverse creation order).
    pub(crate) fn shutdown(&self) -> Shutdown {
        Shutdown::new(std::mem::take(&mut self.state().created))
    }

    /// The init hooks of the providers created so far, to run once the
    /// broker listens (in creation order).
    pub(crate) fn startup(&self) -> Startup {
        Startup::new(std::mem::take(&mut self.state().inits))
    }
}

/// The error for a `T` the module has nothing for: a provider it does not
/// list, a trait nothing is bound to, or a value nobody gave.
fn missing<T: ?Sized + 'static>(owner: &'static str, field: &'static str) -> BootstrapError {
    let id = TypeId::of::<T>();
    let name = type_name::<T>();
    if inventory::iter::<InjectableEntry>
        .into_iter()
        .any(|e| (e.type_id)() == id)
    {
        BootstrapError::MissingProvider {
            owner,
            field,
            provider: name,
        }
    } else if name.starts_with("dyn ") {
        BootstrapError::MissingBinding {
            owner,
            field,
            interface: name,
        }
    } else {
        BootstrapError::MissingValue {
            owner,
            field,
            value: name,
        }
    }
}

/// `A.x -> B.y -> A`: the steps from the provider asked for again back to it.
fn cycle(
    inner: &[(TypeId, Option<(&'static str, &'static str)>)],
    via: Option<(&'static str, &'static str)>,
    def: &ProviderDef,
) -> String {
    let steps: Vec<(&str, &str)> = inner.iter().filter_map(|(_, v)| *v).chain(via).collect();
    let back = steps.first().map_or(def.name, |(owner, _)| owner);
    let mut chain: Vec<String> = steps.iter().map(|(o, f)| format!("{o}.{f}")).collect();
    chain.push(back.to_owned());
    chain.join(" -> ")
}
