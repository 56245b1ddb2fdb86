//! The SFU under test, whichever it is: Aula's (this tool's `sfu-server` child process) or
//! Janus (a process the caller started), behind the same three steps — publish, subscribe,
//! answer — and the same `/proc` readings.

use anyhow::{Context, Result};
use aula_relay::sfu::SfuStats;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::janus::Janus;
use super::server::{cpu_of, rss_of, Remote};
use super::CLASS;

pub(super) enum Peer {
    Aula(Remote),
    Janus(Janus),
}

fn decode(b64: &str) -> Result<String> {
    String::from_utf8(B64.decode(b64)?).context("SDP is not UTF-8")
}

impl Peer {
    /// Publishes the teacher's `offer`; returns the SFU's answer.
    pub(super) async fn publish(&self, offer: &str) -> Result<String> {
        match self {
            Peer::Aula(r) => decode(
                &r.call(format!("P {CLASS} teacher {}", B64.encode(offer)))
                    .await,
            ),
            Peer::Janus(j) => j.publish(offer).await,
        }
    }

    /// Subscribes subscriber `i`; returns the SFU's offer.
    pub(super) async fn subscribe(&self, i: usize) -> Result<String> {
        match self {
            Peer::Aula(r) => decode(&r.call(format!("S {CLASS} s{i}")).await),
            Peer::Janus(j) => j.subscribe(i).await,
        }
    }

    /// Subscriber `i`'s answer to that offer.
    pub(super) async fn answer(&self, i: usize, answer: &str) -> Result<()> {
        match self {
            Peer::Aula(r) => {
                r.call(format!("A {CLASS} s{i} {}", B64.encode(answer)))
                    .await;
                Ok(())
            }
            Peer::Janus(j) => j.answer(i, answer).await,
        }
    }

    /// The SFU's own counters (Aula only).
    pub(super) async fn stats(&self) -> Option<SfuStats> {
        match self {
            Peer::Aula(r) => Some(r.stats().await),
            Peer::Janus(_) => None,
        }
    }

    /// Aula's per-worker counters (see [`Remote::workers`]); none for Janus.
    pub(super) async fn workers(&self) -> Vec<(usize, u64, f64)> {
        match self {
            Peer::Aula(r) => r.workers().await,
            Peer::Janus(_) => Vec::new(),
        }
    }

    /// The SFU process's id.
    pub(super) fn pid(&self) -> u32 {
        match self {
            Peer::Aula(r) => r.pid(),
            Peer::Janus(j) => j.pid(),
        }
    }

    /// CPU seconds the SFU process used so far (user + system, all its threads).
    pub(super) fn cpu(&self) -> f64 {
        cpu_of(&format!("/proc/{}/stat", self.pid()))
    }

    /// The SFU process's resident memory.
    pub(super) fn rss_kib(&self) -> u64 {
        rss_of(self.pid())
    }
}
