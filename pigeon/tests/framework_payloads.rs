//! Handler parameters and returns over real sockets: the payload extractors
//! (`Text`, `Bytes`, `Decoded<T>` and a format of the user's own), a QoS
//! rewritten by `#[on_authorize_subscribe]`, and handlers returning
//! `Result<(), E>` whose errors are logged and reach `#[on_client_error]`.

use std::{
    io,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use pigeon::{
    codec::ReasonCode,
    hooks::extract::{decode_payload, ExtractError, FromEvent, HasPublish},
    prelude::*,
    testing::{Test, TestApp},
};

const SOON: Duration = Duration::from_secs(2);

/// `"id,celsius"`: a device format, decoded by implementing `Decode` on the message type.
#[derive(Debug, serde::Serialize)]
struct Reading {
    id: u32,
    celsius: f32,
}

impl Decode for Reading {
    const FORMAT: &'static str = "an `id,celsius` reading";
    type Error = String;
    fn decode(payload: &Bytes) -> Result<Self, String> {
        let text = std::str::from_utf8(payload).map_err(|e| e.to_string())?;
        let (id, celsius) = text.split_once(',').ok_or("no comma")?;
        Ok(Reading {
            id: id.parse().map_err(|e| format!("id: {e}"))?,
            celsius: celsius.parse().map_err(|e| format!("celsius: {e}"))?,
        })
    }
}

/// One value per line: a format generic over its values, as a `Cbor<T>` would be.
struct Lines<T>(Vec<T>);

impl<T: std::str::FromStr> Decode for Lines<T>
where
    T::Err: std::fmt::Display,
{
    const FORMAT: &'static str = "one value per line";
    type Error = String;
    fn decode(payload: &Bytes) -> Result<Self, String> {
        let text = std::str::from_utf8(payload).map_err(|e| e.to_string())?;
        let values = text
            .lines()
            .map(|l| l.parse().map_err(|e| format!("{l:?}: {e}")));
        values.collect::<Result<_, _>>().map(Lines)
    }
}

impl<C: HasPublish, T> FromEvent<C> for Lines<T>
where
    Lines<T>: Decode,
{
    fn from_event(cx: &C) -> Result<Self, ExtractError> {
        decode_payload(cx)
    }
}

/// Answers on `<kind>/out` what each extractor got; reports client errors on `errors/<client>`.
#[injectable]
struct Echo {
    pigeon: PigeonService,
}

impl Echo {
    async fn answer(&self, topic: &str, payload: impl Into<Bytes>) {
        let out = Publish::new(topic.to_owned(), QoS::AtLeastOnce, payload.into());
        self.pigeon
            .publish(out)
            .await
            .expect("the answer is published");
    }
}

#[handlers]
impl Echo {
    #[on_publish("text/in")]
    async fn text(&self, Text(text): Text) {
        self.answer("text/out", text.to_uppercase()).await;
    }

    #[on_publish("bytes/in")]
    async fn bytes(&self, payload: Bytes) {
        let mut reversed = payload.to_vec();
        reversed.reverse();
        self.answer("bytes/out", reversed).await;
    }

    #[on_publish("reading/in")]
    async fn reading(&self, Decoded(r): Decoded<Reading>) {
        let json = serde_json::to_string(&r).expect("serialises");
        self.answer("reading/out", json).await;
    }

    #[on_publish("lines/in")]
    async fn lines(&self, Lines(values): Lines<u32>) {
        let sum: u32 = values.iter().sum();
        self.answer("lines/out", sum.to_string()).await;
    }

    /// A `Text` in an authorize hook: a payload that is not UTF-8 is refused.
    #[on_authorize_publish("guarded/:x")]
    async fn guarded(&self, Text(text): Text) -> bool {
        text != "no"
    }

    /// `sensors/...` is granted at most QoS 0, `alarms/...` at least QoS 1.
    #[on_authorize_subscribe]
    async fn qos_policy(&self, sub: &mut Subscription) -> Result<(), Denied> {
        if sub.topic.starts_with("sensors/") {
            sub.set_qos(QoS::AtMostOnce);
        } else if sub.topic.starts_with("alarms/") {
            sub.set_qos(sub.qos().max(QoS::AtLeastOnce));
        }
        Ok(())
    }

    #[on_publish("fail/:why")]
    async fn fails(&self, Param(why): Param<String>) -> Result<(), io::Error> {
        Err(io::Error::other(format!("disk full ({why})")))
    }

    #[on_published("audit/:what")]
    async fn audit(&self, Param(what): Param<String>) -> Result<(), String> {
        match what.as_str() {
            "down" => Err("the audit store is offline".to_owned()),
            _ => Ok(()),
        }
    }

    #[on_request("rpc/upper")]
    async fn upper(&self, Text(text): Text) -> String {
        text.to_uppercase()
    }

    #[on_client_error]
    async fn client_error(&self, client: Client, Error(error): Error) {
        self.answer(&format!("errors/{}", client.id()), error).await;
    }
}

#[module(providers = [Echo])]
struct PayloadModule;

async fn start() -> TestApp {
    logs();
    Test::module::<PayloadModule>()
        .start()
        .await
        .expect("the module starts")
}

#[tokio::test]
async fn text_bytes_and_user_formats_reach_their_handlers() {
    let app = start().await;
    let watch = app.client("watch").connect().await.unwrap();
    watch.subscribe("+/out", QoS::AtLeastOnce).await.unwrap();
    let device = app.client("device").v311().connect().await.unwrap();

    device.publish("text/in", "héllo").await.unwrap();
    let m = watch.expect_message(SOON).await;
    assert_eq!((m.topic.as_str(), m.text()), ("text/out", "HÉLLO"));

    device
        .publish("bytes/in", vec![0u8, 0xff, 7])
        .await
        .unwrap();
    let m = watch.expect_message(SOON).await;
    assert_eq!(
        (m.topic.as_str(), &m.payload[..]),
        ("bytes/out", &[7, 0xff, 0][..])
    );

    device.publish("reading/in", "7,21.5").await.unwrap();
    let m = watch.expect_message(SOON).await;
    assert_eq!(m.topic, "reading/out");
    assert_eq!(
        m.json::<serde_json::Value>(),
        serde_json::json!({ "id": 7, "celsius": 21.5 })
    );

    device.publish("lines/in", "1\n2\n39").await.unwrap();
    let m = watch.expect_message(SOON).await;
    assert_eq!((m.topic.as_str(), m.text()), ("lines/out", "42"));
    app.close().await;
}

#[tokio::test]
async fn a_payload_that_does_not_decode_skips_the_handler_and_is_a_client_error() {
    let app = start().await;
    let watch = app.client("watch").connect().await.unwrap();
    watch.subscribe("+/out", QoS::AtLeastOnce).await.unwrap();
    watch.subscribe("errors/#", QoS::AtLeastOnce).await.unwrap();
    let device = app.client("device").connect().await.unwrap();

    let cases = [
        (
            "text/in",
            &b"\xff\xfe"[..],
            "Echo::text",
            "payload is not UTF-8 text: invalid utf-8",
        ),
        (
            "reading/in",
            b"warm",
            "Echo::reading",
            "payload is not an `id,celsius` reading: no comma",
        ),
        (
            "lines/in",
            b"1\nten",
            "Echo::lines",
            "payload is not one value per line: \"ten\": invalid digit",
        ),
    ];
    for (topic, payload, handler, reason) in cases {
        device.publish(topic, payload.to_vec()).await.unwrap();
        let m = watch.expect_message(SOON).await;
        assert_eq!(m.topic, "errors/device", "for {topic}");
        let error = m.text();
        assert!(error.starts_with(handler), "names the handler: {error:?}");
        assert!(
            error.contains("parameter #0"),
            "names the parameter: {error:?}"
        );
        assert!(error.contains(reason), "says why: {error:?}");
    }
    // The handlers did not run: the next answer is the one of a valid payload
    // (one provider's events are handled in order).
    device.publish("text/in", "ok").await.unwrap();
    let m = watch.expect_message(SOON).await;
    assert_eq!((m.topic.as_str(), m.text()), ("text/out", "OK"));
    app.close().await;
}

#[tokio::test]
async fn text_in_an_authorize_hook_refuses_a_payload_that_is_not_utf8() {
    let app = start().await;
    let watch = app.client("watch").connect().await.unwrap();
    watch
        .subscribe("guarded/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    watch.subscribe("errors/#", QoS::AtLeastOnce).await.unwrap();
    let device = app.client("device").connect().await.unwrap();

    let refused = device
        .publish_with("guarded/a", vec![0xc3, 0x28])
        .qos(QoS::AtLeastOnce)
        .await
        .expect_err("not UTF-8");
    assert_eq!(refused.code(), Some(ReasonCode::UnspecifiedError));
    let m = watch.expect_message(SOON).await;
    assert_eq!(m.topic, "errors/device");
    assert!(
        m.text().contains("payload is not UTF-8 text"),
        "{:?}",
        m.text()
    );
    let refused = device
        .publish_with("guarded/a", "no")
        .qos(QoS::AtLeastOnce)
        .await
        .expect_err("the handler said no");
    assert_eq!(refused.code(), Some(ReasonCode::NotAuthorized));
    // Each refusal is reported once: this is the next error, not a copy of the first.
    let m = watch.expect_message(SOON).await;
    assert_eq!(
        (m.topic.as_str(), m.text()),
        ("errors/device", "publish denied")
    );
    device
        .publish_with("guarded/a", "yes")
        .qos(QoS::AtLeastOnce)
        .await
        .expect("valid text passes");
    let m = watch.expect_message(SOON).await;
    assert_eq!((m.topic.as_str(), m.text()), ("guarded/a", "yes"));
    app.close().await;
}

#[tokio::test]
async fn text_works_in_a_request_handler() {
    let app = start().await;
    let caller = app.client("caller").connect().await.unwrap();
    caller
        .subscribe("replies/caller", QoS::AtLeastOnce)
        .await
        .unwrap();
    caller
        .publish_with("rpc/upper", "shout")
        .qos(QoS::AtLeastOnce)
        .response_topic("replies/caller")
        .correlation_data("r1")
        .await
        .unwrap();
    let m = caller.expect_message(SOON).await;
    assert_eq!(
        (m.text(), m.correlation_data()),
        ("SHOUT", Some(&b"r1"[..]))
    );
    app.close().await;
}

#[tokio::test]
async fn a_qos_rewritten_by_authorize_subscribe_is_granted_and_delivered() {
    let app = start().await;
    let sub = app.client("sub").connect().await.unwrap();
    let sub311 = app.client("sub311").v311().connect().await.unwrap();
    // Asked QoS 2, rewritten to 0; asked 0, rewritten to 1.
    assert_eq!(
        sub.subscribe("sensors/#", QoS::ExactlyOnce).await.unwrap(),
        QoS::AtMostOnce
    );
    assert_eq!(
        sub.subscribe("alarms/#", QoS::AtMostOnce).await.unwrap(),
        QoS::AtLeastOnce
    );
    assert_eq!(
        sub311.subscribe("alarms/#", QoS::AtMostOnce).await.unwrap(),
        QoS::AtLeastOnce
    );
    let publisher = app.client("pub").connect().await.unwrap();
    for topic in ["sensors/t", "alarms/fire"] {
        publisher
            .publish_with(topic, "x")
            .qos(QoS::ExactlyOnce)
            .await
            .unwrap();
    }
    let m = sub.expect_message(SOON).await;
    assert_eq!((m.topic.as_str(), m.qos), ("sensors/t", QoS::AtMostOnce));
    let m = sub.expect_message(SOON).await;
    assert_eq!((m.topic.as_str(), m.qos), ("alarms/fire", QoS::AtLeastOnce));
    let m = sub311.expect_message(SOON).await;
    assert_eq!((m.topic.as_str(), m.qos), ("alarms/fire", QoS::AtLeastOnce));
    app.close().await;
}

/// Everything the tests of this file log. The process-wide subscriber,
/// installed before any module starts (so `pigeon::testing` installs none):
/// a subscriber per thread would race with a global one over the callsites'
/// cached interest.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

fn logs() -> &'static Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the first subscriber");
        logs
    })
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_handler_error_is_logged_and_reported_as_a_client_error() {
    let app = start().await;
    let watch = app.client("watch").connect().await.unwrap();
    watch.subscribe("errors/#", QoS::AtLeastOnce).await.unwrap();
    let device = app.client("device-9").connect().await.unwrap();

    // An event handler (`#[on_publish]`) returning `Err(io::Error)`.
    device.publish("fail/quota", "x").await.unwrap();
    let m = watch.expect_message(SOON).await;
    assert_eq!(
        (m.topic.as_str(), m.text()),
        (
            "errors/device-9",
            "Echo::fails returned an error: disk full (quota)"
        )
    );
    // `#[on_published]` returning `Err(String)`: the publish itself went through.
    device
        .publish_with("audit/down", "x")
        .qos(QoS::AtLeastOnce)
        .await
        .expect("published handlers do not refuse");
    let m = watch.expect_message(SOON).await;
    assert_eq!(
        (m.topic.as_str(), m.text()),
        (
            "errors/device-9",
            "Echo::audit returned an error: the audit store is offline"
        )
    );
    app.close().await;

    // Other tests log too: their clients have other ids.
    let logs = logs().text();
    for error in ["disk full (quota)", "the audit store is offline"] {
        let line = logs
            .lines()
            .find(|l| l.contains(error))
            .unwrap_or_else(|| panic!("no log line for {error:?} in:\n{logs}"));
        assert!(line.contains("ERROR"), "{line}");
        assert!(line.contains("handler=\"Echo::"), "{line}");
        assert!(line.contains("client=\"device-9\""), "{line}");
    }
}
