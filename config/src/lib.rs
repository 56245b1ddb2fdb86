//! Aula's process-wide configuration, shared by `aula serve` and `aula relay`.
//!
//! - [`settings`]: the whole configuration and its layered loader (defaults, file, `AULA_*`, flags).
//! - [`secrets`]: secrets generated on first run and kept in the data directory.
//! - [`tls`]: rustls server configuration from a school's PEM files or a generated dev certificate.
//! - [`Topology`]: how media flows in a class (a setting, and a field of the class protocol).

#![deny(unsafe_code)]

pub mod secrets;
pub mod settings;
pub mod tls;
mod topology;

pub use topology::Topology;
