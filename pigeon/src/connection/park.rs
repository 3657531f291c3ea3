//! Idle plain-TCP connections parked off the runtime.
//!
//! A tokio task (256 bytes: it is aligned to 128) and a socket's registration
//! with the runtime's reactor (its `ScheduledIo`, 256 bytes too) were a third
//! of an idle client's memory. A connection that did nothing for
//! `park_idle_after` gives both up: its socket leaves the runtime for the
//! lot's own epoll, which one thread watches for every broker in the process,
//! its task ends, and the boxed [`Connection`] waits here with the socket.
//!
//! It comes back, in a new task, when its socket has something to read (or
//! was closed), or when its session is woken: a delivery, being told to go,
//! its keep-alive deadline, shutdown. The session's waker is the lot's while
//! the connection is parked ([`waker`]), so every reason the engine has to
//! wake a connection reaches a parked one the same way.
//!
//! What is written by hand here is only the bookkeeping: the epoll is mio's
//! (the crate tokio's reactor is built on), the sockets are std's.

use std::{
    collections::HashMap,
    net::TcpStream,
    os::fd::AsRawFd,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard, OnceLock,
    },
    task::{Context, RawWaker, RawWakerVTable, Waker},
};

use mio::{unix::SourceFd, Events, Interest, Poll, Registry, Token};
use tokio_util::task::task_tracker::TaskTrackerToken;

use bytes::BytesMut;

use pigeon_codec::MqttCodec;

use super::{protocol, ByteStream, Connection, Rare, Reader, Slots};
use crate::{
    engine::{Due, Engine, Owner, Session},
    hooks::Client,
};

/// The one lot of the process (`None` if its epoll could not be made: then
/// nothing parks).
static LOT: OnceLock<Option<Lot>> = OnceLock::new();

/// The parked connections, and the epoll their sockets are registered with.
struct Lot {
    registry: Registry,
    spots: Mutex<HashMap<usize, Spot>>,
    /// Keys are never reused, so a late event or wake-up for a connection
    /// that has left finds nothing (a `usize` counter: even at a million
    /// parkings a second, 64 bits do not wrap).
    next: AtomicUsize,
}

enum Spot {
    /// The connection is on its way in: a wake-up now is kept for [`park`].
    Reserved { woken: bool },
    /// Boxed: the table's slots, spare ones included, stay two words.
    Taken(Box<Parked>),
}

/// A parked connection: everything its task held, and the socket, but what
/// a connection that may park holds empty (its stream's box, its read and
/// write buffers, a waiting PUBLISH, store acknowledgements, its park
/// deadline): one block of 224 bytes instead of the boxed `Connection` (320)
/// and a box holding it and the rest (56, in the 64-byte class).
///
/// Why 224 and not the 248 it would be with its slots and token inline: the
/// block is made as the connection's task and socket registration (two
/// 256-byte blocks) are freed. In their size class it fills half their
/// holes, so no page of them is ever free again; measured with
/// `bench/connections.sh 10000`, RSS per idle client was 1519 B that way
/// and is 1240 B with the slots and token in a 24-byte box of their own.
pub(super) struct Parked {
    engine: Arc<Engine>,
    client: Client,
    session: Arc<Session>,
    owner: Option<Owner>,
    conn_id: u64,
    codec: MqttCodec,
    /// Bytes read that the broker's counters have not taken yet (kept
    /// beside the other `u32`s: inside a struct with the codec, it would
    /// take a word of padding).
    count: u32,
    mqtt: protocol::State,
    rare: Option<Box<Rare>>,
    session_expiry: u32,
    persistent: bool,
    keep_alive_due: Option<Due>,
    socket: TcpStream,
    /// Its slots, and the token that keeps the broker's shutdown waiting for
    /// it as its task did.
    held: Box<(Option<Slots>, TaskTrackerToken)>,
}

