//! The end of a connection: last words to the client, will, session parking
//! or removal, events and `$SYS` notice.

use std::{sync::atomic::Ordering::Relaxed, time::Duration};

use pigeon_codec::{Disconnect, Packet, ReasonCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::{Connection, Exit};
use crate::{
    hooks::{Event, EventKind},
    model::Parked,
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
    pub(super) async fn finish(mut self, exit: Exit) {
        let engine = self.engine.clone();
        let reason = match &exit {
            Exit::TakenOver => Some(ReasonCode::SessionTakenOver),
            Exit::Shutdown => Some(ReasonCode::ServerShuttingDown),
            Exit::KeepAlive => Some(ReasonCode::KeepAliveTimeout),
            Exit::Violation(code, _) => Some(*code),
            _ => None,
        };
        if let (true, Some(code)) = (self.protocol.is_v5(), reason) {
            let mut disconnect = Disconnect::new(code);
            if let Exit::Violation(_, message) = &exit {
                // DISCONNECT may always carry a reason string (MQTT-3.14.2-...).
                disconnect.properties.reason_string = Some(message.clone());
            }
            if !self.write(&Packet::Disconnect(disconnect)) {
                self.write(&Packet::Disconnect(Disconnect::new(code)));
            }
        }
        if !matches!(exit, Exit::Closed) && !self.out.is_empty() {
            self.flush().await;
        }
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(1), self.writer.shutdown()).await;
        self.client.set_connected(false);

        match &exit {
            Exit::KeepAlive => engine.event(EventKind::KeepaliveTimeout, || {
                Event::KeepaliveTimeout(self.client.clone())
            }),
            Exit::Violation(_, message) | Exit::Refused(message) => {
                tracing::debug!(message, "closing connection");
                engine.event(EventKind::ClientError, || {
                    Event::ClientError(self.client.clone(), message.clone())
                })
            }
            _ => {}
        }

        let stored = engine.persistence.take_will(&self.client_id).await;
        let will = self.will.take().or(stored);
        let publish_will = match exit {
            Exit::Disconnect { will } => will,
            Exit::Shutdown => false,
            _ => true,
        };
        let mut queued = self.session.detach(self.conn_id);
        let persistent = self.session_expiry > 0;
        let epoch = self.session.epoch();
        if let (true, Some(will)) = (publish_will, will) {
            // MQTT 5.0 Will Delay: the will waits, unless the session ends first.
            let delay = will
                .properties
                .will_delay_interval
                .unwrap_or(0)
                .min(self.session_expiry);
            if delay > 0 {
                engine
                    .will_later(
                        self.session.clone(),
                        epoch,
                        self.client.clone(),
                        will,
                        delay,
                    )
                    .await;
            } else {
                engine.publish_will(&self.client, will).await;
            }
        }

        // Shared subscriptions' copies this client did not complete go to another
        // member of their group (MQTT 5.0 4.8.2); a QoS 2 copy already released
        // (PUBREL sent) was received and stays, and so does a copy no other
        // member can take (it waits for this client if its session persists).
        if queued.iter().any(|d| d.share.is_some()) {
            let mut kept = std::collections::VecDeque::with_capacity(queued.len());
            for delivery in queued {
                match engine.router.redistribute(&self.client_id, delivery).await {
                    Ok(()) => {}
                    Err(delivery) => kept.push_back(delivery),
                }
            }
            queued = kept;
        }
        if self
            .inflight
            .iter()
            .any(|i| i.delivery.share.is_some() && !i.released)
        {
            let mut kept = std::collections::VecDeque::with_capacity(self.inflight.len());
            for entry in std::mem::take(&mut self.inflight) {
                if entry.delivery.share.is_none() || entry.released {
                    kept.push_back(entry);
                    continue;
                }
                let delivery = entry.delivery.clone();
                if engine
                    .router
                    .redistribute(&self.client_id, delivery)
                    .await
                    .is_err()
                {
                    kept.push_back(entry);
                }
            }
            self.inflight = kept;
        }
        if persistent {
            let parked = Parked {
                inflight: self.inflight.drain(..).collect(),
                queued,
                incoming_qos2: self.incoming_qos2.drain().collect(),
            };
            engine.persistence.park(&self.client_id, parked).await;
            engine.expire_later(
                self.session.clone(),
                epoch,
                self.client.clone(),
                self.session_expiry,
            );
        } else {
            engine.remove_session(&self.session).await;
        }

        engine.stats.clients_connected.fetch_sub(1, Relaxed);
        engine.event(EventKind::ClientDisconnect, || {
            Event::ClientDisconnect(self.client.clone())
        });
        crate::engine::sys::disconnect_client(&engine, &self.client_id).await;
    }
}
