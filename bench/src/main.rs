//! `aula-loadtest`: load tool for Aula's signaling server.
//!
//! * `idle`: memory per idle joined connection (server VmRSS from /proc);
//! * `fanout`: a teacher's chat fanned out to a class, receive latency at every student;
//! * `joins`: sustained joins per second and join→welcome latency.
//!
//! The server runs as a separate process; `bench/signaling.sh` starts it and runs all three.

use anyhow::Result;
use clap::{Parser, Subcommand};

mod common;
mod fanout;
mod fleet;
mod idle;
mod joins;

#[derive(Debug, Parser)]
#[command(
    name = "aula-loadtest",
    version,
    about = "Load tool for Aula's signaling server"
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
}

fn main() -> Result<()> {
    let cli = Cli::parse();
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
        }
    })
}
