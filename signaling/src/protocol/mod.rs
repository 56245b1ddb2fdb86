//! The class protocol, version 1: every message a client and the server exchange over `/ws`.
//!
//! These serde types are the single source of truth. `docs/protocol.schema.json` is generated from
//! them (see [`json_schema`]) and a test fails when the checked-in file drifts; `docs/protocol.md`
//! explains them in prose with a full example exchange.
//!
//! Every frame is a JSON text frame with a `"type"` field. A client may add a `"ref"` (string or
//! number) to any message; when the server rejects that message, the `error` it sends back carries
//! the same `ref` so a script can match the two.
//!
//! - this file: the types both directions share (roles, the roster, the class, chat entries,
//!   link reports) and the schema generator;
//! - `client.rs`: [`ClientMessage`], what a client sends;
//! - `server.rs`: [`ServerMessage`], what the server sends;
//! - `errors.rs`: the [`ErrorCode`]s of `error` messages and the WebSocket [`close_code`]s.

mod client;
mod errors;
mod server;

pub use self::client::{ClientMessage, CLIENT_MESSAGE_TYPES, REACTIONS};
pub use self::errors::{close_code, ErrorCode};
pub use self::server::ServerMessage;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Protocol version announced in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// The reserved peer id of the server itself (used as `from` on server-originated notices).
pub const SERVER_PEER_ID: &str = "server";

/// A peer's id, unique for the lifetime of the server process. Not a secret.
pub type PeerId = String;

/// A class's id, as in `/api/v1/classes/{id}`.
pub type ClassId = String;

/// What a peer may do in a class. Enforced by the server on every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Teacher,
    Student,
}

/// How media flows in a class (defined with the configuration, whose `sfu.default_topology` it is).
pub use aula_config::Topology;

/// How media flows in a class right now (the effective mode of its [`Topology`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediaMode {
    /// A direct peer connection per teacher–student pair.
    #[default]
    P2p,
    /// The teacher publishes once to the SFU (peer id `sfu`); everyone else subscribes.
    Sfu,
}

/// The reserved peer id of the SFU: address `offer`/`answer` to it in `sfu` mode.
// Defined once, by the SFU (the relay crate, which never depends on signaling).
pub use aula_relay::sfu::SFU_PEER_ID;

/// Which media a teacher's `mute` applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MuteKind {
    #[default]
    Audio,
    Video,
    All,
}

/// Rights a teacher can grant a student, each on its own. Teachers always have all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Permissions {
    /// May publish a microphone.
    pub speak: bool,
    /// May publish a camera.
    pub camera: bool,
    /// May publish a screen share.
    pub screen: bool,
}

impl Permissions {
    /// Every right (a teacher's).
    pub const ALL: Permissions = Permissions {
        speak: true,
        camera: true,
        screen: true,
    };

    /// Whether any right is held (the holder may publish something).
    pub fn any(self) -> bool {
        self.speak || self.camera || self.screen
    }

    /// Whether these rights allow publishing `media`.
    pub fn allow(self, media: MediaState) -> bool {
        (!media.mic || self.speak)
            && (!media.camera || self.camera)
            && (!media.screen || self.screen)
    }
}

/// What a peer currently publishes, as reported by its own client with `media`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct MediaState {
    #[serde(default)]
    pub mic: bool,
    #[serde(default)]
    pub camera: bool,
    #[serde(default)]
    pub screen: bool,
}

/// One entry of the roster, as every member of the class sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PeerInfo {
    pub id: PeerId,
    pub name: String,
    /// `teacher` for a co-teacher too (see `co_teacher`).
    pub role: Role,
    pub hand_raised: bool,
    /// When the hand went up (server time, milliseconds since the Unix epoch); absent while it
    /// is down. Rosters list raised hands by it, the first raised first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hand_raised_at: Option<u64>,
    /// True for a student a teacher made co-teacher (`promote`): its `role` is `teacher` until
    /// `demote`. Absent (false) for everyone else.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub co_teacher: bool,
    pub permissions: Permissions,
    pub media: MediaState,
    /// False while the peer's connection is down but it may still resume (see `resume` in `join`).
    pub connected: bool,
}

