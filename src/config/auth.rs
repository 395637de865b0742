//! `[auth]`: how clients prove who they are on every namespace connect, and the rules
//! that types alone cannot express for it.
//!
//! Optional settings are strings whose empty value means "not set", so that every key
//! has a default the schema (and the shipped example) can show.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::MASK;

/// How clients are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Every client is accepted.
    #[default]
    None,
    /// A JSON Web Token, checked by the relay.
    Jwt,
    /// The relay asks a backend over HTTP.
    Webhook,
}

/// `[auth]`: client authentication.
///
/// `Debug` masks the secrets.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `none`, `jwt` or `webhook`.
    pub mode: AuthMode,
    /// HMAC secret for HS256/384/512 tokens.
    pub jwt_secret: String,
    /// PEM file with the public key for RS*, PS*, ES* or EdDSA tokens.
    pub jwt_public_key_file: String,
    /// URL of a JSON Web Key Set; keys are picked by the token's `kid`.
    pub jwks_url: String,
    /// Required `iss` claim; empty: not checked.
    pub jwt_issuer: String,
    /// Required `aud` claim; empty: not checked.
    pub jwt_audience: String,
    /// Clock skew allowed on `exp` and `nbf`.
    pub jwt_leeway_ms: u64,
    /// Where `webhook` mode asks.
    pub webhook_url: String,
    /// HMAC secret signing webhook requests; required unless the URL is on loopback.
    pub webhook_secret: String,
    /// Handshake headers passed to the webhook (case-insensitive names).
    pub forward_headers: Vec<String>,
    /// How long a webhook or key-set request may take.
    pub timeout_ms: u64,
    /// An authenticated user's sockets join the room `<prefix><user>`.
    pub user_room_prefix: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            mode: AuthMode::None,
            jwt_secret: String::new(),
            jwt_public_key_file: String::new(),
            jwks_url: String::new(),
            jwt_issuer: String::new(),
            jwt_audience: String::new(),
            jwt_leeway_ms: 30_000,
            webhook_url: String::new(),
            webhook_secret: String::new(),
            forward_headers: vec!["authorization".into()],
            timeout_ms: 5_000,
            user_room_prefix: "user:".into(),
        }
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be left out unnoticed.
        let Self {
            mode,
            jwt_secret,
            jwt_public_key_file,
            jwks_url,
            jwt_issuer,
            jwt_audience,
            jwt_leeway_ms,
            webhook_url,
            webhook_secret,
            forward_headers,
            timeout_ms,
            user_room_prefix,
        } = self;
        let mask = |s: &String| if s.is_empty() { "" } else { MASK };
        f.debug_struct("AuthConfig")
            .field("mode", mode)
            .field("jwt_secret", &mask(jwt_secret))
            .field("jwt_public_key_file", jwt_public_key_file)
            .field("jwks_url", jwks_url)
            .field("jwt_issuer", jwt_issuer)
            .field("jwt_audience", jwt_audience)
            .field("jwt_leeway_ms", jwt_leeway_ms)
            .field("webhook_url", webhook_url)
            .field("webhook_secret", &mask(webhook_secret))
            .field("forward_headers", forward_headers)
            .field("timeout_ms", timeout_ms)
            .field("user_room_prefix", user_room_prefix)
            .finish()
    }
}

/// Replaces the secrets of `auth` with [`MASK`] (for `--check-config`).
pub(crate) fn mask(auth: &mut AuthConfig) {
    for secret in [&mut auth.jwt_secret, &mut auth.webhook_secret] {
        if !secret.is_empty() {
            *secret = MASK.to_owned();
        }
    }
}

