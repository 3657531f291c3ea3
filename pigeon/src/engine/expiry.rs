//! Timers armed when a connection ends: MQTT 5.0 session expiry (an offline
//! session is removed with its subscriptions and queue once its interval
//! passes) and will delay (the will waits, and is cancelled if the client
//! comes back in time). Both compare the session's attach epoch so a
//! reconnection in between disarms them; both stop at shutdown.
//!
//! A delayed will waits in the persistence store, so that whichever comes
//! first takes it: its delay (published), the session's expiry (published,
//! the session ends), a reconnection (`establish`: published on a clean start,
//! which ends the session, cancelled on a resume) or shutdown (dropped).

use std::{sync::Arc, time::Duration};

use pigeon_codec::Will;

use super::{Engine, Session};
use crate::hooks::Client;

/// "Never expires" (MQTT 5.0: 0xFFFFFFFF).
pub const NEVER: u32 = u32::MAX;

impl Engine {
    /// Removes `session` after `interval` seconds unless a client takes it
    /// back first, publishing a will still waiting. `epoch` is the session's
    /// epoch when the connection of `client` ended.
    pub fn expire_later(
        self: &Arc<Self>,
        session: Arc<Session>,
        epoch: u64,
        client: Client,
        interval: u32,
    ) {
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
                if let Some(will) = engine.persistence.take_will(&session.client_id).await {
                    engine.publish_will(&client, will).await;
                }
                engine.remove_session(&session).await;
            }
        });
    }

    /// Publishes `will` after `delay` seconds unless the client reconnects
    /// or the session ends first (the caller passes the lower of the will
    /// delay and the session expiry).
    pub async fn will_later(
        self: &Arc<Self>,
        session: Arc<Session>,
        epoch: u64,
        client: Client,
        will: Will,
        delay: u32,
    ) {
        // Stored before the session is released, so a reconnection finds it.
        self.persistence.put_will(&session.client_id, will).await;
        let engine = self.clone();
        self.tracker.spawn(async move {
            let id = &session.client_id;
            let wait = Duration::from_secs(u64::from(delay));
            tokio::select! {
                _ = engine.shutdown.cancelled() => {
                    engine.persistence.take_will(id).await;
                    return;
                }
                // `establish` took the will.
                _ = session.reattached() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            // Back in time (a new epoch), or expired and removed (the expiry
            // published it); otherwise the will is still stored, unless taken.
            if session.epoch() != epoch || session.is_online() || session.is_removed() {
                return;
            }
            if let Some(will) = engine.persistence.take_will(id).await {
                engine.publish_will(&client, will).await;
            }
        });
    }
}
