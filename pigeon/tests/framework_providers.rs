//! Providers beyond plain structs: async factories, module values, trait
//! objects bound to an implementation, destroy hooks, and the error of each
//! failure. Where handlers are involved, a real broker and rumqttc clients.
//! Every test runs on `#[tokio::test]`'s default current-thread runtime: the
//! container resolves asynchronously, nothing blocks on a future.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use pigeon::{app::ProviderDef, prelude::*, BootstrapError};
use rumqttc::{AsyncClient, ConnectReturnCode, Event as Ev, MqttOptions, Packet as Pk, QoS as Q};
use tokio::{sync::mpsc, time::timeout};

// ---------------------------------------------------------------- clients

type Events = mpsc::UnboundedReceiver<Result<Pk, String>>;

/// A rumqttc client whose incoming packets (or its connection error) arrive on a channel.
fn client(addr: SocketAddr, id: &str, creds: Option<(&str, &str)>) -> (AsyncClient, Events) {
    let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    if let Some((user, password)) = creds {
        opts.set_credentials(user, password);
    }
    let (c, mut ev) = AsyncClient::new(opts, 16);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let item = match ev.poll().await {
                Ok(Ev::Incoming(p)) => Ok(p),
                Ok(Ev::Outgoing(_)) => continue,
                Err(e) => Err(format!("{e:?}")),
            };
            let end = item.is_err();
            if tx.send(item).is_err() || end {
                return;
            }
        }
    });
    (c, rx)
}

/// The first packet that `f` picks, within 5 s.
async fn next<R>(rx: &mut Events, mut f: impl FnMut(Result<Pk, String>) -> Option<R>) -> R {
    timeout(Duration::from_secs(5), async {
        loop {
            if let Some(r) = f(rx.recv().await.expect("the client's event loop ended")) {
                return r;
            }
        }
    })
    .await
    .expect("no such packet within 5 s")
}

async fn connack(rx: &mut Events) -> Result<(), String> {
    next(rx, |p| match p {
        Ok(Pk::ConnAck(a)) if a.code == ConnectReturnCode::Success => Some(Ok(())),
        Ok(Pk::ConnAck(a)) => Some(Err(format!("{:?}", a.code))),
        Err(e) => Some(Err(e)),
        Ok(_) => None,
    })
    .await
}

async fn message(rx: &mut Events) -> (String, String) {
    next(rx, |p| match p {
        Ok(Pk::Publish(m)) => Some((m.topic, String::from_utf8_lossy(&m.payload).into_owned())),
        Err(e) => panic!("expected a message, the connection failed: {e}"),
        Ok(_) => None,
    })
    .await
}

async fn suback(rx: &mut Events) {
    next(rx, |p| matches!(p, Ok(Pk::SubAck(_))).then_some(())).await;
}

fn local(config: &mut Config) {
    config.host = "127.0.0.1".into();
    config.port = 0;
}

// ---------------------------------------------------- an async factory

/// A value of the module: what the greeter says.
struct Greeting(String);

/// Built by an async factory from the module's value and the service.
#[injectable(factory = Self::connect)]
struct Greeter {
    line: String,
    pigeon: PigeonService,
}

impl Greeter {
    async fn connect(greeting: Arc<Greeting>, pigeon: PigeonService) -> Result<Self, String> {
        // Real asynchronous work: on a current-thread runtime, blocking on it would hang.
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(Self {
            line: format!("{}, world", greeting.0),
            pigeon,
        })
    }
}

#[handlers]
impl Greeter {
    #[on_publish("ask")]
    async fn answer(&self) {
        let reply = Publish::new("answer", QoS::AtLeastOnce, self.line.clone());
        let _ = self.pigeon.publish(reply).await;
    }
}

#[module(values = [Greeting("hello".to_owned())], providers = [Greeter])]
struct GreeterModule;

#[tokio::test]
async fn an_async_factory_gets_its_arguments_injected_and_serves_handlers() {
    let app = pigeon::testing::start::<GreeterModule>().await.unwrap();
    let (c, mut rx) = client(app.local_addr(), "asker", None);
    connack(&mut rx).await.unwrap();
    c.subscribe("answer", Q::AtLeastOnce).await.unwrap();
    suback(&mut rx).await;
    c.publish("ask", Q::AtLeastOnce, false, "?").await.unwrap();
    assert_eq!(
        message(&mut rx).await,
        ("answer".into(), "hello, world".into())
    );
    app.close().await;
}

