//! The task of an established connection: it waits for the next thing to
//! happen in a small hand-written future ([`Connection::poll_step`]), and
//! deals with it in a boxed `async` one that exists only while it runs.
//!
//! Why not one `async fn` loop: a task's future is as large as its largest
//! state, and the handlers of a PUBLISH or a SUBSCRIBE nest kilobytes of
//! state. Inline, every idle client would carry them for its whole life;
//! here an idle client's task holds two words and its boxed [`Connection`].

use std::{
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
};

use tokio::io::AsyncWrite;
use tracing::Instrument;

use super::{inbound, park, too_slow, Connection, Exit, Slots, Step};
use pigeon_codec::ReasonCode;

use crate::{engine::Ctrl, model::BoxFuture};

/// Drives an established connection until it ends or parks.
pub(super) struct Driver {
    state: State,
    /// Held as long as the connection lives: they go with it when it parks.
    slots: Option<Slots>,
}

enum State {
    /// Nothing to do until the stream, the session or a timer says so.
    Waiting(Box<Connection>),
    /// Dealing with a step; the connection comes back unless it ended.
    Busy(BoxFuture<'static, Option<Box<Connection>>>),
    Done,
}

impl Driver {
    /// Starts with what a new connection does first ([`Step::Start`]).
    pub(super) fn new(conn: Box<Connection>, slots: Option<Slots>) -> Self {
        Self {
            state: State::Busy(Box::pin(conn.work(Step::Start))),
            slots,
        }
    }
}

impl park::Parked {
    /// Runs the parked connection again, in a new task: its socket goes back
    /// to the runtime, and its first poll finds what woke it.
    pub(super) fn resume(self) {
        let Some(runtime) = self.runtime().cloned() else {
            // Not reached: a connection parks only after its engine knows
            // its runtime. Dropped, it closes its socket and ends.
            return;
        };
        let _in_runtime = runtime.enter();
        let (conn, slots, token) = self.wake();
        let span = super::client_span(conn.client.peer());
        span.record("client_id", conn.client.id());
        let tracker = conn.engine.tracker.clone();
        let driver = Driver {
            state: State::Waiting(conn),
            slots,
        };
        runtime.spawn(tracker.track_future(driver.instrument(span)));
        drop(token);
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Waiting(mut conn) => match conn.poll_step(cx) {
                    Poll::Ready(step) => self.state = State::Busy(Box::pin(conn.work(step))),
                    Poll::Pending if std::mem::take(&mut conn.park_wanted) && conn.parkable() => {
                        let slots = self.slots.take();
                        match park::park(conn, slots, cx) {
                            // The task ends; the connection waits in the lot.
                            Ok(()) => return Poll::Ready(()),
                            Err((conn, slots)) => {
                                self.slots = slots;
                                self.state = State::Waiting(conn);
                                return Poll::Pending;
                            }
                        }
                    }
                    Poll::Pending => {
                        self.state = State::Waiting(conn);
                        return Poll::Pending;
                    }
                },
                State::Busy(mut work) => match work.as_mut().poll(cx) {
                    Poll::Ready(Some(conn)) => self.state = State::Waiting(conn),
                    Poll::Ready(None) => return Poll::Ready(()),
                    Poll::Pending => {
                        self.state = State::Busy(work);
                        return Poll::Pending;
                    }
                },
                State::Done => return Poll::Ready(()),
            }
        }
    }
}

impl Connection {
    /// One step; the connection back unless it ended.
    async fn work(mut self: Box<Self>, step: Step) -> Option<Box<Self>> {
        match self.take_step(step).await {
            Ok(()) => {
                self.session.note_inflight(self.mqtt.window.len());
                self.arm_park();
                Some(self)
            }
            Err(exit) => {
                // Boxed: ending is rare, and inline it would make every step's
                // allocation larger.
                Box::pin(self.end(exit)).await;
                None
            }
        }
    }

