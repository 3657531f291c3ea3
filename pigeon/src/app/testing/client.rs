//! The test client: an MQTT 3.1.1 / 5 client over a real TCP socket, made
//! for assertions (`expect_message`, `expect_disconnect`) rather than for
//! production use (no reconnect, no persistence).

use std::{
    fmt,
    future::{Future, IntoFuture},
    net::SocketAddr,
    pin::Pin,
    time::Duration,
};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use pigeon_codec::{
    Auth, AuthProperties, ConnAck, Connect, ConnectProperties, Disconnect, MqttCodec, Packet,
    Protocol, Publish, PublishProperties, QoS, ReasonCode, SubscribeFilter, Will,
};
use tokio::{
    net::TcpStream,
    sync::{mpsc, oneshot, watch, Mutex},
    task::JoinHandle,
};
use tokio_util::codec::Framed;

use super::{
    conn::{Command, Driver},
    error::{ClientError, Closed},
};

/// The largest packet the test client reads (the broker's own limit is
/// usually lower): a test may well send large payloads.
const MAX_PACKET: usize = 64 * 1024 * 1024;

/// Options of a [`TestClient`], set before [`connect`](ClientBuilder::connect).
///
/// Made by [`TestApp::client`](super::TestApp::client) (or
/// [`ClientBuilder::new`] for any address). Defaults: MQTT 5, clean start,
/// keep alive 60 s, no credentials, no will; each operation waits up to 5 s
/// for the broker's answer; up to 256 received messages are held unread.
///
/// ```no_run
/// # use pigeon::{codec::QoS, testing::ClientBuilder};
/// # use std::time::Duration;
/// # async fn demo(addr: std::net::SocketAddr) -> Result<(), pigeon::testing::ClientError> {
/// let device = ClientBuilder::new(addr, "device-1")
///     .v311()
///     .credentials("alice", "secret")
///     .clean_start(false)
///     .keep_alive(Duration::from_secs(30))
///     .will("devices/1/status", "offline")
///     .connect()
///     .await?;
/// # let _ = device; Ok(()) }
/// ```
#[must_use = "a client builder does nothing until `.connect().await`"]
pub struct ClientBuilder {
    addr: SocketAddr,
    connect: Connect,
    timeout: Duration,
    capacity: usize,
    /// Answers the broker's AUTH challenges (MQTT 5 enhanced authentication).
    respond: Option<Responder>,
}

/// What a client answers to each AUTH challenge's data.
type Responder = Box<dyn FnMut(&[u8]) -> Bytes + Send>;

impl ClientBuilder {
    /// A client `id` for the broker at `addr`.
    pub fn new(addr: SocketAddr, id: impl Into<String>) -> Self {
        Self {
            addr,
            connect: Connect::new(Protocol::V5, id),
            timeout: Duration::from_secs(5),
            capacity: 256,
            respond: None,
        }
    }

    /// MQTT 5 enhanced authentication: CONNECT carries `method` and `data`,
    /// and each AUTH challenge (0x18) the broker sends before its CONNACK is
    /// answered with AUTH 0x18 carrying `respond(challenge data)`.
    ///
    /// ```no_run
    /// # use pigeon::testing::ClientBuilder;
    /// # async fn demo(addr: std::net::SocketAddr) -> Result<(), pigeon::testing::ClientError> {
    /// let client = ClientBuilder::new(addr, "c1")
    ///     .enhanced_auth("TOKEN", "first", |challenge| {
    ///         assert_eq!(challenge, b"again?");
    ///         "good".into()
    ///     })
    ///     .connect()
    ///     .await?;
    /// assert_eq!(client.connack().properties.authentication_method.as_deref(), Some("TOKEN"));
    /// # Ok(()) }
    /// ```
    pub fn enhanced_auth(
        mut self,
        method: impl Into<String>,
        data: impl Into<Bytes>,
        respond: impl FnMut(&[u8]) -> Bytes + Send + 'static,
    ) -> Self {
        self.connect.properties.authentication_method = Some(method.into());
        self.connect.properties.authentication_data = Some(data.into());
        self.respond = Some(Box::new(respond));
        self
    }

    /// Speaks MQTT 5 (the default).
    pub fn v5(self) -> Self {
        self.protocol(Protocol::V5)
    }

