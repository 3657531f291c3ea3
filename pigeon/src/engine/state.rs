//! The state every connection shares: options, hooks, the two seams, the
//! session registry and the counters; and the operations connections call.

use std::{
    collections::HashMap,
    sync::{
        atomic::{
            AtomicBool, AtomicU64,
            Ordering::{Acquire, Relaxed, Release},
        },
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use bytes::Bytes;
use pigeon_codec::{Publish, PublishProperties, SubscriptionOptions, Will};
use tokio::sync::Notify;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use arc_swap::ArcSwapOption;

use super::{
    budget::QueuePolicy,
    router::Router,
    stats::Counters,
    topic_tree::{Entry, TopicTree},
    Owner, Session,
};
use crate::{
    acl::Acl,
    auth::Authenticator,
    emitter::{Completion, Emitter, Recovery},
    hooks::{Client, Event, EventKind, Hooks},
    model::{BoxFuture, Message, QueueLimits, StoredSubscription},
    persistence::Persistence,
    Config,
};

/// What the store gets at shutdown at least, even when the connections took
/// all of `shutdown_timeout` (at most that timeout).
const STORE_GRACE: Duration = Duration::from_secs(1);

pub(crate) struct Engine {
    pub config: Config,
    pub hooks: Arc<Hooks>,
    /// Swapped whole by a reload; connections read it per check, through
    /// [`Engine::acl`].
    pub acl: ArcSwapOption<Acl>,
    /// Whether `acl` can ever hold one: given at startup, or an ACL file that
    /// a reload reads (the only other writer).
    acl_possible: bool,
    /// `allow_anonymous` and the password file, checked on CONNECT.
    pub authenticator: Authenticator,
    pub router: Arc<Router>,
    pub emitter: Arc<dyn Emitter>,
    pub persistence: Arc<dyn Persistence>,
    pub stats: Arc<Counters>,
    /// The queue limits and budget every session is held to.
    pub policy: Arc<QueuePolicy>,
    /// Cancelled by [`Engine::begin_shutdown`] only, which sets `stopping`
    /// first: to wait for the shutdown, not to ask whether it began (see
    /// [`Engine::is_shutting_down`]).
    pub shutdown: CancellationToken,
    stopping: AtomicBool,
    pub closed: CancellationToken,
    pub tracker: TaskTracker,
    /// The runtime its connections run in, known from the first that parks:
    /// a parked connection resumes there (one handle here instead of one in
    /// each parked connection).
    pub runtime: std::sync::OnceLock<tokio::runtime::Handle>,
    /// Connections open over every listener, against `max_connections`.
    pub connections: Arc<super::ConnectionCount>,
    /// The connections' keep-alive deadlines, watched by one task.
    pub deadlines: Arc<super::Deadlines>,
    /// Messages being handed to the emitter at once (the seed's `concurrency`).
    delivery_slots: tokio::sync::Semaphore,
    sessions: Mutex<HashMap<Arc<str>, Arc<Session>>>,
    /// CONNECTs between claiming their session in a cluster's store and
    /// registering it here, per client id (how many, and a wake-up for a
    /// takeover request that arrives meanwhile).
    claims: Mutex<HashMap<Arc<str>, Claim>>,
    next_conn: AtomicU64,
}

/// How long a takeover request waits for a CONNECT still claiming the
/// session here (less than the other node's `HANDOVER_WAIT`).
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The CONNECTs of one client id claiming its session here.
#[derive(Default)]
struct Claim {
    /// How many.
    connects: usize,
    /// Woken when one of them ends its claim.
    ended: Arc<Notify>,
    /// One is about to register the session: a takeover waits for it.
    committed: bool,
    /// Another node took the session before any registered it: they give up.
    superseded: bool,
}

/// A CONNECT claiming its session ([`Engine::claiming`]), until dropped once
/// the session is registered.
pub(crate) struct Claiming<'a> {
    engine: &'a Engine,
    client_id: Arc<str>,
}

impl Drop for Claiming<'_> {
    fn drop(&mut self) {
        let mut claims = self.engine.claims();
        if let Some(claim) = claims.get_mut(&self.client_id) {
            claim.connects -= 1;
            claim.ended.notify_waiters();
            if claim.connects == 0 {
                claims.remove(&self.client_id);
            }
        }
    }
}

