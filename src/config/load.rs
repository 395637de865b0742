//! Loading: layers built-in defaults, the TOML file, `SIO_RELAY_*` variables and flags into
//! one [`Config`], and reports every problem at once.
//!
//! # How it works
//!
//! The set of keys and the kind of each value (string, integer, list...) are read from
//! `Config::default()` serialized to TOML, so a field added to the config tree is known to
//! the file, the environment and the shipped example without further registration.
//!
//! Each layer produces `section.key → value` entries. Every entry is checked on its own:
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
use super::{Config, env, validate};

/// Keys whose values are secrets: their values never appear in a message.
pub(crate) const SECRET_KEYS: &[&str] = &["admin.tokens", "cluster.redis_url"];

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

/// The keys the configuration has and the kind of value each takes, read from the defaults.
pub(crate) struct Schema {
    defaults: Table,
}

impl Schema {
    pub(crate) fn new() -> Self {
        let defaults = Table::try_from(Config::default())
            .expect("the default config serializes to TOML (tested)");
        Self { defaults }
    }

    /// Section names, sorted.
    pub(crate) fn sections(&self) -> impl Iterator<Item = &str> {
        self.defaults.keys().map(String::as_str)
    }

    /// Keys of `section`, sorted.
    pub(crate) fn keys(&self, section: &str) -> impl Iterator<Item = &str> {
        self.section(section)
            .into_iter()
            .flat_map(|t| t.keys().map(String::as_str))
    }

    /// Every `section.key` path.
    pub(crate) fn paths(&self) -> Vec<String> {
        self.sections()
            .flat_map(|s| self.keys(s).map(move |k| format!("{s}.{k}")))
            .collect()
    }

    fn section(&self, section: &str) -> Option<&Table> {
        self.defaults.get(section).and_then(Value::as_table)
    }

    /// The default value at `section.key`, whose kind every setting of it must have.
    pub(crate) fn default_of(&self, section: &str, key: &str) -> Option<&Value> {
        self.section(section).and_then(|t| t.get(key))
    }

    /// A hint for an unknown key: the same key in another section, or a close spelling.
    fn suggest(&self, section: Option<&str>, key: &str) -> String {
        if let Some(section) = section {
            if let Some(other) = self.sections().find(|s| self.keys(s).any(|k| k == key)) {
                return format!(" (did you mean `{other}.{key}`?)");
            }
            match closest(key, self.keys(section)) {
                Some(k) => format!(" (did you mean `{section}.{k}`?)"),
                None => format!(
                    "; [{section}] has {}",
                    self.keys(section).collect::<Vec<_>>().join(", ")
                ),
            }
        } else {
            match closest(key, self.sections()) {
                Some(s) => format!(" (did you mean `[{s}]`?)"),
                None => format!(
                    "; the sections are {}",
                    self.sections()
                        .map(|s| format!("[{s}]"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
    }
}

/// The candidate nearest to `word` by edit distance, if it is near enough to be a typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let allowed = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, counted in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
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
            format!("expected {}, found {found}", describe(default)),
            line,
        ));
    }
    if let (DeValue::Array(items), Some(item_kind)) = (value.get_ref(), item_kind(default)) {
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
            format!("expected {}", describe(default))
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

/// Whether the value at `path` must never be shown.
pub(crate) fn is_secret(path: &str) -> bool {
    SECRET_KEYS.contains(&path)
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

/// The kind of a TOML value, with its article: `a string`, `an integer`...
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "a list",
        Value::Table(_) => "a table",
    }
}

fn kind_of_de(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

/// The kind of the items of a list setting. Every list in the config holds strings (names,
/// addresses, tokens); a list whose default is empty is taken to hold strings too.
pub(crate) fn item_kind(default: &Value) -> Option<&'static str> {
    match default {
        Value::Array(items) => Some(items.first().map_or("a string", kind_of)),
        _ => None,
    }
}

/// What a setting expects, for messages: `an integer`, `a list of strings`...
pub(crate) fn describe(default: &Value) -> String {
    match item_kind(default) {
        Some(item) => format!(
            "a list of {}s",
            item.trim_start_matches("an ").trim_start_matches("a ")
        ),
        None => kind_of(default).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_has_every_section_and_key() {
        let schema = Schema::new();
        let sections: Vec<&str> = schema.sections().collect();
        assert_eq!(sections, ["admin", "cluster", "log", "server"]);
        assert!(
            schema
                .paths()
                .contains(&"server.ping_interval_ms".to_owned())
        );
        assert_eq!(
            schema.default_of("admin", "tokens"),
            Some(&Value::Array(Vec::new()))
        );
        assert_eq!(describe(&Value::Array(Vec::new())), "a list of strings");
    }

    #[test]
    fn typos_find_their_key() {
        let keys = ["ping_interval_ms", "ping_timeout_ms", "path", "listen"];
        assert_eq!(
            closest("ping_interval", keys.into_iter()),
            Some("ping_interval_ms")
        );
        assert_eq!(closest("pth", keys.into_iter()), Some("path"));
        assert_eq!(closest("lisen", keys.into_iter()), Some("listen"));
        assert_eq!(closest("transports", keys.into_iter()), None);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn lines_count_from_one() {
        let text = "a\nb\n\nc";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 2), 2);
        assert_eq!(line_of(text, text.len() - 1), 4);
        assert_eq!(line_of(text, 1000), 4);
    }
}
