//! What `#[injectable(factory = ..., init = ..., destroy = ...)]` calls: an
//! async factory whose arguments are injected, the init hooks run once the
//! broker listens, and the destroy hooks run at close.

use std::{
    any::Any,
    fmt::Display,
    future::Future,
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex, PoisonError},
};

use futures_util::FutureExt;

use super::container::{BootstrapError, Container, Inject, Injectable};
use crate::hooks::BoxFuture;

/// Runs the destroy hook of one provider (given as `Any` of its type).
pub(crate) type Destroy = fn(Arc<dyn Any + Send + Sync>) -> BoxFuture<'static, ()>;

/// A created provider's destroy hook: its name (for logs), the instance, the hook.
pub(crate) type DestroyHook = (&'static str, Arc<dyn Any + Send + Sync>, Destroy);

/// Runs the init hook of one provider (given as `Any` of its type).
pub(crate) type Init =
    fn(Arc<dyn Any + Send + Sync>) -> BoxFuture<'static, Result<(), BootstrapError>>;

/// A created provider's init hook: its name (if it panics), the instance, the hook.
pub(crate) type InitHook = (&'static str, Arc<dyn Any + Send + Sync>, Init);

pub(crate) fn init_of<T: Injectable>(
    instance: Arc<dyn Any + Send + Sync>,
) -> BoxFuture<'static, Result<(), BootstrapError>> {
    Box::pin(async move {
        match instance.downcast::<T>() {
            Ok(provider) => provider.init().await,
            // The container keeps `T` under `T`'s own definition: cannot happen.
            Err(_) => Ok(()),
        }
    })
}

/// The init hooks of a module's providers, in creation order (dependencies
/// first).
pub(crate) struct Startup {
    hooks: Vec<InitHook>,
}

impl Startup {
    pub(crate) fn new(hooks: Vec<InitHook>) -> Self {
        Self { hooks }
    }

    /// Runs every hook in creation order, so that a provider's dependencies
    /// are initialised before it; stops at the first failure, or panic, which
    /// names its provider.
    pub(crate) async fn run(self) -> Result<(), BootstrapError> {
        for (name, instance, init) in self.hooks {
            match AssertUnwindSafe(init(instance)).catch_unwind().await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(BootstrapError::Init {
                        provider: name,
                        message: "the init hook panicked".to_owned(),
                    })
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn destroy_of<T: Injectable>(
    instance: Arc<dyn Any + Send + Sync>,
) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        if let Ok(provider) = instance.downcast::<T>() {
            provider.destroy().await;
        }
    })
}

/// The destroy hooks of a module's providers, run once, newest first.
pub(crate) struct Shutdown {
    hooks: Mutex<Vec<DestroyHook>>,
}

impl Shutdown {
    pub(crate) fn new(hooks: Vec<DestroyHook>) -> Self {
        Self {
            hooks: Mutex::new(hooks),
        }
    }

    /// Runs every hook in reverse creation order (a provider is destroyed
    /// before what it depends on); a second call does nothing. A hook that
    /// panics is logged and the others still run.
    pub(crate) async fn run(&self) {
        let hooks = std::mem::take(&mut *self.hooks.lock().unwrap_or_else(PoisonError::into_inner));
        for (name, instance, destroy) in hooks.into_iter().rev() {
            if AssertUnwindSafe(destroy(instance))
                .catch_unwind()
                .await
                .is_err()
            {
                tracing::error!(provider = name, "the provider's destroy hook panicked");
            }
        }
    }
}

/// An async function that builds provider `P`, each argument injected:
/// `async fn connect(config: Arc<DbConfig>, pigeon: PigeonService) -> Result<Self, E>`.
/// Used by `#[injectable(factory = Self::connect)]`.
///
/// ```
/// use std::sync::Arc;
/// use pigeon::prelude::*;
///
/// struct DbConfig { url: &'static str }
///
/// #[injectable(factory = Self::connect, destroy = Self::close)]
/// struct Db { url: String }
///
/// impl Db {
///     async fn connect(config: Arc<DbConfig>) -> Result<Self, String> {
///         tokio::task::yield_now().await; // e.g. open a pool
///         Ok(Db { url: config.url.to_owned() })
///     }
///     async fn close(&self) {}
/// }
///
/// #[module(values = [DbConfig { url: "pg://db" }], providers = [Db])]
/// struct AppModule;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let built = Pigeon::build::<AppModule>(&Config::default()).await.unwrap();
/// assert_eq!(built.get::<Db>().unwrap().url, "pg://db");
/// built.destroy().await;
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "this is not a factory of `{P}`",
    label = "expected an `async fn(..) -> Result<{P}, E>`",
    note = "a factory is an `async fn` (not a method: no `self`) taking injectable arguments (`Arc<T>`, `PigeonService`, `Config`) and returning `Result<{P}, E>` with `E: Display` (or `{P}` itself)"
)]
pub trait Factory<P, Args>: Send + 'static {
    /// Resolves the arguments, calls the function, and names `owner` in a failure.
    fn build(
        self,
        container: &Container,
        owner: &'static str,
        names: &'static [&'static str],
    ) -> impl Future<Output = Result<P, BootstrapError>> + Send;
}

