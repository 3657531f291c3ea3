//! Group commit: every change from every connection goes, in order, through
//! one channel to one thread, which applies all the changes waiting and
//! commits them in one transaction (one fsync) per batch. A batch closes when
//! the previous commit finishes, so the more load, the more changes each
//! fsync covers. A barrier in the channel resolves once the batch holding it
//! is committed: a publisher waits on one after its copies were queued.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use redb::{Database, ReadableTable, Table};
use tokio::sync::{mpsc, oneshot};

use super::{
    format::{DELIVERIES, INCOMING_QOS2, RETAINED, SESSIONS, SUBSCRIPTIONS, WILLS},
    records::{unix_ms, DELIVERY_FLAGS, DELIVERY_PACKET_ID, RELEASED},
    Durability,
};

/// One change to the store. Client ids are shared, not copied, per change.
pub(super) enum Op {
    Retained(String, Option<Vec<u8>>),
    Subscribe(Arc<str>, String, Vec<u8>),
    Unsubscribe(Arc<str>, String),
    Session(Arc<str>, Vec<u8>),
    Will(Arc<str>, Option<Vec<u8>>),
    WillDue(Arc<str>, u64),
    Delivery(Arc<str>, u64, Vec<u8>),
    Sent(Arc<str>, u64, u16),
    Released(Arc<str>, u64),
    Forget(Arc<str>, u64),
    Qos2(Arc<str>, u16, bool),
    /// A session's copies and incoming QoS 2 ids as its connection left them.
    Replace(Arc<str>, Vec<(u64, Vec<u8>)>, Vec<u16>),
    RemoveSession(Arc<str>),
    Barrier(oneshot::Sender<bool>),
    /// A barrier that also ends a commit window's gathering: commit now.
    Flush(oneshot::Sender<bool>),
}

impl Op {
    /// A barrier or a flush: resolved once its batch is committed.
    fn is_barrier(&self) -> bool {
        matches!(self, Op::Barrier(_) | Op::Flush(_))
    }
}

/// Changes kept for the next try after a failed commit, at most: past it the
/// oldest are given up (and logged) rather than memory growing while the
/// disk is away.
const RETRY_LIMIT: usize = 100_000;
/// Changes per transaction at most, so one commit never holds memory unbounded.
const BATCH_LIMIT: usize = 50_000;

/// The sending side, shared by every connection.
pub(super) struct Writer {
    tx: Sender,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Set while the last commit failed (a full or failing disk).
    pub(super) failing: Arc<AtomicBool>,
    progress: Arc<Progress>,
}

/// How far the commits have come, for windowed durability's bound.
struct Progress {
    start: Instant,
    /// Waiting for changes: everything sent so far is committed (or about to be).
    idle: AtomicBool,
    /// Milliseconds since `start` when the last committed batch closed:
    /// every change sent before that is on disk.
    durable_at: AtomicU64,
}

impl Progress {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl Writer {
    /// Starts the commit thread on `db`.
    // The channel is unbounded because sends happen under session locks and
    // must not wait; what it holds is bounded all the same: every change is a
    // queued copy (held to the queue limits), an acknowledgement of one, or a
    // publisher's barrier (one per publisher waiting).
    pub(super) fn start(
        db: Database,
        path: PathBuf,
        durability: Durability,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let failing = Arc::new(AtomicBool::new(false));
        let flag = failing.clone();
        let progress = Arc::new(Progress {
            start: Instant::now(),
            idle: AtomicBool::new(true),
            durable_at: AtomicU64::new(0),
        });
        let shared = progress.clone();
        let store = Store { db: Some(db), path };
        let thread = std::thread::Builder::new()
            .name("pigeon-store".into())
            .spawn(move || run(store, rx, durability, &flag, &shared))?;
        Ok(Self {
            tx: Sender(Some(tx)),
            thread: Some(thread),
            failing,
            progress,
        })
    }

    /// A sender to move into a future.
    pub(super) fn sender(&self) -> Sender {
        Sender(self.tx.0.clone())
    }

    pub(super) fn send(&self, op: Op) {
        self.tx.send(op);
    }

    /// Windowed durability: true while the commits are at most `window` behind
    /// (an acknowledgement may then go without waiting, and a crash loses at
    /// most about twice the window).
    pub(super) fn within(&self, window: Duration) -> bool {
        let p = &self.progress;
        let behind = p.now_ms().saturating_sub(p.durable_at.load(Relaxed));
        p.idle.load(Relaxed) || behind <= u64::try_from(window.as_millis()).unwrap_or(u64::MAX)
    }

    /// Resolves when everything sent before it is committed.
    pub(super) fn barrier(&self) -> oneshot::Receiver<bool> {
        let (done, wait) = oneshot::channel();
        self.send(Op::Barrier(done));
        wait
    }

