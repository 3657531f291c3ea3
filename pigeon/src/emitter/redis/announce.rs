//! Writing this node's side to Redis: its interest set (changes as they
//! come, the whole set after a reconnect), announced on `pigeon:routes`, and
//! the heartbeat that keeps its liveness key and its keys' TTLs fresh.

use std::{collections::HashMap, sync::Arc, time::Duration};

use super::{conn, keys, Inner};

/// Writes the changes of this node's interest until the emitter stops.
pub(super) async fn run(inner: Arc<Inner>) {
    let mut failures = 0u32;
    loop {
        let (resync, changes, all) = {
            let mut own = inner.own();
            let resync = std::mem::take(&mut own.resync);
            let changes = std::mem::take(&mut own.pending);
            let all: Vec<String> = if resync {
                own.filters.iter().cloned().collect()
            } else {
                Vec::new()
            };
            (resync, changes, all)
        };
        if !resync && changes.is_empty() {
            tokio::select! {
                _ = inner.own_changed.notified() => continue,
                _ = inner.stop.cancelled() => return,
            }
        }
        match write(&inner, resync, &changes, &all).await {
            Ok(()) => {
                failures = 0;
                inner.health.ok();
            }
            Err(e) => {
                inner.health.failed("announcing interest", &e);
                {
                    // Whatever Redis kept, the whole set is written next time:
                    // nothing accumulates while Redis is away.
                    let mut own = inner.own();
                    own.resync = true;
                    own.pending.clear();
                }
                failures += 1;
                tokio::select! {
                    _ = tokio::time::sleep(Inner::backoff(failures)) => {}
                    _ = inner.stop.cancelled() => return,
                }
            }
        }
    }
}

/// One atomic write: the whole set (`resync`) or the changes, each announced.
async fn write(
    inner: &Inner,
    resync: bool,
    changes: &HashMap<String, bool>,
    all: &[String],
) -> Result<(), ::redis::RedisError> {
    let node = &*inner.node;
    let set = keys::filters(node);
    let mut pipe = ::redis::pipe();
    pipe.atomic();
    if resync {
        pipe.del(&set).ignore();
        if !all.is_empty() {
            pipe.sadd(&set, all).ignore();
        }
        pipe.sadd(keys::NODES, node).ignore();
        pipe.publish(keys::ROUTES, format!("={node}")).ignore();
        tracing::debug!(node, filters = all.len(), "interest written whole");
    } else {
        for (filter, held) in changes {
            if *held {
                pipe.sadd(&set, filter).ignore();
                pipe.publish(keys::ROUTES, format!("+{node}\t{filter}"))
                    .ignore();
            } else {
                pipe.srem(&set, filter).ignore();
                pipe.publish(keys::ROUTES, format!("-{node}\t{filter}"))
                    .ignore();
            }
        }
    }
    pipe.expire(&set, inner.opts.node_grace.as_secs() as i64)
        .ignore();
    let mut conn = inner.conn.clone();
    pipe.query_async::<()>(&mut conn).await
}

/// Waits (polling) until every recorded change is written.
pub(super) async fn flush(inner: &Inner) {
    loop {
        {
            let own = inner.own();
            if own.pending.is_empty() && !own.resync {
                return;
            }
        }
        inner.own_changed.notify_one();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Keeps the liveness key (and the TTLs of this node's keys) fresh.
pub(super) async fn heartbeat(inner: Arc<Inner>) {
    let node = &*inner.node;
    let alive = keys::alive(node);
    let every = (inner.opts.alive_ttl / 5).max(Duration::from_millis(100));
    let grace = inner.opts.node_grace.as_secs() as i64;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = inner.stop.cancelled() => return,
        }
        let mut conn = inner.conn.clone();
        match conn::refresh(&mut conn, &alive, &inner.nonce, inner.opts.alive_ttl).await {
            Ok(true) => {}
            Ok(false) => {
                let why = format!(
                    "node id {node:?} was claimed by another instance while this one could not reach redis; give each node its own --node-id"
                );
                tracing::error!("{why}");
                inner.health.broken(why);
                continue;
            }
            Err(e) => {
                inner
                    .health
                    .failed("refreshing the node's liveness key", &e);
                continue;
            }
        }
        let result = ::redis::pipe()
            .sadd(keys::NODES, node)
            .ignore()
            .expire(keys::filters(node), grace)
            .ignore()
            .expire(keys::stream(node), grace)
            .ignore()
            .query_async::<()>(&mut conn)
            .await;
        match result {
            Ok(()) => inner.health.ok(),
            Err(e) => inner.health.failed("heartbeat", &e),
        }
    }
}
