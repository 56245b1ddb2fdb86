//! `fanout`: a teacher's chat messages fanned out to a class; receive latency at every student.
//!
//! The load tool is one process, so send and receive times come from the same monotonic clock:
//! the teacher writes the send time (nanoseconds since the tool's epoch) into the chat text and
//! each student subtracts it from the moment the frame came off its socket.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{self, Target};

#[derive(Debug, Args)]
pub struct FanoutArgs {
    /// Server base URL, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub server: String,
    /// Admin key (to create the class).
    #[arg(long)]
    pub admin_key: String,
    /// Students in the class (plus one teacher).
    #[arg(long, default_value_t = 500)]
    pub class_size: usize,
    /// Chat messages the teacher sends.
    #[arg(long, default_value_t = 200)]
    pub messages: usize,
    /// Messages per second the teacher sends (0: as fast as the socket takes them).
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Extra characters of padding in every chat text.
    #[arg(long, default_value_t = 0)]
    pub pad: usize,
    /// Comma-separated source addresses, used round-robin.
    #[arg(long, default_value = "127.0.0.1")]
    pub sources: String,
    /// Students connecting/joining at the same time.
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// Seconds to wait for the last deliveries after the last send.
    #[arg(long, default_value_t = 15)]
    pub drain_secs: u64,
}

/// What one student saw.
struct StudentReport {
    latency: Histogram<u64>,
    received: usize,
    last: Option<Instant>,
    closed: Option<String>,
}

const MARK: &str = "lt ";

