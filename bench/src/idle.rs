//! `idle`: memory per idle joined connection, measured on the server process.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use crate::common::{self, Target};
use crate::fleet;

#[derive(Debug, Args)]
pub struct IdleArgs {
    /// Server base URL, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub server: String,
    /// Admin key (to create the classes).
    #[arg(long)]
    pub admin_key: String,
    /// Connections to open and join.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Comma-separated source addresses, used round-robin (e.g. 127.0.0.1,127.0.0.2).
    #[arg(long, default_value = "127.0.0.1")]
    pub sources: String,
    /// PID of the server process, whose VmRSS is read from /proc.
    #[arg(long)]
    pub server_pid: u32,
    /// Peers per class; classes are created as needed.
    #[arg(long, default_value_t = 50)]
    pub class_size: usize,
    /// Connections connecting/joining at the same time.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Seconds to wait after the last join before reading memory.
    #[arg(long, default_value_t = 5)]
    pub settle_secs: u64,
}

pub async fn run(args: IdleArgs) -> Result<()> {
    common::check_fd_limit(args.connections as u64)?;
    let target = Target::new(&args.server, &args.admin_key)?;
    let sources = common::parse_sources(&args.sources)?;
    let n = args.connections;

    let tokens = {
        let target = target.clone();
        let class_size = args.class_size;
        tokio::task::spawn_blocking(move || fleet::student_tokens(&target, n, class_size, "idle"))
            .await
            .context("creating classes")??
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = common::server_mem(args.server_pid)?;
    eprintln!(
        "server RSS before: {} KiB (anon {} KiB); {} classes of {}",
        before.rss,
        before.anon,
        n.div_ceil(args.class_size.max(1)),
        args.class_size
    );

    let (fleet, stats) =
        fleet::open(&target, &tokens, &sources, args.concurrency, "joining").await?;
    let at_join = common::server_mem(args.server_pid)?;
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let after = common::server_mem(args.server_pid)?;
    let alive = fleet.alive.load(std::sync::atomic::Ordering::Relaxed);
    let dropped = fleet.dropped.load(std::sync::atomic::Ordering::Relaxed);
    let server_fds = std::fs::read_dir(format!("/proc/{}/fd", args.server_pid))
        .map(|d| d.count())
        .ok();

    let per = |a: u64, b: u64| (a as f64 - b as f64) / alive.max(1) as f64;
    println!(
        "== idle: {n} connections, classes of {}, sources {}",
        args.class_size, args.sources
    );
    println!(
        "joined {} failed {} ({:.1} s, {:.0} joins/s)",
        stats.joined,
        stats.failed,
        stats.elapsed.as_secs_f64(),
        stats.rate()
    );
    stats.print_details();
    println!(
        "held open at measurement: {alive} (dropped by server while held: {dropped}); server open fds: {}",
        server_fds.map_or("?".to_string(), |c| c.to_string())
    );
    println!(
        "server VmRSS: before {} KiB, right after joins {} KiB, after {} s settle {} KiB",
        before.rss, at_join.rss, args.settle_secs, after.rss
    );
    println!(
        "memory per idle joined connection: {:.1} KiB (VmRSS), {:.1} KiB (RssAnon)",
        per(after.rss, before.rss),
        per(after.anon, before.anon)
    );
    fleet.close().await;
    Ok(())
}
