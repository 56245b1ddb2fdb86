//! End-to-end tests of the TURN server with real sockets on 127.0.0.1.

use aula_relay::credentials;
use aula_relay::turn::stun::code;
use aula_relay::turn::TurnConfig;
use aula_testkit::turn::*;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

fn allow_loopback() -> TurnConfig {
    TurnConfig {
        allow_peers: vec!["127.0.0.0/8".into()],
        ..config()
    }
}

/// A config that allows exactly `peer` (an `allow_peer_addrs` entry, as `aula serve` adds its
/// SFU), and nothing else internal.
fn allow_exactly(peer: SocketAddr) -> TurnConfig {
    TurnConfig {
        allow_peer_addrs: vec![peer],
        ..config()
    }
}

async fn peer_socket() -> (UdpSocket, SocketAddr) {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let a = s.local_addr().unwrap();
    (s, a)
}

async fn peer_recv(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 2048];
    let (n, from) = tokio::time::timeout(TIMEOUT, s.recv_from(&mut buf))
        .await
        .expect("peer receives before timeout")
        .unwrap();
    buf.truncate(n);
    (buf, from)
}

/// Allocate, permit, relay both ways with Send/Data indications, then with a channel. The peer
/// is an exact `allow_peer_addrs` entry of the server (on loopback, the relay's own host).
async fn relay_both_ways(mut client: Client, (peer, peer_addr): (UdpSocket, SocketAddr)) {
    let relayed = client.allocate().await.expect("allocation");
    assert_eq!(relayed.ip().to_string(), "127.0.0.1");

    // Without a permission nothing is relayed.
    peer.send_to(b"too early", relayed).await.unwrap();
    assert_eq!(client.recv_within(Duration::from_millis(200)).await, None);

    client
        .create_permission(peer_addr)
        .await
        .expect("permission");
    client.send_indication(peer_addr, b"hello peer").await;
    let (data, from) = peer_recv(&peer).await;
    assert_eq!(data, b"hello peer");
    assert_eq!(from.port(), relayed.port());

    peer.send_to(b"hello client", relayed).await.unwrap();
    assert_eq!(
        client.recv().await,
        Some(Incoming::Data(peer_addr, b"hello client".to_vec()))
    );

    client
        .channel_bind(0x4001, peer_addr)
        .await
        .expect("channel");
    client.send_channel(0x4001, b"over channel").await;
    assert_eq!(peer_recv(&peer).await.0, b"over channel");
    peer.send_to(b"odd-len", relayed).await.unwrap();
    assert_eq!(
        client.recv().await,
        Some(Incoming::Channel(0x4001, b"odd-len".to_vec()))
    );

    // A larger burst arrives complete and in order on loopback.
    for i in 0..50u32 {
        client
            .send_channel(0x4001, &i.to_be_bytes().repeat(100))
            .await;
    }
    for i in 0..50u32 {
        assert_eq!(peer_recv(&peer).await.0, i.to_be_bytes().repeat(100));
    }
}

#[tokio::test]
async fn relays_over_udp() {
    let peer = peer_socket().await;
    let r = start(allow_exactly(peer.1)).await;
    let mut c = Client::udp(r.server.local_udp_addr()).await;
    let mapped = c.binding().await;
    assert_eq!(mapped.ip().to_string(), "127.0.0.1");
    relay_both_ways(c, peer).await;
    r.shutdown.cancel();
    tokio::time::timeout(TIMEOUT, r.server.wait())
        .await
        .expect("shutdown completes");
}

#[tokio::test]
async fn relays_over_tcp() {
    let peer = peer_socket().await;
    let r = start(allow_exactly(peer.1)).await;
    relay_both_ways(Client::tcp(r.server.local_tcp_addr()).await, peer).await;
    r.shutdown.cancel();
}

#[tokio::test]
async fn relays_over_tls() {
    let (tls, root) = tls_config();
    let peer = peer_socket().await;
    let cfg = TurnConfig {
        tls_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..allow_exactly(peer.1)
    };
    let r = start_tls(cfg, Some(tls)).await;
    let addr = r.server.local_tls_addr().expect("tls listener");
    relay_both_ways(Client::tls(addr, root).await, peer).await;
    r.shutdown.cancel();
}

