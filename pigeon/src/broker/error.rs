//! Why a broker could not start, or refused a publication from the application.

use crate::{acl::AclError, config::ConfigError};

/// Why [`Broker::start`](crate::Broker::start) failed. Every message names what
/// to fix: the option (as its flag and TOML key), the ACL file and line, or the
/// address that could not be bound.
///
/// ```no_run
/// # async fn run() {
/// use pigeon::{broker::StartError, hooks::Hooks, Broker, Config};
/// let config = Config { max_inflight: 0, ..Config::default() };
/// match Broker::start(config, Hooks::none()).await {
///     Err(StartError::InvalidOption(e)) => eprintln!("fix the option: {e}"),
///     Err(StartError::Listen(e)) => eprintln!("cannot listen: {e}"),
///     Err(e) => eprintln!("{e}"),
///     Ok(broker) => broker.close().await,
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// An option is out of its range: the same error as [`crate::Config::validate`].
    #[error(transparent)]
    InvalidOption(ConfigError),
    /// The `acl_file` cannot be read or parsed (the error names the file and line).
    #[error("invalid value for --acl-file / acl_file: {0}")]
    Acl(AclError),
    /// The `password_file` cannot be read or parsed (the error names the file and line).
    #[error("invalid value for --password-file / password_file: {0}")]
    PasswordFile(crate::auth::PasswordFileError),
    /// The store (`persistence`) could not be opened: the error names the file.
    #[error("invalid value for --persistence / persistence: {0}")]
    Store(crate::persistence::StoreError),
    /// The Redis store (`persistence = redis://...`) could not be reached:
    /// the error names the URL.
    #[error("invalid value for --persistence / persistence: {0}")]
    RedisStore(crate::persistence::RedisStoreError),
    /// A listener could not be set up: a TLS file it names is unusable, or its
    /// address could not be bound (the error names the listener's URL).
    #[error(transparent)]
    Listen(#[from] crate::transport::TransportError),
    /// The clustered emitter (`emitter`, `node_id`) could not join: Redis is
    /// unreachable, the node id is taken, or the cluster runs another format.
    #[error(transparent)]
    Emitter(#[from] crate::emitter::EmitterError),
    /// The HTTP listener (`http`) could not be bound.
    #[error("invalid value for --http / http: cannot listen on {addr}: {error}")]
    Http {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why binding failed.
        error: std::io::Error,
    },
}

// The variants above carry their cause in their own message (which names the
// option), not as a `source`: an error chain printed with `{:#}` (anyhow)
// would say it twice.
impl From<crate::persistence::StoreError> for StartError {
    fn from(e: crate::persistence::StoreError) -> Self {
        StartError::Store(e)
    }
}

impl From<crate::persistence::RedisStoreError> for StartError {
    fn from(e: crate::persistence::RedisStoreError) -> Self {
        StartError::RedisStore(e)
    }
}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> Self {
        match e {
            ConfigError::Acl(acl) => StartError::Acl(acl),
            ConfigError::PasswordFile(e) => StartError::PasswordFile(e),
            other => StartError::InvalidOption(other),
        }
    }
}

/// Why [`BrokerHandle::publish`](crate::BrokerHandle::publish) refused a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The topic is not a valid topic name (empty, a wildcard, U+0000).
    #[error("invalid topic name {0:?}")]
    InvalidTopic(String),
    /// The broker was closed.
    #[error("the broker is closed")]
    Closed,
}

/// Why [`BrokerHandle::subscribe`](crate::BrokerHandle::subscribe) refused a filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The filter is not a valid topic filter (empty, a misplaced wildcard,
    /// U+0000, a malformed `$share/<group>/<filter>`).
    #[error("invalid topic filter {0:?}")]
    InvalidFilter(String),
    /// The broker was closed.
    #[error("the broker is closed")]
    Closed,
}
