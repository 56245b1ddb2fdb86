//! The sans-IO TURN allocation core: plain data, time passed in, no sockets.
//!
//! The I/O layer feeds it every packet a client sends ([`Core::handle_client`]) and every packet a
//! peer sends to a relayed address ([`Core::handle_peer`]), and calls [`Core::tick`] about once a
//! second. The core answers with what to send where; relay sockets are created through the
//! [`RelayBinder`] the caller passes in and stored as an opaque handle `H`, so tests drive the
//! core with fake handles and no network.
//!
//! It owns allocations, permissions, channel bindings, the stateless nonce and long-term
//! credential check (TURN REST API usernames), quotas, lifetimes, the peer-address filter and a
//! per-allocation token bucket. Every collection is bounded: allocations by `max_allocations`,
//! users by allocations, permissions and channels by per-allocation limits.
//!
//! # Driving it
//!
//! A minimal blocking I/O layer over UDP (the real one, [`server`](super::server), does the
//! same with tokio tasks, TCP and TLS): build the core from a config, feed it each datagram
//! with the current time, and send what it answers.
//!
//! ```no_run
//! use aula_relay::turn::core::{
//!     AllocId, ClientAction, Core, CoreConfig, Family, FiveTuple, Now, PortRequest, RelayBinder,
//!     Transport, PEER_HEADROOM, PEER_TAILROOM,
//! };
//! use std::net::{SocketAddr, UdpSocket};
//! use std::time::Instant;
//!
//! /// Relay sockets for the core: here plain std sockets on any free port.
//! struct Binder;
//!
//! impl RelayBinder for Binder {
//!     type Handle = UdpSocket;
//!     type Reserved = UdpSocket;
//!     fn bind(
//!         &mut self,
//!         _id: AllocId,
//!         _family: Family,
//!         _port: PortRequest,
//!     ) -> std::io::Result<(u16, UdpSocket, Option<UdpSocket>)> {
//!         let socket = UdpSocket::bind("0.0.0.0:0")?;
//!         Ok((socket.local_addr()?.port(), socket, None))
//!     }
//!     fn bind_reserved(&mut self, _id: AllocId, reserved: UdpSocket) -> std::io::Result<UdpSocket> {
//!         Ok(reserved)
//!     }
//! }
//!
//! type TurnCore = Core<UdpSocket, UdpSocket>;
//!
//! /// Client datagrams: answers go back to the client, relayed data out of the relay socket.
//! fn serve_clients(core: &mut TurnCore, listener: &UdpSocket) -> std::io::Result<()> {
//!     let server = listener.local_addr()?;
//!     let (mut buf, mut out) = (vec![0u8; 65536], Vec::new());
//!     loop {
//!         let (len, client) = listener.recv_from(&mut buf)?;
//!         let ft = FiveTuple { transport: Transport::Udp, client, server };
//!         match core.handle_client(&ft, &buf[..len], Now::system(), &mut out, &mut Binder) {
//!             ClientAction::None => {}
//!             ClientAction::Reply => drop(listener.send_to(&out, client)),
//!             ClientAction::Relay { handle, peer, payload } => {
//!                 drop(handle.send_to(&buf[payload], peer))
//!             }
//!         }
//!     }
//! }
//!
//! /// One peer datagram on allocation `id`'s relay socket, framed in place for its client.
//! fn from_peer(
//!     core: &mut TurnCore,
//!     id: AllocId,
//!     relay: &UdpSocket,
//!     listener: &UdpSocket,
//!     client: SocketAddr,
//! ) -> std::io::Result<()> {
//!     let mut buf = vec![0u8; PEER_HEADROOM + 65535 + PEER_TAILROOM];
//!     let (len, peer) = relay.recv_from(&mut buf[PEER_HEADROOM..PEER_HEADROOM + 65535])?;
//!     if let Some(frame) = core.handle_peer(id, peer, &mut buf, len, Instant::now()) {
//!         listener.send_to(&buf[frame], client)?;
//!     }
//!     Ok(())
//! }
//!
//! let mut core = TurnCore::new(
//!     CoreConfig { secret: "the TURN REST secret".into(), ..CoreConfig::default() },
//!     [7; 32], // the nonce key: random in a real server
//! );
//! // About once a second, elsewhere: drop the handles of expired allocations.
//! drop(core.tick(Instant::now()));
//! serve_clients(&mut core, &UdpSocket::bind("0.0.0.0:3478")?)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The core's parts, one file each:
//! - `table.rs`: the allocation table (slots, quotas, lifetimes, permissions, reservations);
//! - `auth.rs`: stateless nonces and the long-term credential check;
//! - `requests.rs`: Allocate, Refresh, CreatePermission and ChannelBind (and Binding);
//! - `relay.rs`: the hot path, ChannelData and Send indications to peers and peer data back.

mod auth;
mod relay;
mod requests;
mod table;

