//! MQTT 5.0 enhanced authentication: a toy challenge-response method driven by
//! an `#[on_authenticate]` handler through the `AuthExchange` extractor.
//!
//! `cargo run --release --example enhanced_auth -- --port 1884`
//!
//! Method `PIGEON-NONCE` (a toy, not a real mechanism: use SCRAM in production):
//! 1. the client sends CONNECT with Authentication Method `PIGEON-NONCE` and its
//!    user name;
//! 2. the broker answers AUTH 0x18 with a fresh nonce as Authentication Data;
//! 3. the client answers AUTH 0x18 with `hex(fnv1a64(nonce ":" password))`;
//! 4. the broker checks it: CONNACK 0 with data `welcome <user>`, or CONNACK
//!    0x87. Re-authentication (AUTH 0x19) runs the same exchange; a failure
//!    disconnects the client with 0x87. Users: `alice` / `wonderland`,
//!    `bob` / `builder`.
//!
//! Clients without an Authentication Method connect as usual (the handler
//! passes); any other method is refused with 0x8C Bad authentication method.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
    time::{SystemTime, UNIX_EPOCH},
};

use clap::Parser;
use pigeon::prelude::*;
use pigeon_examples::{serve, Args};

const METHOD: &str = "PIGEON-NONCE";
const USERS: &[(&str, &str)] = &[("alice", "wonderland"), ("bob", "builder")];

/// FNV-1a, 64 bits: the toy "proof" of knowing the password.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What the client must answer to `nonce` with `password`.
pub(crate) fn proof(nonce: &str, password: &str) -> String {
    format!("{:016x}", fnv1a64(format!("{nonce}:{password}").as_bytes()))
}

#[injectable]
pub(crate) struct NonceAuth {
    /// The nonce each client id is challenged with, until it answers.
    #[inject(default)]
    pending: Mutex<HashMap<String, String>>,
    #[inject(default)]
    counter: AtomicU64,
}

impl NonceAuth {
    fn fresh_nonce(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{:016x}", fnv1a64(format!("{t}-{n}").as_bytes()))
    }
}

#[handlers]
impl NonceAuth {
    #[on_authenticate]
    async fn nonce(
        &self,
        client: Client,
        credential: Credential,
        auth: AuthExchange,
    ) -> Result<AuthStep, AuthError> {
        if auth.method.as_deref() != Some(METHOD) {
            // Plain CONNECTs are not this handler's business; unknown methods
            // end with 0x8C because no handler answers for them.
            return Ok(AuthStep::Pass);
        }
        let user = credential.username.clone().unwrap_or_default();
        let Some((_, password)) = USERS.iter().find(|(u, _)| *u == user) else {
            return Err(AuthError::new(format!("unknown user {user:?}")));
        };
        if auth.step == 0 {
            let nonce = self.fresh_nonce();
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(client.id().to_owned(), nonce.clone());
            tracing::info!(
                client = client.id(),
                reauth = auth.reauthenticate,
                "challenge sent"
            );
            return Ok(AuthStep::continue_with(nonce));
        }
        let nonce = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(client.id())
            .ok_or_else(|| AuthError::new("no challenge pending"))?;
        let answer = auth.data.as_deref().unwrap_or_default();
        if answer == proof(&nonce, password).as_bytes() {
            tracing::info!(client = client.id(), user, "authenticated");
            Ok(AuthStep::success_with(format!("welcome {user}")))
        } else {
            tracing::info!(client = client.id(), user, "wrong answer");
            Err(AuthError::new("wrong answer to the challenge"))
        }
    }
}

#[module(port = 1884, id = "enhanced-auth-example", providers = [NonceAuth])]
pub(crate) struct AppModule;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    serve::<AppModule>(&Args::parse()).await
}
