//! Operator commands: `healthcheck`, `emit`, `sockets` and `rooms`, thin clients of the
//! admin HTTP API for scripts, people and container health checks.
//!
//! Each command is a plain struct that the CLI fills in. [`run`] executes one and returns
//! the process exit code: 0 on a 2xx answer (its JSON body printed on stdout), 1 when the
//! relay refuses or cannot be reached (the reason on stderr), 2 on a usage error the
//! argument parser could not catch (e.g. `--data` that is not JSON).
//!
//! Requests are built by pure functions ([`EmitCommand::request`] and friends) and sent
//! over one HTTP/1.1 connection with hyper's client connection API: no pool, no TLS (the
//! admin URL is `http://`), nothing the daemon does not already link.
//!
//! ```no_run
//! use sio_relay::ops::{self, HealthcheckCommand, OpsCommand};
//!
//! let code = ops::run_blocking(OpsCommand::Healthcheck(HealthcheckCommand {
//!     admin_url: "http://127.0.0.1:3001".into(),
//! }));
//! std::process::exit(code.into());
//! ```

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, StatusCode, Uri, header};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;

/// How long `healthcheck` waits for `/healthz` (connection included).
pub const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// How long other commands wait for an answer, on top of any `ack_timeout_ms`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One operator command, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpsCommand {
    /// `sio-relay healthcheck`.
    Healthcheck(HealthcheckCommand),
    /// `sio-relay emit`.
    Emit(EmitCommand),
    /// `sio-relay sockets`.
    Sockets(SocketsCommand),
    /// `sio-relay rooms`.
    Rooms(RoomsCommand),
}

/// `sio-relay healthcheck`: exit 0 when `/healthz` answers 200 within 2 s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckCommand {
    /// Base URL of the admin API, e.g. `http://127.0.0.1:3001`.
    pub admin_url: String,
}

/// `sio-relay emit`: `POST /v1/emit`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmitCommand {
    /// Rooms or sids (`--to`, repeatable).
    pub to: Vec<String>,
    /// Address the whole namespace (`--broadcast`).
    pub broadcast: bool,
    /// Event name (`--event`).
    pub event: String,
    /// The single argument, as JSON text (`--data`).
    pub data: Option<String>,
    /// The argument list, as a JSON array (`--args`).
    pub args: Option<String>,
    /// Rooms or sids left out (`--except`, repeatable).
    pub except: Vec<String>,
    /// Namespace (`--namespace`); the relay's default `/` when absent.
    pub namespace: Option<String>,
    /// Wait this long for acknowledgements (`--ack-timeout-ms`).
    pub ack_timeout_ms: Option<u64>,
    /// Base URL of the admin API.
    pub admin_url: String,
    /// Bearer token, if the relay has tokens.
    pub token: Option<String>,
}

/// `sio-relay sockets`: `GET /v1/sockets`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SocketsCommand {
    /// Namespace; the relay's default `/` when absent.
    pub namespace: Option<String>,
    /// Only sockets in these rooms (or with these sids).
    pub to: Vec<String>,
    /// Leave out sockets in these rooms (or with these sids).
    pub except: Vec<String>,
    /// Base URL of the admin API.
    pub admin_url: String,
    /// Bearer token, if the relay has tokens.
    pub token: Option<String>,
}

/// `sio-relay rooms`: `GET /v1/rooms`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoomsCommand {
    /// Namespace; the relay's default `/` when absent.
    pub namespace: Option<String>,
    /// Base URL of the admin API.
    pub admin_url: String,
    /// Bearer token, if the relay has tokens.
    pub token: Option<String>,
}

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The arguments cannot make a valid request (exit 2).
    #[error("{0}")]
    Usage(String),
    /// No connection, or the connection broke before an answer (exit 1).
    #[error("cannot reach the admin API at {url}: {reason}")]
    Unreachable {
        /// The admin URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// No answer in time (exit 1).
    #[error("no answer from the admin API at {url} within {timeout:?}")]
    Timeout {
        /// The admin URL.
        url: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// The relay answered with a non-2xx status (exit 1).
    #[error("refused ({}{}): {message}", status.as_u16(), code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// The error code of the answer (`unauthorized`, `missing_target`...), if it had one.
        code: Option<String>,
        /// The error message of the answer, or its body.
        message: String,
    },
}

impl OpsError {
    /// The process exit code for this error: 2 for usage, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            OpsError::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// An admin API request, before it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRequest {
    /// `GET` or `POST`.
    pub method: Method,
    /// Path and query, e.g. `/v1/rooms?namespace=%2Fchat`.
    pub path_and_query: String,
    /// JSON body, for `POST`.
    pub body: Option<Value>,
}

