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
//!   link that widened is found even when little is being sent over it.
//! - **Loss:** a receiver report with heavy loss moves it one layer down; a run of clean reports
//!   one layer back up.
//!
//! The switch itself happens on the new layer's next keyframe (see `SfuCore::forward`).

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

/// A subscriber's bandwidth estimate shared over its video tracks, in the order given (screens
/// first): each track gets the highest layer whose bitrate fits in what the tracks before it left
/// over, and at least its lowest layer. `rates[i]` are track *i*'s layer bitrates in bits per
/// second, lowest first; `current[i]` is the layer it has now. Moving up needs `up_margin` times
/// the layer's bitrate, so an estimate hovering at a layer's rate does not flip it back and
/// forth. Returns one layer index per track (0 for a track without layers).
pub fn allocate(
    estimate_bps: u64,
    rates: &[Vec<u64>],
    current: &[usize],
    up_margin: f64,
) -> Vec<usize> {
    let mut left = estimate_bps as f64;
    rates
        .iter()
        .zip(current)
        .map(|(layers, &now)| {
            let fits = |k: usize| {
                let need = layers[k] as f64 * if k > now { up_margin } else { 1.0 };
                need <= left
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
        assert_eq!(allocate(5_000_000, &both, &[1, 2], 1.2), vec![1, 2]);
        // 3 Mbit/s: the screen's top layer first, the camera gets what is left (0.5 Mbit/s).
        assert_eq!(allocate(3_000_000, &both, &[1, 2], 1.2), vec![1, 1]);
        // A poor link: the lowest layers, even when they do not fit.
        assert_eq!(allocate(300_000, &both, &[1, 2], 1.2), vec![0, 0]);
        // Moving up needs the margin: 2.6 Mbit/s keeps the screen at 1 if it is there, but does
        // not lift it from 0.
        assert_eq!(allocate(2_600_000, &both, &[1, 0], 1.2)[0], 1);
        assert_eq!(allocate(2_600_000, &both, &[0, 0], 1.2)[0], 0);
        assert_eq!(allocate(1_000_000, &[vec![]], &[0], 1.2), vec![0]);
    }

    #[test]
    fn a_single_layer_never_moves() {
        let p = LayerPolicy::default();
        let mut c = LayerChooser::default();
        assert_eq!(c.on_report(0.5, 1, &p), None);
        assert_eq!(c.target(1), 0);
    }
}
