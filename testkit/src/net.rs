//! Plain TCP helpers of the tests that check how a server treats connections: connecting from
//! a chosen source address (per-address limits), and waiting for the server to close.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// 127.0.0.1, where the tests' servers and clients listen.
pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A TCP connection from `ip` to `server`.
pub async fn tcp_connect_from(ip: IpAddr, server: SocketAddr) -> TcpStream {
    let sock = if ip.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .unwrap();
    sock.bind(SocketAddr::new(ip, 0)).unwrap();
    sock.connect(server).await.unwrap()
}

/// Whether the server closes `s` within `within` (reading and discarding whatever it sends).
pub async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read).await.is_ok()
}
