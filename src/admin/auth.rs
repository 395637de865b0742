//! Bearer-token authentication of `/v1/` requests: which caller a request comes from.
//!
//! A caller is one of `admin.tokens` (full access, named `admin.tokens[N]` in logs), one of
//! `[[admin.keys]]` (its name and [`Scope`]), or, when neither is configured, the open
//! API's anonymous caller.
//!
//! The presented token is compared with every configured token in constant time: the time
//! taken depends only on the length of what the client sent and on how many tokens are
//! configured, never on how much of a token matched, on a token's length, or on which one
//! matched. Tokens never appear in logs: [`Tokens`]' `Debug` prints only how many there are.

use std::fmt;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::scope::Scope;
use crate::config::AdminKey;

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's name for logs: a key's `name`, `admin.tokens[N]` (1-based), or `anonymous`.
    pub name: Arc<str>,
    /// `None`: full access.
    pub scope: Option<Arc<Scope>>,
}

impl Caller {
    fn anonymous() -> Self {
        Caller {
            name: "anonymous".into(),
            scope: None,
        }
    }
}

/// The accepted bearer tokens and the caller each stands for.
#[derive(Clone, Default)]
pub struct Tokens {
    tokens: Vec<(Box<[u8]>, Caller)>,
    required: bool,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tokens({} redacted)", self.tokens.len())
    }
}

impl Tokens {
    /// The full-access tokens of `admin.tokens` and the scoped `[[admin.keys]]`. Any entry
    /// makes a token required; empty strings never match.
    pub fn new(tokens: &[String], keys: &[AdminKey]) -> Self {
        let full = tokens.iter().enumerate().map(|(i, t)| {
            let caller = Caller {
                name: format!("admin.tokens[{}]", i + 1).into(),
                scope: None,
            };
            (t.as_str(), caller)
        });
        let scoped = keys.iter().map(|k| {
            let caller = Caller {
                name: k.name.as_str().into(),
                scope: Some(Arc::new(Scope::of(k))),
            };
            (k.token.as_str(), caller)
        });
        Self {
            tokens: full
                .chain(scoped)
                .filter(|(t, _)| !t.is_empty())
                .map(|(t, caller)| (t.as_bytes().into(), caller))
                .collect(),
            required: !tokens.is_empty() || !keys.is_empty(),
        }
    }

    /// Whether `/v1/` requests must carry a token.
    pub fn required(&self) -> bool {
        self.required
    }

    /// The caller whose token the request's `Authorization: Bearer …` header carries;
    /// the anonymous caller when no token is required; `None` when refused.
    pub fn caller(&self, headers: &HeaderMap) -> Option<Caller> {
        self.caller_of(headers.get_all(AUTHORIZATION).iter().map(|v| v.as_bytes()))
    }

    /// [`caller`](Self::caller) from the values of the request's `Authorization` headers.
    pub fn caller_of<'a>(&self, mut values: impl Iterator<Item = &'a [u8]>) -> Option<Caller> {
        if !self.required {
            return Some(Caller::anonymous());
        }
        let (Some(value), None) = (values.next(), values.next()) else {
            return None;
        };
        let presented = bearer(value)?;
        let mut accepted = Choice::from(0);
        let mut index = 0u32;
        for (i, (token, _)) in self.tokens.iter().enumerate() {
            let equal = constant_time_eq(presented, token);
            accepted |= equal;
            index.conditional_assign(&(i as u32), equal);
        }
        bool::from(accepted).then(|| self.tokens[index as usize].1.clone())
    }

    /// Whether the request carries one of the tokens.
    #[cfg(test)]
    pub fn accept(&self, headers: &HeaderMap) -> bool {
        self.required && self.caller(headers).is_some()
    }
}

/// The token of a `Bearer` credential (scheme case-insensitive, RFC 9110 §11.1).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer";
    if value.len() <= SCHEME.len() || !value[..SCHEME.len()].eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let rest = &value[SCHEME.len()..];
    let start = rest.iter().position(|b| *b != b' ')?;
    if start == 0 {
        return None;
    }
    let token = rest[start..].trim_ascii_end();
    (!token.is_empty()).then_some(token)
}

/// Compares in time that depends on `presented.len()` only (`secret` is non-empty).
fn constant_time_eq(presented: &[u8], secret: &[u8]) -> Choice {
    let mut equal = presented.len().ct_eq(&secret.len());
    for (i, byte) in presented.iter().enumerate() {
        equal &= byte.ct_eq(&secret[i % secret.len()]);
    }
    equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn bearer_tokens() {
        let tokens = Tokens::new(&["secret-one".into(), "two".into(), String::new()], &[]);
        for (values, ok) in [
            (&["Bearer secret-one"][..], true),
            (&["bearer two"], true),
            (&["BEARER   two  "], true),
            (&["Bearer two", "Bearer two"], false),
            (&[], false),
            (&["Bearer"], false),
            (&["Bearer "], false),
            (&["Bearertwo"], false),
            (&["Basic two"], false),
            (&["Bearer tw"], false),
            (&["Bearer twotwo"], false),
            (&["Bearer secret-onE"], false),
            (&["Bearer secret-one x"], false),
        ] {
            assert_eq!(tokens.accept(&headers(values)), ok, "{values:?}");
        }
    }

    #[test]
    fn empty_tokens_never_match_and_debug_hides_tokens() {
        let tokens = Tokens::new(&[String::new()], &[]);
        assert!(tokens.required());
        assert!(!tokens.accept(&headers(&["Bearer x"])));
        assert!(!Tokens::new(&[], &[]).required());
        let shown = format!("{:?}", Tokens::new(&["hunter2".into()], &[]));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn each_token_names_its_caller() {
        let key = AdminKey {
            name: "orders".into(),
            token: "tok-orders".into(),
            namespaces: vec!["/".into()],
            rooms: vec!["orders:*".into()],
            ops: vec![crate::config::AdminOp::Emit],
        };
        let tokens = Tokens::new(&["full-1".into(), "full-2".into()], &[key]);
        let caller = |t: &str| tokens.caller(&headers(&[&format!("Bearer {t}")]));
        assert_eq!(&*caller("full-2").unwrap().name, "admin.tokens[2]");
        assert!(caller("full-1").unwrap().scope.is_none());
        let orders = caller("tok-orders").unwrap();
        assert_eq!(&*orders.name, "orders");
        assert!(orders.scope.is_some());
        assert_eq!(caller("tok-order"), None);
        let open = Tokens::new(&[], &[]).caller(&HeaderMap::new()).unwrap();
        assert_eq!(&*open.name, "anonymous");
    }
}
