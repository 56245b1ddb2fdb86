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

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::protocol::{
    close_code, ChatEntry, ClassId, ClassInfo, ClientMessage, ErrorCode, IceServer, LinkStats,
    MediaMode, MediaState, PeerId, PeerInfo, Permissions, RemovedPeer, Role, ServerMessage,
    Topology, PROTOCOL_VERSION, SFU_PEER_ID,
};
use crate::ratelimit::Bucket;

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
}

impl Default for HubLimits {
    fn default() -> Self {
        HubLimits {
            max_class_size: 1000,
            teacher_seats: 10,
            max_chat_len: 2000,
            chat_per_sec: 3,
            chat_burst: 6,
            chat_history: 100,
            max_name_len: 64,
            max_sdp_bytes: 32 * 1024,
            max_stats_links: 64,
            max_stats_reason_len: 200,
            stats_interval_ms: 1000,
            signal_bytes_per_sec: 32 * 1024,
            signal_burst_bytes: 512 * 1024,
            sfu: false,
            auto_sfu_above: 4,

            resume_grace_ms: 20_000,
        }
    }
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
    /// A publisher's offer (a teacher, or a student with a right to speak or share), or its
    /// renegotiation. `permissions` is what the SFU forwards: speak = audio, share = video.
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
}

/// The longest `browser` id a join may carry.
const MAX_BROWSER_ID: usize = 64;

/// Refused-join notices go to a class's teachers at most this often.
const REFUSAL_NOTICE_INTERVAL_MS: u64 = 1000;

/// The outcome of a successful join.
#[derive(Debug)]
pub struct Joined {
    pub peer: PeerId,
    pub effects: Vec<Effect>,
}

#[derive(Debug)]
struct Member {
    info: PeerInfo,
    conn: Option<ConnId>,
    resume_token: String,
    disconnected_at: Option<u64>,
    browser: Option<String>,
    personal_token: Option<String>,
    traffic: Traffic,
}

/// What a peer has sent lately, for its rate limits.
#[derive(Debug, Default)]
struct Traffic {
    chat: Bucket,
    /// Bytes forwarded to specific peers (signaling messages and stats).
    signal: Bucket,
    stats_sent_ms: Option<u64>,
    /// The newest report that came too soon after the last one forwarded.
    stats_waiting: Option<Vec<LinkStats>>,
}

/// Someone a teacher removed: refused by any of these until a teacher readmits them.
#[derive(Debug)]
struct Ban {
    peer: RemovedPeer,
    resume_token: String,
    browser: Option<String>,
    personal_token: Option<String>,
}

impl Ban {
    fn matches(&self, req: &JoinRequest) -> bool {
        let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
        req.resume.as_ref() == Some(&self.resume_token)
            || same(&self.browser, &req.browser)
            || same(&self.personal_token, &req.personal_token)
    }
}

/// Refused joins not yet reported to the class's teachers.
#[derive(Debug, Default)]
struct RefusalNotices {
    count: u64,
    latest: Option<(Option<String>, ErrorCode)>,
    last_sent_ms: Option<u64>,
}

#[derive(Debug)]
struct Class {
    info: ClassInfo,
    /// Ordered so rosters come out in join order (peer ids are sequential).
    members: BTreeMap<u64, Member>,
    chat: VecDeque<ChatEntry>,
    next_chat_id: u64,
    /// Removed this session, oldest first.
    removed: Vec<Ban>,
    refusals: RefusalNotices,
}

impl Class {
    fn teacher_conns(&self) -> Vec<ConnId> {
        self.members
            .values()
            .filter(|m| m.info.role == Role::Teacher)
            .filter_map(|m| m.conn)
            .collect()
    }

    fn count(&self, role: Role) -> usize {
        self.members
            .values()
            .filter(|m| m.info.role == role)
            .count()
    }

    /// The removed list for these connections (teachers), if anyone was removed.
    fn removed_list(&self, to: Vec<ConnId>) -> Option<Effect> {
        if self.removed.is_empty() || to.is_empty() {
            return None;
        }
        let removed = self.removed.iter().map(|b| b.peer.clone()).collect();
        Some(Effect::Deliver {
            to,
            msg: ServerMessage::RemovedList { removed },
        })
    }

    fn connected_conns(&self) -> Vec<ConnId> {
        self.members.values().filter_map(|m| m.conn).collect()
    }

    fn connected_conns_except(&self, except: u64) -> Vec<ConnId> {
        self.members
            .iter()
            .filter(|(k, _)| **k != except)
            .filter_map(|(_, m)| m.conn)
            .collect()
    }
}

/// Where a peer lives.
#[derive(Debug, Clone)]
struct PeerLocation {
    class: ClassId,
    key: u64,
}

