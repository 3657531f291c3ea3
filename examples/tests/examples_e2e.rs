//! The examples' modules, started in-process on ephemeral ports and driven by
//! a third-party client (rumqttc), checking what each example promises.

use std::{net::SocketAddr, time::Duration};

use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet, QoS, SubscribeReasonCode,
};
use tokio::{sync::mpsc, time::timeout};

#[allow(dead_code)]
#[path = "../examples/seed_handlers.rs"]
mod seed_handlers;

#[allow(dead_code)]
#[path = "../examples/auth.rs"]
mod auth;

#[allow(dead_code)]
#[path = "../examples/json_routes.rs"]
mod json_routes;

type Events = mpsc::UnboundedReceiver<Result<Event, String>>;

fn client(addr: SocketAddr, id: &str, creds: Option<(&str, &str)>) -> (AsyncClient, Events) {
    let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    if let Some((u, p)) = creds {
        opts.set_credentials(u, p);
    }
    let (c, mut ev) = AsyncClient::new(opts, 16);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let r = ev.poll().await.map_err(|e| format!("{e:?}"));
            let end = r.is_err();
            if tx.send(r).is_err() || end {
                return;
            }
        }
    });
    (c, rx)
}

async fn next<R>(rx: &mut Events, mut f: impl FnMut(Result<Event, String>) -> Option<R>) -> R {
    timeout(Duration::from_secs(5), async {
        loop {
            if let Some(r) = f(rx.recv().await.expect("event loop ended")) {
                return r;
            }
        }
    })
    .await
    .expect("expected event")
}

async fn connack(rx: &mut Events) -> Result<(), String> {
    next(rx, |e| match e {
        Ok(Event::Incoming(Packet::ConnAck(_))) => Some(Ok(())),
        Err(e) => Some(Err(e)),
        _ => None,
    })
    .await
}

async fn suback(rx: &mut Events) -> Vec<SubscribeReasonCode> {
    next(rx, |e| match e {
        Ok(Event::Incoming(Packet::SubAck(s))) => Some(s.return_codes),
        Err(e) => panic!("{e}"),
        _ => None,
    })
    .await
}

async fn message(rx: &mut Events) -> (String, String) {
    next(rx, |e| match e {
        Ok(Event::Incoming(Packet::Publish(p))) => {
            Some((p.topic, String::from_utf8_lossy(&p.payload).into_owned()))
        }
        Err(e) => panic!("{e}"),
        _ => None,
    })
    .await
}

async fn closed(rx: &mut Events) {
    next(rx, |e| e.err()).await;
}

