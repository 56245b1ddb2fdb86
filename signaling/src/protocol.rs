//! The class protocol, version 1: every message a client and the server exchange over `/ws`.
//!
//! These serde types are the single source of truth. `docs/protocol.schema.json` is generated from
//! them (see [`json_schema`]) and a test fails when the checked-in file drifts; `docs/protocol.md`
//! explains them in prose with a full example exchange.
//!
//! Every frame is a JSON text frame with a `"type"` field. A client may add a `"ref"` (string or
//! number) to any message; when the server rejects that message, the `error` it sends back carries
//! the same `ref` so a script can match the two.

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

/// How media flows in a class. `auto` picks direct connections for small classes and the SFU above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Topology {
    P2p,
    Sfu,
    #[default]
    Auto,
}

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
pub const SFU_PEER_ID: &str = "sfu";

/// Which media a teacher's `mute` applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MuteKind {
    #[default]
    Audio,
    Video,
    All,
}

/// Rights a teacher can grant a student. Teachers always have both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Permissions {
    /// May publish a microphone.
    pub speak: bool,
    /// May publish a camera or a screen share.
    pub share: bool,
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
    pub role: Role,
    pub hand_raised: bool,
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
    /// A locked class admits no new students (teachers and resuming peers still get in).
    pub locked: bool,
    pub topology: Topology,
    /// How media flows now. An `auto` class starts `p2p` and switches once to `sfu` when it
    /// grows past the server's size for direct connections; it never switches back in a session.
    pub media: MediaMode,
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
    Chat {
        text: String,
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
    /// Teacher only: end the class for everyone.
    End {},
    /// Teacher only: set a student's right to speak and/or share. Omitted fields stay as they are.
    Grant {
        peer: PeerId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        speak: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        share: Option<bool>,
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
pub const CLIENT_MESSAGE_TYPES: [&str; 17] = [
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
    "grant",
    "subscribe",
    "ping",
    "leave",
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
            ClientMessage::Grant { .. } => "grant",
            ClientMessage::Subscribe {} => "subscribe",
            ClientMessage::Ping {} => "ping",
            ClientMessage::Leave {} => "leave",
        }
    }
}

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
        /// The most recent chat lines, oldest first.
        chat: Vec<ChatEntry>,
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
    },
    /// Sent to the muted peer only: its client turns the named media off.
    Mute {
        by: PeerId,
        kind: MuteKind,
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
    /// The class ended; the connection closes next.
    ClassEnded {
        reason: String,
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
            ServerMessage::Stats { .. } => "stats",
            ServerMessage::ClassUpdated { .. } => "class_updated",
            ServerMessage::Removed { .. } => "removed",
            ServerMessage::JoinRefused { .. } => "join_refused",
            ServerMessage::RemovedList { .. } => "removed_list",
            ServerMessage::ClassEnded { .. } => "class_ended",
            ServerMessage::Pong {} => "pong",
            ServerMessage::IceServers { .. } => "ice_servers",
            ServerMessage::Error { .. } => "error",
        }
    }
}

/// Every error code the server sends in an `error` message. Documented in `docs/protocol.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON.
    BadJson,
    /// Valid JSON but not a valid message (missing or wrong fields).
    BadMessage,
    /// The `type` is not one this server knows.
    UnknownType,
    /// Binary frames are not part of the protocol.
    BinaryNotSupported,
    /// The frame is larger than the server's limit; the connection is closed.
    MessageTooLarge,
    /// A message other than `join` arrived before `join`.
    NotJoined,
    /// A second `join` on a joined connection.
    AlreadyJoined,
    /// The token is malformed or its signature is wrong.
    InvalidToken,
    /// The token has expired.
    TokenExpired,
    /// The token's class does not exist (any more).
    ClassNotFound,
    /// The class is locked to new students.
    ClassLocked,
    /// The class has reached its maximum size.
    ClassFull,
    /// The display name is empty or too long.
    InvalidName,
    /// A teacher removed you from this class; only a teacher can let you back in this session.
    Removed,
    /// A chat line with a control character other than newline, or a bidi override.
    InvalidText,
    /// Only a teacher may do this.
    Forbidden,
    /// No such peer in your class.
    UnknownPeer,
    /// A chat line, SDP or stats field is too long, or a list too big.
    TooLong,
    /// Too many messages per second, chat lines per second, or bytes per second forwarded to
    /// other peers; slow down.
    RateLimited,
    /// No `join` arrived within the join deadline; the connection is closed.
    JoinTimeout,
    /// The connection sent nothing for longer than the idle timeout; the connection is closed.
    IdleTimeout,
    /// The connection could not keep up with its messages; it is closed.
    SlowConsumer,
    /// The SFU is not available for this (the class uses direct connections, the server runs
    /// no SFU, or the SFU is full or refused the session).
    MediaUnavailable,
    /// The server failed; the message was not processed.
    Internal,
}

