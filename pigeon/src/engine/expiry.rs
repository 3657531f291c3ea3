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

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use pigeon_codec::Will;

use super::{Engine, Session};
use crate::{
    hooks::{Client, Peer},
    persistence::SessionState,
};

/// "Never expires" (MQTT 5.0: 0xFFFFFFFF).
pub(crate) const NEVER: u32 = u32::MAX;

impl Engine {
    /// Removes `session` after `interval` seconds unless a client takes it
    /// back first, publishing a will still waiting. `epoch` is the session's
    /// epoch when the connection of `client` ended.
    pub(crate) fn expire_later(
        self: &Arc<Self>,
        session: Arc<Session>,
        epoch: u64,
        client: Client,
        interval: u32,
    ) {
        self.persistence.save_session(
            &session.client_id,
            SessionState {
                expiry_interval: interval,
                offline_since: Some(SystemTime::now()),
                username: client.username().map(str::to_owned),
                protocol: client.protocol(),
            },
        );
        self.expire_in(session, epoch, client, interval);
    }

    /// Arms the expiry timer of an offline session (`interval` seconds).
    fn expire_in(
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
            let Some(_owner) = session.try_lock_owner() else {
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
    pub(crate) async fn will_later(
        self: &Arc<Self>,
        session: Arc<Session>,
        epoch: u64,
        client: Client,
        will: Will,
        delay: u32,
    ) {
        // Stored before the session is released, so a reconnection finds it.
        self.persistence.put_will(&session.client_id, will).await;
        let due = SystemTime::now() + Duration::from_secs(u64::from(delay));
        self.persistence.will_due(&session.client_id, due);
        let engine = self.clone();
        self.tracker.spawn(async move {
            let id = &session.client_id;
            let wait = Duration::from_secs(u64::from(delay));
            tokio::select! {
                _ = engine.shutdown.cancelled() => {
                    // A durable store keeps it: the next start re-arms it.
                    if !engine.persistence.durable() {
                        engine.persistence.take_will(id).await;
                    }
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

    /// Re-arms a restored session's timers from what a durable store kept:
    /// its expiry counts the time the broker was down (wall clock), and so
    /// does its will's delay. A session whose connection was still open when
    /// the broker stopped counts as ending now.
    pub(super) async fn rearm(
        self: &Arc<Self>,
        session: Arc<Session>,
        state: SessionState,
        will_at: Option<SystemTime>,
    ) {
        let now = SystemTime::now();
        let since = state.offline_since.unwrap_or(now);
        let down = now.duration_since(since).unwrap_or_default();
        let peer = Peer::new(([0, 0, 0, 0], 0).into());
        let client = Client::with_peer(&*session.client_id, peer, state.username, state.protocol);
        let left = |secs: u32, spent: Duration| {
            ceil_secs(Duration::from_secs(u64::from(secs)).saturating_sub(spent))
        };
        let expiry = match state.expiry_interval {
            NEVER => NEVER,
            secs => left(secs, down),
        };
        if let Some(will) = self.persistence.take_will(&session.client_id).await {
            let interval = will.properties.will_delay_interval.unwrap_or(0);
            let delay = will_at.map_or(interval, |at| {
                ceil_secs(at.duration_since(now).unwrap_or_default())
            });
            if delay == 0 || expiry == 0 {
                self.publish_will(&client, will).await;
            } else {
                let epoch = session.epoch();
                self.will_later(
                    session.clone(),
                    epoch,
                    client.clone(),
                    will,
                    delay.min(expiry),
                )
                .await;
            }
        }
        if expiry == 0 {
            tracing::debug!(client_id = %session.client_id, "session expired while the broker was down");
            self.remove_session(&session).await;
            return;
        }
        self.expire_in(session.clone(), session.epoch(), client, expiry);
    }
}

/// Whole seconds, rounded up, so that a deadline is never brought forward.
fn ceil_secs(d: Duration) -> u32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    u32::try_from(secs).unwrap_or(NEVER - 1)
}
