//! SDP negotiation with publishers and subscribers: a publisher's offer answered, a subscriber
//! offered every other publisher's tracks (and renegotiated when more appear), with client SDP
//! checked and str0m's panics contained.

use std::time::Instant;

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{KeyframeRequestKind, MediaKind};
use str0m::Rtc;
use tracing::{info, warn};

use super::core::{SfuCore, SfuEvent};
use super::keyframe::{KeyframeReason, Want};
use super::peers::{PeerKind, Publishing, Role, Subscription};
use super::tracks::{add_send_media, learn_tracks, sdp_fingerprint, Allowed, Source};
use super::{SfuConfig, SfuError};

/// Different publishers a class remembers, as a multiple of the live ones it may have.
pub(super) const PUBLISHERS_REMEMBERED: usize = 4;

/// The error of a negotiation that panicked inside str0m.
pub(super) const BROKEN: &str = "the SDP broke the negotiation";

/// Runs one str0m negotiation step on client SDP, turning a panic into an error: SDP that passed
/// [`super::sdp_check`] may still hit one of str0m's internal assertions, and a panic here would
/// stop the SFU for every class. The caller must drop the peer's `Rtc` after such an error.
pub(super) fn guarded<T, E: std::fmt::Display>(
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, SfuError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| SfuError::Negotiation(e.to_string())),
        Err(_) => {
            warn!("SFU: client SDP made the WebRTC stack panic; the peer is dropped");
            Err(SfuError::Negotiation(BROKEN.into()))
        }
    }
}

/// Bounds the retransmission buffer of each video stream str0m created for a subscriber by age
/// as well as by count ([`SfuConfig::send_buffer_age`]); str0m's SDP mode sets only the count.
pub(super) fn size_send_buffers(rtc: &mut Rtc, sub: &mut Subscription, config: &SfuConfig) {
    // str0m's default share of retransmissions over which queued resends are dropped.
    const RTX_RATIO_CAP: Option<f32> = Some(0.15);
    for out in &mut sub.tracks_out {
        if out.send_buffer_sized || out.source.kind != MediaKind::Video {
            continue;
        }
        if let Some(tx) = rtc.direct_api().stream_tx_by_mid(out.mid, None) {
            tx.set_rtx_cache(
                config.send_buffer_video.max(1),
                config.send_buffer_age,
                RTX_RATIO_CAP,
            );
            out.send_buffer_sized = true;
        }
    }
}

impl SfuCore {
    /// A publisher's offer (send-only or send-recv media) in; the SFU's answer out. Any peer of
    /// a class may publish — the signaling side decides who may — and several at once: each
    /// subscriber gets every other publisher's tracks. `allowed` says what of it is forwarded.
    ///
    /// A second offer from the same peer renegotiates (camera added, ICE restart); an offer
    /// from a new browser connection (another DTLS fingerprint: the old link failed) replaces
    /// the old session, and subscribers pick the new stream up at its first keyframe.
    pub fn publish(
        &mut self,
        now: Instant,
        class: &str,
        peer: &str,
        offer_sdp: &str,
        allowed: Allowed,
    ) -> Result<String, SfuError> {
        super::sdp_check::check(offer_sdp).map_err(SfuError::BadSdp)?;
        let offer =
            SdpOffer::from_sdp_string(offer_sdp).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let fingerprint = sdp_fingerprint(offer_sdp);
        if let Some(key) = self.key_of(class, peer, Role::Publisher) {
            let p = self.peers.get_mut(&key).expect("by_name and peers agree");
            let PeerKind::Publisher(publishing) = &mut p.kind else {
                unreachable!("by_name keys publishers by their role");
            };
            if publishing.fingerprint == fingerprint {
                let answer = match guarded(|| p.rtc.sdp_api().accept_offer(offer)) {
                    Ok(a) => a,
                    Err(e) => {
                        self.drop_broken(key, &e);
                        return Err(e);
                    }
                };
                learn_tracks(&mut publishing.tracks_in, offer_sdp);
                self.renegotiate(class);
                self.enqueue(key);
                self.run(now);
                self.set_allowed(now, class, peer, allowed);
                return Ok(answer.to_sdp_string());
            }
            info!(class, peer, "SFU publisher reconnects on a new connection");
            self.remove_key(key);
        }
        if let Some(c) = self.classes.get(class) {
            let live = c.publishers.iter().filter(|p| p.session.is_some()).count();
            let returning = c.publishers.iter().any(|p| p.name == peer);
            // Everyone who ever published keeps media sections at the subscribers (a publisher
            // that comes back reuses them), so the list is bounded too: a few times the limit
            // leaves room for people reloading their page, which makes them new peers.
            let remembered = c.publishers.len();
            let max = self.config.max_publishers_per_class;
            if live >= max || (!returning && remembered >= max * PUBLISHERS_REMEMBERED) {
                return Err(SfuError::TooManyPublishers(live));
            }
        }
        let mut rtc = self.new_rtc(now, Role::Publisher)?;
        let answer = guarded(|| rtc.sdp_api().accept_offer(offer))?;
        let mut publishing = Publishing::new(allowed, fingerprint);
        learn_tracks(&mut publishing.tracks_in, offer_sdp);
        let key = self.insert_peer(class, peer, PeerKind::Publisher(publishing), rtc, now);
        info!(class, peer, "SFU publisher added");
        self.renegotiate(class);
        self.enqueue(key);
        self.run(now);
        Ok(answer.to_sdp_string())
    }