impl Engine {
    pub(crate) fn new(
        config: Config,
        hooks: Arc<Hooks>,
        acl: Option<Acl>,
        authenticator: Authenticator,
        persistence: Arc<dyn Persistence>,
        emitter: Arc<dyn Emitter>,
    ) -> Self {
        let stats = Arc::new(Counters::default());
        let limits = QueueLimits {
            messages: config.max_queued_messages,
            bytes: config.max_queued_bytes,
            drain_timeout: config.drain_timeout,
        };
        let policy = Arc::new(QueuePolicy::new(limits, config.max_queued_bytes_total));
        let router = Arc::new(Router::new(
            persistence.clone(),
            stats.clone(),
            policy.clone(),
        ));
        emitter.bind(router.clone());
        let delivery_slots = tokio::sync::Semaphore::new(config.concurrency.max(1));
        let connections = super::ConnectionCount::new(config.max_connections);
        let shutdown = CancellationToken::new();
        let acl_possible = acl.is_some() || config.acl_file.is_some();
        Self {
            deadlines: Arc::new(super::Deadlines::new(shutdown.clone())),
            config,
            hooks,
            acl: ArcSwapOption::from_pointee(acl),
            acl_possible,
            authenticator,
            router,
            emitter,
            persistence,
            stats,
            policy,
            shutdown,
            stopping: AtomicBool::new(false),
            closed: CancellationToken::new(),
            tracker: TaskTracker::new(),
            runtime: std::sync::OnceLock::new(),
            connections,
            delivery_slots,
            sessions: Mutex::new(HashMap::new()),
            claims: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
        }
    }

    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Relaxed)
    }

    /// Emits an event built only when someone listens.
    pub(crate) fn event(&self, kind: EventKind, build: impl FnOnce() -> Event) {
        if self.hooks.wants(kind) {
            self.hooks.emit(build());
        }
    }

    fn registry(&self) -> MutexGuard<'_, HashMap<Arc<str>, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn claims(&self) -> MutexGuard<'_, HashMap<Arc<str>, Claim>> {
        self.claims.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks a CONNECT of `client_id` as claiming its session, until the
    /// returned guard is dropped (once the session is registered). Another
    /// node that takes the session over meanwhile has its request wait for
    /// the registration, then the session is let go: without this, both
    /// nodes would serve it. Only with a store shared by a cluster.
    pub(crate) fn claiming(&self, client_id: &Arc<str>) -> Option<Claiming<'_>> {
        if !matches!(self.config.persistence, crate::config::Store::Redis(_)) {
            return None;
        }
        let mut claims = self.claims();
        claims.entry(client_id.clone()).or_default().connects += 1;
        Some(Claiming {
            engine: self,
            client_id: client_id.clone(),
        })
    }

    /// A CONNECT claiming `client_id`'s session is about to register it:
    /// false when another node took the session meanwhile (the CONNECT gives
    /// up: serving it too would make two nodes own the session). Call with
    /// nothing registered since the claim; true when no claim is tracked.
    pub(crate) fn commit_claim(&self, client_id: &str) -> bool {
        let mut claims = self.claims();
        match claims.get_mut(client_id) {
            Some(claim) if claim.superseded => false,
            Some(claim) => {
                claim.committed = true;
                true
            }
            None => true,
        }
    }

    /// The session of `client_id` to let go. A CONNECT here still claiming
    /// it is told to give up when it has not committed; once committed, the
    /// takeover waits (at most [`CLAIM_WAIT`]) until it registered and owns
    /// the session, so that letting it go closes that connection.
    async fn session_or_claimed(&self, client_id: &str) -> Option<Arc<Session>> {
        let ended = {
            let mut claims = self.claims();
            match claims.get_mut(client_id) {
                Some(claim) if !claim.committed => {
                    claim.superseded = true;
                    None
                }
                Some(claim) => Some(claim.ended.clone()),
                None => None,
            }
        };
        if let Some(ended) = ended {
            // Registered for `notify_waiters` when created; the guard's drop
            // notifies under the lock after removing itself, so a claim that
            // ended before this is seen by the check below.
            let registered = ended.notified();
            if self.claims().contains_key(client_id) {
                let _ = tokio::time::timeout(CLAIM_WAIT, registered).await;
            }
        }
        self.session(client_id)
    }

    /// Starts the shutdown. Connections learn of it when woken, which this
    /// does: they hold no waiter on the token (registering one per wait would
    /// make every connection lock the token's one mutex).
    pub(crate) fn begin_shutdown(&self) {
        self.stopping.store(true, Release);
        self.shutdown.cancel();
        for session in self.sessions() {
            session.wake();
        }
    }

    /// Whether the shutdown began. Every connection asks at every step:
    /// `CancellationToken::is_cancelled` locks the token's one mutex, which
    /// made a line every core took from the others several times per message.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.stopping.load(Acquire)
    }

    /// The session of `client_id`, if there is one.
    pub(crate) fn session(&self, client_id: &str) -> Option<Arc<Session>> {
        self.registry().get(client_id).cloned()
    }

    /// The rest of the shutdown, once begun and the tracker closed: waits for
    /// the connections (each says goodbye, MQTT 5.0: DISCONNECT 0x8B, and
    /// hands its session back) and the other tasks to end, at most
    /// `shutdown_timeout` (past it, what is left is logged and closing goes
    /// on); then for the store to commit everything it was told, in what is
    /// left of the timeout but at least [`STORE_GRACE`] (or the timeout, if shorter).
    pub(crate) async fn drain(&self) {
        let timeout = self.config.shutdown_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        if tokio::time::timeout_at(deadline, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                tasks = self.tracker.len(),
                "connections still closing after shutdown_timeout ({timeout:?}); closing anyway"
            );
        }
        // At least a moment for the store even when the connections took it all.
        let store_deadline = deadline.max(tokio::time::Instant::now() + timeout.min(STORE_GRACE));
        match tokio::time::timeout_at(store_deadline, self.persistence.flush()).await {
            Ok(true) => {}
            Ok(false) => tracing::error!("the store could not commit its last changes at shutdown"),
            Err(_) => tracing::warn!(
                "the store was still committing after shutdown_timeout ({timeout:?})"
            ),
        }
    }

    /// Every session in the registry.
    pub(crate) fn sessions(&self) -> Vec<Arc<Session>> {
        self.registry().values().cloned().collect()
    }

    /// Takes ownership of `client_id`'s session, disconnecting its current owner
    /// and waiting until that one has saved its state.
    pub(crate) async fn acquire_session(&self, client_id: &Arc<str>) -> (Arc<Session>, Owner) {
        loop {
            let session = self
                .registry()
                .entry(client_id.clone())
                .or_insert_with(|| Arc::new(Session::new(client_id.clone(), self.policy.clone())))
                .clone();
            let guard = own(&session).await;
            if !session.is_removed() {
                return (session, guard);
            }
        }
    }

    /// Rebuilds offline persistent sessions and their subscriptions from
    /// persistence (a broker started on an existing store).
    pub(crate) async fn restore_sessions(self: &Arc<Self>) {
        for stored in self.persistence.sessions().await {
            self.restore(stored).await;
        }
    }

    /// One stored session back in the registry, as at a restart: its timers
    /// re-armed, a will that is due published.
    async fn restore(self: &Arc<Self>, stored: crate::persistence::StoredSession) {
        let timers = stored.state.clone().map(|state| (state, stored.will_at));
        let session = self.install(stored);
        if let Some((state, will_at)) = timers {
            self.rearm(session, state, will_at).await;
        }
    }

    /// Interest-based routing (issue #13): tells the emitter when this node's
    /// tree gains its first holder of `filter` (just inserted). Called with the
    /// tree's write lock held, so that the emitter sees a filter's gains and
    /// losses in the order they happened; the emitter only records them.
    fn note_added(&self, tree: &TopicTree, filter: &str) {
        if tree.holders(filter) == 1 {
            self.emitter.interest_added(filter);
        }
    }

    /// As [`Engine::note_added`], when the last holder of `filter` is gone.
    fn note_removed(&self, tree: &TopicTree, filter: &str) {
        if tree.holders(filter) == 0 {
            self.emitter.interest_removed(filter);
        }
    }

    /// Puts a stored session in the registry, offline, with its subscriptions.
    fn install(&self, stored: crate::persistence::StoredSession) -> Arc<Session> {
        let client_id: Arc<str> = Arc::from(stored.client_id);
        let session = Arc::new(Session::new(client_id.clone(), self.policy.clone()));
        session.mark_persistent();
        {
            let mut tree = self.router.tree_mut();
            for sub in stored.subscriptions {
                let entry = Entry {
                    session: session.clone(),
                    options: sub.options,
                    identifier: sub.identifier,
                };
                if tree.insert(&sub.filter, entry) {
                    self.note_added(&tree, &sub.filter);
                }
                session.add_subscription(&sub.filter, sub.options, sub.identifier);
            }
        }
        self.registry().insert(client_id, session.clone());
        session
    }

    /// A store shared by a cluster: before a CONNECT of `client_id` is
    /// served, claims its session (the node that held it lets it go), and,
    /// unless `clean_start`, brings in the session another node left in the
    /// store when this node has none. Nothing happens with a store of one
    /// node (the trait's defaults).
    ///
    /// False when another node took the session before this CONNECT could
    /// register it: the CONNECT gives up (its lease is given back, unless
    /// the other node holds it now).
    pub(crate) async fn claim_session(&self, client_id: &str, clean_start: bool) -> bool {
        let taken_from_gone = self.persistence.claim_session(client_id).await;
        if clean_start || self.session(client_id).is_some() {
            return self.commit_or_give_up(client_id);
        }
        if let Some(stored) = self.persistence.load_session(client_id).await {
            if !self.commit_or_give_up(client_id) {
                return false;
            }
            if self.session(client_id).is_none() {
                tracing::debug!(client_id, "session resumed from the shared store");
                self.install(stored);
                // A killed node's inbox holds what was sent it for this
                // session after it died: the emitter brings that here.
                if let Some(from) = taken_from_gone {
                    self.emitter.recover(Recovery {
                        from,
                        clients: vec![Arc::from(client_id)],
                        retire: false,
                    });
                }
            }
            return true;
        }
        self.commit_or_give_up(client_id)
    }

    fn commit_or_give_up(&self, client_id: &str) -> bool {
        let committed = self.commit_claim(client_id);
        if !committed {
            tracing::debug!(
                client_id,
                "another node took the session while this CONNECT claimed it; giving up"
            );
            self.persistence.release_session(client_id);
        }
        committed
    }

    /// Another node takes `client_id`'s session: its connection here, if
    /// any, is closed (MQTT 5.0: 0x8E) and parks its state; then the session
    /// is forgotten here, its stored state left for the other node.
    pub(crate) async fn let_go(&self, client_id: &str) {
        let Some(session) = self.session_or_claimed(client_id).await else {
            return;
        };
        let _owner = own(&session).await;
        self.drop_subscriptions(&session);
        self.unregister(&session);
        tracing::debug!(client_id, "session handed over to another node");
    }

    /// Serves the store's handover requests and adoptions (a store shared
    /// by a cluster), until shutdown.
    pub(crate) fn serve_handovers(self: &Arc<Self>) {
        if let Some(mut adoptions) = self.persistence.adoptions() {
            let engine = self.clone();
            self.tracker.spawn(async move {
                loop {
                    let stored = tokio::select! {
                        s = adoptions.recv() => s,
                        _ = engine.shutdown.cancelled() => None,
                    };
                    let Some(adoption) = stored else { return };
                    let mut clients = Vec::with_capacity(adoption.sessions.len());
                    for stored in adoption.sessions {
                        if engine.session(&stored.client_id).is_none() {
                            clients.push(Arc::from(stored.client_id.as_str()));
                            engine.restore(stored).await;
                        }
                    }
                    engine.emitter.recover(Recovery {
                        from: adoption.from,
                        clients,
                        retire: true,
                    });
                }
            });
        }
        let Some(mut requests) = self.persistence.handovers() else {
            return;
        };
        let engine = self.clone();
        self.tracker.spawn(async move {
            loop {
                let request = tokio::select! {
                    r = requests.recv() => r,
                    _ = engine.shutdown.cancelled() => None,
                };
                let Some(request) = request else { return };
                let engine = engine.clone();
                tokio::spawn(async move {
                    engine.let_go(&request.client_id).await;
                    drop(request.done);
                });
            }
        });
    }

    /// Subscribes `session` to `filter` (plain or `$share/<group>/<filter>`)
    /// with an optional MQTT 5.0 subscription identifier. True when the
    /// subscription is new.
    pub(crate) async fn add_subscription(
        &self,
        session: &Arc<Session>,
        filter: &str,
        options: SubscriptionOptions,
        identifier: Option<u32>,
        persistent: bool,
    ) -> bool {
        let entry = Entry {
            session: session.clone(),
            options,
            identifier,
        };
        let new = {
            let mut tree = self.router.tree_mut();
            let new = tree.insert(filter, entry);
            if new {
                self.note_added(&tree, filter);
            }
            new
        };
        session.add_subscription(filter, options, identifier);
        if persistent {
            let sub = StoredSubscription {
                filter: filter.to_owned(),
                options,
                identifier,
            };
            self.persistence
                .add_subscriptions(&session.client_id, vec![sub])
                .await;
        }
        new
    }

    /// Removes a subscription. True when it existed.
    pub(crate) async fn remove_subscription(
        &self,
        session: &Arc<Session>,
        filter: &str,
        persistent: bool,
    ) -> bool {
        let existed = {
            let mut tree = self.router.tree_mut();
            let existed = tree.remove(filter, &session.client_id);
            if existed {
                self.note_removed(&tree, filter);
            }
            existed
        };
        session.remove_subscription(filter);
        if persistent {
            self.persistence
                .remove_subscriptions(&session.client_id, vec![filter.to_owned()])
                .await;
        }
        existed
    }

    /// Clears a session's subscriptions and stored state (clean start).
    pub(crate) async fn discard_session(&self, session: &Arc<Session>) {
        self.drop_subscriptions(session);
        self.persistence.remove_session(&session.client_id).await;
    }

    /// Takes `session`'s subscriptions out of it and out of the topic tree.
    fn drop_subscriptions(&self, session: &Session) {
        let subs = session.take_subscriptions();
        if subs.is_empty() {
            return;
        }
        let mut tree = self.router.tree_mut();
        for (filter, _) in &subs {
            if tree.remove(filter, &session.client_id) {
                self.note_removed(&tree, filter);
            }
        }
    }

    /// Ends an in-process subscriber's session (see `subscriber.rs`): its
    /// subscriptions leave the tree, its queue is emptied and it goes offline
    /// for good, so publishers waiting for room in it move on.
    pub(crate) fn drop_local(&self, session: &Session, conn_id: u64) {
        self.drop_subscriptions(session);
        session.detach(conn_id);
        session.mark_removed();
    }

    /// Takes `session` out of the registry (unless a newer one has its
    /// client id by now) and marks it removed.
    fn unregister(&self, session: &Arc<Session>) {
        {
            let mut registry = self.registry();
            if registry
                .get(&session.client_id)
                .is_some_and(|s| Arc::ptr_eq(s, session))
            {
                registry.remove(&session.client_id);
            }
        }
        session.mark_removed();
    }

    /// Ends a non-persistent session for good.
    pub(crate) async fn remove_session(&self, session: &Arc<Session>) {
        self.discard_session(session).await;
        // A cluster's store: the ownership lease is given back.
        self.persistence.release_session(&session.client_id);
        self.unregister(session);
    }

    /// Routes a message: stores it if retained, emits the `publish` event, and
    /// hands it to the emitter. `event_client` is `None` for the broker's own
    /// messages (wills, $SYS, `BrokerHandle::publish`).
    pub(crate) async fn publish(
        &self,
        origin: Option<Arc<str>>,
        event_client: Option<&Client>,
        publish: Publish,
    ) -> Arc<Message> {
        let message = self.route(origin, event_client, publish).await;
        // A durable store was given a copy (or the retained message): an
        // acknowledged publish is done only once that is committed; if it
        // cannot be, the publisher is refused as when no queue could take it.
        let acknowledged = message.publish.qos != pigeon_codec::QoS::AtMostOnce;
        if acknowledged && message.was_stored() && !self.persistence.commit().await {
            message.mark_unqueued();
        }
        message
    }

    /// [`Engine::publish`] up to the queues, without waiting for the store's
    /// commit: a connection waits for that itself, so that it can read the
    /// next PUBLISH meanwhile (its acknowledgements stay in order).
    pub(crate) async fn route(
        &self,
        origin: Option<Arc<str>>,
        event_client: Option<&Client>,
        publish: Publish,
    ) -> Arc<Message> {
        let message = Message::new(publish, origin);
        if message.publish.retain && self.config.retain_available {
            let delta = self.persistence.store_retained(message.clone()).await;
            if delta != 0 {
                self.stats.retained.fetch_add(delta, Relaxed);
            }
        }
        if let Some(waiting) = self.hand_over(event_client, &message) {
            self.handed_over(waiting).await;
        }
        message
    }

    /// The ACL in force, if any, to keep for a while (a batch of
    /// deliveries). A broker that can have none (no ACL at startup, no ACL
    /// file to reload) does not load the swap: that load was 2% of the
    /// instructions of a QoS 1 message, checked on every PUBLISH.
    pub(crate) fn acl(&self) -> Option<Arc<Acl>> {
        if self.acl_possible {
            self.acl.load_full()
        } else {
            None
        }
    }

    /// Whether the ACL in force, if any, lets `check` pass: for one check
    /// now, through a guard of the swap rather than a clone of the `Arc`,
    /// whose count every core would bump on every PUBLISH.
    pub(crate) fn acl_allows(&self, check: impl FnOnce(&Acl) -> bool) -> bool {
        !self.acl_possible || self.acl.load().as_deref().is_none_or(check)
    }

    /// [`Engine::route`] with no future when none is needed: a message that is
    /// not retained is handed over at once, and only a hand-over that waits
    /// (for room in a queue, for the store) is left to await. A connection
    /// routes every PUBLISH so; boxing a future for each cost an allocation
    /// and a copy of the whole future per message.
    pub(crate) fn route_now(
        &self,
        origin: Option<Arc<str>>,
        event_client: Option<&Client>,
        publish: Publish,
    ) -> Routed {
        if publish.retain && self.config.retain_available {
            // The store goes first (a new subscriber must not miss it).
            return Routed::Retained(publish);
        }
        let message = Message::new(publish, origin);
        match self.hand_over(event_client, &message) {
            None => Routed::Done(message),
            Some(waiting) => Routed::Waiting(message, waiting),
        }
    }

    /// Emits the `publish` event and hands the message to the emitter; what is
    /// left to await, if anything ([`Engine::handed_over`]).
    fn hand_over(
        &self,
        event_client: Option<&Client>,
        message: &Arc<Message>,
    ) -> Option<BoxFuture<'static, ()>> {
        self.event(EventKind::Publish, || {
            Event::Publish(event_client.cloned(), message.publish.clone())
        });
        match self.emitter.emit(message.clone()) {
            Completion::Done => None,
            Completion::Pending(waiting) => Some(waiting),
        }
    }

    /// Waits for a hand-over [`Engine::hand_over`] left pending.
    pub(crate) async fn handed_over(&self, waiting: BoxFuture<'static, ()>) {
        // Only hand-overs that wait (for room in a queue, for the store)
        // count against `concurrency`: one that is done at once would
        // only have touched the semaphore, shared by every core, twice.
        let _permit = self.delivery_slots.acquire().await;
        waiting.await;
    }

    /// Publishes `client`'s will, if the authorize-publish handler agrees.
    pub(crate) async fn publish_will(&self, client: &Client, will: Will) {
        let mut publish = Publish::new(will.topic, will.qos, will.payload);
        publish.retain = will.retain;
        let p = will.properties;
        publish.properties = PublishProperties {
            payload_format_indicator: p.payload_format_indicator,
            message_expiry_interval: p.message_expiry_interval,
            response_topic: p.response_topic,
            correlation_data: p.correlation_data,
            user_properties: p.user_properties,
            content_type: p.content_type,
            ..Default::default()
        }
        .into();
        match crate::hooks::guard(self.hooks.authorize_publish(Some(client), &mut publish)).await {
            Ok(Ok(())) => {
                let origin: Arc<str> = Arc::from(client.id());
                self.publish(Some(origin), None, publish).await;
            }
            Ok(Err(denied)) => tracing::debug!(%denied, "will refused by authorize_publish"),
            Err(panic) => tracing::warn!(%panic, "authorize_publish panicked on a will"),
        }
    }

    /// Publishes one of the broker's `$SYS/<id>/...` messages.
    pub(crate) async fn sys_publish(&self, suffix: &str, payload: impl Into<Bytes>) {
        let topic = format!("$SYS/{}/{}", self.config.id, suffix);
        let publish = Publish::new(topic, pigeon_codec::QoS::AtMostOnce, payload.into());
        self.publish(None, None, publish).await;
    }
}

/// How far [`Engine::route_now`] got without waiting.
pub(crate) enum Routed {
    /// Handed over: every matching session has its copy (or none matched).
    Done(Arc<Message>),
    /// Handed over but for what [`Engine::handed_over`] waits for.
    Waiting(Arc<Message>, BoxFuture<'static, ()>),
    /// A retained message: [`Engine::route`] stores it first.
    Retained(Publish),
}

/// Becomes `session`'s owner: tells the owning connection to go and waits
/// until it has saved its state. Re-kicks periodically: another newcomer may
/// have taken the session between the kick and this one's turn at the lock.
async fn own(session: &Arc<Session>) -> Owner {
    loop {
        session.kick();
        tokio::select! {
            g = session.lock_owner() => return g,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}
