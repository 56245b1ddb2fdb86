//! One SFU worker: its own thread, its own current-thread tokio runtime, its own UDP socket and
//! its own [`SfuCore`]. Nothing on the per-packet path is shared with another thread: the
//! signaling side reaches the worker through a bounded command channel, a spanning class's
//! media reaches it from its origin worker through a bounded span channel (see `span.rs`), and
//! the worker publishes its load for placement in a few atomics once a second
//! ([`WorkerShared`]). All decisions are
//! in [`SfuCore`]; [`super::pool`] places classes on workers.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::core::{Allowed, SfuCore, SfuEvent, SfuStats};
use super::send_batch::{thread_cpu_time, SendBatch, SEND_BATCH};
use super::span::SpanMessage;
use super::{metrics, SfuConfig, SfuError};

/// Datagrams read in one go before the loop looks at commands and timers again.
const RECV_BATCH: usize = 64;
/// Commands queued for one worker before callers wait.
const COMMAND_QUEUE: usize = 64;
/// Messages from other workers queued for one worker before more are dropped: about two
/// seconds of a publisher's screen, camera and microphone frames, so only a worker that has
/// stalled loses any (and its subscribers then get a keyframe).
pub(super) const SPAN_QUEUE: usize = 512;
/// How often the counters are exported as metrics and the load is published for placement.
const EXPORT_INTERVAL: Duration = Duration::from_secs(1);

pub(super) enum Command {
    Publish {
        class: String,
        peer: String,
        sdp: String,
        allowed: Allowed,
        reply: oneshot::Sender<Result<String, SfuError>>,
    },
    SetAllowed {
        class: String,
        peer: String,
        allowed: Allowed,
        reply: oneshot::Sender<bool>,
    },
    Unpublish {
        class: String,
        peer: String,
        reply: oneshot::Sender<bool>,
    },
    Unsubscribe {
        class: String,
        peer: String,
        reply: oneshot::Sender<bool>,
    },
    Subscribe {
        class: String,
        peer: String,
        members: usize,
        reply: oneshot::Sender<Result<String, SfuError>>,
    },
    Answer {
        class: String,
        peer: String,
        sdp: String,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Remove {
        class: String,
        peer: String,
        reply: oneshot::Sender<bool>,
    },
    Stats {
        reply: oneshot::Sender<SfuStats>,
    },
    Occupancy {
        reply: oneshot::Sender<Vec<ClassOccupancy>>,
    },
    AddSpan {
        class: String,
        worker: usize,
        reply: oneshot::Sender<bool>,
    },
    RemoveSpans {
        class: String,
    },
}

/// A worker's ends of the span channels: its own inbox, and every worker's inbox by number.
pub(super) struct SpanLinks {
    pub inbox: mpsc::Receiver<SpanMessage>,
    pub to: Vec<mpsc::Sender<SpanMessage>>,
}

/// Who of a class a worker holds (for the pool's housekeeping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ClassOccupancy {
    pub class: String,
    pub subscribers: Vec<String>,
}

/// What a worker publishes about itself for placement and health, written by the worker once
/// per [`EXPORT_INTERVAL`] and read by the pool: never touched per packet.
#[derive(Debug)]
pub(super) struct WorkerShared {
    /// The worker's number (the `worker` label of its metrics).
    pub index: usize,
    /// Its advertised media address.
    pub addr: SocketAddr,
    /// Datagrams sent to subscribers per second over the last interval: the load classes are
    /// placed by.
    pub load_pps: AtomicU64,
    /// Subscribers it serves.
    pub subscribers: AtomicUsize,
    /// Publishers connected to it.
    pub publishers: AtomicUsize,
    /// CPU time its thread has used, in nanoseconds.
    pub cpu_ns: AtomicU64,
    /// False once its thread has ended for any reason but shutdown (a panic).
    pub alive: AtomicBool,
}

/// One worker as the pool sees it: its command channel and what it publishes.
#[derive(Debug, Clone)]
pub(super) struct Worker {
    tx: mpsc::Sender<Command>,
    pub shared: Arc<WorkerShared>,
}

