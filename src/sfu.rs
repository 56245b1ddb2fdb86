//! The SFU as `aula serve` runs it in-process.

use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use aula_config::settings::SfuSettings;
use aula_relay::sfu::{Sfu, SfuHandle};
use clap::Args;
use tokio_util::sync::CancellationToken;

/// SFU flags of `aula serve` (each is also an `[sfu]` config key).
#[derive(Debug, Args, Default)]
pub struct SfuArgs {
    /// UDP address of the SFU's media socket, e.g. 0.0.0.0:3479.
    #[arg(long, value_name = "ADDR:PORT")]
    pub sfu_listen: Option<SocketAddr>,
    /// The address browsers reach the SFU by.
    #[arg(long, value_name = "IP")]
    pub sfu_public_ip: Option<IpAddr>,
    /// Students above which an `auto` class switches from direct connections to the SFU.
    #[arg(long, value_name = "N")]
    pub sfu_auto_above: Option<usize>,
    /// Do not run the SFU (every class then uses direct connections).
    #[arg(long)]
    pub no_sfu: bool,
}

impl SfuArgs {
    /// Flags win over the configuration.
    pub fn apply(&self, sfu: &mut SfuSettings) {
        if let Some(a) = self.sfu_listen {
            sfu.listen = a;
        }
        if let Some(ip) = self.sfu_public_ip {
            sfu.public_ip = Some(ip);
        }
        if let Some(n) = self.sfu_auto_above {
            sfu.auto_above = n;
        }
        if self.no_sfu {
            sfu.enabled = false;
        }
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
