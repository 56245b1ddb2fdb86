//! Who may say and show what: raised hands, what each member publishes, and the teacher's
//! controls (mute and mute all, lower hands, remove and readmit, lock, end, grant, promote and
//! demote a co-teacher).
//!
//! A co-teacher (a student a teacher promoted) has the role `teacher` and every teacher control
//! but three, which stay with the class's own teachers: ending the class, promoting or demoting,
//! and removing a teacher.

use crate::protocol::{
    close_code, ErrorCode, MediaMode, MediaState, MuteKind, PeerId, Permissions, RemovedPeer, Role,
    ServerMessage,
};

use super::class::Ban;
use super::{Effect, Hub, Refusal, Sender, SfuRequest};

impl Hub {
    /// `hand`: the sender raises or lowers its hand; everyone sees it. A hand raised again
    /// while up keeps its place in the queue (its first time).
    pub(super) fn hand(&mut self, from: &Sender, raised: bool, now_ms: u64) -> Vec<Effect> {
        let info = &mut self.member_mut(&from.loc).info;
        info.hand_raised = raised;
        info.hand_raised_at = if raised {
            Some(info.hand_raised_at.unwrap_or(now_ms))
        } else {
            None
        };
        let at = info.hand_raised_at;
        vec![Effect::Deliver {
            to: self.class(&from.loc.class).connected_conns(),
            msg: ServerMessage::Hand {
                peer: from.id.clone(),
                raised,
                at,
                by: None,
            },
        }]
    }

    /// `lower_hands`: a teacher lowers one student's hand, or every raised hand (oldest first).
    pub(super) fn lower_hands(
        &mut self,
        from: &Sender,
        peer: Option<PeerId>,
    ) -> Result<Vec<Effect>, Refusal> {
        from.teacher_only("lower someone's hand")?;
        let class = self.class(&from.loc.class);
        let keys: Vec<u64> = match &peer {
            Some(p) => {
                self.member_conn(&from.loc, p)?;
                vec![self.peers[p].key]
            }
            None => {
                let mut raised: Vec<(u64, u64)> = class
                    .members
                    .iter()
                    .filter(|(_, m)| m.info.hand_raised)
                    .map(|(k, m)| (m.info.hand_raised_at.unwrap_or(0), *k))
                    .collect();
                raised.sort_unstable();
                raised.into_iter().map(|(_, k)| k).collect()
            }
        };
        let class = self.class_mut(&from.loc.class);
        let mut lowered = Vec::new();
        for key in keys {
            let Some(m) = class.members.get_mut(&key) else {
                continue;
            };
            if !m.info.hand_raised {
                continue;
            }
            m.info.hand_raised = false;
            m.info.hand_raised_at = None;
            lowered.push(m.info.id.clone());
        }
        let to = class.connected_conns();
        Ok(lowered
            .into_iter()
            .map(|peer| Effect::Deliver {
                to: to.clone(),
                msg: ServerMessage::Hand {
                    peer,
                    raised: false,
                    at: None,
                    by: Some(from.id.clone()),
                },
            })
            .collect())
    }

