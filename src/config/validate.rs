//! Cross-field and value rules that types alone cannot express: a config that passes them
//! starts a daemon that works, never a half-working one.
//!
//! [`load`](super::load) runs these rules and ties each finding to the file line or the
//! variable that set the key; [`validate`] runs them on a config built in code.

use std::net::{IpAddr, SocketAddr};

use super::cidr::Cidr;
use super::error::ConfigError;
use super::{AdapterKind, Config};

/// The longest heartbeat a JavaScript client can time: its timers overflow past 2^31-1 ms
/// and would fire at once.
const MAX_CLIENT_TIMER_MS: u64 = i32::MAX as u64;

/// A rule broken by the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// The key to change.
    pub(crate) key: &'static str,
    /// Why.
    pub(crate) reason: String,
    /// Another key whose value makes `key` wrong, to point at when `key` has no line.
    pub(crate) because: Option<&'static str>,
}

/// Checks every rule; returns one error per broken rule, without line numbers.
pub fn validate(config: &Config) -> Vec<ConfigError> {
    findings(config)
        .into_iter()
        .map(|f| ConfigError::new(f.key, f.reason))
        .collect()
}

/// Every rule `config` breaks.
pub(crate) fn findings(config: &Config) -> Vec<Finding> {
    let mut out = Findings(Vec::new());
    server(config, &mut out);
    admin(config, &mut out);
    cluster(config, &mut out);
    log(config, &mut out);
    tls(config, &mut out);
    for (key, because, reason) in super::hooks::problems(&config.hooks) {
        out.0.push(Finding {
            key,
            reason,
            because,
        });
    }
    delivery(config, &mut out);
    out.0
}

struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, key: &'static str, reason: impl Into<String>) {
        self.0.push(Finding {
            key,
            reason: reason.into(),
            because: None,
        });
    }

    fn add_because(&mut self, key: &'static str, because: &'static str, reason: impl Into<String>) {
        self.0.push(Finding {
            key,
            reason: reason.into(),
            because: Some(because),
        });
    }

    fn positive(&mut self, key: &'static str, value: u64) {
        if value == 0 {
            self.add(key, "must be greater than 0");
        }
    }
}

fn server(config: &Config, out: &mut Findings) {
    let s = &config.server;

    if let Some(reason) = path_problem(&s.path) {
        out.add("server.path", reason);
    }

    if s.namespaces.is_empty() {
        out.add(
            "server.namespaces",
            "must list at least one namespace (`\"/\"` is the default one, `\"*\"` allows any)",
        );
    }
    for (i, ns) in s.namespaces.iter().enumerate() {
        if let Some(reason) = namespace_problem(ns) {
            out.add(
                "server.namespaces",
                format!("item {} `{ns}`: {reason}", i + 1),
            );
        }
    }

    for (i, origin) in s.allowed_origins.iter().enumerate() {
        if let Some(reason) = origin_problem(origin) {
            out.add(
                "server.allowed_origins",
                format!("item {} `{origin}`: {reason}", i + 1),
            );
        }
    }

    if s.transports.is_empty() {
        out.add(
            "server.transports",
            "must list at least one of `polling`, `websocket`",
        );
    }

    out.positive("server.ping_interval_ms", s.ping_interval_ms);
    out.positive("server.ping_timeout_ms", s.ping_timeout_ms);
    out.positive("server.connect_timeout_ms", s.connect_timeout_ms);
    out.positive("server.max_payload_bytes", s.max_payload_bytes);
    for (i, proxy) in s.trusted_proxies.iter().enumerate() {
        if let Err(error) = proxy.parse::<Cidr>() {
            out.add("server.trusted_proxies", format!("item {}: {error}", i + 1));
        }
    }
    if s.ping_interval_ms.saturating_add(s.ping_timeout_ms) > MAX_CLIENT_TIMER_MS {
        out.add(
            "server.ping_interval_ms",
            format!(
                "ping_interval_ms + ping_timeout_ms must be at most {MAX_CLIENT_TIMER_MS}: \
                 JavaScript clients' timers overflow beyond that"
            ),
        );
    }
}

