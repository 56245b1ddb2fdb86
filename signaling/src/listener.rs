//! The HTTP and HTTPS listeners: accept loops with per-IP and total connection caps, an idle
//! timeout on every connection, a header-read timeout, and graceful shutdown.
//!
//! Every TCP connection is counted from `accept` until its socket closes, WebSockets included
//! (an upgraded connection keeps its [`ConnPermit`]). A connection over a cap is closed at once,
//! so one address holding its maximum never stops others from being served.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics as m;

/// Timeouts of one listener's connections.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Time to receive a request's headers, and to start the next one on a kept-alive connection.
    pub header_read: Duration,
    /// Time without a byte read or written before the connection is closed.
    pub idle: Duration,
}

/// Time a TLS client has to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time an in-flight request has to finish once shutdown began.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Whether a request arrived over TLS (a request extension; the security headers add HSTS).
#[derive(Debug, Clone, Copy)]
pub struct OverTls(pub bool);

/// Counts open connections per IP (IPv4 address or IPv6 /64) and in total, and refuses those
/// over the caps.
#[derive(Debug)]
pub struct ConnGate {
    per_ip: usize,
    total: usize,
    open: Mutex<(HashMap<IpAddr, usize>, usize)>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    PerIp,
    Total,
}

impl ConnGate {
    pub fn new(per_ip: usize, total: usize) -> Arc<ConnGate> {
        Arc::new(ConnGate {
            per_ip,
            total,
            open: Mutex::new((HashMap::new(), 0)),
        })
    }

    /// A permit for one more connection from `ip`, released when dropped.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnPermit, Refusal> {
        let ip = crate::throttle::client_key(ip);
        let mut open = self.lock();
        if open.1 >= self.total {
            return Err(Refusal::Total);
        }
        let n = open.0.entry(ip).or_insert(0);
        if *n >= self.per_ip {
            return Err(Refusal::PerIp);
        }
        *n += 1;
        open.1 += 1;
        metrics::gauge!(m::HTTP_CONNECTIONS).set(open.1 as f64);
        Ok(ConnPermit {
            gate: self.clone(),
            ip,
        })
    }

    fn release(&self, ip: IpAddr) {
        let mut open = self.lock();
        if let Some(n) = open.0.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                open.0.remove(&ip);
            }
        }
        open.1 = open.1.saturating_sub(1);
        metrics::gauge!(m::HTTP_CONNECTIONS).set(open.1 as f64);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (HashMap<IpAddr, usize>, usize)> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One admitted connection.
#[derive(Debug)]
pub struct ConnPermit {
    gate: Arc<ConnGate>,
    ip: IpAddr,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.gate.release(self.ip);
    }
}

/// A socket that fails with `TimedOut` once nothing was read or written for `idle`, and holds
/// its connection's permit until it is dropped.
pub struct IdleIo<T> {
    inner: T,
    idle: Duration,
    last_activity: Instant,
    timer: Pin<Box<Sleep>>,
    _permit: ConnPermit,
}

impl<T> IdleIo<T> {
    pub fn new(inner: T, idle: Duration, permit: ConnPermit) -> Self {
        let now = Instant::now();
        IdleIo {
            inner,
            idle,
            last_activity: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
            _permit: permit,
        }
    }

    /// `Err` once the connection has been idle too long; otherwise arms the timer's waker.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        // The timer is only moved when it fires, not on every read and write.
        while self.timer.as_mut().poll(cx).is_ready() {
            let deadline = self.last_activity + self.idle;
            if Instant::now() >= deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "connection idle"));
            }
            self.timer.as_mut().reset(deadline);
        }
        Ok(())
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.last_activity = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending => match this.poll_idle(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    this.last_activity = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending => match this.poll_idle(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    this.last_activity = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending => match this.poll_idle(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// What every accepted connection is served with.
#[derive(Clone)]
pub struct Serving {
    pub router: Router,
    pub gate: Arc<ConnGate>,
    pub timeouts: Timeouts,
    pub shutdown: CancellationToken,
}

impl Serving {
    /// Accepts plain HTTP connections until shutdown; each is served on its own task.
    pub async fn http(self, tcp: TcpListener, conns: TaskTracker) {
        while let Some((stream, peer, permit)) = self.accept(&tcp).await {
            let io = IdleIo::new(stream, self.timeouts.idle, permit);
            conns.spawn(self.clone().serve(io, peer, false));
        }
    }

    /// Accepts TLS connections until shutdown. Each handshake runs on its own task, bounded by
    /// [`HANDSHAKE_TIMEOUT`]; there is no shared pool of handshake slots, so silent sockets (which
    /// cost no CPU) never delay a real client's handshake: the connection caps bound them.
    pub async fn https(self, tcp: TcpListener, acceptor: TlsAcceptor, conns: TaskTracker) {
        while let Some((stream, peer, permit)) = self.accept(&tcp).await {
            let io = IdleIo::new(stream, self.timeouts.idle, permit);
            let acceptor = acceptor.clone();
            let serving = self.clone();
            conns.spawn(async move {
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io));
                let handshake = tokio::select! {
                    _ = serving.shutdown.cancelled() => return,
                    h = handshake => h,
                };
                match handshake {
                    Ok(Ok(tls)) => serving.serve(tls, peer, true).await,
                    Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    }

    /// The next admitted connection, or `None` at shutdown. Connections over a cap are closed.
    async fn accept(&self, tcp: &TcpListener) -> Option<(TcpStream, SocketAddr, ConnPermit)> {
        loop {
            let accepted = tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                a = tcp.accept() => a,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Usually out of descriptors: wait for some to close rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match self.gate.admit(peer.ip()) {
                // No TCP_NODELAY (as under `axum::serve` before): with it every message of a
                // join's broadcast left as its own segment, and sustained joins fell 16%.
                Ok(permit) => {
                    return Some((stream, peer, permit));
                }
                Err(refusal) => {
                    let reason = match refusal {
                        Refusal::PerIp => "per_ip",
                        Refusal::Total => "total",
                    };
                    metrics::counter!(m::HTTP_CONNECTIONS_REFUSED, "reason" => reason).increment(1);
                    tracing::debug!(%peer, reason, "connection refused: over the cap");
                    drop(stream);
                }
            }
        }
    }

    /// Serves HTTP/1.1 (with upgrades, for WebSockets) on one connection.
    async fn serve<I>(self, io: I, peer: SocketAddr, tls: bool)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let router = self.router;
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(OverTls(tls));
            let mut router = router.clone();
            async move {
                Ok::<_, Infallible>(
                    tower_service::Service::call(&mut router, req)
                        .await
                        .unwrap_or_else(|never| match never {}),
                )
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.timeouts.header_read)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            _ = self.shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                match tokio::time::timeout(SHUTDOWN_GRACE, conn.as_mut()).await {
                    Ok(r) => r,
                    Err(_) => return,
                }
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, "connection ended: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_ip_and_in_total() {
        let gate = ConnGate::new(2, 3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = gate.admit(a).unwrap();
        let _a2 = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).unwrap_err(), Refusal::PerIp);
        let _b1 = gate.admit(b).unwrap();
        assert_eq!(gate.admit(b).unwrap_err(), Refusal::Total);
        drop(a1);
        assert!(gate.admit(b).is_ok());
    }
}
