//! Fuzzing of the STUN/TURN message and ChannelData parsers and the core behind them, on the
//! stable toolchain: proptest mutates valid messages (bit flips, byte writes, truncation,
//! insertion, duplicated ranges, forged length fields) and also builds authenticated messages
//! from random attributes (so the request handlers, not only the integrity check, see garbage).
//! Every input goes through `stun::framing`, `Message::parse` and its accessors, and
//! `Core::handle_client` / `Core::handle_peer` of a core holding live allocations; a panic, or a
//! count that breaks its bound, fails the test.
//!
//! `cargo test` runs a bounded number of cases (seconds); `AULA_FUZZ_CASES=N` runs N per
//! property (the figures of a long run are in docs/security.md).

use aula_relay::credentials;
use aula_relay::turn::core::{
    AllocId, ClientAction, Core, CoreConfig, Family, FiveTuple, Now, PortRequest, RelayBinder,
    Transport, PEER_HEADROOM, PEER_TAILROOM,
};
use aula_relay::turn::filter::PeerFilter;
use aula_relay::turn::stun::{self, attr, method, Class, Message, MessageWriter};
use aula_testkit::mutate::{byte_mutation, ByteMutation, BYTE_MUTATION_KINDS};
use proptest::prelude::*;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

const SECRET: &str = "fuzz-secret";

