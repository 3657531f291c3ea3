//! How records are laid out in the store. Messages, wills and subscriptions
//! are kept as the MQTT 5.0 packets that carry them (PUBLISH, CONNECT,
//! SUBSCRIBE), encoded by `pigeon-codec`, behind a small fixed header: no
//! second serialization format to keep in step with the protocol's fields.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use pigeon_codec::{Connect, Packet, Protocol, QoS, Subscribe, SubscribeFilter, Will};

use crate::{
    model::{Delivery, Message, StoredSubscription},
    persistence::SessionState,
};

/// "No string here" in a length-prefixed field.
const NONE: u16 = u16::MAX;

/// Milliseconds since the Unix epoch (0 for a time before it).
pub(in crate::persistence) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(in crate::persistence) fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn put_opt_str(out: &mut BytesMut, s: Option<&str>) {
    match s {
        // Client ids, share names and user names are MQTT strings: < 64 KiB.
        Some(s) if s.len() < usize::from(NONE) => {
            out.put_u16(s.len() as u16);
            out.put_slice(s.as_bytes());
        }
        _ => out.put_u16(NONE),
    }
}

fn get_opt_str(buf: &mut Bytes) -> Result<Option<String>, String> {
    let len = get_u16(buf)?;
    if len == NONE {
        return Ok(None);
    }
    let len = usize::from(len);
    if buf.remaining() < len {
        return Err("truncated string".into());
    }
    let raw = buf.split_to(len);
    String::from_utf8(raw.to_vec())
        .map(Some)
        .map_err(|_| "string not UTF-8".into())
}

fn get_u16(buf: &mut Bytes) -> Result<u16, String> {
    if buf.remaining() < 2 {
        return Err("truncated record".into());
    }
    Ok(buf.get_u16())
}

fn get_u32(buf: &mut Bytes) -> Result<u32, String> {
    if buf.remaining() < 4 {
        return Err("truncated record".into());
    }
    Ok(buf.get_u32())
}

fn get_u64(buf: &mut Bytes) -> Result<u64, String> {
    if buf.remaining() < 8 {
        return Err("truncated record".into());
    }
    Ok(buf.get_u64())
}

fn encode_packet(packet: &Packet, out: &mut BytesMut) {
    // Only fails for packets the protocol cannot carry (a topic over 64 KiB),
    // which the broker never accepted in the first place.
    if let Err(e) = pigeon_codec::encode(packet, Protocol::V5, out) {
        tracing::error!(%e, "a record could not be encoded");
    }
}

