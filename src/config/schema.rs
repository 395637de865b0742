//! The schema of the configuration: which sections and keys exist and what kind of value
//! each takes, read from `Config::default()` serialized to TOML, so that a field added to
//! the config tree is known to the file, the environment and the shipped example without
//! further registration. Also: which keys are secret, and spelling hints for unknown keys.

use toml::de::DeValue;
use toml::{Table, Value};

use super::Config;

/// Keys whose values are secrets: their values never appear in a message.
pub(crate) const SECRET_KEYS: &[&str] = &[
    "admin.tokens",
    "admin.keys",
    "cluster.redis_url",
    "hooks.secret",
];

/// List settings whose items are tables (`[[admin.keys]]`) rather than strings; the
/// environment cannot set them.
pub(crate) const TABLE_LISTS: &[&str] = &["admin.keys"];

/// Keys that moved, with where they went: refused with a message that says so.
pub(crate) const MOVED_KEYS: &[(&str, &str)] = &[
    (
        "server.outbound_queue",
        "replaced by `limits.max_queued_bytes`, a size in bytes rather than a packet count",
    ),
    (
        "server.slow_client_policy",
        "replaced by `limits.slow_client` (same values)",
    ),
];

/// Whether the value at `path` must never be shown.
pub(crate) fn is_secret(path: &str) -> bool {
    SECRET_KEYS.contains(&path)
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

    pub(crate) fn section(&self, section: &str) -> Option<&Table> {
        self.defaults.get(section).and_then(Value::as_table)
    }

    /// The default value at `section.key`, whose kind every setting of it must have.
    pub(crate) fn default_of(&self, section: &str, key: &str) -> Option<&Value> {
        self.section(section).and_then(|t| t.get(key))
    }

    /// A hint for an unknown key: the same key in another section, or a close spelling.
    pub(crate) fn suggest(&self, section: Option<&str>, key: &str) -> String {
        if let Some(section) = section {
            let path = format!("{section}.{key}");
            if let Some((_, moved)) = MOVED_KEYS.iter().find(|(old, _)| *old == path) {
                return format!(": {moved}");
            }
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

pub(crate) fn kind_of_de(value: &DeValue<'_>) -> &'static str {
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

/// [`item_kind`] for the setting at `path`, which knows the lists of tables.
pub(crate) fn item_kind_at(path: &str, default: &Value) -> Option<&'static str> {
    if TABLE_LISTS.contains(&path) {
        return Some("a table");
    }
    item_kind(default)
}

/// [`describe`] for the setting at `path`.
pub(crate) fn describe_at(path: &str, default: &Value) -> String {
    if TABLE_LISTS.contains(&path) {
        return "a list of tables".into();
    }
    describe(default)
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
        assert_eq!(
            sections,
            [
                "admin", "cluster", "hooks", "limits", "log", "recovery", "server", "tls"
            ]
        );
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
}
