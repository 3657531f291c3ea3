//! The `pigeon` binary as an operator runs it: it serves MQTT on the address it
//! logs, honours its config file, flags and ACL file, and exits 0 on SIGINT/SIGTERM.

mod common;

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use common::{temp_file, Running, PATIENCE};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, SubscribeReasonCode};

/// CONNECT, MQTT 3.1.1, clean session, keep alive 60 s, client id `raw-1`.
const CONNECT: &[u8] = &[
    0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 5, b'r', b'a', b'w', b'-', b'1',
];

/// Connects over raw TCP and returns the CONNACK bytes.
fn raw_connack(running: &Running) -> [u8; 4] {
    let mut stream = TcpStream::connect(running.addr).expect("connect to pigeon");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(CONNECT).unwrap();
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).expect("read CONNACK");
    connack
}

#[test]
fn serves_mqtt_and_exits_0_on_sigterm() {
    let mut running = Running::start(&["--host", "127.0.0.1", "--port", "0"]);
    assert!(running.addr.ip().is_loopback());
    assert_ne!(
        running.addr.port(),
        0,
        "the logged address has the real port"
    );
    assert_eq!(raw_connack(&running), [0x20, 0x02, 0x00, 0x00]);
    let status = running.stop_with("TERM");
    assert_eq!(
        status.code(),
        Some(0),
        "stderr:\n{}",
        running.stderr.join("\n")
    );
    // Closed means closed: the port no longer accepts connections.
    assert!(TcpStream::connect(running.addr).is_err());
}

#[test]
fn exits_0_on_sigint_with_a_client_connected() {
    let mut running = Running::start(&["--host", "127.0.0.1", "--port", "0"]);
    let mut stream = TcpStream::connect(running.addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(CONNECT).unwrap();
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
    // A connected client must not keep the broker from closing.
    let status = running.stop_with("INT");
    assert_eq!(
        status.code(),
        Some(0),
        "stderr:\n{}",
        running.stderr.join("\n")
    );
}

#[test]
fn mosquitto_clients_talk_through_the_binary() {
    let mut running = Running::start(&["--host", "127.0.0.1", "--port", "0"]);
    let port = running.addr.port().to_string();
    let sub = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "greetings/#",
            "-C",
            "1",
            "-W",
            "15",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub is installed");
    // The subscription may not be in place yet: publish until the subscriber exits.
    let deadline = Instant::now() + PATIENCE;
    let mut sub = sub;
    while sub.try_wait().unwrap().is_none() && Instant::now() < deadline {
        let status = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-t",
                "greetings/world",
                "-m",
                "hello",
            ])
            .status()
            .expect("mosquitto_pub is installed");
        assert!(status.success());
        thread::sleep(Duration::from_millis(200));
    }
    let output = sub.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hello\n");
    assert_eq!(running.stop_with("TERM").code(), Some(0));
}

async fn connect(running: &Running, id: &str, user: Option<&str>) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(id, "127.0.0.1", running.addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    if let Some(user) = user {
        options.set_credentials(user, "secret");
    }
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    loop {
        match tokio::time::timeout(PATIENCE, eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => return (client, eventloop),
            Ok(Ok(_)) => {}
            other => panic!("{id} could not connect: {other:?}"),
        }
    }
}

