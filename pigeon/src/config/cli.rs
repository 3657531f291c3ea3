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
        let file = cli
            .config
            .as_deref()
            .map(Options::from_toml_file)
            .transpose()?;
        Config::from_layers(file.into_iter().chain([cli.options]))
    }

    /// Applies `layers` over the defaults, lowest first, then validates. When
    /// listeners are configured, `host:port` is bound as well only if a layer
    /// names `host` or `port`; it comes first then.
    fn from_layers(layers: impl IntoIterator<Item = Options>) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let mut tcp_named = false;
        for options in layers {
            tcp_named |= options.names_host_or_port();
            options.apply_to(&mut config)?;
        }
        if tcp_named && !config.listeners.is_empty() {
            let tcp = super::Listener::new(
                crate::hooks::ListenerKind::Tcp,
                config.host.clone(),
                config.port,
            );
            config.listeners.insert(0, tcp);
        }
        config.validate()?;
        Ok(config)
    }

    /// Builds a configuration from TOML text over the defaults, then validates it
    /// (for programs that embed Pigeon and keep its options in a file).
    ///
    /// ```
    /// let config = pigeon::Config::from_toml_str("port = 0\nmax_keepalive = 60\n", "app.toml".as_ref()).unwrap();
    /// assert_eq!(config.max_keepalive, 60);
    /// ```
    pub fn from_toml_str(text: &str, path: &std::path::Path) -> Result<Config, ConfigError> {
        Config::from_layers([Options::from_toml_str(text, path)?])
    }

    /// Like [`Config::from_toml_str`], reading the file (a relative `acl_file`
    /// is taken relative to its folder).
    pub fn from_toml_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        Config::from_layers([Options::from_toml_file(path)?])
    }
}
