//! Fan-in, fan-out and pairs runs. Subscribers first; then publishers send as
//! fast as flow control lets them for a fixed time (QoS 1 publishers also keep a
//! window of unacknowledged messages); then the run drains until every expected
//! delivery has arrived or nothing has arrived for a while.
//!
//! Every payload starts with (stream id u32, sequence u64, send time u64 in ns
//! after the run's base instant), little-endian; the rest is padding. A stream is
//! one publisher's sequence of messages on its topic.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use bytes::{Buf, BufMut, BytesMut};
use futures_util::{SinkExt, StreamExt};
use pigeon_codec::{ByteStr, Disconnect, Packet, Protocol, PubAck, Publish, QoS, ReasonCode};
use tokio::sync::{watch, Semaphore};

use crate::{
    client::{connect, connect_session, subscribe, Conn, Dialer, Session},
    flow::Flow,
    stats::Outcome,
    track::SeqTracker,
};

/// Bytes of the stamp at the start of every payload.
pub(crate) const STAMP: usize = 4 + 8 + 8;

/// How long a QoS 1 publisher waits for a PUBACK before it gives up.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Who publishes where and who subscribes to what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `publishers` publishers on `…/in/<i>`, one subscriber on `…/in/#`.
    FanIn,
    /// One publisher, `subscribers` subscribers on the same topic.
    FanOut,
    /// `publishers` pairs: publisher i → `…/pair/<i>` → subscriber i.
    Pairs,
}

/// How one scenario is shaped.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    pub name: String,
    pub kind: Kind,
    pub publishers: usize,
    pub subscribers: usize,
    pub qos: QoS,
    /// Payload size in bytes (at least [`STAMP`]).
    pub payload: usize,
    pub protocol: Protocol,
    /// The subscribers' session (publishers always connect clean).
    pub session: Session,
    /// Unacknowledged QoS 1 messages a publisher may have outstanding.
    pub window: usize,
    /// How long publishers publish.
    pub duration: Duration,
    /// Expected deliveries outstanding system-wide before publishers pause (0: no cap).
    pub max_outstanding: u64,
    /// No delivery for this long while publishers wait: write the outstanding count off.
    pub stall: Duration,
    /// Drain: stop waiting when nothing arrived for this long…
    pub drain_idle: Duration,
    /// …or after this long in total.
    pub drain_max: Duration,
}

/// The topics of one scenario.
struct Plan {
    /// Publisher i's topic; its stream id is i.
    pub_topics: Vec<String>,
    /// Each subscriber's filter and the streams it must receive.
    subs: Vec<(String, Vec<bool>)>,
    /// Per stream: how many subscribers expect each of its messages.
    fanout: Vec<u64>,
}

fn plan(shape: &Shape, run_id: &str) -> Plan {
    let root = format!("bench/{run_id}");
    let (pub_topics, subs): (Vec<String>, Vec<(String, Vec<bool>)>) = match shape.kind {
        Kind::FanIn => (
            (0..shape.publishers)
                .map(|i| format!("{root}/in/{i}"))
                .collect(),
            vec![(format!("{root}/in/#"), vec![true; shape.publishers])],
        ),
        Kind::FanOut => (
            vec![format!("{root}/out")],
            (0..shape.subscribers)
                .map(|_| (format!("{root}/out"), vec![true]))
                .collect(),
        ),
        Kind::Pairs => (
            (0..shape.publishers)
                .map(|i| format!("{root}/pair/{i}"))
                .collect(),
            (0..shape.publishers)
                .map(|i| {
                    let mut expects = vec![false; shape.publishers];
                    expects[i] = true;
                    (format!("{root}/pair/{i}"), expects)
                })
                .collect(),
        ),
    };
    let fanout = (0..pub_topics.len())
        .map(|s| subs.iter().filter(|(_, e)| e[s]).count() as u64)
        .collect();
    Plan {
        pub_topics,
        subs,
        fanout,
    }
}

