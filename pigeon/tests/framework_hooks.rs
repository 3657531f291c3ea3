//! The framework without a network: modules built with the macros, their hooks
//! called the way the engine calls them.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use pigeon::{
    codec::{Connect, Protocol, Publish, QoS, ReasonCode},
    hooks::{Event, EventKind, Hooks},
    prelude::*,
    BootstrapError,
};

fn client(id: &str) -> Client {
    Client::new(
        id,
        "127.0.0.1:4000".parse().unwrap(),
        Some("u".into()),
        Protocol::V5,
    )
}

fn sub(topic: &str, qos: QoS) -> Subscription {
    Subscription::new(topic, qos)
}

/// Shared call log of the providers below.
#[injectable]
pub struct Log {
    #[inject(default)]
    lines: Mutex<Vec<String>>,
}

impl Log {
    fn push(&self, s: impl Into<String>) {
        self.lines.lock().unwrap().push(s.into());
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.lines.lock().unwrap())
    }
}

#[injectable]
struct First {
    log: Arc<Log>,
}

#[handlers]
impl First {
    #[on_authenticate(order = 10)]
    async fn auth_late(&self, credential: Credential, client: Client) -> Result<(), AuthError> {
        self.log.push(format!("first.late {}", client.id()));
        match credential.username.as_deref() {
            Some("bad") => Err(AuthError::with_return_code("bad user", 4)),
            _ => Ok(()),
        }
    }

    #[on_authenticate]
    async fn auth_early(&self, client: Client) -> bool {
        self.log.push(format!("first.early {}", client.id()));
        client.id() != "banned"
    }

    #[on_pre_connect]
    async fn pre(&self, connect: &mut Connect, client: Client) -> Result<(), HookError> {
        if client.id() == "refused" {
            return Err(HookError("go away".into()));
        }
        connect.client_id.push_str("-seen");
        Ok(())
    }

    #[on_authorize_publish]
    async fn can_publish(
        &self,
        client: Option<Client>,
        packet: &mut Publish,
    ) -> Result<(), Denied> {
        self.log.push(format!(
            "first.publish {:?}",
            client.map(|c| c.id().to_owned())
        ));
        if packet.topic == "aaaa" {
            return Err(Denied::new("wrong topic"));
        }
        if packet.topic == "bbb" {
            packet.payload = "overwrite packet payload".into();
        }
        Ok(())
    }

    #[on_authorize_subscribe]
    async fn can_subscribe(&self, mut sub: Subscription) -> Result<Option<Subscription>, Denied> {
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
}

#[injectable]
struct Second {
    log: Arc<Log>,
    pigeon: PigeonService,
    config: Config,
}

#[derive(serde::Deserialize)]
struct Temp {
    celsius: f64,
}

#[handlers]
impl Second {
    #[on_authenticate]
    async fn auth(&self, client: Client) -> Result<(), AuthError> {
        self.log.push(format!("second {}", client.id()));
        if client.id() == "panic" {
            panic!("boom");
        }
        Ok(())
    }

    #[on_authorize_publish("devices/:id/cmd")]
    async fn device_cmd(&self, Param(id): Param<u32>, packet: &mut Publish) -> bool {
        packet.topic = format!("devices/{id}/cmd/checked").into();
        id != 13
    }

    #[on_authorize_subscribe]
    async fn second_sub(&self, sub: &mut Subscription) -> Result<(), Denied> {
        self.log.push(format!("second.sub {}", sub.topic));
        Ok(())
    }

    #[on_publish("sensors/:id/temp")]
    async fn temp(&self, Json(t): Json<Temp>, client: Option<Client>, Param(id): Param<String>) {
        self.log.push(format!(
            "temp {id} {} {:?}",
            t.celsius,
            client.map(|c| c.id().to_owned())
        ));
    }

    #[on_publish]
    async fn any_publish(&self, topic: Topic, payload: Payload) {
        self.log
            .push(format!("publish {} {}", &*topic, payload.len()));
    }

    #[on_client_error]
    async fn client_error(&self, client: Client, error: Error) {
        self.log
            .push(format!("client_error {} {error}", client.id()));
    }

    #[on_connection_error]
    async fn connection_error(&self, error: Error) {
        self.log.push(format!("connection_error {error}"));
    }

    #[on_subscribe]
    async fn subscribed(&self, Subscriptions(subs): Subscriptions) {
        self.log.push(format!("subscribe {}", subs.len()));
    }

    #[on_closed]
    async fn closed(&self, client: Option<Client>) {
        let _ = self.pigeon.broker().is_err();
        self.log
            .push(format!("closed {} {}", client.is_none(), self.config.id));
    }

