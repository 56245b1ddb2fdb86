//! Joining and leaving: join, resume, `welcome`, display names, disconnects, refused-join
//! notices to teachers, the timer tick, and the end of a class's session.

use crate::protocol::{
    close_code, ClassInfo, ErrorCode, IceServer, MediaMode, MediaState, PeerId, PeerInfo,
    Permissions, Role, ServerMessage, Topology, WaitReason, PROTOCOL_VERSION,
};

use super::class::{Class, Member, PeerLocation, RefusalNotices, Traffic};
use super::{
    starting_media, ConnId, Effect, Hub, JoinRequest, Joined, Refusal, Sender, SfuRequest,
};

/// The longest `browser` id a join may carry.
const MAX_BROWSER_ID: usize = 64;

/// Refused-join notices go to a class's teachers at most this often.
const REFUSAL_NOTICE_INTERVAL_MS: u64 = 1000;
impl Hub {
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
        self.now_ms = self.now_ms.max(req.now_ms);
        // A waiting connection joins again once a teacher let it in; before, it just waits.
        let admitted = self.take_admitted(conn, &req.class)?;
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

        if let Some(peer) = self
            .resumable(&req.class, req.role, req.resume.as_deref())
            .cloned()
        {
            if admitted {
                // Let in from the waiting room, then found to hold a live identity after all.
                self.dirty.insert(req.class.clone());
            }
            return Ok(self.resume(conn, peer, req.new_resume_token, req.now_ms, ice_servers));
        }

        // A personal link fixes the name; a shared link (or the class code) does not.
        let shared_link =
            req.role == Role::Student && req.fixed_name.is_none() && req.student.is_none();
        if shared_link && !class.shared_links {
            return Err(Refusal::new(
                ErrorCode::PersonalLinkRequired,
                "this class lets students in only with their personal link; ask your teacher for yours",
            ));
        }
        if req.role == Role::Student && !admitted {
            let info = &class.info;
            let reason = if info.ended {
                Some(WaitReason::Ended)
            } else if info.locked {
                Some(WaitReason::Locked)
            } else if info.waiting_room {
                Some(WaitReason::WaitingRoom)
            } else {
                None
            };
            if let Some(reason) = reason {
                return self.wait(conn, req, reason);
            }
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
            hand_raised_at: None,
            co_teacher: false,
            permissions: if is_teacher {
                Permissions::ALL
            } else {
                Permissions::default()
            },
            media: MediaState::default(),
            connected: true,
        };
        let class = self.class_mut(&req.class);
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
                student: req.student.clone(),
                traffic: Traffic::default(),
                restored: false,
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
        let class = self.class_mut(&req.class);
        class
            .lesson
            .arrived(&info, req.student.as_deref(), req.now_ms);
        self.dirty.insert(req.class.clone());
        let switched = self.switch_to_sfu_if_large(&req.class);

        let welcome = self.welcome(&id, false, ice_servers(&id));
        let mut effects = vec![Effect::Deliver {
            to: vec![conn],
            msg: welcome,
        }];
        if is_teacher {
            let class = self.class(&req.class);
            effects.extend(class.removed_list(vec![conn]));
            effects.extend(class.waiting_list(vec![conn], false));
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
        Ok(Joined {
            peer: id,
            resumed: false,
            waiting: false,
            effects,
        })
    }

