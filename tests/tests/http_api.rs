//! The operator's HTTP listener over real HTTP (reqwest) while real MQTT
//! clients (rumqttc v4 and v5) use the broker: health and readiness, the
//! Prometheus metrics moving as clients connect, publish and lose messages,
//! the admin API (token, pagination, filters, disconnect, retained, publish)
//! and the server-sent-events topic monitor.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use pigeon::{
    broker::{Backends, StartError},
    emitter::{Completion, Deliver, Emitter, LocalEmitter},
    hooks::Hooks,
    model::Message,
    BrokerHandle, Config,
};
use pigeon_tests::{Mqtt, WAIT};
use reqwest::StatusCode;
use rumqttc::QoS;
use serde_json::{json, Value};

const TOKEN: &str = "s3cret-token";

fn http_config() -> Config {
    Config {
        http: Some("127.0.0.1:0".parse().expect("address")),
        admin_token: Some(TOKEN.into()),
        ..pigeon_tests::config()
    }
}

/// A broker with the HTTP listener on, and its base URL.
async fn start() -> (BrokerHandle, String) {
    let broker = pigeon_tests::start_with(http_config()).await;
    let url = base_url(&broker);
    (broker, url)
}

fn base_url(broker: &BrokerHandle) -> String {
    format!("http://{}", broker.http_addr().expect("http is on"))
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .expect("client")
}

/// GET with the admin token; the status and the JSON body.
async fn get(url: &str) -> (StatusCode, Value) {
    let response = http()
        .get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("GET");
    let status = response.status();
    (status, response.json().await.expect("JSON body"))
}

/// The value of one sample of `/metrics` (`name{labels}` as written).
async fn metric(base: &str, sample: &str) -> f64 {
    let text = http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{sample} missing from /metrics:\n{text}"))
        .parse()
        .expect("a number")
}