#[tokio::test]
async fn expired_and_forged_credentials_are_refused() {
    let r = start(allow_loopback()).await;
    let addr = r.server.local_udp_addr();

    let old = credentials::mint(SECRET, "student-1", unix_now() - 3600, 60);
    let mut c = Client::udp(addr)
        .await
        .with_credentials(old.username, old.password);
    assert_eq!(c.allocate().await, Err(code::UNAUTHORIZED));

    let forged = credentials::mint("not-the-secret", "student-1", unix_now(), 600);
    let mut c = Client::udp(addr)
        .await
        .with_credentials(forged.username, forged.password);
    assert_eq!(c.allocate().await, Err(code::UNAUTHORIZED));

    let good = credentials::mint(SECRET, "student-1", unix_now(), 600);
    let mut c = Client::udp(addr)
        .await
        .with_credentials(good.username.clone(), "wrong password".into());
    assert_eq!(c.allocate().await, Err(code::UNAUTHORIZED));

    // A tampered expiry with the old password fails too.
    let tampered = format!("{}:student-1", unix_now() + 999_999);
    let mut c = Client::udp(addr)
        .await
        .with_credentials(tampered, good.password);
    assert_eq!(c.allocate().await, Err(code::UNAUTHORIZED));

    // Nothing unauthenticated gets relayed: a Send indication without allocation is dropped.
    let (peer, peer_addr) = peer_socket().await;
    let mut c = Client::udp(addr).await;
    c.send_indication(peer_addr, b"x").await;
    let mut buf = [0u8; 16];
    assert!(
        tokio::time::timeout(Duration::from_millis(200), peer.recv_from(&mut buf))
            .await
            .is_err()
    );
    r.shutdown.cancel();
}

#[tokio::test]
async fn internal_peers_are_refused_by_default() {
    let r = start(config()).await;
    let mut c = Client::udp(r.server.local_udp_addr()).await;
    let relayed = c.allocate().await.unwrap();
    for peer in [
        "127.0.0.2:5000",
        "10.0.0.1:80",
        "192.168.1.1:80",
        "172.16.0.1:80",
        "169.254.169.254:80",
        "0.0.0.0:80",
        "224.0.0.1:80",
        "255.255.255.255:80",
    ] {
        let peer: SocketAddr = peer.parse().unwrap();
        assert_eq!(
            c.create_permission(peer).await,
            Err(code::FORBIDDEN),
            "{peer}"
        );
    }
    // The relay's own address is allowed (relay-to-relay), but only its relay ports.
    let (_peer, peer_addr) = peer_socket().await;
    assert_eq!(c.create_permission(peer_addr).await, Ok(()));
    if !(49152..=65535).contains(&peer_addr.port()) {
        assert_eq!(
            c.channel_bind(0x4000, peer_addr).await,
            Err(code::FORBIDDEN)
        );
    }
    // Relay-to-relay between two allocations works under the default policy.
    let mut d = Client::udp(r.server.local_udp_addr())
        .await
        .with_identity("student-2");
    let relayed_d = d.allocate().await.unwrap();
    c.create_permission(relayed_d).await.unwrap();
    d.create_permission(relayed).await.unwrap();
    c.send_indication(relayed_d, b"relay to relay").await;
    assert_eq!(
        d.recv().await,
        Some(Incoming::Data(relayed, b"relay to relay".to_vec()))
    );
    r.shutdown.cancel();
}

#[tokio::test]
async fn allow_rules_widen_what_they_name_but_never_open_the_relay_host() {
    let r = start(TurnConfig {
        allow_peers: vec!["127.0.0.0/8".into(), "10.0.0.0/8".into()],
        ..config()
    })
    .await;
    let mut c = Client::udp(r.server.local_udp_addr()).await;
    c.allocate().await.unwrap();
    // A permission (no data yet) to the named ranges is granted.
    assert_eq!(
        c.create_permission("127.0.0.2:5000".parse().unwrap()).await,
        Ok(())
    );
    assert_eq!(
        c.create_permission("10.0.0.1:80".parse().unwrap()).await,
        Ok(())
    );
    // Loopback is the relay's own host: a rule does not open its ports, only allocations' do.
    let (service, service_addr) = peer_socket().await;
    assert_eq!(
        c.channel_bind(0x4000, service_addr).await,
        Err(code::FORBIDDEN)
    );
    assert_eq!(c.create_permission(service_addr).await, Ok(()));
    c.send_indication(service_addr, b"to a local service").await;
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), service.recv_from(&mut buf))
            .await
            .is_err(),
        "a service on the relay's host received relayed data"
    );
    assert!(r.server.stats().denied_peers >= 2, "{:?}", r.server.stats());
    // Rules only widen what they name.
    assert_eq!(
        c.create_permission("192.168.1.1:80".parse().unwrap()).await,
        Err(code::FORBIDDEN)
    );
    r.shutdown.cancel();
}

