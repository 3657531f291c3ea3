//! The proc-macros of Pigeon. Use them through `pigeon::prelude`: the
//! documentation of each attribute is also on its re-export there.
//!
//! Each macro parses its input into a small model, validates it (errors carry
//! the span of the offending tokens) and generates code that calls the runtime
//! in `pigeon::__private`.

use proc_macro::TokenStream;

mod args;
mod handlers;
mod hook;
mod injectable;
mod module;

fn finish(r: syn::Result<proc_macro2::TokenStream>) -> TokenStream {
    r.unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Makes a struct a provider: a singleton the module builds at bootstrap and
/// injects wherever it is asked for (as `Arc<T>`).
///
/// # Fields
///
/// Without options, every field is resolved from the module's container:
///
/// | field type | what it gets |
/// | --- | --- |
/// | `Arc<T>`, `T` an `#[injectable]` listed in the module's `providers` | that provider's singleton (built first) |
/// | `Arc<T>`, `T` any other type | the module's value of type `T` (`values = [...]`, or `Pigeon::builder().value(..)`) |
/// | `Arc<dyn Trait>` | the provider bound to it: `providers = [Impl as dyn Trait]` |
/// | `PigeonService` | the handle on the module's broker (publish, subscribe, close) |
/// | `Config` | the broker's configuration |
/// | `Settings<T>`, `T: Section` | the application's own section `T::NAME` of the config file and `PIGEON_<NAME>__*` variables, deserialised |
/// | any `T: Default`, marked `#[inject(default)]` | `Default::default()` |
///
/// A field of another type is a compile error on it (a provider written
/// without `Arc` is told to take `Arc<T>`). What the module lacks (a provider
/// it does not list, a value nobody gave, a trait nothing is bound to) is a
/// bootstrap error naming `Provider.field`; so is a dependency cycle.
///
/// ```
/// # #[injectable] pub struct Audit;
/// use std::sync::Arc;
/// use pigeon::prelude::*;
///
/// pub trait DeviceStore: Send + Sync { /* ... */ }
///
/// #[injectable]
/// pub struct Registry {
///     pigeon: PigeonService,           // the module's broker
///     store: Arc<dyn DeviceStore>,     // `providers = [PgStore as dyn DeviceStore]`
///     audit: Arc<Audit>,               // another provider
///     #[inject(default)]
///     seen: std::sync::atomic::AtomicU64,
/// }
/// ```
///
/// # Options
///
/// - `factory = Self::connect`: the provider is built by
///   `async fn connect(args...) -> Result<Self, E>` (`E: Display`) or
///   `-> Self`, every argument resolved as a field would be (at most 12);
///   it is a plain function, not a method. An `Err` stops the start-up with
///   the error ``provider `Db`: <message>``. With a factory the fields are the
///   factory's to fill: `#[inject]` does not apply.
/// - `init = Self::start`: `async fn start(&self)` (returning `()` or
///   `Result<(), E>`, `E: Display`) runs once the broker listens, before
///   `Pigeon::bootstrap` returns (and in `pigeon::testing::Test`), in
///   creation order: dependencies first. An `Err` (or a panic) fails the
///   bootstrap with ``provider `Db`: init hook failed: <message>``, closes the
///   broker and destroys the providers built. `Pigeon::build` starts no
///   broker and runs none.
/// - `destroy = Self::close`: `async fn close(&self)` (returning `()` or
///   `Result<(), E>`, whose error is logged) runs when the app closes
///   (`App::close`, or after `listen` returns), newest provider first, so a
///   provider is destroyed before those it depends on.
///
/// ```
/// # use pigeon::prelude::*;
/// # use pigeon::broker::PublishError;
/// #[injectable(init = Self::start)]
/// struct Announcer { pigeon: PigeonService }
///
/// impl Announcer {
///     // The broker is listening here: publish, or connect to it.
///     async fn start(&self) -> Result<(), PublishError> {
///         self.pigeon.publish(Publish::new("status", QoS::AtLeastOnce, "up")).await
///     }
/// }
/// ```
///
/// ```
/// # use std::sync::Arc;
/// # use pigeon::prelude::*;
/// struct DbConfig { url: &'static str }
///
/// #[injectable(factory = Self::connect, destroy = Self::close)]
/// struct Db { url: String }
///
/// impl Db {
///     async fn connect(config: Arc<DbConfig>) -> Result<Self, String> {
///         Ok(Db { url: config.url.to_owned() }) // e.g. open a pool
///     }
///     async fn close(&self) {}
/// }
///
/// #[module(values = [DbConfig { url: "pg://db" }], providers = [Db])]
/// struct AppModule;
/// ```
///
/// The struct cannot be generic. Implementing `pigeon::app::Injectable` by
/// hand is the alternative to this attribute.
#[proc_macro_attribute]
pub fn injectable(attr: TokenStream, item: TokenStream) -> TokenStream {
    finish(injectable::expand(attr.into(), item.into()))
}

/// On the inherent `impl` block of an `#[injectable]` provider: registers
/// every method marked with an `#[on_*]` attribute as a handler of that
/// hook, with the provider's singleton as `&self`. Other methods stay as
/// they are.
///
/// A handler is an `async fn` taking `&self` first, then any number of
/// parameters in any order, each an extractor the hook supplies (listed on
/// each attribute): taken by value, except one `&mut T` where the hook lets
/// handlers change the packet (`&mut Publish`, `&mut Connect`,
/// `&mut Subscription`). Its return type must be one the hook accepts. A
/// parameter or return type the hook does not supply is a compile error on
/// that type; so is `Param<T>` on a handler whose pattern has no `:name`
/// segment, and `Client` where the hook may run without one. One method may
/// carry several `#[on_*]` attributes.
///
/// # Handlers and events
///
/// The hooks of the packet's path (`on_pre_connect`, `on_authenticate`,
/// `on_authorize_publish`, `on_authorize_subscribe`, `on_authorize_forward`,
/// `on_published`) are awaited: the broker goes on once they answer, so they
/// may refuse or rewrite. Their handlers form one chain per hook, sorted by
/// `order = N` (default 0, lower first), then by the provider's place in
/// the module's `providers`, then by declaration; the chain stops at the
/// first refusal. A handler whose parameter cannot be extracted (a payload
/// that is not the JSON it asks for) or that panics is not an answer: it
/// counts as a refusal, is logged, and goes to the error events.
///
/// The events (`on_client`, `on_publish`, `on_subscribe`, ...) are
/// notifications: they return `()` and never delay the packet they report.
/// Each provider has a bounded event queue (`#[module(event_queue = N)]`)
/// and a task that runs its listeners of each event in order (by `order`,
/// then declaration); a full queue drops events, counted and logged.
///
/// `#[on_request]` answers MQTT requests (see it).
///
/// # Topic patterns
///
/// `on_authorize_publish`, `on_authorize_forward`, `on_published`,
/// `on_publish`, `on_ack` and `on_request` may take a pattern, as a first
/// string or `topic = "..."`: `#[on_publish("devices/:id/+/#")]`. The handler
/// then runs only for topics it matches: `:name` matches one level and
/// captures it (for `Param<T>` and `Params`), `+` one level, `#` the rest
/// (last). An invalid pattern is a compile error on it.
///
/// # `optional`
///
/// A `#[handlers]` type that no module of the program lists in its
/// `providers` would never run, so bootstrap fails naming it (a deny-all
/// `#[on_authenticate]` left out would otherwise let everyone in). A
/// library whose handlers applications may leave out writes
/// `#[handlers(optional)]`.
///
/// ```
/// use pigeon::prelude::*;
///
/// #[injectable]
/// pub struct Guard;
///
/// #[handlers]
/// impl Guard {
///     #[on_authenticate]
///     async fn login(&self, credential: Credential) -> Result<(), AuthError> {
///         match credential.username.as_deref() {
///             Some("admin") => Ok(()),
///             _ => Err(AuthError::bad_credentials("who are you?")),
///         }
///     }
///
///     #[on_authorize_publish("admin/#", order = -1)] // before the other guards
///     async fn admin_only(&self, client: Option<Client>) -> bool {
///         client.is_some_and(|c| c.username() == Some("admin"))
///     }
/// }
///
/// #[module(providers = [Guard])]
/// struct AppModule;
/// ```
///
/// The impl block cannot be generic nor a trait impl.
#[proc_macro_attribute]
pub fn handlers(attr: TokenStream, item: TokenStream) -> TokenStream {
    finish(handlers::expand(attr.into(), item.into()))
}

/// Declares a module on a struct (usually a unit struct): the broker's
/// options, the providers and the modules it imports; implements
/// `pigeon::app::Module`, which `Pigeon::bootstrap`, `Pigeon::builder` and
/// `pigeon::testing::Test::module` start.
///
/// ```
/// # use pigeon::prelude::*;
/// # #[module] pub struct AuthModule;
/// # pub struct UsersFile(std::path::PathBuf);
/// # pub trait DeviceStore: Send + Sync {}
/// # #[injectable] pub struct Registry;
/// # #[injectable] pub struct PgStore;
/// # impl DeviceStore for PgStore {}
/// # #[injectable] pub struct Telemetry;
/// #[module(
///     port = 1884,
///     id = "binarybeast",
///     listen = ["mqtt://0.0.0.0:1883", "ws://0.0.0.0:8080/mqtt"],
///     persistence = redb("/var/lib/pigeon/store.redb"),
///     connect_timeout = 30000,
///     config_file = "pigeon.toml",
///     imports = [AuthModule],
///     values = [UsersFile("users.toml".into())],
///     providers = [Registry, PgStore as dyn DeviceStore, Telemetry],
/// )]
/// pub struct AppModule;
/// ```
///
/// Every key at most once, in any order:
///
/// - `providers = [A, B, Impl as dyn Trait]`: the `#[injectable]` types the
///   module builds (each once, a singleton), in the order that breaks ties
///   between handler chains. `Impl as dyn Trait` also binds `Arc<dyn Trait>`
///   fields to that provider.
/// - `values = [expr, ...]`: ready instances, evaluated at bootstrap, each
///   injected into the `Arc<T>` fields of its type (two of one type is a
///   bootstrap error).
/// - `imports = [AuthModule, TelemetryModule]`: other modules whose
///   providers and handlers join this one's (transitively; a provider
///   listed twice is one singleton), and whose options apply where this
///   module sets nothing. An import that is no module is a compile error on
///   it; modules importing each other in a cycle, a bootstrap error. See
///   `pigeon::app::Import`.
/// - `config_file = "pigeon.toml"`: the TOML file `Pigeon::bootstrap` reads
///   over the module's options when it exists (the `PIGEON_CONFIG`
///   variable names another; `PIGEON_*` variables come last): the
///   binary's keys, and `[section]` tables for `Settings<T>`.
/// - `listen = ["mqtt://HOST:PORT", "mqtts://..", "ws://HOST:PORT/PATH",
///   "wss://.."]`: the listeners (the scheme is checked here, the rest at
///   bootstrap); `host` and `port` are then bound only if given too.
/// - `persistence = memory`, `persistence = redb("PATH")` (a durable store
///   that survives restarts) or `persistence = redis("redis://HOST:PORT[/DB]")`
///   (a store shared by a cluster).
/// - `emitter = local` or `emitter = redis("redis://HOST:PORT[/DB]")` (a
///   cluster's nodes on that Redis).
/// - `allow_sys_publish = true`: clients may publish to `$SYS/` topics
///   (refused before any handler by default).
/// - `event_queue = N`: the capacity of each provider's event queue
///   (default 16384). `config_file`, `allow_sys_publish` and `event_queue`
///   count only on the module that is started, not on an imported one.
/// - any other key is a field of `pigeon::config::Options`, the same name,
///   type and unit (milliseconds) as the binary's TOML key: `host`, `port`,
///   `id`, `cert`, `key`, `ca_file`, `require_certificate`,
///   `use_identity_as_username`, `concurrency`, `queue_limit`,
///   `max_clients_id_length`, `connect_timeout`, `shutdown_timeout`,
///   `heartbeat_interval`, `acl_file`, `password_file`, `allow_anonymous`,
///   `max_packet_size`, `max_queued_messages`, `max_queued_bytes`,
///   `max_queued_bytes_total`, `drain_timeout`, `max_inflight`,
///   `receive_maximum`, `max_keepalive`, `topic_alias_maximum`,
///   `maximum_qos`, `retain_available`, `wildcard_subscription_available`,
///   `subscription_identifiers_available`, `shared_subscription_available`,
///   `max_session_expiry_interval`, `server_reference`, `max_connections`,
///   `max_topic_levels`, `max_subscriptions_per_client`, `max_publish_rate`,
///   `durability`, `http`, `admin_token`, `node_id`, `sys_interval`,
///   `worker_threads` (the binary's runtime only) and `listeners` (an
///   expression of type `Vec<pigeon::config::Listener>`). A string literal is accepted for a `String` or path option; a misspelt
///   key or a value of the wrong type is a compile error pointing at it.
///
/// Options not given keep the broker's defaults (`pigeon --help`).
#[proc_macro_attribute]
pub fn module(attr: TokenStream, item: TokenStream) -> TokenStream {
    finish(module::expand(attr.into(), item.into()))
}

macro_rules! hook_attrs {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        ///
        /// Only valid on a method of an impl block marked `#[handlers]`.
        #[proc_macro_attribute]
        pub fn $name(_attr: TokenStream, item: TokenStream) -> TokenStream {
            handlers::orphan(stringify!($name), item.into()).into()
        }
    )*};
}

