//! `sfu`: one ~1.5 Mbit/s synthetic VP8 stream — a screen share; `--audio on` adds 20 ms Opus
//! packets, as a teacher's microphone would — to N subscribers on loopback, raising N until the
//! SFU uses ≥ 90% of its cores (one per worker), loss passes 1%, or the full subscribers' p99
//! frame latency passes 200 ms.
//!
//! `--workers N` runs the SFU's pool with N workers; with `--subscribers-per-worker M` the one
//! class (a lecture) spans workers every M subscribers, and each step prints a line per worker
//! (its subscribers, datagrams per second and share of a core).
//!
//! The SFU runs in a child process (this binary's hidden `sfu-server` subcommand) on a
//! single-threaded runtime, so its CPU time and memory are measured alone (`/proc/<pid>/stat`,
//! `VmRSS`). The load side runs here: one publisher, a few full subscribers that decrypt,
//! depacketize and check every frame (end-to-end latency), and the rest count-only subscribers
//! that complete ICE/DTLS and count RTP datagrams without decrypting them (cheap, so the load
//! generator is not the bottleneck).
//!
//! ```text
//! aula-loadtest sfu [--steps 50,100,200] [--seconds 5] [--full 4] [--bwe on|off] [--audio on|off] [--send-buffer-age-ms 1000]
//!                   [--workers 1] [--subscribers-per-worker 500]
//!                   [--ip 127.0.0.1] [--target aula|janus --janus-url URL --janus-pid PID]
//! ```
//!
//! `--target janus` runs the same workload against a Janus process the caller started (a peer
//! SFU for comparison; see `janus` and `bench/sfu_vs_janus.sh`): same publisher, same
//! subscribers, same counters, Janus's CPU time and memory from `/proc` the same way.

mod janus;
mod peer;
mod server;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aula_relay::sfu::{SfuConfig, SfuStats};
use aula_testkit::sfu_client::{Client, ClientStats, PublisherOptions};
use clap::{Args, ValueEnum};
use tokio_util::sync::CancellationToken;

use peer::Peer;
use server::{cpu_of, Remote};
pub use server::{serve, ServeArgs};

const CLASS: &str = "bench";

/// Which SFU the benchmark drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// Aula's SFU, in a child process of this tool.
    Aula,
    /// Janus's videoroom plugin, through Janus's HTTP API (`--janus-url`, `--janus-pid`).
    Janus,
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl Switch {
    fn on(self) -> bool {
        self == Switch::On
    }

    fn name(self) -> &'static str {
        match self {
            Switch::On => "on",
            Switch::Off => "off",
        }
    }
}

#[derive(Debug, Args)]
pub struct SfuArgs {
    /// Subscriber counts to measure, in order (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "25,50,100,200,300,400,500,600,800,1000,1200,1500,2000"
    )]
    pub steps: Vec<usize>,
    /// Length of each measurement window, in seconds.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Subscribers that decrypt and check every frame (the rest only count datagrams).
    #[arg(long, default_value_t = 4)]
    pub full: usize,
    /// The SFU's bandwidth estimation (simulcast layer choice and probing).
    #[arg(long, value_enum, default_value_t = Switch::On)]
    pub bwe: Switch,
    /// Add 20 ms Opus packets to the stream.
    #[arg(long, value_enum, default_value_t = Switch::Off)]
    pub audio: Switch,
    /// How long the SFU keeps sent packets for retransmission (default: the SFU's).
    #[arg(long, default_value_t = SfuConfig::default().send_buffer_age.as_millis() as u64)]
    pub send_buffer_age_ms: u64,
    /// SFU workers (threads, one core each).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Subscribers of the class one worker serves before the class spans the next worker.
    #[arg(long, default_value_t = SfuConfig::default().subscribers_per_worker)]
    pub subscribers_per_worker: usize,
    /// The SFU under test.
    #[arg(long, value_enum, default_value_t = Target::Aula)]
    pub target: Target,
    /// The address the synthetic peers (and Aula's SFU) bind to. Janus gathers no loopback
    /// candidates, so against Janus this is a local interface's address (still delivered
    /// through the kernel's loopback device).
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: IpAddr,
    /// Janus's HTTP API (`--target janus`).
    #[arg(long, default_value = "http://127.0.0.1:18088/janus")]
    pub janus_url: String,
    /// Janus's process id, for its CPU time and memory (`--target janus`).
    #[arg(long)]
    pub janus_pid: Option<u32>,
}

