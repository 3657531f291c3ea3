//! `pigeon-bench`: drives any MQTT broker at host:port with fan-in (many
//! publishers, one `#` subscriber) and fan-out (one publisher, many subscribers)
//! at QoS 0 and 1, and prints delivered messages/s and latency percentiles.
//!
//! ```text
//! pigeon-bench --port 1884 --label pigeon
//! ```

mod client;
mod scenario;
mod stats;

use std::{net::ToSocketAddrs, time::Duration};

use anyhow::Context;
use clap::Parser;
use pigeon_codec::{Protocol, QoS};

use scenario::Shape;

#[derive(Parser, Debug)]
#[command(version, about = "Load generator for any MQTT broker")]
struct Args {
    /// Broker host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Broker port.
    #[arg(long, default_value_t = 1884)]
    port: u16,
    /// Name printed in the first column.
    #[arg(long, default_value = "broker")]
    label: String,
    /// Publishers in the fan-in scenarios.
    #[arg(long, default_value_t = 20)]
    fan_in_publishers: usize,
    /// Subscribers in the fan-out scenarios.
    #[arg(long, default_value_t = 50)]
    fan_out_subscribers: usize,
    /// Messages each fan-in publisher sends.
    #[arg(long, default_value_t = 10_000)]
    fan_in_messages: u64,
    /// Messages the fan-out publisher sends.
    #[arg(long, default_value_t = 4_000)]
    fan_out_messages: u64,
    /// Payload size in bytes (at least 8: the send timestamp).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// MQTT protocol level: 4 (3.1.1) or 5.
    #[arg(long, default_value_t = 4)]
    protocol: u8,
    /// Unacknowledged QoS 1 messages per publisher.
    #[arg(long, default_value_t = 100)]
    window: usize,
    /// Messages in flight per subscriber (sent, not yet received): the closed-loop budget.
    #[arg(long, default_value_t = 500)]
    outstanding: usize,
    /// Only run scenarios whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// Print the header line.
    #[arg(long)]
    header: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let addr = (args.host.as_str(), args.port)
        .to_socket_addrs()?
        .next()
        .context("host resolves to no address")?;
    let protocol = Protocol::try_from(args.protocol)
        .map_err(|p| anyhow::anyhow!("--protocol: unsupported level {p}"))?;
    if args.header {
        println!("{}", stats::header());
    }
    for (name, fan_in, qos) in [
        ("fan-in qos0", true, QoS::AtMostOnce),
        ("fan-in qos1", true, QoS::AtLeastOnce),
        ("fan-out qos0", false, QoS::AtMostOnce),
        ("fan-out qos1", false, QoS::AtLeastOnce),
    ] {
        if args.only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let shape = Shape {
            name: name.into(),
            publishers: if fan_in { args.fan_in_publishers } else { 1 },
            subscribers: if fan_in { 1 } else { args.fan_out_subscribers },
            messages_per_publisher: if fan_in {
                args.fan_in_messages
            } else {
                args.fan_out_messages
            },
            qos,
            payload: args.payload.max(8),
            protocol,
            window: args.window.max(1),
            fan_in,
            outstanding: args.outstanding * if fan_in { 1 } else { args.fan_out_subscribers },
            idle_timeout: Duration::from_secs(5),
        };
        let run_id = format!("{}{}", std::process::id(), name.replace(' ', ""));
        let mut outcome = scenario::run(addr, &shape, &run_id)
            .await
            .with_context(|| format!("scenario {name}"))?;
        println!("{}", outcome.row(&args.label));
    }
    Ok(())
}
