//! Simulcast layer choice per subscriber, from the loss its receiver reports show.
//!
//! The teacher's browser may send the screen in 2–3 simulcast layers. Each subscriber starts on
//! the top layer (screen sharing favours resolution), steps down one layer when its receiver
//! reports show heavy loss, and steps back up after a run of clean reports. The switch itself
//! happens on the new layer's next keyframe (see `SfuCore::forward`).

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
    target: usize,
    clean: u32,
}

impl Default for LayerChooser {
    fn default() -> Self {
        LayerChooser {
            target: usize::MAX,
            clean: 0,
        }
    }
}

impl LayerChooser {
    /// The wanted layer among `layers` (> 0) layers.
    pub fn target(&self, layers: usize) -> usize {
        self.target.min(layers.saturating_sub(1))
    }

    /// Feeds the loss fraction of one receiver report; returns the new target when it changed.
    pub fn on_report(&mut self, loss: f32, layers: usize, policy: &LayerPolicy) -> Option<usize> {
        if layers < 2 {
            return None;
        }
        let current = self.target(layers);
        if loss >= policy.down_loss {
            self.clean = 0;
            if current > 0 {
                self.target = current - 1;
                return Some(self.target);
            }
        } else if loss < policy.clean_loss {
            self.clean += 1;
            if self.clean >= policy.up_after && current + 1 < layers {
                self.clean = 0;
                self.target = current + 1;
                return Some(self.target);
            }
        } else {
            self.clean = 0;
        }
        None
    }
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
    fn a_single_layer_never_moves() {
        let p = LayerPolicy::default();
        let mut c = LayerChooser::default();
        assert_eq!(c.on_report(0.5, 1, &p), None);
        assert_eq!(c.target(1), 0);
    }
}
