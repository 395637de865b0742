//! Wiring: builds the engine, Socket.IO layer, adapter and admin API, binds the
//! listeners, and runs the one shutdown path.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::adapter::Adapter;
use crate::adapter::local::LocalAdapter;
use crate::admin::{AdminListener, AdminState};
use crate::config::{AdapterKind, Config, TlsListener as Listener};
use crate::engine::{CloseReason, Engine};
use crate::hooks::Hooks;
use crate::metrics::Metrics;
use crate::socketio::SocketIo;
use crate::tls::{Tls, TlsError, TlsListener};

/// Pending connections the kernel queues per listener; tokio's default of 128
/// overflows when thousands of clients reconnect at once.
const LISTEN_BACKLOG: u32 = 4096;

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr} ({key}): {source}")]
    Bind {
        /// The config key of the address.
        key: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The cluster adapter could not be set up.
    #[error("{0}")]
    Cluster(String),
    /// Client authentication could not be set up (a bad key file...).
    #[error(transparent)]
    Auth(#[from] crate::auth::SetupError),
    /// The TLS certificate or key could not be loaded.
    #[error("{0}")]
    Tls(#[from] TlsError),
}

/// A running relay.
pub struct Relay {
    /// Where the Socket.IO listener is bound (the real port when configured with port 0).
    pub socketio_addr: SocketAddr,
    /// Where the admin listener is bound.
    pub admin_addr: SocketAddr,
    /// The Engine.IO server.
    pub engine: Arc<Engine<SocketIo>>,
    /// The adapter (rooms index, delivery).
    pub adapter: Arc<Adapter>,
    /// The metrics.
    pub metrics: Metrics,
    /// The admin API's state (live admin settings, `/readyz`'s listener flag).
    pub admin: AdminState,
    /// The backend hooks.
    pub hooks: Hooks,
    /// The configuration in force (the last one reloaded).
    config: std::sync::Mutex<Config>,
    /// Stops the listeners from accepting.
    stop_accepting: CancellationToken,
    /// Ends ack waits and other in-flight work that should answer at once.
    shutting_down: CancellationToken,
    /// The listeners' certificate, when `[tls]` sets one.
    tls: Option<Tls>,
    servers: Vec<JoinHandle<()>>,
}

fn bind(key: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    let error = |source| StartError::Bind { key, addr, source };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(error)?;
    socket.set_reuseaddr(true).map_err(error)?;
    socket.bind(addr).map_err(error)?;
    socket.listen(LISTEN_BACKLOG).map_err(error)
}

/// Serves the admin API on a thread of its own with a single-threaded runtime, so that a
/// push (one request: parse, route, a direct write to the client's socket, the answer) runs
/// on the thread that read it. On the shared multi-threaded runtime every request also woke
/// a second worker thread, which cost about a third of the CPU of a push
/// (docs/benchmarks.md). The thread ends when `stop` is cancelled and the requests in
/// flight are answered, or when the runtime that started it shuts down.
fn serve_admin(
    listener: TcpListener,
    state: AdminState,
    stop: CancellationToken,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (alive, gone) = tokio::sync::oneshot::channel::<()>();
    // Set up inside the admin runtime, here, so that a failure fails the start: the listener
    // moves to that runtime's reactor, and the tasks spawned now run on its thread.
    let serving: Pin<Box<dyn Future<Output = ()> + Send>> = {
        let _admin_runtime = runtime.enter();
        let listener = TcpListener::from_std(listener.into_std()?)?;
        let stop_admin = CancellationToken::new();
        let stopper = stop_admin.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = gone => {}
            }
            stopper.cancel();
        });
        let router = crate::admin::router(state.clone());
        match tls {
            None => {
                // Plain pushes are answered by the listener itself, the rest by the router.
                let listener = AdminListener::new(listener, state, stop_admin.clone());
                let connections = listener.connections();
                Box::pin(async move {
                    serve_on(listener.tap_io(|_| {}), router, stop_admin).await;
                    connections.close();
                    connections.wait().await;
                })
            }
            Some(acceptor) => {
                let listener = TlsListener::new(listener, acceptor)?;
                Box::pin(serve_on(listener.tap_io(|_| {}), router, stop_admin))
            }
        }
    };
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("sio-relay-admin".into())
        .spawn(move || {
            runtime.block_on(serving);
            let _ = done.send(());
        })?;
    Ok(tokio::spawn(async move {
        // Held until the admin thread is done: dropped with this runtime, it stops that thread.
        let _alive = alive;
        let _ = finished.await;
    }))
}

