//! What a node that is gone (killed) was sent and never delivered. Until the
//! others count it as gone (its alive key expires), they keep adding to its
//! inbox stream what matches its sessions' subscriptions. The node those
//! sessions move to reads the entries past the dead node's acknowledged
//! position (and those it read but never acknowledged) and delivers them to
//! the moved sessions only. Once every session of the dead node was adopted,
//! its routes are retired: nothing is sent to it any more, and a second pass
//! takes what arrived while the other nodes learnt it.

use std::{collections::HashSet, sync::Arc, time::Duration};

use ::redis::{aio::ConnectionManager, RedisResult, Value};

use super::{
    inbox::{stream_entries, text},
    keys, wire, Inner,
};
use crate::emitter::{Recovery, Shares};

/// Entries read per round trip.
const PAGE: usize = 200;
/// How long the other nodes are given to apply a retired node's routes
/// before the last pass.
const SETTLE: Duration = Duration::from_secs(2);
/// Attempts at a pass while Redis fails (about a minute with the backoff).
const ATTEMPTS: u32 = 60;

/// A stream entry id, `ms-seq`, as numbers (ordered as Redis orders them).
fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// Where the dead node's group stood: its last delivered id and the ids it
/// read but never acknowledged. No group (never consumed): from the start.
async fn position(
    conn: &mut ConnectionManager,
    key: &str,
) -> RedisResult<((u64, u64), HashSet<String>)> {
    let groups: Value = match ::redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(key)
        .query_async(conn)
        .await
    {
        Ok(v) => v,
        // No such stream: nothing waits.
        Err(e) if e.to_string().contains("no such key") => {
            return Ok(((u64::MAX, 0), HashSet::new()))
        }
        Err(e) => return Err(e),
    };
    let mut last = (0, 0);
    let mut found = false;
    for group in flat_list(groups) {
        let fields = pairs(group);
        let name = fields
            .iter()
            .find(|(k, _)| k == "name")
            .map(|(_, v)| v.as_str());
        if name == Some(keys::GROUP) {
            found = true;
            if let Some(id) = fields
                .iter()
                .find(|(k, _)| k == "last-delivered-id")
                .and_then(|(_, v)| parse_id(v))
            {
                last = id;
            }
        }
    }
    let mut pending = HashSet::new();
    if found {
        let reply: Value = ::redis::cmd("XPENDING")
            .arg(key)
            .arg(keys::GROUP)
            .arg("-")
            .arg("+")
            .arg(10_000)
            .query_async(conn)
            .await?;
        for entry in flat_list(reply) {
            if let Value::Array(parts) = entry {
                if let Some(id) = parts.first().and_then(text) {
                    pending.insert(id);
                }
            }
        }
    }
    Ok((last, pending))
}

fn flat_list(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) | Value::Set(items) => items,
        _ => Vec::new(),
    }
}

/// A RESP2 flat key/value array or a RESP3 map, as text pairs.
fn pairs(v: Value) -> Vec<(String, String)> {
    match v {
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|kv| Some((text(kv.first()?)?, text(kv.get(1)?).unwrap_or_default())))
            .collect(),
        Value::Map(items) => items
            .iter()
            .filter_map(|(k, v)| Some((text(k)?, text(v).unwrap_or_default())))
            .collect(),
        _ => Vec::new(),
    }
}

