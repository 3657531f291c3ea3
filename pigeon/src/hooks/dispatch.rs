//! The event queues: `emit` never waits. Each provider has a bounded queue and
//! a task that runs its listeners of each event in order, so one client's
//! events keep their order per provider and a slow listener holds back only
//! its own provider's events (a full queue drops, counted).

use std::{
    panic::AssertUnwindSafe,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Weak,
    },
    time::Duration,
};

use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

use super::registry::{BoxFuture, Key};
use super::{Event, EventKind, ExtractError, Params, TopicPattern};

const DEFAULT_CAPACITY: usize = 16 * 1024;
const KINDS: usize = EventKind::ALL.len();

/// `Ok(Err(message))`: the handler ran and returned an error.
type EventCall = Box<
    dyn Fn(Arc<Event>, Params) -> BoxFuture<'static, Result<Result<(), String>, ExtractError>>
        + Send
        + Sync,
>;

pub(crate) struct EventEntry {
    pub kind: EventKind,
    pub name: &'static str,
    pub key: Key,
    pub pattern: Option<TopicPattern>,
    pub call: EventCall,
}

/// What a provider's queue carries: events (shared by every lane) and flush markers.
enum Msg {
    Event(Arc<Event>),
    Flush(oneshot::Sender<()>),
}

/// One provider's bounded queue and the kinds its listeners want.
struct Lane {
    tx: mpsc::Sender<Msg>,
    kinds: [bool; KINDS],
}

/// Every provider's lane: an event goes to each lane that listens to it.
struct Lanes {
    lanes: Vec<Lane>,
    dropped: AtomicU64,
}

impl Lanes {
    fn emit(&self, event: Event) {
        let kind = event.kind() as usize;
        let event = Arc::new(event);
        for lane in self.lanes.iter().filter(|l| l.kinds[kind]) {
            match lane.tx.try_send(Msg::Event(event.clone())) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    // Log the first and then every power of two, not every drop.
                    if n.is_power_of_two() {
                        tracing::warn!(dropped = n, "event queue full: events dropped");
                    }
                }
            }
        }
    }
}

/// The event queues: one bounded queue and task per provider, so a slow
/// listener delays only its own provider's events, which keep their order.
pub(crate) struct EventQueue {
    lanes: Arc<Lanes>,
}

impl EventQueue {
    /// `capacity` bounds each provider's queue (0: the default).
    pub fn spawn(mut entries: Vec<EventEntry>, capacity: usize) -> Result<Self, String> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "event handlers need a tokio runtime at bootstrap".to_owned())?;
        let capacity = if capacity == 0 {
            DEFAULT_CAPACITY
        } else {
            capacity
        };
        entries.sort_by_key(|e| e.key);
        let mut by_provider: Vec<Vec<EventEntry>> = Vec::new();
        for e in entries {
            match by_provider.last_mut() {
                Some(group) if group[0].key.1 == e.key.1 => group.push(e),
                _ => by_provider.push(vec![e]),
            }
        }
        let mut lanes = Vec::with_capacity(by_provider.len());
        let mut tasks = Vec::with_capacity(by_provider.len());
        for group in by_provider {
            let (tx, rx) = mpsc::channel(capacity);
            let mut kinds = [false; KINDS];
            let mut by_kind: Vec<Vec<EventEntry>> = (0..KINDS).map(|_| Vec::new()).collect();
            for e in group {
                if let Some(list) = by_kind.get_mut(e.kind as usize) {
                    kinds[e.kind as usize] = true;
                    list.push(e);
                }
            }
            lanes.push(Lane { tx, kinds });
            tasks.push((rx, by_kind));
        }
        let lanes = Arc::new(Lanes {
            lanes,
            dropped: AtomicU64::new(0),
        });
        for (rx, by_kind) in tasks {
            runtime.spawn(run(rx, Arc::downgrade(&lanes), by_kind));
        }
        Ok(Self { lanes })
    }

    pub fn emit(&self, event: Event) {
        self.lanes.emit(event);
    }

    pub fn dropped(&self) -> u64 {
        self.lanes.dropped.load(Ordering::Relaxed)
    }

    /// Resolves once every event emitted before the call was handled (or after `timeout`).
    pub async fn flush(&self, timeout: Duration) {
        let all = async {
            for lane in &self.lanes.lanes {
                let (done, wait) = oneshot::channel();
                if lane.tx.send(Msg::Flush(done)).await.is_ok() {
                    let _ = wait.await;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, all).await;
    }
}

fn topic_of(event: &Event) -> Option<&str> {
    match event {
        Event::Publish(_, p) | Event::Ack(_, p) => Some(&p.topic),
        _ => None,
    }
}

async fn run(mut rx: mpsc::Receiver<Msg>, lanes: Weak<Lanes>, by_kind: Vec<Vec<EventEntry>>) {
    while let Some(msg) = rx.recv().await {
        let event = match msg {
            Msg::Event(e) => e,
            Msg::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let Some(listeners) = by_kind.get(event.kind() as usize) else {
            continue;
        };
        for entry in listeners {
            let params = match (&entry.pattern, topic_of(&event)) {
                (None, _) => Params::default(),
                (Some(p), Some(topic)) => match p.matches(topic) {
                    Some(params) => params,
                    None => continue,
                },
                (Some(_), None) => continue,
            };
            let outcome = AssertUnwindSafe((entry.call)(event.clone(), params))
                .catch_unwind()
                .await;
            let client = event.client().map(super::Client::id);
            let failure = match outcome {
                Ok(Ok(Ok(()))) => continue,
                Ok(Ok(Err(e))) => format!("{} returned an error: {e}", entry.name),
                Ok(Err(e)) => format!("{}: {e}", entry.name),
                Err(panic) => format!("{} panicked: {}", entry.name, super::panic_message(&panic)),
            };
            tracing::error!(
                handler = entry.name,
                client,
                "event handler failed: {failure}"
            );
            // Report to the error events, but never a failure of an error listener
            // (that could loop).
            let is_error_event =
                matches!(*event, Event::ClientError(..) | Event::ConnectionError(..));
            if let (false, Some(client), Some(lanes)) =
                (is_error_event, event.client(), lanes.upgrade())
            {
                lanes.emit(Event::ClientError(client.clone(), failure));
            }
        }
    }
}
