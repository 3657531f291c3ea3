//! To the other nodes: QoS 0 on their pub/sub inbox channel (through one task,
//! dropped while Redis is away), QoS 1/2 `XADD`ed to their inbox streams by
//! the publisher's own completion, retried until Redis takes them.

use std::{
    collections::BTreeMap,
    sync::{atomic::Ordering::Relaxed, Arc},
};

use pigeon_codec::QoS;
use tokio::sync::mpsc;

use super::{keys, wire, Inner};
use crate::{emitter::Completion, model::Message};

/// Sends `message` once to each node of `remote` (with the shared groups it serves).
pub(super) fn send(
    inner: &Arc<Inner>,
    message: &Arc<Message>,
    remote: BTreeMap<Arc<str>, Vec<Arc<str>>>,
) -> Completion {
    let Some(publish) = wire::encode_publish(message) else {
        return Completion::Done;
    };
    let id = (inner.instance, inner.seq.fetch_add(1, Relaxed));
    if message.publish.qos == QoS::AtMostOnce {
        // While Redis is away QoS 0 for other nodes is dropped (at most
        // once); while it is up, a full backlog slows the publisher, as a
        // full local queue does, instead of dropping a burst.
        let mut waiting = Vec::new();
        for (node, shares) in remote {
            let frame = (
                keys::inbox(&node),
                wire::frame(message, id, &shares, &publish),
            );
            if !inner.health.is_up() {
                inner.dropped_qos0.fetch_add(1, Relaxed);
                continue;
            }
            match inner.qos0.try_send(frame) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(frame)) => waiting.push(frame),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    inner.dropped_qos0.fetch_add(1, Relaxed);
                }
            }
        }
        if waiting.is_empty() {
            return Completion::Done;
        }
        let sender = inner.qos0.clone();
        return Completion::Pending(Box::pin(async move {
            for frame in waiting {
                if sender.send(frame).await.is_err() {
                    return; // the emitter is closing
                }
            }
        }));
    }
    let entries: Vec<(String, Vec<u8>)> = remote
        .into_iter()
        .map(|(node, shares)| {
            let frame = wire::frame(message, id, &shares, &publish);
            (keys::stream(&node), frame)
        })
        .collect();
    let inner = inner.clone();
    Completion::Pending(Box::pin(async move { xadd(&inner, entries).await }))
}

/// `XADD`s each entry (one round trip), retrying while Redis is away: the
/// publisher stays unacknowledged until then. Gives up only when the emitter
/// stops (the broker is closing).
///
/// A pipeline cut by a lost connection may have been applied in part: its
/// retry then adds some entries twice, which the receivers drop by the
/// frame's id (`inbox::Seen`).
async fn xadd(inner: &Inner, entries: Vec<(String, Vec<u8>)>) {
    let maxlen = ::redis::streams::StreamMaxlen::Approx(inner.opts.stream_maxlen);
    let mut pipe = ::redis::pipe();
    for (stream, frame) in &entries {
        pipe.xadd_maxlen(stream, maxlen, "*", &[("m", frame.as_slice())])
            .ignore();
    }
    let mut failures = 0u32;
    loop {
        let mut conn = inner.conn.clone();
        match pipe.query_async::<()>(&mut conn).await {
            Ok(()) => {
                if failures > 0 {
                    inner.health.ok();
                }
                return;
            }
            Err(e) => {
                inner.health.failed("sending to other nodes' streams", &e);
                failures += 1;
                tokio::select! {
                    _ = tokio::time::sleep(Inner::backoff(failures)) => {}
                    _ = inner.stop.cancelled() => {
                        tracing::error!(nodes = entries.len(), "emitter closed before a message could reach the other nodes");
                        return;
                    }
                }
            }
        }
    }
}

/// QoS 0 frames per round trip to Redis, at most.
const QOS0_BATCH: usize = 256;

/// Publishes the QoS 0 frames, a batch per round trip.
pub(super) async fn qos0(inner: Arc<Inner>, mut rx: mpsc::Receiver<super::Qos0Frame>) {
    let mut batch = Vec::with_capacity(QOS0_BATCH);
    loop {
        batch.clear();
        tokio::select! {
            n = rx.recv_many(&mut batch, QOS0_BATCH) => if n == 0 { return },
            _ = inner.stop.cancelled() => return,
        }
        let mut pipe = ::redis::pipe();
        for (channel, frame) in &batch {
            pipe.publish(channel, frame.as_slice()).ignore();
        }
        let mut conn = inner.conn.clone();
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            // At most once: what Redis did not take is dropped.
            inner.health.failed("publishing QoS 0 to other nodes", &e);
            inner.dropped_qos0.fetch_add(batch.len() as u64, Relaxed);
        }
    }
}