    /// An `auto` class moves to the SFU, once, when it has more students than direct connections
    /// serve well (the teacher's uplink carries one copy per student). Returns the new class info.
    pub(super) fn switch_to_sfu_if_large(&mut self, class_id: &str) -> Option<ClassInfo> {
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
    pub(super) fn switch_to_sfu(&mut self, class_id: &str) -> Option<ClassInfo> {
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
        self.resumable(class, role, resume).is_some()
    }

    /// The peer a join's resume token names, if this class and role may resume it.
    fn resumable(&self, class: &str, role: Role, resume: Option<&str>) -> Option<&PeerId> {
        let peer = self.resume_tokens.get(resume?)?;
        let loc = self.peers.get(peer)?;
        let member = self.classes.get(&loc.class)?.members.get(&loc.key)?;
        // A co-teacher joined as a student and resumes with the student link.
        let joined_as = if member.info.co_teacher {
            Role::Student
        } else {
            member.info.role
        };
        (loc.class == class && joined_as == role).then_some(peer)
    }

    pub(super) fn resume(
        &mut self,
        conn: ConnId,
        peer: PeerId,
        new_resume_token: String,
        now_ms: u64,
        ice_servers: impl FnOnce(&PeerId) -> Vec<IceServer>,
    ) -> Joined {
        let loc = self.peers[&peer].clone();
        self.dirty.insert(loc.class.clone());
        let member = self.member_mut(&loc);
        let old_conn = member.conn.replace(conn);
        let old_token = std::mem::replace(&mut member.resume_token, new_resume_token.clone());
        member.disconnected_at = None;
        let was_connected = std::mem::replace(&mut member.info.connected, true);
        let info = member.info.clone();
        let student = member.student.clone();
        let class = self.class_mut(&loc.class);
        class.lesson.arrived(&info, student.as_deref(), now_ms);
        let others = class.connected_conns_except(loc.key);
        let mut effects = Vec::new();
        if let Some(old) = old_conn {
            self.conns.remove(&old);
            effects.push(Effect::Close {
                conn: old,
                code: close_code::REPLACED,
                reason: "resumed on another connection".into(),
            });
        }
        self.resume_tokens.remove(&old_token);
        self.resume_tokens.insert(new_resume_token, peer.clone());
        self.conns.insert(conn, peer.clone());

        let welcome = self.welcome(&peer, true, ice_servers(&peer));
        self.member_mut(&loc).restored = false;
        effects.push(Effect::Deliver {
            to: vec![conn],
            msg: welcome,
        });
        if info.role == Role::Teacher {
            let class = self.class(&loc.class);
            effects.extend(class.removed_list(vec![conn]));
            effects.extend(class.waiting_list(vec![conn], false));
        }
        if !was_connected && !others.is_empty() {
            effects.push(Effect::Deliver {
                to: others,
                msg: ServerMessage::PeerUpdated { peer: info },
            });
        }
        Joined {
            peer,
            resumed: true,
            waiting: false,
            effects,
        }
    }

    pub(super) fn welcome(
        &self,
        peer: &str,
        resumed: bool,
        ice_servers: Vec<IceServer>,
    ) -> ServerMessage {
        let loc = &self.peers[peer];
        let class = self.class(&loc.class);
        let me = self.member(loc);
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
            co_teacher: me.info.co_teacher,
            chat: class.chat_for(&me.info),
            server_restarted: me.restored,
            summary: class
                .last_summary
                .clone()
                .filter(|_| class.info.ended && me.info.role == Role::Teacher),
        }
    }

    /// The display name a join asks for, by the one rule for names ([`crate::text::display_name`],
    /// which the admin API and `aula token` apply to a token's fixed name too).
    pub(super) fn valid_name(&self, name: Option<&str>) -> Result<String, Refusal> {
        crate::text::display_name(name.unwrap_or(""), self.limits.max_name_len)
            .map_err(|e| Refusal::new(ErrorCode::InvalidName, e.to_string()))
    }

    /// `name`, or `name (2)`, `name (3)`… when someone in the class already goes by it (case
    /// ignored), so two people are never indistinguishable in the roster or the chat.
    pub(super) fn unique_name(class: &Class, name: String) -> String {
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
        self.now_ms = self.now_ms.max(now_ms);
        if let Some((class, key)) = self.waiting_conns.remove(&conn) {
            return self.stop_waiting(&class, key);
        }
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
        class.lesson.departed(&info.id, now_ms);
        self.dirty.insert(loc.class.clone());
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
        let name = name.and_then(|n| self.valid_name(Some(n)).ok());
        let Some(class) = self.classes.get_mut(class_id) else {
            return Vec::new();
        };
        class.refusals.count += 1;
        class.refusals.latest = Some((name, code));
        Self::report_refusals(class, now_ms)
    }

