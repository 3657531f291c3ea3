//! Runnable examples of Pigeon, one per feature: `cargo run --release --example NAME -- --port P`.
//!
//! This library holds what they share: the command line and the start-up.
//! (No logging set-up: `Pigeon::bootstrap` logs to stderr, filtered by
//! `RUST_LOG`, when the application installed no `tracing` subscriber.)

use clap::Parser;
use pigeon::{app::Module, App, Config, Pigeon};

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

impl Args {
    /// Applies the flags to the module's configuration.
    pub fn apply(&self, config: &mut Config) {
        config.host = self.host.clone();
        if let Some(port) = self.port {
            config.port = port;
        }
    }
}

/// Boots module `M` with `args` applied and serves until SIGINT/SIGTERM.
pub async fn serve<M: Module>(args: &Args) -> anyhow::Result<()> {
    serve_app(Pigeon::bootstrap_with::<M>(|config| args.apply(config)).await?).await
}

/// Serves a started app until SIGINT/SIGTERM.
pub async fn serve_app(app: App) -> anyhow::Result<()> {
    tracing::info!(addr = %app.local_addr(), "listening");
    app.listen().await?;
    Ok(())
}