fn decode_packet(bytes: Bytes) -> Result<Packet, String> {
    let mut buf = BytesMut::from(&bytes[..]);
    match pigeon_codec::decode(&mut buf, Protocol::V5, usize::MAX) {
        Ok(Some(packet)) => Ok(packet),
        Ok(None) => Err("truncated packet".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The wall-clock time `message` was received.
fn received_wall(message: &Message) -> SystemTime {
    // Unstamped (no expiry interval), it was received no later than now.
    let age = message
        .received_at
        .map_or(Duration::ZERO, |at| at.elapsed());
    SystemTime::now().checked_sub(age).unwrap_or(UNIX_EPOCH)
}

/// The `Instant` of a wall-clock time in the past (now, if it is not past).
fn instant_of(wall: SystemTime) -> Instant {
    let age = SystemTime::now().duration_since(wall).unwrap_or_default();
    Instant::now().checked_sub(age).unwrap_or_else(Instant::now)
}

fn put_message(message: &Message, out: &mut BytesMut) {
    out.put_u64(unix_ms(received_wall(message)));
    put_opt_str(out, message.origin.as_deref());
    let mut publish = message.publish.clone();
    // A QoS 1/2 PUBLISH must carry an id; the stored one means nothing.
    publish.packet_id = if publish.qos == QoS::AtMostOnce { 0 } else { 1 };
    encode_packet(&Packet::Publish(publish), out);
}

fn get_message(buf: &mut Bytes) -> Result<Arc<Message>, String> {
    let received = from_unix_ms(get_u64(buf)?);
    let origin = get_opt_str(buf)?.map(Arc::from);
    match decode_packet(std::mem::take(buf))? {
        Packet::Publish(publish) => Ok(Message::received(
            publish,
            origin,
            Some(instant_of(received)),
        )),
        other => Err(format!(
            "expected a PUBLISH, found {:?}",
            other.packet_type()
        )),
    }
}

/// A retained message.
pub(in crate::persistence) fn retained(message: &Message) -> Vec<u8> {
    let mut out = BytesMut::new();
    put_message(message, &mut out);
    out.to_vec()
}

pub(in crate::persistence) fn decode_retained(bytes: &[u8]) -> Result<Arc<Message>, String> {
    get_message(&mut Bytes::copy_from_slice(bytes))
}

/// Offsets of the fields `sent`/`released` patch in place.
pub(in crate::persistence) const DELIVERY_FLAGS: usize = 1;
pub(in crate::persistence) const DELIVERY_PACKET_ID: usize = 2;
const RETAIN: u8 = 1;
pub(in crate::persistence) const RELEASED: u8 = 2;

/// One copy for a session: `[qos][flags][packet id: u16][identifiers][share]`
/// then the message. Packet id 0: not sent yet.
pub(in crate::persistence) fn delivery(d: &Delivery, packet_id: u16, released: bool) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_u8(d.qos as u8);
    out.put_u8((u8::from(d.retain) * RETAIN) | (u8::from(released) * RELEASED));
    out.put_u16(packet_id);
    // At most 268 million identifiers fit a packet; a delivery has a handful.
    out.put_u16(d.identifiers.len().min(usize::from(u16::MAX)) as u16);
    for id in d.identifiers.iter().take(usize::from(u16::MAX)) {
        out.put_u32(*id);
    }
    put_opt_str(&mut out, d.share.as_deref());
    put_message(&d.message, &mut out);
    out.to_vec()
}

/// A stored copy: the delivery (with its key), its packet id (0: not sent)
/// and whether PUBREL was sent.
pub(in crate::persistence) struct StoredDelivery {
    pub(in crate::persistence) delivery: Delivery,
    pub(in crate::persistence) packet_id: u16,
    pub(in crate::persistence) released: bool,
}

pub(in crate::persistence) fn decode_delivery(
    key: u64,
    bytes: &[u8],
) -> Result<StoredDelivery, String> {
    let mut buf = Bytes::copy_from_slice(bytes);
    if buf.remaining() < 2 {
        return Err("truncated delivery".into());
    }
    let qos = QoS::try_from(buf.get_u8()).map_err(|q| format!("bad QoS {q}"))?;
    let flags = buf.get_u8();
    let packet_id = get_u16(&mut buf)?;
    let count = get_u16(&mut buf)?;
    let identifiers = (0..count)
        .map(|_| get_u32(&mut buf))
        .collect::<Result<Box<[_]>, _>>()?;
    let share = get_opt_str(&mut buf)?.map(Arc::from);
    let message = get_message(&mut buf)?;
    Ok(StoredDelivery {
        delivery: Delivery {
            message,
            qos,
            retain: flags & RETAIN != 0,
            identifiers,
            share,
            stored: Some(key),
        },
        packet_id,
        released: flags & RELEASED != 0,
    })
}

/// A subscription, as the SUBSCRIBE that would make it.
pub(in crate::persistence) fn subscription(sub: &StoredSubscription) -> Vec<u8> {
    let mut subscribe = Subscribe::new(
        1,
        vec![SubscribeFilter {
            filter: sub.filter.clone(),
            options: sub.options,
        }],
    );
    subscribe.properties.subscription_identifier = sub.identifier;
    let mut out = BytesMut::new();
    encode_packet(&Packet::Subscribe(subscribe), &mut out);
    out.to_vec()
}

pub(in crate::persistence) fn decode_subscription(
    bytes: &[u8],
) -> Result<StoredSubscription, String> {
    match decode_packet(Bytes::copy_from_slice(bytes))? {
        Packet::Subscribe(s) => {
            let identifier = s.properties.subscription_identifier;
            let first = s.filters.into_iter().next().ok_or("empty SUBSCRIBE")?;
            Ok(StoredSubscription {
                filter: first.filter.to_string(),
                options: first.options,
                identifier,
            })
        }
        other => Err(format!(
            "expected a SUBSCRIBE, found {:?}",
            other.packet_type()
        )),
    }
}

/// A will: `[due: unix ms, 0 = not due yet]` then a CONNECT carrying it.
pub(in crate::persistence) fn will(will: &Will) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_u64(0);
    let mut connect = Connect::new(Protocol::V5, "");
    connect.will = Some(will.clone());
    encode_packet(&Packet::Connect(Box::new(connect)), &mut out);
    out.to_vec()
}

pub(in crate::persistence) fn decode_will(
    bytes: &[u8],
) -> Result<(Will, Option<SystemTime>), String> {
    let mut buf = Bytes::copy_from_slice(bytes);
    let due = get_u64(&mut buf)?;
    match decode_packet(buf)? {
        Packet::Connect(c) => {
            let will = c.will.ok_or("CONNECT without a will")?;
            Ok((will, (due != 0).then(|| from_unix_ms(due))))
        }
        other => Err(format!(
            "expected a CONNECT, found {:?}",
            other.packet_type()
        )),
    }
}

/// A session's expiry state: `[interval: u32][offline since: unix ms, 0 =
/// connected][protocol level][user name]`.
pub(in crate::persistence) fn session(state: &SessionState) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_u32(state.expiry_interval);
    out.put_u64(state.offline_since.map_or(0, unix_ms));
    out.put_u8(state.protocol as u8);
    put_opt_str(&mut out, state.username.as_deref());
    out.to_vec()
}

pub(in crate::persistence) fn decode_session(bytes: &[u8]) -> Result<SessionState, String> {
    let mut buf = Bytes::copy_from_slice(bytes);
    let expiry_interval = get_u32(&mut buf)?;
    let since = get_u64(&mut buf)?;
    if buf.remaining() < 1 {
        return Err("truncated session".into());
    }
    let protocol = Protocol::try_from(buf.get_u8()).map_err(|p| format!("bad protocol {p}"))?;
    let username = get_opt_str(&mut buf)?;
    Ok(SessionState {
        expiry_interval,
        offline_since: (since != 0).then(|| from_unix_ms(since)),
        username,
        protocol,
    })
}
