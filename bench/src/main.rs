//! `aula-loadtest`: load tool for Aula's signaling server.
//!
//! * `idle`: memory per idle joined connection (server VmRSS from /proc);
//! * `fanout`: a teacher's chat fanned out to a class, receive latency at every student;
//! * `joins`: sustained joins per second and join→welcome latency;
//! * `sfu`: subscribers per core of the SFU, with loss and frame latency;
//! * `snapshot`: the cost of saving a live class's state (copy, JSON, SQLite write), in process.
//!
//! The server runs as a separate process; `bench/signaling.sh` starts it and runs the first
//! three. `sfu` starts the SFU itself, as a child process (`sfu-server`).

#![deny(unsafe_code)]

use anyhow::Result;
use clap::{Parser, Subcommand};

mod common;
mod fanout;
mod fleet;
mod idle;
mod joins;
mod sfu;
mod snapshot;

#[derive(Debug, Parser)]
#[command(
    name = "aula-loadtest",
    version,
    about = "Load tool for Aula's signaling server and SFU"
)]
struct Cli {
    /// Worker threads of the load tool's runtime.
    #[arg(long, global = true, default_value_t = 2)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Opens and joins N connections, holds them idle, and reports server memory per connection.
    Idle(idle::IdleArgs),
    /// One teacher and a class of students; reports chat fan-out latency and delivery rate.
    Fanout(fanout::FanoutArgs),
    /// Sustained joins per second with join→welcome latency.
    Joins(joins::JoinsArgs),
    /// One synthetic VP8 stream to a growing number of SFU subscribers; reports CPU per
    /// subscriber, loss and latency at each step.
    Sfu(sfu::SfuArgs),
    /// Times saving a live class's state: the copy under the hub's lock, JSON, the SQLite write.
    Snapshot(snapshot::SnapshotArgs),
    /// The SFU under test, driven over stdin by `sfu` (started by it as a child process).
    #[command(hide = true)]
    SfuServer(sfu::ServeArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Command::SfuServer(args) = cli.command {
        // Its own single-threaded runtime, so its CPU time is the SFU's alone.
        sfu::serve(args);
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()?;
    common::epoch();
    runtime.block_on(async move {
        match cli.command {
            Command::Idle(args) => idle::run(args).await,
            Command::Fanout(args) => fanout::run(args).await,
            Command::Joins(args) => joins::run(args).await,
            Command::Sfu(args) => sfu::run(args).await,
            Command::Snapshot(args) => snapshot::run(args).await,
            Command::SfuServer(_) => unreachable!("run above without this runtime"),
        }
    })
}
