//! `#[on_request]`: typed request/response handlers, called over real sockets
//! by rumqttc v5 (Response Topic, Correlation Data) and v4 (the JSON envelope).

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    },
    time::Duration,
};

use bytes::Bytes;
use pigeon::prelude::*;
use rumqttc::v5::{
    mqttbytes::{v5::Packet as P5, v5::PublishProperties, QoS as Q5},
    AsyncClient as Client5, Event as Ev5, MqttOptions as Options5,
};
use tokio::{
    sync::{mpsc, Notify, Semaphore},
    time::timeout,
};

const WAIT: Duration = Duration::from_secs(5);

#[derive(serde::Deserialize)]
struct Args {
    a: i64,
    b: i64,
}

#[derive(serde::Serialize)]
struct Sum {
    sum: i64,
    caller: Option<String>,
}

/// How many `gate` calls run now and ran at once at most; they wait for `open`.
#[injectable]
pub struct Gate {
    #[inject(default)]
    running: AtomicUsize,
    #[inject(default)]
    most: AtomicUsize,
    #[inject(default)]
    entered: Notify,
    #[inject(default)]
    open: Closed,
}

/// A semaphore with no permit to begin with.
pub struct Closed(Semaphore);

impl Default for Closed {
    fn default() -> Self {
        Self(Semaphore::new(0))
    }
}

/// The typed error of `rpc/device/:id`.
#[derive(serde::Serialize)]
struct NotFound {
    code: u16,
    device: String,
}

/// The `client_error` events seen.
#[injectable]
pub struct Errors {
    #[inject(default)]
    seen: Mutex<Vec<(String, String)>>,
    #[inject(default)]
    added: Notify,
}

#[injectable]
struct Rpc {
    gate: std::sync::Arc<Gate>,
    errors: std::sync::Arc<Errors>,
}

#[handlers]
impl Rpc {
    #[on_request("rpc/calc/:op")]
    async fn calc(
        &self,
        Param(op): Param<String>,
        Json(args): Json<Args>,
        client: Option<Client>,
    ) -> Result<Json<Sum>, String> {
        match op.as_str() {
            "add" => Ok(Json(Sum {
                sum: args.a + args.b,
                caller: client.map(|c| c.id().to_owned()),
            })),
            other => Err(format!("no such operation: {other}")),
        }
    }

    #[on_request("rpc/slow", timeout = 200)]
    async fn slow(&self) -> String {
        std::future::pending::<()>().await;
        "never".to_owned()
    }

    #[on_request("rpc/gate", concurrency = 2)]
    async fn gate(&self, payload: Payload) -> Bytes {
        let now = self.gate.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.gate.most.fetch_max(now, Ordering::SeqCst);
        self.gate.entered.notify_one();
        if let Ok(permit) = self.gate.open.0.acquire().await {
            permit.forget();
        }
        self.gate.running.fetch_sub(1, Ordering::SeqCst);
        payload.0
    }

    /// A typed error: the requester gets it as JSON.
    #[on_request("rpc/device/:id")]
    async fn device(&self, Param(id): Param<String>) -> Result<Json<Sum>, Json<NotFound>> {
        Err(Json(NotFound {
            code: 404,
            device: id,
        }))
    }

    #[on_request("rpc/whoami")]
    async fn whoami(&self, client: Client) -> String {
        client.id().to_owned()
    }

    #[on_client_error]
    async fn client_error(&self, client: Client, error: Error) {
        let mut seen = self.errors.seen.lock().unwrap();
        seen.push((client.id().to_owned(), error.0));
        self.errors.added.notify_one();
    }
}

#[module(providers = [Gate, Errors, Rpc])]
struct RpcModule;

async fn start() -> App {
    pigeon::testing::start::<RpcModule>()
        .await
        .expect("the module starts")
}

/// A v5 client whose received PUBLISHes arrive on `rx`, subscribed to `replies`.
async fn v5(
    app: &App,
    id: &str,
    replies: &str,
) -> (
    Client5,
    mpsc::UnboundedReceiver<rumqttc::v5::mqttbytes::v5::Publish>,
) {
    let mut options = Options5::new(id, "127.0.0.1", app.local_addr().port());
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = Client5::new(options, 64);
    let (tx, rx) = mpsc::unbounded_channel();
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    let mut subscribed_tx = Some(subscribed_tx);
    tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            match event {
                Ev5::Incoming(P5::Publish(p)) => {
                    let _ = tx.send(p);
                }
                Ev5::Incoming(P5::SubAck(_)) => {
                    if let Some(s) = subscribed_tx.take() {
                        let _ = s.send(());
                    }
                }
                _ => {}
            }
        }
    });
    client.subscribe(replies, Q5::AtLeastOnce).await.unwrap();
    timeout(WAIT, subscribed).await.expect("SUBACK").unwrap();
    (client, rx)
}

