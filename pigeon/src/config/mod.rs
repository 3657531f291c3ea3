//! Broker options: the seed's options plus the ones a serious broker needs.
//! Each is a `--kebab-case` flag of the binary and a `snake_case` TOML key.

use std::time::Duration;

/// Everything the broker can be told at startup.
///
/// ```
/// let config = pigeon::Config::default();
/// assert_eq!(config.port, 1884);
/// assert_eq!(config.queue_limit, 42);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub host: String,
    /// TCP port; 0 picks an ephemeral one.
    pub port: u16,
    /// Broker id, used in `$SYS/<id>/...`. Default: a UUID v4.
    pub id: String,
    /// Maximum concurrent messages being delivered (the seed's `concurrency`).
    pub concurrency: usize,
    /// Packets queued before the session is established; past it the
    /// connection fails with "Client queue limit reached".
    pub queue_limit: usize,
    /// Client id length limit for MQTT 3.1.
    pub max_clients_id_length: usize,
    /// How long to wait for CONNECT.
    pub connect_timeout: Duration,
    /// Interval of `$SYS/<id>/heartbeat`.
    pub heartbeat_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: 1884,
            id: uuid::Uuid::new_v4().to_string(),
            concurrency: 100,
            queue_limit: 42,
            max_clients_id_length: 23,
            connect_timeout: Duration::from_millis(30_000),
            heartbeat_interval: Duration::from_millis(60_000),
        }
    }
}
