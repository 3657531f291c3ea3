//! Modules that compose: `#[module(imports = [...])]` brings the imported
//! modules' providers and handlers into the application (transitively, each
//! module once), a provider listed by two modules is one singleton, handler
//! chains run imported modules' handlers first at the same `order`, and the
//! started module's broker options win over the imported ones'. Over real TCP
//! with rumqttc (v4 and v5) as the clients.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use pigeon::{prelude::*, BootstrapError};
use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions, Packet as Pk, QoS as Q};
use tokio::time::timeout;

/// What ran, in order: shared by every module that lists it.
#[injectable]
struct Journal {
    #[inject(default)]
    lines: Mutex<Vec<String>>,
}

impl Journal {
    fn write(&self, line: impl Into<String>) {
        self.lines.lock().unwrap().push(line.into());
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// The auth module's guard: refuses the user `intruder`.
#[injectable]
struct Guard {
    journal: Arc<Journal>,
}

#[handlers]
impl Guard {
    #[on_authenticate]
    async fn refuse_intruders(&self, credential: Credential) -> Result<(), AuthError> {
        self.journal.write("guard");
        match credential.username.as_deref() {
            Some("intruder") => Err(AuthError::with_return_code("not you", 5)),
            _ => Ok(()),
        }
    }
}

/// Notes the sensors' publishes it sees (a telemetry library).
#[injectable]
struct Meter {
    journal: Arc<Journal>,
}

#[handlers]
impl Meter {
    #[on_publish("sensors/#")]
    async fn count(&self, topic: Topic) {
        self.journal.write(format!("meter {topic}"));
    }
}

/// Imported by the auth module: reached from the application only through it.
#[module(topic_alias_maximum = 3, receive_maximum = 11, providers = [Meter, Journal])]
struct TelemetryModule;

#[module(
    topic_alias_maximum = 4,
    imports = [TelemetryModule],
    providers = [Guard, Journal]
)]
struct AuthModule;

/// The application's own authenticate handler, after the guard's.
#[injectable]
struct Greeter {
    journal: Arc<Journal>,
}

#[handlers]
impl Greeter {
    #[on_authenticate]
    async fn welcome(&self, client: Client) -> Result<(), AuthError> {
        self.journal.write(format!("greeter {}", client.id()));
        Ok(())
    }
}

#[module(
    receive_maximum = 22,
    imports = [AuthModule],
    providers = [Greeter, Journal]
)]
struct AppModule;

/// Starts `M` on an ephemeral port of 127.0.0.1, with no environment.
async fn start<M: Module>() -> Result<App, BootstrapError> {
    let no_env: [(&str, &str); 0] = [];
    Pigeon::bootstrap_with_env::<M>(no_env, |c| {
        c.host = "127.0.0.1".into();
        c.port = 0;
    })
    .await
}

fn client(addr: SocketAddr, id: &str, user: &str) -> (AsyncClient, rumqttc::EventLoop) {
    let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    opts.set_credentials(user, "pw");
    AsyncClient::new(opts, 8)
}

/// The broker's answer to the CONNECT: `Ok` once connected, the refusal otherwise.
async fn connect(ev: &mut rumqttc::EventLoop) -> Result<(), ConnectionError> {
    timeout(Duration::from_secs(5), async {
        loop {
            match ev.poll().await? {
                Event::Incoming(Pk::ConnAck(_)) => return Ok(()),
                _ => continue,
            }
        }
    })
    .await
    .expect("an answer to CONNECT in time")
}

