//! The waiting room: a student who may not come straight in (the class is locked, its waiting
//! room is on, or the lesson has ended) waits on her open connection; teachers see who waits and
//! admit or decline each, or admit all. Admitted, she sends `join` again on the same connection
//! and gets in past the lock. Also `start`, which opens an ended lesson again.

use crate::protocol::{close_code, ClientMessage, ErrorCode, Role, ServerMessage, WaitReason};

use super::class::Waiter;
use super::{ConnId, Effect, Hub, JoinRequest, Joined, Refusal, Sender};

/// How long an admitted connection has to send its `join` again.
const ADMITTED_REJOIN_MS: u64 = 30_000;

impl Hub {
    /// Whether `conn` waits and a teacher let it in: its next `join` is spared the per-address
    /// join limit, as a resume is.
    pub fn would_admit(&self, conn: ConnId) -> bool {
        self.waiting_conns
            .get(&conn)
            .and_then(|(class, key)| self.classes.get(class)?.waiting.get(key))
            .is_some_and(|w| w.admitted_at.is_some())
    }

    /// How many wait to be let in to one class (or for its lesson to start).
    pub fn waiting_in(&self, class: &str) -> usize {
        self.classes.get(class).map_or(0, |c| c.waiting.len())
    }

    /// How many wait to be let in, in every class.
    pub fn waiting_count(&self) -> usize {
        self.waiting_conns.len()
    }

    /// For a `join` on `conn`: true when a teacher let this waiting connection in (it leaves the
    /// waiting room now); false when it was not waiting. Refused while it still waits.
    pub(super) fn take_admitted(&mut self, conn: ConnId, class_id: &str) -> Result<bool, Refusal> {
        let Some((class, key)) = self.waiting_conns.get(&conn).cloned() else {
            return Ok(false);
        };
        let admitted = self
            .classes
            .get(&class)
            .and_then(|c| c.waiting.get(&key))
            .is_some_and(|w| w.admitted_at.is_some());
        if !admitted || class != class_id {
            return Err(Refusal::new(
                ErrorCode::AlreadyJoined,
                "you are waiting for a teacher to let you in",
            ));
        }
        self.waiting_conns.remove(&conn);
        if let Some(c) = self.classes.get_mut(&class) {
            c.waiting.remove(&key);
        }
        Ok(true)
    }

    /// A student's join that must wait: she hears why, teachers see her in the waiting list.
    pub(super) fn wait(
        &mut self,
        conn: ConnId,
        req: JoinRequest,
        reason: WaitReason,
    ) -> Result<Joined, Refusal> {
        let name = self.valid_name(req.fixed_name.as_deref().or(req.name.as_deref()))?;
        let max = self.limits.max_waiting;
        let class = self.class(&req.class);
        if class.waiting.len() >= max {
            return Err(Refusal::new(
                ErrorCode::ClassFull,
                format!("too many people are waiting to be let in ({max}); try again later"),
            ));
        }
        let name = Self::unique_name(class, name);
        self.next_waiter += 1;
        let key = self.next_waiter;
        let class = self.class_mut(&req.class);
        class.waiting.insert(
            key,
            Waiter {
                conn,
                name,
                since: req.now_ms,
                reason,
                admitted_at: None,
            },
        );
        let class_name = class.info.name.clone();
        self.waiting_conns.insert(conn, (req.class.clone(), key));
        let mut effects = vec![Effect::Deliver {
            to: vec![conn],
            msg: ServerMessage::Waiting { reason, class_name },
        }];
        if reason != WaitReason::Ended {
            let class = self.class(&req.class);
            effects.extend(class.waiting_list(class.teacher_conns(), true));
        }
        Ok(Joined {
            peer: String::new(),
            resumed: false,
            waiting: true,
            effects,
        })
    }

    /// A message on a waiting connection: only `ping` and `leave` mean anything there.
    pub(super) fn handle_waiting(
        &mut self,
        conn: ConnId,
        msg: ClientMessage,
    ) -> Result<Vec<Effect>, Refusal> {
        match msg {
            ClientMessage::Ping {} => Ok(vec![Effect::Deliver {
                to: vec![conn],
                msg: ServerMessage::Pong {},
            }]),
            ClientMessage::Leave {} => {
                let mut effects = match self.waiting_conns.remove(&conn) {
                    Some((class, key)) => self.stop_waiting(&class, key),
                    None => Vec::new(),
                };
                effects.push(Effect::Close {
                    conn,
                    code: 1000,
                    reason: "left".into(),
                });
                Ok(effects)
            }
            _ => Err(Refusal::new(
                ErrorCode::NotJoined,
                "you are waiting for a teacher to let you in",
            )),
        }
    }

