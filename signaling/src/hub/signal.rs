//! WebRTC signaling between peers (offers, answers, candidates relayed inside a class, within a
//! byte budget per sender) and the checks before a request reaches the SFU.

use crate::protocol::{ErrorCode, MediaMode, ServerMessage};

use super::class::PeerLocation;
use super::{Effect, Hub, Refusal};

impl Hub {
    pub(super) fn require_sfu(&self, loc: &PeerLocation) -> Result<(), Refusal> {
        if self.classes[&loc.class].info.media == MediaMode::Sfu {
            return Ok(());
        }
        let message = "this class uses direct connections, not the SFU";
        Err(Refusal::new(ErrorCode::MediaUnavailable, message))
    }

    pub(super) fn check_sdp(&self, sdp: &str) -> Result<(), Refusal> {
        if sdp.len() > self.limits.max_sdp_bytes {
            return Err(Refusal::new(
                ErrorCode::TooLong,
                format!("the SDP is longer than {} bytes", self.limits.max_sdp_bytes),
            ));
        }
        Ok(())
    }

    /// Forwards a WebRTC message to one member of the sender's class.
    pub(super) fn relay(
        &self,
        loc: &PeerLocation,
        me: &str,
        to: &str,
        msg: ServerMessage,
    ) -> Result<Vec<Effect>, Refusal> {
        if to == me {
            return Err(Refusal::new(
                ErrorCode::BadMessage,
                "cannot send to yourself",
            ));
        }
        // A peer waiting for a resume misses this; it renegotiates when it is back.
        Ok(self
            .member_conn(loc, to)?
            .map(|c| Effect::Deliver { to: vec![c], msg })
            .into_iter()
            .collect())
    }

    /// Spends `bytes` of the sender's budget for messages forwarded to specific peers, so one
    /// sender can never fill a receiver's queue: over it, the sender is refused (throttled).
    pub(super) fn charge_signal(
        &mut self,
        loc: &PeerLocation,
        bytes: usize,
        now_ms: u64,
    ) -> Result<(), Refusal> {
        let (rate, burst) = (
            self.limits.signal_bytes_per_sec,
            self.limits.signal_burst_bytes,
        );
        let member = self
            .classes
            .get_mut(&loc.class)
            .and_then(|c| c.members.get_mut(&loc.key))
            .expect("the sender is a member");
        if member
            .traffic
            .signal
            .take(bytes as f64, rate.into(), burst.into(), now_ms)
        {
            return Ok(());
        }
        Err(Refusal::new(
            ErrorCode::RateLimited,
            format!(
                "more than {} KiB per second of offers, answers, candidates and stats; slow down",
                rate / 1024
            ),
        ))
    }
}
