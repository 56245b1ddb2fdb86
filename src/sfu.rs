//! The SFU as `aula serve` runs it in-process.

use std::net::IpAddr;

use anyhow::Context;
use aula_config::settings::SfuSettings;
use aula_relay::sfu::{Sfu, SfuHandle};
use clap::Args;
use tokio_util::sync::CancellationToken;

/// SFU flags of `aula serve` (each is also an `[sfu]` config key). Values are strings: the
/// settings loader converts and checks them, naming the key, as it does the file.
#[derive(Debug, Args, Default)]
pub struct SfuArgs {
    /// UDP address of the SFU's media socket, e.g. 0.0.0.0:3479.
    #[arg(long, value_name = "ADDR:PORT")]
    pub sfu_listen: Option<String>,
    /// The address browsers reach the SFU by.
    #[arg(long, value_name = "IP")]
    pub sfu_public_ip: Option<String>,
    /// Students above which an `auto` class switches from direct connections to the SFU.
    #[arg(long, value_name = "N")]
    pub sfu_auto_above: Option<String>,
    /// SFU worker threads (0: one per CPU core).
    #[arg(long, value_name = "N")]
    pub sfu_workers: Option<String>,
    /// Do not run the SFU (every class then uses direct connections).
    #[arg(long)]
    pub no_sfu: bool,
}

impl SfuArgs {
    /// The flags as settings overrides (they win over the file and the environment).
    pub fn overrides(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = [
            ("sfu.listen", &self.sfu_listen),
            ("sfu.public_ip", &self.sfu_public_ip),
            ("sfu.auto_above", &self.sfu_auto_above),
            ("sfu.workers", &self.sfu_workers),
        ]
        .into_iter()
        .filter_map(|(key, value)| Some((key.to_string(), value.clone()?)))
        .collect();
        if self.no_sfu {
            out.push(("sfu.enabled".into(), "false".into()));
        }
        out
    }
}

/// Starts the SFU when enabled. `fallback_ip` (the TURN relay's advertised address) is what it
/// advertises when neither its listen address nor `public_ip` names one.
pub async fn start(
    settings: &SfuSettings,
    fallback_ip: Option<IpAddr>,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<SfuHandle>> {
    if !settings.enabled {
        return Ok(None);
    }
    let config = settings.to_runtime(fallback_ip);
    let sfu = Sfu::start(config, shutdown)
        .await
        .with_context(|| format!("cannot start the SFU on {}", settings.listen))?;
    Ok(Some(sfu))
}
