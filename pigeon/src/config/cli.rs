//! The binary's command line: every option as a flag, plus `--config FILE`.

use std::{ffi::OsString, path::PathBuf};

use clap::Parser;

use super::{Config, ConfigError, Options};

/// `pigeon --host H --port P [--id ID] [--config FILE] [OPTIONS]`
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pigeon",
    version,
    // So that `--connect-timeout -5` is reported as a bad value of that flag.
    allow_negative_numbers = true,
    about = "An MQTT 3.1 / 3.1.1 / 5.0 broker",
    override_usage = "pigeon [--host HOST] [--port PORT] [--id ID] [--config FILE] [OPTIONS]",
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
        let cli = Cli::try_parse_from(args)?;
        let mut config = Config::default();
        if let Some(path) = &cli.config {
            Options::from_toml_file(path)?.apply_to(&mut config)?;
        }
        cli.options.apply_to(&mut config)?;
        config.validate()?;
        Ok(config)
    }
}
