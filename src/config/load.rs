//! Loading: layers built-in defaults, the TOML file, `SIO_RELAY_*` variables and flags into
//! one [`Config`], and reports every problem at once.
//!
//! # How it works
//!
//! The keys and the kind of each value come from the [schema](super::schema). Each layer produces `section.key → value` entries. Every entry is checked on its own:
//! its kind against the default's, then its meaning by deserializing a one-key config
//! (addresses, enum names, integer ranges). Serde stops at the first error; checking keys
//! one by one is what lets an operator see all of them. Keys that pass are merged over the
//! defaults, deserialized once, and handed to the cross-field rules in
//! [`validate`](super::validate), whose findings are tied back to the file line or the
//! variable that set the key.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::IntoDeserializer;
use toml::de::{DeTable, DeValue};
use toml::{Spanned, Table, Value};

use super::error::{ConfigError, ConfigErrors};
use super::schema::{Schema, describe_at, is_secret, item_kind_at, kind_of, kind_of_de};
use super::{Config, env, validate};

/// The key that stands for the config file itself in errors about the file as a whole.
const FILE_KEY: &str = "--config";

/// Where a configuration comes from. Precedence, lowest first: built-in defaults, `file`,
/// `env`, `overrides`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    /// The TOML file (`--config FILE`), if any.
    pub file: Option<PathBuf>,
    /// The process's `SIO_RELAY_*` variables, as gathered by [`env::collect`].
    pub env: BTreeMap<String, String>,
    /// Values given on the command line.
    pub overrides: Overrides,
}

/// Command-line values that override every other source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--listen`: `server.listen`.
    pub listen: Option<SocketAddr>,
    /// `--admin-listen`: `admin.listen`.
    pub admin_listen: Option<SocketAddr>,
    /// `--log-level`: `log.level`.
    pub log_level: Option<String>,
}

/// Builds the effective configuration from `sources`, or reports every problem found.
///
/// Reads the file named in `sources` (and nothing else from the system). Safe to call again
/// on reload: the same sources with an edited file give the new configuration.
pub fn load(sources: &Sources) -> Result<Config, ConfigErrors> {
    let text = match &sources.file {
        None => None,
        Some(path) => match fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) => {
                return Err(ConfigErrors {
                    file: Some(path.clone()),
                    errors: vec![ConfigError::new(
                        FILE_KEY,
                        format!("cannot read {}: {e}", path.display()),
                    )],
                });
            }
        },
    };
    load_text(
        sources.file.as_deref(),
        text.as_deref(),
        &sources.env,
        &sources.overrides,
    )
}

/// [`load`] with the file's contents already read; `file` only names it in errors.
pub fn load_text(
    file: Option<&Path>,
    text: Option<&str>,
    env_vars: &BTreeMap<String, String>,
    overrides: &Overrides,
) -> Result<Config, ConfigErrors> {
    let schema = Schema::new();
    let mut layers = Layers::default();
    if let Some(text) = text {
        file_layer(text, &schema, &mut layers);
    }
    env::overlay(env_vars, &schema, &mut layers);
    flag_layer(overrides, &mut layers);

    let (config, fell_back) = layers.merge();
    layers.check_rules(&config, &fell_back);

    if layers.errors.is_empty() {
        Ok(config)
    } else {
        let mut errors = layers.errors;
        // File problems first, in line order; the rest keep the order they were found in.
        errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        Err(ConfigErrors {
            file: file.map(Path::to_path_buf),
            errors,
        })
    }
}

/// Where a key's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The config file, at this line.
    File(usize),
    /// This environment variable.
    Env(String),
    /// This command-line flag.
    Flag(&'static str),
}

impl Origin {
    /// Ties `error` about the key from this origin to it: a file line, or the variable or
    /// flag named in the reason.
    fn locate(&self, error: ConfigError) -> ConfigError {
        match self {
            Origin::File(line) => error.at_line(Some(*line)),
            Origin::Env(var) => ConfigError {
                reason: format!("{} (set by {var})", error.reason),
                ..error
            },
            Origin::Flag(flag) => ConfigError {
                reason: format!("{} (set by {flag})", error.reason),
                ..error
            },
        }
    }

