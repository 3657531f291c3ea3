//! From the other nodes: the routes channel (their interest changes), this
//! node's QoS 0 channel, and its QoS 1/2 stream read with a consumer group
//! (pending entries first, acknowledged only after local delivery).

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
    time::Duration,
};

use ::redis::{aio::ConnectionManager, AsyncCommands, RedisError, RedisResult, Value};
use futures_util::StreamExt;

use super::{conn, keys, wire, Inner};
use crate::emitter::Shares;

/// How often the whole index is reloaded, in case a route change was lost
/// (pub/sub is at most once).
const RELOAD: Duration = Duration::from_secs(30);

/// How often the routes channel's connection is checked.
const PING: Duration = Duration::from_secs(5);

/// Entries read from the stream per round trip.
const BATCH: usize = 100;

/// Message ids remembered per sending instance, and instances remembered.
const WINDOW: usize = 8192;
const INSTANCES: usize = 256;

/// The ids of the entries taken lately, per sending instance: an entry a
/// sender added twice (its `XADD` round trip was cut and retried) is
/// delivered once. Bounded: the oldest ids and instances are forgotten.
#[derive(Default)]
struct Seen {
    by: HashMap<u64, (HashSet<u64>, VecDeque<u64>)>,
    instances: VecDeque<u64>,
}

impl Seen {
    /// True the first time `(instance, seq)` is seen.
    fn first(&mut self, (instance, seq): (u64, u64)) -> bool {
        if !self.by.contains_key(&instance) {
            if self.instances.len() >= INSTANCES {
                if let Some(old) = self.instances.pop_front() {
                    self.by.remove(&old);
                }
            }
            self.instances.push_back(instance);
        }
        let (ids, order) = self.by.entry(instance).or_default();
        if !ids.insert(seq) {
            return false;
        }
        order.push_back(seq);
        if order.len() > WINDOW {
            if let Some(old) = order.pop_front() {
                ids.remove(&old);
            }
        }
        true
    }
}

/// Loads every other node's interest set into the index (its own entries
/// come from the engine, never from Redis), dropping nodes that are gone.
pub(super) async fn load_index(inner: &Inner) -> RedisResult<()> {
    let mut conn = inner.conn.clone();
    let nodes: Vec<String> = conn.smembers(keys::NODES).await?;
    let others: Vec<String> = nodes.into_iter().filter(|n| *n != *inner.node).collect();
    let mut sets = ::redis::pipe();
    let mut alive = ::redis::pipe();
    for node in &others {
        sets.smembers(keys::filters(node));
        alive.exists(keys::alive(node));
    }
    let (sets, alive): (Vec<HashSet<String>>, Vec<bool>) = if others.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        (
            sets.query_async(&mut conn).await?,
            alive.query_async(&mut conn).await?,
        )
    };
    let mut gone = Vec::new();
    {
        let mut index = inner.index_mut();
        let known: HashSet<&str> = others.iter().map(String::as_str).collect();
        for node in index.nodes(&inner.node) {
            if !known.contains(&*node) {
                index.replace(&node, &HashSet::new());
            }
        }
        for ((node, filters), alive) in others.iter().zip(&sets).zip(&alive) {
            index.replace(&Arc::from(node.as_str()), filters);
            if filters.is_empty() && !alive {
                gone.push(node.clone());
            }
        }
    }
    if !gone.is_empty() {
        // Nodes with neither a liveness key nor interest: nothing to keep.
        conn.srem::<_, _, ()>(keys::NODES, &gone).await?;
    }
    tracing::debug!(nodes = others.len(), "interest index loaded");
    Ok(())
}

/// Follows the routes channel and takes this node's QoS 0 messages, until
/// the emitter stops; reconnects (and reloads everything) after an outage.
pub(super) async fn routes(inner: Arc<Inner>) {
    let mut failures = 0u32;
    loop {
        match follow(&inner, &mut failures).await {
            Ok(()) => return,
            Err(e) => {
                inner.health.failed("routes channel", &e);
                failures += 1;
                tokio::select! {
                    _ = tokio::time::sleep(Inner::backoff(failures)) => {}
                    _ = inner.stop.cancelled() => return,
                }
            }
        }
    }
}