/// The class as its members see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClassInfo {
    pub id: ClassId,
    pub name: String,
    /// A locked class lets no new student straight in: newcomers wait until a teacher admits
    /// them (teachers and resuming peers still get in). Ends with the lesson.
    pub locked: bool,
    /// The class's waiting room ("admit students"): every new student waits until a teacher
    /// admits them. A class setting a teacher toggles in the room; it stays across lessons.
    #[serde(default)]
    pub waiting_room: bool,
    /// The teacher ended the lesson: students wait until a teacher starts it again (`start`).
    #[serde(default)]
    pub ended: bool,
    pub topology: Topology,
    /// How media flows now. An `auto` class starts `p2p` and switches once to `sfu` when it
    /// grows past the server's size for direct connections; it never switches back in a session.
    pub media: MediaMode,
    /// The member a teacher put in the spotlight for everyone (`spotlight`): every other page
    /// shows that person's screen, else camera, as its main picture. Absent: nobody. It names an
    /// id, so it follows a member who resumes; a member who left simply shows nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spotlight: Option<PeerId>,
}

/// A STUN/TURN server for `RTCPeerConnection`'s `iceServers`, with credentials bound to this peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Someone a teacher removed this session, as teachers see them in `removed_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RemovedPeer {
    /// The id they had; `readmit` takes it.
    pub id: PeerId,
    pub name: String,
    pub role: Role,
}

/// Why a newcomer waits instead of joining (see `waiting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// The teacher locked the class.
    Locked,
    /// The class has its waiting room on: every new student is let in by a teacher.
    WaitingRoom,
    /// The lesson has ended; the student gets in when a teacher starts it again.
    Ended,
}

/// Someone waiting to be let in, as teachers see them in `waiting_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WaitingPeer {
    /// Names this waiting person for `admit` and `decline` (not a peer id: they have none yet).
    pub id: String,
    pub name: String,
    /// When they started waiting, milliseconds since the Unix epoch (server time).
    pub since: u64,
    pub reason: WaitReason,
}

/// One person in a lesson's attendance (see `LessonSummary`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Attendance {
    pub id: PeerId,
    pub name: String,
    pub role: Role,
    /// Their id on the class list, when they joined with their personal link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<String>,
    /// When they first joined this lesson, Unix milliseconds.
    pub joined: u64,
    /// When they were last seen (left, dropped, or the lesson ended), Unix milliseconds.
    pub left: u64,
    /// Seconds they were connected in all.
    pub present_secs: u64,
    /// How many times they came back after their connection dropped or they left.
    #[serde(default)]
    pub reconnects: u32,
}

/// What a lesson was, for the teacher's end screen: sent with `class_ended` to teachers, and in
/// a teacher's `welcome` while the lesson has ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LessonSummary {
    /// When the lesson started (its first join, or `start`), Unix milliseconds.
    pub started: u64,
    /// When it ended, Unix milliseconds.
    pub ended: u64,
    /// Everyone who took part, in order of arrival (at most a few hundred entries).
    pub attendance: Vec<Attendance>,
}

/// Who a chat line is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChatAudience {
    /// The whole class (the default).
    #[default]
    Everyone,
    /// The class's teachers (co-teachers included) and the sender only: a private question.
    Teachers,
}

/// A chat line as the server stored and relayed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChatEntry {
    /// Server-assigned, increasing within the class.
    pub id: u64,
    pub from: PeerId,
    /// The sender's display name at the time it was sent.
    pub name: String,
    pub text: String,
    /// Server time, milliseconds since the Unix epoch.
    pub time: u64,
    /// `teachers` for a line only the teachers (and its sender) receive; absent for the class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<ChatAudience>,
}

/// How a peer's media reaches the peer that reports it; shown on the teacher's connectivity panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediaPath {
    Connecting,
    Direct,
    RelayUdp,
    RelayTcp,
    RelayTls,
    Sfu,
    Failed,
}

/// A connection-quality report one client makes about its media link with another peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LinkStats {
    /// The peer at the other end of the link (a peer id, or `sfu`).
    pub peer: PeerId,
    pub path: MediaPath,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate_kbps: Option<f64>,
    /// Fraction of packets lost, 0.0–1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// Why the link failed or is degraded, in words a teacher understands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The JSON Schema of the whole protocol: `{"client": ..., "server": ...}` definitions.
pub fn json_schema() -> serde_json::Value {
    #[derive(JsonSchema)]
    #[allow(dead_code)]
    /// Aula class protocol v1: a client sends `ClientMessage`s and receives `ServerMessage`s.
    struct AulaProtocolV1 {
        client: ClientMessage,
        server: ServerMessage,
    }
    serde_json::to_value(schemars::schema_for!(AulaProtocolV1)).expect("schema serializes")
}

#[cfg(test)]
mod tests;
