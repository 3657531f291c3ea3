//! MQTT 3.1, 3.1.1 and 5.0 packets as Rust types, with a strict, incremental,
//! zero-copy decoder and a single-write encoder.
//!
//! The codec does no I/O: [`MqttCodec`] plugs into `tokio_util::codec::Framed`,
//! and the free functions [`decode`] / [`encode`] work on plain buffers.
//!
//! ```
//! use bytes::BytesMut;
//! use pigeon_codec::{decode, encode, Packet, Protocol, Publish, QoS};
//!
//! let publish = Publish::new("sensors/1/temp", QoS::AtMostOnce, "21.5");
//! let mut buf = BytesMut::new();
//! encode(&Packet::Publish(publish.clone()), Protocol::V3_1_1, &mut buf).unwrap();
//! let decoded = decode(&mut buf, Protocol::V3_1_1, 1024).unwrap();
//! assert_eq!(decoded, Some(Packet::Publish(publish)));
//! ```

#![warn(missing_docs)]

mod bytestr;
mod codec;
mod error;
mod packet;
pub(crate) mod properties;
mod reason;
pub mod topic;
mod wire;

pub use bytestr::ByteStr;
pub use codec::{decode, encode, encoded_len, MqttCodec, PlainPublish, DEFAULT_MAX_PACKET_SIZE};
pub use error::{DecodeError, EncodeError};
pub use packet::*;
pub use properties::*;
pub use reason::ReasonCode;
