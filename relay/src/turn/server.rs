//! The tokio I/O layer around the sans-IO [`Core`]: sockets, tasks, timers, metrics.
//!
//! - one task reads the UDP listener, draining up to a batch of datagrams per wake-up;
//! - one task per allocation reads its relay socket;
//! - one reader and one writer task per TCP/TLS connection (bounded queue to the writer);
//! - a one-second ticker expires state and exports metrics.
//!
//! Every packet takes the core's mutex once for a few hash/vec look-ups and releases it before
//! any system call; packets are framed in place in per-task buffers, so relaying allocates
//! nothing on UDP.

use super::core::{
    AllocId, ClientAction, Core, CoreConfig, Family, FiveTuple, Now, PortRequest, RelayBinder,
    Stats, Transport, PEER_HEADROOM, PEER_TAILROOM,
};
use super::filter::{Cidr, PeerFilter};
use super::{metrics, stun, TurnConfig, TurnError};
use crate::log_limit::LogLimiter;
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

/// Datagrams handled per readiness wake-up before yielding.
const BATCH: usize = 64;
/// Queued outgoing frames per TCP/TLS connection (beyond: relayed data is dropped).
const STREAM_QUEUE: usize = 512;
/// How often a TCP/TLS connection with an allocation checks that it still has one.
const ALLOCATION_CHECK: Duration = Duration::from_secs(60);
/// How often the interface addresses (the relay's own, for the peer filter) are read again.
const INTERFACE_REFRESH: Duration = Duration::from_secs(10);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Receive/send buffer asked for on the UDP listener (the kernel caps it at rmem_max).
const LISTENER_BUFFER: usize = 8 << 20;
const RELAY_BUFFER: usize = 1 << 20;

/// Per-allocation I/O state the core keeps: dropping it stops the relay task.
pub struct RelayHandle {
    socket: Arc<UdpSocket>,
    _stop: DropGuard,
}

impl std::fmt::Debug for RelayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayHandle").finish_non_exhaustive()
    }
}

/// Where relayed data for a client goes.
#[derive(Clone)]
enum Sink {
    Udp {
        socket: Arc<UdpSocket>,
        client: SocketAddr,
    },
    Stream(mpsc::Sender<Vec<u8>>),
}

struct Shared {
    core: Mutex<Core<RelayHandle, std::net::UdpSocket>>,
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
    fn core(&self) -> MutexGuard<'_, Core<RelayHandle, std::net::UdpSocket>> {
        // A panic while holding the lock cannot leave the core half-updated in a way that
        // matters more than stopping the relay would.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct IoBinder<'a> {
    shared: &'a Arc<Shared>,
    sink: &'a dyn Fn() -> Sink,
}

impl IoBinder<'_> {
    fn start(&self, id: AllocId, std: std::net::UdpSocket) -> io::Result<RelayHandle> {
        let shared = self.shared;
        let socket = Arc::new(UdpSocket::from_std(std)?);
        let stop = shared.shutdown.child_token();
        shared.tracker.spawn(relay_loop(
            shared.clone(),
            id,
            socket.clone(),
            (self.sink)(),
            stop.clone(),
        ));
        Ok(RelayHandle {
            socket,
            _stop: stop.drop_guard(),
        })
    }
}

impl RelayBinder for IoBinder<'_> {
    type Handle = RelayHandle;
    type Reserved = std::net::UdpSocket;

    fn bind(
        &mut self,
        id: AllocId,
        family: Family,
        request: PortRequest,
    ) -> io::Result<(u16, RelayHandle, Option<std::net::UdpSocket>)> {
        let shared = self.shared;
        let ip = match (family, shared.relay_ip) {
            (Family::V4, ip @ IpAddr::V4(_)) => ip,
            (Family::V6, ip @ IpAddr::V6(_)) => ip,
            (Family::V4, _) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            (Family::V6, _) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let (lo, hi) = (*shared.ports.start() as u32, *shared.ports.end() as u32);
        let span = hi - lo + 1;
        let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no free relay port");
        for _ in 0..span.min(128) {
            let mut port = lo + shared.cursor.fetch_add(1, Ordering::Relaxed) % span;
            if request != PortRequest::Any {
                port += port % 2;
            }
            let next = port + 1;
            if port > hi || (request == PortRequest::EvenReserveNext && next > hi) {
                continue;
            }
            let std = match udp_socket(SocketAddr::new(ip, port as u16), RELAY_BUFFER) {
                Ok(s) => s,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let reserved = if request == PortRequest::EvenReserveNext {
                match udp_socket(SocketAddr::new(ip, next as u16), RELAY_BUFFER) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        last = e;
                        continue;
                    }
                }
            } else {
                None
            };
            return Ok((port as u16, self.start(id, std)?, reserved));
        }
        Err(last)
    }

    fn bind_reserved(
        &mut self,
        id: AllocId,
        reserved: std::net::UdpSocket,
    ) -> io::Result<RelayHandle> {
        self.start(id, reserved)
    }
}

