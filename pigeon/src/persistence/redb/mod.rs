//! The durable store: [`RedbPersistence`], on an embedded `redb` file
//! (ACID, crash-safe: a kill -9 or a power cut leaves the last commit).
//!
//! Reads are served from memory: the store keeps a [`MemoryPersistence`] as
//! its mirror, loaded from the file at startup, and writes every change
//! through to the file via the group-commit thread (`writer`). A publisher is
//! acknowledged after [`Persistence::commit`] (with [`Durability::Sync`], the
//! default): what a PUBACK covers is on disk.

mod error;
mod format;
mod load;
pub(super) mod records;
#[cfg(test)]
mod tests;
mod writer;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    str::FromStr,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::{Duration, SystemTime},
};

pub use error::StoreError;
use pigeon_codec::{QoS, Will};

use self::writer::{Op, Writer};
use super::{
    BoxFuture, MemoryPersistence, Parked, Persistence, SessionState, StoredSession,
    StoredSubscription,
};
use crate::model::{Delivery, Message, QueueLimits};

/// When a durable store's writes count as done.
///
/// ```
/// use pigeon::persistence::Durability;
/// assert_eq!("sync".parse::<Durability>(), Ok(Durability::Sync));
/// assert_eq!("10ms".parse::<Durability>(), Ok(Durability::Window(std::time::Duration::from_millis(10))));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// A QoS 1/2 publisher is acknowledged only once what it needs is
    /// committed to disk (fsync). Nothing acknowledged is lost.
    #[default]
    Sync,
    /// Changes are committed at least every this often, and publishers are
    /// acknowledged without waiting: a crash loses at most the changes of the
    /// last window (plus the commit in progress).
    Window(Duration),
}

impl FromStr for Durability {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str = "expected `sync` or a commit window such as `10ms`";
        if s == "sync" {
            return Ok(Durability::Sync);
        }
        let ms = s.strip_suffix("ms").ok_or(EXPECTED)?;
        match ms.parse::<u64>() {
            Ok(ms) if ms > 0 => Ok(Durability::Window(Duration::from_millis(ms))),
            _ => Err(EXPECTED),
        }
    }
}

/// The durable persistence on a `redb` file (`--persistence redb:PATH`).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use pigeon::{broker::Backends, persistence::{Durability, RedbPersistence}};
/// let store = RedbPersistence::open("/var/lib/pigeon/store.redb", Durability::Sync)?;
/// let backends = Backends { persistence: Arc::new(store), ..Backends::default() };
/// let broker = pigeon::Broker::start_with(pigeon::Config::default(), pigeon::hooks::Hooks::none(), backends).await?;
/// # broker.close().await; Ok(()) }
/// ```
pub struct RedbPersistence {
    path: PathBuf,
    mirror: MemoryPersistence,
    writer: Writer,
    durability: Durability,
    next_key: AtomicU64,
    /// Sessions' expiry state and will deadlines as loaded (what `sessions`
    /// reports at startup).
    loaded: Mutex<HashMap<String, load::Timers>>,
}

