//! Rate limiting of keyframe requests sent to a publisher.
//!
//! Every subscriber that joins, and every subscriber whose decoder lost a frame, wants a keyframe;
//! with hundreds of subscribers the publisher would encode nothing but keyframes. One limiter per
//! publisher track lets at most one request through per interval. A request inside the interval is
//! remembered and sent when the interval ends, so a late joiner still gets its keyframe.
//!
//! [`SfuCore`] sends every request to a publisher through here (`request_keyframe`).

use std::time::{Duration, Instant};

use str0m::media::{KeyframeRequestKind, MediaKind, Mid, Rid};
use str0m::Rtc;
use tracing::debug;

use super::core::SfuCore;
use super::peers::PeerKind;
use super::stats::{Counter, SfuStats};
use super::tracks::Source;

/// Why the SFU asks for a keyframe (each reason has its [`Counter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyframeReason {
    /// A subscriber sent PLI or FIR.
    Subscriber,
    /// A subscriber has just connected.
    NewSubscriber,
    /// The publisher's stream had a gap that NACK did not repair.
    Loss,
    /// A subscriber moves to another simulcast layer, which starts at a keyframe.
    LayerSwitch,
}

/// At most one keyframe request per `min_interval`; later ones are coalesced and deferred.
#[derive(Debug, Clone)]
pub struct KeyframeLimiter {
    min_interval: Duration,
    last_sent: Option<Instant>,
    pending: Option<(KeyframeRequestKind, KeyframeReason)>,
}

impl KeyframeLimiter {
    /// A limiter that has sent nothing yet.
    pub fn new(min_interval: Duration) -> Self {
        KeyframeLimiter {
            min_interval,
            last_sent: None,
            pending: None,
        }
    }

    /// Records a request at `now`. Returns the request to send now, or `None` when it was
    /// deferred (see [`KeyframeLimiter::poll`]). FIR wins over PLI when requests are coalesced.
    pub fn request(
        &mut self,
        now: Instant,
        kind: KeyframeRequestKind,
        reason: KeyframeReason,
    ) -> Option<(KeyframeRequestKind, KeyframeReason)> {
        let merged = match self.pending.take() {
            Some((KeyframeRequestKind::Fir, r)) => (KeyframeRequestKind::Fir, r),
            Some(_) | None => (kind, reason),
        };
        if self.allowed(now) {
            self.last_sent = Some(now);
            Some(merged)
        } else {
            self.pending = Some(merged);
            None
        }
    }

    /// A deferred request that is due at `now`, if any.
    pub fn poll(&mut self, now: Instant) -> Option<(KeyframeRequestKind, KeyframeReason)> {
        if self.pending.is_some() && self.allowed(now) {
            self.last_sent = Some(now);
            return self.pending.take();
        }
        None
    }

    /// When a deferred request becomes due.
    pub fn deadline(&self) -> Option<Instant> {
        self.pending?;
        Some(self.last_sent? + self.min_interval)
    }

    /// Forgets a deferred request (e.g. a keyframe arrived anyway).
    pub fn clear_pending(&mut self) {
        self.pending = None;
    }

    fn allowed(&self, now: Instant) -> bool {
        self.last_sent
            .is_none_or(|t| now.saturating_duration_since(t) >= self.min_interval)
    }
}

/// Which layer a keyframe request is for.
#[derive(Debug, Clone, Copy)]
pub(super) enum Want {
    /// This exact layer (`None`: no simulcast).
    Rid(Option<Rid>),
    /// The layer of this rank by bitrate (clamped to the top).
    Rank(usize),
}

/// Sends a keyframe request the limiter let through to the publisher `rtc` of `(class, peer)`.
pub(super) fn send_keyframe_request(
    rtc: &mut Rtc,
    (class, peer): (&str, &str),
    (mid, rid, kind, reason): (Mid, Option<Rid>, KeyframeRequestKind, KeyframeReason),
    stats: &mut SfuStats,
) {
    let Some(mut writer) = rtc.writer(mid) else {
        return;
    };
    match writer.request_keyframe(rid, kind) {
        Ok(()) => stats[Counter::from(reason)] += 1,
        Err(e) => debug!(class, peer, "SFU: keyframe request failed: {e}"),
    }
}

