//! One task per client connection: the CONNECT handshake, then a loop that
//! reads packets, writes replies and drains the session's queue within the
//! in-flight window, until the client leaves or is sent away.

mod auth;
mod buffers;
mod driver;
mod establish;
mod finish;
mod handshake;
mod inbound;
mod outbound;
mod park;
mod protocol;
mod rate;
mod reader;
mod subscribe;

pub(crate) use handshake::refuse_busy;

use std::{collections::VecDeque, pin::Pin, sync::Arc, time::Duration};

use bytes::BytesMut;
use futures_util::{FutureExt, StreamExt};
use pigeon_codec::{DecodeError, MqttCodec, Packet, ReasonCode, Will};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt},
    time::{Instant, Sleep},
};
use tokio_util::codec::Encoder;
use tracing::Instrument;

use crate::{
    engine::{Due, Engine, Session},
    hooks::{Client, Peer},
};

/// Any stream a connection can run over, after the transport's handshake.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    /// Whether this is a plain TCP socket (only those can park: see `park`).
    fn is_tcp(&self) -> bool;
    /// The stream as `Any`, to take a plain TCP socket back out of its box.
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send>;
}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {
    fn is_tcp(&self) -> bool {
        std::any::TypeId::of::<T>() == std::any::TypeId::of::<tokio::net::TcpStream>()
    }
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

/// A client's stream, whatever the transport: boxed once per connection, so
/// that nothing below names a concrete stream type. Not split in two: the
/// connection's one task reads and writes it with `&mut` access, so it needs
/// no `Arc` (`TcpStream::into_split`) or lock (`tokio::io::split`), and plain
/// TCP costs one allocation instead of three.
pub(crate) type ByteStream = Box<dyn Io>;
use reader::Reader;

/// Stop reading from a client (and draining its queue) while this many bytes
/// wait to be written to it: a client that does not read cannot grow memory.
const HIGH_WATER: usize = 64 * 1024;
/// Packets handled back to back, when already readable, before writing.
const READ_BURST: usize = 64;
/// Deliveries taken from the session queue per lock.
const BATCH: usize = 64;
/// Or'ed into the connection id for its parking deadline, so that the
/// watch keys it apart from its keep-alive deadline (ids count from 1).
const PARK_KEY: u64 = 1 << 63;

/// Serves one client over any byte stream (TLS, WebSocket, in-memory, ...).
pub(crate) async fn serve<S>(engine: Arc<Engine>, stream: S, peer: Peer)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    if let Some(open) = Box::pin(open(engine, Box::new(stream), peer)).await {
        open.run(None).await
    }
}

/// The broker's and the listener's connection slots, held for the
/// connection's whole life (parked or not).
pub(crate) type Slots = (crate::engine::Slot, crate::engine::Slot);

/// An accepted connection, with the tracing span of its client.
pub(crate) struct Open {
    conn: Box<Connection>,
    span: tracing::Span,
}

impl Open {
    /// Serves the client until the connection ends (or parks: then its task
    /// ends, and the connection, with `slots`, lives on in the lot). What
    /// lives on in the task is this future: a `Driver` and the span.
    pub(crate) fn run(self, slots: Option<Slots>) -> impl std::future::Future<Output = ()> + Send {
        driver::Driver::new(self.conn, slots).instrument(self.span)
    }
}

/// The tracing span of a client's connection.
fn client_span(peer: &Peer) -> tracing::Span {
    // At debug level: with the fmt layer, an enabled span keeps its fields
    // formatted in the subscriber's registry, some 300 bytes per idle client.
    tracing::debug_span!(
        "client",
        addr = %peer.addr(),
        listener = %peer.listener(),
        client_id = tracing::field::Empty
    )
}

/// The MQTT handshake over the client's stream; the connection if it was
/// accepted. Callers box this future: it is large, and needed only until
/// CONNACK.
pub(crate) async fn open(engine: Arc<Engine>, stream: ByteStream, peer: Peer) -> Option<Open> {
    let span = client_span(&peer);
    let conn = handshake(engine, stream, peer)
        .instrument(span.clone())
        .await?;
    Some(Open { conn, span })
}

/// The handshake; the connection if it was accepted.
async fn handshake(engine: Arc<Engine>, stream: ByteStream, peer: Peer) -> Option<Box<Connection>> {
    let reader = Reader::new(stream, MqttCodec::new(engine.config.max_packet_size));
    match handshake::accept(&engine, reader, &peer).await {
        handshake::Accepted::Established(conn) => Some(conn),
        // Refused (CONNACK sent); the stream's writing side is shut down.
        handshake::Accepted::Refused(mut reader) => {
            finish::linger(reader.get_mut(), &engine.shutdown).await;
            None
        }
        handshake::Accepted::Gone => None,
    }
}

