//! Listeners: where the broker accepts connections and over what.
//!
//! On the command line, `--listen URL` (repeatable) with `mqtt://HOST:PORT`,
//! `mqtts://HOST:PORT`, `ws://HOST:PORT/PATH` or `wss://HOST:PORT/PATH`; the TLS
//! ones use `--cert`, `--key`, `--ca-file`, `--require-certificate`. In TOML the
//! same as `listen = [...]`, and `[[listeners]]` tables that may set all of it
//! per listener:
//!
//! ```toml
//! cert = "server.pem"          # for TLS listeners that do not name their own
//! key = "server.key"
//! listen = ["mqtt://0.0.0.0:1883", "wss://0.0.0.0:8884/mqtt"]
//!
//! [[listeners]]
//! kind = "tls"                 # tcp, tls, ws, wss
//! port = 8883
//! ca_file = "clients-ca.pem"
//! require_certificate = true
//! use_identity_as_username = true
//!
//! [[listeners]]
//! kind = "tcp"
//! port = 1885
//! proxy_protocol = true        # behind HAProxy / a load balancer
//! max_connections = 500        # this listener's own limit
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError};
use crate::{hooks::ListenerKind, tls::TlsFiles};

/// What `--listen` accepts.
pub(crate) const URL_FORMS: &str =
    "expected mqtt://HOST:PORT, mqtts://HOST:PORT, ws://HOST:PORT/PATH or wss://HOST:PORT/PATH";

/// One listener. Unset TLS fields fall back to the broker-wide `cert`, `key`,
/// `ca_file`, `require_certificate` and `use_identity_as_username`.
///
/// ```
/// use pigeon::{config::Listener, hooks::ListenerKind};
/// let ws = Listener::parse_url("ws://127.0.0.1:8080").unwrap();
/// assert_eq!((ws.kind, ws.port, ws.path()), (ListenerKind::Ws, 8080, "/mqtt"));
/// assert_eq!(ws.url(), "ws://127.0.0.1:8080/mqtt");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// Transport: `tcp`, `tls`, `ws` or `wss`.
    pub kind: ListenerKind,
    /// Address to bind [default: 0.0.0.0].
    #[serde(default = "any_host")]
    pub host: String,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// WebSocket path [default: /mqtt].
    #[serde(default)]
    pub path: Option<String>,
    /// WebSocket subprotocol a client must offer [default: mqtt].
    #[serde(default)]
    pub subprotocol: Option<String>,
    /// Name in logs and in [`crate::hooks::Peer::listener`] [default: the URL].
    #[serde(default)]
    pub name: Option<String>,
    /// PEM certificate chain (TLS kinds).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// PEM private key (TLS kinds).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// PEM CA certificates to verify client certificates with.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Refuse clients without a valid certificate.
    #[serde(default)]
    pub require_certificate: Option<bool>,
    /// The certificate's common name becomes the user name.
    #[serde(default)]
    pub use_identity_as_username: Option<bool>,
    /// Expect a PROXY protocol v1 or v2 header first (behind a load balancer);
    /// its source address is the client's [default: false].
    #[serde(default)]
    pub proxy_protocol: Option<bool>,
    /// Connections open at once on this listener (besides the broker-wide
    /// `max_connections`); 0 or unset = no limit of its own.
    #[serde(default)]
    pub max_connections: Option<usize>,
}

fn any_host() -> String {
    "0.0.0.0".into()
}

impl Listener {
    /// A listener of `kind` on `host:port`, everything else default.
    pub fn new(kind: ListenerKind, host: impl Into<String>, port: u16) -> Self {
        Self {
            kind,
            host: host.into(),
            port,
            path: None,
            subprotocol: None,
            name: None,
            cert: None,
            key: None,
            ca_file: None,
            require_certificate: None,
            use_identity_as_username: None,
            proxy_protocol: None,
            max_connections: None,
        }
    }