    /// Speaks MQTT 3.1.1: no properties, and refusals carry only a return code.
    pub fn v311(self) -> Self {
        self.protocol(Protocol::V3_1_1)
    }

    /// Speaks `protocol` (MQTT 3.1 too).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.connect.protocol = protocol;
        self
    }

    /// Sends a user name.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.connect.username = Some(username.into());
        self
    }

    /// Sends a password (bytes: MQTT passwords are binary).
    pub fn password(mut self, password: impl Into<Bytes>) -> Self {
        self.connect.password = Some(password.into());
        self
    }

    /// Sends a user name and a password.
    pub fn credentials(self, username: impl Into<String>, password: impl Into<Bytes>) -> Self {
        self.username(username).password(password)
    }

    /// Clean start (MQTT 5) / clean session (3.1.1); `true` by default.
    /// `false` resumes the session the broker kept for this client id.
    pub fn clean_start(mut self, clean: bool) -> Self {
        self.connect.clean_start = clean;
        self
    }

    /// The keep alive sent in CONNECT (whole seconds, at most 65535; zero
    /// turns it off). The client pings after that long without sending.
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.connect.keep_alive = u16::try_from(keep_alive.as_secs()).unwrap_or(u16::MAX);
        self
    }

    /// A will: `payload` on `topic` at QoS 0, not retained, published by the
    /// broker if the connection ends without DISCONNECT
    /// ([`TestClient::drop_connection`]).
    pub fn will(self, topic: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        self.will_with(Will {
            topic: topic.into(),
            payload: payload.into(),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Default::default(),
        })
    }

    /// A will with its QoS, retain flag and (MQTT 5) properties.
    pub fn will_with(mut self, will: Will) -> Self {
        self.connect.will = Some(will);
        self
    }

    /// MQTT 5 Session Expiry Interval: how long the broker keeps the session
    /// after the connection ends (`u32::MAX` seconds: never expires).
    pub fn session_expiry(mut self, expiry: Duration) -> Self {
        let secs = u32::try_from(expiry.as_secs()).unwrap_or(u32::MAX);
        self.connect.properties.session_expiry_interval = Some(secs);
        self
    }

    /// Adds an MQTT 5 user property to CONNECT.
    pub fn user_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let pair = (name.into(), value.into());
        self.connect.properties.user_properties.push(pair);
        self
    }

    /// Every MQTT 5 CONNECT property at once (replacing those set before),
    /// e.g. a receive maximum or a topic alias maximum.
    pub fn properties(mut self, properties: ConnectProperties) -> Self {
        self.connect.properties = properties;
        self
    }

    /// How long each operation (connect, subscribe, a QoS 1/2 publish, ...)
    /// waits for the broker's answer; 5 s by default.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many received messages are held until taken by
    /// [`TestClient::expect_message`] (256 by default). When they are all
    /// there, the client stops reading the socket, as a slow subscriber does,
    /// and the broker slows the publishers.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Connects, sends CONNECT and waits for CONNACK.
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`] with the CONNACK's code when the broker
    /// refuses (e.g. an `#[on_authenticate]` handler's `AuthError`):
    /// "connect of `c1` refused: 0x86 bad user name or password";
    /// [`ClientError::NeedsV5`] for MQTT 5 properties on a 3.x client; a
    /// timeout, I/O or protocol error naming the client otherwise.
    pub async fn connect(self) -> Result<TestClient, ClientError> {
        let id = self.connect.client_id.clone();
        let protocol = self.connect.protocol;
        let op = format!("connect of `{id}`");
        if !protocol.is_v5() {
            let will_props = self.connect.will.as_ref().map(|w| &w.properties);
            if self.connect.properties != ConnectProperties::default()
                || will_props.is_some_and(|p| *p != Default::default())
            {
                return Err(ClientError::NeedsV5 {
                    op,
                    what: "CONNECT properties (session expiry, user properties, ...)",
                });
            }
        }
        let keep_alive = self.connect.keep_alive;
        let timeout = self.timeout;
        let method = self.connect.properties.authentication_method.clone();
        let mut respond = self.respond;
        let handshake = async {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|source| ClientError::Io {
                    op: format!("{op} to {}", self.addr),
                    source,
                })?;
            let _ = stream.set_nodelay(true);
            let mut framed = Framed::new(stream, MqttCodec::new(MAX_PACKET));
            framed
                .send(&Packet::Connect(Box::new(self.connect)))
                .await
                .map_err(|e| ClientError::Protocol {
                    op: op.clone(),
                    detail: format!("sending CONNECT: {e}"),
                })?;
            let mut answer = framed.next().await;
            while let Some(Ok(Packet::Auth(challenge))) = &answer {
                let (Some(respond), ReasonCode::ContinueAuthentication) =
                    (respond.as_mut(), challenge.reason_code)
                else {
                    return Err(ClientError::Protocol {
                        op: op.clone(),
                        detail: format!(
                            "the broker answered with AUTH {:?}; give the client \
                             `.enhanced_auth(method, data, respond)` to answer challenges",
                            challenge.reason_code
                        ),
                    });
                };
                let data = challenge.properties.authentication_data.as_deref();
                let reply = Auth {
                    reason_code: ReasonCode::ContinueAuthentication,
                    properties: AuthProperties {
                        authentication_method: method.clone(),
                        authentication_data: Some(respond(data.unwrap_or_default())),
                        ..Default::default()
                    },
                };
                framed
                    .send(&Packet::Auth(Box::new(reply)))
                    .await
                    .map_err(|e| ClientError::Protocol {
                        op: op.clone(),
                        detail: format!("sending AUTH: {e}"),
                    })?;
                answer = framed.next().await;
            }
            match answer {
                Some(Ok(Packet::ConnAck(ack))) if ack.reason_code.is_error() => {
                    Err(ClientError::Refused {
                        op: op.clone(),
                        code: ack.reason_code,
                        reason: ack.properties.reason_string,
                    })
                }
                Some(Ok(Packet::ConnAck(ack))) => Ok((framed, *ack)),
                Some(Ok(other)) => Err(ClientError::Protocol {
                    op: op.clone(),
                    detail: format!("expected CONNACK, got {:?}", other.packet_type()),
                }),
                Some(Err(e)) => Err(ClientError::Protocol {
                    op: op.clone(),
                    detail: format!("unreadable answer to CONNECT: {e}"),
                }),
                None => Err(ClientError::Closed {
                    op: op.clone(),
                    closed: Closed {
                        code: None,
                        reason: None,
                    },
                }),
            }
        };
        let (framed, connack) =
            tokio::time::timeout(timeout, handshake)
                .await
                .map_err(|_| ClientError::Timeout {
                    op: op.clone(),
                    awaited: "CONNACK",
                    timeout,
                })??;
        // The broker's Server Keep Alive overrides ours (MQTT 5 §3.2.2.3.14).
        let keep_alive = connack.properties.server_keep_alive.unwrap_or(keep_alive);
        let (commands_tx, commands) = mpsc::channel(16);
        let (messages, messages_rx) = mpsc::channel(self.capacity);
        let (closed, closed_rx) = watch::channel(None);
        let driver = Driver {
            framed,
            commands,
            messages,
            closed,
            keep_alive: (keep_alive > 0).then(|| Duration::from_secs(keep_alive.into())),
        };
        let task = tokio::spawn(driver.run());
        Ok(TestClient {
            id,
            protocol,
            connack,
            timeout,
            commands: commands_tx,
            messages: Mutex::new(messages_rx),
            closed: closed_rx,
            task,
        })
    }
}