#[tokio::test]
async fn a_value_given_at_startup_replaces_the_modules() {
    let app = Pigeon::builder::<GreeterModule>()
        .value(Greeting("bonjour".into()))
        .configure(local)
        .bootstrap()
        .await
        .unwrap();
    let (c, mut rx) = client(app.local_addr(), "asker", None);
    connack(&mut rx).await.unwrap();
    c.subscribe("answer", Q::AtLeastOnce).await.unwrap();
    suback(&mut rx).await;
    c.publish("ask", Q::AtLeastOnce, false, "?").await.unwrap();
    assert_eq!(
        message(&mut rx).await,
        ("answer".into(), "bonjour, world".into())
    );
    assert_eq!(app.get::<Greeting>().unwrap().0, "bonjour");
    app.close().await;
}

/// A database that does not answer.
#[injectable(factory = Self::connect)]
struct Db;

impl Db {
    async fn connect(url: Arc<DbUrl>) -> Result<Self, std::io::Error> {
        tokio::task::yield_now().await;
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            format!("{}: connection refused", url.0),
        ))
    }
}

struct DbUrl(&'static str);

#[module(values = [DbUrl("pg://db:5432")], providers = [Db])]
struct DbModule;

#[tokio::test]
async fn a_failing_factory_names_its_provider_and_the_broker_does_not_start() {
    let err = pigeon::testing::start::<DbModule>()
        .await
        .err()
        .expect("must fail");
    let BootstrapError::Provider { provider, message } = &err else {
        panic!("expected a provider error, got {err}");
    };
    assert_eq!(*provider, "Db");
    assert_eq!(message, "pg://db:5432: connection refused");
    assert_eq!(
        err.to_string(),
        "provider `Db`: pg://db:5432: connection refused"
    );
}

#[module(providers = [Db])]
struct DbWithoutUrl;

#[tokio::test]
async fn a_missing_value_names_the_factory_argument() {
    let err = Pigeon::build::<DbWithoutUrl>(&Config::default())
        .await
        .err()
        .expect("must fail");
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            BootstrapError::MissingValue {
                owner: "Db",
                field: "connect(#1)",
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.starts_with("Db.connect(#1): no value of type `"),
        "{msg}"
    );
    assert!(msg.contains("DbUrl"), "{msg}");
}

#[injectable]
struct NeedsGreeting {
    greeting: Arc<Greeting>,
}

#[module(providers = [NeedsGreeting])]
struct NoGreeting;

#[tokio::test]
async fn a_missing_value_names_the_field() {
    let err = Pigeon::build::<NoGreeting>(&Config::default())
        .await
        .err()
        .expect("must fail");
    assert!(
        matches!(
            err,
            BootstrapError::MissingValue {
                owner: "NeedsGreeting",
                field: "greeting",
                ..
            }
        ),
        "{err}"
    );
    // Given at startup, the same module builds.
    let app = Pigeon::builder::<NoGreeting>()
        .value(Greeting("hi".into()))
        .configure(local)
        .bootstrap()
        .await
        .unwrap();
    assert_eq!(app.get::<NeedsGreeting>().unwrap().greeting.0, "hi");
    app.close().await;
}

#[module(values = [Greeting("a".into()), Greeting("b".into())], providers = [NeedsGreeting])]
struct TwoGreetings;

#[tokio::test]
async fn two_values_of_one_type_are_refused() {
    let err = Pigeon::build::<TwoGreetings>(&Config::default())
        .await
        .err()
        .expect("must fail");
    assert!(matches!(err, BootstrapError::DuplicateValue(_)), "{err}");
    assert!(err.to_string().contains("Greeting"), "{err}");
}

// ------------------------------------------------------- trait objects

trait UserStore: Send + Sync {
    fn password(&self, user: &str) -> Option<String>;
}

#[injectable]
struct MemStore {
    #[inject(default)]
    lookups: Mutex<u32>,
}

impl UserStore for MemStore {
    fn password(&self, user: &str) -> Option<String> {
        *self.lookups.lock().unwrap() += 1;
        (user == "alice").then(|| "wonderland".to_owned())
    }
}

#[injectable]
struct Login {
    store: Arc<dyn UserStore>,
}

#[handlers]
impl Login {
    #[on_authenticate]
    async fn check(&self, credential: Credential) -> Result<(), AuthError> {
        let user = credential.username.as_deref().unwrap_or_default();
        let expected = self.store.password(user);
        match (expected, credential.password.as_deref()) {
            (Some(e), Some(given)) if e.as_bytes() == given => Ok(()),
            _ => Err(AuthError::bad_credentials("who are you?")),
        }
    }
}

/// Reads the concrete store: the same singleton as the bound one.
#[injectable]
struct Audit {
    store: Arc<MemStore>,
}

#[module(providers = [Login, MemStore as dyn UserStore, Audit])]
struct LoginModule;

#[tokio::test]
async fn a_trait_object_field_gets_the_bound_implementation_shared_with_concrete_fields() {
    let app = pigeon::testing::start::<LoginModule>().await.unwrap();
    let (_bad, mut bad_rx) = client(app.local_addr(), "mallory", Some(("alice", "nope")));
    let refused = connack(&mut bad_rx).await.unwrap_err();
    assert!(refused.contains("BadUserNamePassword"), "{refused}");
    let (_good, mut good_rx) = client(app.local_addr(), "alice", Some(("alice", "wonderland")));
    connack(&mut good_rx).await.unwrap();

    let audit = app.get::<Audit>().unwrap();
    assert!(Arc::ptr_eq(&audit.store, &app.get::<MemStore>().unwrap()));
    assert_eq!(
        *audit.store.lookups.lock().unwrap(),
        2,
        "both logins used the one store"
    );
    app.close().await;
}

/// A test's fake in place of the binding.
struct LetEveryoneIn;

impl UserStore for LetEveryoneIn {
    fn password(&self, _: &str) -> Option<String> {
        Some("x".into())
    }
}

#[tokio::test]
async fn a_binding_can_be_replaced_by_a_ready_trait_object() {
    let app = Pigeon::builder::<LoginModule>()
        .provider(ProviderDef::dyn_value::<dyn UserStore>(Arc::new(
            LetEveryoneIn,
        )))
        .configure(local)
        .bootstrap()
        .await
        .unwrap();
    let (_c, mut rx) = client(app.local_addr(), "bob", Some(("bob", "x")));
    connack(&mut rx).await.unwrap();
    assert_eq!(
        *app.get::<MemStore>().unwrap().lookups.lock().unwrap(),
        0,
        "the module's store was not asked"
    );
    app.close().await;
}

#[module(providers = [Login])]
struct Unbound;

#[tokio::test]
async fn a_trait_object_with_no_binding_is_named() {
    let err = Pigeon::build::<Unbound>(&Config::default())
        .await
        .err()
        .expect("must fail");
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            BootstrapError::MissingBinding {
                owner: "Login",
                field: "store",
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("`providers = [Impl as dyn "), "{msg}");
    assert!(msg.contains("UserStore"), "{msg}");
}

// ------------------------------------------------------------- errors

#[allow(dead_code)] // only built, to show the cycle
#[injectable]
struct Chicken {
    egg: Arc<Egg>,
}

#[allow(dead_code)]
#[injectable]
struct Egg {
    chicken: Arc<Chicken>,
}

#[module(providers = [Chicken, Egg])]
struct CycleModule;

#[tokio::test]
async fn a_cycle_names_each_field_on_the_way() {
    let err = Pigeon::build::<CycleModule>(&Config::default())
        .await
        .err()
        .expect("must fail");
    assert_eq!(
        err.to_string(),
        "dependency cycle between providers: Chicken.egg -> Egg.chicken -> Chicken"
    );
}

#[module(providers = [Audit])]
struct WithoutStore;

#[tokio::test]
async fn a_provider_left_out_of_the_module_is_named_as_a_provider() {
    let err = Pigeon::build::<WithoutStore>(&Config::default())
        .await
        .err()
        .expect("must fail");
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            BootstrapError::MissingProvider {
                owner: "Audit",
                field: "store",
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("MemStore` is not in the module's `providers = [...]`"),
        "{msg}"
    );
}

/// A hand-written module whose definition claims another type than its instance.
struct Mislabelled;

impl pigeon::app::Module for Mislabelled {
    fn options() -> pigeon::config::Options {
        pigeon::config::Options::default()
    }
    fn providers() -> Vec<ProviderDef> {
        let mut def = ProviderDef::value(Arc::new(Greeting("not a store".into())));
        def.type_id = std::any::TypeId::of::<MemStore>();
        vec![def, ProviderDef::of::<Audit>()]
    }
}

#[tokio::test]
async fn an_instance_of_the_wrong_type_is_a_type_error_not_a_cycle() {
    let err = Pigeon::build::<Mislabelled>(&Config::default())
        .await
        .err()
        .expect("must fail");
    let BootstrapError::TypeMismatch { provider, expected } = &err else {
        panic!("expected a type mismatch, got {err}");
    };
    assert!(provider.ends_with("Greeting"), "{err}");
    assert!(expected.ends_with("MemStore"), "{err}");
}

// ------------------------------------------------------ destroy hooks

/// What the destroy hooks wrote, in order (given at startup by each test).
#[derive(Default)]
struct Journal(Mutex<Vec<&'static str>>);

impl Journal {
    fn write(&self, line: &'static str) {
        self.0.lock().unwrap().push(line);
    }
    fn lines(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().clone()
    }
}

#[injectable(destroy = Self::close)]
struct Pool {
    journal: Arc<Journal>,
}

impl Pool {
    async fn close(&self) {
        tokio::task::yield_now().await;
        self.journal.write("pool");
    }
}

#[injectable(destroy = Self::close)]
struct Repo {
    _pool: Arc<Pool>,
    journal: Arc<Journal>,
}

impl Repo {
    async fn close(&self) -> Result<(), String> {
        self.journal.write("repo");
        Err("flush failed".into()) // logged; the others still close
    }
}

#[injectable(destroy = Self::stop)]
struct Api {
    _repo: Arc<Repo>,
    journal: Arc<Journal>,
}

impl Api {
    async fn stop(&self) {
        self.journal.write("api");
    }
}

// Listed in no order of dependency: the creation order decides.
#[module(providers = [Api, Pool, Repo])]
struct LayeredModule;

#[tokio::test]
async fn close_destroys_dependents_before_their_dependencies_once() {
    let app = Pigeon::builder::<LayeredModule>()
        .value(Journal::default())
        .configure(local)
        .bootstrap()
        .await
        .unwrap();
    let journal = app.get::<Journal>().unwrap();
    assert!(
        journal.lines().is_empty(),
        "nothing destroyed while running"
    );
    app.close().await;
    assert_eq!(journal.lines(), ["api", "repo", "pool"]);
    app.close().await;
    assert_eq!(journal.lines(), ["api", "repo", "pool"], "destroyed once");
}

#[tokio::test]
async fn listen_returning_destroys_the_providers() {
    let app = Pigeon::builder::<LayeredModule>()
        .value(Journal::default())
        .configure(local)
        .bootstrap()
        .await
        .unwrap();
    let journal = app.get::<Journal>().unwrap();
    let service = app.service();
    let served = tokio::spawn(app.listen());
    service.close().await;
    timeout(Duration::from_secs(5), served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(journal.lines(), ["api", "repo", "pool"]);
}

#[injectable(factory = Self::connect)]
struct Broken;

impl Broken {
    async fn connect(_pool: Arc<Pool>) -> Result<Self, &'static str> {
        Err("no")
    }
}

#[module(providers = [Pool, Broken])]
struct HalfBuilt;

#[tokio::test]
async fn a_failed_bootstrap_destroys_what_it_had_created() {
    let journal = Arc::new(Journal::default());
    let err = Pigeon::builder::<HalfBuilt>()
        .provider(ProviderDef::value(journal.clone()))
        .configure(local)
        .bootstrap()
        .await
        .err()
        .expect("must fail");
    assert_eq!(err.to_string(), "provider `Broken`: no");
    assert_eq!(journal.lines(), ["pool"]);
}

#[injectable(destroy = Self::close)]
struct Fragile {
    _pool: Arc<Pool>,
}

impl Fragile {
    async fn close(&self) {
        panic!("fragile would not close");
    }
}

#[module(providers = [Fragile, Pool])]
struct FragileModule;

#[tokio::test]
async fn a_destroy_hook_that_panics_does_not_keep_the_others_from_running() {
    let app = Pigeon::builder::<FragileModule>()
        .value(Journal::default())
        .configure(local)
        .bootstrap()
        .await
        .unwrap();
    let journal = app.get::<Journal>().unwrap();
    app.close().await;
    assert_eq!(journal.lines(), ["pool"]);
}

// --------------------------------------------------------- init hooks

/// What the init hooks wrote, in order (a value of each module).
#[derive(Default)]
struct Started(Mutex<Vec<&'static str>>);

impl Started {
    fn write(&self, line: &'static str) {
        self.0.lock().unwrap().push(line);
    }
    fn lines(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().clone()
    }
}

#[injectable(init = Self::start)]
struct Store {
    started: Arc<Started>,
}

impl Store {
    async fn start(&self) {
        tokio::task::yield_now().await;
        self.started.write("store");
    }
}

#[injectable(init = Self::start)]
struct Cache {
    _store: Arc<Store>,
    started: Arc<Started>,
}

impl Cache {
    async fn start(&self) -> Result<(), String> {
        self.started.write("cache");
        Ok(())
    }
}

#[injectable(init = Self::start)]
struct Frontend {
    _cache: Arc<Cache>,
    started: Arc<Started>,
}

impl Frontend {
    async fn start(&self) {
        self.started.write("frontend");
    }
}

// Listed in no order of dependency: the creation order decides.
#[module(values = [Started::default()], providers = [Frontend, Store, Cache])]
struct StartedModule;

#[tokio::test]
async fn init_hooks_run_once_dependencies_first_before_start_returns() {
    let app = pigeon::testing::Test::module::<StartedModule>()
        .start()
        .await
        .unwrap();
    let started = app.get::<Started>().unwrap();
    assert_eq!(started.lines(), ["store", "cache", "frontend"]);
    app.close().await;
    assert_eq!(started.lines(), ["store", "cache", "frontend"], "run once");
}

/// Checks, from its init hook, that the broker already serves clients: it
/// connects to the broker's own address, then announces itself (retained).
#[injectable(init = Self::start)]
struct SelfCheck {
    pigeon: PigeonService,
}

impl SelfCheck {
    async fn start(&self) -> Result<(), String> {
        let addr = self
            .pigeon
            .broker()
            .map_err(|e| e.to_string())?
            .local_addr();
        let probe = pigeon::testing::ClientBuilder::new(addr, "self-check")
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        probe.disconnect().await.map_err(|e| e.to_string())?;
        let mut up = Publish::new("status/self-check", QoS::AtLeastOnce, "up");
        up.retain = true;
        self.pigeon.publish(up).await.map_err(|e| e.to_string())
    }
}

#[module(providers = [SelfCheck])]
struct SelfCheckModule;

#[tokio::test]
async fn an_init_hook_runs_once_the_broker_listens() {
    let app = pigeon::testing::Test::module::<SelfCheckModule>()
        .start()
        .await
        .expect("the hook connects and publishes");
    let client = app.client("watcher").connect().await.unwrap();
    client
        .subscribe("status/self-check", QoS::AtLeastOnce)
        .await
        .unwrap();
    let status = client.expect_message(Duration::from_secs(5)).await;
    assert_eq!(status.text(), "up");
    app.close().await;
}

/// Where the broker listened when `Unready`'s hook ran.
#[derive(Default)]
struct SeenAt(Mutex<Option<SocketAddr>>);

#[injectable(init = Self::start)]
struct Unready {
    _pool: Arc<Pool>,
    seen: Arc<SeenAt>,
    pigeon: PigeonService,
}

impl Unready {
    async fn start(&self) -> Result<(), std::io::Error> {
        let addr = self.pigeon.broker().expect("listening").local_addr();
        *self.seen.0.lock().unwrap() = Some(addr);
        Err(std::io::Error::other(
            "the downstream service is unreachable",
        ))
    }
}

#[module(values = [SeenAt::default()], providers = [Unready, Pool])]
struct UnreadyModule;

#[tokio::test]
async fn a_failing_init_hook_names_its_provider_closes_the_port_and_destroys() {
    let journal = Arc::new(Journal::default());
    let seen = Arc::new(SeenAt::default());
    let err = Pigeon::builder::<UnreadyModule>()
        .provider(ProviderDef::value(journal.clone()))
        .provider(ProviderDef::value(seen.clone()))
        .configure(local)
        .bootstrap()
        .await
        .err()
        .expect("must fail");
    let BootstrapError::Init { provider, message } = &err else {
        panic!("expected an init error, got {err}");
    };
    assert_eq!(*provider, "Unready");
    assert_eq!(message, "the downstream service is unreachable");
    assert_eq!(
        err.to_string(),
        "provider `Unready`: init hook failed: the downstream service is unreachable"
    );
    assert_eq!(journal.lines(), ["pool"], "what was created is destroyed");
    let addr = seen.0.lock().unwrap().expect("the hook ran");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the broker's port {addr} is closed"
    );
}