/// The exit of a subscriber that took nothing from its full queue for
/// `drain_timeout`: its publishers are released.
fn too_slow(client_id: &str, timeout: Duration) -> Exit {
    tracing::info!(
        client_id,
        ?timeout,
        "disconnecting a subscriber that does not keep up"
    );
    Exit::Violation(
        ReasonCode::QuotaExceeded,
        format!("took no message from a full queue for {timeout:?} (drain_timeout)"),
    )
}

/// Whether an encoding went into the write buffer (a packet the client's
/// Maximum Packet Size refuses is skipped, and logged).
fn written(encoded: Result<(), pigeon_codec::EncodeError>) -> bool {
    if let Err(error) = &encoded {
        tracing::debug!(%error, "cannot send packet to client; skipped");
    }
    encoded.is_ok()
}

/// Why a connection ends.
#[derive(Debug)]
pub(crate) enum Exit {
    /// The client sent DISCONNECT (`will`: an MQTT 5.0 code other than 0x00 keeps the will).
    Disconnect {
        will: bool,
    },
    TakenOver,
    Shutdown,
    KeepAlive,
    /// The peer closed the socket or it failed.
    Closed,
    /// A protocol violation (MQTT 5.0 clients get DISCONNECT with the code).
    Violation(ReasonCode, String),
    /// authorize_publish refused a 3.x client's PUBLISH: close, say nothing (MQTT-3.3.5-2).
    Refused(String),
}

impl Exit {
    /// A failed read: the socket's own failure is a closed connection (nobody is
    /// left to send a reason code to); anything else is the peer's violation.
    fn read_failed(e: DecodeError) -> Exit {
        if e.is_io() {
            Exit::Closed
        } else {
            Exit::Violation(e.reason_code(), e.to_string())
        }
    }
}

/// An established connection: the engine's handles for this client, the
/// stream and its write buffer, and the protocol core ([`protocol::State`]).
pub(crate) struct Connection {
    // The engine and this client's place in it.
    engine: Arc<Engine>,
    client: Client,
    session: Arc<Session>,
    /// Released at the end of `finish`: a taking-over connection waits for it.
    owner: Option<crate::engine::Owner>,
    conn_id: u64,
    // I/O: the reader owns the stream, which is written through it too.
    reader: Reader,
    out: BytesMut,
    /// Bytes were written since the last flush (TLS and WebSocket buffer them).
    unflushed: bool,
    /// The MQTT state: in-flight window, QoS 2 exchanges, aliases, keep alive.
    mqtt: protocol::State,
    /// What most connections never use, in one box made the first time one
    /// does (every idle client pays for the size of this struct).
    rare: Option<Box<Rare>>,
    /// MQTT 5.0 Session Expiry Interval in seconds (3.x: 0 for a clean
    /// session, never-expires otherwise); `persistent` is `session_expiry > 0`.
    session_expiry: u32,
    persistent: bool,
    /// A PUBLISH waiting for room in its subscribers' queues (backpressure):
    /// its acknowledgement waits, and so does every later packet but acks.
    pending: Option<Box<inbound::Pending>>,
    /// Routed PUBLISHes waiting for the store's commit before their PUBACK /
    /// PUBREC, in order (boxed: most connections never have one).
    acks: Option<inbound::AckQueue>,
    /// When the keep alive may have run out, as armed with the broker's one
    /// keep-alive watch ([`crate::engine::Deadlines`]), which wakes the
    /// session then (none without a keep alive).
    keep_alive_due: Option<Due>,
    /// When to see whether the connection has been idle long enough to park
    /// (`park_idle_after`), armed with the same watch; none while parking is
    /// off, or the stream is not plain TCP, or it is about to park.
    park_due: Option<Due>,
    /// Something happened since `park_due` was armed.
    busy: bool,
    /// Idle for `park_idle_after`: park when the next poll finds nothing to do.
    park_wanted: bool,
}

/// The parts of a [`Connection`] most clients never use.
#[derive(Default)]
struct Rare {
    /// The will, until the connection ends.
    will: Option<Will>,
    /// MQTT 5.0 enhanced authentication, when CONNECT used it.
    auth: Option<auth::Enhanced>,
    /// Packets read while `pending` waits (at most one but for the handshake's).
    stash: VecDeque<Packet>,
    /// `max_publish_rate`, if any.
    rate: Option<rate::Bucket>,
    /// Reading waits until this fires: the client is over `max_publish_rate`.
    pause: Option<Pin<Box<Sleep>>>,
}