use super::filter::PeerFilter;
use super::stun::{self, method, Class, Framing, Message};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::{Range, RangeInclusive};
use std::time::{Duration, Instant};
use table::{Reservation, Slot};

/// Client transport of a five-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// Stream transports pad ChannelData to four bytes.
    pub fn is_stream(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

/// Identifies a client's connection to the server (RFC 8656 "5-tuple").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    pub transport: Transport,
    pub client: SocketAddr,
    pub server: SocketAddr,
}

/// The current time, both monotonic (lifetimes, rate limits) and wall clock (credential expiry,
/// nonces).
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub mono: Instant,
    pub unix: u64,
}

impl Now {
    pub fn system() -> Now {
        Now {
            mono: Instant::now(),
            unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }
}

/// Address family of a relayed transport address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// A slot in the allocation table (index + generation, so stale ids never match).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AllocId {
    index: u32,
    gen: u32,
}

impl AllocId {
    /// The id as one number (e.g. an epoll token); [`AllocId::from_bits`] reverses it.
    pub fn to_bits(self) -> u64 {
        (u64::from(self.gen) << 32) | u64::from(self.index)
    }
    /// The id [`AllocId::to_bits`] made `bits` from. Any number is accepted: one that names no
    /// live allocation simply matches none.
    pub fn from_bits(bits: u64) -> AllocId {
        AllocId {
            index: bits as u32,
            gen: (bits >> 32) as u32,
        }
    }
}

/// Which relay port an Allocate asks for (RFC 8656 EVEN-PORT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRequest {
    Any,
    Even,
    /// An even port, and hold the next one for a later Allocate with RESERVATION-TOKEN.
    EvenReserveNext,
}

/// Creates relay sockets for the core.
pub trait RelayBinder {
    /// What the core keeps per allocation (e.g. the socket and a guard that stops its task).
    type Handle;
    /// A port held for a later allocation (the bound but idle socket).
    type Reserved;
    /// Binds a relay socket of `family` for allocation `id`; returns its port, and for
    /// [`PortRequest::EvenReserveNext`] the reservation of `port + 1`.
    fn bind(
        &mut self,
        id: AllocId,
        family: Family,
        port: PortRequest,
    ) -> std::io::Result<(u16, Self::Handle, Option<Self::Reserved>)>;
    /// Turns a reservation into the relay socket of allocation `id`.
    fn bind_reserved(
        &mut self,
        id: AllocId,
        reserved: Self::Reserved,
    ) -> std::io::Result<Self::Handle>;
}

/// Limits and identity of a server, in the core's terms.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub realm: String,
    pub secret: String,
    pub max_allocations: usize,
    pub max_allocations_per_user: usize,
    /// Most allocations of one class (the part of the identity before `/`).
    pub max_allocations_per_class: usize,
    /// Most allocations of one client IP address.
    pub max_allocations_per_ip: usize,
    /// How far ahead a credential's expiry may lie (its longest lifetime plus clock skew).
    pub max_credential_ahead_secs: u64,
    pub default_lifetime: Duration,
    pub max_lifetime: Duration,
    pub permission_lifetime: Duration,
    pub channel_lifetime: Duration,
    pub nonce_lifetime_secs: u64,
    pub max_permissions_per_allocation: usize,
    pub max_channels_per_allocation: usize,
    /// Per-allocation cap in bytes per second, both directions together; 0 = unlimited.
    pub bandwidth_bytes_per_sec: u64,
    /// Advertised relay addresses, at most one per family.
    pub advertised: Vec<IpAddr>,
    pub relay_ports: RangeInclusive<u16>,
    pub filter: PeerFilter,
    pub software: String,
}

impl Default for CoreConfig {
    /// The [`TurnConfig`](super::TurnConfig) defaults, so each is set in one place; the core's
    /// own timers are set here. Bandwidth is unlimited and the advertised address loopback: the
    /// server passes the configured ones.
    fn default() -> Self {
        let turn = super::TurnConfig::default();
        CoreConfig {
            realm: turn.realm,
            secret: turn.secret,
            max_allocations: turn.max_allocations,
            max_allocations_per_user: turn.max_allocations_per_user,
            max_allocations_per_class: turn.max_allocations_per_class,
            max_allocations_per_ip: turn.max_allocations_per_ip,
            max_credential_ahead_secs: turn.max_credential_lifetime_secs
                + super::CREDENTIAL_CLOCK_SKEW_SECS,
            default_lifetime: Duration::from_secs(turn.default_lifetime_secs),
            max_lifetime: Duration::from_secs(turn.max_lifetime_secs),
            permission_lifetime: Duration::from_secs(300),
            channel_lifetime: Duration::from_secs(600),
            nonce_lifetime_secs: 600,
            max_permissions_per_allocation: 64,
            max_channels_per_allocation: 64,
            bandwidth_bytes_per_sec: 0,
            advertised: vec![IpAddr::from([127, 0, 0, 1])],
            relay_ports: turn.relay_port_min..=turn.relay_port_max,
            filter: PeerFilter::default(),
            software: concat!("aula-relay ", env!("CARGO_PKG_VERSION")).into(),
        }
    }
}

