//! Binding sockets: the UDP and TCP listeners, and relay sockets on a port of the configured
//! range for the core ([`RelayBinder`]), each added to the relay loop's epoll set.

use super::{RelayHandle, Shared, Sink};
use crate::turn::core::{AllocId, Family, PortRequest, RelayBinder};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpListener;

const RELAY_BUFFER: usize = 1 << 20;

pub(super) struct IoBinder<'a> {
    pub(super) shared: &'a Arc<Shared>,
    pub(super) sink: &'a dyn Fn() -> Sink,
}

impl IoBinder<'_> {
    /// Makes `socket` allocation `id`'s relay socket: the relay loop reads it from now on.
    fn start(&self, id: AllocId, socket: std::net::UdpSocket) -> io::Result<RelayHandle> {
        let epoll = self.shared.epoll.clone();
        epoll.add(socket.as_fd(), id.to_bits())?;
        Ok(RelayHandle {
            socket: Arc::new(socket),
            sink: (self.sink)(),
            epoll,
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

pub(super) fn udp_socket(addr: SocketAddr, buffer: usize) -> io::Result<std::net::UdpSocket> {
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

pub(super) fn tcp_listener(addr: SocketAddr) -> io::Result<TcpListener> {
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
