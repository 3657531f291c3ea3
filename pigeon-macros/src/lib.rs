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
/// (`PigeonService`, `Config`, `Arc<OtherProvider>`); `#[inject(default)]` fields
/// start as `Default::default()`.
#[proc_macro_attribute]
pub fn injectable(attr: TokenStream, item: TokenStream) -> TokenStream {
    finish(injectable::expand(attr.into(), item.into()))
}

/// Registers every `#[on_*]` method of an impl block through `inventory`.
#[proc_macro_attribute]
pub fn handlers(attr: TokenStream, item: TokenStream) -> TokenStream {
    finish(handlers::expand(attr.into(), item.into()))
}

/// Declares a module: broker options, `providers = [...]`, `imports = [...]`
/// (other modules whose providers and handlers join this one's) and
/// `config_file = "..."` (read at bootstrap when it exists).
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
