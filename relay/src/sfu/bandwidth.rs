//! Bandwidth and loss move subscribers between simulcast layers: each subscriber's estimate is
//! shared over the video it receives ([`super::layers::allocate`]), loss in its receiver reports
//! lowers a layer, and a subscriber held below its best layers has its link probed again.

use std::time::Instant;

use str0m::bwe::Bitrate;
use str0m::media::{MediaKind, Mid};
use str0m::Rtc;
use tracing::debug;

use super::core::SfuCore;
use super::layers::{BandwidthPolicy, LayerPolicy};
use super::peers::{PeerKey, PeerKind, Subscription};
use super::stats::{Counter, SfuStats};

/// The bandwidth estimate a subscriber starts with, before feedback refines it: above the top
/// layers of a screen and a camera, so everyone starts on top (screen sharing favours resolution).
pub(super) const BWE_START_BPS: u64 = 4_000_000;

/// How often the link of a subscriber that its bandwidth estimate holds below its best layers
/// is probed again (see [`reprobe`]).
pub(super) const BWE_REPROBE: std::time::Duration = std::time::Duration::from_secs(4);

/// What an audio track is assumed to take of a subscriber's bandwidth (Opus at its usual rate,
/// with packet overhead).
pub(super) const AUDIO_BPS: u64 = 64_000;

/// Probes again the link of a subscriber its bandwidth estimate holds below its best layers.
///
/// str0m probes on its own only while the subscriber is sent much less than its estimate, at
/// most every 5 s, and a probe can be spoiled (behind a draining queue its packets arrive in a
/// burst, which the estimator rightly rejects): a subscriber on the low layer whose link had
/// widened was seen to stay there for half a minute. Restarting the estimator at its current
/// estimate makes str0m send its start-up probes again (3× and 6× the estimate, 15 ms each): on
/// a link that is still narrow they measure what it carries and nothing moves; on a wider one
/// the estimate jumps and the subscriber goes back up.
///
/// Returns whether the estimator was restarted: the caller drives `rtc` at once then.
pub(super) fn reprobe(
    rtc: &mut Rtc,
    sub: &mut Subscription,
    now: Instant,
    stats: &mut SfuStats,
) -> bool {
    sub.reprobe_at = Some(now + BWE_REPROBE);
    let Some(bps) = sub.bandwidth else {
        return false;
    };
    rtc.bwe().reset(Bitrate::bps(bps));
    stats[Counter::BandwidthReprobes] += 1;
    true
}

impl SfuCore {
    /// A subscriber's receiver report: maybe move it to another simulcast layer.
    pub(super) fn on_loss_report(&mut self, key: PeerKey, mid: Mid, loss: f32, now: Instant) {
        let Some(p) = self.peers.get(&key) else {
            return;
        };
        let Some(sub) = p.subscription() else {
            return;
        };
        let Some(out) = sub.tracks_out.iter().find(|t| t.mid == mid) else {
            return;
        };
        let (class, source) = (p.class.clone(), out.source);
        let layers = self
            .track_in(&class, source)
            .map_or(0, |t| t.ranked().len());
        let policy = LayerPolicy::default();
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        let PeerKind::Subscriber(sub) = &mut p.kind else {
            return;
        };
        let Some(out) = sub.tracks_out.iter_mut().find(|t| t.mid == mid) else {
            return;
        };
        let before = out.chooser.target(layers);
        if let Some(target) = out.chooser.on_report(loss, layers, &policy) {
            if target < before {
                self.stats[Counter::DowngradesForLoss] += 1;
            }
            debug!(
                class,
                peer = p.id,
                loss,
                target,
                "SFU: subscriber changes layer"
            );
            self.request_layer(&class, source, target, now);
        }
    }

