//! The class state machine, sans-IO.
//!
//! [`Hub`] holds every live class: its roster, chat history and teacher controls. It owns no
//! sockets and reads no clock: the connection tasks feed it events (`join`, a message, a dropped
//! connection, a timer tick) with the current time, and it answers with [`Effect`]s — which
//! connections get which message, which connections to close. That keeps every rule of the class
//! (routing only inside a class, roles, resume) in one plain type that unit and property tests
//! drive deterministically.
//!
//! Connections are named by [`ConnId`]s the I/O layer assigns; peers by [`PeerId`]s the hub
//! assigns. A peer outlives its connection for `resume_grace_ms`, so a client that drops for a
//! few seconds can `join` again with its resume token and get its identity, role and hand back.
//!
//! The hub's rules live in one file per concern, each an `impl Hub` block; [`Hub::handle`]
//! looks up the sender once and passes it to the handler of the message's kind:
//!
//! - `session.rs`: joins, resumes, `welcome`, display names, disconnects, refused-join notices,
//!   the timer tick and the end of a session;
//! - `signal.rs`: WebRTC messages relayed between peers, and the requests made of the SFU;
//! - `controls.rs`: raised hands, what each member publishes, and the teacher's controls (mute,
//!   mute all, lower hands, remove and readmit, lock, end, grant, promote and demote);
//! - `chat.rs`: the class chat (public or to the teachers) and its history, and reactions;
//! - `stats.rs`: connection-quality reports relayed to teachers;
//! - `waiting.rs`: the waiting room (admit, decline, admit all) and starting an ended lesson;
//! - `snapshot.rs`: the live state of a class as a serializable snapshot, so a restarted server
//!   gives every client its identity back;
//! - `class.rs`: the state kept per class and per member.

mod chat;
mod class;
mod controls;
mod session;
mod signal;
mod snapshot;
mod spotlight;
mod stats;
mod waiting;

pub use self::snapshot::ClassSnapshot;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::protocol::{
    ClassId, ClassInfo, ClientMessage, ErrorCode, LessonSummary, MediaMode, PeerId, PeerInfo,
    Permissions, Role, ServerMessage, Topology,
};

use self::class::{Class, Lesson, Member, PeerLocation, RefusalNotices};
pub use self::signal::MAX_FLOOR_LINK_STUDENTS;

/// A connection, as numbered by the I/O layer.
pub type ConnId = u64;

/// The limits the hub enforces. The defaults match `aula.example.toml`.
#[derive(Debug, Clone)]
pub struct HubLimits {
    /// Most students in one class.
    pub max_class_size: usize,
    /// Seats for teachers on top of the students', so a class full of students (or of anyone
    /// holding the student link) never keeps its teacher out.
    pub teacher_seats: usize,
    pub max_chat_len: usize,
    /// Chat lines one peer may send per second, and in a burst.
    pub chat_per_sec: u32,
    pub chat_burst: u32,
    pub chat_history: usize,
    pub max_name_len: usize,
    pub max_sdp_bytes: usize,
    /// Most links in one `stats` report.
    pub max_stats_links: usize,
    /// Longest `reason` in a `stats` link, in characters.
    pub max_stats_reason_len: usize,
    /// A peer's `stats` reach the teachers at most once per this many milliseconds; a report
    /// that comes sooner replaces the one waiting (the newest wins).
    pub stats_interval_ms: u64,
    /// Bytes of `offer`/`answer`/`candidate`/`stats` one peer may have forwarded to others per
    /// second, and in a burst: what one sender can put in a receiver's queue.
    pub signal_bytes_per_sec: u32,
    pub signal_burst_bytes: u32,
    /// How long a dropped peer keeps its place for a resume.
    pub resume_grace_ms: u64,
    /// Whether the server runs an SFU; without one every class uses direct connections.
    pub sfu: bool,
    /// An `auto` class switches to the SFU when it has more students than this.
    pub auto_sfu_above: usize,
    /// Most people waiting to be let in to one class.
    pub max_waiting: usize,
    /// How long someone may wait to be let in before the server gives up (`waiting_timeout`).
    pub max_wait_ms: u64,
}

