//! The thin tokio I/O layer: one UDP socket for every peer, a command channel for the signaling
//! side, and the timer. All decisions are in [`SfuCore`].

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::core::{SfuCore, SfuStats};
use super::{metrics, SfuConfig, SfuError};

/// Datagrams read in one go before the loop looks at commands and timers again.
const RECV_BATCH: usize = 64;
/// How often the counters are exported as metrics.
const EXPORT_INTERVAL: Duration = Duration::from_secs(1);

enum Command {
    Publish {
        class: String,
        peer: String,
        sdp: String,
        reply: oneshot::Sender<Result<String, SfuError>>,
    },
    Subscribe {
        class: String,
        peer: String,
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
        info!(%local, %candidate, "SFU listening");
        tokio::spawn(run(socket, core, rx, shutdown));
        Ok(SfuHandle {
            tx,
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

    /// The class's publisher (the teacher) sends its offer; returns the SFU's answer.
    pub async fn publish(
        &self,
        class: &str,
        peer: &str,
        offer_sdp: &str,
    ) -> Result<String, SfuError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Publish {
            class: class.into(),
            peer: peer.into(),
            sdp: offer_sdp.into(),
            reply,
        };
        self.call(cmd, rx).await?
    }

    /// Creates a subscriber; returns the SFU's offer, to be answered with
    /// [`SfuHandle::accept_answer`].
    pub async fn subscribe(&self, class: &str, peer: &str) -> Result<String, SfuError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Subscribe {
            class: class.into(),
            peer: peer.into(),
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

    /// Disconnects a publisher or subscriber. Returns whether it was known.
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

    /// Resolves when the SFU task has stopped.
    pub async fn stopped(&self) {
        self.tx.closed().await
    }
}

async fn run(
    socket: UdpSocket,
    mut core: SfuCore,
    mut rx: mpsc::Receiver<Command>,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; 2048];
    let mut exported = SfuStats::default();
    let mut next_export = Instant::now() + EXPORT_INTERVAL;
    loop {
        flush(&socket, &mut core).await;
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
                    flush(&socket, &mut core).await;
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
            reply,
        } => {
            let _ = reply.send(core.publish(now, &class, &peer, &sdp));
        }
        Command::Subscribe { class, peer, reply } => {
            let _ = reply.send(core.subscribe(now, &class, &peer));
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

async fn flush(socket: &UdpSocket, core: &mut SfuCore) {
    while let Some(t) = core.poll_transmit() {
        match socket.try_send_to(&t.contents, t.destination) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if let Err(e) = socket.send_to(&t.contents, t.destination).await {
                    warn!(dest = %t.destination, "SFU send: {e}");
                }
            }
            Err(e) => debug!(dest = %t.destination, "SFU send: {e}"),
        }
    }
}
