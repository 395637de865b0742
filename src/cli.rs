//! Command-line interface: the daemon's flags and the operator commands.
//!
//! This module only parses. `sio-relay` with no subcommand runs the daemon; the flags that
//! override config values become [`Overrides`] through [`Cli::overrides`]. The subcommands
//! (`healthcheck`, `emit`, `sockets`, `rooms`) are thin clients of the admin API, carried
//! out elsewhere. A usage error exits with status 2 (clap's convention).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::NonEmptyStringValueParser;
use clap::{ArgGroup, Args, Parser, Subcommand};

use crate::config::{Overrides, Sources};

/// A standalone Socket.IO relay that backends push to over HTTP.
#[derive(Debug, Clone, PartialEq, Parser)]
#[command(
    name = "sio-relay",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("SIO_RELAY_GIT_REV"), ")"),
    about
)]
pub struct Cli {
    /// TOML config file; without it, built-in defaults apply under `SIO_RELAY_*` variables
    /// and flags.
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// Address of the Socket.IO listener (overrides `server.listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Address of the admin API listener (overrides `admin.listen`).
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,

    /// Log level or filter, e.g. `debug` or `sio_relay=debug,info` (overrides `log.level`;
    /// `RUST_LOG`, when set, wins over both).
    #[arg(long, value_name = "LEVEL", value_parser = NonEmptyStringValueParser::new())]
    pub log_level: Option<String>,

    /// Validate the configuration, print it with secrets masked, and exit: 0 when valid,
    /// non-zero otherwise.
    #[arg(long)]
    pub check_config: bool,

    /// An operator command; without one, run the relay.
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The config values given as flags.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen,
            admin_listen: self.admin_listen,
            log_level: self.log_level.clone(),
        }
    }

    /// The sources to load the config from, given the process's `SIO_RELAY_*` variables
    /// (see [`crate::config::env::collect`]).
    pub fn sources(&self, env: std::collections::BTreeMap<String, String>) -> Sources {
        Sources {
            file: self.config.clone(),
            env,
            overrides: self.overrides(),
        }
    }
}

/// Operator commands: thin clients of a running relay's admin API.
///
/// Each exits 0 on a 2xx answer and 1 when the relay refuses or cannot be reached.
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum Command {
    /// Exit 0 when `/healthz` answers 200 within 2 s, 1 otherwise (for container health
    /// checks).
    Healthcheck(HealthcheckArgs),
    /// Emit an event to sockets (`POST /v1/emit`) and print the answer.
    Emit(EmitArgs),
    /// List sockets (`GET /v1/sockets`) and print the answer.
    Sockets(SocketsArgs),
    /// List rooms (`GET /v1/rooms`) and print the answer.
    Rooms(RoomsArgs),
}

/// How to reach the admin API; shared by every operator command.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct AdminClientArgs {
    /// Base URL of the admin API [default: `http://` + `admin.listen` from the usual config
    /// sources].
    #[arg(long, value_name = "URL", value_parser = parse_admin_url)]
    pub admin_url: Option<String>,

    /// Bearer token [default: the first of `admin.tokens`].
    #[arg(long, value_name = "T", value_parser = NonEmptyStringValueParser::new())]
    pub token: Option<String>,
}

/// `sio-relay healthcheck`.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct HealthcheckArgs {
    /// Where the admin API is (`/healthz` needs no token).
    #[command(flatten)]
    pub admin: AdminClientArgs,
}

/// `sio-relay emit`: exactly one of `--to` and `--broadcast`; at most one of `--data` and
/// `--args`.
#[derive(Debug, Clone, PartialEq, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["to", "broadcast"])))]
pub struct EmitArgs {
    /// A room or sid to emit to; repeat for several.
    // Sids are base64url and may start with `-`: such a value is a value, not a flag.
    #[arg(long, value_name = "ROOM_OR_SID", value_parser = NonEmptyStringValueParser::new(), allow_hyphen_values = true)]
    pub to: Vec<String>,

    /// Emit to every socket of the namespace.
    #[arg(long)]
    pub broadcast: bool,

    /// Event name.
    #[arg(long, value_name = "NAME", value_parser = NonEmptyStringValueParser::new())]
    pub event: String,

    /// The event's single argument, as JSON.
    #[arg(long, value_name = "JSON", value_parser = parse_json, conflicts_with = "args")]
    pub data: Option<serde_json::Value>,

    /// The event's arguments, as a JSON array.
    #[arg(long, value_name = "JSON", value_parser = parse_json_array)]
    pub args: Option<JsonArray>,

