//! A TURN server started for a test (on loopback, with the kit's secret) and the helpers around
//! it; [`Client`] is a small TURN client over UDP, TCP or TLS built on the relay's own codec.

mod client;

pub use crate::net::{closed_within, tcp_connect_from};
pub use client::{Client, Incoming};

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aula_relay::turn::{TurnConfig, TurnServer};
use tokio_util::sync::CancellationToken;

/// The TURN REST secret of [`config`] and of the clients' credentials.
pub const SECRET: &str = "test-secret";
/// How long a client waits for a response.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Seconds since the Unix epoch (the clock of TURN REST credentials).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A server on loopback, any port, with [`SECRET`].
pub fn config() -> TurnConfig {
    TurnConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        secret: SECRET.into(),
        ..TurnConfig::default()
    }
}

/// A started server and the token that stops it.
pub struct Running {
    pub server: TurnServer,
    pub shutdown: CancellationToken,
}

/// Starts a server with `cfg` (UDP and TCP).
pub async fn start(cfg: TurnConfig) -> Running {
    start_tls(cfg, None).await
}

/// Starts a server with `cfg`, and a TLS listener when `tls` is given.
pub async fn start_tls(cfg: TurnConfig, tls: Option<Arc<rustls::ServerConfig>>) -> Running {
    // With port 0 the TCP listener takes the number the kernel gave UDP, which another socket
    // (e.g. a test's client connection) may hold: then try another pair, as `aula` does.
    for _ in 0..8 {
        let shutdown = CancellationToken::new();
        match TurnServer::start(cfg.clone(), tls.clone(), shutdown.clone()).await {
            Ok(server) => return Running { server, shutdown },
            Err(aula_relay::turn::TurnError::Bind { proto: "TCP", .. })
                if cfg.listen.port() == 0 =>
            {
                continue
            }
            Err(e) => panic!("server starts: {e}"),
        }
    }
    panic!("server starts: no free TCP port matching a UDP one in 8 tries")
}

/// A self-signed certificate for `localhost` and a rustls server config using it.
pub fn tls_config() -> (
    Arc<rustls::ServerConfig>,
    rustls::pki_types::CertificateDer<'static>,
) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![der.clone()], key)
    .unwrap();
    (Arc::new(cfg), der)
}