/// Runs one scenario against the broker `dialer` reaches.
pub(crate) async fn run(dialer: &Dialer, shape: &Shape, run_id: &str) -> anyhow::Result<Outcome> {
    let plan = plan(shape, run_id);
    let base = Instant::now();
    let flow = Arc::new(Flow::new(shape.max_outstanding, shape.stall));
    let (stop_tx, stop_rx) = watch::channel(false);

    let mut subs = Vec::new();
    for (i, (filter, expects)) in plan.subs.iter().enumerate() {
        let id = format!("{run_id}-sub-{i}");
        let (mut conn, _) = connect_session(dialer, &id, shape.protocol, shape.session).await?;
        subscribe(&mut conn, filter, shape.qos).await?;
        let sub = Subscriber {
            expects: expects.clone(),
            base,
            flow: flow.clone(),
            stop: stop_rx.clone(),
        };
        subs.push(tokio::spawn(sub.run(conn)));
    }
    let mut pub_conns = Vec::new();
    for i in 0..plan.pub_topics.len() {
        pub_conns.push(connect(dialer, &format!("{run_id}-pub-{i}"), shape.protocol).await?);
    }
    // Let brokers that apply SUBSCRIBE asynchronously settle.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let t0 = Instant::now();
    let deadline = t0 + shape.duration;
    let mut pubs = Vec::new();
    for (i, conn) in pub_conns.into_iter().enumerate() {
        let publisher = Publisher {
            stream: i as u32,
            topic: ByteStr::from(plan.pub_topics[i].as_str()),
            fanout: plan.fanout[i],
            shape: shape.clone(),
            base,
            deadline,
            flow: flow.clone(),
        };
        pubs.push(tokio::spawn(publisher.run(conn)));
    }
    let mut errors = Vec::new();
    let mut published = vec![0u64; pubs.len()];
    for (i, p) in pubs.into_iter().enumerate() {
        match p.await {
            Ok(r) => {
                published[i] = r.published;
                errors.extend(r.error.map(|e| format!("publisher {i}: {e}")));
            }
            Err(e) => errors.push(format!("publisher {i}: {e}")),
        }
    }
    let expected_by = |expects: &[bool]| -> u64 {
        (0..published.len())
            .filter(|&s| expects[s])
            .map(|s| published[s])
            .sum()
    };
    let expected: u64 = plan.subs.iter().map(|(_, e)| expected_by(e)).sum();

    // Drain.
    let drain = Instant::now();
    let (mut last_total, mut last_change) = (flow.total_received(), Instant::now());
    loop {
        let total = flow.total_received();
        if total >= expected {
            break;
        }
        if total != last_total {
            (last_total, last_change) = (total, Instant::now());
        }
        if last_change.elapsed() >= shape.drain_idle || drain.elapsed() >= shape.drain_max {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = stop_tx.send(true);

    let mut outcome = Outcome {
        scenario: shape.name.clone(),
        qos: shape.qos,
        stalls: flow.stalls.load(Relaxed),
        ..Outcome::default()
    };
    let mut last_recv = None;
    for (i, mut s) in subs.into_iter().enumerate() {
        let expects = &plan.subs[i].1;
        let r = match tokio::time::timeout(Duration::from_secs(10), &mut s).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                errors.push(format!("subscriber {i}: {e}"));
                outcome.missing += expected_by(expects);
                continue;
            }
            Err(_) => {
                s.abort();
                errors.push(format!("subscriber {i}: did not stop within 10 s"));
                outcome.missing += expected_by(expects);
                continue;
            }
        };
        for (stream, t) in r.trackers.iter().enumerate() {
            if expects[stream] {
                outcome.delivered += t.unique;
                outcome.missing += t.missing(published[stream]);
                outcome.unexpected += t.beyond(published[stream]);
                outcome.duplicates += t.duplicates;
                outcome.reordered += t.reordered;
            }
        }
        outcome.unexpected += r.unexpected;
        outcome.latencies_us.extend(r.latencies_us);
        last_recv = last_recv.max(r.last_recv);
        errors.extend(r.error.map(|e| format!("subscriber {i}: {e}")));
    }
    outcome.elapsed = last_recv.map_or(Duration::ZERO, |l: Instant| l.duration_since(t0));
    outcome.errors = errors;
    Ok(outcome)
}

/// Decodes the stamp at the start of a payload.
fn stamp(mut payload: &[u8]) -> Option<(u32, u64, u64)> {
    if payload.len() < STAMP {
        return None;
    }
    Some((
        payload.get_u32_le(),
        payload.get_u64_le(),
        payload.get_u64_le(),
    ))
}

/// What one subscriber saw.
struct SubResult {
    /// Per stream of the scenario (only the expected ones are used).
    trackers: Vec<SeqTracker>,
    latencies_us: Vec<u32>,
    /// Messages of a stream it does not expect, or with a corrupt payload.
    unexpected: u64,
    last_recv: Option<Instant>,
    error: Option<String>,
}

struct Subscriber {
    expects: Vec<bool>,
    base: Instant,
    flow: Arc<Flow>,
    stop: watch::Receiver<bool>,
}

