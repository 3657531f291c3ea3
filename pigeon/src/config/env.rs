//! Options from the environment, a layer between the config file and the
//! flags: defaults < config file < environment < flags.
//!
//! - Each key of [`KEYS`] is the variable `PIGEON_` + its upper snake case:
//!   `PIGEON_QUEUE_LIMIT=7`, `PIGEON_PORT=0`, `PIGEON_ALLOW_ANONYMOUS=false`.
//! - Values go through the same deserializer as the config file's, so every
//!   type is parsed the same way: the text as it is for a string option
//!   (`PIGEON_ID=123` is the id `"123"`), else the text as a TOML value (a
//!   number, `true`/`false`); a list is comma-separated
//!   (`PIGEON_LISTEN=mqtt://0.0.0.0:1883,ws://0.0.0.0:8080/mqtt`) or a TOML array.
//! - `[[listeners]]` tables: `PIGEON_LISTENERS__<N>__<FIELD>`, a double
//!   underscore between levels and `N` the table's index (tables in the order
//!   of `N`): `PIGEON_LISTENERS__0__KIND=ws`, `PIGEON_LISTENERS__0__PORT=8080`.
//! - A `PIGEON_*` variable that names no option is ignored and reported (with
//!   the closest option's variable) in [`EnvOptions::unknown`]; those the
//!   project's own scripts use ([`NOT_OPTIONS`]) are not.
//! - A bad value is an error naming the variable:
//!   `invalid value for PIGEON_QUEUE_LIMIT: abc (invalid type: string "abc", expected usize)`.
//!
//! ```
//! use pigeon::config::EnvOptions;
//! let env = EnvOptions::from_vars([("PIGEON_QUEUE_LIMIT", "7"), ("PIGEON_LISTEN", "mqtt://0.0.0.0:1883,ws://0.0.0.0:8080/mqtt")]).unwrap();
//! assert_eq!(env.options.queue_limit, Some(7));
//! assert_eq!(env.options.listen.map(|l| l.len()), Some(2));
//! ```

use std::{
    collections::BTreeMap,
    ffi::OsString,
    fmt,
    path::{Path, PathBuf},
};

use toml::{Table, Value};

use super::{file::closest_key, options::KEYS, Config, ConfigError, Listener, Options};

/// The prefix of every option's variable.
pub const ENV_PREFIX: &str = "PIGEON_";

/// `PIGEON_*` variables that are not options, so never reported: the test
/// scripts' Python (`PIGEON_PYTHON`, `PIGEON_VENV`, see `scripts/test`) and
/// the benchmarks' extra flags (`PIGEON_ARGS`, see `bench/`).
pub const NOT_OPTIONS: &[&str] = &["PIGEON_PYTHON", "PIGEON_VENV", "PIGEON_ARGS"];

/// Between the levels of a nested key (`PIGEON_LISTENERS__0__PORT`).
pub(super) const LEVEL: &str = "__";

/// The variable of an option key.
///
/// ```
/// assert_eq!(pigeon::config::env_var("queue_limit"), "PIGEON_QUEUE_LIMIT");
/// ```
pub fn env_var(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())
}

/// A `PIGEON_*` variable that names no option: ignored, worth a warning.
///
/// ```
/// use pigeon::config::EnvOptions;
/// let env = EnvOptions::from_vars([("PIGEON_QUEUE_LIMT", "7")]).unwrap();
/// assert_eq!(
///     env.unknown[0].to_string(),
///     "unknown environment variable PIGEON_QUEUE_LIMT ignored (did you mean PIGEON_QUEUE_LIMIT?)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVar {
    /// The variable as set.
    pub name: String,
    /// The closest option's variable, if one is close enough to be a typo.
    pub suggestion: Option<String>,
}

impl fmt::Display for UnknownVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown environment variable {} ignored", self.name)?;
        match &self.suggestion {
            Some(s) => write!(f, " (did you mean {s}?)"),
            None => Ok(()),
        }
    }
}

