//! What a client sends: [`ClientMessage`] and the list of its wire `type`s.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ChatAudience, LinkStats, MuteKind, PeerId};

/// The reactions `react` accepts (a small fixed set, so a reaction is never a message).
pub const REACTIONS: [&str; 6] = ["👍", "👏", "❤️", "😂", "😮", "🎉"];

/// Messages a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Must be the first message. `name` is ignored when the token fixes one.
    Join {
        token: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The `resume_token` from a previous `welcome`, to get the same identity back after a drop.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
        /// A random id the browser keeps (1–64 letters, digits, `-`, `_`), so a teacher's removal
        /// also refuses that browser when it comes back through a shared link.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        browser: Option<String>,
    },
    Offer {
        to: PeerId,
        sdp: String,
    },
    Answer {
        to: PeerId,
        sdp: String,
    },
    Candidate {
        to: PeerId,
        /// An `RTCIceCandidateInit` object, relayed untouched.
        candidate: serde_json::Value,
    },
    /// A chat line; `to: "teachers"` makes it private to the class's teachers.
    Chat {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<ChatAudience>,
    },
    Hand {
        raised: bool,
    },
    /// What this client now publishes; others see it in `peer_updated`.
    Media {
        #[serde(default)]
        mic: bool,
        #[serde(default)]
        camera: bool,
        #[serde(default)]
        screen: bool,
    },
    /// A connection-quality report, forwarded to the class's teachers.
    Stats {
        links: Vec<LinkStats>,
    },
    /// Teacher only: ask a peer to stop its microphone and/or camera.
    Mute {
        peer: PeerId,
        #[serde(default)]
        kind: MuteKind,
    },
    /// Teacher only: ask every student to turn the named media off (each gets `mute`).
    MuteAll {
        #[serde(default)]
        kind: MuteKind,
    },
    /// Teacher only: lower one student's raised hand (`peer`), or every raised hand.
    LowerHands {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<PeerId>,
    },
    /// The class's teacher only (not a co-teacher): make a student a co-teacher.
    Promote {
        peer: PeerId,
    },
    /// The class's teacher only: make a co-teacher a student again.
    Demote {
        peer: PeerId,
    },
    /// A short reaction (one of [`REACTIONS`]) everyone sees for a moment.
    React {
        emoji: String,
    },
    /// Teacher only: remove a peer from the class. It is refused for the rest of the session
    /// (its resume token, its personal token, its browser) until a teacher sends `readmit`.
    Remove {
        peer: PeerId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Teacher only: let a removed peer (an id from `removed_list`) join again.
    Readmit {
        peer: PeerId,
    },
    /// Teacher only: lock or unlock the class to new students.
    Lock {
        locked: bool,
    },
    /// Teacher only: end the lesson for everyone. The class stays: students who open its link
    /// wait ("This lesson has ended") until a teacher sends `start`.
    End {},
    /// Teacher only: start an ended lesson again; students waiting for it are let in.
    Start {},
    /// Teacher only: turn the class's waiting room on or off (new students wait to be admitted).
    WaitingRoom {
        enabled: bool,
    },
    /// Teacher only: let one waiting person in (an id from `waiting_list`).
    Admit {
        id: String,
    },
    /// Teacher only: turn one waiting person away.
    Decline {
        id: String,
    },
    /// Teacher only: let everyone waiting in.
    AdmitAll {},
    /// Teacher only: set a student's right to speak (microphone), to show a camera and to share a
    /// screen, each on its own. Omitted fields stay as they are.
    Grant {
        peer: PeerId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        speak: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        camera: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        screen: Option<bool>,
        /// The old combined right, split into `camera` and `screen`: a grant that still carries it
        /// is refused with `bad_message` rather than silently ignored.
        #[serde(default, skip_serializing)]
        #[schemars(skip)]
        share: Option<serde_json::Value>,
    },
    /// Teacher only: put a member in the spotlight for everyone (`peer`), or end it (no `peer`).
    /// Everyone gets `class_updated` with `class.spotlight`.
    Spotlight {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<PeerId>,
    },
    /// In `sfu` mode: ask for the class's media from the SFU. The server answers with an
    /// `offer` from `sfu`, to be answered with an `answer` to `sfu`. Sending it again replaces
    /// the subscription (e.g. after the SFU link failed).
    Subscribe {},
    /// Keepalive; answered with `pong`.
    Ping {},
    /// Leave the class now (no resume).
    Leave {},
}

/// Every `type` a client may send, as on the wire.
pub const CLIENT_MESSAGE_TYPES: [&str; 28] = [
    "join",
    "offer",
    "answer",
    "candidate",
    "chat",
    "hand",
    "media",
    "stats",
    "mute",
    "remove",
    "readmit",
    "lock",
    "end",
    "start",
    "waiting_room",
    "admit",
    "decline",
    "admit_all",
    "grant",
    "spotlight",
    "subscribe",
    "ping",
    "leave",
    "mute_all",
    "lower_hands",
    "promote",
    "demote",
    "react",
];

impl ClientMessage {
    /// The wire `type` of this message.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Join { .. } => "join",
            ClientMessage::Offer { .. } => "offer",
            ClientMessage::Answer { .. } => "answer",
            ClientMessage::Candidate { .. } => "candidate",
            ClientMessage::Chat { .. } => "chat",
            ClientMessage::Hand { .. } => "hand",
            ClientMessage::Media { .. } => "media",
            ClientMessage::Stats { .. } => "stats",
            ClientMessage::Mute { .. } => "mute",
            ClientMessage::Remove { .. } => "remove",
            ClientMessage::Readmit { .. } => "readmit",
            ClientMessage::Lock { .. } => "lock",
            ClientMessage::End {} => "end",
            ClientMessage::Start {} => "start",
            ClientMessage::WaitingRoom { .. } => "waiting_room",
            ClientMessage::Admit { .. } => "admit",
            ClientMessage::Decline { .. } => "decline",
            ClientMessage::AdmitAll {} => "admit_all",
            ClientMessage::Grant { .. } => "grant",
            ClientMessage::Spotlight { .. } => "spotlight",
            ClientMessage::Subscribe {} => "subscribe",
            ClientMessage::Ping {} => "ping",
            ClientMessage::Leave {} => "leave",
            ClientMessage::MuteAll { .. } => "mute_all",
            ClientMessage::LowerHands { .. } => "lower_hands",
            ClientMessage::Promote { .. } => "promote",
            ClientMessage::Demote { .. } => "demote",
            ClientMessage::React { .. } => "react",
        }
    }
}