/// Polls until `pick` returns something or the patience runs out.
async fn next<T>(
    eventloop: &mut EventLoop,
    mut pick: impl FnMut(Packet) -> Option<T>,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        match tokio::time::timeout_at(deadline, eventloop.poll()).await {
            Ok(Ok(Event::Incoming(packet))) => {
                if let Some(found) = pick(packet) {
                    return Some(found);
                }
            }
            Ok(Ok(Event::Outgoing(_))) => {}
            Ok(Err(e)) => panic!("connection error: {e}"),
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn acl_file_refuses_subscriptions_and_drops_publishes() {
    let acl = temp_file(
        "binary_acl",
        "site.acl",
        "user alice\ntopic readwrite alice/#\ntopic read shared/#\npattern write shared/%u/#\n",
    );
    let mut running = Running::start(&[
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--acl-file",
        acl.to_str().unwrap(),
    ]);
    let (client, mut eventloop) = connect(&running, "alice-1", Some("alice")).await;

    client.subscribe("alice/#", QoS::AtLeastOnce).await.unwrap();
    let codes = next(&mut eventloop, |p| match p {
        Packet::SubAck(ack) => Some(ack.return_codes),
        _ => None,
    })
    .await;
    assert_eq!(
        codes,
        Some(vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)])
    );

    client.subscribe("bob/#", QoS::AtLeastOnce).await.unwrap();
    let codes = next(&mut eventloop, |p| match p {
        Packet::SubAck(ack) => Some(ack.return_codes),
        _ => None,
    })
    .await;
    assert_eq!(
        codes,
        Some(vec![SubscribeReasonCode::Failure]),
        "SUBACK 0x80 for bob/#"
    );

    // Allowed: alice/x comes back to her own subscription.
    client
        .publish("alice/x", QoS::AtMostOnce, false, "mine")
        .await
        .unwrap();
    let got = next(&mut eventloop, |p| match p {
        Packet::Publish(p) => Some((p.topic, p.payload)),
        _ => None,
    })
    .await;
    assert_eq!(got, Some(("alice/x".to_string(), "mine".into())));

    // Alice reads all of shared/ but may write only under shared/alice/ (the
    // pattern): her publish to shared/bob/ is dropped, the next one arrives.
    client.subscribe("shared/#", QoS::AtMostOnce).await.unwrap();
    next(&mut eventloop, |p| {
        matches!(p, Packet::SubAck(_)).then_some(())
    })
    .await;
    client
        .publish("shared/bob/x", QoS::AtMostOnce, false, "not hers")
        .await
        .unwrap();
    client
        .publish("shared/alice/x", QoS::AtMostOnce, false, "hers")
        .await
        .unwrap();
    let got = next(&mut eventloop, |p| match p {
        Packet::Publish(p) => Some(p.topic),
        _ => None,
    })
    .await;
    assert_eq!(
        got.as_deref(),
        Some("shared/alice/x"),
        "the refused publish was dropped"
    );

    // Anonymous clients have no entries at all: nothing is allowed.
    let (anon, mut anon_loop) = connect(&running, "anon-1", None).await;
    anon.subscribe("alice/#", QoS::AtMostOnce).await.unwrap();
    let codes = next(&mut anon_loop, |p| match p {
        Packet::SubAck(ack) => Some(ack.return_codes),
        _ => None,
    })
    .await;
    assert_eq!(codes, Some(vec![SubscribeReasonCode::Failure]));

    assert_eq!(running.stop_with("TERM").code(), Some(0));
}

#[tokio::test]
async fn config_file_is_applied_and_flags_override_it() {
    // The file's port is held by this test, so the broker only starts if the
    // --port flag overrides it.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let file = temp_file(
        "binary_config",
        "pigeon.toml",
        &format!(
            "host = \"127.0.0.1\"\nport = {}\nid = \"from-file\"\nheartbeat_interval = 100\n",
            taken.local_addr().unwrap().port()
        ),
    );
    let mut running = Running::start(&["--config", file.to_str().unwrap(), "--port", "0"]);
    assert_ne!(running.addr.port(), taken.local_addr().unwrap().port());

    // The file's id and heartbeat interval are in effect.
    let (client, mut eventloop) = connect(&running, "watcher", None).await;
    client
        .subscribe("$SYS/from-file/heartbeat", QoS::AtMostOnce)
        .await
        .unwrap();
    let beat = next(&mut eventloop, |p| match p {
        Packet::Publish(p) => Some(p.topic),
        _ => None,
    })
    .await;
    assert_eq!(beat.as_deref(), Some("$SYS/from-file/heartbeat"));
    assert_eq!(running.stop_with("TERM").code(), Some(0));
}

