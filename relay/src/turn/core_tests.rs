//! Unit and property tests of the sans-IO core: no sockets, time passed in.

use super::*;
use crate::credentials;
use crate::turn::filter::Cidr;
use crate::turn::stun::{attr, code, MessageWriter};
use proptest::prelude::*;

struct FakeBinder {
    next: u16,
    fail: bool,
}

impl RelayBinder for FakeBinder {
    type Handle = u16;
    type Reserved = u16;
    fn bind(
        &mut self,
        _id: AllocId,
        _f: Family,
        port: PortRequest,
    ) -> std::io::Result<(u16, u16, Option<u16>)> {
        if self.fail {
            return Err(std::io::ErrorKind::AddrInUse.into());
        }
        self.next += 1;
        if port != PortRequest::Any {
            self.next += self.next % 2;
        }
        let reserved = (port == PortRequest::EvenReserveNext).then_some(self.next + 1);
        Ok((self.next, self.next, reserved))
    }
    fn bind_reserved(&mut self, _id: AllocId, reserved: u16) -> std::io::Result<u16> {
        Ok(reserved)
    }
}

const SECRET: &str = "s";

fn binder() -> FakeBinder {
    FakeBinder {
        next: 50000,
        fail: false,
    }
}

fn core(cfg: CoreConfig) -> Core<u16, u16> {
    Core::new(
        CoreConfig {
            secret: SECRET.into(),
            ..cfg
        },
        [9; 32],
    )
}

fn ft(port: u16) -> FiveTuple {
    FiveTuple {
        transport: Transport::Udp,
        client: SocketAddr::from(([203, 0, 113, 5], port)),
        server: SocketAddr::from(([198, 51, 100, 1], 3478)),
    }
}

fn now0() -> Now {
    Now {
        mono: Instant::now(),
        unix: 1_000_000,
    }
}

/// A scripted client: builds requests, remembers the nonce.
struct Tester {
    ft: FiveTuple,
    username: String,
    password: String,
    nonce: Vec<u8>,
    n: u8,
}

impl Tester {
    fn new(c: &mut Core<u16, u16>, ft: FiveTuple, identity: &str, now: Now) -> Tester {
        let creds = credentials::mint(SECRET, identity, now.unix, 600);
        // First request without credentials yields the nonce.
        let mut t = Tester {
            ft,
            username: creds.username,
            password: creds.password,
            nonce: Vec::new(),
            n: 0,
        };
        let resp = t.send(c, method::ALLOCATE, false, now, |w| {
            w.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        });
        let m = Message::parse(&resp).unwrap();
        assert_eq!(m.error_code(), Some(code::UNAUTHORIZED));
        assert_eq!(m.realm(), Some("aula"));
        t.nonce = m.nonce().unwrap().to_vec();
        t
    }

