//! Adding, changing and removing one user of a password file (what
//! `pigeon passwd` does), keeping every other line as it was.

use std::{io::Write, path::Path};

use super::{
    file::{with_entry, PasswordFileError},
    hash::{HashKind, PasswordHash},
    PasswordFile,
};

/// What to do to a user's entry.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// Add the user, or change its password, hashed in this format.
    Set {
        /// The new password.
        password: &'a [u8],
        /// The hash format to store it in.
        kind: HashKind,
    },
    /// Remove the user.
    Delete,
}

/// What [`update_file`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The user was not in the file (the file may have been created).
    Added,
    /// The user's password was replaced.
    Changed,
    /// The user's line was removed.
    Deleted,
}

/// Why a username cannot go in a password file, if it cannot.
///
/// ```
/// assert!(pigeon::auth::check_username("alice").is_ok());
/// assert!(pigeon::auth::check_username("a:b").is_err());
/// ```
pub fn check_username(user: &str) -> Result<(), String> {
    if user.is_empty() {
        return Err("the username is empty".into());
    }
    if user.contains(':') {
        return Err("a username cannot contain `:` (it ends the username in the file)".into());
    }
    if user.starts_with('#') {
        return Err("a username cannot start with `#` (the line would be a comment)".into());
    }
    if user.trim() != user || user.chars().any(char::is_control) {
        return Err(
            "a username cannot have leading or trailing blanks or control characters".into(),
        );
    }
    if user.len() > 65_535 {
        return Err("a username is at most 65535 bytes (MQTT's longest string)".into());
    }
    Ok(())
}

/// Applies `change` to `user` in the file at `path`, creating it (mode 0600)
/// when missing. The existing file must parse (a broken line is reported with
/// its number rather than carried along); the new one replaces it atomically.
pub fn update_file(path: &Path, user: &str, change: Change) -> Result<Outcome, PasswordFileError> {
    let fail = |message: String| PasswordFileError::file(path, message);
    check_username(user).map_err(fail)?;
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(fail(format!("cannot read it: {e}"))),
    };
    PasswordFile::parse(&text, &path.display().to_string())?;
    let hash = match change {
        Change::Set { password, kind } => Some(PasswordHash::create(kind, password).map_err(fail)?),
        Change::Delete => None,
    };
    let (new_text, found) = with_entry(&text, user, hash.as_ref());
    let outcome = match (found, hash.is_some()) {
        (true, true) => Outcome::Changed,
        (false, true) => Outcome::Added,
        (true, false) => Outcome::Deleted,
        (false, false) => return Err(fail(format!("user `{user}` is not in the file"))),
    };
    replace(path, &new_text).map_err(|e| fail(format!("cannot write it: {e}")))?;
    Ok(outcome)
}

/// Writes `text` to a temporary file beside `path` and renames it over `path`,
/// so that a broker reloading meanwhile reads the old file or the new one.
fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Hashes are secrets too: only the owner reads a new file.
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