#[tokio::test]
async fn exact_allowed_peer_gets_data_and_only_on_its_port() {
    // The SFU case: `aula serve` adds its SFU's ip:port; a browser forced through TURN must reach it.
    let (sfu, sfu_addr) = peer_socket().await;
    let (other, other_addr) = peer_socket().await;
    let r = start(allow_exactly(sfu_addr)).await;
    let mut c = Client::udp(r.server.local_udp_addr()).await;
    let relayed = c.allocate().await.unwrap();
    c.create_permission(sfu_addr).await.unwrap();
    for i in 0..6u8 {
        c.send_indication(sfu_addr, &[i; 100]).await;
    }
    for i in 0..6u8 {
        assert_eq!(peer_recv(&sfu).await.0, vec![i; 100], "packet {i} of 6");
    }
    c.channel_bind(0x4002, sfu_addr).await.unwrap();
    c.send_channel(0x4002, b"media").await;
    assert_eq!(peer_recv(&sfu).await.0, b"media");
    sfu.send_to(b"answer", relayed).await.unwrap();
    assert_eq!(
        c.recv().await,
        Some(Incoming::Channel(0x4002, b"answer".to_vec()))
    );
    // The same address on another port stays closed.
    assert_eq!(
        c.channel_bind(0x4003, other_addr).await,
        Err(code::FORBIDDEN)
    );
    c.send_indication(other_addr, b"not for you").await;
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), other.recv_from(&mut buf))
            .await
            .is_err()
    );
    r.shutdown.cancel();
}

#[tokio::test]
async fn ipv6_forms_embedding_an_internal_ipv4_address_are_refused() {
    // An IPv6 relay on ::1, so a client holds an IPv6 allocation and may name IPv6 peers.
    let v6_loopback: std::net::IpAddr = "::1".parse().unwrap();
    std::net::UdpSocket::bind((v6_loopback, 0))
        .expect("this test needs IPv6 on the loopback interface (net.ipv6.conf.lo.disable_ipv6=0)");
    let r = start(TurnConfig {
        listen: "[::1]:0".parse().unwrap(),
        public_ip: Some(v6_loopback),
        ..config()
    })
    .await;
    let mut c = Client::udp_from(v6_loopback, r.server.local_udp_addr()).await;
    let relayed = c.allocate_family(2).await.unwrap();
    assert!(relayed.is_ipv6(), "{relayed}");
    let peer = |ip: &str| SocketAddr::new(ip.parse().unwrap(), 9);
    for internal in [
        "2002:7f00:1::1",                       // 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::1",                    // 6to4 of the metadata address 169.254.169.254
        "2002:c0a8:101::1",                     // 6to4 of 192.168.1.1
        "64:ff9b::7f00:1",                      // NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",                   // NAT64 of 169.254.169.254
        "64:ff9b:1::a00:1",                     // local-use NAT64 prefix: always refused
        "::ffff:0:a00:1",                       // SIIT of 10.0.0.1
        "2001:0:4136:e378:8000:63bf:f5ff:fffe", // Teredo whose client is 10.0.0.1
        "2001:0:a00:1:8000:63bf:3fff:fdd2",     // Teredo whose server is 10.0.0.1
    ] {
        assert_eq!(
            c.create_permission(peer(internal)).await,
            Err(code::FORBIDDEN),
            "{internal} embeds an internal IPv4 address"
        );
    }
    // An IPv4-mapped address is an IPv4 peer: refused for an IPv6 allocation as another family.
    assert_eq!(
        c.create_permission(peer("::ffff:7f00:1")).await,
        Err(code::PEER_ADDRESS_FAMILY_MISMATCH)
    );
    // The same forms around public IPv4 addresses, and plain public IPv6, are relayed.
    for public in ["2002:808:808::1", "64:ff9b::808:808", "2606:4700::1111"] {
        assert_eq!(c.create_permission(peer(public)).await, Ok(()), "{public}");
    }
    r.shutdown.cancel();
}

