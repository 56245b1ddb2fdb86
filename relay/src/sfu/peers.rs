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
use super::layers::BandwidthHold;
use super::negotiate::BROKEN;
use super::stats::Counter;
use super::tracks::{Allowed, TrackIn, TrackOut};
use super::SfuError;
#[cfg(doc)]
use super::{tracks::Source, SfuConfig};

/// A peer's key in the core's tables: one per publishing session or subscription, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct PeerKey(u64);

impl PeerKey {
    /// The first key a core hands out.
    pub(super) const FIRST: PeerKey = PeerKey(1);

    /// The key after this one.
    fn next(self) -> PeerKey {
        PeerKey(self.0 + 1)
    }
}

/// Which of its two connections to the SFU a peer means: its publishing or its subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Role {
    Publisher,
    Subscriber,
}

/// One connection of a browser to the SFU: what both roles have, and the role's own state.
pub(super) struct Peer {
    pub(super) class: String,
    pub(super) id: String,
    pub(super) rtc: Rtc,
    pub(super) next_timeout: Instant,
    pub(super) connected: bool,
    pub(super) addrs: Vec<SocketAddr>,
    pub(super) queued: bool,
    /// Last cumulative NACK count per media, to export differences.
    pub(super) nacks_seen: HashMap<Mid, u64>,
    /// Until it first connects: when it is dropped unless it has ([`SfuConfig::offer_timeout`]).
    pub(super) connect_by: Option<Instant>,
    /// A negotiation panicked inside str0m: its state is not to be used again.
    pub(super) broken: bool,
    pub(super) kind: PeerKind,
}

/// A peer's role with the state only that role has.
pub(super) enum PeerKind {
    Publisher(Publishing),
    Subscriber(Subscription),
}

/// A publisher's own state.
pub(super) struct Publishing {
    /// Its index in [`Class::publishers`].
    pub(super) index: usize,
    /// What it may send on.
    pub(super) allowed: Allowed,
    /// The DTLS fingerprint of its offer: an offer with another one is a fresh browser
    /// connection (the old one failed), not a renegotiation.
    pub(super) fingerprint: Option<String>,
    pub(super) tracks_in: Vec<TrackIn>,
}

/// A subscriber's own state.
#[derive(Default)]
pub(super) struct Subscription {
    /// The SFU's offer waiting for the subscriber's answer.
    pub(super) pending: Option<SdpPendingOffer>,
    pub(super) tracks_out: Vec<TrackOut>,
    /// The publishers gained m-lines while an offer to this subscriber was outstanding.
    pub(super) renegotiate: bool,
    /// Its last bandwidth estimate (bits per second), shared again over its tracks whenever the
    /// publishers' layer bitrates are measured anew.
    pub(super) bandwidth: Option<u64>,
    /// When to probe its link again while its estimate holds it below its best layers.
    pub(super) reprobe_at: Option<Instant>,
    /// Whether its estimate is a little short of its current layers, and since when.
    pub(super) bandwidth_hold: BandwidthHold,
}

impl Publishing {
    /// A publisher's state before its class has placed it (see [`SfuCore::insert_peer`]).
    pub(super) fn new(allowed: Allowed, fingerprint: Option<String>) -> Self {
        Publishing {
            index: 0,
            allowed,
            fingerprint,
            tracks_in: Vec::new(),
        }
    }
}

impl PeerKind {
    pub(super) fn role(&self) -> Role {
        match self {
            PeerKind::Publisher(_) => Role::Publisher,
            PeerKind::Subscriber(_) => Role::Subscriber,
        }
    }
}

impl Peer {
    pub(super) fn role(&self) -> Role {
        self.kind.role()
    }

    pub(super) fn publishing(&self) -> Option<&Publishing> {
        match &self.kind {
            PeerKind::Publisher(p) => Some(p),
            PeerKind::Subscriber(_) => None,
        }
    }

    pub(super) fn publishing_mut(&mut self) -> Option<&mut Publishing> {
        match &mut self.kind {
            PeerKind::Publisher(p) => Some(p),
            PeerKind::Subscriber(_) => None,
        }
    }

    pub(super) fn subscription(&self) -> Option<&Subscription> {
        match &self.kind {
            PeerKind::Subscriber(s) => Some(s),
            PeerKind::Publisher(_) => None,
        }
    }

    pub(super) fn subscription_mut(&mut self) -> Option<&mut Subscription> {
        match &mut self.kind {
            PeerKind::Subscriber(s) => Some(s),
            PeerKind::Publisher(_) => None,
        }
    }
}

/// Someone who has published in a class (since the class's SFU state was created).
pub(super) struct ClassPublisher {
    pub(super) name: String,
    /// The current publishing session, if any.
    pub(super) session: Option<PeerKey>,
    /// On a span worker of the class: the publisher's tracks while it is connected to the
    /// class's origin worker (see `span.rs`).
    pub(super) relayed: Option<Vec<TrackIn>>,
}

#[derive(Default)]
pub(super) struct Class {
    /// In order of first publishing; never reordered, because subscribers' media sections name
    /// publishers by index ([`Source::publisher`]).
    pub(super) publishers: Vec<ClassPublisher>,
    pub(super) subscribers: Vec<PeerKey>,
    /// On a span worker: the class's origin worker, which its publishers are connected to.
    pub(super) origin: Option<usize>,
}

