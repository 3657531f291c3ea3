//! Every handler, event and method of the framework, driven over TCP by
//! third-party clients (rumqttc v4 and v5) against `pigeon::testing::start`.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use pigeon::prelude::*;
use rumqttc::{AsyncClient, ConnectReturnCode, Event as Ev, MqttOptions, Packet as Pk, QoS as Q};
use tokio::{io::AsyncWriteExt, sync::mpsc, time::timeout};

#[injectable]
struct Recorder {
    pigeon: PigeonService,
    #[inject(default)]
    lines: Mutex<Vec<String>>,
}

impl Recorder {
    fn rec(&self, s: String) {
        self.lines.lock().unwrap().push(s);
    }
}

#[derive(serde::Deserialize)]
struct Temp {
    celsius: f64,
}

#[handlers]
impl Recorder {
    #[on_pre_connect]
    async fn pre(&self, client: Client, connect: &mut Connect) -> Result<(), HookError> {
        self.rec(format!("pre_connect {}", connect.client_id));
        if client.id() == "refuse-me" || connect.client_id == "refuse-me" {
            return Err(HookError("refused by pre-connect".into()));
        }
        Ok(())
    }

    #[on_authenticate]
    async fn auth(&self, credential: Credential, client: Client) -> Result<(), AuthError> {
        self.rec(format!("authenticate {}", client.id()));
        match credential.username.as_deref() {
            Some("bad") => Err(AuthError::with_return_code("bad password", 4)),
            Some("panic") => panic!("authenticate exploded"),
            _ => Ok(()),
        }
    }

    #[on_authorize_publish]
    async fn can_publish(
        &self,
        client: Option<Client>,
        packet: &mut Publish,
    ) -> Result<(), Denied> {
        self.rec(format!(
            "authorize_publish {} {}",
            client.is_some(),
            packet.topic
        ));
        if packet.topic == "aaaa" || packet.topic == "forbidden" {
            return Err(Denied::new("wrong topic"));
        }
        if packet.topic == "bbb" {
            packet.payload = "overwrite packet payload".into();
        }
        Ok(())
    }

    #[on_authorize_subscribe]
    async fn can_subscribe(
        &self,
        client: Client,
        mut sub: Subscription,
    ) -> Result<Option<Subscription>, Denied> {
        self.rec(format!("authorize_subscribe {} {}", client.id(), sub.topic));
        match sub.topic.as_str() {
            "aaaa" => Err(Denied::new("wrong topic")),
            "neg" => Ok(None),
            "bbb" => {
                sub.topic = "foo".into();
                sub.set_qos(QoS::AtLeastOnce);
                Ok(Some(sub))
            }
            _ => Ok(Some(sub)),
        }
    }

    #[on_authorize_forward("secret/#")]
    async fn forward(&self, client: Client) -> bool {
        client.id() != "nosecret"
    }

    #[on_published]
    async fn published(&self, topic: Topic) {
        self.rec(format!("published {}", &*topic));
    }

    #[on_publish("sensors/:id/temp")]
    async fn temp(&self, Param(id): Param<String>, Json(t): Json<Temp>) {
        self.rec(format!("temp {id} {}", t.celsius));
    }

    #[on_publish("cmd/pong")]
    async fn pong(&self) {
        let _ = self
            .pigeon
            .publish(Publish::new("test2", QoS::AtMostOnce, "pong"))
            .await;
    }

    #[on_publish]
    async fn publish(&self, topic: Topic, client: Option<Client>, payload: Payload) {
        if !topic.starts_with("$SYS") {
            let who = client.map(|c| c.id().to_owned()).unwrap_or_default();
            self.rec(format!(
                "publish {who} {} {}",
                &*topic,
                String::from_utf8_lossy(&payload)
            ));
        }
    }

