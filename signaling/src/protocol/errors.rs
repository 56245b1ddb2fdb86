//! How the server says no: the codes of `error` messages and the WebSocket close codes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    /// The class has reached its maximum size (or its waiting room holds as many as it may).
    ClassFull,
    /// The display name is empty or too long.
    InvalidName,
    /// A teacher removed you from this class; only a teacher can let you back in this session.
    Removed,
    /// The class admits students only with their personal link from the class list: its shared
    /// student link and class code are off.
    PersonalLinkRequired,
    /// This personal link's student was taken off the class list; ask the teacher for a new one.
    NotOnClassList,
    /// A teacher did not let you in from the waiting room.
    Declined,
    /// Nobody let you in from the waiting room in time; try again later.
    WaitingTimeout,
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
    pub const ALL: [ErrorCode; 28] = [
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
        ErrorCode::PersonalLinkRequired,
        ErrorCode::NotOnClassList,
        ErrorCode::Declined,
        ErrorCode::WaitingTimeout,
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
            ErrorCode::PersonalLinkRequired => "personal_link_required",
            ErrorCode::NotOnClassList => "not_on_class_list",
            ErrorCode::Declined => "declined",
            ErrorCode::WaitingTimeout => "waiting_timeout",
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
