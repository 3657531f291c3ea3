//! CONNECT: timeout, client-id rules, pre-connect and authenticate hooks (with
//! early packets buffered up to `queue_limit`), session takeover and restore,
//! CONNACK.

use std::{collections::VecDeque, net::SocketAddr, sync::Arc, time::Duration};

use bytes::BytesMut;
use futures_util::StreamExt;
use pigeon_codec::{
    ConnAck, DecodeError, Packet, Protocol, PubReply, ReasonCode, SubscriptionOptions,
};
use tokio::{io::AsyncWriteExt, net::tcp::OwnedWriteHalf, sync::mpsc, time::Instant};

use super::{guard, Connection, Reader};
use crate::{
    broker::{Engine, Link},
    hooks::{Client, Credential, Event, EventKind, Subscription},
    persistence::Parked,
};

/// Reads and handles CONNECT. `None` when the connection ends here.
pub(super) async fn accept(
    engine: &Arc<Engine>,
    reader: &mut Reader,
    mut writer: OwnedWriteHalf,
    addr: SocketAddr,
) -> Option<(Connection, Vec<Packet>)> {
    let anonymous = || Client::new("", addr, None, Protocol::V3_1_1);
    let first = tokio::select! {
        _ = engine.shutdown.cancelled() => return None,
        first = tokio::time::timeout(engine.config.connect_timeout, reader.next()) => first,
    };
    let mut connect = match first {
        Err(_) => {
            tracing::debug!("no CONNECT within connect_timeout");
            engine.event(EventKind::ConnectionError, || {
                Event::ConnectionError(anonymous(), "connect timeout".into())
            });
            return None;
        }
        Ok(None) => return None,
        Ok(Some(Err(error))) => {
            tracing::debug!(%error, "bad first packet");
            if matches!(
                error,
                DecodeError::UnsupportedProtocolLevel(_) | DecodeError::InvalidProtocolName(_)
            ) {
                let ack = ConnAck::new(ReasonCode::UnsupportedProtocolVersion, false);
                send_now(&mut writer, Protocol::V3_1_1, &Packet::ConnAck(ack)).await;
            }
            engine.event(EventKind::ConnectionError, || {
                Event::ConnectionError(anonymous(), error.to_string())
            });
            return None;
        }
        Ok(Some(Ok(Packet::Connect(connect)))) => *connect,
        Ok(Some(Ok(_))) => return None,
    };
    let protocol = connect.protocol;

    // Client identifier rules.
    let mut assigned = None;
    if connect.client_id.is_empty() {
        if !connect.clean_start && !protocol.is_v5() {
            let client = Client::new("", addr, connect.username.clone(), protocol);
            refuse(
                engine,
                &mut writer,
                &client,
                ReasonCode::ClientIdentifierNotValid,
                "empty client id with a persistent session",
            )
            .await;
            return None;
        }
        let id = format!("pigeon-{}", uuid::Uuid::new_v4().simple());
        connect.client_id = id.clone();
        assigned = Some(id);
    } else if protocol == Protocol::V3_1
        && connect.client_id.chars().count() > engine.config.max_clients_id_length
    {
        let client = Client::new(
            connect.client_id.clone(),
            addr,
            connect.username.clone(),
            protocol,
        );
        refuse(
            engine,
            &mut writer,
            &client,
            ReasonCode::ClientIdentifierNotValid,
            "client id longer than max_clients_id_length",
        )
        .await;
        return None;
    }

    // pre_connect may rewrite the CONNECT.
    let pre = Client::new(
        connect.client_id.clone(),
        addr,
        connect.username.clone(),
        protocol,
    );
    let refused = match guard(engine.hooks.pre_connect(&pre, &mut connect)).await {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some((ReasonCode::UnspecifiedError, error.0)),
        Err(panic) => Some((ReasonCode::ServerUnavailable, panic)),
    };
    if let Some((code, message)) = refused {
        engine.event(EventKind::ConnectionError, || {
            Event::ConnectionError(pre.clone(), message.clone())
        });
        if protocol.is_v5() || code == ReasonCode::ServerUnavailable {
            let ack = ConnAck::new(connack_code(protocol, code), false);
            send_now(&mut writer, protocol, &Packet::ConnAck(ack)).await;
        }
        return None;
    }

    let client = Client::new(
        connect.client_id.clone(),
        addr,
        connect.username.clone(),
        protocol,
    );
    tracing::Span::current().record("client_id", client.id());
    let credential = Credential {
        username: connect.username.clone(),
        password: connect.password.clone(),
    };

    // Authenticate, buffering what the client sends meanwhile (up to queue_limit).
    let mut buffered = Vec::new();
    let auth = {
        let auth = guard(engine.hooks.authenticate(&client, &credential));
        tokio::pin!(auth);
        loop {
            tokio::select! {
                result = &mut auth => break result,
                packet = reader.next() => match packet {
                    Some(Ok(packet)) if buffered.len() < engine.config.queue_limit => buffered.push(packet),
                    Some(Ok(_)) => {
                        engine.event(EventKind::ConnectionError, || {
                            Event::ConnectionError(client.clone(), "Client queue limit reached".into())
                        });
                        tracing::debug!("Client queue limit reached");
                        return None;
                    }
                    _ => return None,
                },
                _ = engine.shutdown.cancelled() => return None,
            }
        }
    };
    match auth {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            refuse(engine, &mut writer, &client, error.reason, &error.message).await;
            return None;
        }
        Err(panic) => {
            refuse(
                engine,
                &mut writer,
                &client,
                ReasonCode::ServerUnavailable,
                &panic,
            )
            .await;
            return None;
        }
    }
    if let (true, Some(reference)) = (protocol.is_v5(), &engine.config.server_reference) {
        let mut ack = ConnAck::new(ReasonCode::UseAnotherServer, false);
        ack.properties.server_reference = Some(reference.clone());
        send_now(&mut writer, protocol, &Packet::ConnAck(ack)).await;
        return None;
    }

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
    engine.event(EventKind::ClientReady, || {
        Event::ClientReady(client.clone())
    });
    Some((conn, buffered))
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

/// MQTT 3.x CONNACK can only carry return codes 1..5.
fn connack_code(protocol: Protocol, code: ReasonCode) -> ReasonCode {
    use ReasonCode::*;
    match (protocol.is_v5(), code) {
        (true, code) => code,
        (
            false,
            UnsupportedProtocolVersion
            | ClientIdentifierNotValid
            | ServerUnavailable
            | BadUserNameOrPassword
            | NotAuthorized,
        ) => code,
        (false, _) => ServerUnavailable,
    }
}

async fn refuse(
    engine: &Engine,
    writer: &mut OwnedWriteHalf,
    client: &Client,
    code: ReasonCode,
    message: &str,
) {
    let protocol = client.protocol();
    let ack = ConnAck::new(connack_code(protocol, code), false);
    send_now(writer, protocol, &Packet::ConnAck(ack.clone())).await;
    engine.event(EventKind::ConnackSent, || {
        Event::ConnackSent(client.clone(), ack)
    });
    engine.event(EventKind::ConnectionError, || {
        Event::ConnectionError(client.clone(), message.to_owned())
    });
    tracing::debug!(?code, message, "connection refused");
}

/// Writes one packet before the connection is established, then closes.
async fn send_now(writer: &mut OwnedWriteHalf, protocol: Protocol, packet: &Packet) {
    let mut buf = BytesMut::new();
    if pigeon_codec::encode(packet, protocol, &mut buf).is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), writer.write_all(&buf)).await;
    }
    let _ = writer.shutdown().await;
}
