//! The password file: `user:hash` lines, `#` comments, blank lines; read whole
//! (a malformed line refuses the file, naming its line) and edited line by line.

use std::{collections::HashMap, fmt, path::Path};

use super::hash::PasswordHash;

/// Why a password file could not be read or written (`line` is 0 when the
/// problem is the file itself, e.g. it cannot be opened).
#[derive(Debug)]
pub struct PasswordFileError {
    /// The file, as given.
    pub path: String,
    /// 1-based line number, or 0.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl PasswordFileError {
    pub(crate) fn file(path: &Path, message: impl Into<String>) -> Self {
        Self {
            path: path.display().to_string(),
            line: 0,
            message: message.into(),
        }
    }
}

impl fmt::Display for PasswordFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "password file {}: ", self.path)?;
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for PasswordFileError {}

/// A parsed password file.
///
/// ```
/// use pigeon::auth::PasswordFile;
/// let text = "# made by mosquitto_passwd\ncarol:$6$h+cl7BVunRCievzf$UTQ2ggInF1J0yPkLOfgoSZlyiZlnK3V6PfnjV0HVyxrWSmrmftU6rSheWBK/UjCy20WcCpev0zrJjC65YV11Qw==\n";
/// let file = PasswordFile::parse(text, "example").unwrap();
/// assert!(file.verify("carol", b"hello"));
/// assert!(!file.verify("carol", b"wrong"));
/// assert!(!file.verify("dave", b"hello"));
/// let err = PasswordFile::parse("carol:hello\n", "example").unwrap_err();
/// assert!(err.to_string().starts_with("password file example: line 1: "), "{err}");
/// ```
#[derive(Debug, Clone, Default)]
pub struct PasswordFile {
    users: HashMap<String, PasswordHash>,
    /// Checked (and the answer thrown away) for unknown users, so that a
    /// refusal takes as long whether or not the user exists.
    decoy: Option<PasswordHash>,
}

impl PasswordFile {
    /// Reads and parses a password file.
    pub fn load(path: &Path) -> Result<Self, PasswordFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PasswordFileError::file(path, format!("cannot read it: {e}")))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses password-file text (`source` names it in errors).
    pub fn parse(text: &str, source: &str) -> Result<Self, PasswordFileError> {
        let mut users = HashMap::new();
        let mut first_line = HashMap::new();
        let mut decoy = None;
        for (index, raw) in text.lines().enumerate() {
            let error = |message: String| PasswordFileError {
                path: source.to_owned(),
                line: index + 1,
                message,
            };
            let Some((user, hash)) = entry(raw).map_err(error)? else {
                continue;
            };
            let hash = PasswordHash::parse(hash)
                .map_err(|message| error(format!("user `{user}`: {message}")))?;
            if let Some(earlier) = first_line.insert(user.to_owned(), index + 1) {
                return Err(error(format!("user `{user}` is already on line {earlier}")));
            }
            decoy.get_or_insert_with(|| hash.clone());
            users.insert(user.to_owned(), hash);
        }
        Ok(Self { users, decoy })
    }

    /// Whether `username` is in the file with this password. Slow by design
    /// (the hash functions are): call it off the async threads.
    pub fn verify(&self, username: &str, password: &[u8]) -> bool {
        match self.users.get(username) {
            Some(hash) => hash.verify(password),
            None => {
                if let Some(decoy) = &self.decoy {
                    let _ = decoy.verify(password);
                }
                false
            }
        }
    }

    /// Whether the file has an entry for `username`.
    pub fn contains(&self, username: &str) -> bool {
        self.users.contains_key(username)
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when the file has no users (every username is refused).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// The `(user, hash)` of a line, `None` for a blank or comment line.
fn entry(raw: &str) -> Result<Option<(&str, &str)>, String> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let Some((user, hash)) = line.split_once(':') else {
        return Err("expected `user:hash`".into());
    };
    let user = user.trim();
    if user.is_empty() {
        return Err("empty username before `:`".into());
    }
    Ok(Some((user, hash.trim())))
}

/// The username a raw line is for (`None` for blank, comment or malformed lines).
fn line_user(raw: &str) -> Option<&str> {
    entry(raw).ok().flatten().map(|(user, _)| user)
}

/// `text` with `user`'s line replaced by `user:<hash>` (appended when there is
/// none), or removed when `hash` is `None`. Every other line is kept as it is.
/// Returns the new text and whether `user` had a line.
pub(crate) fn with_entry(text: &str, user: &str, hash: Option<&PasswordHash>) -> (String, bool) {
    let mut out = String::with_capacity(text.len() + 200);
    let mut found = false;
    for raw in text.lines() {
        if line_user(raw) == Some(user) {
            found = true;
            if let Some(hash) = hash {
                out.push_str(&format!("{user}:{}\n", hash.encode()));
            }
            continue;
        }
        out.push_str(raw);
        out.push('\n');
    }
    if let (false, Some(hash)) = (found, hash) {
        out.push_str(&format!("{user}:{}\n", hash.encode()));
    }
    (out, found)
}