impl Class {
    pub(super) fn is_empty(&self) -> bool {
        self.subscribers.is_empty()
            && self
                .publishers
                .iter()
                .all(|p| p.session.is_none() && p.relayed.is_none())
    }
}

impl SfuCore {
    /// Adds a peer in `kind`'s role to the tables and its class.
    pub(super) fn insert_peer(
        &mut self,
        class: &str,
        id: &str,
        mut kind: PeerKind,
        rtc: Rtc,
        now: Instant,
    ) -> PeerKey {
        let key = self.next_key;
        self.next_key = key.next();
        let role = kind.role();
        self.by_name
            .insert((class.to_owned(), id.to_owned(), role), key);
        let c = self.classes.entry(class.to_owned()).or_default();
        match &mut kind {
            PeerKind::Publisher(publishing) => {
                let index = match c.publishers.iter().position(|p| p.name == id) {
                    Some(i) => i,
                    None => {
                        c.publishers.push(ClassPublisher {
                            name: id.to_owned(),
                            session: None,
                            relayed: None,
                        });
                        c.publishers.len() - 1
                    }
                };
                c.publishers[index].session = Some(key);
                publishing.index = index;
                self.stats.publishers += 1;
            }
            PeerKind::Subscriber(_) => {
                c.subscribers.push(key);
                self.stats.subscribers += 1;
            }
        }
        self.peers.insert(
            key,
            Peer {
                class: class.to_owned(),
                id: id.to_owned(),
                rtc,
                next_timeout: now,
                connected: false,
                addrs: Vec::new(),
                queued: false,
                nacks_seen: HashMap::new(),
                connect_by: Some(now + self.config.offer_timeout),
                broken: false,
                kind,
            },
        );
        key
    }

    /// Every class this core holds, with the names of its subscribers.
    pub fn class_subscribers(&self) -> Vec<(String, Vec<String>)> {
        self.classes
            .iter()
            .map(|(name, c)| {
                let subscribers = c
                    .subscribers
                    .iter()
                    .filter_map(|k| Some(self.peers.get(k)?.id.clone()))
                    .collect();
                (name.clone(), subscribers)
            })
            .collect()
    }

    pub(super) fn key_of(&self, class: &str, peer: &str, role: Role) -> Option<PeerKey> {
        self.by_name
            .get(&(class.to_owned(), peer.to_owned(), role))
            .copied()
    }

    /// Disconnects and forgets a peer: its publishing and its subscription. Returns whether it
    /// had either.
    pub fn remove(&mut self, class: &str, peer: &str) -> bool {
        let published = self.remove_role(class, peer, Role::Publisher);
        let subscribed = self.remove_role(class, peer, Role::Subscriber);
        published || subscribed
    }

    /// Stops a peer's publishing only (its right to send was revoked); its subscription stays.
    /// Returns whether it published.
    pub fn unpublish(&mut self, class: &str, peer: &str) -> bool {
        self.remove_role(class, peer, Role::Publisher)
    }

    /// Ends a peer's subscription only (it subscribes again after its receiving link failed);
    /// its publishing stays. Returns whether it had a subscription.
    pub fn unsubscribe(&mut self, class: &str, peer: &str) -> bool {
        self.remove_role(class, peer, Role::Subscriber)
    }

    /// Ends one of a peer's two sessions; returns whether it had that one.
    fn remove_role(&mut self, class: &str, peer: &str, role: Role) -> bool {
        match self.key_of(class, peer, role) {
            Some(key) => {
                self.remove_key(key);
                true
            }
            None => false,
        }
    }

    /// Forgets a peer whose str0m state a negotiation left broken (see
    /// [`super::negotiate::guarded`]), without touching that state again.
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
            .remove(&(p.class.clone(), p.id.clone(), p.role()));
        for a in &p.addrs {
            self.by_addr.remove(a);
        }
        match &p.kind {
            PeerKind::Publisher(publishing) => {
                if let Some(c) = self.classes.get_mut(&p.class) {
                    c.publishers[publishing.index].session = None;
                }
                self.stats.publishers -= 1;
                // A later session of this publisher must start at a keyframe for everyone.
                self.restart_video_of(&p.class, publishing.index);
                self.sync_spans(&p.class);
            }
            PeerKind::Subscriber(_) => {
                if let Some(c) = self.classes.get_mut(&p.class) {
                    c.subscribers.retain(|k| *k != key);
                }
                self.stats.subscribers -= 1;
            }
        }
        if self.classes.get(&p.class).is_some_and(Class::is_empty) {
            self.classes.remove(&p.class);
        }
        info!(class = p.class, peer = p.id, role = ?p.role(), "SFU peer removed");
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
                info!(class = p.class, peer = p.id, role = ?p.role(), "SFU: peer did not connect in time");
                self.notices.push_back(SfuEvent::Disconnected {
                    class: p.class.clone(),
                    peer: p.id.clone(),
                });
                self.stats[Counter::Expired] += 1;
            }
            self.remove_key(key);
        }
    }
}
