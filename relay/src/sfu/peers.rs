//! The SFU's peers and classes: one [`Peer`] per publishing session or subscription, indexed by
//! (class, peer id, role) and by remote address; adding, removing and expiring them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::SdpPendingOffer;
use str0m::media::Mid;
use str0m::{Output, Rtc};
use tracing::info;

use super::core::{SfuCore, SfuEvent};
use super::negotiate::BROKEN;
use super::tracks::{Allowed, TrackIn, TrackOut};
use super::SfuError;

pub(super) type PeerKey = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Role {
    Publisher,
    Subscriber,
}

pub(super) struct Peer {
    pub(super) class: String,
    pub(super) id: String,
    pub(super) role: Role,
    pub(super) rtc: Rtc,
    pub(super) next_timeout: Instant,
    pub(super) pending: Option<SdpPendingOffer>,
    pub(super) tracks_in: Vec<TrackIn>,
    pub(super) tracks_out: Vec<TrackOut>,
    pub(super) connected: bool,
    pub(super) addrs: Vec<SocketAddr>,
    pub(super) queued: bool,
    /// The publisher gained m-lines while an offer to this subscriber was outstanding.
    pub(super) renegotiate: bool,
    /// Last cumulative NACK count per media, to export differences.
    pub(super) nacks_seen: HashMap<Mid, u64>,
    /// A publisher's index in [`Class::publishers`].
    pub(super) publisher: usize,
    /// What a publisher may send on.
    pub(super) allowed: Allowed,
    /// A subscriber's last bandwidth estimate (bits per second), shared again over its tracks
    /// whenever the publishers' layer bitrates are measured anew.
    pub(super) bandwidth: Option<u64>,
    /// When to probe the link of a subscriber that its estimate holds below its best layers.
    pub(super) reprobe_at: Option<Instant>,
    /// The DTLS fingerprint of the remote side's offer: a publisher offering with another one
    /// is a fresh browser connection (the old one failed), not a renegotiation.
    pub(super) fingerprint: Option<String>,
    /// Until it first connects: when it is dropped unless it has ([`SfuConfig::offer_timeout`]).
    pub(super) connect_by: Option<Instant>,
    /// A negotiation panicked inside str0m: its state is not to be used again.
    pub(super) broken: bool,
}

/// Someone who has published in a class (since the class's SFU state was created).
pub(super) struct ClassPublisher {
    pub(super) name: String,
    /// The current publishing session, if any.
    pub(super) session: Option<PeerKey>,
}

#[derive(Default)]
pub(super) struct Class {
    /// In order of first publishing; never reordered, because subscribers' media sections name
    /// publishers by index ([`Source::publisher`]).
    pub(super) publishers: Vec<ClassPublisher>,
    pub(super) subscribers: Vec<PeerKey>,
}

impl Class {
    pub(super) fn is_empty(&self) -> bool {
        self.subscribers.is_empty() && self.publishers.iter().all(|p| p.session.is_none())
    }
}

impl SfuCore {
    pub(super) fn insert_peer(
        &mut self,
        class: &str,
        id: &str,
        role: Role,
        rtc: Rtc,
        now: Instant,
    ) -> PeerKey {
        let key = self.next_key;
        self.next_key += 1;
        self.peers.insert(
            key,
            Peer {
                class: class.to_owned(),
                id: id.to_owned(),
                role,
                rtc,
                next_timeout: now,
                pending: None,
                tracks_in: Vec::new(),
                tracks_out: Vec::new(),
                connected: false,
                addrs: Vec::new(),
                queued: false,
                renegotiate: false,
                nacks_seen: HashMap::new(),
                publisher: 0,
                allowed: Allowed::ALL,
                bandwidth: None,
                reprobe_at: None,
                fingerprint: None,
                connect_by: Some(now + self.config.offer_timeout),
                broken: false,
            },
        );
        self.by_name
            .insert((class.to_owned(), id.to_owned(), role), key);
        let c = self.classes.entry(class.to_owned()).or_default();
        match role {
            Role::Publisher => {
                let index = match c.publishers.iter().position(|p| p.name == id) {
                    Some(i) => i,
                    None => {
                        c.publishers.push(ClassPublisher {
                            name: id.to_owned(),
                            session: None,
                        });
                        c.publishers.len() - 1
                    }
                };
                c.publishers[index].session = Some(key);
                self.peers.get_mut(&key).expect("just inserted").publisher = index;
                self.stats.publishers += 1;
            }
            Role::Subscriber => {
                c.subscribers.push(key);
                self.stats.subscribers += 1;
            }
        }
        key
    }