#[tokio::test]
async fn credentials_expiring_too_far_ahead_are_refused() {
    let r = start(TurnConfig {
        max_credential_lifetime_secs: 600,
        ..config()
    })
    .await;
    let addr = r.server.local_udp_addr();
    for ttl in [1u64 << 40, 24 * 3600, 600 + 61 + 5] {
        let far = credentials::mint(SECRET, "class1/p1", unix_now(), ttl);
        let mut c = Client::udp(addr)
            .await
            .with_credentials(far.username, far.password);
        assert_eq!(c.allocate().await, Err(code::UNAUTHORIZED), "ttl {ttl}");
    }
    assert_eq!(r.server.stats().auth_too_far_ahead, 3);
    // Ten minutes, and a little clock skew on top, are fine.
    for ttl in [600, 650] {
        let ok = credentials::mint(SECRET, "class1/p1", unix_now(), ttl);
        let mut c = Client::udp(addr)
            .await
            .with_credentials(ok.username, ok.password);
        c.allocate().await.expect("credential within the maximum");
    }
    r.shutdown.cancel();
}

#[tokio::test]
async fn class_and_ip_quotas_leave_room_for_other_classes() {
    let r = start(TurnConfig {
        max_allocations: 8,
        max_allocations_per_user: 2,
        max_allocations_per_class: 3,
        max_allocations_per_ip: 5,
        ..config()
    })
    .await;
    let addr = r.server.local_udp_addr();
    let abuser: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let mut keep = Vec::new();
    // Every join mints a new identity: the class quota still holds.
    for i in 0..3 {
        let mut c = Client::udp_from(abuser, addr)
            .await
            .with_identity(&format!("classA/p{i}"));
        c.allocate().await.unwrap();
        keep.push(c);
    }
    let mut c = Client::udp_from(abuser, addr)
        .await
        .with_identity("classA/p99");
    assert_eq!(
        c.allocate().await,
        Err(code::ALLOCATION_QUOTA_REACHED),
        "class quota"
    );
    // Hopping to other classes from the same address: the per-IP quota holds.
    for i in 0..2 {
        let mut c = Client::udp_from(abuser, addr)
            .await
            .with_identity(&format!("classC{i}/x"));
        c.allocate().await.unwrap();
        keep.push(c);
    }
    let mut c = Client::udp_from(abuser, addr)
        .await
        .with_identity("classD/x");
    assert_eq!(
        c.allocate().await,
        Err(code::ALLOCATION_QUOTA_REACHED),
        "per-IP quota"
    );
    // A teacher elsewhere still gets an allocation while the abuser holds everything it may.
    let mut teacher = Client::udp_from("127.0.0.2".parse().unwrap(), addr)
        .await
        .with_identity("classB/teacher");
    teacher.allocate().await.expect("the teacher's allocation");
    r.shutdown.cancel();
}

