//! The proc-macros of Pigeon. Use them through `pigeon::prelude`.
//!
//! Each macro parses its input into a small model, validates it (errors carry
//! the span of the offending tokens) and generates code that calls the runtime
//! in `pigeon::__private`.

use proc_macro::TokenStream;

mod args;
mod handlers;
mod hook;
mod injectable;
mod module;

fn finish(r: syn::Result<proc_macro2::TokenStream>) -> TokenStream {
    r.unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Makes a struct a provider: each field is resolved from the module's container
/// (`PigeonService`, `Config`, `Arc<T>` for a provider, a value or a bound
/// `dyn Trait`); `#[inject(default)]` fields start as `Default::default()`.
///
/// `#[injectable(factory = Self::connect)]`: the provider is built by
/// `async fn connect(args...) -> Result<Self, E>` (or `-> Self`), each argument
/// injected; an error stops the start-up naming the provider.
/// `#[injectable(destroy = Self::close)]`: `async fn close(&self)` runs when the
/// app closes, in reverse creation order. See `pigeon::app::Factory`.
#[proc_macro_attribute]
pub fn injectable(attr: TokenStream, item: TokenStream) -> TokenStream {
    finish(injectable::expand(attr.into(), item.into()))
}

/// Registers every `#[on_*]` method of an impl block through `inventory`.
#[proc_macro_attribute]
pub fn handlers(attr: TokenStream, item: TokenStream) -> TokenStream {
    finish(handlers::expand(attr.into(), item.into()))
}

/// Declares a module: broker options, `providers = [...]` (an entry
/// `Impl as dyn Trait` binds the trait object to that provider),
/// `values = [expr, ...]` (ready instances injected by their type),
/// `imports = [...]` (other modules whose providers and handlers join this
/// one's) and `config_file = "..."` (read at bootstrap when it exists).
#[proc_macro_attribute]
pub fn module(attr: TokenStream, item: TokenStream) -> TokenStream {
    finish(module::expand(attr.into(), item.into()))
}

macro_rules! hook_attrs {
    ($($name:ident),*) => {$(
        #[doc = concat!("`#[", stringify!($name), "]`: marks a handler method; only valid inside `#[handlers]`.")]
        #[proc_macro_attribute]
        pub fn $name(_attr: TokenStream, item: TokenStream) -> TokenStream {
            handlers::orphan(stringify!($name), item.into()).into()
        }
    )*};
}

hook_attrs!(
    on_pre_connect,
    on_authenticate,
    on_authorize_publish,
    on_authorize_subscribe,
    on_authorize_forward,
    on_published,
    on_client,
    on_client_ready,
    on_client_disconnect,
    on_client_error,
    on_connection_error,
    on_keepalive_timeout,
    on_publish,
    on_ack,
    on_subscribe,
    on_unsubscribe,
    on_connack_sent,
    on_closed,
    on_ping
);

/// `#[on_request("rpc/:service/:method", timeout = 10000, concurrency = 16)]`:
/// a request/response handler; only valid inside `#[handlers]`.
///
/// The pattern is required (its `:name` segments fill `Param<T>`); `timeout`
/// (ms, default 10000) bounds one call, and `concurrency` (default 16) the
/// calls running at once — further requests wait in the handler's bounded
/// queue, which slows QoS 1/2 requesters when full. Parameters: `Param<T>`,
/// `Params`, `Json<T>`, `Payload`, `Topic`, `Packet<Publish>`,
/// `Option<Client>`, `Client`. Returns `Result<A, E>` or `A`, where `A` is
/// `Json<T>` (`T: Serialize`), `String`, `&'static str`, `Bytes`, `Vec<u8>` or
/// `()`, and `E: Display`.
///
/// An MQTT 5.0 request is answered on its Response Topic, with its
/// Correlation Data and a Content Type; an error answer has the message as
/// payload and the user property `error`. A 3.1.1 client sends a JSON
/// envelope instead (see `pigeon::hooks::request`). A request with nowhere to
/// answer is reported to `#[on_client_error]` and not answered.
///
/// ```ignore
/// #[handlers]
/// impl Calc {
///     #[on_request("rpc/calc/:op", timeout = 2000)]
///     async fn calc(&self, Param(op): Param<String>, Json(a): Json<Args>) -> Result<Json<i64>, String> {
///         match op.as_str() {
///             "add" => Ok(Json(a.x + a.y)),
///             _ => Err(format!("no such operation: {op}")),
///         }
///     }
/// }
/// ```
#[proc_macro_attribute]
pub fn on_request(_attr: TokenStream, item: TokenStream) -> TokenStream {
    handlers::orphan("on_request", item.into()).into()
}
