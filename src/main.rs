//! The `sio-relay` daemon and its operator commands.
//!
//! Exit codes: 0 after a clean shutdown, 1 when the relay cannot start (a listener cannot
//! be bound), 2 for command-line usage errors, 78 for an invalid configuration.

use std::process::ExitCode;

use clap::Parser;
use sio_relay::app::Relay;
use sio_relay::cli::Cli;
use sio_relay::config::{self, Config, Sources};
use sio_relay::logging::{self, LogHandle};
use sio_relay::notify::Notifier;
use sio_relay::ops;
use tokio::signal::unix::{SignalKind, signal};

/// `EX_CONFIG` from sysexits.h.
const EXIT_BAD_CONFIG: u8 = 78;

/// jemalloc rather than glibc's malloc: its per-thread caches and size classes keep the many
/// small per-session allocations denser and cheaper (figures in docs/benchmarks.md).
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = match config::env::collect(std::env::vars_os()) {
        Ok(env) => env,
        Err(errors) => {
            eprintln!("sio-relay: {errors}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let sources = cli.sources(env);
    let config = match config::load(&sources) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("sio-relay: {errors}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    if let Some(command) = &cli.command {
        return ExitCode::from(ops::run_blocking(operator_command(command, &config)));
    }
    if cli.check_config {
        // The certificate is checked too: a config that names unusable files would not start.
        if !config.tls.cert_file.is_empty()
            && let Err(error) = sio_relay::tls::load_key(&config.tls)
        {
            eprintln!("sio-relay: {error}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
        print!("{}", config::render_masked(&config));
        return ExitCode::SUCCESS;
    }
    let log = match logging::init(&config.log, std::env::var("RUST_LOG").ok().as_deref()) {
        Ok(log) => log,
        Err(error) => {
            eprintln!("sio-relay: {error}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    runtime.block_on(run(config, sources, log))
}

async fn run(config: Config, sources: Sources, log: LogHandle) -> ExitCode {
    let relay = match Relay::start(config).await {
        Ok(relay) => relay,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let notifier =
        Notifier::new(std::env::var_os("NOTIFY_SOCKET").as_deref()).unwrap_or_else(|error| {
            tracing::warn!(%error, "NOTIFY_SOCKET unusable; not notifying the service manager");
            Notifier::disabled()
        });
    let notify = |result: std::io::Result<()>| {
        if let Err(error) = result {
            tracing::warn!(%error, "cannot notify the service manager");
        }
    };
    let (Ok(mut terminate), Ok(mut interrupt), Ok(mut hangup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return ExitCode::FAILURE;
    };
    notify(notifier.ready());
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => {
                notify(notifier.reloading());
                reload(&relay, &sources, &log);
                notify(notifier.ready());
            }
        }
    }
    tracing::info!("shutting down");
    notify(notifier.stopping());
    relay.shutdown().await;
    ExitCode::SUCCESS
}

/// Re-reads the configuration; a bad one changes nothing.
fn reload(relay: &Relay, sources: &Sources, log: &LogHandle) {
    let config = match config::load(sources) {
        Ok(config) => config,
        Err(errors) => {
            tracing::error!("reload refused, configuration unchanged:\n{errors}");
            return;
        }
    };
    if let Err(error) = log.set_level(&config.log.level) {
        tracing::error!(%error, "reload refused, configuration unchanged");
        return;
    }
    for key in relay.reload(config) {
        tracing::warn!(key, "changed in the file, takes effect after a restart");
    }
    tracing::info!("configuration reloaded");
}

/// The operator command to run for `command`, with defaults from `config`.
fn operator_command(command: &sio_relay::cli::Command, config: &Config) -> ops::OpsCommand {
    use sio_relay::cli::{AdminClientArgs, Command};
    let url = |admin: &AdminClientArgs| {
        admin
            .admin_url
            .clone()
            .unwrap_or_else(|| ops::default_admin_url(config.admin.listen))
    };
    let token = |admin: &AdminClientArgs| {
        admin
            .token
            .clone()
            .or_else(|| config.admin.tokens.first().cloned())
    };
    match command {
        Command::Healthcheck(args) => ops::OpsCommand::Healthcheck(ops::HealthcheckCommand {
            admin_url: url(&args.admin),
        }),
        Command::Emit(args) => ops::OpsCommand::Emit(ops::EmitCommand {
            to: args.to.clone(),
            broadcast: args.broadcast,
            event: args.event.clone(),
            data: args.data.as_ref().map(|data| data.to_string()),
            args: args
                .args
                .as_ref()
                .map(|list| serde_json::Value::Array(list.0.clone()).to_string()),
            except: args.except.clone(),
            namespace: args.namespace.clone(),
            ack_timeout_ms: args.ack_timeout_ms,
            admin_url: url(&args.admin),
            token: token(&args.admin),
        }),
        Command::Sockets(args) => ops::OpsCommand::Sockets(ops::SocketsCommand {
            namespace: args.namespace.clone(),
            to: args.to.clone(),
            except: Vec::new(),
            admin_url: url(&args.admin),
            token: token(&args.admin),
        }),
        Command::Rooms(args) => ops::OpsCommand::Rooms(ops::RoomsCommand {
            namespace: args.namespace.clone(),
            admin_url: url(&args.admin),
            token: token(&args.admin),
        }),
    }
}