    /// Changes what a publisher may send on (the teacher granted or revoked a right). Video
    /// allowed again restarts at a keyframe. Returns whether the peer publishes.
    pub fn set_allowed(&mut self, now: Instant, class: &str, peer: &str, allowed: Allowed) -> bool {
        let Some(key) = self.key_of(class, peer, Role::Publisher) else {
            return false;
        };
        let p = self.peers.get_mut(&key).expect("by_name and peers agree");
        let Some(publishing) = p.publishing_mut() else {
            unreachable!("by_name keys publishers by their role");
        };
        let before = std::mem::replace(&mut publishing.allowed, allowed);
        // The video tracks allowed now and not before (a camera, a screen, or both).
        let videos: Vec<usize> = publishing
            .tracks_in
            .iter()
            .filter(|t| t.kind == MediaKind::Video)
            .filter(|t| allowed.track(t.kind, t.index) && !before.track(t.kind, t.index))
            .map(|t| t.index)
            .collect();
        if !videos.is_empty() {
            let index = publishing.index;
            self.restart_videos_of(class, index, Some(&videos));
            for i in videos {
                let source = Source {
                    publisher: index,
                    kind: MediaKind::Video,
                    index: i,
                };
                self.request_keyframe(
                    class,
                    source,
                    Want::Rank(usize::MAX),
                    KeyframeRequestKind::Pli,
                    KeyframeReason::NewSubscriber,
                    now,
                );
            }
        }
        true
    }

    /// The publisher tracks of `class` that subscriber `peer` should receive: every current
    /// publisher's but its own.
    pub(super) fn sources_for(&self, class: &str, peer: &str) -> Vec<(Source, String)> {
        let Some(c) = self.classes.get(class) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (index, cp) in c.publishers.iter().enumerate() {
            if cp.name == peer {
                continue;
            }
            let tracks = match cp.session {
                Some(k) => self
                    .peers
                    .get(&k)
                    .and_then(|p| p.publishing())
                    .map(|p| &p.tracks_in),
                None => cp.relayed.as_ref(),
            };
            let Some(tracks) = tracks else {
                continue;
            };
            for t in tracks {
                let source = Source {
                    publisher: index,
                    kind: t.kind,
                    index: t.index,
                };
                out.push((source, cp.name.clone()));
            }
        }
        out
    }

    /// A peer subscribes: the SFU's offer (send-only m-lines, one per publisher track of the
    /// class) out. Complete it with [`SfuCore::accept_answer`]. With nobody publishing yet the
    /// offer carries a data channel only, to set the connection up; media sections follow by
    /// renegotiation ([`SfuEvent::Offer`]) once someone publishes.
    pub fn subscribe(&mut self, now: Instant, class: &str, peer: &str) -> Result<String, SfuError> {
        self.subscribe_bounded(now, class, peer, usize::MAX)
    }

