//! The effective configuration as a TOML config file (`pigeon check-config`).

use std::fmt::Write as _;

use toml::{Table, Value};

use super::{options::KEYS, Config, Options, Store};
use crate::persistence::Durability;

/// Options whose values are secrets: shown as `"***"`.
const SECRETS: &[&str] = &["admin_token"];

impl Config {
    /// The configuration as the text of a TOML config file, every key of
    /// [`KEYS`] in order: a line `key = value` with the value in effect (the
    /// defaults included), or a comment for an option that is not set. Secrets
    /// (`admin_token`) are shown as `"***"`. The listeners are `[[listeners]]`
    /// tables at the end; when there are any, `host` and `port` are commented
    /// out (they are not bound beside them), so that the text read back as a
    /// config file gives this configuration again.
    ///
    /// ```
    /// let config = pigeon::Config { queue_limit: 7, admin_token: Some("s3cret".into()), ..Default::default() };
    /// let text = config.to_toml();
    /// assert!(text.contains("\nqueue_limit = 7\n"));
    /// assert!(text.contains("\nadmin_token = \"***\"\n"));
    /// assert!(text.contains("\n# acl_file: not set\n"));
    /// assert!(!text.contains("s3cret"));
    /// ```
    pub fn to_toml(&self) -> String {
        let options = effective_options(self);
        let table = match Value::try_from(&options) {
            Ok(Value::Table(table)) => table,
            // Strings, numbers, booleans and tables (paths made Unicode below):
            // serializing cannot fail.
            _ => Table::new(),
        };
        let mut out = String::from(
            "# The effective configuration: defaults < config file < PIGEON_* environment < flags.\n",
        );
        let has_listeners = !self.listeners.is_empty();
        for &key in KEYS {
            match key {
                "listen" => out.push_str("# listen: merged into the listeners\n"),
                "listeners" if !has_listeners => {
                    out.push_str("listeners = []  # plain TCP on host:port\n");
                }
                "listeners" => {}
                "host" | "port" if has_listeners => {
                    let value = table.get(key).map(line_value).unwrap_or_default();
                    let _ = writeln!(out, "# {key} = {value}  (not bound: see the listeners)");
                }
                _ if SECRETS.contains(&key) && table.contains_key(key) => {
                    let _ = writeln!(out, "{key} = \"***\"");
                }
                _ => match table.get(key) {
                    Some(value) => {
                        let _ = writeln!(out, "{key} = {}", line_value(value));
                    }
                    None => {
                        let _ = writeln!(out, "# {key}: not set");
                    }
                },
            }
        }
        if has_listeners {
            /// The tables alone, their fields in declaration order.
            #[derive(serde::Serialize)]
            struct Listeners<'a> {
                listeners: &'a [super::Listener],
            }
            let listeners = options.listeners.as_deref().unwrap_or_default();
            if let Ok(text) = toml::to_string(&Listeners { listeners }) {
                out.push('\n');
                out.push_str(&text);
            }
        }
        out
    }
}

/// A value as it is written after `key = `.
fn line_value(value: &Value) -> String {
    let single = Table::from_iter([("v".to_owned(), value.clone())]);
    match toml::to_string(&single) {
        Ok(line) => line
            .strip_prefix("v = ")
            .unwrap_or(&line)
            .trim_end()
            .to_owned(),
        Err(_) => value.to_string(),
    }
}

/// Every option as it is in effect in `config` (`None` only where the
/// option is unset); `listen` is `None`, its URLs being in `listeners`.
fn effective_options(config: &Config) -> Options {
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    // No `..` : a new option must be added here too (the compiler says so).
    Options {
        host: Some(config.host.clone()),
        port: Some(config.port),
        listen: None,
        listeners: Some(config.listeners.iter().map(unicode_listener).collect()),
        cert: config.cert.as_deref().map(unicode),
        key: config.key.as_deref().map(unicode),
        ca_file: config.ca_file.as_deref().map(unicode),
        require_certificate: Some(config.require_certificate),
        use_identity_as_username: Some(config.use_identity_as_username),
        id: Some(config.id.clone()),
        concurrency: Some(config.concurrency),
        worker_threads: Some(config.worker_threads),
        queue_limit: Some(config.queue_limit),
        max_clients_id_length: Some(config.max_clients_id_length),
        connect_timeout: Some(ms(config.connect_timeout)),
        park_idle_after: Some(ms(config.park_idle_after)),
        shutdown_timeout: Some(ms(config.shutdown_timeout)),
        heartbeat_interval: Some(ms(config.heartbeat_interval)),
        acl_file: config.acl_file.as_deref().map(unicode),
        password_file: config.password_file.as_deref().map(unicode),
        allow_anonymous: Some(config.anonymous_allowed()),
        max_packet_size: Some(config.max_packet_size),
        max_queued_messages: Some(config.max_queued_messages),
        max_queued_bytes: Some(config.max_queued_bytes),
        max_queued_bytes_total: Some(config.max_queued_bytes_total),
        drain_timeout: Some(ms(config.drain_timeout)),
        max_inflight: Some(config.max_inflight),
        receive_maximum: Some(config.receive_maximum),
        max_keepalive: Some(config.max_keepalive),
        topic_alias_maximum: Some(config.topic_alias_maximum),
        maximum_qos: Some(u8::from(config.maximum_qos)),
        retain_available: Some(config.retain_available),
        wildcard_subscription_available: Some(config.wildcard_subscription_available),
        subscription_identifiers_available: Some(config.subscription_identifiers_available),
        shared_subscription_available: Some(config.shared_subscription_available),
        max_session_expiry_interval: Some(config.max_session_expiry_interval),
        server_reference: config.server_reference.clone(),
        max_connections: Some(config.max_connections),
        max_topic_levels: Some(config.max_topic_levels),
        max_subscriptions_per_client: Some(config.max_subscriptions_per_client),
        max_publish_rate: Some(config.max_publish_rate),
        persistence: Some(match &config.persistence {
            Store::Memory => "memory".to_owned(),
            Store::Redb(path) => format!("redb:{}", path.to_string_lossy()),
            Store::Redis(url) => url.clone(),
        }),
        durability: Some(match config.durability {
            Durability::Sync => "sync".to_owned(),
            Durability::Window(window) => format!("{}ms", ms(window)),
        }),
        http: config.http.map(|addr| addr.to_string()),
        admin_token: config.admin_token.clone(),
        sys_interval: Some(config.sys_interval.as_secs()),
        emitter: Some(match &config.emitter {
            super::EmitterKind::Local => "local".to_owned(),
            super::EmitterKind::Redis(url) => url.clone(),
        }),
        node_id: config.node_id.clone(),
    }
}

/// A path as TOML can hold it (a name that is not Unicode, made so).
fn unicode(path: &std::path::Path) -> std::path::PathBuf {
    path.to_string_lossy().into_owned().into()
}

fn unicode_listener(listener: &super::Listener) -> super::Listener {
    let mut listener = listener.clone();
    for file in [&mut listener.cert, &mut listener.key, &mut listener.ca_file] {
        if let Some(path) = file.as_deref().map(unicode) {
            *file = Some(path);
        }
    }
    listener
}
