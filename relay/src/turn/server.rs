//! The tokio I/O layer around the sans-IO [`Core`]: sockets, tasks, timers, metrics.
//!
//! - one task reads the UDP listener, up to [`udp::RECV_BATCH`] datagrams per `recvmmsg`;
//! - one task reads every allocation's relay socket: the sockets sit in one level-triggered
//!   epoll set, the task reads each ready socket once per round into a shared arena, frames
//!   the datagrams in place and sends all that go to UDP clients with one `sendmmsg`;
//! - one reader and one writer task per TCP/TLS connection (bounded queue to the writer);
//! - a one-second ticker expires state and exports metrics.
//!
//! Batching is what makes a relayed packet cheap: a burst of datagrams costs one receive call
//! on the listener and one send call towards the clients, and a relay socket costs no task, no
//! buffer and no empty read of its own. Every packet takes the core's mutex for a few hash/vec
//! look-ups and the mutex is released before any system call; UDP relaying allocates nothing
//! per packet.
//!
//! Its parts, one file each:
//! - `sockets.rs`: binds the listeners and relay sockets (the core's
//!   [`RelayBinder`](super::core::RelayBinder)) and adds relay sockets to the epoll set;
//! - `udp.rs`: the UDP listener loop and the relay loop;
//! - `batch_io.rs`: `recvmmsg`, `sendmmsg` and the epoll set (the module's only `unsafe`);
//! - `stream.rs`: TCP and TLS connections (accept, connection caps, read and write);
//! - `ticker.rs`: once a second, expiry, rate-limited logs and metrics;
//! - `interfaces.rs`: the host's own addresses (advertised and for the peer filter).

mod batch_io;
mod interfaces;
mod sockets;
mod stream;
mod ticker;
mod udp;

use super::core::{Core, CoreConfig, Stats};
use super::filter::PeerFilter;
use super::{metrics, TurnConfig, TurnError};
use crate::log_limit::LogLimiter;
use batch_io::Epoll;
use interfaces::{derive_public_ip, interface_addresses};
use sockets::{tcp_listener, udp_socket};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU32, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Receive/send buffer asked for on the UDP listener (the kernel caps it at rmem_max).
const LISTENER_BUFFER: usize = 8 << 20;

/// Per-allocation I/O state the core keeps: the relay socket (in the relay loop's epoll set
/// while the handle lives) and where peer data for the client goes.
pub struct RelayHandle {
    socket: Arc<std::net::UdpSocket>,
    sink: Sink,
    epoll: Arc<Epoll>,
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        // The relay loop may still hold a copy of the socket for one round; it gets no new
        // readiness for it from here on.
        self.epoll.delete(self.socket.as_fd());
    }
}

impl std::fmt::Debug for RelayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayHandle").finish_non_exhaustive()
    }
}

/// Where relayed data for a client goes.
#[derive(Clone)]
enum Sink {
    /// Out of the UDP listener to this client address.
    Udp(SocketAddr),
    /// Into the outbox of the client's TCP/TLS connection.
    Stream(Arc<stream::Outbox>),
}

/// The core as the server instantiates it.
type TurnCore = Core<RelayHandle, std::net::UdpSocket>;

struct Shared {
    core: Mutex<TurnCore>,
    /// The UDP listener: answers and relayed data for UDP clients leave through it.
    udp: Arc<UdpSocket>,
    /// The relay sockets of every allocation, read by the relay loop.
    epoll: Arc<Epoll>,
    relay_ip: IpAddr,
    ports: RangeInclusive<u16>,
    cursor: AtomicU32,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    connections: AtomicUsize,
    max_connections: usize,
    connections_per_ip: Mutex<HashMap<IpAddr, usize>>,
    max_connections_per_ip: usize,
    unallocated_timeout: Duration,
    logs: LogLimiter,
}

impl Shared {
    fn core(&self) -> MutexGuard<'_, TurnCore> {
        // A panic while holding the lock cannot leave the core half-updated in a way that
        // matters more than stopping the relay would.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running TURN server.
pub struct TurnServer {
    udp_addr: SocketAddr,
    tcp_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    relay_ip: IpAddr,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    shared: Arc<Shared>,
}

impl TurnServer {
    /// Validates `config`, binds the UDP and TCP listeners on `config.listen` (and TLS on
    /// `config.tls_listen` when `tls` is given) and starts serving until `shutdown` is
    /// cancelled. `config.enabled` is the caller's to check.
    pub async fn start(
        config: TurnConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
        shutdown: CancellationToken,
    ) -> Result<TurnServer, TurnError> {
        let cfg = &config;
        cfg.validate(tls.is_some())?;
        let allow = cfg.allow_cidrs()?;
        let advertised = cfg
            .public_ip
            .unwrap_or_else(|| derive_public_ip(cfg.listen.ip()));
        let relay_ip = if !cfg.listen.ip().is_unspecified()
            && cfg.listen.ip().is_ipv4() == advertised.is_ipv4()
        {
            cfg.listen.ip()
        } else if advertised.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        };
        let core_cfg = CoreConfig {
            realm: cfg.realm.clone(),
            secret: cfg.secret.clone(),
            max_allocations: cfg.max_allocations,
            max_allocations_per_user: cfg.max_allocations_per_user,
            max_allocations_per_class: cfg.max_allocations_per_class,
            max_allocations_per_ip: cfg.max_allocations_per_ip,
            max_credential_ahead_secs: cfg
                .max_credential_lifetime_secs
                .saturating_add(super::CREDENTIAL_CLOCK_SKEW_SECS),
            default_lifetime: Duration::from_secs(cfg.default_lifetime_secs),
            max_lifetime: Duration::from_secs(cfg.max_lifetime_secs),
            bandwidth_bytes_per_sec: cfg.bandwidth_limit_kbps.saturating_mul(1000) / 8,
            advertised: vec![advertised],
            relay_ports: cfg.relay_port_min..=cfg.relay_port_max,
            filter: PeerFilter::new(allow, vec![advertised])
                .with_exact(cfg.allow_peer_addrs.clone()),
            ..CoreConfig::default()
        };

