//! What `Pigeon::bootstrap` reads over a module's options: a TOML file and the
//! `PIGEON_*` variables, with the binary's keys and errors, and the
//! application's settings sections beside the options.

use std::{
    ffi::OsString,
    io,
    path::{Path, PathBuf},
};

use super::{env::LEVEL, Config, ConfigError, EnvOptions, Options, SectionVar, ENV_PREFIX};

/// The variable naming the config file an application reads at startup
/// (over the module's `config_file`; a file it names must exist).
pub const CONFIG_VAR: &str = "PIGEON_CONFIG";

impl Config {
    /// This configuration (a module's options) with, over it, the TOML config
    /// file and then the `PIGEON_*` variables of `vars` — the binary's keys and
    /// errors — validated. The file is the one `PIGEON_CONFIG` names (it must
    /// exist), else `file` (left out when missing). Its tables that are no
    /// option, and the `PIGEON_<SECTION>__<KEY>` variables, become
    /// [`Config::sections`] (the application's settings).
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("pigeon-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let file = dir.join("app.toml");
    /// std::fs::write(&file, "queue_limit = 7\nport = 1900\n[app]\ngreeting = \"hi\"\n").unwrap();
    /// let module = pigeon::Config { port: 0, max_inflight: 9, ..Default::default() };
    /// let config = module.with_file_and_env(Some(&file), [("PIGEON_PORT", "1901")]).unwrap();
    /// assert_eq!((config.max_inflight, config.queue_limit, config.port), (9, 7, 1901));
    /// #[derive(serde::Deserialize)]
    /// struct App { greeting: String }
    /// assert_eq!(config.sections.get::<App>("app").unwrap().greeting, "hi");
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn with_file_and_env<I, K, V>(
        self,
        file: Option<&Path>,
        vars: I,
    ) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let (vars, named) = named_config(vars);
        let read = match (named, file) {
            (Some(path), _) => Some(read(&path)?),
            (None, Some(path)) => match read(path) {
                Err(ConfigError::Read { source, .. })
                    if source.kind() == io::ErrorKind::NotFound =>
                {
                    None
                }
                other => Some(other?),
            },
            (None, None) => None,
        };
        let env = EnvOptions::from_vars(vars.iter().filter(|(k, _)| k != CONFIG_VAR).cloned())?;
        let section_vars = section_vars(&env, &vars)?;
        let section_names: Vec<&str> = section_vars.iter().map(|v| v.name.as_str()).collect();
        for unknown in env
            .unknown
            .iter()
            .filter(|u| !section_names.contains(&u.name.as_str()))
        {
            tracing::warn!("{unknown}");
        }
        let sections = self.sections.clone();
        let (file, tables) = match read {
            Some((path, options, tables)) => (Some((path.clone(), options)), Some((path, tables))),
            None => (None, None),
        };
        let mut config = Config::from_sources_over(self, file, env, Options::default())?;
        config.sections = sections;
        if let Some((path, tables)) = tables {
            config.sections.add_file(path, tables);
        }
        config.sections.add_vars(section_vars);
        Ok(config)
    }
}

/// The variables as owned pairs, and the file `PIGEON_CONFIG` names (if
/// set and not empty): for `Pigeon::bootstrap` and the binary alike.
pub(super) fn named_config<I, K, V>(vars: I) -> (Vec<(OsString, OsString)>, Option<PathBuf>)
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<OsString>,
    V: Into<OsString>,
{
    let vars: Vec<(OsString, OsString)> = vars
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let named = vars
        .iter()
        .find(|(k, v)| k == CONFIG_VAR && !v.is_empty())
        .map(|(_, v)| PathBuf::from(v));
    (vars, named)
}

/// The file's options and its tables that are no option.
fn read(path: &Path) -> Result<(PathBuf, Options, toml::Table), ConfigError> {
    let (options, tables) = Options::read_toml_file(path, true)?;
    Ok((path.to_owned(), options, tables))
}

/// The unknown variables that look like `PIGEON_<SECTION>__<KEY>`: a
/// settings section's, if a provider reads that section (else they are
/// reported as unknown once the providers are built).
fn section_vars(
    env: &EnvOptions,
    vars: &[(OsString, OsString)],
) -> Result<Vec<SectionVar>, ConfigError> {
    let mut found = Vec::new();
    for unknown in &env.unknown {
        let rest = &unknown.name[ENV_PREFIX.len()..];
        let levels: Vec<&str> = rest.split(LEVEL).collect();
        if levels.len() < 2 || levels.iter().any(|l| l.is_empty()) {
            continue;
        }
        let Some((_, value)) = vars.iter().find(|(k, _)| *k == *unknown.name) else {
            continue;
        };
        let text = value
            .clone()
            .into_string()
            .map_err(|value| ConfigError::Env {
                var: unknown.name.clone(),
                value: value.to_string_lossy().into_owned(),
                message: "not valid UTF-8".to_owned(),
            })?;
        found.push(SectionVar {
            name: unknown.name.clone(),
            section: levels[0].to_ascii_lowercase(),
            path: levels[1..].iter().map(|l| l.to_ascii_lowercase()).collect(),
            text,
            unknown: unknown.to_string(),
        });
    }
    Ok(found)
}
