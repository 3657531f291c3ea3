//! Fan-out throughput with and without an `on_publish` handler: the cost of
//! observing every message (issue: within 20% of none).
//!
//! `cargo run --release --example fanout_bench -- --subscribers 50 --messages 20000`
//!
//! One publisher sends QoS 0 messages to `bench/t`; every subscriber gets each
//! one; the number printed is deliveries per second until all arrived.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use bytes::Bytes;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use pigeon::{
    app::Module,
    codec::{MqttCodec, Packet as Wire, Subscribe, SubscribeFilter},
    prelude::*,
};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

#[derive(Parser)]
struct Cli {
    #[arg(long, default_value_t = 50)]
    subscribers: usize,
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Rounds per mode (the best is reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// Counts the bytes of every message, as a light real handler would.
#[injectable]
pub struct Observer {
    #[inject(default)]
    seen: AtomicU64,
}

#[handlers]
impl Observer {
    #[on_publish]
    async fn count(&self, topic: Topic, payload: Payload) {
        if topic.starts_with("bench/") {
            self.seen.fetch_add(payload.len() as u64, Ordering::Relaxed);
        }
    }
}

#[module(id = "bench-bare", providers = [])]
struct Bare;

#[module(id = "bench-observed", providers = [Observer])]
struct Observed;

async fn connect(
    addr: std::net::SocketAddr,
    id: &str,
) -> anyhow::Result<Framed<TcpStream, MqttCodec>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut framed = Framed::new(stream, MqttCodec::with_protocol(Protocol::V3_1_1, 1 << 20));
    let mut connect = Connect::new(Protocol::V3_1_1, id);
    connect.keep_alive = 0;
    framed.send(Wire::Connect(Box::new(connect))).await?;
    match framed.next().await {
        Some(Ok(Wire::ConnAck(_))) => Ok(framed),
        other => anyhow::bail!("no CONNACK: {other:?}"),
    }
}

async fn round<M: Module>(cli: &Cli) -> anyhow::Result<(f64, u64)> {
    let app = pigeon::testing::start::<M>().await?;
    let addr = app.local_addr();
    let mut readers = Vec::new();
    for i in 0..cli.subscribers {
        let mut s = connect(addr, &format!("sub-{i}")).await?;
        s.send(Wire::Subscribe(Subscribe::new(
            1,
            vec![SubscribeFilter::new("bench/t", QoS::AtMostOnce)],
        )))
        .await?;
        loop {
            if let Some(Ok(Wire::SubAck(_))) = s.next().await {
                break;
            }
        }
        let want = cli.messages;
        readers.push(tokio::spawn(async move {
            let mut got = 0;
            let mut last = Instant::now();
            while got < want {
                // Lost QoS 0 messages end the wait; the rate counts up to the last arrival.
                match tokio::time::timeout(Duration::from_secs(2), s.next()).await {
                    Ok(Some(Ok(Wire::Publish(_)))) => {
                        got += 1;
                        last = Instant::now();
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => break,
                }
            }
            (got, last)
        }));
    }
    let mut publisher = connect(addr, "publisher").await?;
    let payload = Bytes::from(vec![b'x'; cli.payload]);
    let start = Instant::now();
    for _ in 0..cli.messages {
        publisher
            .feed(Wire::Publish(Publish::new(
                "bench/t",
                QoS::AtMostOnce,
                payload.clone(),
            )))
            .await?;
    }
    SinkExt::<Wire>::flush(&mut publisher).await?;
    let mut delivered = 0u64;
    let mut end = start;
    for r in readers {
        let (got, last) = r.await?;
        delivered += got as u64;
        end = end.max(last);
    }
    let elapsed = (end - start).as_secs_f64();
    let dropped = app.hooks().dropped_events();
    if dropped > 0 {
        eprintln!("  (event queue overflowed: {dropped} events dropped)");
    }
    app.close().await;
    Ok((delivered as f64 / elapsed, delivered))
}

async fn best<M: Module>(cli: &Cli) -> anyhow::Result<f64> {
    let mut best = 0f64;
    for _ in 0..cli.rounds {
        let (rate, delivered) = round::<M>(cli).await?;
        let expected = (cli.messages * cli.subscribers) as u64;
        if delivered < expected {
            eprintln!(
                "  (round lost {} of {expected} QoS 0 deliveries)",
                expected - delivered
            );
        }
        best = best.max(rate);
    }
    Ok(best)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    println!(
        "fan-out: {} subscribers x {} messages of {} B, QoS 0, best of {}",
        cli.subscribers, cli.messages, cli.payload, cli.rounds
    );
    let bare = best::<Bare>(&cli).await?;
    println!("no handler         : {bare:>12.0} deliveries/s");
    let observed = best::<Observed>(&cli).await?;
    println!("with on_publish    : {observed:>12.0} deliveries/s");
    println!("ratio              : {:>12.1} %", observed / bare * 100.0);
    Ok(())
}
