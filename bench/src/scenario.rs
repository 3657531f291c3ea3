//! Fan-in and fan-out runs: subscribers first, then publishers flat out
//! (QoS 1 publishers keep a window of unacknowledged messages).

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use pigeon_codec::{Packet, Protocol, PubAck, Publish, QoS};
use tokio::sync::{Barrier, Semaphore};

use crate::{
    client::{connect, subscribe},
    stats::Outcome,
};

/// How one scenario is shaped.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    pub name: String,
    pub publishers: usize,
    pub subscribers: usize,
    pub messages_per_publisher: u64,
    pub qos: QoS,
    pub payload: usize,
    pub protocol: Protocol,
    /// Unacknowledged QoS 1 messages a publisher may have outstanding.
    pub window: usize,
    /// Fan-in: every publisher has its own topic under one `#` subscription.
    pub fan_in: bool,
    /// Deliveries allowed in flight across the system (sent, not yet received by
    /// a subscriber). Keeps the run closed-loop: throughput is what the broker
    /// sustains, latency is pipeline latency rather than queueing in buffers.
    pub outstanding: usize,
    /// How long subscribers wait for a message before giving up.
    pub idle_timeout: Duration,
}

/// Runs one scenario against the broker at `addr`.
pub(crate) async fn run(addr: SocketAddr, shape: &Shape, run_id: &str) -> anyhow::Result<Outcome> {
    let base = Instant::now();
    let filter = if shape.fan_in {
        format!("bench/{run_id}/in/#")
    } else {
        format!("bench/{run_id}/out")
    };
    let per_sub = shape.messages_per_publisher * shape.publishers as u64;
    let budget = Arc::new(Semaphore::new(shape.outstanding.max(shape.subscribers)));

    let mut subs = Vec::new();
    for i in 0..shape.subscribers {
        let mut conn = connect(addr, &format!("{run_id}-sub-{i}"), shape.protocol).await?;
        subscribe(&mut conn, &filter, shape.qos).await?;
        let idle = shape.idle_timeout;
        let budget = budget.clone();
        subs.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_sub as usize);
            let mut last = base;
            while (latencies.len() as u64) < per_sub {
                let Ok(Some(Ok(packet))) = tokio::time::timeout(idle, conn.next()).await else {
                    break;
                };
                if let Packet::Publish(p) = packet {
                    let now = base.elapsed();
                    let sent = p
                        .payload
                        .get(..8)
                        .and_then(|b| b.try_into().ok())
                        .map(u64::from_be_bytes)
                        .unwrap_or(0);
                    latencies.push((now.as_nanos() as u64).saturating_sub(sent) as u32 / 1000);
                    last = Instant::now();
                    budget.add_permits(1);
                    if p.qos != QoS::AtMostOnce {
                        conn.feed(Packet::PubAck(PubAck::new(p.packet_id))).await?;
                    }
                }
                if conn.read_buffer().is_empty() {
                    SinkExt::<Packet>::flush(&mut conn).await?;
                }
            }
            SinkExt::<Packet>::flush(&mut conn).await?;
            anyhow::Ok((latencies, last))
        }));
    }

    let start_line = Arc::new(Barrier::new(shape.publishers + 1));
    let mut pubs = Vec::new();
    for i in 0..shape.publishers {
        let conn = connect(addr, &format!("{run_id}-pub-{i}"), shape.protocol).await?;
        let topic = if shape.fan_in {
            format!("bench/{run_id}/in/{i}")
        } else {
            filter.clone()
        };
        let (shape, start_line, budget) = (shape.clone(), start_line.clone(), budget.clone());
        pubs.push(tokio::spawn(async move {
            publish_all(conn, &topic, &shape, base, start_line, budget).await
        }));
    }
    start_line.wait().await;
    let started = Instant::now();

    for p in pubs {
        p.await??;
    }
    let mut outcome = Outcome {
        scenario: shape.name.clone(),
        expected: per_sub * shape.subscribers as u64,
        delivered: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
    };
    let mut last = started;
    for s in subs {
        let (lat, l) = s.await??;
        outcome.delivered += lat.len() as u64;
        outcome.latencies_us.extend(lat);
        last = last.max(l);
    }
    outcome.elapsed = last.duration_since(started);
    Ok(outcome)
}

async fn publish_all(
    conn: crate::client::Conn,
    topic: &str,
    shape: &Shape,
    base: Instant,
    start_line: Arc<Barrier>,
    budget: Arc<Semaphore>,
) -> anyhow::Result<()> {
    let (mut sink, mut stream) = conn.split();
    let window = Arc::new(Semaphore::new(shape.window));
    let acks = {
        let window = window.clone();
        tokio::spawn(async move {
            while let Some(Ok(packet)) = stream.next().await {
                if matches!(packet, Packet::PubAck(_)) {
                    window.add_permits(1);
                }
            }
        })
    };
    let topic = pigeon_codec::ByteStr::from(topic);
    let padding = vec![0xA5u8; shape.payload.saturating_sub(8)];
    start_line.wait().await;
    let mut packet_id: u16 = 0;
    let deliveries = shape.subscribers as u32;
    for n in 0..shape.messages_per_publisher {
        if budget.available_permits() < deliveries as usize {
            SinkExt::<Packet>::flush(&mut sink).await?;
        }
        // A lost message never returns its permits: stop rather than hang.
        match tokio::time::timeout(shape.idle_timeout, budget.acquire_many(deliveries)).await {
            Ok(permit) => permit?.forget(),
            Err(_) => break,
        }
        let mut payload = BytesMut::with_capacity(shape.payload.max(8));
        payload.put_u64(base.elapsed().as_nanos() as u64);
        payload.put_slice(&padding);
        let mut publish = Publish::new(topic.clone(), shape.qos, Bytes::from(payload));
        if shape.qos != QoS::AtMostOnce {
            if window.available_permits() == 0 {
                SinkExt::<Packet>::flush(&mut sink).await?;
            }
            window.acquire().await?.forget();
            packet_id = packet_id.checked_add(1).unwrap_or(1);
            publish.packet_id = packet_id;
        }
        sink.feed(Packet::Publish(publish)).await?;
        if n % 32 == 31 {
            SinkExt::<Packet>::flush(&mut sink).await?;
        }
    }
    SinkExt::<Packet>::flush(&mut sink).await?;
    if shape.qos != QoS::AtMostOnce {
        // Wait (bounded) for the last acknowledgements so the connection is not cut mid-flow.
        let _ = tokio::time::timeout(shape.idle_timeout, window.acquire_many(shape.window as u32))
            .await;
    }
    acks.abort();
    Ok(())
}
