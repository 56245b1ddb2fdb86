//! Aula's signaling service.
//!
//! - [`hub`]: the sans-IO class state machine: classes, rosters, chat, teacher controls, resume.
//! - [`protocol`]: the class protocol v1 (serde types; the JSON Schema is generated from them).
//! - [`settings`]: the whole configuration and its layered loader (defaults, file, `AULA_*`, flags).
//! - [`token`]: class tokens (HS256 JWTs: class, role, optional fixed name, expiry), clock passed in.
//! - [`store`]: persistent class records in an embedded SQLite database in the data directory.
//! - [`tls`]: rustls server configuration from a school's PEM files or a generated dev certificate.

pub mod hub;
pub mod protocol;
pub mod settings;
pub mod store;
pub mod tls;
pub mod token;
