//! SFU benchmark: one ~1.5 Mbit/s synthetic VP8 stream — a screen share; `--audio on` adds 20 ms
//! Opus packets, as a teacher's microphone would — to N subscribers on loopback,
//! raising N until the SFU uses ≥ 90% of its core, loss passes 1%, or the full subscribers' p99
//! frame latency passes 200 ms.
//!
//! The SFU runs in a child process (this binary with `--serve`) on a single-threaded runtime, so
//! its CPU time and memory are measured alone (`/proc/<pid>/stat`, `VmRSS`). The load side runs
//! here: one publisher, a few full subscribers that decrypt, depacketize and check every frame
//! (end-to-end latency), and the rest count-only subscribers that complete ICE/DTLS and count
//! RTP datagrams without decrypting them (cheap, so the load generator is not the bottleneck).
//!
//! ```text
//! cargo run --release -p aula-relay --example sfu_bench -- [--steps 50,100,200] [--seconds 5] [--full 4] [--bwe on|off] [--audio on|off] [--send-buffer-age-ms 1000]
//! ```

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aula_relay::sfu::client::{Client, ClientStats, PublisherOptions};
use aula_relay::sfu::{Allowed, Counter, Sfu, SfuConfig, SfuStats};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

const CLASS: &str = "bench";
const CLK_TCK: f64 = 100.0;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        let age = args
            .get(2)
            .map_or(1000, |a| a.parse().expect("milliseconds"));
        serve(
            args.get(1).map(String::as_str) != Some("off"),
            Duration::from_millis(age),
        );
        return;
    }
    let mut steps = vec![
        25, 50, 100, 200, 300, 400, 500, 600, 800, 1000, 1200, 1500, 2000,
    ];
    let mut seconds = 5u64;
    let mut full = 4usize;
    let mut bwe = true;
    let mut audio = false;
    let mut send_buffer_age_ms = SfuConfig::default().send_buffer_age.as_millis() as u64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().expect("a value after each flag");
        match a.as_str() {
            "--steps" => steps = v.split(',').map(|s| s.parse().expect("a number")).collect(),
            "--seconds" => seconds = v.parse().expect("seconds"),
            "--full" => full = v.parse().expect("a count"),
            "--bwe" => bwe = v != "off",
            "--audio" => audio = v == "on",
            "--send-buffer-age-ms" => send_buffer_age_ms = v.parse().expect("milliseconds"),
            other => panic!("unknown flag {other}"),
        }
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench(steps, seconds, full, bwe, audio, send_buffer_age_ms));
}

/// Child: the SFU on one thread, driven over stdin/stdout (one command per line, SDP in base64).
fn serve(bandwidth_estimation: bool, send_buffer_age: Duration) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = SfuConfig {
            max_subscribers: usize::MAX,
            max_subscribers_per_class: usize::MAX,
            // Hundreds of subscribers connect at once here, each as fast as the load allows.
            offer_timeout: Duration::from_secs(120),
            subscribes_per_minute: u32::MAX,
            bandwidth_estimation,
            send_buffer_age,
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

struct Remote {
    pid: u32,
    io: Mutex<(ChildStdin, Lines<BufReader<ChildStdout>>)>,
}

impl Remote {
    async fn call(&self, line: String) -> String {
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

    async fn stats(&self) -> SfuStats {
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

    /// CPU seconds used so far (user + system).
    fn cpu(&self) -> f64 {
        cpu_of(&format!("/proc/{}/stat", self.pid))
    }

    fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

fn cpu_of(path: &str) -> f64 {
    let s = std::fs::read_to_string(path).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 / CLK_TCK
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

async fn bench(
    steps: Vec<usize>,
    seconds: u64,
    full: usize,
    bwe: bool,
    audio: bool,
    send_buffer_age_ms: u64,
) {
    let exe = std::env::current_exe().unwrap();
    let mut child = tokio::process::Command::new(exe)
        .arg("--serve")
        .arg(if bwe { "on" } else { "off" })
        .arg(send_buffer_age_ms.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the SFU process");
    let remote = Arc::new(Remote {
        pid: child.id().unwrap(),
        io: Mutex::new((
            child.stdin.take().unwrap(),
            BufReader::new(child.stdout.take().unwrap()).lines(),
        )),
    });
    let shutdown = CancellationToken::new();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let epoch = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss0 = remote.rss_kib();

    let mut teacher = Client::bind(ip, epoch).await.unwrap();
    let opts = PublisherOptions {
        audio,
        ..PublisherOptions::default()
    };
    let offer = B64.encode(teacher.publish_offer(&opts));
    let answer = remote.call(format!("P {CLASS} teacher {offer}")).await;
    teacher
        .accept_answer(&String::from_utf8(B64.decode(answer).unwrap()).unwrap())
        .unwrap();
    println!(
        "stream: VP8 {} kbit/s at {} fps{}; bandwidth estimation {}; retransmission buffer {send_buffer_age_ms} ms; window {seconds} s; {full} full subscribers, the rest count-only",
        opts.video_bps / 1000,
        opts.fps,
        if audio { " + Opus 20 ms" } else { "" },
        if bwe { "on" } else { "off" },
    );
    let publisher = teacher.spawn_publisher(opts, shutdown.clone());

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
                    let peer = format!("s{i}");
                    let offer = remote.call(format!("S {CLASS} {peer}")).await;
                    let answer = c
                        .answer_offer(&String::from_utf8(B64.decode(offer).unwrap()).unwrap())
                        .unwrap();
                    remote
                        .call(format!("A {CLASS} {peer} {}", B64.encode(answer)))
                        .await;
                    (c.spawn_subscriber(stop), is_full)
                }));
            }
            for t in tasks {
                subs.push(t.await.unwrap());
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
        let (cpu0, me0, t0) = (remote.cpu(), cpu_of("/proc/self/stat"), Instant::now());
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let (cpu1, me1, el) = (remote.cpu(), cpu_of("/proc/self/stat"), t0.elapsed());
        let tx = publisher.rtp_sent.load(Relaxed) - tx0;
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
        let h = hist_delta(&st0, &st1);
        let rss = remote.rss_kib();
        println!(
            "| {n}{} | {:.0} | {:.0} | {:.2}% | {:.1} / {:.1} | {} / {} | {:.0} | {:.0} | {:.0} |",
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
            h.service_time_quantile(0.5).unwrap_or(0),
            h.service_time_quantile(0.99).unwrap_or(0),
            rss as f64 / 1024.0,
            rss.saturating_sub(rss0) as f64 / n as f64,
            (me1 - me0) / secs * 100.0,
        );
        let p99 = quantile(&mut lat_all, 0.99);
        if cpu >= 0.9 || loss > 0.01 || p99 > 200.0 {
            let why = if loss > 0.01 {
                "loss above 1%"
            } else if cpu >= 0.9 {
                "the SFU's core is saturated (≥ 90%)"
            } else {
                "p99 latency above 200 ms"
            };
            println!("stopped: {why}");
            break;
        }
    }
    shutdown.cancel();
    let _ = child.kill().await;
}
