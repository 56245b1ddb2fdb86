//! The `unsafe` island of the TURN server: the Linux system calls that move many datagrams per
//! call and that std, tokio and socket2 do not offer — `recvmmsg`, `sendmmsg` and a
//! level-triggered `epoll` set of relay sockets. Each is wrapped in a small safe type here so the
//! rest of the crate keeps denying `unsafe_code`.
//!
//! Why not a crate: `quinn-udp` receives with `recvmmsg` but sends one destination per call
//! (GSO), has no readiness set, and its socket state turns on GRO, PMTU probing and kernel
//! timestamps, which a relay does not want; `nix`'s `sendmmsg` results read addresses it never
//! initialised. These wrappers are small, allocate nothing per call and are covered by the
//! TURN tests over real sockets.
#![allow(unsafe_code)]

use socket2::{SockAddr, SockAddrStorage};
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A level-triggered epoll set: a socket that still holds data after one read is reported
/// again by the next [`Epoll::wait`], so one read per readiness suffices (no read that only
/// finds the socket empty).
#[derive(Debug)]
pub(super) struct Epoll(OwnedFd);

impl Epoll {
    pub(super) fn new() -> io::Result<Epoll> {
        // SAFETY: plain system call; a non-negative result is a new descriptor we own.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Watches `fd` for input; [`Epoll::wait`] reports it with `token`.
    pub(super) fn add(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: both descriptors are open (borrowed), `ev` lives across the call.
        let r = unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut ev,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Stops watching `fd` (closing it does too, once no copy of it is left).
    pub(super) fn delete(&self, fd: BorrowedFd<'_>) {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as in `add`. An error (not watched) needs no handling.
        unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd.as_raw_fd(),
                &mut ev,
            )
        };
    }

