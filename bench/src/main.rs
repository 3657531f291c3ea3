//! `pigeon-bench`: drives any MQTT broker at host:port with fan-in (many
//! publishers, one `#` subscriber), fan-out (one publisher, many subscribers) and
//! pairs (N publisher/subscriber pairs) at QoS 0 and 1, each for a fixed time,
//! open loop under end-to-end flow control (at most `--max-outstanding`
//! deliveries outstanding system-wide). Every delivery is accounted for exactly:
//! it prints delivered messages/s, delivered, missing, duplicates, reordered and
//! latency percentiles, and exits non-zero if a QoS 1 message went missing.
//!
//! ```text
//! pigeon-bench --port 1884 --label pigeon --header
//! pigeon-bench --port 8883 --transport tls --ca ca.pem
//! pigeon-bench --port 8080 --transport ws --ws-path /mqtt
//! ```

mod client;
mod flow;
mod scenario;
mod stats;
mod track;
mod ws;

use std::{net::ToSocketAddrs, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::Parser;
use pigeon_codec::{Protocol, QoS};

use client::{Dialer, Transport, Trust};
use scenario::{Kind, Shape, STAMP};

#[derive(Parser, Debug)]
#[command(version, about = "Load generator for any MQTT broker")]
struct Args {
    /// Broker host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Broker port.
    #[arg(long, default_value_t = 1884)]
    port: u16,
    /// Transport of every client connection.
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    transport: Transport,
    /// PEM file of the CA(s) the broker's certificate must chain to (tls, wss).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Accept any broker certificate (tls, wss): measuring only.
    #[arg(long, conflicts_with = "ca")]
    insecure: bool,
    /// Name the broker's certificate must be valid for (default: --host).
    #[arg(long)]
    server_name: Option<String>,
    /// Path of the WebSocket upgrade request (ws, wss); subprotocol `mqtt`.
    #[arg(long, default_value = "/mqtt")]
    ws_path: String,
    /// Name printed in the first column.
    #[arg(long, default_value = "broker")]
    label: String,
    /// Publishers in the fan-in scenarios.
    #[arg(long, default_value_t = 16)]
    fan_in_publishers: usize,
    /// Subscribers in the fan-out scenarios.
    #[arg(long, default_value_t = 50)]
    fan_out_subscribers: usize,
    /// Publisher/subscriber pairs in the pairs scenarios.
    #[arg(long, default_value_t = 100)]
    pairs: usize,
    /// Seconds of publishing per scenario (then the run drains).
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Payload size in bytes (at least 20: stream id, sequence, send time).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// MQTT protocol level: 4 (3.1.1) or 5.
    #[arg(long, default_value_t = 4)]
    protocol: u8,
    /// Unacknowledged QoS 1 messages per publisher.
    #[arg(long, default_value_t = 100)]
    window: usize,
    /// Publishers pause while more expected deliveries than this are outstanding
    /// system-wide. 0: pure open loop, TCP backpressure only.
    #[arg(long, default_value_t = 50_000)]
    max_outstanding: u64,
    /// Closed loop instead: at most this many deliveries outstanding per
    /// subscriber (the old behaviour was 500). Overrides --max-outstanding.
    #[arg(long)]
    per_subscriber: Option<u64>,
    /// Nothing delivered for this many ms while publishers wait: write the
    /// outstanding deliveries off, so a broker that drops cannot deadlock the run.
    #[arg(long, default_value_t = 500)]
    stall_ms: u64,
    /// Drain: stop waiting for deliveries after this many seconds without one.
    #[arg(long, default_value_t = 1.0)]
    drain_idle: f64,
    /// Drain: stop waiting after this many seconds in total.
    #[arg(long, default_value_t = 15.0)]
    drain_max: f64,
    /// Only run scenarios whose name contains this (e.g. `pairs`, `q1`).
    #[arg(long)]
    only: Option<String>,
    /// Print the header line.
    #[arg(long)]
    header: bool,
}

fn secs(s: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("{flag}: not a duration: {s}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let addr = (args.host.as_str(), args.port)
        .to_socket_addrs()?
        .next()
        .context("host resolves to no address")?;
    let trust = match (&args.ca, args.insecure) {
        (Some(ca), _) => Some(Trust::Ca(ca.clone())),
        (None, true) => Some(Trust::Insecure),
        (None, false) => None,
    };
    let dialer = Dialer::new(
        addr,
        args.transport,
        trust,
        args.server_name.as_deref().unwrap_or(&args.host),
        &args.ws_path,
    )?;
    let protocol = Protocol::try_from(args.protocol)
        .map_err(|p| anyhow::anyhow!("--protocol: unsupported level {p}"))?;
    let (duration, drain_idle, drain_max) = (
        secs(args.duration, "--duration")?,
        secs(args.drain_idle, "--drain-idle")?,
        secs(args.drain_max, "--drain-max")?,
    );
    if args.header {
        println!("{}", stats::header());
    }
    let mut failed = Vec::new();
    for (name, kind, qos) in [
        ("fan-in q0", Kind::FanIn, QoS::AtMostOnce),
        ("fan-in q1", Kind::FanIn, QoS::AtLeastOnce),
        ("fan-out q0", Kind::FanOut, QoS::AtMostOnce),
        ("fan-out q1", Kind::FanOut, QoS::AtLeastOnce),
        ("pairs q0", Kind::Pairs, QoS::AtMostOnce),
        ("pairs q1", Kind::Pairs, QoS::AtLeastOnce),
    ] {
        if args.only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let (publishers, subscribers) = match kind {
            Kind::FanIn => (args.fan_in_publishers, 1),
            Kind::FanOut => (1, args.fan_out_subscribers),
            Kind::Pairs => (args.pairs, args.pairs),
        };
        let shape = Shape {
            name: name.into(),
            kind,
            publishers: publishers.max(1),
            subscribers: subscribers.max(1),
            qos,
            payload: args.payload.max(STAMP),
            protocol,
            window: args.window.max(1),
            duration,
            max_outstanding: args.per_subscriber.map_or(args.max_outstanding, |n| {
                n.max(1) * subscribers.max(1) as u64
            }),
            stall: Duration::from_millis(args.stall_ms),
            drain_idle,
            drain_max,
        };
        let run_id = format!("{}{}", std::process::id(), name.replace(' ', ""));
        match scenario::run(&dialer, &shape, &run_id).await {
            Ok(mut outcome) => {
                println!("{}", outcome.row(&args.label));
                for e in outcome.errors.iter().take(5) {
                    eprintln!("{} {name}: {e}", args.label);
                }
                if outcome.errors.len() > 5 {
                    eprintln!(
                        "{} {name}: … and {} more errors",
                        args.label,
                        outcome.errors.len() - 5
                    );
                }
                if outcome.failed() {
                    failed.push(name);
                }
            }
            Err(e) => {
                println!("{:<10} {name:<12} {:>10}", args.label, "ERROR");
                eprintln!("{} {name}: {e:#}", args.label);
                failed.push(name);
            }
        }
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{}: failed: {}", args.label, failed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}
