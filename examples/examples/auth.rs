//! Username/password authentication from a config file, CONNACK refusal for
//! wrong credentials and a per-user topic ACL.
//!
//! `cargo run --release --example auth -- --port 1884 --users examples/examples/auth_users.toml`
//!
//! ```toml
//! [users.alice]
//! password = "wonderland"
//! publish = ["alice/#", "chat/+"]
//! subscribe = ["alice/#", "chat/#"]
//! ```

use std::{collections::HashMap, path::PathBuf, sync::OnceLock};

use clap::Parser;
use pigeon::{
    app::{Container, Injectable},
    codec::topic,
    prelude::*,
    BootstrapError,
};

#[derive(Debug, serde::Deserialize)]
struct User {
    password: String,
    #[serde(default)]
    publish: Vec<String>,
    #[serde(default)]
    subscribe: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
struct UsersFile {
    users: HashMap<String, User>,
}

/// Where `main` tells the provider to read its users from.
pub(crate) static USERS_FILE: OnceLock<PathBuf> = OnceLock::new();

/// The user table, a provider with a hand-written `Injectable`: it reads its file
/// at bootstrap, and a bad file stops the start-up with a message naming it.
pub(crate) struct UserStore {
    users: HashMap<String, User>,
}

impl Injectable for UserStore {
    fn create(_: &Container) -> Result<Self, BootstrapError> {
        let fail = |message: String| BootstrapError::Provider {
            provider: "UserStore",
            message,
        };
        let path = USERS_FILE
            .get()
            .ok_or_else(|| fail("no users file given".into()))?;
        let text =
            std::fs::read_to_string(path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
        let file: UsersFile =
            toml::from_str(&text).map_err(|e| fail(format!("{}: {e}", path.display())))?;
        Ok(Self { users: file.users })
    }
}

#[injectable]
pub(crate) struct AuthService {
    store: std::sync::Arc<UserStore>,
}

impl AuthService {
    fn user(&self, client: &Client) -> Option<&User> {
        client
            .username()
            .and_then(|name| self.store.users.get(name))
    }
}

#[handlers]
impl AuthService {
    #[on_authenticate]
    async fn check_password(&self, credential: Credential) -> Result<(), AuthError> {
        let known = credential
            .username
            .as_deref()
            .and_then(|name| self.store.users.get(name))
            .zip(credential.password.as_deref())
            .is_some_and(|(user, given)| user.password.as_bytes() == given);
        if known {
            Ok(())
        } else {
            // 3.x CONNACK return code 4, v5 reason 0x86.
            Err(AuthError::with_return_code("bad user name or password", 4))
        }
    }

    #[on_authorize_publish]
    async fn may_publish(
        &self,
        client: Option<Client>,
        packet: &mut Publish,
    ) -> Result<(), Denied> {
        // Wills of clients that are gone were checked when they were set.
        let Some(client) = client else { return Ok(()) };
        let allowed = self
            .user(&client)
            .is_some_and(|u| u.publish.iter().any(|f| topic::matches(f, &packet.topic)));
        if allowed {
            Ok(())
        } else {
            Err(Denied::new(format!(
                "{} may not publish to {}",
                client.id(),
                packet.topic
            )))
        }
    }

    #[on_authorize_subscribe]
    async fn may_subscribe(
        &self,
        client: Client,
        sub: Subscription,
    ) -> Result<Option<Subscription>, Denied> {
        // A requested filter is allowed when one of the user's filters covers it.
        let allowed = self
            .user(&client)
            .is_some_and(|u| u.subscribe.iter().any(|f| topic::matches(f, &sub.topic)));
        Ok(allowed.then_some(sub))
    }

    #[on_connack_sent]
    async fn connack(&self, client: Client, packet: Packet<ConnAck>) {
        tracing::info!(client = client.id(), user = ?client.username(), reason = ?packet.0.reason_code, "CONNACK");
    }
}

#[module(port = 1884, id = "auth-example", providers = [UserStore, AuthService])]
pub(crate) struct AppModule;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    common: pigeon_examples::Args,
    /// TOML file of users: `[users.NAME] password, publish = [filters], subscribe = [filters]`.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/auth_users.toml"))]
    users: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pigeon_examples::init_tracing();
    let cli = Cli::parse();
    let _ = USERS_FILE.set(cli.users);
    pigeon_examples::serve::<AppModule>(&cli.common).await
}
