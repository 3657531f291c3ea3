//! Runnable examples of Pigeon, one per feature: `cargo run --release --example NAME -- --port P`.
//!
//! This library holds what they share: the command line and the start-up.

use clap::Parser;
use pigeon::{app::Module, Pigeon};

/// Flags every example accepts.
#[derive(Debug, Parser)]
pub struct Args {
    /// Port to listen on (overrides the module's `port`).
    #[arg(long)]
    pub port: Option<u16>,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub host: String,
}

/// Logs to stderr (`RUST_LOG` filters; default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Boots module `M` with `args` applied and serves until SIGINT/SIGTERM.
pub async fn serve<M: Module>(args: &Args) -> anyhow::Result<()> {
    let app = Pigeon::bootstrap_with::<M>(|config| {
        config.host = args.host.clone();
        if let Some(port) = args.port {
            config.port = port;
        }
    })
    .await?;
    tracing::info!(addr = %app.local_addr(), "listening");
    app.listen().await?;
    Ok(())
}
