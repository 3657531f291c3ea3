//! Group commit: every change from every connection goes, in order, through
//! one channel to one thread, which applies all the changes waiting and
//! commits them in one transaction (one fsync) per batch. A batch closes when
//! the previous commit finishes, so the more load, the more changes each
//! fsync covers. A barrier in the channel resolves once the batch holding it
//! is committed: a publisher waits on one after its copies were queued.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use redb::{Database, ReadableTable, WriteTransaction};
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
}

/// Changes kept for the next try after a failed commit, at most: past it the
/// oldest are given up (and logged) rather than memory growing while the
/// disk is away.
const RETRY_LIMIT: usize = 100_000;
/// Changes per transaction at most, so one commit never holds memory unbounded.
const BATCH_LIMIT: usize = 50_000;

/// The sending side, shared by every connection.
pub(super) struct Writer {
    tx: Option<mpsc::UnboundedSender<Op>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Set while the last commit failed (a full or failing disk).
    pub(super) failing: Arc<AtomicBool>,
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
        let store = Store { db: Some(db), path };
        let thread = std::thread::Builder::new()
            .name("pigeon-store".into())
            .spawn(move || run(store, rx, durability, &flag))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            failing,
        })
    }

    /// A sender to move into a future.
    pub(super) fn sender(&self) -> Sender {
        Sender(self.tx.clone())
    }

    pub(super) fn send(&self, op: Op) {
        // Fails only once the thread is gone (at exit): nothing is left to write to.
        if let Some(tx) = &self.tx {
            let _ = tx.send(op);
        }
    }

    /// Resolves when everything sent before it is committed.
    pub(super) fn barrier(&self) -> oneshot::Receiver<bool> {
        let (done, wait) = oneshot::channel();
        self.send(Op::Barrier(done));
        wait
    }
}

