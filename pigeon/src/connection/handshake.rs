//! CONNECT: timeout, client-id rules, pre-connect and authenticate hooks (with
//! early packets buffered up to `queue_limit`), refusals; then `establish`.

use std::{sync::Arc, time::Duration};

use bytes::BytesMut;
use futures_util::StreamExt;
use pigeon_codec::{ConnAck, DecodeError, MqttCodec, Packet, Protocol, ReasonCode};
use tokio::io::AsyncWriteExt;
use tokio_util::codec::FramedRead;

use super::{Connection, ReadHalf, Reader, WriteHalf};
use crate::hooks::guard;
use crate::{
    engine::Engine,
    hooks::{Client, Credential, Event, EventKind, Peer},
};

/// Reads and handles CONNECT. `None` when the connection ends here.
pub(super) async fn accept(
    engine: &Arc<Engine>,
    reader: &mut Reader,
    mut writer: WriteHalf,
    addr: &Peer,
) -> Option<(Connection, Vec<Packet>)> {
    let anonymous = || Client::with_peer("", addr, None, Protocol::V3_1_1);
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
        // The socket closed or failed before CONNECT: nothing to report.
        Ok(None) => return None,
        Ok(Some(Err(error))) if error.is_io() => return None,
        Ok(Some(Err(error))) => {
            tracing::debug!(%error, "bad first packet");
            if let Some(form) = unsupported_protocol_answer(&error) {
                let ack = ConnAck::new(ReasonCode::UnsupportedProtocolVersion, false);
                send_now(&mut writer, form, &ack, None).await;
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
    // The client's Maximum Packet Size, which a refusing CONNACK respects too.
    let limit = connect.properties.maximum_packet_size;
    if let Some(name) = addr.identity_username() {
        connect.username = Some(name.to_owned()); // use_identity_as_username
    }

    // Client identifier rules.
    let mut assigned = None;
    if connect.client_id.is_empty() {
        if !connect.clean_start && !protocol.is_v5() {
            let client = Client::with_peer("", addr, connect.username.clone(), protocol);
            refuse(
                engine,
                &mut writer,
                &client,
                limit,
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
        let client = Client::with_peer(
            connect.client_id.clone(),
            addr,
            connect.username.clone(),
            protocol,
        );
        refuse(
            engine,
            &mut writer,
            &client,
            limit,
            ReasonCode::ClientIdentifierNotValid,
            "client id longer than max_clients_id_length",
        )
        .await;
        return None;
    }

    // pre_connect may rewrite the CONNECT.
    let pre = Client::with_peer(
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
            send_now(&mut writer, protocol, &ack, limit).await;
        }
        return None;
    }

    let client = Client::with_peer(
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

    // allow_anonymous and the password file (crate::auth) come before the handlers.
    if let Err(refusal) = engine.authenticator.check(&credential).await {
        let code = refusal.reason_code(protocol);
        refuse(engine, &mut writer, &client, limit, code, refusal.message()).await;
        return None;
    }

    // MQTT 5.0 enhanced authentication: an AUTH exchange before CONNACK, whose
    // final data CONNACK carries.
    let enhanced = protocol.is_v5() && connect.properties.authentication_method.is_some();
    if enhanced {
        let p = &mut connect.properties;
        let data =
            super::auth::on_connect(engine, reader, &mut writer, &client, &credential, p).await?;
        p.authentication_data = data;
    }

    // Authenticate, buffering what the client sends meanwhile (up to queue_limit).
    let mut buffered = Vec::new();
    let auth = if enhanced {
        Ok(Ok(()))
    } else {
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
            refuse(
                engine,
                &mut writer,
                &client,
                limit,
                error.reason,
                &error.message,
            )
            .await;
            return None;
        }
        Err(panic) => {
            refuse(
                engine,
                &mut writer,
                &client,
                limit,
                ReasonCode::ServerUnavailable,
                &panic,
            )
            .await;
            return None;
        }
    }
    let max_keepalive = engine.config.max_keepalive;
    if !protocol.is_v5()
        && max_keepalive > 0
        && (connect.keep_alive == 0 || connect.keep_alive > max_keepalive)
    {
        // 3.x cannot be told the server's keep alive: refused with "identifier
        // rejected", as Mosquitto does with max_keepalive.
        refuse(
            engine,
            &mut writer,
            &client,
            limit,
            ReasonCode::ClientIdentifierNotValid,
            "keep alive above max_keepalive (MQTT 3.x cannot be told the maximum)",
        )
        .await;
        return None;
    }
    if let (true, Some(will)) = (protocol.is_v5(), &connect.will) {
        // MQTT-3.2.2-12/-13: a will the broker could not publish as asked.
        let refusal = if will.qos > engine.config.maximum_qos {
            Some((ReasonCode::QoSNotSupported, "will QoS above the maximum"))
        } else if will.retain && !engine.config.retain_available {
            Some((
                ReasonCode::RetainNotSupported,
                "retained will, retain not available",
            ))
        } else {
            None
        };
        if let Some((code, message)) = refusal {
            refuse(engine, &mut writer, &client, limit, code, message).await;
            return None;
        }
    }
    if let (true, Some(reference)) = (protocol.is_v5(), &engine.config.server_reference) {
        let mut ack = ConnAck::new(ReasonCode::UseAnotherServer, false);
        ack.properties.server_reference = Some(reference.clone());
        send_now(&mut writer, protocol, &ack, limit).await;
        return None;
    }

    super::establish::establish(engine, connect, client, assigned, writer)
        .await
        .map(|conn| (conn, buffered))
}

/// The form of the CONNACK 0x84 that refuses an unsupported protocol: a level
/// above 5 is answered as MQTT 5.0 does (reason code 0x84), older levels and
/// unknown names in the 3.1.1 form they can read (return code 1).
fn unsupported_protocol_answer(error: &DecodeError) -> Option<Protocol> {
    match error {
        DecodeError::UnsupportedProtocolLevel(level) if *level > 5 => Some(Protocol::V5),
        DecodeError::UnsupportedProtocolLevel(_) | DecodeError::InvalidProtocolName(_) => {
            Some(Protocol::V3_1_1)
        }
        _ => None,
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

/// Refuses the CONNECT with CONNACK `code` (a reason string with `message`
/// for MQTT 5.0, within the client's Maximum Packet Size `limit`).
pub(super) async fn refuse(
    engine: &Engine,
    writer: &mut WriteHalf,
    client: &Client,
    limit: Option<u32>,
    code: ReasonCode,
    message: &str,
) {
    let protocol = client.protocol();
    let mut ack = ConnAck::new(connack_code(protocol, code), false);
    if protocol.is_v5() && code != ReasonCode::ServerUnavailable && !message.is_empty() {
        // CONNACK may always carry a reason string; a handler's panic text stays in the logs.
        ack.properties.reason_string = Some(message.to_owned());
    }
    send_now(writer, protocol, &ack, limit).await;
    engine.event(EventKind::ConnackSent, || {
        Event::ConnackSent(client.clone(), ack)
    });
    engine.event(EventKind::ConnectionError, || {
        Event::ConnectionError(client.clone(), message.to_owned())
    });
    tracing::debug!(?code, message, "connection refused");
}

/// Writes CONNACK before the connection is established, then closes.
async fn send_now(writer: &mut WriteHalf, protocol: Protocol, ack: &ConnAck, limit: Option<u32>) {
    let limit = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let mut buf = BytesMut::new();
    let mut encoded = pigeon_codec::encode(&Packet::ConnAck(ack.clone()), protocol, &mut buf);
    if encoded.is_ok() && buf.len() > limit {
        buf.clear();
        encoded = pigeon_codec::encode(&Packet::ConnAck(bare(ack)), protocol, &mut buf);
    }
    if encoded.is_ok() && buf.len() <= limit {
        let _ = tokio::time::timeout(Duration::from_secs(1), writer.write_all(&buf)).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), writer.flush()).await;
    }
    let _ = writer.shutdown().await;
}

/// CONNACK without its reason string and user properties, the properties
/// left out when the client's Maximum Packet Size cannot hold them
/// [MQTT-3.2.2-19, MQTT-3.2.2-20].
pub(super) fn bare(ack: &ConnAck) -> ConnAck {
    let mut bare = ack.clone();
    bare.properties.reason_string = None;
    bare.properties.user_properties = Default::default();
    bare
}

/// How long a connection over `max_connections` is given to send its CONNECT
/// so that it can be told why it is refused; short, as it holds a descriptor.
const BUSY_WAIT: Duration = Duration::from_secs(1);

/// Refuses a connection over `max_connections`: CONNACK 0x97 Quota exceeded
/// (MQTT 3.x: 0x03 Server unavailable) if a CONNECT arrives within a moment,
/// then closes. Nothing else of the broker is touched.
pub(crate) async fn refuse_busy(engine: &Engine, read: ReadHalf, mut writer: WriteHalf) {
    let mut reader = FramedRead::new(read, MqttCodec::new(engine.config.max_packet_size));
    let wait = engine.config.connect_timeout.min(BUSY_WAIT);
    let first = tokio::select! {
        _ = engine.shutdown.cancelled() => None,
        first = tokio::time::timeout(wait, reader.next()) => first.ok().flatten(),
    };
    let Some(Ok(Packet::Connect(connect))) = first else {
        let _ = writer.shutdown().await;
        return;
    };
    let protocol = connect.protocol;
    let mut ack = ConnAck::new(connack_code(protocol, ReasonCode::QuotaExceeded), false);
    if protocol.is_v5() && connect.properties.request_problem_information != Some(false) {
        ack.properties.reason_string = Some("too many connections (max_connections)".into());
    }
    let limit = connect.properties.maximum_packet_size;
    send_now(&mut writer, protocol, &ack, limit).await;
}