hook_attrs!(
    /// `#[on_pre_connect]`: a valid CONNECT arrived; runs before
    /// authentication (and before the password file is checked).
    ///
    /// In the packet's path: awaited, and may rewrite the CONNECT (client id,
    /// user name, will, properties) through `&mut Connect` for the handlers
    /// after it and for the rest of the connection. No topic pattern;
    /// `order = N` sorts the chain.
    ///
    /// **Parameters**: `Client` or `Option<Client>` (the client as CONNECT
    /// describes it), `&mut Connect`, `Packet<Connect>` (a copy), `Peer`,
    /// `PeerCertificate` (refuses a client without one) or
    /// `Option<PeerCertificate>` (the TLS client certificate).
    ///
    /// **Returns**:
    /// - `Result<(), HookError>`: `Err` refuses the connection;
    /// - `bool`: `false` refuses it ("refused by pre-connect");
    /// - `()`: never refuses.
    ///
    /// A refusal answers an MQTT 5.0 client CONNACK 0x80 (Unspecified error)
    /// and closes an MQTT 3.x one without CONNACK; either way a
    /// `connection_error` event carries the message.
    ///
    /// ```
    /// # use pigeon::prelude::*;
    /// # #[injectable] struct Hooks;
    /// # #[handlers] impl Hooks {
    /// #[on_pre_connect]
    /// async fn pre(&self, connect: &mut Connect, client: Client) -> Result<(), HookError> {
    ///     if client.id() == "refused" {
    ///         return Err(HookError("go away".into()));
    ///     }
    ///     connect.client_id.push_str("-seen");
    ///     Ok(())
    /// }
    /// # }
    /// ```
    on_pre_connect,
    /// `#[on_authenticate]`: decides whether a connecting client gets in;
    /// runs after `#[on_pre_connect]` and after the built-in check of
    /// `password_file` / `allow_anonymous`, and again at each step of an
    /// MQTT 5.0 enhanced authentication (and re-authentication).
    ///
    /// In the packet's path: CONNACK waits for the chain. No topic pattern;
    /// `order = N` sorts the chain. `Ok(())` (or `AuthStep::Pass`) means "no
    /// objection": the next handler decides, and a client no handler refuses
    /// is accepted; so a handler that admits only some users returns an
    /// error for the others.
    ///
    /// **Parameters**: `Client` or `Option<Client>`, `Credential` (user name
    /// and password of CONNECT), `AuthExchange` (MQTT 5.0 enhanced
    /// authentication: method, data, step; method `None` for a plain
    /// CONNECT), `Peer`, `PeerCertificate` or `Option<PeerCertificate>`.
    ///
    /// **Returns**:
    /// - `Result<(), AuthError>`: `Ok(())` passes to the next handler, `Err`
    ///   refuses with the error's reason code;
    /// - `bool`: `false` refuses as not authorized (MQTT 5.0 0x87, 3.x
    ///   return code 5);
    /// - `Result<AuthStep, AuthError>` or `AuthStep`: for enhanced
    ///   authentication, `AuthStep::Continue(data)` sends AUTH 0x18 and runs
    ///   the chain again on the client's answer, `AuthStep::Success(data)`
    ///   accepts, `AuthStep::Pass` passes.
    ///
    /// A refusal sends CONNACK with the `AuthError`'s reason (MQTT 5.0:
    /// its code and message as reason string; 3.x: the nearest return code
    /// 2..=5, see `AuthError::bad_credentials`, `not_authorized`,
    /// `client_id_not_valid`, `unavailable`) and a `connection_error` event.
    /// `?` on an `std::io::Error` refuses as server unavailable. A handler that
    /// panics or cannot extract a parameter refuses too (0x80; 3.x: 3).
    ///
    /// ```
    /// # use pigeon::prelude::*;
    /// # #[injectable] struct Hooks;
    /// # #[handlers] impl Hooks {
    /// #[on_authenticate]
    /// async fn auth(&self, client: Client, credential: Credential) -> Result<(), AuthError> {
    ///     match credential.username.as_deref() {
    ///         Some("admin") => Ok(()),
    ///         _ => Err(AuthError::bad_credentials("who are you?")),
    ///     }
    /// }
    /// # }
    /// ```
    on_authenticate,
    /// `#[on_authorize_publish]`: decides whether a PUBLISH goes on; runs
    /// for every PUBLISH a client sends (after the ACL file's check) and for
    /// every will the broker is about to publish.
    ///
    /// In the packet's path: the message is routed once the chain allows
    /// it, as its handlers left it (`&mut Publish`: topic, payload, QoS,
    /// retain, properties). `#[on_authorize_publish("devices/:id/#")]` runs
    /// only for matching topics; `order = N` sorts the chain. A client's
    /// PUBLISH to `$SYS/` is refused before any handler unless the module
    /// says `allow_sys_publish = true`.
    ///
    /// **Parameters**: `Option<Client>` (`None` for a will whose client is
    /// gone; `Client` is a compile error here), `&mut Publish`,
    /// `Packet<Publish>` (a copy), `Payload`, `Topic`, `Json<T>` (the
    /// payload as JSON, `T: Deserialize`), `Text` (UTF-8 checked), `Bytes`
    /// (raw), `Decoded<T>` (your own format: `T: Decode`), `Param<T>` (the pattern's `:name`
    /// segments: one `T: FromStr`, or a tuple in pattern order), `Params`
    /// (all of them, by name).
    ///
    /// **Returns**:
    /// - `Result<(), Denied>`: `Err` refuses with the `Denied`'s reason code
    ///   (default 0x87 Not authorized; `?` on an `std::io::Error`: 0x80);
    /// - `bool`: `false` refuses ("publish denied", 0x87).
    ///
    /// A refused PUBLISH is not routed. MQTT 5.0: QoS 1/2 get PUBACK/PUBREC
    /// with the reason code and message, the connection stays, and a
    /// `client_error` event carries the message. MQTT 3.x has no negative
    /// acknowledgement: the connection is closed (MQTT-3.3.5-2). A refused
    /// will is not published.
    ///
    /// ```
    /// # use pigeon::prelude::*;
    /// # #[injectable] struct Hooks;
    /// # #[handlers] impl Hooks {
    /// #[on_authorize_publish]
    /// async fn can_publish(&self, client: Option<Client>, packet: &mut Publish) -> Result<(), Denied> {
    ///     if packet.topic == "aaaa" {
    ///         return Err(Denied::new("wrong topic"));
    ///     }
    ///     if packet.topic == "bbb" {
    ///         packet.payload = "overwrite packet payload".into();
    ///     }
    ///     Ok(())
    /// }
    /// # }
    /// ```
    on_authorize_publish,
    /// `#[on_authorize_subscribe]`: decides on each topic filter of a
    /// SUBSCRIBE, and again on each subscription of a persistent session
    /// that is resumed.
    ///
    /// In the packet's path: SUBACK waits for the chain, and the
    /// subscription is granted as the handlers left it (filter, QoS,
    /// options). No topic pattern (a filter is not a topic); `order = N`
    /// sorts the chain.
    ///
    /// **Parameters**: `Client` or `Option<Client>`, `Subscription` (a copy:
    /// filter, QoS, MQTT 5.0 options) or `&mut Subscription` (change it in
    /// place), `Peer`, `PeerCertificate` or `Option<PeerCertificate>`.
    ///
    /// **Returns**:
    /// - `Result<Option<Subscription>, Denied>`: `Ok(Some(s))` goes on with
    ///   `s` in place of the subscription, `Ok(None)` negates it and stops
    ///   the chain, `Err` refuses it with the `Denied`'s reason code;
    /// - `Result<(), Denied>`: `Ok(())` keeps it (as changed through
    ///   `&mut Subscription`), `Err` refuses it;
    /// - `Option<Subscription>`: `Some(s)` replaces, `None` negates.
    ///
    /// A negated or refused filter gets its failure code in SUBACK (MQTT
    /// 5.0: 0x80 for a negation, the `Denied`'s reason, 0x87 by default, for
    /// a refusal; 3.x: 0x80); the other filters of the SUBSCRIBE are not
    /// affected. A refusal also raises a `client_error` event. A filter
    /// rewritten into an invalid one is refused with 0x80.
    ///
    /// ```
    /// # use pigeon::prelude::*;
    /// # #[injectable] struct Hooks;
    /// # #[handlers] impl Hooks {
    /// #[on_authorize_subscribe]
    /// async fn can_subscribe(&self, mut sub: Subscription) -> Result<Option<Subscription>, Denied> {
    ///     match sub.topic.as_str() {
    ///         "aaaa" => Err(Denied::new("wrong topic")),
    ///         "neg" => Ok(None),
    ///         "bbb" => {
    ///             sub.topic = "foo".into();
    ///             Ok(Some(sub))
    ///         }
    ///         _ => Ok(Some(sub)),
    ///     }
    /// }
    /// # }
    /// ```
    on_authorize_subscribe,
    /// `#[on_authorize_forward]`: decides, for one subscriber, whether a
    /// message is sent to it; runs for each delivery, after the ACL file's
    /// read check, before the message is written to the subscriber.
    ///
    /// In the delivery's path: the subscriber gets the message as the
    /// handlers left its copy (`&mut Publish`; a QoS above the one granted
    /// is capped), other subscribers are not affected.
    /// `#[on_authorize_forward("alerts/#")]` runs only for matching topics;
    /// `order = N` sorts the chain.
    ///
    /// **Parameters**: `Client` or `Option<Client>` (the subscriber),
    /// `&mut Publish`, `Packet<Publish>` (a copy), `Payload`, `Topic`,
    /// `Json<T>`, `Text`, `Bytes`, `Decoded<T>`, `Param<T>`, `Params`, `Peer`, `PeerCertificate` or
    /// `Option<PeerCertificate>` (the subscriber's).
    ///
    /// **Returns**:
    /// - `bool`: `false` drops the message for this subscriber;
    /// - `Result<(), Denied>`: `Err` drops it (nothing is sent to anyone
    ///   about it);
    /// - `()`: always forwards (a handler that only rewrites).
    ///
    /// A handler that panics or cannot extract a parameter drops the message
    /// too, and raises a `client_error` event for the subscriber.
    ///
    /// ```
    /// # use pigeon::prelude::*;
    /// # #[injectable] struct Hooks;
    /// # #[handlers] impl Hooks {
    /// #[on_authorize_forward]
    /// async fn forward(&self, client: Client, packet: &mut Publish) -> bool {
    ///     packet.retain = false;
    ///     client.id() != "muted"
    /// }
    /// # }
    /// ```
    on_authorize_forward,
    /// `#[on_published]`: a client's PUBLISH was authorized and handed to
    /// its subscribers; runs before the broker acknowledges it (PUBACK /
    /// PUBREC) and reads the client's next packet, so a slow handler slows
    /// that publisher (backpressure), not the others.
    ///
    /// In the packet's path, but after delivery: it cannot refuse nor
    /// change the message. `#[on_published("orders/:id")]` runs only for
    /// matching topics; `order = N` sorts the chain.
    ///
    /// **Parameters**: `Option<Client>` (`Client` is a compile error here),
    /// `Packet<Publish>`, `Payload`, `Topic`, `Json<T>`, `Text`, `Bytes`,
    /// `Decoded<T>`, `Param<T>`, `Params`; `&mut Publish` compiles, but a change is seen only by the
    /// `#[on_published]` handlers after it.
    ///
    /// **Returns**:
    /// - `()`;
    /// - `Result<(), E>` (`E: Display`, e.g. `HookError`, `std::io::Error`):
    ///   `Err` stops the chain, is logged with the handler's name and client
    ///   id, and raises a `client_error` event with its message; the message
    ///   stays delivered and acknowledged.
    ///
    /// ```
    /// # use pigeon::prelude::*;
    /// # struct Db;
    /// # impl Db {
    /// #     async fn insert(&self, _id: u64, _payload: &Payload) -> std::io::Result<()> { Ok(()) }
    /// # }
    /// # #[injectable] struct Hooks { db: std::sync::Arc<Db> }
    /// # #[handlers] impl Hooks {
    /// #[on_published("orders/:id")]
    /// async fn record(&self, Param(id): Param<u64>, payload: Payload) -> Result<(), HookError> {
    ///     self.db.insert(id, &payload).await.map_err(|e| HookError(e.to_string()))
    /// }
    /// # }
    /// ```
    on_published,
    /// `#[on_client]` (event): a client was authenticated and its session
    /// set up; CONNACK follows, then `#[on_client_ready]`.
    ///
    /// A notification: it never delays the client. No topic pattern;
    /// `order = N` orders the provider's listeners.
    ///
    /// **Parameters**: `Client`, `Option<Client>`. **Returns**: `()` or `Result<(), E>` (`E: Display`: an `Err` is logged
    /// with the handler's name and client id and, when the event has a client,
    /// raised as its `client_error` event — not for the error events themselves).
    ///
    /// ```
    /// # use pigeon::prelude::*;
    /// # #[injectable] struct Hooks;
    /// # #[handlers] impl Hooks {
    /// #[on_client]
    /// async fn on_new_client(&self, client: Client) {
    ///     tracing::info!(client = client.id(), user = ?client.username(), "new client");
    /// }
    /// # }
    /// ```
    on_client,
    /// `#[on_client_ready]` (event): a connected client received the
    /// messages queued for it while offline (up to its in-flight window)
    /// and the broker now serves what it sends.
    ///
    /// A notification. No topic pattern; `order = N` orders the provider's
    /// listeners.
    ///
    /// **Parameters**: `Client`, `Option<Client>`. **Returns**: `()` or `Result<(), E>` (`E: Display`: an `Err` is logged
    /// with the handler's name and client id and, when the event has a client,
    /// raised as its `client_error` event — not for the error events themselves).
    ///
    /// ```
    /// # use pigeon::prelude::*;
    /// # #[injectable] struct Hooks { pigeon: PigeonService }
    /// # #[handlers] impl Hooks {
    /// #[on_client_ready]
    /// async fn ready(&self, client: Client) {
    ///     let _ = self.pigeon.publish(Publish::new(format!("welcome/{}", client.id()), QoS::AtLeastOnce, "hi")).await;
    /// }
    /// # }
    /// ```
    on_client_ready,
    /// `#[on_client_disconnect]` (event): the connection of a connected
    /// client ended (DISCONNECT, a network error, a keep alive timeout, a
    /// refusal, the broker closing); its will, if any, has been handled.
    ///
    /// A notification. No topic pattern; `order = N` orders the provider's
    /// listeners.
    ///
    /// **Parameters**: `Client`, `Option<Client>`. **Returns**: `()` or `Result<(), E>` (`E: Display`: an `Err` is logged
    /// with the handler's name and client id and, when the event has a client,
    /// raised as its `client_error` event — not for the error events themselves).
    ///
    /// ```
    /// # use pigeon::prelude::*;
    /// # #[derive(Default)]
    /// # struct Online(std::sync::Mutex<std::collections::HashSet<String>>);
    /// # impl Online {
    /// #     fn remove(&self, id: &str) {
    /// #         self.0.lock().map(|mut ids| ids.remove(id)).ok();
    /// #     }
    /// # }
    /// # #[injectable] struct Hooks { #[inject(default)] online: Online }
    /// # #[handlers] impl Hooks {
    /// #[on_client_disconnect]
    /// async fn gone(&self, client: Client) {
    ///     self.online.remove(client.id());
    /// }
    /// # }
    /// ```
    on_client_disconnect,
    /// `#[on_client_error]` (event): something failed on a connected
    /// client: a refused PUBLISH or SUBSCRIBE, a protocol error, a request
    /// that cannot be answered, or a handler's failure (an `Err`, a panic, a
    /// parameter that could not be extracted) concerning that client.
    ///
    /// A notification. No topic pattern; `order = N` orders the provider's
    /// listeners. A failure of a `client_error` listener itself is logged,
    /// not reported again.
    ///
    /// **Parameters**: `Client`, `Option<Client>`, `Error` (the message;
    /// `Display`). **Returns**: `()` or `Result<(), E>` (`E: Display`: an `Err` is logged
    /// with the handler's name and client id and, when the event has a client,
    /// raised as its `client_error` event — not for the error events themselves).
    ///
    /// ```
    /// # use pigeon::prelude::*;
    /// # #[injectable] struct Hooks;
    /// # #[handlers] impl Hooks {
    /// #[on_client_error]
    /// async fn on_client_error(&self, client: Client, error: Error) {
    ///     tracing::warn!(client = client.id(), %error, "client error");
    /// }
    /// # }
    /// ```
    on_client_error,
    /// `#[on_connection_error]` (event): a connection failed before its
    /// client was connected: a refused CONNECT (pre-connect,
    /// authentication, password file), a CONNECT that does not parse or
    /// does not come in time (`connect_timeout`), a full queue during the
    /// handshake. The `Client` is the one CONNECT described (an anonymous
    /// placeholder when none arrived).
    ///
    /// A notification. No topic pattern; `order = N` orders the provider's
    /// listeners.
    ///
    /// **Parameters**: `Client`, `Option<Client>`, `Error`. **Returns**: `()` or `Result<(), E>` (`E: Display`: an `Err` is logged
    /// with the handler's name and client id and, when the event has a client,
    /// raised as its `client_error` event — not for the error events themselves).
    ///
    /// ```
    /// # use pigeon::prelude::*;
    /// # #[injectable] struct Hooks;
    /// # #[handlers] impl Hooks {
    /// #[on_connection_error]
    /// async fn refused(&self, client: Client, error: Error) {
    ///     tracing::info!(client = client.id(), addr = %client.addr(), %error, "connection refused");
    /// }
    /// # }
    /// ```
    on_connection_error,
    /// `#[on_keepalive_timeout]` (event): a client sent nothing for one and
    /// a half times its keep alive; the broker closes the connection
    /// (`#[on_client_disconnect]` follows).
    ///
    /// A notification. No topic pattern; `order = N` orders the provider's
    /// listeners.
    ///
    /// **Parameters**: `Client`, `Option<Client>`. **Returns**: `()` or `Result<(), E>` (`E: Display`: an `Err` is logged
    /// with the handler's name and client id and, when the event has a client,
    /// raised as its `client_error` event — not for the error events themselves).
    ///
    /// ```
    /// # use pigeon::prelude::*;
    /// # #[injectable] struct Hooks;
    /// # #[handlers] impl Hooks {
    /// #[on_keepalive_timeout]
    /// async fn on_keepalive_timeout(&self, client: Client) {
    ///     tracing::info!(client = client.id(), "keep alive timed out");
    /// }
    /// # }
    /// ```
    on_keepalive_timeout,
    /// `#[on_publish]` (event): a message was accepted and routed: every
    /// PUBLISH of a client that `#[on_authorize_publish]` allowed, and the
    /// broker's own messages (`PigeonService::publish`, wills, `$SYS`).
    ///
    /// A notification: subscribers get the message whether or not the
    /// listeners have run. `#[on_publish("sensors/:id/temp")]` runs only for
    /// matching topics; `order = N` orders the provider's listeners.
    ///
    /// **Parameters**: `Option<Client>` (the publisher; `None` for the
    /// broker's own messages, so `Client` is a compile error here),
    /// `Packet<Publish>`, `Payload`, `Topic`, `Json<T>` (`T: Deserialize`),
    /// `Text`, `Bytes`, `Decoded<T>` (a payload that does not decode skips the handler: the failure is
    /// logged and, for a client's message, raised as its `client_error`
    /// event), `Param<T>`, `Params`. **Returns**: `()` or `Result<(), E>` (`E: Display`: an `Err` is logged
    /// with the handler's name and client id and, when the event has a client,
    /// raised as its `client_error` event — not for the error events themselves).
    ///
    /// ```
    /// # use pigeon::prelude::*;
    /// # #[derive(serde::Deserialize)]
    /// # struct Temp { celsius: f64 }
    /// # #[injectable] struct Hooks { pigeon: PigeonService }
    /// # #[handlers] impl Hooks {
    /// #[on_publish("sensors/:id/temp")]
    /// async fn temp(&self, Param(id): Param<String>, Json(t): Json<Temp>) {
    ///     if t.celsius > 30.0 {
    ///         let alert = Publish::new(format!("alerts/{id}"), QoS::AtLeastOnce, "hot");
    ///         let _ = self.pigeon.publish(alert).await;
    ///     }
    /// }
    /// # }
    /// ```
    on_publish,
    /// `#[on_ack]` (event): a subscriber acknowledged a delivery (PUBACK for
    /// QoS 1, PUBCOMP for QoS 2): the message is delivered to it.
    ///
    /// A notification. `#[on_ack("orders/#")]` runs only for matching
    /// topics; `order = N` orders the provider's listeners.
    ///
    /// **Parameters**: `Client` or `Option<Client>` (the subscriber),
    /// `Packet<Publish>` (the message as delivered), `Payload`, `Topic`,
    /// `Json<T>`, `Text`, `Bytes`, `Decoded<T>`, `Param<T>`, `Params`. **Returns**: `()` or `Result<(), E>` (`E: Display`: an `Err` is logged
    /// with the handler's name and client id and, when the event has a client,
    /// raised as its `client_error` event — not for the error events themselves).
    ///
    /// ```
    /// # use pigeon::prelude::*;
    /// # #[injectable] struct Hooks;
    /// # #[handlers] impl Hooks {
    /// #[on_ack]
    /// async fn on_ack(&self, client: Client, packet: Packet<Publish>) {
    ///     tracing::info!(client = client.id(), topic = %packet.topic, "delivered");
    /// }
    /// # }
    /// ```
    on_ack,
    /// `#[on_subscribe]` (event): a SUBSCRIBE was answered (SUBACK sent)
    /// and at least one of its filters granted.
    ///
    /// A notification. No topic pattern; `order = N` orders the provider's
    /// listeners.
    ///
    /// **Parameters**: `Client`, `Option<Client>`, `Subscriptions` (the
    /// granted subscriptions, as `#[on_authorize_subscribe]` left them;
    /// refused and negated filters are not in it). **Returns**: `()` or `Result<(), E>` (`E: Display`: an `Err` is logged
    /// with the handler's name and client id and, when the event has a client,
    /// raised as its `client_error` event — not for the error events themselves).
    ///
    /// ```
    /// # use pigeon::prelude::*;
    /// # #[injectable] struct Hooks;
    /// # #[handlers] impl Hooks {
    /// #[on_subscribe]
    /// async fn on_subscribe(&self, subscriptions: Subscriptions, client: Client) {
    ///     let topics: Vec<_> = subscriptions.0.iter().map(|s| s.topic.as_str()).collect();
    ///     tracing::info!(client = client.id(), ?topics, "subscribed");
    /// }
    /// # }
    /// ```
    on_subscribe,
    /// `#[on_unsubscribe]` (event): a client unsubscribed.
    ///
    /// A notification. No topic pattern; `order = N` orders the provider's
    /// listeners.
    ///
    /// **Parameters**: `Client`, `Option<Client>`, `Unsubscriptions` (the
    /// topic filters of the UNSUBSCRIBE). **Returns**: `()` or `Result<(), E>` (`E: Display`: an `Err` is logged
    /// with the handler's name and client id and, when the event has a client,
    /// raised as its `client_error` event — not for the error events themselves).
    ///
    /// ```
    /// # use pigeon::prelude::*;
    /// # #[injectable] struct Hooks;
    /// # #[handlers] impl Hooks {
    /// #[on_unsubscribe]
    /// async fn on_unsubscribe(&self, unsubscriptions: Unsubscriptions, client: Client) {
    ///     tracing::info!(client = client.id(), topics = ?unsubscriptions.0, "unsubscribed");
    /// }
    /// # }
    /// ```
    on_unsubscribe,
    /// `#[on_connack_sent]` (event): the broker sent a CONNACK, accepting
    /// the client or refusing it (see its reason code).
    ///
    /// A notification. No topic pattern; `order = N` orders the provider's
    /// listeners.
    ///
    /// **Parameters**: `Client`, `Option<Client>`, `Packet<ConnAck>`.
    /// **Returns**: `()` or `Result<(), E>` (`E: Display`: an `Err` is logged
    /// with the handler's name and client id and, when the event has a client,
    /// raised as its `client_error` event — not for the error events themselves).
    ///
    /// ```
    /// # use pigeon::prelude::*;
    /// # #[injectable] struct Hooks;
    /// # #[handlers] impl Hooks {
    /// #[on_connack_sent]
    /// async fn on_connack_sent(&self, client: Client, packet: Packet<ConnAck>) {
    ///     tracing::info!(client = client.id(), reason = ?packet.reason_code, "CONNACK sent");
    /// }
    /// # }
    /// ```
    on_connack_sent,
    /// `#[on_closed]` (event): the broker closed (`App::close`, a signal
    /// ending `App::listen`, `PigeonService::close`); `App::close` waits for
    /// these listeners before the providers' destroy hooks run.
    ///
    /// A notification. No topic pattern; `order = N` orders the provider's
    /// listeners.
    ///
    /// **Parameters**: none usually; `Option<Client>` is always `None`.
    /// **Returns**: `()` or `Result<(), E>` (`E: Display`: an `Err` is logged
    /// with the handler's name and client id and, when the event has a client,
    /// raised as its `client_error` event — not for the error events themselves).
    ///
    /// ```
    /// # use pigeon::prelude::*;
    /// # #[injectable] struct Hooks;
    /// # #[handlers] impl Hooks {
    /// #[on_closed]
    /// async fn on_closed(&self) {
    ///     tracing::info!("broker closed");
    /// }
    /// # }
    /// ```
    on_closed,
    /// `#[on_ping]` (event): a client sent PINGREQ (the broker answers
    /// PINGRESP whatever the listeners do).
    ///
    /// A notification. No topic pattern; `order = N` orders the provider's
    /// listeners.
    ///
    /// **Parameters**: `Client`, `Option<Client>`. **Returns**: `()` or `Result<(), E>` (`E: Display`: an `Err` is logged
    /// with the handler's name and client id and, when the event has a client,
    /// raised as its `client_error` event — not for the error events themselves).
    ///
    /// ```
    /// # use pigeon::prelude::*;
    /// # #[derive(Default)]
    /// # struct LastSeen(std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>);
    /// # impl LastSeen {
    /// #     fn touch(&self, id: &str) {
    /// #         self.0.lock().map(|mut seen| seen.insert(id.to_owned(), std::time::Instant::now())).ok();
    /// #     }
    /// # }
    /// # #[injectable] struct Hooks { #[inject(default)] last_seen: LastSeen }
    /// # #[handlers] impl Hooks {
    /// #[on_ping]
    /// async fn on_ping(&self, client: Client) {
    ///     self.last_seen.touch(client.id());
    /// }
    /// # }
    /// ```
    on_ping,
);

