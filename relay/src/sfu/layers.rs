//! Simulcast layer choice per subscriber, from its bandwidth estimate and the loss its receiver
//! reports show.
//!
//! The teacher's browser may send the screen in 2–3 simulcast layers. Each subscriber starts on
//! the top layer (screen sharing favours resolution). Two signals can hold it lower, and the
//! lower one wins:
//!
//! - **Bandwidth:** the SFU's estimate of the subscriber's downlink (transport-wide congestion
//!   control feedback, or REMB) is shared over its video tracks, screens first ([`allocate`]):
//!   each gets the best layer whose measured bitrate fits in what is left. While the estimate
//!   holds a subscriber below its best layers, `SfuCore` probes its link again every 4 s, so a
//!   link that widened is found even when little is being sent over it. A subscriber leaves its
//!   layer at once only when the estimate falls well below it ([`BandwidthPolicy`]); a shallow
//!   dip — one congestion signal on a clean link, or a layer measured high over its first
//!   keyframes — must last a while first ([`BandwidthHold`]), as each move costs the whole
//!   class a keyframe and the subscriber a drop in sharpness.
//! - **Loss:** a receiver report with heavy loss moves it one layer down; a run of clean reports
//!   one layer back up.
//!
//! The switch itself happens on the new layer's next keyframe (see `SfuCore::forward`).

use std::time::{Duration, Instant};

/// Thresholds of the layer choice.
#[derive(Debug, Clone, Copy)]
pub struct LayerPolicy {
    /// Loss fraction (0..1) in one report that moves a subscriber one layer down.
    pub down_loss: f32,
    /// Loss fraction below which a report counts as clean.
    pub clean_loss: f32,
    /// Clean reports in a row before moving one layer up.
    pub up_after: u32,
}

impl Default for LayerPolicy {
    fn default() -> Self {
        LayerPolicy {
            down_loss: 0.08,
            clean_loss: 0.02,
            up_after: 5,
        }
    }
}

/// One subscriber's wanted layer, as an index into the publisher's layers ranked by bitrate
/// (0 = lowest). `usize::MAX` means "the top one, whatever it is".
#[derive(Debug, Clone)]
pub struct LayerChooser {
    /// What the loss in receiver reports allows.
    target: usize,
    clean: u32,
    /// What the bandwidth estimate allows.
    cap: usize,
}

impl Default for LayerChooser {
    fn default() -> Self {
        LayerChooser {
            target: usize::MAX,
            clean: 0,
            cap: usize::MAX,
        }
    }
}

impl LayerChooser {
    /// The wanted layer among `layers` (> 0) layers.
    pub fn target(&self, layers: usize) -> usize {
        self.target.min(self.cap).min(layers.saturating_sub(1))
    }

    /// The layer the bandwidth estimate allows (from [`allocate`]); returns the new target when
    /// it changed.
    pub fn set_bandwidth_cap(&mut self, cap: usize, layers: usize) -> Option<usize> {
        let before = self.target(layers);
        self.cap = cap;
        let after = self.target(layers);
        (after != before).then_some(after)
    }

    /// Feeds the loss fraction of one receiver report; returns the new target when it changed.
    pub fn on_report(&mut self, loss: f32, layers: usize, policy: &LayerPolicy) -> Option<usize> {
        if layers < 2 {
            return None;
        }
        let before = self.target(layers);
        let current = self.target.min(layers - 1);
        if loss >= policy.down_loss {
            self.clean = 0;
            if current > 0 {
                self.target = current - 1;
            }
        } else if loss < policy.clean_loss {
            self.clean += 1;
            if self.clean >= policy.up_after && current + 1 < layers {
                self.clean = 0;
                self.target = current + 1;
            }
        } else {
            self.clean = 0;
        }
        let after = self.target(layers);
        (after != before).then_some(after)
    }
}

/// How far a bandwidth estimate must be from a layer's bitrate to move a subscriber.
#[derive(Debug, Clone, Copy)]
pub struct BandwidthPolicy {
    /// Moving up to a layer needs this many times its bitrate, so an estimate hovering at a
    /// layer's rate does not flip it back and forth.
    pub up_margin: f64,
    /// Staying on the current layer needs only this fraction of its bitrate while the dip is
    /// short (see [`BandwidthHold`]).
    pub keep_fraction: f64,
    /// How long an estimate may stay between `keep_fraction` and the full bitrate of the current
    /// layers before the subscriber moves down anyway.
    pub keep_for: Duration,
}

