//! Configuration loading as `main` uses it: the shipped example file, precedence of the
//! sources, the environment layer, error reports with key paths and lines, and masking.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sio_relay::config::{
    AdapterKind, Config, ConfigError, ConfigErrors, LogFormat, MASK, Overrides, SlowClientPolicy,
    Sources, Transport, load, render_masked,
};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/sio-relay.toml");

/// A config file in the temp directory, removed when dropped.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(text: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "sio-relay-test-{}-{}.toml",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load_all(
    file: Option<&str>,
    vars: &[(&str, &str)],
    overrides: Overrides,
) -> (Result<Config, ConfigErrors>, Option<TempConfig>) {
    let temp = file.map(TempConfig::new);
    let sources = Sources {
        file: temp.as_ref().map(|t| t.path().to_path_buf()),
        env: env(vars),
        overrides,
    };
    (load(&sources), temp)
}

fn load_file(text: &str) -> Result<Config, ConfigErrors> {
    load_all(Some(text), &[], Overrides::default()).0
}

fn load_env(vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    load_all(None, vars, Overrides::default()).0
}

/// The single error about `key`, failing the test if there is not exactly one.
fn error_about<'a>(errors: &'a ConfigErrors, key: &str) -> &'a ConfigError {
    let found: Vec<_> = errors.errors.iter().filter(|e| e.key == key).collect();
    assert_eq!(found.len(), 1, "one error about {key} in:\n{errors}");
    found[0]
}

// The shipped example.

#[test]
fn shipped_file_is_exactly_the_defaults() {
    let sources = Sources {
        file: Some(PathBuf::from(SHIPPED)),
        ..Sources::default()
    };
    assert_eq!(load(&sources).unwrap(), Config::default());
}

#[test]
fn shipped_file_lists_every_key_with_a_comment() {
    let text = std::fs::read_to_string(SHIPPED).unwrap();
    let shipped: toml::Table = toml::from_str(&text).unwrap();
    let defaults = toml::Table::try_from(Config::default()).unwrap();
    let keys = |t: &toml::Table| -> Vec<String> {
        t.iter()
            .flat_map(|(section, keys)| {
                let keys = keys.as_table().expect("sections are tables");
                keys.keys().map(move |k| format!("{section}.{k}"))
            })
            .collect()
    };
    assert_eq!(keys(&shipped), keys(&defaults));

    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let is_key = line.contains(" = ") && !line.starts_with('#');
        if is_key {
            assert!(
                i > 0 && lines[i - 1].starts_with("# "),
                "line {}: `{line}` has no comment above it",
                i + 1
            );
        }
    }
}

#[test]
fn no_sources_give_the_defaults() {
    assert_eq!(load(&Sources::default()).unwrap(), Config::default());
}

// Precedence: defaults < file < environment < flags.

#[test]
fn each_source_overrides_the_one_below() {
    let file = r#"
[server]
listen = "127.0.0.1:4000"
ping_interval_ms = 1000
ping_timeout_ms = 2000

[admin]
listen = "127.0.0.1:4001"
"#;
    let vars = [
        ("SIO_RELAY_SERVER_LISTEN", "127.0.0.1:5000"),
        ("SIO_RELAY_SERVER_PING_TIMEOUT_MS", "3000"),
    ];
    let flags = Overrides {
        listen: Some("127.0.0.1:6000".parse().unwrap()),
        admin_listen: None,
        log_level: Some("debug".into()),
    };
    let (config, _file) = load_all(Some(file), &vars, flags);
    let config = config.unwrap();
    // Flag over environment over file.
    assert_eq!(config.server.listen, "127.0.0.1:6000".parse().unwrap());
    // Environment over file.
    assert_eq!(config.server.ping_timeout_ms, 3000);
    // File over default.
    assert_eq!(config.server.ping_interval_ms, 1000);
    assert_eq!(config.admin.listen, "127.0.0.1:4001".parse().unwrap());
    // Flag over default.
    assert_eq!(config.log.level, "debug");
    // Untouched.
    assert_eq!(config.server.path, "/socket.io/");
    assert_eq!(config.admin, {
        let mut admin = Config::default().admin;
        admin.listen = "127.0.0.1:4001".parse().unwrap();
        admin
    });
}

#[test]
fn a_partial_file_keeps_the_other_defaults() {
    let config = load_file("[cluster]\nadapter = \"redis\"\n").unwrap();
    assert_eq!(config.cluster.adapter, AdapterKind::Redis);
    assert_eq!(config.server, Config::default().server);
    assert_eq!(config.cluster.redis_url, "redis://127.0.0.1:6379");
}