    /// As [`Writer::barrier`], and a commit window in progress closes at once.
    pub(super) fn flush(&self) -> oneshot::Receiver<bool> {
        let (done, wait) = oneshot::channel();
        self.send(Op::Flush(done));
        wait
    }
}

impl Drop for Writer {
    /// Commits what is left and closes the file, so that it can be opened
    /// again as soon as the store is dropped.
    fn drop(&mut self) {
        drop(self.tx.0.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A clone of the channel's sending side.
pub(super) struct Sender(Option<mpsc::UnboundedSender<Op>>);

impl Sender {
    pub(super) fn send(&self, op: Op) {
        // Fails only once the thread is gone (at exit): nothing is left to write to.
        if let Some(tx) = &self.0 {
            let _ = tx.send(op);
        }
    }
}

/// The open database, and where to open it again: after an I/O error (a full
/// disk) redb refuses every later transaction, so the file is closed and
/// reopened (which recovers it to its last commit) until that works.
struct Store {
    db: Option<Database>,
    path: PathBuf,
}

impl Store {
    fn commit(&mut self, changes: &[Op]) -> Result<(), redb::Error> {
        if self.db.is_none() {
            self.db = Some(Database::create(&self.path)?);
            tracing::info!(path = %self.path.display(), "store reopened");
        }
        let Some(db) = &self.db else {
            unreachable!("opened above")
        };
        let result = commit(db, changes);
        if let Err(redb::Error::Io(_) | redb::Error::PreviousIo) = &result {
            self.db = None;
        }
        result
    }
}

fn run(
    mut store: Store,
    mut rx: mpsc::UnboundedReceiver<Op>,
    durability: Durability,
    failing: &AtomicBool,
    progress: &Progress,
) {
    let mut retry: Vec<Op> = Vec::new();
    let mut last_error: Option<Instant> = None;
    while let Some(first) = next(&mut rx, &retry, progress) {
        let mut batch = std::mem::take(&mut retry);
        batch.extend(first);
        if let Durability::Window(window) = durability {
            gather_for(&mut rx, &mut batch, window);
        }
        while batch.len() < BATCH_LIMIT {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let closed_at = progress.now_ms();
        let (changes, barriers): (Vec<Op>, Vec<Op>) =
            batch.into_iter().partition(|op| !op.is_barrier());
        let ok = match store.commit(&changes) {
            Ok(()) => {
                progress.durable_at.store(closed_at, Relaxed);
                if failing.swap(false, Relaxed) {
                    tracing::info!("the store is writable again");
                }
                true
            }
            Err(e) => {
                failing.store(true, Relaxed);
                // Once a second: a full disk fails every batch.
                if last_error.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    tracing::error!(error = %e, "the store cannot commit; publishers that need it are refused");
                    last_error = Some(Instant::now());
                }
                retry = changes;
                if retry.len() > RETRY_LIMIT {
                    let lost = retry.len() - RETRY_LIMIT;
                    tracing::error!(lost, "store changes given up while the disk fails");
                    retry.drain(..lost);
                }
                // Do not spin on a disk that keeps failing.
                std::thread::sleep(Duration::from_millis(50));
                false
            }
        };
        for barrier in barriers {
            if let Op::Barrier(done) | Op::Flush(done) = barrier {
                let _ = done.send(ok);
            }
        }
    }
}

/// The first change of the next batch; when changes wait for a retry, only
/// what is already there (the loop comes back for the retry).
fn next(
    rx: &mut mpsc::UnboundedReceiver<Op>,
    retry: &[Op],
    progress: &Progress,
) -> Option<Option<Op>> {
    if retry.is_empty() {
        if let Ok(op) = rx.try_recv() {
            return Some(Some(op));
        }
        progress.idle.store(true, Relaxed);
        let op = rx.blocking_recv();
        progress.idle.store(false, Relaxed);
        op.map(Some)
    } else {
        match rx.try_recv() {
            Ok(op) => Some(Some(op)),
            Err(mpsc::error::TryRecvError::Empty) => Some(None),
            Err(mpsc::error::TryRecvError::Disconnected) => None,
        }
    }
}

/// Windowed durability: keep gathering until `window` has passed, or a flush
/// comes (already in the batch, or now).
fn gather_for(rx: &mut mpsc::UnboundedReceiver<Op>, batch: &mut Vec<Op>, window: Duration) {
    let until = Instant::now() + window;
    if batch.iter().any(|op| matches!(op, Op::Flush(_))) {
        return;
    }
    while batch.len() < BATCH_LIMIT {
        match rx.try_recv() {
            Ok(op) => {
                let flush = matches!(op, Op::Flush(_));
                batch.push(op);
                if flush {
                    return;
                }
            }
            Err(mpsc::error::TryRecvError::Empty) => {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return;
                }
                std::thread::sleep(left.min(Duration::from_millis(1)));
            }
            Err(mpsc::error::TryRecvError::Disconnected) => return,
        }
    }
}

fn commit(db: &Database, changes: &[Op]) -> Result<(), redb::Error> {
    if changes.is_empty() {
        return Ok(());
    }
    let write = db.begin_write()?;
    {
        // Each table opened once per batch: opening one per change would cost
        // more than the change itself.
        let mut tables = Tables {
            retained: write.open_table(RETAINED)?,
            subscriptions: write.open_table(SUBSCRIPTIONS)?,
            sessions: write.open_table(SESSIONS)?,
            wills: write.open_table(WILLS)?,
            deliveries: write.open_table(DELIVERIES)?,
            qos2: write.open_table(INCOMING_QOS2)?,
        };
        for op in changes {
            tables.apply(op)?;
        }
    }
    write.commit()?;
    Ok(())
}

/// The store's tables, open in one write transaction.
struct Tables<'txn> {
    retained: Table<'txn, &'static str, &'static [u8]>,
    subscriptions: Table<'txn, (&'static str, &'static str), &'static [u8]>,
    sessions: Table<'txn, &'static str, &'static [u8]>,
    wills: Table<'txn, &'static str, &'static [u8]>,
    deliveries: Table<'txn, (&'static str, u64), &'static [u8]>,
    qos2: Table<'txn, (&'static str, u16), ()>,
}