    /// Parses a `--listen` URL (see `URL_FORMS`); the error says what is wrong.
    pub fn parse_url(url: &str) -> Result<Self, &'static str> {
        let (scheme, rest) = url.split_once("://").ok_or(URL_FORMS)?;
        let kind = match scheme {
            "mqtt" | "tcp" => ListenerKind::Tcp,
            "mqtts" | "tls" | "ssl" => ListenerKind::Tls,
            "ws" => ListenerKind::Ws,
            "wss" => ListenerKind::Wss,
            _ => return Err(URL_FORMS),
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], Some(&rest[at..])),
            None => (rest, None),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, port) = v6.split_once("]:").ok_or(URL_FORMS)?;
            (host, port)
        } else {
            authority.rsplit_once(':').ok_or(URL_FORMS)?
        };
        let port = port.parse().map_err(|_| "the port must be 0..=65535")?;
        if host.is_empty() {
            return Err(URL_FORMS);
        }
        let is_ws = matches!(kind, ListenerKind::Ws | ListenerKind::Wss);
        if path.is_some() && !is_ws {
            return Err("only ws:// and wss:// listeners have a path");
        }
        let mut listener = Self::new(kind, host, port);
        listener.path = path.map(str::to_owned);
        Ok(listener)
    }

    /// The listener as a URL (`ws://0.0.0.0:8080/mqtt`).
    pub fn url(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let path = match self.kind {
            ListenerKind::Ws | ListenerKind::Wss => self.path(),
            _ => "",
        };
        format!("{}://{host}:{}{path}", self.kind.scheme(), self.port)
    }

    /// Its name: the configured one, else the URL.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.url())
    }

    /// The WebSocket path.
    pub fn path(&self) -> &str {
        self.path.as_deref().unwrap_or("/mqtt")
    }

    /// The WebSocket subprotocol.
    pub fn subprotocol(&self) -> &str {
        self.subprotocol.as_deref().unwrap_or("mqtt")
    }

    /// Whether the certificate's common name replaces the CONNECT user name.
    pub fn identity_as_username(&self, config: &Config) -> bool {
        self.use_identity_as_username
            .unwrap_or(config.use_identity_as_username)
    }

    /// The TLS files of a TLS kind (its own, else the broker-wide ones);
    /// `None` for plain kinds.
    pub fn tls_files(&self, config: &Config) -> Result<Option<TlsFiles>, ConfigError> {
        if !self.kind.is_tls() {
            return Ok(None);
        }
        let missing = |key| ConfigError::Invalid {
            key,
            value: self.url(),
            expected: "a TLS listener needs --cert FILE and --key FILE (PEM)",
        };
        let cert = self.cert.clone().or_else(|| config.cert.clone());
        let key = self.key.clone().or_else(|| config.key.clone());
        let require_certificate = self
            .require_certificate
            .unwrap_or(config.require_certificate);
        let ca_file = self.ca_file.clone().or_else(|| config.ca_file.clone());
        if require_certificate && ca_file.is_none() {
            return Err(ConfigError::Invalid {
                key: "ca_file",
                value: self.url(),
                expected: "require_certificate needs --ca-file FILE to verify client certificates",
            });
        }
        if self.identity_as_username(config) && !require_certificate {
            return Err(ConfigError::Invalid {
                key: "use_identity_as_username",
                value: self.url(),
                expected: "needs --require-certificate, so that every client has an identity",
            });
        }
        Ok(Some(TlsFiles {
            cert: cert.ok_or_else(|| missing("cert"))?,
            key: key.ok_or_else(|| missing("key"))?,
            ca_file,
            require_certificate,
        }))
    }
}

impl Config {
    /// The listeners the broker binds: [`Config::listeners`], or when it is
    /// empty, plain TCP on `host:port`.
    pub fn effective_listeners(&self) -> Vec<Listener> {
        if self.listeners.is_empty() {
            vec![Listener::new(ListenerKind::Tcp, &self.host, self.port)]
        } else {
            self.listeners.clone()
        }
    }
}