impl SfuCore {
    /// Asks the publisher of `source` (a video track) for a keyframe of the layer `want`,
    /// rate-limited per layer.
    pub(super) fn request_keyframe(
        &mut self,
        class: &str,
        source: Source,
        want: Want,
        kind: KeyframeRequestKind,
        reason: KeyframeReason,
        now: Instant,
    ) {
        let Some(key) = self.publisher_key(class, source) else {
            // A class spanning workers: its publisher is on the origin worker.
            self.request_keyframe_from_origin(class, source, want, kind, reason);
            return;
        };
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        let PeerKind::Publisher(publishing) = &mut p.kind else {
            return;
        };
        let Some(track) = publishing
            .tracks_in
            .iter_mut()
            .find(|t| t.kind == MediaKind::Video && t.index == source.index)
        else {
            return;
        };
        let rid = match want {
            Want::Rid(rid) => rid,
            Want::Rank(r) => {
                let ranked = track.ranked();
                if ranked.is_empty() {
                    None
                } else {
                    Some(ranked[r.min(ranked.len() - 1)])
                }
            }
        };
        let min = self.config.keyframe_min_interval;
        if let Some((kind, reason)) = track.limiter(rid, min).request(now, kind, reason) {
            let who = (p.class.as_str(), p.id.as_str());
            let request = (track.mid, rid, kind, reason);
            send_keyframe_request(&mut p.rtc, who, request, &mut self.stats);
            self.enqueue(key);
        }
    }

    /// Asks for a keyframe of the layer of rank `rank` of `source`: a subscriber moves to that
    /// layer on it.
    pub(super) fn request_layer(&mut self, class: &str, source: Source, rank: usize, now: Instant) {
        let (kind, reason) = (KeyframeRequestKind::Pli, KeyframeReason::LayerSwitch);
        self.request_keyframe(class, source, Want::Rank(rank), kind, reason, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLI: KeyframeRequestKind = KeyframeRequestKind::Pli;
    const FIR: KeyframeRequestKind = KeyframeRequestKind::Fir;
    const SUB: KeyframeReason = KeyframeReason::Subscriber;

    #[test]
    fn first_request_goes_out_and_the_next_is_deferred_to_the_interval_end() {
        let t0 = Instant::now();
        let mut l = KeyframeLimiter::new(Duration::from_millis(500));
        assert_eq!(l.request(t0, PLI, SUB), Some((PLI, SUB)));
        assert_eq!(l.deadline(), None);
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(l.request(t1, PLI, KeyframeReason::NewSubscriber), None);
        assert_eq!(l.deadline(), Some(t0 + Duration::from_millis(500)));
        assert_eq!(l.poll(t0 + Duration::from_millis(499)), None);
        assert_eq!(
            l.poll(t0 + Duration::from_millis(500)),
            Some((PLI, KeyframeReason::NewSubscriber))
        );
        assert_eq!(l.poll(t0 + Duration::from_secs(5)), None);
        assert_eq!(l.deadline(), None);
    }

    #[test]
    fn a_burst_of_requests_sends_at_most_one_per_interval() {
        let t0 = Instant::now();
        let mut l = KeyframeLimiter::new(Duration::from_millis(300));
        let mut sent = 0;
        for ms in 0..3000u64 {
            let now = t0 + Duration::from_millis(ms);
            if l.request(now, PLI, SUB).is_some() {
                sent += 1;
            }
            if l.poll(now).is_some() {
                sent += 1;
            }
        }
        assert_eq!(sent, 10);
    }

    #[test]
    fn fir_is_kept_when_coalescing() {
        let t0 = Instant::now();
        let mut l = KeyframeLimiter::new(Duration::from_millis(300));
        l.request(t0, PLI, SUB);
        assert_eq!(l.request(t0, FIR, SUB), None);
        assert_eq!(l.request(t0, PLI, SUB), None);
        assert_eq!(l.poll(t0 + Duration::from_millis(300)), Some((FIR, SUB)));
    }

    #[test]
    fn clear_pending_drops_the_deferred_request() {
        let t0 = Instant::now();
        let mut l = KeyframeLimiter::new(Duration::from_millis(300));
        l.request(t0, PLI, SUB);
        l.request(t0, PLI, SUB);
        l.clear_pending();
        assert_eq!(l.poll(t0 + Duration::from_secs(1)), None);
    }
}