#[test]
fn dotted_keys_and_inline_tables_work() {
    let config = load_file("server.path = \"/io/\"\nlog = { format = \"json\" }\n").unwrap();
    assert_eq!(config.server.path, "/io/");
    assert_eq!(config.log.format, LogFormat::Json);
}

// The environment layer.

#[test]
fn variables_parse_to_each_kind() {
    let config = load_env(&[
        ("SIO_RELAY_ADMIN_TOKENS", "tok1, tok2"),
        ("SIO_RELAY_SERVER_PING_INTERVAL_MS", "30000"),
        ("SIO_RELAY_SERVER_TRANSPORTS", "websocket"),
        ("SIO_RELAY_SERVER_NAMESPACES", "/,/chat/*"),
        ("SIO_RELAY_LIMITS_SLOW_CLIENT", "drop"),
        ("SIO_RELAY_LIMITS_MAX_QUEUED_BYTES", "65536"),
        ("SIO_RELAY_RECOVERY_ENABLED", "true"),
        ("SIO_RELAY_ADMIN_IDEMPOTENCY_WINDOW_MS", "5000"),
        ("SIO_RELAY_ADMIN_LISTEN", "0.0.0.0:3001"),
        ("SIO_RELAY_CLUSTER_ADAPTER", "redis"),
        ("SIO_RELAY_CLUSTER_REDIS_URL", "rediss://:pw@redis:6380"),
        ("SIO_RELAY_CLUSTER_PYTHON_SOCKETIO", "true"),
        ("SIO_RELAY_LOG_FORMAT", "json"),
    ])
    .unwrap();
    assert_eq!(config.admin.tokens, ["tok1", "tok2"]);
    assert_eq!(config.server.ping_interval_ms, 30_000);
    assert_eq!(config.server.transports, [Transport::Websocket]);
    assert_eq!(config.server.namespaces, ["/", "/chat/*"]);
    assert_eq!(config.limits.slow_client, SlowClientPolicy::Drop);
    assert_eq!(config.limits.max_queued_bytes, 65_536);
    assert!(config.recovery.enabled);
    assert_eq!(config.admin.idempotency_window_ms, 5_000);
    assert_eq!(config.cluster.adapter, AdapterKind::Redis);
    assert_eq!(config.cluster.redis_url, "rediss://:pw@redis:6380");
    assert!(config.cluster.python_socketio);
    assert_eq!(config.log.format, LogFormat::Json);
}

#[test]
fn an_empty_list_variable_clears_the_file_list() {
    let file = "[server]\nallowed_origins = [\"https://a.example\"]\n";
    let (config, _file) = load_all(
        Some(file),
        &[("SIO_RELAY_SERVER_ALLOWED_ORIGINS", "")],
        Overrides::default(),
    );
    assert_eq!(config.unwrap().server.allowed_origins, Vec::<String>::new());
}

#[test]
fn unknown_variables_are_errors() {
    let errors = load_env(&[
        ("SIO_RELAY_SERVER_PORT", "3000"),
        ("SIO_RELAY_SERVER_PING_INTERVAL", "1"),
    ])
    .unwrap_err();
    assert_eq!(errors.errors.len(), 2, "{errors}");
    let port = error_about(&errors, "SIO_RELAY_SERVER_PORT");
    assert!(port.reason.contains("unknown variable"), "{port}");
    let typo = error_about(&errors, "SIO_RELAY_SERVER_PING_INTERVAL");
    assert!(
        typo.reason.contains("SIO_RELAY_SERVER_PING_INTERVAL_MS"),
        "{typo}"
    );
}

#[test]
fn bad_variable_values_name_the_variable() {
    let errors = load_env(&[
        ("SIO_RELAY_SERVER_PING_INTERVAL_MS", "25s"),
        ("SIO_RELAY_SERVER_LISTEN", "localhost"),
        ("SIO_RELAY_SERVER_TRANSPORTS", "polling,ws"),
        ("SIO_RELAY_CLUSTER_PYTHON_SOCKETIO", "yes"),
    ])
    .unwrap_err();
    assert_eq!(errors.errors.len(), 4, "{errors}");
    for (key, var) in [
        (
            "server.ping_interval_ms",
            "SIO_RELAY_SERVER_PING_INTERVAL_MS",
        ),
        ("server.listen", "SIO_RELAY_SERVER_LISTEN"),
        ("server.transports", "SIO_RELAY_SERVER_TRANSPORTS"),
        (
            "cluster.python_socketio",
            "SIO_RELAY_CLUSTER_PYTHON_SOCKETIO",
        ),
    ] {
        let error = error_about(&errors, key);
        assert!(error.reason.contains(var), "{error}");
        assert_eq!(error.line, None);
    }
    assert!(
        error_about(&errors, "server.transports")
            .reason
            .contains("`ws`")
    );
}

