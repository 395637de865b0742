//! A JSON Web Key Set fetched from `auth.jwks_url`, cached by `kid`.
//!
//! The set is fetched when a token names a `kid` the cache lacks (the first token too),
//! at most once per [`REFETCH_INTERVAL`] whatever the outcome, so that tokens with made-up
//! `kid`s cannot turn the relay into a flood against the key server. One fetch at a time:
//! connects waiting for the same set share it. A failed fetch keeps the keys already known.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use tokio::time::Instant;

use super::{Code, Refusal};

/// The shortest time between two fetches of the set.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// The largest key set read.
const MAX_SET_BYTES: usize = 1024 * 1024;

/// What the cache knows about a `kid`.
pub(super) enum Lookup {
    /// The key.
    Found(Arc<DecodingKey>),
    /// Unknown, and the set may be fetched again.
    Fetch,
    /// Unknown, and the set was fetched (or tried) too recently to try again.
    Refused(Refusal),
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, Arc<DecodingKey>>,
    /// The key of a set holding exactly one, for tokens that name no `kid`.
    only: Option<Arc<DecodingKey>>,
    /// When the last fetch was tried, and whether it worked.
    last: Option<(Instant, bool)>,
}

/// The key set and its cache.
pub(super) struct Jwks {
    url: String,
    client: reqwest::Client,
    /// Read on every check; written after a fetch. Never held across an await.
    cache: RwLock<Cache>,
    /// Held while fetching, so that one fetch serves every waiting connect.
    fetching: tokio::sync::Mutex<()>,
}

impl Jwks {
    pub(super) fn new(url: String, client: reqwest::Client) -> Self {
        Jwks {
            url,
            client,
            cache: RwLock::new(Cache::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The key for `kid` (a token without one: the set's only key), if cached.
    pub(super) fn lookup(&self, kid: Option<&str>) -> Lookup {
        let cache = self.cache.read().expect("jwks cache poisoned");
        let found = match kid {
            Some(kid) => cache.keys.get(kid).cloned(),
            None => cache.only.clone(),
        };
        if let Some(key) = found {
            return Lookup::Found(key);
        }
        match cache.last {
            Some((at, ok)) if at.elapsed() < REFETCH_INTERVAL => Lookup::Refused(if ok {
                Refusal::new(Code::TokenInvalid, format!("no key with kid {kid:?}"))
            } else {
                Refusal::new(Code::AuthUnavailable, "the key set could not be fetched")
            }),
            _ => Lookup::Fetch,
        }
    }

    /// Fetches the set (unless another connect just did) and returns the key for `kid`.
    pub(super) async fn fetch_and_find(
        &self,
        kid: Option<&str>,
    ) -> Result<Arc<DecodingKey>, Refusal> {
        let _one_at_a_time = self.fetching.lock().await;
        match self.lookup(kid) {
            Lookup::Found(key) => return Ok(key),
            Lookup::Refused(refusal) => return Err(refusal),
            Lookup::Fetch => {}
        }
        let fetched = self.fetch().await;
        let mut cache = self.cache.write().expect("jwks cache poisoned");
        let ok = fetched.is_ok();
        cache.last = Some((Instant::now(), ok));
        match fetched {
            Ok(keys) => {
                cache.only = (keys.len() == 1)
                    .then(|| keys.values().next().cloned())
                    .flatten();
                cache.keys = keys;
            }
            Err(reason) => {
                tracing::warn!(url = %self.url, %reason, "key set fetch failed");
                return Err(Refusal::new(Code::AuthUnavailable, reason));
            }
        }
        let found = match kid {
            Some(kid) => cache.keys.get(kid).cloned(),
            None => cache.only.clone(),
        };
        found.ok_or_else(|| Refusal::new(Code::TokenInvalid, format!("no key with kid {kid:?}")))
    }

    /// Fetches and parses the set (bounded by the client's timeout); keys the relay cannot
    /// use are skipped.
    async fn fetch(&self) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
        let mut response = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?
        {
            if body.len() + chunk.len() > MAX_SET_BYTES {
                return Err(format!("the key set is over {MAX_SET_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let set: JwkSet =
            serde_json::from_slice(&body).map_err(|e| format!("not a JSON key set: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            keys.insert(kid, Arc::new(key));
        }
        Ok(keys)
    }
}
