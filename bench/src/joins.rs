//! `joins`: sustained joins per second and the join→welcome latency.

use anyhow::{Context, Result};
use clap::Args;

use crate::common::{self, Target};
use crate::fleet;

#[derive(Debug, Args)]
pub struct JoinsArgs {
    /// Server base URL, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub server: String,
    /// Admin key (to create the classes).
    #[arg(long)]
    pub admin_key: String,
    /// Joins in total; every joined connection stays open until the end.
    #[arg(long, default_value_t = 5000)]
    pub total: usize,
    /// Connections connecting/joining at the same time.
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// Peers per class; classes are created as needed.
    #[arg(long, default_value_t = 30)]
    pub class_size: usize,
    /// Comma-separated source addresses, used round-robin.
    #[arg(long, default_value = "127.0.0.1")]
    pub sources: String,
}

pub async fn run(args: JoinsArgs) -> Result<()> {
    common::check_fd_limit(args.total as u64)?;
    let target = Target::new(&args.server, &args.admin_key)?;
    let sources = common::parse_sources(&args.sources)?;
    let tokens = {
        let target = target.clone();
        let (n, class_size) = (args.total, args.class_size);
        tokio::task::spawn_blocking(move || fleet::student_tokens(&target, n, class_size, "joins"))
            .await
            .context("creating classes")??
    };
    let (fleet, stats) =
        fleet::open(&target, &tokens, &sources, args.concurrency, "joining").await?;
    println!(
        "== joins: {} connections, concurrency {}, classes of {}",
        args.total, args.concurrency, args.class_size
    );
    println!(
        "joined {} failed {} in {:.2} s: {:.0} joins/s (connect + handshake + join)",
        stats.joined,
        stats.failed,
        stats.elapsed.as_secs_f64(),
        stats.rate()
    );
    stats.print_details();
    fleet.close().await;
    Ok(())
}