impl Parked {
    /// `conn`, whose socket is `socket`, parked with the rest of its task.
    fn new(conn: Connection, socket: TcpStream, slots: Option<Slots>) -> Self {
        // Every field named: one added to `Connection` must be parked too.
        let Connection {
            engine,
            client,
            session,
            owner,
            conn_id,
            reader,
            out,
            unflushed,
            mqtt,
            rare,
            session_expiry,
            persistent,
            pending,
            acks,
            keep_alive_due,
            park_due,
            busy: _,
            park_wanted,
        } = conn;
        // `parkable` saw them empty, and the poll that found nothing to do
        // gave the write buffer back. The park deadline came (none is armed
        // while `park_wanted` is set, which the parking poll took); `busy`
        // may have been set since, but the next arming clears it anyway.
        debug_assert!(out.capacity() == 0 && !unflushed && pending.is_none() && acks.is_none());
        debug_assert!(park_due.is_none() && !park_wanted);
        let token = engine.tracker.token();
        let (codec, count) = reader.into_parts();
        Self {
            engine,
            client,
            session,
            owner,
            conn_id,
            codec,
            count,
            mqtt,
            rare,
            session_expiry,
            persistent,
            keep_alive_due,
            socket,
            held: Box::new((slots, token)),
        }
    }

    /// The connection again, reading its socket through the runtime it runs
    /// in (entered by the caller), with its slots and its shutdown token.
    pub(super) fn wake(self) -> (Box<Connection>, Option<Slots>, TaskTrackerToken) {
        let io: Option<ByteStream> = match tokio::net::TcpStream::from_std(self.socket) {
            Ok(tcp) => Some(Box::new(tcp)),
            // The reader reads the end of the stream: the connection ends.
            Err(error) => {
                tracing::debug!(%error, "a parked socket cannot be watched again");
                None
            }
        };
        let conn = Box::new(Connection {
            engine: self.engine,
            client: self.client,
            session: self.session,
            owner: self.owner,
            conn_id: self.conn_id,
            reader: Reader::from_parts(self.codec, self.count, io),
            out: BytesMut::new(),
            unflushed: false,
            mqtt: self.mqtt,
            rare: self.rare,
            session_expiry: self.session_expiry,
            persistent: self.persistent,
            pending: None,
            acks: None,
            keep_alive_due: self.keep_alive_due,
            park_due: None,
            busy: false,
            park_wanted: false,
        });
        let (slots, token) = *self.held;
        (conn, slots, token)
    }

    /// The runtime to resume in: the one it parked from.
    pub(super) fn runtime(&self) -> Option<&tokio::runtime::Handle> {
        self.engine.runtime.get()
    }
}

impl Lot {
    /// The lot, made (with its thread) on first use.
    fn get() -> Option<&'static Lot> {
        LOT.get_or_init(|| match Lot::start() {
            Ok(lot) => Some(lot),
            Err(error) => {
                tracing::warn!(%error, "cannot park idle connections");
                None
            }
        })
        .as_ref()
    }

    fn start() -> std::io::Result<Lot> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        std::thread::Builder::new()
            .name("pigeon-park".into())
            .spawn(move || watch(poll))?;
        Ok(Lot {
            registry,
            spots: Mutex::new(HashMap::new()),
            next: AtomicUsize::new(1),
        })
    }

    fn spots(&self) -> MutexGuard<'_, HashMap<usize, Spot>> {
        // Plain entries stay consistent if a holder panicked.
        self.spots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A key for a connection about to park.
    fn reserve(&self) -> usize {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.spots().insert(key, Spot::Reserved { woken: false });
        key
    }

    fn cancel(&self, key: usize) {
        self.spots().remove(&key);
    }

    /// Parks `parked` under its reserved `key`, or resumes it at once if it
    /// was woken on its way in or its socket cannot be watched.
    fn park(&self, key: usize, parked: Box<Parked>) {
        let mut spots = self.spots();
        let woken = !matches!(spots.get(&key), Some(Spot::Reserved { woken: false }));
        // Registered under the lock: an event that comes at once waits for
        // the entry to be in.
        let fd = parked.socket.as_raw_fd();
        let resume_now = woken
            || self
                .registry
                .register(&mut SourceFd(&fd), Token(key), Interest::READABLE)
                .is_err();
        if resume_now {
            spots.remove(&key);
            drop(spots);
            (*parked).resume();
            return;
        }
        parked
            .engine
            .stats
            .clients_parked
            .fetch_add(1, Ordering::Relaxed);
        spots.insert(key, Spot::Taken(parked));
    }

    /// Resumes the connection parked under `key`, if it still is.
    fn unpark(&self, key: usize) {
        let parked = {
            let mut spots = self.spots();
            match spots.get_mut(&key) {
                None => return,
                Some(Spot::Reserved { woken }) => {
                    *woken = true;
                    return;
                }
                Some(Spot::Taken(_)) => {}
            }
            let Some(Spot::Taken(parked)) = spots.remove(&key) else {
                return;
            };
            // A burst of resumptions leaves the table its peak size otherwise.
            if spots.capacity() > 64 && spots.len() < spots.capacity() / 4 {
                spots.shrink_to_fit();
            }
            parked
        };
        let fd = parked.socket.as_raw_fd();
        // Fails only for a socket the epoll no longer has (closed): nothing
        // is left to undo then.
        let _ = self.registry.deregister(&mut SourceFd(&fd));
        let stats = &parked.engine.stats;
        stats.clients_parked.fetch_sub(1, Ordering::Relaxed);
        (*parked).resume();
    }
}