/// A connected MQTT client for tests, from
/// [`TestApp::client`](super::TestApp::client)`("id").connect().await`.
///
/// Its own task reads the socket: it acknowledges QoS 1 and 2 deliveries,
/// answers and sends pings, and keeps received messages (in order) for
/// [`expect_message`](Self::expect_message). Dropping the client closes the
/// socket without DISCONNECT.
///
/// ```no_run
/// # use pigeon::{codec::QoS, testing::TestApp};
/// # use std::time::Duration;
/// # async fn demo(app: TestApp) -> Result<(), pigeon::testing::ClientError> {
/// let sub = app.client("sub").connect().await?;
/// sub.subscribe("alerts/#", QoS::AtLeastOnce).await?;
/// let publisher = app.client("pub").v311().connect().await?;
/// publisher.publish("alerts/1", "hot").await?;
/// let message = sub.expect_message(Duration::from_secs(1)).await;
/// assert_eq!((message.topic.as_str(), message.text()), ("alerts/1", "hot"));
/// # Ok(()) }
/// ```
pub struct TestClient {
    id: String,
    protocol: Protocol,
    connack: ConnAck,
    timeout: Duration,
    commands: mpsc::Sender<Command>,
    messages: Mutex<mpsc::Receiver<Message>>,
    closed: watch::Receiver<Option<Closed>>,
    task: JoinHandle<()>,
}

