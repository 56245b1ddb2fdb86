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

use super::filter::{PeerFilter, Verdict};
use super::stun::{self, attr, method, Class, Framing, Message, MessageWriter};
use crate::credentials;
use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::{Range, RangeInclusive};
use std::time::{Duration, Instant};

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

/// How long a reserved port waits for its Allocate (RFC 8656 §7.2: about 30 s).
const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Reservation<R> {
    reserved: R,
    port: u16,
    family: Family,
    expires: Instant,
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
    fn default() -> Self {
        CoreConfig {
            realm: "aula".into(),
            secret: String::new(),
            max_allocations: 10_000,
            max_allocations_per_user: 32,
            max_allocations_per_class: 3000,
            max_allocations_per_ip: 3000,
            max_credential_ahead_secs: 660,
            default_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
            permission_lifetime: Duration::from_secs(300),
            channel_lifetime: Duration::from_secs(600),
            nonce_lifetime_secs: 600,
            max_permissions_per_allocation: 64,
            max_channels_per_allocation: 64,
            bandwidth_bytes_per_sec: 0,
            advertised: vec![IpAddr::from([127, 0, 0, 1])],
            relay_ports: 49152..=65535,
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

#[derive(Debug)]
struct Permission {
    ip: IpAddr,
    expires: Instant,
    /// A [`Verdict::Restricted`] address: only live relay ports and exact allowances.
    restricted: bool,
}

#[derive(Debug)]
struct Channel {
    number: u16,
    peer: SocketAddr,
    expires: Instant,
}

#[derive(Debug)]
struct Allocation<H> {
    five_tuple: FiveTuple,
    handle: H,
    relayed: SocketAddr,
    family: Family,
    username: String,
    user: String,
    class: String,
    key: [u8; 16],
    created_tid: [u8; 12],
    expires: Instant,
    permissions: Vec<Permission>,
    channels: Vec<Channel>,
    tokens: u64,
    refilled: Instant,
    seq: u64,
}

struct Slot<H> {
    gen: u32,
    alloc: Option<Allocation<H>>,
}

/// The TURN server state machine; `H` is the per-allocation I/O handle, `R` a reserved port.
pub struct Core<H, R = ()> {
    cfg: CoreConfig,
    nonce_key: [u8; 32],
    slots: Vec<Slot<H>>,
    free: Vec<u32>,
    by_tuple: HashMap<FiveTuple, AllocId>,
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

/// Known comprehension-required attributes (anything else in a request is answered with 420).
fn known_attribute(t: u16) -> bool {
    matches!(
        t,
        attr::USERNAME
            | attr::MESSAGE_INTEGRITY
            | attr::REALM
            | attr::NONCE
            | attr::CHANNEL_NUMBER
            | attr::LIFETIME
            | attr::XOR_PEER_ADDRESS
            | attr::DATA
            | attr::REQUESTED_ADDRESS_FAMILY
            | attr::REQUESTED_TRANSPORT
            | attr::DONT_FRAGMENT
            | attr::XOR_MAPPED_ADDRESS
            | attr::PRIORITY
            | attr::USE_CANDIDATE
            | attr::ERROR_CODE
            | attr::EVEN_PORT
            | attr::RESERVATION_TOKEN
    )
}

/// The part of a REST username quotas count: the identity after `expiry:`.
fn quota_user(username: &str) -> &str {
    match username.split_once(':') {
        Some((_, id)) => id,
        None => username,
    }
}

/// The class of an identity `class/peer` (signaling mints these); an identity without `/` is
/// its own class.
fn quota_class(user: &str) -> &str {
    match user.split_once('/') {
        Some((class, _)) => class,
        None => user,
    }
}

/// Adds `delta` (±1) to a count, removing the entry at zero.
fn bump<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: K, up: bool) {
    use std::collections::hash_map::Entry;
    match map.entry(key) {
        Entry::Occupied(mut e) => {
            if up {
                *e.get_mut() += 1;
            } else if *e.get() <= 1 {
                e.remove();
            } else {
                *e.get_mut() -= 1;
            }
        }
        Entry::Vacant(e) => {
            if up {
                e.insert(1);
            }
        }
    }
}

/// Why data to a peer may not go.
enum Refusal {
    /// No live permission for the peer's address.
    NoPermission,
    /// A port of the relay's own host that holds no allocation.
    OwnHost,
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
    /// Live allocations.
    pub fn allocation_count(&self) -> usize {
        self.count
    }
    /// The allocation of a five-tuple, if any.
    pub fn allocation_of(&self, ft: &FiveTuple) -> Option<AllocId> {
        self.by_tuple.get(ft).copied()
    }
    /// The relayed address of an allocation.
    pub fn relayed_address(&self, id: AllocId) -> Option<SocketAddr> {
        self.get(id).map(|a| a.relayed)
    }

    fn get(&self, id: AllocId) -> Option<&Allocation<H>> {
        let s = self.slots.get(id.index as usize)?;
        if s.gen != id.gen {
            return None;
        }
        s.alloc.as_ref()
    }
    fn get_mut(&mut self, id: AllocId) -> Option<&mut Allocation<H>> {
        let s = self.slots.get_mut(id.index as usize)?;
        if s.gen != id.gen {
            return None;
        }
        s.alloc.as_mut()
    }

    /// Removes an allocation (e.g. its TCP connection closed); returns its handle.
    pub fn remove(&mut self, id: AllocId) -> Option<H> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.gen != id.gen {
            return None;
        }
        let a = slot.alloc.take()?;
        slot.gen = slot.gen.wrapping_add(1);
        self.free.push(id.index);
        self.by_tuple.remove(&a.five_tuple);
        bump(&mut self.per_user, a.user, false);
        bump(&mut self.per_class, a.class, false);
        bump(&mut self.per_ip, a.five_tuple.client.ip(), false);
        if let std::collections::hash_map::Entry::Occupied(mut e) =
            self.live_ports.entry(a.relayed.port())
        {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
        self.count -= 1;
        Some(a.handle)
    }

    /// Sets the addresses of the host's interfaces, which the peer filter treats as the relay's
    /// own (the I/O layer refreshes them, as interfaces come and go).
    pub fn set_local_addresses(&mut self, local: Vec<IpAddr>) {
        self.cfg.filter.set_local_addresses(local);
    }

    /// Removes the allocation of a five-tuple, if any.
    pub fn remove_five_tuple(&mut self, ft: &FiveTuple) -> Option<H> {
        let id = self.allocation_of(ft)?;
        self.remove(id)
    }

    /// Expires allocations, permissions and channels; returns the handles of removed
    /// allocations (drop them to close their sockets).
    pub fn tick(&mut self, now: Instant) -> Vec<H> {
        self.reservations.retain(|_, r| r.expires > now);
        let mut expired = Vec::new();
        for i in 0..self.slots.len() {
            let gen = self.slots[i].gen;
            let Some(a) = self.slots[i].alloc.as_mut() else {
                continue;
            };
            if a.expires <= now {
                expired.push(AllocId {
                    index: i as u32,
                    gen,
                });
                continue;
            }
            a.permissions.retain(|p| p.expires > now);
            a.channels.retain(|c| c.expires > now);
        }
        expired
            .into_iter()
            .filter_map(|id| self.remove(id))
            .collect()
    }

    // ---- nonces -------------------------------------------------------------------------

    fn nonce_mac(&self, issued: u32, client: IpAddr) -> [u8; 8] {
        let mut mac =
            <Hmac<Sha1> as KeyInit>::new_from_slice(&self.nonce_key).expect("any key length");
        mac.update(&issued.to_be_bytes());
        match client {
            IpAddr::V4(v4) => mac.update(&v4.octets()),
            IpAddr::V6(v6) => mac.update(&v6.octets()),
        }
        let tag = mac.finalize().into_bytes();
        tag[..8].try_into().expect("8 bytes")
    }

    /// A stateless nonce: issue time and a MAC over it and the client IP, in base64 (16
    /// characters, all allowed in a NONCE; hex would make every challenge 8 bytes larger).
    fn make_nonce(&self, now: u64, client: IpAddr) -> [u8; 16] {
        let issued = now as u32;
        let mut raw = [0u8; 12];
        raw[..4].copy_from_slice(&issued.to_be_bytes());
        raw[4..].copy_from_slice(&self.nonce_mac(issued, client));
        let mut out = [0u8; 16];
        let n = BASE64
            .encode_slice(raw, &mut out)
            .expect("12 bytes are 16 characters");
        debug_assert_eq!(n, 16);
        out
    }

    /// `Some(true)` fresh, `Some(false)` stale but genuine, `None` forged/garbled.
    fn check_nonce(&self, nonce: &[u8], now: u64, client: IpAddr) -> Option<bool> {
        if nonce.len() != 16 {
            return None;
        }
        let mut raw = [0u8; 12];
        if BASE64.decode_slice(nonce, &mut raw).ok()? != 12 {
            return None;
        }
        let issued = u32::from_be_bytes(raw[..4].try_into().expect("4"));
        if raw[4..] != self.nonce_mac(issued, client) {
            return None;
        }
        let age = (now as u32).wrapping_sub(issued);
        Some(age as u64 <= self.cfg.nonce_lifetime_secs)
    }

    // ---- client side --------------------------------------------------------------------

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

    fn take_tokens(a: &mut Allocation<H>, rate: u64, n: usize, now: Instant) -> bool {
        if rate == 0 {
            return true;
        }
        let burst = rate.max(16 * 1024);
        let elapsed = now.saturating_duration_since(a.refilled);
        if !elapsed.is_zero() {
            let add = (elapsed.as_nanos().min(u64::MAX as u128) as u64 / 1000).saturating_mul(rate)
                / 1_000_000;
            if add > 0 {
                a.tokens = (a.tokens.saturating_add(add)).min(burst);
                a.refilled = now;
            }
        }
        if a.tokens >= n as u64 {
            a.tokens -= n as u64;
            true
        } else {
            false
        }
    }

    fn channel_data(
        &mut self,
        ft: &FiveTuple,
        number: u16,
        payload: Range<usize>,
        now: Instant,
    ) -> ClientAction<'_, H> {
        let Some(&id) = self.by_tuple.get(ft) else {
            return ClientAction::None;
        };
        let Some(a) = self.slots[id.index as usize].alloc.as_ref() else {
            return ClientAction::None;
        };
        let Some(ch) = a
            .channels
            .iter()
            .find(|c| c.number == number && c.expires > now)
        else {
            self.stats.no_permission_drops += 1;
            return ClientAction::None;
        };
        let peer = ch.peer;
        self.relay_to_peer(id, peer, payload, now)
    }

    /// The common end of ChannelData and a Send indication: the peer must be permitted and the
    /// allocation within its bandwidth, then `payload` (a range of the client's packet) is relayed.
    fn relay_to_peer(
        &mut self,
        id: AllocId,
        peer: SocketAddr,
        payload: Range<usize>,
        now: Instant,
    ) -> ClientAction<'_, H> {
        let rate = self.cfg.bandwidth_bytes_per_sec;
        let Some(a) = self.slots[id.index as usize].alloc.as_mut() else {
            return ClientAction::None;
        };
        if let Err(why) = permitted(
            &a.permissions,
            peer,
            &self.cfg.filter,
            &self.live_ports,
            now,
        ) {
            count_refusal(&mut self.stats, why);
            return ClientAction::None;
        }
        if !Self::take_tokens(a, rate, payload.len(), now) {
            self.stats.bandwidth_drops += 1;
            return ClientAction::None;
        }
        self.stats.packets_client_to_peer += 1;
        self.stats.bytes_client_to_peer += payload.len() as u64;
        ClientAction::Relay {
            handle: &a.handle,
            peer,
            payload,
        }
    }

    fn send_indication(
        &mut self,
        ft: &FiveTuple,
        msg: &Message<'_>,
        now: Instant,
    ) -> ClientAction<'_, H> {
        let Some(&id) = self.by_tuple.get(ft) else {
            return ClientAction::None;
        };
        let (Some(peer), Some(data)) =
            (msg.xor_address(attr::XOR_PEER_ADDRESS), msg.get(attr::DATA))
        else {
            return ClientAction::None;
        };
        let start = data.as_ptr() as usize - msg.bytes().as_ptr() as usize;
        self.relay_to_peer(id, peer, start..start + data.len(), now)
    }

    fn request<B: RelayBinder<Handle = H, Reserved = R>>(
        &mut self,
        ft: &FiveTuple,
        msg: &Message<'_>,
        now: Now,
        out: &mut Vec<u8>,
        binder: &mut B,
    ) {
        let tid = *msg.transaction_id();
        let m = msg.method();
        let fp = msg.has_fingerprint();
        if m == method::BINDING {
            let mut w = MessageWriter::new(out, m, Class::Success, &tid);
            w.xor_address(attr::XOR_MAPPED_ADDRESS, &ft.client);
            if fp {
                w.fingerprint();
            }
            return;
        }
        if !matches!(
            m,
            method::ALLOCATE | method::REFRESH | method::CREATE_PERMISSION | method::CHANNEL_BIND
        ) {
            simple_error(out, m, &tid, 400, fp);
            return;
        }
        if let Some(t) = msg.unknown_required(known_attribute) {
            let mut w = MessageWriter::new(out, m, Class::Error, &tid);
            w.error_code_only(420).unknown_attributes(t);
            if fp {
                w.fingerprint();
            }
            return;
        }
        // Long-term credentials (RFC 8489 §9.2.4).
        let Some(key) = self.authenticate(ft, msg, now, out) else {
            return;
        };
        let id = self.by_tuple.get(ft).copied();
        match m {
            method::ALLOCATE => self.allocate(ft, msg, id, key, now, out, binder),
            method::REFRESH => self.refresh(msg, id, key, now, out),
            method::CREATE_PERMISSION => self.create_permission(msg, id, key, now, out),
            method::CHANNEL_BIND => self.channel_bind(msg, id, key, now, out),
            _ => unreachable!("checked above"),
        }
    }

    /// Checks credentials; on failure writes the error response and returns `None`.
    fn authenticate(
        &mut self,
        ft: &FiveTuple,
        msg: &Message<'_>,
        now: Now,
        out: &mut Vec<u8>,
    ) -> Option<[u8; 16]> {
        let tid = *msg.transaction_id();
        let m = msg.method();
        let challenge = |core: &Self, out: &mut Vec<u8>, code: u16| {
            let nonce = core.make_nonce(now.unix, ft.client.ip());
            // Unauthenticated: no reason phrase, to keep the answer small (amplification).
            let mut w = MessageWriter::new(out, m, Class::Error, &tid);
            w.error_code_only(code)
                .attr(attr::REALM, core.cfg.realm.as_bytes())
                .attr(attr::NONCE, &nonce);
            if msg.has_fingerprint() {
                w.fingerprint();
            }
        };
        let (Some(username), Some(_realm), Some(nonce)) =
            (msg.username(), msg.realm(), msg.nonce())
        else {
            if msg.has_integrity() {
                simple_error(out, m, &tid, 400, msg.has_fingerprint());
            } else {
                // The normal first round trip of every client: not counted as a failure.
                self.stats.auth_missing += 1;
                challenge(self, out, 401);
            }
            return None;
        };
        if !msg.has_integrity() {
            simple_error(out, m, &tid, 400, msg.has_fingerprint());
            return None;
        }
        match self.check_nonce(nonce, now.unix, ft.client.ip()) {
            Some(true) => {}
            Some(false) => {
                self.stats.auth_stale_nonce += 1;
                challenge(self, out, 438);
                return None;
            }
            None => {
                self.stats.auth_stale_nonce += 1;
                challenge(self, out, 438);
                return None;
            }
        }
        let Some(expiry) = credentials::username_expiry(username) else {
            self.stats.auth_bad_username += 1;
            challenge(self, out, 401);
            return None;
        };
        if expiry < now.unix {
            self.stats.auth_expired += 1;
            challenge(self, out, 401);
            return None;
        }
        if expiry > now.unix.saturating_add(self.cfg.max_credential_ahead_secs) {
            // Minted for longer than this relay accepts: a credential must not outlive the
            // membership it was minted for.
            self.stats.auth_too_far_ahead += 1;
            challenge(self, out, 401);
            return None;
        }
        let existing = self
            .by_tuple
            .get(ft)
            .and_then(|&id| self.get(id))
            .map(|a| (a.username == username, a.key));
        let key = match existing {
            Some((true, key)) => key,
            _ => {
                let password = credentials::password_for(&self.cfg.secret, username);
                stun::long_term_key(username, &self.cfg.realm, &password)
            }
        };
        if !msg.verify_integrity(&key) {
            self.stats.auth_bad_integrity += 1;
            challenge(self, out, 401);
            return None;
        }
        if let Some((false, _)) = existing {
            self.stats.auth_wrong_credentials += 1;
            let mut w = MessageWriter::new(out, m, Class::Error, &tid);
            w.error(441).integrity(&key);
            if msg.has_fingerprint() {
                w.fingerprint();
            }
            return None;
        }
        Some(key)
    }

    #[allow(clippy::too_many_arguments)]
    fn allocate<B: RelayBinder<Handle = H, Reserved = R>>(
        &mut self,
        ft: &FiveTuple,
        msg: &Message<'_>,
        id: Option<AllocId>,
        key: [u8; 16],
        now: Now,
        out: &mut Vec<u8>,
        binder: &mut B,
    ) {
        let tid = *msg.transaction_id();
        let fp = msg.has_fingerprint();
        let err = |out: &mut Vec<u8>, code: u16| Answer::to(msg, key).error(out, code);
        if let Some(id) = id {
            let a = self.get(id).expect("indexed allocation exists");
            if a.created_tid == tid {
                // A retransmission: answer as before.
                let (relayed, remaining) =
                    (a.relayed, a.expires.saturating_duration_since(now.mono));
                self.allocate_success(ft, &tid, relayed, remaining, None, &key, fp, out);
            } else {
                err(out, 437);
            }
            return;
        }
        match msg.get(attr::REQUESTED_TRANSPORT) {
            None => return err(out, 400),
            Some(v) if v.len() != 4 => return err(out, 400),
            Some(v) if v[0] != 17 => return err(out, 442),
            Some(_) => {}
        }
        let family = match msg.get(attr::REQUESTED_ADDRESS_FAMILY) {
            None => Family::V4,
            Some([1, ..]) => Family::V4,
            Some([2, ..]) => Family::V6,
            Some(_) => return err(out, 440),
        };
        let Some(advertised) = self
            .cfg
            .advertised
            .iter()
            .copied()
            .find(|ip| Family::of(*ip) == family)
        else {
            return err(out, 440);
        };
        let username = msg.username().expect("authenticated").to_string();
        let user = quota_user(&username).to_string();
        let class = quota_class(&user).to_string();
        let held = |m: &HashMap<String, usize>, k: &str| m.get(k).copied().unwrap_or(0);
        if self.count >= self.cfg.max_allocations
            || held(&self.per_user, &user) >= self.cfg.max_allocations_per_user
            || held(&self.per_class, &class) >= self.cfg.max_allocations_per_class
            || self.per_ip.get(&ft.client.ip()).copied().unwrap_or(0)
                >= self.cfg.max_allocations_per_ip
        {
            self.stats.quota_rejections += 1;
            return err(out, 486);
        }
        let even = msg.get(attr::EVEN_PORT);
        let token = msg.get(attr::RESERVATION_TOKEN);
        let reservation = match (even, token) {
            (Some(_), Some(_)) => return err(out, 400),
            (None, Some(t)) => {
                let Ok(t) = <[u8; 8]>::try_from(t) else {
                    return err(out, 400);
                };
                match self.reservations.remove(&t) {
                    Some(r) if r.expires > now.mono && r.family == family => Some(r),
                    _ => return err(out, 508),
                }
            }
            _ => None,
        };
        let port_request = match even {
            None => PortRequest::Any,
            Some([b, ..]) if b & 0x80 != 0 => {
                if self.reservations.len() >= self.cfg.max_allocations {
                    return err(out, 508);
                }
                PortRequest::EvenReserveNext
            }
            Some(_) => PortRequest::Even,
        };
        let lifetime = self.lifetime(msg);
        // Reserve a slot, then bind.
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    gen: 0,
                    alloc: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let new_id = AllocId {
            index,
            gen: self.slots[index as usize].gen,
        };
        let bound = match reservation {
            Some(r) => binder
                .bind_reserved(new_id, r.reserved)
                .map(|h| (r.port, h, None)),
            None => binder.bind(new_id, family, port_request),
        };
        let (port, handle, reserved) = match bound {
            Ok(x) => x,
            Err(_) => {
                self.free.push(index);
                return err(out, 508);
            }
        };
        let new_token = reserved.map(|reserved| {
            let t = self.reservation_token();
            self.reservations.insert(
                t,
                Reservation {
                    reserved,
                    port: port.wrapping_add(1),
                    family,
                    expires: now.mono + RESERVATION_LIFETIME,
                },
            );
            t
        });
        let relayed = SocketAddr::new(advertised, port);
        self.slots[index as usize].alloc = Some(Allocation {
            five_tuple: *ft,
            handle,
            relayed,
            family,
            username,
            user: user.clone(),
            class: class.clone(),
            key,
            created_tid: tid,
            expires: now.mono + lifetime,
            permissions: Vec::new(),
            channels: Vec::new(),
            tokens: self.cfg.bandwidth_bytes_per_sec.max(16 * 1024),
            refilled: now.mono,
            seq: 0,
        });
        self.by_tuple.insert(*ft, new_id);
        bump(&mut self.per_user, user, true);
        bump(&mut self.per_class, class, true);
        bump(&mut self.per_ip, ft.client.ip(), true);
        *self.live_ports.entry(port).or_insert(0) += 1;
        self.count += 1;
        self.stats.allocations_total += 1;
        self.allocate_success(ft, &tid, relayed, lifetime, new_token, &key, fp, out);
    }

    /// An unguessable reservation token.
    fn reservation_token(&mut self) -> [u8; 8] {
        self.reservation_seq += 1;
        let mut mac =
            <Hmac<Sha1> as KeyInit>::new_from_slice(&self.nonce_key).expect("any key length");
        mac.update(b"reservation");
        mac.update(&self.reservation_seq.to_be_bytes());
        mac.finalize().into_bytes()[..8]
            .try_into()
            .expect("8 bytes")
    }

    #[allow(clippy::too_many_arguments)]
    fn allocate_success(
        &self,
        ft: &FiveTuple,
        tid: &[u8; 12],
        relayed: SocketAddr,
        lifetime: Duration,
        token: Option<[u8; 8]>,
        key: &[u8; 16],
        fp: bool,
        out: &mut Vec<u8>,
    ) {
        let mut w = MessageWriter::new(out, method::ALLOCATE, Class::Success, tid);
        w.xor_address(attr::XOR_RELAYED_ADDRESS, &relayed)
            .u32_attr(attr::LIFETIME, lifetime.as_secs() as u32)
            .xor_address(attr::XOR_MAPPED_ADDRESS, &ft.client);
        if let Some(t) = token {
            w.attr(attr::RESERVATION_TOKEN, &t);
        }
        w.attr(attr::SOFTWARE, self.cfg.software.as_bytes())
            .integrity(key);
        if fp {
            w.fingerprint();
        }
    }

    fn lifetime(&self, msg: &Message<'_>) -> Duration {
        let max = self.cfg.max_lifetime;
        match msg.u32_attr(attr::LIFETIME) {
            Some(s) => Duration::from_secs(s as u64).min(max),
            None => self.cfg.default_lifetime.min(max),
        }
    }

    fn refresh(
        &mut self,
        msg: &Message<'_>,
        id: Option<AllocId>,
        key: [u8; 16],
        now: Now,
        out: &mut Vec<u8>,
    ) {
        let answer = Answer::to(msg, key);
        let Some(id) = id else {
            return answer.error(out, 437);
        };
        let lifetime = self.lifetime(msg);
        let family = self.get(id).expect("exists").family;
        let requested = match msg.get(attr::REQUESTED_ADDRESS_FAMILY) {
            Some([1, ..]) => Some(Family::V4),
            Some([2, ..]) => Some(Family::V6),
            Some(_) => return answer.error(out, 440),
            None => None,
        };
        if requested.is_some_and(|f| f != family) {
            return answer.error(out, 443);
        }
        if lifetime.is_zero() {
            drop(self.remove(id));
        } else if let Some(a) = self.get_mut(id) {
            a.expires = now.mono + lifetime;
        }
        answer.success(out, |w| {
            w.u32_attr(attr::LIFETIME, lifetime.as_secs() as u32);
        });
    }

    /// Checks a peer for a new permission or channel: `Ok(restricted)` or the error code.
    fn check_peer(
        &mut self,
        family: Family,
        peer: SocketAddr,
        need_port: bool,
    ) -> Result<bool, u16> {
        if Family::of(peer.ip()) != family {
            return Err(443);
        }
        match self.cfg.filter.verdict(peer.ip()) {
            Verdict::Allow => Ok(false),
            Verdict::Restricted
                if !need_port
                    || self
                        .cfg
                        .filter
                        .restricted_port_allowed(peer, |p| self.live_ports.contains_key(&p)) =>
            {
                Ok(true)
            }
            _ => {
                self.stats.denied_peers += 1;
                Err(403)
            }
        }
    }

    fn create_permission(
        &mut self,
        msg: &Message<'_>,
        id: Option<AllocId>,
        key: [u8; 16],
        now: Now,
        out: &mut Vec<u8>,
    ) {
        let answer = Answer::to(msg, key);
        let Some(id) = id else {
            return answer.error(out, 437);
        };
        let family = self.get(id).expect("exists").family;
        let mut peers: [(IpAddr, bool); 8] = [(IpAddr::from([0, 0, 0, 0]), false); 8];
        let mut n = 0;
        for p in msg.xor_peer_addresses() {
            let Some(p) = p else {
                return answer.error(out, 400);
            };
            if n == peers.len() {
                return answer.error(out, 508);
            }
            match self.check_peer(family, p, false) {
                Ok(restricted) => peers[n] = (p.ip(), restricted),
                Err(code) => return answer.error(out, code),
            }
            n += 1;
        }
        if n == 0 {
            return answer.error(out, 400);
        }
        let max = self.cfg.max_permissions_per_allocation;
        let expires = now.mono + self.cfg.permission_lifetime;
        let a = self.get_mut(id).expect("exists");
        let new = peers[..n]
            .iter()
            .filter(|(ip, _)| {
                !a.permissions
                    .iter()
                    .any(|p| p.ip == *ip && p.expires > now.mono)
            })
            .count();
        let live = a
            .permissions
            .iter()
            .filter(|p| p.expires > now.mono)
            .count();
        if live + new > max {
            return answer.error(out, 508);
        }
        for &(ip, restricted) in &peers[..n] {
            install_permission(&mut a.permissions, ip, restricted, expires, now.mono);
        }
        answer.success(out, |_| {});
    }

    fn channel_bind(
        &mut self,
        msg: &Message<'_>,
        id: Option<AllocId>,
        key: [u8; 16],
        now: Now,
        out: &mut Vec<u8>,
    ) {
        let answer = Answer::to(msg, key);
        let Some(id) = id else {
            return answer.error(out, 437);
        };
        let number = match msg.u32_attr(attr::CHANNEL_NUMBER) {
            Some(v) => (v >> 16) as u16,
            None => return answer.error(out, 400),
        };
        if !(0x4000..=0x7FFF).contains(&number) {
            return answer.error(out, 400);
        }
        let Some(peer) = msg.xor_address(attr::XOR_PEER_ADDRESS) else {
            return answer.error(out, 400);
        };
        let family = self.get(id).expect("exists").family;
        let restricted = match self.check_peer(family, peer, true) {
            Ok(restricted) => restricted,
            Err(code) => return answer.error(out, code),
        };
        let max_ch = self.cfg.max_channels_per_allocation;
        let max_perm = self.cfg.max_permissions_per_allocation;
        let ch_expires = now.mono + self.cfg.channel_lifetime;
        let perm_expires = now.mono + self.cfg.permission_lifetime;
        let a = self.get_mut(id).expect("exists");
        let by_number = a.channels.iter().position(|c| c.number == number);
        let by_peer = a.channels.iter().position(|c| c.peer == peer);
        match (by_number, by_peer) {
            (Some(i), Some(j)) if i == j => a.channels[i].expires = ch_expires,
            (None, None) => {
                a.channels.retain(|c| c.expires > now.mono);
                let has_perm = a
                    .permissions
                    .iter()
                    .any(|p| p.ip == peer.ip() && p.expires > now.mono);
                let live_perms = a
                    .permissions
                    .iter()
                    .filter(|p| p.expires > now.mono)
                    .count();
                if a.channels.len() >= max_ch || (!has_perm && live_perms >= max_perm) {
                    return answer.error(out, 508);
                }
                a.channels.push(Channel {
                    number,
                    peer,
                    expires: ch_expires,
                });
            }
            _ => return answer.error(out, 400),
        }
        install_permission(
            &mut a.permissions,
            peer.ip(),
            restricted,
            perm_expires,
            now.mono,
        );
        answer.success(out, |_| {});
    }

    // ---- peer side ----------------------------------------------------------------------

    /// Handles a datagram from `peer` received on allocation `id`'s relay socket.
    ///
    /// The payload is `buf[PEER_HEADROOM..PEER_HEADROOM + len]`, and `buf` has at least
    /// [`PEER_TAILROOM`] bytes after it. On success the framed packet for the client
    /// (ChannelData or a Data indication) is written in place around the payload and its range
    /// returned; `None` means drop.
    pub fn handle_peer(
        &mut self,
        id: AllocId,
        peer: SocketAddr,
        buf: &mut [u8],
        len: usize,
        now: Instant,
    ) -> Option<Range<usize>> {
        let rate = self.cfg.bandwidth_bytes_per_sec;
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.gen != id.gen {
            return None;
        }
        let a = slot.alloc.as_mut()?;
        if let Err(why) = permitted(
            &a.permissions,
            peer,
            &self.cfg.filter,
            &self.live_ports,
            now,
        ) {
            count_refusal(&mut self.stats, why);
            return None;
        }
        if !Self::take_tokens(a, rate, len, now) {
            self.stats.bandwidth_drops += 1;
            return None;
        }
        let end = PEER_HEADROOM + len;
        let padded = PEER_HEADROOM + stun::pad4(len);
        if buf.len() < padded {
            return None;
        }
        self.stats.packets_peer_to_client += 1;
        self.stats.bytes_peer_to_client += len as u64;
        if let Some(ch) = a
            .channels
            .iter()
            .find(|c| c.peer == peer && c.expires > now)
        {
            let start = PEER_HEADROOM - 4;
            stun::write_channel_header(&mut buf[start..], ch.number, len);
            if a.five_tuple.transport.is_stream() {
                buf[end..padded].fill(0);
                return Some(start..padded);
            }
            return Some(start..end);
        }
        // Data indication: header, XOR-PEER-ADDRESS, DATA.
        let xl = stun::xor_address_attr_len(&peer);
        let start = PEER_HEADROOM - 4 - xl - stun::HEADER_LEN;
        a.seq = a.seq.wrapping_add(1);
        let tid: [u8; 12] = indication_tid(a.seq, len);
        let body = (xl + 4 + stun::pad4(len)) as u16;
        let h = &mut buf[start..];
        h[0..2].copy_from_slice(&stun::message_type(method::DATA, Class::Indication).to_be_bytes());
        h[2..4].copy_from_slice(&body.to_be_bytes());
        h[4..8].copy_from_slice(&stun::MAGIC_COOKIE.to_be_bytes());
        h[8..20].copy_from_slice(&tid);
        stun::write_xor_address(&mut h[20..20 + xl], attr::XOR_PEER_ADDRESS, &peer, &tid);
        let d = 20 + xl;
        h[d..d + 2].copy_from_slice(&attr::DATA.to_be_bytes());
        h[d + 2..d + 4].copy_from_slice(&(len as u16).to_be_bytes());
        buf[end..padded].fill(0);
        Some(start..padded)
    }
}

