//! The environment layer: `SIO_RELAY_<SECTION>_<KEY>` variables, for containers.
//!
//! The process environment is input, not ambient state: `main` gathers the variables once
//! with [`collect`] and passes the map into [`load`](super::load); nothing else in the
//! crate reads the environment, so tests never have to change it.
//!
//! A variable's name is its key path in upper case with `.` as `_`
//! (`server.ping_interval_ms` is `SIO_RELAY_SERVER_PING_INTERVAL_MS`); section names hold no
//! `_`, so every name maps to one key. Values are parsed to the key's kind: integers in
//! decimal, booleans as `true`/`false`, lists comma-separated with spaces around items
//! trimmed (`SIO_RELAY_ADMIN_TOKENS=tok1,tok2`; an empty value is an empty list). A
//! `SIO_RELAY_*` variable that names no key is an error, like an unknown key in the file.

use std::collections::BTreeMap;
use std::ffi::OsString;

use toml::Value;

use super::error::{ConfigError, ConfigErrors};
use super::load::{Layers, Origin};
use super::schema::{Schema, TABLE_LISTS, closest, describe, is_secret, kind_of};

/// The prefix of every variable the relay reads.
pub const PREFIX: &str = "SIO_RELAY_";

/// Picks the `SIO_RELAY_*` variables out of the process environment.
///
/// `main` calls it with `std::env::vars_os()`. A relay variable whose name or value is not
/// UTF-8 is an error naming it; other variables are ignored whatever they hold.
pub fn collect(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<BTreeMap<String, String>, ConfigErrors> {
    let mut map = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, value) in vars {
        let lossy_name = name.to_string_lossy();
        if !lossy_name.starts_with(PREFIX) {
            continue;
        }
        match (name.to_str(), value.into_string()) {
            (Some(name), Ok(value)) => {
                map.insert(name.to_owned(), value);
            }
            (Some(name), Err(_)) => errors.push(ConfigError::new(name, "value is not UTF-8")),
            (None, _) => errors.push(ConfigError::new(lossy_name, "name is not UTF-8")),
        }
    }
    if errors.is_empty() {
        Ok(map)
    } else {
        Err(ConfigErrors { file: None, errors })
    }
}

/// The variable that sets `path` (`section.key`).
pub fn var_name(path: &str) -> String {
    format!("{PREFIX}{}", path.replace('.', "_").to_ascii_uppercase())
}

/// Every variable the relay understands, with the key path it sets.
pub fn known_vars() -> BTreeMap<String, String> {
    known(&Schema::new())
}

fn known(schema: &Schema) -> BTreeMap<String, String> {
    schema
        .paths()
        .into_iter()
        .map(|path| (var_name(&path), path))
        .collect()
}

/// Puts the variables' values in `layers`, reporting unknown variables and bad values.
pub(crate) fn overlay(vars: &BTreeMap<String, String>, schema: &Schema, layers: &mut Layers) {
    let known = known(schema);
    for (name, raw) in vars {
        let Some(path) = known.get(name) else {
            let hint = match closest(name, known.keys().map(String::as_str)) {
                Some(near) => format!(" (did you mean {near}?)"),
                None => String::new(),
            };
            layers.push(ConfigError::new(
                name,
                format!("unknown variable: it names no configuration key{hint}"),
            ));
            continue;
        };
        let (section, key) = path.split_once('.').expect("paths are section.key");
        let default = schema
            .default_of(section, key)
            .expect("known variables come from the schema");
        let origin = Origin::Env(name.clone());
        if TABLE_LISTS.contains(&path.as_str()) {
            let reason = format!(
                "a list of tables cannot be set from the environment; use [[{path}]] in the file"
            );
            layers.error(path, &origin, reason);
            continue;
        }
        match parse(raw, default) {
            Ok(value) => layers.set(path.clone(), value, origin),
            Err(reason) => {
                let reason = if is_secret(path) {
                    format!("expected {}", describe(default))
                } else {
                    reason
                };
                layers.error(path, &origin, reason);
            }
        }
    }
}

