//! Pigeon: an MQTT 3.1, 3.1.1 and 5.0 broker you embed and program with
//! NestJS-style handler attributes.

// Lets the macros' `::pigeon::...` paths work inside this crate's own tests.
extern crate self as pigeon;

pub mod acl;
pub mod app;
pub mod auth;
pub mod broker;
pub mod config;
pub(crate) mod connection;
pub mod emitter;
pub(crate) mod engine;
pub mod hooks;
mod http;
pub mod model;
pub mod persistence;
pub mod prelude;
pub mod service;
pub mod tls;
pub mod transport;

#[cfg(feature = "testing")]
pub use app::testing;
pub use app::{App, BootstrapError, Pigeon};
pub use broker::{Broker, BrokerHandle};
pub use config::Config;
pub use pigeon_codec as codec;
pub use pigeon_macros::{handlers, injectable, module};
pub use service::PigeonService;

/// Used by the code the macros generate; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::app::Import;
    pub use crate::app::InitOutput;
    pub use crate::app::{factory, DestroyOutput, InjectableEntry};
    pub use crate::app::{
        Container, HooksOptions, Inject, Injectable, Module, ModuleEntry, ProviderDef,
    };
    pub use crate::hooks::context::{
        kind, AuthenticateCx, AuthorizeForwardCx, AuthorizePublishCx, AuthorizeSubscribeCx,
        Context, EventCx, PreConnectCx, PublishedCx,
    };
    pub use crate::hooks::request::{RequestCx, RequestLimits};
    pub use crate::hooks::returns::HandlerReturn;
    pub use crate::hooks::{
        BoxFuture, ExtractError, FromEvent, FromEventMut, HandlerSet, HooksBuilder, Meta,
    };
    pub use crate::{config::Options, BootstrapError, Config};
    pub use inventory;
    pub use std::{
        any::{Any, TypeId},
        boxed::Box,
        result::Result::{Err, Ok},
        sync::Arc,
        time::Duration,
    };

    /// A module option written as a string literal (`id = "edge-1"`, `cert = "cert.pem"`).
    #[diagnostic::on_unimplemented(
        message = "this module option is not a string: `{Self}` expected",
        label = "write a `{Self}` here, not a string"
    )]
    pub trait StrOption {
        /// The option's value from the literal.
        fn from_literal(literal: &'static str) -> Self;
    }

    impl StrOption for String {
        fn from_literal(literal: &'static str) -> Self {
            literal.to_owned()
        }
    }

    impl StrOption for std::path::PathBuf {
        fn from_literal(literal: &'static str) -> Self {
            literal.into()
        }
    }

    /// The `TypeId` of `T`, as a function pointer for `inventory` statics.
    pub fn type_id_of<T: 'static>() -> TypeId {
        TypeId::of::<T>()
    }
}

/// The README's example compiles (as a doctest), so its first screen stays true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The migration guide's Rust example compiles too (its TypeScript is not tested).
#[doc = include_str!("../../docs/coming-from-pigeon-mqtt-nest.md")]
#[cfg(doctest)]
pub struct GuideDoctests;
