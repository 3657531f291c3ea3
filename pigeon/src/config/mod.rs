//! Broker options: where to listen, the broker id, and its limits and MQTT 5.0 features.
//! Each is a `--kebab-case` flag of the binary, a `snake_case` TOML key and a
//! `PIGEON_UPPER_SNAKE_CASE` environment variable.
//!
//! - [`Options`]: the options as written (flags, TOML keys, `PIGEON_*` variables), every one optional;
//! - [`EnvOptions`]: the options of the `PIGEON_*` environment variables
//!   (`PIGEON_QUEUE_LIMIT=7`; see [`EnvOptions`] for lists and `[[listeners]]`);
//! - [`Config::from_args_and_file`]: defaults < `--config` file < environment < flags, validated;
//! - [`Config::to_toml`]: the effective configuration as a config file (`pigeon check-config`);
//! - [`Config::from_toml_str`] / [`Config::from_toml_file`]: defaults < file, validated;
//! - [`Config::validate`]: range checks whose errors name the flag and the key.
//!
//! A config file (`pigeon --config pigeon.toml --port 1885`: the flag wins):
//!
//! ```toml
//! host = "0.0.0.0"
//! port = 1884
//! id = "broker-eu-1"
//! queue_limit = 42
//! connect_timeout = 30000      # milliseconds
//! heartbeat_interval = 60000   # milliseconds
//! acl_file = "site.acl"        # relative to this file's folder
//! password_file = "passwd"     # Mosquitto's format, relative to this file's folder
//! allow_anonymous = false      # the default when password_file is set
//! max_keepalive = 300          # seconds
//! maximum_qos = 1
//! retain_available = true
//! listen = ["mqtt://0.0.0.0:1883", "wss://0.0.0.0:8884/mqtt"]  # see config::Listener
//! cert = "server.pem"          # for the TLS listeners
//! key = "server.key"
//! max_connections = 10000      # 0 = no limit, the default
//! max_publish_rate = 100       # messages/s per client; past it reading slows
//! ```
//!
//! ```
//! let text = "port = 1884\nid = \"broker-eu-1\"\nconnect_timeout = 30000\nmaximum_qos = 1\n";
//! let config = pigeon::Config::from_toml_str(text, "pigeon.toml".as_ref()).unwrap();
//! assert_eq!(config.maximum_qos, pigeon::codec::QoS::AtLeastOnce);
//! ```

#[cfg(feature = "cli")]
mod cli;
#[cfg(feature = "toml")]
mod env;
#[cfg(all(test, feature = "cli"))]
mod env_tests;
mod error;
#[cfg(feature = "toml")]
mod file;
mod listener;
mod options;
#[cfg(all(test, feature = "cli"))]
mod password_tests;
#[cfg(feature = "toml")]
mod runtime;
mod sections;
#[cfg(feature = "toml")]
mod show;
#[cfg(all(test, feature = "cli"))]
mod tests;
mod validate;

use std::{path::PathBuf, time::Duration};

pub use crate::persistence::Durability;

#[cfg(feature = "cli")]
pub use cli::{CheckConfigArgs, Cli, Command, PasswdArgs};
#[cfg(feature = "toml")]
pub use env::{env_var, EnvOptions, UnknownVar, ENV_PREFIX, NOT_OPTIONS};
pub use error::ConfigError;
pub use listener::Listener;
pub use options::{Options, KEYS};
#[cfg(feature = "toml")]
pub use runtime::CONFIG_VAR;
#[cfg(feature = "toml")]
use sections::SectionVar;
pub use sections::Sections;
pub use validate::{MAX_PACKET_SIZE_LIMIT, MIN_PACKET_SIZE_LIMIT};

