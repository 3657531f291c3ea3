//! The wire format of a message between nodes (stream entry field `m`, or a
//! pub/sub payload):
//!
//! ```text
//! u8   format version (FORMAT)
//! u8   flags: bit 0 = an origin client id follows
//! u64  the sending emitter instance (random per start), u64 its message
//!      sequence number: a receiver drops an entry it already took (an
//!      `XADD` retried after a lost connection)
//! [u16 length + origin client id]           (for no_local on the receiving node)
//! u16  count of shared groups this node serves, then each as u16 length + key
//! ...  the PUBLISH, encoded by pigeon_codec as MQTT 5 (every property kept;
//!      the message expiry interval is what is left of it)
//! ```

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use pigeon_codec::{Packet, Protocol, QoS};

use crate::model::Message;

/// The version of this format. Stored in Redis as `pigeon:format` by the first
/// node; a node of another version refuses to join.
pub(super) const FORMAT: u8 = 1;

const HAS_ORIGIN: u8 = 1;

/// A message decoded from another node.
pub(super) struct Incoming {
    pub message: Arc<Message>,
    /// (sending instance, sequence number): unique per message and node.
    pub id: (u64, u64),
    /// The shared groups this node is to serve for it.
    pub shares: Vec<Arc<str>>,
}

/// The PUBLISH part, encoded once per message (shared by every node's frame).
pub(super) fn encode_publish(message: &Message) -> Option<Bytes> {
    let mut publish = message.publish.clone();
    // A QoS 1/2 PUBLISH must carry an id; this one means nothing to the receiver.
    publish.packet_id = if publish.qos == QoS::AtMostOnce { 0 } else { 1 };
    // `None` exactly when the message has no expiry (then nothing to change).
    if let Some(secs) = message.remaining_expiry() {
        publish.properties.make_mut().message_expiry_interval = Some(secs);
    }
    let mut out = BytesMut::new();
    match pigeon_codec::encode(&Packet::Publish(publish), Protocol::V5, &mut out) {
        Ok(()) => Some(out.freeze()),
        Err(e) => {
            // Only a packet MQTT cannot carry, which no client could have sent.
            tracing::error!(%e, "a message could not be encoded for the other nodes");
            None
        }
    }
}

/// One node's frame: the header (origin, the groups it serves) and the PUBLISH.
pub(super) fn frame(
    message: &Message,
    id: (u64, u64),
    shares: &[Arc<str>],
    publish: &Bytes,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(publish.len() + 64);
    out.put_u8(FORMAT);
    out.put_u8(if message.origin.is_some() {
        HAS_ORIGIN
    } else {
        0
    });
    out.put_u64(id.0);
    out.put_u64(id.1);
    if let Some(origin) = message.origin.as_deref() {
        put_str(&mut out, origin);
    }
    out.put_u16(u16::try_from(shares.len()).unwrap_or(u16::MAX));
    for key in shares.iter().take(usize::from(u16::MAX)) {
        put_str(&mut out, key);
    }
    out.extend_from_slice(publish);
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Client ids and filters are MQTT strings: at most 65535 bytes.
    let bytes = s.as_bytes();
    let len = bytes.len().min(usize::from(u16::MAX));
    out.put_u16(len as u16);
    out.extend_from_slice(&bytes[..len]);
}

fn get_str(buf: &mut Bytes) -> Result<String, String> {
    if buf.remaining() < 2 {
        return Err("truncated frame".into());
    }
    let len = usize::from(buf.get_u16());
    if buf.remaining() < len {
        return Err("truncated frame".into());
    }
    String::from_utf8(buf.split_to(len).to_vec()).map_err(|_| "a string is not UTF-8".into())
}

/// Decodes a frame from another node.
pub(super) fn decode(bytes: &[u8]) -> Result<Incoming, String> {
    let mut buf = Bytes::copy_from_slice(bytes);
    if buf.remaining() < 2 {
        return Err("truncated frame".into());
    }
    let version = buf.get_u8();
    if version != FORMAT {
        return Err(format!(
            "message format {version}, this node speaks {FORMAT}"
        ));
    }
    let flags = buf.get_u8();
    if buf.remaining() < 16 {
        return Err("truncated frame".into());
    }
    let id = (buf.get_u64(), buf.get_u64());
    let origin = if flags & HAS_ORIGIN != 0 {
        Some(Arc::from(get_str(&mut buf)?))
    } else {
        None
    };
    if buf.remaining() < 2 {
        return Err("truncated frame".into());
    }
    let count = buf.get_u16();
    let mut shares = Vec::with_capacity(usize::from(count).min(16));
    for _ in 0..count {
        shares.push(Arc::from(get_str(&mut buf)?));
    }
    let mut packet = BytesMut::from(&buf[..]);
    match pigeon_codec::decode(&mut packet, Protocol::V5, usize::MAX) {
        Ok(Some(Packet::Publish(publish))) => Ok(Incoming {
            message: Message::new(publish, origin),
            id,
            shares,
        }),
        Ok(Some(other)) => Err(format!(
            "expected a PUBLISH, found {:?}",
            other.packet_type()
        )),
        Ok(None) => Err("truncated PUBLISH".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pigeon_codec::Publish;

    #[test]
    fn a_frame_round_trips_with_origin_shares_and_properties() {
        let mut publish = Publish::new("a/b", QoS::AtLeastOnce, Bytes::from_static(b"hi"));
        publish.properties.make_mut().content_type = Some("text/plain".into());
        publish.properties.make_mut().message_expiry_interval = Some(60);
        let message = Message::new(publish, Some(Arc::from("c1")));
        let bytes = encode_publish(&message).expect("encodes");
        let shares: Vec<Arc<str>> = vec![Arc::from("$share/g/a/+")];
        let got = decode(&frame(&message, (7, 9), &shares, &bytes)).expect("decodes");
        assert_eq!(got.id, (7, 9));
        assert_eq!(got.message.origin.as_deref(), Some("c1"));
        assert_eq!(&*got.message.publish.topic, "a/b");
        assert_eq!(&got.message.publish.payload[..], b"hi");
        assert_eq!(got.message.publish.qos, QoS::AtLeastOnce);
        assert_eq!(got.message.publish.packet_id, 0, "cleared for the receiver");
        assert_eq!(
            got.message.publish.properties.content_type.as_deref(),
            Some("text/plain")
        );
        assert_eq!(
            got.message.publish.properties.message_expiry_interval,
            Some(60)
        );
        assert_eq!(got.shares, shares);
    }

    #[test]
    fn another_version_or_garbage_is_refused() {
        let message = Message::new(Publish::new("t", QoS::AtMostOnce, Bytes::new()), None);
        let bytes = encode_publish(&message).expect("encodes");
        let mut f = frame(&message, (1, 1), &[], &bytes);
        assert!(decode(&f).is_ok());
        f[0] = FORMAT + 1;
        assert!(decode(&f).err().is_some_and(|e| e.contains("format")));
        assert!(decode(&[FORMAT]).is_err());
        assert!(decode(&[FORMAT, 1, 0, 9]).is_err());
    }
}
