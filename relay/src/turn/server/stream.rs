//! TCP and TLS: the accept loop with its connection caps, and per connection a reader that
//! frames STUN and ChannelData off the stream and a writer that batches what goes back.
//!
//! A connection's memory follows its traffic: the read buffer starts at [`READ_INITIAL`] and
//! grows only as far as the largest frame being read needs (at most two 64 KiB frames), then
//! shrinks back. What goes to the client is appended to its [`Outbox`], a byte buffer bounded
//! by [`OUTBOX_LIMIT`] (no allocation per frame); the writer takes all of it at once, and a
//! buffer that grew large in a burst is freed once written.

use super::sockets::IoBinder;
use super::udp::{act, hand_over, send_to_peer, send_udp, Act, HandOver};
use super::{Shared, Sink};
use crate::turn::core::{FiveTuple, Now, Transport};
use crate::turn::stun;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Bytes waiting for one TCP/TLS client at most (beyond: relayed data is dropped, answers wait).
const OUTBOX_LIMIT: usize = 256 * 1024;
/// A connection's read buffer while no large frame is in flight.
const READ_INITIAL: usize = 2048;
/// The most a read buffer grows to: the largest frame (a 65535-byte STUN body plus header)
/// twice, so a partly read frame and the next one always fit.
const READ_MAX: usize = 2 * 65536 + 64;
/// A buffer that grew beyond this in a burst is freed once written.
const WRITE_KEEP: usize = 16 * 1024;

/// The bytes waiting for one TCP/TLS connection's writer, frames back to back.
#[derive(Default)]
pub(super) struct Outbox {
    bytes: Mutex<Vec<u8>>,
    /// Signalled when bytes were added.
    filled: Notify,
    /// Signalled when the writer took the bytes.
    drained: Notify,
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.bytes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn try_push(&self, frame: &[u8]) -> bool {
        {
            let mut b = self.lock();
            if b.len() + frame.len() > OUTBOX_LIMIT {
                return false;
            }
            b.extend_from_slice(frame);
        }
        self.filled.notify_one();
        true
    }

    /// Relayed data: dropped when the client cannot keep up, as UDP would.
    pub(super) fn push(&self, frame: &[u8]) {
        let _ = self.try_push(frame);
    }

    /// An answer: waits for room instead (so a client that does not read stops being read).
    async fn push_wait(&self, frame: &[u8]) {
        while !self.try_push(frame) {
            self.drained.notified().await;
        }
    }
}
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
                // Boxed: a TLS session is large, and inline it would size every plain TCP
                // connection's task too.
                Some(acceptor) => {
                    let hs = tokio::select! {
                        _ = sh.shutdown.cancelled() => None,
                        r = Box::pin(tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))) => r.ok().and_then(|r| r.ok()),
                    };
                    if let Some(s) = hs {
                        Box::pin(serve_stream(&sh, s, ft, accepted)).await;
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
    let outbox = Arc::new(Outbox::default());
    tokio::select! {
        _ = shared.shutdown.cancelled() => {}
        _ = read_stream(shared, rd, &outbox, ft, accepted + shared.unallocated_timeout) => {}
        _ = write_stream(wr, &outbox) => {}
    }
    let handle = shared.core().remove_five_tuple(&ft);
    drop(handle);
}

async fn write_stream<W: AsyncWrite + Unpin>(mut wr: W, outbox: &Outbox) {
    // Swapped with the outbox's buffer: the writer writes one while frames go into the other.
    let mut taken = Vec::new();
    loop {
        std::mem::swap(&mut *outbox.lock(), &mut taken);
        if taken.is_empty() {
            outbox.filled.notified().await;
            continue;
        }
        outbox.drained.notify_one();
        if wr.write_all(&taken).await.is_err() || wr.flush().await.is_err() {
            return;
        }
        taken.clear();
        if taken.capacity() > WRITE_KEEP {
            taken = Vec::new();
        }
    }
}

/// Reads frames until the connection ends. Without an allocation the connection lives until
/// `deadline` at most, however much it sends (a byte now and then must not hold a slot).
async fn read_stream<R: AsyncRead + Unpin>(
    shared: &Arc<Shared>,
    mut rd: R,
    outbox: &Arc<Outbox>,
    ft: FiveTuple,
    deadline: tokio::time::Instant,
) {
    let mut allocated = false;
    let mut checked = tokio::time::Instant::now();
    let mut buf = vec![0u8; READ_INITIAL];
    let mut out = Vec::new();
    let mut filled = 0;
    let sink = || Sink::Stream(outbox.clone());
    loop {
        let mut start = 0;
        while let Some(fr) = stun::framing(&buf[start..filled]) {
            let flen = match fr {
                stun::Framing::Stun(n) => n,
                stun::Framing::ChannelData(_, n) => 4 + stun::pad4(n),
                stun::Framing::Invalid => return,
            };
            if filled - start < flen {
                if flen > buf.len() - start {
                    // Make room for the whole frame (and the next frame's beginning).
                    buf.copy_within(start..filled, 0);
                    filled -= start;
                    start = 0;
                    let want = (flen + READ_INITIAL).min(READ_MAX);
                    if want > buf.len() {
                        buf.resize(want, 0);
                    }
                }
                break;
            }
            let frame = &buf[start..start + flen];
            let now = Now::system();
            // Only relay-to-relay data lands here, one frame at a time.
            let mut handed = Vec::new();
            let (a, local) = {
                let mut core = shared.core();
                let mut binder = IoBinder {
                    shared,
                    sink: &sink,
                };
                let a = core.handle_client(&ft, frame, now, &mut out, &mut binder);
                let a = act(a, |h| h.socket.clone());
                let local = match &a {
                    Act::Relay(_, peer, payload) => hand_over(
                        &mut core,
                        &ft,
                        *peer,
                        &frame[payload.clone()],
                        &mut handed,
                        now.mono,
                    ),
                    _ => HandOver::NotLocal,
                };
                (a, local)
            };
            match (a, local) {
                (_, HandOver::Deliver(Sink::Udp(client), r)) => {
                    send_udp(&shared.udp, &handed[r], client).await
                }
                (_, HandOver::Deliver(Sink::Stream(to), r)) => to.push(&handed[r]),
                (_, HandOver::Dropped) | (Act::None, _) => {}
                (Act::Reply, _) => {
                    // Only requests create or delete allocations, and they are answered.
                    allocated = shared.core().allocation_of(&ft).is_some();
                    outbox.push_wait(&out).await;
                }
                (Act::Relay(relay, peer, payload), HandOver::NotLocal) => {
                    send_to_peer(&relay, &frame[payload], peer)
                }
            }
            start += flen;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if buf.len() > READ_INITIAL && filled <= READ_INITIAL {
            let pending = match stun::framing(&buf[..filled]) {
                Some(stun::Framing::Stun(n)) => n,
                Some(stun::Framing::ChannelData(_, n)) => 4 + stun::pad4(n),
                _ => 0,
            };
            if pending <= READ_INITIAL {
                // No large frame in flight any more: give the memory back.
                buf.truncate(READ_INITIAL);
                buf.shrink_to_fit();
            }
        }
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