#[tokio::test]
async fn tcp_connection_without_allocation_has_a_total_deadline() {
    use tokio::io::AsyncWriteExt;
    let r = start(TurnConfig {
        unallocated_connection_timeout_secs: 2,
        ..config()
    })
    .await;
    let addr = r.server.local_tcp_addr();
    // One byte now and then (never a whole frame) must not keep the connection.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = std::time::Instant::now();
    let drip = async {
        for _ in 0..20 {
            if s.write_all(&[0]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    drip.await;
    let closed = closed_within(&mut s, Duration::from_secs(2)).await;
    assert!(closed, "still open after {:?}", started.elapsed());
    // A client that allocates keeps its connection past the deadline.
    let mut c = Client::tcp(addr).await;
    c.allocate().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(c.refresh(600).await, Ok(600));
    r.shutdown.cancel();
}

#[tokio::test]
async fn tcp_and_tls_connection_caps_per_ip_and_in_all() {
    let (tls, root) = tls_config();
    let r = start_tls(
        TurnConfig {
            tls_listen: Some("127.0.0.1:0".parse().unwrap()),
            max_connections: 5,
            max_connections_per_ip: 3,
            ..config()
        },
        Some(tls),
    )
    .await;
    let tcp = r.server.local_tcp_addr();
    let tls_addr = r.server.local_tls_addr().unwrap();
    let hog: std::net::IpAddr = "127.0.0.3".parse().unwrap();
    // One address holds its maximum over TCP and TLS together.
    let mut held = Vec::new();
    for to in [tcp, tls_addr, tcp] {
        held.push(tcp_connect_from(hog, to).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for to in [tcp, tls_addr] {
        let mut extra = tcp_connect_from(hog, to).await;
        assert!(
            closed_within(&mut extra, Duration::from_secs(2)).await,
            "over the per-IP cap on {to}"
        );
    }
    for s in &mut held {
        assert!(!closed_within(s, Duration::from_millis(50)).await);
    }
    // A real client elsewhere is still served, over TCP and TLS.
    let mut c = Client::tcp_from("127.0.0.4".parse().unwrap(), tcp).await;
    c.allocate().await.expect("TCP client served");
    let mut t = Client::tls(tls_addr, root).await;
    t.allocate().await.expect("TLS client served");
    // Five connections in all: the next one from anywhere is refused.
    let mut extra = tcp_connect_from("127.0.0.5".parse().unwrap(), tcp).await;
    assert!(closed_within(&mut extra, Duration::from_secs(2)).await);
    r.shutdown.cancel();
}

#[tokio::test]
async fn quotas_answer_486() {
    let r = start(TurnConfig {
        max_allocations_per_user: 2,
        max_allocations: 3,
        ..config()
    })
    .await;
    let addr = r.server.local_udp_addr();
    let mut keep = Vec::new();
    for _ in 0..2 {
        let mut c = Client::udp(addr).await.with_identity("alice");
        c.allocate().await.unwrap();
        keep.push(c);
    }
    let mut c = Client::udp(addr).await.with_identity("alice");
    assert_eq!(
        c.allocate().await,
        Err(code::ALLOCATION_QUOTA_REACHED),
        "per-user quota"
    );

    let mut b = Client::udp(addr).await.with_identity("bob");
    b.allocate().await.unwrap();
    let mut e = Client::udp(addr).await.with_identity("eve");
    assert_eq!(
        e.allocate().await,
        Err(code::ALLOCATION_QUOTA_REACHED),
        "total quota"
    );

    // Freeing one makes room again.
    assert_eq!(b.refresh(0).await, Ok(0));
    e.allocate().await.unwrap();
    r.shutdown.cancel();
}

#[tokio::test]
async fn lifetime_is_bounded_and_second_allocate_mismatches() {
    let r = start(TurnConfig {
        max_lifetime_secs: 120,
        ..config()
    })
    .await;
    let mut c = Client::udp(r.server.local_udp_addr()).await;
    c.allocate().await.unwrap();
    assert_eq!(c.refresh(99_999).await, Ok(120));
    assert_eq!(c.allocate().await, Err(code::ALLOCATION_MISMATCH));
    r.shutdown.cancel();
}

#[tokio::test]
async fn bind_errors_are_clear() {
    let r = start(config()).await;
    let taken = r.server.local_udp_addr();
    let err = aula_relay::turn::TurnServer::start(
        TurnConfig {
            listen: taken,
            ..config()
        },
        None,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .err()
    .expect("second bind fails");
    assert_eq!(
        err.to_string(),
        format!("cannot bind TURN UDP socket {taken}: address in use")
    );
    let err = aula_relay::turn::TurnServer::start(
        TurnConfig {
            secret: String::new(),
            ..config()
        },
        None,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("secret is empty"), "{err}");
    r.shutdown.cancel();
}

/// Bursts from many clients and many peers at once, so the listener receives many datagrams per
/// `recvmmsg` and the relay loop finds many relay sockets ready per round: every datagram is
/// relayed, in order per peer, both ways. Refusals still hold on these batched paths: data a
/// client sends to a port of the relay's host that holds no allocation is dropped, and so is
/// data a stranger on that host sends to the relayed addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_from_many_peers_arrive_complete_and_in_order() {
    const CLIENTS: usize = 8;
    const BURST: usize = 50;
    let mut peers = Vec::new();
    for _ in 0..CLIENTS {
        peers.push(peer_socket().await);
    }
    let (service, service_addr) = peer_socket().await;
    let (stranger, _) = peer_socket().await;
    let r = start(TurnConfig {
        allow_peer_addrs: peers.iter().map(|p| p.1).collect(),
        ..config()
    })
    .await;
    let mut clients = Vec::new();
    let mut relayed = Vec::new();
    for (i, (_, peer_addr)) in peers.iter().enumerate() {
        let mut c = Client::udp(r.server.local_udp_addr())
            .await
            .with_identity(&format!("student-{i}"));
        relayed.push(c.allocate().await.expect("allocation"));
        c.channel_bind(0x4000, *peer_addr).await.expect("channel");
        // Granted (the relay's own host), but data to it is refused per packet.
        c.create_permission(service_addr).await.expect("permission");
        clients.push(c);
    }
    let msg = |i: usize, k: usize, dir: &str| format!("{dir} {i} {k:03} ").repeat(8).into_bytes();

    for k in 0..BURST {
        for (i, c) in clients.iter_mut().enumerate() {
            c.send_channel(0x4000, &msg(i, k, "up")).await;
            if k % 10 == 0 {
                c.send_indication(service_addr, b"to a local service").await;
            }
        }
        for (i, (peer, _)) in peers.iter().enumerate() {
            peer.send_to(&msg(i, k, "down"), relayed[i]).await.unwrap();
            if k % 10 == 0 {
                stranger
                    .send_to(b"from a stranger", relayed[i])
                    .await
                    .unwrap();
            }
        }
    }

    for (i, (peer, _)) in peers.iter().enumerate() {
        for k in 0..BURST {
            let (data, from) = peer_recv(peer).await;
            assert_eq!(data, msg(i, k, "up"), "peer {i}, datagram {k}");
            assert_eq!(from, relayed[i]);
        }
    }
    for (i, c) in clients.iter_mut().enumerate() {
        for k in 0..BURST {
            assert_eq!(
                c.recv().await,
                Some(Incoming::Channel(0x4000, msg(i, k, "down"))),
                "client {i}, datagram {k}"
            );
        }
        assert_eq!(c.recv_within(Duration::from_millis(100)).await, None);
    }
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), service.recv_from(&mut buf))
            .await
            .is_err(),
        "a service on the relay's host received relayed data"
    );
    let stats = r.server.stats();
    assert_eq!(stats.packets_client_to_peer, (CLIENTS * BURST) as u64);
    assert_eq!(stats.packets_peer_to_client, (CLIENTS * BURST) as u64);
    assert!(
        stats.denied_peers >= (2 * CLIENTS * BURST / 10) as u64,
        "{stats:?}"
    );
    r.shutdown.cancel();
}

/// Relay to relay between a UDP and a TCP client of the same server (two relay-only browsers):
/// the data is handed from one allocation to the other in process, in order, both ways, and
/// only once the receiving allocation permits the sender's relayed address.
#[tokio::test]
async fn relay_to_relay_keeps_order_and_needs_the_receivers_permission() {
    let r = start(config()).await;
    let mut c = Client::udp(r.server.local_udp_addr())
        .await
        .with_identity("student-1");
    let mut d = Client::tcp(r.server.local_tcp_addr())
        .await
        .with_identity("student-2");
    let relayed_c = c.allocate().await.unwrap();
    let relayed_d = d.allocate().await.unwrap();

    // d has not permitted c yet: nothing reaches d.
    c.create_permission(relayed_d).await.unwrap();
    let refused_before = r.server.stats().no_permission_drops;
    c.send_indication(relayed_d, b"too early").await;
    assert_eq!(d.recv_within(Duration::from_millis(200)).await, None);
    assert_eq!(r.server.stats().no_permission_drops, refused_before + 1);

    d.create_permission(relayed_c).await.unwrap();
    c.send_indication(relayed_d, b"now").await;
    assert_eq!(
        d.recv().await,
        Some(Incoming::Data(relayed_c, b"now".to_vec()))
    );
    c.channel_bind(0x4001, relayed_d).await.unwrap();
    d.channel_bind(0x4002, relayed_c).await.unwrap();
    for i in 0..50u32 {
        c.send_channel(0x4001, &i.to_be_bytes().repeat(100)).await;
        d.send_channel(0x4002, &(1000 + i).to_be_bytes().repeat(99))
            .await;
    }
    for i in 0..50u32 {
        assert_eq!(
            d.recv().await,
            Some(Incoming::Channel(0x4002, i.to_be_bytes().repeat(100))),
            "to the TCP client, datagram {i}"
        );
        assert_eq!(
            c.recv().await,
            Some(Incoming::Channel(
                0x4001,
                (1000 + i).to_be_bytes().repeat(99)
            )),
            "to the UDP client, datagram {i}"
        );
    }
    r.shutdown.cancel();
}
