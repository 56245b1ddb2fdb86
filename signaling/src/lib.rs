//! Aula's signaling service.
//!
//! - [`protocol`]: the class protocol v1 (serde types; the JSON Schema is generated from them).

pub mod protocol;
