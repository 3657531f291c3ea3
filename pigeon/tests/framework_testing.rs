//! `pigeon::testing`: a module started with fakes in place of providers and
//! changed options, and the test client (MQTT 3.1.1 and 5 over TCP) with its
//! expectations and the failures it reports.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use pigeon::{
    codec::{Protocol, ReasonCode, Will},
    prelude::*,
    testing::{ClientError, Test, TestApp},
    BootstrapError,
};

// The README's example, compiled and run here as it is printed there.
#[path = "framework_testing/readme.rs"]
mod readme;

const SOON: Duration = Duration::from_secs(2);

/// The accounts an `#[on_authenticate]` checks; empty unless replaced.
#[injectable]
struct Accounts {
    #[inject(default)]
    passwords: HashMap<String, String>,
    #[inject(default)]
    checked: Mutex<Vec<String>>,
}

impl Accounts {
    fn with(user: &str, password: &str) -> Self {
        Self {
            passwords: HashMap::from([(user.to_owned(), password.to_owned())]),
            checked: Mutex::default(),
        }
    }
}

#[injectable]
struct Gate {
    accounts: Arc<Accounts>,
}

#[handlers]
impl Gate {
    #[on_authenticate]
    async fn login(&self, credential: Credential) -> Result<(), AuthError> {
        let user = credential.username.unwrap_or_default();
        self.accounts.checked.lock().unwrap().push(user.clone());
        let known = self.accounts.passwords.get(&user).map(|p| p.as_bytes());
        match (known, credential.password.as_deref()) {
            (Some(known), Some(given)) if known == given => Ok(()),
            _ => Err(AuthError::bad_credentials("who are you?")),
        }
    }
}

#[module(providers = [Accounts, Gate])]
struct GateModule;

/// Refuses publishes to `forbidden/...`; everything else goes.
#[injectable]
struct Guard;

#[handlers]
impl Guard {
    #[on_authorize_publish]
    async fn publish(&self, packet: &mut Publish) -> Result<(), Denied> {
        if packet.topic.starts_with("forbidden/") {
            return Err(Denied::new("not here"));
        }
        Ok(())
    }
}

#[module(providers = [Guard])]
struct OpenModule;

/// Not a provider of any module.
struct Unrelated;

async fn open() -> TestApp {
    Test::module::<OpenModule>().start().await.expect("starts")
}

#[tokio::test]
async fn a_fake_provider_is_the_one_the_handlers_use() {
    let fake = Arc::new(Accounts::with("alice", "pw"));
    let app = Test::module::<GateModule>()
        .override_provider::<Accounts>(fake.clone())
        .start()
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&app.get::<Accounts>().unwrap(), &fake));

    let alice = app.client("a1").credentials("alice", "pw").connect().await;
    assert!(alice.is_ok(), "{:?}", alice.err());
    let bob = app.client("b1").credentials("bob", "pw").connect().await;
    assert_eq!(
        bob.unwrap_err().code(),
        Some(ReasonCode::BadUserNameOrPassword)
    );
    assert_eq!(*fake.checked.lock().unwrap(), ["alice", "bob"]);
    app.close().await;

    // Without the override the module's own (empty) accounts refuse alice.
    let app = Test::module::<GateModule>().start().await.unwrap();
    let alice = app.client("a2").credentials("alice", "pw").connect().await;
    assert_eq!(
        alice.unwrap_err().code(),
        Some(ReasonCode::BadUserNameOrPassword)
    );
    app.close().await;
}

#[tokio::test]
async fn overriding_a_type_the_module_does_not_provide_fails() {
    let err = Test::module::<GateModule>()
        .override_provider::<Unrelated>(Unrelated)
        .start()
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, BootstrapError::NotAProvider(_)), "{err}");
    assert!(
        err.to_string()
            .contains("Unrelated` is not a provider of the module"),
        "{err}"
    );
}

#[tokio::test]
async fn a_refused_connect_reports_the_reason_code() {
    let app = Test::module::<GateModule>().start().await.unwrap();
    let v5 = app
        .client("c1")
        .credentials("c1", "x")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(
        v5.to_string(),
        "connect of `c1` refused: 0x86 bad user name or password (who are you?)"
    );
    // 3.1.1 has the return code (4, mapped to 0x86) and no reason string.
    let v311 = app.client("c2").v311().connect().await.unwrap_err();
    assert!(matches!(
        v311,
        ClientError::Refused {
            code: ReasonCode::BadUserNameOrPassword,
            ..
        }
    ));
    assert_eq!(
        v311.to_string(),
        "connect of `c2` refused: 0x86 bad user name or password"
    );
    app.close().await;
}