impl RedbPersistence {
    /// Opens the store at `path`, creating it if the file does not exist. The
    /// directory must exist; a file that is not a Pigeon store, a newer
    /// format, or a corrupted record is an error naming the file.
    pub fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        Self::open_with_budget(path, durability, 256 << 20)
    }

    /// As [`RedbPersistence::open`], holding offline messages in memory to
    /// `bytes` in all (`max_queued_bytes_total`).
    pub fn open_with_budget(
        path: impl AsRef<Path>,
        durability: Durability,
        bytes: usize,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        let mut db = format::open(&path)?;
        // Reclaims the space of what was deleted before the last stop.
        if let Err(e) = db.compact() {
            tracing::warn!(path = %path.display(), error = %e, "store not compacted");
        }
        let mirror = MemoryPersistence::with_queue_budget(bytes);
        let loaded = load::load(&db, &path, &mirror)?;
        let writer = Writer::start(db, path.clone(), durability).map_err(|e| StoreError::Open {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        tracing::info!(path = %path.display(), sessions = loaded.sessions.len(), ?durability, "store opened");
        Ok(Self {
            path,
            mirror,
            writer,
            durability,
            next_key: AtomicU64::new(loaded.next_key),
            loaded: Mutex::new(loaded.sessions),
        })
    }

    /// The file this store is kept in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True while the last commit failed (disk full or failing).
    pub fn is_failing(&self) -> bool {
        self.writer.failing.load(Relaxed)
    }

    fn key(&self) -> u64 {
        self.next_key.fetch_add(1, Relaxed)
    }
}

fn client(id: &str) -> Arc<str> {
    Arc::from(id)
}

impl Persistence for RedbPersistence {
    fn store_retained(&self, message: Arc<Message>) -> BoxFuture<'_, i64> {
        let topic = message.publish.topic.to_string();
        let record = (!message.publish.payload.is_empty()).then(|| records::retained(&message));
        message.mark_stored();
        self.writer.send(Op::Retained(topic, record));
        self.mirror.store_retained(message)
    }

    fn retained<'a>(&'a self, filter: &'a str) -> BoxFuture<'a, Vec<Arc<Message>>> {
        self.mirror.retained(filter)
    }

    fn add_subscriptions<'a>(
        &'a self,
        client_id: &'a str,
        subs: Vec<StoredSubscription>,
    ) -> BoxFuture<'a, ()> {
        let id = client(client_id);
        for sub in &subs {
            let op = Op::Subscribe(id.clone(), sub.filter.clone(), records::subscription(sub));
            self.writer.send(op);
        }
        self.mirror.add_subscriptions(client_id, subs)
    }

    fn remove_subscriptions<'a>(
        &'a self,
        client_id: &'a str,
        filters: Vec<String>,
    ) -> BoxFuture<'a, ()> {
        let id = client(client_id);
        for filter in &filters {
            self.writer
                .send(Op::Unsubscribe(id.clone(), filter.clone()));
        }
        self.mirror.remove_subscriptions(client_id, filters)
    }

    fn subscriptions<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, Vec<StoredSubscription>> {
        self.mirror.subscriptions(client_id)
    }

    fn put_will<'a>(&'a self, client_id: &'a str, will: Will) -> BoxFuture<'a, ()> {
        self.writer
            .send(Op::Will(client(client_id), Some(records::will(&will))));
        self.mirror.put_will(client_id, will)
    }

    fn take_will<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, Option<Will>> {
        Box::pin(async move {
            let will = self.mirror.take_will(client_id).await;
            if will.is_some() {
                self.writer.send(Op::Will(client(client_id), None));
            }
            will
        })
    }

    fn park<'a>(&'a self, client_id: &'a str, parked: Parked) -> BoxFuture<'a, ()> {
        let mut copies = Vec::new();
        for i in &parked.inflight {
            if let Some(key) = i.delivery.stored {
                copies.push((key, records::delivery(&i.delivery, i.packet_id, i.released)));
            }
        }
        for d in &parked.queued {
            if let Some(key) = d.stored {
                copies.push((key, records::delivery(d, 0, false)));
            }
        }
        let op = Op::Replace(client(client_id), copies, parked.incoming_qos2.clone());
        self.writer.send(op);
        self.mirror.park(client_id, parked)
    }

    fn enqueue(
        &self,
        client_id: Arc<str>,
        mut delivery: Delivery,
        limits: QueueLimits,
    ) -> BoxFuture<'static, bool> {
        let journaled = delivery.stored;
        let key = *delivery.stored.get_or_insert_with(|| self.key());
        let record = journaled
            .is_none()
            .then(|| records::delivery(&delivery, 0, false));
        let message = delivery.message.clone();
        let accepted = self.mirror.enqueue(client_id.clone(), delivery, limits);
        let writer = self.writer.sender();
        Box::pin(async move {
            let accepted = accepted.await;
            match (accepted, record) {
                (true, Some(record)) => {
                    message.mark_stored();
                    writer.send(Op::Delivery(client_id, key, record));
                }
                (false, None) => writer.send(Op::Forget(client_id, key)),
                _ => {}
            }
            accepted
        })
    }

    fn unpark<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, Parked> {
        self.mirror.unpark(client_id)
    }

    fn sessions(&self) -> BoxFuture<'_, Vec<StoredSession>> {
        Box::pin(async move {
            let mut all = self.mirror.sessions().await;
            let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
            for session in &mut all {
                if let Some((state, will_at)) = loaded.get(&session.client_id) {
                    session.state.clone_from(state);
                    session.will_at = *will_at;
                }
            }
            for (id, (state, will_at)) in loaded.iter() {
                if !all.iter().any(|s| &s.client_id == id) {
                    all.push(StoredSession {
                        client_id: id.clone(),
                        subscriptions: Vec::new(),
                        state: state.clone(),
                        will_at: *will_at,
                    });
                }
            }
            all
        })
    }

    fn remove_session<'a>(&'a self, client_id: &'a str) -> BoxFuture<'a, ()> {
        self.writer.send(Op::RemoveSession(client(client_id)));
        self.loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(client_id);
        self.mirror.remove_session(client_id)
    }

    fn durable(&self) -> bool {
        true
    }

    fn health(&self) -> Result<(), String> {
        if self.is_failing() {
            return Err(format!("the last commit to {} failed", self.path.display()));
        }
        Ok(())
    }

    fn save_session(&self, client_id: &str, state: SessionState) {
        self.writer
            .send(Op::Session(client(client_id), records::session(&state)));
    }

    fn will_due(&self, client_id: &str, at: SystemTime) {
        self.writer
            .send(Op::WillDue(client(client_id), writer::due(at)));
    }

    fn journal(&self, client_id: &Arc<str>, delivery: &Delivery) -> u64 {
        let key = self.key();
        debug_assert!(delivery.qos != QoS::AtMostOnce);
        delivery.message.mark_stored();
        let record = records::delivery(delivery, 0, false);
        self.writer
            .send(Op::Delivery(client_id.clone(), key, record));
        key
    }

    fn sent(&self, client_id: &Arc<str>, key: u64, packet_id: u16) {
        self.writer
            .send(Op::Sent(client_id.clone(), key, packet_id));
    }

    fn released(&self, client_id: &Arc<str>, key: u64) {
        self.writer.send(Op::Released(client_id.clone(), key));
    }

    fn forget(&self, client_id: &Arc<str>, key: u64) {
        self.writer.send(Op::Forget(client_id.clone(), key));
    }

    fn incoming_qos2(&self, client_id: &Arc<str>, packet_id: u16, pending: bool) {
        self.writer
            .send(Op::Qos2(client_id.clone(), packet_id, pending));
    }

    fn commit(&self) -> BoxFuture<'static, bool> {
        if let Durability::Window(window) = self.durability {
            // Acknowledged without waiting, unless the disk has fallen more
            // than a window behind: then publishers wait, so that what a
            // crash can lose stays bounded by the window.
            if self.writer.within(window) {
                return Box::pin(std::future::ready(true));
            }
        }
        let barrier = self.writer.barrier();
        Box::pin(async move { barrier.await.unwrap_or(false) })
    }

    fn flush(&self) -> BoxFuture<'static, bool> {
        let flushed = self.writer.flush();
        Box::pin(async move { flushed.await.unwrap_or(false) })
    }
}