    /// A subscriber's bandwidth estimate: shared over its video tracks (screens first), each
    /// moves to the layer that fits; and the estimator is told what all top layers would need,
    /// so it probes for that much.
    pub(super) fn share_bandwidth(&mut self, key: PeerKey, estimate_bps: u64, now: Instant) {
        let Some(p) = self.peers.get(&key) else {
            return;
        };
        let Some(sub) = p.subscription() else {
            return;
        };
        let class = p.class.clone();
        // (track index, its layers' bitrates lowest first) of every video track it receives.
        let mut tracks: Vec<(usize, Vec<u64>)> = Vec::new();
        let (mut audio_bps, mut desired_bps) = (0, 0);
        for (i, out) in sub.tracks_out.iter().enumerate() {
            let Some(track) = self.track_in(&class, out.source) else {
                continue;
            };
            if track.kind == MediaKind::Audio {
                audio_bps += AUDIO_BPS;
                continue;
            }
            let rates: Vec<u64> = track.ranked_layers().iter().map(|l| l.rate_bps).collect();
            desired_bps += rates.last().copied().unwrap_or(0);
            tracks.push((i, rates));
        }
        tracks.sort_by_key(|(i, _)| {
            let s = sub.tracks_out[*i].source;
            (s.index, s.publisher)
        });
        let current: Vec<usize> = tracks
            .iter()
            .map(|(i, r)| sub.tracks_out[*i].chooser.target(r.len()))
            .collect();
        let rates: Vec<Vec<u64>> = tracks.iter().map(|(_, r)| r.clone()).collect();
        let video_bps = estimate_bps.saturating_sub(audio_bps);
        let policy = BandwidthPolicy::default();
        let p = self.peers.get_mut(&key).expect("looked up above");
        let PeerKind::Subscriber(sub) = &mut p.kind else {
            unreachable!("looked up above");
        };
        let caps = sub
            .bandwidth_hold
            .allocate(video_bps, &rates, &current, &policy, now);
        if sub.bandwidth_hold.is_holding() {
            debug!(
                class,
                peer = p.id,
                estimate_bps,
                "SFU: estimate a little short of the current layers; holding them for now"
            );
        }
        if desired_bps > 0 {
            // Probe past what moving up to the top layers needs (their bitrate times the
            // margin), or an estimate that stops at the top layers' bitrate never lets a
            // subscriber back up.
            let want = (desired_bps as f64 * policy.up_margin * 1.1) as u64 + audio_bps;
            p.rtc.bwe().set_desired_bitrate(Bitrate::bps(want));
        }
        // Held below its best layers: probe the link again in a while, as str0m's own probing
        // can stop while a subscriber sits on a low layer (see `reprobe`).
        let held = tracks
            .iter()
            .zip(&caps)
            .any(|((_, r), &cap)| cap + 1 < r.len());
        sub.reprobe_at = held.then(|| sub.reprobe_at.unwrap_or(now + BWE_REPROBE));
        let mut switches = Vec::new();
        for ((i, rates), cap) in tracks.iter().zip(caps) {
            let layers = rates.len();
            let out = &mut sub.tracks_out[*i];
            let before = out.chooser.target(layers);
            if let Some(target) = out.chooser.set_bandwidth_cap(cap, layers) {
                if target < before {
                    self.stats[Counter::DowngradesForBandwidth] += 1;
                }
                debug!(
                    class,
                    peer = p.id,
                    estimate_bps,
                    target,
                    "SFU: bandwidth moves a layer"
                );
                switches.push((out.source, target));
            }
        }
        for (source, target) in switches {
            self.request_layer(&class, source, target, now);
        }
    }

    /// Layer bitrates moved: shares each subscriber's last estimate again.
    pub(super) fn reshare_bandwidth(&mut self, class: &str, now: Instant) {
        let Some(c) = self.classes.get(class) else {
            return;
        };
        let estimates: Vec<(PeerKey, u64)> = c
            .subscribers
            .iter()
            .filter_map(|k| Some((*k, self.peers.get(k)?.subscription()?.bandwidth?)))
            .collect();
        for (key, bps) in estimates {
            self.share_bandwidth(key, bps, now);
        }
    }
}