async fn serve_on<L>(listener: L, router: Router, stop: CancellationToken)
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    for<'a> SocketAddr: axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    if let Err(error) = axum::serve(listener, service)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    {
        tracing::error!(%error, "listener failed");
    }
}

/// The adapter `[cluster]` asks for: memory, or a Redis cluster member.
#[cfg_attr(not(feature = "redis"), allow(unused_variables))]
fn adapter(
    config: &Config,
    local: &Arc<LocalAdapter>,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> Result<Adapter, StartError> {
    match config.cluster.adapter {
        AdapterKind::Memory => Ok(Adapter::memory(local.clone())),
        #[cfg(feature = "redis")]
        AdapterKind::Redis => {
            use crate::adapter::redis::{ClusterOptions, RedisCluster};
            let options = ClusterOptions::from_config(
                &config.cluster,
                &config.server.namespaces,
                metrics.clone(),
            );
            let cluster = RedisCluster::start(options, local.clone(), shutdown.clone())
                .map_err(|err| StartError::Cluster(err.to_string()))?;
            // Namespaces allowed by a wildcard are subscribed when a client first joins one.
            local.on_new_namespace(cluster.namespace_hook());
            Ok(Adapter::cluster(local.clone(), cluster))
        }
        #[cfg(not(feature = "redis"))]
        AdapterKind::Redis => Err(StartError::Cluster(
            "cluster.adapter: this build has no Redis support (feature `redis`)".into(),
        )),
    }
}

/// Connection state recovery: sessions and the replay log in this node's memory, or in
/// Redis when clustered. Nothing of it exists when recovery is off.
fn enable_recovery(
    config: &Config,
    adapter: &Adapter,
    local: &Arc<LocalAdapter>,
    socketio: &SocketIo,
    metrics: &Metrics,
) {
    use crate::adapter::local::Offsets;
    use crate::adapter::replay::MemoryReplay;
    use crate::socketio::recovery::Recovery;
    #[cfg(feature = "redis")]
    if let Some(cluster) = adapter.redis() {
        local.set_offsets(Offsets::Carried);
        let store = cluster.enable_recovery(&config.recovery);
        socketio.enable_recovery(Recovery { store });
        return;
    }
    let _ = adapter;
    let replay = Arc::new(MemoryReplay::new(&config.recovery, metrics));
    local.set_offsets(Offsets::Log(replay.clone()));
    socketio.enable_recovery(Recovery { store: replay });
}

impl Relay {
    /// Binds both listeners and starts serving; returns once both accept connections.
    pub async fn start(config: Config) -> Result<Relay, StartError> {
        let metrics = Metrics::new();
        let shutting_down = CancellationToken::new();
        let stop_accepting = CancellationToken::new();

        let local = Arc::new(LocalAdapter::new(metrics.clone(), shutting_down.clone()));
        let adapter = Arc::new(adapter(&config, &local, &metrics, &shutting_down)?);
        let auth = crate::auth::Auth::new(&config.auth, &metrics)?;
        let socketio = SocketIo::new(local.clone(), &config.server.namespaces, metrics.clone())
            .with_auth(auth);
        if config.recovery.enabled {
            enable_recovery(&config, &adapter, &local, &socketio, &metrics);
        }
        let hooks = Hooks::new(
            &config.hooks,
            config.admin.max_body_bytes,
            &config.auth.user_room_prefix,
            adapter.clone(),
            metrics.clone(),
        );
        socketio.set_observer(Arc::new(hooks.clone()));
        let engine = Engine::new(socketio, config.server.clone(), metrics.clone());
        engine.set_limits(&config.limits);

        let socketio_listener = bind("server.listen", config.server.listen)?;
        let admin_listener = bind("admin.listen", config.admin.listen)?;
        let socketio_addr = socketio_listener
            .local_addr()
            .expect("a bound listener has an address");
        let admin_addr = admin_listener
            .local_addr()
            .expect("a bound listener has an address");

        let tls = if config.tls.cert_file.is_empty() {
            None
        } else {
            Some(Tls::load(&config.tls)?)
        };
        let acceptor_for = |listener| {
            tls.as_ref()
                .filter(|_| config.tls.enabled_on(listener))
                .map(Tls::acceptor)
        };
        let admin_state = AdminState::new(adapter.clone(), metrics.clone(), &config.admin)
            .with_user_room_prefix(&config.auth.user_room_prefix);
        let admin_server = serve_admin(
            admin_listener,
            admin_state.clone(),
            stop_accepting.clone(),
            acceptor_for(Listener::Admin),
        )
        .map_err(|source| StartError::Bind {
            key: "admin.listen",
            addr: config.admin.listen,
            source,
        })?;
        let servers = vec![
            crate::engine::serve(
                engine.clone(),
                socketio_listener,
                stop_accepting.clone(),
                acceptor_for(Listener::Server),
            ),
            admin_server,
        ];
        let scheme = |listener| match config.tls.enabled_on(listener) {
            true => "TLS",
            false => "plain",
        };
        tracing::info!(%socketio_addr, path = %config.server.path, tls = scheme(Listener::Server), "Socket.IO listening");
        tracing::info!(%admin_addr, tls = scheme(Listener::Admin), "admin API listening");
        admin_state.set_listening(true);
        Ok(Relay {
            socketio_addr,
            admin_addr,
            engine,
            adapter,
            metrics,
            admin: admin_state,
            hooks,
            config: std::sync::Mutex::new(config),
            stop_accepting,
            shutting_down,
            tls,
            servers,
        })
    }

    /// Applies a new configuration's live settings: allowed origins, transports, limits
    /// and timings for new sessions, namespaces for new connects, admin tokens and
    /// limits, and every `[hooks]` setting. Returns the keys that changed but need a restart.
    pub fn reload(&self, new: Config) -> Vec<&'static str> {
        let mut current = self.config.lock().expect("config lock poisoned");
        let old = &*current;
        let mut restart = Vec::new();
        if new.server.listen != old.server.listen {
            restart.push("server.listen");
        }
        if new.server.path != old.server.path {
            restart.push("server.path");
        }
        if new.admin.listen != old.admin.listen {
            restart.push("admin.listen");
        }
        if new.cluster != old.cluster {
            restart.push("cluster");
        }
        if new.auth != old.auth {
            restart.push("auth");
        }
        if new.recovery != old.recovery {
            restart.push("recovery");
        }
        if new.log.format != old.log.format {
            restart.push("log.format");
        }
        // The files are read again whatever changed: renewing a certificate usually
        // replaces their contents under the same names.
        let mut tls = new.tls.clone();
        if new.tls.listeners != old.tls.listeners {
            restart.push("tls.listeners");
            tls.listeners = old.tls.listeners.clone();
        }
        match &self.tls {
            None if !new.tls.cert_file.is_empty() => {
                restart.push("tls.cert_file");
                tls = old.tls.clone();
            }
            None => {}
            Some(_) if new.tls.cert_file.is_empty() => {
                restart.push("tls.cert_file");
                tls = old.tls.clone();
            }
            Some(current) => match current.reload(&new.tls) {
                Ok(()) => {
                    tracing::info!(cert_file = %new.tls.cert_file, "TLS certificate reloaded")
                }
                Err(error) => {
                    tracing::error!(%error, "TLS certificate not reloaded; the one in force stays");
                    tls = old.tls.clone();
                }
            },
        }
        // What needs a restart keeps its running value, so the next reload compares
        // against what is really in force.
        let mut new = new;
        new.server.listen = old.server.listen;
        new.server.path = old.server.path.clone();
        new.admin.listen = old.admin.listen;
        new.cluster = old.cluster.clone();
        new.auth = old.auth.clone();
        new.recovery = old.recovery.clone();
        new.log.format = old.log.format;
        new.tls = tls;
        self.engine.handler().set_namespaces(&new.server.namespaces);
        self.engine.update_settings(new.server.clone());
        self.engine.set_limits(&new.limits);
        self.admin.reload(&new.admin);
        self.hooks.reload(&new.hooks, new.admin.max_body_bytes);
        *current = new;
        restart
    }

    /// Graceful shutdown (as on SIGTERM): stops accepting, answers in-flight admin
    /// requests (ack waits at once), ends every session so clients reconnect, all within
    /// `server.shutdown_grace_ms`. Returns `false` when the grace period ran out.
    pub async fn shutdown(self) -> bool {
        let grace = Duration::from_millis(
            self.config
                .lock()
                .expect("config lock poisoned")
                .server
                .shutdown_grace_ms,
        );
        self.admin.set_listening(false);
        self.admin.close_streams();
        self.stop_accepting.cancel();
        self.shutting_down.cancel();
        self.engine.close_all(CloseReason::ServerShutdown);
        let engine = self.engine.clone();
        let hooks = self.hooks.clone();
        let drained = tokio::time::timeout(grace, async move {
            for server in self.servers {
                let _ = server.await;
            }
            while engine.session_count() > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // The sessions' disconnect events, and any still being retried, get what is
            // left of the grace period.
            while hooks.lifecycle_pending() > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .is_ok();
        if !drained {
            tracing::warn!(?grace, "shutdown grace period ran out");
        }
        drained
    }
}
