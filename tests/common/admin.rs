//! An HTTP client for the admin API (and any other plain HTTP request a test needs).

use std::time::Duration;

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

/// An answer, read whole.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as text (lossy UTF-8).
    pub body: String,
    /// The body parsed as JSON; `Value::Null` when it is not JSON.
    pub json: Value,
}

impl HttpResponse {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `error.code` of an error answer.
    pub fn error_code(&self) -> Option<&str> {
        self.json.pointer("/error/code").and_then(Value::as_str)
    }

    /// Panics with the body unless the status is `status`; returns the JSON body.
    #[track_caller]
    pub fn expect_status(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "expected HTTP {status}, got {} with body {}",
            self.status, self.body
        );
        &self.json
    }
}

/// Sends one request and reads the whole answer, within `timeout`.
pub async fn http_request(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> HttpResponse {
    let mut req = http.request(method.clone(), url);
    for (name, value) in headers {
        req = req.header(
            HeaderName::from_bytes(name.as_bytes()).expect("bad header name"),
            HeaderValue::from_str(value).expect("bad header value"),
        );
    }
    if let Some(body) = body {
        req = req.body(body);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url} failed: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: cannot read the body: {e}"));
    let body = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    HttpResponse {
        status,
        headers,
        body,
        json,
    }
}

/// A reqwest client with a 10 s bound on every request.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("cannot build an HTTP client")
}

/// The admin API at one base URL.
#[derive(Clone)]
pub struct Admin {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Admin {
    /// The admin API at `base` (`http://ip:port`), with no token.
    pub fn new(base: impl Into<String>) -> Admin {
        Admin {
            base: base.into().trim_end_matches('/').to_string(),
            token: None,
            http: http_client(),
        }
    }

    /// The same API with `token` as the default token of [`get`](Self::get),
    /// [`emit`](Self::emit) and friends.
    pub fn with_token(mut self, token: Option<String>) -> Admin {
        self.token = token;
        self
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Any request: `headers` as given (nothing added), optional raw body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> HttpResponse {
        http_request(&self.http, method, &self.url(path), headers, body).await
    }

    /// `POST path` with a JSON body and, when given, `Authorization: Bearer token`.
    pub async fn post_json(&self, path: &str, body: &Value, token: Option<&str>) -> HttpResponse {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(b) = &bearer {
            headers.push(("authorization", b.as_str()));
        }
        let body = serde_json::to_vec(body).unwrap();
        self.request(Method::POST, path, &headers, Some(body)).await
    }

    /// `POST path` with raw bytes and the given `Content-Type` (none when `None`).
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<Vec<u8>>,
        token: Option<&str>,
    ) -> HttpResponse {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = Vec::new();
        if let Some(ct) = content_type {
            headers.push(("content-type", ct));
        }
        if let Some(b) = &bearer {
            headers.push(("authorization", b.as_str()));
        }
        self.request(Method::POST, path, &headers, Some(body.into()))
            .await
    }

    /// `GET path` with the default token (if any).
    pub async fn get(&self, path: &str) -> HttpResponse {
        self.get_with(path, self.token.as_deref()).await
    }

    /// `GET path` with `token` (or none).
    pub async fn get_with(&self, path: &str, token: Option<&str>) -> HttpResponse {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("authorization", b.as_str()))
            .collect();
        self.request(Method::GET, path, &headers, None).await
    }

    /// `POST /v1/emit` with the default token.
    pub async fn emit(&self, body: &Value) -> HttpResponse {
        self.post_json("/v1/emit", body, self.token.as_deref())
            .await
    }

    /// `POST /v1/join` with the default token.
    pub async fn join(&self, body: &Value) -> HttpResponse {
        self.post_json("/v1/join", body, self.token.as_deref())
            .await
    }

    /// `POST /v1/leave` with the default token.
    pub async fn leave(&self, body: &Value) -> HttpResponse {
        self.post_json("/v1/leave", body, self.token.as_deref())
            .await
    }

    /// `POST /v1/disconnect` with the default token.
    pub async fn disconnect(&self, body: &Value) -> HttpResponse {
        self.post_json("/v1/disconnect", body, self.token.as_deref())
            .await
    }

    /// `GET /v1/sockets?query` with the default token (`query` without the `?`).
    pub async fn sockets(&self, query: &str) -> HttpResponse {
        self.get(&with_query("/v1/sockets", query)).await
    }

    /// `GET /v1/rooms?query` with the default token.
    pub async fn rooms(&self, query: &str) -> HttpResponse {
        self.get(&with_query("/v1/rooms", query)).await
    }

    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> String {
        let resp = self.get_with("/metrics", None).await;
        resp.expect_status(200);
        resp.body
    }
}

fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

/// The value of one sample in Prometheus text: `name{labels}` exactly as exposed (labels
/// in exposition order, e.g. `sio_relay_acks_total{outcome="answered"}`), or a bare name.
pub fn metric_value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        let value = rest.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}
