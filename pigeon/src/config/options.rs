//! The options as they are written: one struct that is both the binary's flags
//! (clap, with the `cli` feature), the config file's keys and the `PIGEON_*`
//! environment variables (serde), every field optional so that layers can be
//! stacked: defaults < config file < environment < flags.

use std::{path::PathBuf, time::Duration};

#[cfg(feature = "cli")]
use clap::ArgAction;
use serde::{Deserialize, Serialize};

use pigeon_codec::QoS;

use super::{listener::URL_FORMS, Config, ConfigError, Listener};

/// Options given on the command line or in a TOML file; `None` leaves the
/// value of the layer below.
///
/// ```
/// use pigeon::config::Options;
/// let mut config = pigeon::Config::default();
/// Options { port: Some(0), ..Options::default() }.apply_to(&mut config).unwrap();
/// assert_eq!(config.port, 0);
/// assert_eq!(config.queue_limit, 42);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Address to listen on [default: 0.0.0.0]
    #[cfg_attr(feature = "cli", arg(long, value_name = "HOST"))]
    pub host: Option<String>,

    /// TCP port; 0 picks a free one [default: 1884]
    #[cfg_attr(feature = "cli", arg(long, value_name = "PORT"))]
    pub port: Option<u16>,

    /// Listen on URL (repeatable): mqtt://HOST:PORT, mqtts://HOST:PORT, ws://HOST:PORT/PATH, wss://HOST:PORT/PATH; --host/--port are then bound only if given too
    #[cfg_attr(feature = "cli", arg(long, value_name = "URL"))]
    pub listen: Option<Vec<String>>,

    /// Listener tables (TOML only: `[[listeners]]` tables with kind, host, port, path, cert, key, ...)
    #[cfg_attr(feature = "cli", arg(skip))]
    pub listeners: Option<Vec<Listener>>,

    /// PEM certificate chain for mqtts:// and wss:// listeners
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub cert: Option<PathBuf>,

    /// PEM private key for mqtts:// and wss:// listeners
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub key: Option<PathBuf>,

    /// PEM CA certificates that client certificates are verified against (TLS listeners)
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub ca_file: Option<PathBuf>,

    /// TLS listeners refuse clients without a certificate signed by --ca-file [default: false]
    #[cfg_attr(feature = "cli", arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set))]
    pub require_certificate: Option<bool>,

    /// The client certificate's common name replaces the CONNECT user name (needs --require-certificate) [default: false]
    #[cfg_attr(feature = "cli", arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set))]
    pub use_identity_as_username: Option<bool>,

    /// Broker id, used in $SYS/ID/... topics [default: a random UUID v4]
    #[cfg_attr(feature = "cli", arg(long, value_name = "ID"))]
    pub id: Option<String>,

    /// Messages delivered concurrently [default: 100]
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub concurrency: Option<usize>,

    /// Worker threads of the pigeon binary's runtime; 0 = one per CPU core (an application embedding the broker sizes its own runtime) [default: 0]
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub worker_threads: Option<usize>,

    /// Packets queued before a client's session is established; past it the connection fails [default: 42]
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub queue_limit: Option<usize>,

    /// Longest client id accepted from MQTT 3.1 clients [default: 23]
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub max_clients_id_length: Option<usize>,

    /// Milliseconds to wait for CONNECT after a client connects [default: 30000]
    #[cfg_attr(feature = "cli", arg(long, value_name = "MS"))]
    pub connect_timeout: Option<u64>,

    /// Milliseconds a plain-TCP client may do nothing before its connection is parked off the runtime (its task and socket registration freed until it is needed again); 0: never [default: 500]
    #[cfg_attr(feature = "cli", arg(long, value_name = "MS"))]
    pub park_idle_after: Option<u64>,

    /// Milliseconds SIGTERM/SIGINT waits for connections to say goodbye (MQTT 5: DISCONNECT 0x8B) and the store to commit; busy ones are then given up on [default: 5000]
    #[cfg_attr(feature = "cli", arg(long, value_name = "MS"))]
    pub shutdown_timeout: Option<u64>,

    /// Milliseconds between $SYS/ID/heartbeat messages [default: 60000]
    #[cfg_attr(feature = "cli", arg(long, value_name = "MS"))]
    pub heartbeat_interval: Option<u64>,

    /// Mosquitto-format ACL file (user/topic/pattern lines); without it every topic is allowed
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub acl_file: Option<PathBuf>,

    /// Mosquitto-format password file (user:hash lines; see `pigeon passwd`), checked before the authenticate handlers
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub password_file: Option<PathBuf>,

    /// Accept clients without a username [default: false with --password-file, else true]
    #[cfg_attr(feature = "cli", arg(long, value_name = "BOOL", action = ArgAction::Set))]
    pub allow_anonymous: Option<bool>,

    /// Largest packet accepted from a client, in bytes, 16..=268435455 [default: 1048576]
    #[cfg_attr(feature = "cli", arg(long, value_name = "BYTES"))]
    pub max_packet_size: Option<usize>,

    /// Messages a session queues beyond its in-flight window; a full queue slows its publishers, offline it refuses more [default: 1000]
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub max_queued_messages: Option<usize>,

    /// Bytes a session queues, as --max-queued-messages [default: 16777216]
    #[cfg_attr(feature = "cli", arg(long, value_name = "BYTES"))]
    pub max_queued_bytes: Option<usize>,

    /// Bytes all sessions' queues hold together; past it QoS 0 is dropped and QoS 1/2 publishers slowed [default: 268435456]
    #[cfg_attr(feature = "cli", arg(long, value_name = "BYTES"))]
    pub max_queued_bytes_total: Option<usize>,

    /// Milliseconds a subscriber with a full queue may take nothing before it is disconnected [default: 5000]
    #[cfg_attr(feature = "cli", arg(long, value_name = "MS"))]
    pub drain_timeout: Option<u64>,

    /// Unacknowledged QoS 1/2 messages in flight to one client, 1..=65535 [default: 512]
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub max_inflight: Option<u16>,

    /// Receive Maximum announced to MQTT 5 clients, 1..=65535 [default: 100]
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub receive_maximum: Option<u16>,

    /// Largest keep alive (seconds) a client may ask for; 0 = no limit [default: 0]
    #[cfg_attr(feature = "cli", arg(long, value_name = "SECS"))]
    pub max_keepalive: Option<u16>,

    /// Topic aliases accepted from each MQTT 5 client; 0 disables them [default: 10]
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub topic_alias_maximum: Option<u16>,

    /// Highest QoS the broker grants: 0, 1 or 2 [default: 2]
    #[cfg_attr(feature = "cli", arg(long, value_name = "QOS"))]
    pub maximum_qos: Option<u8>,

    /// Whether retained messages are supported [default: true]
    #[cfg_attr(feature = "cli", arg(long, value_name = "BOOL", action = ArgAction::Set))]
    pub retain_available: Option<bool>,

    /// Whether wildcard subscriptions are supported [default: true]
    #[cfg_attr(feature = "cli", arg(long, value_name = "BOOL", action = ArgAction::Set))]
    pub wildcard_subscription_available: Option<bool>,

    /// Whether subscription identifiers are supported [default: true]
    #[cfg_attr(feature = "cli", arg(long, value_name = "BOOL", action = ArgAction::Set))]
    pub subscription_identifiers_available: Option<bool>,

    /// Whether shared subscriptions ($share/...) are supported [default: true]
    #[cfg_attr(feature = "cli", arg(long, value_name = "BOOL", action = ArgAction::Set))]
    pub shared_subscription_available: Option<bool>,

    /// Upper bound (seconds) on a session's expiry interval [default: 4294967295]
    #[cfg_attr(feature = "cli", arg(long, value_name = "SECS"))]
    pub max_session_expiry_interval: Option<u32>,

    /// Send MQTT 5 clients to this server instead (CONNACK 0x9C Use another server)
    #[cfg_attr(feature = "cli", arg(long, value_name = "SERVER"))]
    pub server_reference: Option<String>,

    /// Connections open at once over all listeners; past it new ones are refused (CONNACK 0x97 / 0x03); 0 = no limit [default: 0]
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub max_connections: Option<usize>,

    /// Levels a PUBLISH topic or SUBSCRIBE filter may have (0x90 / 0x8F past it); 0 = no limit [default: 128]
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub max_topic_levels: Option<usize>,

    /// Subscriptions one client may hold (SUBACK 0x97 past it); 0 = no limit [default: 0]
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub max_subscriptions_per_client: Option<usize>,

    /// PUBLISH packets per second read from one client; past it reading slows, nothing is dropped; 0 = no limit [default: 0]
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub max_publish_rate: Option<u32>,

    /// Where state is kept: memory, redb:PATH for a durable file that survives restarts and kill -9, or redis://HOST:PORT[/DB] shared by a cluster (rediss:// for TLS) [default: memory]
    #[cfg_attr(feature = "cli", arg(long, value_name = "STORE"))]
    pub persistence: Option<String>,

    /// With a durable store: `sync` acknowledges QoS 1/2 only once on disk; `10ms` (any N ms) commits every window without waiting [default: sync]
    #[cfg_attr(feature = "cli", arg(long, value_name = "MODE"))]
    pub durability: Option<String>,

    /// HTTP listener for /metrics, /healthz, /readyz, the admin API (/api/v1) and the dashboard (/); off unless set
    #[cfg_attr(feature = "cli", arg(long, value_name = "HOST:PORT"))]
    pub http: Option<String>,

    /// Bearer token (or basic-auth password) the admin API and dashboard require; without it they refuse every request
    #[cfg_attr(feature = "cli", arg(long, value_name = "TOKEN"))]
    pub admin_token: Option<String>,

    /// How messages reach the other nodes: local (one node) or redis://HOST:PORT[/DB] (a cluster; rediss:// for TLS) [default: local]
    #[cfg_attr(feature = "cli", arg(long, value_name = "EMITTER"))]
    pub emitter: Option<String>,

    /// This node's id in a cluster; unique per node [default: the broker id]
    #[cfg_attr(feature = "cli", arg(long, value_name = "ID"))]
    pub node_id: Option<String>,

    /// Seconds between Mosquitto-style $SYS/broker/... statistics; 0 = off [default: 0]
    #[cfg_attr(feature = "cli", arg(long, value_name = "SECONDS"))]
    pub sys_interval: Option<u64>,
}