/// Counters the I/O layer publishes as metrics (monotonic; it exports differences).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub allocations_total: u64,
    pub bytes_client_to_peer: u64,
    pub bytes_peer_to_client: u64,
    pub packets_client_to_peer: u64,
    pub packets_peer_to_client: u64,
    pub auth_missing: u64,
    pub auth_expired: u64,
    /// Credentials whose expiry lies further ahead than the configured maximum.
    pub auth_too_far_ahead: u64,
    pub auth_bad_integrity: u64,
    pub auth_bad_username: u64,
    pub auth_stale_nonce: u64,
    pub auth_wrong_credentials: u64,
    /// Permissions and channels refused (403), and data dropped because it went to a port of
    /// the relay's own host that holds no allocation.
    pub denied_peers: u64,
    pub quota_rejections: u64,
    pub bandwidth_drops: u64,
    pub no_permission_drops: u64,
}

/// What to do with a packet a client sent.
#[derive(Debug)]
pub enum ClientAction<'c, H> {
    /// Nothing to send.
    None,
    /// Send `out` (a STUN response) back to the client.
    Reply,
    /// Send `pkt[payload]` from the allocation's relay socket to `peer`.
    Relay {
        handle: &'c H,
        peer: SocketAddr,
        payload: Range<usize>,
    },
}

/// Headroom [`Core::handle_peer`] needs before the payload: the largest Data indication prefix
/// (20 header + 24 XOR-PEER-ADDRESS v6 + 4 DATA header).
pub const PEER_HEADROOM: usize = 48;
/// Room [`Core::handle_peer`] needs after the payload (padding).
pub const PEER_TAILROOM: usize = 3;

/// The TURN server state machine; `H` is the per-allocation I/O handle, `R` a reserved port.
pub struct Core<H, R = ()> {
    cfg: CoreConfig,
    nonce_key: [u8; 32],
    slots: Vec<Slot<H>>,
    free: Vec<u32>,
    by_tuple: HashMap<FiveTuple, AllocId>,
    /// Allocations by relayed (advertised) address, for relay-to-relay data.
    by_relayed: HashMap<SocketAddr, AllocId>,
    per_user: HashMap<String, usize>,
    per_class: HashMap<String, usize>,
    per_ip: HashMap<IpAddr, usize>,
    /// Relay ports that hold a live allocation (a count, as both families may use a port).
    live_ports: HashMap<u16, u32>,
    count: usize,
    stats: Stats,
    reservations: HashMap<[u8; 8], Reservation<R>>,
    reservation_seq: u64,
}

impl<H, R> Core<H, R> {
    /// A core with `cfg` and a random nonce key from `nonce_key`.
    pub fn new(cfg: CoreConfig, nonce_key: [u8; 32]) -> Core<H, R> {
        Core {
            cfg,
            nonce_key,
            slots: Vec::new(),
            free: Vec::new(),
            by_tuple: HashMap::new(),
            by_relayed: HashMap::new(),
            per_user: HashMap::new(),
            per_class: HashMap::new(),
            per_ip: HashMap::new(),
            live_ports: HashMap::new(),
            count: 0,
            stats: Stats::default(),
            reservations: HashMap::new(),
            reservation_seq: 0,
        }
    }

    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Sets the addresses of the host's interfaces, which the peer filter treats as the relay's
    /// own (the I/O layer refreshes them, as interfaces come and go).
    pub fn set_local_addresses(&mut self, local: Vec<IpAddr>) {
        self.cfg.filter.set_local_addresses(local);
    }

    /// Handles one packet (a STUN message or ChannelData) from a client. A STUN response, if
    /// any, is written to `out` (cleared first).
    pub fn handle_client<'c, B: RelayBinder<Handle = H, Reserved = R>>(
        &'c mut self,
        ft: &FiveTuple,
        pkt: &[u8],
        now: Now,
        out: &mut Vec<u8>,
        binder: &mut B,
    ) -> ClientAction<'c, H> {
        out.clear();
        match stun::framing(pkt) {
            Some(Framing::ChannelData(number, len)) => {
                if pkt.len() < 4 + len {
                    return ClientAction::None;
                }
                self.channel_data(ft, number, 4..4 + len, now.mono)
            }
            Some(Framing::Stun(_)) => {
                let Ok(msg) = Message::parse(pkt) else {
                    return ClientAction::None;
                };
                match (msg.class(), msg.method()) {
                    (Class::Indication, method::SEND) => self.send_indication(ft, &msg, now.mono),
                    (Class::Request, _) => {
                        self.request(ft, &msg, now, out, binder);
                        if out.is_empty() {
                            ClientAction::None
                        } else {
                            ClientAction::Reply
                        }
                    }
                    _ => ClientAction::None,
                }
            }
            _ => ClientAction::None,
        }
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