    /// Sends a class's pending refused-join notice to its teachers unless one went out less than
    /// a second ago (or no teacher is connected: it waits for one).
    pub(super) fn report_refusals(class: &mut Class, now_ms: u64) -> Vec<Effect> {
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
        self.now_ms = self.now_ms.max(now_ms);
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
        effects.extend(self.expire_waiting(now_ms));
        effects.extend(self.forward_waiting_stats(now_ms));
        effects
    }

    /// `leave`: the sender leaves the class now, without a resume.
    pub(super) fn leave(&mut self, from: &Sender) -> Vec<Effect> {
        let mut effects = self.remove_peer(&from.id, "left");
        effects.push(Effect::Close {
            conn: from.conn,
            code: 1000,
            reason: "left".into(),
        });
        effects
    }

    /// Takes a peer out of its class and tells the others. Does not close its connection.
    pub(super) fn remove_peer(&mut self, peer: &str, reason: &str) -> Vec<Effect> {
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
        class.lesson.departed(&member.info.id, self.now_ms);
        self.dirty.insert(loc.class.clone());
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

    /// Ends a class's lesson: everyone is told and disconnected, teachers with the lesson's
    /// summary. With `ended`, the class then waits for a teacher's `start`: students opening its
    /// link wait, and so do those who were knocking.
    pub(super) fn end_session(&mut self, class_id: &str, reason: &str, ended: bool) -> Vec<Effect> {
        let now = self.now_ms;
        let Some(class) = self.classes.get_mut(class_id) else {
            return Vec::new();
        };
        self.dirty.insert(class_id.to_string());
        let summary = class.lesson.finish(now);
        let members = std::mem::take(&mut class.members);
        class.chat.clear();
        // Removals last for the session; the next lesson starts with a clean slate.
        class.removed.clear();
        class.refusals = RefusalNotices::default();
        class.info.locked = false;
        class.info.spotlight = None;
        class.info.ended = ended;
        class.last_summary = Some(summary.clone());
        if ended && !summary.attendance.is_empty() {
            self.finished_lessons
                .push((class_id.to_string(), summary.clone()));
        }
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
        let mut effects = Vec::new();
        if ended {
            // Whoever was knocking now waits for the next lesson instead.
            let class_name = class.info.name.clone();
            for w in class.waiting.values_mut() {
                w.reason = WaitReason::Ended;
                w.admitted_at = None;
                effects.push(Effect::Deliver {
                    to: vec![w.conn],
                    msg: ServerMessage::Waiting {
                        reason: WaitReason::Ended,
                        class_name: class_name.clone(),
                    },
                });
            }
        }
        let (mut teachers, mut students) = (Vec::new(), Vec::new());
        for m in members.values() {
            self.peers.remove(&m.info.id);
            self.resume_tokens.remove(&m.resume_token);
            if let Some(c) = m.conn {
                self.conns.remove(&c);
                match m.info.role {
                    Role::Teacher => teachers.push(c),
                    Role::Student => students.push(c),
                }
            }
        }
        if !teachers.is_empty() {
            effects.push(Effect::Deliver {
                to: teachers.clone(),
                msg: ServerMessage::ClassEnded {
                    reason: reason.to_string(),
                    summary: Some(summary),
                },
            });
        }
        if !students.is_empty() {
            effects.push(Effect::Deliver {
                to: students.clone(),
                msg: ServerMessage::ClassEnded {
                    reason: reason.to_string(),
                    summary: None,
                },
            });
        }
        effects.extend(
            teachers
                .into_iter()
                .chain(students)
                .map(|conn| Effect::Close {
                    conn,
                    code: close_code::CLASS_ENDED,
                    reason: "class ended".into(),
                }),
        );
        effects.extend(sfu_removals);
        effects
    }
}