impl Tables<'_> {
    fn apply(&mut self, op: &Op) -> Result<(), redb::Error> {
        match op {
            Op::Retained(topic, Some(record)) => {
                self.retained.insert(topic.as_str(), &record[..])?;
            }
            Op::Retained(topic, None) => {
                self.retained.remove(topic.as_str())?;
            }
            Op::Subscribe(client, filter, record) => {
                let key = (&**client, filter.as_str());
                self.subscriptions.insert(key, &record[..])?;
            }
            Op::Unsubscribe(client, filter) => {
                self.subscriptions.remove((&**client, filter.as_str()))?;
            }
            Op::Session(client, record) => {
                self.sessions.insert(&**client, &record[..])?;
            }
            Op::Will(client, Some(record)) => {
                self.wills.insert(&**client, &record[..])?;
            }
            Op::Will(client, None) => {
                self.wills.remove(&**client)?;
            }
            Op::WillDue(client, at) => self.patch_will(client, *at)?,
            Op::Delivery(client, key, record) => {
                self.deliveries.insert((&**client, *key), &record[..])?;
            }
            Op::Sent(client, key, packet_id) => self.patch_delivery(client, *key, |r| {
                r[DELIVERY_PACKET_ID..DELIVERY_PACKET_ID + 2]
                    .copy_from_slice(&packet_id.to_be_bytes());
            })?,
            Op::Released(client, key) => {
                self.patch_delivery(client, *key, |r| r[DELIVERY_FLAGS] |= RELEASED)?
            }
            Op::Forget(client, key) => {
                self.deliveries.remove((&**client, *key))?;
            }
            Op::Qos2(client, id, true) => {
                self.qos2.insert((&**client, *id), ())?;
            }
            Op::Qos2(client, id, false) => {
                self.qos2.remove((&**client, *id))?;
            }
            Op::Replace(client, copies, ids) => {
                self.clear_messages(client)?;
                for (key, record) in copies {
                    self.deliveries.insert((&**client, *key), &record[..])?;
                }
                for id in ids {
                    self.qos2.insert((&**client, *id), ())?;
                }
            }
            Op::RemoveSession(client) => {
                self.clear_messages(client)?;
                self.sessions.remove(&**client)?;
                self.wills.remove(&**client)?;
                let filters: Vec<String> = self
                    .subscriptions
                    .range((&**client, "")..)?
                    .map_while(|row| {
                        let (k, _) = row.ok()?;
                        let (id, filter) = k.value();
                        (id == &**client).then(|| filter.to_owned())
                    })
                    .collect();
                for filter in filters {
                    self.subscriptions.remove((&**client, filter.as_str()))?;
                }
            }
            Op::Barrier(_) | Op::Flush(_) => {}
        }
        Ok(())
    }

    /// Removes a session's copies and incoming QoS 2 ids.
    fn clear_messages(&mut self, client: &str) -> Result<(), redb::Error> {
        self.deliveries
            .retain_in((client, 0)..=(client, u64::MAX), |_, _| false)?;
        self.qos2
            .retain_in((client, 0)..=(client, u16::MAX), |_, _| false)?;
        Ok(())
    }

    fn patch_will(&mut self, client: &str, at: u64) -> Result<(), redb::Error> {
        let patched = self.wills.get(client)?.map(|r| r.value().to_vec());
        if let Some(mut record) = patched {
            if record.len() >= 8 {
                record[..8].copy_from_slice(&at.to_be_bytes());
                self.wills.insert(client, &record[..])?;
            }
        }
        Ok(())
    }

    fn patch_delivery(
        &mut self,
        client: &str,
        key: u64,
        patch: impl FnOnce(&mut [u8]),
    ) -> Result<(), redb::Error> {
        let patched = self
            .deliveries
            .get((client, key))?
            .map(|r| r.value().to_vec());
        if let Some(mut record) = patched {
            if record.len() > DELIVERY_PACKET_ID + 2 {
                patch(&mut record);
                self.deliveries.insert((client, key), &record[..])?;
            }
        }
        Ok(())
    }
}

/// `at` as stored in a will record.
pub(super) fn due(at: std::time::SystemTime) -> u64 {
    unix_ms(at)
}