    fn send(
        &mut self,
        c: &mut Core<u16, u16>,
        m: u16,
        auth: bool,
        now: Now,
        add: impl Fn(&mut MessageWriter<'_>),
    ) -> Vec<u8> {
        self.n += 1;
        let tid = [self.n; 12];
        let mut buf = Vec::new();
        {
            let mut w = MessageWriter::new(&mut buf, m, Class::Request, &tid);
            add(&mut w);
            if auth {
                w.attr(attr::USERNAME, self.username.as_bytes())
                    .attr(attr::REALM, b"aula")
                    .attr(attr::NONCE, &self.nonce);
                w.integrity(&stun::long_term_key(&self.username, "aula", &self.password));
            }
        }
        let mut out = Vec::new();
        match c.handle_client(&self.ft, &buf, now, &mut out, &mut binder()) {
            ClientAction::Reply => out,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn allocate(&mut self, c: &mut Core<u16, u16>, now: Now) -> Result<SocketAddr, u16> {
        let r = self.send(c, method::ALLOCATE, true, now, |w| {
            w.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        });
        let m = Message::parse(&r).unwrap();
        match m.error_code() {
            None => Ok(m.xor_address(attr::XOR_RELAYED_ADDRESS).unwrap()),
            Some(e) => Err(e),
        }
    }

    fn permit(&mut self, c: &mut Core<u16, u16>, peer: SocketAddr, now: Now) -> Option<u16> {
        let r = self.send(c, method::CREATE_PERMISSION, true, now, |w| {
            w.xor_address(attr::XOR_PEER_ADDRESS, &peer);
        });
        Message::parse(&r).unwrap().error_code()
    }
}

fn send_indication(peer: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    MessageWriter::new(&mut buf, method::SEND, Class::Indication, &[1; 12])
        .xor_address(attr::XOR_PEER_ADDRESS, &peer)
        .attr(attr::DATA, data);
    buf
}

const PEER: ([u8; 4], u16) = ([8, 8, 8, 8], 9000);

#[test]
fn allocate_permit_relay_and_expire() {
    let mut c = core(CoreConfig::default());
    let now = now0();
    let mut t = Tester::new(&mut c, ft(1), "alice", now);
    let relayed = t.allocate(&mut c, now).unwrap();
    assert_eq!(relayed, SocketAddr::from(([127, 0, 0, 1], 50001)));
    assert_eq!(c.allocation_count(), 1);
    let peer = SocketAddr::from(PEER);

    // No permission yet: dropped both ways.
    let pkt = send_indication(peer, b"hi");
    let mut out = Vec::new();
    assert!(matches!(
        c.handle_client(&ft(1), &pkt, now, &mut out, &mut binder()),
        ClientAction::None
    ));
    let id = c.allocation_of(&ft(1)).unwrap();
    let mut buf = vec![0u8; PEER_HEADROOM + 10];
    assert_eq!(c.handle_peer(id, peer, &mut buf, 2, now.mono), None);

    assert_eq!(t.permit(&mut c, peer, now), None);
    match c.handle_client(&ft(1), &pkt, now, &mut out, &mut binder()) {
        ClientAction::Relay {
            handle,
            peer: p,
            payload,
        } => {
            assert_eq!(*handle, 50001);
            assert_eq!(p, peer);
            assert_eq!(&pkt[payload], b"hi");
        }
        other => panic!("{other:?}"),
    }
    // Peer to client: a Data indication framed in place.
    buf[PEER_HEADROOM..PEER_HEADROOM + 3].copy_from_slice(b"abc");
    let r = c.handle_peer(id, peer, &mut buf, 3, now.mono).unwrap();
    let m = Message::parse(&buf[r]).unwrap();
    assert_eq!(m.method(), method::DATA);
    assert_eq!(m.xor_address(attr::XOR_PEER_ADDRESS), Some(peer));
    assert_eq!(m.get(attr::DATA), Some(&b"abc"[..]));

    // Permissions expire after 300 s, allocations after their lifetime.
    let later = now.mono + Duration::from_secs(301);
    assert!(c.tick(later).is_empty());
    assert_eq!(c.handle_peer(id, peer, &mut buf, 3, later), None);
    let gone = c.tick(now.mono + Duration::from_secs(601));
    assert_eq!(gone, vec![50001]);
    assert_eq!(c.allocation_count(), 0);
    assert_eq!(c.handle_peer(id, peer, &mut buf, 3, later), None);
}

#[test]
fn stale_nonce_and_expired_credentials() {
    let mut c = core(CoreConfig::default());
    let now = now0();
    let mut t = Tester::new(&mut c, ft(1), "alice", now);
    let later = Now {
        mono: now.mono,
        unix: now.unix + 601,
    };
    let r = t.send(&mut c, method::ALLOCATE, true, later, |w| {
        w.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(
        Message::parse(&r).unwrap().error_code(),
        Some(code::STALE_NONCE)
    );
    assert_eq!(c.stats().auth_stale_nonce, 1);
    // Credentials valid for 600 s from `now`: at +601 they are expired.
    t.nonce = Message::parse(&r).unwrap().nonce().unwrap().to_vec();
    assert_eq!(t.allocate(&mut c, later), Err(code::UNAUTHORIZED));
    assert_eq!(c.stats().auth_expired, 1);
    assert_eq!(c.allocation_count(), 0);
}

#[test]
fn bandwidth_cap_drops_excess() {
    let mut c = core(CoreConfig {
        bandwidth_bytes_per_sec: 20_000,
        filter: PeerFilter::default(),
        ..CoreConfig::default()
    });
    let now = now0();
    let mut t = Tester::new(&mut c, ft(1), "alice", now);
    t.allocate(&mut c, now).unwrap();
    let peer = SocketAddr::from(PEER);
    t.permit(&mut c, peer, now);
    let pkt = send_indication(peer, &[0u8; 1000]);
    let mut out = Vec::new();
    let mut sent = 0;
    for _ in 0..100 {
        if let ClientAction::Relay { .. } =
            c.handle_client(&ft(1), &pkt, now, &mut out, &mut binder())
        {
            sent += 1;
        }
    }
    assert_eq!(sent, 20, "one second of burst");
    assert_eq!(c.stats().bandwidth_drops, 80);
    // Half a second later, half a second of tokens.
    let later = Now {
        mono: now.mono + Duration::from_millis(500),
        ..now
    };
    let mut sent = 0;
    for _ in 0..100 {
        if let ClientAction::Relay { .. } =
            c.handle_client(&ft(1), &pkt, later, &mut out, &mut binder())
        {
            sent += 1;
        }
    }
    assert_eq!(sent, 10);
}

#[test]
fn filter_and_capacity_errors() {
    let mut c = core(CoreConfig {
        filter: PeerFilter::new(vec!["10.1.0.0/16".parse::<Cidr>().unwrap()], vec![]),
        max_permissions_per_allocation: 2,
        ..CoreConfig::default()
    });
    let now = now0();
    let mut t = Tester::new(&mut c, ft(1), "alice", now);
    t.allocate(&mut c, now).unwrap();
    assert_eq!(
        t.permit(&mut c, "10.2.0.1:1".parse().unwrap(), now),
        Some(code::FORBIDDEN)
    );
    assert_eq!(
        t.permit(&mut c, "[::1]:1".parse().unwrap(), now),
        Some(code::PEER_ADDRESS_FAMILY_MISMATCH)
    );
    assert_eq!(t.permit(&mut c, "10.1.0.1:1".parse().unwrap(), now), None);
    assert_eq!(t.permit(&mut c, "8.8.8.8:1".parse().unwrap(), now), None);
    assert_eq!(
        t.permit(&mut c, "8.8.4.4:1".parse().unwrap(), now),
        Some(code::INSUFFICIENT_CAPACITY)
    );
    assert_eq!(c.stats().denied_peers, 1);
}

#[test]
fn port_exhaustion_is_508_and_frees_the_slot() {
    let mut c = core(CoreConfig::default());
    let now = now0();
    let mut t = Tester::new(&mut c, ft(1), "alice", now);
    let r = {
        t.n += 1;
        let tid = [t.n; 12];
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(&mut buf, method::ALLOCATE, Class::Request, &tid);
        w.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
            .attr(attr::USERNAME, t.username.as_bytes())
            .attr(attr::REALM, b"aula")
            .attr(attr::NONCE, &t.nonce)
            .integrity(&stun::long_term_key(&t.username, "aula", &t.password));
        let mut out = Vec::new();
        let mut b = FakeBinder {
            next: 0,
            fail: true,
        };
        assert!(matches!(
            c.handle_client(&t.ft, &buf, now, &mut out, &mut b),
            ClientAction::Reply
        ));
        out
    };
    assert_eq!(
        Message::parse(&r).unwrap().error_code(),
        Some(code::INSUFFICIENT_CAPACITY)
    );
    assert_eq!(c.allocation_count(), 0);
    t.allocate(&mut c, now).unwrap();
}

#[test]
fn unknown_required_attribute_is_420() {
    let mut c = core(CoreConfig::default());
    let mut buf = Vec::new();
    MessageWriter::new(&mut buf, method::ALLOCATE, Class::Request, &[3; 12])
        .attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
        .attr(0x0042, b"zz");
    let mut out = Vec::new();
    c.handle_client(&ft(1), &buf, now0(), &mut out, &mut binder());
    let m = Message::parse(&out).unwrap();
    assert_eq!(m.error_code(), Some(code::UNKNOWN_ATTRIBUTE));
    assert_eq!(m.get(attr::UNKNOWN_ATTRIBUTES), Some(&[0x00, 0x42][..]));
}

proptest! {
    /// Arbitrary bytes from a client never panic and never create state.
    #[test]
    fn garbage_is_harmless(pkt in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut c = core(CoreConfig::default());
        let mut out = Vec::new();
        let _ = c.handle_client(&ft(1), &pkt, now0(), &mut out, &mut binder());
        prop_assert_eq!(c.allocation_count(), 0);
    }

    /// Corrupting any bit of a valid authenticated Allocate makes it invalid or
    /// unauthenticated, never an allocation.
    #[test]
    fn bit_flips_never_authenticate(pos in 0usize..200, bit in 0u8..8) {
        let mut c = core(CoreConfig::default());
        let now = now0();
        let t = Tester::new(&mut c, ft(1), "alice", now);
        let mut buf = Vec::new();
        MessageWriter::new(&mut buf, method::ALLOCATE, Class::Request, &[5; 12])
            .attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
            .attr(attr::USERNAME, t.username.as_bytes())
            .attr(attr::REALM, b"aula")
            .attr(attr::NONCE, &t.nonce)
            .integrity(&stun::long_term_key(&t.username, "aula", &t.password));
        let pos = pos % buf.len();
        buf[pos] ^= 1 << bit;
        let mut out = Vec::new();
        let _ = c.handle_client(&ft(1), &buf, now, &mut out, &mut binder());
        // Every byte before MESSAGE-INTEGRITY is covered by the MAC, and the MAC itself is
        // checked: no single flip survives.
        prop_assert_eq!(c.allocation_count(), 0);
    }

    /// Random sequences of allocations, refreshes, closes and ticks keep the books balanced:
    /// the count matches the index, and no user exceeds the quota.
    #[test]
    fn quotas_and_counts_hold(ops in proptest::collection::vec((0u8..4, 0u16..6, 0u8..3), 1..60)) {
        let mut c = core(CoreConfig {
            max_allocations: 4,
            max_allocations_per_user: 2,
            ..CoreConfig::default()
        });
        let start = now0();
        let mut clock = 0u64;
        let users = ["a", "b", "c"];
        let mut testers: Vec<Option<Tester>> = (0..6).map(|_| None).collect();
        for (op, port, user) in ops {
            let now = Now { mono: start.mono + Duration::from_secs(clock), unix: start.unix + clock };
            let slot = port as usize;
            match op {
                0 => {
                    if testers[slot].is_none() {
                        testers[slot] = Some(Tester::new(&mut c, ft(port), users[user as usize], now));
                    }
                    let t = testers[slot].as_mut().unwrap();
                    let before = c.allocation_count();
                    match t.allocate(&mut c, now) {
                        Ok(_) => prop_assert_eq!(c.allocation_count(), before + 1),
                        Err(e) => prop_assert!(
                            [code::UNAUTHORIZED, code::ALLOCATION_MISMATCH, code::STALE_NONCE, code::ALLOCATION_QUOTA_REACHED].contains(&e),
                            "code {}", e
                        ),
                    }
                }
                1 => { c.remove_five_tuple(&ft(port)); }
                2 => { clock += 200; c.tick(start.mono + Duration::from_secs(clock)); }
                _ => {
                    if let Some(t) = testers[slot].as_mut() {
                        let r = t.send(&mut c, method::REFRESH, true, now, |w| { w.u32_attr(attr::LIFETIME, 0); });
                        let e = Message::parse(&r).unwrap().error_code();
                        prop_assert!(
                            matches!(e, None | Some(code::UNAUTHORIZED | code::ALLOCATION_MISMATCH | code::STALE_NONCE)),
                            "code {:?}", e
                        );
                    }
                }
            }
            prop_assert!(c.allocation_count() <= 4);
            prop_assert_eq!(c.allocation_count(), c.by_tuple.len());
            prop_assert_eq!(c.per_user.values().sum::<usize>(), c.allocation_count());
            prop_assert!(c.per_user.values().all(|&n| n <= 2));
        }
    }

    /// XOR addresses round-trip for any v4/v6 address and transaction id.
    #[test]
    fn xor_address_round_trip(v6 in any::<[u8; 16]>(), v4 in any::<[u8; 4]>(), port in any::<u16>(), tid in any::<[u8; 12]>(), which in any::<bool>()) {
        let addr = if which { SocketAddr::from((v6, port)) } else { SocketAddr::from((v4, port)) };
        let mut buf = Vec::new();
        MessageWriter::new(&mut buf, method::SEND, Class::Indication, &tid)
            .xor_address(attr::XOR_PEER_ADDRESS, &addr);
        let m = Message::parse(&buf).unwrap();
        prop_assert_eq!(m.xor_address(attr::XOR_PEER_ADDRESS), Some(addr));
    }
}

#[test]
fn even_port_reservation_is_used_by_token() {
    let mut c = core(CoreConfig::default());
    let now = now0();
    let mut t = Tester::new(&mut c, ft(1), "alice", now);
    let r = t.send(&mut c, method::ALLOCATE, true, now, |w| {
        w.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
            .attr(attr::EVEN_PORT, &[0x80]);
    });
    let m = Message::parse(&r).unwrap();
    let rtp = m.xor_address(attr::XOR_RELAYED_ADDRESS).unwrap();
    assert_eq!(rtp.port() % 2, 0);
    let token = m.get(attr::RESERVATION_TOKEN).unwrap().to_vec();
    let mut u = Tester::new(&mut c, ft(2), "alice", now);
    let r = u.send(&mut c, method::ALLOCATE, true, now, |w| {
        w.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
            .attr(attr::RESERVATION_TOKEN, &token);
    });
    let m = Message::parse(&r).unwrap();
    assert_eq!(
        m.xor_address(attr::XOR_RELAYED_ADDRESS).unwrap().port(),
        rtp.port() + 1
    );
    // A token works once.
    let mut v = Tester::new(&mut c, ft(3), "alice", now);
    let r = v.send(&mut c, method::ALLOCATE, true, now, |w| {
        w.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
            .attr(attr::RESERVATION_TOKEN, &token);
    });
    assert_eq!(
        Message::parse(&r).unwrap().error_code(),
        Some(code::INSUFFICIENT_CAPACITY)
    );
}

/// Unauthenticated answers are at most 2.8 times the request (a 20-byte request without
/// attributes gets a 401 of 56 bytes: ERROR-CODE without reason phrase, REALM "aula", a
/// 16-character NONCE — what RFC 8489 §9.2.4 requires), so the relay is a poor reflector.
#[test]
fn unauthenticated_answers_stay_small() {
    let mut c = core(CoreConfig::default());
    let mut worst = (0.0f64, 0u16, 0usize);
    for client in [
        SocketAddr::from(([203, 0, 113, 5], 4000)),
        "[2001:db8::5]:4000".parse().unwrap(),
    ] {
        let ft = FiveTuple {
            transport: Transport::Udp,
            client,
            server: SocketAddr::from(([198, 51, 100, 1], 3478)),
        };
        for m in [
            method::BINDING,
            method::ALLOCATE,
            method::REFRESH,
            method::CREATE_PERMISSION,
            method::CHANNEL_BIND,
            0x00F,
        ] {
            for fingerprint in [false, true] {
                let mut req = Vec::new();
                let mut w = MessageWriter::new(&mut req, m, Class::Request, &[7; 12]);
                if fingerprint {
                    w.fingerprint();
                }
                let mut out = Vec::new();
                c.handle_client(&ft, &req, now0(), &mut out, &mut binder());
                let ratio = out.len() as f64 / req.len() as f64;
                if ratio > worst.0 {
                    worst = (ratio, m, out.len());
                }
            }
        }
    }
    println!(
        "largest unauthenticated answer: {:.2}x the request (method {:#x}, {} bytes)",
        worst.0, worst.1, worst.2
    );
    assert!(worst.0 <= 2.8, "{worst:?}");
}

#[test]
fn allocations_are_found_by_relayed_address_while_they_live() {
    let mut c = core(CoreConfig::default());
    let now = now0();
    let mut t = Tester::new(&mut c, ft(1), "alice", now);
    let relayed = t.allocate(&mut c, now).unwrap();
    let id = c.allocation_of(&ft(1)).unwrap();
    assert_eq!(c.allocation_at(relayed), Some(id));
    assert_eq!(c.relayed_address(id), Some(relayed));
    assert_eq!(c.handle(id), Some(&50001));
    assert_eq!(AllocId::from_bits(id.to_bits()), id);
    // Another port, or the same port on another address, is no allocation.
    assert_eq!(
        c.allocation_at(SocketAddr::new(relayed.ip(), relayed.port() + 1)),
        None
    );
    assert_eq!(
        c.allocation_at(SocketAddr::from(([10, 0, 0, 1], relayed.port()))),
        None
    );
    assert_eq!(c.remove(id), Some(50001));
    assert_eq!(c.allocation_at(relayed), None);
    assert_eq!(c.handle(id), None);
    assert_eq!(c.relayed_address(id), None);
}