/// Something the I/O layer must do, in order.
// Effects live only until the I/O layer applies them, and nearly all are deliveries.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send `msg` to each of these connections.
    Deliver { to: Vec<ConnId>, msg: ServerMessage },
    /// Close this connection (after what was delivered to it before) with a WebSocket close code.
    Close {
        conn: ConnId,
        code: u16,
        reason: String,
    },
    /// Ask the SFU something on a peer's behalf; its answer goes back to that peer.
    Sfu(SfuRequest),
}

/// What the hub asks of the SFU. The I/O layer makes the call and delivers the outcome (an
/// `answer` or `offer` from `sfu`, or a `media_unavailable` error) to `conn`.
#[derive(Debug, Clone, PartialEq)]
pub enum SfuRequest {
    /// A publisher's offer (a teacher, or a student with a right to speak, show a camera or share
    /// a screen), or its renegotiation. `permissions` is what the SFU forwards: speak = audio,
    /// camera = the camera's video, screen = the screen's video.
    Publish {
        class: ClassId,
        peer: PeerId,
        conn: ConnId,
        sdp: String,
        permissions: Permissions,
    },
    /// A student's rights changed: the SFU forwards only what they now allow.
    Permissions {
        class: ClassId,
        peer: PeerId,
        permissions: Permissions,
    },
    /// A new (or replacement) subscription; the SFU makes the offer. `members` is the class's
    /// member count, which bounds the subscriptions the SFU lets the class hold.
    Subscribe {
        class: ClassId,
        peer: PeerId,
        conn: ConnId,
        members: usize,
    },
    /// A subscriber's answer to the SFU's offer.
    Answer {
        class: ClassId,
        peer: PeerId,
        conn: ConnId,
        sdp: String,
    },
    /// The peer left the class: free its SFU session.
    Remove { class: ClassId, peer: PeerId },
}

/// A refused message or join: becomes an `error` message on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// A verified request to join: the token's claims plus what the client sent.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub class: ClassId,
    pub role: Role,
    /// A display name fixed by the token; wins over `name`.
    pub fixed_name: Option<String>,
    pub name: Option<String>,
    pub resume: Option<String>,
    /// A fresh unguessable token for this peer's next resume, made by the I/O layer.
    pub new_resume_token: String,
    /// The random id the browser keeps and sends in `join`, if any.
    pub browser: Option<String>,
    /// Names the token when it is one person's (it fixes a name), so a removal refuses it.
    pub personal_token: Option<String>,
    /// The student's id on the class list, when the token is their personal link.
    pub student: Option<String>,
    /// When the join arrived, Unix milliseconds (for the waiting room and the attendance).
    pub now_ms: u64,
}

/// The outcome of a successful join.
#[derive(Debug)]
pub struct Joined {
    pub peer: PeerId,
    /// True when the join resumed an earlier identity (its `welcome` says so too).
    pub resumed: bool,
    /// True when the student waits to be let in (`waiting` instead of `welcome`); `peer` is
    /// then empty and the connection stays open without being a member.
    pub waiting: bool,
    pub effects: Vec<Effect>,
}