impl Drop for TestClient {
    fn drop(&mut self) {
        // The socket closes with the task: the broker sees the connection
        // lost (and publishes the will).
        self.task.abort();
    }
}

impl fmt::Debug for TestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestClient")
            .field("id", &self.id)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl TestClient {
    /// The client id it connected with.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The protocol it speaks.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The broker's CONNACK (its properties: assigned client id, limits, ...).
    pub fn connack(&self) -> &ConnAck {
        &self.connack
    }

    /// True when the broker resumed a session it kept for this client id.
    pub fn session_present(&self) -> bool {
        self.connack.session_present
    }

    /// True until the connection ended.
    pub fn is_connected(&self) -> bool {
        self.closed.borrow().is_none()
    }

    /// Subscribes to `filter` at `qos` and waits for the SUBACK; returns the
    /// QoS the broker granted.
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`] when the broker refuses the filter (e.g. an
    /// `#[on_authorize_subscribe]` handler's `Denied`: 0x87 in MQTT 5, 0x80
    /// in 3.1.1); a timeout or a closed connection otherwise.
    pub async fn subscribe(&self, filter: impl Into<String>, qos: QoS) -> Result<QoS, ClientError> {
        self.subscribe_with(SubscribeFilter::new(filter, qos)).await
    }

    /// As [`subscribe`](Self::subscribe), with every subscription option
    /// (MQTT 5 no local, retain as published, retain handling).
    pub async fn subscribe_with(&self, filter: SubscribeFilter) -> Result<QoS, ClientError> {
        let op = format!("subscribe of `{}` to `{}`", self.id, filter.filter);
        let subscribe = pigeon_codec::Subscribe::new(0, vec![filter]);
        let ack = self
            .ask(&op, "SUBACK", |r| Command::Subscribe(subscribe, r))
            .await?;
        match ack.reason_codes.first() {
            Some(&code) if code.is_error() => Err(ClientError::Refused {
                op,
                code,
                reason: ack.properties.reason_string,
            }),
            Some(ReasonCode::GrantedQoS2) => Ok(QoS::ExactlyOnce),
            Some(ReasonCode::GrantedQoS1) => Ok(QoS::AtLeastOnce),
            Some(ReasonCode::Success) => Ok(QoS::AtMostOnce),
            other => Err(ClientError::Protocol {
                op,
                detail: format!("SUBACK with {other:?} for one filter"),
            }),
        }
    }

    /// Unsubscribes from `filter` and waits for the UNSUBACK.
    pub async fn unsubscribe(&self, filter: impl Into<String>) -> Result<(), ClientError> {
        let filter = filter.into();
        let op = format!("unsubscribe of `{}` from `{filter}`", self.id);
        let unsubscribe = pigeon_codec::Unsubscribe {
            packet_id: 0,
            filters: vec![filter],
            properties: Default::default(),
        };
        let ack = self
            .ask(&op, "UNSUBACK", |r| Command::Unsubscribe(unsubscribe, r))
            .await?;
        match ack.reason_codes.first() {
            Some(&code) if code.is_error() => Err(ClientError::Refused {
                op,
                code,
                reason: ack.properties.reason_string,
            }),
            _ => Ok(()),
        }
    }

    /// Publishes `payload` on `topic` at QoS 0, not retained; returns once
    /// it is written. Use [`publish_with`](Self::publish_with) for QoS 1/2,
    /// retain and properties.
    pub async fn publish(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
    ) -> Result<(), ClientError> {
        self.publish_with(topic, payload).await
    }

    /// A publish to set up, then `.await`:
    ///
    /// ```no_run
    /// # use pigeon::{codec::QoS, testing::TestClient};
    /// # async fn demo(client: TestClient) -> Result<(), pigeon::testing::ClientError> {
    /// client
    ///     .publish_with("rpc/users/get", r#"{"id":7}"#)
    ///     .qos(QoS::ExactlyOnce)
    ///     .response_topic("replies/c1")
    ///     .correlation_data("req-1")
    ///     .content_type("application/json")
    ///     .user_property("trace", "abc")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// At QoS 1 it completes with the PUBACK, at QoS 2 with the PUBCOMP: by
    /// then the broker has routed the message.
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`] for a failing PUBACK/PUBREC code (MQTT 5, e.g.
    /// 0x87 from an `#[on_authorize_publish]` handler's `Denied`);
    /// [`ClientError::NeedsV5`] for properties on a 3.x client.
    pub fn publish_with(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
    ) -> PublishBuilder<'_> {
        PublishBuilder {
            client: self,
            publish: Publish::new(topic.into(), QoS::AtMostOnce, payload.into()),
        }
    }

    async fn send_publish(&self, publish: Publish) -> Result<(), ClientError> {
        let op = format!(
            "publish of `{}` to `{}` at QoS {}",
            self.id,
            &*publish.topic,
            u8::from(publish.qos)
        );
        if !self.protocol.is_v5() && !publish.properties.is_empty() {
            return Err(ClientError::NeedsV5 {
                op,
                what: "PUBLISH properties",
            });
        }
        let awaited = match publish.qos {
            QoS::AtMostOnce => "write",
            QoS::AtLeastOnce => "PUBACK",
            QoS::ExactlyOnce => "PUBREC and PUBCOMP",
        };
        let reply = self
            .ask(&op, awaited, |r| Command::Publish(publish, r))
            .await?;
        match reply {
            Some(reply) if reply.reason_code.is_error() => Err(ClientError::Refused {
                op,
                code: reply.reason_code,
                reason: reply.properties.reason_string,
            }),
            _ => Ok(()),
        }
    }

    /// A PINGREQ/PINGRESP round trip. The broker reads a connection's packets
    /// in order, so when it returns the broker has read what this client sent
    /// before (a QoS 0 publish, say).
    pub async fn ping(&self) -> Result<(), ClientError> {
        let op = format!("ping of `{}`", self.id);
        self.ask(&op, "PINGRESP", Command::Ping).await
    }

    /// The next message received, waiting up to `timeout`.
    ///
    /// # Panics
    ///
    /// When none comes in time ("expected a message on client `c1` within
    /// 1s, got none"), or the connection ended first (the panic says how).
    pub async fn expect_message(&self, timeout: Duration) -> Message {
        let mut messages = self.messages.lock().await;
        match tokio::time::timeout(timeout, messages.recv()).await {
            Ok(Some(message)) => message,
            Ok(None) => panic!(
                "expected a message on client `{}` within {timeout:?}, but the connection ended: {}",
                self.id,
                self.ended()
            ),
            Err(_) => panic!(
                "expected a message on client `{}` within {timeout:?}, got none",
                self.id
            ),
        }
    }

    /// Waits `duration` and checks that no message came (nor is waiting);
    /// returns at once when the connection has ended with nothing left.
    ///
    /// # Panics
    ///
    /// When one did, naming its topic and payload.
    pub async fn expect_no_message(&self, duration: Duration) {
        let mut messages = self.messages.lock().await;
        if let Ok(Some(message)) = tokio::time::timeout(duration, messages.recv()).await {
            panic!(
                "expected no message on client `{}` for {duration:?}, got one on `{}`: {:?}",
                self.id, message.topic, message.payload
            );
        }
    }

    /// Waits up to `timeout` for the broker to end the connection, and says
    /// how: the DISCONNECT's code and reason string (MQTT 5), or none.
    ///
    /// # Panics
    ///
    /// When the client is still connected after `timeout`.
    pub async fn expect_disconnect(&self, timeout: Duration) -> Closed {
        let mut closed = self.closed.clone();
        let ended = async {
            let ended = closed.wait_for(Option::is_some).await;
            ended.map(|ended| (*ended).clone())
        };
        match tokio::time::timeout(timeout, ended).await {
            Ok(Ok(closed)) => closed.unwrap_or_else(|| self.ended()),
            // The task is gone without a word: it was aborted (cannot happen
            // while `self` lives) or panicked; report it as the end it is.
            Ok(Err(_)) => self.ended(),
            Err(_) => panic!(
                "expected the broker to disconnect client `{}` within {timeout:?}, \
                 it is still connected",
                self.id
            ),
        }
    }

    /// Sends DISCONNECT (normal disconnection: the broker discards the
    /// will) and waits for the broker to close the connection.
    pub async fn disconnect(self) -> Result<(), ClientError> {
        self.disconnect_with(ReasonCode::Success).await
    }

    /// Sends DISCONNECT with `code` (MQTT 5; e.g. 0x04 Disconnect with will
    /// message: the broker publishes the will) and waits for the broker to
    /// close the connection.
    pub async fn disconnect_with(self, code: ReasonCode) -> Result<(), ClientError> {
        let op = format!("disconnect of `{}`", self.id);
        if code != ReasonCode::Success && !self.protocol.is_v5() {
            return Err(ClientError::NeedsV5 {
                op,
                what: "DISCONNECT reason codes",
            });
        }
        let disconnect = Disconnect::new(code);
        self.ask(&op, "end of the connection", |r| {
            Command::Disconnect(disconnect, r)
        })
        .await
    }

    /// Closes the socket without DISCONNECT, as a device that lost power:
    /// the broker publishes the will.
    pub async fn drop_connection(self) {
        let (done, dropped) = oneshot::channel();
        if self.commands.send(Command::Drop(done)).await.is_ok() {
            let _ = dropped.await;
        }
    }

    /// Sends `command` and waits for its answer, within the client's timeout.
    async fn ask<T>(
        &self,
        op: &str,
        awaited: &'static str,
        command: impl FnOnce(super::conn::Reply<T>) -> Command,
    ) -> Result<T, ClientError> {
        let (reply, answer) = oneshot::channel();
        let closed = |client: &Self| ClientError::Closed {
            op: op.to_owned(),
            closed: client.ended(),
        };
        if self.commands.send(command(reply)).await.is_err() {
            return Err(closed(self));
        }
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(ended))) => Err(ClientError::Closed {
                op: op.to_owned(),
                closed: ended,
            }),
            Ok(Err(_)) => {
                // Dropped by a task that is ending: wait for it to say how.
                let mut ended = self.closed.clone();
                let _ = ended.wait_for(Option::is_some).await;
                Err(closed(self))
            }
            Err(_) => Err(ClientError::Timeout {
                op: op.to_owned(),
                awaited,
                timeout: self.timeout,
            }),
        }
    }

    /// How the connection ended (or a note that it did, if not recorded).
    fn ended(&self) -> Closed {
        self.closed.borrow().clone().unwrap_or(Closed {
            code: None,
            reason: Some("the client's connection task stopped".into()),
        })
    }
}

