//! The TURN relay as `aula serve` runs it in-process and `aula relay` runs it alone, and the
//! `ice_servers` signaling hands out for it.

use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use aula_config::settings::Settings;
use aula_relay::turn::{TurnConfig, TurnError, TurnServer};
use aula_signaling::ice::IceProvider;
use clap::Args;
use tokio_util::sync::CancellationToken;

/// TURN flags shared by `aula serve` and `aula relay` (each is also a `[turn]` config key). Values
/// are strings: the settings loader converts and checks them, naming the key, as it does the file.
#[derive(Debug, Args, Default)]
pub struct TurnArgs {
    /// TURN over UDP and TCP, e.g. 0.0.0.0:3478.
    #[arg(long, value_name = "ADDR:PORT")]
    pub turn_listen: Option<String>,
    /// TURN over TLS, e.g. 0.0.0.0:5349 or :443 (uses the server's certificate).
    #[arg(long, value_name = "ADDR:PORT")]
    pub turn_tls_listen: Option<String>,
    /// The TURN REST API shared secret (default: generated into the data dir).
    #[arg(long, value_name = "SECRET")]
    pub turn_secret: Option<String>,
    /// The address the relay advertises to browsers.
    #[arg(long, value_name = "IP")]
    pub turn_public_ip: Option<String>,
    /// Allow relaying to peers in this network although it is private or loopback (repeatable).
    #[arg(long, value_name = "CIDR")]
    pub turn_allow_peer: Vec<String>,
    /// Do not run the TURN relay.
    #[arg(long)]
    pub no_turn: bool,
}

impl TurnArgs {
    /// The flags as settings overrides (they win over the file and the environment).
    pub fn overrides(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut set = |key: &str, value: Option<&String>| {
            if let Some(v) = value {
                out.push((key.to_string(), v.clone()));
            }
        };
        set("turn.listen", self.turn_listen.as_ref());
        set("turn.tls_listen", self.turn_tls_listen.as_ref());
        set("turn.secret", self.turn_secret.as_ref());
        set("turn.public_ip", self.turn_public_ip.as_ref());
        if !self.turn_allow_peer.is_empty() {
            out.push(("turn.allow_peers".into(), self.turn_allow_peer.join(",")));
        }
        if self.no_turn {
            out.push(("turn.enabled".into(), "false".into()));
        }
        out
    }
}

/// A running relay and how browsers reach it.
pub struct RunningRelay {
    pub server: TurnServer,
    pub ice: IceProvider,
}

/// Starts the relay configured in `settings.turn` (secret generated on first run when empty);
/// `sfu` are the in-process SFU workers' addresses, which the relay must reach although they
/// are internal.
pub async fn start(
    settings: &Settings,
    sfu: &[SocketAddr],
    shutdown: CancellationToken,
) -> anyhow::Result<Option<RunningRelay>> {
    let mut config = settings.turn.clone();
    if !config.enabled {
        return Ok(None);
    }
    config.allow_peer_addrs.extend_from_slice(sfu);
    if config.secret.is_empty() {
        config.secret = aula_config::secrets::load_or_create(&settings.data_dir, "turn_secret")?.0;
    }
    // TURN clients may offer no ALPN or `stun.turn`, so the relay's TLS offers none.
    let tls = match config.tls_listen {
        Some(_) => Some(
            aula_config::tls::server_config_with_alpn(&settings.tls, Vec::new())
                .context("TURN over TLS needs a certificate")?,
        ),
        None => None,
    };
    let secret = config.secret.clone();
    let config_ttl = config.max_credential_lifetime_secs;
    let server = start_turn(config, tls, shutdown).await?;
    let host = host_for_url(server.relay_ip());
    let ice = IceProvider {
        udp_addr: Some(format!("{host}:{}", server.local_udp_addr().port())),
        tcp_addr: Some(format!("{host}:{}", server.local_tcp_addr().port())),
        tls_addr: server
            .local_tls_addr()
            .map(|a| format!("{host}:{}", a.port())),
        secret,
        // The relay refuses credentials that live longer (`turn.max_credential_lifetime_secs`),
        // so signaling mints them with exactly that lifetime and renews them.
        ttl_secs: config_ttl,
        renew_before_secs: settings.ice.renew_before_secs,
    };
    Ok(Some(RunningRelay { server, ice }))
}

fn host_for_url(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// Prints where the relay listens (tests and operators read these lines).
pub fn print_addresses(server: &TurnServer) {
    say!("  TURN UDP:  {}", server.local_udp_addr());
    say!("  TURN TCP:  {}", server.local_tcp_addr());
    if let Some(tls) = server.local_tls_addr() {
        say!("  TURN TLS:  {tls}");
    }
    say!("  Relay IP:  {}", server.relay_ip());
}

/// `aula relay`: the TURN relay alone.
pub async fn run_alone(args: crate::RelayArgs) -> anyhow::Result<()> {
    let mut overrides = args.turn.overrides();
    overrides.push(("turn.enabled".into(), "true".into()));
    let settings = args.config.load(overrides)?;
    crate::serve::init_logging(settings.log_format, settings.sfu.log_lines_per_sec);
    crate::serve::raise_open_file_limit();
    let shutdown = crate::shutdown_on_signals();
    let metrics = match args.metrics_listen {
        Some(addr) => Some(serve_metrics(addr, shutdown.clone()).await?),
        None => None,
    };
    let relay = start(&settings, &[], shutdown)
        .await?
        .expect("enabled above");
    say!("Aula relay is running.");
    print_addresses(&relay.server);
    if let Some(addr) = metrics {
        say!("  Metrics:   http://{addr}/metrics");
    }
    say!("Press Ctrl-C to stop.");
    relay.server.wait().await;
    say!("Aula relay stopped.");
    Ok(())
}

/// Starts the TURN server. With port 0 the TCP listener takes the port number the UDP socket
/// got, which another program may hold already; then another pair is tried.
async fn start_turn(
    config: TurnConfig,
    tls: Option<std::sync::Arc<aula_relay::rustls::ServerConfig>>,
    shutdown: CancellationToken,
) -> Result<TurnServer, TurnError> {
    let mut attempts = 0;
    loop {
        match TurnServer::start(config.clone(), tls.clone(), shutdown.clone()).await {
            Err(TurnError::Bind { proto: "TCP", .. })
                if config.listen.port() == 0 && attempts < 8 =>
            {
                attempts += 1;
            }
            other => return other,
        }
    }
}

/// A relay on its own host has no signaling server to show its metrics: this serves
/// `GET /metrics` (Prometheus) and `GET /healthz` on `addr`. Returns the bound address.
async fn serve_metrics(
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    use axum::routing::get;
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for metrics on {addr}"))?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || std::future::ready(recorder.render())),
        )
        .route("/healthz", get(|| async { "ok" }));
    tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned());
        if let Err(e) = served.await {
            tracing::error!("metrics server failed: {e}");
        }
    });
    Ok(bound)
}