/// Every live class and who is connected to it.
///
/// The I/O layer owns the sockets and the clock: it numbers connections, passes the time in
/// with every event, and carries out the [`Effect`]s in order.
///
/// ```no_run
/// use aula_signaling::hub::{Effect, Hub, HubLimits, JoinRequest};
/// use aula_signaling::protocol::{ClientMessage, Role, Topology};
///
/// let mut hub = Hub::new(HubLimits::default());
/// hub.add_class("c1".into(), "Maths".into(), Topology::Auto);
///
/// // A connection (numbered by the I/O layer) sent `join` with a verified token.
/// let conn = 1;
/// let request = JoinRequest {
///     class: "c1".into(),
///     role: Role::Teacher,
///     fixed_name: None,
///     name: Some("Ms Rivera".into()),
///     resume: None,
///     new_resume_token: "a fresh random token".into(),
///     browser: None,
///     personal_token: None,
///     student: None,
///     now_ms: 1_700_000_000_000,
/// };
/// let now_ms = request.now_ms; // read by the I/O layer; the hub has no clock
/// match hub.join(conn, request, |_peer| Vec::new()) {
///     Ok(joined) => route(joined.effects),
///     Err(refusal) => route(hub.join_refused("c1", None, refusal.code, now_ms)),
/// }
///
/// // Every later frame of that connection, parsed.
/// let msg = ClientMessage::Chat { text: "Good morning".into(), to: None };
/// match hub.handle(conn, msg, now_ms) {
///     Ok(effects) => route(effects),
///     Err(refusal) => eprintln!("answer conn {conn} with an error: {refusal}"),
/// }
///
/// // About once a second; and when a socket closes without `leave`.
/// route(hub.tick(now_ms + 1_000));
/// route(hub.disconnected(conn, now_ms + 2_000));
///
/// fn route(effects: Vec<Effect>) {
///     for effect in effects {
///         match effect {
///             // Encode once, queue on each connection's outbox.
///             Effect::Deliver { to, msg } => println!("{} to {to:?}", msg.kind()),
///             // After what was queued for it: a close frame with this code.
///             Effect::Close { conn, code, reason } => println!("close {conn}: {code} {reason}"),
///             // Call the SFU; its answer goes back to the peer's connection.
///             Effect::Sfu(request) => println!("SFU: {request:?}"),
///         }
///     }
/// }
/// ```
#[derive(Debug, Default)]
pub struct Hub {
    limits: HubLimits,
    classes: HashMap<ClassId, Class>,
    peers: HashMap<PeerId, PeerLocation>,
    conns: HashMap<ConnId, PeerId>,
    resume_tokens: HashMap<String, PeerId>,
    /// Peers with a `stats` report waiting for its interval.
    stats_waiting: HashSet<PeerId>,
    next_peer: u64,
    /// Starts every peer id, so ids from before a restart are never reused.
    peer_id_prefix: String,
    /// Connections waiting to be let in: their class and waiter number.
    waiting_conns: HashMap<ConnId, (ClassId, u64)>,
    next_waiter: u64,
    /// Lessons a teacher ended since [`Hub::take_finished_lessons`] last ran, for the
    /// attendance records.
    finished_lessons: Vec<(ClassId, LessonSummary)>,
    /// Classes whose live state changed since [`Hub::take_dirty`] last ran.
    dirty: HashSet<ClassId>,
    /// The latest time the I/O layer passed in.
    now_ms: u64,
}

impl Hub {
    pub fn new(limits: HubLimits) -> Self {
        Hub {
            limits,
            peer_id_prefix: "p".into(),
            ..Default::default()
        }
    }

