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
//! pigeon-bench --port 1884 --persistent       # subscribers keep sessions
//! ```
//!
//! `kill-subscribe`, `kill-publish` and `kill-collect` are the steps of the
//! kill -9 loss test of `bench/durable_kill.sh` (see `kill.rs`).

mod client;
mod flow;
mod kill;
mod scenario;
mod stats;
mod track;
mod ws;

use std::{net::ToSocketAddrs, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::Parser;
use pigeon_codec::{Protocol, QoS};

use client::{Dialer, Session, Transport, Trust};
use scenario::{Kind, Shape, STAMP};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Load generator for any MQTT broker",
    args_conflicts_with_subcommands = true
)]
struct Args {
    /// A step of the kill -9 loss test instead of the scenarios.
    #[command(subcommand)]
    step: Option<Step>,
    #[command(flatten)]
    conn: ConnArgs,
    /// Subscribers connect with persistent sessions (clean_session=false; with
    /// --protocol 5 also a session expiry of an hour) under client ids fixed
    /// for the run, so the broker stores their QoS 1 messages.
    #[arg(long)]
    persistent: bool,
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

/// Where the broker is and how to reach it.
#[derive(clap::Args, Debug)]
struct ConnArgs {
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
    /// MQTT protocol level: 4 (3.1.1) or 5.
    #[arg(long, default_value_t = 4)]
    protocol: u8,
}

impl ConnArgs {
    fn dialer(&self) -> anyhow::Result<(Dialer, Protocol)> {
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .context("host resolves to no address")?;
        let trust = match (&self.ca, self.insecure) {
            (Some(ca), _) => Some(Trust::Ca(ca.clone())),
            (None, true) => Some(Trust::Insecure),
            (None, false) => None,
        };
        let dialer = Dialer::new(
            addr,
            self.transport,
            trust,
            self.server_name.as_deref().unwrap_or(&self.host),
            &self.ws_path,
        )?;
        let protocol = Protocol::try_from(self.protocol)
            .map_err(|p| anyhow::anyhow!("--protocol: unsupported level {p}"))?;
        Ok((dialer, protocol))
    }
}

/// The steps of the kill -9 loss test, each its own process.
#[derive(clap::Subcommand, Debug)]
enum Step {
    /// Subscribe a persistent QoS 1 session to --topic, then go offline.
    #[command(name = "kill-subscribe")]
    Subscribe {
        #[command(flatten)]
        conn: ConnArgs,
        /// The subscriber's client id (the same for kill-collect).
        #[arg(long)]
        client_id: String,
        /// The topic (filter) to subscribe to.
        #[arg(long)]
        topic: String,
    },
    /// Publish numbered QoS 1 messages to --topic until the broker dies (or
    /// --duration passes); write the acknowledged sequences to --acked.
    #[command(name = "kill-publish")]
    Publish {
        #[command(flatten)]
        conn: ConnArgs,
        /// The topic to publish on.
        #[arg(long)]
        topic: String,
        /// The file to write: `sent N`, then one acknowledged sequence a line.
        #[arg(long)]
        acked: PathBuf,
        /// Unacknowledged messages in flight.
        #[arg(long, default_value_t = 100)]
        window: usize,
        /// Payload size in bytes (at least 20).
        #[arg(long, default_value_t = 64)]
        payload: usize,
        /// Give up after this many seconds if the broker is still alive.
        #[arg(long, default_value_t = 60.0)]
        duration: f64,
    },
    /// Reconnect to the persistent session, collect, and print what was lost
    /// of what --acked says was acknowledged.
    #[command(name = "kill-collect")]
    Collect {
        #[command(flatten)]
        conn: ConnArgs,
        /// The subscriber's client id (as for kill-subscribe).
        #[arg(long)]
        client_id: String,
        /// The file kill-publish wrote.
        #[arg(long)]
        acked: PathBuf,
        /// Stop after this many seconds without a message.
        #[arg(long, default_value_t = 2.0)]
        idle: f64,
        /// Stop after this many seconds in total.
        #[arg(long, default_value_t = 60.0)]
        max: f64,
    },
}

/// Runs one step of the kill -9 test; prints its result line.
async fn kill_step(step: Step) -> anyhow::Result<ExitCode> {
    match step {
        Step::Subscribe {
            conn,
            client_id,
            topic,
        } => {
            let (dialer, protocol) = conn.dialer()?;
            kill::subscribe_offline(&dialer, protocol, &client_id, &topic).await?;
        }
        Step::Publish {
            conn,
            topic,
            acked,
            window,
            payload,
            duration,
        } => {
            let (dialer, protocol) = conn.dialer()?;
            let duration = secs(duration, "--duration")?;
            let p =
                kill::publish(&dialer, protocol, &topic, window, payload, duration, &acked).await?;
            println!(
                "sent {} acked {} refused {} secs {:.2} ended_by {}",
                p.sent,
                p.acked.len(),
                p.refused,
                p.elapsed.as_secs_f64(),
                p.ended_by.as_deref().unwrap_or("deadline")
            );
        }
        Step::Collect {
            conn,
            client_id,
            acked,
            idle,
            max,
        } => {
            let (dialer, protocol) = conn.dialer()?;
            let (idle, max) = (secs(idle, "--idle")?, secs(max, "--max")?);
            let c = kill::collect(&dialer, protocol, &client_id, &acked, idle, max).await?;
            println!("{}", c.line());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn secs(s: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("{flag}: not a duration: {s}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    if let Some(step) = args.step {
        return kill_step(step).await;
    }
    let (dialer, protocol) = args.conn.dialer()?;
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
            session: if args.persistent {
                Session::Persistent
            } else {
                Session::Clean
            },
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