fn request(response_topic: Option<&str>, correlation: &'static [u8]) -> PublishProperties {
    PublishProperties {
        response_topic: response_topic.map(str::to_owned),
        correlation_data: Some(Bytes::from_static(correlation)),
        ..Default::default()
    }
}

async fn next(
    rx: &mut mpsc::UnboundedReceiver<rumqttc::v5::mqttbytes::v5::Publish>,
) -> rumqttc::v5::mqttbytes::v5::Publish {
    timeout(WAIT, rx.recv())
        .await
        .expect("an answer within 5 s")
        .expect("the client is still running")
}

fn props(p: &rumqttc::v5::mqttbytes::v5::Publish) -> PublishProperties {
    p.properties.clone().expect("the answer has properties")
}

#[tokio::test]
async fn a_v5_request_is_answered_on_its_response_topic_with_its_correlation_data() {
    let app = start().await;
    let (client, mut rx) = v5(&app, "v5-caller", "replies/v5").await;
    let props_in = request(Some("replies/v5"), b"corr-1");
    client
        .publish_with_properties(
            "rpc/calc/add",
            Q5::AtLeastOnce,
            false,
            r#"{"a":2,"b":3}"#,
            props_in,
        )
        .await
        .unwrap();
    let answer = next(&mut rx).await;
    assert_eq!(&answer.topic[..], b"replies/v5");
    let body: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
    assert_eq!(body, serde_json::json!({"sum": 5, "caller": "v5-caller"}));
    let p = props(&answer);
    assert_eq!(p.correlation_data.as_deref(), Some(&b"corr-1"[..]));
    assert_eq!(p.content_type.as_deref(), Some("application/json"));
    assert!(p.user_properties.is_empty(), "{:?}", p.user_properties);
    app.close().await;
}

#[tokio::test]
async fn an_error_answer_carries_the_message_in_the_error_user_property() {
    let app = start().await;
    let (client, mut rx) = v5(&app, "v5-err", "replies/err").await;
    client
        .publish_with_properties(
            "rpc/calc/mul",
            Q5::AtLeastOnce,
            false,
            r#"{"a":2,"b":3}"#,
            request(Some("replies/err"), b"e"),
        )
        .await
        .unwrap();
    let answer = next(&mut rx).await;
    let p = props(&answer);
    assert_eq!(
        p.user_properties,
        vec![("error".to_owned(), "no such operation: mul".to_owned())]
    );
    assert_eq!(&answer.payload[..], b"no such operation: mul");
    assert_eq!(p.correlation_data.as_deref(), Some(&b"e"[..]));

    // A payload the handler cannot take is answered with the extractor's error.
    client
        .publish_with_properties(
            "rpc/calc/add",
            Q5::AtLeastOnce,
            false,
            "not json",
            request(Some("replies/err"), b"f"),
        )
        .await
        .unwrap();
    let answer = next(&mut rx).await;
    let p = props(&answer);
    let (name, message) = &p.user_properties[0];
    assert_eq!(name, "error");
    assert!(
        message.contains("payload is not the expected JSON"),
        "{message}"
    );
    app.close().await;
}

#[tokio::test]
async fn a_typed_error_is_answered_as_json_in_the_payload_and_the_error_property() {
    let app = start().await;
    let (client, mut rx) = v5(&app, "v5-typed", "replies/typed").await;
    client
        .publish_with_properties(
            "rpc/device/d-9",
            Q5::AtLeastOnce,
            false,
            "",
            request(Some("replies/typed"), b"t"),
        )
        .await
        .unwrap();
    let answer = next(&mut rx).await;
    let p = props(&answer);
    let body: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
    assert_eq!(body, serde_json::json!({"code": 404, "device": "d-9"}));
    assert_eq!(p.content_type.as_deref(), Some("application/json"));
    assert_eq!(p.correlation_data.as_deref(), Some(&b"t"[..]));
    let (name, text) = &p.user_properties[0];
    assert_eq!(name, "error");
    let in_property: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(in_property, body);
    app.close().await;
}

#[tokio::test]
async fn a_handler_past_its_timeout_is_answered_with_a_timeout_error() {
    let app = start().await;
    let (client, mut rx) = v5(&app, "v5-slow", "replies/slow").await;
    client
        .publish_with_properties(
            "rpc/slow",
            Q5::AtLeastOnce,
            false,
            "",
            request(Some("replies/slow"), b"s"),
        )
        .await
        .unwrap();
    let answer = next(&mut rx).await;
    let p = props(&answer);
    assert_eq!(
        p.user_properties,
        vec![(
            "error".to_owned(),
            "Rpc::slow timed out after 200 ms".to_owned()
        )]
    );
    assert_eq!(p.correlation_data.as_deref(), Some(&b"s"[..]));
    app.close().await;
}

