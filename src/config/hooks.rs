//! `[hooks]`: the backend that receives client events and socket lifecycle events, and the
//! rules its settings must follow.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::mask::MASK;

/// A socket lifecycle event a hook can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleEvent {
    /// A socket joined a namespace.
    Connect,
    /// A socket left a namespace.
    Disconnect,
}

/// `[hooks]`: where client events and lifecycle events go.
///
/// `Debug` masks the secret.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HooksConfig {
    /// The backend's URL (`http://` or `https://`); empty: no hooks, client events are
    /// dropped and counted.
    pub url: String,
    /// Key of the requests' HMAC-SHA256 signature; required unless `url` is on loopback.
    pub secret: String,
    /// Globs (`*`, `?`) of the client event names to forward.
    pub events: Vec<String>,
    /// Which lifecycle events to send: `connect`, `disconnect`.
    pub lifecycle: Vec<LifecycleEvent>,
    /// How long one request may take.
    pub timeout_ms: u64,
    /// Client events accepted and not yet answered, on this node; more are dropped.
    pub max_in_flight: u64,
    /// How many times a failed lifecycle request is sent again.
    pub retries: u32,
    /// Lifecycle events waiting to be delivered, on this node; more are dropped.
    pub lifecycle_queue: u64,
}

impl Default for HooksConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            secret: String::new(),
            events: Vec::new(),
            lifecycle: Vec::new(),
            timeout_ms: 5_000,
            max_in_flight: 1_024,
            retries: 5,
            lifecycle_queue: 10_000,
        }
    }
}

impl fmt::Debug for HooksConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be left out unnoticed.
        let Self {
            url,
            secret,
            events,
            lifecycle,
            timeout_ms,
            max_in_flight,
            retries,
            lifecycle_queue,
        } = self;
        f.debug_struct("HooksConfig")
            .field("url", url)
            .field("secret", &if secret.is_empty() { "" } else { MASK })
            .field("events", events)
            .field("lifecycle", lifecycle)
            .field("timeout_ms", timeout_ms)
            .field("max_in_flight", max_in_flight)
            .field("retries", retries)
            .field("lifecycle_queue", lifecycle_queue)
            .finish()
    }
}

impl HooksConfig {
    /// Whether a hook URL is set.
    pub fn enabled(&self) -> bool {
        !self.url.is_empty()
    }
}

/// Most retries of one lifecycle event: with the capped backoff, about an hour.
pub const MAX_RETRIES: u32 = 400;

/// Every rule `[hooks]` breaks, as `(key, because, reason)`.
pub(crate) fn problems(h: &HooksConfig) -> Vec<(&'static str, Option<&'static str>, String)> {
    let mut out = Vec::new();
    if h.enabled() {
        match url_host(&h.url) {
            Err(reason) => out.push(("hooks.url", None, reason)),
            Ok(loopback) => {
                if !loopback && h.secret.is_empty() {
                    out.push((
                        "hooks.secret",
                        Some("hooks.url"),
                        format!(
                            "must be set when hooks.url ({}) is not on a loopback address: \
                             the backend needs it to tell the relay's requests from forgeries",
                            h.url
                        ),
                    ));
                }
            }
        }
    } else if !h.events.is_empty() || !h.lifecycle.is_empty() {
        let key = if h.events.is_empty() {
            "hooks.lifecycle"
        } else {
            "hooks.events"
        };
        out.push((
            key,
            Some("hooks.url"),
            "has no effect without hooks.url; set the backend's URL".into(),
        ));
    }
    for (i, glob) in h.events.iter().enumerate() {
        if glob.is_empty() {
            out.push((
                "hooks.events",
                None,
                format!("item {}: an empty pattern matches no event", i + 1),
            ));
        }
    }
    for (key, value) in [
        ("hooks.timeout_ms", h.timeout_ms),
        ("hooks.max_in_flight", h.max_in_flight),
        ("hooks.lifecycle_queue", h.lifecycle_queue),
    ] {
        if value == 0 {
            out.push((key, None, "must be greater than 0".into()));
        }
    }
    if h.retries > MAX_RETRIES {
        out.push((
            "hooks.retries",
            None,
            format!("must be at most {MAX_RETRIES}"),
        ));
    }
    out
}

/// Checks a hook URL; `Ok(true)` when its host is a loopback address.
fn url_host(url: &str) -> Result<bool, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("is not a valid URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "must be an http:// or https:// URL, got `{}://`",
            parsed.scheme()
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials; the requests are signed with hooks.secret".into());
    }
    host_is_loopback(&parsed).ok_or_else(|| "must name a host".into())
}

/// Whether a URL's host is a loopback address or `localhost`; `None` when it has no host.
/// Webhook secrets (hooks and auth) may be left out only for such URLs.
pub(super) fn host_is_loopback(url: &reqwest::Url) -> Option<bool> {
    let host = url.host_str()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some(match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical().is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(h: &HooksConfig) -> Vec<&'static str> {
        problems(h).into_iter().map(|(k, _, _)| k).collect()
    }

    #[test]
    fn secret_is_required_off_loopback() {
        let mut h = HooksConfig {
            url: "http://127.0.0.1:8080/hook".into(),
            ..Default::default()
        };
        assert!(keys(&h).is_empty());
        for url in [
            "http://localhost/h",
            "http://[::1]:9/h",
            "https://127.0.0.2/",
        ] {
            h.url = url.into();
            assert!(keys(&h).is_empty(), "{url}");
        }
        h.url = "https://backend.example/hook".into();
        assert_eq!(keys(&h), ["hooks.secret"]);
        h.secret = "s".into();
        assert!(keys(&h).is_empty());
    }

    #[test]
    fn bad_values() {
        let mut h = HooksConfig {
            url: "ftp://x/".into(),
            ..Default::default()
        };
        assert_eq!(keys(&h), ["hooks.url"]);
        h.url = "not a url".into();
        assert_eq!(keys(&h), ["hooks.url"]);
        h.url = "http://u:p@127.0.0.1/".into();
        assert_eq!(keys(&h), ["hooks.url"]);
        h.url = String::new();
        h.events = vec!["chat:*".into()];
        assert_eq!(keys(&h), ["hooks.events"]);
        h.events.clear();
        h.lifecycle = vec![LifecycleEvent::Connect];
        assert_eq!(keys(&h), ["hooks.lifecycle"]);
        let h = HooksConfig {
            url: "http://127.0.0.1/".into(),
            events: vec![String::new()],
            timeout_ms: 0,
            max_in_flight: 0,
            lifecycle_queue: 0,
            retries: MAX_RETRIES + 1,
            ..Default::default()
        };
        assert_eq!(
            keys(&h),
            [
                "hooks.events",
                "hooks.timeout_ms",
                "hooks.max_in_flight",
                "hooks.lifecycle_queue",
                "hooks.retries"
            ]
        );
    }

    #[test]
    fn debug_masks_the_secret() {
        let h = HooksConfig {
            secret: "hunter2".into(),
            ..Default::default()
        };
        assert!(!format!("{h:?}").contains("hunter2"));
    }
}