    #[on_client]
    async fn client(&self, client: Client) {
        self.rec(format!("client {}", client.id()));
    }
    #[on_client_ready]
    async fn ready(&self, client: Client) {
        self.rec(format!(
            "client_ready {} {}",
            client.id(),
            client.connected()
        ));
    }
    #[on_client_disconnect]
    async fn disconnect(&self, client: Client) {
        self.rec(format!("client_disconnect {}", client.id()));
    }
    #[on_client_error]
    async fn client_error(&self, client: Client, error: Error) {
        self.rec(format!("client_error {} {error}", client.id()));
    }
    #[on_connection_error]
    async fn connection_error(&self, client: Client, error: Error) {
        self.rec(format!("connection_error {} {error}", client.id()));
    }
    #[on_keepalive_timeout]
    async fn keepalive(&self, client: Client) {
        self.rec(format!("keepalive_timeout {}", client.id()));
    }
    #[on_ack]
    async fn ack(&self, client: Client, packet: Packet<Publish>) {
        self.rec(format!("ack {} {}", client.id(), packet.0.topic));
    }
    #[on_subscribe]
    async fn subscribe(&self, client: Client, subs: Subscriptions) {
        let topics: Vec<_> = subs.0.iter().map(|s| s.topic.clone()).collect();
        self.rec(format!("subscribe {} {}", client.id(), topics.join(",")));
    }
    #[on_unsubscribe]
    async fn unsubscribe(&self, client: Client, u: Unsubscriptions) {
        self.rec(format!("unsubscribe {} {}", client.id(), u.0.join(",")));
    }
    #[on_connack_sent]
    async fn connack(&self, client: Client, packet: Packet<ConnAck>) {
        self.rec(format!(
            "connack_sent {} {:?}",
            client.id(),
            packet.0.reason_code
        ));
    }
    #[on_ping]
    async fn ping(&self, client: Client) {
        self.rec(format!("ping {}", client.id()));
    }
    #[on_closed]
    async fn closed(&self) {
        self.rec("closed".into());
    }
}

#[module(providers = [Recorder])]
struct E2eModule;

async fn start() -> (App, Arc<Recorder>) {
    let app = pigeon::testing::start::<E2eModule>()
        .await
        .expect("module starts");
    let rec = app.get::<Recorder>().expect("recorder");
    (app, rec)
}

/// Waits until a recorded line satisfies `pred` (fails after 5 s).
async fn wait_line(rec: &Recorder, pred: impl Fn(&str) -> bool) -> String {
    for _ in 0..250 {
        if let Some(l) = rec.lines.lock().unwrap().iter().find(|l| pred(l)) {
            return l.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no such line in {:#?}", rec.lines.lock().unwrap());
}

fn has(rec: &Recorder, line: &str) -> bool {
    rec.lines.lock().unwrap().iter().any(|l| l == line)
}

type Events<T> = mpsc::UnboundedReceiver<Result<T, String>>;

fn v4(addr: SocketAddr, id: &str, user: Option<&str>) -> (AsyncClient, Events<Ev>) {
    let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    opts.set_keep_alive(Duration::from_secs(30));
    if let Some(u) = user {
        opts.set_credentials(u, "pw");
    }
    let (client, rx, _task) = v4_with(opts);
    (client, rx)
}

/// A v4 client with `opts`; aborting the task drops the connection uncleanly.
fn v4_with(opts: MqttOptions) -> (AsyncClient, Events<Ev>, tokio::task::JoinHandle<()>) {
    let (client, mut ev) = AsyncClient::new(opts, 32);
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match ev.poll().await {
                Ok(e) => {
                    if std::env::var("E2E_DEBUG").is_ok() {
                        eprintln!("{e:?}");
                    }
                    if tx.send(Ok(e)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("{e:?}")));
                    return;
                }
            }
        }
    });
    (client, rx, task)
}

/// The first event `f` picks (fails after 5 s).
async fn next<T, R>(rx: &mut Events<T>, mut f: impl FnMut(Result<T, String>) -> Option<R>) -> R {
    timeout(Duration::from_secs(5), async {
        loop {
            match rx.recv().await {
                Some(e) => {
                    if let Some(r) = f(e) {
                        return r;
                    }
                }
                None => panic!("event loop ended"),
            }
        }
    })
    .await
    .expect("expected event")
}

async fn connected(rx: &mut Events<Ev>) {
    next(rx, |e| match e {
        Ok(Ev::Incoming(Pk::ConnAck(_))) => Some(()),
        Err(e) => panic!("connect failed: {e}"),
        _ => None,
    })
    .await
}

async fn refused(rx: &mut Events<Ev>) -> String {
    next(rx, |e| match e {
        Ok(Ev::Incoming(Pk::ConnAck(a))) => panic!("accepted: {a:?}"),
        Err(e) => Some(e),
        _ => None,
    })
    .await
}

async fn message(rx: &mut Events<Ev>) -> (String, String) {
    next(rx, |e| match e {
        Ok(Ev::Incoming(Pk::Publish(p))) => Some((
            p.topic.clone(),
            String::from_utf8_lossy(&p.payload).into_owned(),
        )),
        Err(e) => panic!("{e}"),
        _ => None,
    })
    .await
}