fn admin(config: &Config, out: &mut Findings) {
    let a = &config.admin;

    if a.tokens.is_empty() && a.keys.is_empty() && !a.allow_open && !is_loopback(a.listen.ip()) {
        out.add_because(
            "admin.tokens",
            "admin.listen",
            format!(
                "must not be empty when admin.listen ({}) is not a loopback address: \
                 anyone who can reach it could push to every client (set admin.tokens or \
                 [[admin.keys]], or admin.allow_open = true to serve it open anyway)",
                a.listen
            ),
        );
    }
    for (i, token) in a.tokens.iter().enumerate() {
        // The token itself is a secret: say which one, never what it is.
        if let Some(problem) = token_problem(token) {
            out.add("admin.tokens", format!("token {} {problem}", i + 1));
        }
    }
    admin_keys(config, out);

    if listeners_clash(config.server.listen, a.listen) {
        out.add_because(
            "admin.listen",
            "server.listen",
            format!(
                "{} clashes with server.listen ({}): the two listeners need different ports",
                a.listen, config.server.listen
            ),
        );
    }

    out.positive("admin.max_body_bytes", a.max_body_bytes);
    out.positive("admin.max_ack_timeout_ms", a.max_ack_timeout_ms);
    out.positive("admin.idempotency_window_ms", a.idempotency_window_ms);
}

/// `[limits]` and `[recovery]`: the bounds of what the relay keeps for clients.
fn delivery(config: &Config, out: &mut Findings) {
    out.positive("limits.max_queued_bytes", config.limits.max_queued_bytes);
    let r = &config.recovery;
    out.positive("recovery.max_disconnection_ms", r.max_disconnection_ms);
    out.positive("recovery.max_buffered_messages", r.max_buffered_messages);
    out.positive("recovery.max_buffered_bytes", r.max_buffered_bytes);
}

/// `[[admin.keys]]`: named, distinct tokens with valid scopes.
fn admin_keys(config: &Config, out: &mut Findings) {
    let a = &config.admin;
    for (i, key) in a.keys.iter().enumerate() {
        let which = if key.name.is_empty() {
            format!("key {}", i + 1)
        } else {
            format!("key {} (`{}`)", i + 1, key.name)
        };
        if key.name.is_empty() || key.name.chars().any(|c| c.is_control()) {
            out.add(
                "admin.keys",
                format!("{which}: `name` must be a non-empty printable name"),
            );
        } else if a.keys[..i].iter().any(|k| k.name == key.name) {
            out.add(
                "admin.keys",
                format!("{which}: `name` is used by another key"),
            );
        }
        if let Some(problem) = token_problem(&key.token) {
            out.add("admin.keys", format!("{which}: `token` {problem}"));
        } else if a.tokens.contains(&key.token) || a.keys[..i].iter().any(|k| k.token == key.token)
        {
            // Two keys with one token: which scope applies would be ambiguous.
            out.add(
                "admin.keys",
                format!("{which}: `token` is also another key's or one of admin.tokens"),
            );
        }
        if key.ops.is_empty() {
            out.add(
                "admin.keys",
                format!(
                    "{which}: `ops` must list at least one of emit, join, leave, disconnect, read"
                ),
            );
        }
        for ns in &key.namespaces {
            if ns.is_empty() || !(ns.starts_with('/') || ns.starts_with('*')) {
                out.add(
                    "admin.keys",
                    format!("{which}: namespace glob `{ns}` must start with `/` or be `*`"),
                );
            }
        }
        if key.rooms.iter().any(String::is_empty) {
            out.add(
                "admin.keys",
                format!("{which}: `rooms` holds an empty glob"),
            );
        }
    }
}

/// What is wrong with a bearer token, if anything; never repeats it.
fn token_problem(token: &str) -> Option<&'static str> {
    if token.is_empty() {
        Some("is empty")
    } else if !token.bytes().all(|b| b.is_ascii_graphic()) {
        Some(
            "must be printable ASCII without spaces: \
             it travels in an `Authorization: Bearer` header",
        )
    } else {
        None
    }
}

