//! Pieces shared by the subcommands: the admin API, connecting from a chosen source address,
//! joining a class, reading the server's memory, and printing histograms.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

/// Where the server is, as given by `--server http://HOST:PORT`.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://HOST:PORT` without a trailing slash.
    pub base: String,
    /// `ws://HOST:PORT/ws`.
    pub ws_url: String,
    /// The resolved socket address.
    pub addr: SocketAddr,
    pub admin_key: String,
}

impl Target {
    pub fn new(server: &str, admin_key: &str) -> Result<Target> {
        let base = server.trim_end_matches('/').to_string();
        let host_port = base.strip_prefix("http://").ok_or_else(|| {
            anyhow!("--server must be http://HOST:PORT (plain HTTP), got {server}")
        })?;
        let addr = host_port
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {host_port}"))?
            .next()
            .ok_or_else(|| anyhow!("{host_port} resolves to no address"))?;
        Ok(Target {
            ws_url: format!("ws://{host_port}/ws"),
            base,
            addr,
            admin_key: admin_key.to_string(),
        })
    }
}

/// The two links of a class created through the admin API.
#[derive(Debug, Clone)]
pub struct ClassTokens {
    pub id: String,
    pub teacher: String,
    pub student: String,
}

/// `POST /api/v1/classes` (blocking; call it outside the hot path).
pub fn create_class(target: &Target, name: &str) -> Result<ClassTokens> {
    let url = format!("{}/api/v1/classes", target.base);
    let body = serde_json::json!({ "name": name }).to_string();
    let mut response = ureq::post(&url)
        .header("Authorization", &format!("Bearer {}", target.admin_key))
        .content_type("application/json")
        .send(body.as_str())
        .with_context(|| format!("POST {url}"))?;
    let text = response
        .body_mut()
        .read_to_string()
        .context("reading the class")?;
    let v: Value = serde_json::from_str(&text).with_context(|| format!("class JSON: {text}"))?;
    let field = |path: &[&str]| -> Result<String> {
        let mut cur = &v;
        for key in path {
            cur = cur
                .get(key)
                .ok_or_else(|| anyhow!("no {path:?} in {text}"))?;
        }
        cur.as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("{path:?} is not a string in {text}"))
    };
    Ok(ClassTokens {
        id: field(&["id"])?,
        teacher: field(&["teacher", "token"])?,
        student: field(&["student", "token"])?,
    })
}

/// Small client buffers, so the load tool itself stays light at 15k connections.
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
}

/// Opens a TCP connection from `source` (when given) and does the WebSocket handshake.
pub async fn connect(target: &Target, source: Option<IpAddr>) -> Result<Ws> {
    let socket = match target.addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("bind to source {ip}"))?;
    }
    let stream = socket
        .connect(target.addr)
        .await
        .with_context(|| format!("connect to {}", target.addr))?;
    stream.set_nodelay(true)?;
    let (ws, _) = tokio_tungstenite::client_async_with_config(
        target.ws_url.as_str(),
        stream,
        Some(client_config()),
    )
    .await
    .context("WebSocket handshake")?;
    Ok(ws)
}

/// Sends `join` and waits for `welcome`; returns the peer id and the join→welcome time.
pub async fn join(ws: &mut Ws, token: &str, name: &str) -> Result<(String, Duration)> {
    let frame = serde_json::json!({ "type": "join", "token": token, "name": name }).to_string();
    let sent = Instant::now();
    ws.send(Message::text(frame))
        .await
        .context("sending join")?;
    loop {
        let msg = match ws.next().await {
            Some(m) => m.context("reading welcome")?,
            None => bail!("connection closed before welcome"),
        };
        match msg {
            Message::Text(text) => {
                let elapsed = sent.elapsed();
                let v: Value = serde_json::from_str(text.as_str()).context("welcome JSON")?;
                match v.get("type").and_then(Value::as_str) {
                    Some("welcome") => {
                        let id = v
                            .get("id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                        return Ok((id, elapsed));
                    }
                    Some("error") => bail!("join refused: {text}"),
                    _ => continue,
                }
            }
            Message::Close(frame) => bail!("closed before welcome: {frame:?}"),
            _ => continue,
        }
    }
}

/// Parses `--sources 127.0.0.1,127.0.0.2`.
pub fn parse_sources(list: &str) -> Result<Vec<IpAddr>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpAddr>()
                .with_context(|| format!("bad source address {s:?}"))
        })
        .collect()
}

/// One field of `/proc/PID/status` in KiB (`VmRSS`, `RssAnon`, ...).
pub fn proc_status_kib(pid: u32, field: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            let number = rest.trim().trim_end_matches("kB").trim();
            return number
                .parse()
                .with_context(|| format!("{field} in {path}: {rest}"));
        }
    }
    bail!("no {field} in {path}")
}

/// Memory figures of the server process, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Mem {
    pub rss: u64,
    pub anon: u64,
}

pub fn server_mem(pid: u32) -> Result<Mem> {
    Ok(Mem {
        rss: proc_status_kib(pid, "VmRSS")?,
        anon: proc_status_kib(pid, "RssAnon")?,
    })
}

/// This process's soft limit on open files.
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Fails early when the load tool cannot open `needed` sockets.
pub fn check_fd_limit(needed: u64) -> Result<()> {
    if let Some(limit) = open_files_limit() {
        if limit < needed + 64 {
            bail!(
                "open-files limit is {limit}, need about {}: run `ulimit -n 20000` first",
                needed + 64
            );
        }
    }
    Ok(())
}

/// A histogram of microseconds, 1 µs to 10 minutes, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = (d.as_micros() as u64).clamp(1, 600_000_000);
    h.record(us).expect("value within bounds");
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// `p50 1.23 ms  p90 ...` for a histogram of microseconds.
pub fn summary(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "no samples".to_string();
    }
    format!(
        "p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms  (n={})",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.90)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
        h.len()
    )
}

/// A progress bar on stderr with a count, rate and ETA.
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let style =
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

/// The moment all timestamps in chat texts are relative to.
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Waits for an answer to `{"type":"ping"}` to make sure everything queued before it was read.
pub async fn ping_roundtrip(ws: &mut Ws) -> Result<Duration> {
    let sent = Instant::now();
    ws.send(Message::text(r#"{"type":"ping"}"#)).await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) if text.as_str().contains(r#""type":"pong""#) => {
                return Ok(sent.elapsed());
            }
            Some(Ok(Message::Close(frame))) => bail!("closed: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("closed"),
        }
    }
}