    /// Peer ids become `{prefix}{n}`. The server passes a prefix unique to this run, so a
    /// client never mistakes a new peer for one it knew before a restart.
    pub fn with_peer_id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.peer_id_prefix = prefix.into();
        self
    }

    pub fn limits(&self) -> &HubLimits {
        &self.limits
    }

    // ----- classes (driven by the admin API and the store) -----

    /// Makes a class joinable. Idempotent: an existing class keeps its live state.
    pub fn add_class(&mut self, id: ClassId, name: String, topology: Topology) {
        self.classes.entry(id.clone()).or_insert_with(|| Class {
            info: ClassInfo {
                id,
                name,
                locked: false,
                waiting_room: false,
                ended: false,
                topology,
                media: starting_media(topology, self.limits.sfu),
                spotlight: None,
            },
            members: BTreeMap::new(),
            chat: VecDeque::new(),
            next_chat_id: 1,
            removed: Vec::new(),
            refusals: RefusalNotices::default(),
            waiting: BTreeMap::new(),
            lesson: Lesson::default(),
            last_summary: None,
            shared_links: true,
        });
    }

    /// Renames a class (new joins and `welcome`s carry the new name). False when it is unknown.
    pub fn rename_class(&mut self, id: &str, name: String) -> bool {
        match self.classes.get_mut(id) {
            Some(class) => {
                class.info.name = name;
                true
            }
            None => false,
        }
    }

    /// Whether students may join the class with its shared link or code (not only with their
    /// personal link). Applies to joins from now on; those in the class stay. False when the
    /// class is unknown.
    pub fn set_shared_links(&mut self, id: &str, on: bool) -> bool {
        match self.classes.get_mut(id) {
            Some(class) => {
                class.shared_links = on;
                true
            }
            None => false,
        }
    }

    /// The lessons a teacher ended (`end`) since the last call, with their attendance, oldest
    /// first, for the I/O layer to record.
    pub fn take_finished_lessons(&mut self) -> Vec<(ClassId, LessonSummary)> {
        std::mem::take(&mut self.finished_lessons)
    }

    /// Deletes a class: everyone in it is told and disconnected. None when it is unknown.
    pub fn remove_class(&mut self, id: &str) -> Option<Vec<Effect>> {
        if !self.classes.contains_key(id) {
            return None;
        }
        let mut effects = self.end_session(id, "the class was deleted", false);
        effects.extend(self.turn_away_waiting(id));
        self.classes.remove(id);
        self.dirty.insert(id.to_string());
        Some(effects)
    }

    pub fn class_info(&self, id: &str) -> Option<&ClassInfo> {
        self.classes.get(id).map(|c| &c.info)
    }

    /// The live roster of a class, in join order.
    pub fn roster(&self, id: &str) -> Option<Vec<PeerInfo>> {
        self.classes
            .get(id)
            .map(|c| c.members.values().map(|m| m.info.clone()).collect())
    }

    pub fn class_count(&self) -> usize {
        self.classes.len()
    }

    /// Peers in any class, including those waiting for a resume.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// The peer a connection speaks for, once joined.
    pub fn peer_of(&self, conn: ConnId) -> Option<&PeerId> {
        self.conns.get(&conn)
    }

    /// The class a peer belongs to.
    pub fn class_of(&self, peer: &str) -> Option<&ClassId> {
        self.peers.get(peer).map(|l| &l.class)
    }

    /// The connection of a peer, if it is connected.
    pub fn conn_of(&self, peer: &str) -> Option<ConnId> {
        let loc = self.peers.get(peer)?;
        self.classes.get(&loc.class)?.members.get(&loc.key)?.conn
    }

    // ----- messages from joined connections -----

    /// Applies one message from a joined connection: each kind has its handler in the file of
    /// its concern.
    pub fn handle(
        &mut self,
        conn: ConnId,
        msg: ClientMessage,
        now_ms: u64,
    ) -> Result<Vec<Effect>, Refusal> {
        self.now_ms = self.now_ms.max(now_ms);
        if self.waiting_conns.contains_key(&conn) {
            return self.handle_waiting(conn, msg);
        }
        let from = self.sender(conn)?;
        if changes_live_state(&msg) {
            self.dirty.insert(from.loc.class.clone());
        }
        match msg {
            ClientMessage::Join { .. } => Err(Refusal::new(
                ErrorCode::AlreadyJoined,
                "this connection already joined",
            )),
            ClientMessage::Ping {} => Ok(vec![Effect::Deliver {
                to: vec![conn],
                msg: ServerMessage::Pong {},
            }]),
            ClientMessage::Leave {} => Ok(self.leave(&from)),
            ClientMessage::Offer { to, sdp } => self.offer(&from, to, sdp, now_ms),
            ClientMessage::Answer { to, sdp } => self.answer(&from, to, sdp, now_ms),
            ClientMessage::Candidate { to, candidate } => {
                self.candidate(&from, to, candidate, now_ms)
            }
            ClientMessage::Subscribe {} => self.subscribe(&from),
            ClientMessage::Chat { text, to } => self.chat(&from, text, to, now_ms),
            ClientMessage::React { emoji } => self.react(&from, &emoji, now_ms),
            ClientMessage::Stats { links } => self.stats(&from, links, now_ms),
            ClientMessage::Hand { raised } => Ok(self.hand(&from, raised, now_ms)),
            ClientMessage::LowerHands { peer } => self.lower_hands(&from, peer),
            ClientMessage::MuteAll { kind } => self.mute_all(&from, kind),
            ClientMessage::Promote { peer } => self.promote(&from, peer),
            ClientMessage::Demote { peer } => self.demote(&from, peer),
            ClientMessage::Media {
                mic,
                camera,
                screen,
            } => self.media(&from, mic, camera, screen),
            ClientMessage::Mute { peer, kind } => self.mute(&from, &peer, kind),
            ClientMessage::Remove { peer, reason } => self.remove(&from, &peer, reason),
            ClientMessage::Readmit { peer } => self.readmit(&from, &peer),
            ClientMessage::Lock { locked } => self.lock(&from, locked),
            ClientMessage::End {} => self.end(&from, now_ms),
            ClientMessage::Start {} => self.start(&from, now_ms),
            ClientMessage::WaitingRoom { enabled } => self.set_waiting_room(&from, enabled),
            ClientMessage::Admit { id } => self.admit(&from, &id, now_ms),
            ClientMessage::Decline { id } => self.decline(&from, &id),
            ClientMessage::AdmitAll {} => self.admit_all(&from, now_ms),
            ClientMessage::Grant {
                peer,
                speak,
                camera,
                screen,
                share,
            } => {
                let rights = controls::GrantRights {
                    speak,
                    camera,
                    screen,
                    legacy_share: share.is_some(),
                };
                self.grant(&from, peer, rights)
            }
            ClientMessage::Spotlight { peer } => self.spotlight(&from, peer),
        }
    }

    /// Who sent a message on `conn`, looked up once for all its handlers.
    fn sender(&self, conn: ConnId) -> Result<Sender, Refusal> {
        let Some(id) = self.conns.get(&conn).cloned() else {
            return Err(Refusal::new(ErrorCode::NotJoined, "send join first"));
        };
        let loc = self.peers[&id].clone();
        let info = &self.member(&loc).info;
        let (role, co_teacher) = (info.role, info.co_teacher);
        Ok(Sender {
            conn,
            id,
            loc,
            role,
            co_teacher,
        })
    }

    /// A live class the caller knows exists (a member's, or one just looked up).
    fn class(&self, id: &str) -> &Class {
        &self.classes[id]
    }

    fn class_mut(&mut self, id: &str) -> &mut Class {
        self.classes.get_mut(id).expect("the class exists")
    }

    /// The member at `loc`, which the caller knows is there (e.g. it sent the message).
    fn member(&self, loc: &PeerLocation) -> &Member {
        &self.class(&loc.class).members[&loc.key]
    }

    fn member_mut(&mut self, loc: &PeerLocation) -> &mut Member {
        self.find_member_mut(loc).expect("the peer is a member")
    }

    /// The member at `loc`, if it is still there.
    fn find_member_mut(&mut self, loc: &PeerLocation) -> Option<&mut Member> {
        self.classes.get_mut(&loc.class)?.members.get_mut(&loc.key)
    }

    /// The connection of a member of the sender's class (None while it waits for a resume).
    fn member_conn(&self, loc: &PeerLocation, peer: &str) -> Result<Option<ConnId>, Refusal> {
        match self.peers.get(peer) {
            Some(target) if target.class == loc.class => {
                Ok(self.class(&loc.class).members[&target.key].conn)
            }
            _ => Err(Refusal::new(
                ErrorCode::UnknownPeer,
                format!("no peer {peer:?} in your class"),
            )),
        }
    }
}