/// A publish being set up by [`TestClient::publish_with`]; `.await` sends it.
#[must_use = "a publish is sent only when awaited"]
pub struct PublishBuilder<'a> {
    client: &'a TestClient,
    publish: Publish,
}

impl PublishBuilder<'_> {
    /// The QoS (0 by default).
    pub fn qos(mut self, qos: QoS) -> Self {
        self.publish.qos = qos;
        self
    }

    /// The retain flag (`false` by default).
    pub fn retain(mut self, retain: bool) -> Self {
        self.publish.retain = retain;
        self
    }

    /// MQTT 5 Response Topic: where the receiver should answer.
    pub fn response_topic(mut self, topic: impl Into<String>) -> Self {
        self.publish.properties.make_mut().response_topic = Some(topic.into());
        self
    }

    /// MQTT 5 Correlation Data, echoed in the answer.
    pub fn correlation_data(mut self, data: impl Into<Bytes>) -> Self {
        self.publish.properties.make_mut().correlation_data = Some(data.into());
        self
    }

    /// MQTT 5 Content Type (e.g. `application/json`).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.publish.properties.make_mut().content_type = Some(content_type.into());
        self
    }

    /// Adds an MQTT 5 user property.
    pub fn user_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let pair = (name.into(), value.into());
        self.publish
            .properties
            .make_mut()
            .user_properties
            .push(pair);
        self
    }

    /// MQTT 5 Message Expiry Interval (whole seconds).
    pub fn message_expiry(mut self, expiry: Duration) -> Self {
        let secs = u32::try_from(expiry.as_secs()).unwrap_or(u32::MAX);
        self.publish.properties.make_mut().message_expiry_interval = Some(secs);
        self
    }

    /// Every MQTT 5 PUBLISH property at once (replacing those set before).
    pub fn properties(mut self, properties: PublishProperties) -> Self {
        self.publish.properties = properties.into();
        self
    }
}

