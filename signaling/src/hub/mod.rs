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
//! The hub's rules live in one file per concern, each an `impl Hub` block:
//!
//! - [`session`]: joins, resumes, `welcome`, display names, disconnects, refused-join notices,
//!   the timer tick and the end of a session;
//! - [`signal`]: WebRTC messages relayed between peers, and the requests made of the SFU;
//! - [`controls`]: what teachers control (removal and readmission);
//! - [`chat`]: the class chat and its history;
//! - [`stats`]: connection-quality reports relayed to teachers;
//! - [`class`]: the state kept per class and per member.

mod chat;
mod class;
mod controls;
mod session;
mod signal;
mod stats;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::protocol::{
    close_code, ClassId, ClassInfo, ClientMessage, ErrorCode, MediaMode, MediaState, PeerId,
    PeerInfo, Permissions, Role, ServerMessage, Topology, SFU_PEER_ID,
};

use self::class::{Class, PeerLocation, RefusalNotices};

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

/// The outcome of a successful join.
#[derive(Debug)]
pub struct Joined {
    pub peer: PeerId,
    pub effects: Vec<Effect>,
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

    /// The connection of a peer, if it is connected.
    pub fn conn_of(&self, peer: &str) -> Option<ConnId> {
        let loc = self.peers.get(peer)?;
        self.classes.get(&loc.class)?.members.get(&loc.key)?.conn
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
}

/// The media mode a class starts its session in.
fn starting_media(topology: Topology, sfu: bool) -> MediaMode {
    match topology {
        Topology::Sfu if sfu => MediaMode::Sfu,
        _ => MediaMode::P2p,
    }
}

#[cfg(test)]
mod tests;