    /// `media`: what the sender now publishes, within the rights it was granted.
    pub(super) fn media(
        &mut self,
        from: &Sender,
        mic: bool,
        camera: bool,
        screen: bool,
    ) -> Result<Vec<Effect>, Refusal> {
        let member = self.member_mut(&from.loc);
        let media = MediaState {
            mic,
            camera,
            screen,
        };
        if !member.info.permissions.allow(media) {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                "the teacher has not allowed you to publish this",
            ));
        }
        member.info.media = media;
        let info = member.info.clone();
        Ok(vec![Effect::Deliver {
            to: self.class(&from.loc.class).connected_conns(),
            msg: ServerMessage::PeerUpdated { peer: info },
        }])
    }

    /// `mute`: asks one member to turn its microphone and/or camera off.
    pub(super) fn mute(
        &mut self,
        from: &Sender,
        peer: &str,
        kind: MuteKind,
    ) -> Result<Vec<Effect>, Refusal> {
        from.teacher_only("mute someone")?;
        let target = self.member_conn(&from.loc, peer)?;
        Ok(target
            .map(|c| Effect::Deliver {
                to: vec![c],
                msg: ServerMessage::Mute {
                    by: from.id.clone(),
                    kind,
                    everyone: false,
                },
            })
            .into_iter()
            .collect())
    }

    /// `mute_all`: asks every connected student to turn the named media off; each client says
    /// what it actually turned off. Teachers (and co-teachers) are not asked.
    pub(super) fn mute_all(
        &mut self,
        from: &Sender,
        kind: MuteKind,
    ) -> Result<Vec<Effect>, Refusal> {
        from.teacher_only("mute everyone")?;
        let to: Vec<_> = self
            .class(&from.loc.class)
            .members
            .values()
            .filter(|m| m.info.role == Role::Student)
            .filter_map(|m| m.conn)
            .collect();
        if to.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![Effect::Deliver {
            to,
            msg: ServerMessage::Mute {
                by: from.id.clone(),
                kind,
                everyone: true,
            },
        }])
    }

    /// `promote`: the class's teacher makes a student a co-teacher: role `teacher`, every right,
    /// hand lowered. An `auto` class on direct links moves to the SFU (the new teacher's media
    /// must reach every student, and direct links are built per teacher–student pair).
    pub(super) fn promote(&mut self, from: &Sender, peer: PeerId) -> Result<Vec<Effect>, Refusal> {
        from.class_teacher_only("make someone a co-teacher")?;
        self.member_conn(&from.loc, &peer)?;
        let target = self.peers[&peer].clone();
        let member = self.member_mut(&target);
        if member.info.role == Role::Teacher {
            return Err(Refusal::new(
                ErrorCode::BadMessage,
                "only a student can be made a co-teacher",
            ));
        }
        let info = &mut member.info;
        info.role = Role::Teacher;
        info.co_teacher = true;
        info.permissions = Permissions::ALL;
        info.hand_raised = false;
        info.hand_raised_at = None;
        let conn = member.conn;
        Ok(self.role_changed(from, peer, conn, Permissions::ALL))
    }

    /// `demote`: the class's teacher makes a co-teacher a student again, with no rights (what it
    /// published stops).
    pub(super) fn demote(&mut self, from: &Sender, peer: PeerId) -> Result<Vec<Effect>, Refusal> {
        from.class_teacher_only("make a co-teacher a student again")?;
        self.member_conn(&from.loc, &peer)?;
        let target = self.peers[&peer].clone();
        let member = self.member_mut(&target);
        if !member.info.co_teacher {
            return Err(Refusal::new(
                ErrorCode::BadMessage,
                "only a co-teacher can be made a student again",
            ));
        }
        let info = &mut member.info;
        info.role = Role::Student;
        info.co_teacher = false;
        info.permissions = Permissions::default();
        info.media = MediaState::default();
        let conn = member.conn;
        Ok(self.role_changed(from, peer, conn, Permissions::default()))
    }

    /// After a promotion or demotion: everyone gets the new roster entry (and the class's new
    /// media mode), a new co-teacher the removed list, and the SFU the new rights.
    fn role_changed(
        &mut self,
        from: &Sender,
        peer: PeerId,
        conn: Option<super::ConnId>,
        permissions: Permissions,
    ) -> Vec<Effect> {
        let info = self.member(&self.peers[&peer].clone()).info.clone();
        let promoted = info.co_teacher;
        let everyone = self.class(&from.loc.class).connected_conns();
        let mut effects = vec![Effect::Deliver {
            to: everyone.clone(),
            msg: ServerMessage::PeerUpdated { peer: info },
        }];
        if promoted {
            if let Some(class) = self.switch_to_sfu(&from.loc.class) {
                effects.push(Effect::Deliver {
                    to: everyone,
                    msg: ServerMessage::ClassUpdated { class },
                });
            }
            if let Some(c) = conn {
                effects.extend(self.class(&from.loc.class).removed_list(vec![c]));
            }
        }
        if self.class(&from.loc.class).info.media == MediaMode::Sfu {
            effects.push(Effect::Sfu(SfuRequest::Permissions {
                class: from.loc.class.clone(),
                peer,
                permissions,
            }));
        }
        effects
    }

    /// `remove`: takes a member out of the class and refuses them until readmitted.
    pub(super) fn remove(
        &mut self,
        from: &Sender,
        peer: &str,
        reason: Option<String>,
    ) -> Result<Vec<Effect>, Refusal> {
        from.teacher_only("remove someone")?;
        if peer == from.id {
            return Err(Refusal::new(
                ErrorCode::BadMessage,
                "use leave to leave the class",
            ));
        }
        let target = self.member_conn(&from.loc, peer)?;
        let target_role = self.member(&self.peers[peer].clone()).info.role;
        if from.co_teacher && target_role == Role::Teacher {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                "a co-teacher cannot remove a teacher",
            ));
        }
        self.ban(&from.loc.class, peer);
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
        effects.extend(self.remove_peer(peer, "removed"));
        let class = self.class(&from.loc.class);
        effects.extend(class.removed_list(class.teacher_conns()));
        Ok(effects)
    }

    /// `readmit`: lets a removed peer join again.
    pub(super) fn readmit(&mut self, from: &Sender, peer: &str) -> Result<Vec<Effect>, Refusal> {
        from.teacher_only("readmit someone")?;
        let class = self.class_mut(&from.loc.class);
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

    /// `lock`: closes or opens the class to new students.
    pub(super) fn lock(&mut self, from: &Sender, locked: bool) -> Result<Vec<Effect>, Refusal> {
        from.teacher_only("lock the class")?;
        let class = self.class_mut(&from.loc.class);
        class.info.locked = locked;
        Ok(vec![Effect::Deliver {
            to: class.connected_conns(),
            msg: ServerMessage::ClassUpdated {
                class: class.info.clone(),
            },
        }])
    }

    /// `end`: ends the lesson for everyone; the class waits for a teacher's `start`.
    pub(super) fn end(&mut self, from: &Sender, now_ms: u64) -> Result<Vec<Effect>, Refusal> {
        from.class_teacher_only("end the class")?;
        self.now_ms = self.now_ms.max(now_ms);
        Ok(self.end_session(&from.loc.class, "the teacher ended the lesson", true))
    }

    /// `grant`: sets a student's rights to speak, to show a camera and to share a screen; a
    /// revoked right stops what it allowed, in the roster and at the SFU. Granting a right moves
    /// an `auto` class on direct connections to the SFU, so that the whole class receives the
    /// student's media.
    pub(super) fn grant(
        &mut self,
        from: &Sender,
        peer: PeerId,
        rights: GrantRights,
    ) -> Result<Vec<Effect>, Refusal> {
        from.teacher_only("grant rights")?;
        if rights.legacy_share {
            return Err(Refusal::new(
                ErrorCode::BadMessage,
                "share was split into camera and screen: grant {peer, camera?, screen?}",
            ));
        }
        let GrantRights {
            speak,
            camera,
            screen,
            ..
        } = rights;
        self.member_conn(&from.loc, &peer)?;
        let target = self.peers[&peer].clone();
        let member = self.member_mut(&target);
        if member.info.role == Role::Teacher {
            return Err(Refusal::new(
                ErrorCode::BadMessage,
                "teachers always have every right",
            ));
        }
        let p = &mut member.info.permissions;
        p.speak = speak.unwrap_or(p.speak);
        p.camera = camera.unwrap_or(p.camera);
        p.screen = screen.unwrap_or(p.screen);
        // Revoking a right stops what it allowed; the client is told through peer_updated.
        let p = *p;
        let media = &mut member.info.media;
        media.mic &= p.speak;
        media.camera &= p.camera;
        media.screen &= p.screen;
        let info = member.info.clone();
        let mut effects = vec![Effect::Deliver {
            to: self.class(&from.loc.class).connected_conns(),
            msg: ServerMessage::PeerUpdated { peer: info },
        }];
        // Direct links carry a student's media only to the teacher: for the whole class to hear
        // or see her, an `auto` class moves to the SFU (everyone switches, as when it grows).
        // Told after the new rights, so clients re-render the roster with them already in place.
        if [speak, camera, screen].contains(&Some(true)) {
            if let Some(class) = self.switch_to_sfu(&from.loc.class) {
                effects.push(Effect::Deliver {
                    to: self.class(&from.loc.class).connected_conns(),
                    msg: ServerMessage::ClassUpdated { class },
                });
            }
        }
        let class = self.class(&from.loc.class);
        // Enforced where the media flows, not only in the student's browser.
        if class.info.media == MediaMode::Sfu {
            effects.push(Effect::Sfu(SfuRequest::Permissions {
                class: from.loc.class.clone(),
                peer,
                permissions: p,
            }));
        }
        Ok(effects)
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
}

/// The rights a `grant` sets (None: unchanged), and whether it still used the old `share`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct GrantRights {
    pub(super) speak: Option<bool>,
    pub(super) camera: Option<bool>,
    pub(super) screen: Option<bool>,
    pub(super) legacy_share: bool,
}
