//! Registration of handlers: `#[handlers]` submits one [`HandlerSet`] per impl
//! block through `inventory`; bootstrap calls each provider's sets with its
//! instance, and they add their methods to a [`HooksBuilder`].

use std::{any::Any, any::TypeId, future::Future, pin::Pin, sync::Arc};

use super::context::*;
use super::dispatch::{EventEntry, EventQueue};
use super::request::{RequestCx, RequestHandler, RequestLimits};
use super::{ExtractError, Hooks, HooksError, TopicPattern};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The function `#[handlers]` generates per method: extracts the parameters
/// from the context, awaits the method and converts its return value.
pub type HandlerFn<S, C> =
    for<'a> fn(Arc<S>, &'a mut C) -> BoxFuture<'a, Result<<C as Context>::Output, ExtractError>>;

pub(crate) type Call<C> = Box<
    dyn for<'a> Fn(&'a mut C) -> BoxFuture<'a, Result<<C as Context>::Output, ExtractError>>
        + Send
        + Sync,
>;

/// What the attribute said about one handler.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    /// `Type::method`, for logs and error events.
    pub name: &'static str,
    /// `order = N` (default 0); lower runs first.
    pub order: i32,
    /// The topic pattern of `#[on_publish("a/:id")]`.
    pub pattern: Option<&'static str>,
}

/// Sort key: `order`, then module provider order, then declaration order.
pub(crate) type Key = (i32, usize, usize);

/// One registered handler (built by [`HooksBuilder::handler`]).
pub struct Entry<C: Context> {
    pub(crate) name: &'static str,
    pub(crate) key: Key,
    pub(crate) pattern: Option<TopicPattern>,
    pub(crate) call: Call<C>,
}

/// The handler chains of the five handlers and authorize-forward.
#[derive(Default)]
pub(crate) struct Chains {
    pub pre_connect: Vec<Entry<PreConnectCx>>,
    pub authenticate: Vec<Entry<AuthenticateCx>>,
    pub authorize_publish: Vec<Entry<AuthorizePublishCx>>,
    pub authorize_subscribe: Vec<Entry<AuthorizeSubscribeCx>>,
    pub authorize_forward: Vec<Entry<AuthorizeForwardCx>>,
    pub published: Vec<Entry<PublishedCx>>,
}

/// A context handlers can be registered for.
pub trait Register: Context + Sized {
    #[doc(hidden)]
    fn register(b: &mut HooksBuilder, entry: Entry<Self>);
}

macro_rules! register_chain {
    ($($cx:ty => $field:ident),*) => {$(
        impl Register for $cx {
            fn register(b: &mut HooksBuilder, entry: Entry<Self>) {
                b.chains.$field.push(entry);
            }
        }
    )*};
}
register_chain!(
    PreConnectCx => pre_connect,
    AuthenticateCx => authenticate,
    AuthorizePublishCx => authorize_publish,
    AuthorizeSubscribeCx => authorize_subscribe,
    AuthorizeForwardCx => authorize_forward,
    PublishedCx => published
);

impl<K: EventMarker> Register for EventCx<K> {
    fn register(b: &mut HooksBuilder, entry: Entry<Self>) {
        let call = Arc::new(entry.call);
        b.events.push(EventEntry {
            kind: K::KIND,
            name: entry.name,
            key: entry.key,
            pattern: entry.pattern,
            call: Box::new(move |event, params| {
                let call = call.clone();
                Box::pin(async move {
                    let mut cx = EventCx::<K>::new(event, params);
                    call(&mut cx).await
                })
            }),
        });
    }
}

fn boxed<C: Context, F>(f: F) -> Call<C>
where
    F: for<'a> Fn(&'a mut C) -> BoxFuture<'a, Result<C::Output, ExtractError>>
        + Send
        + Sync
        + 'static,
{
    Box::new(f)
}

/// Collects handlers, then builds [`Hooks`] (and starts the event dispatcher).
#[derive(Default)]
pub struct HooksBuilder {
    /// See [`Hooks::allow_sys_publish`].
    pub allow_sys_publish: bool,
    /// Capacity of each provider's event queue (0 = default 16384).
    pub event_capacity: usize,
    pub(crate) chains: Chains,
    pub(crate) events: Vec<EventEntry>,
    pub(crate) requests: Vec<RequestHandler>,
    provider: usize,
    decl: usize,
    errors: Vec<String>,
}

