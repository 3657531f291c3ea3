//! Re-reading the ACL and password files of a running broker (the binary does
//! it on SIGHUP). Connections stay up: later checks use the new contents.

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
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let acl = self.acl.as_ref().map(ToString::to_string);
        let passwords = self.password_file.as_ref().map(ToString::to_string);
        let parts: Vec<String> = acl.into_iter().chain(passwords).collect();
        write!(f, "reload failed, old contents kept: {}", parts.join("; "))
    }
}

impl std::error::Error for ReloadError {}

impl BrokerHandle {
    /// Reads the ACL file and the password file again, each replacing the old
    /// one only if it parses (an error is logged, naming the file and line, and
    /// returned). Connected clients stay connected; the new ACL applies to
    /// their next publish, subscribe and delivery, the new passwords to the
    /// next CONNECT. Files not configured at startup are not read.
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
        match (&error.acl, &error.password_file) {
            (None, None) => Ok(()),
            _ => Err(error),
        }
    }
}
