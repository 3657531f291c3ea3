//! The application's own settings: tables of the config file that are no
//! broker option (`[app]`, `[database]`), `PIGEON_<SECTION>__<KEY>`
//! variables over them, and values set in code over both. Read by
//! `pigeon::app::Settings<T>` into the application's `serde` types.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::ConfigError;

/// The application's settings sections, as [`Config::sections`](super::Config::sections)
/// holds them: the config file's tables that are no broker option, then the
/// `PIGEON_<SECTION>__<KEY>` variables, then what [`Sections::set`] gave (the
/// highest layer, e.g. in `Pigeon::bootstrap_with` or a test).
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct Db { host: String, port: u16 }
///
/// let mut sections = pigeon::config::Sections::default();
/// sections.set("database", serde_json::json!({ "host": "db.local", "port": 5432 }));
/// let db: Db = sections.get("database").unwrap();
/// assert_eq!((db.host.as_str(), db.port), ("db.local", 5432));
/// let err = sections.get::<Db>("other").err().unwrap();
/// assert_eq!(err.to_string(), "invalid settings section [other] (no config file): missing field `host`");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Sections {
    /// The config file the tables come from, if one was read.
    file: Option<PathBuf>,
    /// The file's tables that are no option, by name.
    tables: BTreeMap<String, Value>,
    /// `PIGEON_<SECTION>__<KEY>` variables, in name order.
    vars: Vec<SectionVar>,
    /// Set in code, by section.
    set: BTreeMap<String, Value>,
    /// The sections something read: shared by the clones (the container gets
    /// one), so that the bootstrap can tell a table nobody reads (a typo).
    read: Arc<Mutex<BTreeSet<String>>>,
}

/// One `PIGEON_<SECTION>__<KEY>[__<KEY>...]` variable.
#[derive(Debug, Clone)]
pub(crate) struct SectionVar {
    /// The variable, e.g. `PIGEON_APP__GREETING`.
    pub(crate) name: String,
    /// The section, lower case.
    pub(crate) section: String,
    /// The keys below it, lower case.
    pub(crate) path: Vec<String>,
    /// The value as set.
    pub(crate) text: String,
    /// The warning if no provider reads the section (as for any unknown variable).
    pub(crate) unknown: String,
}

