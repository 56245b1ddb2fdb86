//! Aula's media relay.
//!
//! - [`credentials`]: TURN REST API credentials shared with signaling.

pub mod credentials;