impl Default for BandwidthPolicy {
    /// One congestion signal on a clean link lowers str0m's estimate to 0.85 × what was
    /// acknowledged, i.e. to about the rate the subscriber is receiving: 0.75 leaves room for that
    /// and for a layer's rate measured high over a keyframe, while a link that is really narrower
    /// keeps signalling congestion and drives the estimate well below (seen: 4 Mbit/s to 0.6
    /// within 2 s behind a 0.7 Mbit/s bottleneck). A link just under the layer's rate, which
    /// the estimate cannot tell apart from a dip, is left after `keep_for`.
    fn default() -> Self {
        BandwidthPolicy {
            up_margin: 1.25,
            keep_fraction: 0.75,
            keep_for: Duration::from_secs(2),
        }
    }
}

/// Whether a subscriber's estimate has been short of its current layers, and since when: the
/// memory that lets a short dip pass without a layer switch.
#[derive(Debug, Clone, Copy, Default)]
pub struct BandwidthHold {
    short_since: Option<Instant>,
}

impl BandwidthHold {
    /// The layers a subscriber with estimate `estimate_bps` gets (see [`allocate`]): those it has
    /// while the estimate is only a little short of them (at least `keep_fraction` of their rate)
    /// for less than `keep_for`; otherwise what fits in the estimate.
    pub fn allocate(
        &mut self,
        estimate_bps: u64,
        rates: &[Vec<u64>],
        current: &[usize],
        policy: &BandwidthPolicy,
        now: Instant,
    ) -> Vec<usize> {
        let fits = allocate(estimate_bps, rates, current, policy.up_margin, 1.0);
        let kept = allocate(
            estimate_bps,
            rates,
            current,
            policy.up_margin,
            policy.keep_fraction,
        );
        if fits == kept {
            self.short_since = None;
            return fits;
        }
        let since = *self.short_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= policy.keep_for {
            self.short_since = None;
            fits
        } else {
            kept
        }
    }

    /// Whether the estimate is short of the current layers, but not yet for long enough to move
    /// (the caller shares the estimate again later, when the layers' rates are measured anew).
    pub fn is_holding(&self) -> bool {
        self.short_since.is_some()
    }
}