#[tokio::test]
async fn over_its_concurrency_requests_wait_and_are_all_answered() {
    let app = start().await;
    let gate = app.get::<Gate>().unwrap();
    let (client, mut rx) = v5(&app, "v5-gate", "replies/gate").await;
    for i in 0..5u8 {
        let payload = vec![b'0' + i];
        client
            .publish_with_properties(
                "rpc/gate",
                Q5::AtLeastOnce,
                false,
                payload,
                request(Some("replies/gate"), b"g"),
            )
            .await
            .unwrap();
    }
    timeout(WAIT, async {
        while gate.running.load(Ordering::SeqCst) < 2 {
            gate.entered.notified().await;
        }
    })
    .await
    .expect("two calls start");
    // Room for a third call to start, were the limit not kept.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gate.running.load(Ordering::SeqCst), 2);
    gate.open.0.add_permits(5);
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(next(&mut rx).await.payload.to_vec());
    }
    answers.sort();
    assert_eq!(
        answers,
        vec![
            b"0".to_vec(),
            b"1".to_vec(),
            b"2".to_vec(),
            b"3".to_vec(),
            b"4".to_vec()
        ]
    );
    assert_eq!(
        gate.most.load(Ordering::SeqCst),
        2,
        "at most 2 calls at once"
    );
    app.close().await;
}

#[tokio::test]
async fn a_request_without_response_topic_is_a_client_error_and_not_answered() {
    let app = start().await;
    let errors = app.get::<Errors>().unwrap();
    let (client, mut rx) = v5(&app, "v5-lost", "#").await;
    client
        .publish_with_properties(
            "rpc/calc/add",
            Q5::AtLeastOnce,
            false,
            r#"{"a":1,"b":1}"#,
            request(None, b"x"),
        )
        .await
        .unwrap();
    let (id, error) = timeout(WAIT, async {
        loop {
            let added = errors.added.notified();
            if let Some(e) = errors.seen.lock().unwrap().first().cloned() {
                return e;
            }
            added.await;
        }
    })
    .await
    .expect("a client_error event");
    assert_eq!(id, "v5-lost");
    assert!(error.contains("has no Response Topic"), "{error}");
    assert!(error.contains("Rpc::calc"), "{error}");
    // Subscribed to `#`, the client sees its own request and nothing else.
    let own = next(&mut rx).await;
    assert_eq!(&own.topic[..], b"rpc/calc/add");
    client
        .publish("ping/after", Q5::AtLeastOnce, false, "")
        .await
        .unwrap();
    let after = next(&mut rx).await;
    assert_eq!(&after.topic[..], b"ping/after", "no answer came in between");
    app.close().await;
}

