//! The SFU under test as a child process: `aula-loadtest sfu-server` runs it on one thread and
//! takes commands on stdin (one per line, SDP in base64); [`Remote`] drives it from the load side
//! and reads its CPU time and memory from `/proc`.

use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use aula_relay::sfu::{Allowed, Counter, Sfu, SfuConfig, SfuStats};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use clap::Args;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::Switch;

/// Clock ticks per second of `/proc/PID/stat`.
const CLK_TCK: f64 = 100.0;

/// Options of the child process, set by [`Remote::spawn`].
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The SFU's bandwidth estimation.
    #[arg(long, value_enum)]
    pub bwe: Switch,
    /// How long the SFU keeps sent packets for retransmission.
    #[arg(long)]
    pub send_buffer_age_ms: u64,
    /// SFU workers (threads).
    #[arg(long)]
    pub workers: usize,
    /// Subscribers of the class one worker serves before it spans the next.
    #[arg(long)]
    pub subscribers_per_worker: usize,
    /// The address the SFU's media sockets bind to (and advertise).
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: IpAddr,
}

/// Child: the SFU's workers, driven over stdin/stdout (one command per line, SDP in base64).
pub fn serve(args: ServeArgs) {
    let bandwidth_estimation = args.bwe.on();
    let ip = args.ip;
    let send_buffer_age = Duration::from_millis(args.send_buffer_age_ms);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = SfuConfig {
            listen: SocketAddr::new(ip, 0),
            max_subscribers: usize::MAX,
            max_subscribers_per_class: usize::MAX,
            // Hundreds of subscribers connect at once here, each as fast as the load allows.
            offer_timeout: Duration::from_secs(120),
            subscribes_per_minute: u32::MAX,
            bandwidth_estimation,
            send_buffer_age,
            workers: args.workers,
            subscribers_per_worker: args.subscribers_per_worker,
            ..SfuConfig::default()
        };
        let sfu = Sfu::start(config, CancellationToken::new())
            .await
            .expect("SFU starts");
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        let mut out = tokio::io::stdout();
        let dec = |s: &str| String::from_utf8(B64.decode(s).unwrap()).unwrap();
        while let Ok(Some(line)) = lines.next_line().await {
            let p: Vec<&str> = line.split(' ').collect();
            let reply = match p[0] {
                "P" => sfu
                    .publish(p[1], p[2], &dec(p[3]), Allowed::ALL)
                    .await
                    .map(|a| B64.encode(a)),
                "S" => sfu.subscribe(p[1], p[2]).await.map(|o| B64.encode(o)),
                "A" => sfu
                    .accept_answer(p[1], p[2], &dec(p[3]))
                    .await
                    .map(|_| String::new()),
                "T" => sfu.stats().await.map(|s| {
                    let h: Vec<String> = s.service_time_us.iter().map(u64::to_string).collect();
                    format!(
                        "{} {} {}",
                        s.subscribers,
                        s[Counter::ForwardedPackets],
                        h.join(",")
                    )
                }),
                // Per worker: subscribers, forwarded datagrams, thread CPU time (ns).
                "W" => {
                    let mut parts = Vec::new();
                    for w in sfu.workers() {
                        let forwarded = sfu
                            .worker_stats(w.index)
                            .await
                            .map_or(0, |s| s[Counter::ForwardedPackets]);
                        let cpu = w.cpu.as_nanos();
                        parts.push(format!("{},{forwarded},{cpu}", w.subscribers));
                    }
                    Ok(parts.join(" "))
                }
                other => Ok(format!("unknown command {other}")),
            };
            let line = match reply {
                Ok(r) => format!("OK {r}\n"),
                Err(e) => format!("ERR {e}\n"),
            };
            out.write_all(line.as_bytes()).await.unwrap();
            out.flush().await.unwrap();
        }
    });
}

/// The SFU child process, driven by the load side.
pub(super) struct Remote {
    pid: u32,
    io: Mutex<(ChildStdin, Lines<BufReader<ChildStdout>>)>,
}

impl Remote {
    /// Starts this binary's `sfu-server` as a child (killed when `child` drops).
    pub(super) fn spawn(
        bwe: Switch,
        send_buffer_age_ms: u64,
        (workers, subscribers_per_worker): (usize, usize),
        ip: IpAddr,
    ) -> Result<(Remote, Child)> {
        let exe = std::env::current_exe().context("the load tool's own path")?;
        let mut child = tokio::process::Command::new(exe)
            .arg("sfu-server")
            .args(["--bwe", bwe.name()])
            .args(["--send-buffer-age-ms", &send_buffer_age_ms.to_string()])
            .args(["--workers", &workers.to_string()])
            .args([
                "--subscribers-per-worker",
                &subscribers_per_worker.to_string(),
            ])
            .args(["--ip", &ip.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("start the SFU process")?;
        let remote = Remote {
            pid: child.id().context("the SFU process's id")?,
            io: Mutex::new((
                child.stdin.take().context("the SFU process's stdin")?,
                BufReader::new(child.stdout.take().context("the SFU process's stdout")?).lines(),
            )),
        };
        Ok((remote, child))
    }

    pub(super) async fn call(&self, line: String) -> String {
        let mut io = self.io.lock().await;
        io.0.write_all(line.as_bytes()).await.unwrap();
        io.0.write_all(b"\n").await.unwrap();
        let reply =
            io.1.next_line()
                .await
                .unwrap()
                .expect("the SFU process answers");
        match reply.strip_prefix("OK ") {
            Some(r) => r.to_string(),
            None => panic!("SFU: {reply}"),
        }
    }

    pub(super) async fn stats(&self) -> SfuStats {
        let r = self.call("T".into()).await;
        let p: Vec<&str> = r.split(' ').collect();
        let mut s = SfuStats::default();
        s.subscribers = p[0].parse().unwrap();
        s[Counter::ForwardedPackets] = p[1].parse().unwrap();
        for (i, v) in p[2].split(',').enumerate() {
            s.service_time_us[i] = v.parse().unwrap();
        }
        s
    }

    /// Per worker: (subscribers, datagrams forwarded so far, thread CPU seconds so far). The
    /// subscriber counts are the workers' own, updated once a second.
    pub(super) async fn workers(&self) -> Vec<(usize, u64, f64)> {
        let r = self.call("W".into()).await;
        r.split(' ')
            .map(|w| {
                let f: Vec<&str> = w.split(',').collect();
                let ns: u64 = f[2].parse().unwrap();
                (
                    f[0].parse().unwrap(),
                    f[1].parse().unwrap(),
                    ns as f64 / 1e9,
                )
            })
            .collect()
    }

    /// The SFU process's id.
    pub(super) fn pid(&self) -> u32 {
        self.pid
    }
}

/// A process's resident memory (`VmRSS`) in KiB; 0 when it is gone.
pub(super) fn rss_of(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds a process used (user + system), from its `/proc/PID/stat`.
pub(super) fn cpu_of(path: &str) -> f64 {
    let s = std::fs::read_to_string(path).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 / CLK_TCK
}
