//! The one `unsafe` island of the SFU: sending a batch of datagrams with a single `sendmmsg`
//! system call, which the socket types of std, tokio and socket2 do not offer, and reading a
//! worker thread's CPU clock. Kept in this module so the rest of the crate can deny
//! `unsafe_code`.
#![allow(unsafe_code)]

use std::os::fd::RawFd;

use socket2::SockAddr;
use str0m::net::Transmit;

/// Datagrams handed to the kernel in one `sendmmsg` call.
pub(super) const SEND_BATCH: usize = 64;

/// Reused buffers for `sendmmsg`, so a batch allocates nothing.
#[derive(Default)]
pub(super) struct SendBatch {
    /// The datagrams to send; [`SendBatch::send`] sends from an index on.
    pub(super) items: Vec<Transmit>,
    addrs: Vec<SockAddr>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers in `iovs` and `hdrs` only live during `send`, which rebuilds them.
unsafe impl Send for SendBatch {}

impl SendBatch {
    /// Sends `items[from..]` with one `sendmmsg`; returns how many the kernel took.
    pub(super) fn send(&mut self, fd: RawFd, from: usize) -> std::io::Result<usize> {
        let items = &self.items[from..];
        self.addrs.clear();
        self.iovs.clear();
        self.hdrs.clear();
        self.addrs
            .extend(items.iter().map(|t| SockAddr::from(t.destination)));
        self.iovs.extend(items.iter().map(|t| libc::iovec {
            iov_base: t.contents.as_ptr() as *mut libc::c_void,
            iov_len: t.contents.len(),
        }));
        for (addr, iov) in self.addrs.iter().zip(self.iovs.iter_mut()) {
            // SAFETY: mmsghdr is plain data; all-zero is a valid empty header.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
            h.msg_hdr.msg_namelen = addr.len();
            h.msg_hdr.msg_iov = iov as *mut libc::iovec;
            h.msg_hdr.msg_iovlen = 1;
            self.hdrs.push(h);
        }
        // SAFETY: every header points into `addrs`, `iovs` and `items`, which outlive the call
        // and are not modified during it.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                self.hdrs.len() as libc::c_uint,
                0,
            )
        };
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

/// CPU time the calling thread has used (zero if the clock cannot be read).
pub(super) fn thread_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and the clock id a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
