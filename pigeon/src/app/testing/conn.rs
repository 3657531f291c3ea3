//! The test client's connection task: it owns the socket, answers the
//! broker's QoS 1/2 deliveries and pings, completes the client's own
//! exchanges, and hands received messages to a bounded channel.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use pigeon_codec::{
    Disconnect, MqttCodec, Packet, PubReply, Publish, QoS, SubAck, Subscribe, UnsubAck, Unsubscribe,
};
use tokio::{
    net::TcpStream,
    sync::{mpsc, oneshot, watch},
    time::Instant,
};
use tokio_util::codec::Framed;

use super::{error::Closed, Message};

/// The answer to a command, or how the connection ended before it came.
pub(super) type Reply<T> = oneshot::Sender<Result<T, Closed>>;

/// What the client handle asks of the connection task.
pub(super) enum Command {
    Subscribe(Subscribe, Reply<SubAck>),
    Unsubscribe(Unsubscribe, Reply<UnsubAck>),
    /// QoS 0: answered once written (`None`); QoS 1: the PUBACK; QoS 2: a
    /// failed PUBREC, else the PUBCOMP.
    Publish(Publish, Reply<Option<PubReply>>),
    Ping(Reply<()>),
    /// Sends DISCONNECT and answers once the broker closed the socket.
    Disconnect(Disconnect, Reply<()>),
    /// Closes the socket without DISCONNECT (the broker publishes the will).
    Drop(oneshot::Sender<()>),
}

/// An exchange waiting for the broker's answer, by packet id.
enum Pending {
    Subscribe(Reply<SubAck>),
    Unsubscribe(Reply<UnsubAck>),
    PubAck(Reply<Option<PubReply>>),
    PubRec(Reply<Option<PubReply>>),
    PubComp(Reply<Option<PubReply>>),
}

impl Pending {
    fn fail(self, closed: &Closed) {
        let closed = closed.clone();
        // A dropped receiver is an operation that already timed out.
        match self {
            Pending::Subscribe(r) => drop(r.send(Err(closed))),
            Pending::Unsubscribe(r) => drop(r.send(Err(closed))),
            Pending::PubAck(r) | Pending::PubRec(r) | Pending::PubComp(r) => {
                drop(r.send(Err(closed)))
            }
        }
    }
}

pub(super) struct Driver {
    pub(super) framed: Framed<TcpStream, MqttCodec>,
    pub(super) commands: mpsc::Receiver<Command>,
    pub(super) messages: mpsc::Sender<Message>,
    pub(super) closed: watch::Sender<Option<Closed>>,
    /// PINGREQ after this long without sending (the CONNECT's keep alive).
    pub(super) keep_alive: Option<Duration>,
}

/// The connection's state while it runs.
struct State {
    next_id: u16,
    pending: HashMap<u16, Pending>,
    /// Our PINGREQs in flight: `None` for the automatic keep-alive ones.
    pings: VecDeque<Option<Reply<()>>>,
    /// QoS 2 deliveries received and acknowledged with PUBREC, before PUBREL:
    /// a re-sent one is not handed over twice.
    received_qos2: HashSet<u16>,
    /// Topic aliases the broker set (when the client allowed them).
    aliases: HashMap<u16, String>,
    /// A received message waiting for room in the channel: while it waits the
    /// socket is not read, so the broker sees a slow subscriber.
    held: Option<Message>,
    /// The broker's DISCONNECT, if it sent one.
    disconnect: Option<Disconnect>,
    last_sent: Instant,
}

/// What woke the loop.
enum Event {
    Command(Command),
    Frame(Option<Result<Packet, pigeon_codec::DecodeError>>),
    Ping,
}

/// How the loop ended.
enum End {
    /// The broker closed the socket, or it failed (`reason`).
    Lost(Option<String>),
    /// The client handle is gone: nothing to report to.
    Dropped,
    /// [`Command::Drop`]: close now and tell the handle.
    Close(oneshot::Sender<()>),
    /// [`Command::Disconnect`] was written: wait for the broker to close.
    Disconnected(Reply<()>),
}