/// The options the `PIGEON_*` variables set, and the variables that set none.
///
/// ```
/// use pigeon::config::EnvOptions;
/// let env = EnvOptions::from_vars([
///     ("PIGEON_LISTENERS__0__KIND", "ws"),
///     ("PIGEON_LISTENERS__0__PORT", "8080"),
///     ("PIGEON_PYTHON", "/usr/bin/python3"), // the test scripts' own
///     ("HOME", "/root"),
/// ])
/// .unwrap();
/// let listeners = env.options.listeners.unwrap();
/// assert_eq!(listeners[0].url(), "ws://0.0.0.0:8080/mqtt");
/// assert!(env.unknown.is_empty());
/// let err = EnvOptions::from_vars([("PIGEON_QUEUE_LIMIT", "abc")]).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"invalid value for PIGEON_QUEUE_LIMIT: abc (invalid type: string "abc", expected usize)"#
/// );
/// ```
#[derive(Debug, Clone, Default)]
pub struct EnvOptions {
    /// What the variables set (`None` where none did).
    pub options: Options,
    /// `PIGEON_*` variables that name no option, in name order.
    pub unknown: Vec<UnknownVar>,
    /// The key and variable of each option set, so that errors name the variable.
    vars: Vec<(&'static str, String)>,
}

impl EnvOptions {
    /// Reads the options from `(name, value)` pairs, as
    /// [`std::env::vars_os`] gives them; variables without the `PIGEON_`
    /// prefix are left alone. Fails, naming the variable, on a value its
    /// option cannot take (wrong type, a QoS of 3, a bad `listen` URL...);
    /// range checks that need every layer ([`Config::validate`]) come later.
    pub fn from_vars<I, K, V>(vars: I) -> Result<EnvOptions, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        // A name that is not Unicode is no option's.
        let mut vars: Vec<(String, OsString)> = vars
            .into_iter()
            .filter_map(|(name, value)| {
                let name = name.into().into_string().ok()?;
                name.starts_with(ENV_PREFIX).then(|| (name, value.into()))
            })
            .filter(|(name, _)| !NOT_OPTIONS.contains(&name.as_str()))
            .collect();
        vars.sort();
        let mut env = EnvOptions::default();
        let mut table = Table::new();
        let mut listeners: BTreeMap<usize, Table> = BTreeMap::new();
        for (name, value) in vars {
            let rest = &name[ENV_PREFIX.len()..];
            let mut levels = rest.split(LEVEL);
            let first = levels.next().unwrap_or_default();
            let nested: Vec<&str> = levels.collect();
            let Some(&key) = KEYS.iter().find(|k| k.to_ascii_uppercase() == first) else {
                env.unknown.push(unknown(&name, first));
                continue;
            };
            let value = value.into_string().map_err(|value| ConfigError::Env {
                var: name.clone(),
                value: value.to_string_lossy().into_owned(),
                message: "not valid UTF-8".to_owned(),
            })?;
            let bad_value = |message| ConfigError::Env {
                var: name.clone(),
                value: value.clone(),
                message,
            };
            if nested.is_empty() {
                let read = read_value(&value, |v| fits_option(key, v)).map_err(bad_value)?;
                table.insert(key.to_owned(), read);
            } else {
                let (index, field) = listener_field(key, &name, &nested)?;
                let read = read_value(&value, |v| fits_listener(&field, v)).map_err(bad_value)?;
                listeners.entry(index).or_default().insert(field, read);
            }
            env.vars.push((key, name));
        }
        if !listeners.is_empty() {
            if table.contains_key("listeners") {
                return Err(ConfigError::EnvName {
                    var: env_var("listeners"),
                    message: format!(
                        "the listeners are set both whole and by {ENV_PREFIX}LISTENERS__<N>__<FIELD>; use one form"
                    ),
                });
            }
            let mut all = Vec::with_capacity(listeners.len());
            for (index, listener) in listeners {
                let listener = Value::Table(listener);
                listener
                    .clone()
                    .try_into::<Listener>()
                    .map_err(|e| ConfigError::EnvName {
                        var: format!("{ENV_PREFIX}LISTENERS{LEVEL}{index}"),
                        message: format!("{} (a listener needs KIND and PORT)", message(&e)),
                    })?;
                all.push(listener);
            }
            table.insert("listeners".to_owned(), Value::Array(all));
        }
        // Each value fits its field alone, so together they do too.
        env.options = Value::Table(table)
            .try_into()
            .map_err(|e| ConfigError::EnvName {
                var: format!("{ENV_PREFIX}*"),
                message: message(&e),
            })?;
        // What a field holds but the option refuses (a QoS of 3, a `listen`
        // URL, a store), named by its variable now rather than by its key later.
        env.options
            .clone()
            .apply_to(&mut Config::default())
            .map_err(|e| env.name_var(e))?;
        Ok(env)
    }