/// `[tls]`: a certificate comes with its key, for at least one listener.
fn tls(config: &Config, out: &mut Findings) {
    let t = &config.tls;
    match (t.cert_file.is_empty(), t.key_file.is_empty()) {
        (false, true) => out.add_because(
            "tls.key_file",
            "tls.cert_file",
            "must be set when tls.cert_file is",
        ),
        (true, false) => out.add_because(
            "tls.cert_file",
            "tls.key_file",
            "must be set when tls.key_file is",
        ),
        _ => {}
    }
    if !t.cert_file.is_empty() && t.listeners.is_empty() {
        out.add(
            "tls.listeners",
            "must list `server`, `admin` or both when tls.cert_file is set",
        );
    }
}

fn cluster(config: &Config, out: &mut Findings) {
    let c = &config.cluster;
    let redis = c.adapter == AdapterKind::Redis;

    if redis {
        if let Some(reason) = redis_url_problem(&c.redis_url) {
            out.add("cluster.redis_url", reason);
        }
        if c.key_prefix.is_empty() {
            out.add("cluster.key_prefix", "must not be empty");
        }
    }
    if c.python_socketio {
        if !redis {
            out.add_because(
                "cluster.python_socketio",
                "cluster.adapter",
                "needs cluster.adapter = \"redis\": python-socketio's messages arrive over Redis",
            );
        }
        if c.python_socketio_channel.is_empty() {
            out.add("cluster.python_socketio_channel", "must not be empty");
        }
    }
    out.positive("cluster.request_timeout_ms", c.request_timeout_ms);
}

fn log(config: &Config, out: &mut Findings) {
    let level = config.log.level.trim();
    if level.is_empty() {
        out.add("log.level", "must not be empty (try `info`)");
    } else if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(level) {
        out.add("log.level", format!("not a valid level or filter: {e}"));
    } else if let Some(word) = level
        .split(',')
        .map(str::trim)
        .find(|d| is_mistyped_level(d))
    {
        // The filter syntax reads a bare word as a target to log at every level, so a typo
        // such as `wran` would silence everything else instead of failing.
        out.add(
            "log.level",
            format!(
                "`{word}` is not a level (trace, debug, info, warn, error, off); \
                 to set a target's level write `target=level`"
            ),
        );
    }
}

/// Whether a filter directive is a bare word that is not a level name.
fn is_mistyped_level(directive: &str) -> bool {
    const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];
    !directive.is_empty()
        && !directive.contains(['=', '['])
        && !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(directive))
}

/// Why `path` cannot be the Engine.IO endpoint, if it cannot.
fn path_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') || !path.ends_with('/') {
        return Some(format!(
            "`{path}` must start and end with `/`, as in `/socket.io/`"
        ));
    }
    if path.contains(['?', '#']) || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!(
            "`{path}` must be a plain path, without `?`, `#` or spaces"
        ));
    }
    None
}

/// Why `ns` is not a namespace pattern, if it is not.
fn namespace_problem(ns: &str) -> Option<&'static str> {
    if ns == "*" {
        return None;
    }
    if !ns.starts_with('/') {
        return Some("must start with `/` or be `*`");
    }
    if ns.contains(',') || ns.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("must not contain `,` or spaces, which end a namespace on the wire");
    }
    match ns.find('*') {
        None => None,
        Some(i) if i == ns.len() - 1 && ns[..i].ends_with('/') => None,
        Some(_) => Some("`*` may only end a namespace after a `/`, as in `/chat/*`"),
    }
}

/// Why `origin` can never match a browser's `Origin` header, if it cannot.
fn origin_problem(origin: &str) -> Option<&'static str> {
    if origin == "*" || origin == "null" {
        return None;
    }
    if origin.is_empty() {
        return Some("is empty");
    }
    let Some((scheme, host)) = origin.split_once("://") else {
        return Some("must be `*` or scheme and host, as in `https://example.com`");
    };
    if scheme.is_empty() || host.is_empty() {
        return Some("must be `*` or scheme and host, as in `https://example.com`");
    }
    if host.contains('/') {
        return Some("must have no path or trailing `/`: browsers send only scheme, host and port");
    }
    None
}