/// A subscriber's bandwidth estimate shared over its video tracks, in the order given (screens
/// first): each track gets the highest layer whose bitrate fits in what the tracks before it left
/// over, and at least its lowest layer. `rates[i]` are track *i*'s layer bitrates in bits per
/// second, lowest first; `current[i]` is the layer it has now. Moving up needs `up_margin` times
/// the layer's bitrate, so an estimate hovering at a layer's rate does not flip it back and
/// forth; keeping the current layer needs `keep_fraction` times its bitrate. Returns one layer
/// index per track (0 for a track without layers).
pub fn allocate(
    estimate_bps: u64,
    rates: &[Vec<u64>],
    current: &[usize],
    up_margin: f64,
    keep_fraction: f64,
) -> Vec<usize> {
    let mut left = estimate_bps as f64;
    rates
        .iter()
        .zip(current)
        .map(|(layers, &now)| {
            let fits = |k: usize| {
                let factor = match k.cmp(&now) {
                    std::cmp::Ordering::Greater => up_margin,
                    std::cmp::Ordering::Equal => keep_fraction,
                    std::cmp::Ordering::Less => 1.0,
                };
                layers[k] as f64 * factor <= left
            };
            let chosen = (0..layers.len()).rev().find(|&k| fits(k)).unwrap_or(0);
            left -= layers.get(chosen).copied().unwrap_or(0) as f64;
            chosen
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_on_top_steps_down_on_loss_and_back_up_after_clean_reports() {
        let p = LayerPolicy::default();
        let mut c = LayerChooser::default();
        assert_eq!(c.target(3), 2);
        assert_eq!(c.on_report(0.0, 3, &p), None);
        assert_eq!(c.on_report(0.15, 3, &p), Some(1));
        assert_eq!(c.on_report(0.15, 3, &p), Some(0));
        assert_eq!(
            c.on_report(0.30, 3, &p),
            None,
            "nothing below the lowest layer"
        );
        for _ in 0..4 {
            assert_eq!(c.on_report(0.0, 3, &p), None);
        }
        assert_eq!(c.on_report(0.0, 3, &p), Some(1));
        // Moderate loss resets the clean run without moving.
        for _ in 0..4 {
            c.on_report(0.0, 3, &p);
        }
        assert_eq!(c.on_report(0.05, 3, &p), None);
        for _ in 0..4 {
            assert_eq!(c.on_report(0.0, 3, &p), None);
        }
        assert_eq!(c.on_report(0.0, 3, &p), Some(2));
        assert_eq!(c.target(3), 2);
    }

    #[test]
    fn the_bandwidth_cap_and_the_loss_target_hold_the_layer_at_the_lower_of_the_two() {
        let p = LayerPolicy::default();
        let mut c = LayerChooser::default();
        assert_eq!(c.set_bandwidth_cap(0, 3), Some(0));
        assert_eq!(c.set_bandwidth_cap(0, 3), None);
        // Loss moves the loss target down, but the cap already holds the layer there.
        assert_eq!(c.on_report(0.2, 3, &p), None);
        assert_eq!(
            c.set_bandwidth_cap(2, 3),
            Some(1),
            "the loss target (1) is lower now"
        );
        for _ in 0..5 {
            c.on_report(0.0, 3, &p);
        }
        assert_eq!(c.target(3), 2);
    }

    #[test]
    fn an_estimate_is_shared_screens_first_with_a_margin_to_move_up() {
        let screen = vec![500_000, 2_500_000];
        let camera = vec![150_000, 500_000, 1_200_000];
        let both = [screen, camera];
        // Plenty: the top layers.
        assert_eq!(allocate(5_000_000, &both, &[1, 2], 1.2, 1.0), vec![1, 2]);
        // 3 Mbit/s: the screen's top layer first, the camera gets what is left (0.5 Mbit/s).
        assert_eq!(allocate(3_000_000, &both, &[1, 2], 1.2, 1.0), vec![1, 1]);
        // A poor link: the lowest layers, even when they do not fit.
        assert_eq!(allocate(300_000, &both, &[1, 2], 1.2, 1.0), vec![0, 0]);
        // Moving up needs the margin: 2.6 Mbit/s keeps the screen at 1 if it is there, but does
        // not lift it from 0.
        assert_eq!(allocate(2_600_000, &both, &[1, 0], 1.2, 1.0)[0], 1);
        assert_eq!(allocate(2_600_000, &both, &[0, 0], 1.2, 1.0)[0], 0);
        assert_eq!(allocate(1_000_000, &[vec![]], &[0], 1.2, 1.0), vec![0]);
    }

    #[test]
    fn a_layer_is_kept_down_to_its_keep_fraction() {
        let screen = [vec![250_000, 1_500_000]];
        // 1.2 Mbit/s is 0.8 of the top layer: kept with a 0.75 fraction, not with 1.0.
        assert_eq!(allocate(1_200_000, &screen, &[1], 1.25, 0.75), vec![1]);
        assert_eq!(allocate(1_200_000, &screen, &[1], 1.25, 1.0), vec![0]);
        // Well below: down at once, whatever the fraction.
        assert_eq!(allocate(1_000_000, &screen, &[1], 1.25, 0.75), vec![0]);
        // The fraction never lifts a subscriber that is below.
        assert_eq!(allocate(1_400_000, &screen, &[0], 1.25, 0.75), vec![0]);
    }

    #[test]
    fn a_short_dip_keeps_the_layer_a_long_one_or_a_deep_one_moves_it() {
        let policy = BandwidthPolicy::default();
        let screen = [vec![250_000, 1_500_000]];
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut hold = BandwidthHold::default();
        // Plenty: top, nothing held.
        assert_eq!(
            hold.allocate(4_000_000, &screen, &[1], &policy, at(0)),
            vec![1]
        );
        assert!(!hold.is_holding());
        // A dip to 1.3 Mbit/s is held on the top layer...
        assert_eq!(
            hold.allocate(1_300_000, &screen, &[1], &policy, at(100)),
            vec![1]
        );
        assert!(hold.is_holding());
        assert_eq!(
            hold.allocate(1_300_000, &screen, &[1], &policy, at(2_000)),
            vec![1]
        );
        // ...and the estimate recovering ends the hold: the next dip starts counting afresh.
        assert_eq!(
            hold.allocate(1_900_000, &screen, &[1], &policy, at(2_050)),
            vec![1]
        );
        assert!(!hold.is_holding());
        assert_eq!(
            hold.allocate(1_300_000, &screen, &[1], &policy, at(3_000)),
            vec![1]
        );
        assert_eq!(
            hold.allocate(1_300_000, &screen, &[1], &policy, at(4_900)),
            vec![1]
        );
        // A dip lasting `keep_for` moves it down.
        assert_eq!(
            hold.allocate(1_300_000, &screen, &[1], &policy, at(5_000)),
            vec![0]
        );
        assert!(!hold.is_holding());
        // A deep fall moves it at once.
        let mut hold = BandwidthHold::default();
        assert_eq!(
            hold.allocate(700_000, &screen, &[1], &policy, at(0)),
            vec![0]
        );
        assert!(!hold.is_holding());
    }

    #[test]
    fn a_single_layer_never_moves() {
        let p = LayerPolicy::default();
        let mut c = LayerChooser::default();
        assert_eq!(c.on_report(0.5, 1, &p), None);
        assert_eq!(c.target(1), 0);
    }
}
