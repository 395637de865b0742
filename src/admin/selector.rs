//! The selector shared by every admin call: which sockets of which namespace it applies to.
//!
//! A body selects with `namespace` (default `/`), `to` (alias `room`: a room or sid, or an
//! array of them), `except`, and `broadcast`. Addressing a whole namespace needs an explicit
//! `broadcast: true`, so a forgotten `to` can never reach every client: that is
//! `missing_target`; `to` with `broadcast: true`, or `to` and `room` with different
//! values, is `conflicting_target`. Listings (`GET /v1/sockets`) select through the query
//! string instead and need no `broadcast`.
//!
//! `user` (a name or an array of them) selects the sockets of those authenticated users:
//! it stands for their user rooms (`auth.user_room_prefix` + name), so it works across the
//! cluster like any room. With `to` the two add up; with `broadcast: true` it conflicts.

use serde_json::Value;

use super::body::{Fields, kind, wrong_type};
use super::error::ApiError;
use crate::adapter::Target;

/// The body fields the selector reads.
pub const FIELDS: [&str; 6] = ["namespace", "to", "room", "except", "broadcast", "user"];

/// Reads the selector fields of a body into a [`Target`] (`to` empty: the whole namespace);
/// `user_prefix` turns user names into their rooms.
pub fn from_fields(fields: &mut Fields, user_prefix: &str) -> Result<Target, ApiError> {
    let namespace = namespace(fields.string("namespace")?)?;
    let to = fields.take("to").map(|v| names("to", v)).transpose()?;
    let room = fields.take("room").map(|v| names("room", v)).transpose()?;
    let except = match fields.take("except") {
        None => Vec::new(),
        Some(Value::Array(items)) if items.is_empty() => Vec::new(),
        Some(value) => names("except", value)?,
    };
    let broadcast = fields.bool("broadcast")?.unwrap_or(false);
    let users = fields
        .take("user")
        .map(|v| user_rooms(user_prefix, names("user", v)?))
        .transpose()?;

    let to = match (to, room) {
        (Some(to), Some(room)) if !same_names(&to, &room) => {
            return Err(ApiError::ConflictingTarget(
                "`room` is an alias of `to`; they differ here, give one of them".into(),
            ));
        }
        (to, room) => to.or(room),
    };
    let to = match (to, users) {
        (Some(mut to), Some(users)) => {
            to.extend(
                users
                    .into_iter()
                    .filter(|r| !to.contains(r))
                    .collect::<Vec<_>>(),
            );
            Some(to)
        }
        (to, users) => to.or(users),
    };
    let to = match (to, broadcast) {
        (Some(_), true) => {
            return Err(ApiError::ConflictingTarget(
                "`to` and `user` address rooms, `broadcast: true` the whole namespace; give one of them"
                    .into(),
            ));
        }
        (Some(to), false) => to,
        (None, true) => Vec::new(),
        (None, false) => return Err(ApiError::MissingTarget),
    };
    Ok(Target {
        namespace,
        to,
        except,
    })
}

/// The rooms of `users`.
fn user_rooms(prefix: &str, users: Vec<String>) -> Result<Vec<String>, ApiError> {
    Ok(users.into_iter().map(|u| format!("{prefix}{u}")).collect())
}

/// Validates a namespace (default `/`): it must start with `/`.
pub fn namespace(value: Option<String>) -> Result<String, ApiError> {
    match value {
        None => Ok("/".to_owned()),
        Some(ns) if ns.starts_with('/') => Ok(ns),
        Some(ns) => Err(ApiError::field(format!(
            "`namespace` must start with `/`, got {:?}",
            ns
        ))),
    }
}

/// A room list: a non-empty string, or a non-empty array of non-empty strings; duplicates
/// are dropped, order kept.
pub fn names(field: &str, value: Value) -> Result<Vec<String>, ApiError> {
    let list = match value {
        Value::String(s) => vec![s],
        Value::Array(items) => {
            if items.is_empty() {
                return Err(ApiError::field(format!("`{field}` must not be empty")));
            }
            let mut list = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Value::String(s) => list.push(s),
                    other => {
                        return Err(ApiError::field(format!(
                            "`{field}[{i}]` must be a string, got {}",
                            kind(&other)
                        )));
                    }
                }
            }
            list
        }
        other => return Err(wrong_type(field, "a string or an array of strings", &other)),
    };
    if list.iter().any(String::is_empty) {
        return Err(ApiError::field(format!(
            "`{field}` must not contain an empty name"
        )));
    }
    let mut unique: Vec<String> = Vec::with_capacity(list.len());
    for name in list {
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    Ok(unique)
}

fn same_names(a: &[String], b: &[String]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// The pairs of a query string, refusing parameters not in `allowed` (`unknown_field`).
pub fn query_pairs(
    query: Option<&str>,
    allowed: &[&str],
) -> Result<Vec<(String, String)>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|e| ApiError::field(format!("the query string is invalid: {e}")))?;
    if let Some((unknown, _)) = pairs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        return Err(ApiError::UnknownField(unknown.clone()));
    }
    Ok(pairs)
}

/// The namespace of a query (`namespace`, at most once).
pub fn query_namespace(pairs: &[(String, String)]) -> Result<String, ApiError> {
    let mut values = pairs.iter().filter(|(k, _)| k == "namespace");
    let first = values.next().map(|(_, v)| v.clone());
    if values.next().is_some() {
        return Err(ApiError::field("`namespace` may be given once"));
    }
    namespace(first)
}