impl<'a> IntoFuture for PublishBuilder<'a> {
    type Output = Result<(), ClientError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.client.send_publish(self.publish))
    }
}

/// A message a [`TestClient`] received.
///
/// ```
/// use pigeon::testing::Message;
/// let message = Message::new("sensors/1/temp", r#"{"celsius": 31.5}"#);
/// assert_eq!(message.text(), r#"{"celsius": 31.5}"#);
/// let value: serde_json::Value = message.json();
/// assert_eq!(value["celsius"], 31.5);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// The topic it was published on (a topic alias resolved).
    pub topic: String,
    /// The payload.
    pub payload: Bytes,
    /// The QoS it was delivered at.
    pub qos: QoS,
    /// The retain flag: set on a retained message sent for a new subscription.
    pub retain: bool,
    /// A re-delivery of a QoS 1/2 message sent before.
    pub dup: bool,
    /// MQTT 5 properties (response topic, correlation data, content type,
    /// user properties, ...); empty for 3.x.
    pub properties: PublishProperties,
}

impl Message {
    /// A QoS 0 message with no properties (to compare with, or for a test of
    /// code that takes messages).
    pub fn new(topic: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Self {
            topic: topic.into(),
            payload: payload.into(),
            qos: QoS::AtMostOnce,
            retain: false,
            dup: false,
            properties: PublishProperties::default(),
        }
    }

