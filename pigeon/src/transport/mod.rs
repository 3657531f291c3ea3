//! Byte transports the broker listens on. TCP today; TLS and WebSocket plug in
//! beside it, each handing accepted streams to `crate::connection`.

pub(crate) mod tcp;