fn udp_socket(addr: SocketAddr, buffer: usize) -> io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = s.set_recv_buffer_size(buffer);
    let _ = s.set_send_buffer_size(buffer);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
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
        if cfg.secret.is_empty() {
            return Err(TurnError::Config(
                "the TURN secret is empty (set turn.secret or --turn-secret)".into(),
            ));
        }
        if cfg.relay_port_min > cfg.relay_port_max || cfg.relay_port_min == 0 {
            return Err(TurnError::Config(format!(
                "relay port range {}-{} is empty or starts at 0",
                cfg.relay_port_min, cfg.relay_port_max
            )));
        }
        if cfg.max_lifetime_secs == 0 || cfg.default_lifetime_secs == 0 {
            return Err(TurnError::Config(
                "allocation lifetimes must be at least one second".into(),
            ));
        }
        for (key, value) in [
            ("max_connections_per_ip", cfg.max_connections_per_ip as u64),
            (
                "unallocated_connection_timeout_secs",
                cfg.unallocated_connection_timeout_secs,
            ),
            (
                "max_credential_lifetime_secs",
                cfg.max_credential_lifetime_secs,
            ),
            (
                "max_allocations_per_class",
                cfg.max_allocations_per_class as u64,
            ),
            ("max_allocations_per_ip", cfg.max_allocations_per_ip as u64),
        ] {
            if value == 0 {
                return Err(TurnError::Config(format!("turn.{key} must be above 0")));
            }
        }
        if cfg.tls_listen.is_some() && tls.is_none() {
            return Err(TurnError::Config(
                "tls_listen is set but no TLS certificate was given".into(),
            ));
        }
        let allow = cfg
            .allow_peers
            .iter()
            .map(|s| s.parse::<Cidr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TurnError::Config(e.to_string()))?;
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
        let shared = Arc::new(Shared {
            core: Mutex::new(Core::new(core_cfg, nonce_key)),
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
        tracker.spawn(udp_loop(shared.clone(), udp, udp_addr));
        tracker.spawn(tcp_accept_loop(shared.clone(), tcp, None));
        if let Some((l, acceptor)) = tls_listener {
            tracker.spawn(tcp_accept_loop(shared.clone(), l, Some(acceptor)));
        }
        tracker.spawn(ticker(shared.clone()));
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

fn tcp_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}

/// The address of the interface that routes to the internet, found without sending anything.
fn derive_public_ip(listen: IpAddr) -> IpAddr {
    if !listen.is_unspecified() {
        return listen;
    }
    let probe = |bind: &str, target: &str| -> Option<IpAddr> {
        let s = std::net::UdpSocket::bind(bind).ok()?;
        s.connect(target).ok()?;
        let ip = s.local_addr().ok()?.ip();
        (!ip.is_unspecified()).then_some(ip)
    };
    let found = if listen.is_ipv4() {
        probe("0.0.0.0:0", "192.0.2.1:3478")
    } else {
        probe("[::]:0", "[2001:db8::1]:3478")
    };
    found.unwrap_or_else(|| {
        tracing::warn!(
            "cannot find a routable address; advertising 127.0.0.1 (set turn.public_ip)"
        );
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    })
}

/// The addresses of the host's interfaces (empty if they cannot be read).
fn interface_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we only read and then free with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr whose family says which struct it is.
            let family = unsafe { (*ifa.ifa_addr).sa_family } as i32;
            if family == libc::AF_INET {
                // SAFETY: the family is AF_INET, so this is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))));
            } else if family == libc::AF_INET6 {
                // SAFETY: the family is AF_INET6, so this is a sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out.sort();
    out.dedup();
    out
}

enum Act {
    None,
    Reply,
    Relay(Arc<UdpSocket>, SocketAddr, std::ops::Range<usize>),
}

fn act<H>(a: ClientAction<'_, H>, socket: impl Fn(&H) -> Arc<UdpSocket>) -> Act {
    match a {
        ClientAction::None => Act::None,
        ClientAction::Reply => Act::Reply,
        ClientAction::Relay {
            handle,
            peer,
            payload,
        } => Act::Relay(socket(handle), peer, payload),
    }
}

async fn send_udp(socket: &UdpSocket, data: &[u8], to: SocketAddr) {
    match socket.try_send_to(data, to) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            let _ = socket.send_to(data, to).await;
        }
        // ICMP errors from earlier sends (connection refused, unreachable): nothing to do.
        Err(_) => {}
    }
}

