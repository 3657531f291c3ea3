//! The `pigeon` binary refuses bad options and config files at startup, with
//! exit code 2 and a message naming the option, before binding any socket.

mod common;

use common::{run_to_end, temp_file};

/// Every option of issues 3 and 4, as the binary's flags.
const FLAGS: &[&str] = &[
    "--config",
    "--host",
    "--port",
    "--id",
    "--concurrency",
    "--queue-limit",
    "--max-clients-id-length",
    "--connect-timeout",
    "--heartbeat-interval",
    "--acl-file",
    "--max-packet-size",
    "--max-queued-messages",
    "--max-inflight",
    "--receive-maximum",
    "--max-keepalive",
    "--topic-alias-maximum",
    "--maximum-qos",
    "--retain-available",
    "--wildcard-subscription-available",
    "--subscription-identifiers-available",
    "--shared-subscription-available",
    "--max-session-expiry-interval",
    "--server-reference",
    "--listen",
    "--cert",
    "--key",
    "--ca-file",
    "--require-certificate",
    "--use-identity-as-username",
];

/// Runs with `args` and checks it stopped with code 2, naming `needle`, without listening.
fn refused(args: &[&str], needle: &str) -> String {
    let run = run_to_end(args);
    assert_eq!(
        run.code,
        Some(2),
        "exit code for {args:?}; stderr:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(needle),
        "stderr for {args:?} should name {needle:?}:\n{}",
        run.stderr
    );
    assert!(!run.stderr.contains("listening on"), "{}", run.stderr);
    run.stderr
}

#[test]
fn help_lists_every_option_with_a_description() {
    let run = run_to_end(&["--help"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().map(str::trim).collect();
    for flag in FLAGS {
        let at = lines
            .iter()
            .position(|l| l.starts_with(&format!("{flag} ")))
            .unwrap_or_else(|| panic!("{flag} missing from --help:\n{}", run.stdout));
        // The description follows on the same line or (clap's long layout) the next.
        let same_line = lines[at].split_whitespace().count() > 2;
        let next_line = lines
            .get(at + 1)
            .is_some_and(|l| !l.is_empty() && !l.starts_with('-'));
        assert!(
            same_line || next_line,
            "{flag} has no description:\n{}",
            run.stdout
        );
    }
}

#[test]
fn unknown_flag_is_named() {
    refused(&["--queue-limt", "3"], "--queue-limt");
}

#[test]
fn value_of_the_wrong_type_names_the_flag() {
    refused(&["--port", "http"], "--port");
    refused(&["--port", "65536"], "--port");
    refused(&["--retain-available", "yes"], "--retain-available");
    refused(&["--connect-timeout", "-5"], "--connect-timeout");
}

#[test]
fn out_of_range_values_name_the_flag_and_the_key() {
    let stderr = refused(&["--maximum-qos", "3"], "--maximum-qos / maximum_qos");
    assert!(stderr.contains("expected 0, 1 or 2"), "{stderr}");
    refused(&["--queue-limit", "0"], "--queue-limit / queue_limit: 0");
    refused(&["--concurrency", "0"], "--concurrency / concurrency: 0");
    refused(
        &["--max-packet-size", "268435456"],
        "--max-packet-size / max_packet_size",
    );
    refused(
        &["--receive-maximum", "0"],
        "--receive-maximum / receive_maximum",
    );
}

#[test]
fn a_bad_option_stops_startup_even_with_a_valid_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
        .to_string();
    refused(
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--heartbeat-interval",
            "0",
        ],
        "--heartbeat-interval / heartbeat_interval",
    );
}

#[test]
fn unknown_config_key_is_named_with_the_file() {
    let file = temp_file("unknown_key", "pigeon.toml", "port = 0\nqueue_limt = 5\n");
    let stderr = refused(
        &["--config", file.to_str().unwrap()],
        "unknown key `queue_limt`",
    );
    assert!(stderr.contains("did you mean `queue_limit`"), "{stderr}");
    assert!(stderr.contains("pigeon.toml"), "{stderr}");
}

#[test]
fn config_value_of_the_wrong_type_names_the_key() {
    let file = temp_file("wrong_type", "pigeon.toml", "port = \"1883\"\n");
    refused(&["--config", file.to_str().unwrap()], "--port / port in");
    let file = temp_file("wrong_range", "pigeon.toml", "maximum_qos = 7\n");
    let stderr = refused(
        &["--config", file.to_str().unwrap()],
        "--maximum-qos / maximum_qos in ",
    );
    assert!(
        stderr.contains("pigeon.toml: 7 (expected 0, 1 or 2)"),
        "{stderr}"
    );
}

#[test]
fn config_file_that_is_missing_or_not_toml_is_reported() {
    refused(
        &["--config", "/nonexistent/pigeon.toml"],
        "/nonexistent/pigeon.toml",
    );
    let file = temp_file("not_toml", "pigeon.toml", "port: 1883\n");
    refused(&["--config", file.to_str().unwrap()], "is not valid TOML");
}

#[test]
fn malformed_acl_file_is_reported_with_its_line() {
    let acl = temp_file(
        "bad_acl",
        "site.acl",
        "user alice\ntopic readwrite alice/#\ntopic sometimes x\n",
    );
    let stderr = refused(
        &["--acl-file", acl.to_str().unwrap()],
        "--acl-file / acl_file",
    );
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("sometimes"), "{stderr}");
    refused(
        &["--acl-file", "/nonexistent/site.acl"],
        "/nonexistent/site.acl",
    );
}

#[test]
fn a_bad_certificate_file_is_named() {
    let cert = temp_file(
        "bad_cert",
        "server.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64!\n",
    );
    let key = temp_file("bad_cert", "server.key", "");
    let cert = cert.to_str().unwrap();
    let stderr = refused(
        &[
            "--listen",
            "mqtts://127.0.0.1:0",
            "--cert",
            cert,
            "--key",
            key.to_str().unwrap(),
        ],
        cert,
    );
    assert!(stderr.contains("--cert / cert"), "{stderr}");
}

#[test]
fn a_tls_listener_without_certificate_is_refused() {
    refused(&["--listen", "wss://127.0.0.1:0/mqtt"], "--cert");
    refused(&["--listen", "gopher://127.0.0.1:70"], "--listen");
}

#[test]
fn a_bad_store_stops_startup_naming_the_file() {
    refused(
        &["--persistence", "redb:/nonexistent/dir/store.redb"],
        "/nonexistent/dir",
    );
    let notes = temp_file("bad_store", "notes.txt", &"not a store\n".repeat(500));
    let spec = format!("redb:{}", notes.display());
    let stderr = refused(&["--persistence", &spec], "notes.txt");
    assert!(stderr.contains("--persistence"), "{stderr}");
    assert!(
        std::fs::read_to_string(&notes)
            .unwrap()
            .starts_with("not a store"),
        "the file is left as it was"
    );
    refused(
        &["--persistence", "sqlite:x"],
        "expected `memory`, `redb:PATH`, `redis://HOST:PORT[/DB]` or `rediss://HOST:PORT[/DB]` (TLS)",
    );
    refused(&["--durability", "sometimes"], "--durability / durability");
}