/// Binds a worker's media socket (non-blocking, registered with a runtime later).
pub(super) fn bind(config: &SfuConfig, listen: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let s = Socket::new(
        Domain::for_address(listen),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = s.set_recv_buffer_size(config.socket_buffer);
    let _ = s.set_send_buffer_size(config.socket_buffer);
    s.set_nonblocking(true)?;
    s.bind(&listen.into())?;
    Ok(s.into())
}

impl Worker {
    /// Starts worker `index` on its own thread, serving `socket` whose advertised address is
    /// `candidate`. It runs until `shutdown` is cancelled or every [`Worker`] clone is dropped.
    pub(super) fn spawn(
        index: usize,
        config: SfuConfig,
        socket: std::net::UdpSocket,
        candidate: SocketAddr,
        links: SpanLinks,
        events: broadcast::Sender<SfuEvent>,
        shutdown: CancellationToken,
    ) -> Result<Worker, SfuError> {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let shared = Arc::new(WorkerShared {
            index,
            addr: candidate,
            load_pps: AtomicU64::new(0),
            subscribers: AtomicUsize::new(0),
            publishers: AtomicUsize::new(0),
            cpu_ns: AtomicU64::new(0),
            alive: AtomicBool::new(true),
        });
        let mine = shared.clone();
        std::thread::Builder::new()
            .name(format!("aula-sfu-{index}"))
            .spawn(move || {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    rt.block_on(async {
                        let socket = UdpSocket::from_std(socket)?;
                        let core = SfuCore::new(config, candidate).with_worker(index);
                        let io = Io {
                            socket,
                            commands: rx,
                            links,
                            events,
                        };
                        run(io, core, shutdown, &mine).await;
                        Ok::<(), std::io::Error>(())
                    })
                }));
                match outcome {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        mine.alive.store(false, Ordering::Relaxed);
                        error!(worker = index, "SFU worker could not start: {e}");
                    }
                    Err(panic) => {
                        mine.alive.store(false, Ordering::Relaxed);
                        let what = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        error!(
                            worker = index,
                            "SFU worker panicked and stopped; its classes lost their media: {what}"
                        );
                    }
                }
            })
            .map_err(|e| SfuError::Io(format!("SFU worker thread: {e}")))?;
        info!(worker = index, %candidate, "SFU worker listening");
        Ok(Worker { tx, shared })
    }

    async fn call<T>(&self, cmd: Command, rx: oneshot::Receiver<T>) -> Result<T, SfuError> {
        self.tx.send(cmd).await.map_err(|_| SfuError::Stopped)?;
        rx.await.map_err(|_| SfuError::Stopped)
    }

    pub(super) async fn publish(
        &self,
        class: &str,
        peer: &str,
        sdp: &str,
        allowed: Allowed,
    ) -> Result<String, SfuError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Publish {
            class: class.into(),
            peer: peer.into(),
            sdp: sdp.into(),
            allowed,
            reply,
        };
        self.call(cmd, rx).await?
    }

    pub(super) async fn set_allowed(
        &self,
        class: &str,
        peer: &str,
        allowed: Allowed,
    ) -> Result<bool, SfuError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::SetAllowed {
            class: class.into(),
            peer: peer.into(),
            allowed,
            reply,
        };
        self.call(cmd, rx).await
    }

    pub(super) async fn unpublish(&self, class: &str, peer: &str) -> Result<bool, SfuError> {
        let (reply, rx) = oneshot::channel();
        let (class, peer) = (class.into(), peer.into());
        self.call(Command::Unpublish { class, peer, reply }, rx)
            .await
    }

    pub(super) async fn unsubscribe(&self, class: &str, peer: &str) -> Result<bool, SfuError> {
        let (reply, rx) = oneshot::channel();
        let (class, peer) = (class.into(), peer.into());
        self.call(Command::Unsubscribe { class, peer, reply }, rx)
            .await
    }

    pub(super) async fn subscribe_bounded(
        &self,
        class: &str,
        peer: &str,
        members: usize,
    ) -> Result<String, SfuError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Subscribe {
            class: class.into(),
            peer: peer.into(),
            members,
            reply,
        };
        self.call(cmd, rx).await?
    }

    pub(super) async fn accept_answer(
        &self,
        class: &str,
        peer: &str,
        sdp: &str,
    ) -> Result<(), SfuError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Answer {
            class: class.into(),
            peer: peer.into(),
            sdp: sdp.into(),
            reply,
        };
        self.call(cmd, rx).await?
    }

    pub(super) async fn remove(&self, class: &str, peer: &str) -> Result<bool, SfuError> {
        let (reply, rx) = oneshot::channel();
        let (class, peer) = (class.into(), peer.into());
        self.call(Command::Remove { class, peer, reply }, rx).await
    }

    pub(super) async fn stats(&self) -> Result<SfuStats, SfuError> {
        let (reply, rx) = oneshot::channel();
        self.call(Command::Stats { reply }, rx).await
    }

    pub(super) async fn occupancy(&self) -> Result<Vec<ClassOccupancy>, SfuError> {
        let (reply, rx) = oneshot::channel();
        self.call(Command::Occupancy { reply }, rx).await
    }

    /// This worker (the class's origin) hands the class's media to `worker` from now on.
    pub(super) async fn add_span(&self, class: &str, worker: usize) -> Result<bool, SfuError> {
        let (reply, rx) = oneshot::channel();
        let class = class.into();
        self.call(
            Command::AddSpan {
                class,
                worker,
                reply,
            },
            rx,
        )
        .await
    }

    /// This worker stops handing the class's media to other workers.
    pub(super) async fn remove_spans(&self, class: &str) {
        let class = class.into();
        // A stopped worker hands nothing anyway.
        let _ = self.tx.send(Command::RemoveSpans { class }).await;
    }

    /// Resolves when the worker has stopped.
    pub(super) async fn stopped(&self) {
        self.tx.closed().await
    }
}