/// Every option's snake_case name (the TOML key; the flag is its kebab-case).
pub const KEYS: &[&str] = &[
    "host",
    "port",
    "listen",
    "listeners",
    "cert",
    "key",
    "ca_file",
    "require_certificate",
    "use_identity_as_username",
    "id",
    "concurrency",
    "worker_threads",
    "queue_limit",
    "max_clients_id_length",
    "connect_timeout",
    "park_idle_after",
    "shutdown_timeout",
    "heartbeat_interval",
    "acl_file",
    "password_file",
    "allow_anonymous",
    "max_packet_size",
    "max_queued_messages",
    "max_queued_bytes",
    "max_queued_bytes_total",
    "drain_timeout",
    "max_inflight",
    "receive_maximum",
    "max_keepalive",
    "topic_alias_maximum",
    "maximum_qos",
    "retain_available",
    "wildcard_subscription_available",
    "subscription_identifiers_available",
    "shared_subscription_available",
    "max_session_expiry_interval",
    "server_reference",
    "max_connections",
    "max_topic_levels",
    "max_subscriptions_per_client",
    "max_publish_rate",
    "persistence",
    "durability",
    "http",
    "admin_token",
    "sys_interval",
    "emitter",
    "node_id",
];

impl Options {
    /// Overwrites the fields of `config` that are set here. Fails (leaving
    /// `config` unchanged) only for a value its field cannot hold: a QoS above 2.
    /// Ranges are checked afterwards by [`Config::validate`].
    pub fn apply_to(self, config: &mut Config) -> Result<(), ConfigError> {
        let maximum_qos = match self.maximum_qos {
            Some(qos) => Some(QoS::try_from(qos).map_err(|qos| ConfigError::Invalid {
                key: "maximum_qos",
                value: qos.to_string(),
                expected: "expected 0, 1 or 2",
            })?),
            None => None,
        };
        let listeners = self.parsed_listeners()?;
        let persistence = parse_option("persistence", self.persistence.as_deref())?;
        let durability = parse_option("durability", self.durability.as_deref())?;
        let emitter = parse_option("emitter", self.emitter.as_deref())?;
        let http = self.http.as_deref().map(parse_http).transpose()?;
        macro_rules! set {
            ($($field:ident),* $(,)?) => {
                $(if let Some(v) = self.$field { config.$field = v; })*
            };
        }
        set!(
            host,
            port,
            id,
            concurrency,
            worker_threads,
            queue_limit,
            max_clients_id_length,
            max_packet_size,
            max_queued_messages,
            max_queued_bytes,
            max_queued_bytes_total,
            max_inflight,
            receive_maximum,
            max_keepalive,
            topic_alias_maximum,
            retain_available,
            wildcard_subscription_available,
            subscription_identifiers_available,
            shared_subscription_available,
            max_session_expiry_interval,
            require_certificate,
            use_identity_as_username,
            max_connections,
            max_topic_levels,
            max_subscriptions_per_client,
            max_publish_rate,
        );
        if let Some(addr) = http {
            config.http = Some(addr);
        }
        if let Some(token) = self.admin_token {
            config.admin_token = Some(token);
        }
        if let Some(emitter) = emitter {
            config.emitter = emitter;
        }
        if let Some(node) = self.node_id {
            config.node_id = Some(node);
        }
        if let Some(secs) = self.sys_interval {
            config.sys_interval = Duration::from_secs(secs);
        }
        if let Some(listeners) = listeners {
            config.listeners = listeners;
        }
        for (path, field) in [
            (self.cert, &mut config.cert),
            (self.key, &mut config.key),
            (self.ca_file, &mut config.ca_file),
        ] {
            if let Some(path) = path {
                *field = Some(path);
            }
        }
        if let Some(ms) = self.connect_timeout {
            config.connect_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = self.park_idle_after {
            config.park_idle_after = Duration::from_millis(ms);
        }
        if let Some(ms) = self.drain_timeout {
            config.drain_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = self.shutdown_timeout {
            config.shutdown_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = self.heartbeat_interval {
            config.heartbeat_interval = Duration::from_millis(ms);
        }
        if let Some(path) = self.acl_file {
            config.acl_file = Some(path);
        }
        if let Some(path) = self.password_file {
            config.password_file = Some(path);
        }
        if let Some(allow) = self.allow_anonymous {
            config.allow_anonymous = Some(allow);
        }
        if let Some(reference) = self.server_reference {
            config.server_reference = Some(reference);
        }
        if let Some(qos) = maximum_qos {
            config.maximum_qos = qos;
        }
        if let Some(store) = persistence {
            config.persistence = store;
        }
        if let Some(durability) = durability {
            config.durability = durability;
        }
        Ok(())
    }

    /// The `listen` URLs then the `listeners` tables of this layer; `None`
    /// when it names neither (the layer below's listeners stay).
    fn parsed_listeners(&self) -> Result<Option<Vec<Listener>>, ConfigError> {
        if self.listen.is_none() && self.listeners.is_none() {
            return Ok(None);
        }
        let mut all = Vec::new();
        for url in self.listen.iter().flatten() {
            let listener = Listener::parse_url(url).map_err(|expected| ConfigError::Invalid {
                key: "listen",
                value: url.clone(),
                expected: if expected.is_empty() {
                    URL_FORMS
                } else {
                    expected
                },
            })?;
            all.push(listener);
        }
        all.extend(self.listeners.iter().flatten().cloned());
        Ok(Some(all))
    }

    /// Whether this layer sets `host` or `port` (then bound beside `--listen`).
    #[cfg(feature = "toml")]
    pub(super) fn names_host_or_port(&self) -> bool {
        self.host.is_some() || self.port.is_some()
    }
}

impl Config {
    /// Applies `layers` over `config` (the defaults, or a module's options),
    /// lowest first, then validates. When listeners are configured, `host:port`
    /// is bound as well only if a layer names `host` or `port`; it comes first then.
    #[cfg(feature = "toml")]
    pub(super) fn from_layers_over(
        mut config: Config,
        layers: impl IntoIterator<Item = Options>,
    ) -> Result<Config, ConfigError> {
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
}

/// Parses a string option, naming it when it does not parse.
fn parse_option<T: std::str::FromStr<Err = &'static str>>(
    key: &'static str,
    value: Option<&str>,
) -> Result<Option<T>, ConfigError> {
    value
        .map(|v| {
            v.parse().map_err(|expected| ConfigError::Invalid {
                key,
                value: v.to_owned(),
                expected,
            })
        })
        .transpose()
}

/// `--http HOST:PORT`: an address to bind (`localhost` means loopback).
fn parse_http(addr: &str) -> Result<std::net::SocketAddr, ConfigError> {
    use std::net::ToSocketAddrs;
    let invalid = || ConfigError::Invalid {
        key: "http",
        value: addr.to_owned(),
        expected: "expected HOST:PORT, e.g. 127.0.0.1:18884",
    };
    if let Ok(socket) = addr.parse() {
        return Ok(socket);
    }
    let (host, port) = addr.rsplit_once(':').ok_or_else(invalid)?;
    if host != "localhost" {
        return Err(invalid());
    }
    let port: u16 = port.parse().map_err(|_| invalid())?;
    ("127.0.0.1", port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(invalid)
}
