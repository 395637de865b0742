//! The `sio-relay` daemon.

use sio_relay::app::Relay;
use sio_relay::config::Config;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let relay = match Relay::start(Config::default()).await {
        Ok(relay) => relay,
        Err(error) => {
            eprintln!("sio-relay: {error}");
            std::process::exit(1);
        }
    };
    let _ = tokio::signal::ctrl_c().await;
    relay.shutdown().await;
}
