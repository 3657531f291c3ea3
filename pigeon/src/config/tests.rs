use std::{path::PathBuf, time::Duration};

use clap::CommandFactory;
use pigeon_codec::QoS;

use super::{Cli, Config, ConfigError, Options, KEYS};

/// The flags' configuration, with no `PIGEON_*` variable (whatever the process has).
fn args(extra: &[&str]) -> Result<Config, ConfigError> {
    let no_env = std::iter::empty::<(String, String)>();
    Config::from_args_and_env(
        std::iter::once("pigeon").chain(extra.iter().copied()),
        no_env,
    )
}

fn error(extra: &[&str]) -> String {
    args(extra).unwrap_err().to_string()
}

fn toml_error(text: &str) -> String {
    Config::from_toml_str(text, "config.toml".as_ref())
        .unwrap_err()
        .to_string()
}

/// A file in a per-test folder of the system temp dir.
fn temp_file(test: &str, name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pigeon-config-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn no_options_gives_the_defaults() {
    let config = args(&[]).unwrap();
    let default = Config::default();
    assert_eq!(config.port, 1884);
    assert_eq!(config.host, default.host);
    assert_eq!(config.queue_limit, 42);
    assert_eq!(config.concurrency, 100);
    assert_eq!(config.worker_threads, 0, "one per core");
    assert_eq!(config.max_clients_id_length, 23);
    assert_eq!(config.connect_timeout, Duration::from_secs(30));
    assert_eq!(config.heartbeat_interval, Duration::from_secs(60));
    assert_eq!(config.maximum_qos, QoS::ExactlyOnce);
    assert!(uuid::Uuid::parse_str(&config.id).is_ok(), "{}", config.id);
}

#[test]
fn every_flag_sets_its_field() {
    let acl = temp_file("every_flag", "site.acl", "topic read #\n");
    let config = args(&[
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--id",
        "broker1",
        "--concurrency",
        "5",
        "--worker-threads",
        "1",
        "--queue-limit",
        "6",
        "--max-clients-id-length",
        "64",
        "--connect-timeout",
        "1500",
        "--shutdown-timeout",
        "750",
        "--heartbeat-interval",
        "250",
        "--acl-file",
        acl.to_str().unwrap(),
        "--max-packet-size",
        "2048",
        "--max-queued-messages",
        "9",
        "--max-inflight",
        "3",
        "--receive-maximum",
        "4",
        "--max-keepalive",
        "60",
        "--topic-alias-maximum",
        "0",
        "--maximum-qos",
        "1",
        "--retain-available",
        "false",
        "--wildcard-subscription-available",
        "false",
        "--subscription-identifiers-available",
        "false",
        "--shared-subscription-available",
        "false",
        "--max-session-expiry-interval",
        "3600",
        "--server-reference",
        "other.example:1883",
    ])
    .unwrap();
    assert_eq!(config.host, "127.0.0.1");
    assert_eq!(config.port, 0);
    assert_eq!(config.id, "broker1");
    assert_eq!(config.concurrency, 5);
    assert_eq!(config.worker_threads, 1);
    assert_eq!(config.queue_limit, 6);
    assert_eq!(config.max_clients_id_length, 64);
    assert_eq!(config.connect_timeout, Duration::from_millis(1500));
    assert_eq!(config.shutdown_timeout, Duration::from_millis(750));
    assert_eq!(config.heartbeat_interval, Duration::from_millis(250));
    assert_eq!(config.acl_file.as_deref(), Some(acl.as_path()));
    assert_eq!(config.max_packet_size, 2048);
    assert_eq!(config.max_queued_messages, 9);
    assert_eq!(config.max_inflight, 3);
    assert_eq!(config.receive_maximum, 4);
    assert_eq!(config.max_keepalive, 60);
    assert_eq!(config.topic_alias_maximum, 0);
    assert_eq!(config.maximum_qos, QoS::AtLeastOnce);
    assert!(!config.retain_available);
    assert!(!config.wildcard_subscription_available);
    assert!(!config.subscription_identifiers_available);
    assert!(!config.shared_subscription_available);
    assert_eq!(config.max_session_expiry_interval, 3600);
    assert_eq!(
        config.server_reference.as_deref(),
        Some("other.example:1883")
    );
}

#[test]
fn every_key_of_the_toml_file_sets_its_field() {
    let text = r#"
        host = "::1"
        port = 1999
        id = "from-file"
        concurrency = 7
        worker_threads = 3
        queue_limit = 8
        max_clients_id_length = 30
        connect_timeout = 100
        shutdown_timeout = 200
        heartbeat_interval = 200
        max_packet_size = 4096
        max_queued_messages = 11
        max_inflight = 12
        receive_maximum = 13
        max_keepalive = 14
        topic_alias_maximum = 15
        maximum_qos = 0
        retain_available = false
        wildcard_subscription_available = false
        subscription_identifiers_available = false
        shared_subscription_available = false
        max_session_expiry_interval = 16
        server_reference = "elsewhere"
    "#;
    let config = Config::from_toml_str(text, "pigeon.toml".as_ref()).unwrap();
    assert_eq!(
        (config.host.as_str(), config.port, config.id.as_str()),
        ("::1", 1999, "from-file")
    );
    assert_eq!(
        (
            config.concurrency,
            config.worker_threads,
            config.queue_limit,
            config.max_clients_id_length
        ),
        (7, 3, 8, 30)
    );
    assert_eq!(config.connect_timeout, Duration::from_millis(100));
    assert_eq!(config.shutdown_timeout, Duration::from_millis(200));
    assert_eq!(config.heartbeat_interval, Duration::from_millis(200));
    assert_eq!(
        (config.max_packet_size, config.max_queued_messages),
        (4096, 11)
    );
    assert_eq!(
        (
            config.max_inflight,
            config.receive_maximum,
            config.max_keepalive
        ),
        (12, 13, 14)
    );
    assert_eq!(config.topic_alias_maximum, 15);
    assert_eq!(config.maximum_qos, QoS::AtMostOnce);
    assert!(!config.retain_available && !config.wildcard_subscription_available);
    assert!(!config.subscription_identifiers_available && !config.shared_subscription_available);
    assert_eq!(config.max_session_expiry_interval, 16);
    assert_eq!(config.server_reference.as_deref(), Some("elsewhere"));
}

#[test]
fn flags_override_the_file_which_overrides_defaults() {
    let file = temp_file(
        "precedence",
        "pigeon.toml",
        "port = 2000\nqueue_limit = 5\nid = \"file\"\n",
    );
    let config = args(&["--config", file.to_str().unwrap(), "--port", "0"]).unwrap();
    assert_eq!(config.port, 0, "flag wins over file");
    assert_eq!(config.queue_limit, 5, "file wins over default");
    assert_eq!(config.id, "file");
    assert_eq!(config.concurrency, 100, "default kept");
}

#[test]
fn relative_acl_file_in_config_is_relative_to_the_config_folder() {
    let file = temp_file("relative_acl", "pigeon.toml", "acl_file = \"site.acl\"\n");
    let acl = temp_file("relative_acl", "site.acl", "topic #\n");
    let config = args(&["--config", file.to_str().unwrap()]).unwrap();
    assert_eq!(config.acl_file.as_deref(), Some(acl.as_path()));
}

#[test]
fn keys_list_matches_the_flags_and_help_lists_every_option() {
    let command = Cli::command();
    let mut ids: Vec<&str> = command
        .get_arguments()
        .map(|a| a.get_id().as_str())
        .filter(|id| !["config", "help", "version"].contains(id))
        .collect();
    ids.sort_unstable();
    // `listeners` (the [[listeners]] tables) is the one TOML-only key.
    let mut keys: Vec<&str> = KEYS.iter().copied().filter(|k| *k != "listeners").collect();
    keys.sort_unstable();
    assert_eq!(ids, keys);
    let help = Cli::command().render_help().to_string();
    for key in &keys {
        let flag = format!("--{}", key.replace('_', "-"));
        assert!(help.contains(&flag), "{flag} missing from --help:\n{help}");
    }
    assert!(help.contains("--config"));
}

#[test]
fn qos_above_two_names_the_option_from_flag_and_file() {
    assert_eq!(
        error(&["--maximum-qos", "3"]),
        "invalid value for --maximum-qos / maximum_qos: 3 (expected 0, 1 or 2)"
    );
    assert_eq!(
        toml_error("maximum_qos = 3"),
        "invalid value for --maximum-qos / maximum_qos in config.toml: 3 (expected 0, 1 or 2)"
    );
}

#[test]
fn unknown_keys_are_named_with_a_suggestion() {
    assert_eq!(
        toml_error("queue_limt = 4"),
        "unknown key `queue_limt` in config.toml (did you mean `queue_limit`?)"
    );
    assert_eq!(
        toml_error("colour = \"blue\""),
        "unknown key `colour` in config.toml"
    );
    assert_eq!(
        toml_error("[listener]\nport = 1"),
        "unknown key `listener` in config.toml (did you mean `listeners`?)"
    );
    // `config` is a flag, not a key.
    assert_eq!(
        toml_error("config = \"x\""),
        "unknown key `config` in config.toml"
    );
}

#[test]
fn wrong_types_in_the_file_name_the_key() {
    assert_eq!(
        toml_error("port = \"1883\""),
        "invalid value for --port / port in config.toml: invalid type: string \"1883\", expected u16"
    );
    assert_eq!(
        toml_error("port = 70000"),
        "invalid value for --port / port in config.toml: invalid value: integer `70000`, expected u16"
    );
    assert_eq!(
        toml_error("retain_available = \"yes\""),
        "invalid value for --retain-available / retain_available in config.toml: invalid type: string \"yes\", expected a boolean"
    );
    assert_eq!(
        toml_error("queue_limit = -1"),
        "invalid value for --queue-limit / queue_limit in config.toml: invalid value: integer `-1`, expected usize"
    );
}

#[test]
fn bad_toml_and_missing_files_are_reported_with_the_path() {
    let err = toml_error("id = \"a\"\nport = \n");
    assert!(
        err.starts_with("config file config.toml is not valid TOML: line 2: "),
        "{err}"
    );
    let err = error(&["--config", "/nonexistent/pigeon.toml"]);
    assert!(
        err.starts_with("cannot read config file /nonexistent/pigeon.toml:"),
        "{err}"
    );
}

#[test]
fn zero_and_out_of_range_values_name_the_option() {
    let cases: &[(&[&str], &str)] = &[
        (&["--queue-limit", "0"], "invalid value for --queue-limit / queue_limit: 0 (must be at least 1)"),
        (&["--concurrency", "0"], "invalid value for --concurrency / concurrency: 0 (must be at least 1)"),
        (&["--max-clients-id-length", "0"], "invalid value for --max-clients-id-length / max_clients_id_length: 0 (must be at least 1)"),
        (&["--max-clients-id-length", "65536"], "invalid value for --max-clients-id-length / max_clients_id_length: 65536 (expected 1..=65535, the longest MQTT string)"),
        (&["--max-queued-messages", "0"], "invalid value for --max-queued-messages / max_queued_messages: 0 (must be at least 1)"),
        (&["--max-inflight", "0"], "invalid value for --max-inflight / max_inflight: 0 (must be at least 1)"),
        (&["--receive-maximum", "0"], "invalid value for --receive-maximum / receive_maximum: 0 (must be at least 1)"),
        (&["--connect-timeout", "0"], "invalid value for --connect-timeout / connect_timeout: 0 (milliseconds, must be at least 1)"),
        (&["--heartbeat-interval", "0"], "invalid value for --heartbeat-interval / heartbeat_interval: 0 (milliseconds, must be at least 1)"),
        (&["--shutdown-timeout", "0"], "invalid value for --shutdown-timeout / shutdown_timeout: 0 (milliseconds, must be at least 1)"),
        (&["--max-packet-size", "0"], "invalid value for --max-packet-size / max_packet_size: 0 (expected 16..=268435455 bytes)"),
        (&["--max-packet-size", "15"], "invalid value for --max-packet-size / max_packet_size: 15 (expected 16..=268435455 bytes)"),
        (&["--max-packet-size", "268435456"], "invalid value for --max-packet-size / max_packet_size: 268435456 (expected 16..=268435455 bytes)"),
        (&["--id", "a/b"], "invalid value for --id / id: \"a/b\" (must be non-empty, without `/`, `+`, `#`: it is a level of $SYS/<id>/ topics)"),
        (&["--id", ""], "invalid value for --id / id: \"\" (must be non-empty, without `/`, `+`, `#`: it is a level of $SYS/<id>/ topics)"),
        (&["--host", ""], "invalid value for --host / host: \"\" (expected an address or host name)"),
        (&["--server-reference", " "], "invalid value for --server-reference / server_reference: \" \" (expected a server name)"),
    ];
    for (flags, message) in cases {
        assert_eq!(error(flags), *message, "for {flags:?}");
    }
    assert_eq!(
        toml_error("concurrency = 0"),
        "invalid value for --concurrency / concurrency in config.toml: 0 (must be at least 1)"
    );
    assert!(args(&["--max-packet-size", "268435455"]).is_ok());
}

#[test]
fn command_line_errors_name_the_flag() {
    let err = args(&["--queue-limt", "3"]).unwrap_err();
    assert!(matches!(err, ConfigError::Args(_)));
    assert!(err.to_string().contains("--queue-limt"), "{err}");
    assert_eq!(
        err_kind(&["--queue-limt", "3"]),
        clap::error::ErrorKind::UnknownArgument
    );
    let err = error(&["--port", "65536"]);
    assert!(err.contains("--port"), "{err}");
    let err = error(&["--retain-available", "yes"]);
    assert!(err.contains("--retain-available"), "{err}");
}

fn err_kind(extra: &[&str]) -> clap::error::ErrorKind {
    match args(extra) {
        Err(ConfigError::Args(e)) => e.kind(),
        other => panic!("expected a clap error, got {other:?}"),
    }
}

#[test]
fn a_malformed_acl_file_is_refused_with_its_line() {
    let acl = temp_file("bad_acl", "bad.acl", "topic read a\ntopic sometimes b\n");
    let err = error(&["--acl-file", acl.to_str().unwrap()]);
    assert_eq!(
        err,
        format!(
            "invalid value for --acl-file / acl_file: acl file {}: line 2: invalid access `sometimes` (expected read, write, readwrite or deny)",
            acl.display()
        )
    );
    let err = error(&["--acl-file", "/nonexistent/site.acl"]);
    assert!(
        err.starts_with("invalid value for --acl-file / acl_file: acl file /nonexistent/site.acl: cannot read it:"),
        "{err}"
    );
}

#[test]
fn options_layer_only_what_they_set() {
    let mut config = Config::default();
    Options {
        queue_limit: Some(3),
        ..Options::default()
    }
    .apply_to(&mut config)
    .unwrap();
    Options {
        port: Some(0),
        ..Options::default()
    }
    .apply_to(&mut config)
    .unwrap();
    assert_eq!((config.queue_limit, config.port), (3, 0));
    let before = config.port;
    let err = Options {
        port: Some(5),
        maximum_qos: Some(9),
        ..Options::default()
    }
    .apply_to(&mut config)
    .unwrap_err();
    assert!(matches!(
        err,
        ConfigError::Invalid {
            key: "maximum_qos",
            ..
        }
    ));
    assert_eq!(config.port, before, "a refused layer changes nothing");
}

/// `Config::validate` and `Broker::start` apply one rule set: a config one refuses,
/// the other refuses with the same message (nothing is bound).
#[tokio::test]
async fn broker_start_refuses_what_validate_refuses_with_the_same_error() {
    use crate::{broker::StartError, hooks::Hooks, Broker};
    let bad_acl = temp_file("start_acl", "bad.acl", "topic sometimes b\n");
    let cases = [
        Config {
            max_packet_size: 15,
            ..Config::default()
        },
        Config {
            max_inflight: 0,
            ..Config::default()
        },
        Config {
            queue_limit: 0,
            ..Config::default()
        },
        Config {
            id: "a/b".into(),
            ..Config::default()
        },
        Config {
            acl_file: Some(bad_acl),
            ..Config::default()
        },
    ];
    for config in cases {
        let config = Config { port: 0, ..config };
        let validated = config.validate().unwrap_err().to_string();
        let started = match Broker::start(config, Hooks::none()).await {
            Err(e @ (StartError::InvalidOption(_) | StartError::Acl(_))) => e.to_string(),
            Err(e) => panic!("{validated}: started with another error: {e}"),
            Ok(_) => panic!("{validated}: the broker started"),
        };
        assert_eq!(started, validated);
    }
}

#[tokio::test]
async fn an_acl_error_names_the_file_and_line_and_a_bind_error_the_address() {
    use std::error::Error;

    use crate::{broker::StartError, hooks::Hooks, Broker};
    let bad_acl = temp_file(
        "start_acl_line",
        "bad.acl",
        "topic read a\ntopic sometimes b\n",
    );
    let config = Config {
        port: 0,
        acl_file: Some(bad_acl.clone()),
        ..Config::default()
    };
    let Err(StartError::Acl(acl)) = Broker::start(config, Hooks::none()).await else {
        panic!("not an ACL error");
    };
    assert_eq!(
        (acl.path.as_str(), acl.line),
        (bad_acl.to_str().unwrap(), 2)
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = Config {
        host: "127.0.0.1".into(),
        port,
        ..Config::default()
    };
    let err = Broker::start(config, Hooks::none())
        .await
        .err()
        .expect("port taken");
    assert!(
        matches!(
            &err,
            StartError::Listen(crate::transport::TransportError::Bind { url, .. })
                if url.ends_with(&format!(":{port}"))
        ),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .starts_with(&format!("cannot listen on mqtt://127.0.0.1:{port}: ")));
    let io = err.source().expect("the I/O error is the source");
    assert!(io.downcast_ref::<std::io::Error>().is_some());
}

#[test]
fn listen_urls_become_listeners_and_host_port_is_bound_only_when_named() {
    let config = args(&[
        "--listen",
        "ws://127.0.0.1:0",
        "--listen",
        "mqtt://[::1]:1999",
    ])
    .unwrap();
    let urls: Vec<String> = config
        .effective_listeners()
        .iter()
        .map(|l| l.url())
        .collect();
    assert_eq!(urls, ["ws://127.0.0.1:0/mqtt", "mqtt://[::1]:1999"]);

    let config = args(&["--port", "0", "--listen", "ws://127.0.0.1:0/socket"]).unwrap();
    let urls: Vec<String> = config
        .effective_listeners()
        .iter()
        .map(|l| l.url())
        .collect();
    assert_eq!(urls, ["mqtt://0.0.0.0:0", "ws://127.0.0.1:0/socket"]);

    // Without --listen, host:port is the listener.
    let urls: Vec<String> = args(&[])
        .unwrap()
        .effective_listeners()
        .iter()
        .map(|l| l.url())
        .collect();
    assert_eq!(urls, ["mqtt://0.0.0.0:1884"]);
}

#[test]
fn bad_listen_urls_are_named() {
    assert_eq!(
        error(&["--listen", "http://0.0.0.0:80"]),
        "invalid value for --listen / listen: http://0.0.0.0:80 (expected mqtt://HOST:PORT, \
         mqtts://HOST:PORT, ws://HOST:PORT/PATH or wss://HOST:PORT/PATH)"
    );
    assert_eq!(
        error(&["--listen", "mqtt://0.0.0.0:99999"]),
        "invalid value for --listen / listen: mqtt://0.0.0.0:99999 (the port must be 0..=65535)"
    );
    assert_eq!(
        error(&["--listen", "mqtt://0.0.0.0:1/mqtt"]),
        "invalid value for --listen / listen: mqtt://0.0.0.0:1/mqtt (only ws:// and wss:// listeners have a path)"
    );
}

#[test]
fn tls_listeners_need_a_certificate_and_name_a_bad_file() {
    assert_eq!(
        error(&["--listen", "mqtts://127.0.0.1:0"]),
        "invalid value for --cert / cert: mqtts://127.0.0.1:0 (a TLS listener needs --cert FILE and --key FILE (PEM))"
    );
    let cert = temp_file("bad_cert", "server.pem", "not a certificate\n");
    let key = temp_file("bad_cert", "server.key", "");
    let message = error(&[
        "--listen",
        "mqtts://127.0.0.1:0",
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert!(
        message.starts_with("invalid value for --cert / cert: "),
        "{message}"
    );
    assert!(message.contains(cert.to_str().unwrap()), "{message}");
    let missing = error(&[
        "--listen",
        "wss://127.0.0.1:0",
        "--cert",
        "/nonexistent/cert.pem",
        "--key",
        "/nonexistent/key.pem",
    ]);
    assert!(missing.contains("/nonexistent/cert.pem"), "{missing}");
    assert_eq!(
        error(&["--listen", "mqtts://127.0.0.1:0", "--cert", "c", "--key", "k", "--require-certificate"]),
        "invalid value for --ca-file / ca_file: mqtts://127.0.0.1:0 (require_certificate needs --ca-file FILE to verify client certificates)"
    );
}

#[test]
fn listener_tables_in_toml() {
    let config = Config::from_toml_str(
        "listen = [\"mqtt://127.0.0.1:0\"]\n\
         [[listeners]]\nkind = \"ws\"\nport = 0\npath = \"/mq\"\nname = \"browsers\"\n",
        "pigeon.toml".as_ref(),
    )
    .unwrap();
    let listeners = config.effective_listeners();
    assert_eq!(listeners.len(), 2);
    assert_eq!(listeners[1].url(), "ws://0.0.0.0:0/mq");
    assert_eq!(listeners[1].display_name(), "browsers");
    let message = toml_error("[[listeners]]\nkind = \"quic\"\nport = 1\n");
    assert!(
        message.starts_with("invalid value for [[listeners]] / listeners in config.toml: "),
        "{message}"
    );
}

#[test]
fn relative_tls_files_in_config_are_relative_to_its_folder() {
    let file = temp_file(
        "relative_tls",
        "pigeon.toml",
        "cert = \"c.pem\"\n[[listeners]]\nkind = \"tls\"\nport = 0\nkey = \"k.pem\"\n",
    );
    let options = Options::from_toml_file(&file).unwrap();
    let dir = file.parent().unwrap();
    assert_eq!(options.cert, Some(dir.join("c.pem")));
    assert_eq!(options.listeners.unwrap()[0].key, Some(dir.join("k.pem")));
}

#[test]
fn limit_flags_and_keys_set_their_fields() {
    let config = args(&[
        "--max-connections",
        "1000",
        "--max-topic-levels",
        "8",
        "--max-subscriptions-per-client",
        "50",
        "--max-publish-rate",
        "20",
    ])
    .unwrap();
    assert_eq!(config.max_connections, 1000);
    assert_eq!(config.max_topic_levels, 8);
    assert_eq!(config.max_subscriptions_per_client, 50);
    assert_eq!(config.max_publish_rate, 20);
    let defaults = args(&[]).unwrap();
    assert_eq!(
        (
            defaults.max_connections,
            defaults.max_topic_levels,
            defaults.max_subscriptions_per_client,
            defaults.max_publish_rate
        ),
        (0, 128, 0, 0)
    );
    let text = "max_connections = 7\nmax_publish_rate = 3\n\
        [[listeners]]\nkind = \"tcp\"\nport = 0\nmax_connections = 2\n";
    let config = Config::from_toml_str(text, "pigeon.toml".as_ref()).unwrap();
    assert_eq!((config.max_connections, config.max_publish_rate), (7, 3));
    assert_eq!(config.listeners[0].max_connections, Some(2));
    let unknown = toml_error("[[listeners]]\nkind = \"tcp\"\nport = 0\nmax_conections = 2\n");
    assert!(unknown.contains("max_conections"), "{unknown}");
}