    pub(super) fn key_of(&self, class: &str, peer: &str, role: Role) -> Option<PeerKey> {
        self.by_name
            .get(&(class.to_owned(), peer.to_owned(), role))
            .copied()
    }

    /// Disconnects and forgets a peer: its publishing and its subscription. Returns whether it
    /// had either.
    pub fn remove(&mut self, class: &str, peer: &str) -> bool {
        let mut found = false;
        for role in [Role::Publisher, Role::Subscriber] {
            if let Some(key) = self.key_of(class, peer, role) {
                self.remove_key(key);
                found = true;
            }
        }
        found
    }

    /// Stops a peer's publishing only (its right to send was revoked); its subscription stays.
    /// Returns whether it published.
    pub fn unpublish(&mut self, class: &str, peer: &str) -> bool {
        match self.key_of(class, peer, Role::Publisher) {
            Some(key) => {
                self.remove_key(key);
                true
            }
            None => false,
        }
    }

    /// Forgets a peer whose str0m state a negotiation left broken (see [`guarded`]), without
    /// touching that state again.
    pub(super) fn drop_broken(&mut self, key: PeerKey, e: &SfuError) {
        if matches!(e, SfuError::Negotiation(m) if m == BROKEN) {
            if let Some(p) = self.peers.get_mut(&key) {
                p.broken = true;
            }
            self.remove_key(key);
        }
    }

    pub(super) fn remove_key(&mut self, key: PeerKey) {
        let Some(mut p) = self.peers.remove(&key) else {
            return;
        };
        // Tell the remote side (RTCP BYE, DTLS close_notify) before forgetting the peer.
        if !p.broken && p.rtc.is_alive() && p.rtc.close().is_ok() {
            for _ in 0..32 {
                match p.rtc.poll_output() {
                    Ok(Output::Transmit(t)) => self.transmits.push_back(t),
                    Ok(Output::Event(_)) => {}
                    Ok(Output::Timeout(_)) | Err(_) => break,
                }
                if !p.rtc.is_alive() {
                    break;
                }
            }
        }
        if !p.broken {
            p.rtc.disconnect();
        }
        self.by_name
            .remove(&(p.class.clone(), p.id.clone(), p.role));
        for a in &p.addrs {
            self.by_addr.remove(a);
        }
        match p.role {
            Role::Publisher => {
                if let Some(c) = self.classes.get_mut(&p.class) {
                    c.publishers[p.publisher].session = None;
                }
                self.stats.publishers -= 1;
                // A later session of this publisher must start at a keyframe for everyone.
                self.restart_video_of(&p.class, p.publisher);
            }
            Role::Subscriber => {
                if let Some(c) = self.classes.get_mut(&p.class) {
                    c.subscribers.retain(|k| *k != key);
                }
                self.stats.subscribers -= 1;
            }
        }
        if self.classes.get(&p.class).is_some_and(Class::is_empty) {
            self.classes.remove(&p.class);
        }
        info!(class = p.class, peer = p.id, role = ?p.role, "SFU peer removed");
    }

    /// Drops every peer whose [`Peer::connect_by`] has passed: an offer never answered (or an
    /// answer never followed by a connection) must not hold a slot of the pool.
    pub(super) fn expire_unconnected(&mut self, now: Instant) {
        let expired: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.connect_by.is_some_and(|t| t <= now))
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            if let Some(p) = self.peers.get(&key) {
                info!(class = p.class, peer = p.id, role = ?p.role, "SFU: peer did not connect in time");
                self.notices.push_back(SfuEvent::Disconnected {
                    class: p.class.clone(),
                    peer: p.id.clone(),
                });
                self.stats.expired += 1;
            }
            self.remove_key(key);
        }
    }
}
