//! Re-reading the ACL, password and TLS files of a running broker (the binary
//! does it on SIGHUP). Connections stay up: later checks and handshakes use the
//! new contents.

use std::{fmt, sync::Arc};

use super::BrokerHandle;
use crate::{acl::Acl, auth::PasswordFileError};

/// The files a reload could not read; each keeps its old contents.
#[derive(Debug, Default)]
pub struct ReloadError {
    /// The `acl_file` error, if it failed.
    pub acl: Option<crate::acl::AclError>,
    /// The `password_file` error, if it failed.
    pub password_file: Option<PasswordFileError>,
    /// The TLS listeners whose certificate, key or CA file failed (each keeps
    /// its previous configuration).
    pub tls: Vec<crate::tls::TlsError>,
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let acl = self.acl.as_ref().map(ToString::to_string);
        let passwords = self.password_file.as_ref().map(ToString::to_string);
        let tls = self.tls.iter().map(ToString::to_string);
        let parts: Vec<String> = acl.into_iter().chain(passwords).chain(tls).collect();
        write!(f, "reload failed, old contents kept: {}", parts.join("; "))
    }
}

impl std::error::Error for ReloadError {}

impl BrokerHandle {
    /// Reads the ACL file, the password file and every TLS listener's
    /// certificate, key and CA files again, each replacing the old contents
    /// only if it parses (an error is logged, naming the file, and returned).
    /// Connected clients stay connected; the new ACL applies to their next
    /// publish, subscribe and delivery, the new passwords to the next CONNECT,
    /// the new certificates to the next TLS handshake. Files not configured at
    /// startup are not read.
    // Called once per SIGHUP: the error's size costs nothing, and keeping
    // every failure in plain fields keeps it easy to match on.
    #[allow(clippy::result_large_err)]
    pub fn reload(&self) -> Result<(), ReloadError> {
        let engine = &self.engine;
        let mut error = ReloadError::default();
        if let Some(path) = &engine.config.acl_file {
            match Acl::load(path) {
                Ok(acl) => {
                    let entries = acl.len();
                    engine.acl.store(Some(Arc::new(acl)));
                    tracing::info!(acl_file = %path.display(), entries, "ACL file reloaded");
                }
                Err(e) => {
                    tracing::error!("{e}; keeping the previous ACL");
                    error.acl = Some(e);
                }
            }
        }
        if let Err(e) = engine.authenticator.reload() {
            tracing::error!("{e}; keeping the previous passwords");
            error.password_file = Some(e);
        }
        error.tls = crate::transport::reload_tls(&self.endpoints);
        match (&error.acl, &error.password_file, error.tls.is_empty()) {
            (None, None, true) => Ok(()),
            _ => Err(error),
        }
    }
}