fn quantile(v: &mut [u32], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    f64::from(v[i]) / 1000.0
}

fn hist_delta(a: &SfuStats, b: &SfuStats) -> SfuStats {
    let mut d = SfuStats::default();
    for i in 0..d.service_time_us.len() {
        d.service_time_us[i] = b.service_time_us[i] - a.service_time_us[i];
    }
    d
}

/// Runs the benchmark and prints its table.
pub async fn run(args: SfuArgs) -> Result<()> {
    let SfuArgs {
        steps,
        seconds,
        full,
        bwe,
        audio,
        send_buffer_age_ms,
        workers,
        subscribers_per_worker,
        target,
        ip,
        janus_url,
        janus_pid,
    } = args;
    let pool = (workers.max(1), subscribers_per_worker.max(1));
    let (remote, mut child) = match target {
        Target::Aula => {
            let (remote, child) = Remote::spawn(bwe, send_buffer_age_ms, pool, ip)?;
            (Peer::Aula(remote), Some(child))
        }
        Target::Janus => {
            let pid = janus_pid.context("--target janus needs --janus-pid")?;
            (
                Peer::Janus(janus::Janus::connect(&janus_url, pid).await?),
                None,
            )
        }
    };
    let workers = pool.0;
    let (bwe, audio) = (bwe.on(), audio.on());
    let remote = Arc::new(remote);
    let shutdown = CancellationToken::new();
    let epoch = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss0 = remote.rss_kib();

    let mut teacher = Client::bind(ip, epoch).await.unwrap();
    let opts = PublisherOptions {
        audio,
        ..PublisherOptions::default()
    };
    let answer = remote.publish(&teacher.publish_offer(&opts)).await?;
    teacher.accept_answer(&answer)?;
    let settings = match target {
        Target::Aula => format!(
            "Aula's SFU; bandwidth estimation {}; retransmission buffer {send_buffer_age_ms} ms; {workers} SFU worker(s), the class spans the next every {} subscribers",
            if bwe { "on" } else { "off" },
            pool.1,
        ),
        Target::Janus => format!("Janus (pid {}) videoroom", remote.pid()),
    };
    println!(
        "stream: VP8 {} kbit/s at {} fps{}; {settings}; window {seconds} s; {full} full subscribers, the rest count-only",
        opts.video_bps / 1000,
        opts.fps,
        if audio { " + Opus 20 ms" } else { "" },
    );
    let publisher = teacher.spawn_publisher(opts, shutdown.clone());
    // Janus lets subscribers join a feed only once its publisher's connection is up.
    let end = Instant::now() + Duration::from_secs(20);
    while !publisher.connected.load(Relaxed) && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    println!("| subscribers | SFU CPU (% of a core) | subscribers per core | loss | e2e frame latency p50 / p99 (ms) | SFU batch service time p50 / p99 (µs) | SFU RSS (MiB) | RSS per subscriber (KiB) | load-gen CPU (%) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut subs: Vec<(Arc<ClientStats>, bool)> = Vec::new();
    for n in steps {
        // Connect the new subscribers, 25 at a time.
        while subs.len() < n {
            let batch = (n - subs.len()).min(25);
            let mut tasks = Vec::new();
            for _ in 0..batch {
                let i = subs.len() + tasks.len();
                let is_full = i < full;
                let remote = remote.clone();
                let stop = shutdown.clone();
                tasks.push(tokio::spawn(async move {
                    let mut c = Client::bind(ip, epoch).await.unwrap();
                    if !is_full {
                        c = c.count_only();
                    }
                    let offer = remote.subscribe(i).await?;
                    let answer = c.answer_offer(&offer)?;
                    remote.answer(i, &answer).await?;
                    anyhow::Ok((c.spawn_subscriber(stop), is_full))
                }));
            }
            for t in tasks {
                subs.push(t.await??);
            }
        }
        let end = Instant::now() + Duration::from_secs(60);
        while !subs.iter().all(|(s, _)| s.rtp_packets.load(Relaxed) > 0) && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let connected = subs
            .iter()
            .filter(|(s, _)| s.rtp_packets.load(Relaxed) > 0)
            .count();
        tokio::time::sleep(Duration::from_secs(1)).await;

        // Measurement window.
        let lat0: HashMap<usize, usize> = subs
            .iter()
            .enumerate()
            .filter(|(_, (_, f))| *f)
            .map(|(i, (s, _))| (i, s.latencies_us.lock().unwrap().len()))
            .collect();
        let rx0: Vec<u64> = subs
            .iter()
            .map(|(s, _)| s.rtp_packets.load(Relaxed))
            .collect();
        let tx0 = publisher.rtp_sent.load(Relaxed);
        let st0 = remote.stats().await;
        let w0 = remote.workers().await;
        let (cpu0, me0, t0) = (remote.cpu(), cpu_of("/proc/self/stat"), Instant::now());
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let (cpu1, me1, el) = (remote.cpu(), cpu_of("/proc/self/stat"), t0.elapsed());
        let tx = publisher.rtp_sent.load(Relaxed) - tx0;
        let w1 = remote.workers().await;
        let st1 = remote.stats().await;
        // Datagrams still in flight at the window's end arrive within a few ms.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rx: u64 = subs
            .iter()
            .zip(&rx0)
            .map(|((s, _), r0)| s.rtp_packets.load(Relaxed) - r0)
            .sum();
        let mut lat = Vec::new();
        for (i, from) in lat0 {
            lat.extend_from_slice(&subs[i].0.latencies_us.lock().unwrap()[from..]);
        }
        let mut lat_all = lat.clone();
        let secs = el.as_secs_f64();
        let cpu = (cpu1 - cpu0) / secs;
        let expected = tx as f64 * n as f64;
        let loss = (1.0 - rx as f64 / expected).max(0.0);
        let service = match (st0, st1) {
            (Some(a), Some(b)) => {
                let h = hist_delta(&a, &b);
                format!(
                    "{} / {}",
                    h.service_time_quantile(0.5).unwrap_or(0),
                    h.service_time_quantile(0.99).unwrap_or(0)
                )
            }
            _ => "–".to_string(),
        };
        let rss = remote.rss_kib();
        println!(
            "| {n}{} | {:.0} | {:.0} | {:.2}% | {:.1} / {:.1} | {service} | {:.0} | {:.0} | {:.0} |",
            if connected < n {
                format!(" ({connected} connected)")
            } else {
                String::new()
            },
            cpu * 100.0,
            n as f64 / cpu.max(0.001),
            loss * 100.0,
            quantile(&mut lat.clone(), 0.5),
            quantile(&mut lat, 0.99),
            rss as f64 / 1024.0,
            rss.saturating_sub(rss0) as f64 / n as f64,
            (me1 - me0) / secs * 100.0,
        );
        if workers > 1 {
            let per_worker: Vec<String> = w0
                .iter()
                .zip(&w1)
                .enumerate()
                .map(|(i, ((_, f0, c0), (subs, f1, c1)))| {
                    format!(
                        "worker {i}: {subs} subscribers, {:.0} datagrams/s, {:.0}% of a core",
                        (f1 - f0) as f64 / secs,
                        (c1 - c0) / secs * 100.0
                    )
                })
                .collect();
            println!("|  | {} |  |  |  |  |  |  |  |", per_worker.join("; "));
        }
        let p99 = quantile(&mut lat_all, 0.99);
        if cpu >= 0.9 * workers as f64 || loss > 0.01 || p99 > 200.0 {
            let why = if loss > 0.01 {
                "loss above 1%"
            } else if cpu >= 0.9 {
                "the SFU's cores are saturated (≥ 90%)"
            } else {
                "p99 latency above 200 ms"
            };
            println!("stopped: {why}");
            break;
        }
    }
    shutdown.cancel();
    if let Some(child) = child.as_mut() {
        let _ = child.kill().await;
    }
    Ok(())
}