pub async fn run(args: FanoutArgs) -> Result<()> {
    common::check_fd_limit(args.class_size as u64 + 1)?;
    let target = Target::new(&args.server, &args.admin_key)?;
    let sources: Vec<IpAddr> = common::parse_sources(&args.sources)?;
    let class = {
        let target = target.clone();
        tokio::task::spawn_blocking(move || common::create_class(&target, "fanout"))
            .await
            .context("creating the class")??
    };
    let epoch = common::epoch();

    // Students: connect and join, then count chats until `messages` arrived or stop.
    let (stop, stop_rx) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let bar = common::progress(args.class_size as u64, "joining");
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let mut students = Vec::with_capacity(args.class_size);
    for i in 0..args.class_size {
        let target = target.clone();
        let token = class.student.clone();
        let source = (!sources.is_empty()).then(|| sources[i % sources.len()]);
        let gate = gate.clone();
        let ready = ready_tx.clone();
        let mut stop_rx = stop_rx.clone();
        let expected = args.messages;
        students.push(tokio::spawn(async move {
            let mut report = StudentReport { latency: common::new_histogram(), received: 0, last: None, closed: None };
            let permit = gate.acquire_owned().await.expect("semaphore open");
            let mut ws = match common::connect(&target, source).await {
                Ok(ws) => ws,
                Err(e) => {
                    let _ = ready.send(Err(format!("{e:#}")));
                    return report;
                }
            };
            if let Err(e) = common::join(&mut ws, &token, &format!("student{i}")).await {
                let _ = ready.send(Err(format!("{e:#}")));
                return report;
            }
            drop(permit);
            let _ = ready.send(Ok(()));
            drop(ready);
            while report.received < expected {
                let msg = tokio::select! {
                    _ = stop_rx.changed() => break,
                    msg = ws.next() => msg,
                };
                let now = Instant::now();
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(sent_ns) = chat_stamp(text.as_str()) {
                            let sent = epoch + Duration::from_nanos(sent_ns);
                            common::record(&mut report.latency, now.saturating_duration_since(sent));
                            report.received += 1;
                            report.last = Some(now);
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        report.closed = Some(format!("{frame:?}"));
                        break;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        report.closed = Some(e.to_string());
                        break;
                    }
                    None => {
                        report.closed = Some("closed".into());
                        break;
                    }
                }
            }
            // Keep the connection (and reading) until told to stop, so the class stays whole.
            if report.closed.is_none() {
                loop {
                    tokio::select! {
                        _ = stop_rx.changed() => break,
                        msg = ws.next() => if !matches!(msg, Some(Ok(m)) if !m.is_close()) { break },
                    }
                }
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
            }
            report
        }));
    }
    drop(ready_tx);
    let mut join_errors = Vec::new();
    // Every student reports exactly once (joined or failed), then drops its sender.
    while let Some(result) = ready_rx.recv().await {
        if let Err(e) = result {
            join_errors.push(e);
        }
        bar.inc(1);
    }
    bar.finish();
    if !join_errors.is_empty() {
        bail!(
            "{} students failed to join, first: {}",
            join_errors.len(),
            join_errors[0]
        );
    }

    // The teacher joins last; its reader drains its own copies of the chat and counts errors.
    let mut teacher = common::connect(&target, sources.first().copied()).await?;
    common::join(&mut teacher, &class.teacher, "teacher").await?;
    // Let the peer_joined storm of the joins drain before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    common::ping_roundtrip(&mut teacher).await?;
    let (mut sink, mut stream) = teacher.split();
    let teacher_errors = Arc::new(AtomicUsize::new(0));
    let reader = {
        let errors = teacher_errors.clone();
        let mut stop_rx = stop_rx.clone();
        tokio::spawn(async move {
            let mut first_error = None;
            loop {
                tokio::select! {
                    _ = stop_rx.changed() => break,
                    msg = stream.next() => match msg {
                        Some(Ok(Message::Text(t))) => if t.as_str().contains(r#""type":"error""#) {
                            errors.fetch_add(1, Ordering::Relaxed);
                            first_error.get_or_insert_with(|| t.as_str().to_string());
                        },
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                }
            }
            (stream, first_error)
        })
    };

    let padding = "x".repeat(args.pad);
    let interval = (args.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / args.rate));
    let send_bar = common::progress(args.messages as u64, "sending");
    let first_send = Instant::now();
    let mut next = tokio::time::Instant::now();
    for seq in 0..args.messages {
        if let Some(step) = interval {
            tokio::time::sleep_until(next).await;
            next += step;
        }
        let sent_ns = epoch.elapsed().as_nanos() as u64;
        let text = format!("{MARK}{seq} {sent_ns} {padding}");
        let frame = serde_json::json!({ "type": "chat", "text": text }).to_string();
        sink.send(Message::text(frame))
            .await
            .context("teacher send")?;
        send_bar.inc(1);
    }
    let send_elapsed = first_send.elapsed();
    send_bar.finish();

    // Wait for the students to have everything (or the drain time to pass).
    let wait_until = Instant::now() + Duration::from_secs(args.drain_secs);
    let mut reports = Vec::with_capacity(students.len());
    for mut handle in students {
        let remaining = wait_until.saturating_duration_since(Instant::now());
        let report = match tokio::time::timeout(remaining, &mut handle).await {
            Ok(report) => report?,
            Err(_) => {
                // Out of time: the stop signal makes every student return what it has.
                let _ = stop.send(true);
                handle.await?
            }
        };
        reports.push(report);
    }
    let _ = stop.send(true);
    let (stream, first_error) = reader.await?;
    if let Ok(mut ws) = sink.reunite(stream) {
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    }

    let mut all = common::new_histogram();
    let mut received = 0usize;
    let mut last = first_send;
    let mut short = 0usize;
    let mut closed = Vec::new();
    for r in &reports {
        all.add(&r.latency).expect("same bounds");
        received += r.received;
        if r.received < args.messages {
            short += 1;
        }
        if let Some(t) = r.last {
            last = last.max(t);
        }
        if let Some(c) = &r.closed {
            closed.push(c.clone());
        }
    }
    let expected = args.messages * args.class_size;
    let span = last.duration_since(first_send).as_secs_f64();
    println!(
        "== fanout (class {}): 1 teacher + {} students, {} messages at {} msg/s, {} B padding",
        class.id,
        args.class_size,
        args.messages,
        if args.rate > 0.0 {
            format!("{}", args.rate)
        } else {
            "max".into()
        },
        args.pad
    );
    println!(
        "teacher sent {} in {:.2} s ({:.0} msg/s); server errors to teacher: {}",
        args.messages,
        send_elapsed.as_secs_f64(),
        args.messages as f64 / send_elapsed.as_secs_f64().max(1e-9),
        teacher_errors.load(Ordering::Relaxed)
    );
    if let Some(e) = first_error {
        println!("  first error: {e}");
    }
    println!(
        "delivered {received}/{expected} in {span:.2} s: {:.0} msgs/s delivered; students short: {short}, closed by server: {}",
        received as f64 / span.max(1e-9),
        closed.len()
    );
    if let Some(c) = closed.first() {
        println!("  first close: {c}");
    }
    println!("send->receive latency: {}", common::summary(&all));
    Ok(())
}

/// The send time in a chat carrying our mark, or `None` for any other frame. A substring scan,
/// not a JSON parse: the load tool's own per-frame cost adds to every measured latency.
fn chat_stamp(frame: &str) -> Option<u64> {
    if !frame.contains(r#""type":"chat""#) {
        return None;
    }
    let start = frame.find(r#""text":"lt "#)? + r#""text":"lt "#.len();
    let mut parts = frame[start..].split(' ');
    let _seq = parts.next()?;
    let stamp = parts.next()?;
    let digits = stamp
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(stamp.len());
    stamp[..digits].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::chat_stamp;

    #[test]
    fn reads_the_stamp_from_a_chat() {
        let frame =
            r#"{"type":"chat","id":7,"from":"p1","name":"T","text":"lt 3 123456 xx","time":1}"#;
        assert_eq!(chat_stamp(frame), Some(123456));
        assert_eq!(chat_stamp(r#"{"type":"pong"}"#), None);
        assert_eq!(chat_stamp(r#"{"type":"chat","text":"hello"}"#), None);
        let unpadded = r#"{"type":"chat","id":7,"text":"lt 3 99 ","time":1}"#;
        assert_eq!(chat_stamp(unpadded), Some(99));
    }
}
