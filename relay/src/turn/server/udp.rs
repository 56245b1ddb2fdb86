//! UDP: the listener loop (client packets in, answers and relayed data out) and the relay loop,
//! which reads every allocation's relay socket and frames peer data in place for the clients.
//!
//! Both move datagrams in batches: the listener takes up to [`RECV_BATCH`] per `recvmmsg`; the
//! relay loop asks its level-triggered epoll set which relay sockets are ready, reads one
//! datagram from each into one arena, frames them all under one lock of the core and sends
//! those for UDP clients with one `sendmmsg` out of the listener. A socket with more waiting is
//! reported again on the next round, so each socket's datagrams keep their order and no socket
//! can starve the others.
//!
//! Relay to relay (a client sends to the relayed address of another allocation of this
//! server, as two relay-only browsers do): the data is handed to that allocation in process
//! ([`hand_over`]) instead of leaving one relay socket and arriving on the other.

use super::batch_io::{Epoll, RecvBatch, SendBatch, DATAGRAM_MAX};
use super::sockets::IoBinder;
use super::{Shared, Sink, TurnCore};
use crate::turn::core::{
    AllocId, ClientAction, FiveTuple, Now, Transport, PEER_HEADROOM, PEER_TAILROOM,
};
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams the listener takes per `recvmmsg`.
pub(super) const RECV_BATCH: usize = 32;
/// Room the relay loop needs to receive and frame one datagram of any size.
const SLOT: usize = PEER_HEADROOM + DATAGRAM_MAX + PEER_TAILROOM;
/// The relay loop's arena: a round of typical media datagrams (up to ~1.5 KB each, one per ready
/// socket, at most 64 sockets) plus one of the largest size. Only touched pages are resident.
const ARENA: usize = 64 * 2048 + SLOT;

pub(super) enum Act {
    None,
    Reply,
    Relay(Arc<std::net::UdpSocket>, SocketAddr, Range<usize>),
}

pub(super) fn act<H>(
    a: ClientAction<'_, H>,
    socket: impl Fn(&H) -> Arc<std::net::UdpSocket>,
) -> Act {
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

/// What became of client data sent to `peer` ([`hand_over`]).
pub(super) enum HandOver {
    /// `peer` is no allocation of this server: the data leaves through the relay socket.
    NotLocal,
    /// The receiving allocation refused it (no permission, over its cap); the core counted it.
    Dropped,
    /// Framed for the receiving allocation's client: `.1` is the frame's range in the buffer.
    Deliver(Sink, Range<usize>),
}

/// Relay to relay: data the client of five-tuple `ft` sends to `peer`, when `peer` is the
/// relayed address of another allocation of this server, is handed to that allocation here —
/// framed (appended to `buf`) exactly as if it had arrived on that allocation's relay socket
/// from the sender's relayed address, after the same permission and bandwidth checks — which
/// saves the send, the readiness and the receive of a trip through the kernel.
pub(super) fn hand_over(
    core: &mut TurnCore,
    ft: &FiveTuple,
    peer: SocketAddr,
    payload: &[u8],
    buf: &mut Vec<u8>,
    now: Instant,
) -> HandOver {
    let Some(to) = core.allocation_at(peer) else {
        return HandOver::NotLocal;
    };
    let Some(from) = core
        .allocation_of(ft)
        .and_then(|id| core.relayed_address(id))
    else {
        return HandOver::NotLocal;
    };
    let at = buf.len();
    buf.resize(at + PEER_HEADROOM, 0);
    buf.extend_from_slice(payload);
    buf.resize(buf.len() + PEER_TAILROOM, 0);
    let frame = core.handle_peer(to, from, &mut buf[at..], payload.len(), now);
    match (frame, core.handle(to)) {
        (Some(r), Some(h)) => HandOver::Deliver(h.sink.clone(), at + r.start..at + r.end),
        _ => {
            buf.truncate(at);
            HandOver::Dropped
        }
    }
}

/// Sends one datagram out of a relay socket to a peer. Relay sockets are not watched for write
/// readiness: when the kernel's send buffer (1 MiB) is full the datagram is dropped, as on a
/// congested link. Errors reported for earlier sends (ICMP) need nothing either.
pub(super) fn send_to_peer(socket: &std::net::UdpSocket, data: &[u8], to: SocketAddr) {
    let _ = socket.send_to(data, to);
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
    let mut batch = RecvBatch::new(RECV_BATCH);
    let mut out = Vec::new();
    // Relay-to-relay frames of one batch, sent together at its end.
    let mut handed = Vec::new();
    let mut to_clients = SendBatch::default();
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        let mut n = 0;
        // A batch that is not full emptied the queue (the listener is unconnected, so no error
        // report stops a batch early): answering WouldBlock lets tokio clear the readiness now,
        // unless a datagram was signalled meanwhile, instead of after one more empty call.
        let _ = socket.try_io(Interest::READABLE, || {
            n = batch.recv(socket.as_fd())?;
            if n < RECV_BATCH {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(())
            }
        });
        for i in 0..n {
            let Some((from, pkt)) = batch.get(i) else {
                continue;
            };
            let ft = FiveTuple {
                transport: Transport::Udp,
                client: from,
                server: local,
            };
            let sink = || Sink::Udp(from);
            let now = Now::system();
            let (a, local) = {
                let mut core = shared.core();
                let mut binder = IoBinder {
                    shared,
                    sink: &sink,
                };
                let a = core.handle_client(&ft, pkt, now, &mut out, &mut binder);
                let a = act(a, |h| h.socket.clone());
                let local = match &a {
                    Act::Relay(_, peer, payload) => hand_over(
                        &mut core,
                        &ft,
                        *peer,
                        &pkt[payload.clone()],
                        &mut handed,
                        now.mono,
                    ),
                    _ => HandOver::NotLocal,
                };
                (a, local)
            };
            match (a, local) {
                (_, HandOver::Deliver(Sink::Udp(client), frame)) => to_clients.push(frame, client),
                (_, HandOver::Deliver(Sink::Stream(outbox), frame)) => {
                    outbox.push(&handed[frame]);
                }
                (_, HandOver::Dropped) | (Act::None, _) => {}
                (Act::Reply, _) => send_udp(socket, &out, from).await,
                (Act::Relay(relay, peer, payload), HandOver::NotLocal) => {
                    send_to_peer(&relay, &pkt[payload], peer)
                }
            }
        }
        flush(socket, &mut to_clients, &handed).await;
        to_clients.clear();
        handed.clear();
    }
}