impl EmitCommand {
    /// The `POST /v1/emit` request, or a usage error for arguments that cannot make one.
    ///
    /// # Errors
    ///
    /// [`OpsError::Usage`] for neither or both of `to` and `broadcast`, an empty event,
    /// `data` and `args` together, or `data`/`args` that are not JSON (`args`: an array).
    pub fn request(&self) -> Result<AdminRequest, OpsError> {
        let usage = |message: &str| Err(OpsError::Usage(message.to_owned()));
        match (self.to.is_empty(), self.broadcast) {
            (true, false) => return usage("set --to ROOM_OR_SID (repeatable) or --broadcast"),
            (false, true) => return usage("--to and --broadcast cannot be used together"),
            _ => {}
        }
        if self.event.is_empty() {
            return usage("--event must not be empty");
        }
        let mut body = Map::new();
        if let Some(namespace) = &self.namespace {
            body.insert("namespace".into(), json!(namespace));
        }
        if !self.to.is_empty() {
            body.insert("to".into(), json!(self.to));
        }
        if self.broadcast {
            body.insert("broadcast".into(), json!(true));
        }
        if !self.except.is_empty() {
            body.insert("except".into(), json!(self.except));
        }
        body.insert("event".into(), json!(self.event));
        match (&self.data, &self.args) {
            (Some(_), Some(_)) => return usage("--data and --args cannot be used together"),
            (Some(data), None) => {
                let value = parse_json("--data", data)?;
                body.insert("data".into(), value);
            }
            (None, Some(args)) => {
                let value = parse_json("--args", args)?;
                if !value.is_array() {
                    return usage("--args must be a JSON array, e.g. '[1, \"two\"]'");
                }
                body.insert("args".into(), value);
            }
            (None, None) => {}
        }
        if let Some(ms) = self.ack_timeout_ms {
            body.insert("ack_timeout_ms".into(), json!(ms));
        }
        Ok(AdminRequest {
            method: Method::POST,
            path_and_query: "/v1/emit".into(),
            body: Some(Value::Object(body)),
        })
    }
}

impl SocketsCommand {
    /// The `GET /v1/sockets` request.
    pub fn request(&self) -> AdminRequest {
        let mut query = Query::default();
        query.push_opt("namespace", self.namespace.as_deref());
        query.push_all("to", &self.to);
        query.push_all("except", &self.except);
        AdminRequest {
            method: Method::GET,
            path_and_query: format!("/v1/sockets{}", query.finish()),
            body: None,
        }
    }
}

impl RoomsCommand {
    /// The `GET /v1/rooms` request.
    pub fn request(&self) -> AdminRequest {
        let mut query = Query::default();
        query.push_opt("namespace", self.namespace.as_deref());
        AdminRequest {
            method: Method::GET,
            path_and_query: format!("/v1/rooms{}", query.finish()),
            body: None,
        }
    }
}

/// The default `--admin-url` for an admin listener address: `http://` + the address, with
/// an unspecified address (`0.0.0.0`, `::`) replaced by loopback, where a local command
/// reaches it.
pub fn default_admin_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, listen.port()))
}

/// Runs `command` and writes its outcome: the answer's body on `out` (re-indented when
/// `pretty`), or the error on `err`. Returns the process exit code.
pub async fn run_with(
    command: &OpsCommand,
    pretty: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    match execute(command).await {
        Ok(mut body) => {
            if pretty && let Ok(value) = serde_json::from_str::<Value>(&body) {
                body = serde_json::to_string_pretty(&value).unwrap_or(body);
            }
            let written = if body.is_empty() {
                Ok(())
            } else if body.ends_with('\n') {
                out.write_all(body.as_bytes())
            } else {
                writeln!(out, "{body}")
            };
            match written.and_then(|()| out.flush()) {
                Ok(()) => 0,
                // stdout closed (e.g. a pipe to `head`): the request itself succeeded.
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => 0,
                Err(error) => {
                    let _ = writeln!(err, "sio-relay: cannot write the answer: {error}");
                    1
                }
            }
        }
        Err(error) => {
            let _ = writeln!(err, "sio-relay: {error}");
            error.exit_code()
        }
    }
}

/// Runs `command` with stdout and stderr; JSON answers are pretty-printed on a terminal.
pub async fn run(command: OpsCommand) -> u8 {
    let mut stdout = std::io::stdout();
    let pretty = stdout.is_terminal();
    run_with(&command, pretty, &mut stdout, &mut std::io::stderr()).await
}

/// [`run`] on a fresh single-threaded runtime, for a `main` that has none.
pub fn run_blocking(command: OpsCommand) -> u8 {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run(command)),
        Err(error) => {
            eprintln!("sio-relay: cannot start the runtime: {error}");
            1
        }
    }
}

/// Executes `command`; the body of a 2xx answer (empty for `healthcheck`).
///
/// # Errors
///
/// See [`OpsError`].
pub async fn execute(command: &OpsCommand) -> Result<String, OpsError> {
    match command {
        OpsCommand::Healthcheck(cmd) => {
            let request = AdminRequest {
                method: Method::GET,
                path_and_query: "/healthz".into(),
                body: None,
            };
            let (status, body) = send(&cmd.admin_url, None, &request, HEALTHCHECK_TIMEOUT).await?;
            if status == StatusCode::OK {
                Ok(String::new())
            } else {
                Err(refused(status, &body))
            }
        }
        OpsCommand::Emit(cmd) => {
            let request = cmd.request()?;
            let timeout = REQUEST_TIMEOUT + Duration::from_millis(cmd.ack_timeout_ms.unwrap_or(0));
            send_checked(&cmd.admin_url, cmd.token.as_deref(), &request, timeout).await
        }
        OpsCommand::Sockets(cmd) => {
            let request = cmd.request();
            send_checked(
                &cmd.admin_url,
                cmd.token.as_deref(),
                &request,
                REQUEST_TIMEOUT,
            )
            .await
        }
        OpsCommand::Rooms(cmd) => {
            let request = cmd.request();
            send_checked(
                &cmd.admin_url,
                cmd.token.as_deref(),
                &request,
                REQUEST_TIMEOUT,
            )
            .await
        }
    }
}