/// A transaction id for an indication; it need not be unpredictable, only varied.
fn indication_tid(seq: u64, len: usize) -> [u8; 12] {
    let mut x = (seq ^ (len as u64).rotate_left(17)).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut t = [0u8; 12];
    for chunk in t.chunks_mut(4) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&(x as u32).to_be_bytes());
    }
    t
}

/// Whether data may go to (or come from) `peer`: a live permission for its address, and for a
/// restricted address (the relay's own host, exact allowances) an allowed port.
fn permitted(
    perms: &[Permission],
    peer: SocketAddr,
    filter: &PeerFilter,
    live_ports: &HashMap<u16, u32>,
    now: Instant,
) -> Result<(), Refusal> {
    let Some(p) = perms.iter().find(|p| p.ip == peer.ip() && p.expires > now) else {
        return Err(Refusal::NoPermission);
    };
    if p.restricted && !filter.restricted_port_allowed(peer, |port| live_ports.contains_key(&port))
    {
        return Err(Refusal::OwnHost);
    }
    Ok(())
}

fn count_refusal(stats: &mut Stats, why: Refusal) {
    match why {
        Refusal::NoPermission => stats.no_permission_drops += 1,
        Refusal::OwnHost => stats.denied_peers += 1,
    }
}

fn install_permission(
    perms: &mut Vec<Permission>,
    ip: IpAddr,
    restricted: bool,
    expires: Instant,
    now: Instant,
) {
    if let Some(p) = perms.iter_mut().find(|p| p.ip == ip) {
        p.expires = expires;
        p.restricted = restricted;
    } else {
        perms.retain(|p| p.expires > now);
        perms.push(Permission {
            ip,
            expires,
            restricted,
        });
    }
}

