//! The TOML config file: snake_case keys, unknown keys refused by name.

use std::path::{Path, PathBuf};

use super::{options::KEYS, Config, ConfigError, EnvOptions, Options};

impl Options {
    /// Reads a TOML config file. Relative file names in it (`acl_file`,
    /// `password_file`, `cert`, `key`, `ca_file`, also in `[[listeners]]`) are
    /// taken relative to the file's folder.
    pub fn from_toml_file(path: &Path) -> Result<Options, ConfigError> {
        Self::read_toml_file(path, false).map(|(options, _)| options)
    }

    /// As [`Options::from_toml_file`]; with `sections`, the tables that are
    /// no option are returned beside the options (the application's settings)
    /// rather than refused.
    pub(super) fn read_toml_file(
        path: &Path,
        sections: bool,
    ) -> Result<(Options, toml::Table), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let (mut options, tables) = Self::from_toml_text(&text, path, sections)?;
        if let Some(dir) = path.parent() {
            let relative = |file: &mut Option<PathBuf>| {
                if let Some(f) = file.as_mut().filter(|f| f.is_relative()) {
                    *f = dir.join(&*f);
                }
            };
            let o = &mut options;
            for file in [
                &mut o.acl_file,
                &mut o.password_file,
                &mut o.cert,
                &mut o.key,
                &mut o.ca_file,
            ] {
                relative(file);
            }
            for l in o.listeners.iter_mut().flatten() {
                for file in [&mut l.cert, &mut l.key, &mut l.ca_file] {
                    relative(file);
                }
            }
        }
        Ok((options, tables))
    }

    /// Parses TOML config text; `path` names it in errors.
    ///
    /// ```
    /// use pigeon::config::Options;
    /// let options = Options::from_toml_str("port = 0\nqueue_limit = 7\n", "pigeon.toml".as_ref()).unwrap();
    /// assert_eq!(options.queue_limit, Some(7));
    /// let err = Options::from_toml_str("queue_limt = 7\n", "pigeon.toml".as_ref()).unwrap_err();
    /// assert_eq!(err.to_string(), "unknown key `queue_limt` in pigeon.toml (did you mean `queue_limit`?)");
    /// ```
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Options, ConfigError> {
        Self::from_toml_text(text, path, false).map(|(options, _)| options)
    }

    /// As [`Options::from_toml_str`], the tables that are no option set apart
    /// when `sections` is true (see [`Options::read_toml_file`]).
    fn from_toml_text(
        text: &str,
        path: &Path,
        sections: bool,
    ) -> Result<(Options, toml::Table), ConfigError> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e.span().map_or(1, |span| {
                1 + text
                    .get(..span.start)
                    .map_or(0, |before| before.matches('\n').count())
            });
            ConfigError::Syntax {
                path: path.to_owned(),
                message: format!(
                    "line {line}: {}",
                    e.message().trim_end().replace('\n', "; ")
                ),
            }
        })?;
        let mut tables = toml::Table::new();
        if sections {
            let names: Vec<String> = table
                .iter()
                .filter(|(key, value)| value.is_table() && !KEYS.contains(&key.as_str()))
                .map(|(key, _)| key.clone())
                .collect();
            for name in names {
                if let Some(value) = table.remove(&name) {
                    tables.insert(name, value);
                }
            }
        }
        // Each key is checked alone so that the error names it.
        for (key, value) in &table {
            let Some(&known) = KEYS.iter().find(|k| *k == key) else {
                return Err(ConfigError::UnknownKey {
                    path: path.to_owned(),
                    key: key.clone(),
                    suggestion: closest_key(key),
                });
            };
            let single = toml::Table::from_iter([(key.clone(), value.clone())]);
            toml::Value::Table(single)
                .try_into::<Options>()
                .map_err(|e| ConfigError::FileValue {
                    path: path.to_owned(),
                    key: known,
                    message: e.message().to_owned(),
                })?;
        }
        let options = toml::Value::Table(table)
            .try_into()
            .map_err(|e| ConfigError::Syntax {
                path: PathBuf::from(path),
                message: e.message().to_owned(),
            })?;
        Ok((options, tables))
    }
}

/// The known key closest to a misspelt one, if it is close enough to be a typo.
pub(super) fn closest_key(key: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 3.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

impl Config {
    /// Builds a configuration from TOML text over the defaults, then validates it
    /// (for programs that embed Pigeon and keep its options in a file).
    ///
    /// ```
    /// let config = pigeon::Config::from_toml_str("port = 0\nmax_keepalive = 60\n", "app.toml".as_ref()).unwrap();
    /// assert_eq!(config.max_keepalive, 60);
    /// ```
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file = Options::from_toml_str(text, path)?;
        Config::from_sources(
            Some((path.to_owned(), file)),
            EnvOptions::default(),
            Options::default(),
        )
    }

    /// Like [`Config::from_toml_str`], reading the file (a relative `acl_file`
    /// is taken relative to its folder).
    pub fn from_toml_file(path: &Path) -> Result<Config, ConfigError> {
        let file = Options::from_toml_file(path)?;
        Config::from_sources(
            Some((path.to_owned(), file)),
            EnvOptions::default(),
            Options::default(),
        )
    }
}