impl HooksBuilder {
    /// A builder with no handler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers one handler method of provider `svc` (called by generated code).
    pub fn handler<S, C>(&mut self, meta: Meta, svc: &Arc<S>, f: HandlerFn<S, C>)
    where
        S: Send + Sync + 'static,
        C: Register,
    {
        let pattern = match meta.pattern {
            None => None,
            Some(p) => match TopicPattern::parse(p) {
                Some(p) => Some(p),
                None => {
                    self.errors
                        .push(format!("{}: invalid topic pattern {p:?}", meta.name));
                    return;
                }
            },
        };
        let svc = svc.clone();
        let entry = Entry {
            name: meta.name,
            key: (meta.order, self.provider, self.decl),
            pattern,
            call: boxed::<C, _>(move |cx| f(svc.clone(), cx)),
        };
        self.decl += 1;
        C::register(self, entry);
    }

    /// Registers one `#[on_request]` method of provider `svc` (called by
    /// generated code; `meta.pattern` is required there).
    pub fn request<S>(
        &mut self,
        meta: Meta,
        limits: RequestLimits,
        svc: &Arc<S>,
        f: HandlerFn<S, RequestCx>,
    ) where
        S: Send + Sync + 'static,
    {
        let Some(text) = meta.pattern else {
            self.errors.push(format!(
                "{}: #[on_request] needs a topic pattern",
                meta.name
            ));
            return;
        };
        let Some(pattern) = TopicPattern::parse(text) else {
            self.errors
                .push(format!("{}: invalid topic pattern {text:?}", meta.name));
            return;
        };
        if limits.concurrency == 0 || limits.timeout.is_zero() {
            self.errors.push(format!(
                "{}: #[on_request] needs a concurrency and a timeout above 0",
                meta.name
            ));
            return;
        }
        let svc = svc.clone();
        let entry = Entry {
            name: meta.name,
            key: (meta.order, self.provider, self.decl),
            pattern: Some(pattern),
            call: boxed::<RequestCx, _>(move |cx| f(svc.clone(), cx)),
        };
        self.decl += 1;
        self.requests.push(RequestHandler {
            entry,
            pattern: text,
            limits,
        });
    }

    /// Registers every `#[handlers]` block of the provider type of `instance`.
    /// `index` is the provider's position in the module (the tie-break after `order`).
    pub fn provider(
        &mut self,
        index: usize,
        type_id: TypeId,
        instance: &Arc<dyn Any + Send + Sync>,
    ) {
        self.provider = index;
        self.decl = 0;
        for set in inventory::iter::<HandlerSet> {
            if (set.provider)() == type_id {
                (set.register)(instance, self);
            }
        }
    }

    /// Builds the hooks; starts the event dispatcher task when an event handler
    /// exists (needs a tokio runtime).
    pub fn build(mut self) -> Result<Hooks, HooksError> {
        if !self.errors.is_empty() {
            return Err(HooksError::Handlers(self.errors));
        }
        let c = &mut self.chains;
        c.pre_connect.sort_by_key(|e| e.key);
        c.authenticate.sort_by_key(|e| e.key);
        c.authorize_publish.sort_by_key(|e| e.key);
        c.authorize_subscribe.sort_by_key(|e| e.key);
        c.authorize_forward.sort_by_key(|e| e.key);
        c.published.sort_by_key(|e| e.key);
        let mut wanted = 0;
        for e in &self.events {
            wanted |= e.kind.bit();
        }
        let events = if self.events.is_empty() {
            None
        } else {
            // Its only failure: no runtime to spawn the dispatcher on.
            let queue = EventQueue::spawn(self.events, self.event_capacity);
            Some(queue.map_err(|_| HooksError::NoRuntime)?)
        };
        Ok(Hooks {
            allow_sys_publish: self.allow_sys_publish,
            chains: self.chains,
            requests: self.requests,
            events,
            wanted,
            timings: Default::default(),
        })
    }
}

/// One `#[handlers]` impl block, submitted through `inventory`.
pub struct HandlerSet {
    /// The provider type the block belongs to.
    pub provider: fn() -> TypeId,
    /// Its name, for the error when no module provides it.
    pub name: &'static str,
    /// `#[handlers(optional)]`: a library's handlers that an application may
    /// leave out of its modules without an error.
    pub optional: bool,
    /// Adds the block's methods for one instance.
    pub register: fn(&Arc<dyn Any + Send + Sync>, &mut HooksBuilder),
}

inventory::collect!(HandlerSet);