/// Waits until `journal` has a line `line` (handlers of events run after the packet).
async fn wait_for(journal: &Journal, line: &str) {
    timeout(Duration::from_secs(5), async {
        while !journal.lines().iter().any(|l| l == line) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no `{line}` in {:?}", journal.lines()));
}

#[tokio::test]
async fn an_imported_modules_authenticate_handler_refuses_a_client() {
    let app = start::<AppModule>().await.unwrap();
    let (_c, mut ev) = client(app.local_addr(), "intruder-1", "intruder");
    match connect(&mut ev).await {
        Err(ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, rumqttc::ConnectReturnCode::NotAuthorized)
        }
        other => panic!("the intruder got {other:?}"),
    }
    let (_c, mut ev) = client(app.local_addr(), "friend-1", "friend");
    connect(&mut ev).await.expect("a friend gets in");
    app.close().await;
}

#[tokio::test]
async fn imported_handlers_run_first_and_a_transitive_import_joins_too() {
    let app = start::<AppModule>().await.unwrap();
    let journal = app.get::<Journal>().expect("Journal is a provider");
    let (c, mut ev) = client(app.local_addr(), "friend-2", "friend");
    connect(&mut ev).await.unwrap();
    // The auth module's guard, then the application's greeter: imports first.
    assert_eq!(journal.lines(), ["guard", "greeter friend-2"]);
    // The telemetry module, imported by the auth module, counts publishes.
    c.publish("sensors/1", Q::AtMostOnce, false, "x")
        .await
        .unwrap();
    let poll = tokio::spawn(async move { while ev.poll().await.is_ok() {} });
    wait_for(&journal, "meter sensors/1").await;
    poll.abort();
    app.close().await;
}

#[tokio::test]
async fn a_provider_listed_by_three_modules_is_one_singleton() {
    let app = start::<AppModule>().await.unwrap();
    let (_c, mut ev) = client(app.local_addr(), "friend-3", "friend");
    connect(&mut ev).await.unwrap();
    let journal = app.get::<Journal>().unwrap();
    let guard = app.get::<Guard>().unwrap();
    let greeter = app.get::<Greeter>().unwrap();
    let meter = app.get::<Meter>().unwrap();
    assert!(Arc::ptr_eq(&journal, &guard.journal));
    assert!(Arc::ptr_eq(&journal, &greeter.journal));
    assert!(Arc::ptr_eq(&journal, &meter.journal));
    // And so one journal saw both handlers.
    assert_eq!(journal.lines(), ["guard", "greeter friend-3"]);
    app.close().await;
}

#[tokio::test]
async fn the_started_modules_options_win_over_the_imported_ones() {
    use rumqttc::v5::{
        mqttbytes::v5::Packet as P5, AsyncClient as C5, Event as E5, MqttOptions as O5,
    };
    let app = start::<AppModule>().await.unwrap();
    let addr = app.local_addr();
    let mut opts = O5::new("v5-options", addr.ip().to_string(), addr.port());
    opts.set_credentials("friend", "pw");
    let (_c, mut ev) = C5::new(opts, 8);
    let ack = timeout(Duration::from_secs(5), async {
        loop {
            if let E5::Incoming(P5::ConnAck(ack)) = ev.poll().await.unwrap() {
                return ack;
            }
        }
    })
    .await
    .unwrap();
    let properties = ack.properties.expect("CONNACK properties");
    // AppModule's 22 over TelemetryModule's 11; AuthModule's 4 over
    // TelemetryModule's 3 (the importer wins over what it imports).
    assert_eq!(properties.receive_max, Some(22));
    assert_eq!(properties.topic_alias_max, Some(4));
    app.close().await;
}

#[module(imports = [DiamondRight, DiamondLeft], providers = [])]
struct DiamondModule;

#[module(imports = [TelemetryModule], providers = [Journal])]
struct DiamondLeft;

#[module(imports = [TelemetryModule], providers = [Meter])]
struct DiamondRight;

#[tokio::test]
async fn a_module_imported_twice_counts_once() {
    let app = start::<DiamondModule>().await.unwrap();
    let (c, mut ev) = client(app.local_addr(), "diamond", "friend");
    connect(&mut ev).await.unwrap();
    let poll = tokio::spawn(async move { while ev.poll().await.is_ok() {} });
    c.publish("sensors/a", Q::AtLeastOnce, false, "1")
        .await
        .unwrap();
    c.publish("sensors/b", Q::AtLeastOnce, false, "2")
        .await
        .unwrap();
    let journal = app.get::<Journal>().unwrap();
    wait_for(&journal, "meter sensors/b").await;
    app.flush_events().await;
    // The telemetry module came in twice, its meter is registered once.
    assert_eq!(journal.lines(), ["meter sensors/a", "meter sensors/b"]);
    assert!(Arc::ptr_eq(&journal, &app.get::<Meter>().unwrap().journal));
    poll.abort();
    app.close().await;
}

#[module(imports = [CycleB], providers = [])]
struct CycleA;

#[module(imports = [CycleC], providers = [])]
struct CycleB;

#[module(imports = [CycleA], providers = [])]
struct CycleC;

#[tokio::test]
async fn modules_importing_each_other_are_an_error_naming_the_cycle() {
    let Err(error) = start::<CycleA>().await else {
        panic!("a cycle of imports started");
    };
    assert!(matches!(error, BootstrapError::ImportCycle(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "modules import each other in a cycle: framework_modules::CycleA -> \
         framework_modules::CycleB -> framework_modules::CycleC -> framework_modules::CycleA"
    );
}