        let udp_std = udp_socket(cfg.listen, LISTENER_BUFFER)
            .map_err(|e| TurnError::bind("UDP", cfg.listen, e))?;
        let udp = Arc::new(
            UdpSocket::from_std(udp_std).map_err(|e| TurnError::bind("UDP", cfg.listen, e))?,
        );
        let udp_addr = udp
            .local_addr()
            .map_err(|e| TurnError::bind("UDP", cfg.listen, e))?;
        // TCP on the same port as UDP (the usual 3478 for both; with port 0, the port the kernel
        // gave UDP).
        let tcp_bind = udp_addr;
        let tcp = tcp_listener(tcp_bind).map_err(|e| TurnError::bind("TCP", tcp_bind, e))?;
        let tcp_addr = tcp
            .local_addr()
            .map_err(|e| TurnError::bind("TCP", tcp_bind, e))?;
        let tls_listener = match (cfg.tls_listen, tls) {
            (Some(addr), Some(tls)) => Some((
                tcp_listener(addr).map_err(|e| TurnError::bind("TLS", addr, e))?,
                tokio_rustls::TlsAcceptor::from(tls),
            )),
            _ => None,
        };
        let tls_addr = match &tls_listener {
            Some((l, _)) => Some(
                l.local_addr()
                    .map_err(|e| TurnError::bind("TLS", cfg.tls_listen.expect("set"), e))?,
            ),
            None => None,
        };

        let mut nonce_key = [0u8; 32];
        rand::fill(&mut nonce_key);
        let span = (cfg.relay_port_max - cfg.relay_port_min) as u32 + 1;
        let tracker = TaskTracker::new();
        let epoll = Arc::new(Epoll::new().map_err(TurnError::Poll)?);
        let shared = Arc::new(Shared {
            core: Mutex::new(Core::new(core_cfg, nonce_key)),
            udp: udp.clone(),
            epoll,
            relay_ip,
            ports: cfg.relay_port_min..=cfg.relay_port_max,
            cursor: AtomicU32::new(rand::random::<u32>() % span),
            tracker: tracker.clone(),
            shutdown: shutdown.clone(),
            connections: AtomicUsize::new(0),
            max_connections: cfg.max_connections,
            connections_per_ip: Mutex::new(HashMap::new()),
            max_connections_per_ip: cfg.max_connections_per_ip,
            unallocated_timeout: Duration::from_secs(cfg.unallocated_connection_timeout_secs),
            logs: LogLimiter::new(Duration::from_secs(10)),
        });
        shared.core().set_local_addresses(interface_addresses());
        metrics::describe();
        let relays = batch_io::watch(shared.epoll.clone()).map_err(TurnError::Poll)?;
        tracker.spawn(udp::relay_loop(shared.clone(), relays, udp.clone()));
        tracker.spawn(udp::udp_loop(shared.clone(), udp, udp_addr));
        tracker.spawn(stream::tcp_accept_loop(shared.clone(), tcp, None));
        if let Some((l, acceptor)) = tls_listener {
            tracker.spawn(stream::tcp_accept_loop(shared.clone(), l, Some(acceptor)));
        }
        tracker.spawn(ticker::ticker(shared.clone()));
        tracker.close();
        tracing::info!(%udp_addr, %tcp_addr, ?tls_addr, relay = %advertised, "TURN server listening");
        Ok(TurnServer {
            udp_addr,
            tcp_addr,
            tls_addr,
            relay_ip: advertised,
            tracker,
            shutdown,
            shared,
        })
    }

    /// The server's counters so far.
    pub fn stats(&self) -> Stats {
        self.shared.core().stats().clone()
    }

    /// The bound UDP listener address.
    pub fn local_udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }
    /// The bound TCP listener address.
    pub fn local_tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }
    /// The bound TLS listener address, if TLS is on.
    pub fn local_tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }
    /// The relay address advertised in XOR-RELAYED-ADDRESS.
    pub fn relay_ip(&self) -> IpAddr {
        self.relay_ip
    }

    /// Resolves once the shutdown token is cancelled and every task has stopped.
    pub async fn wait(self) {
        self.shutdown.cancelled().await;
        self.tracker.wait().await;
    }
}
