//! The layered loader: defaults, then a TOML file, then `AULA_*` variables, then overrides
//! (command-line flags), with unknown keys refused and every conversion error keyed.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use config::{Config, ConfigError, Environment, File, FileFormat};

use super::{Settings, SettingsError, DEFAULT_CONFIG_FILE, ENV_NESTING, ENV_PREFIX, TOOLING_VARS};

/// Where [`Settings::load`] reads from. `LoadOptions::default()` is "the working directory's
/// `aula.toml` if present, the process environment, no overrides".
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--config FILE`: read this file, which must exist. When `None`, `aula.toml` in `working_dir`
    /// is read if present.
    pub config_file: Option<PathBuf>,
    /// Directory searched for `aula.toml`. `None`: the current directory.
    pub working_dir: Option<PathBuf>,
    /// The environment to read `AULA_*` variables from. `None`: the process environment.
    pub env: Option<HashMap<String, String>>,
    /// Explicit overrides (command-line flags) as dotted key and string value, applied last.
    pub overrides: Vec<(String, String)>,
}

impl Settings {
    /// Loads and validates the configuration from the layered sources described in the module docs.
    pub fn load(options: &LoadOptions) -> Result<Settings, SettingsError> {
        let known = known_keys();
        let defaults = Config::try_from(&Settings::default()).map_err(other)?;
        let mut builder = Config::builder().add_source(defaults);

        let file = match &options.config_file {
            Some(path) if !path.is_file() => return Err(SettingsError::FileNotFound(path.clone())),
            Some(path) => Some(path.clone()),
            None => {
                let dir = options
                    .working_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("."));
                let path = dir.join(DEFAULT_CONFIG_FILE);
                path.is_file().then_some(path)
            }
        };
        if let Some(path) = &file {
            let text = std::fs::read_to_string(path).map_err(|e| SettingsError::FileParse {
                path: path.clone(),
                message: e.to_string(),
            })?;
            check_file_keys(&text, path, &known)?;
            builder = builder.add_source(File::from_str(&text, FileFormat::Toml));
        }

        let vars: HashMap<String, String> = match &options.env {
            Some(vars) => vars.clone(),
            None => std::env::vars().collect(),
        };
        let mut vars = config_vars(vars, &known)?;
        // A list key takes a comma-separated string (`a:1,b:2`); the `config` crate would keep it
        // one string, so it goes in as a list override, below the command-line flags.
        let lists = list_keys();
        let mut env_lists = Vec::new();
        vars.retain(|name, value| {
            let key = env_key(name);
            if lists.contains(&key) && !value.is_empty() {
                env_lists.push((key, split_list(value)));
                return false;
            }
            true
        });
        let env = Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("_")
            .separator(ENV_NESTING)
            .ignore_empty(true)
            .source(Some(vars.into_iter().collect()));
        builder = builder.add_source(env);
        for (key, items) in env_lists {
            builder = builder.set_override(key, items).map_err(other)?;
        }

        for (key, value) in &options.overrides {
            if !known.contains(key.as_str()) {
                return Err(SettingsError::UnknownKey {
                    key: key.clone(),
                    origin: "command-line overrides".into(),
                });
            }
            builder = if list_keys().contains(key.as_str()) {
                let items: Vec<String> = split_list(value);
                builder.set_override(key.as_str(), items)
            } else {
                builder.set_override(key.as_str(), value.as_str())
            }
            .map_err(other)?;
        }

        let config = builder
            .build()
            .map_err(|e| map_config_error(e, file.as_deref()))?;
        let settings: Settings = config
            .try_deserialize()
            .map_err(|e| map_config_error(e, file.as_deref()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Parses a TOML document on top of the defaults (no environment, no overrides) and validates
    /// it. Unknown keys are refused.
    pub fn from_toml_str(text: &str) -> Result<Settings, SettingsError> {
        let known = known_keys();
        check_file_keys(text, Path::new("<string>"), &known)?;
        let config = Config::builder()
            .add_source(Config::try_from(&Settings::default()).map_err(other)?)
            .add_source(File::from_str(text, FileFormat::Toml))
            .build()
            .map_err(|e| map_config_error(e, None))?;
        let settings: Settings = config
            .try_deserialize()
            .map_err(|e| map_config_error(e, None))?;
        settings.validate()?;
        Ok(settings)
    }
}

/// The `AULA_*` variables that configure Aula, with tooling variables dropped; any other
/// `AULA_*` variable is refused, naming it (a typo must not be silently ignored).
fn config_vars(
    vars: HashMap<String, String>,
    known: &BTreeSet<String>,
) -> Result<HashMap<String, String>, SettingsError> {
    let prefix = format!("{ENV_PREFIX}_");
    let tooling = |name: &str| {
        TOOLING_VARS.iter().any(|t| match t.strip_suffix('*') {
            Some(start) => name.starts_with(start),
            None => name == *t,
        })
    };
    let mut kept = HashMap::new();
    for (name, value) in vars {
        if !name.starts_with(&prefix) || tooling(&name) {
            continue;
        }
        if !known.contains(&env_key(&name)) {
            return Err(SettingsError::UnknownKey {
                key: name,
                origin: "the environment".into(),
            });
        }
        kept.insert(name, value);
    }
    Ok(kept)
}

/// The dotted key an `AULA_*` variable names: `AULA_TURN__ALLOW_PEERS` is `turn.allow_peers`.
fn env_key(name: &str) -> String {
    let rest = &name[ENV_PREFIX.len() + 1..];
    rest.to_lowercase().replace(ENV_NESTING, ".")
}

/// Keys whose value is a list (their default serializes to an array).
fn list_keys() -> BTreeSet<String> {
    let value = serde_json::to_value(Settings::default()).expect("settings serialize to JSON");
    let mut keys = BTreeSet::new();
    collect_keys(&value, String::new(), &mut keys);
    keys.into_iter()
        .filter(|k| {
            k.split('.')
                .try_fold(&value, |v, part| v.get(part))
                .is_some_and(serde_json::Value::is_array)
        })
        .collect()
}

pub(crate) fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Every dotted key of [`Settings`] (leaves only), derived from the serialized defaults so it can
/// never drift from the types.
pub(crate) fn known_keys() -> BTreeSet<String> {
    let value = serde_json::to_value(Settings::default()).expect("settings serialize to JSON");
    let mut keys = BTreeSet::new();
    collect_keys(&value, String::new(), &mut keys);
    keys
}

fn collect_keys(value: &serde_json::Value, prefix: String, keys: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                collect_keys(v, key, keys);
            }
        }
        _ => {
            keys.insert(prefix);
        }
    }
}

/// Refuses keys in a TOML file that the configuration does not have.
fn check_file_keys(text: &str, path: &Path, known: &BTreeSet<String>) -> Result<(), SettingsError> {
    let value = text_to_table(text).map_err(|message| SettingsError::FileParse {
        path: path.to_path_buf(),
        message,
    })?;
    let mut found = BTreeSet::new();
    collect_keys(&serde_json::Value::Object(value), String::new(), &mut found);
    let sections: BTreeSet<&str> = known
        .iter()
        .filter_map(|k| k.split_once('.').map(|(s, _)| s))
        .collect();
    for key in found {
        // An empty section (`[limits]` with everything commented out) shows up as its own name.
        if !known.contains(&key) && !sections.contains(key.as_str()) {
            return Err(SettingsError::UnknownKey {
                key,
                origin: path.display().to_string(),
            });
        }
    }
    Ok(())
}

/// TOML parsed through the `config` crate into a JSON object, so no extra TOML dependency is
/// needed just to list a file's keys.
fn text_to_table(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let config = Config::builder()
        .add_source(File::from_str(text, FileFormat::Toml))
        .build()
        .map_err(|e| e.to_string())?;
    let value: serde_json::Value = config.try_deserialize().map_err(|e| e.to_string())?;
    match value {
        serde_json::Value::Object(map) => Ok(map),
        serde_json::Value::Null => Ok(Default::default()),
        other => Err(format!("expected a table, found {other}")),
    }
}

fn other(e: ConfigError) -> SettingsError {
    SettingsError::Other(e.to_string())
}

/// Turns the `config` crate's errors into ours, keeping the key when it knows it.
fn map_config_error(e: ConfigError, file: Option<&Path>) -> SettingsError {
    match e {
        ConfigError::Type {
            key: Some(key),
            unexpected,
            expected,
            ..
        } => SettingsError::InvalidValue {
            key,
            message: format!("found {unexpected}, expected {expected}"),
        },
        ConfigError::At {
            error,
            key: Some(key),
            ..
        } => SettingsError::InvalidValue {
            key,
            message: inner_message(*error),
        },
        ConfigError::FileParse { cause, .. } => SettingsError::FileParse {
            path: file.map(Path::to_path_buf).unwrap_or_default(),
            message: cause.to_string(),
        },
        other => SettingsError::Other(other.to_string()),
    }
}

fn inner_message(e: ConfigError) -> String {
    match e {
        ConfigError::Message(m) => m,
        ConfigError::Type {
            unexpected,
            expected,
            ..
        } => format!("found {unexpected}, expected {expected}"),
        ConfigError::At { error, .. } => inner_message(*error),
        other => other.to_string(),
    }
}
