//! Reading a store at startup into the in-memory mirror: sessions with their
//! expiry state, subscriptions, retained messages (expired ones dropped),
//! wills with their deadline, and each session's copies — those with a
//! packet id back in flight (resent with DUP), the others queued — plus its
//! incoming QoS 2 ids.

use std::{collections::HashMap, path::Path, time::SystemTime};

use futures_util::FutureExt;
use redb::{Database, ReadableDatabase, ReadableTable};

use super::{
    format::{DELIVERIES, INCOMING_QOS2, RETAINED, SESSIONS, SUBSCRIPTIONS, WILLS},
    records, StoreError,
};
use crate::{
    model::{Inflight, Parked},
    persistence::{MemoryPersistence, Persistence, SessionState},
};

/// A session's expiry state and its will's deadline, as stored.
pub(super) type Timers = (Option<SessionState>, Option<SystemTime>);

/// What the mirror does not hold: sessions' expiry state and will deadlines,
/// and the next free key.
pub(super) struct Loaded {
    pub(super) sessions: HashMap<String, Timers>,
    pub(super) next_key: u64,
}

/// Runs a mirror call: every `MemoryPersistence` future is ready at once.
fn now<T>(future: impl std::future::Future<Output = T>) -> T {
    match future.now_or_never() {
        Some(value) => value,
        None => unreachable!("MemoryPersistence futures are ready when returned"),
    }
}

pub(super) fn load(
    db: &Database,
    path: &Path,
    mirror: &MemoryPersistence,
) -> Result<Loaded, StoreError> {
    let io = |e: redb::Error| StoreError::Open {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let corrupt = |table: &str, key: &str, what: String| StoreError::Corrupt {
        path: path.to_owned(),
        what: format!("{table} record {key:?}: {what}"),
    };
    let read = db.begin_read().map_err(|e| io(e.into()))?;
    let mut sessions: HashMap<String, Timers> = HashMap::new();

    let table = read.open_table(SESSIONS).map_err(|e| io(e.into()))?;
    for row in table.iter().map_err(|e| io(e.into()))? {
        let (k, v) = row.map_err(|e| io(e.into()))?;
        let state =
            records::decode_session(v.value()).map_err(|e| corrupt("sessions", k.value(), e))?;
        sessions.entry(k.value().to_owned()).or_default().0 = Some(state);
    }

    let table = read.open_table(SUBSCRIPTIONS).map_err(|e| io(e.into()))?;
    let mut subs: HashMap<String, Vec<_>> = HashMap::new();
    for row in table.iter().map_err(|e| io(e.into()))? {
        let (k, v) = row.map_err(|e| io(e.into()))?;
        let (id, filter) = k.value();
        let sub = records::decode_subscription(v.value())
            .map_err(|e| corrupt("subscriptions", filter, e))?;
        subs.entry(id.to_owned()).or_default().push(sub);
    }
    for (id, list) in subs {
        sessions.entry(id.clone()).or_default();
        now(mirror.add_subscriptions(&id, list));
    }

    let table = read.open_table(RETAINED).map_err(|e| io(e.into()))?;
    for row in table.iter().map_err(|e| io(e.into()))? {
        let (k, v) = row.map_err(|e| io(e.into()))?;
        let message =
            records::decode_retained(v.value()).map_err(|e| corrupt("retained", k.value(), e))?;
        // An expired one is not served; the next write of the topic replaces it.
        if !message.is_expired() {
            now(mirror.store_retained(message));
        }
    }

    let table = read.open_table(WILLS).map_err(|e| io(e.into()))?;
    for row in table.iter().map_err(|e| io(e.into()))? {
        let (k, v) = row.map_err(|e| io(e.into()))?;
        let (will, due) =
            records::decode_will(v.value()).map_err(|e| corrupt("wills", k.value(), e))?;
        sessions.entry(k.value().to_owned()).or_default().1 = due;
        now(mirror.put_will(k.value(), will));
    }

    let mut parked: HashMap<String, Parked> = HashMap::new();
    let mut next_key = 1;
    let table = read.open_table(DELIVERIES).map_err(|e| io(e.into()))?;
    for row in table.iter().map_err(|e| io(e.into()))? {
        let (k, v) = row.map_err(|e| io(e.into()))?;
        let (id, key) = k.value();
        next_key = next_key.max(key + 1);
        let stored =
            records::decode_delivery(key, v.value()).map_err(|e| corrupt("deliveries", id, e))?;
        let session = parked.entry(id.to_owned()).or_default();
        if stored.packet_id == 0 {
            session.queued.push_back(stored.delivery);
        } else {
            session.inflight.push(Inflight {
                packet_id: stored.packet_id,
                delivery: stored.delivery,
                released: stored.released,
            });
        }
    }
    let table = read.open_table(INCOMING_QOS2).map_err(|e| io(e.into()))?;
    for row in table.iter().map_err(|e| io(e.into()))? {
        let (k, _) = row.map_err(|e| io(e.into()))?;
        let (id, packet_id) = k.value();
        parked
            .entry(id.to_owned())
            .or_default()
            .incoming_qos2
            .push(packet_id);
    }
    for (id, state) in parked {
        sessions.entry(id.clone()).or_default();
        now(mirror.park(&id, state));
    }
    Ok(Loaded { sessions, next_key })
}
