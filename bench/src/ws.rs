//! MQTT bytes over WebSocket messages, client side: the broker's own adapter
//! (reads take the payloads of binary messages in order, each write goes out as
//! one binary message; MQTT allows a packet to span messages and a message to
//! hold several packets).

pub(crate) use pigeon::transport::WsIo;