/// Why `url` cannot reach Redis, if it cannot. Never repeats the URL: it may hold a password.
fn redis_url_problem(url: &str) -> Option<&'static str> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Some("must be a URL: `redis://host:port`, `rediss://host:port` or `unix:///path`");
    };
    match scheme {
        "redis" | "rediss" => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            if host.is_empty() || host.starts_with(':') {
                return Some("has no host, as in `redis://127.0.0.1:6379`");
            }
            None
        }
        "unix" => {
            let path = rest.split(['?', '#']).next().unwrap_or("");
            if !path.starts_with('/') || path.len() < 2 {
                return Some("has no socket path, as in `unix:///run/redis/redis.sock`");
            }
            None
        }
        _ => Some("scheme must be `redis`, `rediss` or `unix`"),
    }
}

/// Loopback, including an IPv4 loopback address written as IPv6 (`::ffff:127.0.0.1`).
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Whether two listeners would fight over one port.
fn listeners_clash(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() == 0 || a.port() != b.port() {
        return false;
    }
    let (a, b) = (a.ip().to_canonical(), b.ip().to_canonical());
    a == b || a.is_unspecified() || b.is_unspecified()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(config: &Config) -> Vec<&'static str> {
        findings(config).into_iter().map(|f| f.key).collect()
    }

    #[test]
    fn defaults_pass() {
        assert_eq!(findings(&Config::default()), Vec::new());
    }

    #[test]
    fn public_admin_listener_needs_tokens() {
        let mut config = Config::default();
        config.admin.listen = "0.0.0.0:3001".parse().unwrap();
        let found = findings(&config);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].key, "admin.tokens");
        assert_eq!(found[0].because, Some("admin.listen"));
        config.admin.tokens = vec!["s3cret".into()];
        assert_eq!(keys(&config), Vec::<&str>::new());
        config.admin.tokens.clear();
        config.admin.allow_open = true;
        assert_eq!(keys(&config), Vec::<&str>::new());
        config.admin.allow_open = false;
        config.admin.keys = vec![key("orders", "tok-orders")];
        assert_eq!(keys(&config), Vec::<&str>::new());
    }

    fn key(name: &str, token: &str) -> crate::config::AdminKey {
        crate::config::AdminKey {
            name: name.into(),
            token: token.into(),
            namespaces: vec!["/".into()],
            rooms: vec!["orders:*".into()],
            ops: vec![crate::config::AdminOp::Emit],
        }
    }

    #[test]
    fn admin_keys_are_named_distinct_and_never_echoed() {
        let mut config = Config::default();
        config.admin.tokens = vec!["full".into()];
        let mut nameless = key("", "t1");
        nameless.ops.clear();
        nameless.namespaces = vec!["chat".into()];
        config.admin.keys = vec![
            nameless,
            key("a", "full"),
            key("a", "has space"),
            key("b", "t1"),
        ];
        let found = findings(&config);
        let reasons: Vec<&str> = found.iter().map(|f| f.reason.as_str()).collect();
        assert_eq!(found.len(), 7, "{reasons:#?}");
        assert!(found.iter().all(|f| f.key == "admin.keys"));
        for secret in ["full", "has space", "t1"] {
            assert!(
                reasons.iter().all(|r| !r.contains(&format!("`{secret}`"))),
                "{reasons:#?}"
            );
        }
    }

    #[test]
    fn trusted_proxies_and_tls_files() {
        let mut config = Config::default();
        config.server.trusted_proxies = vec!["10.0.0.0/8".into(), "::1".into()];
        assert_eq!(keys(&config), Vec::<&str>::new());
        config.server.trusted_proxies.push("10.0.0.0/40".into());
        assert_eq!(keys(&config), ["server.trusted_proxies"]);
        let mut config = Config::default();
        config.tls.cert_file = "cert.pem".into();
        assert_eq!(keys(&config), ["tls.key_file"]);
        config.tls.key_file = "key.pem".into();
        config.tls.listeners.clear();
        assert_eq!(keys(&config), ["tls.listeners"]);
    }

    #[test]
    fn loopback_admin_listener_needs_no_tokens() {
        let mut config = Config::default();
        for addr in ["127.0.0.2:3001", "[::1]:3001", "[::ffff:127.0.0.1]:3001"] {
            config.admin.listen = addr.parse().unwrap();
            assert_eq!(keys(&config), Vec::<&str>::new(), "{addr}");
        }
    }

    #[test]
    fn tokens_must_be_sendable_and_are_never_echoed() {
        let mut config = Config::default();
        config.admin.tokens = vec!["ok".into(), "".into(), "has space".into()];
        let found = findings(&config);
        assert_eq!(keys(&config), ["admin.tokens", "admin.tokens"]);
        assert!(found[0].reason.contains("token 2 is empty"));
        assert!(found[1].reason.contains("token 3"));
        assert!(!found[1].reason.contains("has space"));
    }

    #[test]
    fn paths() {
        assert_eq!(path_problem("/socket.io/"), None);
        assert_eq!(path_problem("/"), None);
        assert!(path_problem("/socket.io").is_some());
        assert!(path_problem("socket.io/").is_some());
        assert!(path_problem("/a?b/").is_some());
    }

    #[test]
    fn namespaces() {
        for ok in ["/", "*", "/chat", "/chat/*", "/*"] {
            assert_eq!(namespace_problem(ok), None, "{ok}");
        }
        for bad in ["", "chat", "/chat*", "/ch*at/", "/a,b", "/a b", "**"] {
            assert!(namespace_problem(bad).is_some(), "{bad}");
        }
        let mut config = Config::default();
        config.server.namespaces.clear();
        assert_eq!(keys(&config), ["server.namespaces"]);
    }

    #[test]
    fn origins() {
        for ok in ["*", "null", "https://example.com", "http://localhost:8080"] {
            assert_eq!(origin_problem(ok), None, "{ok}");
        }
        for bad in ["", "example.com", "https://example.com/", "https://"] {
            assert!(origin_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn limits_must_be_positive() {
        let mut config = Config::default();
        config.server.ping_interval_ms = 0;
        config.server.ping_timeout_ms = 0;
        config.server.transports.clear();
        config.admin.max_ack_timeout_ms = 0;
        config.limits.max_queued_bytes = 0;
        assert_eq!(
            keys(&config),
            [
                "server.transports",
                "server.ping_interval_ms",
                "server.ping_timeout_ms",
                "admin.max_ack_timeout_ms",
                "limits.max_queued_bytes",
            ]
        );
    }

    #[test]
    fn heartbeat_fits_client_timers() {
        let mut config = Config::default();
        config.server.ping_interval_ms = MAX_CLIENT_TIMER_MS;
        assert_eq!(keys(&config), ["server.ping_interval_ms"]);
    }

    #[test]
    fn listeners_on_one_port_clash() {
        let mut config = Config::default();
        config.admin.listen = "127.0.0.1:3000".parse().unwrap();
        assert_eq!(keys(&config), ["admin.listen"]);
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.admin.listen = "127.0.0.1:0".parse().unwrap();
        assert_eq!(keys(&config), Vec::<&str>::new());
    }

    #[test]
    fn redis_urls() {
        for ok in [
            "redis://127.0.0.1:6379",
            "rediss://user:pw@redis.example:6380/0",
            "redis://:pw@localhost",
            "unix:///run/redis.sock",
        ] {
            assert_eq!(redis_url_problem(ok), None, "{ok}");
        }
        for bad in [
            "127.0.0.1:6379",
            "http://x",
            "redis://",
            "redis://pw@",
            "unix://",
        ] {
            assert!(redis_url_problem(bad).is_some(), "{bad}");
        }
        let mut config = Config::default();
        config.cluster.redis_url = "http://x".into();
        assert_eq!(keys(&config), Vec::<&str>::new(), "not checked for memory");
        config.cluster.adapter = AdapterKind::Redis;
        assert_eq!(keys(&config), ["cluster.redis_url"]);
    }

    #[test]
    fn python_socketio_needs_redis() {
        let mut config = Config::default();
        config.cluster.python_socketio = true;
        assert_eq!(keys(&config), ["cluster.python_socketio"]);
        config.cluster.adapter = AdapterKind::Redis;
        assert_eq!(keys(&config), Vec::<&str>::new());
    }

    #[test]
    fn log_levels() {
        let mut config = Config::default();
        for ok in ["info", "debug", "sio_relay=debug,info", "warn,hyper=off"] {
            config.log.level = ok.into();
            assert_eq!(keys(&config), Vec::<&str>::new(), "{ok}");
        }
        for bad in ["", "loud", "sio_relay=verbose"] {
            config.log.level = bad.into();
            assert_eq!(keys(&config), ["log.level"], "{bad}");
        }
    }
}