#[tokio::test]
async fn configure_changes_the_module_options() {
    let app = Test::module::<OpenModule>()
        .configure(|config| config.max_topic_levels = 2)
        .start()
        .await
        .unwrap();
    assert_eq!(app.local_addr().ip().to_string(), "127.0.0.1");
    let client = app.client("c").connect().await.unwrap();
    assert_eq!(
        client.subscribe("a/b", QoS::AtMostOnce).await.unwrap(),
        QoS::AtMostOnce
    );
    let err = client
        .subscribe("a/b/c", QoS::AtMostOnce)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ReasonCode::TopicFilterInvalid), "{err}");
    assert!(
        err.to_string()
            .starts_with("subscribe of `c` to `a/b/c` refused: 0x8F"),
        "{err}"
    );
    app.close().await;
}

#[tokio::test]
async fn every_qos_on_3_1_1_and_5_arrives_once() {
    let app = open().await;
    for (n, (sub_protocol, pub_protocol)) in [
        (Protocol::V3_1_1, Protocol::V3_1_1),
        (Protocol::V3_1_1, Protocol::V5),
        (Protocol::V5, Protocol::V3_1_1),
        (Protocol::V5, Protocol::V5),
    ]
    .into_iter()
    .enumerate()
    {
        let sub = app
            .client(format!("sub{n}"))
            .protocol(sub_protocol)
            .connect()
            .await
            .unwrap();
        let publisher = app
            .client(format!("pub{n}"))
            .protocol(pub_protocol)
            .connect()
            .await
            .unwrap();
        let filter = format!("qos/{n}/+");
        assert_eq!(
            sub.subscribe(&filter, QoS::ExactlyOnce).await.unwrap(),
            QoS::ExactlyOnce
        );
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let topic = format!("qos/{n}/{}", u8::from(qos));
            publisher
                .publish_with(&topic, "hello")
                .qos(qos)
                .await
                .unwrap();
            let message = sub.expect_message(SOON).await;
            assert_eq!(
                (message.topic.as_str(), message.text(), message.qos),
                (topic.as_str(), "hello", qos)
            );
            assert!(!message.retain);
        }
        // Acknowledged by the client's own task: nothing is sent again.
        sub.ping().await.unwrap();
        sub.expect_no_message(Duration::from_millis(100)).await;
    }
    app.close().await;
}

#[tokio::test]
async fn mqtt5_properties_round_trip() {
    let app = open().await;
    let sub = app.client("sub").connect().await.unwrap();
    sub.subscribe("rpc/#", QoS::AtLeastOnce).await.unwrap();
    let requester = app.client("req").connect().await.unwrap();
    requester
        .publish_with("rpc/users/get", r#"{"id":7}"#)
        .qos(QoS::AtLeastOnce)
        .response_topic("replies/req")
        .correlation_data("corr-1")
        .content_type("application/json")
        .user_property("trace", "abc")
        .user_property("trace", "def")
        .await
        .unwrap();
    let message = sub.expect_message(SOON).await;
    assert_eq!(message.response_topic(), Some("replies/req"));
    assert_eq!(message.correlation_data(), Some(&b"corr-1"[..]));
    assert_eq!(message.content_type(), Some("application/json"));
    assert_eq!(message.user_property("trace"), Some("abc"));
    assert_eq!(
        message.properties.user_properties,
        [
            ("trace".to_owned(), "abc".to_owned()),
            ("trace".to_owned(), "def".to_owned())
        ]
    );
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Request {
        id: u32,
    }
    assert_eq!(message.json::<Request>(), Request { id: 7 });
    app.close().await;
}

#[tokio::test]
async fn properties_on_a_3_1_1_client_are_an_error_not_dropped() {
    let app = open().await;
    let old = app.client("old").v311().connect().await.unwrap();
    let err = old
        .publish_with("a", "b")
        .content_type("text/plain")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NeedsV5 { .. }), "{err}");
    assert!(err.to_string().contains("need MQTT 5"), "{err}");
    let err = app
        .client("old2")
        .v311()
        .session_expiry(SOON)
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NeedsV5 { .. }), "{err}");
    app.close().await;
}