/// Parses a variable's text as a value of the same kind as `default`.
fn parse(raw: &str, default: &Value) -> Result<Value, String> {
    match default {
        Value::String(_) => Ok(Value::String(raw.to_owned())),
        Value::Array(items) => {
            if raw.trim().is_empty() {
                return Ok(Value::Array(Vec::new()));
            }
            // Lists whose default is empty hold strings, like every list in the config.
            let item_default = items
                .first()
                .cloned()
                .unwrap_or_else(|| Value::String(String::new()));
            raw.split(',')
                .enumerate()
                .map(|(i, part)| {
                    parse(part.trim(), &item_default)
                        .map_err(|reason| format!("item {}: {reason}", i + 1))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        Value::Integer(_) => raw
            .trim()
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| format!("expected an integer, found `{raw}`")),
        Value::Float(_) => raw
            .trim()
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|_| format!("expected a number, found `{raw}`")),
        Value::Boolean(_) => match raw.trim() {
            "true" => Ok(Value::Boolean(true)),
            "false" => Ok(Value::Boolean(false)),
            _ => Err(format!("expected `true` or `false`, found `{raw}`")),
        },
        Value::Datetime(_) | Value::Table(_) => Err(format!(
            "{} cannot be set from the environment",
            kind_of(default)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn var_names_follow_the_key_path() {
        assert_eq!(
            var_name("server.ping_interval_ms"),
            "SIO_RELAY_SERVER_PING_INTERVAL_MS"
        );
        assert_eq!(var_name("admin.tokens"), "SIO_RELAY_ADMIN_TOKENS");
        let known = known_vars();
        assert_eq!(
            known.get("SIO_RELAY_CLUSTER_PYTHON_SOCKETIO_CHANNEL"),
            Some(&"cluster.python_socketio_channel".to_owned())
        );
        assert_eq!(
            known.get("SIO_RELAY_LOG_FORMAT"),
            Some(&"log.format".to_owned())
        );
    }

    #[test]
    fn collect_keeps_only_relay_variables() {
        let map = collect(os(&[
            ("PATH", "/bin"),
            ("SIO_RELAY_ADMIN_TOKENS", "a,b"),
            ("RUST_LOG", "debug"),
            ("sio_relay_lower", "x"),
        ]))
        .unwrap();
        assert_eq!(map.len(), 1);
        assert_eq!(map["SIO_RELAY_ADMIN_TOKENS"], "a,b");
    }

    #[cfg(unix)]
    #[test]
    fn collect_refuses_non_utf8_relay_values() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![0x66, 0xff]);
        let vars = vec![
            (OsString::from("SIO_RELAY_SERVER_PATH"), bad.clone()),
            (OsString::from("OTHER"), bad),
        ];
        let errors = collect(vars).unwrap_err();
        assert_eq!(errors.errors.len(), 1);
        assert_eq!(errors.errors[0].key, "SIO_RELAY_SERVER_PATH");
    }

    #[test]
    fn values_parse_to_the_default_kind() {
        let int = Value::Integer(1);
        assert_eq!(parse(" 42 ", &int), Ok(Value::Integer(42)));
        assert!(
            parse("4s", &int)
                .unwrap_err()
                .contains("expected an integer")
        );
        let boolean = Value::Boolean(false);
        assert_eq!(parse("true", &boolean), Ok(Value::Boolean(true)));
        assert!(parse("yes", &boolean).is_err());
        let list = Value::Array(Vec::new());
        assert_eq!(
            parse("tok1, tok2", &list),
            Ok(Value::Array(vec![
                Value::String("tok1".into()),
                Value::String("tok2".into())
            ]))
        );
        assert_eq!(parse("", &list), Ok(Value::Array(Vec::new())));
        let string = Value::String(String::new());
        assert_eq!(parse(" a b ", &string), Ok(Value::String(" a b ".into())));
    }
}
