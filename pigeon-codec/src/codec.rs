//! The framing layer: fixed header, maximum size, version tracking.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::{DecodeError, EncodeError, Packet, Protocol};

/// The default largest packet accepted: 1 MiB.
pub const DEFAULT_MAX_PACKET_SIZE: usize = 1024 * 1024;

/// Decodes one packet from the front of `buf` for a connection speaking `protocol`.
///
/// Returns `Ok(None)` when more bytes are needed. The size limit (whole packet,
/// fixed header included) is checked from the fixed header, before the body is
/// buffered. A CONNECT is decoded in whatever version it announces.
pub fn decode(
    buf: &mut BytesMut,
    protocol: Protocol,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    let _ = (buf, protocol, max_packet_size);
    todo!("pigeon-codec: decode")
}

/// Appends the encoding of `packet` for `protocol` to `dst`, reserving the
/// exact size first so it is written once.
pub fn encode(packet: &Packet, protocol: Protocol, dst: &mut BytesMut) -> Result<(), EncodeError> {
    let _ = (packet, protocol, dst);
    todo!("pigeon-codec: encode")
}

/// The exact number of bytes `encode` writes for `packet`, fixed header included.
pub fn encoded_len(packet: &Packet, protocol: Protocol) -> Result<usize, EncodeError> {
    let _ = (packet, protocol);
    todo!("pigeon-codec: encoded_len")
}

/// A `tokio_util::codec` Decoder/Encoder pair for one connection, either side.
///
/// The version starts as `None`; decoding or encoding a CONNECT fixes it for the
/// packets after it (until then, only CONNECT can be decoded).
///
/// ```
/// use pigeon_codec::{MqttCodec, Protocol};
/// let codec = MqttCodec::new(64 * 1024);
/// assert_eq!(codec.protocol(), None);
/// let codec = MqttCodec::with_protocol(Protocol::V5, 64 * 1024);
/// assert_eq!(codec.protocol(), Some(Protocol::V5));
/// ```
#[derive(Debug, Clone)]
pub struct MqttCodec {
    protocol: Option<Protocol>,
    max_incoming: usize,
    max_outgoing: usize,
}

impl MqttCodec {
    /// A codec that has not seen CONNECT yet, accepting packets up to `max_incoming` bytes.
    pub fn new(max_incoming: usize) -> Self {
        Self {
            protocol: None,
            max_incoming,
            max_outgoing: usize::MAX,
        }
    }

    /// A codec already fixed to `protocol`.
    pub fn with_protocol(protocol: Protocol, max_incoming: usize) -> Self {
        Self {
            protocol: Some(protocol),
            max_incoming,
            max_outgoing: usize::MAX,
        }
    }

    /// The connection's version, once CONNECT has passed.
    pub fn protocol(&self) -> Option<Protocol> {
        self.protocol
    }

    /// Fixes the version (e.g. after the broker accepted a CONNECT).
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = Some(protocol);
    }

    /// The largest packet the peer accepts (MQTT 5.0 Maximum Packet Size); encoding
    /// a larger one fails with `EncodeError::PacketTooLarge`.
    pub fn set_max_outgoing(&mut self, max: usize) {
        self.max_outgoing = max;
    }

    /// The largest packet this side accepts.
    pub fn set_max_incoming(&mut self, max: usize) {
        self.max_incoming = max;
    }
}

impl Decoder for MqttCodec {
    type Item = Packet;
    type Error = DecodeError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let _ = src;
        todo!("pigeon-codec: MqttCodec::decode")
    }
}

impl Encoder<&Packet> for MqttCodec {
    type Error = EncodeError;

    fn encode(&mut self, item: &Packet, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let _ = (item, dst, self.max_outgoing);
        todo!("pigeon-codec: MqttCodec::encode")
    }
}

impl Encoder<Packet> for MqttCodec {
    type Error = EncodeError;

    fn encode(&mut self, item: Packet, dst: &mut BytesMut) -> Result<(), EncodeError> {
        Encoder::<&Packet>::encode(self, &item, dst)
    }
}

// DecodeError must satisfy tokio-util's `From<io::Error>` bound for FramedRead.
impl From<std::io::Error> for DecodeError {
    fn from(_: std::io::Error) -> Self {
        DecodeError::Truncated
    }
}
impl From<std::io::Error> for EncodeError {
    fn from(_: std::io::Error) -> Self {
        EncodeError::OutOfRange("io")
    }
}