async fn follow(inner: &Arc<Inner>, failures: &mut u32) -> RedisResult<()> {
    let mut pubsub = tokio::time::timeout(Duration::from_secs(2), inner.client.get_async_pubsub())
        .await
        .map_err(|_| lost("connecting the routes channel timed out"))??;
    let inbox = keys::inbox(&inner.node);
    pubsub.subscribe(keys::ROUTES).await?;
    pubsub.subscribe(&inbox).await?;
    // Subscribed first, then the whole picture: a change made meanwhile is
    // either in what is loaded or in the messages read after.
    {
        inner.own().resync = true;
    }
    inner.own_changed.notify_one();
    load_index(inner).await?;
    *failures = 0;
    let (mut control, mut messages) = pubsub.split();
    let now = tokio::time::Instant::now();
    let mut reload = tokio::time::interval_at(now + RELOAD, RELOAD);
    let mut ping = tokio::time::interval_at(now + PING, PING);
    loop {
        tokio::select! {
            // A connection that went silent (no RST) is found out by its ping.
            _ = ping.tick() => {
                match tokio::time::timeout(PING, control.ping::<Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Err(lost("the routes channel stopped answering")),
                }
            }
            msg = messages.next() => {
                let Some(msg) = msg else {
                    return Err(lost("routes channel closed"));
                };
                if msg.get_channel_name() == inbox {
                    take_qos0(inner, msg.get_payload_bytes()).await;
                } else {
                    route_change(inner, msg.get_payload_bytes()).await?;
                }
            }
            _ = reload.tick() => load_index(inner).await?,
            _ = inner.stop.cancelled() => return Ok(()),
        }
    }
}

fn lost(what: &'static str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        what,
    ))
}

/// Applies `+{node}\t{filter}`, `-{node}\t{filter}` or `={node}`.
async fn route_change(inner: &Inner, payload: &[u8]) -> RedisResult<()> {
    let Ok(text) = std::str::from_utf8(payload) else {
        tracing::warn!("a route change that is not UTF-8; ignored");
        return Ok(());
    };
    let (op, rest) = text.split_at(text.len().min(1));
    let (node, filter) = rest.split_once('\t').unwrap_or((rest, ""));
    if node == &*inner.node || node.is_empty() {
        return Ok(());
    }
    let node: Arc<str> = Arc::from(node);
    match op {
        "+" if !filter.is_empty() => inner.index_mut().add(&node, filter),
        "-" if !filter.is_empty() => inner.index_mut().remove(&node, filter),
        "=" => {
            let mut conn = inner.conn.clone();
            let filters: HashSet<String> = conn.smembers(keys::filters(&node)).await?;
            inner.index_mut().replace(&node, &filters);
        }
        _ => tracing::warn!(change = text, "an unknown route change; ignored"),
    }
    Ok(())
}

/// Delivers a QoS 0 frame from another node.
async fn take_qos0(inner: &Inner, frame: &[u8]) {
    let Some(sink) = inner.sink.get() else {
        return;
    };
    match wire::decode(frame) {
        Ok(incoming) => {
            sink.deliver_shares(incoming.message, Shares::Only(&incoming.shares))
                .wait()
                .await
        }
        Err(e) => {
            tracing::warn!(%e, "a QoS 0 message from another node could not be read; dropped")
        }
    }
}

/// Reads this node's stream until the emitter stops: first the entries it
/// was given before and did not acknowledge (a crash, a lost connection),
/// then new ones; each acknowledged once handed to the local sessions.
pub(super) async fn stream(inner: Arc<Inner>) {
    let mut failures = 0u32;
    let mut reader: Option<ConnectionManager> = None;
    let mut seen = Seen::default();
    loop {
        if inner.stop.is_cancelled() {
            return;
        }
        let mut conn = match reader.take() {
            Some(conn) => conn,
            // Its own connection: a blocking read would hold up the others' commands.
            None => match conn::manager(&inner.client, Duration::from_secs(10)).await {
                Ok(conn) => conn,
                Err(e) => {
                    inner
                        .health
                        .failed("connecting the inbox stream reader", &e);
                    failures += 1;
                    tokio::time::sleep(Inner::backoff(failures)).await;
                    continue;
                }
            },
        };
        let result = tokio::select! {
            r = consume(&inner, &mut conn, &mut seen, &mut failures) => r,
            _ = inner.stop.cancelled() => return,
        };
        if let Err(e) = result {
            inner.health.failed("reading the inbox stream", &e);
            failures += 1;
            tokio::time::sleep(Inner::backoff(failures)).await;
        }
        reader = Some(conn);
    }
}

