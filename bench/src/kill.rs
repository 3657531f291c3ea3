//! The kill -9 loss test (`bench/durable_kill.sh`), in three steps run as
//! separate processes so the broker can be killed and restarted in between:
//!
//! 1. [`subscribe`]: a persistent QoS 1 subscriber subscribes, then goes offline.
//! 2. [`publish`]: a QoS 1 publisher sends numbered messages until the broker
//!    dies under it, and writes down which ones got a successful PUBACK.
//! 3. [`collect`]: after the restart, the subscriber reconnects to its session
//!    and collects; every acknowledged message it never receives is lost.
//!
//! Payloads carry the same stamp as the scenarios (stream 0, sequence, time).

use std::{
    collections::HashMap,
    fmt::Write as _,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use bytes::{BufMut, BytesMut};
use futures_util::{SinkExt, StreamExt};
use pigeon_codec::{ByteStr, Disconnect, Packet, Protocol, PubAck, Publish, QoS, ReasonCode};

use crate::{
    client::{connect, connect_session, subscribe, Dialer, Session},
    scenario::STAMP,
};

/// Step 1: connects `client_id` with a persistent session, subscribes to
/// `topic` at QoS 1 and disconnects normally, leaving the session behind.
pub(crate) async fn subscribe_offline(
    dialer: &Dialer,
    protocol: Protocol,
    client_id: &str,
    topic: &str,
) -> anyhow::Result<()> {
    let (mut conn, _) = connect_session(dialer, client_id, protocol, Session::Persistent).await?;
    subscribe(&mut conn, topic, QoS::AtLeastOnce).await?;
    conn.send(Packet::Disconnect(Disconnect::new(ReasonCode::Success)))
        .await
        .context("sending DISCONNECT")?;
    Ok(())
}

/// What the publisher of step 2 did.
#[derive(Debug, Default)]
pub(crate) struct Published {
    /// Messages sent (sequences `0..sent`).
    pub sent: u64,
    /// Sequences whose PUBACK carried a success reason code, in ack order.
    pub acked: Vec<u64>,
    /// PUBACKs with an error reason code (the broker refused the message).
    pub refused: u64,
    /// Why publishing stopped, if the broker went away.
    pub ended_by: Option<String>,
    /// From the connection to the end of publishing.
    pub elapsed: Duration,
}

impl Published {
    /// The file [`collect`] reads: `sent N`, then one acknowledged sequence a line.
    fn to_file(&self) -> String {
        let mut s = format!("sent {}\n", self.sent);
        for seq in &self.acked {
            let _ = writeln!(s, "{seq}");
        }
        s
    }
}

/// Step 2: publishes numbered QoS 1 messages on `topic` (at most `window`
/// unacknowledged) until the connection fails or `duration` has passed, then
/// writes the acknowledged sequences to `acked`.
pub(crate) async fn publish(
    dialer: &Dialer,
    protocol: Protocol,
    topic: &str,
    window: usize,
    payload: usize,
    duration: Duration,
    acked: &Path,
) -> anyhow::Result<Published> {
    let mut conn = connect(
        dialer,
        &format!("kill-pub-{}", std::process::id()),
        protocol,
    )
    .await?;
    let topic = ByteStr::from(topic);
    let base = Instant::now();
    let deadline = base + duration;
    let window = window.clamp(1, 65_535);
    let padding = payload.max(STAMP) - STAMP;
    let mut buf = BytesMut::new();
    let mut in_flight: HashMap<u16, u64> = HashMap::with_capacity(window);
    let mut out = Published::default();
    let mut packet_id = 0u16;
    'run: while Instant::now() < deadline {
        while in_flight.len() < window {
            packet_id = packet_id.checked_add(1).unwrap_or(1);
            if in_flight.contains_key(&packet_id) {
                break;
            }
            buf.reserve(STAMP + padding);
            buf.put_u32_le(0);
            buf.put_u64_le(out.sent);
            buf.put_u64_le(base.elapsed().as_nanos() as u64);
            buf.put_bytes(0xA5, padding);
            let mut p = Publish::new(topic.clone(), QoS::AtLeastOnce, buf.split().freeze());
            p.packet_id = packet_id;
            if let Err(e) = conn.feed(Packet::Publish(p)).await {
                out.ended_by = Some(format!("writing: {e}"));
                break 'run;
            }
            in_flight.insert(packet_id, out.sent);
            out.sent += 1;
        }
        if let Err(e) = SinkExt::<Packet>::flush(&mut conn).await {
            out.ended_by = Some(format!("writing: {e}"));
            break;
        }
        // Wait for at least one reply, then take whatever else is buffered.
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(next) = tokio::time::timeout(left, conn.next()).await else {
            break;
        };
        let mut next = Some(next);
        while let Some(packet) = next.take() {
            match packet {
                Some(Ok(Packet::PubAck(ack))) => match in_flight.remove(&ack.packet_id) {
                    Some(seq) if !ack.reason_code.is_error() => out.acked.push(seq),
                    Some(_) => out.refused += 1,
                    None => bail!("PUBACK for packet id {} not in flight", ack.packet_id),
                },
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    out.ended_by = Some(format!("reading: {e}"));
                    break 'run;
                }
                None => {
                    out.ended_by = Some("connection closed by the broker".into());
                    break 'run;
                }
            }
            if !conn.read_buffer().is_empty() {
                next = Some(conn.next().await);
            }
        }
    }
    out.elapsed = base.elapsed();
    if out.ended_by.is_none() {
        let bye = Packet::Disconnect(Disconnect::new(ReasonCode::Success));
        let _ = tokio::time::timeout(Duration::from_secs(1), conn.send(bye)).await;
    }
    std::fs::write(acked, out.to_file()).with_context(|| format!("writing {}", acked.display()))?;
    Ok(out)
}