/// Sends `request`; the body of a 2xx answer, or the refusal.
async fn send_checked(
    admin_url: &str,
    token: Option<&str>,
    request: &AdminRequest,
    timeout: Duration,
) -> Result<String, OpsError> {
    let (status, body) = send(admin_url, token, request, timeout).await?;
    if status.is_success() {
        Ok(String::from_utf8_lossy(&body).into_owned())
    } else {
        Err(refused(status, &body))
    }
}

/// The error for a non-2xx answer, with the code and message of the relay's error body.
fn refused(status: StatusCode, body: &[u8]) -> OpsError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|value| value.get("error"));
    let field = |name: &str| {
        error
            .and_then(|error| error.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let message = field("message").unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            status.canonical_reason().unwrap_or("no reason").to_owned()
        } else {
            text.chars().take(500).collect()
        }
    });
    OpsError::Refused {
        status,
        code: field("code"),
        message,
    }
}

/// A parsed `http://host[:port][/prefix]` admin URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AdminUrl {
    /// Host without IPv6 brackets, for connecting.
    host: String,
    port: u16,
    /// `host[:port]` as written, for the `Host` header.
    authority: String,
    /// Path prefix without a trailing slash (empty for none).
    prefix: String,
}

fn parse_admin_url(url: &str) -> Result<AdminUrl, OpsError> {
    let usage = |why: &str| OpsError::Usage(format!("invalid --admin-url {url:?}: {why}"));
    let uri: Uri = url.parse().map_err(|_| usage("not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(_) => return Err(usage("only http:// is supported")),
        None => return Err(usage("expected http://host:port")),
    }
    let authority = uri.authority().ok_or_else(|| usage("no host"))?;
    if authority.as_str().contains('@') {
        return Err(usage(
            "credentials in the URL are not supported; use --token",
        ));
    }
    if uri.query().is_some() {
        return Err(usage("a query string is not allowed"));
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    Ok(AdminUrl {
        host: host.to_owned(),
        port: authority.port_u16().unwrap_or(80),
        authority: authority.as_str().to_owned(),
        prefix: uri.path().trim_end_matches('/').to_owned(),
    })
}

/// Sends one request over a fresh connection; the answer's status and body.
async fn send(
    admin_url: &str,
    token: Option<&str>,
    request: &AdminRequest,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), OpsError> {
    let url = parse_admin_url(admin_url)?;
    let unreachable = |reason: String| OpsError::Unreachable {
        url: admin_url.to_owned(),
        reason,
    };
    let mut builder = hyper::Request::builder()
        .method(request.method.clone())
        .uri(format!("{}{}", url.prefix, request.path_and_query))
        .header(header::HOST, &url.authority)
        .header(header::ACCEPT, "application/json");
    if let Some(token) = token.filter(|token| !token.is_empty()) {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match &request.body {
        Some(value) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Bytes::from(value.to_string())
        }
        None => Bytes::new(),
    };
    let http_request = builder
        .body(Full::new(body))
        .map_err(|error| OpsError::Usage(format!("cannot build the request: {error}")))?;

    let exchange = async {
        let stream = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|error| unreachable(error.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| unreachable(error.to_string()))?;
        // The connection task ends when the answer is read and `sender` is dropped.
        tokio::spawn(connection);
        let response = sender
            .send_request(http_request)
            .await
            .map_err(|error| unreachable(error.to_string()))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| unreachable(format!("reading the answer: {error}")))?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| OpsError::Timeout {
            url: admin_url.to_owned(),
            timeout,
        })?
}

/// Parses a JSON argument, naming the flag in the error.
fn parse_json(flag: &str, text: &str) -> Result<Value, OpsError> {
    serde_json::from_str(text)
        .map_err(|error| OpsError::Usage(format!("{flag} is not valid JSON ({error}): {text}")))
}

/// A query string of percent-encoded `key=value` pairs.
#[derive(Default)]
struct Query(String);

impl Query {
    fn push(&mut self, key: &str, value: &str) {
        self.0.push(if self.0.is_empty() { '?' } else { '&' });
        self.0.push_str(key);
        self.0.push('=');
        percent_encode(value, &mut self.0);
    }

    fn push_opt(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.push(key, value);
        }
    }

    fn push_all(&mut self, key: &str, values: &[String]) {
        for value in values {
            self.push(key, value);
        }
    }

    fn finish(self) -> String {
        self.0
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(value: &str, out: &mut String) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

#[cfg(test)]
mod tests;
