//! The `pigeon` binary's graceful shutdown, as an operator sees it: on SIGTERM
//! an MQTT 5 client is told DISCONNECT 0x8B Server shutting down, the process
//! exits 0 within `--shutdown-timeout`, and with a durable store what was
//! acknowledged before the signal (even inside a commit window) is there
//! after the restart.

mod common;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use common::{Running, PATIENCE};

/// Sends SIGTERM off the async threads; the exit status and how long the
/// process took to exit after the signal.
async fn terminate(mut running: Running) -> (std::process::ExitStatus, Duration, Running) {
    tokio::task::spawn_blocking(move || {
        let sent = Instant::now();
        let status = running.stop_with("TERM");
        (status, sent.elapsed(), running)
    })
    .await
    .expect("SIGTERM thread")
}

#[tokio::test]
async fn sigterm_sends_mqtt5_clients_server_shutting_down_and_exits_0_within_the_timeout() {
    use rumqttc::v5::{
        mqttbytes::v5::{DisconnectReasonCode, Packet},
        AsyncClient, ConnectionError, Event, MqttOptions, StateError,
    };
    const TIMEOUT_MS: u64 = 3000;
    let timeout = TIMEOUT_MS.to_string();
    let running = Running::start(&[
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--shutdown-timeout",
        &timeout,
    ]);
    let mut options = MqttOptions::new("five", "127.0.0.1", running.addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    let (_client, mut events) = AsyncClient::new(options, 10);
    loop {
        match tokio::time::timeout(PATIENCE, events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => break,
            Ok(Ok(_)) => {}
            other => panic!("no CONNACK: {other:?}"),
        }
    }
    let stop = tokio::spawn(terminate(running));
    // rumqttc reports the server's DISCONNECT as the error that ends the connection.
    let reason = loop {
        match tokio::time::timeout(PATIENCE, events.poll()).await {
            Ok(Ok(_)) => {}
            Ok(Err(ConnectionError::MqttState(StateError::ServerDisconnect {
                reason_code,
                ..
            }))) => break reason_code,
            other => panic!("no DISCONNECT from the broker: {other:?}"),
        }
    };
    assert_eq!(reason, DisconnectReasonCode::ServerShuttingDown);
    assert_eq!(reason as u8, 0x8B);
    let (status, took, running) = stop.await.unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "stderr:\n{}",
        running.stderr.join("\n")
    );
    assert!(
        took < Duration::from_millis(TIMEOUT_MS),
        "exited {took:?} after SIGTERM; stderr:\n{}",
        running.stderr.join("\n")
    );
    assert!(
        running
            .stderr
            .iter()
            .any(|l| l.contains("SIGTERM received")),
        "{}",
        running.stderr.join("\n")
    );
}

fn store(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pigeon-sigterm-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("store.redb")
}

fn options(id: &str, running: &Running, clean: bool) -> rumqttc::MqttOptions {
    let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", running.addr.port());
    o.set_clean_session(clean);
    o.set_keep_alive(Duration::from_secs(30));
    o
}

/// Polls `events` until `pick` returns something.
async fn until<T>(
    events: &mut rumqttc::EventLoop,
    what: &str,
    mut pick: impl FnMut(rumqttc::Packet) -> Option<T>,
) -> T {
    loop {
        match tokio::time::timeout(PATIENCE, events.poll()).await {
            Ok(Ok(rumqttc::Event::Incoming(packet))) => {
                if let Some(found) = pick(packet) {
                    return found;
                }
            }
            Ok(Ok(_)) => {}
            other => panic!("waiting for {what}: {other:?}"),
        }
    }
}

/// A commit window far longer than the test: nothing reaches the disk by the
/// window; only the shutdown's commit can have saved the messages.
#[tokio::test]
async fn messages_queued_for_an_offline_session_before_sigterm_are_delivered_after_restart() {
    use rumqttc::{AsyncClient, Packet, QoS};
    let path = store("offline_queue");
    let spec = format!("redb:{}", path.display());
    let args = [
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--persistence",
        &spec,
        "--durability",
        "600000ms",
    ];
    let running = Running::start(&args);
    // A persistent subscriber, then gone: its messages queue offline.
    let (sub, mut events) = AsyncClient::new(options("sub", &running, false), 10);
    sub.subscribe("q/#", QoS::AtLeastOnce).await.unwrap();
    until(&mut events, "SUBACK", |p| {
        matches!(p, Packet::SubAck(_)).then_some(())
    })
    .await;
    sub.disconnect().await.unwrap();
    while let Ok(Ok(_)) = tokio::time::timeout(PATIENCE, events.poll()).await {}
    // Acknowledged by the broker (PUBACK) before the signal.
    let (publisher, mut events) = AsyncClient::new(options("pub", &running, true), 10);
    for n in 0..5 {
        publisher
            .publish("q/n", QoS::AtLeastOnce, false, n.to_string())
            .await
            .unwrap();
    }
    let mut acked = 0;
    while acked < 5 {
        until(&mut events, "PUBACK", |p| {
            matches!(p, Packet::PubAck(_)).then_some(())
        })
        .await;
        acked += 1;
    }
    let (status, _, running) = terminate(running).await;
    assert_eq!(
        status.code(),
        Some(0),
        "stderr:\n{}",
        running.stderr.join("\n")
    );
    drop(running);

    let running = Running::start(&args);
    let (_sub, mut events) = AsyncClient::new(options("sub", &running, false), 10);
    let mut got = Vec::new();
    while got.len() < 5 {
        let payload = until(&mut events, "the queued messages", |p| match p {
            Packet::Publish(p) => Some(p.payload),
            _ => None,
        })
        .await;
        got.push(String::from_utf8_lossy(&payload).into_owned());
    }
    assert_eq!(got, ["0", "1", "2", "3", "4"]);
    let (status, _, _) = terminate(running).await;
    assert_eq!(status.code(), Some(0));
}
