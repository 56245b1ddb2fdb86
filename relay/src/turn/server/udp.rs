//! UDP: the listener loop (client packets in, answers and relayed data out) and one loop per
//! allocation reading its relay socket (peer data framed in place for the client).

use super::sockets::IoBinder;
use super::{Shared, Sink};
use crate::turn::core::{
    AllocId, ClientAction, FiveTuple, Now, Transport, PEER_HEADROOM, PEER_TAILROOM,
};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// Datagrams handled per readiness wake-up before yielding.
const BATCH: usize = 64;

pub(super) enum Act {
    None,
    Reply,
    Relay(Arc<UdpSocket>, SocketAddr, std::ops::Range<usize>),
}

pub(super) fn act<H>(a: ClientAction<'_, H>, socket: impl Fn(&H) -> Arc<UdpSocket>) -> Act {
    match a {
        ClientAction::None => Act::None,
        ClientAction::Reply => Act::Reply,
        ClientAction::Relay {
            handle,
            peer,
            payload,
        } => Act::Relay(socket(handle), peer, payload),
    }
}

pub(super) async fn send_udp(socket: &UdpSocket, data: &[u8], to: SocketAddr) {
    match socket.try_send_to(data, to) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            let _ = socket.send_to(data, to).await;
        }
        // ICMP errors from earlier sends (connection refused, unreachable): nothing to do.
        Err(_) => {}
    }
}

pub(super) async fn udp_loop(shared: Arc<Shared>, socket: Arc<UdpSocket>, local: SocketAddr) {
    // Selecting on the token once (not per wake-up) keeps the hot loop free of its lock.
    let stop = shared.shutdown.clone();
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = udp_serve(&shared, &socket, local) => {}
    }
}

async fn udp_serve(shared: &Arc<Shared>, socket: &Arc<UdpSocket>, local: SocketAddr) {
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::with_capacity(1500);
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        for _ in 0..BATCH {
            let (len, from) = match socket.try_recv_from(&mut buf) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => continue,
            };
            let ft = FiveTuple {
                transport: Transport::Udp,
                client: from,
                server: local,
            };
            let sink = || Sink::Udp {
                socket: socket.clone(),
                client: from,
            };
            let a = {
                let mut core = shared.core();
                let mut binder = IoBinder {
                    shared,
                    sink: &sink,
                };
                let a = core.handle_client(&ft, &buf[..len], Now::system(), &mut out, &mut binder);
                act(a, |h| h.socket.clone())
            };
            match a {
                Act::None => {}
                Act::Reply => send_udp(socket, &out, from).await,
                Act::Relay(relay, peer, payload) => send_udp(&relay, &buf[payload], peer).await,
            }
        }
    }
}

pub(super) async fn relay_loop(
    shared: Arc<Shared>,
    id: AllocId,
    socket: Arc<UdpSocket>,
    sink: Sink,
    stop: CancellationToken,
) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = relay_serve(&shared, id, &socket, &sink) => {}
    }
}

async fn relay_serve(shared: &Shared, id: AllocId, socket: &UdpSocket, sink: &Sink) {
    let mut buf = vec![0u8; PEER_HEADROOM + 65536 + PEER_TAILROOM + 1];
    let max = PEER_HEADROOM + 65535;
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        for _ in 0..BATCH {
            let (len, peer) = match socket.try_recv_from(&mut buf[PEER_HEADROOM..max]) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => continue,
            };
            let range = shared
                .core()
                .handle_peer(id, peer, &mut buf, len, Instant::now());
            let Some(range) = range else { continue };
            match sink {
                Sink::Udp { socket, client } => send_udp(socket, &buf[range], *client).await,
                Sink::Stream(tx) => {
                    // A full queue means the client cannot keep up: drop, as UDP would.
                    let _ = tx.try_send(buf[range].to_vec());
                }
            }
        }
    }
}
