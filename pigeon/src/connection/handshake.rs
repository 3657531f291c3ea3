//! CONNECT: timeout, client-id rules, pre-connect and authenticate hooks (with
//! early packets buffered up to `queue_limit`), refusals; then `establish`.

use std::{sync::Arc, time::Duration};

use bytes::BytesMut;
use futures_util::StreamExt;
use pigeon_codec::{ConnAck, Connect, DecodeError, MqttCodec, Packet, Protocol, ReasonCode};
use tokio::io::AsyncWriteExt;
use tokio_util::codec::FramedRead;

use super::{ByteStream, Connection, Reader};
use crate::hooks::guard;
use crate::{
    config::Config,
    engine::Engine,
    hooks::{AuthError, Client, Credential, Event, EventKind, Peer},
};

/// The connection ends during the handshake: refused (CONNACK sent) or
/// given up on (timeout, closed socket, shutdown).
struct Ended;

/// What the steps of one handshake share.
struct Handshake<'a> {
    engine: &'a Arc<Engine>,
    /// The client's stream, read and written through it.
    reader: &'a mut Reader,
    peer: &'a Peer,
    /// The client's Maximum Packet Size as CONNECT said it (before any
    /// pre_connect rewrite), which a refusing CONNACK respects too.
    limit: Option<u32>,
    /// The protocol version CONNECT said (pre_connect cannot change it).
    protocol: Protocol,
}

/// How a handshake ends.
pub(super) enum Accepted {
    /// Connected: CONNACK is in its write buffer.
    Established(Box<Connection>),
    /// Refused (CONNACK sent, the writing side shut down): the close lingers.
    Refused(Reader),
    /// Given up on (timeout, closed socket, shutdown).
    Gone,
}

/// Reads and handles CONNECT.
pub(super) async fn accept(engine: &Arc<Engine>, mut reader: Reader, peer: &Peer) -> Accepted {
    let Some((connect, client, assigned, buffered)) = negotiate(engine, &mut reader, peer).await
    else {
        return Accepted::Refused(reader);
    };
    match super::establish::establish(engine, connect, client, assigned, reader, buffered).await {
        Some(conn) => Accepted::Established(conn),
        None => Accepted::Gone,
    }
}

/// What a CONNECT that passed every check leaves for `establish`.
type Negotiated = (Connect, Client, Option<String>, Vec<Packet>);

/// CONNECT, its checks and hooks; `None` when the connection ends here.
async fn negotiate(engine: &Arc<Engine>, reader: &mut Reader, peer: &Peer) -> Option<Negotiated> {
    let mut hs = Handshake {
        engine,
        reader,
        peer,
        limit: None,
        protocol: Protocol::V3_1_1,
    };
    let mut connect = hs.read_connect().await.ok()?;
    hs.limit = connect.properties.maximum_packet_size;
    hs.protocol = connect.protocol;
    if let Some(name) = peer.identity_username() {
        connect.username = Some(name.to_owned()); // use_identity_as_username
    }
    let assigned = hs.client_id_rules(&mut connect).await.ok()?;
    hs.pre_connect(&mut connect).await.ok()?;
    let client = hs.client(&connect);
    tracing::Span::current().record("client_id", client.id());
    let authenticated = hs.authenticate(&client, &mut connect).await;
    (hs.engine.stats.authentication).count(authenticated.is_ok());
    let buffered = authenticated.ok()?;
    hs.check_limits(&client, &connect).await.ok()?;
    Some((connect, client, assigned, buffered))
}