/// Builds provider `P` with factory `f` (what `#[injectable(factory = f)]`
/// generates): `names` name the arguments in errors.
pub async fn factory<P, Args, F: Factory<P, Args>>(
    f: F,
    container: &Container,
    owner: &'static str,
    names: &'static [&'static str],
) -> Result<P, BootstrapError> {
    f.build(container, owner, names).await
}

/// What a factory may return: the provider, or `Result<P, E>` whose error
/// becomes [`BootstrapError::Provider`] naming the provider.
#[diagnostic::on_unimplemented(
    message = "a factory of `{P}` returns `{Self}`",
    label = "return `Result<{P}, E>` with `E: Display`, or `{P}`"
)]
pub trait FactoryOutput<P> {
    /// The provider, or the error naming `owner`.
    fn into_provider(self, owner: &'static str) -> Result<P, BootstrapError>;
}

impl<P, E: Display> FactoryOutput<P> for Result<P, E> {
    fn into_provider(self, owner: &'static str) -> Result<P, BootstrapError> {
        self.map_err(|e| BootstrapError::Provider {
            provider: owner,
            message: e.to_string(),
        })
    }
}

impl<P: Injectable> FactoryOutput<P> for P {
    fn into_provider(self, _: &'static str) -> Result<P, BootstrapError> {
        Ok(self)
    }
}

/// The name of argument `i` (from 0) in errors: what the macro generated.
fn arg(names: &'static [&'static str], i: usize) -> &'static str {
    names.get(i).copied().unwrap_or("(factory argument)")
}

macro_rules! factory {
    ($($a:ident $i:tt),*) => {
        impl<P, F, Fut, $($a),*> Factory<P, ($($a,)*)> for F
        where
            P: Send + 'static,
            F: FnOnce($($a),*) -> Fut + Send + 'static,
            Fut: Future + Send + 'static,
            Fut::Output: FactoryOutput<P>,
            $($a: Inject,)*
        {
            #[allow(non_snake_case, unused_variables)]
            async fn build(
                self,
                container: &Container,
                owner: &'static str,
                names: &'static [&'static str],
            ) -> Result<P, BootstrapError> {
                $(let $a = <$a as Inject>::inject(container, owner, arg(names, $i)).await?;)*
                self($($a),*).await.into_provider(owner)
            }
        }
    };
}

factory!();
factory!(A0 0);
factory!(A0 0, A1 1);
factory!(A0 0, A1 1, A2 2);
factory!(A0 0, A1 1, A2 2, A3 3);
factory!(A0 0, A1 1, A2 2, A3 3, A4 4);
factory!(A0 0, A1 1, A2 2, A3 3, A4 4, A5 5);
factory!(A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6);
factory!(A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6, A7 7);
factory!(A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6, A7 7, A8 8);
factory!(A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6, A7 7, A8 8, A9 9);
factory!(A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6, A7 7, A8 8, A9 9, A10 10);
factory!(A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6, A7 7, A8 8, A9 9, A10 10, A11 11);

/// What a destroy hook may return: nothing, or `Result<(), E>` whose error is
/// logged naming the provider (closing goes on).
#[diagnostic::on_unimplemented(
    message = "a destroy hook returns `{Self}`",
    label = "return `()` or `Result<(), E>` with `E: Display`"
)]
pub trait DestroyOutput {
    /// Logs a failure of provider `owner`'s hook.
    fn report(self, owner: &'static str);
}

impl DestroyOutput for () {
    fn report(self, _: &'static str) {}
}

impl<E: Display> DestroyOutput for Result<(), E> {
    fn report(self, owner: &'static str) {
        if let Err(e) = self {
            tracing::warn!(provider = owner, "destroy hook failed: {e}");
        }
    }
}

/// What an init hook may return: nothing, or `Result<(), E>` whose error
/// fails the bootstrap with [`BootstrapError::Init`] naming the provider.
#[diagnostic::on_unimplemented(
    message = "an init hook returns `{Self}`",
    label = "return `()` or `Result<(), E>` with `E: Display`"
)]
pub trait InitOutput {
    /// The hook's failure as the error of provider `owner`.
    fn into_init(self, owner: &'static str) -> Result<(), BootstrapError>;
}

impl InitOutput for () {
    fn into_init(self, _: &'static str) -> Result<(), BootstrapError> {
        Ok(())
    }
}

impl<E: Display> InitOutput for Result<(), E> {
    fn into_init(self, owner: &'static str) -> Result<(), BootstrapError> {
        self.map_err(|e| BootstrapError::Init {
            provider: owner,
            message: e.to_string(),
        })
    }
}
