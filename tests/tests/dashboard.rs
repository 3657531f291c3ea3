//! The live dashboard (issue #14) in a browser: headless Chromium (Debian's
//! `/usr/bin/chromium`, driven by playwright-core from tests/js/dashboard.js)
//! opens the page the broker itself serves on its `http` listener, with the
//! admin token in the URL fragment. While a rumqttc client publishes on
//! `sensors/1/temp` every 20 ms, the page must list that client, show a
//! message rate above zero and, once `sensors/#` is watched in the topic
//! monitor, show its messages live. A second client whose id is HTML markup is
//! shown as text and disconnected with its "disconnect" button. A screenshot
//! of the whole page is saved as target/dashboard.png.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use pigeon::hooks::Hooks;
use pigeon_tests::{js_dir, require_node_package, run_tool, Mqtt, CHROMIUM, NODE, WAIT};
use rumqttc::QoS;
use serde_json::Value;

const CHROMIUM_PATH: &str = "/usr/bin/chromium";
const TOKEN: &str = "t0ken";
const SENSOR: &str = "dash-sensor-1";
/// Markup as a client id: the page must show it as text, never parse it.
const VICTIM: &str = "dash-<img src=x onerror=alert(1)>";
const TOPIC: &str = "sensors/1/temp";
const NOTE: &str = "<b>warm</b>";

fn screenshot_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&target).expect("target folder");
    target.join("dashboard.png")
}

/// The cells of the clients table row of `id`, as the page showed them.
fn client_cells<'a>(report: &'a Value, id: &str) -> Option<&'a Vec<Value>> {
    report["client_cells"]
        .as_array()?
        .iter()
        .filter_map(Value::as_array)
        .find(|cells| cells.first().and_then(Value::as_str) == Some(id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_clients_rates_and_live_messages() {
    require_node_package("playwright-core");
    assert!(
        Path::new(CHROMIUM_PATH).is_file(),
        "{CHROMIUM_PATH} not found: install {CHROMIUM}"
    );
    let config = pigeon::Config {
        http: Some("127.0.0.1:0".parse().unwrap()),
        admin_token: Some(TOKEN.into()),
        ..pigeon_tests::config()
    };
    let broker = pigeon::Broker::start(config, Hooks::none())
        .await
        .expect("broker starts");
    let mqtt = broker.local_addr();
    let http = broker.http_addr().expect("the http listener is bound");

    let mut sensor = Mqtt::connect(mqtt, SENSOR).await;
    sensor.subscribe("sensors/#", QoS::AtMostOnce).await;
    let victim = Mqtt::connect(mqtt, VICTIM).await;
    let publisher = sensor.client.clone();
    let publishing = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(20));
        for n in 0u64.. {
            every.tick().await;
            let payload = format!(r#"{{"n":{n},"celsius":21.5,"note":"{NOTE}"}}"#);
            if publisher
                .publish(TOPIC, QoS::AtMostOnce, false, payload)
                .await
                .is_err()
            {
                break;
            }
        }
    });

    let url = format!("http://127.0.0.1:{}/#token={TOKEN}", http.port());
    let screenshot = screenshot_path();
    let _ = std::fs::remove_file(&screenshot);
    let script = js_dir().join("dashboard.js");
    let args = [
        script.to_str().expect("utf-8 path"),
        &url,
        "--client",
        SENSOR,
        "--search",
        "dash-sensor",
        "--filter",
        "sensors/#",
        "--topic",
        TOPIC,
        "--disconnect",
        VICTIM,
        "--screenshot",
        screenshot.to_str().expect("utf-8 path"),
    ];
    let out = run_tool("node", &args, NODE, Duration::from_secs(120)).await;
    publishing.abort();

    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("dashboard.js printed no JSON:\n{stdout}\n{stderr}"));
    assert!(
        out.status.success(),
        "the dashboard did not show what it should: {}\n{report}\n{stderr}",
        report["failed"]
    );
    let steps = &report["steps"];

    // The clients table lists the sensor, with what the broker knows of it.
    assert_eq!(report["title"], "Pigeon dashboard", "{report}");
    assert_eq!(report["status"], "connected", "{report}");
    assert_eq!(steps["client_row"][0], SENSOR, "{report}");
    let cells = client_cells(&report, SENSOR).unwrap_or_else(|| panic!("no {SENSOR}: {report}"));
    assert_eq!(cells[2], "3.1.1", "protocol: {report}");
    assert!(
        cells[3]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "address: {report}"
    );
    assert_eq!(cells[4], "1", "subscriptions: {report}");
    // The search box narrows the table to a client id prefix.
    assert_eq!(steps["search"], serde_json::json!([SENSOR]), "{report}");
    assert!(
        report["subscriptions"]
            .as_array()
            .is_some_and(|s| s.contains(&serde_json::json!([SENSOR, "sensors/#"]))),
        "subscriptions table: {report}"
    );

    // 50 messages a second in (and as many out, to the sensor itself).
    assert!(
        steps["rate_in"].as_f64().is_some_and(|r| r > 0.0),
        "rate in: {report}"
    );
    assert!(
        report["connections"].as_str().is_some_and(|c| c == "2"),
        "{report}"
    );
    assert!(
        report["drops"]
            .as_object()
            .is_some_and(|d| d.contains_key("no_subscribers")),
        "drops: {report}"
    );

    // The monitor shows the sensor's messages, payload as text.
    let first = steps["monitor_row"]
        .as_array()
        .unwrap_or_else(|| panic!("no monitor row: {report}"));
    assert_eq!(first[1], TOPIC, "{report}");
    assert!(
        first[5].as_str().is_some_and(|p| p.contains(NOTE)),
        "payload: {report}"
    );
    assert!(
        report["monitor_rows"]
            .as_u64()
            .is_some_and(|n| (1..=200).contains(&n)),
        "{report}"
    );

    // Markup from clients stays text: the id and the payload's tags show as
    // such, no element was made of them, no script of them ran.
    assert!(
        client_cells(&report, VICTIM).is_some(),
        "{VICTIM} not shown as text: {report}"
    );
    assert_eq!(
        report["foreign_elements"],
        serde_json::json!([]),
        "{report}"
    );
    assert_eq!(
        report["dialogs"],
        serde_json::json!([format!("confirm: Disconnect {VICTIM}?")]),
        "{report}"
    );
    assert_eq!(report["token_in_address_bar"], false, "{report}");
    let errors: Vec<_> = report["console"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|l| l.starts_with("pageerror") || l.starts_with("error"))
        .collect();
    assert!(errors.is_empty(), "errors in the page: {errors:?}");

    // Its "disconnect" button disconnected the victim.
    assert_eq!(steps["disconnected"], true, "{report}");
    let t0 = Instant::now();
    while broker.clients().iter().any(|c| c == VICTIM) {
        assert!(t0.elapsed() < WAIT, "{VICTIM} still connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(broker.clients().iter().any(|c| c == SENSOR));

    assert!(
        std::fs::metadata(&screenshot).is_ok_and(|m| m.len() > 1000),
        "no screenshot at {}",
        screenshot.display()
    );
    victim.kill();
    sensor.disconnect().await;
    broker.close().await;
}
