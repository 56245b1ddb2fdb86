//! Aula's test kit: the tools the tests and the load tool share, kept out of the production
//! crates.
//!
//! - [`sfu_client`]: a headless WebRTC client on str0m that publishes synthetic VP8/Opus media
//!   and checks what a subscriber receives.
//! - [`sfu`]: small helpers of the SFU tests (polling, summaries).
//! - [`turn`]: a TURN server started for a test, and a TURN client over UDP, TCP or TLS built on
//!   the relay's own codec.
//! - [`mutate`]: the byte mutations the fuzz tests apply to valid inputs.
//! - [`net`]: TCP from a chosen source address, and waiting for the server to close.

#![deny(unsafe_code)]

pub mod mutate;
pub mod net;
pub mod sfu;
pub mod sfu_client;
pub mod turn;
