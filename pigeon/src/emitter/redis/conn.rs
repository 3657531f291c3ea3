//! Connection and health: the startup connection (retried for a few seconds),
//! the format check, this node's liveness key (claimed at start, refreshed,
//! released at close) and the health `/readyz` reports.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering::Relaxed},
        Mutex,
    },
    time::Duration,
};

use ::redis::{aio::ConnectionManager, aio::ConnectionManagerConfig, Client, RedisError};

use super::{keys, wire::FORMAT, RedisEmitterOptions};
use crate::emitter::EmitterError;

/// Whether Redis answers, and the last reason it did not.
#[derive(Default)]
pub(super) struct Health {
    down: AtomicBool,
    why: Mutex<String>,
}

impl Health {
    /// Records a failure (logged once per outage).
    pub(super) fn failed(&self, what: &str, e: &RedisError) {
        let was_down = self.down.swap(true, Relaxed);
        let why = format!("redis unreachable: {what}: {e}");
        if !was_down {
            tracing::warn!("{why}");
        }
        *self.why.lock().unwrap_or_else(|e| e.into_inner()) = why;
    }

    /// Records a failure that is not Redis being away.
    pub(super) fn broken(&self, why: String) {
        self.down.store(true, Relaxed);
        *self.why.lock().unwrap_or_else(|e| e.into_inner()) = why;
    }

    /// Records a success.
    pub(super) fn ok(&self) {
        if self.down.swap(false, Relaxed) {
            tracing::info!("redis reachable again");
        }
    }

    pub(super) fn is_up(&self) -> bool {
        !self.down.load(Relaxed)
    }

    pub(super) fn get(&self) -> Result<(), String> {
        if self.is_up() {
            Ok(())
        } else {
            Err(self.why.lock().unwrap_or_else(|e| e.into_inner()).clone())
        }
    }
}

/// A connection manager: short connect timeout and quick reconnects, so that
/// a restarted Redis is found again within about a second.
pub(super) async fn manager(
    client: &Client,
    response_timeout: Duration,
) -> Result<ConnectionManager, RedisError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(1))
        .set_response_timeout(response_timeout)
        .set_factor(50)
        .set_max_delay(500)
        .set_number_of_retries(2);
    ConnectionManager::new_with_config(client.clone(), config).await
}

/// Connects, retrying until `opts.startup_timeout` has passed.
pub(super) async fn connect(
    client: &Client,
    opts: &RedisEmitterOptions,
    response_timeout: Duration,
) -> Result<ConnectionManager, EmitterError> {
    let deadline = tokio::time::Instant::now() + opts.startup_timeout;
    loop {
        let error = match tokio::time::timeout_at(deadline, manager(client, response_timeout)).await
        {
            Ok(Ok(conn)) => return Ok(conn),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        if tokio::time::Instant::now() + Duration::from_millis(200) >= deadline {
            return Err(EmitterError::Unreachable {
                url: opts.url.clone(),
                secs: opts.startup_timeout.as_secs().max(1),
                reason: error,
            });
        }
        tracing::debug!(%error, "redis not reachable yet; retrying");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn redis_error(opts: &RedisEmitterOptions, e: RedisError) -> EmitterError {
    EmitterError::Redis {
        url: opts.url.clone(),
        reason: e.to_string(),
    }
}

/// Stores this build's format version if the cluster has none yet, and
/// refuses a cluster of another version.
pub(super) async fn check_format(
    conn: &mut ConnectionManager,
    opts: &RedisEmitterOptions,
) -> Result<(), EmitterError> {
    let found: Option<String> = ::redis::pipe()
        .cmd("SET")
        .arg(keys::FORMAT)
        .arg(FORMAT)
        .arg("NX")
        .ignore()
        .cmd("GET")
        .arg(keys::FORMAT)
        .query_async::<(Option<String>,)>(conn)
        .await
        .map_err(|e| redis_error(opts, e))?
        .0;
    match found {
        Some(v) if v == FORMAT.to_string() => Ok(()),
        other => Err(EmitterError::FormatMismatch {
            url: opts.url.clone(),
            found: other.unwrap_or_default(),
            ours: FORMAT,
        }),
    }
}

/// Sets the liveness key to `nonce` when it is absent or already ours.
const CLAIM: &str = "local v = redis.call('GET', KEYS[1]) \
    if v == false or v == ARGV[1] then \
      redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 \
    end return 0";

/// Deletes the liveness key if it is ours.
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
      return redis.call('DEL', KEYS[1]) end return 0";

/// Claims this node's id. A key held by another instance is waited on for
/// one TTL (a node killed without closing leaves its key for that long); if
/// it is still held, another node runs with this id.
pub(super) async fn claim(
    conn: &mut ConnectionManager,
    opts: &RedisEmitterOptions,
    nonce: &str,
) -> Result<(), EmitterError> {
    let key = keys::alive(&opts.node_id);
    let deadline = tokio::time::Instant::now() + opts.alive_ttl + Duration::from_millis(500);
    loop {
        if refresh(conn, &key, nonce, opts.alive_ttl)
            .await
            .map_err(|e| redis_error(opts, e))?
        {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(EmitterError::NodeIdTaken {
                node: opts.node_id.clone(),
                key,
            });
        }
        tracing::info!(node = %opts.node_id, "node id held by another instance; waiting for its key to expire");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Refreshes the liveness key; false when another instance holds it.
pub(super) async fn refresh(
    conn: &mut ConnectionManager,
    key: &str,
    nonce: &str,
    ttl: Duration,
) -> Result<bool, RedisError> {
    let set: i64 = ::redis::cmd("EVAL")
        .arg(CLAIM)
        .arg(1)
        .arg(key)
        .arg(nonce)
        .arg(ttl.as_millis() as u64)
        .query_async(conn)
        .await?;
    Ok(set == 1)
}

/// Releases the liveness key if it is still ours.
pub(super) async fn release(
    conn: &mut ConnectionManager,
    key: &str,
    nonce: &str,
) -> Result<(), RedisError> {
    ::redis::cmd("EVAL")
        .arg(RELEASE)
        .arg(1)
        .arg(key)
        .arg(nonce)
        .query_async::<i64>(conn)
        .await
        .map(drop)
}
