//! The end of a connection: last words to the client, will, session parking
//! or removal, events and `$SYS` notice.

use std::{collections::VecDeque, time::Duration};

use pigeon_codec::{Disconnect, Packet, ReasonCode, Will};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::{Connection, Exit};
use crate::{
    hooks::{Event, EventKind},
    model::{Delivery, Parked},
};

/// How long a lingering close reads at most.
const LINGER_TIME: Duration = Duration::from_secs(2);
/// How many bytes a lingering close reads at most.
const LINGER_BYTES: usize = 1024 * 1024;

/// Lingering close: after the broker's last packet and its half-close, reads
/// and discards what the client still sends until it closes too, for at most
/// [`LINGER_TIME`] and [`LINGER_BYTES`], or until shutdown. Closing a socket
/// with unread input makes the kernel reset the connection, and a client still
/// writing would then see the reset instead of the reason code.
pub(super) async fn linger<R: AsyncRead + Unpin>(read: &mut R, shutdown: &CancellationToken) {
    let discard = async {
        // On the heap, and only now: an array here would sit in every
        // connection task's future for its whole life.
        let mut buf = vec![0u8; 4096];
        let mut total = 0;
        while total < LINGER_BYTES {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
        tracing::debug!("client kept writing past the lingering close's byte limit");
    };
    tokio::select! {
        _ = discard => {}
        _ = tokio::time::sleep(LINGER_TIME) => tracing::debug!("client did not close in time"),
        _ = shutdown.cancelled() => {}
    }
}

impl Exit {
    /// Whether the broker ends the connection (and the client may still be
    /// writing): the close lingers. Not at shutdown, which must be prompt.
    pub(super) fn lingers(&self) -> bool {
        !matches!(
            self,
            Exit::Disconnect { .. } | Exit::Closed | Exit::Shutdown
        )
    }
}

impl Connection {
    /// Ends the connection: last words to the client, the will, and the
    /// session handed back to the engine (parked or removed).
    pub(super) async fn finish(&mut self, exit: Exit) {
        self.say_goodbye(&exit).await;
        self.client.set_connected(false);
        self.report(&exit);
        let stored = self
            .engine
            .persistence
            .take_will(&self.session.client_id)
            .await;
        let will = self.rare.as_mut().and_then(|r| r.will.take()).or(stored);
        let publish_will = match exit {
            Exit::Disconnect { will } => will,
            Exit::Shutdown => false,
            _ => true,
        };
        let queued = self.session.detach(self.conn_id);
        let epoch = self.session.epoch();
        if let (true, Some(will)) = (publish_will, will) {
            self.leave_will(will, epoch).await;
        }
        let queued = self.redistribute_queued(queued).await;
        self.redistribute_inflight().await;
        self.hand_back_session(queued, epoch).await;
        let engine = &self.engine;
        engine.stats.disconnected(self.client.peer().listener());
        engine.event(EventKind::ClientDisconnect, || {
            Event::ClientDisconnect(self.client.clone())
        });
        crate::engine::sys::disconnect_client(engine, &self.session.client_id).await;
        // The session is free for the next connection with this client id.
        self.owner = None;
    }

    /// MQTT 5.0 clients the broker sends away are told why; then what is
    /// buffered is flushed (unless the socket is gone) and the stream closed.
    async fn say_goodbye(&mut self, exit: &Exit) {
        // A reason string with every code (DISCONNECT may always carry one,
        // MQTT-3.14.2-...): a bare reason code, without a property length, is
        // valid, but some clients (rumqttc 0.25) cannot read it and see the
        // connection aborted instead of the code.
        let reason = match exit {
            Exit::TakenOver => Some((
                ReasonCode::SessionTakenOver,
                "another connection took the session over",
            )),
            Exit::Shutdown => Some((
                ReasonCode::ServerShuttingDown,
                "the server is shutting down",
            )),
            Exit::KeepAlive => Some((
                ReasonCode::KeepAliveTimeout,
                "no packet within the keep alive",
            )),
            Exit::Violation(code, message) => Some((*code, message.as_str())),
            _ => None,
        };
        if let (true, Some((code, why))) = (self.mqtt.v5(), reason) {
            let mut disconnect = Disconnect::new(code);
            disconnect.properties.reason_string = Some(why.to_owned());
            if !self.write(&Packet::Disconnect(disconnect)) {
                self.write(&Packet::Disconnect(Disconnect::new(code)));
            }
        }
        if !matches!(exit, Exit::Closed) && !self.out.is_empty() {
            self.flush().await;
        }
        let _ =
            tokio::time::timeout(Duration::from_secs(1), self.reader.get_mut().shutdown()).await;
    }

    /// The events of an abnormal end.
    fn report(&self, exit: &Exit) {
        match exit {
            Exit::KeepAlive => self.engine.event(EventKind::KeepaliveTimeout, || {
                Event::KeepaliveTimeout(self.client.clone())
            }),
            Exit::Violation(_, message) | Exit::Refused(message) => {
                tracing::debug!(message, "closing connection");
                self.engine.event(EventKind::ClientError, || {
                    Event::ClientError(self.client.clone(), message.clone())
                })
            }
            _ => {}
        }
    }

    /// Publishes the will now, or after its MQTT 5.0 Will Delay (unless the
    /// session ends first).
    async fn leave_will(&mut self, will: Will, epoch: u64) {
        let delay = will
            .properties
            .will_delay_interval
            .unwrap_or(0)
            .min(self.session_expiry);
        if delay == 0 {
            return self.engine.publish_will(&self.client, will).await;
        }
        let (session, client) = (self.session.clone(), self.client.clone());
        self.engine
            .will_later(session, epoch, client, will, delay)
            .await;
    }

    /// Shared subscriptions' copies this client did not take go to another
    /// member of their group (MQTT 5.0 4.8.2); a copy no other member can
    /// take stays (it waits for this client if its session persists).
    async fn redistribute_queued(&mut self, queued: VecDeque<Delivery>) -> VecDeque<Delivery> {
        if !queued.iter().any(|d| d.share.is_some()) {
            return queued;
        }
        let mut kept = VecDeque::with_capacity(queued.len());
        for delivery in queued {
            if let Err(delivery) = self
                .engine
                .router
                .redistribute(&self.session.client_id, delivery)
                .await
            {
                kept.push_back(delivery);
            }
        }
        kept
    }

    /// As [`Connection::redistribute_queued`], for the shared copies in
    /// flight; a QoS 2 copy already released (PUBREL sent) was received and
    /// stays.
    async fn redistribute_inflight(&mut self) {
        let window = &mut self.mqtt.window;
        if !window
            .iter()
            .any(|i| i.delivery.share.is_some() && !i.released)
        {
            return;
        }
        // Taken out and put back in order, but for the copies another member took.
        for entry in window.take_all() {
            let movable = entry.delivery.share.is_some() && !entry.released;
            let router = &self.engine.router;
            if !movable
                || router
                    .redistribute(&self.session.client_id, entry.delivery.clone())
                    .await
                    .is_err()
            {
                window.push(entry);
            }
        }
    }

    /// A persistent session is parked with its message state and expires
    /// later; any other is removed now.
    async fn hand_back_session(&mut self, queued: VecDeque<Delivery>, epoch: u64) {
        let engine = &self.engine;
        if self.session_expiry == 0 {
            return engine.remove_session(&self.session).await;
        }
        let parked = Parked {
            inflight: self.mqtt.window.take_all(),
            queued,
            incoming_qos2: self.mqtt.incoming.take_all(),
        };
        engine
            .persistence
            .park(&self.session.client_id, parked)
            .await;
        let (session, client) = (self.session.clone(), self.client.clone());
        engine.expire_later(session, epoch, client, self.session_expiry);
    }
}
