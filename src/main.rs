//! The `aula` binary: `aula serve` runs a whole classroom server in one process; the other
//! subcommands are operator tools.

#![deny(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use aula_config::settings::{LoadOptions, Settings};

/// `println!` that never fails: with stdout closed (`aula serve | head -3`) the banner is lost,
/// but the server keeps running and still stops on SIGTERM (`println!` would panic).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod account;
mod log_filter;
mod relay;
mod serve;
mod sfu;
mod token;

#[derive(Debug, Parser)]
#[command(name = "aula", version, about = "Aula: a self-hosted online classroom")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the classroom server (signaling, web client, TURN relay) in one process.
    Serve(ServeArgs),
    /// Run only the TURN relay, e.g. on another host (give it the same secret as the server).
    Relay(RelayArgs),
    /// Mint a class token from the command line.
    Token(token::TokenArgs),
    /// Staff accounts: add (prints a setup link), list, disable, enable, reset.
    Account(account::AccountArgs),
    /// Print the protocol's JSON Schema (the source of docs/protocol.schema.json).
    Schema,
}

/// Options every subcommand that reads the configuration shares.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Configuration file (default: ./aula.toml when present).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Where the class database and generated secrets live.
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

impl ConfigArgs {
    /// Loads settings: defaults, then the file, then `AULA_*`, then these flags and `extra`.
    pub fn load(&self, mut extra: Vec<(String, String)>) -> anyhow::Result<Settings> {
        if let Some(dir) = &self.data_dir {
            extra.push(("data_dir".into(), dir.display().to_string()));
        }
        let options = LoadOptions {
            config_file: self.config.clone(),
            overrides: extra,
            ..Default::default()
        };
        Ok(Settings::load(&options)?)
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// HTTP and WebSocket address, e.g. 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// The admin API key (default: generated into the data dir on first run).
    #[arg(long, value_name = "KEY")]
    pub admin_key: Option<String>,
    /// Base URL for links, e.g. https://aula.school.example.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Also serve HTTPS/WSS (with the configured certificate, or a generated development one).
    #[arg(long)]
    pub tls: bool,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    pub log_json: bool,
    #[command(flatten)]
    pub turn: relay::TurnArgs,
    #[command(flatten)]
    pub sfu: sfu::SfuArgs,
}

#[derive(Debug, Args)]
pub struct RelayArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub turn: relay::TurnArgs,
    /// Serve Prometheus metrics (and /healthz) over HTTP here, e.g. 127.0.0.1:9100.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => run_async(serve::run(args)),
        Command::Relay(args) => run_async(relay::run_alone(args)),
        Command::Token(args) => token::run(args),
        Command::Account(args) => account::run(args),
        Command::Schema => {
            println!("{}", schema_text());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "aula: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The protocol schema as checked in at docs/protocol.schema.json.
pub fn schema_text() -> String {
    serde_json::to_string_pretty(&aula_signaling::protocol::json_schema())
        .expect("schema serializes")
}

fn run_async(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(fut)
}

/// A token that fires on SIGINT or SIGTERM.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let fire = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("can install a SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
        fire.cancel();
    });
    token
}
