//! What the server sends: [`ServerMessage`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    ChatEntry, ClassInfo, ErrorCode, IceServer, LessonSummary, LinkStats, MuteKind, PeerId,
    PeerInfo, Permissions, RemovedPeer, Role, WaitReason, WaitingPeer,
};

/// Messages the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Welcome {
        protocol: u32,
        id: PeerId,
        role: Role,
        name: String,
        class: ClassInfo,
        /// Everyone else in the class.
        peers: Vec<PeerInfo>,
        ice_servers: Vec<IceServer>,
        /// Present this in `join.resume` to get this identity back after a dropped connection.
        resume_token: String,
        /// True when this join resumed an earlier identity.
        resumed: bool,
        permissions: Permissions,
        hand_raised: bool,
        /// True when a teacher made you a co-teacher (`role` is then `teacher`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        co_teacher: bool,
        /// The most recent chat lines you may read, oldest first.
        chat: Vec<ChatEntry>,
        /// True on the first resume after a server restart: the peer's media sessions with the
        /// SFU are gone (direct links between browsers are not), so rebuild them.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        server_restarted: bool,
        /// To a teacher while the lesson has ended (`class.ended`): the last lesson's summary.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<LessonSummary>,
    },
    PeerJoined {
        peer: PeerInfo,
    },
    PeerLeft {
        id: PeerId,
        /// `left`, `disconnected`, `removed` or `timeout`.
        reason: String,
    },
    PeerUpdated {
        peer: PeerInfo,
    },
    Offer {
        from: PeerId,
        sdp: String,
    },
    Answer {
        from: PeerId,
        sdp: String,
    },
    Candidate {
        from: PeerId,
        candidate: serde_json::Value,
    },
    Chat {
        #[serde(flatten)]
        entry: ChatEntry,
    },
    Hand {
        peer: PeerId,
        raised: bool,
        /// When it went up (server time, ms), as in `PeerInfo.hand_raised_at`; absent when lowered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<u64>,
        /// The teacher who lowered it, when it was not its owner.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<PeerId>,
    },
    /// Sent to the muted peer only: its client turns the named media off.
    Mute {
        by: PeerId,
        kind: MuteKind,
        /// True when the teacher muted every student at once (`mute_all`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        everyone: bool,
    },
    /// Someone's reaction, to everyone in the class.
    Reaction {
        peer: PeerId,
        emoji: String,
    },
    /// Sent to teachers: a member's connection-quality report.
    Stats {
        from: PeerId,
        links: Vec<LinkStats>,
    },
    ClassUpdated {
        class: ClassInfo,
    },
    /// Sent to the removed peer just before its connection is closed.
    Removed {
        reason: String,
    },
    /// Sent to teachers: joins the server refused (a locked or full class, a removed person, too
    /// many joins from one address). At most one a second per class; `count` is how many
    /// refusals it stands for, `name` and `code` are the latest one's.
    JoinRefused {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        code: ErrorCode,
        count: u64,
    },
    /// Sent to teachers: everyone removed this session (oldest first), after each `remove` and
    /// `readmit`, and after a teacher's `welcome` when the list is not empty.
    RemovedList {
        removed: Vec<RemovedPeer>,
    },
    /// The lesson ended; the connection closes next (close 4003). Teachers get the lesson's
    /// `summary`. The class stays: its links then wait for a teacher's `start`.
    ClassEnded {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<LessonSummary>,
    },
    /// Answers a student's `join` instead of `welcome` when she must wait to be let in. The
    /// connection stays open (send `ping` to keep it; `leave` to give up); `admitted` or an
    /// `error` (`declined`, `waiting_timeout`) follows.
    Waiting {
        reason: WaitReason,
        class_name: String,
    },
    /// To a waiting connection: a teacher let you in. Send the same `join` again on this
    /// connection; it is admitted past the lock and the waiting room.
    Admitted {},
    /// Sent to teachers: everyone waiting to be let in, oldest first, after every change and
    /// after a teacher's `welcome` when it is not empty.
    WaitingList {
        waiting: Vec<WaitingPeer>,
    },
    Pong {},
    /// Fresh `ice_servers` for this peer, sent before the ones it holds expire (by default every
    /// 8 minutes for credentials that live 10). Apply them to every `RTCPeerConnection`
    /// (`setConfiguration`) and to new ones; links relayed with the old credentials need an ICE
    /// restart before those expire.
    IceServers {
        ice_servers: Vec<IceServer>,
    },
    Error {
        code: ErrorCode,
        message: String,
        /// The `ref` of the rejected message, when it had one.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<serde_json::Value>,
    },
}

impl ServerMessage {
    /// The wire `type` of this message.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerMessage::Welcome { .. } => "welcome",
            ServerMessage::PeerJoined { .. } => "peer_joined",
            ServerMessage::PeerLeft { .. } => "peer_left",
            ServerMessage::PeerUpdated { .. } => "peer_updated",
            ServerMessage::Offer { .. } => "offer",
            ServerMessage::Answer { .. } => "answer",
            ServerMessage::Candidate { .. } => "candidate",
            ServerMessage::Chat { .. } => "chat",
            ServerMessage::Hand { .. } => "hand",
            ServerMessage::Mute { .. } => "mute",
            ServerMessage::Reaction { .. } => "reaction",
            ServerMessage::Stats { .. } => "stats",
            ServerMessage::ClassUpdated { .. } => "class_updated",
            ServerMessage::Removed { .. } => "removed",
            ServerMessage::JoinRefused { .. } => "join_refused",
            ServerMessage::RemovedList { .. } => "removed_list",
            ServerMessage::ClassEnded { .. } => "class_ended",
            ServerMessage::Waiting { .. } => "waiting",
            ServerMessage::Admitted {} => "admitted",
            ServerMessage::WaitingList { .. } => "waiting_list",
            ServerMessage::Pong {} => "pong",
            ServerMessage::IceServers { .. } => "ice_servers",
            ServerMessage::Error { .. } => "error",
        }
    }
}
