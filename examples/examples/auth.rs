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

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use clap::Parser;
use pigeon::{codec::topic, prelude::*};

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

/// Where the users are: a value of the module (the bundled file), replaced
/// by `--users` at startup.
pub(crate) struct UsersPath(pub(crate) PathBuf);

/// The user table, built by an async factory from the [`UsersPath`] value: it
/// reads its file at bootstrap, and a bad file stops the start-up with a
/// message naming the provider and the file.
#[injectable(factory = Self::load)]
pub(crate) struct UserStore {
    users: HashMap<String, User>,
}

impl UserStore {
    async fn load(path: Arc<UsersPath>) -> Result<Self, String> {
        // Off the runtime's threads: a slow disk does not stall other tasks.
        let file = path.0.clone();
        let text = tokio::task::spawn_blocking(move || std::fs::read_to_string(file))
            .await
            .map_err(|e| e.to_string())?;
        let name = path.0.display();
        let text = text.map_err(|e| format!("{name}: {e}"))?;
        let file: UsersFile = toml::from_str(&text).map_err(|e| format!("{name}: {e}"))?;
        Ok(Self { users: file.users })
    }
}

#[injectable]
pub(crate) struct AuthService {
    store: Arc<UserStore>,
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

#[module(
    port = 1884,
    id = "auth-example",
    values = [UsersPath(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/auth_users.toml").into())],
    providers = [UserStore, AuthService]
)]
pub(crate) struct AppModule;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    common: pigeon_examples::Args,
    /// TOML file of users: `[users.NAME] password, publish = [filters], subscribe = [filters]`
    /// (default: the bundled `auth_users.toml`).
    #[arg(long)]
    users: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut app = Pigeon::builder::<AppModule>().configure(|config| cli.common.apply(config));
    if let Some(users) = cli.users {
        app = app.value(UsersPath(users));
    }
    pigeon_examples::serve_app(app.bootstrap().await?).await
}