/// What the subscriber of step 3 found.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    /// The broker resumed the session made in step 1.
    pub session_present: bool,
    /// Messages the publisher sent.
    pub sent: u64,
    /// Messages the publisher got a successful PUBACK for.
    pub acked: u64,
    /// Distinct messages received.
    pub received: u64,
    /// Acknowledged messages never received.
    pub lost: u64,
    /// The lowest acknowledged sequence never received: with `acked`, whether
    /// the loss is the tail of the stream or holes in it.
    pub first_lost: Option<u64>,
    /// Extra copies of messages already received.
    pub duplicates: u64,
    /// Messages that were never sent, of another stream, or corrupt.
    pub unexpected: u64,
}

impl Collected {
    /// One line for the script to sum: `key value` pairs.
    pub(crate) fn line(&self) -> String {
        format!(
            "sent {} acked {} received {} lost {} first_lost {} dups {} unexpected {} session_present {}",
            self.sent,
            self.acked,
            self.received,
            self.lost,
            self.first_lost
                .map_or_else(|| "-".to_owned(), |s| s.to_string()),
            self.duplicates,
            self.unexpected,
            u8::from(self.session_present),
        )
    }
}

/// Reads the file [`publish`] wrote.
fn read_acked(path: &Path) -> anyhow::Result<(u64, Vec<u64>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let sent = lines
        .next()
        .and_then(|l| l.strip_prefix("sent "))
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("{}: no `sent N` first line", path.display()))?;
    let acked = lines
        .enumerate()
        .map(|(i, l)| {
            l.parse::<u64>()
                .with_context(|| format!("{}:{}: not a sequence: {l:?}", path.display(), i + 2))
        })
        .collect::<anyhow::Result<Vec<u64>>>()?;
    if let Some(bad) = acked.iter().find(|&&s| s >= sent) {
        bail!("{}: sequence {bad} was never sent", path.display());
    }
    Ok((sent, acked))
}

/// Step 3: reconnects `client_id` to its persistent session (without
/// subscribing again: only what the session kept counts), acknowledges and
/// records everything until nothing arrives for `idle` (or `max` has passed),
/// and compares with the acknowledged sequences in `acked`.
pub(crate) async fn collect(
    dialer: &Dialer,
    protocol: Protocol,
    client_id: &str,
    acked: &Path,
    idle: Duration,
    max: Duration,
) -> anyhow::Result<Collected> {
    let (sent, acked) = read_acked(acked)?;
    let (mut conn, session_present) =
        connect_session(dialer, client_id, protocol, Session::Persistent).await?;
    let mut seen = vec![0u32; usize::try_from(sent).context("too many messages")?];
    let mut out = Collected {
        session_present,
        sent,
        acked: acked.len() as u64,
        ..Collected::default()
    };
    let end = Instant::now() + max;
    loop {
        let wait = idle.min(end.saturating_duration_since(Instant::now()));
        let packet = match tokio::time::timeout(wait, conn.next()).await {
            Err(_) => break,
            Ok(None) => bail!("connection closed by the broker while collecting"),
            Ok(Some(Err(e))) => bail!("reading: {e}"),
            Ok(Some(Ok(p))) => p,
        };
        let Packet::Publish(p) = packet else { continue };
        match stamp_seq(&p.payload) {
            Some(seq) if seq < sent => match &mut seen[seq as usize] {
                n @ 0 => {
                    *n = 1;
                    out.received += 1;
                }
                n => {
                    *n += 1;
                    out.duplicates += 1;
                }
            },
            _ => out.unexpected += 1,
        }
        if p.qos != QoS::AtMostOnce {
            conn.send(Packet::PubAck(PubAck::new(p.packet_id)))
                .await
                .context("sending PUBACK")?;
        }
    }
    let lost = || acked.iter().copied().filter(|&s| seen[s as usize] == 0);
    out.lost = lost().count() as u64;
    out.first_lost = lost().min();
    let bye = Packet::Disconnect(Disconnect::new(ReasonCode::Success));
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.send(bye)).await;
    Ok(out)
}

/// The sequence of a stream-0 payload.
fn stamp_seq(payload: &[u8]) -> Option<u64> {
    let stream = u32::from_le_bytes(payload.get(..4)?.try_into().ok()?);
    let seq = u64::from_le_bytes(payload.get(4..12)?.try_into().ok()?);
    (stream == 0 && payload.len() >= STAMP).then_some(seq)
}
