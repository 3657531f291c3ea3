//! After CONNECT is accepted: session takeover and restore, will, keep alive,
//! CONNACK, and the resend of what a resumed session had in flight.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use bytes::BytesMut;
use pigeon_codec::{ConnAck, Connect, Packet, PubReply, ReasonCode, SubscriptionOptions};
use tokio::{net::tcp::OwnedWriteHalf, sync::mpsc, time::Instant};

use super::{guard, Connection};
use crate::{
    broker::{Engine, Link},
    hooks::{Client, Event, EventKind, Subscription},
    persistence::Parked,
};

/// Takes the session over and answers CONNACK; `None` on shutdown.
pub(super) async fn establish(
    engine: &Arc<Engine>,
    mut connect: Connect,
    client: Client,
    assigned: Option<String>,
    writer: OwnedWriteHalf,
) -> Option<Connection> {
    let protocol = client.protocol();
    // Take the session over (the previous owner saves its state first).
    let client_id: Arc<str> = Arc::from(client.id());
    let (session, owner) = tokio::select! {
        acquired = engine.acquire_session(&client_id) => acquired,
        _ = engine.shutdown.cancelled() => return None,
    };
    let persistent = if protocol.is_v5() {
        connect.properties.session_expiry_interval.unwrap_or(0) > 0
    } else {
        !connect.clean_start
    };
    let session_present = !connect.clean_start && session.is_persistent();
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
    let receive_maximum = connect.properties.receive_maximum.unwrap_or(u16::MAX);
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
        keep_alive: (keep_alive > 0).then(|| Duration::from_millis(u64::from(keep_alive) * 1500)),
        last_seen: Instant::now(),
        will,
        persistent,
        inflight: VecDeque::new(),
        max_inflight: usize::from(max_inflight),
        max_outgoing: connect
            .properties
            .maximum_packet_size
            .and_then(|m| usize::try_from(m).ok())
            .unwrap_or(usize::MAX),
        next_packet_id: 0,
        incoming_qos2: parked.incoming_qos2.iter().copied().collect(),
        batch: Vec::with_capacity(super::BATCH),
    };

    if session_present {
        conn.restore_subscriptions().await;
    }

    engine
        .stats
        .clients_connected
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    engine.event(EventKind::Client, || Event::Client(client.clone()));
    crate::sys::new_client(engine, &client_id).await;

    let mut ack = ConnAck::new(ReasonCode::Success, session_present);
    if protocol.is_v5() {
        let c = &engine.config;
        let p = &mut ack.properties;
        p.assigned_client_identifier = assigned;
        p.receive_maximum = Some(c.receive_maximum);
        p.maximum_packet_size = u32::try_from(c.max_packet_size).ok();
        p.server_keep_alive = server_keep_alive;
        p.topic_alias_maximum = Some(0);
        if c.maximum_qos != pigeon_codec::QoS::ExactlyOnce {
            p.maximum_qos = Some(c.maximum_qos);
        }
        p.retain_available = (!c.retain_available).then_some(false);
        p.wildcard_subscription_available = (!c.wildcard_subscription_available).then_some(false);
        // Not implemented yet (MQTT 5.0 issue): announce their absence.
        p.shared_subscription_available = Some(false);
        p.subscription_identifiers_available = Some(false);
    }
    conn.write(&Packet::ConnAck(ack.clone()));
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
                    engine
                        .remove_subscription(&self.session, &filter, self.persistent)
                        .await;
                    let options = SubscriptionOptions {
                        qos: s.qos,
                        ..s.options
                    };
                    engine
                        .add_subscription(&self.session, &s.topic, options, self.persistent)
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