    /// The tokens of up to `tokens.capacity()` ready sockets, without waiting; `Ok(0)` when none
    /// is ready.
    pub(super) fn ready(&self, tokens: &mut Vec<u64>) -> io::Result<usize> {
        const MAX: usize = 64;
        let mut evs = [MaybeUninit::<libc::epoll_event>::uninit(); MAX];
        // SAFETY: the kernel writes at most MAX events into `evs`.
        let n = unsafe {
            libc::epoll_wait(
                self.0.as_raw_fd(),
                evs.as_mut_ptr().cast(),
                MAX as libc::c_int,
                0,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        tokens.clear();
        for ev in &evs[..n as usize] {
            // SAFETY: the first `n` events were written by the kernel.
            let ev = unsafe { ev.assume_init() };
            tokens.push(ev.u64);
        }
        Ok(n as usize)
    }
}

/// Registers the epoll set with tokio, so a task can await its readiness (some socket in it
/// ready to read).
pub(super) fn watch(epoll: Arc<Epoll>) -> io::Result<AsyncFd<Arc<Epoll>>> {
    // SAFETY: the descriptor is the `OwnedFd` inside the `Epoll`, which the `Arc` the `AsyncFd`
    // owns keeps open and unchanged for the `AsyncFd`'s whole life.
    unsafe { AsyncFd::register_with_interest(epoll, Interest::READABLE) }.map_err(|e| e.into())
}

impl AsRawFd for Epoll {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl AsFd for Epoll {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Room for one datagram of any size (the largest UDP payload fits in 65535 bytes).
pub(super) const DATAGRAM_MAX: usize = 65535;

/// `slots` receive buffers of [`DATAGRAM_MAX`] bytes for one `recvmmsg` call. The memory is
/// reserved once; only the pages datagrams are written to become resident.
pub(super) struct RecvBatch {
    bufs: Vec<u8>,
    names: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    received: usize,
}

// SAFETY: the raw pointers in `iovs` and `hdrs` point into `bufs` and `names`, owned by the
// same value and rebuilt before every call.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    pub(super) fn new(slots: usize) -> RecvBatch {
        // SAFETY (zeroed): sockaddr_storage, iovec and mmsghdr are plain data; zero is valid.
        RecvBatch {
            bufs: vec![0u8; slots * DATAGRAM_MAX],
            names: vec![unsafe { std::mem::zeroed() }; slots],
            iovs: vec![unsafe { std::mem::zeroed() }; slots],
            hdrs: vec![unsafe { std::mem::zeroed() }; slots],
            received: 0,
        }
    }

    /// Receives up to the batch size of datagrams from the non-blocking socket `fd` in one
    /// call; `WouldBlock` when none is waiting.
    pub(super) fn recv(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        self.received = 0;
        let base = self.bufs.as_mut_ptr();
        for (i, ((iov, name), hdr)) in self
            .iovs
            .iter_mut()
            .zip(self.names.iter_mut())
            .zip(self.hdrs.iter_mut())
            .enumerate()
        {
            // SAFETY: `i * DATAGRAM_MAX` is inside `bufs` (slots × DATAGRAM_MAX bytes).
            iov.iov_base = unsafe { base.add(i * DATAGRAM_MAX) }.cast();
            iov.iov_len = DATAGRAM_MAX;
            hdr.msg_hdr = libc::msghdr {
                msg_name: (name as *mut libc::sockaddr_storage).cast(),
                msg_namelen: std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
                msg_iov: iov,
                msg_iovlen: 1,
                msg_control: std::ptr::null_mut(),
                msg_controllen: 0,
                msg_flags: 0,
            };
            hdr.msg_len = 0;
        }
        // SAFETY: every header points at its own name and buffer slot, which outlive the call.
        let n = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                self.hdrs.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.received = n as usize;
        Ok(self.received)
    }

    /// Datagram `i` of the last [`RecvBatch::recv`]: its sender (`None` for an address family
    /// other than IPv4/IPv6, or a truncated datagram) and its bytes.
    pub(super) fn get(&self, i: usize) -> Option<(SocketAddr, &[u8])> {
        if i >= self.received {
            return None;
        }
        let hdr = &self.hdrs[i];
        if hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            return None;
        }
        let mut storage = SockAddrStorage::zeroed();
        // SAFETY: `sockaddr_storage` is the platform type `SockAddrStorage` wraps, and the
        // kernel wrote `msg_namelen` bytes of a socket address into `names[i]`.
        let addr = unsafe {
            *storage.view_as::<libc::sockaddr_storage>() = self.names[i];
            SockAddr::new(storage, hdr.msg_hdr.msg_namelen)
        };
        let from = addr.as_socket()?;
        let start = i * DATAGRAM_MAX;
        Some((from, &self.bufs[start..start + hdr.msg_len as usize]))
    }
}

/// Datagrams queued for one `sendmmsg` call: each a range of a caller's buffer and a
/// destination. Reuses its vectors, so a batch allocates nothing once warmed up.
#[derive(Default)]
pub(super) struct SendBatch {
    items: Vec<(Range<usize>, SockAddr)>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers in `iovs` and `hdrs` only live during `send`, which rebuilds them.
unsafe impl Send for SendBatch {}

impl SendBatch {
    pub(super) fn push(&mut self, range: Range<usize>, to: SocketAddr) {
        self.items.push((range, SockAddr::from(to)));
    }
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }
    pub(super) fn clear(&mut self) {
        self.items.clear();
    }

    /// Sends the queued datagrams from index `from` on, their bytes taken from `buf`, with one
    /// `sendmmsg` on the non-blocking socket `fd`; returns how many the kernel took (an error
    /// only when it took none).
    pub(super) fn send(
        &mut self,
        fd: BorrowedFd<'_>,
        buf: &[u8],
        from: usize,
    ) -> io::Result<usize> {
        let items = &self.items[from..];
        self.iovs.clear();
        self.hdrs.clear();
        self.iovs.extend(items.iter().map(|(r, _)| {
            let b = &buf[r.clone()];
            libc::iovec {
                iov_base: b.as_ptr() as *mut libc::c_void,
                iov_len: b.len(),
            }
        }));
        for ((_, addr), iov) in items.iter().zip(self.iovs.iter_mut()) {
            // SAFETY: mmsghdr is plain data; all-zero is a valid empty header.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
            h.msg_hdr.msg_namelen = addr.len();
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            self.hdrs.push(h);
        }
        if self.hdrs.is_empty() {
            return Ok(0);
        }
        // SAFETY: every header points into `items`, `iovs` and `buf`, which outlive the call
        // and are not modified during it.
        let n = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                self.hdrs.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}
