//! The event queue: `emit` never waits; a dispatcher task runs the listeners of
//! each event in order (so one client's events keep their order).

use std::{
    panic::AssertUnwindSafe,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

use super::registry::{BoxFuture, Key};
use super::{Event, EventKind, ExtractError, Params, TopicPattern};

const DEFAULT_CAPACITY: usize = 16 * 1024;
const KINDS: usize = EventKind::ALL.len();

type EventCall =
    Box<dyn Fn(Arc<Event>, Params) -> BoxFuture<'static, Result<(), ExtractError>> + Send + Sync>;

pub(crate) struct EventEntry {
    pub kind: EventKind,
    pub name: &'static str,
    pub key: Key,
    pub pattern: Option<TopicPattern>,
    pub call: EventCall,
}

// Flush is rare; boxing every event to shrink it would cost an allocation per event.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Event(Event),
    Flush(oneshot::Sender<()>),
}

pub(crate) struct EventQueue {
    tx: mpsc::Sender<Msg>,
    dropped: Arc<AtomicU64>,
}

impl EventQueue {
    pub fn spawn(mut entries: Vec<EventEntry>, capacity: usize) -> Result<Self, String> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "event handlers need a tokio runtime at bootstrap".to_owned())?;
        entries.sort_by_key(|e| e.key);
        let mut by_kind: Vec<Vec<EventEntry>> = (0..KINDS).map(|_| Vec::new()).collect();
        for e in entries {
            if let Some(list) = by_kind.get_mut(e.kind as usize) {
                list.push(e);
            }
        }
        let capacity = if capacity == 0 {
            DEFAULT_CAPACITY
        } else {
            capacity
        };
        let (tx, rx) = mpsc::channel(capacity);
        runtime.spawn(run(rx, tx.downgrade(), by_kind));
        Ok(Self {
            tx,
            dropped: Arc::default(),
        })
    }

    pub fn emit(&self, event: Event) {
        match self.tx.try_send(Msg::Event(event)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // Log the first and then every power of two, not every drop.
                if n.is_power_of_two() {
                    tracing::warn!(dropped = n, "event queue full: events dropped");
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Resolves once every event emitted before the call was handled (or after `timeout`).
    pub async fn flush(&self, timeout: Duration) {
        let (done, wait) = oneshot::channel();
        let sent = tokio::time::timeout(timeout, self.tx.send(Msg::Flush(done))).await;
        if matches!(sent, Ok(Ok(()))) {
            let _ = tokio::time::timeout(timeout, wait).await;
        }
    }
}

fn topic_of(event: &Event) -> Option<&str> {
    match event {
        Event::Publish(_, p) | Event::Ack(_, p) => Some(&p.topic),
        _ => None,
    }
}

async fn run(
    mut rx: mpsc::Receiver<Msg>,
    tx: mpsc::WeakSender<Msg>,
    by_kind: Vec<Vec<EventEntry>>,
) {
    while let Some(msg) = rx.recv().await {
        let event = match msg {
            Msg::Event(e) => Arc::new(e),
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
            let failure = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => format!("{}: {e}", entry.name),
                Err(panic) => format!("{} panicked: {}", entry.name, super::panic_message(&panic)),
            };
            tracing::error!(handler = entry.name, "event handler failed: {failure}");
            // Report to the error events, but never a failure of an error listener
            // (that could loop).
            let is_error_event =
                matches!(*event, Event::ClientError(..) | Event::ConnectionError(..));
            if let (false, Some(client), Some(tx)) = (is_error_event, event.client(), tx.upgrade())
            {
                let _ = tx.try_send(Msg::Event(Event::ClientError(client.clone(), failure)));
            }
        }
    }
}