    /// Ties `error` to this origin of `other`, the key that made `error.key` wrong.
    fn locate_via(&self, other: &str, error: ConfigError) -> ConfigError {
        match self {
            Origin::File(line) => error.at_line(Some(*line)),
            Origin::Env(var) => ConfigError {
                reason: format!("{} ({other} set by {var})", error.reason),
                ..error
            },
            Origin::Flag(flag) => ConfigError {
                reason: format!("{} ({other} set by {flag})", error.reason),
                ..error
            },
        }
    }
}

/// One value from a layer.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    value: Value,
    origin: Origin,
}

/// The entries of every layer so far (later layers replace earlier ones) and the problems
/// found on the way.
#[derive(Debug, Default)]
pub(crate) struct Layers {
    values: BTreeMap<String, Entry>,
    errors: Vec<ConfigError>,
}

impl Layers {
    /// Sets `path` (`section.key`) from a layer.
    pub(crate) fn set(&mut self, path: String, value: Value, origin: Origin) {
        self.values.insert(path, Entry { value, origin });
    }

    /// Records a problem with the value of `key` that came from `origin`, which must not
    /// count as set any more.
    pub(crate) fn error(&mut self, key: &str, origin: &Origin, reason: String) {
        let error = origin.locate(ConfigError::new(key, reason));
        self.errors.push(error);
    }

    /// Records a problem that belongs to no value (an unknown key or variable).
    pub(crate) fn push(&mut self, error: ConfigError) {
        self.errors.push(error);
    }

    fn origin(&self, key: &str) -> Option<&Origin> {
        self.values.get(key).map(|e| &e.origin)
    }

    /// Checks what each value means, then builds the config from the values that pass,
    /// over the defaults. Also returns the keys that had a problem and so kept their
    /// defaults.
    fn merge(&mut self) -> (Config, BTreeSet<String>) {
        let mut merged = Table::new();
        for (path, entry) in &self.values {
            if let Err(reason) = probe(path, &entry.value) {
                self.errors
                    .push(entry.origin.locate(ConfigError::new(path, reason)));
                continue;
            }
            let (section, key) = split(path);
            if let Value::Table(section) = merged
                .entry(section)
                .or_insert_with(|| Value::Table(Table::new()))
            {
                section.insert(key.to_owned(), entry.value.clone());
            }
        }
        let is_set = |key: &str| {
            key.split_once('.').is_some_and(|(section, key)| {
                merged
                    .get(section)
                    .and_then(Value::as_table)
                    .is_some_and(|t| t.contains_key(key))
            })
        };
        let fell_back = self
            .errors
            .iter()
            .filter(|e| !is_set(&e.key))
            .map(|e| e.key.clone())
            .collect();
        let config = Config::deserialize(Value::Table(merged)).unwrap_or_else(|e| {
            // Every value passed on its own and the fields are independent: a bug if seen.
            self.errors.push(ConfigError::new(
                "config",
                format!("internal error: {}", one_line(e.message())),
            ));
            Config::default()
        });
        (config, fell_back)
    }

    /// Runs the cross-field rules on `config`, tying each finding to the line or variable
    /// that set its key, or else the key that broke the rule.
    fn check_rules(&mut self, config: &Config, fell_back: &BTreeSet<String>) {
        for finding in validate::findings(config) {
            // A refused value was replaced by its default; rules about that say nothing new.
            if fell_back.contains(finding.key) {
                continue;
            }
            let error = ConfigError::new(finding.key, finding.reason);
            let error = match (self.origin(finding.key), finding.because) {
                (Some(origin), _) => origin.locate(error),
                (None, Some(because)) => match self.origin(because) {
                    Some(origin) => origin.locate_via(because, error),
                    None => error,
                },
                (None, None) => error,
            };
            self.errors.push(error);
        }
    }
}