fn cases() -> u32 {
    std::env::var("AULA_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

struct Binder(u16);

impl RelayBinder for Binder {
    type Handle = u16;
    type Reserved = u16;
    fn bind(
        &mut self,
        _id: AllocId,
        _f: Family,
        port: PortRequest,
    ) -> std::io::Result<(u16, u16, Option<u16>)> {
        self.0 = self.0.wrapping_add(2).max(50000);
        let reserved = (port == PortRequest::EvenReserveNext).then_some(self.0 + 1);
        Ok((self.0, self.0, reserved))
    }
    fn bind_reserved(&mut self, _id: AllocId, r: u16) -> std::io::Result<u16> {
        Ok(r)
    }
}

fn now() -> Now {
    Now {
        mono: Instant::now(),
        unix: 1_000_000,
    }
}

fn five_tuple(port: u16, transport: Transport) -> FiveTuple {
    FiveTuple {
        transport,
        client: SocketAddr::from(([192, 0, 2, 10], port)),
        server: SocketAddr::from(([198, 51, 100, 1], 3478)),
    }
}

/// A core with two allocations (UDP and TCP clients), permissions and a channel to a peer, and
/// the authenticated-message parts of the UDP client.
struct World {
    core: Core<u16, u16>,
    binder: Binder,
    udp: FiveTuple,
    tcp: FiveTuple,
    username: String,
    nonce: Vec<u8>,
    key: [u8; 16],
    ids: Vec<AllocId>,
}

const PEER: ([u8; 4], u16) = ([192, 0, 2, 99], 7000);

impl World {
    fn new() -> World {
        let cfg = CoreConfig {
            secret: SECRET.into(),
            max_allocations: 8,
            filter: PeerFilter::new(vec![], vec![IpAddr::from([198, 51, 100, 1])]),
            advertised: vec![IpAddr::from([198, 51, 100, 1])],
            bandwidth_bytes_per_sec: 1 << 20,
            ..CoreConfig::default()
        };
        let creds = credentials::mint(SECRET, "class/fuzzer", 1_000_000, 600);
        let mut w = World {
            core: Core::new(cfg, [3; 32]),
            binder: Binder(50000),
            udp: five_tuple(4000, Transport::Udp),
            tcp: five_tuple(4001, Transport::Tcp),
            key: stun::long_term_key(&creds.username, "aula", &creds.password),
            username: creds.username,
            nonce: Vec::new(),
            ids: Vec::new(),
        };
        let r = w.send(w.udp, &w.request(method::ALLOCATE, &[], false));
        w.nonce = Message::parse(&r).unwrap().nonce().unwrap().to_vec();
        let rt = [(attr::REQUESTED_TRANSPORT, vec![17, 0, 0, 0])];
        for ft in [w.udp, w.tcp] {
            let r = w.send(ft, &w.request(method::ALLOCATE, &rt, true));
            assert_eq!(Message::parse(&r).unwrap().error_code(), None);
            w.ids.push(w.core.allocation_of(&ft).unwrap());
        }
        let peer = SocketAddr::from(PEER);
        let bind = w.signed(method::CHANNEL_BIND, true, |m| {
            m.u32_attr(attr::CHANNEL_NUMBER, 0x4001 << 16)
                .xor_address(attr::XOR_PEER_ADDRESS, &peer);
        });
        let r = w.send(w.udp, &bind);
        assert_eq!(Message::parse(&r).unwrap().error_code(), None);
        w
    }

    fn signed(&self, m: u16, auth: bool, add: impl FnOnce(&mut MessageWriter<'_>)) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(&mut buf, m, Class::Request, &[5; 12]);
        add(&mut w);
        if auth {
            w.attr(attr::USERNAME, self.username.as_bytes())
                .attr(attr::REALM, b"aula")
                .attr(attr::NONCE, &self.nonce)
                .integrity(&self.key);
        }
        buf
    }

    fn request(&self, m: u16, attrs: &[(u16, Vec<u8>)], auth: bool) -> Vec<u8> {
        self.signed(m, auth, |w| {
            for (t, v) in attrs {
                w.attr(*t, v);
            }
        })
    }

    fn send(&mut self, ft: FiveTuple, pkt: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self
            .core
            .handle_client(&ft, pkt, now(), &mut out, &mut self.binder);
        out
    }

    /// Feeds `pkt` everywhere a byte string can go; checks the bounds that must hold.
    fn feed(&mut self, pkt: &[u8]) {
        let _ = stun::framing(pkt);
        if let Ok(m) = Message::parse(pkt) {
            let _ = (m.method(), m.class(), m.username(), m.realm(), m.nonce());
            let _ = (m.error_code(), m.u32_attr(attr::LIFETIME));
            let _ = m.xor_address(attr::XOR_PEER_ADDRESS);
            let _ = m.xor_peer_addresses().count();
            let _ = m.unknown_required(|_| false);
            let _ = m.verify_integrity(&self.key);
            let _ = m.attributes().count();
        }
        for ft in [self.udp, self.tcp] {
            let mut out = Vec::new();
            let action = self
                .core
                .handle_client(&ft, pkt, now(), &mut out, &mut self.binder);
            if let ClientAction::Relay { payload, .. } = action {
                assert!(payload.end <= pkt.len(), "payload range inside the packet");
            }
            if !out.is_empty() {
                // Whatever we answer parses.
                Message::parse(&out).expect("our own answers parse");
            }
        }
        // The same bytes arriving from a peer.
        let mut buf = vec![0u8; PEER_HEADROOM + pkt.len() + PEER_TAILROOM];
        buf[PEER_HEADROOM..PEER_HEADROOM + pkt.len()].copy_from_slice(pkt);
        for &id in &self.ids {
            if let Some(r) = self.core.handle_peer(
                id,
                SocketAddr::from(PEER),
                &mut buf,
                pkt.len(),
                Instant::now(),
            ) {
                assert!(r.end <= buf.len());
            }
        }
        assert!(self.core.allocation_count() <= self.core.config().max_allocations);
    }
}

/// Valid messages of every kind the server handles, as seeds for mutation.
fn seeds(w: &World) -> Vec<Vec<u8>> {
    let peer = SocketAddr::from(PEER);
    let v6: SocketAddr = "[2001:db8::9]:9".parse().unwrap();
    let mut seeds = vec![
        w.request(method::BINDING, &[], false),
        w.request(
            method::ALLOCATE,
            &[(attr::REQUESTED_TRANSPORT, vec![17, 0, 0, 0])],
            true,
        ),
        w.request(
            method::REFRESH,
            &[(attr::LIFETIME, vec![0, 0, 2, 88])],
            true,
        ),
        w.signed(method::CREATE_PERMISSION, true, |m| {
            m.xor_address(attr::XOR_PEER_ADDRESS, &peer)
                .xor_address(attr::XOR_PEER_ADDRESS, &v6);
        }),
        w.signed(method::CHANNEL_BIND, true, |m| {
            m.u32_attr(attr::CHANNEL_NUMBER, 0x4001 << 16)
                .xor_address(attr::XOR_PEER_ADDRESS, &peer);
        }),
    ];
    let mut ind = Vec::new();
    {
        let mut m = MessageWriter::new(&mut ind, method::SEND, Class::Indication, &[6; 12]);
        m.xor_address(attr::XOR_PEER_ADDRESS, &peer)
            .attr(attr::DATA, b"hello peer")
            .fingerprint();
    }
    seeds.push(ind);
    let mut cd = vec![0x40, 0x01, 0, 5];
    cd.extend_from_slice(b"media\0\0\0");
    seeds.push(cd);
    seeds
}

#[derive(Debug, Clone)]
enum Mutation {
    Bytes(ByteMutation),
    /// Overwrite a 16-bit length at an attribute-ish position (message or attribute length).
    Length(usize, u16),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        BYTE_MUTATION_KINDS => byte_mutation().prop_map(Mutation::Bytes),
        1 => (any::<usize>(), any::<u16>()).prop_map(|(p, v)| Mutation::Length(p, v)),
    ]
}

fn apply(pkt: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::Bytes(b) => b.apply(pkt),
        Mutation::Length(p, v) if pkt.len() >= 4 => {
            // Message length (offset 2) or an attribute length (offsets 22, 26, ...).
            let at = if p % 3 == 0 { 2 } else { 22 + 4 * (p % 16) };
            if at + 2 <= pkt.len() {
                pkt[at..at + 2].copy_from_slice(&v.to_be_bytes());
            }
        }
        Mutation::Length(..) => {}
    }
}

fn attribute_type() -> impl Strategy<Value = u16> {
    prop_oneof![
        prop::sample::select(vec![
            attr::USERNAME,
            attr::CHANNEL_NUMBER,
            attr::LIFETIME,
            attr::XOR_PEER_ADDRESS,
            attr::DATA,
            attr::REQUESTED_ADDRESS_FAMILY,
            attr::EVEN_PORT,
            attr::REQUESTED_TRANSPORT,
            attr::DONT_FRAGMENT,
            attr::RESERVATION_TOKEN,
            attr::XOR_MAPPED_ADDRESS,
            attr::ERROR_CODE,
        ]),
        any::<u16>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Mutated valid messages (and ChannelData) never panic anything they reach.
    #[test]
    fn mutated_messages(seed in 0usize..7, muts in proptest::collection::vec(mutation(), 1..6)) {
        let mut w = World::new();
        let seeds = seeds(&w);
        let mut pkt = seeds[seed % seeds.len()].clone();
        for m in &muts {
            apply(&mut pkt, m);
        }
        w.feed(&pkt);
    }

    /// Authenticated requests of random attributes reach the request handlers.
    #[test]
    fn authenticated_random_attributes(
        m in prop::sample::select(vec![
            method::ALLOCATE,
            method::REFRESH,
            method::CREATE_PERMISSION,
            method::CHANNEL_BIND,
            method::BINDING,
            method::SEND,
        ]),
        attrs in proptest::collection::vec(
            (attribute_type(), proptest::collection::vec(any::<u8>(), 0..24)),
            0..6,
        ),
        tcp in any::<bool>(),
    ) {
        let mut w = World::new();
        let pkt = w.request(m, &attrs, true);
        let ft = if tcp { w.tcp } else { w.udp };
        let out = w.send(ft, &pkt);
        if !out.is_empty() {
            Message::parse(&out).expect("our own answers parse");
        }
        w.feed(&pkt);
    }

    /// Random bytes, and ChannelData with random headers.
    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300), channel in any::<bool>()) {
        let mut w = World::new();
        let mut pkt = bytes;
        if channel && pkt.len() >= 4 {
            pkt[0] = 0x40 | (pkt[0] & 0x3F);
        }
        w.feed(&pkt);
    }
}