/// A worker's channels and socket.
struct Io {
    socket: UdpSocket,
    commands: mpsc::Receiver<Command>,
    links: SpanLinks,
    events: broadcast::Sender<SfuEvent>,
}

async fn run(io: Io, mut core: SfuCore, shutdown: CancellationToken, shared: &WorkerShared) {
    let Io {
        socket,
        commands: mut rx,
        mut links,
        events,
    } = io;
    let worker = shared.index;
    let mut buf = vec![0u8; 2048];
    let mut batch = SendBatch::default();
    let mut exported = SfuStats::default();
    let mut exported_at = Instant::now();
    let mut cpu = Duration::ZERO;
    let mut next_export = exported_at + EXPORT_INTERVAL;
    loop {
        flush(&socket, &mut core, &mut batch).await;
        hand_over(&mut core, &links.to);
        while let Some(e) = core.poll_event() {
            // No receiver is fine: nobody is listening yet.
            let _ = events.send(e);
        }
        let now = Instant::now();
        if now >= next_export {
            let now_cpu = thread_cpu_time();
            let stats = (&exported, core.stats());
            export(shared, stats, now - exported_at, (cpu, now_cpu));
            cpu = now_cpu;
            exported = core.stats().clone();
            exported_at = now;
            next_export = now + EXPORT_INTERVAL;
        }
        let deadline = core
            .poll_timeout()
            .map_or(next_export, |t| t.min(next_export));
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, src)) => {
                    let t0 = Instant::now();
                    core.handle_receive(t0, src, &buf[..n]);
                    for _ in 1..RECV_BATCH {
                        match socket.try_recv_from(&mut buf) {
                            Ok((n, src)) => {
                                core.handle_receive(Instant::now(), src, &buf[..n]);
                            }
                            Err(_) => break,
                        }
                    }
                    flush(&socket, &mut core, &mut batch).await;
                    core.record_service_time(t0.elapsed());
                }
                Err(e) => debug!(worker, "SFU recv: {e}"),
            },
            // Before commands: what an origin sent before the pool's next request is applied
            // first (a span's publishers before its first subscriber).
            Some(message) = links.inbox.recv() => {
                core.handle_span(Instant::now(), message);
                for _ in 1..RECV_BATCH {
                    match links.inbox.try_recv() {
                        Ok(message) => core.handle_span(Instant::now(), message),
                        Err(_) => break,
                    }
                }
            },
            cmd = rx.recv() => match cmd {
                Some(cmd) => command(&mut core, cmd),
                None => break,
            },
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
        let now = Instant::now();
        if core.poll_timeout().is_some_and(|t| t <= now) {
            core.handle_timeout(now);
        }
    }
    let now = Instant::now();
    let stats = (&exported, core.stats());
    export(shared, stats, now - exported_at, (cpu, thread_cpu_time()));
    info!(worker, "SFU worker stopped");
}