#[tokio::test]
async fn a_refused_publish_reports_the_handlers_code() {
    let app = open().await;
    let client = app.client("c").connect().await.unwrap();
    let err = client
        .publish_with("forbidden/x", "no")
        .qos(QoS::AtLeastOnce)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "publish of `c` to `forbidden/x` at QoS 1 refused: 0x87 not authorized (not here)"
    );
    let err = client
        .publish_with("forbidden/y", "no")
        .qos(QoS::ExactlyOnce)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ReasonCode::NotAuthorized));
    client
        .publish_with("allowed/x", "yes")
        .qos(QoS::ExactlyOnce)
        .await
        .unwrap();
    app.close().await;
}

#[tokio::test]
#[should_panic(expected = "expected a message on client `idle` within 100ms, got none")]
async fn expect_message_panics_when_nothing_comes() {
    let app = open().await;
    let idle = app.client("idle").connect().await.unwrap();
    idle.subscribe("quiet/#", QoS::AtLeastOnce).await.unwrap();
    idle.expect_message(Duration::from_millis(100)).await;
}

#[tokio::test]
#[should_panic(expected = "expected no message on client `busy` for 1s, got one on `noisy/1`")]
async fn expect_no_message_panics_when_one_comes() {
    let app = open().await;
    let busy = app.client("busy").connect().await.unwrap();
    busy.subscribe("noisy/#", QoS::AtLeastOnce).await.unwrap();
    busy.publish_with("noisy/1", "!")
        .qos(QoS::AtLeastOnce)
        .await
        .unwrap();
    busy.expect_no_message(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_retained_message_reaches_a_later_subscriber() {
    let app = open().await;
    let publisher = app.client("pub").v311().connect().await.unwrap();
    publisher
        .publish_with("status/door", "open")
        .qos(QoS::AtLeastOnce)
        .retain(true)
        .await
        .unwrap();
    for protocol in [Protocol::V3_1_1, Protocol::V5] {
        let late = app
            .client(format!("late-{protocol:?}"))
            .protocol(protocol)
            .connect()
            .await
            .unwrap();
        late.subscribe("status/#", QoS::AtLeastOnce).await.unwrap();
        let message = late.expect_message(SOON).await;
        assert_eq!(
            (message.topic.as_str(), message.text(), message.retain),
            ("status/door", "open", true)
        );
    }
    app.close().await;
}

#[tokio::test]
async fn the_will_is_published_when_the_connection_is_lost_not_on_disconnect() {
    let app = open().await;
    let watcher = app.client("watcher").connect().await.unwrap();
    watcher
        .subscribe("wills/#", QoS::AtLeastOnce)
        .await
        .unwrap();

    let polite = app
        .client("polite")
        .v311()
        .will("wills/polite", "gone")
        .connect()
        .await
        .unwrap();
    polite.disconnect().await.unwrap();

    let will = Will {
        topic: "wills/crashed".into(),
        payload: "lost".into(),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    };
    let crashed = app
        .client("crashed")
        .will_with(will)
        .connect()
        .await
        .unwrap();
    crashed.drop_connection().await;
    let message = watcher.expect_message(SOON).await;
    assert_eq!(
        (message.topic.as_str(), message.text(), message.qos),
        ("wills/crashed", "lost", QoS::AtLeastOnce)
    );
    watcher.expect_no_message(Duration::from_millis(200)).await;
    app.close().await;
}

#[tokio::test]
async fn a_persistent_session_keeps_what_came_while_away() {
    let app = open().await;
    let options = |id| {
        app.client(id)
            .clean_start(false)
            .session_expiry(Duration::from_secs(60))
    };
    let device = options("dev").connect().await.unwrap();
    assert!(!device.session_present());
    device.subscribe("cmd/dev", QoS::AtLeastOnce).await.unwrap();
    device.disconnect().await.unwrap();

    let sender = app.client("sender").connect().await.unwrap();
    sender
        .publish_with("cmd/dev", "reboot")
        .qos(QoS::AtLeastOnce)
        .await
        .unwrap();

    let device = options("dev").connect().await.unwrap();
    assert!(device.session_present());
    assert_eq!(device.expect_message(SOON).await.text(), "reboot");
    app.close().await;
}

#[tokio::test]
async fn expect_disconnect_reports_the_brokers_code() {
    let app = open().await;
    let first = app.client("same").connect().await.unwrap();
    let _second = app.client("same").connect().await.unwrap();
    let closed = first.expect_disconnect(SOON).await;
    assert_eq!(closed.code, Some(ReasonCode::SessionTakenOver));
    assert!(!first.is_connected());
    let err = first.subscribe("a", QoS::AtMostOnce).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "subscribe of `same` to `a`: the broker disconnected the client: DISCONNECT 0x8E session taken over \
         (another connection took the session over)"
    );
    app.close().await;
}

#[tokio::test]
#[should_panic(
    expected = "expected the broker to disconnect client `stays` within 100ms, it is still connected"
)]
async fn expect_disconnect_panics_while_connected() {
    let app = open().await;
    let stays = app.client("stays").connect().await.unwrap();
    stays.expect_disconnect(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn start_still_gives_an_app() {
    let app: pigeon::App = pigeon::testing::start::<OpenModule>().await.unwrap();
    let client = pigeon::testing::ClientBuilder::new(app.local_addr(), "plain")
        .v311()
        .keep_alive(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    client.ping().await.unwrap();
    app.close().await;
}

#[tokio::test]
async fn a_full_client_buffer_slows_the_broker_and_loses_nothing() {
    let app = open().await;
    let slow = app.client("slow").capacity(1).connect().await.unwrap();
    slow.subscribe("burst/#", QoS::AtLeastOnce).await.unwrap();
    let publisher = app.client("fast").connect().await.unwrap();
    for n in 0..20 {
        let topic = format!("burst/{n}");
        publisher
            .publish_with(topic, n.to_string())
            .qos(QoS::AtLeastOnce)
            .await
            .unwrap();
    }
    for n in 0..20 {
        let message = slow.expect_message(SOON).await;
        assert_eq!(
            (message.topic.as_str(), message.text()),
            (format!("burst/{n}").as_str(), n.to_string().as_str())
        );
    }
    app.close().await;
}

#[tokio::test]
async fn the_client_pings_within_its_keep_alive() {
    let app = open().await;
    let quiet = app
        .client("quiet")
        .keep_alive(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    // The broker ends a connection silent for 1.5 keep alives; the client's
    // own PINGREQs (it sends nothing else) keep this one open.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(quiet.is_connected());
    quiet.ping().await.unwrap();
    app.close().await;
}

#[test]
fn the_readme_shows_the_example_run_here() {
    let readme = include_str!("../../README.md");
    let example = include_str!("framework_testing/readme.rs");
    assert!(
        readme.contains(example),
        "README.md's testing example differs from pigeon/tests/framework_testing/readme.rs"
    );
}

/// Who may publish where: the module binds the real policy to the trait.
trait Policy: Send + Sync {
    fn may_publish(&self, topic: &str) -> bool;
}

#[injectable]
struct Strict;

impl Policy for Strict {
    fn may_publish(&self, _topic: &str) -> bool {
        false
    }
}

struct Lenient;

impl Policy for Lenient {
    fn may_publish(&self, _topic: &str) -> bool {
        true
    }
}

#[injectable]
struct PolicyGate {
    policy: Arc<dyn Policy>,
}

#[handlers]
impl PolicyGate {
    #[on_authorize_publish]
    async fn check(&self, packet: &mut Publish) -> Result<(), Denied> {
        if self.policy.may_publish(&packet.topic) {
            Ok(())
        } else {
            Err(Denied::new("policy"))
        }
    }
}

#[module(providers = [Strict as dyn Policy, PolicyGate])]
struct PolicyModule;

#[tokio::test]
async fn a_trait_binding_is_replaced_by_a_fake() {
    let app = Test::module::<PolicyModule>().start().await.unwrap();
    let c = app.client("p1").connect().await.unwrap();
    let refused = c.publish_with("t", "x").qos(QoS::AtLeastOnce).await;
    assert_eq!(refused.unwrap_err().code(), Some(ReasonCode::NotAuthorized));
    app.close().await;

    let app = Test::module::<PolicyModule>()
        .override_binding::<dyn Policy>(Arc::new(Lenient))
        .start()
        .await
        .unwrap();
    let c = app.client("p2").connect().await.unwrap();
    c.publish_with("t", "x")
        .qos(QoS::AtLeastOnce)
        .await
        .unwrap();
    app.close().await;
}
