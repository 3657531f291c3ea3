//! A minimal MQTT client over pigeon-codec: just enough to drive a broker hard
//! without the measuring side becoming the bottleneck.

use std::{net::SocketAddr, time::Duration};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use pigeon_codec::{Connect, MqttCodec, Packet, Protocol, QoS, Subscribe, SubscribeFilter};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// A connected client's framed stream.
pub(crate) type Conn = Framed<TcpStream, MqttCodec>;

/// Connects with a clean session and waits for a successful CONNACK.
pub(crate) async fn connect(
    addr: SocketAddr,
    client_id: &str,
    protocol: Protocol,
) -> anyhow::Result<Conn> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let mut conn = Framed::new(stream, MqttCodec::new(16 * 1024 * 1024));
    let mut connect = Connect::new(protocol, client_id);
    connect.keep_alive = 0;
    conn.send(Packet::Connect(Box::new(connect))).await?;
    match tokio::time::timeout(Duration::from_secs(10), conn.next()).await {
        Ok(Some(Ok(Packet::ConnAck(ack)))) if !ack.reason_code.is_error() => Ok(conn),
        Ok(Some(Ok(Packet::ConnAck(ack)))) => bail!("{client_id}: refused: {:?}", ack.reason_code),
        Ok(other) => bail!("{client_id}: expected CONNACK, got {other:?}"),
        Err(_) => bail!("{client_id}: no CONNACK within 10 s"),
    }
}

/// Subscribes to `filter` and waits for the SUBACK.
pub(crate) async fn subscribe(conn: &mut Conn, filter: &str, qos: QoS) -> anyhow::Result<()> {
    let sub = Subscribe::new(1, vec![SubscribeFilter::new(filter, qos)]);
    conn.send(Packet::Subscribe(sub)).await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), conn.next()).await {
            Ok(Some(Ok(Packet::SubAck(ack)))) => {
                if ack.reason_codes.iter().any(|c| c.is_error()) {
                    bail!("subscription to {filter} refused: {:?}", ack.reason_codes);
                }
                return Ok(());
            }
            Ok(Some(Ok(_))) => continue,
            other => bail!("expected SUBACK, got {other:?}"),
        }
    }
}