/// The member a message comes from, as [`Hub::handle`] found it.
#[derive(Debug)]
struct Sender {
    conn: ConnId,
    id: PeerId,
    loc: PeerLocation,
    role: Role,
    /// A student a teacher promoted (its `role` is then `Teacher`).
    co_teacher: bool,
}

impl Sender {
    /// Refuses a student: only a teacher can do `what`.
    fn teacher_only(&self, what: &str) -> Result<(), Refusal> {
        if self.role == Role::Teacher {
            return Ok(());
        }
        let message = format!("only a teacher can {what}");
        Err(Refusal::new(ErrorCode::Forbidden, message))
    }

    /// Refuses a student and a co-teacher: only the class's own teachers can do `what`.
    fn class_teacher_only(&self, what: &str) -> Result<(), Refusal> {
        self.teacher_only(what)?;
        if !self.co_teacher {
            return Ok(());
        }
        let message = format!("only the class's teacher, not a co-teacher, can {what}");
        Err(Refusal::new(ErrorCode::Forbidden, message))
    }
}

/// Whether a message can change what a restarted server must remember of the class (the
/// roster, rights, hands, chat, settings), so the class's snapshot is saved again.
fn changes_live_state(msg: &ClientMessage) -> bool {
    !matches!(
        msg,
        ClientMessage::Ping {}
            | ClientMessage::Offer { .. }
            | ClientMessage::Answer { .. }
            | ClientMessage::Candidate { .. }
            | ClientMessage::Stats { .. }
            | ClientMessage::Subscribe {}
            | ClientMessage::Mute { .. }
    )
}

/// The media mode a class starts its session in.
fn starting_media(topology: Topology, sfu: bool) -> MediaMode {
    match topology {
        Topology::Sfu if sfu => MediaMode::Sfu,
        _ => MediaMode::P2p,
    }
}

#[cfg(test)]
mod admission_tests;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod rate_tests;
#[cfg(test)]
mod sfu_tests;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod floor_tests;

#[cfg(test)]
mod controls_tests;