/// Every live class and who is connected to it.
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
                topology,
                media: starting_media(topology, self.limits.sfu),
            },
            members: BTreeMap::new(),
            chat: VecDeque::new(),
            next_chat_id: 1,
            removed: Vec::new(),
            refusals: RefusalNotices::default(),
        });
    }

    /// Deletes a class: everyone in it is told and disconnected. None when it is unknown.
    pub fn remove_class(&mut self, id: &str) -> Option<Vec<Effect>> {
        if !self.classes.contains_key(id) {
            return None;
        }
        let effects = self.end_session(id, "the class was deleted");
        self.classes.remove(id);
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

    // ----- connections -----

    /// Admits `conn` to a class, as a new peer or resuming an earlier one.
    ///
    /// `ice_servers` makes the peer's STUN/TURN entries once its id is known.
    pub fn join(
        &mut self,
        conn: ConnId,
        req: JoinRequest,
        ice_servers: impl FnOnce(&PeerId) -> Vec<IceServer>,
    ) -> Result<Joined, Refusal> {
        if self.conns.contains_key(&conn) {
            return Err(Refusal::new(
                ErrorCode::AlreadyJoined,
                "this connection already joined",
            ));
        }
        let class = self.classes.get(&req.class).ok_or_else(|| {
            Refusal::new(
                ErrorCode::ClassNotFound,
                "this class does not exist any more",
            )
        })?;

        let browser_ok = |b: &String| {
            (1..=MAX_BROWSER_ID).contains(&b.len())
                && b.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        };
        if req.browser.as_ref().is_some_and(|b| !browser_ok(b)) {
            return Err(Refusal::new(
                ErrorCode::BadMessage,
                format!("browser must be 1 to {MAX_BROWSER_ID} letters, digits, - or _"),
            ));
        }
        if class.removed.iter().any(|ban| ban.matches(&req)) {
            return Err(Refusal::new(
                ErrorCode::Removed,
                "a teacher removed you from this class; only a teacher can let you back in",
            ));
        }

        if let Some(peer) = self.resumable(&req) {
            return Ok(self.resume(conn, peer, req.new_resume_token, ice_servers));
        }

        if req.role == Role::Student && class.info.locked {
            return Err(Refusal::new(
                ErrorCode::ClassLocked,
                "the teacher has locked this class",
            ));
        }
        // Teachers have seats of their own: students filling the class never keep them out.
        let (seats, what) = match req.role {
            Role::Student => (self.limits.max_class_size, "the class is full"),
            Role::Teacher => (self.limits.teacher_seats, "every teacher seat is taken"),
        };
        if class.count(req.role) >= seats {
            return Err(Refusal::new(
                ErrorCode::ClassFull,
                format!("{what} ({seats})"),
            ));
        }
        let name = self.valid_name(req.fixed_name.as_deref().or(req.name.as_deref()))?;
        let name = Self::unique_name(class, name);

        self.next_peer += 1;
        let key = self.next_peer;
        let id = format!("{}{key}", self.peer_id_prefix);
        let is_teacher = req.role == Role::Teacher;
        let info = PeerInfo {
            id: id.clone(),
            name,
            role: req.role,
            hand_raised: false,
            permissions: Permissions {
                speak: is_teacher,
                share: is_teacher,
            },
            media: MediaState::default(),
            connected: true,
        };
        let class = self.classes.get_mut(&req.class).expect("checked above");
        let others = class.connected_conns();
        class.members.insert(
            key,
            Member {
                info: info.clone(),
                conn: Some(conn),
                resume_token: req.new_resume_token.clone(),
                disconnected_at: None,
                browser: req.browser,
                personal_token: req.personal_token,
                traffic: Traffic::default(),
            },
        );
        self.peers.insert(
            id.clone(),
            PeerLocation {
                class: req.class.clone(),
                key,
            },
        );
        self.conns.insert(conn, id.clone());
        self.resume_tokens.insert(req.new_resume_token, id.clone());
        let switched = self.switch_to_sfu_if_large(&req.class);

        let welcome = self.welcome(&id, false, ice_servers(&id));
        let mut effects = vec![Effect::Deliver {
            to: vec![conn],
            msg: welcome,
        }];
        if is_teacher {
            effects.extend(self.classes[&req.class].removed_list(vec![conn]));
        }
        if !others.is_empty() {
            if let Some(class) = switched {
                let msg = ServerMessage::ClassUpdated { class };
                effects.push(Effect::Deliver {
                    to: others.clone(),
                    msg,
                });
            }
            effects.push(Effect::Deliver {
                to: others,
                msg: ServerMessage::PeerJoined { peer: info },
            });
        }
        Ok(Joined { peer: id, effects })
    }

    /// An `auto` class moves to the SFU, once, when it has more students than direct connections
    /// serve well (the teacher's uplink carries one copy per student). Returns the new class info.
    fn switch_to_sfu_if_large(&mut self, class_id: &str) -> Option<ClassInfo> {
        let class = self.classes.get(class_id)?;
        let students = class
            .members
            .values()
            .filter(|m| m.info.role == Role::Student)
            .count();
        if students <= self.limits.auto_sfu_above {
            return None;
        }
        self.switch_to_sfu(class_id)
    }

    /// Moves an `auto` class that uses direct connections to the SFU, if the server has one.
    fn switch_to_sfu(&mut self, class_id: &str) -> Option<ClassInfo> {
        let sfu = self.limits.sfu;
        let class = self.classes.get_mut(class_id)?;
        let auto_p2p = class.info.topology == Topology::Auto && class.info.media == MediaMode::P2p;
        if !(sfu && auto_p2p) {
            return None;
        }
        class.info.media = MediaMode::Sfu;
        Some(class.info.clone())
    }

    /// Whether this join would resume a live identity (the I/O layer's per-address join limit
    /// spares resumes: a school's whole network reconnecting at once gets straight back in).
    pub fn would_resume(&self, class: &str, role: Role, resume: Option<&str>) -> bool {
        let Some(peer) = resume.and_then(|r| self.resume_tokens.get(r)) else {
            return false;
        };
        let Some(loc) = self.peers.get(peer) else {
            return false;
        };
        let member = self
            .classes
            .get(&loc.class)
            .and_then(|c| c.members.get(&loc.key));
        loc.class == class && member.is_some_and(|m| m.info.role == role)
    }

    /// The peer a join's resume token names, if it may be resumed by this request.
    fn resumable(&self, req: &JoinRequest) -> Option<PeerId> {
        let peer = self.resume_tokens.get(req.resume.as_deref()?)?;
        let loc = self.peers.get(peer)?;
        let member = self.classes.get(&loc.class)?.members.get(&loc.key)?;
        (loc.class == req.class && member.info.role == req.role).then(|| peer.clone())
    }

    fn resume(
        &mut self,
        conn: ConnId,
        peer: PeerId,
        new_resume_token: String,
        ice_servers: impl FnOnce(&PeerId) -> Vec<IceServer>,
    ) -> Joined {
        let loc = self.peers[&peer].clone();
        let class = self
            .classes
            .get_mut(&loc.class)
            .expect("peer's class exists");
        let member = class.members.get_mut(&loc.key).expect("peer is a member");
        let mut effects = Vec::new();
        if let Some(old) = member.conn.replace(conn) {
            self.conns.remove(&old);
            effects.push(Effect::Close {
                conn: old,
                code: close_code::REPLACED,
                reason: "resumed on another connection".into(),
            });
        }
        let old_token = std::mem::replace(&mut member.resume_token, new_resume_token.clone());
        self.resume_tokens.remove(&old_token);
        self.resume_tokens.insert(new_resume_token, peer.clone());
        member.disconnected_at = None;
        let was_connected = std::mem::replace(&mut member.info.connected, true);
        let info = member.info.clone();
        let others = class.connected_conns_except(loc.key);
        self.conns.insert(conn, peer.clone());

        let welcome = self.welcome(&peer, true, ice_servers(&peer));
        effects.push(Effect::Deliver {
            to: vec![conn],
            msg: welcome,
        });
        if info.role == Role::Teacher {
            effects.extend(self.classes[&loc.class].removed_list(vec![conn]));
        }
        if !was_connected && !others.is_empty() {
            effects.push(Effect::Deliver {
                to: others,
                msg: ServerMessage::PeerUpdated { peer: info },
            });
        }
        Joined { peer, effects }
    }

    fn welcome(&self, peer: &str, resumed: bool, ice_servers: Vec<IceServer>) -> ServerMessage {
        let loc = &self.peers[peer];
        let class = &self.classes[&loc.class];
        let me = &class.members[&loc.key];
        ServerMessage::Welcome {
            protocol: PROTOCOL_VERSION,
            id: me.info.id.clone(),
            role: me.info.role,
            name: me.info.name.clone(),
            class: class.info.clone(),
            peers: class
                .members
                .iter()
                .filter(|(k, _)| **k != loc.key)
                .map(|(_, m)| m.info.clone())
                .collect(),
            ice_servers,
            resume_token: me.resume_token.clone(),
            resumed,
            permissions: me.info.permissions,
            hand_raised: me.info.hand_raised,
            chat: class.chat.iter().cloned().collect(),
        }
    }

    fn valid_name(&self, name: Option<&str>) -> Result<String, Refusal> {
        crate::text::display_name(name.unwrap_or(""), self.limits.max_name_len)
            .map_err(|e| Refusal::new(ErrorCode::InvalidName, e.to_string()))
    }

    /// `name`, or `name (2)`, `name (3)`… when someone in the class already goes by it (case
    /// ignored), so two people are never indistinguishable in the roster or the chat.
    fn unique_name(class: &Class, name: String) -> String {
        let taken: std::collections::HashSet<String> = class
            .members
            .values()
            .map(|m| crate::text::name_key(&m.info.name))
            .collect();
        if !taken.contains(&crate::text::name_key(&name)) {
            return name;
        }
        (2..)
            .map(|n| format!("{name} ({n})"))
            .find(|candidate| !taken.contains(&crate::text::name_key(candidate)))
            .expect("a free suffix exists")
    }

    /// A connection went away without `leave`: its peer waits `resume_grace_ms` for a resume.
    pub fn disconnected(&mut self, conn: ConnId, now_ms: u64) -> Vec<Effect> {
        let Some(peer) = self.conns.remove(&conn) else {
            return Vec::new();
        };
        let Some(loc) = self.peers.get(&peer).cloned() else {
            return Vec::new();
        };
        let Some(class) = self.classes.get_mut(&loc.class) else {
            return Vec::new();
        };
        let Some(member) = class.members.get_mut(&loc.key) else {
            return Vec::new();
        };
        if member.conn != Some(conn) {
            return Vec::new();
        }
        member.conn = None;
        member.disconnected_at = Some(now_ms);
        member.info.connected = false;
        let info = member.info.clone();
        let others = class.connected_conns();
        if others.is_empty() {
            return Vec::new();
        }
        vec![Effect::Deliver {
            to: others,
            msg: ServerMessage::PeerUpdated { peer: info },
        }]
    }

    /// A join to `class_id` was refused (by [`Hub::join`] or by the I/O layer's per-address
    /// limit): its teachers hear of it, at most once a second, when the refusal is one a teacher
    /// can act on (locked, full, removed, rate limited).
    pub fn join_refused(
        &mut self,
        class_id: &str,
        name: Option<&str>,
        code: ErrorCode,
        now_ms: u64,
    ) -> Vec<Effect> {
        use ErrorCode::*;
        if !matches!(code, ClassLocked | ClassFull | Removed | RateLimited) {
            return Vec::new();
        }
        let max_name = self.limits.max_name_len;
        let Some(class) = self.classes.get_mut(class_id) else {
            return Vec::new();
        };
        let name = name.and_then(|n| crate::text::display_name(n, max_name).ok());
        class.refusals.count += 1;
        class.refusals.latest = Some((name, code));
        Self::report_refusals(class, now_ms)
    }

    /// Sends a class's pending refused-join notice to its teachers unless one went out less than
    /// a second ago (or no teacher is connected: it waits for one).
    fn report_refusals(class: &mut Class, now_ms: u64) -> Vec<Effect> {
        let r = &class.refusals;
        let recent = r
            .last_sent_ms
            .is_some_and(|t| now_ms.saturating_sub(t) < REFUSAL_NOTICE_INTERVAL_MS);
        let teachers = class.teacher_conns();
        if r.count == 0 || recent || teachers.is_empty() {
            return Vec::new();
        }
        let Some((name, code)) = class.refusals.latest.take() else {
            return Vec::new();
        };
        let count = std::mem::take(&mut class.refusals.count);
        class.refusals.last_sent_ms = Some(now_ms);
        vec![Effect::Deliver {
            to: teachers,
            msg: ServerMessage::JoinRefused { name, code, count },
        }]
    }

    /// Drops peers whose resume grace has run out. Call about once a second.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Effect> {
        let grace = self.limits.resume_grace_ms;
        let expired: Vec<PeerId> = self
            .classes
            .values()
            .flat_map(|c| c.members.values())
            .filter(|m| {
                m.disconnected_at
                    .is_some_and(|t| now_ms.saturating_sub(t) >= grace)
            })
            .map(|m| m.info.id.clone())
            .collect();
        let mut effects = Vec::new();
        for peer in expired {
            effects.extend(self.remove_peer(&peer, "disconnected"));
        }
        for class in self.classes.values_mut() {
            if class.refusals.count > 0 {
                effects.extend(Self::report_refusals(class, now_ms));
            }
        }
        effects.extend(self.forward_waiting_stats(now_ms));
        effects
    }

    /// Forwards the reports that waited out their sender's stats interval.
    fn forward_waiting_stats(&mut self, now_ms: u64) -> Vec<Effect> {
        if self.stats_waiting.is_empty() {
            return Vec::new();
        }
        let interval = self.limits.stats_interval_ms;
        let mut effects = Vec::new();
        let waiting: Vec<PeerId> = self.stats_waiting.iter().cloned().collect();
        for peer in waiting {
            let Some(loc) = self.peers.get(&peer).cloned() else {
                self.stats_waiting.remove(&peer);
                continue;
            };
            let Some(member) = self
                .classes
                .get_mut(&loc.class)
                .and_then(|c| c.members.get_mut(&loc.key))
            else {
                self.stats_waiting.remove(&peer);
                continue;
            };
            let t = &mut member.traffic;
            if t.stats_sent_ms.is_some_and(|sent| now_ms < sent + interval) {
                continue;
            }
            self.stats_waiting.remove(&peer);
            if let Some(links) = t.stats_waiting.take() {
                t.stats_sent_ms = Some(now_ms);
                effects.extend(self.stats_to_teachers(&loc, &peer, links));
            }
        }
        effects
    }

    /// Takes a peer out of its class and tells the others. Does not close its connection.
    fn remove_peer(&mut self, peer: &str, reason: &str) -> Vec<Effect> {
        let Some(loc) = self.peers.remove(peer) else {
            return Vec::new();
        };
        let Some(class) = self.classes.get_mut(&loc.class) else {
            return Vec::new();
        };
        let Some(member) = class.members.remove(&loc.key) else {
            return Vec::new();
        };
        self.resume_tokens.remove(&member.resume_token);
        if let Some(conn) = member.conn {
            self.conns.remove(&conn);
        }
        let mut effects = Vec::new();
        if class.info.media == MediaMode::Sfu {
            let (class, peer) = (loc.class.clone(), peer.to_string());
            effects.push(Effect::Sfu(SfuRequest::Remove { class, peer }));
        }
        let others = class.connected_conns();
        if !others.is_empty() {
            let msg = ServerMessage::PeerLeft {
                id: peer.to_string(),
                reason: reason.to_string(),
            };
            effects.push(Effect::Deliver { to: others, msg });
        }
        effects
    }

    /// Ends a class's live session: everyone is told and disconnected; the class stays joinable.
    fn end_session(&mut self, class_id: &str, reason: &str) -> Vec<Effect> {
        let Some(class) = self.classes.get_mut(class_id) else {
            return Vec::new();
        };
        let members = std::mem::take(&mut class.members);
        class.chat.clear();
        // Removals last for the session; the next lesson starts with a clean slate.
        class.removed.clear();
        class.refusals = RefusalNotices::default();
        class.info.locked = false;
        let sfu_removals: Vec<Effect> = if class.info.media == MediaMode::Sfu {
            members
                .values()
                .map(|m| {
                    let (class, peer) = (class_id.to_string(), m.info.id.clone());
                    Effect::Sfu(SfuRequest::Remove { class, peer })
                })
                .collect()
        } else {
            Vec::new()
        };
        class.info.media = starting_media(class.info.topology, self.limits.sfu);
        let conns: Vec<ConnId> = members.values().filter_map(|m| m.conn).collect();
        for m in members.values() {
            self.peers.remove(&m.info.id);
            self.resume_tokens.remove(&m.resume_token);
            if let Some(c) = m.conn {
                self.conns.remove(&c);
            }
        }
        let mut effects = Vec::new();
        if !conns.is_empty() {
            effects.push(Effect::Deliver {
                to: conns.clone(),
                msg: ServerMessage::ClassEnded {
                    reason: reason.to_string(),
                },
            });
        }
        effects.extend(conns.into_iter().map(|conn| Effect::Close {
            conn,
            code: close_code::CLASS_ENDED,
            reason: "class ended".into(),
        }));
        effects.extend(sfu_removals);
        effects
    }

    // ----- messages from joined connections -----

    /// Applies one message from a joined connection.
    pub fn handle(
        &mut self,
        conn: ConnId,
        msg: ClientMessage,
        now_ms: u64,
    ) -> Result<Vec<Effect>, Refusal> {
        let Some(me) = self.conns.get(&conn).cloned() else {
            return Err(Refusal::new(ErrorCode::NotJoined, "send join first"));
        };
        let loc = self.peers[&me].clone();
        let role = self.classes[&loc.class].members[&loc.key].info.role;
        let teacher_only = |what: &str| -> Result<(), Refusal> {
            if role == Role::Teacher {
                Ok(())
            } else {
                Err(Refusal::new(
                    ErrorCode::Forbidden,
                    format!("only a teacher can {what}"),
                ))
            }
        };

        match msg {
            ClientMessage::Join { .. } => Err(Refusal::new(
                ErrorCode::AlreadyJoined,
                "this connection already joined",
            )),
            ClientMessage::Ping {} => Ok(vec![Effect::Deliver {
                to: vec![conn],
                msg: ServerMessage::Pong {},
            }]),
            ClientMessage::Offer { to, sdp } if to == SFU_PEER_ID => {
                self.check_sdp(&sdp)?;
                self.require_sfu(&loc)?;
                let permissions = self.classes[&loc.class].members[&loc.key].info.permissions;
                if !(permissions.share || permissions.speak) {
                    let message =
                        "only a teacher, or a student the teacher allowed to speak or share, publishes";
                    return Err(Refusal::new(ErrorCode::Forbidden, message));
                }
                let (class, peer) = (loc.class.clone(), me.clone());
                Ok(vec![Effect::Sfu(SfuRequest::Publish {
                    class,
                    peer,
                    conn,
                    sdp,
                    permissions,
                })])
            }
            ClientMessage::Answer { to, sdp } if to == SFU_PEER_ID => {
                self.check_sdp(&sdp)?;
                self.require_sfu(&loc)?;
                let (class, peer) = (loc.class.clone(), me.clone());
                Ok(vec![Effect::Sfu(SfuRequest::Answer {
                    class,
                    peer,
                    conn,
                    sdp,
                })])
            }
            // The SFU is ICE-lite: it learns each browser's address from its STUN checks.
            ClientMessage::Candidate { to, .. } if to == SFU_PEER_ID => Ok(Vec::new()),
            ClientMessage::Subscribe {} => {
                // A student whose direct link failed asks for the SFU: an `auto` class moves
                // to it (everyone switches; the teacher then publishes once).
                let mut effects = Vec::new();
                if let Some(class) = self.switch_to_sfu(&loc.class) {
                    let to = self.classes[&loc.class].connected_conns();
                    effects.push(Effect::Deliver {
                        to,
                        msg: ServerMessage::ClassUpdated { class },
                    });
                }
                self.require_sfu(&loc)?;
                let (class, peer) = (loc.class.clone(), me.clone());
                let members = self.classes[&loc.class].members.len();
                effects.push(Effect::Sfu(SfuRequest::Subscribe {
                    class,
                    peer,
                    conn,
                    members,
                }));
                Ok(effects)
            }
            ClientMessage::Offer { to, sdp } => {
                self.check_sdp(&sdp)?;
                self.charge_signal(&loc, sdp.len(), now_ms)?;
                self.relay(
                    &loc,
                    &me,
                    &to,
                    ServerMessage::Offer {
                        from: me.clone(),
                        sdp,
                    },
                )
            }
            ClientMessage::Answer { to, sdp } => {
                self.check_sdp(&sdp)?;
                self.charge_signal(&loc, sdp.len(), now_ms)?;
                self.relay(
                    &loc,
                    &me,
                    &to,
                    ServerMessage::Answer {
                        from: me.clone(),
                        sdp,
                    },
                )
            }
            ClientMessage::Candidate { to, candidate } => {
                let size = candidate.to_string().len();
                if size > 4096 {
                    return Err(Refusal::new(
                        ErrorCode::TooLong,
                        "the candidate is too long",
                    ));
                }
                self.charge_signal(&loc, size, now_ms)?;
                self.relay(
                    &loc,
                    &me,
                    &to,
                    ServerMessage::Candidate {
                        from: me.clone(),
                        candidate,
                    },
                )
            }
            ClientMessage::Chat { text } => self.chat(&loc, text, now_ms),
            ClientMessage::Hand { raised } => {
                let class = self.classes.get_mut(&loc.class).expect("class exists");
                class
                    .members
                    .get_mut(&loc.key)
                    .expect("member")
                    .info
                    .hand_raised = raised;
                Ok(vec![Effect::Deliver {
                    to: class.connected_conns(),
                    msg: ServerMessage::Hand { peer: me, raised },
                }])
            }
            ClientMessage::Media {
                mic,
                camera,
                screen,
            } => {
                let class = self.classes.get_mut(&loc.class).expect("class exists");
                let member = class.members.get_mut(&loc.key).expect("member");
                let p = member.info.permissions;
                if (mic && !p.speak) || ((camera || screen) && !p.share) {
                    return Err(Refusal::new(
                        ErrorCode::Forbidden,
                        "the teacher has not allowed you to publish this",
                    ));
                }
                member.info.media = MediaState {
                    mic,
                    camera,
                    screen,
                };
                let info = member.info.clone();
                Ok(vec![Effect::Deliver {
                    to: class.connected_conns(),
                    msg: ServerMessage::PeerUpdated { peer: info },
                }])
            }
            ClientMessage::Stats { links } => self.stats(&loc, &me, links, now_ms),
            ClientMessage::Mute { peer, kind } => {
                teacher_only("mute someone")?;
                let target = self.member_conn(&loc, &peer)?;
                Ok(target
                    .map(|c| Effect::Deliver {
                        to: vec![c],
                        msg: ServerMessage::Mute { by: me, kind },
                    })
                    .into_iter()
                    .collect())
            }
            ClientMessage::Remove { peer, reason } => {
                teacher_only("remove someone")?;
                if peer == me {
                    return Err(Refusal::new(
                        ErrorCode::BadMessage,
                        "use leave to leave the class",
                    ));
                }
                let target = self.member_conn(&loc, &peer)?;
                self.ban(&loc.class, &peer);
                let reason = reason
                    .map(|r| r.chars().take(self.limits.max_chat_len).collect())
                    .unwrap_or_else(|| "the teacher removed you from the class".to_string());
                let mut effects = Vec::new();
                if let Some(c) = target {
                    effects.push(Effect::Deliver {
                        to: vec![c],
                        msg: ServerMessage::Removed { reason },
                    });
                    effects.push(Effect::Close {
                        conn: c,
                        code: close_code::REMOVED,
                        reason: "removed by the teacher".into(),
                    });
                }
                effects.extend(self.remove_peer(&peer, "removed"));
                let class = &self.classes[&loc.class];
                effects.extend(class.removed_list(class.teacher_conns()));
                Ok(effects)
            }
            ClientMessage::Readmit { peer } => {
                teacher_only("readmit someone")?;
                let class = self.classes.get_mut(&loc.class).expect("class exists");
                let Some(at) = class.removed.iter().position(|b| b.peer.id == peer) else {
                    return Err(Refusal::new(
                        ErrorCode::UnknownPeer,
                        format!("no removed peer {peer:?} in your class"),
                    ));
                };
                class.removed.remove(at);
                let removed = class.removed.iter().map(|b| b.peer.clone()).collect();
                Ok(vec![Effect::Deliver {
                    to: class.teacher_conns(),
                    msg: ServerMessage::RemovedList { removed },
                }])
            }
            ClientMessage::Lock { locked } => {
                teacher_only("lock the class")?;
                let class = self.classes.get_mut(&loc.class).expect("class exists");
                class.info.locked = locked;
                Ok(vec![Effect::Deliver {
                    to: class.connected_conns(),
                    msg: ServerMessage::ClassUpdated {
                        class: class.info.clone(),
                    },
                }])
            }
            ClientMessage::End {} => {
                teacher_only("end the class")?;
                Ok(self.end_session(&loc.class, "the teacher ended the class"))
            }
            ClientMessage::Grant { peer, speak, share } => {
                teacher_only("grant rights")?;
                self.member_conn(&loc, &peer)?;
                let target_key = self.peers[&peer].key;
                let class = self.classes.get_mut(&loc.class).expect("class exists");
                let member = class.members.get_mut(&target_key).expect("member");
                if member.info.role == Role::Teacher {
                    return Err(Refusal::new(
                        ErrorCode::BadMessage,
                        "teachers always have every right",
                    ));
                }
                let p = &mut member.info.permissions;
                p.speak = speak.unwrap_or(p.speak);
                p.share = share.unwrap_or(p.share);
                // Revoking a right stops what it allowed; the client is told through peer_updated.
                let p = *p;
                let media = &mut member.info.media;
                media.mic &= p.speak;
                media.camera &= p.share;
                media.screen &= p.share;
                let info = member.info.clone();
                let mut effects = vec![Effect::Deliver {
                    to: class.connected_conns(),
                    msg: ServerMessage::PeerUpdated { peer: info },
                }];
                // Enforced where the media flows, not only in the student's browser.
                if class.info.media == MediaMode::Sfu {
                    effects.push(Effect::Sfu(SfuRequest::Permissions {
                        class: loc.class.clone(),
                        peer,
                        permissions: p,
                    }));
                }
                Ok(effects)
            }
            ClientMessage::Leave {} => {
                let mut effects = self.remove_peer(&me, "left");
                effects.push(Effect::Close {
                    conn,
                    code: 1000,
                    reason: "left".into(),
                });
                Ok(effects)
            }
        }
    }

    /// Records what identifies a member about to be removed, so it is refused until readmitted.
    fn ban(&mut self, class_id: &str, peer: &str) {
        let Some(key) = self.peers.get(peer).map(|l| l.key) else {
            return;
        };
        let Some(class) = self.classes.get_mut(class_id) else {
            return;
        };
        let Some(m) = class.members.get(&key) else {
            return;
        };
        let ban = Ban {
            peer: RemovedPeer {
                id: m.info.id.clone(),
                name: m.info.name.clone(),
                role: m.info.role,
            },
            resume_token: m.resume_token.clone(),
            browser: m.browser.clone(),
            personal_token: m.personal_token.clone(),
        };
        class.removed.push(ban);
    }

    fn require_sfu(&self, loc: &PeerLocation) -> Result<(), Refusal> {
        if self.classes[&loc.class].info.media == MediaMode::Sfu {
            return Ok(());
        }
        let message = "this class uses direct connections, not the SFU";
        Err(Refusal::new(ErrorCode::MediaUnavailable, message))
    }

    /// The connection of a peer, if it is connected.
    pub fn conn_of(&self, peer: &str) -> Option<ConnId> {
        let loc = self.peers.get(peer)?;
        self.classes.get(&loc.class)?.members.get(&loc.key)?.conn
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

    /// The connection of a member of the sender's class (None while it waits for a resume).
    fn member_conn(&self, loc: &PeerLocation, peer: &str) -> Result<Option<ConnId>, Refusal> {
        match self.peers.get(peer) {
            Some(target) if target.class == loc.class => {
                Ok(self.classes[&loc.class].members[&target.key].conn)
            }
            _ => Err(Refusal::new(
                ErrorCode::UnknownPeer,
                format!("no peer {peer:?} in your class"),
            )),
        }
    }

    /// Forwards a WebRTC message to one member of the sender's class.
    fn relay(
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

    fn chat(
        &mut self,
        loc: &PeerLocation,
        text: String,
        now_ms: u64,
    ) -> Result<Vec<Effect>, Refusal> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Refusal::new(ErrorCode::BadMessage, "an empty chat message"));
        }
        if text.chars().count() > self.limits.max_chat_len {
            return Err(Refusal::new(
                ErrorCode::TooLong,
                format!(
                    "chat messages are limited to {} characters",
                    self.limits.max_chat_len
                ),
            ));
        }
        if let Some(c) = text.chars().find(|c| crate::text::refused_in_chat(*c)) {
            return Err(Refusal::new(
                ErrorCode::InvalidText,
                format!(
                    "chat lines may not contain control characters other than newline, or bidi \
                     overrides (U+{:04X})",
                    c as u32
                ),
            ));
        }
        let (per_sec, burst) = (self.limits.chat_per_sec, self.limits.chat_burst);
        let history = self.limits.chat_history;
        let class = self.classes.get_mut(&loc.class).expect("class exists");
        let member = class.members.get_mut(&loc.key).expect("member");
        if !member
            .traffic
            .chat
            .take(1.0, per_sec.into(), burst.into(), now_ms)
        {
            return Err(Refusal::new(
                ErrorCode::RateLimited,
                format!("chat is limited to {per_sec} lines per second (bursts of {burst})"),
            ));
        }
        let sender = &member.info;
        let entry = ChatEntry {
            id: class.next_chat_id,
            from: sender.id.clone(),
            name: sender.name.clone(),
            text: text.to_string(),
            time: now_ms,
        };
        class.next_chat_id += 1;
        class.chat.push_back(entry.clone());
        while class.chat.len() > history {
            class.chat.pop_front();
        }
        Ok(vec![Effect::Deliver {
            to: class.connected_conns(),
            msg: ServerMessage::Chat { entry },
        }])
    }

    /// Spends `bytes` of the sender's budget for messages forwarded to specific peers, so one
    /// sender can never fill a receiver's queue: over it, the sender is refused (throttled).
    fn charge_signal(
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

    fn stats(
        &mut self,
        loc: &PeerLocation,
        me: &str,
        links: Vec<LinkStats>,
        now_ms: u64,
    ) -> Result<Vec<Effect>, Refusal> {
        if links.len() > self.limits.max_stats_links {
            return Err(Refusal::new(
                ErrorCode::TooLong,
                format!(
                    "a stats report has at most {} links",
                    self.limits.max_stats_links
                ),
            ));
        }
        let max_reason = self.limits.max_stats_reason_len;
        for link in &links {
            if link.peer.len() > MAX_PEER_ID_BYTES {
                return Err(Refusal::new(
                    ErrorCode::TooLong,
                    "a stats link's peer is not a peer id",
                ));
            }
            if link
                .reason
                .as_ref()
                .is_some_and(|r| r.chars().count() > max_reason)
            {
                return Err(Refusal::new(
                    ErrorCode::TooLong,
                    format!("a stats link's reason is limited to {max_reason} characters"),
                ));
            }
        }
        // What the report costs on the wire, roughly: its strings and the fixed fields.
        let size: usize = links
            .iter()
            .map(|l| 96 + l.peer.len() + l.reason.as_ref().map_or(0, String::len))
            .sum();
        self.charge_signal(loc, size, now_ms)?;
        let interval = self.limits.stats_interval_ms;
        let class = self.classes.get_mut(&loc.class).expect("class exists");
        let t = &mut class.members.get_mut(&loc.key).expect("member").traffic;
        if t.stats_sent_ms.is_some_and(|sent| now_ms < sent + interval) {
            // Too soon: this report waits for the interval, replacing an older one.
            t.stats_waiting = Some(links);
            self.stats_waiting.insert(me.to_string());
            return Ok(Vec::new());
        }
        t.stats_sent_ms = Some(now_ms);
        t.stats_waiting = None;
        Ok(self.stats_to_teachers(loc, me, links))
    }

    /// A report to every other teacher of the class.
    fn stats_to_teachers(
        &self,
        loc: &PeerLocation,
        me: &str,
        links: Vec<LinkStats>,
    ) -> Vec<Effect> {
        let Some(class) = self.classes.get(&loc.class) else {
            return Vec::new();
        };
        let teachers: Vec<ConnId> = class
            .members
            .iter()
            .filter(|(k, m)| **k != loc.key && m.info.role == Role::Teacher)
            .filter_map(|(_, m)| m.conn)
            .collect();
        if teachers.is_empty() {
            return Vec::new();
        }
        vec![Effect::Deliver {
            to: teachers,
            msg: ServerMessage::Stats {
                from: me.to_string(),
                links,
            },
        }]
    }
}

/// Longest peer id a `stats` link may name (server ids are far shorter).
const MAX_PEER_ID_BYTES: usize = 64;

/// The media mode a class starts its session in.
fn starting_media(topology: Topology, sfu: bool) -> MediaMode {
    match topology {
        Topology::Sfu if sfu => MediaMode::Sfu,
        _ => MediaMode::P2p,
    }
}

#[cfg(test)]
mod tests;