    /// The process's environment ([`EnvOptions::from_vars`] of
    /// [`std::env::vars_os`]).
    pub fn from_process() -> Result<EnvOptions, ConfigError> {
        Self::from_vars(std::env::vars_os())
    }

    /// The variable that set `key` (the first, for the listeners' fields).
    ///
    /// ```
    /// let env = pigeon::config::EnvOptions::from_vars([("PIGEON_PORT", "0")]).unwrap();
    /// assert_eq!(env.var_of("port"), Some("PIGEON_PORT"));
    /// assert_eq!(env.var_of("host"), None);
    /// ```
    pub fn var_of(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, var)| var.as_str())
    }

    /// Logs each of [`EnvOptions::unknown`] as a warning.
    pub fn warn_unknown(&self) {
        for var in &self.unknown {
            tracing::warn!("{var}");
        }
    }

    /// `error`, naming the variable instead of the key when this layer set it.
    fn name_var(&self, error: ConfigError) -> ConfigError {
        match error {
            ConfigError::Invalid {
                key,
                value,
                expected,
            } => match self.var_of(key) {
                Some(var) => ConfigError::Env {
                    var: var.to_owned(),
                    value,
                    message: expected.to_owned(),
                },
                None => ConfigError::Invalid {
                    key,
                    value,
                    expected,
                },
            },
            other => other,
        }
    }
}

/// A `PIGEON_*` variable that names no option; `first` is its first level.
fn unknown(name: &str, first: &str) -> UnknownVar {
    let rest = &name[ENV_PREFIX.len() + first.len()..];
    let suggestion = match first {
        "" => None, // `PIGEON_` alone, or `PIGEON___...`: nothing to be close to
        _ => closest_key(&first.to_ascii_lowercase()).map(|key| env_var(key) + rest),
    };
    UnknownVar {
        name: name.to_owned(),
        suggestion,
    }
}

/// `PIGEON_LISTENERS__<N>__<FIELD>`: the index and the field (a key of a
/// `[[listeners]]` table).
fn listener_field(key: &str, name: &str, nested: &[&str]) -> Result<(usize, String), ConfigError> {
    let bad = |message: String| ConfigError::EnvName {
        var: name.to_owned(),
        message,
    };
    if key != "listeners" {
        return Err(bad(format!(
            "{} takes no nested keys (only {ENV_PREFIX}LISTENERS__<N>__<FIELD> has levels)",
            env_var(key)
        )));
    }
    let [index, field] = nested else {
        return Err(bad(format!(
            "expected {ENV_PREFIX}LISTENERS__<N>__<FIELD>, e.g. {ENV_PREFIX}LISTENERS__0__PORT"
        )));
    };
    let index = index
        .parse::<usize>()
        .map_err(|_| bad(format!("`{index}` is not a listener index (0, 1, ...)")))?;
    if field.is_empty() || *field != field.to_ascii_uppercase() {
        return Err(bad(format!(
            "`{field}`: expected a listener field in upper case, e.g. PORT"
        )));
    }
    Ok((index, field.to_ascii_lowercase()))
}

/// A variable's text as the TOML value its field takes: the text as a string;
/// else the text as TOML (a number, a boolean, an array, an inline table);
/// else comma-separated strings. `Err`: why none fits (the TOML reading's
/// reason when the text is TOML, else the string's).
fn read_value(text: &str, fits: impl Fn(&Value) -> Result<(), String>) -> Result<Value, String> {
    let string = Value::String(text.to_owned());
    let string_error = match fits(&string) {
        Ok(()) => return Ok(string),
        Err(e) => e,
    };
    let mut toml_error = None;
    if let Some(value) = toml_value(text) {
        match fits(&value) {
            Ok(()) => return Ok(value),
            Err(e) => toml_error = Some(e),
        }
    }
    let list = Value::Array(
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_owned()))
            .collect(),
    );
    if fits(&list).is_ok() {
        return Ok(list);
    }
    Err(toml_error.unwrap_or(string_error))
}