impl Subscriber {
    async fn run(mut self, mut conn: Conn) -> SubResult {
        let mut res = SubResult {
            trackers: vec![SeqTracker::default(); self.expects.len()],
            latencies_us: Vec::new(),
            unexpected: 0,
            last_recv: None,
            error: None,
        };
        let mut pending = 0u64;
        loop {
            let next = tokio::select! {
                biased;
                _ = self.stop.changed() => break,
                next = conn.next() => next,
            };
            match next {
                Some(Ok(Packet::Publish(p))) => {
                    let now = Instant::now();
                    res.last_recv = Some(now);
                    pending += 1;
                    match stamp(&p.payload) {
                        Some((stream, seq, sent))
                            if self.expects.get(stream as usize).copied() == Some(true) =>
                        {
                            res.trackers[stream as usize].record(seq);
                            let now_ns = now.duration_since(self.base).as_nanos() as u64;
                            let us = now_ns.saturating_sub(sent) / 1000;
                            res.latencies_us.push(us.min(u32::MAX as u64) as u32);
                        }
                        _ => res.unexpected += 1,
                    }
                    if p.qos != QoS::AtMostOnce {
                        if let Err(e) = conn.feed(Packet::PubAck(PubAck::new(p.packet_id))).await {
                            res.error = Some(format!("sending PUBACK: {e}"));
                            break;
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    res.error = Some(format!("reading: {e}"));
                    break;
                }
                None => {
                    if !*self.stop.borrow() {
                        res.error = Some("connection closed by the broker".into());
                    }
                    break;
                }
            }
            let idle = conn.read_buffer().is_empty();
            if idle || pending >= 256 {
                self.flow.received(pending);
                pending = 0;
            }
            if idle {
                if let Err(e) = SinkExt::<Packet>::flush(&mut conn).await {
                    res.error = Some(format!("sending PUBACKs: {e}"));
                    break;
                }
            }
        }
        self.flow.received(pending);
        let bye = Packet::Disconnect(Disconnect::new(ReasonCode::Success));
        let _ = tokio::time::timeout(Duration::from_secs(1), conn.send(bye)).await;
        res
    }
}

struct PubResult {
    /// Messages sent on this publisher's stream (sequences `0..published`).
    published: u64,
    error: Option<String>,
}

struct Publisher {
    stream: u32,
    topic: ByteStr,
    /// Deliveries each message is expected to make.
    fanout: u64,
    shape: Shape,
    base: Instant,
    deadline: Instant,
    flow: Arc<Flow>,
}

impl Publisher {
    async fn run(self, conn: Conn) -> PubResult {
        let (mut sink, mut stream) = conn.split();
        let qos = self.shape.qos;
        let window = Arc::new(Semaphore::new(self.shape.window.max(1)));
        let acked = Arc::new(AtomicU64::new(0));
        let acks = {
            let (window, acked) = (window.clone(), acked.clone());
            tokio::spawn(async move {
                while let Some(Ok(packet)) = stream.next().await {
                    if matches!(packet, Packet::PubAck(_)) {
                        acked.fetch_add(1, Relaxed);
                        window.add_permits(1);
                    }
                }
                window.close();
            })
        };
        let padding = self.shape.payload.saturating_sub(STAMP);
        let mut buf = BytesMut::new();
        let (mut seq, mut packet_id, mut error) = (0u64, 0u16, None);
        while Instant::now() < self.deadline {
            if self.flow.blocked() {
                if let Err(e) = SinkExt::<Packet>::flush(&mut sink).await {
                    error = Some(format!("writing: {e}"));
                    break;
                }
                self.flow.wait(self.deadline).await;
                continue;
            }
            let mut publish = Publish::new(self.topic.clone(), qos, bytes::Bytes::new());
            if qos != QoS::AtMostOnce {
                if window.available_permits() == 0 {
                    if let Err(e) = SinkExt::<Packet>::flush(&mut sink).await {
                        error = Some(format!("writing: {e}"));
                        break;
                    }
                }
                match tokio::time::timeout(ACK_TIMEOUT, window.acquire()).await {
                    Ok(Ok(permit)) => permit.forget(),
                    Ok(Err(_)) => {
                        error = Some("connection closed by the broker".into());
                        break;
                    }
                    Err(_) => {
                        error = Some(format!("no PUBACK for {} s", ACK_TIMEOUT.as_secs()));
                        break;
                    }
                }
                packet_id = packet_id.checked_add(1).unwrap_or(1);
                publish.packet_id = packet_id;
            }
            buf.reserve(STAMP + padding);
            buf.put_u32_le(self.stream);
            buf.put_u64_le(seq);
            buf.put_u64_le(self.base.elapsed().as_nanos() as u64);
            buf.put_bytes(0xA5, padding);
            publish.payload = buf.split().freeze();
            self.flow.issue(self.fanout);
            seq += 1;
            if let Err(e) = sink.feed(Packet::Publish(publish)).await {
                error = Some(format!("writing: {e}"));
                break;
            }
            if seq % 32 == 0 {
                if let Err(e) = SinkExt::<Packet>::flush(&mut sink).await {
                    error = Some(format!("writing: {e}"));
                    break;
                }
            }
        }
        if let Err(e) = SinkExt::<Packet>::flush(&mut sink).await {
            error.get_or_insert(format!("writing: {e}"));
        }
        if qos != QoS::AtMostOnce && error.is_none() {
            let waited = Instant::now();
            while acked.load(Relaxed) < seq && !acks.is_finished() {
                if waited.elapsed() >= ACK_TIMEOUT {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let missing = seq.saturating_sub(acked.load(Relaxed));
            if missing > 0 {
                error = Some(format!("{missing} PUBACKs never arrived"));
            }
        }
        let bye = Packet::Disconnect(Disconnect::new(ReasonCode::Success));
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(bye)).await;
        acks.abort();
        PubResult {
            published: seq,
            error,
        }
    }
}