// Errors: every problem at once, with key paths and lines.

#[test]
fn file_errors_carry_key_paths_and_lines() {
    let text = "\
[server]
listen = \"0.0.0.0:3000\"
ping_interval = 1000
ping_timeout_ms = \"20s\"
transports = [\"polling\", \"carrier-pigeon\"]

[admin]
listen = \"localhost:3001\"

[clsuter]
adapter = \"redis\"
";
    let errors = load_file(text).unwrap_err();
    assert_eq!(errors.errors.len(), 5, "{errors}");
    let lines: Vec<(&str, Option<usize>)> = errors
        .errors
        .iter()
        .map(|e| (e.key.as_str(), e.line))
        .collect();
    assert_eq!(
        lines,
        [
            ("server.ping_interval", Some(3)),
            ("server.ping_timeout_ms", Some(4)),
            ("server.transports", Some(5)),
            ("admin.listen", Some(8)),
            ("clsuter", Some(10)),
        ]
    );
    let unknown = error_about(&errors, "server.ping_interval");
    assert!(unknown.reason.contains("unknown key"), "{unknown}");
    assert!(unknown.reason.contains("ping_interval_ms"), "{unknown}");
    let wrong_type = error_about(&errors, "server.ping_timeout_ms");
    assert!(
        wrong_type.reason.contains("expected an integer"),
        "{wrong_type}"
    );
    let variant = error_about(&errors, "server.transports");
    assert!(variant.reason.contains("carrier-pigeon"), "{variant}");
    let section = error_about(&errors, "clsuter");
    assert!(section.reason.contains("[cluster]"), "{section}");

    // The report names the file and line of each problem.
    let report = errors.to_string();
    let file = errors.file.as_ref().unwrap().display().to_string();
    assert!(
        report.starts_with("invalid configuration (5 problems)"),
        "{report}"
    );
    assert!(
        report.contains(&format!("{file}:3: server.ping_interval: unknown key")),
        "{report}"
    );
}

#[test]
fn list_item_errors_point_at_the_item_line() {
    let text = "[server]\nnamespaces = [\n  \"/\",\n  42,\n]\n";
    let errors = load_file(text).unwrap_err();
    let error = error_about(&errors, "server.namespaces");
    assert_eq!(error.line, Some(4));
    assert!(error.reason.contains("item 2"), "{error}");
}

#[test]
fn value_rules_are_reported_with_the_value_line() {
    let text = "[server]\npath = \"/socket.io\"\nping_interval_ms = 0\nnamespaces = [\"chat\"]\n";
    let errors = load_file(text).unwrap_err();
    assert_eq!(error_about(&errors, "server.path").line, Some(2));
    assert_eq!(
        error_about(&errors, "server.ping_interval_ms").line,
        Some(3)
    );
    assert_eq!(error_about(&errors, "server.namespaces").line, Some(4));
}

#[test]
fn file_env_and_rule_errors_come_together() {
    let (result, _file) = load_all(
        Some("[server]\nbogus = 1\n"),
        &[("SIO_RELAY_NOPE", "1"), ("SIO_RELAY_SERVER_TRANSPORTS", "")],
        Overrides {
            log_level: Some("sio_relay=loud".into()),
            ..Overrides::default()
        },
    );
    let errors = result.unwrap_err();
    assert_eq!(errors.errors.len(), 4, "{errors}");
    assert_eq!(error_about(&errors, "server.bogus").line, Some(2));
    error_about(&errors, "SIO_RELAY_NOPE");
    let transports = error_about(&errors, "server.transports");
    assert!(transports.reason.contains("SIO_RELAY_SERVER_TRANSPORTS"));
    let level = error_about(&errors, "log.level");
    assert!(level.reason.contains("--log-level"), "{level}");
}

#[test]
fn syntax_errors_have_a_line() {
    let errors = load_file("[server]\n\nlisten = \n").unwrap_err();
    assert_eq!(errors.errors.len(), 1);
    let error = &errors.errors[0];
    assert_eq!(error.key, "--config");
    assert_eq!(error.line, Some(3));
    assert!(error.reason.contains("not valid TOML"), "{error}");
}

#[test]
fn a_missing_file_is_an_error() {
    let sources = Sources {
        file: Some(std::env::temp_dir().join("sio-relay-test-does-not-exist.toml")),
        ..Sources::default()
    };
    let errors = load(&sources).unwrap_err();
    assert_eq!(errors.errors.len(), 1);
    assert_eq!(errors.errors[0].key, "--config");
    assert!(errors.errors[0].reason.contains("cannot read"));
}

#[test]
fn a_section_must_be_a_table() {
    let errors = load_file("server = \"0.0.0.0:3000\"\n").unwrap_err();
    let error = error_about(&errors, "server");
    assert_eq!(error.line, Some(1));
    assert!(error.reason.contains("must be a table"), "{error}");
}

// The admin.tokens rule.

#[test]
fn a_public_admin_listener_without_tokens_is_refused() {
    let errors = load_file("[admin]\n\nlisten = \"0.0.0.0:3001\"\n").unwrap_err();
    assert_eq!(errors.errors.len(), 1, "{errors}");
    let error = error_about(&errors, "admin.tokens");
    // No tokens line in the file: the line that made tokens necessary.
    assert_eq!(error.line, Some(3));
    assert!(error.reason.contains("0.0.0.0:3001"), "{error}");

    let ok = load_file("[admin]\nlisten = \"0.0.0.0:3001\"\ntokens = [\"s3cret\"]\n").unwrap();
    assert_eq!(ok.admin.tokens, ["s3cret"]);
}

#[test]
fn the_admin_tokens_rule_applies_to_flags_and_variables() {
    let flag = Overrides {
        admin_listen: Some("[::]:3001".parse().unwrap()),
        ..Overrides::default()
    };
    let (result, _) = load_all(None, &[], flag.clone());
    let errors = result.unwrap_err();
    let error = error_about(&errors, "admin.tokens");
    assert!(error.reason.contains("--admin-listen"), "{error}");

    let (result, _) = load_all(None, &[("SIO_RELAY_ADMIN_TOKENS", "tok")], flag);
    assert_eq!(result.unwrap().admin.tokens, ["tok"]);

    let errors = load_env(&[("SIO_RELAY_ADMIN_LISTEN", "10.0.0.5:3001")]).unwrap_err();
    let error = error_about(&errors, "admin.tokens");
    assert!(
        error
            .reason
            .contains("admin.listen set by SIO_RELAY_ADMIN_LISTEN"),
        "{error}"
    );
}

#[test]
fn empty_tokens_are_refused() {
    let errors = load_env(&[("SIO_RELAY_ADMIN_TOKENS", "tok1,,tok3")]).unwrap_err();
    let error = error_about(&errors, "admin.tokens");
    assert!(error.reason.contains("token 2 is empty"), "{error}");
}

// Secrets.

#[test]
fn check_config_output_masks_secrets() {
    let config = load_env(&[
        ("SIO_RELAY_ADMIN_TOKENS", "hunter2,swordfish"),
        (
            "SIO_RELAY_CLUSTER_REDIS_URL",
            "redis://app:pa55word@redis:6379/0",
        ),
    ])
    .unwrap();
    let text = render_masked(&config);
    for secret in ["hunter2", "swordfish", "pa55word"] {
        assert!(!text.contains(secret), "{secret} in:\n{text}");
    }
    // Still a valid config, with the count of tokens and the rest of the URL visible.
    let shown: Config = toml::from_str(&text).unwrap();
    assert_eq!(shown.admin.tokens, [MASK, MASK]);
    assert_eq!(
        shown.cluster.redis_url,
        format!("redis://app:{MASK}@redis:6379/0")
    );
    assert_eq!(shown.server, config.server);
}

#[test]
fn errors_never_echo_secrets() {
    let text = "[admin]\ntokens = \"hunter2\"\n\n[cluster]\nredis_url = 7\n";
    let errors = load_file(text).unwrap_err();
    let report = errors.to_string();
    assert!(!report.contains("hunter2"), "{report}");
    assert!(
        error_about(&errors, "admin.tokens")
            .reason
            .contains("a list of strings")
    );

    let errors = load_env(&[
        ("SIO_RELAY_CLUSTER_ADAPTER", "redis"),
        ("SIO_RELAY_CLUSTER_REDIS_URL", "http://u:pa55word@redis"),
        ("SIO_RELAY_ADMIN_TOKENS", "ok,with space"),
    ])
    .unwrap_err();
    let report = errors.to_string();
    assert!(!report.contains("pa55word"), "{report}");
    assert!(!report.contains("with space"), "{report}");
    error_about(&errors, "cluster.redis_url");
}

#[test]
fn moved_queue_keys_are_refused_with_their_replacement() {
    let errors =
        load_file("[server]\noutbound_queue = 64\nslow_client_policy = \"drop\"\n").unwrap_err();
    let queue = error_about(&errors, "server.outbound_queue");
    assert!(queue.reason.contains("limits.max_queued_bytes"), "{queue}");
    let policy = error_about(&errors, "server.slow_client_policy");
    assert!(policy.reason.contains("limits.slow_client"), "{policy}");
}