/// `text` read as one TOML value, if it is one.
fn toml_value(text: &str) -> Option<Value> {
    let mut table: Table = format!("value = {text}").parse().ok()?;
    if table.len() != 1 {
        return None; // more than a value, e.g. a line break and another key
    }
    table.remove("value")
}

/// Whether `value` deserializes as the option `key`, as in a config file.
fn fits_option(key: &str, value: &Value) -> Result<(), String> {
    let single = Table::from_iter([(key.to_owned(), value.clone())]);
    Value::Table(single)
        .try_into::<Options>()
        .map(drop)
        .map_err(|e| message(&e))
}

/// Whether `value` deserializes as the `[[listeners]]` field `field` (next to
/// placeholders for the fields every listener needs).
fn fits_listener(field: &str, value: &Value) -> Result<(), String> {
    let mut table = Table::from_iter([
        ("kind".to_owned(), Value::String("tcp".to_owned())),
        ("port".to_owned(), Value::Integer(0)),
    ]);
    table.insert(field.to_owned(), value.clone());
    Value::Table(table)
        .try_into::<Listener>()
        .map(drop)
        .map_err(|e| message(&e))
}

fn message(e: &toml::de::Error) -> String {
    e.message().trim_end().replace('\n', "; ")
}

impl Options {
    /// The keys this layer sets, in [`KEYS`] order.
    ///
    /// ```
    /// use pigeon::config::Options;
    /// let options = Options { port: Some(0), queue_limit: Some(7), ..Options::default() };
    /// assert_eq!(options.keys(), ["port", "queue_limit"]);
    /// ```
    pub fn keys(&self) -> Vec<&'static str> {
        match Value::try_from(self) {
            Ok(Value::Table(table)) => KEYS
                .iter()
                .copied()
                .filter(|k| table.contains_key(*k))
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl Config {
    /// The layers of the binary, lowest first: defaults, the config file (if
    /// any), the environment, the flags; then [`Config::validate`]. A range
    /// error names where the value came from: the variable, or the file.
    pub(super) fn from_sources(
        file: Option<(PathBuf, Options)>,
        env: EnvOptions,
        flags: Options,
    ) -> Result<Config, ConfigError> {
        Config::from_sources_over(Config::default(), file, env, flags)
    }

    /// As [`Config::from_sources`], over `base` instead of the defaults (a
    /// module's options, for `Pigeon::bootstrap`).
    pub(super) fn from_sources_over(
        base: Config,
        file: Option<(PathBuf, Options)>,
        env: EnvOptions,
        flags: Options,
    ) -> Result<Config, ConfigError> {
        let flag_keys = flags.keys();
        let (path, file) = file.unzip();
        let file_keys = file.as_ref().map(Options::keys).unwrap_or_default();
        let mut env = env;
        let env_options = std::mem::take(&mut env.options);
        let layers = file.into_iter().chain([env_options, flags]);
        Config::from_layers_over(base, layers).map_err(|error| match error {
            ConfigError::Invalid { key, .. } if flag_keys.contains(&key) => error,
            ConfigError::Invalid { key, .. } if env.var_of(key).is_some() => env.name_var(error),
            ConfigError::Invalid {
                key,
                value,
                expected,
            } if file_keys.contains(&key) => match &path {
                Some(path) => ConfigError::FileValue {
                    path: path.clone(),
                    key,
                    message: format!("{value} ({expected})"),
                },
                None => ConfigError::Invalid {
                    key,
                    value,
                    expected,
                },
            },
            error => error,
        })
    }

    /// What `pigeon check-config FILE` checks: defaults < `path` < the
    /// environment `vars` (as [`EnvOptions::from_vars`] reads them), validated
    /// as startup validates (the ACL, password and TLS files read). Unknown
    /// `PIGEON_*` variables are logged as warnings.
    ///
    /// ```no_run
    /// let config = pigeon::Config::from_file_and_env("pigeon.toml".as_ref(), [("PIGEON_PORT", "1885")]).unwrap();
    /// assert_eq!(config.port, 1885);
    /// ```
    pub fn from_file_and_env<I, K, V>(path: &Path, vars: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let file = Options::from_toml_file(path)?;
        let env = EnvOptions::from_vars(vars)?;
        env.warn_unknown();
        Config::from_sources(Some((path.to_owned(), file)), env, Options::default())
    }
}
