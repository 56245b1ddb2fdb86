//! WebRTC signaling: offers, answers and candidates relayed to one peer of the sender's class
//! (within a byte budget per sender), or turned into requests of the SFU when addressed to it.
//!
//! Who may signal whom: a teacher and anyone of the class, always. Two students only for a
//! *floor link* — in a class on direct connections with at most [`MAX_FLOOR_LINK_STUDENTS`]
//! students, while one of the two holds a right (speak, camera or screen): the student given the floor
//! links directly to each classmate, so the whole class hears and sees her (docs/decisions/0008).

use crate::protocol::{ErrorCode, MediaMode, PeerId, Role, ServerMessage, SFU_PEER_ID};

use super::class::PeerLocation;
use super::{Effect, Hub, Refusal, Sender, SfuRequest};

/// Longest candidate relayed, as JSON.
const MAX_CANDIDATE_BYTES: usize = 4096;

/// Students link to each other directly (floor links) only in a class of at most this many
/// students, so a student given the floor holds at most this many minus one of them. The web
/// client has the same number (`FLOOR_LINK_MAX_STUDENTS` in p2p.js).
pub const MAX_FLOOR_LINK_STUDENTS: usize = 30;

impl Hub {
    /// An `offer`: to the SFU it publishes the sender's media; to a peer it is relayed.
    pub(super) fn offer(
        &mut self,
        from: &Sender,
        to: PeerId,
        sdp: String,
        now_ms: u64,
    ) -> Result<Vec<Effect>, Refusal> {
        self.check_sdp(&sdp)?;
        if to == SFU_PEER_ID {
            return self.publish(from, sdp);
        }
        self.charge_signal(&from.loc, sdp.len(), now_ms)?;
        let msg = ServerMessage::Offer {
            from: from.id.clone(),
            sdp,
        };
        self.relay(from, &to, msg)
    }

    /// A publisher's offer to the SFU (a teacher, or a student holding any right to publish).
    fn publish(&self, from: &Sender, sdp: String) -> Result<Vec<Effect>, Refusal> {
        self.require_sfu(&from.loc)?;
        let permissions = self.member(&from.loc).info.permissions;
        if !permissions.any() {
            let message = "only a teacher, or a student the teacher allowed to speak, show a \
                           camera or share a screen, publishes";
            return Err(Refusal::new(ErrorCode::Forbidden, message));
        }
        Ok(vec![Effect::Sfu(SfuRequest::Publish {
            class: from.loc.class.clone(),
            peer: from.id.clone(),
            conn: from.conn,
            sdp,
            permissions,
        })])
    }

    /// An `answer`: to the SFU it completes a subscription; to a peer it is relayed.
    pub(super) fn answer(
        &mut self,
        from: &Sender,
        to: PeerId,
        sdp: String,
        now_ms: u64,
    ) -> Result<Vec<Effect>, Refusal> {
        self.check_sdp(&sdp)?;
        if to == SFU_PEER_ID {
            self.require_sfu(&from.loc)?;
            return Ok(vec![Effect::Sfu(SfuRequest::Answer {
                class: from.loc.class.clone(),
                peer: from.id.clone(),
                conn: from.conn,
                sdp,
            })]);
        }
        self.charge_signal(&from.loc, sdp.len(), now_ms)?;
        let msg = ServerMessage::Answer {
            from: from.id.clone(),
            sdp,
        };
        self.relay(from, &to, msg)
    }

    /// A `candidate`, relayed to a peer.
    pub(super) fn candidate(
        &mut self,
        from: &Sender,
        to: PeerId,
        candidate: serde_json::Value,
        now_ms: u64,
    ) -> Result<Vec<Effect>, Refusal> {
        // The SFU is ICE-lite: it learns each browser's address from its STUN checks.
        if to == SFU_PEER_ID {
            return Ok(Vec::new());
        }
        let size = candidate.to_string().len();
        if size > MAX_CANDIDATE_BYTES {
            return Err(Refusal::new(
                ErrorCode::TooLong,
                "the candidate is too long",
            ));
        }
        self.charge_signal(&from.loc, size, now_ms)?;
        let msg = ServerMessage::Candidate {
            from: from.id.clone(),
            candidate,
        };
        self.relay(from, &to, msg)
    }

    /// `subscribe`: a subscription to the class's media from the SFU.
    pub(super) fn subscribe(&mut self, from: &Sender) -> Result<Vec<Effect>, Refusal> {
        // A student whose direct link failed asks for the SFU: an `auto` class moves to it
        // (everyone switches; the teacher then publishes once).
        let mut effects = Vec::new();
        if let Some(class) = self.switch_to_sfu(&from.loc.class) {
            let to = self.class(&from.loc.class).connected_conns();
            effects.push(Effect::Deliver {
                to,
                msg: ServerMessage::ClassUpdated { class },
            });
        }
        self.require_sfu(&from.loc)?;
        effects.push(Effect::Sfu(SfuRequest::Subscribe {
            class: from.loc.class.clone(),
            peer: from.id.clone(),
            conn: from.conn,
            members: self.class(&from.loc.class).members.len(),
        }));
        Ok(effects)
    }

    fn require_sfu(&self, loc: &PeerLocation) -> Result<(), Refusal> {
        if self.class(&loc.class).info.media == MediaMode::Sfu {
            return Ok(());
        }
        let message = "this class uses direct connections, not the SFU";
        Err(Refusal::new(ErrorCode::MediaUnavailable, message))
    }

    fn check_sdp(&self, sdp: &str) -> Result<(), Refusal> {
        if sdp.len() > self.limits.max_sdp_bytes {
            return Err(Refusal::new(
                ErrorCode::TooLong,
                format!("the SDP is longer than {} bytes", self.limits.max_sdp_bytes),
            ));
        }
        Ok(())
    }

    /// Forwards a WebRTC message to one member of the sender's class.
    fn relay(&self, from: &Sender, to: &str, msg: ServerMessage) -> Result<Vec<Effect>, Refusal> {
        if to == from.id {
            return Err(Refusal::new(
                ErrorCode::BadMessage,
                "cannot send to yourself",
            ));
        }
        // A peer waiting for a resume misses this; it renegotiates when it is back.
        let conn = self.member_conn(&from.loc, to)?;
        self.check_link(from, to)?;
        Ok(conn
            .map(|c| Effect::Deliver { to: vec![c], msg })
            .into_iter()
            .collect())
    }

    /// Whether the sender may negotiate a direct link with `to` (a member of its class): a
    /// teacher with anyone; two students only for a floor link (see the module's doc).
    fn check_link(&self, from: &Sender, to: &str) -> Result<(), Refusal> {
        let class = self.class(&from.loc.class);
        let target = &class.members[&self.peers[to].key];
        if from.role == Role::Teacher || target.info.role == Role::Teacher {
            return Ok(());
        }
        let floor = self.member(&from.loc).info.permissions.any() || target.info.permissions.any();
        let direct = class.info.media == MediaMode::P2p;
        let small = class.count(Role::Student) <= MAX_FLOOR_LINK_STUDENTS;
        if floor && direct && small {
            return Ok(());
        }
        let message = format!(
            "students link directly only while one of them may speak, show a camera or share a \
             screen, in a class on \
             direct connections of at most {MAX_FLOOR_LINK_STUDENTS} students"
        );
        Err(Refusal::new(ErrorCode::Forbidden, message))
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
        let signal = &mut self.member_mut(loc).traffic.signal;
        if signal.take(bytes as f64, rate.into(), burst.into(), now_ms) {
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
