//! Pigeon: an MQTT 3.1, 3.1.1 and 5.0 broker you embed and program with
//! NestJS-style handler attributes.

pub mod acl;
pub mod broker;
pub mod config;
pub(crate) mod connection;
pub mod emitter;
pub mod hooks;
pub mod persistence;
pub(crate) mod sys;
pub(crate) mod transport;

pub use broker::{Broker, BrokerHandle};
pub use config::Config;
pub use pigeon_codec as codec;