#[tokio::test]
async fn seed_handlers_behave_as_the_seed_snippets() {
    let app = pigeon::testing::start::<seed_handlers::AppModule>()
        .await
        .unwrap();
    let addr = app.local_addr();
    let (s, mut srx) = client(addr, "sub", None);
    connack(&mut srx).await.unwrap();
    s.subscribe("aaaa", QoS::AtMostOnce).await.unwrap();
    assert_eq!(suback(&mut srx).await, [SubscribeReasonCode::Failure]);
    s.subscribe("bbb", QoS::AtMostOnce).await.unwrap();
    assert_eq!(
        suback(&mut srx).await,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    s.subscribe("test2", QoS::AtMostOnce).await.unwrap();
    suback(&mut srx).await;
    s.subscribe("+", QoS::AtMostOnce).await.unwrap();
    suback(&mut srx).await;

    let (p, mut prx) = client(addr, "pub", None);
    connack(&mut prx).await.unwrap();
    p.publish("bbb", QoS::AtMostOnce, false, "original")
        .await
        .unwrap();
    assert_eq!(
        message(&mut srx).await,
        ("bbb".into(), "overwrite packet payload".into())
    );
    // `bbb` was subscribed as `foo`.
    p.publish("foo", QoS::AtMostOnce, false, "f").await.unwrap();
    assert_eq!(message(&mut srx).await, ("foo".into(), "f".into()));
    p.publish("ping", QoS::AtMostOnce, false, "").await.unwrap();
    let mut got = vec![message(&mut srx).await, message(&mut srx).await];
    got.sort();
    assert_eq!(
        got,
        [("ping".into(), "".into()), ("test2".into(), "pong".into())]
    );
    p.publish("aaaa", QoS::AtMostOnce, false, "x")
        .await
        .unwrap();
    closed(&mut prx).await;
    app.close().await;
}

#[tokio::test]
async fn auth_checks_passwords_and_per_user_topics() {
    // The module's value points at the bundled users file.
    let app = pigeon::testing::start::<auth::AppModule>().await.unwrap();
    let addr = app.local_addr();

    let (_c, mut rx) = client(addr, "intruder", Some(("alice", "nope")));
    let err = connack(&mut rx).await.unwrap_err();
    assert!(
        err.contains(&format!("{:?}", ConnectReturnCode::BadUserNamePassword)),
        "{err}"
    );

    let (bob, mut brx) = client(addr, "bob", Some(("bob", "builder")));
    connack(&mut brx).await.unwrap();
    bob.subscribe("chat/#", QoS::AtMostOnce).await.unwrap();
    bob.subscribe("alice/#", QoS::AtMostOnce).await.unwrap();
    assert_eq!(
        suback(&mut brx).await,
        [SubscribeReasonCode::Success(QoS::AtMostOnce)]
    );
    assert_eq!(suback(&mut brx).await, [SubscribeReasonCode::Failure]);

    let (alice, mut arx) = client(addr, "alice", Some(("alice", "wonderland")));
    connack(&mut arx).await.unwrap();
    alice
        .publish("chat/room", QoS::AtMostOnce, false, "hi bob")
        .await
        .unwrap();
    assert_eq!(
        message(&mut brx).await,
        ("chat/room".into(), "hi bob".into())
    );
    alice
        .publish("bob/inbox", QoS::AtMostOnce, false, "sneaky")
        .await
        .unwrap();
    closed(&mut arx).await;
    app.close().await;
}

#[tokio::test]
async fn auth_refuses_to_start_on_a_missing_users_file_naming_it() {
    let missing = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/no_such_users.toml");
    let err = pigeon::Pigeon::builder::<auth::AppModule>()
        .value(auth::UsersPath(missing.into()))
        .configure(|c| {
            c.host = "127.0.0.1".into();
            c.port = 0;
        })
        .bootstrap()
        .await
        .err()
        .expect("a missing users file must stop the start-up");
    let msg = err.to_string();
    assert!(msg.starts_with("provider `UserStore`: "), "{msg}");
    assert!(msg.contains("no_such_users.toml"), "{msg}");
}

#[tokio::test]
async fn json_routes_collects_telemetry_and_refuses_garbage() {
    let app = pigeon::testing::start::<json_routes::AppModule>()
        .await
        .unwrap();
    let addr = app.local_addr();
    let (s, mut srx) = client(addr, "dashboard", None);
    connack(&mut srx).await.unwrap();
    s.subscribe("devices/+/summary", QoS::AtLeastOnce)
        .await
        .unwrap();
    suback(&mut srx).await;

    let (d, mut drx) = client(addr, "d7", None);
    connack(&mut drx).await.unwrap();
    for t in ["20.0", "24.0"] {
        let body = format!(r#"{{"temperature": {t}, "humidity": 40}}"#);
        d.publish("devices/d7/telemetry", QoS::AtLeastOnce, false, body)
            .await
            .unwrap();
    }
    let (_, first) = message(&mut srx).await;
    let (topic, second) = message(&mut srx).await;
    assert_eq!(topic, "devices/d7/summary");
    assert!(first.contains(r#""readings":1"#), "{first}");
    let v: serde_json::Value = serde_json::from_str(&second).unwrap();
    assert_eq!(v["readings"], 2);
    assert_eq!(v["mean_temperature"], 22.0);
    assert_eq!(v["max_temperature"], 24.0);

    // Malformed telemetry is refused (3.1.1: the device is disconnected)...
    d.publish("devices/d7/telemetry", QoS::AtLeastOnce, false, "garbage")
        .await
        .unwrap();
    closed(&mut drx).await;
    // ...and devices cannot forge summaries.
    let (f, mut frx) = client(addr, "forger", None);
    connack(&mut frx).await.unwrap();
    f.publish("devices/d7/summary", QoS::AtMostOnce, false, "{}")
        .await
        .unwrap();
    closed(&mut frx).await;
    // The dashboard's next message is the next real summary: nothing forged in between.
    let (d, mut drx) = client(addr, "d7b", None);
    connack(&mut drx).await.unwrap();
    d.publish(
        "devices/d7/telemetry",
        QoS::AtLeastOnce,
        false,
        r#"{"temperature": 22}"#,
    )
    .await
    .unwrap();
    let (_, third) = message(&mut srx).await;
    assert!(third.contains(r#""readings":3"#), "{third}");
    app.close().await;
}