/// The lot's thread: resumes the connections whose sockets became readable
/// (data, a close or an error).
fn watch(mut poll: Poll) {
    let mut events = Events::with_capacity(256);
    loop {
        if let Err(error) = poll.poll(&mut events, None) {
            if error.kind() != std::io::ErrorKind::Interrupted {
                tracing::error!(%error, "the parked connections' epoll failed");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            continue;
        }
        let Some(lot) = LOT.wait().as_ref() else {
            return;
        };
        for event in events.iter() {
            lot.unpark(event.token().0);
        }
    }
}

/// Parks `conn`, whose poll just found nothing to do, and gives its task up;
/// or gives the connection back when it cannot park (not plain TCP, woken
/// meanwhile, no lot).
pub(super) fn park(
    mut conn: Box<Connection>,
    slots: Option<Slots>,
    cx: &Context<'_>,
) -> Result<(), (Box<Connection>, Option<Slots>)> {
    let (Some(lot), Ok(runtime)) = (Lot::get(), tokio::runtime::Handle::try_current()) else {
        return Err((conn, slots));
    };
    if !conn.reader.is_tcp() {
        return Err((conn, slots));
    }
    // Every connection of a broker runs in the runtime its listeners do.
    conn.engine.runtime.get_or_init(|| runtime);
    let key = lot.reserve();
    // The connection stays in this task, which is polled again.
    let stay = |conn: Box<Connection>, slots| {
        lot.cancel(key);
        conn.session.watch_with(cx.waker());
        cx.waker().wake_by_ref();
        Err((conn, slots))
    };
    // From now on a wake-up goes to the lot. One that came before, to this
    // task's waker, has this task polled again: it stays.
    if conn.session.watch_with(&waker(key)) {
        return stay(conn, slots);
    }
    let socket = conn.reader.take_tcp().map(|tcp| tcp.into_std());
    let Some(Ok(socket)) = socket else {
        // Deregistering failed: the socket is gone, and so is the
        // connection (its reader now reads the end of the stream).
        return stay(conn, slots);
    };
    lot.park(key, Box::new(Parked::new(*conn, socket, slots)));
    Ok(())
}

/// The waker of a connection parked under `key`: waking it resumes the
/// connection. It holds only the key, so it allocates nothing.
/// (The one `unsafe` of the crate, allowed here alone: an `Arc`-backed
/// waker would cost every parked connection 32 bytes.)
#[allow(unsafe_code)]
fn waker(key: usize) -> Waker {
    // SAFETY: `Waker::from_raw` requires the vtable's functions to be safe to
    // call from any thread, any number of times, with the data pointer given
    // here. The pointer is the key, an integer that is never dereferenced;
    // `clone` copies it, `drop` does nothing, and `wake` looks the key up in
    // the lot under its mutex, which any thread may do.
    unsafe { Waker::from_raw(raw(key)) }
}

fn raw(key: usize) -> RawWaker {
    RawWaker::new(std::ptr::without_provenance(key), &VTABLE)
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone_raw, wake_raw, wake_raw, drop_raw);

fn clone_raw(data: *const ()) -> RawWaker {
    raw(data.addr())
}

fn wake_raw(data: *const ()) {
    if let Some(lot) = LOT.get().and_then(Option::as_ref) {
        lot.unpark(data.addr());
    }
}

fn drop_raw(_: *const ()) {}

#[cfg(test)]
mod tests {
    /// A parked client's block, in the allocator's 224-byte class, not the
    /// 256-byte one of the task it leaves (see [`super::Parked`]).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_parked_connection_fits_in_224_bytes() {
        let size = std::mem::size_of::<super::Parked>();
        assert!(size <= 224, "Parked is {size} bytes");
    }
}