    #[on_authorize_forward]
    async fn forward(&self, client: Client, packet: &mut Publish) -> bool {
        packet.retain = false;
        client.id() != "muted"
    }

    #[on_published]
    async fn published(&self, topic: Topic) -> Result<(), HookError> {
        self.log.push(format!("published {}", &*topic));
        Ok(())
    }
}

#[module(id = "hooks-test", providers = [Log, First, Second])]
struct AppModule;

async fn build() -> (Arc<Hooks>, Arc<Log>) {
    let config = <AppModule as pigeon::app::Module>::config().unwrap();
    let built = Pigeon::build::<AppModule>(&config)
        .await
        .expect("module builds");
    let log = built.get::<Log>().expect("log provider");
    (built.hooks, log)
}

fn cred(user: &str) -> Credential {
    Credential {
        username: Some(user.into()),
        password: None,
    }
}

#[tokio::test]
async fn authenticate_chain_runs_in_order_and_stops_at_first_refusal() {
    let (hooks, log) = build().await;
    assert!(hooks.authenticate(&client("c1"), &cred("ok")).await.is_ok());
    // order 0 handlers first (module order: First then Second), then order 10.
    assert_eq!(log.take(), ["first.early c1", "second c1", "first.late c1"]);

    let err = hooks
        .authenticate(&client("banned"), &cred("ok"))
        .await
        .unwrap_err();
    assert_eq!(err.reason, ReasonCode::NotAuthorized);
    assert_eq!(log.take(), ["first.early banned"]);

    let err = hooks
        .authenticate(&client("c2"), &cred("bad"))
        .await
        .unwrap_err();
    assert_eq!(err.reason, ReasonCode::BadUserNameOrPassword);
}

#[tokio::test]
async fn panicking_authenticate_answers_server_unavailable_and_reports() {
    let (hooks, log) = build().await;
    let err = hooks
        .authenticate(&client("panic"), &cred("ok"))
        .await
        .unwrap_err();
    assert_eq!(err.reason, ReasonCode::UnspecifiedError);
    assert!(
        err.message.contains("Second::auth panicked: boom"),
        "{}",
        err.message
    );
    hooks.flush_events(Duration::from_secs(2)).await;
    let lines = log.take();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("connection_error Second::auth panicked")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn pre_connect_rewrites_and_refuses() {
    let (hooks, _) = build().await;
    let mut connect = Connect::new(Protocol::V3_1_1, "dev");
    hooks
        .pre_connect(&client("dev"), &mut connect)
        .await
        .unwrap();
    assert_eq!(connect.client_id, "dev-seen");
    let mut connect = Connect::new(Protocol::V3_1_1, "refused");
    let err = hooks
        .pre_connect(&client("refused"), &mut connect)
        .await
        .unwrap_err();
    assert_eq!(err.0, "go away");
    assert_eq!(connect.client_id, "refused", "the packet is given back");
}

#[tokio::test]
async fn authorize_publish_refuses_rewrites_and_keeps_sys_denied() {
    let (hooks, log) = build().await;
    let c = client("p");
    let mut p = Publish::new("aaaa", QoS::AtMostOnce, "x");
    assert_eq!(
        hooks
            .authorize_publish(Some(&c), &mut p)
            .await
            .unwrap_err()
            .message,
        "wrong topic"
    );

    let mut p = Publish::new("bbb", QoS::AtMostOnce, "x");
    hooks.authorize_publish(Some(&c), &mut p).await.unwrap();
    assert_eq!(p.payload, "overwrite packet payload");
    assert_eq!(p.topic, "bbb");

    // A will whose client is gone: client None.
    let mut p = Publish::new("will/topic", QoS::AtMostOnce, "x");
    hooks.authorize_publish(None, &mut p).await.unwrap();
    assert!(log.take().contains(&"first.publish None".to_owned()));

    let mut p = Publish::new("$SYS/x", QoS::AtMostOnce, "x");
    assert!(hooks.authorize_publish(Some(&c), &mut p).await.is_err());
}

#[tokio::test]
async fn topic_patterns_select_handlers_and_extract_params() {
    let (hooks, _) = build().await;
    let c = client("p");
    let mut p = Publish::new("devices/7/cmd", QoS::AtMostOnce, "x");
    hooks.authorize_publish(Some(&c), &mut p).await.unwrap();
    assert_eq!(p.topic, "devices/7/cmd/checked");
    let mut p = Publish::new("devices/13/cmd", QoS::AtMostOnce, "x");
    assert!(hooks.authorize_publish(Some(&c), &mut p).await.is_err());
    // Not a u32: the parameter is named in the failure.
    let mut p = Publish::new("devices/abc/cmd", QoS::AtMostOnce, "x");
    let err = hooks.authorize_publish(Some(&c), &mut p).await.unwrap_err();
    assert!(
        err.message.contains("parameter #0 `Param(id)`"),
        "{}",
        err.message
    );
    // Other topics skip the pattern handler.
    let mut p = Publish::new("devices/7/other", QoS::AtMostOnce, "x");
    hooks.authorize_publish(Some(&c), &mut p).await.unwrap();
    assert_eq!(p.topic, "devices/7/other");
}

#[tokio::test]
async fn authorize_subscribe_rewrites_refuses_and_negates() {
    let (hooks, log) = build().await;
    let c = client("s");
    let r = hooks
        .authorize_subscribe(&c, sub("bbb", QoS::AtMostOnce))
        .await
        .unwrap();
    // One QoS: the rewrite is what the engine grants.
    assert_eq!(r, Some(sub("foo", QoS::AtLeastOnce)));
    // The chain continued with the rewritten subscription.
    assert_eq!(log.take(), ["second.sub foo"]);
    assert!(hooks
        .authorize_subscribe(&c, sub("aaaa", QoS::AtMostOnce))
        .await
        .is_err());
    assert_eq!(
        hooks
            .authorize_subscribe(&c, sub("neg", QoS::AtMostOnce))
            .await
            .unwrap(),
        None
    );
    assert!(log.take().is_empty(), "refusal and negation stop the chain");
}

#[tokio::test]
async fn events_reach_every_listener_in_order_and_json_failures_are_reported() {
    let (hooks, log) = build().await;
    assert!(hooks.wants(EventKind::Publish));
    assert!(hooks.wants(EventKind::Closed));
    assert!(!hooks.wants(EventKind::Ping), "no on_ping handler");
    let c = client("e");
    hooks.emit(Event::Publish(
        Some(c.clone()),
        Publish::new("sensors/4/temp", QoS::AtMostOnce, r#"{"celsius":21.5}"#),
    ));
    hooks.emit(Event::Publish(
        None,
        Publish::new("sensors/5/temp", QoS::AtMostOnce, "not json"),
    ));
    hooks.emit(Event::Subscribe(
        c.clone(),
        vec![sub("a", QoS::AtMostOnce), sub("b", QoS::AtMostOnce)],
    ));
    hooks.emit(Event::Closed);
    hooks.flush_events(Duration::from_secs(2)).await;
    assert_eq!(
        log.take(),
        [
            "temp 4 21.5 Some(\"e\")",
            "publish sensors/4/temp 16",
            "publish sensors/5/temp 8",
            "subscribe 2",
            "closed true hooks-test",
        ]
    );

    hooks.emit(Event::Publish(
        Some(c.clone()),
        Publish::new("sensors/5/temp", QoS::AtMostOnce, "not json"),
    ));
    hooks.flush_events(Duration::from_secs(2)).await;
    hooks.flush_events(Duration::from_secs(2)).await;
    let lines = log.take();
    assert!(
        lines.iter().any(|l| l.starts_with(
            "client_error e Second::temp: parameter #0 `Json(t)`: payload is not the expected JSON"
        )),
        "{lines:?}"
    );
}

#[tokio::test]
async fn forward_and_published_chains() {
    let (hooks, log) = build().await;
    assert!(hooks.has_authorize_forward());
    let mut p = Publish::new("t", QoS::AtMostOnce, "x");
    p.retain = true;
    let out = hooks
        .authorize_forward(&client("a"), p.clone())
        .await
        .unwrap();
    assert!(!out.retain);
    assert!(hooks
        .authorize_forward(&client("muted"), p.clone())
        .await
        .is_none());
    hooks.published(None, &p).await.unwrap();
    assert_eq!(log.take(), ["published t"]);
}

#[test]
fn empty_hooks_have_no_handlers_and_deny_sys() {
    let hooks = Hooks::none();
    assert!(!hooks.wants(EventKind::Publish));
    assert!(!hooks.has_authorize_forward());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut p = Publish::new("$SYS/x", QoS::AtMostOnce, "x");
    assert!(rt.block_on(hooks.authorize_publish(None, &mut p)).is_err());
}

#[injectable]
struct NeedsMissing {
    _log: Arc<Log>,
}

#[module(providers = [NeedsMissing])]
struct BrokenModule;

#[tokio::test]
async fn a_missing_provider_is_named_at_bootstrap() {
    let config = pigeon::Config::default();
    let err = Pigeon::build::<BrokenModule>(&config)
        .await
        .err()
        .expect("must fail");
    assert!(matches!(err, BootstrapError::MissingProvider { .. }));
    let msg = err.to_string();
    assert!(msg.contains("NeedsMissing._log"), "{msg}");
    assert!(msg.contains("Log"), "{msg}");
}

#[test]
fn module_options_become_the_config() {
    #[module(port = 1999, id = "x", concurrency = 7, queue_limit = 9, max_clients_id_length = 30,
             connect_timeout = 1500, heartbeat_interval = 2500, persistence = memory, emitter = local,
             providers = [])]
    struct Opts;
    let c = <Opts as pigeon::app::Module>::config().unwrap();
    assert_eq!(
        (
            c.port,
            c.id.as_str(),
            c.concurrency,
            c.queue_limit,
            c.max_clients_id_length
        ),
        (1999, "x", 7, 9, 30)
    );
    assert_eq!(c.connect_timeout, Duration::from_millis(1500));
    assert_eq!(c.heartbeat_interval, Duration::from_millis(2500));
}

#[module(allow_sys_publish = true, event_queue = 8, providers = [])]
struct SysModule;

#[tokio::test]
async fn sys_publish_can_be_allowed_by_the_module() {
    let built = Pigeon::build::<SysModule>(&pigeon::Config::default())
        .await
        .unwrap();
    let mut p = Publish::new("$SYS/x", QoS::AtMostOnce, "x");
    assert!(built.hooks.authorize_publish(None, &mut p).await.is_ok());
}

#[injectable]
struct Chicken {
    _egg: Arc<Egg>,
}

#[injectable]
struct Egg {
    _chicken: Arc<Chicken>,
}

#[module(providers = [Chicken, Egg])]
struct CycleModule;

#[tokio::test]
async fn a_dependency_cycle_is_named_at_bootstrap() {
    let err = Pigeon::build::<CycleModule>(&pigeon::Config::default())
        .await
        .err()
        .expect("must fail");
    let msg = err.to_string();
    assert!(matches!(err, BootstrapError::Cycle(_)), "{msg}");
    assert!(msg.contains("Chicken") && msg.contains("Egg"), "{msg}");
}

#[injectable]
struct Shared {
    #[inject(default)]
    hits: Mutex<u32>,
}

#[injectable]
struct UsesShared {
    shared: Arc<Shared>,
}

#[module(providers = [UsesShared, Shared])]
struct SingletonModule;

#[tokio::test]
async fn providers_are_singletons_whatever_the_module_order() {
    let built = Pigeon::build::<SingletonModule>(&pigeon::Config::default())
        .await
        .unwrap();
    let direct = built.get::<Shared>().unwrap();
    let via = built.get::<UsesShared>().unwrap();
    *via.shared.hits.lock().unwrap() += 1;
    assert_eq!(*direct.hits.lock().unwrap(), 1);
    assert!(Arc::ptr_eq(&direct, &via.shared));
}

#[test]
fn a_module_may_keep_its_state_in_a_shared_redis_store() {
    #[module(persistence = redis("redis://127.0.0.1:6379/2"), providers = [])]
    struct Clustered;
    let c = <Clustered as pigeon::app::Module>::config().unwrap();
    assert_eq!(
        c.persistence,
        pigeon::config::Store::Redis("redis://127.0.0.1:6379/2".into())
    );
}

#[test]
fn a_module_may_keep_its_state_in_a_redb_store() {
    #[module(persistence = redb("/var/lib/app/pigeon.redb"), durability = "10ms", providers = [])]
    struct Durable;
    let c = <Durable as pigeon::app::Module>::config().unwrap();
    assert_eq!(
        c.persistence,
        pigeon::config::Store::Redb("/var/lib/app/pigeon.redb".into())
    );
    assert_eq!(
        c.durability,
        pigeon::config::Durability::Window(Duration::from_millis(10))
    );
}

#[test]
fn a_module_may_join_a_cluster_on_redis() {
    #[module(emitter = redis("redis://10.0.0.5:6379/0"), node_id = "node-a", providers = [])]
    struct Clustered;
    let c = <Clustered as pigeon::app::Module>::config().unwrap();
    assert_eq!(
        c.emitter,
        pigeon::config::EmitterKind::Redis("redis://10.0.0.5:6379/0".into())
    );
    assert_eq!(c.node_id.as_deref(), Some("node-a"));
}