/// Polls `metric` until `ok` holds (counters are read when scraped, and the
/// broker counts some of them after the client has seen its answer).
async fn metric_reaches(base: &str, sample: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let value = metric(base, sample).await;
        if ok(value) || tokio::time::Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn health_and_readiness_answer_without_a_token() {
    let (broker, base) = start().await;
    let alive = http().get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(alive.status(), StatusCode::OK);
    assert_eq!(
        alive.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    let ready = http().get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    for check in ["listeners", "persistence", "emitter"] {
        assert_eq!(body["checks"][check], "ok", "{body}");
    }
    broker.close().await;
}

/// An emitter whose (pretend) cluster link can be cut: what a Redis emitter
/// reports while Redis is away.
#[derive(Default)]
struct CuttableEmitter {
    local: LocalEmitter,
    cut: AtomicBool,
}

impl Emitter for CuttableEmitter {
    fn bind(&self, local: Arc<dyn Deliver>) {
        self.local.bind(local)
    }
    fn emit(&self, message: Arc<Message>) -> Completion {
        self.local.emit(message)
    }
    fn health(&self) -> Result<(), String> {
        match self.cut.load(Ordering::Relaxed) {
            true => Err("cluster link down".into()),
            false => Ok(()),
        }
    }
}

#[tokio::test]
async fn readiness_fails_with_the_reason_while_a_back_end_is_unhealthy() {
    let emitter = Arc::new(CuttableEmitter::default());
    let backends = Backends {
        emitter: emitter.clone(),
        ..Backends::default()
    };
    let broker = pigeon::Broker::start_with(http_config(), Hooks::none(), backends)
        .await
        .expect("starts");
    let url = format!("{}/readyz", base_url(&broker));
    assert_eq!(
        http().get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
    emitter.cut.store(true, Ordering::Relaxed);
    let response = http().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "not ready");
    assert_eq!(body["reason"], "emitter: cluster link down");
    assert_eq!(body["checks"]["persistence"], "ok");
    emitter.cut.store(false, Ordering::Relaxed);
    assert_eq!(
        http().get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
    broker.close().await;
}

#[tokio::test]
async fn the_admin_api_refuses_requests_without_the_token() {
    let (broker, base) = start().await;
    let url = format!("{base}/api/v1/clients");
    let bare = http().get(&url).send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        bare.headers()["www-authenticate"],
        "Bearer realm=\"pigeon\""
    );
    let body: Value = bare.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
    let wrong = http().get(&url).bearer_auth("guess").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let publish = http()
        .post(format!("{base}/api/v1/publish"))
        .json(&json!({"topic": "a", "payload": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(publish.status(), StatusCode::UNAUTHORIZED);
    // The three ways of giving it.
    let bearer = http().get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);
    let basic = http()
        .get(&url)
        .basic_auth("ops", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::OK);
    let query = http()
        .get(format!("{url}?token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), StatusCode::OK);
    broker.close().await;

    // No token configured: the admin API is off, metrics still answer.
    let config = Config {
        admin_token: None,
        ..http_config()
    };
    let broker = pigeon_tests::start_with(config).await;
    let base = base_url(&broker);
    let off = http()
        .get(format!("{base}/api/v1/clients"))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), StatusCode::FORBIDDEN);
    let body: Value = off.json().await.unwrap();
    assert_eq!(body["error"], "the admin API is off: set admin_token");
    let metrics = http().get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    broker.close().await;
}

#[tokio::test]
async fn metrics_move_as_clients_connect_publish_and_lose_messages() {
    let (broker, base) = start().await;
    let addr = broker.local_addr();
    assert_eq!(metric(&base, "pigeon_connections").await, 0.0);
    let mut sub = Mqtt::connect(addr, "metrics-sub").await;
    sub.subscribe("m/#", QoS::AtLeastOnce).await;
    let publisher = Mqtt::connect(addr, "metrics-pub").await;
    assert_eq!(metric(&base, "pigeon_connections").await, 2.0);
    assert_eq!(metric(&base, "pigeon_subscriptions").await, 1.0);
    assert_eq!(metric(&base, "pigeon_sessions").await, 2.0);
    for i in 0..3 {
        publisher
            .publish("m/x", QoS::AtLeastOnce, false, format!("{i}"))
            .await;
        sub.recv().await;
    }
    publisher
        .publish("m/x", QoS::AtMostOnce, false, "zero")
        .await;
    sub.recv().await;
    let qos1 = r#"pigeon_publish_received_total{qos="1"}"#;
    assert_eq!(metric_reaches(&base, qos1, |v| v >= 3.0).await, 3.0);
    let qos0 = r#"pigeon_publish_received_total{qos="0"}"#;
    assert_eq!(metric_reaches(&base, qos0, |v| v >= 1.0).await, 1.0);
    let sent = "pigeon_messages_sent_total";
    assert_eq!(metric_reaches(&base, sent, |v| v >= 4.0).await, 4.0);
    // 3 × (PUBLISH of 9 bytes, PUBACK 4), 1 × 11, plus CONNECT and SUBSCRIBE.
    assert!(metric(&base, "pigeon_bytes_received_total").await > 50.0);
    assert!(metric(&base, "pigeon_bytes_sent_total").await > 40.0);
    let allowed = r#"pigeon_authentication_total{result="success"}"#;
    assert_eq!(metric(&base, allowed).await, 2.0);

    // Dropped for a reason: nobody subscribes to `lost/...`.
    let no_subs = r#"pigeon_messages_dropped_total{reason="no_subscribers"}"#;
    let before = metric(&base, no_subs).await;
    publisher
        .publish("lost/1", QoS::AtLeastOnce, false, "x")
        .await;
    publisher
        .publish("lost/2", QoS::AtLeastOnce, false, "x")
        .await;
    assert_eq!(
        metric_reaches(&base, no_subs, |v| v >= before + 2.0).await,
        before + 2.0
    );

    // A retained message, and a client that goes.
    publisher
        .publish("m/kept", QoS::AtLeastOnce, true, "r")
        .await;
    assert_eq!(
        metric_reaches(&base, "pigeon_retained", |v| v >= 1.0).await,
        1.0
    );
    sub.disconnect().await;
    assert_eq!(
        metric_reaches(&base, "pigeon_connections", |v| v <= 1.0).await,
        1.0
    );
    assert_eq!(metric(&base, "pigeon_connections_max").await, 2.0);

    // The families a Prometheus server reads, with their types.
    let text = http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for family in [
        "# TYPE pigeon_messages_received_total counter",
        "# TYPE pigeon_connections gauge",
        "# TYPE pigeon_hook_duration_seconds histogram",
        "# TYPE pigeon_process_resident_memory_bytes gauge",
        "# TYPE pigeon_process_cpu_seconds_total counter",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    assert!(
        text.contains(r#"pigeon_hook_duration_seconds_bucket{hook="authenticate",le="+Inf"} 0"#)
    );
    assert!(metric(&base, "pigeon_process_resident_memory_bytes").await > 1e6);
    publisher.disconnect().await;
    broker.close().await;
}

#[tokio::test]
async fn failed_logins_and_refused_subscriptions_are_counted() {
    let dir = std::env::temp_dir().join(format!("pigeon-http-acl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let acl = dir.join("acl");
    std::fs::write(&acl, "topic readwrite open/#\n").unwrap();
    let config = Config {
        acl_file: Some(acl),
        ..http_config()
    };
    let broker = pigeon_tests::start_with(config).await;
    let base = base_url(&broker);
    let mut client = Mqtt::connect(broker.local_addr(), "acl-client").await;
    let codes = client.subscribe("closed/#", QoS::AtLeastOnce).await;
    assert_eq!(codes, vec![rumqttc::SubscribeReasonCode::Failure]);
    client.subscribe("open/#", QoS::AtLeastOnce).await;
    let deny = r#"pigeon_authorization_total{result="deny"}"#;
    let allow = r#"pigeon_authorization_total{result="allow"}"#;
    assert_eq!(metric(&base, deny).await, 1.0);
    assert_eq!(metric(&base, allow).await, 1.0);
    client.disconnect().await;
    broker.close().await;

    // Nobody may log in without a password file entry: refused, counted.
    let config = Config {
        allow_anonymous: Some(false),
        ..http_config()
    };
    let broker = pigeon_tests::start_with(config).await;
    let base = base_url(&broker);
    let opts = pigeon_tests::options(broker.local_addr(), "anonymous");
    let (_client, mut events) = rumqttc::AsyncClient::new(opts, 10);
    let refused = tokio::time::timeout(WAIT, events.poll())
        .await
        .expect("answer");
    assert!(refused.is_err(), "{refused:?}");
    let failure = r#"pigeon_authentication_total{result="failure"}"#;
    assert_eq!(metric_reaches(&base, failure, |v| v >= 1.0).await, 1.0);
    broker.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn clients_are_listed_filtered_and_paginated() {
    let (broker, base) = start().await;
    let addr = broker.local_addr();
    let mut a1 = Mqtt::connect(addr, "fleet-a-1").await;
    a1.subscribe("fleet/a/#", QoS::AtLeastOnce).await;
    a1.subscribe("$share/workers/jobs", QoS::AtMostOnce).await;
    let a2 = Mqtt::connect(addr, "fleet-a-2").await;
    let mut opts = pigeon_tests::options(addr, "fleet-b-1");
    opts.set_credentials("bob", "pw");
    let b1 = Mqtt::connect_with(opts).await;
    // A persistent session that goes offline stays listed as disconnected.
    let mut opts = pigeon_tests::options(addr, "fleet-c-offline");
    opts.set_clean_session(false);
    let mut c = Mqtt::connect_with(opts).await;
    c.subscribe("fleet/c", QoS::AtLeastOnce).await;
    c.disconnect().await;

    let deadline = tokio::time::Instant::now() + WAIT;
    let all = loop {
        let (status, body) = get(&format!("{base}/api/v1/clients")).await;
        assert_eq!(status, StatusCode::OK);
        let offline = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == "fleet-c-offline" && c["connected"] == false);
        if offline || tokio::time::Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(all["meta"], json!({"page": 1, "limit": 50, "count": 4}));
    let ids: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["fleet-a-1", "fleet-a-2", "fleet-b-1", "fleet-c-offline"]
    );
    let first = &all["data"][0];
    assert_eq!(first["connected"], true);
    assert_eq!(first["protocol"], "3.1.1");
    assert_eq!(first["keep_alive"], 30);
    assert_eq!(first["subscription_count"], 2);
    assert!(first["address"].as_str().unwrap().starts_with("127.0.0.1:"));
    let offline = &all["data"][3];
    assert_eq!(offline["connected"], false);
    assert_eq!(offline["persistent"], true);
    assert_eq!(offline["address"], Value::Null);

    let (_, prefixed) = get(&format!("{base}/api/v1/clients?prefix=fleet-a-")).await;
    assert_eq!(prefixed["meta"]["count"], 2);
    let (_, page2) = get(&format!(
        "{base}/api/v1/clients?prefix=fleet-a-&limit=1&page=2"
    ))
    .await;
    assert_eq!(page2["data"][0]["client_id"], "fleet-a-2");
    assert_eq!(page2["data"].as_array().unwrap().len(), 1);
    assert_eq!(page2["meta"], json!({"page": 2, "limit": 1, "count": 2}));
    let (_, bob) = get(&format!("{base}/api/v1/clients?username=bob")).await;
    assert_eq!(bob["data"][0]["client_id"], "fleet-b-1");
    assert_eq!(bob["meta"]["count"], 1);
    let (_, gone) = get(&format!("{base}/api/v1/clients?state=disconnected")).await;
    assert_eq!(gone["data"][0]["client_id"], "fleet-c-offline");
    assert_eq!(gone["meta"]["count"], 1);
    let (status, bad) = get(&format!("{base}/api/v1/clients?limit=0")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["error"], "limit must be 1..=1000");
    let (status, bad) = get(&format!("{base}/api/v1/clients?state=asleep")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad["error"].as_str().unwrap().contains("asleep"));

    // One client's details, with its subscriptions.
    let (status, one) = get(&format!("{base}/api/v1/clients/fleet-a-1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        one["subscriptions"],
        json!([{"filter": "$share/workers/jobs", "qos": 0}, {"filter": "fleet/a/#", "qos": 1}])
    );
    assert_eq!(one["queue_length"], 0);
    assert_eq!(one["inflight"], 0);
    let (status, missing) = get(&format!("{base}/api/v1/clients/nobody")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(missing["error"].as_str().unwrap().contains("nobody"));

    // Subscriptions, filtered by client and by filter.
    let (_, subs) = get(&format!("{base}/api/v1/subscriptions")).await;
    assert_eq!(subs["meta"]["count"], 3);
    let (_, mine) = get(&format!(
        "{base}/api/v1/subscriptions?client_id=fleet-c-offline"
    ))
    .await;
    assert_eq!(
        mine["data"],
        json!([{"client_id": "fleet-c-offline", "filter": "fleet/c", "qos": 1}])
    );
    let (_, by_filter) = get(&format!(
        "{base}/api/v1/subscriptions?filter=fleet%2Fa%2F%23"
    ))
    .await;
    assert_eq!(by_filter["data"][0]["client_id"], "fleet-a-1");
    assert_eq!(by_filter["meta"]["count"], 1);
    for client in [a1, a2, b1] {
        client.disconnect().await;
    }
    broker.close().await;
}

#[tokio::test]
async fn an_operator_disconnects_a_client_with_administrative_action() {
    use rumqttc::v5::{
        mqttbytes::v5::{DisconnectReasonCode, Packet},
        ConnectionError, Event, StateError,
    };
    let (broker, base) = start().await;
    let addr = broker.local_addr();
    let opts = rumqttc::v5::MqttOptions::new("kick-me", addr.ip().to_string(), addr.port());
    let (_client, mut events) = rumqttc::v5::AsyncClient::new(opts, 10);
    tokio::time::timeout(WAIT, async {
        while !matches!(events.poll().await, Ok(Event::Incoming(Packet::ConnAck(_)))) {}
    })
    .await
    .expect("connected");
    let kicked = http()
        .delete(format!("{base}/api/v1/clients/kick-me"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(kicked.status(), StatusCode::NO_CONTENT);
    let reason = tokio::time::timeout(WAIT, async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Disconnect(d))) => return d.reason_code,
                // rumqttc reports a server's DISCONNECT as the end of the connection.
                Err(ConnectionError::MqttState(StateError::ServerDisconnect {
                    reason_code,
                    ..
                })) => return reason_code,
                Ok(_) => {}
                Err(e) => panic!("closed without DISCONNECT: {e}"),
            }
        }
    })
    .await
    .expect("DISCONNECT in time");
    assert_eq!(reason, DisconnectReasonCode::AdministrativeAction);
    drop(events);
    // Gone now: a second disconnect finds nobody.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let again = http()
            .delete(format!("{base}/api/v1/clients/kick-me"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        if again.status() == StatusCode::NOT_FOUND {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    broker.close().await;
}

#[tokio::test]
async fn retained_messages_are_listed_deleted_and_published_through_the_api() {
    let (broker, base) = start().await;
    let addr = broker.local_addr();
    let publisher = Mqtt::connect(addr, "retainer").await;
    for (topic, payload) in [("r/1", "one"), ("r/2", "two"), ("s/1", "three")] {
        publisher
            .publish(topic, QoS::AtLeastOnce, true, payload)
            .await;
    }
    // Binary payloads are given as base64 only.
    publisher
        .publish("b/bin", QoS::AtMostOnce, true, vec![0xff, 0x00])
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let listed = loop {
        let (_, body) = get(&format!("{base}/api/v1/retained")).await;
        if body["meta"]["count"] == 4 || tokio::time::Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(listed["meta"]["count"], 4);
    assert_eq!(
        listed["data"][1],
        json!({"topic": "r/1", "qos": 1, "size": 3, "payload": "one", "payload_base64": "b25l"})
    );
    let binary = &listed["data"][0];
    assert_eq!(binary["topic"], "b/bin");
    assert_eq!(binary["payload"], Value::Null);
    assert_eq!(binary["payload_base64"], "/wA=");
    let (_, filtered) = get(&format!("{base}/api/v1/retained?filter=s%2F%23")).await;
    assert_eq!(filtered["meta"]["count"], 1);
    let (_, paged) = get(&format!("{base}/api/v1/retained?limit=2&page=2")).await;
    assert_eq!(paged["data"][0]["topic"], "r/2");

    let delete = |topic: &str| {
        http()
            .delete(format!("{base}/api/v1/retained/{topic}"))
            .bearer_auth(TOKEN)
            .send()
    };
    assert_eq!(
        delete("r/1").await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let again = delete("r/1").await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    // A new subscriber no longer gets it; it still gets r/2.
    let mut late = Mqtt::connect(addr, "late").await;
    late.subscribe("r/+", QoS::AtLeastOnce).await;
    let got = late.recv().await;
    assert_eq!(got.topic, "r/2");
    late.assert_silent(200).await;

    // Publishing through the API reaches a real subscriber.
    let sent = http()
        .post(format!("{base}/api/v1/publish"))
        .bearer_auth(TOKEN)
        .json(&json!({"topic": "r/api", "payload": "from ops", "qos": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::OK);
    assert_eq!(
        sent.json::<Value>().await.unwrap(),
        json!({"status": "published"})
    );
    let got = late.recv().await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("r/api", &b"from ops"[..])
    );
    let encoded = http()
        .post(format!("{base}/api/v1/publish"))
        .bearer_auth(TOKEN)
        .json(&json!({"topic": "r/b64", "payload": "AAE=", "encoding": "base64"}))
        .send()
        .await
        .unwrap();
    assert_eq!(encoded.status(), StatusCode::OK);
    assert_eq!(&late.recv().await.payload[..], &[0u8, 1][..]);
    for (body, needle) in [
        (
            json!({"topic": "bad/#", "payload": "x"}),
            "not a topic name",
        ),
        (json!({"topic": "ok", "qos": 3}), "qos must be 0, 1 or 2"),
        (json!({"payload": "no topic"}), "topic"),
    ] {
        let refused = http()
            .post(format!("{base}/api/v1/publish"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{body}");
        let error: Value = refused.json().await.unwrap();
        assert!(error["error"].as_str().unwrap().contains(needle), "{error}");
    }
    late.disconnect().await;
    publisher.disconnect().await;
    broker.close().await;
}

/// Reads server-sent events until one satisfies `wanted`.
async fn next_event(response: &mut reqwest::Response, buffer: &mut String) -> Value {
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                return serde_json::from_str(data).expect("JSON event");
            }
            continue;
        }
        let chunk = tokio::time::timeout(WAIT, response.chunk())
            .await
            .expect("an event in time")
            .expect("stream")
            .expect("not ended");
        buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
    }
}

#[tokio::test]
async fn the_monitor_streams_matching_messages_live() {
    let (broker, base) = start().await;
    let addr = broker.local_addr();
    let mut stream = http()
        .get(format!(
            "{base}/api/v1/monitor?filter=plant%2F%2B%2Ftemp&token={TOKEN}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let publisher = Mqtt::connect(addr, "plant").await;
    // Not matching, then matching: only the second arrives.
    publisher
        .publish("plant/1/humidity", QoS::AtMostOnce, false, "50")
        .await;
    publisher
        .publish("plant/1/temp", QoS::AtLeastOnce, false, "21.5")
        .await;
    let mut buffer = String::new();
    let event = next_event(&mut stream, &mut buffer).await;
    assert_eq!(event["topic"], "plant/1/temp");
    assert_eq!(event["payload"], "21.5");
    assert_eq!(event["qos"], 1);
    publisher
        .publish("plant/2/temp", QoS::AtMostOnce, false, "19")
        .await;
    let event = next_event(&mut stream, &mut buffer).await;
    assert_eq!(event["topic"], "plant/2/temp");

    let bad = http()
        .get(format!(
            "{base}/api/v1/monitor?filter=a%2F%23%2Fb&token={TOKEN}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    publisher.disconnect().await;
    // Closing the broker ends the stream (it does not hold shutdown up).
    tokio::time::timeout(WAIT, broker.close())
        .await
        .expect("closes");
}

#[tokio::test]
async fn a_taken_http_port_fails_startup_naming_the_option() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = taken.local_addr().unwrap();
    let config = Config {
        http: Some(addr),
        ..http_config()
    };
    let Err(error) = pigeon::Broker::start(config, Hooks::none()).await else {
        panic!("started on a taken port");
    };
    assert!(matches!(error, StartError::Http { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.starts_with("invalid value for --http / http:"),
        "{message}"
    );
    assert!(message.contains(&addr.to_string()), "{message}");
}

#[tokio::test]
async fn client_details_show_messages_in_flight_and_queued() {
    use pigeon::codec::{Packet, PubReply, Subscribe, SubscribeFilter};
    let config = Config {
        max_inflight: 2,
        ..http_config()
    };
    let broker = pigeon_tests::start_with(config).await;
    let base = base_url(&broker);
    let addr = broker.local_addr();
    // A subscriber that reads but does not acknowledge.
    let (mut slow, _) =
        pigeon_tests::Raw::connect(addr, pigeon_tests::Raw::connect_packet("slow", true)).await;
    let sub = Subscribe::new(
        1,
        vec![SubscribeFilter::new("w/#", pigeon::codec::QoS::AtLeastOnce)],
    );
    slow.send(Packet::Subscribe(sub)).await;
    assert!(matches!(slow.recv().await, Some(Packet::SubAck(_))));
    let publisher = Mqtt::connect(addr, "w-pub").await;
    for i in 0..5 {
        publisher
            .publish("w/x", QoS::AtLeastOnce, false, format!("{i}"))
            .await;
    }
    let mut ids = Vec::new();
    for _ in 0..2 {
        match slow.recv().await {
            Some(Packet::Publish(p)) => ids.push(p.packet_id),
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
    let details = |want: (u64, u64)| {
        let url = format!("{base}/api/v1/clients/slow");
        async move {
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                let (_, c) = get(&url).await;
                let seen = (
                    c["inflight"].as_u64().unwrap(),
                    c["queue_length"].as_u64().unwrap(),
                );
                if seen == want || tokio::time::Instant::now() > deadline {
                    return seen;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    // Two in flight (the window), three waiting in the queue.
    assert_eq!(details((2, 3)).await, (2, 3));
    slow.send(Packet::PubAck(PubReply::new(ids[0]))).await;
    // One acknowledged: the next one takes its slot.
    assert!(matches!(slow.recv().await, Some(Packet::Publish(_))));
    assert_eq!(details((2, 2)).await, (2, 2));
    let queued = metric(&base, "pigeon_queued_messages").await;
    assert_eq!(queued, 2.0);
    publisher.disconnect().await;
    broker.close().await;
}
