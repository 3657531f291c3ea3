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
        Mutex, MutexGuard, OnceLock,
    },
    task::{Context, RawWaker, RawWakerVTable, Waker},
};

use mio::{unix::SourceFd, Events, Interest, Poll, Registry, Token};
use tokio_util::task::task_tracker::TaskTrackerToken;

use super::{Connection, Slots};

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

/// A parked connection: everything its task held, and the socket.
pub(super) struct Parked {
    pub conn: Box<Connection>,
    pub slots: Option<Slots>,
    pub socket: TcpStream,
    /// Where its task runs again.
    pub runtime: tokio::runtime::Handle,
    /// Keeps the broker's shutdown waiting for it, as its task did.
    pub token: TaskTrackerToken,
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
            .conn
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
        let stats = &parked.conn.engine.stats;
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
    let token = conn.engine.tracker.token();
    lot.park(
        key,
        Box::new(Parked {
            conn,
            slots,
            socket,
            runtime,
            token,
        }),
    );
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
