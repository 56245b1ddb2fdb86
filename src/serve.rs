//! `aula serve`: the embedded single-node default — signaling, web client and TURN relay in one
//! process, needing no other service.

use std::sync::Arc;

use anyhow::Context;
use aula_config::settings::{LogFormat, Settings};
use aula_signaling::server::{AdminKeySource, Server};
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::ServeArgs;

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut overrides = Vec::new();
    if let Some(listen) = &args.listen {
        overrides.push(("listen".to_string(), listen.clone()));
    }
    if let Some(key) = &args.admin_key {
        overrides.push(("admin_key".to_string(), key.clone()));
    }
    if let Some(url) = &args.public_url {
        overrides.push(("public_url".to_string(), url.clone()));
    }
    if args.tls {
        overrides.push(("tls.enabled".to_string(), "true".to_string()));
    }
    if args.log_json {
        overrides.push(("log_format".to_string(), "json".to_string()));
    }
    overrides.extend(args.turn.overrides());
    overrides.extend(args.sfu.overrides());
    let settings = args.config.load(overrides)?;
    init_logging(settings.log_format, settings.sfu.log_lines_per_sec);
    raise_open_file_limit();

    let recorder = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let render: aula_signaling::app::MetricsRender = Arc::new(move || recorder.render());

    let shutdown = crate::shutdown_on_signals();
    // The SFU first: a browser forced through TURN reaches the SFU through the relay, so the
    // relay must allow exactly the SFU's address although it is an internal one.
    let sfu = crate::sfu::start(&settings.sfu, settings.turn.public_ip, shutdown.clone()).await?;
    let sfu_addrs = sfu.as_ref().map(|s| s.local_addrs()).unwrap_or_default();
    let relay = crate::relay::start(&settings, &sfu_addrs, shutdown.clone())
        .await
        .context("cannot start the TURN relay")?;
    let ice = relay.as_ref().map(|r| r.ice.clone()).unwrap_or_default();
    let server = Server::start(&settings, ice, Some(render), sfu, shutdown)
        .await
        .context("cannot start the server")?;

    say!("Aula is running.");
    say!("  Open:      {}/", server.public_url());
    say!("  Listening: http://{}", server.http_addr());
    if let Some(addr) = server.https_addr() {
        say!("  TLS:       https://{addr}");
    }
    // The key is shown once, when it is generated; journald and terminals keep what is printed.
    match server.admin_key_source() {
        AdminKeySource::Generated(path) => {
            say!("  Admin key: {}", server.admin_key());
            say!(
                "             (generated and stored in {}; shown only this once)",
                path.display()
            );
        }
        AdminKeySource::Stored(path) => say!("  Admin key: stored in {}", path.display()),
        AdminKeySource::Configured => say!("  Admin key: from the configuration (admin_key)"),
    }
    let (per_ip, total) = server.connection_caps();
    tracing::info!("serving at most {total} HTTP connections, {per_ip} per IP address");
    match &relay {
        Some(r) => crate::relay::print_addresses(&r.server),
        None => say!("  TURN:      off"),
    }
    match sfu_addrs.as_slice() {
        [] => say!("  SFU:       off"),
        [addr] => say!("  SFU:       {addr} (UDP)"),
        all => {
            let list: Vec<String> = all.iter().map(ToString::to_string).collect();
            say!(
                "  SFU:       {} (UDP, {} workers)",
                list.join(", "),
                all.len()
            );
        }
    }
    if let Some(lines) = plain_http_warning(&settings, server.public_url()) {
        for line in lines {
            say!("{line}");
        }
    }
    say!("Press Ctrl-C to stop.");
    server.wait().await;
    if let Some(r) = relay {
        r.server.wait().await;
    }
    say!("Aula stopped.");
    Ok(())
}

/// The banner's warning when other computers would reach Aula over plain http only: browsers
/// then refuse camera, microphone and screen sharing, and a classroom looks broken for no
/// visible reason. None on loopback (browsers trust localhost) or with HTTPS in front.
fn plain_http_warning(settings: &Settings, public_url: &str) -> Option<[&'static str; 4]> {
    let secure = settings.tls.enabled || public_url.starts_with("https://");
    if secure || settings.listen.ip().is_loopback() {
        return None;
    }
    Some([
        "  Warning:   plain http only: browsers on other computers will refuse camera, microphone",
        "             and screen sharing (they allow them only over HTTPS or on localhost).",
        "             Enable TLS: --tls with [tls] listen = \"0.0.0.0:8443\", cert and key (see",
        "             aula.example.toml), or serve behind an HTTPS proxy and set public_url.",
    ])
}

/// Raises the soft open-file limit to the hard one (every connection is a descriptor), and logs it.
pub fn raise_open_file_limit() {
    match aula_signaling::fdlimit::raise_to_hard() {
        Ok(Some((before, after))) => {
            tracing::info!("raised the open-file limit from {before} to {after} (the hard limit)")
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("cannot raise the open-file limit: {e}"),
    }
}

/// Text logs by default, JSON lines with `log_format = "json"`; `RUST_LOG` filters.
pub fn init_logging(format: LogFormat, sfu_log_lines_per_sec: u32) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A log line that cannot be written (stderr closed) is dropped: the subscriber would otherwise
    // report it with `eprintln!`, which panics on a closed stderr.
    let fmt = tracing_subscriber::fmt::layer()
        .log_internal_errors(false)
        .with_writer(std::io::stderr);
    let fmt = if format == LogFormat::Json {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    // Per-packet lines of the media stack are rate-limited (see `log_filter`).
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt.with_filter(crate::log_filter::PerLineLimit::new(sfu_log_lines_per_sec)))
        .init();
}