/// Publishes the worker's counters as metrics and its load for placement; `cpu` is the thread's
/// CPU time in all, `cpu_before` at the last export, `over` the time since then.
fn export(
    shared: &WorkerShared,
    (prev, now): (&SfuStats, &SfuStats),
    over: Duration,
    (cpu_before, cpu): (Duration, Duration),
) {
    let forwarded = super::Counter::ForwardedPackets;
    let sent = now[forwarded].saturating_sub(prev[forwarded]);
    let secs = over.as_secs_f64().max(1e-3);
    let load = metrics::WorkerLoad {
        pps: (sent as f64 / secs) as u64,
        cpu_total: cpu,
        utilization: cpu.saturating_sub(cpu_before).as_secs_f64() / secs,
    };
    shared.load_pps.store(load.pps, Ordering::Relaxed);
    shared.subscribers.store(now.subscribers, Ordering::Relaxed);
    shared.publishers.store(now.publishers, Ordering::Relaxed);
    shared
        .cpu_ns
        .store(cpu.as_nanos() as u64, Ordering::Relaxed);
    metrics::publish(shared.index, prev, now, &load);
}

fn command(core: &mut SfuCore, cmd: Command) {
    let now = Instant::now();
    // A dropped reply channel only means the caller gave up waiting.
    match cmd {
        Command::Publish {
            class,
            peer,
            sdp,
            allowed,
            reply,
        } => {
            let _ = reply.send(core.publish(now, &class, &peer, &sdp, allowed));
        }
        Command::SetAllowed {
            class,
            peer,
            allowed,
            reply,
        } => {
            let _ = reply.send(core.set_allowed(now, &class, &peer, allowed));
        }
        Command::Unpublish { class, peer, reply } => {
            let _ = reply.send(core.unpublish(&class, &peer));
        }
        Command::Unsubscribe { class, peer, reply } => {
            let _ = reply.send(core.unsubscribe(&class, &peer));
        }
        Command::Subscribe {
            class,
            peer,
            members,
            reply,
        } => {
            let _ = reply.send(core.subscribe_bounded(now, &class, &peer, members));
        }
        Command::Answer {
            class,
            peer,
            sdp,
            reply,
        } => {
            let _ = reply.send(core.accept_answer(now, &class, &peer, &sdp));
        }
        Command::Remove { class, peer, reply } => {
            let _ = reply.send(core.remove(&class, &peer));
        }
        Command::Stats { reply } => {
            let _ = reply.send(core.stats().clone());
        }
        Command::AddSpan {
            class,
            worker,
            reply,
        } => {
            let _ = reply.send(core.add_span(&class, worker));
        }
        Command::RemoveSpans { class } => core.remove_spans(&class),
        Command::Occupancy { reply } => {
            let occupancy = core
                .class_subscribers()
                .into_iter()
                .map(|(class, subscribers)| ClassOccupancy { class, subscribers })
                .collect();
            let _ = reply.send(occupancy);
        }
    }
}

/// Hands the core's messages for other workers to their channels, never waiting: a message a
/// full channel refuses is dropped and the core told (its next frame there marks the gap).
fn hand_over(core: &mut SfuCore, to: &[mpsc::Sender<SpanMessage>]) {
    while let Some((worker, message)) = core.poll_span() {
        let Some(tx) = to.get(worker) else {
            continue;
        };
        match tx.try_send(message) {
            Ok(()) => {}
            Err(TrySendError::Full(message)) => core.span_lost(worker, &message),
            // A stopped worker: nobody there to serve.
            Err(TrySendError::Closed(_)) => {}
        }
    }
}

/// Sends everything the core has queued, up to [`SEND_BATCH`] datagrams per system call.
async fn flush(socket: &UdpSocket, core: &mut SfuCore, batch: &mut SendBatch) {
    loop {
        batch.items.clear();
        while batch.items.len() < SEND_BATCH {
            match core.poll_transmit() {
                Some(t) => batch.items.push(t),
                None => break,
            }
        }
        if batch.items.is_empty() {
            return;
        }
        let mut done = 0;
        while done < batch.items.len() {
            match socket.try_io(Interest::WRITABLE, || batch.send(socket.as_raw_fd(), done)) {
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if let Err(e) = socket.writable().await {
                        warn!("SFU socket: {e}");
                        return;
                    }
                }
                Err(e) => {
                    // The first datagram failed (e.g. a stale ICMP error): skip it.
                    debug!(dest = %batch.items[done].destination, "SFU send: {e}");
                    done += 1;
                }
            }
        }
    }
}
