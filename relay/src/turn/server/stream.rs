//! TCP and TLS: the accept loop with its connection caps, and per connection a reader that
//! frames STUN and ChannelData off the stream and a writer that batches what goes back.

use super::sockets::IoBinder;
use super::udp::{act, send_udp, Act};
use super::{Shared, Sink};
use crate::turn::core::{FiveTuple, Now, Transport};
use crate::turn::stun;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Queued outgoing frames per TCP/TLS connection (beyond: relayed data is dropped).
const STREAM_QUEUE: usize = 512;
/// How often a TCP/TLS connection with an allocation checks that it still has one.
const ALLOCATION_CHECK: Duration = Duration::from_secs(60);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn tcp_accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let transport = if tls.is_some() {
        Transport::Tls
    } else {
        Transport::Tcp
    };
    let local = listener.local_addr().ok();
    loop {
        let (stream, client) = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    if let Some(suppressed) = shared.logs.check("turn-accept") {
                        tracing::warn!(error = %e, suppressed, "TURN accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Over a cap the connection is dropped, which closes it.
        if shared.connections.load(Ordering::Relaxed) >= shared.max_connections {
            if let Some(suppressed) = shared.logs.check("turn-max-connections") {
                tracing::warn!(
                    max = shared.max_connections,
                    suppressed,
                    "TURN TCP/TLS connection refused: the server holds its maximum"
                );
            }
            continue;
        }
        let Some(slot) = IpSlot::take(&shared, client.ip()) else {
            if let Some(suppressed) = shared.logs.check("turn-max-connections-per-ip") {
                tracing::warn!(
                    ip = %client.ip(),
                    max = shared.max_connections_per_ip,
                    suppressed,
                    "TURN TCP/TLS connection refused: this address holds its maximum"
                );
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let server = stream.local_addr().ok().or(local).expect("bound listener");
        let ft = FiveTuple {
            transport,
            client,
            server,
        };
        shared.connections.fetch_add(1, Ordering::Relaxed);
        let sh = shared.clone();
        let tls = tls.clone();
        shared.tracker.spawn(async move {
            let _slot = slot;
            let accepted = tokio::time::Instant::now();
            match tls {
                None => serve_stream(&sh, stream, ft, accepted).await,
                Some(acceptor) => {
                    let hs = tokio::select! {
                        _ = sh.shutdown.cancelled() => None,
                        r = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => r.ok().and_then(|r| r.ok()),
                    };
                    if let Some(s) = hs {
                        serve_stream(&sh, s, ft, accepted).await;
                    }
                }
            }
            sh.connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// One TCP/TLS connection's place in the per-IP count; released on drop.
struct IpSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl IpSlot {
    fn take(shared: &Arc<Shared>, ip: IpAddr) -> Option<IpSlot> {
        let mut map = shared
            .connections_per_ip
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= shared.max_connections_per_ip {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            shared: shared.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut map = self
            .shared
            .connections_per_ip
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

async fn serve_stream<S>(
    shared: &Arc<Shared>,
    stream: S,
    ft: FiveTuple,
    accepted: tokio::time::Instant,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, wr) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel::<Vec<u8>>(STREAM_QUEUE);
    tokio::select! {
        _ = shared.shutdown.cancelled() => {}
        _ = read_stream(shared, rd, &tx, ft, accepted + shared.unallocated_timeout) => {}
        _ = write_stream(wr, rx) => {}
    }
    let handle = shared.core().remove_five_tuple(&ft);
    drop(handle);
}

async fn write_stream<W: AsyncWrite + Unpin>(mut wr: W, mut rx: mpsc::Receiver<Vec<u8>>) {
    let mut batch = Vec::with_capacity(64 * 1024);
    while let Some(first) = rx.recv().await {
        batch.clear();
        batch.extend_from_slice(&first);
        while batch.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok(more) => batch.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if wr.write_all(&batch).await.is_err() || wr.flush().await.is_err() {
            return;
        }
    }
}

/// Reads frames until the connection ends. Without an allocation the connection lives until
/// `deadline` at most, however much it sends (a byte now and then must not hold a slot).
async fn read_stream<R: AsyncRead + Unpin>(
    shared: &Arc<Shared>,
    mut rd: R,
    tx: &mpsc::Sender<Vec<u8>>,
    ft: FiveTuple,
    deadline: tokio::time::Instant,
) {
    let mut allocated = false;
    let mut checked = tokio::time::Instant::now();
    // Largest frame: a 65535-byte STUN body plus header, so twice that always has room.
    let mut buf = vec![0u8; 2 * 65536 + 64];
    let mut out = Vec::with_capacity(1500);
    let mut filled = 0;
    let sink = || Sink::Stream(tx.clone());
    loop {
        let mut start = 0;
        while let Some(fr) = stun::framing(&buf[start..filled]) {
            let flen = match fr {
                stun::Framing::Stun(n) => n,
                stun::Framing::ChannelData(_, n) => 4 + stun::pad4(n),
                stun::Framing::Invalid => return,
            };
            if filled - start < flen {
                break;
            }
            let frame = &buf[start..start + flen];
            let a = {
                let mut core = shared.core();
                let mut binder = IoBinder {
                    shared,
                    sink: &sink,
                };
                let a = core.handle_client(&ft, frame, Now::system(), &mut out, &mut binder);
                act(a, |h| h.socket.clone())
            };
            match a {
                Act::None => {}
                Act::Reply => {
                    // Only requests create or delete allocations, and they are answered.
                    allocated = shared.core().allocation_of(&ft).is_some();
                    if tx.send(out.clone()).await.is_err() {
                        return;
                    }
                }
                Act::Relay(relay, peer, payload) => {
                    send_udp(&relay, &frame[payload], peer).await;
                }
            }
            start += flen;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if allocated && checked.elapsed() >= ALLOCATION_CHECK {
            // The allocation may have expired while the client kept sending.
            allocated = shared.core().allocation_of(&ft).is_some();
            checked = tokio::time::Instant::now();
        }
        let until = if allocated {
            tokio::time::Instant::now() + ALLOCATION_CHECK
        } else {
            deadline
        };
        let n = match tokio::time::timeout_at(until, rd.read(&mut buf[filled..])).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => n,
            Err(_) => {
                allocated = shared.core().allocation_of(&ft).is_some();
                checked = tokio::time::Instant::now();
                if !allocated && tokio::time::Instant::now() >= deadline {
                    return;
                }
                continue;
            }
        };
        filled += n;
    }
}
