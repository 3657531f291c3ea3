//! The built-in CONNECT check: `allow_anonymous`, then the password file.

use std::{path::PathBuf, sync::Arc};

use arc_swap::ArcSwap;
use pigeon_codec::{Protocol, ReasonCode};
use tokio::sync::Semaphore;

use super::{PasswordFile, PasswordFileError};
use crate::hooks::Credential;

/// Why the built-in check refused a CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No username, and `allow_anonymous` is false.
    Anonymous,
    /// Unknown user, wrong or missing password.
    BadCredentials,
}

impl Refusal {
    /// The CONNACK code, as Mosquitto 2.x answers: MQTT 3.x gets 5 (not
    /// authorized) for both; MQTT 5.0 gets 0x86 Bad user name or password for
    /// credentials that do not match, and 0x87 Not authorized when there were
    /// none to check.
    pub(crate) fn reason_code(self, protocol: Protocol) -> ReasonCode {
        match (self, protocol.is_v5()) {
            (Refusal::BadCredentials, true) => ReasonCode::BadUserNameOrPassword,
            _ => ReasonCode::NotAuthorized,
        }
    }

    /// The reason string (MQTT 5.0) and log message.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Refusal::Anonymous => "anonymous clients are not allowed",
            Refusal::BadCredentials => "bad user name or password",
        }
    }
}

/// The password file a broker checks against, and where to reload it from.
struct Loaded {
    path: PathBuf,
    file: ArcSwap<PasswordFile>,
}

/// `allow_anonymous` and the password file of a running broker.
pub(crate) struct Authenticator {
    allow_anonymous: bool,
    passwords: Option<Loaded>,
    /// Hash checks at once: each argon2id check holds tens of MiB, so a crowd
    /// connecting at once waits here instead of exhausting memory and threads.
    slots: Semaphore,
}

impl Authenticator {
    /// Checks against `passwords`, read from `path` (where `reload` reads it
    /// again), if any.
    pub(crate) fn new(allow_anonymous: bool, passwords: Option<(PathBuf, PasswordFile)>) -> Self {
        let passwords = passwords.map(|(path, file)| {
            tracing::info!(password_file = %path.display(), users = file.len(), "password file loaded");
            Loaded {
                path,
                file: ArcSwap::from_pointee(file),
            }
        });
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            allow_anonymous,
            passwords,
            slots: Semaphore::new(parallel),
        }
    }

    /// Checks a CONNECT's credentials. A client without a username is
    /// anonymous; one with a username must match the password file, if any.
    pub(crate) async fn check(&self, credential: &Credential) -> Result<(), Refusal> {
        let Some(username) = credential.username.as_deref() else {
            return match self.allow_anonymous {
                true => Ok(()),
                false => Err(Refusal::Anonymous),
            };
        };
        let Some(passwords) = &self.passwords else {
            return Ok(());
        };
        let Some(password) = credential.password.clone() else {
            return Err(Refusal::BadCredentials);
        };
        let file = passwords.file.load_full();
        let username = username.to_owned();
        // Closed only at drop, so a permit always comes.
        let _permit = self.slots.acquire().await;
        let verified = tokio::task::spawn_blocking(move || file.verify(&username, &password)).await;
        match verified {
            Ok(true) => Ok(()),
            _ => Err(Refusal::BadCredentials),
        }
    }

    /// Reads the password file again. On error the old contents stay in force.
    /// `Ok(false)` when there is no password file.
    pub(crate) fn reload(&self) -> Result<bool, PasswordFileError> {
        let Some(passwords) = &self.passwords else {
            return Ok(false);
        };
        let file = Arc::new(PasswordFile::load(&passwords.path)?);
        passwords.file.store(file.clone());
        // Logged once in force: tests and operators take the line as "done".
        tracing::info!(password_file = %passwords.path.display(), users = file.len(), "password file reloaded");
        Ok(true)
    }
}