    /// Takes a waiter out of its class's waiting room (its connection is already forgotten);
    /// teachers get the new list when she was on it.
    pub(super) fn stop_waiting(&mut self, class_id: &str, key: u64) -> Vec<Effect> {
        let Some(class) = self.classes.get_mut(class_id) else {
            return Vec::new();
        };
        let Some(w) = class.waiting.remove(&key) else {
            return Vec::new();
        };
        if w.admitted_at.is_some() || w.reason == WaitReason::Ended {
            return Vec::new();
        }
        class
            .waiting_list(class.teacher_conns(), true)
            .into_iter()
            .collect()
    }

    /// Turns away one waiter with an error and a close.
    fn turn_away(
        &mut self,
        class_id: &str,
        key: u64,
        code: ErrorCode,
        message: &str,
    ) -> Vec<Effect> {
        let Some(w) = self
            .classes
            .get_mut(class_id)
            .and_then(|c| c.waiting.remove(&key))
        else {
            return Vec::new();
        };
        self.waiting_conns.remove(&w.conn);
        vec![
            Effect::Deliver {
                to: vec![w.conn],
                msg: ServerMessage::Error {
                    code,
                    message: message.to_string(),
                    reference: None,
                },
            },
            Effect::Close {
                conn: w.conn,
                code: close_code::JOIN_REFUSED,
                reason: "join refused".into(),
            },
        ]
    }

    /// Everyone waiting at a class that is going away is told so.
    pub(super) fn turn_away_waiting(&mut self, class_id: &str) -> Vec<Effect> {
        let keys: Vec<u64> = match self.classes.get(class_id) {
            Some(c) => c.waiting.keys().copied().collect(),
            None => return Vec::new(),
        };
        keys.into_iter()
            .flat_map(|k| {
                self.turn_away(
                    class_id,
                    k,
                    ErrorCode::ClassNotFound,
                    "this class does not exist any more",
                )
            })
            .collect()
    }

    /// Gives up on those who waited too long, and on admitted connections that never came in.
    pub(super) fn expire_waiting(&mut self, now_ms: u64) -> Vec<Effect> {
        let max = self.limits.max_wait_ms;
        let expired: Vec<(String, u64, bool)> = self
            .classes
            .iter()
            .flat_map(|(id, c)| {
                c.waiting.iter().filter_map(move |(k, w)| {
                    let stale_admit = w
                        .admitted_at
                        .is_some_and(|t| now_ms.saturating_sub(t) >= ADMITTED_REJOIN_MS);
                    let too_long = now_ms.saturating_sub(w.since) >= max;
                    (stale_admit || too_long).then(|| (id.clone(), *k, w.admitted_at.is_some()))
                })
            })
            .collect();
        let mut effects = Vec::new();
        for (class, key, admitted) in expired {
            let listed =
                !admitted && self.classes[&class].waiting[&key].reason != WaitReason::Ended;
            effects.extend(self.turn_away(
                &class,
                key,
                ErrorCode::WaitingTimeout,
                "nobody let you in for a long time; try again later",
            ));
            if listed {
                let c = self.class(&class);
                effects.extend(c.waiting_list(c.teacher_conns(), true));
            }
        }
        effects
    }

    /// The waiter a teacher names, in the teacher's class and still waiting for a teacher.
    fn waiter_key(&self, from: &Sender, id: &str) -> Result<u64, Refusal> {
        let class = self.class(&from.loc.class);
        let unknown = || {
            Refusal::new(
                ErrorCode::UnknownPeer,
                format!("nobody {id:?} is waiting to be let in"),
            )
        };
        let key: u64 = id
            .strip_prefix('w')
            .and_then(|k| k.parse().ok())
            .ok_or_else(unknown)?;
        match class.waiting.get(&key) {
            Some(w) if w.admitted_at.is_none() && w.reason != WaitReason::Ended => Ok(key),
            Some(_) if class.info.ended => Err(Refusal::new(
                ErrorCode::BadMessage,
                "the lesson has ended: start it to let students in",
            )),
            _ => Err(unknown()),
        }
    }

    /// Lets one waiter in: she is told to send `join` again.
    fn let_in(&mut self, class_id: &str, key: u64, now_ms: u64) -> Vec<Effect> {
        let Some(w) = self
            .classes
            .get_mut(class_id)
            .and_then(|c| c.waiting.get_mut(&key))
        else {
            return Vec::new();
        };
        w.admitted_at = Some(now_ms);
        vec![Effect::Deliver {
            to: vec![w.conn],
            msg: ServerMessage::Admitted {},
        }]
    }

