//! A browser speaks MQTT to Pigeon: headless Chromium (Debian's
//! `/usr/bin/chromium`, driven by playwright-core from tests/js/browser.js)
//! loads tests/js/page.html from a small HTTP responder in this test. The page
//! connects with MQTT.js's browser bundle over `ws://`, subscribes and writes
//! each message it receives into the page; `mosquitto_pub` publishes over
//! plain TCP and the test asserts on the text the page shows. A screenshot of
//! the page is saved as target/browser-test.png.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use pigeon::{config::Listener, hooks::ListenerKind, BrokerHandle};
use pigeon_tests::{
    js_dir, require_node_package, run_tool, CHROMIUM, MOSQUITTO_CLIENTS, NODE, WAIT,
};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

const CHROMIUM_PATH: &str = "/usr/bin/chromium";

/// A broker with plain TCP and `ws://…/mqtt` listeners on 127.0.0.1.
async fn start() -> BrokerHandle {
    let config = pigeon::Config {
        listeners: vec![
            Listener::new(ListenerKind::Tcp, "127.0.0.1", 0),
            Listener::new(ListenerKind::Ws, "127.0.0.1", 0),
        ],
        ..pigeon_tests::config()
    };
    pigeon::Broker::start(config, pigeon::hooks::Hooks::none())
        .await
        .expect("broker starts")
}

/// Serves `GET /` (tests/js/page.html) and `GET /mqtt.min.js` (MQTT.js's
/// browser bundle) on an ephemeral loopback port, one request per connection.
async fn serve_page() -> SocketAddr {
    let page = std::fs::read(js_dir().join("page.html")).expect("tests/js/page.html");
    let bundle_path = js_dir().join("node_modules/mqtt/dist/mqtt.min.js");
    let bundle = std::fs::read(&bundle_path)
        .unwrap_or_else(|e| panic!("{} ({e}): install {NODE}", bundle_path.display()));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
    let addr = listener.local_addr().expect("http addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (page, bundle) = (page.clone(), bundle.clone());
            tokio::spawn(async move {
                let _ = respond(stream, &page, &bundle).await;
            });
        }
    });
    addr
}

async fn respond(mut stream: TcpStream, page: &[u8], bundle: &[u8]) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut chunk = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&chunk[..n]);
    }
    let request = String::from_utf8_lossy(&request);
    let target = request
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("GET "))
        .and_then(|rest| rest.split(' ').next())
        .map(|t| t.split('?').next().unwrap_or(t));
    let (status, kind, body): (&str, &str, &[u8]) = match target {
        Some("/") => ("200 OK", "text/html; charset=utf-8", page),
        Some("/mqtt.min.js") => ("200 OK", "text/javascript", bundle),
        _ => ("404 Not Found", "text/plain", b"not found"),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

fn screenshot_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&target).expect("target folder");
    target.join("browser-test.png")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_a_message_published_by_mosquitto_pub() {
    require_node_package("mqtt");
    require_node_package("playwright-core");
    assert!(
        Path::new(CHROMIUM_PATH).is_file(),
        "{CHROMIUM_PATH} not found: install {CHROMIUM}"
    );
    let broker = start().await;
    let tcp = broker.addr_of(ListenerKind::Tcp).expect("tcp listener");
    let ws = broker.addr_of(ListenerKind::Ws).expect("ws listener");
    let http = serve_page().await;

    let topic = "browser/news";
    let page_url = format!(
        "http://127.0.0.1:{}/?ws=ws://127.0.0.1:{}/mqtt&topic={topic}",
        http.port(),
        ws.port()
    );
    let screenshot = screenshot_path();
    let _ = std::fs::remove_file(&screenshot);
    let script = js_dir().join("browser.js");
    let args = [
        script.to_str().expect("utf-8 path"),
        &page_url,
        "--expect",
        "hello from mosquitto_pub",
        "--screenshot",
        screenshot.to_str().expect("utf-8 path"),
    ];
    let browser = run_tool("node", &args, NODE, Duration::from_secs(60));

    // Once the page's MQTT.js has subscribed, mosquitto_pub publishes over TCP.
    let publish = async {
        let t0 = Instant::now();
        while !broker.subscriptions().iter().any(|(_, f, _)| f == topic) {
            assert!(
                t0.elapsed() < Duration::from_secs(40),
                "the page never subscribed to {topic}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let port = tcp.port().to_string();
        let args = [
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            topic,
            "-q",
            "1",
            "-m",
            "hello from mosquitto_pub",
        ];
        let out = run_tool("mosquitto_pub", &args, MOSQUITTO_CLIENTS, WAIT).await;
        assert!(out.status.success(), "mosquitto_pub: {out:?}");
    };
    let (out, ()) = tokio::join!(browser, publish);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("browser.js printed no JSON:\n{stdout}\n{stderr}"));
    assert!(
        out.status.success(),
        "the page did not show the message: {report}\n{stderr}"
    );
    assert_eq!(report["title"], "Pigeon over WebSocket", "{report}");
    assert_eq!(report["status"], "subscribed", "{report}");
    assert_eq!(
        report["messages"],
        serde_json::json!(["browser/news: hello from mosquitto_pub"]),
        "{report}"
    );
    assert!(
        std::fs::metadata(&screenshot).is_ok_and(|m| m.len() > 1000),
        "no screenshot at {}",
        screenshot.display()
    );
    // Closing the browser closes its WebSocket: the page's session ends.
    let t0 = Instant::now();
    while !broker.clients().is_empty() {
        assert!(
            t0.elapsed() < WAIT,
            "still connected: {:?}",
            broker.clients()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    broker.close().await;
}