impl Rare {
    /// Whether nothing is left in it (it can go).
    fn is_empty(&self) -> bool {
        self.will.is_none()
            && self.auth.is_none()
            && self.stash.is_empty()
            && self.rate.is_none()
            && self.pause.is_none()
    }
}

enum Step {
    /// The connection was just established.
    Start,
    Exit(Exit),
    Packet(Packet),
    Routed(Arc<crate::model::Message>),
    Committed(bool),
    Wrote,
    Wake,
    /// The keep-alive deadline, or the one to check for parking, came.
    Due,
    /// The publish-rate pause is over.
    Resume,
}

impl Connection {
    /// Deals with what happened; then delivers, and handles what was held.
    async fn take_step(&mut self, step: Step) -> Result<(), Exit> {
        // Only a deadline is not the client's or the broker's doing.
        self.busy |= !matches!(step, Step::Due);
        match step {
            Step::Start => {
                // Offline messages (up to the in-flight window) go out first;
                // then the client is ready (the seed's clientReady), and what it
                // sent during the handshake is handled (the stash, below).
                self.fill().await?;
                self.engine.event(crate::hooks::EventKind::ClientReady, || {
                    crate::hooks::Event::ClientReady(self.client.clone())
                });
            }
            Step::Exit(exit) => return Err(exit),
            Step::Routed(message) => {
                // The wait was the broker's: the client's keep alive starts over.
                self.mqtt.keep_alive.seen(Instant::now());
                self.published(message)?;
            }
            Step::Committed(ok) => self.on_committed(ok)?,
            Step::Packet(packet) => {
                self.mqtt.keep_alive.seen(Instant::now());
                self.receive(packet).await?;
                self.read_burst().await?;
            }
            Step::Wrote | Step::Wake => {}
            Step::Resume => {
                // The pause was the broker's: the client's keep alive starts over.
                if let Some(rare) = &mut self.rare {
                    rare.pause = None;
                }
                self.mqtt.keep_alive.seen(Instant::now());
            }
            Step::Due => {
                if self.keep_alive_due() {
                    self.check_keep_alive()?;
                }
                self.check_park();
            }
        }
        self.fill().await?;
        self.handle_stashed().await
    }

    /// Packets held while a PUBLISH waited go first, in order.
    async fn handle_stashed(&mut self) -> Result<(), Exit> {
        while self.pending.is_none() {
            let Some(packet) = self.rare.as_mut().and_then(|r| r.stash.pop_front()) else {
                break;
            };
            self.handle(packet).await?;
        }
        Ok(())
    }

    /// Whether a burst may read one more packet: the client is not behind on
    /// reading, nor over its publish rate, and nothing read waits its turn.
    fn may_read_ahead(&self) -> bool {
        self.pending.is_none() && self.can_read()
    }

    /// Whether to read at all. Reading does not wait on `pending`: acks and
    /// pings are served while a PUBLISH waits (see `receive`).
    fn can_read(&self) -> bool {
        self.out.len() < HIGH_WATER && !self.held_back() && self.acks_have_room()
    }

    /// Whether reading waits on the connection itself: over its publish
    /// rate, or a packet read earlier waits its turn.
    fn held_back(&self) -> bool {
        self.rare
            .as_ref()
            .is_some_and(|r| r.pause.is_some() || !r.stash.is_empty())
    }