    /// A room or sid to leave out; repeat for several.
    #[arg(long, value_name = "ROOM", value_parser = NonEmptyStringValueParser::new(), allow_hyphen_values = true)]
    pub except: Vec<String>,

    /// Namespace [default: `/`].
    #[arg(long, value_name = "NS", value_parser = NonEmptyStringValueParser::new())]
    pub namespace: Option<String>,

    /// Wait up to this many milliseconds for each recipient's acknowledgement.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub ack_timeout_ms: Option<u64>,

    /// Where the admin API is.
    #[command(flatten)]
    pub admin: AdminClientArgs,
}

/// The argument list given to `emit --args`.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonArray(pub Vec<serde_json::Value>);

/// `sio-relay sockets`.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct SocketsArgs {
    /// Namespace [default: `/`].
    #[arg(long, value_name = "NS", value_parser = NonEmptyStringValueParser::new())]
    pub namespace: Option<String>,

    /// Only sockets in this room (or with this sid); repeat for several. Without it, every
    /// socket of the namespace.
    #[arg(long, value_name = "ROOM", value_parser = NonEmptyStringValueParser::new(), allow_hyphen_values = true)]
    pub to: Vec<String>,

    /// Where the admin API is.
    #[command(flatten)]
    pub admin: AdminClientArgs,
}

/// `sio-relay rooms`.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct RoomsArgs {
    /// Namespace [default: `/`].
    #[arg(long, value_name = "NS", value_parser = NonEmptyStringValueParser::new())]
    pub namespace: Option<String>,

    /// Where the admin API is.
    #[command(flatten)]
    pub admin: AdminClientArgs,
}

