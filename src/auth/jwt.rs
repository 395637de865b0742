//! `mode = "jwt"`: checks a JSON Web Token against a secret (HS256/384/512), a PEM public
//! key (RS*, PS*, ES256/384, EdDSA) or a JSON Web Key Set.
//!
//! Only algorithms of the key's own family are accepted, so an RSA public key can never
//! be used as an HMAC secret (the classic algorithm-confusion attack), and `alg: none`
//! is not an algorithm at all. `exp` is required; `exp` and `nbf` are checked here in
//! milliseconds with `auth.jwt_leeway_ms` of skew.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{AlgorithmFamily, DecodingKey, Header, Validation, decode, decode_header};
use serde::Deserialize;
use serde_json::Value;

use super::jwks::{Jwks, Lookup};
use super::{Check, Code, MAX_TOKEN_BYTES, Outcome, Refusal, SetupError, grant};
use crate::config::AuthConfig;
use crate::glob;

/// The claims the relay reads; others are ignored.
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: Option<f64>,
    nbf: Option<f64>,
    rooms: Option<Vec<String>>,
    namespaces: Option<Vec<String>>,
    data: Option<Value>,
}

/// Where keys come from.
enum Keys {
    /// One key, from `jwt_secret` or `jwt_public_key_file`.
    Static(DecodingKey),
    /// Keys by `kid`, from `jwks_url`.
    Set(Arc<Jwks>),
}

/// Checks tokens once a key is at hand.
struct Verifier {
    /// One validation per key family, each allowing only that family's algorithms.
    by_family: [Validation; 4],
    leeway_ms: u64,
}

/// The JWT check.
pub(super) struct JwtCheck {
    keys: Keys,
    verifier: Arc<Verifier>,
}

fn family_index(family: AlgorithmFamily) -> usize {
    match family {
        AlgorithmFamily::Hmac => 0,
        AlgorithmFamily::Rsa => 1,
        AlgorithmFamily::Ec => 2,
        AlgorithmFamily::Ed => 3,
    }
}

impl JwtCheck {
    pub(super) fn new(
        config: &AuthConfig,
        client: impl FnOnce() -> Result<reqwest::Client, SetupError>,
    ) -> Result<Self, SetupError> {
        let keys = if !config.jwt_secret.is_empty() {
            Keys::Static(
                DecodingKey::from_secret(config.jwt_secret.as_bytes()).map_err(|e| SetupError {
                    key: "auth.jwt_secret",
                    reason: e.to_string(),
                })?,
            )
        } else if !config.jwt_public_key_file.is_empty() {
            Keys::Static(pem_key(&config.jwt_public_key_file)?)
        } else {
            Keys::Set(Arc::new(Jwks::new(config.jwks_url.clone(), client()?)))
        };
        let validation = |family: AlgorithmFamily| {
            let mut v = Validation::new_for_family(family);
            // exp and nbf are checked in `verify`, with millisecond leeway.
            v.validate_exp = false;
            v.validate_nbf = false;
            v.leeway = 0;
            v.required_spec_claims.clear();
            v.validate_aud = !config.jwt_audience.is_empty();
            if v.validate_aud {
                v.set_audience(&[&config.jwt_audience]);
                v.required_spec_claims.insert("aud".into());
            }
            if !config.jwt_issuer.is_empty() {
                v.set_issuer(&[&config.jwt_issuer]);
                v.required_spec_claims.insert("iss".into());
            }
            v
        };
        let verifier = Verifier {
            by_family: [
                AlgorithmFamily::Hmac,
                AlgorithmFamily::Rsa,
                AlgorithmFamily::Ec,
                AlgorithmFamily::Ed,
            ]
            .map(validation),
            leeway_ms: config.jwt_leeway_ms,
        };
        Ok(JwtCheck {
            keys,
            verifier: Arc::new(verifier),
        })
    }

    /// Checks `token` for a connect to `namespace`.
    pub(super) fn check(&self, token: &str, namespace: &str) -> Check {
        if token.len() > MAX_TOKEN_BYTES {
            return Check::Ready(Err(Refusal::new(
                Code::TokenInvalid,
                format!("a token of {} bytes, over {MAX_TOKEN_BYTES}", token.len()),
            )));
        }
        let header = match decode_header(token) {
            Ok(header) => header,
            Err(error) => {
                return Check::Ready(Err(Refusal::new(
                    Code::TokenInvalid,
                    format!("bad token header: {error}"),
                )));
            }
        };
        match &self.keys {
            Keys::Static(key) => Check::Ready(self.verifier.verify(token, &header, key, namespace)),
            Keys::Set(set) => match set.lookup(header.kid.as_deref()) {
                Lookup::Found(key) => {
                    Check::Ready(self.verifier.verify(token, &header, &key, namespace))
                }
                Lookup::Refused(refusal) => Check::Ready(Err(refusal)),
                Lookup::Fetch => {
                    let (set, verifier) = (set.clone(), self.verifier.clone());
                    let (token, namespace) = (token.to_owned(), namespace.to_owned());
                    Check::Pending(Box::pin(async move {
                        let key = set.fetch_and_find(header.kid.as_deref()).await?;
                        verifier.verify(&token, &header, &key, &namespace)
                    }))
                }
            },
        }
    }
}

impl Verifier {
    fn verify(&self, token: &str, header: &Header, key: &DecodingKey, namespace: &str) -> Outcome {
        let invalid = |detail: String| Refusal::new(Code::TokenInvalid, detail);
        let validation = &self.by_family[family_index(key.family())];
        if !validation.algorithms.contains(&header.alg) {
            return Err(invalid(format!(
                "algorithm {:?} does not fit the key",
                header.alg
            )));
        }
        let claims = decode::<Claims>(token, key, validation)
            .map_err(|error| invalid(format!("token refused: {error}")))?
            .claims;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as f64)
            .unwrap_or(0.0);
        let leeway = self.leeway_ms as f64;
        let exp = claims
            .exp
            .ok_or_else(|| invalid("the token has no exp".into()))?;
        if now_ms > exp * 1000.0 + leeway {
            return Err(Refusal::new(Code::TokenExpired, "exp has passed"));
        }
        if let Some(nbf) = claims.nbf
            && now_ms + leeway < nbf * 1000.0
        {
            return Err(invalid("nbf is still to come".into()));
        }
        if let Some(globs) = &claims.namespaces
            && !globs.iter().any(|g| glob::matches(g, namespace))
        {
            return Err(Refusal::new(
                Code::NamespaceForbidden,
                format!("the token does not allow {namespace}"),
            ));
        }
        grant(claims.sub, claims.rooms, claims.data).map_err(invalid)
    }
}

/// Reads a PEM public key: RSA, then EC, then Ed25519.
fn pem_key(path: &str) -> Result<DecodingKey, SetupError> {
    let error = |reason: String| SetupError {
        key: "auth.jwt_public_key_file",
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| error(format!("cannot read {path}: {e}")))?;
    DecodingKey::from_rsa_pem(&pem)
        .or_else(|_| DecodingKey::from_ec_pem(&pem))
        .or_else(|_| DecodingKey::from_ed_pem(&pem))
        .map_err(|_| {
            error(format!(
                "{path} holds no RSA, EC or Ed25519 public key in PEM form"
            ))
        })
}
