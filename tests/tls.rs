//! `[tls]`: the official clients over https/wss, the admin API over https, and a
//! certificate reload on SIGHUP that keeps connected clients while new connections get
//! the new certificate.
//!
//! Certificates are made for each test with the `openssl` command: two CAs, each signing
//! a leaf for 127.0.0.1, so a client that trusts only the second CA can only connect once
//! the relay serves the second leaf.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::{ClientKind, QUIET, TIMEOUT, TempFile, spawn_relay_process, start_relay};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A CA and a leaf it signed for 127.0.0.1, in a directory of their own.
struct TestCert {
    dir: PathBuf,
}

impl TestCert {
    fn new(name: &str) -> TestCert {
        let dir = std::env::temp_dir().join(format!(
            "sio-relay-tls-{}-{name}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ext = dir.join("leaf.ext");
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &dir,
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN=sio-relay test CA {name}"),
                ],
            ]
            .concat(),
        );
        openssl(
            &dir,
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "key.pem",
                    "-out",
                    "leaf.csr",
                    "-subj",
                    &format!("/CN=sio-relay test {name}"),
                ],
            ]
            .concat(),
        );
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "cert.pem",
                "-days",
                "2",
                "-extfile",
                "leaf.ext",
            ],
        );
        TestCert { dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn text(&self, file: &str) -> String {
        self.path(file).display().to_string()
    }

    fn leaf_der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(self.path("cert.pem")).unwrap()
    }

    /// Environment that makes the Node.js and Python clients trust this CA.
    fn trust(&self, options: common::ClientOptions) -> common::ClientOptions {
        let ca = self.text("ca.pem");
        options
            .env("NODE_EXTRA_CA_CERTS", &ca)
            .env("REQUESTS_CA_BUNDLE", &ca)
            .env("WEBSOCKET_CLIENT_CA_BUNDLE", &ca)
            .env("SSL_CERT_FILE", &ca)
    }
}

impl Drop for TestCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command is needed by the TLS tests");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `GET path` over TLS to `addr`, trusting `cas`: the status line and the leaf certificate
/// the server presented.
async fn tls_get(
    addr: SocketAddr,
    cas: &[&TestCert],
    path: &str,
) -> (String, CertificateDer<'static>) {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots
            .add(CertificateDer::from_pem_file(ca.path("ca.pem")).unwrap())
            .unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio::time::timeout(TIMEOUT, connector.connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("handshake");
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned();
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, tls.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    (answer.lines().next().unwrap_or("").to_owned(), leaf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_clients_connect_over_tls_and_a_new_certificate_keeps_them() {
    let first = TestCert::new("first");
    let second = TestCert::new("second");
    // The files the relay reads; overwritten with the second certificate before SIGHUP.
    let cert_file = TempFile::new(
        "cert.pem",
        &std::fs::read_to_string(first.path("cert.pem")).unwrap(),
    );
    let key_file = TempFile::new(
        "key.pem",
        &std::fs::read_to_string(first.path("key.pem")).unwrap(),
    );
    let config = TempFile::new(
        "tls.toml",
        &format!(
            "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            cert_file.arg(),
            key_file.arg()
        ),
    );
    let relay = spawn_relay_process(&["--config", &config.arg()], &[]).await;
    let url = format!("https://{}", relay.socketio_addr.unwrap());
    let admin = relay.admin(None);

    let mut js = first
        .trust(common::ClientOptions::new(ClientKind::Js, &url).transports("websocket"))
        .connect()
        .await;
    let mut py = first
        .trust(common::ClientOptions::new(ClientKind::Py, &url))
        .connect()
        .await;
    let push = |n: u32| json!({"broadcast": true, "event": "tick", "data": n});
    assert_eq!(
        admin.emit(&push(1)).await.expect_status(200)["recipients"],
        2
    );
    js.wait_event("/", "tick").await;
    py.wait_event("/", "tick").await;

    let (status, leaf) = tls_get(
        relay.socketio_addr.unwrap(),
        &[&first, &second],
        "/socket.io/?EIO=4&transport=polling",
    )
    .await;
    assert!(status.contains("200"), "{status}");
    assert_eq!(leaf, first.leaf_der());

    // New files under the same names, then SIGHUP.
    cert_file.write(&std::fs::read_to_string(second.path("cert.pem")).unwrap());
    key_file.write(&std::fs::read_to_string(second.path("key.pem")).unwrap());
    relay.sighup();
    relay
        .wait_stderr(|l| l.contains("TLS certificate reloaded"), TIMEOUT)
        .await
        .unwrap_or_else(|| panic!("not reloaded:\n{}", relay.stderr()));

    let (_, leaf) = tls_get(
        relay.socketio_addr.unwrap(),
        &[&first, &second],
        "/socket.io/?EIO=4&transport=polling",
    )
    .await;
    assert_eq!(
        leaf,
        second.leaf_der(),
        "new connections get the new certificate"
    );
    // A client that trusts only the new CA connects now...
    let fresh = second
        .trust(common::ClientOptions::new(ClientKind::Js, &url))
        .connect()
        .await;
    // ...and the clients connected before stay, on their connections.
    assert_eq!(
        admin.emit(&push(2)).await.expect_status(200)["recipients"],
        3
    );
    js.wait_event("/", "tick").await;
    py.wait_event("/", "tick").await;
    for client in [&mut js, &mut py] {
        client
            .expect_none(|l| common::clients::is(l, "disconnect"), QUIET)
            .await;
    }

    // A broken key is refused and the certificate in force stays.
    key_file.write("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n");
    relay.sighup();
    relay
        .wait_stderr(|l| l.contains("TLS certificate not reloaded"), TIMEOUT)
        .await
        .expect("the bad key is reported");
    let (status, leaf) = tls_get(
        relay.socketio_addr.unwrap(),
        &[&second],
        "/socket.io/?EIO=4&transport=polling",
    )
    .await;
    assert!(status.contains("200"), "{status}");
    assert_eq!(leaf, second.leaf_der());

    js.exit().await;
    py.exit().await;
    fresh.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_speaks_tls_when_listed() {
    let cert = TestCert::new("admin");
    use sio_relay::config::{TlsConfig, TlsListener};
    let tls = TlsConfig {
        cert_file: cert.text("cert.pem"),
        key_file: cert.text("key.pem"),
        listeners: vec![TlsListener::Server, TlsListener::Admin],
    };
    let relay = start_relay(|c| c.tls = tls).await;
    let (status, leaf) = tls_get(relay.admin_addr, &[&cert], "/healthz").await;
    assert!(status.contains("200"), "{status}");
    assert_eq!(leaf, cert.leaf_der());
    // Plain HTTP gets no answer from a TLS listener.
    let plain = common::admin::http_client()
        .get(format!("http://{}/healthz", relay.admin_addr))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // The async Python client over wss, through the router's upgrade path.
    let client = cert
        .trust(common::ClientOptions::new(
            ClientKind::PyAsync,
            format!("https://{}", relay.socketio_addr),
        ))
        .connect()
        .await;
    let (status, _) = tls_get(relay.admin_addr, &[&cert], "/v1/sockets").await;
    assert!(status.contains("200"), "{status}");
    client.exit().await;
    relay.shutdown().await;
}