impl Handshake<'_> {
    /// The client as the hooks see it, by what CONNECT says now.
    fn client(&self, connect: &Connect) -> Client {
        let id = connect.client_id.clone();
        Client::with_peer(id, self.peer, connect.username.clone(), self.protocol)
    }

    /// Refuses the CONNECT (see [`refuse`]).
    async fn refuse(&mut self, client: &Client, code: ReasonCode, message: &str) -> Ended {
        refuse(
            self.engine,
            self.reader.get_mut(),
            client,
            self.limit,
            code,
            message,
        )
        .await;
        Ended
    }

    /// The first packet, which must be CONNECT, within `connect_timeout`.
    async fn read_connect(&mut self) -> Result<Connect, Ended> {
        let engine = self.engine;
        let anonymous = || Client::with_peer("", self.peer, None, Protocol::V3_1_1);
        let first = tokio::select! {
            _ = engine.shutdown.cancelled() => return Err(Ended),
            first = tokio::time::timeout(engine.config.connect_timeout, self.reader.next()) => first,
        };
        match first {
            Err(_) => {
                tracing::debug!("no CONNECT within connect_timeout");
                engine.event(EventKind::ConnectionError, || {
                    Event::ConnectionError(anonymous(), "connect timeout".into())
                });
                Err(Ended)
            }
            // The socket closed or failed before CONNECT: nothing to report.
            Ok(None) => Err(Ended),
            Ok(Some(Err(error))) if error.is_io() => Err(Ended),
            Ok(Some(Err(error))) => {
                tracing::debug!(%error, "bad first packet");
                if let Some(form) = unsupported_protocol_answer(&error) {
                    let ack = ConnAck::new(ReasonCode::UnsupportedProtocolVersion, false);
                    send_now(self.reader.get_mut(), form, &ack, None).await;
                }
                engine.event(EventKind::ConnectionError, || {
                    Event::ConnectionError(anonymous(), error.to_string())
                });
                Err(Ended)
            }
            Ok(Some(Ok(Packet::Connect(connect)))) => Ok(*connect),
            Ok(Some(Ok(_))) => Err(Ended),
        }
    }

    /// The client identifier rules: an empty one is assigned (and returned,
    /// for CONNACK) unless a 3.x client wants a persistent session; MQTT 3.1
    /// caps its length.
    async fn client_id_rules(&mut self, connect: &mut Connect) -> Result<Option<String>, Ended> {
        let protocol = self.protocol;
        if connect.client_id.is_empty() {
            if !connect.clean_start && !protocol.is_v5() {
                let client = self.client(connect);
                let why = "empty client id with a persistent session";
                let code = ReasonCode::ClientIdentifierNotValid;
                return Err(self.refuse(&client, code, why).await);
            }
            let id = format!("pigeon-{}", uuid::Uuid::new_v4().simple());
            connect.client_id = id.clone();
            return Ok(Some(id));
        }
        let max = self.engine.config.max_clients_id_length;
        if protocol == Protocol::V3_1 && connect.client_id.chars().count() > max {
            let client = self.client(connect);
            let why = "client id longer than max_clients_id_length";
            let code = ReasonCode::ClientIdentifierNotValid;
            return Err(self.refuse(&client, code, why).await);
        }
        Ok(None)
    }

    /// The pre_connect handlers, which may rewrite the CONNECT. A refusal is
    /// answered for MQTT 5.0, and for a handler's panic (server unavailable).
    async fn pre_connect(&mut self, connect: &mut Connect) -> Result<(), Ended> {
        let engine = self.engine;
        let pre = self.client(connect);
        let (code, message) = match guard(engine.hooks.pre_connect(&pre, connect)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => (ReasonCode::UnspecifiedError, error.0),
            Err(panic) => (ReasonCode::ServerUnavailable, panic),
        };
        engine.event(EventKind::ConnectionError, || {
            Event::ConnectionError(pre.clone(), message.clone())
        });
        let protocol = self.protocol;
        if protocol.is_v5() || code == ReasonCode::ServerUnavailable {
            let ack = ConnAck::new(connack_code(protocol, code), false);
            send_now(self.reader.get_mut(), protocol, &ack, self.limit).await;
        }
        Err(Ended)
    }

    /// allow_anonymous and the password file (crate::auth), then the
    /// authenticate handlers or the MQTT 5.0 enhanced authentication (an AUTH
    /// exchange before CONNACK, whose final data CONNACK carries). Returns
    /// what the client sent meanwhile.
    async fn authenticate(
        &mut self,
        client: &Client,
        connect: &mut Connect,
    ) -> Result<Vec<Packet>, Ended> {
        let engine = self.engine;
        let credential = Credential {
            username: connect.username.clone(),
            password: connect.password.clone(),
        };
        if let Err(refusal) = engine.authenticator.check(&credential).await {
            let code = refusal.reason_code(self.protocol);
            return Err(self.refuse(client, code, refusal.message()).await);
        }
        if self.protocol.is_v5() && connect.properties.authentication_method.is_some() {
            let p = &mut connect.properties;
            let reader = &mut *self.reader;
            let data = super::auth::on_connect(engine, reader, client, &credential, p)
                .await
                .ok_or(Ended)?;
            p.authentication_data = data;
            return Ok(Vec::new());
        }
        let mut buffered = Vec::new();
        let (code, message) = match self
            .authenticate_reading(client, &credential, &mut buffered)
            .await?
        {
            Ok(Ok(())) => return Ok(buffered),
            Ok(Err(error)) => (error.reason, error.message),
            Err(panic) => (ReasonCode::ServerUnavailable, panic),
        };
        Err(self.refuse(client, code, &message).await)
    }

    /// Runs the authenticate handlers, buffering what the client sends
    /// meanwhile (up to `queue_limit`).
    async fn authenticate_reading(
        &mut self,
        client: &Client,
        credential: &Credential,
        buffered: &mut Vec<Packet>,
    ) -> Result<Result<Result<(), AuthError>, String>, Ended> {
        let engine = self.engine;
        let auth = guard(engine.hooks.authenticate(client, credential));
        tokio::pin!(auth);
        loop {
            tokio::select! {
                result = &mut auth => return Ok(result),
                packet = self.reader.next() => match packet {
                    Some(Ok(packet)) if buffered.len() < engine.config.queue_limit => buffered.push(packet),
                    Some(Ok(_)) => {
                        engine.event(EventKind::ConnectionError, || {
                            Event::ConnectionError(client.clone(), "Client queue limit reached".into())
                        });
                        tracing::debug!("Client queue limit reached");
                        return Err(Ended);
                    }
                    _ => return Err(Ended),
                },
                _ = engine.shutdown.cancelled() => return Err(Ended),
            }
        }
    }

    /// What an authenticated CONNECT may still be refused for: a 3.x keep
    /// alive above `max_keepalive`, a will the broker could not publish as
    /// asked, or (MQTT 5.0) another server to use.
    async fn check_limits(&mut self, client: &Client, connect: &Connect) -> Result<(), Ended> {
        if let Some((code, message)) = beyond_limits(&self.engine.config, self.protocol, connect) {
            return Err(self.refuse(client, code, message).await);
        }
        let protocol = self.protocol;
        if let (true, Some(reference)) = (protocol.is_v5(), &self.engine.config.server_reference) {
            let mut ack = ConnAck::new(ReasonCode::UseAnotherServer, false);
            ack.properties.server_reference = Some(reference.clone());
            send_now(self.reader.get_mut(), protocol, &ack, self.limit).await;
            return Err(Ended);
        }
        Ok(())
    }
}

