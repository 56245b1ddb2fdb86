//! Aula's media relay.
//!
//! - [`credentials`]: TURN REST API credentials shared with signaling.
//! - [`net`]: the outward address the TURN relay and the SFU advertise by default.
//! - [`log_limit`]: a rate limit for log lines outside parties can trigger.
//! - [`turn`]: the TURN server (UDP, TCP, TLS) with secure defaults.
//! - [`sfu`]: the selective forwarding unit (str0m; one worker thread and UDP socket per core)
//!   for large classes.

// `unsafe` lives only in `sfu::send_batch` (sendmmsg, the thread CPU clock) and
// `turn::server::batch_io` (recvmmsg, sendmmsg, epoll), which allow it for themselves.
#![deny(unsafe_code)]

pub mod credentials;
pub(crate) mod log_limit;
pub mod net;
pub mod sfu;
pub mod turn;

/// The rustls version the TURN server's TLS listener takes a `ServerConfig` from.
pub use rustls;