impl Drop for Writer {
    /// Commits what is left and closes the file, so that it can be opened
    /// again as soon as the store is dropped.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A clone of the channel's sending side.
pub(super) struct Sender(Option<mpsc::UnboundedSender<Op>>);

impl Sender {
    pub(super) fn send(&self, op: Op) {
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
) {
    let mut retry: Vec<Op> = Vec::new();
    let mut last_error: Option<Instant> = None;
    while let Some(first) = next(&mut rx, &retry) {
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
        let (changes, barriers): (Vec<Op>, Vec<Op>) = batch
            .into_iter()
            .partition(|op| !matches!(op, Op::Barrier(_)));
        let ok = match store.commit(&changes) {
            Ok(()) => {
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
            if let Op::Barrier(done) = barrier {
                let _ = done.send(ok);
            }
        }
    }
}

/// The first change of the next batch; when changes wait for a retry, only
/// what is already there (the loop comes back for the retry).
fn next(rx: &mut mpsc::UnboundedReceiver<Op>, retry: &[Op]) -> Option<Option<Op>> {
    if retry.is_empty() {
        rx.blocking_recv().map(Some)
    } else {
        match rx.try_recv() {
            Ok(op) => Some(Some(op)),
            Err(mpsc::error::TryRecvError::Empty) => Some(None),
            Err(mpsc::error::TryRecvError::Disconnected) => None,
        }
    }
}

/// Windowed durability: keep gathering until `window` has passed.
fn gather_for(rx: &mut mpsc::UnboundedReceiver<Op>, batch: &mut Vec<Op>, window: Duration) {
    let until = Instant::now() + window;
    while batch.len() < BATCH_LIMIT {
        match rx.try_recv() {
            Ok(op) => batch.push(op),
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
    for op in changes {
        apply(&write, op)?;
    }
    write.commit()?;
    Ok(())
}

fn apply(write: &WriteTransaction, op: &Op) -> Result<(), redb::Error> {
    match op {
        Op::Retained(topic, Some(record)) => {
            write
                .open_table(RETAINED)?
                .insert(topic.as_str(), &record[..])?;
        }
        Op::Retained(topic, None) => {
            write.open_table(RETAINED)?.remove(topic.as_str())?;
        }
        Op::Subscribe(client, filter, record) => {
            let key = (&**client, filter.as_str());
            write.open_table(SUBSCRIPTIONS)?.insert(key, &record[..])?;
        }
        Op::Unsubscribe(client, filter) => {
            let key = (&**client, filter.as_str());
            write.open_table(SUBSCRIPTIONS)?.remove(key)?;
        }
        Op::Session(client, record) => {
            write.open_table(SESSIONS)?.insert(&**client, &record[..])?;
        }
        Op::Will(client, Some(record)) => {
            write.open_table(WILLS)?.insert(&**client, &record[..])?;
        }
        Op::Will(client, None) => {
            write.open_table(WILLS)?.remove(&**client)?;
        }
        Op::WillDue(client, at) => {
            let mut wills = write.open_table(WILLS)?;
            let patched = wills.get(&**client)?.map(|r| {
                let mut record = r.value().to_vec();
                if record.len() >= 8 {
                    record[..8].copy_from_slice(&at.to_be_bytes());
                }
                record
            });
            if let Some(record) = patched {
                wills.insert(&**client, &record[..])?;
            }
        }
        Op::Delivery(client, key, record) => {
            write
                .open_table(DELIVERIES)?
                .insert((&**client, *key), &record[..])?;
        }
        Op::Sent(client, key, packet_id) => patch_delivery(write, client, *key, |r| {
            r[DELIVERY_PACKET_ID..DELIVERY_PACKET_ID + 2].copy_from_slice(&packet_id.to_be_bytes());
        })?,
        Op::Released(client, key) => {
            patch_delivery(write, client, *key, |r| r[DELIVERY_FLAGS] |= RELEASED)?
        }
        Op::Forget(client, key) => {
            write.open_table(DELIVERIES)?.remove((&**client, *key))?;
        }
        Op::Qos2(client, id, true) => {
            write
                .open_table(INCOMING_QOS2)?
                .insert((&**client, *id), ())?;
        }
        Op::Qos2(client, id, false) => {
            write.open_table(INCOMING_QOS2)?.remove((&**client, *id))?;
        }
        Op::Replace(client, copies, qos2) => {
            clear_messages(write, client)?;
            let mut deliveries = write.open_table(DELIVERIES)?;
            for (key, record) in copies {
                deliveries.insert((&**client, *key), &record[..])?;
            }
            let mut ids = write.open_table(INCOMING_QOS2)?;
            for id in qos2 {
                ids.insert((&**client, *id), ())?;
            }
        }
        Op::RemoveSession(client) => {
            clear_messages(write, client)?;
            write.open_table(SESSIONS)?.remove(&**client)?;
            write.open_table(WILLS)?.remove(&**client)?;
            let mut subs = write.open_table(SUBSCRIPTIONS)?;
            subs.retain_in((&**client, "")..=(&**client, "\u{10FFFF}"), |_, _| false)?;
        }
        Op::Barrier(_) => {}
    }
    Ok(())
}

/// Removes a session's copies and incoming QoS 2 ids.
fn clear_messages(write: &WriteTransaction, client: &str) -> Result<(), redb::Error> {
    write
        .open_table(DELIVERIES)?
        .retain_in((client, 0)..=(client, u64::MAX), |_, _| false)?;
    write
        .open_table(INCOMING_QOS2)?
        .retain_in((client, 0)..=(client, u16::MAX), |_, _| false)?;
    Ok(())
}

fn patch_delivery(
    write: &WriteTransaction,
    client: &str,
    key: u64,
    patch: impl FnOnce(&mut [u8]),
) -> Result<(), redb::Error> {
    let mut deliveries = write.open_table(DELIVERIES)?;
    let patched = deliveries.get((client, key))?.map(|r| r.value().to_vec());
    if let Some(mut record) = patched {
        if record.len() > DELIVERY_PACKET_ID + 2 {
            patch(&mut record);
            deliveries.insert((client, key), &record[..])?;
        }
    }
    Ok(())
}

/// `at` as stored in a will record.
pub(super) fn due(at: std::time::SystemTime) -> u64 {
    unix_ms(at)
}