async fn udp_loop(shared: Arc<Shared>, socket: Arc<UdpSocket>, local: SocketAddr) {
    // Selecting on the token once (not per wake-up) keeps the hot loop free of its lock.
    let stop = shared.shutdown.clone();
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = udp_serve(&shared, &socket, local) => {}
    }
}

async fn udp_serve(shared: &Arc<Shared>, socket: &Arc<UdpSocket>, local: SocketAddr) {
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::with_capacity(1500);
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        for _ in 0..BATCH {
            let (len, from) = match socket.try_recv_from(&mut buf) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => continue,
            };
            let ft = FiveTuple {
                transport: Transport::Udp,
                client: from,
                server: local,
            };
            let sink = || Sink::Udp {
                socket: socket.clone(),
                client: from,
            };
            let a = {
                let mut core = shared.core();
                let mut binder = IoBinder {
                    shared,
                    sink: &sink,
                };
                let a = core.handle_client(&ft, &buf[..len], Now::system(), &mut out, &mut binder);
                act(a, |h| h.socket.clone())
            };
            match a {
                Act::None => {}
                Act::Reply => send_udp(socket, &out, from).await,
                Act::Relay(relay, peer, payload) => send_udp(&relay, &buf[payload], peer).await,
            }
        }
    }
}

async fn relay_loop(
    shared: Arc<Shared>,
    id: AllocId,
    socket: Arc<UdpSocket>,
    sink: Sink,
    stop: CancellationToken,
) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = relay_serve(&shared, id, &socket, &sink) => {}
    }
}

async fn relay_serve(shared: &Shared, id: AllocId, socket: &UdpSocket, sink: &Sink) {
    let mut buf = vec![0u8; PEER_HEADROOM + 65536 + PEER_TAILROOM + 1];
    let max = PEER_HEADROOM + 65535;
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        for _ in 0..BATCH {
            let (len, peer) = match socket.try_recv_from(&mut buf[PEER_HEADROOM..max]) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => continue,
            };
            let range = shared
                .core()
                .handle_peer(id, peer, &mut buf, len, Instant::now());
            let Some(range) = range else { continue };
            match sink {
                Sink::Udp { socket, client } => send_udp(socket, &buf[range], *client).await,
                Sink::Stream(tx) => {
                    // A full queue means the client cannot keep up: drop, as UDP would.
                    let _ = tx.try_send(buf[range].to_vec());
                }
            }
        }
    }
}

