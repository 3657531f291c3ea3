//! The `pigeon` binary's configuration beyond flags, as an operator uses it:
//! `PIGEON_*` environment variables (between the config file and the flags),
//! and `pigeon check-config FILE`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{run_to_end_with_env, temp_file, Running, PATIENCE};

/// CONNECT, MQTT 3.1.1, clean session, keep alive 60 s, client id `raw-1`.
const CONNECT: &[u8] = &[
    0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 5, b'r', b'a', b'w', b'-', b'1',
];

#[test]
fn environment_variables_configure_the_running_broker_and_flags_win() {
    let file = temp_file("env_run", "pigeon.toml", "host = \"0.0.0.0\"\nport = 1\n");
    let mut running = Running::start_with_env(
        &["--config", file.to_str().unwrap(), "--port", "0"],
        &[
            ("PIGEON_HOST", "127.0.0.1"), // over the file's host
            ("PIGEON_PORT", "1"),         // under the flag
            ("PIGEON_ALLOW_ANONYMOUS", "false"),
            ("PIGEON_QUEUE_LIMT", "7"), // a typo: warned about, ignored
        ],
    );
    assert!(running.addr.ip().is_loopback(), "{}", running.addr);
    assert_ne!(running.addr.port(), 1);
    // PIGEON_ALLOW_ANONYMOUS=false: a client without a username is refused (3.1.1: 5).
    let mut stream = TcpStream::connect(running.addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(CONNECT).unwrap();
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x05]);
    assert!(
        running
            .stderr
            .iter()
            .any(|l| l.contains(
                "unknown environment variable PIGEON_QUEUE_LIMT ignored (did you mean PIGEON_QUEUE_LIMIT?)"
            )),
        "{}",
        running.stderr.join("\n")
    );
    assert_eq!(running.stop_with("TERM").code(), Some(0));
}

#[test]
fn pigeon_config_names_the_config_file_of_the_running_broker() {
    let file = temp_file(
        "env_named",
        "pigeon.toml",
        "host = \"127.0.0.1\"\nport = 0\nallow_anonymous = false\n",
    );
    let mut running = Running::start_with_env(&[], &[("PIGEON_CONFIG", file.to_str().unwrap())]);
    assert!(running.addr.ip().is_loopback(), "{}", running.addr);
    // The file's allow_anonymous = false: a client without a username is refused.
    let mut stream = TcpStream::connect(running.addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(CONNECT).unwrap();
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x05]);
    assert!(
        !running.stderr.iter().any(|l| l.contains("PIGEON_CONFIG")),
        "not an unknown variable: {}",
        running.stderr.join("\n")
    );
    assert_eq!(running.stop_with("TERM").code(), Some(0));

    let bad = temp_file("env_named_bad", "bad.toml", "queue_limit = \"abc\"\n");
    let run = run_to_end_with_env(&[], &[("PIGEON_CONFIG", bad.to_str().unwrap())]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("bad.toml"), "{}", run.stderr);
}

#[test]
fn a_bad_environment_value_stops_startup_naming_the_variable() {
    let run = run_to_end_with_env(&["--port", "0"], &[("PIGEON_QUEUE_LIMIT", "abc")]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(r#"invalid value for PIGEON_QUEUE_LIMIT: abc (invalid type: string "abc", expected usize)"#),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("listening on"), "{}", run.stderr);
    let run = run_to_end_with_env(&["--port", "0"], &[("PIGEON_LISTENERS__0__KIND", "ws")]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("PIGEON_LISTENERS__0"), "{}", run.stderr);
}

#[test]
fn check_config_prints_the_merged_configuration_and_it_reads_back() {
    let acl = temp_file("check_good", "site.acl", "topic read #\n");
    let file = temp_file(
        "check_good",
        "pigeon.toml",
        "port = 1999\nacl_file = \"site.acl\"\nadmin_token = \"s3cret\"\nmax_inflight = 7\n",
    );
    let run = run_to_end_with_env(
        &["check-config", file.to_str().unwrap()],
        &[("PIGEON_QUEUE_LIMIT", "9"), ("PIGEON_MAX_INFLIGHT", "8")],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let acl_line = format!("acl_file = \"{}\"", acl.display());
    for line in [
        "port = 1999",       // the file
        "queue_limit = 9",   // the environment
        "max_inflight = 8",  // the environment over the file
        "concurrency = 100", // a default
        "shutdown_timeout = 5000",
        "admin_token = \"***\"", // a secret
        "# server_reference: not set",
        acl_line.as_str(), // relative to the file's folder
    ] {
        assert!(
            run.stdout.lines().any(|l| l == line),
            "{line:?} missing:\n{}",
            run.stdout
        );
    }
    assert!(!run.stdout.contains("s3cret"), "{}", run.stdout);
    assert!(!run.stderr.contains("listening on"), "{}", run.stderr);
    // The output is a config file that gives the same configuration.
    let shown = temp_file("check_good", "shown.toml", &run.stdout);
    let again = run_to_end_with_env(&["check-config", shown.to_str().unwrap()], &[]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(again.stdout, run.stdout);
}

/// Runs `check-config` on a file holding `text`; checks it failed with 2 and
/// names every one of `needles`.
fn check_fails(test: &str, text: &str, env: &[(&str, &str)], needles: &[&str]) {
    let file = temp_file(test, "pigeon.toml", text);
    let run = run_to_end_with_env(&["check-config", file.to_str().unwrap()], env);
    assert_eq!(
        run.code,
        Some(2),
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    for needle in needles {
        assert!(
            run.stderr.contains(needle),
            "{needle:?} not in:\n{}",
            run.stderr
        );
    }
}

#[test]
fn check_config_names_a_bad_key_a_bad_value_a_missing_acl_file_and_a_bad_variable() {
    let file = |test: &str| {
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("pigeon-{test}"))
            .join("pigeon.toml")
            .display()
            .to_string()
    };
    check_fails(
        "check_bad_key",
        "queue_limt = 1\n",
        &[],
        &[
            "unknown key `queue_limt`",
            "did you mean `queue_limit`",
            &file("check_bad_key"),
        ],
    );
    check_fails(
        "check_bad_value",
        "port = \"x\"\n",
        &[],
        &["--port / port in", &file("check_bad_value")],
    );
    check_fails(
        "check_bad_range",
        "queue_limit = 0\n",
        &[],
        &[
            "--queue-limit / queue_limit in",
            &file("check_bad_range"),
            "must be at least 1",
        ],
    );
    check_fails(
        "check_no_acl",
        "acl_file = \"missing.acl\"\n",
        &[],
        &["--acl-file / acl_file", "missing.acl"],
    );
    check_fails(
        "check_bad_var",
        "port = 0\n",
        &[("PIGEON_MAXIMUM_QOS", "3")],
        &["invalid value for PIGEON_MAXIMUM_QOS: 3 (expected 0, 1 or 2)"],
    );
    // Not a file at all.
    let run = run_to_end_with_env(&["check-config", "/nonexistent/pigeon.toml"], &[]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .contains("cannot read config file /nonexistent/pigeon.toml"),
        "{}",
        run.stderr
    );
}