/// The `[auth]` rules `auth` breaks, as (key, reason).
pub(crate) fn problems(auth: &AuthConfig) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut add = |key: &'static str, reason: &str| out.push((key, reason.to_owned()));
    match auth.mode {
        AuthMode::None => {}
        AuthMode::Jwt => {
            let sources = [
                !auth.jwt_secret.is_empty(),
                !auth.jwt_public_key_file.is_empty(),
                !auth.jwks_url.is_empty(),
            ];
            match sources.iter().filter(|set| **set).count() {
                0 => add(
                    "auth.mode",
                    "\"jwt\" needs one of auth.jwt_secret, auth.jwt_public_key_file, auth.jwks_url",
                ),
                1 => {}
                _ => add(
                    "auth.jwt_secret",
                    "set only one of auth.jwt_secret, auth.jwt_public_key_file, auth.jwks_url",
                ),
            }
            if !auth.jwks_url.is_empty()
                && let Err(reason) = http_url(&auth.jwks_url)
            {
                add("auth.jwks_url", reason);
            }
        }
        AuthMode::Webhook => {
            if auth.webhook_url.is_empty() {
                add("auth.webhook_url", "\"webhook\" mode needs a URL");
            } else {
                match http_url(&auth.webhook_url) {
                    Err(reason) => add("auth.webhook_url", reason),
                    Ok(loopback) => {
                        if !loopback && auth.webhook_secret.is_empty() {
                            add(
                                "auth.webhook_secret",
                                "required when auth.webhook_url is not on loopback: \
                                 backends check the signature",
                            );
                        }
                    }
                }
            }
        }
    }
    for name in &auth.forward_headers {
        if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            add(
                "auth.forward_headers",
                "holds a name that is not a header name",
            );
            break;
        }
    }
    if auth.timeout_ms == 0 {
        add("auth.timeout_ms", "must be greater than 0");
    }
    if auth.user_room_prefix.is_empty() {
        add(
            "auth.user_room_prefix",
            "must not be empty: user rooms would mix with other rooms and sids",
        );
    }
    out
}

/// Checks an `http://` or `https://` URL; `Ok(true)` when its host is on loopback.
fn http_url(url: &str) -> Result<bool, &'static str> {
    let parsed = reqwest::Url::parse(url).map_err(|_| "is not a URL")?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("scheme must be `http` or `https`");
    }
    super::hooks::host_is_loopback(&parsed).ok_or("has no host")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(auth: &AuthConfig) -> Vec<&'static str> {
        problems(auth).into_iter().map(|(key, _)| key).collect()
    }

    #[test]
    fn defaults_pass() {
        assert!(problems(&AuthConfig::default()).is_empty());
    }

    #[test]
    fn jwt_needs_exactly_one_key_source() {
        let mut auth = AuthConfig {
            mode: AuthMode::Jwt,
            ..AuthConfig::default()
        };
        assert_eq!(keys(&auth), ["auth.mode"]);
        auth.jwt_secret = "s".into();
        assert!(keys(&auth).is_empty());
        auth.jwks_url = "http://127.0.0.1:1/jwks".into();
        assert_eq!(keys(&auth), ["auth.jwt_secret"]);
        auth.jwt_secret.clear();
        auth.jwks_url = "ftp://x/jwks".into();
        assert_eq!(keys(&auth), ["auth.jwks_url"]);
    }

    #[test]
    fn webhook_needs_a_url_and_off_loopback_a_secret() {
        let mut auth = AuthConfig {
            mode: AuthMode::Webhook,
            ..AuthConfig::default()
        };
        assert_eq!(keys(&auth), ["auth.webhook_url"]);
        auth.webhook_url = "http://127.0.0.1:9000/auth".into();
        assert!(keys(&auth).is_empty());
        auth.webhook_url = "http://localhost:9000/auth".into();
        assert!(keys(&auth).is_empty());
        auth.webhook_url = "https://auth.example/check".into();
        assert_eq!(keys(&auth), ["auth.webhook_secret"]);
        auth.webhook_secret = "s".into();
        assert!(keys(&auth).is_empty());
        auth.webhook_url = "not a url".into();
        assert_eq!(keys(&auth), ["auth.webhook_url"]);
    }

    #[test]
    fn limits_headers_and_prefix() {
        let auth = AuthConfig {
            timeout_ms: 0,
            user_room_prefix: String::new(),
            forward_headers: vec!["bad header".into()],
            ..AuthConfig::default()
        };
        assert_eq!(
            keys(&auth),
            [
                "auth.forward_headers",
                "auth.timeout_ms",
                "auth.user_room_prefix"
            ]
        );
    }

    #[test]
    fn debug_and_mask_hide_secrets() {
        let mut auth = AuthConfig {
            jwt_secret: "hunter2".into(),
            webhook_secret: "pa55".into(),
            ..AuthConfig::default()
        };
        let shown = format!("{auth:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("pa55"),
            "{shown}"
        );
        mask(&mut auth);
        assert_eq!(auth.jwt_secret, MASK);
        assert_eq!(auth.webhook_secret, MASK);
    }
}
