//! Aula's TURN server (RFC 8656 / RFC 5766, plus STUN Binding) over UDP, TCP and TLS.
//!
//! # Design
//!
//! The server is split in two:
//!
//! - [`core`]: a sans-IO state machine (plain types, time passed in, no sockets) that owns
//!   allocations, permissions, channel bindings, the stateless nonce and TURN REST credential
//!   check, quotas, lifetimes, the peer-address filter ([`filter`]) and the per-allocation
//!   bandwidth cap. It is unit- and property-tested without a network.
//! - [`server`]: a thin tokio layer that owns the sockets, feeds every packet to the core under
//!   one short mutex and sends what the core says.
//!
//! Messages are encoded by a small codec of our own ([`stun`]), which lets the relay path frame
//! packets in place with no per-packet allocation. Why a server and a codec of our own rather
//! than a crate: `docs/decisions/0002-own-turn-server.md`.

pub mod core;
pub mod filter;
pub mod metrics;
pub(crate) mod server;
pub mod stun;
mod validate;

pub use server::TurnServer;

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Configuration of the TURN server (config keys under `[turn]`, flags `--turn-*`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct TurnConfig {
    /// Run the TURN server at all. Default: `true`.
    pub enabled: bool,
    /// Address for TURN over UDP and TCP. Default: `0.0.0.0:3478`.
    pub listen: SocketAddr,
    /// Address for TURN over TLS (`turns:`), e.g. `0.0.0.0:5349` or `0.0.0.0:443`; needs a TLS
    /// certificate. Default: none (no TLS listener).
    pub tls_listen: Option<SocketAddr>,
    /// The relay address advertised to clients (XOR-RELAYED-ADDRESS), e.g. the public IP in
    /// front of a NAT. Default: none, meaning the `listen` IP if it is specific, otherwise the
    /// address of the interface that routes to the internet (falling back to 127.0.0.1).
    pub public_ip: Option<IpAddr>,
    /// The TURN REST API shared secret (coturn's `static-auth-secret`). Default: empty, which the
    /// `aula` binary replaces with a generated one; the server refuses to start with it empty.
    pub secret: String,
    /// The authentication realm. Default: `"aula"`.
    pub realm: String,
    /// CIDRs of peers allowed although the secure default refuses them (loopback, private,
    /// link-local, ...), e.g. `"10.0.0.0/8"`. They never open the relay's own host (advertised
    /// address, interface addresses, loopback): there only live allocations' ports and
    /// `allow_peer_addrs` are reachable. Default: empty.
    pub allow_peers: Vec<String>,
    /// Exact `ip:port` peers allowed although their address is internal or the relay's own,
    /// e.g. Aula's SFU on the same host (`aula serve` adds it itself). Only that port of that
    /// address is reachable. Default: empty.
    pub allow_peer_addrs: Vec<SocketAddr>,
    /// Most allocations the server holds at once (486 beyond). Default: `10000`.
    pub max_allocations: usize,
    /// Most allocations one identity (the part of the username after `expiry:`) holds at once
    /// (486 beyond). A browser makes one allocation per TURN URL per peer connection. Default: `32`.
    pub max_allocations_per_user: usize,
    /// Most allocations one class holds at once (the class of an identity `class/peer`, as
    /// signaling mints them; 486 beyond). Every join mints a new identity, so this, not the
    /// per-identity quota, bounds one class. Default: `3000` (a class of 1000, the default
    /// `limits.max_class_size`, with three TURN URLs each).
    pub max_allocations_per_class: usize,
    /// Most allocations one client IP address holds at once (486 beyond); sized for a whole
    /// school behind one NAT address. Default: `3000`.
    pub max_allocations_per_ip: usize,
    /// Longest lifetime of a TURN credential, in seconds: the relay refuses (401) a credential
    /// whose expiry lies further ahead than this plus 60 s of clock skew. Signaling mints them
    /// with this lifetime and renews them. Default: `600`.
    pub max_credential_lifetime_secs: u64,
    /// Allocation lifetime when the client asks for none, in seconds. Default: `600`.
    pub default_lifetime_secs: u64,
    /// Longest allocation lifetime granted by an Allocate or Refresh, in seconds; clients refresh
    /// before it ends. Default: `3600`.
    pub max_lifetime_secs: u64,
    /// Cap per allocation in kilobits per second, both directions together; packets beyond it
    /// are dropped. `0` means unlimited. Default: `20000` (20 Mbit/s, several HD video streams).
    pub bandwidth_limit_kbps: u64,
    /// Lowest UDP port for relayed addresses. Default: `49152`.
    pub relay_port_min: u16,
    /// Highest UDP port for relayed addresses. Default: `65535`.
    pub relay_port_max: u16,
    /// Most TCP and TLS client connections at once. Default: `4096`.
    pub max_connections: usize,
    /// Most TCP and TLS client connections from one IP address at once (sized for a school
    /// behind one NAT address). Default: `1000`.
    pub max_connections_per_ip: usize,
    /// A TCP or TLS connection that holds no allocation this many seconds after it was accepted
    /// is closed, however much it sends. Default: `30`.
    pub unallocated_connection_timeout_secs: u64,
}

/// Clock skew allowed between the host that mints TURN credentials and the relay, in seconds.
pub const CREDENTIAL_CLOCK_SKEW_SECS: u64 = 60;

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig {
            enabled: true,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 3478),
            tls_listen: None,
            public_ip: None,
            secret: String::new(),
            realm: "aula".into(),
            allow_peers: Vec::new(),
            allow_peer_addrs: Vec::new(),
            max_allocations: 10_000,
            max_allocations_per_user: 32,
            max_allocations_per_class: 3000,
            max_allocations_per_ip: 3000,
            max_credential_lifetime_secs: 600,
            default_lifetime_secs: 600,
            max_lifetime_secs: 3600,
            bandwidth_limit_kbps: 20_000,
            relay_port_min: 49152,
            relay_port_max: 65535,
            max_connections: 4096,
            max_connections_per_ip: 1000,
            unallocated_connection_timeout_secs: 30,
        }
    }
}

/// Why the TURN server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// A configuration value is unusable; `key` is its setting, e.g. `turn.relay_port_min`.
    #[error("invalid value for {key}: {message}")]
    InvalidValue { key: &'static str, message: String },
    /// A listening socket cannot be bound. `reason` says the cause once, in words (with a hint
    /// for the usual ones); `io` is the error it came from, not repeated as a source.
    #[error("cannot bind TURN {proto} socket {addr}: {reason}")]
    Bind {
        proto: &'static str,
        addr: SocketAddr,
        reason: String,
        io: std::io::Error,
    },
    /// The epoll set that watches the relay sockets cannot be made (e.g. out of descriptors).
    #[error("cannot set up TURN relay polling: {0}")]
    Poll(std::io::Error),
}

impl TurnError {
    pub(crate) fn invalid(key: &'static str, message: impl Into<String>) -> TurnError {
        TurnError::InvalidValue {
            key,
            message: message.into(),
        }
    }

    pub(crate) fn bind(proto: &'static str, addr: SocketAddr, source: std::io::Error) -> TurnError {
        let reason = match source.kind() {
            std::io::ErrorKind::AddrInUse => "address in use".to_string(),
            std::io::ErrorKind::AddrNotAvailable => "address not available on this host".into(),
            std::io::ErrorKind::PermissionDenied => {
                "permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)".into()
            }
            _ => source.to_string(),
        };
        TurnError::Bind {
            proto,
            addr,
            reason,
            io: source,
        }
    }
}