async fn create_group(conn: &mut ConnectionManager, key: &str) -> RedisResult<()> {
    // From the start of the stream: what was added before the group existed
    // (after a Redis restart, say) is read too.
    match conn
        .xgroup_create_mkstream::<_, _, _, ()>(key, keys::GROUP, "0")
        .await
    {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

async fn consume(
    inner: &Inner,
    conn: &mut ConnectionManager,
    seen: &mut Seen,
    failures: &mut u32,
) -> RedisResult<()> {
    let key = keys::stream(&inner.node);
    create_group(conn, &key).await?;
    let Some(sink) = inner.sink.get() else {
        return Ok(());
    };
    // "0": this consumer's pending entries, page by page; then ">" (new ones).
    let mut cursor: Option<String> = Some("0".into());
    loop {
        let mut cmd = ::redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(keys::GROUP)
            .arg(&*inner.node)
            .arg("COUNT")
            .arg(BATCH);
        if cursor.is_none() {
            cmd.arg("BLOCK").arg(2000);
        }
        cmd.arg("STREAMS")
            .arg(&key)
            .arg(cursor.as_deref().unwrap_or(">"));
        let reply: Value = match cmd.query_async(conn).await {
            Ok(reply) => reply,
            Err(e) if e.code() == Some("NOGROUP") => {
                // Redis lost it (restarted without the data): start over.
                tracing::info!(
                    stream = key,
                    "the inbox stream's group is gone; creating it again"
                );
                create_group(conn, &key).await?;
                cursor = Some("0".into());
                continue;
            }
            Err(e) => return Err(e),
        };
        *failures = 0;
        inner.health.ok();
        let entries = entries(reply);
        if entries.is_empty() {
            if cursor.is_some() {
                cursor = None; // the pending ones are done
            }
            continue;
        }
        let mut ids = Vec::with_capacity(entries.len());
        for (id, frame) in entries {
            match frame.as_deref().map(wire::decode) {
                Some(Ok(incoming)) if !seen.first(incoming.id) => {
                    tracing::debug!(id, "an entry added twice by its sender; delivered once");
                }
                Some(Ok(incoming)) => {
                    // One at a time: a copy waiting for room keeps the order.
                    sink.deliver_shares(incoming.message, Shares::Only(&incoming.shares))
                        .wait()
                        .await;
                }
                Some(Err(e)) => {
                    tracing::error!(%e, id, "an entry of the inbox stream could not be read; skipped")
                }
                // A pending entry trimmed away meanwhile: nothing left to deliver.
                None => {}
            }
            if cursor.is_some() {
                cursor = Some(id.clone());
            }
            ids.push(id);
        }
        conn.xack::<_, _, _, ()>(&key, keys::GROUP, &ids).await?;
        tracing::trace!(n = ids.len(), "inbox entries delivered and acknowledged");
    }
}

/// `(id, field m)` of each entry of an XREADGROUP reply (RESP2 arrays, or
/// RESP3 maps); a trimmed pending entry has no fields.
pub(super) fn entries(reply: Value) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let streams = match reply {
        Value::Array(streams) => streams,
        Value::Map(pairs) => pairs
            .into_iter()
            .map(|(k, v)| Value::Array(vec![k, v]))
            .collect(),
        _ => return out,
    };
    for stream in streams {
        let Value::Array(mut parts) = stream else {
            continue;
        };
        let Some(Value::Array(items)) = parts.pop() else {
            continue;
        };
        out.extend(stream_entries(items));
    }
    out
}

/// `(id, field m)` of each entry of one stream's item list (as XRANGE gives
/// it, or one stream of an XREADGROUP reply); a trimmed pending entry has no
/// fields.
pub(super) fn stream_entries(items: Vec<Value>) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    for item in items {
        let Value::Array(mut pair) = item else {
            continue;
        };
        if pair.len() != 2 {
            continue;
        }
        let fields = pair.pop();
        let Some(id) = pair.pop().and_then(|v| text(&v)) else {
            continue;
        };
        let frame = match fields {
            Some(Value::Array(fields)) => fields
                .chunks(2)
                .find(|kv| kv.first().and_then(text).as_deref() == Some("m"))
                .and_then(|kv| match kv.get(1) {
                    Some(Value::BulkString(b)) => Some(b.clone()),
                    _ => None,
                }),
            Some(Value::Map(fields)) => fields
                .into_iter()
                .find(|(k, _)| text(k).as_deref() == Some("m"))
                .and_then(|(_, v)| match v {
                    Value::BulkString(b) => Some(b),
                    _ => None,
                }),
            _ => None,
        };
        out.push((id, frame));
    }
    out
}

pub(super) fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    #[test]
    fn an_id_seen_is_dropped_and_the_window_is_bounded() {
        let mut seen = Seen::default();
        assert!(seen.first((1, 1)));
        assert!(!seen.first((1, 1)));
        assert!(seen.first((2, 1)), "another instance");
        for seq in 2..(WINDOW as u64 + 10) {
            assert!(seen.first((1, seq)));
        }
        assert!(seen.first((1, 1)), "forgotten past the window");
        for instance in 10..(10 + INSTANCES as u64) {
            seen.first((instance, 0));
        }
        assert!(seen.by.len() <= INSTANCES);
    }

    #[test]
    fn xreadgroup_replies_are_read_with_trimmed_entries_kept_as_none() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk(b"pigeon:stream:n"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk(b"1-0"),
                    Value::Array(vec![bulk(b"m"), bulk(b"\x01\x00")]),
                ]),
                Value::Array(vec![bulk(b"2-0"), Value::Nil]),
            ]),
        ])]);
        let got = entries(reply);
        assert_eq!(
            got,
            vec![("1-0".into(), Some(vec![1, 0])), ("2-0".into(), None)]
        );
        assert!(entries(Value::Nil).is_empty());
    }
}