/// Reads `namespace`, `to`, `user` and `except` (all repeatable) from a listing's query;
/// without `to` or `user`, the whole namespace.
pub fn from_query(query: Option<&str>, user_prefix: &str) -> Result<Target, ApiError> {
    let pairs = query_pairs(query, &["namespace", "to", "user", "except"])?;
    let namespace = query_namespace(&pairs)?;
    let list = |name: &str| -> Result<Vec<String>, ApiError> {
        let values: Vec<Value> = pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| Value::String(v.clone()))
            .collect();
        if values.is_empty() {
            Ok(Vec::new())
        } else {
            names(name, Value::Array(values))
        }
    };
    let mut to = list("to")?;
    for room in user_rooms(user_prefix, list("user")?)? {
        if !to.contains(&room) {
            to.push(room);
        }
    }
    Ok(Target {
        namespace,
        to,
        except: list("except")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<Target, ApiError> {
        let mut fields = Fields::new(body, &FIELDS)?;
        from_fields(&mut fields, "user:")
    }

    fn target(ns: &str, to: &[&str], except: &[&str]) -> Target {
        Target {
            namespace: ns.into(),
            to: to.iter().map(|s| s.to_string()).collect(),
            except: except.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn accepted() {
        let cases = [
            (json!({"to": "a"}), target("/", &["a"], &[])),
            (
                json!({"to": ["a", "b", "a"]}),
                target("/", &["a", "b"], &[]),
            ),
            (json!({"room": "a"}), target("/", &["a"], &[])),
            (
                json!({"to": ["a", "b"], "room": ["b", "a"]}),
                target("/", &["a", "b"], &[]),
            ),
            (json!({"to": "a", "room": ["a"]}), target("/", &["a"], &[])),
            (
                json!({"to": "a", "broadcast": false}),
                target("/", &["a"], &[]),
            ),
            (json!({"broadcast": true}), target("/", &[], &[])),
            (json!({"user": "u1"}), target("/", &["user:u1"], &[])),
            (
                json!({"user": ["u1", "u2"], "to": "a"}),
                target("/", &["a", "user:u1", "user:u2"], &[]),
            ),
            (
                json!({"broadcast": true, "except": "x", "namespace": "/chat"}),
                target("/chat", &[], &["x"]),
            ),
            (json!({"to": "a", "except": []}), target("/", &["a"], &[])),
            (
                json!({"to": "a", "except": ["x", "y"]}),
                target("/", &["a"], &["x", "y"]),
            ),
        ];
        for (body, want) in cases {
            assert_eq!(parse(body.clone()).as_ref(), Ok(&want), "{body}");
        }
    }

    #[test]
    fn refused() {
        let cases = [
            (json!({}), "missing_target"),
            (json!({"broadcast": false}), "missing_target"),
            (json!({"namespace": "/x"}), "missing_target"),
            (json!({"except": "a"}), "missing_target"),
            (json!({"to": "a", "broadcast": true}), "conflicting_target"),
            (
                json!({"user": "u", "broadcast": true}),
                "conflicting_target",
            ),
            (json!({"user": ""}), "invalid_field"),
            (json!({"user": []}), "invalid_field"),
            (json!({"user": 1}), "invalid_field"),
            (
                json!({"room": "a", "broadcast": true}),
                "conflicting_target",
            ),
            (json!({"to": "a", "room": "b"}), "conflicting_target"),
            (
                json!({"to": ["a"], "room": ["a", "b"]}),
                "conflicting_target",
            ),
            (json!({"to": ""}), "invalid_field"),
            (json!({"to": []}), "invalid_field"),
            (json!({"to": ["a", ""]}), "invalid_field"),
            (json!({"to": ["a", 1]}), "invalid_field"),
            (json!({"to": 1}), "invalid_field"),
            (json!({"to": null}), "invalid_field"),
            (json!({"room": ""}), "invalid_field"),
            (json!({"to": "a", "except": ""}), "invalid_field"),
            (json!({"to": "a", "except": [""]}), "invalid_field"),
            (json!({"to": "a", "except": {}}), "invalid_field"),
            (json!({"to": "a", "broadcast": "yes"}), "invalid_field"),
            (json!({"to": "a", "namespace": ""}), "invalid_field"),
            (json!({"to": "a", "namespace": "chat"}), "invalid_field"),
            (json!({"to": "a", "namespace": 1}), "invalid_field"),
            (json!({"to": "a", "rooms": ["x"]}), "unknown_field"),
            (json!({"to": "a", "Broadcast": true}), "unknown_field"),
        ];
        for (body, code) in cases {
            let got = parse(body.clone());
            assert_eq!(got.as_ref().map_err(ApiError::code), Err(code), "{body}");
        }
    }

    #[test]
    fn queries() {
        assert_eq!(from_query(None, "user:"), Ok(target("/", &[], &[])));
        assert_eq!(
            from_query(
                Some("namespace=%2Fchat&to=a&to=b+c&except=x&user=u"),
                "user:"
            ),
            Ok(target("/chat", &["a", "b c", "user:u"], &["x"]))
        );
        for (query, code) in [
            ("to=", "invalid_field"),
            ("except=", "invalid_field"),
            ("namespace=chat", "invalid_field"),
            ("namespace=%2F&namespace=%2Fx", "invalid_field"),
            ("room=a", "unknown_field"),
            ("broadcast=true", "unknown_field"),
        ] {
            assert_eq!(
                from_query(Some(query), "user:").map_err(|e| e.code()),
                Err(code),
                "{query}"
            );
        }
    }
}
