//! MQTT 5.0 through a third-party client: Eclipse Paho (python paho-mqtt 2.x)
//! runs `tests/python/v5_paho.py` against an in-process broker — properties
//! passed through, inbound topic aliases, subscription identifiers, No Local,
//! shared subscriptions, session expiry, PUBACK 0x10 and 0x99, CONNACK properties.
//!
//! Needs a Python with paho-mqtt 2.x: `scripts/test` installs it into `.venv` and
//! names it in `PIGEON_PYTHON`; see [`pigeon_tests::python`] for the fallbacks. Without it this
//! test fails saying so.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use pigeon_tests::{config, start_with};

/// The whole script takes a few seconds; this only guards against a hang.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_v5_client_checks_pass() {
    let broker = start_with(pigeon::Config {
        topic_alias_maximum: 10,
        receive_maximum: 50,
        ..config()
    })
    .await;
    let port = broker.local_addr().port().to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/v5_paho.py");
    let args = [
        script,
        "--port",
        &port,
        "--topic-alias-maximum",
        "10",
        "--receive-maximum",
        "50",
    ];
    let python = pigeon_tests::python();
    let mut child = Command::new(&python)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): run scripts/test, which installs paho-mqtt 2.x, \
                 or set PIGEON_PYTHON to a python with it",
                python
            )
        });

    // Polled so the broker keeps running on this runtime while python talks to it.
    let t0 = Instant::now();
    while child.try_wait().expect("wait for python").is_none() {
        if t0.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = child.wait_with_output().expect("python output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "v5_paho.py {}:\n{stdout}\n{stderr}",
        if t0.elapsed() > SCRIPT_TIMEOUT {
            "timed out".to_string()
        } else {
            out.status.to_string()
        }
    );
    // Every check ran (none skipped by an early exit).
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        9,
        "{stdout}"
    );
}
