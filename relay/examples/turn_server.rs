//! A stand-alone Aula TURN server for interop tests and benchmarks.
//!
//! ```text
//! cargo run --release -p aula-relay --example turn_server -- \
//!     --listen 127.0.0.1:3478 --secret SECRET [--allow-peer 127.0.0.0/8]... \
//!     [--public-ip IP] [--bandwidth-kbps N] [--max-allocations N] [--max-per-user N] \
//!     [--max-credential-lifetime SECS] [--threads N]
//! ```
//! coturn's `turnutils_uclient -W SECRET` mints credentials that expire in 24 hours, longer than
//! the relay's default maximum, so benchmarks pass `--max-credential-lifetime 86400`.
//! Prints `listening udp=ADDR tcp=ADDR` once bound; stops on Ctrl-C or SIGTERM.

use aula_relay::turn::{TurnConfig, TurnServer};
use tokio_util::sync::CancellationToken;

fn usage() -> ! {
    eprintln!(
        "usage: turn_server --secret SECRET [--listen ADDR:PORT] [--allow-peer CIDR]... \
         [--public-ip IP] [--bandwidth-kbps N] [--max-allocations N] [--max-per-user N] \
         [--max-credential-lifetime SECS] [--threads N]"
    );
    std::process::exit(2)
}

fn main() {
    // `--threads N` (default: one per core); 1 runs a single-threaded runtime.
    let argv: Vec<String> = std::env::args().collect();
    let threads = argv
        .iter()
        .position(|a| a == "--threads")
        .and_then(|i| argv.get(i + 1))
        .map(|v| v.parse::<usize>().unwrap_or_else(|_| usage()))
        .unwrap_or(0);
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if threads > 1 {
            b.worker_threads(threads);
        }
        b.enable_all().build()
    }
    .expect("tokio runtime");
    rt.block_on(run());
}

async fn run() {
    let mut cfg = TurnConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        let parse_err = |what: &str| -> ! {
            eprintln!("invalid {what}");
            usage()
        };
        match flag.as_str() {
            "--listen" => cfg.listen = value().parse().unwrap_or_else(|_| parse_err("--listen")),
            "--secret" => cfg.secret = value(),
            "--threads" => {
                value();
            }
            "--allow-peer" => cfg.allow_peers.push(value()),
            "--public-ip" => {
                cfg.public_ip = Some(value().parse().unwrap_or_else(|_| parse_err("--public-ip")))
            }
            "--bandwidth-kbps" => {
                cfg.bandwidth_limit_kbps = value()
                    .parse()
                    .unwrap_or_else(|_| parse_err("--bandwidth-kbps"))
            }
            "--max-allocations" => {
                cfg.max_allocations = value()
                    .parse()
                    .unwrap_or_else(|_| parse_err("--max-allocations"))
            }
            "--max-per-user" => {
                cfg.max_allocations_per_user = value()
                    .parse()
                    .unwrap_or_else(|_| parse_err("--max-per-user"))
            }
            "--max-credential-lifetime" => {
                cfg.max_credential_lifetime_secs = value()
                    .parse()
                    .unwrap_or_else(|_| parse_err("--max-credential-lifetime"))
            }
            _ => usage(),
        }
    }
    let shutdown = CancellationToken::new();
    let server = match TurnServer::start(cfg, None, shutdown.clone()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "listening udp={} tcp={}",
        server.local_udp_addr(),
        server.local_tcp_addr()
    );
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        stop.cancel();
    });
    server.wait().await;
}
