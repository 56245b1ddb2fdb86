//! The relay's own host is not reachable through it: in a network namespace the test creates,
//! the relay advertises a "public" address of its own and has a second interface address, as a
//! school server does. Only ports that hold a live allocation (relay to relay) and exact
//! `allow_peer_addrs` (the SFU) are reachable there; a local service and the TURN port itself
//! (TURN inside TURN) are refused.
//!
//! Needs root (network namespaces); without it the test says so and does nothing.

use aula_relay::turn::stun::code;
use aula_relay::turn::TurnConfig;
use aula_testkit::turn::*;
use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;
use tokio::net::UdpSocket;

/// The relay's advertised address and another address of its interfaces, inside the namespace.
const PUBLIC: &str = "203.0.113.10";
const LAN: &str = "198.51.100.7";

/// A network namespace with an interface holding [`PUBLIC`] and [`LAN`]; removed on drop.
struct Netns {
    name: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    fn create() -> Netns {
        let ns = Netns {
            name: format!("aula-turn-{}", std::process::id()),
        };
        ip(&["netns", "add", &ns.name]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &ns.name, "ip"];
            all.extend_from_slice(args);
            ip(&all);
        };
        // A veth pair with both ends inside: an ordinary interface (this kernel has no dummy).
        inside(&["link", "set", "lo", "up"]);
        inside(&[
            "link", "add", "host0", "type", "veth", "peer", "name", "host1",
        ]);
        inside(&["addr", "add", &format!("{PUBLIC}/32"), "dev", "host0"]);
        inside(&["addr", "add", &format!("{LAN}/24"), "dev", "host0"]);
        inside(&["link", "set", "host0", "up"]);
        inside(&["link", "set", "host1", "up"]);
        ns
    }

    /// Runs `body` on a thread inside the namespace, on a single-threaded runtime (so every
    /// socket the relay and the test open is in the namespace).
    fn run<F: std::future::Future<Output = ()>>(&self, body: impl FnOnce() -> F + Send + 'static) {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let ns = File::open(&path).expect("open the namespace");
            // SAFETY: setns on this thread only; the fd is valid for the call.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(body());
        })
        .join()
        .expect("the test body inside the namespace");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

async fn nothing_arrives(s: &UdpSocket) -> bool {
    let mut buf = [0u8; 2048];
    tokio::time::timeout(Duration::from_millis(300), s.recv_from(&mut buf))
        .await
        .is_err()
}

#[test]
fn the_relay_host_is_reachable_only_on_live_relay_ports_and_exact_allowances() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: network namespaces need root");
        return;
    }
    let ns = Netns::create();
    ns.run(|| async {
        let public: IpAddr = PUBLIC.parse().unwrap();
        let lan: IpAddr = LAN.parse().unwrap();
        // A service on every address of the host, and an SFU on the LAN address.
        let service = UdpSocket::bind("0.0.0.0:0").await.unwrap();
        let port = service.local_addr().unwrap().port();
        let sfu = UdpSocket::bind(SocketAddr::new(lan, 0)).await.unwrap();
        let sfu_addr = sfu.local_addr().unwrap();
        let r = start(TurnConfig {
            listen: "0.0.0.0:0".parse().unwrap(),
            public_ip: Some(public),
            allow_peer_addrs: vec![sfu_addr],
            ..config()
        })
        .await;
        let turn_port = r.server.local_udp_addr().port();
        let server = SocketAddr::new(public, turn_port);
        let mut c = Client::udp_from(lan, server).await.with_identity("c1/a");
        let relayed = c.allocate().await.unwrap();
        assert_eq!(relayed.ip(), public);

        // A local service, on the advertised address and on another interface address.
        for host in [public, lan] {
            let target = SocketAddr::new(host, port);
            assert_eq!(
                c.channel_bind(0x4000, target).await,
                Err(code::FORBIDDEN),
                "{target}"
            );
            assert_eq!(c.create_permission(target).await, Ok(()), "{target}");
            c.send_indication(target, b"to a local service").await;
            assert!(nothing_arrives(&service).await, "{target} got relayed data");
        }
        // TURN inside TURN: a Binding request through the allocation to the TURN port.
        let turn_itself = SocketAddr::new(public, turn_port);
        assert_eq!(
            c.channel_bind(0x4001, turn_itself).await,
            Err(code::FORBIDDEN)
        );
        let binding = [
            0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ];
        c.send_indication(turn_itself, &binding).await;
        assert_eq!(
            c.recv_within(Duration::from_millis(500)).await,
            None,
            "the TURN port answered through the relay"
        );
        let stats = r.server.stats();
        assert!(stats.denied_peers >= 6, "refusals are counted: {stats:?}");

        // The SFU (an exact allowance on the host's LAN address) gets data.
        c.create_permission(sfu_addr).await.unwrap();
        c.send_indication(sfu_addr, b"to the SFU").await;
        let mut buf = [0u8; 64];
        let (n, from) = tokio::time::timeout(TIMEOUT, sfu.recv_from(&mut buf))
            .await
            .expect("the SFU receives")
            .unwrap();
        assert_eq!(&buf[..n], b"to the SFU");
        assert_eq!(from.port(), relayed.port());

        // Relay to relay: a live allocation's port on the advertised address is reachable.
        let mut d = Client::udp_from(lan, server).await.with_identity("c1/b");
        let relayed_d = d.allocate().await.unwrap();
        c.create_permission(relayed_d).await.unwrap();
        d.create_permission(relayed).await.unwrap();
        c.send_indication(relayed_d, b"relay to relay").await;
        assert_eq!(
            d.recv().await,
            Some(Incoming::Data(relayed, b"relay to relay".to_vec()))
        );
        // Once that allocation is gone, its port is closed again.
        assert_eq!(d.refresh(0).await, Ok(0));
        assert_eq!(
            c.channel_bind(0x4002, relayed_d).await,
            Err(code::FORBIDDEN)
        );
        r.shutdown.cancel();
    });
}
