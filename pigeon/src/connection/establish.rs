//! After CONNECT is accepted: session takeover and restore, will, keep alive,
//! CONNACK, and the resend of what a resumed session had in flight.

use std::sync::Arc;

use bytes::BytesMut;
use pigeon_codec::Will;
use pigeon_codec::{
    ConnAck, ConnAckProperties, Connect, ConnectProperties, MqttCodec, Packet, Protocol, PubReply,
    ReasonCode,
};
use tokio::time::Instant;

use super::{protocol, rate, Connection, Reader};
use crate::hooks::guard;
use crate::{
    config::Config,
    engine::{Engine, Link, Owner, Session},
    hooks::{Client, Event, EventKind, Subscription},
    model::Parked,
    persistence::SessionState,
};

/// Takes the session over and answers CONNACK; `None` on shutdown.
pub(super) async fn establish(
    engine: &Arc<Engine>,
    mut connect: Connect,
    client: Client,
    assigned: Option<String>,
    reader: Reader,
    buffered: Vec<Packet>,
) -> Option<Box<Connection>> {
    let (requested, session_expiry) = session_expiry(engine, &connect);
    let (seat, mut parked) = take_over(engine, &client, &mut connect, session_expiry).await?;
    let session_present = seat.session_present;
    let (keep_alive, server_keep_alive) = keep_alive(engine, client.protocol(), connect.keep_alive);
    let terms = terms(engine, client.protocol(), &connect.properties, keep_alive);
    let open_qos2 = std::mem::take(&mut parked.incoming_qos2);
    // Boxed from the start: the task's future holds a pointer, not the struct.
    let mut conn = Box::new(Connection::new(
        engine, client, seat, reader, &connect, terms, open_qos2,
    ));
    // Handled once the client is ready (see `Step::Start`).
    if !buffered.is_empty() {
        conn.rare().stash.extend(buffered);
    }
    if conn.persistent {
        conn.save_session(session_expiry);
    }
    let mut ack = ConnAck::new(ReasonCode::Success, session_present);
    if conn.mqtt.v5() {
        let p = &mut ack.properties;
        broker_limits(&engine.config, p);
        p.assigned_client_identifier = assigned;
        p.server_keep_alive = server_keep_alive;
        // Only when the broker's value differs from the client's request.
        p.session_expiry_interval = (session_expiry != requested).then_some(session_expiry);
        p.response_information = (connect.properties.request_response_information == Some(true))
            .then(|| format!("response/{}", conn.session.client_id));
        if let Some(auth) = conn.enhanced_auth(&mut connect, p) {
            conn.rare().auth = Some(auth);
        }
    }
    if session_present {
        conn.restore_subscriptions().await;
    }
    conn.announce().await;
    conn.send_connack(ack);
    conn.resume(parked);
    Some(conn)
}

/// What taking the session over gives a connection.
struct Seat {
    session: Arc<Session>,
    owner: Owner,
    conn_id: u64,
    session_present: bool,
    session_expiry: u32,
    will: Option<Will>,
}