    /// The rarely used parts, made now if they were not.
    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Default::default)
    }

    /// Whether reading waits: the client is over its publish rate.
    fn paused(&self) -> bool {
        self.rare.as_ref().is_some_and(|r| r.pause.is_some())
    }

    /// Reading stops while `receive_maximum` acknowledgements wait for the
    /// store (an MQTT 3.x client has no such limit of its own).
    fn acks_have_room(&self) -> bool {
        self.acks
            .as_ref()
            .is_none_or(|q| q.len() < usize::from(self.engine.config.receive_maximum))
    }

    /// Handles what is already readable before writing, so that replies to a
    /// burst leave in one write instead of one each.
    async fn read_burst(&mut self) -> Result<(), Exit> {
        for _ in 0..READ_BURST {
            if !self.may_read_ahead() {
                break;
            }
            match self.reader.next().now_or_never() {
                None => break,
                Some(None) => return Err(Exit::Closed),
                Some(Some(Err(e))) => return Err(Exit::read_failed(e)),
                Some(Some(Ok(packet))) => self.handle(packet).await?,
            }
        }
        Ok(())
    }

    /// The keep-alive timer fired: end a silent client, or sleep until the
    /// deadline its last packet set.
    fn check_keep_alive(&mut self) -> Result<(), Exit> {
        // Not reading is the broker's doing, not the client's.
        let held = self.pending.is_some() || self.paused();
        match self.mqtt.keep_alive.check(Instant::now(), held) {
            Some(deadline) => {
                self.arm_keep_alive(deadline);
                Ok(())
            }
            None => Err(Exit::KeepAlive),
        }
    }

    /// Asks the keep-alive watch to wake the session at `deadline`.
    fn arm_keep_alive(&mut self, deadline: Instant) {
        let deadlines = &self.engine.deadlines;
        self.keep_alive_due = Some(deadlines.arm(&self.session, self.conn_id, deadline));
    }

    /// Whether the armed keep-alive deadline has come: a relaxed-cheap load,
    /// made when the session is woken (the watch wakes it so).
    fn keep_alive_due(&self) -> bool {
        self.keep_alive_due
            .is_some_and(|due| self.engine.deadlines.passed(due))
    }

    /// The watch forgets a connection that ends before its deadlines.
    fn disarm_keep_alive(&mut self) {
        if let Some(due) = self.keep_alive_due.take() {
            self.engine.deadlines.disarm(due, self.conn_id);
        }
        if let Some(due) = self.park_due.take() {
            self.engine.deadlines.disarm(due, self.conn_id | PARK_KEY);
        }
    }

    /// After a step: unless one is armed, asks the watch to wake the session
    /// when the connection could have been idle for `park_idle_after`.
    /// Once per that period at most, so that a busy client pays nothing per
    /// packet (`busy` says whether it was idle).
    fn arm_park(&mut self) {
        let after = self.engine.config.park_idle_after;
        if self.park_due.is_some() || self.park_wanted || after.is_zero() || !self.reader.is_tcp() {
            return;
        }
        self.busy = false;
        let deadlines = &self.engine.deadlines;
        let at = Instant::now() + after;
        self.park_due = Some(deadlines.arm(&self.session, self.conn_id | PARK_KEY, at));
    }

    /// The parking deadline came: park if nothing happened since it was armed.
    fn check_park(&mut self) {
        let Some(due) = self.park_due else { return };
        if !self.engine.deadlines.passed(due) {
            return;
        }
        self.park_due = None;
        self.park_wanted = !std::mem::take(&mut self.busy);
    }

    /// Whether either armed deadline has come.
    fn deadline_due(&self) -> bool {
        let deadlines = &self.engine.deadlines;
        self.keep_alive_due() || self.park_due.is_some_and(|due| deadlines.passed(due))
    }

    /// Whether a connection idle for `park_idle_after` may park now: nothing
    /// waits to be written or for the broker, and no timer of its own runs
    /// (in-flight messages may: their acknowledgements wake it).
    fn parkable(&self) -> bool {
        self.reader.is_drained()
            && self.out.is_empty()
            && !self.unflushed
            && self.pending.is_none()
            && self.acks.is_none()
            && !self.held_back()
    }

    /// Appends a packet to the write buffer; false when it cannot be sent
    /// (e.g. larger than the client's Maximum Packet Size).
    fn write(&mut self, packet: &Packet) -> bool {
        self.take_out_buffer();
        written(Encoder::<&Packet>::encode(
            self.reader.codec(),
            packet,
            &mut self.out,
        ))
    }

    /// The write buffer, taken again if it was given back while idle (see
    /// `release_idle_buffers`).
    fn take_out_buffer(&mut self) {
        if self.out.capacity() == 0 {
            self.out = buffers::write_buffer();
        }
    }

    /// Writes whatever is buffered, giving up after a short while.
    async fn flush(&mut self) {
        let flushed = tokio::time::timeout(Duration::from_secs(1), async {
            let stream = self.reader.get_mut();
            stream.write_all_buf(&mut self.out).await?;
            stream.flush().await
        })
        .await;
        if flushed.is_err() {
            tracing::debug!("client did not take its last packets");
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every idle client pays for a `Connection` and its task's `Driver`:
    /// they must not grow (the struct was 800 bytes before its rarely used
    /// parts were boxed, 488 before they went into one `Rare` box and the
    /// encoder became the reader's codec, then 400; the in-flight window's
    /// ring, which finds an ack without hashing, added 24; one stream instead
    /// of two halves took 16, the incoming QoS 2 set and the window's spill
    /// made on first use 40; the task's future was 6.7 KB before `Driver`).
    /// Parking added 16 (its deadline and two flags); a batch vector taken
    /// per fill instead of kept, a boxed `Pending`, a `u16` count in the
    /// window and the Receive Maximum read from the config took 56, to fit
    /// the allocator's 320-byte class (at 321 it takes 384).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_idle_connection_does_not_grow() {
        let size = std::mem::size_of::<super::Connection>();
        assert!(size <= 320, "Connection is {size} bytes");
        let driver = std::mem::size_of::<super::driver::Driver>();
        assert!(driver <= 40, "Driver is {driver} bytes");
    }
}