/// The CONNACK code and reason that refuse a CONNECT the broker's limits
/// do not allow, if any.
fn beyond_limits(
    config: &Config,
    protocol: Protocol,
    connect: &Connect,
) -> Option<(ReasonCode, &'static str)> {
    let max_keepalive = config.max_keepalive;
    if !protocol.is_v5()
        && max_keepalive > 0
        && (connect.keep_alive == 0 || connect.keep_alive > max_keepalive)
    {
        // 3.x cannot be told the server's keep alive: refused with "identifier
        // rejected", as Mosquitto does with max_keepalive.
        return Some((
            ReasonCode::ClientIdentifierNotValid,
            "keep alive above max_keepalive (MQTT 3.x cannot be told the maximum)",
        ));
    }
    let will = connect.will.as_ref().filter(|_| protocol.is_v5())?;
    // MQTT-3.2.2-12/-13: a will the broker could not publish as asked.
    if will.qos > config.maximum_qos {
        Some((ReasonCode::QoSNotSupported, "will QoS above the maximum"))
    } else if will.retain && !config.retain_available {
        Some((
            ReasonCode::RetainNotSupported,
            "retained will, retain not available",
        ))
    } else {
        None
    }
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
    stream: &mut ByteStream,
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
    send_now(stream, protocol, &ack, limit).await;
    engine.event(EventKind::ConnackSent, || {
        Event::ConnackSent(client.clone(), ack)
    });
    engine.event(EventKind::ConnectionError, || {
        Event::ConnectionError(client.clone(), message.to_owned())
    });
    tracing::info!(client_id = client.id(), addr = %client.addr(), ?code, message, "connection refused");
}

/// Writes CONNACK before the connection is established, then closes.
async fn send_now(stream: &mut ByteStream, protocol: Protocol, ack: &ConnAck, limit: Option<u32>) {
    let limit = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let mut buf = BytesMut::new();
    let mut encoded =
        pigeon_codec::encode(&Packet::ConnAck(Box::new(ack.clone())), protocol, &mut buf);
    if encoded.is_ok() && buf.len() > limit {
        buf.clear();
        encoded = pigeon_codec::encode(&Packet::ConnAck(Box::new(bare(ack))), protocol, &mut buf);
    }
    if encoded.is_ok() && buf.len() <= limit {
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&buf)).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.flush()).await;
    }
    // The writing side only: a lingering close still reads.
    let _ = stream.shutdown().await;
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
pub(crate) async fn refuse_busy(engine: &Engine, stream: ByteStream) {
    let mut reader = FramedRead::new(stream, MqttCodec::new(engine.config.max_packet_size));
    let wait = engine.config.connect_timeout.min(BUSY_WAIT);
    let first = tokio::select! {
        _ = engine.shutdown.cancelled() => None,
        first = tokio::time::timeout(wait, reader.next()) => first.ok().flatten(),
    };
    let Some(Ok(Packet::Connect(connect))) = first else {
        let _ = reader.get_mut().shutdown().await;
        return;
    };
    let protocol = connect.protocol;
    let mut ack = ConnAck::new(connack_code(protocol, ReasonCode::QuotaExceeded), false);
    if protocol.is_v5() && connect.properties.request_problem_information != Some(false) {
        ack.properties.reason_string = Some("too many connections (max_connections)".into());
    }
    let limit = connect.properties.maximum_packet_size;
    send_now(reader.get_mut(), protocol, &ack, limit).await;
}
