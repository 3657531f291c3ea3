//! The `PIGEON_*` environment layer and `check-config`'s rendering, with the
//! environment given as pairs (the process's own is never touched).

use std::{path::PathBuf, time::Duration};

use clap::Parser;
use pigeon_codec::QoS;

use super::{Cli, Config, ConfigError, EnvOptions, Listener, Store, UnknownVar, KEYS};
use crate::hooks::ListenerKind;

fn env(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_args_and_env(["pigeon"], vars.iter().copied())
}

fn env_error(vars: &[(&str, &str)]) -> String {
    env(vars).unwrap_err().to_string()
}

/// A file in a per-test folder of the system temp dir.
fn temp_file(test: &str, name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pigeon-env-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_type_of_option_is_read_from_its_variable() {
    let acl = temp_file("every_type", "site.acl", "topic read #\n");
    let config = env(&[
        ("PIGEON_HOST", "127.0.0.1"),
        ("PIGEON_PORT", "0"),
        ("PIGEON_ID", "123"), // a string option keeps digits as text
        ("PIGEON_QUEUE_LIMIT", "7"),
        ("PIGEON_CONNECT_TIMEOUT", "1_500"), // TOML's digit separators
        ("PIGEON_SHUTDOWN_TIMEOUT", "250"),
        ("PIGEON_ALLOW_ANONYMOUS", "false"),
        ("PIGEON_RETAIN_AVAILABLE", "false"),
        ("PIGEON_MAXIMUM_QOS", "1"),
        ("PIGEON_ACL_FILE", acl.to_str().unwrap()),
        ("PIGEON_PERSISTENCE", "memory"),
        ("PIGEON_DURABILITY", "10ms"),
        ("PIGEON_ADMIN_TOKEN", "true"), // a string, not a boolean
        ("PIGEON_HTTP", "127.0.0.1:0"),
        ("PIGEON_SYS_INTERVAL", "10"),
    ])
    .unwrap();
    assert_eq!((config.host.as_str(), config.port), ("127.0.0.1", 0));
    assert_eq!(config.id, "123");
    assert_eq!(config.queue_limit, 7);
    assert_eq!(config.connect_timeout, Duration::from_millis(1500));
    assert_eq!(config.shutdown_timeout, Duration::from_millis(250));
    assert!(!config.anonymous_allowed());
    assert!(!config.retain_available);
    assert_eq!(config.maximum_qos, QoS::AtLeastOnce);
    assert_eq!(config.acl_file.as_deref(), Some(acl.as_path()));
    assert_eq!(config.persistence, Store::Memory);
    assert_eq!(
        config.durability,
        crate::persistence::Durability::Window(Duration::from_millis(10))
    );
    assert_eq!(config.admin_token.as_deref(), Some("true"));
    assert_eq!(config.http, Some("127.0.0.1:0".parse().unwrap()));
    assert_eq!(config.sys_interval, Duration::from_secs(10));
}

#[test]
fn every_key_has_a_variable() {
    for key in KEYS {
        let var = super::env_var(key);
        assert!(var.starts_with("PIGEON_") && var == var.to_ascii_uppercase());
        // Known: never reported as unknown (the value may not fit, that is all).
        if let Ok(env) = EnvOptions::from_vars([(var.as_str(), "1")]) {
            assert!(env.unknown.is_empty(), "{var}: {:?}", env.unknown);
        }
    }
}

#[test]
fn defaults_then_file_then_environment_then_flags() {
    let file = temp_file(
        "precedence",
        "pigeon.toml",
        "queue_limit = 1\nconcurrency = 2\nmax_inflight = 3\n",
    );
    let cli = Cli::parse_from([
        "pigeon",
        "--config",
        file.to_str().unwrap(),
        "--max-inflight",
        "30",
    ]);
    let config = cli
        .into_config_with_env([("PIGEON_CONCURRENCY", "20"), ("PIGEON_MAX_INFLIGHT", "300")])
        .unwrap();
    assert_eq!(config.queue_limit, 1, "the file over the default");
    assert_eq!(config.concurrency, 20, "the environment over the file");
    assert_eq!(config.max_inflight, 30, "the flag over the environment");
    assert_eq!(config.receive_maximum, 100, "the default");
}

#[test]
fn pigeon_config_names_the_file_when_there_is_no_config_flag() {
    let file = temp_file(
        "named",
        "pigeon.toml",
        "queue_limit = 5\nmax_inflight = 6\n",
    );
    let other = temp_file("named-other", "other.toml", "queue_limit = 9\n");
    let named = [("PIGEON_CONFIG", file.to_str().unwrap())];
    let config = Cli::parse_from(["pigeon"])
        .into_config_with_env(named)
        .unwrap();
    assert_eq!((config.queue_limit, config.max_inflight), (5, 6));
    // --config wins over the variable; the variable is no unknown option.
    let cli = Cli::parse_from(["pigeon", "--config", other.to_str().unwrap()]);
    let config = cli.into_config_with_env(named).unwrap();
    assert_eq!((config.queue_limit, config.max_inflight), (9, 512));
    // A file it names must exist, and the error names it.
    let missing = file.with_file_name("missing.toml");
    let error = Cli::parse_from(["pigeon"])
        .into_config_with_env([("PIGEON_CONFIG", missing.to_str().unwrap())])
        .unwrap_err()
        .to_string();
    assert!(error.contains("missing.toml"), "{error}");
}

#[test]
fn a_bad_value_names_the_variable() {
    assert_eq!(
        env_error(&[("PIGEON_QUEUE_LIMIT", "abc")]),
        r#"invalid value for PIGEON_QUEUE_LIMIT: abc (invalid type: string "abc", expected usize)"#
    );
    assert_eq!(
        env_error(&[("PIGEON_PORT", "70000")]),
        "invalid value for PIGEON_PORT: 70000 (invalid value: integer `70000`, expected u16)"
    );
    assert_eq!(
        env_error(&[("PIGEON_CONNECT_TIMEOUT", "1.5")]),
        "invalid value for PIGEON_CONNECT_TIMEOUT: 1.5 (invalid type: floating point `1.5`, expected u64)"
    );
    assert_eq!(
        env_error(&[("PIGEON_ALLOW_ANONYMOUS", "yes")]),
        r#"invalid value for PIGEON_ALLOW_ANONYMOUS: yes (invalid type: string "yes", expected a boolean)"#
    );
    // What the field holds but the option refuses.
    assert_eq!(
        env_error(&[("PIGEON_MAXIMUM_QOS", "3")]),
        "invalid value for PIGEON_MAXIMUM_QOS: 3 (expected 0, 1 or 2)"
    );
    assert!(env_error(&[("PIGEON_LISTEN", "mqtt://h:1,gopher://h:70")])
        .starts_with("invalid value for PIGEON_LISTEN: gopher://h:70 (expected mqtt://"));
    assert!(env_error(&[("PIGEON_PERSISTENCE", "sqlite:x")])
        .starts_with("invalid value for PIGEON_PERSISTENCE: sqlite:x (expected `memory`"));
    // Ranges checked once every layer is applied.
    assert_eq!(
        env_error(&[("PIGEON_QUEUE_LIMIT", "0")]),
        "invalid value for PIGEON_QUEUE_LIMIT: 0 (must be at least 1)"
    );
    assert_eq!(
        env_error(&[("PIGEON_SHUTDOWN_TIMEOUT", "0")]),
        "invalid value for PIGEON_SHUTDOWN_TIMEOUT: 0 (milliseconds, must be at least 1)"
    );
    // A flag over a bad variable: the flag's value is the one checked.
    let config = Config::from_args_and_env(
        ["pigeon", "--queue-limit", "5"],
        [("PIGEON_QUEUE_LIMIT", "0")],
    )
    .unwrap();
    assert_eq!(config.queue_limit, 5);
    assert_eq!(
        Config::from_args_and_env(
            ["pigeon", "--queue-limit", "0"],
            [("PIGEON_QUEUE_LIMIT", "5")]
        )
        .unwrap_err()
        .to_string(),
        "invalid value for --queue-limit / queue_limit: 0 (must be at least 1)"
    );
}

#[test]
fn a_missing_acl_file_from_the_environment_is_named() {
    let err = env_error(&[("PIGEON_ACL_FILE", "/nonexistent/site.acl")]);
    assert!(
        err.contains("acl_file") && err.contains("/nonexistent/site.acl"),
        "{err}"
    );
}

#[test]
fn unknown_variables_are_reported_and_the_scripts_own_ignored() {
    let env = EnvOptions::from_vars([
        ("PIGEON_QUEUE_LIMT", "7"),
        ("PIGEON_COLOUR", "blue"),
        ("PIGEON_queue_limit", "7"),
        ("PIGEON_PYTHON", "/usr/bin/python3"),
        ("PIGEON_VENV", "/tmp/venv"),
        ("PIGEON_ARGS", "--max-inflight 200"),
        ("PATH", "/usr/bin"),
        ("RUST_LOG", "info"),
    ])
    .unwrap();
    assert_eq!(env.options, super::Options::default());
    assert_eq!(
        env.unknown,
        [
            UnknownVar {
                name: "PIGEON_COLOUR".into(),
                suggestion: None,
            },
            UnknownVar {
                name: "PIGEON_QUEUE_LIMT".into(),
                suggestion: Some("PIGEON_QUEUE_LIMIT".into()),
            },
            UnknownVar {
                name: "PIGEON_queue_limit".into(),
                suggestion: Some("PIGEON_QUEUE_LIMIT".into()),
            },
        ]
    );
    assert_eq!(
        env.unknown[1].to_string(),
        "unknown environment variable PIGEON_QUEUE_LIMT ignored (did you mean PIGEON_QUEUE_LIMIT?)"
    );
    let env = EnvOptions::from_vars([("PIGEON_LISTENER__0__PORT", "1")]).unwrap();
    assert_eq!(
        env.unknown[0].suggestion.as_deref(),
        Some("PIGEON_LISTENERS__0__PORT")
    );
}

#[test]
#[cfg(unix)]
fn a_value_that_is_not_unicode_is_refused_and_a_name_ignored() {
    use std::{ffi::OsString, os::unix::ffi::OsStringExt};
    let bad = OsString::from_vec(vec![b'a', 0xff]);
    let err = EnvOptions::from_vars([(OsString::from("PIGEON_ID"), bad.clone())]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid value for PIGEON_ID: a\u{fffd} (not valid UTF-8)"),
        "{err}"
    );
    let mut name = b"PIGEON_".to_vec();
    name.push(0xff);
    let env = EnvOptions::from_vars([(OsString::from_vec(name), OsString::from("1"))]).unwrap();
    assert_eq!(env.options, super::Options::default());
}

#[test]
fn lists_are_comma_separated_or_toml_arrays() {
    let config = env(&[(
        "PIGEON_LISTEN",
        "mqtt://127.0.0.1:0, ws://127.0.0.1:0/mqtt,",
    )])
    .unwrap();
    let kinds: Vec<_> = config.listeners.iter().map(|l| l.kind).collect();
    assert_eq!(kinds, [ListenerKind::Tcp, ListenerKind::Ws]);
    let config = env(&[("PIGEON_LISTEN", r#"["mqtt://127.0.0.1:0"]"#)]).unwrap();
    assert_eq!(config.listeners[0].url(), "mqtt://127.0.0.1:0");
    // One URL is a list of one.
    let config = env(&[("PIGEON_LISTEN", "ws://127.0.0.1:0/x")]).unwrap();
    assert_eq!(config.listeners.len(), 1);
}

#[test]
fn listener_tables_take_double_underscores_and_an_index() {
    let config = env(&[
        ("PIGEON_LISTENERS__1__KIND", "tcp"),
        ("PIGEON_LISTENERS__1__PORT", "0"),
        ("PIGEON_LISTENERS__1__PROXY_PROTOCOL", "true"),
        ("PIGEON_LISTENERS__1__NAME", "123"),
        ("PIGEON_LISTENERS__0__KIND", "ws"),
        ("PIGEON_LISTENERS__0__PORT", "8080"),
        ("PIGEON_LISTENERS__0__HOST", "127.0.0.1"),
        ("PIGEON_LISTENERS__0__PATH", "/ws"),
        ("PIGEON_LISTENERS__0__MAX_CONNECTIONS", "5"),
    ])
    .unwrap();
    let [ws, tcp] = &config.listeners[..] else {
        panic!("{:?}", config.listeners)
    };
    assert_eq!(ws.url(), "ws://127.0.0.1:8080/ws");
    assert_eq!(ws.max_connections, Some(5));
    assert_eq!(
        (tcp.kind, tcp.proxy_protocol, tcp.name.as_deref()),
        (ListenerKind::Tcp, Some(true), Some("123"))
    );
    // The same, written whole as TOML.
    let config = env(&[("PIGEON_LISTENERS", r#"[{kind = "ws", port = 8080}]"#)]).unwrap();
    assert_eq!(
        config.listeners,
        [Listener::new(ListenerKind::Ws, "0.0.0.0", 8080)]
    );
}

#[test]
fn bad_listener_variables_are_named() {
    assert_eq!(
        env_error(&[("PIGEON_LISTENERS__0__KIND", "ws")]),
        "invalid environment variable PIGEON_LISTENERS__0: missing field `port` (a listener needs KIND and PORT)"
    );
    assert_eq!(
        env_error(&[("PIGEON_LISTENERS__X__PORT", "1")]),
        "invalid environment variable PIGEON_LISTENERS__X__PORT: `X` is not a listener index (0, 1, ...)"
    );
    assert_eq!(
        env_error(&[("PIGEON_LISTENERS__0", "1")]),
        "invalid environment variable PIGEON_LISTENERS__0: expected PIGEON_LISTENERS__<N>__<FIELD>, e.g. PIGEON_LISTENERS__0__PORT"
    );
    assert_eq!(
        env_error(&[("PIGEON_PORT__0", "1")]),
        "invalid environment variable PIGEON_PORT__0: PIGEON_PORT takes no nested keys (only PIGEON_LISTENERS__<N>__<FIELD> has levels)"
    );
    let err = env_error(&[("PIGEON_LISTENERS__0__COLOUR", "blue")]);
    assert!(
        err.starts_with(
            "invalid value for PIGEON_LISTENERS__0__COLOUR: blue (unknown field `colour`"
        ),
        "{err}"
    );
    assert_eq!(
        env_error(&[("PIGEON_LISTENERS__0__PORT", "x")]),
        r#"invalid value for PIGEON_LISTENERS__0__PORT: x (invalid type: string "x", expected u16)"#
    );
    let err = env_error(&[
        ("PIGEON_LISTENERS", "[]"),
        ("PIGEON_LISTENERS__0__PORT", "1"),
    ]);
    assert!(err.contains("use one form"), "{err}");
}

#[test]
fn a_file_range_error_names_the_file() {
    let file = temp_file("file_range", "pigeon.toml", "queue_limit = 0\n");
    let err =
        Config::from_args_and_env(["pigeon", "--config", file.to_str().unwrap()], [("A", "B")])
            .unwrap_err()
            .to_string();
    assert_eq!(
        err,
        format!(
            "invalid value for --queue-limit / queue_limit in {}: 0 (must be at least 1)",
            file.display()
        )
    );
}

#[test]
fn check_config_shows_every_key_and_hides_the_token() {
    let file = temp_file(
        "check_every_key",
        "pigeon.toml",
        "port = 1999\nadmin_token = \"s3cret\"\nmax_inflight = 7\n",
    );
    let config = Config::from_file_and_env(&file, [("PIGEON_QUEUE_LIMIT", "9")]).unwrap();
    let text = config.to_toml();
    for key in KEYS {
        let shown = text
            .lines()
            .any(|l| l.starts_with(&format!("{key} = ")) || l.starts_with(&format!("# {key}")));
        assert!(shown, "{key} missing:\n{text}");
    }
    for line in [
        "port = 1999",
        "queue_limit = 9",
        "max_inflight = 7",
        "concurrency = 100",
        "admin_token = \"***\"",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    assert!(!text.contains("s3cret"));
}

#[test]
fn check_config_output_reads_back_as_the_same_configuration() {
    let acl = temp_file("round_trip", "site.acl", "topic read #\n");
    let file = temp_file(
        "round_trip",
        "pigeon.toml",
        "port = 0\nhost = \"127.0.0.1\"\nacl_file = \"site.acl\"\nlisten = [\"ws://127.0.0.1:0/mqtt\"]\n\
         durability = \"25ms\"\npersistence = \"redb:/tmp/x.redb\"\nhttp = \"127.0.0.1:0\"\n\n\
         [[listeners]]\nkind = \"tcp\"\nport = 0\nproxy_protocol = true\nname = \"lb\"\n",
    );
    let config = Config::from_file_and_env(&file, [("PIGEON_MAXIMUM_QOS", "1")]).unwrap();
    assert_eq!(
        config.listeners.len(),
        3,
        "host:port, listen, [[listeners]]"
    );
    let text = config.to_toml();
    let again = Config::from_toml_str(&text, "shown.toml".as_ref()).unwrap();
    // All the same but `host` and `port`, unused beside listeners (and commented out).
    let bound = |text: &str| -> Vec<String> {
        let unused = |l: &&str| l.starts_with("# host = ") || l.starts_with("# port = ");
        text.lines()
            .filter(|l| !unused(l))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(bound(&again.to_toml()), bound(&text));
    assert_eq!(again.listeners, config.listeners);
    assert_eq!(again.acl_file.as_deref(), Some(acl.as_path()));
    assert_eq!(again.maximum_qos, QoS::AtLeastOnce);
}

#[test]
fn check_config_errors_name_the_file_the_key_or_the_variable() {
    let file = temp_file("check_errors", "bad_key.toml", "queue_limt = 1\n");
    let err = Config::from_file_and_env(&file, [("A", "B")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown key `queue_limt`") && err.contains("bad_key.toml"),
        "{err}"
    );
    let file = temp_file("check_errors", "bad_value.toml", "port = \"x\"\n");
    let err = Config::from_file_and_env(&file, [("A", "B")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--port / port in") && err.contains("bad_value.toml"),
        "{err}"
    );
    let file = temp_file(
        "check_errors",
        "no_acl.toml",
        "acl_file = \"missing.acl\"\n",
    );
    let err = Config::from_file_and_env(&file, [("A", "B")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("acl_file") && err.contains("missing.acl"),
        "{err}"
    );
    let file = temp_file("check_errors", "good.toml", "port = 0\n");
    let err = Config::from_file_and_env(&file, [("PIGEON_PORT", "x")])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("invalid value for PIGEON_PORT: x"), "{err}");
}
