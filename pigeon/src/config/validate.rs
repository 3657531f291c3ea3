//! Range checks, run once every layer is applied, so that a misconfigured
//! option stops startup naming it.

use super::{Config, ConfigError};
use crate::{acl::Acl, auth::PasswordFile};

/// Largest Remaining Length MQTT can encode (four bytes of variable length).
pub const MAX_PACKET_SIZE_LIMIT: usize = 268_435_455;

/// Smallest `max_packet_size`: below it a client's CONNECT would not fit.
pub const MIN_PACKET_SIZE_LIMIT: usize = 16;

fn invalid(key: &'static str, value: impl ToString, expected: &'static str) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.to_string(),
        expected,
    }
}

/// The files a valid configuration names, parsed.
pub(crate) struct Validated {
    /// The `acl_file`, if set.
    pub(crate) acl: Option<Acl>,
    /// The `password_file`, if set.
    pub(crate) passwords: Option<PasswordFile>,
}

impl Config {
    /// Checks every option's range, and that the ACL and password files (if
    /// any) parse: the one rule set, which [`crate::Broker::start`] applies too.
    ///
    /// ```
    /// let config = pigeon::Config { queue_limit: 0, ..Default::default() };
    /// assert_eq!(
    ///     config.validate().unwrap_err().to_string(),
    ///     "invalid value for --queue-limit / queue_limit: 0 (must be at least 1)"
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validated().map(drop)
    }

    /// [`Config::validate`], keeping the files it parsed (so starting reads
    /// each once).
    pub(crate) fn validated(&self) -> Result<Validated, ConfigError> {
        self.check_ranges()?;
        let passwords = self.load_password_file()?;
        let acl = self.load_acl()?;
        Ok(Validated { acl, passwords })
    }

    fn check_ranges(&self) -> Result<(), ConfigError> {
        const AT_LEAST_ONE: &str = "must be at least 1";
        if self.host.trim().is_empty() {
            return Err(invalid(
                "host",
                format!("{:?}", self.host),
                "expected an address or host name",
            ));
        }
        if self.id.is_empty() || self.id.contains(['/', '+', '#', '\0']) {
            return Err(invalid(
                "id",
                format!("{:?}", self.id),
                "must be non-empty, without `/`, `+`, `#`: it is a level of $SYS/<id>/ topics",
            ));
        }
        let at_least_one = [
            ("concurrency", self.concurrency),
            ("queue_limit", self.queue_limit),
            ("max_clients_id_length", self.max_clients_id_length),
            ("max_queued_messages", self.max_queued_messages),
            ("max_queued_bytes", self.max_queued_bytes),
            ("max_queued_bytes_total", self.max_queued_bytes_total),
            ("max_inflight", usize::from(self.max_inflight)),
            ("receive_maximum", usize::from(self.receive_maximum)),
        ];
        for (key, value) in at_least_one {
            if value == 0 {
                return Err(invalid(key, value, AT_LEAST_ONE));
            }
        }
        if self.max_clients_id_length > 65_535 {
            return Err(invalid(
                "max_clients_id_length",
                self.max_clients_id_length,
                "expected 1..=65535, the longest MQTT string",
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(invalid(
                "connect_timeout",
                0,
                "milliseconds, must be at least 1",
            ));
        }
        if self.drain_timeout.is_zero() {
            return Err(invalid(
                "drain_timeout",
                0,
                "milliseconds, must be at least 1",
            ));
        }
        if self.shutdown_timeout.is_zero() {
            return Err(invalid(
                "shutdown_timeout",
                0,
                "milliseconds, must be at least 1",
            ));
        }
        if self.heartbeat_interval.is_zero() {
            return Err(invalid(
                "heartbeat_interval",
                0,
                "milliseconds, must be at least 1",
            ));
        }
        if !(MIN_PACKET_SIZE_LIMIT..=MAX_PACKET_SIZE_LIMIT).contains(&self.max_packet_size) {
            return Err(invalid(
                "max_packet_size",
                self.max_packet_size,
                "expected 16..=268435455 bytes",
            ));
        }
        if let Some(reference) = &self.server_reference {
            if reference.trim().is_empty() {
                return Err(invalid(
                    "server_reference",
                    format!("{reference:?}"),
                    "expected a server name",
                ));
            }
        }
        self.validate_listeners()?;
        Ok(())
    }

    /// Each listener's address and path, and its TLS files (read and parsed,
    /// so a bad certificate stops startup naming the file).
    fn validate_listeners(&self) -> Result<(), ConfigError> {
        for listener in self.effective_listeners() {
            if listener.host.trim().is_empty() {
                return Err(invalid(
                    "listen",
                    listener.url(),
                    "expected an address or host name",
                ));
            }
            if !listener.path().starts_with('/') {
                return Err(invalid(
                    "listen",
                    listener.url(),
                    "a WebSocket path starts with /",
                ));
            }
            if listener.subprotocol().trim().is_empty() {
                return Err(invalid(
                    "listeners",
                    listener.url(),
                    "the subprotocol cannot be empty",
                ));
            }
            if let Some(files) = listener.tls_files(self)? {
                crate::tls::server_config(&files).map_err(|source| ConfigError::Tls { source })?;
            }
        }
        Ok(())
    }

    /// Reads the `--password-file`, if one is set.
    pub fn load_password_file(&self) -> Result<Option<PasswordFile>, ConfigError> {
        self.password_file
            .as_deref()
            .map(PasswordFile::load)
            .transpose()
            .map_err(ConfigError::PasswordFile)
    }

    /// Reads the `--acl-file`, if one is set (`None`: every topic is allowed).
    pub fn load_acl(&self) -> Result<Option<Acl>, ConfigError> {
        self.acl_file
            .as_deref()
            .map(Acl::load)
            .transpose()
            .map_err(ConfigError::Acl)
    }
}
