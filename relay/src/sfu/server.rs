//! The thin tokio I/O layer: one UDP socket for every peer, a command channel for the signaling
//! side, and the timer. All decisions are in [`SfuCore`].

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::core::{Allowed, SfuCore, SfuEvent, SfuStats};
use super::send_batch::{SendBatch, SEND_BATCH};
use super::{metrics, SfuConfig, SfuError};

/// Datagrams read in one go before the loop looks at commands and timers again.
const RECV_BATCH: usize = 64;
/// Notices kept for slow [`SfuHandle::events`] receivers.
const EVENT_BACKLOG: usize = 1024;
/// How often the counters are exported as metrics.
const EXPORT_INTERVAL: Duration = Duration::from_secs(1);

enum Command {
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
}

/// Starts the SFU.
pub struct Sfu;

impl Sfu {
    /// Binds the media socket and spawns the SFU task on the current tokio runtime. It runs
    /// until `shutdown` is cancelled or every [`SfuHandle`] is dropped.
    pub async fn start(
        config: SfuConfig,
        shutdown: CancellationToken,
    ) -> Result<SfuHandle, SfuError> {
        let socket = bind(&config).map_err(|e| SfuError::Io(e.to_string()))?;
        let local = socket
            .local_addr()
            .map_err(|e| SfuError::Io(e.to_string()))?;
        let ip = match config.public_ip {
            Some(ip) => ip,
            None if local.ip().is_unspecified() => {
                return Err(SfuError::Io(
                    "listen address is unspecified: set a concrete address or public_ip".into(),
                ))
            }
            None => local.ip(),
        };
        let candidate = SocketAddr::new(ip, local.port());
        metrics::describe();
        let core = SfuCore::new(config, candidate);
        let (tx, rx) = mpsc::channel(64);
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        info!(%local, %candidate, "SFU listening");
        tokio::spawn(run(socket, core, rx, events.clone(), shutdown));
        Ok(SfuHandle {
            tx,
            events,
            local_addr: candidate,
        })
    }
}

fn bind(config: &SfuConfig) -> std::io::Result<UdpSocket> {
    let s = Socket::new(
        Domain::for_address(config.listen),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = s.set_recv_buffer_size(config.socket_buffer);
    let _ = s.set_send_buffer_size(config.socket_buffer);
    s.set_nonblocking(true)?;
    s.bind(&config.listen.into())?;
    UdpSocket::from_std(s.into())
}

/// The signaling side's way into the SFU. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SfuHandle {
    tx: mpsc::Sender<Command>,
    events: broadcast::Sender<SfuEvent>,
    local_addr: SocketAddr,
}

impl SfuHandle {
    /// The address peers send media to (the advertised ICE host candidate).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    async fn call<T>(&self, cmd: Command, rx: oneshot::Receiver<T>) -> Result<T, SfuError> {
        self.tx.send(cmd).await.map_err(|_| SfuError::Stopped)?;
        rx.await.map_err(|_| SfuError::Stopped)
    }

    /// A publisher (a teacher, or a student given the floor) sends its offer; returns the SFU's
    /// answer. `allowed` is what the SFU forwards of it (see [`SfuCore::publish`]).
    pub async fn publish(
        &self,
        class: &str,
        peer: &str,
        offer_sdp: &str,
        allowed: Allowed,
    ) -> Result<String, SfuError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Publish {
            class: class.into(),
            peer: peer.into(),
            sdp: offer_sdp.into(),
            allowed,
            reply,
        };
        self.call(cmd, rx).await?
    }

    /// Changes what a publisher's media the SFU forwards. Returns whether it publishes.
    pub async fn set_allowed(
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

    /// Ends a peer's publishing, keeping its subscription. Returns whether it published.
    pub async fn unpublish(&self, class: &str, peer: &str) -> Result<bool, SfuError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Unpublish {
            class: class.into(),
            peer: peer.into(),
            reply,
        };
        self.call(cmd, rx).await
    }

    /// Ends a peer's subscription, keeping its publishing. Returns whether it subscribed.
    pub async fn unsubscribe(&self, class: &str, peer: &str) -> Result<bool, SfuError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Unsubscribe {
            class: class.into(),
            peer: peer.into(),
            reply,
        };
        self.call(cmd, rx).await
    }

    /// Creates a subscriber; returns the SFU's offer, to be answered with
    /// [`SfuHandle::accept_answer`].
    pub async fn subscribe(&self, class: &str, peer: &str) -> Result<String, SfuError> {
        self.subscribe_bounded(class, peer, usize::MAX).await
    }

    /// [`SfuHandle::subscribe`] in a class of `members` members, which never holds more
    /// subscriptions than that (see [`SfuCore::subscribe_bounded`]).
    pub async fn subscribe_bounded(
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

    /// The subscriber's answer to the offer from [`SfuHandle::subscribe`].
    pub async fn accept_answer(
        &self,
        class: &str,
        peer: &str,
        answer_sdp: &str,
    ) -> Result<(), SfuError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Answer {
            class: class.into(),
            peer: peer.into(),
            sdp: answer_sdp.into(),
            reply,
        };
        self.call(cmd, rx).await?
    }

    /// Disconnects a peer: its publishing and its subscription. Returns whether it was known.
    pub async fn remove(&self, class: &str, peer: &str) -> Result<bool, SfuError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Remove {
            class: class.into(),
            peer: peer.into(),
            reply,
        };
        self.call(cmd, rx).await
    }

    /// The core's counters.
    pub async fn stats(&self) -> Result<SfuStats, SfuError> {
        let (reply, rx) = oneshot::channel();
        self.call(Command::Stats { reply }, rx).await
    }

    /// Notices about peers (connected, dropped by the SFU) from now on. A receiver that falls
    /// more than 1024 notices behind gets `RecvError::Lagged`.
    pub fn events(&self) -> broadcast::Receiver<SfuEvent> {
        self.events.subscribe()
    }

    /// Resolves when the SFU task has stopped.
    pub async fn stopped(&self) {
        self.tx.closed().await
    }
}

async fn run(
    socket: UdpSocket,
    mut core: SfuCore,
    mut rx: mpsc::Receiver<Command>,
    events: broadcast::Sender<SfuEvent>,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; 2048];
    let mut batch = SendBatch::default();
    let mut exported = SfuStats::default();
    let mut next_export = Instant::now() + EXPORT_INTERVAL;
    loop {
        flush(&socket, &mut core, &mut batch).await;
        while let Some(e) = core.poll_event() {
            // No receiver is fine: nobody is listening yet.
            let _ = events.send(e);
        }
        let now = Instant::now();
        if now >= next_export {
            metrics::publish(&exported, core.stats());
            exported = core.stats().clone();
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
                Err(e) => debug!("SFU recv: {e}"),
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
    metrics::publish(&exported, core.stats());
    info!("SFU stopped");
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