    /// `admit`: lets one waiting person in.
    pub(super) fn admit(
        &mut self,
        from: &Sender,
        id: &str,
        now_ms: u64,
    ) -> Result<Vec<Effect>, Refusal> {
        from.teacher_only("let someone in")?;
        let key = self.waiter_key(from, id)?;
        let mut effects = self.let_in(&from.loc.class, key, now_ms);
        let class = self.class(&from.loc.class);
        effects.extend(class.waiting_list(class.teacher_conns(), true));
        Ok(effects)
    }

    /// `admit_all`: lets everyone waiting for a teacher in.
    pub(super) fn admit_all(&mut self, from: &Sender, now_ms: u64) -> Result<Vec<Effect>, Refusal> {
        from.teacher_only("let someone in")?;
        let class = self.class(&from.loc.class);
        let keys: Vec<u64> = class
            .waiting
            .iter()
            .filter(|(_, w)| w.admitted_at.is_none() && w.reason != WaitReason::Ended)
            .map(|(k, _)| *k)
            .collect();
        let mut effects: Vec<Effect> = keys
            .into_iter()
            .flat_map(|k| self.let_in(&from.loc.class, k, now_ms))
            .collect();
        let class = self.class(&from.loc.class);
        effects.extend(class.waiting_list(class.teacher_conns(), true));
        Ok(effects)
    }

    /// `decline`: turns one waiting person away.
    pub(super) fn decline(&mut self, from: &Sender, id: &str) -> Result<Vec<Effect>, Refusal> {
        from.teacher_only("turn someone away")?;
        let key = self.waiter_key(from, id)?;
        let mut effects = self.turn_away(
            &from.loc.class,
            key,
            ErrorCode::Declined,
            "the teacher did not let you in",
        );
        let class = self.class(&from.loc.class);
        effects.extend(class.waiting_list(class.teacher_conns(), true));
        Ok(effects)
    }

    /// `waiting_room`: turns the class's waiting room on or off. Turning it off does not let in
    /// who already waits (the teacher admits them, or all).
    pub(super) fn set_waiting_room(
        &mut self,
        from: &Sender,
        enabled: bool,
    ) -> Result<Vec<Effect>, Refusal> {
        from.teacher_only("change the waiting room")?;
        let class = self.class_mut(&from.loc.class);
        class.info.waiting_room = enabled;
        Ok(vec![Effect::Deliver {
            to: class.connected_conns(),
            msg: ServerMessage::ClassUpdated {
                class: class.info.clone(),
            },
        }])
    }

    /// `start`: opens an ended lesson again. Students waiting for it come in, or, when the
    /// class has its waiting room on, wait for a teacher like any newcomer.
    pub(super) fn start(&mut self, from: &Sender, now_ms: u64) -> Result<Vec<Effect>, Refusal> {
        from.teacher_only("start the lesson")?;
        let class = self.class_mut(&from.loc.class);
        if !class.info.ended {
            return Ok(Vec::new());
        }
        class.info.ended = false;
        class.lesson = Default::default();
        let here: Vec<_> = class
            .members
            .values()
            .filter(|m| m.conn.is_some())
            .map(|m| (m.info.clone(), m.student.clone()))
            .collect();
        for (info, student) in &here {
            class.lesson.arrived(info, student.as_deref(), now_ms);
        }
        let mut effects = vec![Effect::Deliver {
            to: class.connected_conns(),
            msg: ServerMessage::ClassUpdated {
                class: class.info.clone(),
            },
        }];
        let gate = class.info.waiting_room;
        let class_name = class.info.name.clone();
        let keys: Vec<u64> = class.waiting.keys().copied().collect();
        for key in keys {
            if gate {
                let w = self.class_mut(&from.loc.class).waiting.get_mut(&key);
                let Some(w) = w else { continue };
                w.reason = WaitReason::WaitingRoom;
                effects.push(Effect::Deliver {
                    to: vec![w.conn],
                    msg: ServerMessage::Waiting {
                        reason: WaitReason::WaitingRoom,
                        class_name: class_name.clone(),
                    },
                });
            } else {
                effects.extend(self.let_in(&from.loc.class, key, now_ms));
            }
        }
        let class = self.class(&from.loc.class);
        effects.extend(class.waiting_list(class.teacher_conns(), false));
        debug_assert!(from.role == Role::Teacher);
        Ok(effects)
    }
}