impl Sections {
    /// Sets `section` in code, over the file and the environment: tables are
    /// merged key by key (a key given here replaces the same key below).
    pub fn set(&mut self, section: &str, value: Value) {
        let slot = self
            .set
            .entry(section.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        merge(slot, value);
    }

    /// Reads `section` into `T`: the file's table (none: an empty one), the
    /// section's variables (each taken as text when `T` wants text there, else
    /// as a TOML value, else as a comma-separated list, as the broker options'
    /// variables are), what [`Sections::set`] gave. An error names the file or
    /// the variable, the section and the key. The section counts as read: at
    /// bootstrap, a table of the file that nothing read is an error.
    pub fn get<T: DeserializeOwned>(&self, section: &str) -> Result<T, ConfigError> {
        self.read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(section.to_owned());
        let vars: Vec<&SectionVar> = self.vars.iter().filter(|v| v.section == section).collect();
        // Which reading of each variable's text is tried (see `readings`).
        let mut tried = vec![0usize; vars.len()];
        let mut errors: Vec<Vec<String>> = vec![Vec::new(); vars.len()];
        loop {
            let value = self.merged(section, &vars, &tried);
            let error = match serde_path_to_error::deserialize::<_, T>(value) {
                Ok(t) => return Ok(t),
                Err(e) => e,
            };
            let at = keys(error.path());
            let message = error.into_inner().to_string();
            let Some(i) = vars.iter().position(|v| at.starts_with(&v.path)) else {
                return Err(self.section_error(section, at, message));
            };
            errors[i].push(message);
            if tried[i] + 1 < readings(&vars[i].text).len() {
                tried[i] += 1;
                continue;
            }
            // The TOML reading's reason when the text is TOML, else the text's.
            let reason = if toml_value(&vars[i].text).is_some() && errors[i].len() > 1 {
                errors[i].swap_remove(1)
            } else {
                errors[i].swap_remove(0)
            };
            return Err(ConfigError::Env {
                var: vars[i].name.clone(),
                value: vars[i].text.clone(),
                message: reason,
            });
        }
    }

    /// The section's layers merged, each variable read as `tried` says.
    fn merged(&self, section: &str, vars: &[&SectionVar], tried: &[usize]) -> Value {
        let mut value = self
            .tables
            .get(section)
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        for (var, &reading) in vars.iter().zip(tried) {
            let mut leaf = readings(&var.text).swap_remove(reading);
            for key in var.path.iter().rev() {
                leaf = Value::Object(Map::from_iter([(key.clone(), leaf)]));
            }
            merge(&mut value, leaf);
        }
        if let Some(set) = self.set.get(section) {
            merge(&mut value, set.clone());
        }
        value
    }

    fn section_error(&self, section: &str, at: Vec<String>, message: String) -> ConfigError {
        // A key given in code (not the section as a whole: its other keys
        // may come from the file).
        let in_code = !at.is_empty() && self.set.get(section).is_some_and(|v| lookup(v, &at));
        let origin = match &self.file {
            _ if in_code => " (set in code)".to_owned(),
            Some(file) if self.tables.contains_key(section) => format!(" in {}", file.display()),
            Some(file) => format!(" ({} has no [{section}] table)", file.display()),
            None => " (no config file)".to_owned(),
        };
        ConfigError::Section {
            section: section.to_owned(),
            key: (!at.is_empty()).then(|| at.join(".")),
            origin,
            message,
        }
    }

    /// The config file's tables that nothing read are an error naming the
    /// first (most likely a misspelt section or option); variables of
    /// sections that nothing read are logged as unknown variables are.
    pub(crate) fn check_read(&self) -> Result<(), ConfigError> {
        let read = self.read.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(name) = self.tables.keys().find(|name| !read.contains(*name)) {
            return Err(ConfigError::UnknownSection {
                path: self.file.clone().unwrap_or_default(),
                section: name.clone(),
                suggestion: suggestion(name, &read),
            });
        }
        for var in self.vars.iter().filter(|v| !read.contains(&v.section)) {
            tracing::warn!("{}", var.unknown);
        }
        Ok(())
    }

    /// The file's tables that are no option, read from `file`.
    #[cfg(feature = "toml")]
    pub(crate) fn add_file(&mut self, file: PathBuf, tables: toml::Table) {
        self.file = Some(file);
        for (name, table) in tables {
            // A TOML value always has a JSON form (dates become strings' tables).
            if let Ok(value) = serde_json::to_value(table) {
                self.tables.insert(name, value);
            }
        }
    }

    /// The `PIGEON_<SECTION>__<KEY>` variables.
    #[cfg(feature = "toml")]
    pub(crate) fn add_vars(&mut self, vars: Vec<SectionVar>) {
        self.vars.extend(vars);
        self.vars.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

/// `over` merged into `base`: tables key by key, anything else replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// Whether `value` has something at `path`.
fn lookup(value: &Value, path: &[String]) -> bool {
    path.iter()
        .try_fold(value, |v, key| match v {
            Value::Object(map) => map.get(key),
            Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
        .is_some()
}

/// The keys of a deserializer path (`db.port`, `hosts.0`).
fn keys(path: &serde_path_to_error::Path) -> Vec<String> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .collect()
}

/// The readings of a variable's text, in the order they are tried: the text
/// as a string; the text as a TOML value (a number, a boolean, an array);
/// comma-separated strings.
fn readings(text: &str) -> Vec<Value> {
    let mut all = vec![Value::String(text.to_owned())];
    if let Some(value) = toml_value(text) {
        all.push(value);
    }
    if text.contains(',') {
        let list = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_owned()))
            .collect();
        all.push(Value::Array(list));
    }
    all
}

/// `text` as one TOML value (not a string: that reading comes first anyway).
#[cfg(feature = "toml")]
fn toml_value(text: &str) -> Option<Value> {
    let mut table: toml::Table = format!("value = {text}").parse().ok()?;
    match table.remove("value")? {
        toml::Value::String(_) => None,
        value if table.is_empty() => serde_json::to_value(value).ok(),
        _ => None,
    }
}

/// Without TOML there are no variables to read (the bootstrap reads none).
#[cfg(not(feature = "toml"))]
fn toml_value(_: &str) -> Option<Value> {
    None
}

/// The read section or option key closest to a table nothing read.
#[cfg(feature = "toml")]
fn suggestion(name: &str, read: &BTreeSet<String>) -> Option<String> {
    let section = read
        .iter()
        .map(|r| (super::file::edit_distance(name, r), r))
        .filter(|(d, r)| *d <= 3.max(r.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, r)| format!("[{r}]"));
    section.or_else(|| super::file::closest_key(name).map(|k| format!("`{k}`")))
}

#[cfg(not(feature = "toml"))]
fn suggestion(_: &str, _: &BTreeSet<String>) -> Option<String> {
    None
}