impl ErrorCode {
    /// Every code, for documentation and metrics.
    pub const ALL: [ErrorCode; 24] = [
        ErrorCode::BadJson,
        ErrorCode::BadMessage,
        ErrorCode::UnknownType,
        ErrorCode::BinaryNotSupported,
        ErrorCode::MessageTooLarge,
        ErrorCode::NotJoined,
        ErrorCode::AlreadyJoined,
        ErrorCode::InvalidToken,
        ErrorCode::TokenExpired,
        ErrorCode::ClassNotFound,
        ErrorCode::ClassLocked,
        ErrorCode::ClassFull,
        ErrorCode::InvalidName,
        ErrorCode::Removed,
        ErrorCode::InvalidText,
        ErrorCode::Forbidden,
        ErrorCode::UnknownPeer,
        ErrorCode::TooLong,
        ErrorCode::RateLimited,
        ErrorCode::JoinTimeout,
        ErrorCode::IdleTimeout,
        ErrorCode::SlowConsumer,
        ErrorCode::MediaUnavailable,
        ErrorCode::Internal,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::BinaryNotSupported => "binary_not_supported",
            ErrorCode::MessageTooLarge => "message_too_large",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::AlreadyJoined => "already_joined",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::ClassNotFound => "class_not_found",
            ErrorCode::ClassLocked => "class_locked",
            ErrorCode::ClassFull => "class_full",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::Removed => "removed",
            ErrorCode::InvalidText => "invalid_text",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::UnknownPeer => "unknown_peer",
            ErrorCode::TooLong => "too_long",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::JoinTimeout => "join_timeout",
            ErrorCode::IdleTimeout => "idle_timeout",
            ErrorCode::SlowConsumer => "slow_consumer",
            ErrorCode::MediaUnavailable => "media_unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// WebSocket close codes the server uses. Documented in `docs/protocol.md`.
pub mod close_code {
    /// The server is shutting down (or restarting); reconnect with backoff and resume.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame that breaks the WebSocket protocol (RFC 6455), e.g. unmasked or with reserved bits.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text frame whose payload is not UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A protocol violation such as a binary frame storm.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// A frame larger than the server's limit.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// The join was refused (bad token, class full, ...): do not retry with the same token.
    pub const JOIN_REFUSED: u16 = 4001;
    /// A teacher removed this peer.
    pub const REMOVED: u16 = 4002;
    /// The class ended.
    pub const CLASS_ENDED: u16 = 4003;
    /// The client did not read its messages fast enough.
    pub const SLOW_CONSUMER: u16 = 4004;
    /// No `join` within the join deadline.
    pub const JOIN_TIMEOUT: u16 = 4005;
    /// Nothing received for longer than the idle timeout.
    pub const IDLE_TIMEOUT: u16 = 4006;
    /// The same identity resumed on another connection.
    pub const REPLACED: u16 = 4007;
    /// Far over the message rate limit.
    pub const RATE_LIMITED: u16 = 4008;
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
mod tests {
    use super::*;

    #[test]
    fn join_parses_with_and_without_optional_fields() {
        let m: ClientMessage = serde_json::from_str(r#"{"type":"join","token":"t"}"#).unwrap();
        assert_eq!(
            m,
            ClientMessage::Join {
                token: "t".into(),
                name: None,
                resume: None,
                browser: None
            }
        );
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"join","token":"t","name":"Ana","resume":"r"}"#)
                .unwrap();
        assert!(
            matches!(m, ClientMessage::Join { name: Some(n), resume: Some(_), .. } if n == "Ana")
        );
    }

    #[test]
    fn unit_like_messages_accept_bare_type() {
        for t in ["ping", "end", "leave", "subscribe"] {
            let json = format!(r#"{{"type":"{t}"}}"#);
            serde_json::from_str::<ClientMessage>(&json).unwrap_or_else(|e| panic!("{t}: {e}"));
        }
    }

    #[test]
    fn error_code_strings_match_serde() {
        for c in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::json!(c.as_str())
            );
        }
    }

    #[test]
    fn chat_is_flattened_on_the_wire() {
        let m = ServerMessage::Chat {
            entry: ChatEntry {
                id: 1,
                from: "p1".into(),
                name: "Ana".into(),
                text: "hi".into(),
                time: 5,
            },
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["type"], "chat");
        assert_eq!(v["text"], "hi");
        assert_eq!(v["from"], "p1");
    }

    /// The `type` constants in the generated schema's client messages.
    fn schema_client_types() -> Vec<String> {
        let schema = json_schema();
        let variants = schema["$defs"]["ClientMessage"]["oneOf"]
            .as_array()
            .expect("oneOf")
            .clone();
        variants
            .iter()
            .map(|v| {
                v["properties"]["type"]["const"]
                    .as_str()
                    .expect("type const")
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn client_type_list_matches_the_types() {
        let mut from_schema = schema_client_types();
        from_schema.sort();
        let mut listed: Vec<String> = CLIENT_MESSAGE_TYPES.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(from_schema, listed);
        for t in CLIENT_MESSAGE_TYPES {
            // Every listed type parses (with its required fields absent, it is a bad message, not unknown).
            let err = serde_json::from_str::<ClientMessage>(&format!(r#"{{"type":"{t}"}}"#));
            if let Ok(m) = err {
                assert_eq!(m.kind(), t);
            }
        }
    }

    #[test]
    fn checked_in_schema_matches_the_types() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.schema.json");
        let generated = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
        if std::env::var_os("AULA_BLESS").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "docs/protocol.schema.json has drifted from the protocol types; regenerate it with \
             `cargo run -- schema > docs/protocol.schema.json` (or AULA_BLESS=1 cargo test)"
        );
    }

    #[test]
    fn error_carries_ref() {
        let m = ServerMessage::Error {
            code: ErrorCode::Forbidden,
            message: "x".into(),
            reference: Some(serde_json::json!(7)),
        };
        assert_eq!(serde_json::to_value(&m).unwrap()["ref"], 7);
    }
}