/// Delivers to `clients` the entries of `key` after `from` (exclusive; the
/// start when `None`) that the dead node had not acknowledged. Returns the
/// last id read.
async fn pass(
    inner: &Inner,
    conn: &mut ConnectionManager,
    key: &str,
    clients: &[Arc<str>],
    from: Option<String>,
) -> RedisResult<Option<String>> {
    let Some(sink) = inner.sink.get() else {
        return Ok(from);
    };
    let (acked, pending) = position(conn, key).await?;
    let mut cursor = from;
    let mut delivered = 0usize;
    loop {
        let start = cursor
            .as_ref()
            .map_or_else(|| "-".to_owned(), |c| format!("({c}"));
        let reply: Value = ::redis::cmd("XRANGE")
            .arg(key)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(PAGE)
            .query_async(conn)
            .await?;
        let entries = stream_entries(flat_list(reply));
        if entries.is_empty() {
            break;
        }
        for (id, frame) in entries {
            let Some(parsed) = parse_id(&id) else {
                continue;
            };
            cursor = Some(id.clone());
            // Acknowledged by the dead node: it was delivered there (and
            // stored with the session).
            if parsed <= acked && !pending.contains(&id) {
                continue;
            }
            match frame.as_deref().map(wire::decode) {
                Some(Ok(incoming)) => {
                    delivered += 1;
                    sink.deliver_to(incoming.message, Shares::Only(&incoming.shares), clients)
                        .wait()
                        .await;
                }
                Some(Err(e)) => {
                    tracing::error!(%e, id, "an entry of a dead node's stream could not be read; skipped")
                }
                None => {}
            }
        }
    }
    if delivered > 0 {
        tracing::info!(
            stream = key,
            entries = delivered,
            sessions = clients.len(),
            "took over what a node that is gone was sent"
        );
    }
    Ok(cursor)
}

/// The dead node's routes: its interest set removed, every node told.
/// Skipped when it came back meanwhile (its alive key is held again).
async fn retire(inner: &Inner, conn: &mut ConnectionManager, node: &str) -> RedisResult<bool> {
    let alive: bool = ::redis::cmd("EXISTS")
        .arg(keys::alive(node))
        .query_async(conn)
        .await?;
    if alive {
        return Ok(false);
    }
    ::redis::cmd("DEL")
        .arg(keys::filters(node))
        .query_async::<()>(conn)
        .await?;
    inner.index_mut().replace(&Arc::from(node), &HashSet::new());
    ::redis::cmd("PUBLISH")
        .arg(keys::ROUTES)
        .arg(format!("={node}"))
        .query_async::<()>(conn)
        .await?;
    tracing::info!(node, "routes of a node that is gone retired");
    Ok(true)
}

/// One pass, retried while Redis fails.
async fn pass_retried(
    inner: &Inner,
    conn: &mut ConnectionManager,
    key: &str,
    clients: &[Arc<str>],
    from: Option<String>,
) -> Option<String> {
    for attempt in 0..ATTEMPTS {
        match pass(inner, conn, key, clients, from.clone()).await {
            Ok(last) => return last,
            Err(e) => {
                inner
                    .health
                    .failed("reading a dead node's inbox stream", &e);
                tokio::time::sleep(Inner::backoff(attempt)).await;
            }
        }
    }
    tracing::error!(stream = key, "gave up reading a dead node's inbox stream");
    from
}

/// The whole recovery of `r`, in the background of the emitter's tasks.
pub(super) async fn run(inner: Arc<Inner>, r: Recovery) {
    let key = keys::stream(&r.from);
    let mut conn = inner.conn.clone();
    let last = if r.clients.is_empty() {
        None
    } else {
        pass_retried(&inner, &mut conn, &key, &r.clients, None).await
    };
    if !r.retire {
        return;
    }
    match retire(&inner, &mut conn, &r.from).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(%e, node = r.from, "could not retire a dead node's routes; they expire with its keys");
            return;
        }
    }
    if r.clients.is_empty() {
        return;
    }
    tokio::time::sleep(SETTLE).await;
    pass_retried(&inner, &mut conn, &key, &r.clients, last).await;
}

#[cfg(test)]
mod tests {
    use super::parse_id;

    #[test]
    fn stream_ids_compare_as_redis_orders_them() {
        assert_eq!(parse_id("1700000000000-3"), Some((1_700_000_000_000, 3)));
        assert!(parse_id("9-10") > parse_id("9-9"));
        assert!(parse_id("10-0") > parse_id("9-99"));
        assert_eq!(parse_id("0"), Some((0, 0)));
        assert_eq!(parse_id("x-1"), None);
    }
}