/// Waits for the `n`th `client_error` event (1-based).
async fn nth_error(errors: &Errors, n: usize) -> (String, String) {
    timeout(WAIT, async {
        loop {
            let added = errors.added.notified();
            if let Some(e) = errors.seen.lock().unwrap().get(n - 1).cloned() {
                return e;
            }
            added.await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no client_error event #{n}"))
}

#[tokio::test]
async fn an_answer_goes_nowhere_the_requester_could_not_publish() {
    let dir = std::env::temp_dir().join(format!("pigeon-rpc-acl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let acl = dir.join("acl");
    // Anonymous clients may call and read their replies, not write elsewhere.
    std::fs::write(
        &acl,
        "topic readwrite rpc/#\ntopic readwrite replies/#\ntopic read other/#\n",
    )
    .unwrap();
    let app = pigeon::testing::start_with::<RpcModule>(|c| c.acl_file = Some(acl))
        .await
        .expect("the module starts");
    let errors = app.get::<Errors>().unwrap();
    let (client, mut rx) = v5(&app, "v5-acl", "replies/ok").await;
    let body = r#"{"a":1,"b":1}"#;
    client
        .publish_with_properties(
            "rpc/calc/add",
            Q5::AtLeastOnce,
            false,
            body,
            request(Some("other/victim"), b"1"),
        )
        .await
        .unwrap();
    let (id, error) = nth_error(&errors, 1).await;
    assert_eq!(id, "v5-acl");
    assert!(
        error.contains(
            "the ACL does not let the requester publish to the response topic \"other/victim\""
        ),
        "{error}"
    );
    client
        .publish_with_properties(
            "rpc/calc/add",
            Q5::AtLeastOnce,
            false,
            body,
            request(Some("$SYS/x"), b"2"),
        )
        .await
        .unwrap();
    let (_, error) = nth_error(&errors, 2).await;
    assert!(
        error.contains("the response topic \"$SYS/x\" is not a topic the broker may publish to"),
        "{error}"
    );
    // A topic the requester may write to is answered.
    client
        .publish_with_properties(
            "rpc/calc/add",
            Q5::AtLeastOnce,
            false,
            body,
            request(Some("replies/ok"), b"3"),
        )
        .await
        .unwrap();
    let answer = next(&mut rx).await;
    assert_eq!(props(&answer).correlation_data.as_deref(), Some(&b"3"[..]));
    app.close().await;
}

#[tokio::test]
async fn a_handler_taking_client_answers_a_broker_request_with_an_error() {
    let app = start().await;
    let (client, mut rx) = v5(&app, "v5-who", "replies/who").await;
    client
        .publish_with_properties(
            "rpc/whoami",
            Q5::AtLeastOnce,
            false,
            "",
            request(Some("replies/who"), b"w"),
        )
        .await
        .unwrap();
    assert_eq!(&next(&mut rx).await.payload[..], b"v5-who");
    let mut request = Publish::new("rpc/whoami", QoS::AtLeastOnce, "");
    request.properties.make_mut().response_topic = Some("replies/who".into());
    app.service().publish(request).await.unwrap();
    let answer = next(&mut rx).await;
    let (name, message) = &props(&answer).user_properties[0];
    assert_eq!(name, "error");
    assert!(
        message.contains("published by the broker itself"),
        "{message}"
    );
    app.close().await;
}

#[tokio::test]
async fn a_v311_client_calls_through_the_json_envelope() {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let app = start().await;
    let mut options = MqttOptions::new("v4-caller", "127.0.0.1", app.local_addr().port());
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 16);
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            let _ = tx.send(event);
        }
    });
    client
        .subscribe("replies/v4", QoS::AtLeastOnce)
        .await
        .unwrap();
    while !matches!(recv4(&mut rx).await, Event::Incoming(Packet::SubAck(_))) {}
    let envelope =
        r#"{"response_topic":"replies/v4","correlation_data":"c-7","payload":{"a":20,"b":22}}"#;
    client
        .publish("rpc/calc/add", QoS::AtLeastOnce, false, envelope)
        .await
        .unwrap();
    let answer = loop {
        if let Event::Incoming(Packet::Publish(p)) = recv4(&mut rx).await {
            break p;
        }
    };
    assert_eq!(answer.topic, "replies/v4");
    let body: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"correlation_data": "c-7", "payload": {"sum": 42, "caller": "v4-caller"}})
    );

    let envelope =
        r#"{"response_topic":"replies/v4","correlation_data":8,"payload":{"a":1,"b":2}}"#;
    client
        .publish("rpc/calc/div", QoS::AtLeastOnce, false, envelope)
        .await
        .unwrap();
    let answer = loop {
        if let Event::Incoming(Packet::Publish(p)) = recv4(&mut rx).await {
            break p;
        }
    };
    let body: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"correlation_data": 8, "error": "no such operation: div"})
    );

    // A typed error is the envelope's `error`, as JSON.
    let envelope = r#"{"response_topic":"replies/v4","correlation_data":9,"payload":null}"#;
    client
        .publish("rpc/device/d-1", QoS::AtLeastOnce, false, envelope)
        .await
        .unwrap();
    let answer = loop {
        if let Event::Incoming(Packet::Publish(p)) = recv4(&mut rx).await {
            break p;
        }
    };
    let body: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"correlation_data": 9, "error": {"code": 404, "device": "d-1"}})
    );
    app.close().await;
}

#[tokio::test]
async fn the_application_can_call_a_handler_through_pigeon_service() {
    let app = start().await;
    let (_client, mut rx) = v5(&app, "v5-listener", "replies/app").await;
    let mut request = Publish::new("rpc/calc/add", QoS::AtLeastOnce, r#"{"a":4,"b":4}"#);
    request.properties.make_mut().response_topic = Some("replies/app".into());
    app.service().publish(request).await.unwrap();
    let answer = next(&mut rx).await;
    let body: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
    // The broker's own request has no client.
    assert_eq!(body, serde_json::json!({"sum": 8, "caller": null}));
    app.close().await;
}

async fn recv4(rx: &mut mpsc::UnboundedReceiver<rumqttc::Event>) -> rumqttc::Event {
    timeout(WAIT, rx.recv())
        .await
        .expect("an event within 5 s")
        .expect("the client is running")
}
