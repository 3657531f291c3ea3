//! After CONNECT is accepted: session takeover and restore, will, keep alive,
//! CONNACK, and the resend of what a resumed session had in flight.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use bytes::BytesMut;
use pigeon_codec::{ConnAck, Connect, Packet, PubReply, ReasonCode, SubscriptionOptions};
use tokio::{sync::mpsc, time::Instant};

use super::{rate, Connection, WriteHalf};
use crate::hooks::guard;
use crate::{
    engine::{Engine, Link},
    hooks::{Client, Event, EventKind, Subscription},
    model::Parked,
};

/// Takes the session over and answers CONNACK; `None` on shutdown.
pub(super) async fn establish(
    engine: &Arc<Engine>,
    mut connect: Connect,
    client: Client,
    assigned: Option<String>,
    writer: WriteHalf,
) -> Option<Connection> {
    let protocol = client.protocol();
    // Take the session over (the previous owner saves its state first).
    let client_id: Arc<str> = Arc::from(client.id());
    let (session, owner) = tokio::select! {
        acquired = engine.acquire_session(&client_id) => acquired,
        _ = engine.shutdown.cancelled() => return None,
    };
    // MQTT 5.0: the client's interval, capped by the broker's; 3.x: a
    // persistent session never expires (as Mosquitto and Aedes do).
    let requested = if protocol.is_v5() {
        connect.properties.session_expiry_interval.unwrap_or(0)
    } else if connect.clean_start {
        0
    } else {
        crate::engine::NEVER
    };
    let session_expiry = requested.min(engine.config.max_session_expiry_interval);
    let persistent = session_expiry > 0;
    let session_present = !connect.clean_start && session.is_persistent();
    // A will the last connection left waiting (will delay): a clean start ends
    // the session, which publishes it now (MQTT 5.0 3.1.2.5); resuming the
    // session cancels it [MQTT-3.1.3-9].
    if let Some(pending) = engine.persistence.take_will(&client_id).await {
        if connect.clean_start {
            engine.publish_will(&client, pending).await;
        } else {
            tracing::debug!("client back in time: will cancelled");
        }
    }
    if connect.clean_start {
        engine.discard_session(&session).await;
    }
    let (ctrl_tx, ctrl_rx) = mpsc::unbounded_channel();
    let conn_id = engine.next_conn_id();
    // Online before unparking: deliveries from now on go to the live queue.
    session.attach(
        Link {
            conn_id,
            ctrl: ctrl_tx,
        },
        persistent,
    );
    let parked = if connect.clean_start {
        Parked::default()
    } else {
        engine.persistence.unpark(&client_id).await
    };

    let will = connect.will.take();
    if let Some(will) = &will {
        engine.persistence.put_will(&client_id, will.clone()).await;
    }

    // Keep alive (MQTT 5.0: the server may impose its maximum).
    let max_keepalive = engine.config.max_keepalive;
    let mut keep_alive = connect.keep_alive;
    let mut server_keep_alive = None;
    if protocol.is_v5() && max_keepalive > 0 && (keep_alive == 0 || keep_alive > max_keepalive) {
        keep_alive = max_keepalive;
        server_keep_alive = Some(max_keepalive);
    }
    let cp = &connect.properties;
    let receive_maximum = cp.receive_maximum.unwrap_or(u16::MAX);
    let mut encoder = pigeon_codec::MqttCodec::with_protocol(protocol, usize::MAX);
    if let Some(max) = cp.maximum_packet_size {
        encoder.set_max_outgoing(usize::try_from(max).unwrap_or(usize::MAX));
    }
    let client_alias_max = if protocol.is_v5() {
        cp.topic_alias_maximum.unwrap_or(0)
    } else {
        0
    };
    let problem_info = cp.request_problem_information.unwrap_or(true);
    let response_information = (protocol.is_v5() && cp.request_response_information == Some(true))
        .then(|| format!("response/{client_id}"));
    let max_inflight = engine
        .config
        .max_inflight
        .min(receive_maximum)
        .clamp(1, 65_000);

    let mut conn = Connection {
        engine: engine.clone(),
        client: client.clone(),
        client_id: client_id.clone(),
        protocol,
        session: session.clone(),
        _owner: owner,
        conn_id,
        ctrl: ctrl_rx,
        writer,
        out: BytesMut::with_capacity(4096),
        unflushed: false,
        keep_alive: (keep_alive > 0).then(|| Duration::from_millis(u64::from(keep_alive) * 1500)),
        last_seen: Instant::now(),
        will,
        session_expiry,
        persistent,
        encoder,
        aliases_in: super::alias::Inbound::new(engine.config.topic_alias_maximum),
        aliases_out: super::alias::Outbound::new(client_alias_max),
        problem_info,
        receive_maximum: usize::from(engine.config.receive_maximum),
        inflight: VecDeque::new(),
        max_inflight: usize::from(max_inflight),
        next_packet_id: 0,
        incoming_qos2: parked.incoming_qos2.iter().copied().collect(),
        batch: Vec::with_capacity(super::BATCH),
        auth: None,
        pending: None,
        stash: VecDeque::new(),
        rate: rate::Bucket::new(engine.config.max_publish_rate, Instant::now()),
        paused_until: None,
    };
    // Enhanced authentication: CONNACK repeats the method with the handler's
    // final data, and later AUTH packets re-authenticate with it.
    let auth_method = connect.properties.authentication_method.take();
    let auth_data = connect.properties.authentication_data.take();
    if let (true, Some(method)) = (protocol.is_v5(), &auth_method) {
        conn.auth = Some(super::auth::Enhanced {
            method: method.clone(),
            credential: crate::hooks::Credential {
                username: connect.username.clone(),
                password: connect.password.clone(),
            },
            step: None,
        });
    }

    if session_present {
        conn.restore_subscriptions().await;
    }

    engine
        .stats
        .clients_connected
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    engine.event(EventKind::Client, || Event::Client(client.clone()));
    crate::engine::sys::new_client(engine, &client_id).await;

    let mut ack = ConnAck::new(ReasonCode::Success, session_present);
    if protocol.is_v5() {
        let c = &engine.config;
        let p = &mut ack.properties;
        p.assigned_client_identifier = assigned;
        if auth_method.is_some() {
            p.authentication_method = auth_method;
            p.authentication_data = auth_data;
        }
        p.receive_maximum = Some(c.receive_maximum);
        p.maximum_packet_size = u32::try_from(c.max_packet_size).ok();
        p.server_keep_alive = server_keep_alive;
        p.topic_alias_maximum = (c.topic_alias_maximum > 0).then_some(c.topic_alias_maximum);
        if c.maximum_qos != pigeon_codec::QoS::ExactlyOnce {
            p.maximum_qos = Some(c.maximum_qos);
        }
        p.retain_available = (!c.retain_available).then_some(false);
        p.wildcard_subscription_available = (!c.wildcard_subscription_available).then_some(false);
        p.shared_subscription_available = (!c.shared_subscription_available).then_some(false);
        p.subscription_identifiers_available =
            (!c.subscription_identifiers_available).then_some(false);
        // Only when the broker's value differs from the client's request.
        p.session_expiry_interval = (session_expiry != requested).then_some(session_expiry);
        p.response_information = response_information;
    }
    if !conn.write(&Packet::ConnAck(ack.clone())) {
        // Above the client's Maximum Packet Size: the optional diagnostics go.
        ack = super::handshake::bare(&ack);
        conn.write(&Packet::ConnAck(ack.clone()));
    }
    client.set_connected(true);
    engine.event(EventKind::ConnackSent, || {
        Event::ConnackSent(client.clone(), ack)
    });

    // Resend what was in flight (DUP), then queue what waited offline.
    for entry in parked.inflight {
        if entry.released {
            conn.write(&Packet::PubRel(PubReply::new(entry.packet_id)));
        } else {
            let publish = entry.delivery.to_publish(entry.packet_id, true);
            conn.write(&Packet::Publish(publish));
        }
        conn.inflight.push_back(entry);
    }
    if !parked.queued.is_empty() {
        session.push_front_all(parked.queued);
    }
    Some(conn)
}

impl Connection {
    /// Runs authorize_subscribe again on a resumed session's subscriptions.
    async fn restore_subscriptions(&mut self) {
        for (filter, options) in self.session.subscriptions() {
            let sub = Subscription {
                topic: filter.clone(),
                qos: options.qos,
                options,
            };
            let decision = guard(self.engine.hooks.authorize_subscribe(&self.client, sub)).await;
            match decision {
                Ok(Ok(Some(s))) if s.topic == filter && s.qos == options.qos => {}
                Ok(Ok(Some(s))) => {
                    let engine = self.engine.clone();
                    let identifier = self.session.subscription_identifier(&filter);
                    engine
                        .remove_subscription(&self.session, &filter, self.persistent)
                        .await;
                    let options = SubscriptionOptions {
                        qos: s.qos,
                        ..s.options
                    };
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