/// Accepts `http://HOST[:PORT][/PREFIX]`, without the trailing `/`.
fn parse_admin_url(url: &str) -> Result<String, String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err("must start with `http://`, as in `http://127.0.0.1:3001`".into());
    };
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() || authority.contains(['?', '#', '@']) {
        return Err("must be `http://HOST:PORT`, as in `http://127.0.0.1:3001`".into());
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn parse_json(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

fn parse_json_array(text: &str) -> Result<JsonArray, String> {
    match parse_json(text)? {
        serde_json::Value::Array(items) => Ok(JsonArray(items)),
        _ => Err("must be a JSON array, as in `[1, \"two\"]`".into()),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use clap::error::ErrorKind;
    use serde_json::json;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("sio-relay").chain(args.iter().copied()))
    }

    fn usage_error(args: &[&str]) -> ErrorKind {
        let err = parse(args).expect_err("a usage error");
        assert_eq!(err.exit_code(), 2, "{args:?}: {err}");
        err.kind()
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_arguments_runs_with_defaults() {
        let cli = parse(&[]).unwrap();
        assert_eq!(cli.command, None);
        assert!(!cli.check_config);
        assert_eq!(cli.overrides(), Overrides::default());
    }

    #[test]
    fn daemon_flags_become_overrides() {
        let cli = parse(&[
            "--config",
            "relay.toml",
            "--listen",
            "127.0.0.1:4000",
            "--admin-listen",
            "[::1]:4001",
            "--log-level",
            "debug",
            "--check-config",
        ])
        .unwrap();
        assert!(cli.check_config);
        assert_eq!(cli.config, Some(PathBuf::from("relay.toml")));
        let sources = cli.sources(Default::default());
        assert_eq!(sources.file, Some(PathBuf::from("relay.toml")));
        assert_eq!(
            sources.overrides,
            Overrides {
                listen: Some("127.0.0.1:4000".parse().unwrap()),
                admin_listen: Some("[::1]:4001".parse().unwrap()),
                log_level: Some("debug".into()),
            }
        );
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        assert_eq!(
            usage_error(&["--listen", "3000"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(usage_error(&["--log-level", ""]), ErrorKind::InvalidValue);
        assert_eq!(usage_error(&["--nope"]), ErrorKind::UnknownArgument);
    }

    #[test]
    fn config_may_come_before_an_operator_command() {
        let cli = parse(&["--config", "f.toml", "healthcheck"]).unwrap();
        assert_eq!(cli.config.as_deref(), Some(std::path::Path::new("f.toml")));
        assert!(matches!(cli.command, Some(Command::Healthcheck(_))));
    }

    #[test]
    fn version_and_help_exit_zero() {
        for (flag, kind) in [
            ("--version", ErrorKind::DisplayVersion),
            ("--help", ErrorKind::DisplayHelp),
        ] {
            let err = parse(&[flag]).unwrap_err();
            assert_eq!(err.kind(), kind);
            assert_eq!(err.exit_code(), 0);
        }
    }

    #[test]
    fn emit_to_rooms() {
        let cli = parse(&[
            "emit",
            "--to",
            "room1",
            "--to",
            "sid2",
            "--event",
            "news",
            "--data",
            r#"{"a":1}"#,
            "--except",
            "muted",
            "--namespace",
            "/chat",
            "--ack-timeout-ms",
            "500",
            "--admin-url",
            "http://10.0.0.1:3001/",
            "--token",
            "tok",
            "--config",
            "relay.toml",
        ])
        .unwrap();
        assert_eq!(cli.config, Some(PathBuf::from("relay.toml")));
        let Some(Command::Emit(emit)) = cli.command else {
            panic!("not emit");
        };
        assert_eq!(
            emit,
            EmitArgs {
                to: vec!["room1".into(), "sid2".into()],
                broadcast: false,
                event: "news".into(),
                data: Some(json!({"a": 1})),
                args: None,
                except: vec!["muted".into()],
                namespace: Some("/chat".into()),
                ack_timeout_ms: Some(500),
                admin: AdminClientArgs {
                    admin_url: Some("http://10.0.0.1:3001".into()),
                    token: Some("tok".into()),
                },
            }
        );
    }

    #[test]
    fn sids_and_rooms_may_start_with_a_hyphen() {
        let cli = parse(&["emit", "--to", "-Ab_c", "--except", "-x", "--event", "e"]).unwrap();
        let Some(Command::Emit(emit)) = cli.command else {
            panic!("not emit");
        };
        assert_eq!(
            (emit.to, emit.except),
            (vec!["-Ab_c".into()], vec!["-x".into()])
        );
        let cli = parse(&["sockets", "--to", "-Ab_c"]).unwrap();
        let Some(Command::Sockets(sockets)) = cli.command else {
            panic!("not sockets");
        };
        assert_eq!(sockets.to, vec!["-Ab_c".to_string()]);
    }

    #[test]
    fn emit_broadcast_with_args() {
        let cli = parse(&["emit", "--broadcast", "--event", "e", "--args", "[1,\"x\"]"]).unwrap();
        let Some(Command::Emit(emit)) = cli.command else {
            panic!("not emit");
        };
        assert!(emit.broadcast && emit.to.is_empty());
        assert_eq!(emit.args, Some(JsonArray(vec![json!(1), json!("x")])));
        assert_eq!(emit.admin, AdminClientArgs::default());
    }

    #[test]
    fn emit_usage_errors() {
        // No target, both targets, both payloads, bad JSON, zero timeout, no event.
        assert_eq!(
            usage_error(&["emit", "--event", "e"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            usage_error(&["emit", "--to", "r", "--broadcast", "--event", "e"]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            usage_error(&[
                "emit",
                "--broadcast",
                "--event",
                "e",
                "--data",
                "1",
                "--args",
                "[]"
            ]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            usage_error(&["emit", "--broadcast", "--event", "e", "--data", "{"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            usage_error(&["emit", "--broadcast", "--event", "e", "--args", "{}"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            usage_error(&[
                "emit",
                "--broadcast",
                "--event",
                "e",
                "--ack-timeout-ms",
                "0"
            ]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            usage_error(&["emit", "--broadcast"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            usage_error(&["emit", "--to", "", "--event", "e"]),
            ErrorKind::InvalidValue
        );
    }

    #[test]
    fn listing_commands() {
        let cli = parse(&["sockets", "--namespace", "/a", "--to", "r"]).unwrap();
        assert_eq!(
            cli.command,
            Some(Command::Sockets(SocketsArgs {
                namespace: Some("/a".into()),
                to: vec!["r".into()],
                admin: AdminClientArgs::default(),
            }))
        );
        let cli = parse(&["rooms", "--token", "t"]).unwrap();
        let Some(Command::Rooms(rooms)) = cli.command else {
            panic!("not rooms");
        };
        assert_eq!(rooms.namespace, None);
        assert_eq!(rooms.admin.token.as_deref(), Some("t"));
        let cli = parse(&["healthcheck", "--admin-url", "http://127.0.0.1:3001"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Healthcheck(_))));
    }

    #[test]
    fn admin_urls() {
        assert_eq!(
            parse_admin_url("http://127.0.0.1:3001/"),
            Ok("http://127.0.0.1:3001".into())
        );
        assert_eq!(
            parse_admin_url("http://relay:3001/base"),
            Ok("http://relay:3001/base".into())
        );
        for bad in ["127.0.0.1:3001", "https://x", "http://", "http://u@x"] {
            assert!(parse_admin_url(bad).is_err(), "{bad}");
        }
    }
}