pub(super) async fn relay_loop(
    shared: Arc<Shared>,
    relays: AsyncFd<Arc<Epoll>>,
    listener: Arc<UdpSocket>,
) {
    let stop = shared.shutdown.clone();
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = relay_serve(&shared, &relays, &listener) => {}
    }
}

/// A ready relay socket of one round: its allocation, socket and client.
struct Ready {
    id: AllocId,
    socket: Arc<std::net::UdpSocket>,
    sink: Sink,
}

/// A datagram read in one round: which [`Ready`] socket, from whom, where in the arena (its
/// slot starts at `at`, the payload `PEER_HEADROOM` bytes later), and once framed, the frame.
struct Got {
    ready: usize,
    peer: SocketAddr,
    at: usize,
    len: usize,
    frame: Option<Range<usize>>,
}

async fn relay_serve(shared: &Shared, relays: &AsyncFd<Arc<Epoll>>, listener: &UdpSocket) {
    let mut tokens = Vec::with_capacity(64);
    let mut ready: Vec<Ready> = Vec::with_capacity(64);
    let mut got: Vec<Got> = Vec::with_capacity(64);
    let mut arena = vec![0u8; ARENA];
    let mut to_clients = SendBatch::default();
    loop {
        let Ok(mut guard) = relays.readable().await else {
            return;
        };
        // No ready socket left: clear the readiness (only if no new event came meanwhile).
        match guard.try_io(|fd| match fd.get_ref().ready(&mut tokens) {
            Ok(0) => Err(io::ErrorKind::WouldBlock.into()),
            r => r,
        }) {
            Ok(Ok(_)) => {}
            Err(_would_block) => continue,
            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(Err(e)) => {
                // Not expected for a valid epoll set; do not spin on it.
                if let Some(suppressed) = shared.logs.check("turn-relay-poll") {
                    tracing::warn!(error = %e, suppressed, "TURN relay polling failed");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        drop(guard);

        // 1. The ready allocations' sockets and clients, under one lock.
        ready.clear();
        {
            let core = shared.core();
            for &t in &tokens {
                let id = AllocId::from_bits(t);
                if let Some(h) = core.handle(id) {
                    ready.push(Ready {
                        id,
                        socket: h.socket.clone(),
                        sink: h.sink.clone(),
                    });
                }
            }
        }

        // 2. One datagram from each, side by side in the arena.
        got.clear();
        let mut at = 0;
        for (i, r) in ready.iter().enumerate() {
            if at + SLOT > arena.len() {
                break; // the rest are reported again next round
            }
            let room = &mut arena[at + PEER_HEADROOM..at + PEER_HEADROOM + DATAGRAM_MAX];
            if let Ok((len, peer)) = r.socket.recv_from(room) {
                got.push(Got {
                    ready: i,
                    peer,
                    at,
                    len,
                    frame: None,
                });
                at += PEER_HEADROOM + len + PEER_TAILROOM;
            }
        }

        // 3. Framed in place for their clients, under one lock.
        {
            let mut core = shared.core();
            let now = Instant::now();
            for g in got.iter_mut() {
                let slot = &mut arena[g.at..g.at + PEER_HEADROOM + g.len + PEER_TAILROOM];
                g.frame = core
                    .handle_peer(ready[g.ready].id, g.peer, slot, g.len, now)
                    .map(|r| g.at + r.start..g.at + r.end);
            }
        }

        // 4. Out: UDP clients in one sendmmsg, stream clients into their writers' queues.
        to_clients.clear();
        for g in &got {
            let Some(frame) = g.frame.clone() else {
                continue;
            };
            match &ready[g.ready].sink {
                Sink::Udp(client) => to_clients.push(frame, *client),
                Sink::Stream(outbox) => outbox.push(&arena[frame]),
            }
        }
        flush(listener, &mut to_clients, &arena).await;
        // Release the sockets: a dropped allocation's socket closes here at the latest.
        ready.clear();
    }
}

/// Sends every datagram of `batch` (bytes in `buf`) out of the listener, waiting while its
/// send buffer is full; a datagram the kernel refuses outright is skipped.
async fn flush(listener: &UdpSocket, batch: &mut SendBatch, buf: &[u8]) {
    let mut sent = 0;
    while sent < batch.len() {
        match listener.try_io(Interest::WRITABLE, || {
            batch.send(listener.as_fd(), buf, sent)
        }) {
            Ok(n) => sent += n.max(1),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if listener.writable().await.is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => sent += 1,
        }
    }
}
