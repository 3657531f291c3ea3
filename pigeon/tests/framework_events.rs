//! Event dispatch: each provider's listeners run on their own bounded queue, so
//! a listener that blocks holds back only its own provider's events; the
//! others keep arriving, in emission order, and a full queue drops (counted).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use pigeon::{
    codec::{Protocol, Publish, QoS},
    hooks::{Event, Hooks},
    prelude::*,
};
use tokio::sync::{Notify, Semaphore};

const WAIT: Duration = Duration::from_secs(5);

/// Holds the slow listener: it says when it is inside, and waits for a permit.
#[injectable]
pub struct Valve {
    #[inject(default)]
    entered: Notify,
    #[inject(default)]
    permits: Permits,
    #[inject(default)]
    handled: Mutex<u32>,
}

/// A semaphore with no permits to begin with.
pub struct Permits(Semaphore);

impl Default for Permits {
    fn default() -> Self {
        Self(Semaphore::new(0))
    }
}

#[injectable]
struct Slow {
    valve: Arc<Valve>,
}

#[handlers]
impl Slow {
    #[on_publish]
    async fn stall(&self) {
        self.valve.entered.notify_one();
        if let Ok(permit) = self.valve.permits.0.acquire().await {
            permit.forget();
        }
        *self.valve.handled.lock().unwrap() += 1;
    }
}

/// What the other provider saw, and a wake-up for each line.
#[injectable]
pub struct Seen {
    #[inject(default)]
    lines: Mutex<Vec<String>>,
    #[inject(default)]
    added: Notify,
}

impl Seen {
    fn push(&self, line: String) {
        self.lines.lock().unwrap().push(line);
        self.added.notify_one();
    }

    /// Waits until `n` lines were seen; returns them.
    async fn wait_for(&self, n: usize) -> Vec<String> {
        let waited = tokio::time::timeout(WAIT, async {
            loop {
                let added = self.added.notified();
                let lines = self.lines.lock().unwrap().clone();
                if lines.len() >= n {
                    return lines;
                }
                added.await;
            }
        })
        .await;
        waited.unwrap_or_else(|_| {
            panic!("only saw {:?}, waiting for {n}", self.lines.lock().unwrap())
        })
    }
}

#[injectable]
struct Fast {
    seen: Arc<Seen>,
}

#[handlers]
impl Fast {
    #[on_client]
    async fn connected(&self, client: Client) {
        self.seen.push(format!("client {}", client.id()));
    }

    #[on_publish]
    async fn published(&self, topic: Topic) {
        self.seen.push(format!("publish {}", topic.0));
    }
}

#[module(event_queue = 2, providers = [Valve, Slow, Seen, Fast])]
struct EventsModule;

async fn build() -> (Arc<Hooks>, Arc<Valve>, Arc<Seen>) {
    let config = <EventsModule as pigeon::app::Module>::config().unwrap();
    let built = Pigeon::build::<EventsModule>(&config)
        .await
        .expect("module builds");
    let valve = built.get::<Valve>().expect("valve");
    let seen = built.get::<Seen>().expect("seen");
    (built.hooks, valve, seen)
}

fn client(id: &str) -> Client {
    Client::new(id, "127.0.0.1:4000".parse().unwrap(), None, Protocol::V5)
}

fn publish(c: &Client, topic: &str) -> Event {
    Event::Publish(Some(c.clone()), Publish::new(topic, QoS::AtMostOnce, "x"))
}

#[tokio::test]
async fn a_blocked_listener_does_not_hold_back_other_providers_events() {
    let (hooks, valve, seen) = build().await;
    let c = client("e");
    let entered = valve.entered.notified();
    hooks.emit(publish(&c, "t/1"));
    tokio::time::timeout(WAIT, entered)
        .await
        .expect("the slow listener is running");
    // Slow is stuck on t/1; Fast still gets everything, in order.
    hooks.emit(publish(&c, "t/2"));
    hooks.emit(Event::Client(c.clone()));
    assert_eq!(
        seen.wait_for(3).await,
        ["publish t/1", "publish t/2", "client e"]
    );
    assert_eq!(*valve.handled.lock().unwrap(), 0, "still blocked");
    valve.permits.0.add_permits(2);
    hooks.flush_events(WAIT).await;
    assert_eq!(*valve.handled.lock().unwrap(), 2, "its own events, late");
    assert_eq!(hooks.dropped_events(), 0);
}

#[tokio::test]
async fn a_full_queue_drops_for_its_provider_only_and_counts() {
    let (hooks, valve, seen) = build().await;
    let c = client("d");
    let entered = valve.entered.notified();
    hooks.emit(publish(&c, "t/0"));
    tokio::time::timeout(WAIT, entered)
        .await
        .expect("the slow listener is running");
    // One at a time, so Fast's queue (capacity 2) never fills: Slow's does.
    for i in 1..=6 {
        hooks.emit(publish(&c, &format!("t/{i}")));
        seen.wait_for(i + 1).await;
    }
    // Slow holds t/0 and has t/1, t/2 queued; t/3..t/6 were dropped for it.
    assert_eq!(hooks.dropped_events(), 4);
    valve.permits.0.add_permits(10);
    hooks.flush_events(WAIT).await;
    assert_eq!(*valve.handled.lock().unwrap(), 3);
    assert_eq!(seen.wait_for(7).await.len(), 7, "Fast lost nothing");
}
