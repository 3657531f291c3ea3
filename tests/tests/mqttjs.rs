//! MQTT.js (npm's `mqtt`, the client web and Node applications use) from Node
//! over `ws://` and `wss://`: it connects, subscribes, gets its own message back
//! and its messages reach a rumqttc subscriber on plain TCP. The script is
//! tests/js/mqttjs_client.js; `npm ci` in tests/js (scripts/test) installs MQTT.js.

use std::time::Duration;

use pigeon::{config::Listener, hooks::ListenerKind, BrokerHandle};
use pigeon_tests::{js_dir, pki::Pki, require_node_package, run_tool, Mqtt, NODE};
use rumqttc::QoS;
use serde_json::Value;

/// A broker with plain TCP, `ws://…/mqtt` and `wss://…/mqtt` listeners on 127.0.0.1.
async fn start(pki: &Pki) -> BrokerHandle {
    let config = pigeon::Config {
        listeners: vec![
            Listener::new(ListenerKind::Tcp, "127.0.0.1", 0),
            Listener::new(ListenerKind::Ws, "127.0.0.1", 0),
            Listener::new(ListenerKind::Wss, "127.0.0.1", 0),
        ],
        cert: Some(pki.server_cert.clone()),
        key: Some(pki.server_key.clone()),
        ..pigeon_tests::config()
    };
    pigeon::Broker::start(config, pigeon::hooks::Hooks::none())
        .await
        .expect("broker starts")
}

/// Runs tests/js/mqttjs_client.js with `args`; returns its exit status, the
/// parsed JSON line it printed (on success) and its stderr.
async fn mqttjs(args: &[&str]) -> (bool, Option<Value>, String) {
    require_node_package("mqtt");
    let script = js_dir().join("mqttjs_client.js");
    let mut all = vec![script.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    let out = run_tool("node", &all, NODE, Duration::from_secs(30)).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok());
    if out.status.success() && json.is_none() {
        panic!("mqttjs_client.js printed no JSON:\n{stdout}\n{stderr}");
    }
    (out.status.success(), json, stderr)
}

/// Asserts MQTT.js connected, was granted QoS 1 and got its message back.
fn assert_echoed(report: &Value, topic: &str) {
    assert_eq!(report["connack"]["returnCode"], 0, "{report}");
    assert_eq!(report["connack"]["sessionPresent"], false, "{report}");
    assert_eq!(
        report["granted"],
        serde_json::json!([{ "topic": topic, "qos": 1 }]),
        "{report}"
    );
    assert_eq!(
        report["received"],
        serde_json::json!([{
            "topic": topic, "payload": "hello from mqtt.js", "qos": 1, "retain": false
        }]),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqttjs_from_node_over_ws_and_wss_reaches_a_tcp_subscriber() {
    let pki = Pki::generate("mqttjs");
    let broker = start(&pki).await;
    let tcp = broker.addr_of(ListenerKind::Tcp).expect("tcp listener");
    let ws = broker.addr_of(ListenerKind::Ws).expect("ws listener");
    let wss = broker.addr_of(ListenerKind::Wss).expect("wss listener");

    let mut watcher = Mqtt::connect(tcp, "tcp-watcher").await;
    watcher.subscribe("from/mqttjs/#", QoS::AtLeastOnce).await;

    // MQTT 3.1.1 over ws://.
    let url = format!("ws://127.0.0.1:{}/mqtt", ws.port());
    let (ok, report, stderr) = mqttjs(&[
        &url,
        "--topic",
        "js/ws/echo",
        "--id",
        "mqttjs-ws",
        "--version",
        "4",
        "--forward",
        "from/mqttjs/ws",
    ])
    .await;
    assert!(ok, "MQTT.js over {url} failed:\n{stderr}");
    let report = report.expect("report");
    assert_echoed(&report, "js/ws/echo");
    let msg = watcher.recv().await;
    assert_eq!(msg.topic, "from/mqttjs/ws");
    assert_eq!(&msg.payload[..], b"hello from mqtt.js");

    // MQTT 5 over wss://, trusting the test CA.
    let url = format!("wss://127.0.0.1:{}/mqtt", wss.port());
    let ca = pki.ca.to_str().expect("utf-8 path");
    let (ok, report, stderr) = mqttjs(&[
        &url,
        "--topic",
        "js/wss/echo",
        "--id",
        "mqttjs-wss",
        "--version",
        "5",
        "--ca",
        ca,
        "--forward",
        "from/mqttjs/wss",
    ])
    .await;
    assert!(ok, "MQTT.js over {url} failed:\n{stderr}");
    let report = report.expect("report");
    assert_eq!(report["protocolVersion"], 5);
    assert_echoed(&report, "js/wss/echo");
    let msg = watcher.recv().await;
    assert_eq!(msg.topic, "from/mqttjs/wss");
    assert_eq!(&msg.payload[..], b"hello from mqtt.js");

    watcher.assert_silent(200).await;
    watcher.disconnect().await;
    broker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqttjs_over_wss_refuses_a_certificate_it_does_not_trust() {
    let pki = Pki::generate("mqttjs-untrusted");
    let broker = start(&pki).await;
    let wss = broker.addr_of(ListenerKind::Wss).expect("wss listener");
    let url = format!("wss://127.0.0.1:{}/mqtt", wss.port());
    // No --ca: Node's default roots do not include the test CA.
    let (ok, _, stderr) = mqttjs(&[&url, "--topic", "js/untrusted"]).await;
    assert!(!ok, "MQTT.js accepted an untrusted certificate");
    assert!(
        stderr.contains("certificate"),
        "expected a certificate error, got:\n{stderr}"
    );
    // The broker is unharmed: the same client with the CA gets through.
    let ca = pki.ca.to_str().expect("utf-8 path");
    let (ok, report, stderr) = mqttjs(&[&url, "--topic", "js/trusted", "--ca", ca]).await;
    assert!(ok, "MQTT.js with the CA failed:\n{stderr}");
    assert_echoed(&report.expect("report"), "js/trusted");
    broker.close().await;
}
