//! What authentication keeps of a session's opening request, and where a token is found.
//!
//! Kept only when a mode needs it, and only the parts it reads: a JWT check needs the
//! `Authorization: Bearer` token and the `token` query parameter; the webhook also gets
//! the query and the headers named in `auth.forward_headers`. Nothing else of the request
//! outlives the handshake.

use serde_json::{Map, Value};

use super::{Code, Refusal};

/// The parts of an opening request a check may read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handshake {
    bearer: Option<Box<str>>,
    query_token: Option<Box<str>>,
    /// Webhook mode only: every query parameter (the first value of each name).
    query: Vec<(String, String)>,
    /// Webhook mode only: the forwarded headers, lower-case names.
    headers: Vec<(String, String)>,
}

impl Handshake {
    pub(super) fn for_token(opening: &crate::engine::Handshake<'_>) -> Self {
        let bearer = opening
            .header("authorization")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(bearer_token)
            .map(Box::from);
        let query_token = query_pairs(opening.query())
            .into_iter()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty())
            .map(Box::from);
        Handshake {
            bearer,
            query_token,
            ..Handshake::default()
        }
    }

    pub(super) fn for_webhook(opening: &crate::engine::Handshake<'_>, forward: &[String]) -> Self {
        let mut query: Vec<(String, String)> = Vec::new();
        for (key, value) in query_pairs(opening.query()) {
            if !query.iter().any(|(k, _)| *k == key) {
                query.push((key, value));
            }
        }
        let headers = forward
            .iter()
            .filter_map(|name| {
                let value = opening.header(name)?;
                Some((name.clone(), String::from_utf8_lossy(value).into_owned()))
            })
            .collect();
        Handshake {
            query,
            headers,
            ..Handshake::for_token(opening)
        }
    }

    /// The client's token: the CONNECT `auth` payload's `token`, else the handshake's
    /// bearer token, else its `token` query parameter.
    pub(super) fn token<'a>(&'a self, auth: &'a Value) -> Result<&'a str, Refusal> {
        match auth.get("token") {
            Some(Value::String(token)) if !token.is_empty() => return Ok(token),
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(_) => {
                return Err(Refusal::new(
                    Code::TokenInvalid,
                    "the auth payload's token is not a string",
                ));
            }
        }
        self.bearer
            .as_deref()
            .or(self.query_token.as_deref())
            .ok_or_else(|| Refusal::new(Code::TokenMissing, "no token"))
    }

    /// The query as a JSON object (webhook mode).
    pub(super) fn query_object(&self) -> Value {
        object(&self.query)
    }

    /// The forwarded headers as a JSON object (webhook mode).
    pub(super) fn headers_object(&self) -> Value {
        object(&self.headers)
    }
}

fn object(pairs: &[(String, String)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(query).unwrap_or_default()
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;
    use serde_json::json;

    #[test]
    fn token_sources_in_order() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "bearer from-header".parse().unwrap());
        headers.insert("cookie", "c=1".parse().unwrap());
        let query = "EIO=4&token=from-query&token=second";
        let opening = crate::engine::Handshake::from_map(Some(query), &headers);
        let kept = Handshake::for_token(&opening);
        assert_eq!(kept.token(&json!({"token": "from-auth"})), Ok("from-auth"));
        assert_eq!(kept.token(&json!({"token": ""})), Ok("from-header"));
        assert_eq!(kept.token(&Value::Null), Ok("from-header"));
        let no_headers = HeaderMap::new();
        let without_header = crate::engine::Handshake::from_map(Some(query), &no_headers);
        let kept = Handshake::for_token(&without_header);
        assert_eq!(kept.token(&json!({})), Ok("from-query"));
        assert_eq!(
            kept.token(&json!({"token": 5})).unwrap_err().code,
            Code::TokenInvalid
        );
        let none = Handshake::for_token(&crate::engine::Handshake::none());
        assert_eq!(none.token(&json!({})).unwrap_err().code, Code::TokenMissing);
        assert_eq!(none, Handshake::default());
    }

    #[test]
    fn webhook_keeps_query_and_only_forwarded_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer t".parse().unwrap());
        headers.insert("cookie", "secret=1".parse().unwrap());
        headers.insert("x-tenant", "acme".parse().unwrap());
        let opening = crate::engine::Handshake::from_map(Some("EIO=4&a=1&a=2"), &headers);
        let kept = Handshake::for_webhook(&opening, &["x-tenant".into(), "x-absent".into()]);
        assert_eq!(kept.headers_object(), json!({"x-tenant": "acme"}));
        assert_eq!(kept.query_object(), json!({"EIO": "4", "a": "1"}));
    }

    #[test]
    fn bearer_values() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