    /// [`SfuCore::subscribe`] for a class of `members` members (the signaling side knows them):
    /// the class may not hold more subscriptions than that, nor than
    /// [`SfuConfig::max_subscribers_per_class`]. Each peer may ask
    /// [`SfuConfig::subscribes_per_minute`] times a minute.
    pub fn subscribe_bounded(
        &mut self,
        now: Instant,
        class: &str,
        peer: &str,
        members: usize,
    ) -> Result<String, SfuError> {
        if self.key_of(class, peer, Role::Subscriber).is_some() {
            return Err(SfuError::PeerExists(class.into(), peer.into()));
        }
        self.subscribe_rate
            .take(now, class, peer)
            .map_err(SfuError::RateLimited)?;
        if self.stats.subscribers >= self.config.max_subscribers {
            return Err(SfuError::Full(self.stats.subscribers));
        }
        let held = self.classes.get(class).map_or(0, |c| c.subscribers.len());
        if held >= members.min(self.config.max_subscribers_per_class) {
            return Err(SfuError::ClassFull(held));
        }
        let sources = self.sources_for(class, peer);
        let mut rtc = self.new_rtc(now, Role::Subscriber)?;
        let mut api = rtc.sdp_api();
        let tracks_out = add_send_media(&mut api, &sources);
        if tracks_out.is_empty() {
            api.add_channel("aula".into());
        }
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| SfuError::Negotiation("nothing to offer".into()))?;
        let sub = Subscription {
            pending: Some(pending),
            tracks_out,
            ..Subscription::default()
        };
        let key = self.insert_peer(class, peer, PeerKind::Subscriber(sub), rtc, now);
        info!(class, peer, "SFU subscriber added");
        self.enqueue(key);
        self.run(now);
        Ok(offer.to_sdp_string())
    }

    /// The subscriber's answer to the offer from [`SfuCore::subscribe`] or [`SfuEvent::Offer`].
    pub fn accept_answer(
        &mut self,
        now: Instant,
        class: &str,
        peer: &str,
        answer_sdp: &str,
    ) -> Result<(), SfuError> {
        let unknown = || SfuError::UnknownPeer(class.into(), peer.into());
        let key = self
            .key_of(class, peer, Role::Subscriber)
            .ok_or_else(unknown)?;
        let p = self.peers.get_mut(&key).ok_or_else(unknown)?;
        let PeerKind::Subscriber(sub) = &mut p.kind else {
            return Err(unknown());
        };
        let pending = sub.pending.take().ok_or_else(unknown)?;
        super::sdp_check::check(answer_sdp).map_err(SfuError::BadSdp)?;
        let answer =
            SdpAnswer::from_sdp_string(answer_sdp).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        if let Err(e) = guarded(|| p.rtc.sdp_api().accept_answer(pending, answer)) {
            self.drop_broken(key, &e);
            return Err(e);
        }
        size_send_buffers(&mut p.rtc, sub, &self.config);
        let again = std::mem::take(&mut sub.renegotiate);
        self.enqueue(key);
        self.run(now);
        if again {
            self.renegotiate(class);
        }
        Ok(())
    }

    /// Offers the subscribers of `class` the publisher tracks they lack; each offer goes out as
    /// [`SfuEvent::Offer`] and comes back through [`SfuCore::accept_answer`]. A subscriber with
    /// an offer outstanding is renegotiated once it answers.
    pub(super) fn renegotiate(&mut self, class: &str) {
        self.sync_spans(class);
        let Some(c) = self.classes.get(class) else {
            return;
        };
        for s in c.subscribers.clone() {
            let Some(name) = self.peers.get(&s).map(|p| p.id.clone()) else {
                continue;
            };
            let sources = self.sources_for(class, &name);
            let p = self.peers.get_mut(&s).expect("checked above");
            let PeerKind::Subscriber(sub) = &mut p.kind else {
                continue;
            };
            let missing: Vec<(Source, String)> = sources
                .into_iter()
                .filter(|(src, _)| !sub.tracks_out.iter().any(|t| t.source == *src))
                .collect();
            if missing.is_empty() {
                continue;
            }
            if sub.pending.is_some() {
                sub.renegotiate = true;
                continue;
            }
            let mut api = p.rtc.sdp_api();
            let added = add_send_media(&mut api, &missing);
            let Some((offer, pending)) = api.apply() else {
                continue;
            };
            sub.pending = Some(pending);
            sub.tracks_out.extend(added);
            info!(class, peer = p.id, "SFU renegotiates a subscriber");
            self.notices.push_back(SfuEvent::Offer {
                class: class.to_owned(),
                peer: p.id.clone(),
                sdp: offer.to_sdp_string(),
            });
        }
    }
}
