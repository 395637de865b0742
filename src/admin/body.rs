//! Reading request bodies: `Content-Type`, size limit, JSON; and field-by-field access to
//! a JSON object that refuses unknown fields.
//!
//! Handlers take the raw [`Request`] and call [`read_json`], so no axum extractor rejection
//! (plain text) can reach a client: every refusal is an [`ApiError`].

use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{Map, Value};

use super::error::ApiError;

/// Reads the body as JSON: checks the `Content-Type`, then the size, then the syntax.
///
/// The body is JSON when its type is `application/json` (parameters allowed), absent, or
/// `application/x-www-form-urlencoded` (what `curl -d` sends); other types are refused.
pub async fn read_json(request: Request, max_bytes: u64) -> Result<Value, ApiError> {
    check_content_type(&request)?;
    let limit = usize::try_from(max_bytes).unwrap_or(usize::MAX);
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_bytes) {
        return Err(ApiError::BodyTooLarge { limit: max_bytes });
    }
    let bytes = match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(ApiError::BodyTooLarge { limit: max_bytes });
        }
        Err(_) => return Err(ApiError::InvalidJson("the body could not be read".into())),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidJson(
            "the body is empty; send a JSON object".into(),
        ));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::InvalidJson(format!("the body is not valid JSON: {e}")))
}

fn check_content_type(request: &Request) -> Result<(), ApiError> {
    let Some(value) = request.headers().get(CONTENT_TYPE) else {
        return Ok(());
    };
    let refused = || {
        ApiError::UnsupportedMediaType("unsupported `Content-Type`; send `application/json`".into())
    };
    if is_json_type(value.as_bytes()) {
        Ok(())
    } else {
        Err(refused())
    }
}

/// Whether a `Content-Type` value is one whose body is read as JSON.
pub fn is_json_type(value: &[u8]) -> bool {
    // Visible ASCII only, as `HeaderValue::to_str` requires.
    if !value
        .iter()
        .all(|b| *b == b'\t' || (b' '..=b'~').contains(b))
    {
        return false;
    }
    let value = String::from_utf8_lossy(value);
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// The fields of one JSON object, taken one by one; unknown fields are refused up front.
#[derive(Debug)]
pub struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    /// Checks that `value` is an object whose keys are all in `allowed`.
    pub fn new(value: Value, allowed: &[&str]) -> Result<Self, ApiError> {
        let Value::Object(map) = value else {
            return Err(ApiError::InvalidJson(format!(
                "expected a JSON object, got {}",
                kind(&value)
            )));
        };
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ApiError::UnknownField(unknown.clone()));
        }
        Ok(Self { map })
    }

    /// Takes a field; `None` when absent (a JSON `null` is present).
    pub fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name)
    }

    /// Takes an optional boolean field.
    pub fn bool(&mut self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(wrong_type(name, "a boolean", &other)),
        }
    }

    /// Takes an optional string field.
    pub fn string(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong_type(name, "a string", &other)),
        }
    }
}

/// `invalid_field` for a value of the wrong JSON type.
pub fn wrong_type(name: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::field(format!("`{name}` must be {expected}, got {}", kind(got)))
}

/// The JSON type of a value, for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use serde_json::json;

    fn request(content_type: Option<&str>, body: &str) -> Request {
        let mut builder = Request::builder().method("POST").uri("/v1/emit");
        if let Some(ct) = content_type {
            builder = builder.header(CONTENT_TYPE, ct);
        }
        builder.body(Body::from(body.to_owned())).unwrap()
    }

    #[tokio::test]
    async fn content_types() {
        for (ct, ok) in [
            (None, true),
            (Some("application/json"), true),
            (Some("Application/JSON; charset=utf-8"), true),
            (Some("application/x-www-form-urlencoded"), true),
            (Some("text/plain"), false),
            (Some("application/jsonx"), false),
            (Some("multipart/form-data; boundary=x"), false),
            (Some(""), false),
        ] {
            let got = read_json(request(ct, "{}"), 100).await;
            assert_eq!(got.is_ok(), ok, "{ct:?}: {got:?}");
            if !ok {
                assert_eq!(got.unwrap_err().code(), "unsupported_media_type");
            }
        }
    }

    #[tokio::test]
    async fn limits_and_syntax() {
        let body = format!("{{\"a\":\"{}\"}}", "x".repeat(20));
        let err = read_json(request(None, &body), 10).await.unwrap_err();
        assert_eq!(err, ApiError::BodyTooLarge { limit: 10 });
        let exact = read_json(request(None, &body), body.len() as u64).await;
        assert!(exact.is_ok());
        for bad in ["", "  ", "{", "{} x", "nul"] {
            let err = read_json(request(None, bad), 100).await.unwrap_err();
            assert_eq!(err.code(), "invalid_json", "{bad:?}");
        }
    }

    #[test]
    fn fields_refuse_unknown_and_non_objects() {
        let err = Fields::new(json!({"a": 1, "zz": 2}), &["a"]).unwrap_err();
        assert_eq!(err, ApiError::UnknownField("zz".into()));
        let err = Fields::new(json!([1]), &["a"]).unwrap_err();
        assert_eq!(err.code(), "invalid_json");
        let mut fields = Fields::new(json!({"a": 1}), &["a", "b"]).unwrap();
        assert_eq!(fields.string("b").unwrap(), None);
        assert_eq!(fields.string("a").unwrap_err().code(), "invalid_field");
    }
}
