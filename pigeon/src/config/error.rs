//! Why a configuration was refused. Every message names the option, as its
//! flag and its TOML key, so the user knows what to fix where.

use std::path::PathBuf;

use crate::{acl::AclError, auth::PasswordFileError, tls::TlsError};

/// A configuration that cannot start a broker.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bad command line (unknown flag, value of the wrong type), or `--help` /
    /// `--version`: `clap::Error::exit` prints it and exits with the right code.
    #[cfg(feature = "cli")]
    #[error(transparent)]
    Args(#[from] clap::Error),

    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },

    /// The config file is not TOML.
    #[error("config file {} is not valid TOML: {message}", .path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message, with the line.
        message: String,
    },

    /// A key of the config file is not an option.
    #[error("unknown key `{key}` in {}{}", .path.display(), hint(.suggestion))]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key as written.
        key: String,
        /// The option it is closest to, if any is close.
        suggestion: Option<&'static str>,
    },

    /// A key of the config file has a value of the wrong type or range.
    #[error("invalid value for {} / {key} in {}: {message}", flag(.key), .path.display())]
    FileValue {
        /// The file.
        path: PathBuf,
        /// The option (its snake_case key).
        key: &'static str,
        /// What is wrong with the value.
        message: String,
    },

    /// A `PIGEON_*` environment variable's value is not one its option takes
    /// (a type or a range that does not fit).
    #[error("invalid value for {var}: {value} ({message})")]
    Env {
        /// The variable, e.g. `PIGEON_QUEUE_LIMIT`.
        var: String,
        /// Its value as given.
        value: String,
        /// What is wrong with it.
        message: String,
    },

    /// A `PIGEON_*` variable that names an option but cannot be read as one
    /// (a nested key that is not `PIGEON_LISTENERS__<N>__<FIELD>`, a
    /// listener left incomplete).
    #[error("invalid environment variable {var}: {message}")]
    EnvName {
        /// The variable (for an incomplete listener, `PIGEON_LISTENERS__<N>`).
        var: String,
        /// What is wrong.
        message: String,
    },

    /// An option's value is out of its range (wherever it came from).
    #[error("invalid value for {} / {key}: {value} ({expected})", flag(.key))]
    Invalid {
        /// The option (its snake_case key).
        key: &'static str,
        /// The value given, as text.
        value: String,
        /// The range or form expected.
        expected: &'static str,
    },

    /// A settings section (`pigeon::app::Settings<T>`) does not deserialize
    /// into its type: the section, the key (when the error is at one) and the
    /// file it came from.
    #[error("invalid settings section [{section}]{origin}: {}{message}", at_key(.key))]
    Section {
        /// The section, e.g. `app`.
        section: String,
        /// The key inside it (`port`, `db.port`), when the error is at one.
        key: Option<String>,
        /// Where the section came from, as it is written in the message
        /// (` in pigeon.toml`, ` (no config file)`).
        origin: String,
        /// What is wrong.
        message: String,
    },

    /// A table of the config file is no option and no provider reads it as
    /// its settings (a misspelt section or option).
    #[error(
        "unknown section [{section}] in {}: no broker option and no provider's settings (`Settings<T>` with `T::NAME = \"{section}\"`){}",
        .path.display(),
        hint_section(.suggestion)
    )]
    UnknownSection {
        /// The file.
        path: PathBuf,
        /// The table's name.
        section: String,
        /// The read section (`[app]`) or option (`` `listeners` ``) it is closest to.
        suggestion: Option<String>,
    },

    /// The ACL file named by `--acl-file` is unreadable or malformed.
    #[error("invalid value for --acl-file / acl_file: {0}")]
    Acl(#[source] AclError),

    /// The password file named by `--password-file` is unreadable or malformed.
    #[error("invalid value for --password-file / password_file: {0}")]
    PasswordFile(#[source] PasswordFileError),

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

fn at_key(key: &Option<String>) -> String {
    key.as_ref()
        .map(|k| format!("key `{k}`: "))
        .unwrap_or_default()
}

fn hint_section(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!(" (did you mean {s}?)"))
        .unwrap_or_default()
}
