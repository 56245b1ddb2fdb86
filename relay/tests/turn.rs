//! End-to-end tests of the TURN server with real sockets on 127.0.0.1.

mod common;

use aula_relay::credentials;
use aula_relay::turn::TurnConfig;
use common::*;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

fn allow_loopback() -> TurnConfig {
    TurnConfig {
        allow_peers: vec!["127.0.0.0/8".into()],
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

/// Allocate, permit, relay both ways with Send/Data indications, then with a channel.
async fn relay_both_ways(mut client: Client) {
    let (peer, peer_addr) = peer_socket().await;
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
    let r = start(allow_loopback()).await;
    let mut c = Client::udp(r.server.local_udp_addr()).await;
    let mapped = c.binding().await;
    assert_eq!(mapped.ip().to_string(), "127.0.0.1");
    relay_both_ways(c).await;
    r.shutdown.cancel();
    tokio::time::timeout(TIMEOUT, r.server.wait())
        .await
        .expect("shutdown completes");
}

#[tokio::test]
async fn relays_over_tcp() {
    let r = start(allow_loopback()).await;
    relay_both_ways(Client::tcp(r.server.local_tcp_addr()).await).await;
    r.shutdown.cancel();
}

#[tokio::test]
async fn relays_over_tls() {
    let (tls, root) = tls_config();
    let cfg = TurnConfig {
        tls_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..allow_loopback()
    };
    let r = start_tls(cfg, Some(tls)).await;
    let addr = r.server.local_tls_addr().expect("tls listener");
    relay_both_ways(Client::tls(addr, root).await).await;
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
    assert_eq!(c.allocate().await, Err(401));

    let forged = credentials::mint("not-the-secret", "student-1", unix_now(), 600);
    let mut c = Client::udp(addr)
        .await
        .with_credentials(forged.username, forged.password);
    assert_eq!(c.allocate().await, Err(401));

    let good = credentials::mint(SECRET, "student-1", unix_now(), 600);
    let mut c = Client::udp(addr)
        .await
        .with_credentials(good.username.clone(), "wrong password".into());
    assert_eq!(c.allocate().await, Err(401));

    // A tampered expiry with the old password fails too.
    let tampered = format!("{}:student-1", unix_now() + 999_999);
    let mut c = Client::udp(addr)
        .await
        .with_credentials(tampered, good.password);
    assert_eq!(c.allocate().await, Err(401));

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
        assert_eq!(c.create_permission(peer).await, Err(403), "{peer}");
    }
    // The relay's own address is allowed (relay-to-relay), but only its relay ports.
    let (_peer, peer_addr) = peer_socket().await;
    assert_eq!(c.create_permission(peer_addr).await, Ok(()));
    if !(49152..=65535).contains(&peer_addr.port()) {
        assert_eq!(c.channel_bind(0x4000, peer_addr).await, Err(403));
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
async fn loopback_peer_allowed_with_allow_rule() {
    let r = start(allow_loopback()).await;
    let mut c = Client::udp(r.server.local_udp_addr()).await;
    c.allocate().await.unwrap();
    assert_eq!(
        c.create_permission("127.0.0.2:5000".parse().unwrap()).await,
        Ok(())
    );
    assert_eq!(
        c.channel_bind(0x4000, "127.0.0.1:5000".parse().unwrap())
            .await,
        Ok(())
    );
    // Rules only widen what they name.
    assert_eq!(
        c.create_permission("10.0.0.1:80".parse().unwrap()).await,
        Err(403)
    );
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
    assert_eq!(c.allocate().await, Err(486), "per-user quota");

    let mut b = Client::udp(addr).await.with_identity("bob");
    b.allocate().await.unwrap();
    let mut e = Client::udp(addr).await.with_identity("eve");
    assert_eq!(e.allocate().await, Err(486), "total quota");

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
    assert_eq!(c.allocate().await, Err(437));
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