/// Reads the file's entries into `layers`, reporting unknown keys and wrong kinds.
fn file_layer(text: &str, schema: &Schema, layers: &mut Layers) {
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => {
            let line = e.span().map(|s| line_of(text, s.start));
            layers.push(
                ConfigError::new(
                    FILE_KEY,
                    format!("not valid TOML: {}", one_line(e.message())),
                )
                .at_line(line),
            );
            return;
        }
    };
    for (name, value) in root.get_ref() {
        let section = name.get_ref().as_ref();
        let name_line = line_of(text, name.span().start);
        if schema.section(section).is_none() {
            let reason = format!("unknown section{}", schema.suggest(None, section));
            layers.push(ConfigError::new(section, reason).at_line(Some(name_line)));
            continue;
        }
        let DeValue::Table(table) = value.get_ref() else {
            let reason = format!(
                "must be a table (`[{section}]`), found {}",
                kind_of_de(value.get_ref())
            );
            layers.push(ConfigError::new(section, reason).at_line(Some(name_line)));
            continue;
        };
        for (key, value) in table {
            let key_name = key.get_ref().as_ref();
            let path = format!("{section}.{key_name}");
            let Some(default) = schema.default_of(section, key_name) else {
                let reason = format!("unknown key{}", schema.suggest(Some(section), key_name));
                let line = line_of(text, key.span().start);
                layers.push(ConfigError::new(path, reason).at_line(Some(line)));
                continue;
            };
            let origin = Origin::File(line_of(text, value.span().start));
            match file_value(text, &path, value, default) {
                Ok(value) => layers.set(path, value, origin),
                Err((reason, line)) => {
                    layers.push(ConfigError::new(path, reason).at_line(Some(line)));
                }
            }
        }
    }
}

/// Converts one file value, checking its kind (and its items' kinds) against `default`.
/// On error, the reason and the line of the offending value or item.
fn file_value(
    text: &str,
    path: &str,
    value: &Spanned<DeValue<'_>>,
    default: &Value,
) -> Result<Value, (String, usize)> {
    let line = line_of(text, value.span().start);
    let found = kind_of_de(value.get_ref());
    if found != kind_of(default) {
        return Err((
            format!("expected {}, found {found}", describe_at(path, default)),
            line,
        ));
    }
    if let (DeValue::Array(items), Some(item_kind)) = (value.get_ref(), item_kind_at(path, default))
    {
        for (i, item) in items.iter().enumerate() {
            let found = kind_of_de(item.get_ref());
            if found != item_kind {
                return Err((
                    format!("item {}: expected {item_kind}, found {found}", i + 1),
                    line_of(text, item.span().start),
                ));
            }
        }
    }
    Value::deserialize(value.clone().into_deserializer()).map_err(|e| {
        let reason = if is_secret(path) {
            format!("expected {}", describe_at(path, default))
        } else {
            one_line(e.message())
        };
        (reason, line)
    })
}

/// Puts the command-line values in `layers`.
fn flag_layer(overrides: &Overrides, layers: &mut Layers) {
    if let Some(addr) = overrides.listen {
        let value = Value::String(addr.to_string());
        layers.set("server.listen".into(), value, Origin::Flag("--listen"));
    }
    if let Some(addr) = overrides.admin_listen {
        let value = Value::String(addr.to_string());
        layers.set("admin.listen".into(), value, Origin::Flag("--admin-listen"));
    }
    if let Some(level) = &overrides.log_level {
        let value = Value::String(level.clone());
        layers.set("log.level".into(), value, Origin::Flag("--log-level"));
    }
}

/// Checks what a value means (an address, an enum name, an integer's range) by
/// deserializing a config that sets only `path`.
fn probe(path: &str, value: &Value) -> Result<(), String> {
    let (section, key) = split(path);
    let mut inner = Table::new();
    inner.insert(key.to_owned(), value.clone());
    let mut outer = Table::new();
    outer.insert(section.to_owned(), Value::Table(inner));
    match Config::deserialize(Value::Table(outer)) {
        Ok(_) => Ok(()),
        Err(_) if is_secret(path) => Err("is not a valid value".into()),
        Err(e) => {
            let message = one_line(e.message());
            match value {
                // Name the value unless the message already does.
                Value::String(s) if !message.contains(&format!("`{s}`")) => {
                    Err(format!("`{s}`: {message}"))
                }
                _ => Err(message),
            }
        }
    }
}

fn split(path: &str) -> (&str, &str) {
    path.split_once('.').expect("paths are section.key")
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Joins a multi-line message into one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_from_one() {
        let text = "a\nb\n\nc";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 2), 2);
        assert_eq!(line_of(text, text.len() - 1), 4);
        assert_eq!(line_of(text, 1000), 4);
    }
}
