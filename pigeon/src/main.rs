//! The standalone broker: `pigeon --host H --port P [--id ID] [--config FILE]`
//! (every option also a `PIGEON_*` environment variable); `pigeon passwd FILE
//! USER` edits a password file instead, and `pigeon check-config FILE` checks a
//! config file and prints the effective configuration.
//!
//! Exit codes: 0 after a clean shutdown on SIGINT/SIGTERM (connections told,
//! within `--shutdown-timeout`, and the store committed), 2 for a bad option,
//! variable or config file (reported before any socket is bound), 1 when the
//! broker cannot start (e.g. the port is taken). SIGHUP reloads the ACL,
//! password and TLS files (a file that fails to parse is logged and the old one kept).

mod passwd_command;

use std::{io::IsTerminal, process::ExitCode};

use anyhow::Context;
use clap::Parser;
use pigeon::{
    broker::StartError,
    config::{CheckConfigArgs, Cli, Command, ConfigError},
    hooks::Hooks,
    Broker, Config,
};
use tracing_subscriber::EnvFilter;

/// jemalloc, not the system's malloc, for the standalone broker. Measured
/// with glibc's at 10,000 idle connections (bench/connections.sh): 1950 →
/// 1760 bytes of RSS each, as jemalloc keeps tokio's 128-byte-aligned blocks
/// in their size class instead of cutting holes around them; and 3–4% fewer
/// instructions per QoS 1 message (bench/instructions.sh), as a message is
/// mostly freed on another core than the one that allocated it.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match &cli.command {
        Some(Command::Passwd(args)) => return passwd_command::run(args),
        Some(Command::CheckConfig(args)) => return check_config(args),
        None => {}
    }
    // Before the configuration, so that unknown PIGEON_* variables are logged.
    init_tracing();
    let config = match cli.into_config() {
        Ok(config) => config,
        // Usage errors, --help and --version: clap prints them and picks the code.
        Err(ConfigError::Args(e)) => e.exit(),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            // A store that cannot be used is a bad option, as a bad ACL file is.
            let bad_store = e
                .chain()
                .any(|c| matches!(c.downcast_ref::<StartError>(), Some(StartError::Store(_))));
            if bad_store {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// `pigeon check-config FILE`: the effective configuration of FILE and the
/// environment on stdout (exit 0), or the error on stderr (exit 2).
fn check_config(args: &CheckConfigArgs) -> ExitCode {
    init_tracing();
    match Config::from_file_and_env(&args.file, std::env::vars_os()) {
        Ok(config) => {
            print!("{}", config.to_toml());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Logs to stderr, filtered by RUST_LOG (default `info`).
fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn run(config: Config) -> anyhow::Result<()> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if config.worker_threads > 0 {
        runtime.worker_threads(config.worker_threads);
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Installed before the "listening" line, so a signal sent as soon as it is
    // logged is not lost (it would kill the process with the default action).
    let mut shutdown = Shutdown::install().context("cannot install signal handlers")?;
    let mut hangup = Hangup::install().context("cannot install the SIGHUP handler")?;
    let id = config.id.clone();
    let wanted: Vec<String> = config
        .effective_listeners()
        .iter()
        .map(|l| l.url())
        .collect();
    let wanted = wanted.join(", ");
    let broker = Broker::start(config, Hooks::none())
        .await
        .with_context(|| format!("cannot start the broker on {wanted}"))?;
    // Tests and scripts read the bound port from the first line (useful with --port 0);
    // one line per listener, in the order configured.
    for listener in broker.listeners() {
        tracing::info!(broker_id = %id, "listening on {} ({})", listener.addr, listener.name);
    }
    loop {
        tokio::select! {
            signal = shutdown.recv() => {
                tracing::info!("{signal} received, closing");
                broker.close().await;
                break;
            }
            () = broker.closed() => break,
            () = hangup.recv() => {
                tracing::info!("SIGHUP received, reloading the ACL, password and TLS files");
                // Errors are logged by reload, naming the file; the broker goes on.
                let _ = broker.reload();
            }
        }
    }
    tracing::info!("broker closed");
    Ok(())
}

/// SIGINT and SIGTERM (Ctrl-C elsewhere).
struct Shutdown {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Shutdown {
    #[cfg(unix)]
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves with the name of the first signal received.
    #[cfg(unix)]
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }

    #[cfg(not(unix))]
    fn install() -> std::io::Result<Self> {
        Ok(Self {})
    }

    #[cfg(not(unix))]
    async fn recv(&mut self) -> &'static str {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(_) => std::future::pending().await,
        }
    }
}

/// SIGHUP: reload the files (never fires where there is no SIGHUP).
struct Hangup {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Hangup {
    #[cfg(unix)]
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            signal: signal(SignalKind::hangup())?,
        })
    }

    #[cfg(unix)]
    async fn recv(&mut self) {
        if self.signal.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }

    #[cfg(not(unix))]
    fn install() -> std::io::Result<Self> {
        Ok(Self {})
    }

    #[cfg(not(unix))]
    async fn recv(&mut self) {
        std::future::pending::<()>().await
    }
}