/// Takes the session over (the previous owner saves its state first),
/// links it to this connection and unparks its message state; stores the
/// CONNECT's will. `None` on shutdown.
async fn take_over(
    engine: &Arc<Engine>,
    client: &Client,
    connect: &mut Connect,
    session_expiry: u32,
) -> Option<(Seat, Parked)> {
    let client_id = client.shared_id();
    // A cluster's store: the session may be held by another node, or left
    // in the store by one (a no-op for the memory and redb stores). Another
    // node taking it over before it is registered here either makes this
    // CONNECT give up or waits for the registration (`Engine::let_go`).
    let claiming = engine.claiming(&client_id);
    tokio::select! {
        claimed = engine.claim_session(&client_id, connect.clean_start) => {
            if !claimed {
                return None; // a newer CONNECT on another node has it
            }
        }
        _ = engine.shutdown.cancelled() => return None,
    }
    let (session, owner) = tokio::select! {
        acquired = engine.acquire_session(&client_id) => acquired,
        _ = engine.shutdown.cancelled() => return None,
    };
    drop(claiming);
    let session_present = !connect.clean_start && session.is_persistent();
    settle_left_will(engine, client, connect.clean_start).await;
    if connect.clean_start {
        engine.discard_session(&session).await;
    }
    let conn_id = engine.next_conn_id();
    // Online before unparking: deliveries from now on go to the live queue.
    let link = Link::new(
        conn_id,
        Some(client.clone()),
        keep_alive(engine, client.protocol(), connect.keep_alive).0,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    session.attach(link, session_expiry > 0);
    let parked = if connect.clean_start {
        Parked::default()
    } else {
        engine.persistence.unpark(&client_id).await
    };
    // Its own copy: a slice of the read buffer would keep all of it alive.
    let will = connect.will.take().map(|mut will| {
        will.payload = bytes::Bytes::copy_from_slice(&will.payload);
        will
    });
    if let Some(will) = &will {
        engine.persistence.put_will(&client_id, will.clone()).await;
    }
    let seat = Seat {
        session,
        owner,
        conn_id,
        session_present,
        session_expiry,
        will,
    };
    Some((seat, parked))
}

/// The Session Expiry Interval the client asked for and the one it gets.
/// MQTT 5.0: the client's interval, capped by the broker's; 3.x: a
/// persistent session never expires (as Mosquitto and Aedes do).
fn session_expiry(engine: &Engine, connect: &Connect) -> (u32, u32) {
    let requested = if connect.protocol.is_v5() {
        connect.properties.session_expiry_interval.unwrap_or(0)
    } else if connect.clean_start {
        0
    } else {
        crate::engine::NEVER
    };
    (
        requested,
        requested.min(engine.config.max_session_expiry_interval),
    )
}

/// A will the last connection left waiting (will delay): a clean start ends
/// the session, which publishes it now (MQTT 5.0 3.1.2.5); resuming the
/// session cancels it [MQTT-3.1.3-9].
async fn settle_left_will(engine: &Arc<Engine>, client: &Client, clean_start: bool) {
    if let Some(pending) = engine.persistence.take_will(client.id()).await {
        if clean_start {
            engine.publish_will(client, pending).await;
        } else {
            tracing::debug!("client back in time: will cancelled");
        }
    }
}

/// The keep alive in force and the Server Keep Alive to announce: an
/// MQTT 5.0 server may impose its maximum (3.x clients above it were refused).
fn keep_alive(engine: &Engine, protocol: Protocol, requested: u16) -> (u16, Option<u16>) {
    let max = engine.config.max_keepalive;
    if protocol.is_v5() && max > 0 && (requested == 0 || requested > max) {
        (max, Some(max))
    } else {
        (requested, None)
    }
}

/// What the protocol core needs from CONNECT and the broker's limits.
fn terms(
    engine: &Engine,
    protocol: Protocol,
    cp: &ConnectProperties,
    keep_alive: u16,
) -> protocol::Terms {
    let config = &engine.config;
    let receive_maximum = cp.receive_maximum.unwrap_or(u16::MAX);
    protocol::Terms {
        version: protocol,
        problem_info: cp.request_problem_information.unwrap_or(true),
        keep_alive,
        max_inflight: config.max_inflight.min(receive_maximum).clamp(1, 65_000),
        alias_in_max: config.topic_alias_maximum,
        alias_out_max: if protocol.is_v5() {
            cp.topic_alias_maximum.unwrap_or(0)
        } else {
            0
        },
    }
}

/// The codec encodes packets to the client in its version, within its
/// Maximum Packet Size.
fn limit_outgoing(codec: &mut MqttCodec, protocol: Protocol, cp: &ConnectProperties) {
    codec.set_protocol(protocol);
    if let Some(max) = cp.maximum_packet_size {
        codec.set_max_outgoing(usize::try_from(max).unwrap_or(usize::MAX));
    }
}

/// The broker's limits an MQTT 5.0 CONNACK announces (the defaults left out).
fn broker_limits(c: &Config, p: &mut ConnAckProperties) {
    p.receive_maximum = Some(c.receive_maximum);
    p.maximum_packet_size = u32::try_from(c.max_packet_size).ok();
    p.topic_alias_maximum = (c.topic_alias_maximum > 0).then_some(c.topic_alias_maximum);
    if c.maximum_qos != pigeon_codec::QoS::ExactlyOnce {
        p.maximum_qos = Some(c.maximum_qos);
    }
    p.retain_available = (!c.retain_available).then_some(false);
    p.wildcard_subscription_available = (!c.wildcard_subscription_available).then_some(false);
    p.shared_subscription_available = (!c.shared_subscription_available).then_some(false);
    p.subscription_identifiers_available = (!c.subscription_identifiers_available).then_some(false);
}

impl Connection {
    /// A connection in its seat, on these terms, with nothing sent yet.
    fn new(
        engine: &Arc<Engine>,
        client: Client,
        seat: Seat,
        mut reader: Reader,
        connect: &Connect,
        terms: protocol::Terms,
        open_qos2: Vec<u16>,
    ) -> Self {
        let now = Instant::now();
        let mqtt = protocol::State::new(terms, open_qos2, now);
        limit_outgoing(reader.codec(), terms.version, &connect.properties);
        let mut conn = Connection {
            engine: engine.clone(),
            client,
            session: seat.session,
            owner: Some(seat.owner),
            conn_id: seat.conn_id,
            reader,
            // Allocated on first use: an idle client holds no write buffer.
            out: BytesMut::new(),
            unflushed: false,
            mqtt,
            rare: None,
            session_expiry: seat.session_expiry,
            persistent: seat.session_expiry > 0,
            pending: None,
            acks: None,
            keep_alive_due: None,
            park_due: None,
            busy: false,
            park_wanted: false,
        };
        if let Some(will) = seat.will {
            conn.rare().will = Some(will);
        }
        if let Some(rate) = rate::Bucket::new(engine.config.max_publish_rate, now) {
            conn.rare().rate = Some(rate);
        }
        if let Some(limit) = conn.mqtt.keep_alive.limit() {
            conn.arm_keep_alive(now + limit);
        }
        conn
    }

    /// Enhanced authentication: CONNACK repeats the method with the handler's
    /// final data, and later AUTH packets re-authenticate with it.
    fn enhanced_auth(
        &self,
        connect: &mut Connect,
        p: &mut ConnAckProperties,
    ) -> Option<super::auth::Enhanced> {
        let method = connect.properties.authentication_method.take()?;
        p.authentication_data = connect.properties.authentication_data.take();
        p.authentication_method = Some(method.clone());
        Some(super::auth::Enhanced {
            method,
            credential: crate::hooks::Credential {
                username: connect.username.clone(),
                // Its own copy, not a slice of the read buffer.
                password: connect
                    .password
                    .as_deref()
                    .map(bytes::Bytes::copy_from_slice),
            },
            step: None,
        })
    }

    /// The client counts as connected from now on: stats, event, `$SYS`.
    async fn announce(&mut self) {
        let engine = &self.engine;
        engine.stats.connected(self.client.peer().listener());
        engine.event(EventKind::Client, || Event::Client(self.client.clone()));
        crate::engine::sys::new_client(engine, &self.session.client_id).await;
    }

    /// Writes CONNACK; above the client's Maximum Packet Size, without the
    /// optional diagnostics.
    fn send_connack(&mut self, mut ack: ConnAck) {
        if !self.write(&Packet::ConnAck(Box::new(ack.clone()))) {
            ack = super::handshake::bare(&ack);
            self.write(&Packet::ConnAck(Box::new(ack.clone())));
        }
        self.client.set_connected(true);
        self.engine.event(EventKind::ConnackSent, || {
            Event::ConnackSent(self.client.clone(), ack)
        });
    }

    /// Resends what a resumed session had in flight (DUP, or PUBREL for what
    /// was released), then queues what waited offline.
    fn resume(&mut self, parked: Parked) {
        for entry in parked.inflight {
            if entry.released {
                self.write(&Packet::PubRel(PubReply::new(entry.packet_id)));
            } else {
                let publish = entry.delivery.to_publish(entry.packet_id, true);
                self.write(&Packet::Publish(publish));
            }
            self.mqtt.window.push(entry);
        }
        if !parked.queued.is_empty() {
            self.session.push_front_all(parked.queued);
        }
    }

    /// Runs authorize_subscribe again on a resumed session's subscriptions.
    async fn restore_subscriptions(&mut self) {
        for (filter, options) in self.session.subscriptions() {
            let sub = Subscription::with_options(filter.clone(), options);
            let decision = guard(self.engine.hooks.authorize_subscribe(&self.client, sub)).await;
            match decision {
                Ok(Ok(Some(s))) if s.topic == filter && s.options == options => {}
                Ok(Ok(Some(s))) => {
                    let engine = self.engine.clone();
                    let identifier = self.session.subscription_identifier(&filter);
                    engine
                        .remove_subscription(&self.session, &filter, self.persistent)
                        .await;
                    let options = s.options;
                    engine
                        .add_subscription(
                            &self.session,
                            &s.topic,
                            options,
                            identifier,
                            self.persistent,
                        )
                        .await;
                }
                _ => {
                    let engine = self.engine.clone();
                    engine
                        .remove_subscription(&self.session, &filter, self.persistent)
                        .await;
                }
            }
        }
    }
}

impl Connection {
    /// Tells the store the session is persistent and connected (its expiry
    /// starts when this connection ends; if the broker stops first, at the
    /// restart).
    fn save_session(&self, expiry_interval: u32) {
        let state = SessionState {
            expiry_interval,
            offline_since: None,
            username: self.client.username().map(str::to_owned),
            protocol: self.client.protocol(),
        };
        self.engine
            .persistence
            .save_session(&self.session.client_id, state);
    }
}
