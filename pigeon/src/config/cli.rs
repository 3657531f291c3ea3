//! The binary's command line: every option as a flag, plus `--config FILE`;
//! the subcommands `passwd` and `check-config`.

use std::{ffi::OsString, path::PathBuf};

use clap::{Args, Parser, Subcommand};

use super::{Config, ConfigError, EnvOptions, Options};
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
    override_usage = "pigeon [--host HOST] [--port PORT] [--id ID] [--config FILE] [OPTIONS]\n       pigeon passwd [-H argon2id|sha512-pbkdf2] [-D] FILE USER\n       pigeon check-config FILE",
    after_help = "Every option is also a snake_case key of the --config TOML file (queue_limit = 42)\n\
                  and an environment variable PIGEON_ + its upper snake case (PIGEON_QUEUE_LIMIT=42).\n\
                  Lists are comma-separated: PIGEON_LISTEN=mqtt://0.0.0.0:1883,ws://0.0.0.0:8080/mqtt;\n\
                  [[listeners]] tables are PIGEON_LISTENERS__<N>__<FIELD>: PIGEON_LISTENERS__0__KIND=ws,\n\
                  PIGEON_LISTENERS__0__PORT=8080. Precedence: defaults < config file < environment < flags.\n\n\
                  pigeon check-config FILE validates FILE and the environment as startup does and\n\
                  prints the effective configuration as TOML.\n\n\
                  SIGTERM/SIGINT: stop accepting, send MQTT 5 clients DISCONNECT 0x8B (connections get at\n\
                  most --shutdown-timeout), commit the store, exit 0. SIGHUP reloads the ACL, password and\n\
                  TLS files.\n\
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

    /// Validate a config file (and the PIGEON_* environment) as startup does, and print the effective configuration
    #[command(
        name = "check-config",
        override_usage = "pigeon check-config FILE",
        after_help = "Reads FILE and the PIGEON_* variables, checks every option and reads the \
                      ACL, password and TLS files they name, exactly as startup does, without \
                      binding a socket or opening the store. Prints the effective configuration \
                      as TOML (every key, defaults included; admin_token as \"***\") and exits 0; \
                      otherwise prints the error naming the file, key or variable and exits 2."
    )]
    CheckConfig(CheckConfigArgs),
}

/// `pigeon check-config FILE`
#[derive(Debug, Clone, Args)]
pub struct CheckConfigArgs {
    /// TOML config file to check
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
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
    /// given (else the one `PIGEON_CONFIG` names, if set), then the process's `PIGEON_*` environment variables, then the
    /// flags; then [`Config::validate`]. Unknown `PIGEON_*` variables are
    /// logged as warnings. (A subcommand, if any, is the caller's to run instead.)
    pub fn into_config(self) -> Result<Config, ConfigError> {
        self.into_config_with_env(std::env::vars_os())
    }

    /// As [`Cli::into_config`], with the environment given as `(name, value)`
    /// pairs (see [`EnvOptions::from_vars`]).
    ///
    /// ```
    /// use clap::Parser;
    /// let cli = pigeon::config::Cli::parse_from(["pigeon", "--port", "0"]);
    /// let config = cli.into_config_with_env([("PIGEON_PORT", "1885"), ("PIGEON_QUEUE_LIMIT", "7")]).unwrap();
    /// assert_eq!((config.port, config.queue_limit), (0, 7)); // the flag wins over the variable
    /// ```
    pub fn into_config_with_env<I, K, V>(self, vars: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        // `--config` wins; else the file `PIGEON_CONFIG` names, as for
        // `Pigeon::bootstrap` (one way to point a container at its file).
        let (vars, named) = super::runtime::named_config(vars);
        let file = match self.config.or(named) {
            Some(path) => {
                let options = Options::from_toml_file(&path)?;
                Some((path, options))
            }
            None => None,
        };
        let env = EnvOptions::from_vars(
            vars.into_iter()
                .filter(|(k, _)| k != super::runtime::CONFIG_VAR),
        )?;
        env.warn_unknown();
        Config::from_sources(file, env, self.options)
    }
}

impl Config {
    /// Builds the configuration of the binary: defaults, then the `--config`
    /// file if given, then the process's `PIGEON_*` environment variables,
    /// then the flags; then [`Config::validate`]. [`Config::from_args_and_env`]
    /// takes the environment as an argument instead.
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

    /// As [`Config::from_args_and_file`], with the environment given as
    /// `(name, value)` pairs rather than read from the process.
    ///
    /// ```
    /// let env = [("PIGEON_QUEUE_LIMIT", "7"), ("PIGEON_ALLOW_ANONYMOUS", "false")];
    /// let config = pigeon::Config::from_args_and_env(["pigeon", "--port", "0"], env).unwrap();
    /// assert_eq!((config.port, config.queue_limit, config.anonymous_allowed()), (0, 7, false));
    /// let err = pigeon::Config::from_args_and_env(["pigeon"], [("PIGEON_QUEUE_LIMIT", "0")]).unwrap_err();
    /// assert_eq!(err.to_string(), "invalid value for PIGEON_QUEUE_LIMIT: 0 (must be at least 1)");
    /// ```
    pub fn from_args_and_env<A, T, I, K, V>(args: A, vars: I) -> Result<Config, ConfigError>
    where
        A: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        Cli::try_parse_from(args)?.into_config_with_env(vars)
    }
}
