//! Topic access control in Mosquitto's `acl_file` format, so people moving from
//! Mosquitto keep their files.
//!
//! CONTRACT (used by the engine): `Acl::load(path)` / `Acl::parse(text)`, then
//! `can_publish` / `can_subscribe` per message and per SUBSCRIBE entry.

use std::path::Path;

/// A parsed ACL file.
#[derive(Debug, Clone, Default)]
pub struct Acl {}

/// Why an ACL file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("acl file {path}: line {line}: {message}")]
pub struct AclError {
    pub path: String,
    pub line: usize,
    pub message: String,
}

impl Acl {
    /// Reads and parses an ACL file.
    pub fn load(path: &Path) -> Result<Self, AclError> {
        let _ = path;
        todo!("acl")
    }

    /// Parses ACL text (`source` names it in errors).
    pub fn parse(text: &str, source: &str) -> Result<Self, AclError> {
        let _ = (text, source);
        todo!("acl")
    }

    /// May this client publish to `topic`?
    pub fn can_publish(&self, client_id: &str, username: Option<&str>, topic: &str) -> bool {
        let _ = (client_id, username, topic);
        todo!("acl")
    }

    /// May this client subscribe to `filter`? (Read access to every topic the filter can match.)
    pub fn can_subscribe(&self, client_id: &str, username: Option<&str>, filter: &str) -> bool {
        let _ = (client_id, username, filter);
        todo!("acl")
    }

    /// May this client receive a message on `topic`? (Checked per delivered message.)
    pub fn can_read(&self, client_id: &str, username: Option<&str>, topic: &str) -> bool {
        let _ = (client_id, username, topic);
        todo!("acl")
    }
}