async fn tcp_accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let transport = if tls.is_some() {
        Transport::Tls
    } else {
        Transport::Tcp
    };
    let local = listener.local_addr().ok();
    loop {
        let (stream, client) = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    if let Some(suppressed) = shared.logs.check("turn-accept") {
                        tracing::warn!(error = %e, suppressed, "TURN accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Over a cap the connection is dropped, which closes it.
        if shared.connections.load(Ordering::Relaxed) >= shared.max_connections {
            if let Some(suppressed) = shared.logs.check("turn-max-connections") {
                tracing::warn!(
                    max = shared.max_connections,
                    suppressed,
                    "TURN TCP/TLS connection refused: the server holds its maximum"
                );
            }
            continue;
        }
        let Some(slot) = IpSlot::take(&shared, client.ip()) else {
            if let Some(suppressed) = shared.logs.check("turn-max-connections-per-ip") {
                tracing::warn!(
                    ip = %client.ip(),
                    max = shared.max_connections_per_ip,
                    suppressed,
                    "TURN TCP/TLS connection refused: this address holds its maximum"
                );
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let server = stream.local_addr().ok().or(local).expect("bound listener");
        let ft = FiveTuple {
            transport,
            client,
            server,
        };
        shared.connections.fetch_add(1, Ordering::Relaxed);
        let sh = shared.clone();
        let tls = tls.clone();
        shared.tracker.spawn(async move {
            let _slot = slot;
            let accepted = tokio::time::Instant::now();
            match tls {
                None => serve_stream(&sh, stream, ft, accepted).await,
                Some(acceptor) => {
                    let hs = tokio::select! {
                        _ = sh.shutdown.cancelled() => None,
                        r = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => r.ok().and_then(|r| r.ok()),
                    };
                    if let Some(s) = hs {
                        serve_stream(&sh, s, ft, accepted).await;
                    }
                }
            }
            sh.connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// One TCP/TLS connection's place in the per-IP count; released on drop.
struct IpSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl IpSlot {
    fn take(shared: &Arc<Shared>, ip: IpAddr) -> Option<IpSlot> {
        let mut map = shared
            .connections_per_ip
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= shared.max_connections_per_ip {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            shared: shared.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut map = self
            .shared
            .connections_per_ip
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

async fn serve_stream<S>(
    shared: &Arc<Shared>,
    stream: S,
    ft: FiveTuple,
    accepted: tokio::time::Instant,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, wr) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel::<Vec<u8>>(STREAM_QUEUE);
    tokio::select! {
        _ = shared.shutdown.cancelled() => {}
        _ = read_stream(shared, rd, &tx, ft, accepted + shared.unallocated_timeout) => {}
        _ = write_stream(wr, rx) => {}
    }
    let handle = shared.core().remove_five_tuple(&ft);
    drop(handle);
}

async fn write_stream<W: AsyncWrite + Unpin>(mut wr: W, mut rx: mpsc::Receiver<Vec<u8>>) {
    let mut batch = Vec::with_capacity(64 * 1024);
    while let Some(first) = rx.recv().await {
        batch.clear();
        batch.extend_from_slice(&first);
        while batch.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok(more) => batch.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if wr.write_all(&batch).await.is_err() || wr.flush().await.is_err() {
            return;
        }
    }
}

/// Reads frames until the connection ends. Without an allocation the connection lives until
/// `deadline` at most, however much it sends (a byte now and then must not hold a slot).
async fn read_stream<R: AsyncRead + Unpin>(
    shared: &Arc<Shared>,
    mut rd: R,
    tx: &mpsc::Sender<Vec<u8>>,
    ft: FiveTuple,
    deadline: tokio::time::Instant,
) {
    let mut allocated = false;
    let mut checked = tokio::time::Instant::now();
    // Largest frame: a 65535-byte STUN body plus header, so twice that always has room.
    let mut buf = vec![0u8; 2 * 65536 + 64];
    let mut out = Vec::with_capacity(1500);
    let mut filled = 0;
    let sink = || Sink::Stream(tx.clone());
    loop {
        let mut start = 0;
        while let Some(fr) = stun::framing(&buf[start..filled]) {
            let flen = match fr {
                stun::Framing::Stun(n) => n,
                stun::Framing::ChannelData(_, n) => 4 + stun::pad4(n),
                stun::Framing::Invalid => return,
            };
            if filled - start < flen {
                break;
            }
            let frame = &buf[start..start + flen];
            let a = {
                let mut core = shared.core();
                let mut binder = IoBinder {
                    shared,
                    sink: &sink,
                };
                let a = core.handle_client(&ft, frame, Now::system(), &mut out, &mut binder);
                act(a, |h| h.socket.clone())
            };
            match a {
                Act::None => {}
                Act::Reply => {
                    // Only requests create or delete allocations, and they are answered.
                    allocated = shared.core().allocation_of(&ft).is_some();
                    if tx.send(out.clone()).await.is_err() {
                        return;
                    }
                }
                Act::Relay(relay, peer, payload) => {
                    send_udp(&relay, &frame[payload], peer).await;
                }
            }
            start += flen;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if allocated && checked.elapsed() >= ALLOCATION_CHECK {
            // The allocation may have expired while the client kept sending.
            allocated = shared.core().allocation_of(&ft).is_some();
            checked = tokio::time::Instant::now();
        }
        let until = if allocated {
            tokio::time::Instant::now() + ALLOCATION_CHECK
        } else {
            deadline
        };
        let n = match tokio::time::timeout_at(until, rd.read(&mut buf[filled..])).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => n,
            Err(_) => {
                allocated = shared.core().allocation_of(&ft).is_some();
                checked = tokio::time::Instant::now();
                if !allocated && tokio::time::Instant::now() >= deadline {
                    return;
                }
                continue;
            }
        };
        filled += n;
    }
}

async fn ticker(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut prev = Stats::default();
    let mut interfaces_read = Instant::now();
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        if interfaces_read.elapsed() >= INTERFACE_REFRESH {
            // Outside the core's lock: reading the interfaces is a system call.
            let local = interface_addresses();
            shared.core().set_local_addresses(local);
            interfaces_read = Instant::now();
        }
        let (expired, stats, count) = {
            let mut core = shared.core();
            let expired = core.tick(Instant::now());
            (expired, core.stats().clone(), core.allocation_count())
        };
        drop(expired);
        // One line per interval at most, however many packets were refused.
        let refused = stats.denied_peers - prev.denied_peers;
        if refused > 0 {
            if let Some(suppressed) = shared.logs.check("turn-denied-peers") {
                tracing::info!(
                    refused,
                    suppressed,
                    "TURN refused peer addresses (internal or the relay's own host)"
                );
            }
        }
        let too_far = stats.auth_too_far_ahead - prev.auth_too_far_ahead;
        if too_far > 0 {
            if let Some(suppressed) = shared.logs.check("turn-credential-too-far") {
                tracing::warn!(
                    refused = too_far,
                    suppressed,
                    "TURN credentials refused: expiry further ahead than turn.max_credential_lifetime_secs"
                );
            }
        }
        metrics::publish(
            &prev,
            &stats,
            count,
            shared.connections.load(Ordering::Relaxed),
        );
        prev = stats;
    }
}