/// Everything the broker can be told at startup.
///
/// ```
/// let config = pigeon::Config::default();
/// assert_eq!(config.port, 1884);
/// assert_eq!(config.queue_limit, 42);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// Address of the plain TCP listener, used when `listeners` is empty.
    pub host: String,
    /// Port of the plain TCP listener; 0 picks an ephemeral one.
    pub port: u16,
    /// Listeners to bind instead of `host:port` (see [`Config::effective_listeners`]).
    pub listeners: Vec<Listener>,
    /// PEM certificate chain for TLS listeners that name none.
    pub cert: Option<PathBuf>,
    /// PEM private key for TLS listeners that name none.
    pub key: Option<PathBuf>,
    /// PEM CA certificates to verify client certificates with (TLS listeners).
    pub ca_file: Option<PathBuf>,
    /// TLS listeners refuse clients without a certificate signed by `ca_file`.
    pub require_certificate: bool,
    /// The client certificate's common name replaces the CONNECT user name.
    pub use_identity_as_username: bool,
    /// Broker id, used in `$SYS/<id>/...`. Default: a UUID v4.
    pub id: String,
    /// Maximum concurrent messages being delivered.
    pub concurrency: usize,
    /// Worker threads of the `pigeon` binary's tokio runtime; 0 = one per
    /// CPU core. An application embedding the broker sizes its own runtime.
    pub worker_threads: usize,
    /// Packets queued before the session is established; past it the
    /// connection fails with "Client queue limit reached".
    pub queue_limit: usize,
    /// Client id length limit for MQTT 3.1.
    pub max_clients_id_length: usize,
    /// How long to wait for CONNECT.
    pub connect_timeout: Duration,
    /// How long a plain-TCP client may do nothing before its connection is
    /// parked: its task ends and its socket leaves the runtime for one epoll
    /// shared by every parked client, which frees about half of an idle
    /// client's memory. It comes back, in a new task, at its next packet, a
    /// delivery, its keep-alive deadline or shutdown. Zero: never.
    pub park_idle_after: Duration,
    /// How long [`BrokerHandle::close`](crate::BrokerHandle::close) (the
    /// binary: SIGTERM, SIGINT) waits for the connections to end (MQTT 5.0
    /// clients get DISCONNECT 0x8B Server shutting down) and the store to
    /// commit; past it, busy connections are given up on (the store still
    /// gets up to a second).
    pub shutdown_timeout: Duration,
    /// Interval of `$SYS/<id>/heartbeat`.
    pub heartbeat_interval: Duration,
    /// Mosquitto-format ACL file; `None` allows every topic.
    pub acl_file: Option<PathBuf>,
    /// Mosquitto-format password file checked on CONNECT before the
    /// authenticate handlers; `None` leaves usernames to the handlers.
    pub password_file: Option<PathBuf>,
    /// Whether clients without a username are accepted; `None`: not when a
    /// `password_file` is set (as Mosquitto 2.x), else yes. See [`Config::anonymous_allowed`].
    pub allow_anonymous: Option<bool>,
    /// Largest packet accepted from a client, in bytes (MQTT 5.0 Maximum Packet Size sent in CONNACK).
    pub max_packet_size: usize,
    /// Messages a session may queue (beyond the in-flight window, or offline).
    /// Online, a full queue slows the publishers feeding it (backpressure);
    /// offline, further QoS 1/2 messages are refused (PUBACK 0x97) and counted.
    pub max_queued_messages: usize,
    /// Bytes a session may queue, counted as [`max_queued_messages`](Self::max_queued_messages) is.
    pub max_queued_bytes: usize,
    /// Bytes all sessions' queues may hold together (online queues; offline ones
    /// have a budget of the same size in the in-memory store). Past it QoS 0
    /// copies are dropped and QoS 1/2 publishers slowed.
    pub max_queued_bytes_total: usize,
    /// How long a subscriber with a full queue may go without taking anything
    /// (reading, acknowledging) before it is disconnected and its publishers
    /// released (MQTT 5.0: DISCONNECT 0x97).
    pub drain_timeout: Duration,
    /// Unacknowledged QoS 1/2 PUBLISHes in flight to one client (capped by its Receive Maximum).
    ///
    /// 512 by default: a subscriber that many publishers feed is paced by its
    /// round trips, and with 100 one subscriber took 420k QoS 1 messages a
    /// second on loopback and 580k with 512 (`../shared/bench` fan-in; no gain
    /// past 512). The window costs only what is in it, so an idle client pays
    /// nothing for a larger one. An MQTT 5 client that says nothing allows 65535.
    pub max_inflight: u16,
    /// Receive Maximum the broker announces: QoS 1/2 PUBLISHes a client may have unacknowledged.
    pub receive_maximum: u16,
    /// Largest keep alive a client may ask for, in seconds; 0 = no limit. A client
    /// asking for more (or for 0) is told this value in CONNACK (MQTT 5.0).
    pub max_keepalive: u16,
    /// Topic Alias Maximum the broker accepts from clients (0 disables inbound aliases).
    pub topic_alias_maximum: u16,
    /// Highest QoS the broker supports.
    pub maximum_qos: pigeon_codec::QoS,
    /// Whether retained messages are supported.
    pub retain_available: bool,
    /// Whether wildcard subscriptions are supported.
    pub wildcard_subscription_available: bool,
    /// Whether subscription identifiers are supported.
    pub subscription_identifiers_available: bool,
    /// Whether shared subscriptions are supported.
    pub shared_subscription_available: bool,
    /// Upper bound on a session's expiry interval, in seconds.
    pub max_session_expiry_interval: u32,
    /// Server reference: when set, MQTT 5.0 clients are redirected there
    /// (CONNACK 0x9C Use another server).
    pub server_reference: Option<String>,
    /// Connections open at once over every listener; 0 = no limit. Past it a
    /// new connection is refused (MQTT 5.0: CONNACK 0x97, 3.x: 0x03) and closed.
    /// A listener may set a tighter one ([`Listener::max_connections`]).
    pub max_connections: usize,
    /// Levels (`/`-separated) a PUBLISH topic or SUBSCRIBE filter may have; 0 = no limit.
    pub max_topic_levels: usize,
    /// Subscriptions one client may hold; 0 = no limit. Entries past it get
    /// SUBACK 0x97 Quota exceeded (3.x: 0x80).
    pub max_subscriptions_per_client: usize,
    /// PUBLISH packets per second read from one client; 0 = no limit. Past it
    /// the connection reads more slowly (nothing is dropped).
    pub max_publish_rate: u32,
    /// Where sessions, subscriptions, retained messages, wills and queued
    /// messages are kept: in memory (the default) or in a durable file.
    pub persistence: Store,
    /// With a durable store: whether a QoS 1/2 publisher waits for the disk
    /// ([`Durability::Sync`], the default) or changes commit every window.
    pub durability: Durability,
    /// The HTTP listener (metrics, health, admin API, dashboard); off when `None`.
    pub http: Option<std::net::SocketAddr>,
    /// What the admin API and dashboard require (`Authorization: Bearer TOKEN`,
    /// or basic auth with this as the password); without one they refuse every request.
    pub admin_token: Option<String>,
    /// Interval of the Mosquitto-style `$SYS/broker/...` statistics; zero = off.
    pub sys_interval: Duration,
    /// How messages reach the other nodes of a cluster (local: there are none).
    pub emitter: EmitterKind,
    /// This node's id in a cluster (defaults to the broker `id`).
    pub node_id: Option<String>,
    /// The application's own settings (`[app]` tables of the config file,
    /// `PIGEON_APP__KEY` variables), read by `pigeon::app::Settings<T>`; the
    /// broker ignores them.
    pub sections: Sections,
}