async fn suback(rx: &mut Events<Ev>) -> Vec<rumqttc::SubscribeReasonCode> {
    next(rx, |e| match e {
        Ok(Ev::Incoming(Pk::SubAck(s))) => Some(s.return_codes),
        Err(e) => panic!("{e}"),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn authenticate_accepts_refuses_with_code_and_survives_panics_v4() {
    let (app, rec) = start().await;
    let addr = app.local_addr();
    let (_c, mut rx) = v4(addr, "good", Some("alice"));
    connected(&mut rx).await;
    let (_c, mut rx) = v4(addr, "badpw", Some("bad"));
    let e = refused(&mut rx).await;
    assert!(
        e.contains(&format!("{:?}", ConnectReturnCode::BadUserNamePassword)),
        "{e}"
    );
    let (_c, mut rx) = v4(addr, "boom", Some("panic"));
    let e = refused(&mut rx).await;
    assert!(
        e.contains(&format!("{:?}", ConnectReturnCode::ServiceUnavailable)),
        "{e}"
    );
    let line = wait_line(&rec, |l| l.starts_with("connection_error boom")).await;
    assert!(line.contains("authenticate exploded"), "{line}");
    // The broker carries on.
    let (_c, mut rx) = v4(addr, "after", None);
    connected(&mut rx).await;
    app.close().await;
}

#[tokio::test]
async fn authenticate_refusal_carries_v5_reason_codes() {
    use rumqttc::v5::{
        mqttbytes::v5::ConnectReturnCode as Rc5, AsyncClient as C5, ConnectionError,
        MqttOptions as O5,
    };
    let (app, _rec) = start().await;
    let addr = app.local_addr();
    for (user, want) in [
        ("bad", Rc5::BadUserNamePassword),
        ("panic", Rc5::UnspecifiedError),
    ] {
        let mut opts = O5::new(format!("v5-{user}"), addr.ip().to_string(), addr.port());
        opts.set_credentials(user, "pw");
        let (_c, mut ev) = C5::new(opts, 8);
        let err = timeout(Duration::from_secs(5), async {
            loop {
                if let Err(e) = ev.poll().await {
                    return e;
                }
            }
        })
        .await
        .unwrap();
        match err {
            ConnectionError::ConnectionRefused(code) => assert_eq!(code, want),
            other => panic!("{other:?}"),
        }
    }
    app.close().await;
}

#[tokio::test]
async fn pre_connect_refusal_is_a_connection_error() {
    let (app, rec) = start().await;
    let (_c, mut rx) = v4(app.local_addr(), "refuse-me", None);
    refused(&mut rx).await;
    wait_line(&rec, |l| l.starts_with("connection_error refuse-me")).await;
    assert!(
        !has(&rec, "authenticate refuse-me"),
        "authenticate must not run after a refusal"
    );
    app.close().await;
}

#[tokio::test]
async fn authorize_publish_refuses_disconnects_and_rewrites_v4() {
    let (app, rec) = start().await;
    let addr = app.local_addr();
    let (sub, mut srx) = v4(addr, "sub", None);
    connected(&mut srx).await;
    // (`bbb` itself would be rewritten to `foo` by the subscribe handler.)
    sub.subscribe("+", Q::AtMostOnce).await.unwrap();
    suback(&mut srx).await;

    let (publ, mut prx) = v4(addr, "pub", None);
    connected(&mut prx).await;
    publ.publish("bbb", Q::AtMostOnce, false, "original")
        .await
        .unwrap();
    assert_eq!(
        message(&mut srx).await,
        ("bbb".into(), "overwrite packet payload".into())
    );

    publ.publish("forbidden", Q::AtMostOnce, false, "nope")
        .await
        .unwrap();
    // MQTT-3.3.5-2: 3.1.1 publisher is disconnected, nothing is sent back.
    let e = next(&mut prx, |e| e.err()).await;
    assert!(!e.is_empty());
    wait_line(&rec, |l| l.starts_with("client_error pub wrong topic")).await;
    // The subscriber never saw `aaaa`, and `$SYS/` stays denied.
    let (sys, mut yrx) = v4(addr, "sys", None);
    connected(&mut yrx).await;
    sys.publish("$SYS/fake", Q::AtMostOnce, false, "x")
        .await
        .unwrap();
    next(&mut yrx, |e| e.err()).await;
    // Events keep their order: once the `$SYS` refusal is reported, every report of
    // the earlier refusal is in, and one refusal is reported once.
    wait_line(&rec, |l| l.starts_with("client_error sys")).await;
    let reports = rec
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("client_error pub wrong topic"))
        .count();
    assert_eq!(reports, 1, "one refused publish, one client_error");
    sub.publish("bbb", Q::AtMostOnce, false, "again")
        .await
        .unwrap();
    // The next message the subscriber gets is this one, not `forbidden`.
    assert_eq!(
        message(&mut srx).await,
        ("bbb".into(), "overwrite packet payload".into())
    );
    app.close().await;
}

#[tokio::test]
async fn authorize_publish_refusal_is_puback_0x87_for_v5() {
    use rumqttc::v5::{
        mqttbytes::v5::{Packet as P5, PubAckReason},
        mqttbytes::QoS as Q5,
        AsyncClient as C5, Event as E5, MqttOptions as O5,
    };
    let (app, _rec) = start().await;
    let addr = app.local_addr();
    let (c, mut ev) = C5::new(O5::new("v5pub", addr.ip().to_string(), addr.port()), 8);
    c.publish("aaaa", Q5::AtLeastOnce, false, "x")
        .await
        .unwrap();
    let reason = timeout(Duration::from_secs(5), async {
        loop {
            match ev.poll().await {
                Ok(E5::Incoming(P5::PubAck(a))) => return a.reason,
                Ok(_) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(reason, PubAckReason::NotAuthorized);
    app.close().await;
}

#[tokio::test]
async fn authorize_subscribe_refuses_negates_and_rewrites() {
    use rumqttc::{SubscribeFilter, SubscribeReasonCode as S};
    let (app, _rec) = start().await;
    let addr = app.local_addr();
    let (c, mut rx) = v4(addr, "subs", None);
    connected(&mut rx).await;
    let filters =
        ["aaaa", "neg", "bbb", "plain"].map(|t| SubscribeFilter::new(t.into(), Q::AtMostOnce));
    c.subscribe_many(filters).await.unwrap();
    let codes = suback(&mut rx).await;
    assert_eq!(
        codes,
        [
            S::Failure,
            S::Failure,
            S::Success(Q::AtLeastOnce),
            S::Success(Q::AtMostOnce)
        ]
    );
    // `bbb` became `foo` at QoS 1.
    let (p, mut prx) = v4(addr, "pfoo", None);
    connected(&mut prx).await;
    p.publish("foo", Q::AtLeastOnce, false, "via foo")
        .await
        .unwrap();
    assert_eq!(message(&mut rx).await, ("foo".into(), "via foo".into()));
    app.close().await;
}

#[tokio::test]
async fn authorize_forward_drops_per_subscriber() {
    let (app, _rec) = start().await;
    let addr = app.local_addr();
    let (a, mut arx) = v4(addr, "nosecret", None);
    let (b, mut brx) = v4(addr, "insider", None);
    connected(&mut arx).await;
    connected(&mut brx).await;
    for (c, rx) in [(&a, &mut arx), (&b, &mut brx)] {
        c.subscribe("secret/#", Q::AtMostOnce).await.unwrap();
        c.subscribe("open", Q::AtMostOnce).await.unwrap();
        suback(rx).await;
        suback(rx).await;
    }
    let svc = app.service();
    svc.publish(Publish::new("secret/plan", QoS::AtMostOnce, "s"))
        .await
        .unwrap();
    svc.publish(Publish::new("open", QoS::AtMostOnce, "o"))
        .await
        .unwrap();
    assert_eq!(message(&mut brx).await.0, "secret/plan");
    assert_eq!(message(&mut arx).await.0, "open", "nosecret got the secret");
    app.close().await;
}

#[tokio::test]
async fn every_event_fires_with_its_values() {
    let (app, rec) = start().await;
    let addr = app.local_addr();
    let (c, mut rx) = v4(addr, "ev", None);
    connected(&mut rx).await;
    c.subscribe("t/#", Q::AtLeastOnce).await.unwrap();
    suback(&mut rx).await;
    c.publish("t/1", Q::AtLeastOnce, false, "hello")
        .await
        .unwrap();
    message(&mut rx).await;
    c.unsubscribe("t/#").await.unwrap();
    c.publish(
        "sensors/9/temp",
        Q::AtMostOnce,
        false,
        r#"{"celsius": 3.5}"#,
    )
    .await
    .unwrap();
    c.publish("sensors/9/temp", Q::AtMostOnce, false, "not json")
        .await
        .unwrap();
    wait_line(&rec, |l| l == "client ev").await;
    wait_line(&rec, |l| l == "connack_sent ev Success").await;
    wait_line(&rec, |l| l == "client_ready ev true").await;
    wait_line(&rec, |l| l == "subscribe ev t/#").await;
    wait_line(&rec, |l| l == "authorize_publish true t/1").await;
    wait_line(&rec, |l| l == "published t/1").await;
    wait_line(&rec, |l| l == "publish ev t/1 hello").await;
    wait_line(&rec, |l| l == "ack ev t/1").await;
    wait_line(&rec, |l| l == "unsubscribe ev t/#").await;
    wait_line(&rec, |l| l == "temp 9 3.5").await;
    let e = wait_line(&rec, |l| l.starts_with("client_error ev Recorder::temp")).await;
    assert!(e.contains("parameter #1 `Json(t)`"), "{e}");
    c.disconnect().await.unwrap();
    wait_line(&rec, |l| l == "client_disconnect ev").await;

    // PINGREQ and keep-alive timeout, with a raw client (keep alive 1 s, then silence).
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connect = [
        0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 1, 0, 2, b'k', b'a',
    ];
    raw.write_all(&connect).await.unwrap();
    raw.write_all(&[0xC0, 0]).await.unwrap();
    wait_line(&rec, |l| l == "ping ka").await;
    wait_line(&rec, |l| l == "keepalive_timeout ka").await;

    app.close().await;
    assert!(has(&rec, "closed"), "closed fires on close");
}

#[tokio::test]
async fn pigeon_service_publishes_bypassing_authorization_reports_and_closes() {
    let (app, rec) = start().await;
    let addr = app.local_addr();
    let (c, mut rx) = v4(addr, "svc", None);
    connected(&mut rx).await;
    c.subscribe("forbidden", Q::AtMostOnce).await.unwrap();
    c.subscribe("test2", Q::AtMostOnce).await.unwrap();
    suback(&mut rx).await;
    suback(&mut rx).await;
    let svc = app.service();
    // `forbidden` is refused for clients, not for the broker's own publish.
    svc.publish(Publish::new("forbidden", QoS::AtMostOnce, "from broker"))
        .await
        .unwrap();
    assert_eq!(
        message(&mut rx).await,
        ("forbidden".into(), "from broker".into())
    );
    assert!(!has(&rec, "authorize_publish false forbidden"));
    // A handler using the injected service.
    c.publish("cmd/pong", Q::AtMostOnce, false, "")
        .await
        .unwrap();
    assert_eq!(message(&mut rx).await, ("test2".into(), "pong".into()));

    let broker = svc.broker().expect("started");
    assert!(broker.clients().contains(&"svc".to_owned()));
    assert!(broker
        .subscriptions()
        .iter()
        .any(|(id, f, _)| id == "svc" && f == "test2"));
    assert!(svc.stats().unwrap().clients_connected >= 1);

    svc.close().await;
    next(&mut rx, |e| e.err()).await;
    app.flush_events().await;
    assert!(has(&rec, "closed"));
}

#[tokio::test]
async fn authorize_subscribe_runs_again_when_a_session_is_restored() {
    let (app, rec) = start().await;
    let addr = app.local_addr();
    let opts = || {
        let mut o = MqttOptions::new("persist", addr.ip().to_string(), addr.port());
        o.set_clean_session(false);
        o
    };
    let (c, mut rx, _t) = v4_with(opts());
    connected(&mut rx).await;
    c.subscribe("keep/1", Q::AtLeastOnce).await.unwrap();
    suback(&mut rx).await;
    c.disconnect().await.unwrap();
    wait_line(&rec, |l| l == "client_disconnect persist").await;
    let count = || {
        rec.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| *l == "authorize_subscribe persist keep/1")
            .count()
    };
    assert_eq!(count(), 1);
    let (_c, mut rx, _t) = v4_with(opts());
    connected(&mut rx).await;
    wait_line(&rec, |l| l == "client_ready persist true").await;
    for _ in 0..100 {
        if count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count(), 2, "restored subscriptions are authorized again");
    app.close().await;
}

#[tokio::test]
async fn wills_go_through_authorize_publish() {
    let (app, rec) = start().await;
    let addr = app.local_addr();
    let (s, mut srx) = v4(addr, "watcher", None);
    connected(&mut srx).await;
    s.subscribe("will/+", Q::AtMostOnce).await.unwrap();
    suback(&mut srx).await;
    let mut opts = MqttOptions::new("dying", addr.ip().to_string(), addr.port());
    opts.set_last_will(rumqttc::LastWill::new(
        "will/bbb",
        "gone",
        Q::AtMostOnce,
        false,
    ));
    let (_c, mut rx, task) = v4_with(opts);
    connected(&mut rx).await;
    task.abort();
    // The will is published, authorized (and rewritten) like any publish.
    let (topic, payload) = message(&mut srx).await;
    assert_eq!((topic.as_str(), payload.as_str()), ("will/bbb", "gone"));
    wait_line(&rec, |l| {
        l.starts_with("authorize_publish") && l.ends_with("will/bbb")
    })
    .await;
    app.close().await;
}
