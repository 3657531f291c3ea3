//! Timers armed when a connection ends: MQTT 5.0 session expiry (an offline
//! session is removed with its subscriptions and queue once its interval
//! passes) and will delay (the will waits, and is cancelled if the client
//! comes back in time). Both compare the session's attach epoch so a
//! reconnection in between disarms them; both stop at shutdown.

use std::{sync::Arc, time::Duration};

use pigeon_codec::Will;

use super::{Engine, Session};
use crate::hooks::Client;

/// "Never expires" (MQTT 5.0: 0xFFFFFFFF).
pub const NEVER: u32 = u32::MAX;

impl Engine {
    /// Removes `session` after `interval` seconds unless a client takes it
    /// back first. `epoch` is the session's epoch when its connection ended.
    pub fn expire_later(self: &Arc<Self>, session: Arc<Session>, epoch: u64, interval: u32) {
        if interval == NEVER {
            return;
        }
        let engine = self.clone();
        self.tracker.spawn(async move {
            let wait = Duration::from_secs(u64::from(interval));
            tokio::select! {
                _ = engine.shutdown.cancelled() => return,
                _ = session.reattached() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            // A connection acquiring the session holds its owner lock: let it win.
            let Ok(_owner) = session.owner.clone().try_lock_owned() else {
                return;
            };
            if session.offline_since(epoch) {
                tracing::debug!(client_id = %session.client_id, "session expired");
                engine.remove_session(&session).await;
            }
        });
    }

    /// Publishes `will` after `delay` seconds unless the client reconnects
    /// first (the caller passes the lower of the will delay and the session
    /// expiry: the will also goes when the session ends).
    pub fn will_later(
        self: &Arc<Self>,
        session: Arc<Session>,
        epoch: u64,
        client: Client,
        will: Will,
        delay: u32,
    ) {
        let engine = self.clone();
        self.tracker.spawn(async move {
            let wait = Duration::from_secs(u64::from(delay));
            tokio::select! {
                _ = engine.shutdown.cancelled() => return,
                _ = session.reattached() => {
                    tracing::debug!(client_id = %session.client_id, "client back in time: will cancelled");
                    return;
                }
                _ = tokio::time::sleep(wait) => {}
            }
            if session.epoch() == epoch && !session.is_online() {
                engine.publish_will(&client, will).await;
            } else {
                tracing::debug!(client_id = %session.client_id, "client back in time: will cancelled");
            }
        });
    }
}
