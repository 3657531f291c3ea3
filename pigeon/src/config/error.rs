//! Why a configuration was refused. Every message names the option, as its
//! flag and its TOML key, so the user knows what to fix where.

use std::path::PathBuf;

use crate::{acl::AclError, tls::TlsError};

/// A configuration that cannot start a broker.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bad command line (unknown flag, value of the wrong type), or `--help` /
    /// `--version`: `clap::Error::exit` prints it and exits with the right code.
    #[error(transparent)]
    Args(#[from] clap::Error),

    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The config file is not TOML.
    #[error("config file {} is not valid TOML: {message}", .path.display())]
    Syntax { path: PathBuf, message: String },

    /// A key of the config file is not an option.
    #[error("unknown key `{key}` in {}{}", .path.display(), hint(.suggestion))]
    UnknownKey {
        path: PathBuf,
        key: String,
        suggestion: Option<&'static str>,
    },

    /// A key of the config file has a value of the wrong type or range.
    #[error("invalid value for {} / {key} in {}: {message}", flag(.key), .path.display())]
    FileValue {
        path: PathBuf,
        key: &'static str,
        message: String,
    },

    /// An option's value is out of its range (wherever it came from).
    #[error("invalid value for {} / {key}: {value} ({expected})", flag(.key))]
    Invalid {
        key: &'static str,
        value: String,
        expected: &'static str,
    },

    /// The ACL file named by `--acl-file` is unreadable or malformed.
    #[error("invalid value for --acl-file / acl_file: {0}")]
    Acl(#[source] AclError),

    /// A TLS listener's certificate, key or CA file is unreadable or unusable.
    #[error("invalid value for {} / {}: {source}", flag(.source.key()), .source.key())]
    Tls {
        /// What is wrong with which file.
        #[source]
        source: TlsError,
    },
}

/// The flag of a key (`[[listeners]]` has none: it is TOML only).
fn flag(key: &str) -> String {
    match key {
        "listeners" => "[[listeners]]".to_owned(),
        _ => format!("--{}", key.replace('_', "-")),
    }
}

fn hint(suggestion: &Option<&'static str>) -> String {
    suggestion
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}