    pub(super) fn from_publish(topic: String, publish: Publish) -> Self {
        let mut properties = PublishProperties::from(publish.properties);
        // The alias is the wire's business; the topic above is resolved.
        properties.topic_alias = None;
        Self {
            topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            dup: publish.dup,
            properties,
        }
    }

    /// The payload as UTF-8 text.
    ///
    /// # Panics
    ///
    /// When it is not UTF-8 (the message names the topic).
    pub fn text(&self) -> &str {
        match std::str::from_utf8(&self.payload) {
            Ok(text) => text,
            Err(e) => panic!(
                "message on `{}`: the payload is not UTF-8 ({e}): {:?}",
                self.topic, self.payload
            ),
        }
    }

    /// The payload parsed as JSON into `T`.
    ///
    /// # Panics
    ///
    /// When it does not parse as a `T` (the message names the topic, the
    /// type, serde's error and the payload).
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        match serde_json::from_slice(&self.payload) {
            Ok(value) => value,
            Err(e) => panic!(
                "message on `{}`: the payload is not JSON of `{}` ({e}): {:?}",
                self.topic,
                std::any::type_name::<T>(),
                self.payload
            ),
        }
    }

    /// The MQTT 5 Response Topic.
    pub fn response_topic(&self) -> Option<&str> {
        self.properties.response_topic.as_deref()
    }

    /// The MQTT 5 Correlation Data.
    pub fn correlation_data(&self) -> Option<&[u8]> {
        self.properties.correlation_data.as_deref()
    }

    /// The MQTT 5 Content Type.
    pub fn content_type(&self) -> Option<&str> {
        self.properties.content_type.as_deref()
    }

    /// The value of the first MQTT 5 user property called `name`.
    pub fn user_property(&self, name: &str) -> Option<&str> {
        let properties = &self.properties.user_properties;
        properties
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::super::error::describe;
    use super::*;

    #[test]
    #[should_panic(expected = "message on `a/b`: the payload is not JSON of `u32`")]
    fn json_names_the_topic_and_type() {
        let _: u32 = Message::new("a/b", "not json").json();
    }

    #[test]
    #[should_panic(expected = "message on `a/b`: the payload is not UTF-8")]
    fn text_names_the_topic() {
        let _ = Message::new("a/b", &b"\xff\xfe"[..]).text();
    }

    #[test]
    fn refusal_reads_as_the_spec_names_it() {
        assert_eq!(
            describe(ReasonCode::NotAuthorized, None),
            "0x87 not authorized"
        );
    }
}