/// `#[on_request("rpc/:service/:method", timeout = 10000, concurrency = 16)]`:
/// answers requests, MQTT 5.0 request/response style: the returned value is
/// published to the requester's response topic.
///
/// A request is a PUBLISH to a topic the pattern matches (the pattern is
/// required; its `:name` segments fill `Param<T>`). Each handler reads its
/// requests from its own in-process shared subscription (in a cluster, one
/// node answers each request). `timeout` (ms, default 10000) bounds one
/// call (past it, the answer is a timeout error), and
/// `concurrency` (default 16) the calls running at once; further requests
/// wait in the handler's bounded queue, which slows QoS 1/2 requesters when
/// full. `order = N` is accepted but unused: requests are not a chain.
///
/// **Parameters**: `Param<T>`, `Params`, `Json<T>`, `Text`, `Bytes`, `Decoded<T>`, `Payload`, `Topic`,
/// `Packet<Publish>` (the request), `Option<Client>` (`None` when the broker
/// itself published the request), `Client` (such a request is then
/// answered with an error); `&mut Publish` compiles but changes nothing.
///
/// **Returns**: `Result<A, E>` or `A`, where `A` is `Json<T>`
/// (`T: Serialize`; content type `application/json`), `String` or
/// `&'static str` (`text/plain; charset=utf-8`), `Bytes` or `Vec<u8>` (no
/// content type) or `()` (an empty payload), and `E: Display` (an error
/// answer). Another return type is a compile error on it.
///
/// An MQTT 5.0 request is answered on its Response Topic, with its
/// Correlation Data and QoS and the content type above; an error answer has
/// the message as payload and the user property `error`. A 3.1.1 client
/// sends a JSON envelope instead (see `pigeon::hooks::request`). A request
/// with nowhere to answer (or a response topic the requester may not
/// publish to) is not answered and goes to `#[on_client_error]`.
///
/// ```
/// # use pigeon::prelude::*;
/// # #[derive(serde::Deserialize)]
/// # struct Args { x: i64, y: i64 }
/// # #[injectable] struct Calc;
/// #[handlers]
/// impl Calc {
///     #[on_request("rpc/calc/:op", timeout = 2000)]
///     async fn calc(&self, Param(op): Param<String>, Json(a): Json<Args>) -> Result<Json<i64>, String> {
///         match op.as_str() {
///             "add" => Ok(Json(a.x + a.y)),
///             _ => Err(format!("no such operation: {op}")),
///         }
///     }
/// }
/// ```
///
/// Only valid on a method of an impl block marked `#[handlers]`.
#[proc_macro_attribute]
pub fn on_request(_attr: TokenStream, item: TokenStream) -> TokenStream {
    handlers::orphan("on_request", item.into()).into()
}
