//! The binary's command line: every option as a flag, plus `--config FILE`.

use std::{ffi::OsString, path::PathBuf};

use clap::{Args, Parser, Subcommand};

use super::{Config, ConfigError, Options};
use crate::auth::HashKind;

/// `pigeon --host H --port P [--id ID] [--config FILE] [OPTIONS]`
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pigeon",
    version,
    // So that `--connect-timeout -5` is reported as a bad value of that flag.
    allow_negative_numbers = true,
    // `pigeon passwd …` takes none of the broker's options.
    args_conflicts_with_subcommands = true,
    about = "An MQTT 3.1 / 3.1.1 / 5.0 broker",
    override_usage = "pigeon [--host HOST] [--port PORT] [--id ID] [--config FILE] [OPTIONS]\n       pigeon passwd [-H argon2id|sha512-pbkdf2] [-D] FILE USER",
    after_help = "Every option is also a snake_case key of the --config TOML file \
                  (e.g. queue_limit = 42). Flags override the file, which overrides the defaults. \
                  Logs go to stderr; filter them with RUST_LOG (default: info)."
)]
pub struct Cli {
    /// TOML config file with the options below as snake_case keys
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Every broker option as a flag.
    #[command(flatten)]
    pub options: Options,

    /// A subcommand instead of running the broker.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The binary's subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Add or change a user of a password file (or remove one with -D)
    #[command(
        override_usage = "pigeon passwd [-H argon2id|sha512-pbkdf2] [-D] FILE USER",
        after_help = "The password is asked twice on a terminal; otherwise one line is read \
                      from standard input. The file is created (mode 0600) if missing; \
                      its other lines are kept."
    )]
    Passwd(PasswdArgs),
}

/// `pigeon passwd [-H KIND] [-D] FILE USER`
#[derive(Debug, Clone, Args)]
pub struct PasswdArgs {
    /// Password file, in Mosquitto's format
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The user to add, change or delete
    #[arg(value_name = "USER")]
    pub user: String,

    /// Hash to write: argon2id (Mosquitto 2.1) or sha512-pbkdf2 ($7$, for Mosquitto 2.0)
    #[arg(short = 'H', long = "hash", value_enum, default_value_t = HashKind::Argon2id)]
    pub hash: HashKind,

    /// Remove USER from FILE instead
    #[arg(short = 'D', long)]
    pub delete: bool,
}

impl Cli {
    /// The broker's configuration: defaults, then the `--config` file if
    /// given, then the flags; then [`Config::validate`]. (A subcommand, if
    /// any, is the caller's to run instead.)
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let file = self
            .config
            .as_deref()
            .map(Options::from_toml_file)
            .transpose()?;
        Config::from_layers(file.into_iter().chain([self.options]))
    }
}

impl Config {
    /// Builds the configuration of the binary: defaults, then the `--config`
    /// file if given, then the flags; then [`Config::validate`].
    ///
    /// `args` includes the program name, as `std::env::args_os()` does.
    ///
    /// ```
    /// let config = pigeon::Config::from_args_and_file(["pigeon", "--port", "0", "--queue-limit", "7"]).unwrap();
    /// assert_eq!((config.port, config.queue_limit), (0, 7));
    /// let err = pigeon::Config::from_args_and_file(["pigeon", "--maximum-qos", "3"]).unwrap_err();
    /// assert_eq!(err.to_string(), "invalid value for --maximum-qos / maximum_qos: 3 (expected 0, 1 or 2)");
    /// ```
    pub fn from_args_and_file<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Cli::try_parse_from(args)?.into_config()
    }
}
