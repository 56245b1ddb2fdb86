//! Aula's signaling service.
//!
//! - [`server`]: starts and stops everything: routes, listeners, timers, graceful shutdown.
//! - [`ws`]: one WebSocket connection: frames in and out, timers, limits; no class rules.
//!   `websocket` does the upgrade and sends large messages in bounded fragments.
//! - [`api`]: the admin REST API under `/api/v1`; [`web`] serves the embedded browser client.
//! - [`accounts`]: staff accounts (admins, teachers), sign-in sessions, the [`accounts::caller`]
//!   extractor that says who sends a request.
//! - [`app`]: the state every handler shares; [`sfu_bridge`] carries SFU calls and answers.
//! - [`hub`]: the sans-IO class state machine: classes, rosters, chat, teacher controls, resume.
//! - [`state`]: carries the hub's effects out to connection queues; slow consumers are kicked.
//! - `configured`: the runtime limits built from the settings sections (one source of defaults).
//! - [`listener`]: the HTTP(S) accept loops: connection caps, idle and header timeouts.
//! - [`fdlimit`]: the open-file limit the connection caps stay under.
//! - [`hygiene`]: security headers, `no-store` and the `Host` allow-list on every response.
//! - [`ice`], [`ratelimit`], [`per_ip`], [`throttle`], [`metrics`]: small helpers of the I/O
//!   layer.
//! - [`protocol`]: the class protocol v1 (serde types; the JSON Schema is generated from them).
//! - [`token`]: class tokens (HS256 JWTs: class, role, optional fixed name, expiry), clock passed in.
//! - [`store`]: persistent class records in an embedded SQLite database in the data directory.
//! - [`classlist`]: reading the class lists teachers type or paste (names, CSV).
//! - [`oidc`]: staff single sign-on with OpenID Connect: discovery, PKCE, ID-token checks, rules.
//! - [`text`]: what display names (and chat) may contain: no control or invisible characters.
//!
//! The configuration, generated secrets and TLS certificates are the process's, in `aula-config`.

// No `unsafe` here: the open-file limit goes through the `rlimit` crate.
#![deny(unsafe_code)]

pub mod accounts;
pub mod api;
pub mod app;
pub mod classlist;
mod configured;
pub mod fdlimit;
pub mod hub;
pub(crate) mod hygiene;
pub mod ice;
pub(crate) mod invite;
pub(crate) mod listener;
pub(crate) mod metrics;
pub mod oidc;
pub(crate) mod per_ip;
pub mod protocol;
pub(crate) mod ratelimit;
pub mod server;
pub(crate) mod sfu_bridge;
pub(crate) mod state;
pub mod store;
pub mod text;
pub(crate) mod throttle;
pub mod token;
pub(crate) mod web;
pub(crate) mod websocket;
pub mod ws;

// Random ids and tokens come from the same generator as the stored secrets.
use aula_config::secrets;
