//! Bearer-token authentication of `/v1/` requests.
//!
//! The presented token is compared with every configured token in constant time: the time
//! taken depends only on the length of what the client sent and on how many tokens are
//! configured, never on how much of a token matched or on a token's length. Tokens never
//! appear in logs: [`Tokens`]' `Debug` prints only how many there are.

use std::fmt;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use subtle::{Choice, ConstantTimeEq};

/// The accepted bearer tokens.
#[derive(Clone, Default)]
pub struct Tokens {
    tokens: Vec<Box<[u8]>>,
    required: bool,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tokens({} redacted)", self.tokens.len())
    }
}

impl Tokens {
    /// The tokens of `admin.tokens`. Any entry makes a token required; empty strings never
    /// match.
    pub fn new(tokens: &[String]) -> Self {
        Self {
            tokens: tokens
                .iter()
                .filter(|t| !t.is_empty())
                .map(|t| t.as_bytes().into())
                .collect(),
            required: !tokens.is_empty(),
        }
    }

    /// Whether `/v1/` requests must carry a token.
    pub fn required(&self) -> bool {
        self.required
    }

    /// Whether the request's `Authorization: Bearer …` header carries one of the tokens.
    pub fn accept(&self, headers: &HeaderMap) -> bool {
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return false;
        };
        let Some(presented) = bearer(value.as_bytes()) else {
            return false;
        };
        let mut accepted = Choice::from(0);
        for token in &self.tokens {
            accepted |= constant_time_eq(presented, token);
        }
        accepted.into()
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
        let tokens = Tokens::new(&["secret-one".into(), "two".into(), String::new()]);
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
        let tokens = Tokens::new(&[String::new()]);
        assert!(tokens.required());
        assert!(!tokens.accept(&headers(&["Bearer x"])));
        assert!(!Tokens::new(&[]).required());
        let shown = format!("{:?}", Tokens::new(&["hunter2".into()]));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