#[test]
fn a_port_in_use_fails_with_exit_code_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let run = common::run_to_end(&["--host", "127.0.0.1", "--port", &port]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn acl_deny_inside_a_granted_subscription_filters_delivery() {
    let acl = temp_file(
        "binary_acl_read",
        "site.acl",
        "user alice\ntopic read feed/#\ntopic deny feed/hidden\nuser bob\ntopic write feed/#\n",
    );
    let mut running = Running::start(&[
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--acl-file",
        acl.to_str().unwrap(),
    ]);
    let (alice, mut alice_loop) = connect(&running, "alice-1", Some("alice")).await;
    alice.subscribe("feed/#", QoS::AtMostOnce).await.unwrap();
    let codes = next(&mut alice_loop, |p| match p {
        Packet::SubAck(ack) => Some(ack.return_codes),
        _ => None,
    })
    .await;
    assert_eq!(
        codes,
        Some(vec![SubscribeReasonCode::Success(QoS::AtMostOnce)])
    );

    let (bob, mut bob_loop) = connect(&running, "bob-1", Some("bob")).await;
    bob.publish("feed/hidden", QoS::AtLeastOnce, false, "secret")
        .await
        .unwrap();
    bob.publish("feed/open", QoS::AtLeastOnce, false, "news")
        .await
        .unwrap();
    tokio::spawn(async move { while bob_loop.poll().await.is_ok() {} });

    let got = next(&mut alice_loop, |p| match p {
        Packet::Publish(p) => Some((p.topic, p.payload)),
        _ => None,
    })
    .await;
    assert_eq!(got, Some(("feed/open".to_string(), "news".into())));
    assert_eq!(running.stop_with("TERM").code(), Some(0));
}

#[tokio::test]
async fn v5_capability_flags_reach_the_connack() {
    use rumqttc::v5::{
        mqttbytes::v5::Packet as V5Packet, AsyncClient as V5Client, Event as V5Event,
        MqttOptions as V5Options,
    };

    let mut running = Running::start(&[
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--max-keepalive",
        "10",
        "--receive-maximum",
        "7",
        "--maximum-qos",
        "1",
        "--retain-available",
        "false",
        "--wildcard-subscription-available",
        "false",
        "--max-packet-size",
        "4096",
    ]);
    let mut options = V5Options::new("v5-caps", "127.0.0.1", running.addr.port());
    options.set_keep_alive(Duration::from_secs(60));
    let (_client, mut eventloop) = V5Client::new(options, 8);
    let props = loop {
        match tokio::time::timeout(PATIENCE, eventloop.poll()).await {
            Ok(Ok(V5Event::Incoming(V5Packet::ConnAck(ack)))) => break ack.properties,
            Ok(Ok(_)) => {}
            other => panic!("v5 client could not connect: {other:?}"),
        }
    };
    let props = props.expect("CONNACK properties");
    assert_eq!(
        props.server_keep_alive,
        Some(10),
        "60 s asked, --max-keepalive 10"
    );
    assert_eq!(props.receive_max, Some(7));
    assert_eq!(props.max_qos, Some(1));
    assert_eq!(props.retain_available, Some(0));
    assert_eq!(props.wildcard_subscription_available, Some(0));
    assert_eq!(props.max_packet_size, Some(4096));
    assert_eq!(running.stop_with("TERM").code(), Some(0));
}

#[test]
fn listens_on_every_listen_url_and_logs_each() {
    let mut running = Running::start(&[
        "--listen",
        "mqtt://127.0.0.1:0",
        "--listen",
        "ws://127.0.0.1:0/mqtt",
    ]);
    assert_eq!(raw_connack(&running), [0x20, 0x02, 0x00, 0x00]);
    // The second line names the WebSocket listener with its real port.
    let deadline = Instant::now() + PATIENCE;
    let ws_line = loop {
        if let Some(line) = running
            .stderr
            .iter()
            .find(|l| l.contains("(ws://127.0.0.1:"))
        {
            break line.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no ws listener line: {:?}",
            running.stderr
        );
        running.next_line();
    };
    let ws_addr: std::net::SocketAddr = ws_line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .expect("an address on the ws line");
    // A plain HTTP GET on the WebSocket port is told to upgrade.
    let mut http = TcpStream::connect(ws_addr).unwrap();
    http.set_read_timeout(Some(PATIENCE)).unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = http.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 426"), "{answer}");
    assert_eq!(running.stop_with("TERM").code(), Some(0));
}
