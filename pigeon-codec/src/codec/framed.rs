//! [`MqttCodec`]: the `tokio_util::codec` pair for one connection, which tracks
//! the protocol version and the size limits of both directions.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use super::{decode, encode_limited};
use crate::{DecodeError, EncodeError, Packet, PacketType, Protocol};

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

    /// Appends a PUBLISH without MQTT 5.0 properties, made of borrowed parts,
    /// within the peer's Maximum Packet Size (see [`super::PlainPublish`]).
    pub fn encode_plain_publish(
        &self,
        publish: &super::PlainPublish<'_>,
        dst: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let protocol = self.protocol.unwrap_or(Protocol::V3_1_1);
        publish.write(protocol, self.max_outgoing, dst)
    }

    /// Appends an acknowledgement that holds only its packet id: `kind` is
    /// `PubAck`, `PubRec`, `PubRel` or `PubComp`. It writes what encoding that
    /// packet with reason Success and no properties writes, in every version,
    /// without building one: a broker sends one for each QoS 1 or 2 message.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use pigeon_codec::{MqttCodec, PacketType};
    ///
    /// let mut out = BytesMut::new();
    /// MqttCodec::new(1024).encode_bare_ack(PacketType::PubAck, 7, &mut out).unwrap();
    /// assert_eq!(&out[..], [0x40, 0x02, 0x00, 0x07]);
    /// ```
    pub fn encode_bare_ack(
        &self,
        kind: PacketType,
        packet_id: u16,
        dst: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let bytes =
            super::bare_ack_bytes(kind, packet_id).ok_or(EncodeError::UnsupportedPacket(kind))?;
        super::put_bare_ack(bytes, self.max_outgoing, dst)
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
        let protocol = match self.protocol {
            Some(p) => p,
            None => match src.first() {
                None => return Ok(None),
                Some(&byte) if byte >> 4 == PacketType::Connect as u8 => Protocol::V3_1_1,
                Some(_) => return Err(DecodeError::ExpectedConnect),
            },
        };
        let packet = decode(src, protocol, self.max_incoming)?;
        if let Some(Packet::Connect(c)) = &packet {
            self.protocol = Some(c.protocol);
        }
        Ok(packet)
    }

    /// At the end of the stream, a partial packet is the peer's fault (truncated),
    /// not an I/O error as tokio-util's default would make it.
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        match self.decode(src)? {
            None if !src.is_empty() => Err(DecodeError::Truncated),
            packet => Ok(packet),
        }
    }
}

impl Encoder<&Packet> for MqttCodec {
    type Error = EncodeError;

    fn encode(&mut self, item: &Packet, dst: &mut BytesMut) -> Result<(), EncodeError> {
        // Before any CONNECT, answer in 3.1.1: it is what every client can read
        // (e.g. a CONNACK refusing an unknown protocol level).
        let protocol = self.protocol.unwrap_or(Protocol::V3_1_1);
        encode_limited(item, protocol, self.max_outgoing, dst)?;
        if let Packet::Connect(c) = item {
            self.protocol = Some(c.protocol);
        }
        Ok(())
    }
}

impl Encoder<Packet> for MqttCodec {
    type Error = EncodeError;

    fn encode(&mut self, item: Packet, dst: &mut BytesMut) -> Result<(), EncodeError> {
        Encoder::<&Packet>::encode(self, &item, dst)
    }
}
