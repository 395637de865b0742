//! TLS for the listeners (`[tls]`): the certificate and key, read from PEM files, and
//! their reload.
//!
//! Each TLS listener's acceptor asks a [`Certificates`] resolver for the certificate on
//! every handshake, so a reload swaps the certificate for new connections while the
//! connections already up keep the one they were opened with, and no client is dropped.
//! A file that cannot be read or parsed, or a key that does not match the certificate, is
//! refused with a message naming the key, and the certificate in force stays.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::TlsConfig;

/// Why a certificate or key could not be loaded; names the config key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The certificate file.
    #[error("tls.cert_file: {0}")]
    Cert(String),
    /// The key file, or the key against the certificate.
    #[error("tls.key_file: {0}")]
    Key(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks the certificate chain and key `config` names.
pub fn load_key(config: &TlsConfig) -> Result<CertifiedKey, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&config.cert_file)
        .and_then(|certs| certs.collect())
        .map_err(|e| TlsError::Cert(format!("cannot read `{}`: {e}", config.cert_file)))?;
    if certs.is_empty() {
        return Err(TlsError::Cert(format!(
            "`{}` holds no PEM certificate",
            config.cert_file
        )));
    }
    // Never show the key's contents, only where it is.
    let key = PrivateKeyDer::from_pem_file(&config.key_file)
        .map_err(|e| TlsError::Key(format!("cannot read `{}`: {e}", config.key_file)))?;
    CertifiedKey::from_der(certs, key, &provider()).map_err(|e| {
        TlsError::Key(format!(
            "`{}` is not a usable key for the certificate in `{}`: {e}",
            config.key_file, config.cert_file
        ))
    })
}

/// The certificate handshakes get: replaced whole on reload.
pub struct Certificates {
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates").finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// The listeners' TLS: one certificate, reloadable, and the acceptor built on it.
#[derive(Clone)]
pub struct Tls {
    certificates: Arc<Certificates>,
    acceptor: TlsAcceptor,
}

impl Tls {
    /// Loads the certificate and key of `config`.
    pub fn load(config: &TlsConfig) -> Result<Tls, TlsError> {
        let certificates = Arc::new(Certificates {
            current: RwLock::new(Arc::new(load_key(config)?)),
        });
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Cert(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(certificates.clone());
        // Both listeners speak HTTP/1.1 only (WebSocket upgrades need it).
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            certificates,
            acceptor: TlsAcceptor::from(Arc::new(server)),
        })
    }

    /// The acceptor for a listener.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// Reads the files again; new handshakes get the new certificate. On error nothing
    /// changes.
    pub fn reload(&self, config: &TlsConfig) -> Result<(), TlsError> {
        let key = Arc::new(load_key(config)?);
        *self
            .certificates
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = key;
        Ok(())
    }
}

/// A TCP listener whose connections are handed on once their TLS handshake is done, for
/// `axum::serve` (the admin listener). Handshakes run on tasks of their own, each bounded
/// by [`HANDSHAKE_TIMEOUT`], so a slow client never holds up the others.
pub struct TlsListener {
    accepted: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

/// How long a client of a [`TlsListener`] may take over its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl TlsListener {
    /// Accepts on `listener`, with TCP_NODELAY set, and shakes hands with `acceptor`.
    /// Stops accepting once the `TlsListener` is dropped.
    pub fn new(listener: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (sender, accepted) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, remote) = tokio::select! {
                    _ = sender.closed() => break,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            // Out of file descriptors, mostly: wait rather than spin.
                            tracing::warn!(%error, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let _ = sender.send((stream, remote)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%remote, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%remote, "TLS handshake not done in time"),
                    }
                });
            }
        });
        Ok(TlsListener { accepted, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accepting task ended: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