    /// The end: the session is released first, so that lingering delays
    /// only this task's end.
    async fn end(mut self: Box<Self>, exit: Exit) {
        tracing::debug!(?exit, "connection ends");
        self.disarm_keep_alive();
        let lingers = exit.lingers();
        self.finish(exit).await;
        if lingers {
            super::finish::linger(self.reader.get_mut(), &self.engine.shutdown).await;
        }
    }

    /// Whatever happened first, in this order. Polled by hand rather than
    /// with `select!`, so that waiting stores no future of its own.
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        if let Some(exit) = self.told_to_go() {
            return Poll::Ready(Step::Exit(exit));
        }
        if let Poll::Ready(message) = inbound::poll_routed(&mut self.pending, cx) {
            return Poll::Ready(Step::Routed(message));
        }
        if let Poll::Ready(ok) = inbound::poll_committed(&mut self.acks, cx) {
            return Poll::Ready(Step::Committed(ok));
        }
        if !self.out.is_empty() || self.unflushed {
            if let Poll::Ready(written) = self.poll_push(cx) {
                return Poll::Ready(match written {
                    Ok(0) | Err(_) => Step::Exit(Exit::Closed),
                    Ok(_) => Step::Wrote,
                });
            }
        }
        if self.can_read() {
            if let Poll::Ready(packet) = self.reader.poll_packet(cx) {
                let read = self.reader.take_count();
                if read > 0 {
                    self.engine.stats.bytes_received.add(read);
                }
                return Poll::Ready(match packet {
                    None => Step::Exit(Exit::Closed),
                    Some(Err(e)) => Step::Exit(Exit::read_failed(e)),
                    Some(Ok(packet)) => Step::Packet(packet),
                });
            }
        }
        if self.session.poll_woken(cx).is_ready() {
            // Told to go, or deliveries queued (the step delivers them).
            // Or the keep-alive watch's deadline came.
            return Poll::Ready(match self.told_to_go() {
                Some(exit) => Step::Exit(exit),
                None if self.deadline_due() => Step::Due,
                None => Step::Wake,
            });
        }
        if let Some(pause) = self.rare.as_mut().and_then(|r| r.pause.as_mut()) {
            if pause.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Step::Resume);
            }
        }
        self.release_idle_buffers();
        Poll::Pending
    }

    /// Shutdown, a takeover, or too slow a subscriber: the engine wakes the
    /// session to say so.
    fn told_to_go(&self) -> Option<Exit> {
        if self.engine.is_shutting_down() {
            return Some(Exit::Shutdown);
        }
        match self.session.told(self.conn_id)? {
            Ctrl::TooSlow => Some(too_slow(
                &self.session.client_id,
                self.engine.config.drain_timeout,
            )),
            Ctrl::TakenOver => Some(Exit::TakenOver),
            Ctrl::Kicked => Some(Exit::Violation(
                ReasonCode::AdministrativeAction,
                "disconnected by an administrator".into(),
            )),
        }
    }

    /// Waiting with nothing to write: the write buffer goes back, so that
    /// an idle client holds none.
    fn release_idle_buffers(&mut self) {
        if self.out.is_empty() && !self.unflushed && self.out.capacity() > 0 {
            super::buffers::give_write(std::mem::take(&mut self.out));
        }
        if self.rare.as_ref().is_some_and(|r| r.is_empty()) {
            self.rare = None;
        }
    }

    /// Writes some of `out`, then flushes once it is all written: streams
    /// that buffer (TLS records, WebSocket frames) must not sit on a reply. A
    /// flush is a no-op for TCP. `unflushed` remembers a flush still owed.
    fn poll_push(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if !self.out.is_empty() {
            let n = ready!(tokio_util::io::poll_write_buf(
                Pin::new(self.reader.get_mut()),
                cx,
                &mut self.out
            ))?;
            self.unflushed = true;
            self.engine.stats.bytes_sent.add(n as u64);
            if n == 0 || !self.out.is_empty() {
                return Poll::Ready(Ok(n));
            }
        }
        ready!(Pin::new(self.reader.get_mut()).poll_flush(cx))?;
        self.unflushed = false;
        Poll::Ready(Ok(1))
    }
}