/// The store behind a broker ([`Config::persistence`]).
///
/// ```
/// use pigeon::config::Store;
/// assert_eq!("memory".parse::<Store>(), Ok(Store::Memory));
/// assert_eq!("redb:/var/lib/pigeon.redb".parse::<Store>(), Ok(Store::Redb("/var/lib/pigeon.redb".into())));
/// assert!("redb:".parse::<Store>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Store {
    /// Everything in process memory, lost on exit.
    #[default]
    Memory,
    /// A `redb` file: survives restarts and kill -9 (`redb:PATH`).
    Redb(PathBuf),
    /// A Redis server shared by the nodes of a cluster (`redis://HOST:PORT[/DB]`,
    /// kept as written).
    Redis(String),
}

impl std::str::FromStr for Store {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str =
            "expected `memory`, `redb:PATH`, `redis://HOST:PORT[/DB]` or `rediss://HOST:PORT[/DB]` (TLS)";
        match s.split_once(':') {
            _ if s == "memory" => Ok(Store::Memory),
            Some(("redb", path)) if !path.is_empty() => Ok(Store::Redb(path.into())),
            Some(("redis" | "rediss", _)) if redis_url(s) => Ok(Store::Redis(s.to_owned())),
            _ => Err(EXPECTED),
        }
    }
}

