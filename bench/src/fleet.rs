//! A fleet of joined connections that stay open (and keep reading, so pings are answered and
//! class events drained) until stopped.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{self, Target};

/// Connections that joined and are being held open.
pub struct Fleet {
    stop: watch::Sender<bool>,
    /// Joined connections still open.
    pub alive: Arc<AtomicUsize>,
    /// Joined connections the server closed (or that failed) while held.
    pub dropped: Arc<AtomicUsize>,
    handles: Vec<JoinHandle<()>>,
}

/// How opening the fleet went.
pub struct JoinStats {
    pub joined: usize,
    pub failed: usize,
    pub errors: Vec<String>,
    /// From the first connect to the last welcome.
    pub elapsed: Duration,
    /// join frame sent → welcome received, µs.
    pub join: Histogram<u64>,
    /// TCP connect + WebSocket handshake, µs.
    pub connect: Histogram<u64>,
}

impl JoinStats {
    pub fn rate(&self) -> f64 {
        self.joined as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Prints the errors and the join and connect latencies (every scenario reports them).
    pub fn print_details(&self) {
        for e in &self.errors {
            println!("  error: {e}");
        }
        println!("join->welcome: {}", common::summary(&self.join));
        println!(
            "connect (TCP + WS handshake): {}",
            common::summary(&self.connect)
        );
    }
}

/// One connection per token, at most `concurrency` connecting/joining at a time, with source
/// addresses taken round-robin from `sources` (none: the kernel picks).
pub async fn open(
    target: &Target,
    tokens: &[String],
    sources: &[IpAddr],
    concurrency: usize,
    label: &str,
) -> Result<(Fleet, JoinStats)> {
    let (stop, stop_rx) = watch::channel(false);
    let alive = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Result<(Duration, Duration), String>>();
    let bar = common::progress(tokens.len() as u64, label);
    let start = Instant::now();

    let mut handles = Vec::with_capacity(tokens.len());
    for (i, token) in tokens.iter().enumerate() {
        let target = target.clone();
        let token = token.clone();
        let source = (!sources.is_empty()).then(|| sources[i % sources.len()]);
        let gate = gate.clone();
        let done = done_tx.clone();
        let mut stop_rx = stop_rx.clone();
        let alive = alive.clone();
        let dropped = dropped.clone();
        handles.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.expect("semaphore open");
            let t0 = Instant::now();
            let mut ws = match common::connect(&target, source).await {
                Ok(ws) => ws,
                Err(e) => {
                    let _ = done.send(Err(format!("{e:#}")));
                    return;
                }
            };
            let connected = t0.elapsed();
            let joined = common::join(&mut ws, &token, &format!("bot{i}")).await;
            drop(permit);
            match joined {
                Ok((_, latency)) => {
                    alive.fetch_add(1, Ordering::Relaxed);
                    let _ = done.send(Ok((connected, latency)));
                }
                Err(e) => {
                    let _ = done.send(Err(format!("{e:#}")));
                    return;
                }
            }
            drop(done);
            loop {
                tokio::select! {
                    _ = stop_rx.changed() => break,
                    msg = ws.next() => match msg {
                        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => {
                            alive.fetch_sub(1, Ordering::Relaxed);
                            dropped.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        Some(Ok(_)) => {}
                    },
                }
            }
            alive.fetch_sub(1, Ordering::Relaxed);
            let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
        }));
    }
    drop(done_tx);

    let mut stats = JoinStats {
        joined: 0,
        failed: 0,
        errors: Vec::new(),
        elapsed: Duration::ZERO,
        join: common::new_histogram(),
        connect: common::new_histogram(),
    };
    while let Some(result) = done_rx.recv().await {
        match result {
            Ok((connect, join)) => {
                stats.joined += 1;
                common::record(&mut stats.connect, connect);
                common::record(&mut stats.join, join);
            }
            Err(e) => {
                stats.failed += 1;
                if stats.errors.len() < 5 {
                    stats.errors.push(e);
                }
            }
        }
        bar.inc(1);
    }
    stats.elapsed = start.elapsed();
    bar.finish();
    Ok((
        Fleet {
            stop,
            alive,
            dropped,
            handles,
        },
        stats,
    ))
}

impl Fleet {
    /// Closes every connection and waits (a few seconds at most) for the tasks to end.
    pub async fn close(self) {
        let _ = self.stop.send(true);
        let all = futures_util::future::join_all(self.handles);
        let _ = tokio::time::timeout(Duration::from_secs(10), all).await;
    }
}

/// Student tokens for `n` connections in classes of `class_size` (one class per `class_size`).
pub fn student_tokens(
    target: &Target,
    n: usize,
    class_size: usize,
    prefix: &str,
) -> Result<Vec<String>> {
    let class_size = class_size.max(1);
    let classes = n.div_ceil(class_size);
    let mut tokens = Vec::with_capacity(n);
    for c in 0..classes {
        let class = common::create_class(target, &format!("{prefix} {c}"))?;
        let here = class_size.min(n - c * class_size);
        tokens.extend(std::iter::repeat_n(class.student, here));
    }
    Ok(tokens)
}