impl Driver {
    pub(super) async fn run(mut self) {
        let mut state = State {
            next_id: 1,
            pending: HashMap::new(),
            pings: VecDeque::new(),
            received_qos2: HashSet::new(),
            aliases: HashMap::new(),
            held: None,
            disconnect: None,
            last_sent: Instant::now(),
        };
        let end = self.serve(&mut state).await;
        let reason = match end {
            End::Lost(reason) => reason,
            End::Dropped => return,
            End::Close(done) => {
                drop(self.framed);
                finish(
                    &self.closed,
                    &mut state,
                    Some("the client dropped the connection".into()),
                );
                let _ = done.send(());
                return;
            }
            End::Disconnected(done) => {
                self.drain().await;
                finish(
                    &self.closed,
                    &mut state,
                    Some("the client disconnected".into()),
                );
                let _ = done.send(Ok(()));
                return;
            }
        };
        finish(&self.closed, &mut state, reason);
    }

    /// After our DISCONNECT: reads until the broker closes the socket. What
    /// it still sends has no reader: `disconnect` took the client handle.
    async fn drain(&mut self) {
        while let Some(Ok(_)) = self.framed.next().await {}
    }

    async fn serve(&mut self, state: &mut State) -> End {
        loop {
            let ping_at = self.keep_alive.map(|k| state.last_sent + k);
            let event = tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    Some(command) => Event::Command(command),
                    None => return End::Dropped,
                },
                permit = self.messages.reserve(), if state.held.is_some() => match permit {
                    Ok(permit) => {
                        if let Some(message) = state.held.take() {
                            permit.send(message);
                        }
                        continue;
                    }
                    Err(_) => return End::Dropped,
                },
                frame = self.framed.next(), if state.held.is_none() => Event::Frame(frame),
                () = sleep_until(ping_at), if ping_at.is_some() => Event::Ping,
            };
            let step = match event {
                Event::Command(command) => self.command(state, command).await,
                Event::Frame(Some(Ok(packet))) => self.packet(state, packet).await,
                Event::Frame(Some(Err(e))) => {
                    Err(Some(format!("unreadable packet from the broker: {e}")))
                }
                Event::Frame(None) => Err(None),
                Event::Ping => {
                    state.pings.push_back(None);
                    self.send(state, Packet::PingReq).await
                }
            };
            match step {
                Ok(None) => {}
                Ok(Some(end)) => return end,
                Err(reason) => return End::Lost(reason),
            }
        }
    }

    async fn send(
        &mut self,
        state: &mut State,
        packet: Packet,
    ) -> Result<Option<End>, Option<String>> {
        state.last_sent = Instant::now();
        self.framed
            .send(&packet)
            .await
            .map(|()| None)
            .map_err(|e| Some(format!("sending {:?}: {e}", packet.packet_type())))
    }

    fn packet_id(state: &mut State) -> u16 {
        // Skips ids still in use; 65535 ids cannot all be pending in a test.
        loop {
            let id = state.next_id;
            state.next_id = state.next_id.checked_add(1).unwrap_or(1);
            if !state.pending.contains_key(&id) {
                return id;
            }
        }
    }

    async fn command(
        &mut self,
        state: &mut State,
        command: Command,
    ) -> Result<Option<End>, Option<String>> {
        match command {
            Command::Subscribe(mut subscribe, reply) => {
                subscribe.packet_id = Self::packet_id(state);
                state
                    .pending
                    .insert(subscribe.packet_id, Pending::Subscribe(reply));
                self.send(state, Packet::Subscribe(subscribe)).await
            }
            Command::Unsubscribe(mut unsubscribe, reply) => {
                unsubscribe.packet_id = Self::packet_id(state);
                state
                    .pending
                    .insert(unsubscribe.packet_id, Pending::Unsubscribe(reply));
                self.send(state, Packet::Unsubscribe(unsubscribe)).await
            }
            Command::Publish(mut publish, reply) => {
                match publish.qos {
                    QoS::AtMostOnce => {
                        let sent = self.send(state, Packet::Publish(publish)).await;
                        // Not written: the reply is dropped, and the handle
                        // reports how the connection ended.
                        if sent.is_ok() {
                            let _ = reply.send(Ok(None));
                        }
                        return sent;
                    }
                    QoS::AtLeastOnce => {
                        publish.packet_id = Self::packet_id(state);
                        state
                            .pending
                            .insert(publish.packet_id, Pending::PubAck(reply));
                    }
                    QoS::ExactlyOnce => {
                        publish.packet_id = Self::packet_id(state);
                        state
                            .pending
                            .insert(publish.packet_id, Pending::PubRec(reply));
                    }
                }
                self.send(state, Packet::Publish(publish)).await
            }
            Command::Ping(reply) => {
                state.pings.push_back(Some(reply));
                self.send(state, Packet::PingReq).await
            }
            Command::Disconnect(disconnect, reply) => {
                self.send(state, Packet::Disconnect(disconnect)).await?;
                Ok(Some(End::Disconnected(reply)))
            }
            Command::Drop(done) => Ok(Some(End::Close(done))),
        }
    }

    async fn packet(
        &mut self,
        state: &mut State,
        packet: Packet,
    ) -> Result<Option<End>, Option<String>> {
        match packet {
            Packet::Publish(publish) => self.delivery(state, publish).await,
            Packet::PubRel(rel) => {
                state.received_qos2.remove(&rel.packet_id);
                self.send(state, Packet::PubComp(PubReply::new(rel.packet_id)))
                    .await
            }
            Packet::PubAck(ack) => {
                if let Some(Pending::PubAck(reply)) = state.pending.remove(&ack.packet_id) {
                    let _ = reply.send(Ok(Some(ack)));
                }
                Ok(None)
            }
            Packet::PubRec(rec) => match state.pending.remove(&rec.packet_id) {
                Some(Pending::PubRec(reply)) if rec.reason_code.is_error() => {
                    let _ = reply.send(Ok(Some(rec)));
                    Ok(None)
                }
                Some(Pending::PubRec(reply)) => {
                    state.pending.insert(rec.packet_id, Pending::PubComp(reply));
                    self.send(state, Packet::PubRel(PubReply::new(rec.packet_id)))
                        .await
                }
                other => {
                    if let Some(other) = other {
                        state.pending.insert(rec.packet_id, other);
                    }
                    Ok(None)
                }
            },
            Packet::PubComp(comp) => {
                if let Some(Pending::PubComp(reply)) = state.pending.remove(&comp.packet_id) {
                    let _ = reply.send(Ok(Some(comp)));
                }
                Ok(None)
            }
            Packet::SubAck(ack) => {
                if let Some(Pending::Subscribe(reply)) = state.pending.remove(&ack.packet_id) {
                    let _ = reply.send(Ok(ack));
                }
                Ok(None)
            }
            Packet::UnsubAck(ack) => {
                if let Some(Pending::Unsubscribe(reply)) = state.pending.remove(&ack.packet_id) {
                    let _ = reply.send(Ok(ack));
                }
                Ok(None)
            }
            Packet::PingResp => {
                if let Some(Some(reply)) = state.pings.pop_front() {
                    let _ = reply.send(Ok(()));
                }
                Ok(None)
            }
            // The broker closes the socket next; the code is reported then.
            Packet::Disconnect(disconnect) => {
                state.disconnect = Some(disconnect);
                Ok(None)
            }
            other => Err(Some(format!(
                "unexpected {:?} from the broker",
                other.packet_type()
            ))),
        }
    }

    async fn delivery(
        &mut self,
        state: &mut State,
        publish: Publish,
    ) -> Result<Option<End>, Option<String>> {
        let topic = match (publish.topic.is_empty(), publish.properties.topic_alias) {
            (false, Some(alias)) => {
                state.aliases.insert(alias, publish.topic.to_string());
                publish.topic.to_string()
            }
            (true, Some(alias)) => match state.aliases.get(&alias) {
                Some(topic) => topic.clone(),
                None => return Err(Some(format!("unknown topic alias {alias} from the broker"))),
            },
            _ => publish.topic.to_string(),
        };
        let id = publish.packet_id;
        let fresh = match publish.qos {
            QoS::AtMostOnce => true,
            QoS::AtLeastOnce => {
                self.send(state, Packet::PubAck(PubReply::new(id))).await?;
                true
            }
            QoS::ExactlyOnce => {
                let fresh = state.received_qos2.insert(id);
                self.send(state, Packet::PubRec(PubReply::new(id))).await?;
                fresh
            }
        };
        if fresh {
            state.held = Some(Message::from_publish(topic, publish));
        }
        Ok(None)
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Records how the connection ended and fails what still waited.
fn finish(closed_tx: &watch::Sender<Option<Closed>>, state: &mut State, lost: Option<String>) {
    let closed = match state.disconnect.take() {
        Some(d) => Closed {
            code: Some(d.reason_code),
            reason: d.properties.reason_string,
        },
        None => Closed {
            code: None,
            reason: lost,
        },
    };
    for (_, pending) in state.pending.drain() {
        pending.fail(&closed);
    }
    for reply in state.pings.drain(..).flatten() {
        let _ = reply.send(Err(closed.clone()));
    }
    // The held message stays undelivered: the channel's receiver learns
    // of the end from `closed` once it has taken what was sent before.
    closed_tx.send_replace(Some(closed));
}