/// An unauthenticated error response: no reason phrase, to keep it small (amplification).
fn simple_error(out: &mut Vec<u8>, m: u16, tid: &[u8; 12], code: u16, fp: bool) {
    out.clear();
    let mut w = MessageWriter::new(out, m, Class::Error, tid);
    w.error_code_only(code);
    if fp {
        w.fingerprint();
    }
}

/// The answer to one authenticated request: its method and transaction id, the key of its
/// MESSAGE-INTEGRITY, and whether it carried a FINGERPRINT (the answer then carries one too).
#[derive(Clone, Copy)]
struct Answer {
    method: u16,
    tid: [u8; 12],
    key: [u8; 16],
    fingerprint: bool,
}

impl Answer {
    fn to(msg: &Message<'_>, key: [u8; 16]) -> Answer {
        Answer {
            method: msg.method(),
            tid: *msg.transaction_id(),
            key,
            fingerprint: msg.has_fingerprint(),
        }
    }

    /// An error response with `code`, replacing whatever `out` holds.
    fn error(&self, out: &mut Vec<u8>, code: u16) {
        out.clear();
        let mut w = MessageWriter::new(out, self.method, Class::Error, &self.tid);
        w.error(code).integrity(&self.key);
        if self.fingerprint {
            w.fingerprint();
        }
    }

    /// A success response with the attributes `attrs` writes, then integrity and fingerprint.
    fn success(&self, out: &mut Vec<u8>, attrs: impl FnOnce(&mut MessageWriter<'_>)) {
        let mut w = MessageWriter::new(out, self.method, Class::Success, &self.tid);
        attrs(&mut w);
        w.integrity(&self.key);
        if self.fingerprint {
            w.fingerprint();
        }
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