/// How messages reach the other nodes ([`Config::emitter`]).
///
/// ```
/// use pigeon::config::EmitterKind;
/// assert_eq!("local".parse::<EmitterKind>(), Ok(EmitterKind::Local));
/// assert_eq!("redis://127.0.0.1:6379/0".parse::<EmitterKind>(), Ok(EmitterKind::Redis("redis://127.0.0.1:6379/0".into())));
/// assert!("redis://".parse::<EmitterKind>().is_err());
/// // TLS: the server's certificate is checked against the system's roots.
/// assert!("rediss://redis.example:6380/0".parse::<EmitterKind>().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EmitterKind {
    /// A single node: messages stay in this process.
    #[default]
    Local,
    /// Nodes sharing a Redis server (`redis://HOST:PORT[/DB]`).
    Redis(String),
}

impl std::str::FromStr for EmitterKind {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(EmitterKind::Local),
            _ if redis_url(s) => Ok(EmitterKind::Redis(s.to_owned())),
            _ => {
                Err("expected `local`, `redis://HOST:PORT[/DB]` or `rediss://HOST:PORT[/DB]` (TLS)")
            }
        }
    }
}

/// `redis://HOST[:PORT][/DB]` (or `rediss://`, TLS) with a host (and a
/// numeric port and db if given).
fn redis_url(s: &str) -> bool {
    let Some(rest) = s
        .strip_prefix("redis://")
        .or_else(|| s.strip_prefix("rediss://"))
    else {
        return false;
    };
    let (authority, db) = match rest.split_once('/') {
        Some((a, db)) => (a, Some(db)),
        None => (rest, None),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host, None),
    };
    !host.is_empty()
        && port.is_none_or(|p| p.parse::<u16>().is_ok())
        && db.is_none_or(|d| d.is_empty() || d.parse::<u32>().is_ok())
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: 1884,
            listeners: Vec::new(),
            cert: None,
            key: None,
            ca_file: None,
            require_certificate: false,
            use_identity_as_username: false,
            id: uuid::Uuid::new_v4().to_string(),
            concurrency: 100,
            worker_threads: 0,
            queue_limit: 42,
            max_clients_id_length: 23,
            connect_timeout: Duration::from_millis(30_000),
            park_idle_after: Duration::from_millis(500),
            shutdown_timeout: Duration::from_millis(5_000),
            heartbeat_interval: Duration::from_millis(60_000),
            acl_file: None,
            password_file: None,
            allow_anonymous: None,
            max_packet_size: pigeon_codec::DEFAULT_MAX_PACKET_SIZE,
            max_queued_messages: 1000,
            max_queued_bytes: 16 << 20,
            max_queued_bytes_total: 256 << 20,
            drain_timeout: Duration::from_millis(5_000),
            max_inflight: 512,
            receive_maximum: 100,
            max_keepalive: 0,
            topic_alias_maximum: 10,
            maximum_qos: pigeon_codec::QoS::ExactlyOnce,
            retain_available: true,
            wildcard_subscription_available: true,
            subscription_identifiers_available: true,
            shared_subscription_available: true,
            max_session_expiry_interval: u32::MAX,
            server_reference: None,
            // Unlimited, as Mosquitto: the file-descriptor limit is the real
            // bound, and running out of descriptors is handled by the listener.
            max_connections: 0,
            // EMQX's default: deeper than any real topic, shallow enough that
            // one client cannot make the topic tree deep at will.
            max_topic_levels: 128,
            max_subscriptions_per_client: 0,
            max_publish_rate: 0,
            persistence: Store::Memory,
            durability: Durability::Sync,
            http: None,
            admin_token: None,
            sys_interval: Duration::ZERO,
            emitter: EmitterKind::Local,
            node_id: None,
            sections: Sections::default(),
        }
    }
}

impl Config {
    /// Whether clients without a username are accepted: `allow_anonymous` if
    /// set, else only when there is no `password_file`.
    ///
    /// ```
    /// let mut config = pigeon::Config::default();
    /// assert!(config.anonymous_allowed());
    /// config.password_file = Some("passwd".into());
    /// assert!(!config.anonymous_allowed());
    /// config.allow_anonymous = Some(true);
    /// assert!(config.anonymous_allowed());
    /// ```
    pub fn anonymous_allowed(&self) -> bool {
        self.allow_anonymous.unwrap_or(self.password_file.is_none())
    }
}
