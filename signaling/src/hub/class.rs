//! The state the hub keeps per class and per member: roster, chat, removals, refused joins, the
//! waiting room and the lesson's attendance.

use std::collections::{BTreeMap, VecDeque};

use crate::protocol::{
    Attendance, ChatEntry, ClassId, ClassInfo, ErrorCode, LessonSummary, LinkStats, PeerId,
    PeerInfo, RemovedPeer, Role, ServerMessage, WaitReason, WaitingPeer,
};
use crate::ratelimit::Bucket;

use super::{ConnId, Effect, JoinRequest};

#[derive(Debug)]
pub(super) struct Member {
    pub(super) info: PeerInfo,
    pub(super) conn: Option<ConnId>,
    pub(super) resume_token: String,
    pub(super) disconnected_at: Option<u64>,
    pub(super) browser: Option<String>,
    pub(super) personal_token: Option<String>,
    /// The class-list student id, when they joined with their personal link.
    pub(super) student: Option<String>,
    pub(super) traffic: Traffic,
    /// Restored from a snapshot after a restart and not resumed since: its media sessions with
    /// the SFU died with the old process.
    pub(super) restored: bool,
}

/// What a peer has sent lately, for its rate limits.
#[derive(Debug, Default)]
pub(super) struct Traffic {
    pub(super) chat: Bucket,
    /// Reactions (`react`).
    pub(super) react: Bucket,
    /// Bytes forwarded to specific peers (signaling messages and stats).
    pub(super) signal: Bucket,
    pub(super) stats_sent_ms: Option<u64>,
    /// The newest report that came too soon after the last one forwarded.
    pub(super) stats_waiting: Option<Vec<LinkStats>>,
}

/// Someone a teacher removed: refused by any of these until a teacher readmits them.
#[derive(Debug)]
pub(super) struct Ban {
    pub(super) peer: RemovedPeer,
    pub(super) resume_token: String,
    pub(super) browser: Option<String>,
    pub(super) personal_token: Option<String>,
}

impl Ban {
    pub(super) fn matches(&self, req: &JoinRequest) -> bool {
        let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
        req.resume.as_ref() == Some(&self.resume_token)
            || same(&self.browser, &req.browser)
            || same(&self.personal_token, &req.personal_token)
    }
}

/// Refused joins not yet reported to the class's teachers.
#[derive(Debug, Default)]
pub(super) struct RefusalNotices {
    pub(super) count: u64,
    pub(super) latest: Option<(Option<String>, ErrorCode)>,
    pub(super) last_sent_ms: Option<u64>,
}

/// Someone waiting to be let in: a student's join that waits for a teacher (or for `start`).
#[derive(Debug)]
pub(super) struct Waiter {
    pub(super) conn: ConnId,
    pub(super) name: String,
    pub(super) since: u64,
    pub(super) reason: WaitReason,
    /// When a teacher let them in: their connection is to send `join` again.
    pub(super) admitted_at: Option<u64>,
}

impl Waiter {
    pub(super) fn id(key: u64) -> String {
        format!("w{key}")
    }
}

/// Most people one lesson's attendance lists; later arrivals are not recorded.
pub(super) const MAX_ATTENDANCE: usize = 300;

/// The lesson in progress: when it started and who took part.
#[derive(Debug, Default)]
pub(super) struct Lesson {
    pub(super) started: Option<u64>,
    pub(super) attendance: Vec<Present>,
}

/// One attendee of the lesson in progress.
#[derive(Debug, Clone)]
pub(super) struct Present {
    pub(super) entry: Attendance,
    /// Connected since then (None while away).
    pub(super) since: Option<u64>,
}

impl Lesson {
    /// Someone joined (or resumed) at `now`; `student` is their class-list id, if any. Coming
    /// back after being away counts as a reconnect.
    pub(super) fn arrived(&mut self, info: &PeerInfo, student: Option<&str>, now: u64) {
        self.started.get_or_insert(now);
        if let Some(p) = self.attendance.iter_mut().find(|p| p.entry.id == info.id) {
            if p.since.is_none() {
                p.entry.reconnects += 1;
                p.since = Some(now);
            }
            return;
        }
        if self.attendance.len() >= MAX_ATTENDANCE {
            return;
        }
        self.attendance.push(Present {
            entry: Attendance {
                id: info.id.clone(),
                name: info.name.clone(),
                role: info.role,
                student: student.map(str::to_string),
                joined: now,
                left: now,
                present_secs: 0,
                reconnects: 0,
            },
            since: Some(now),
        });
    }

    /// Someone's connection went away (or they left) at `now`.
    pub(super) fn departed(&mut self, peer: &PeerId, now: u64) {
        if let Some(p) = self.attendance.iter_mut().find(|p| &p.entry.id == peer) {
            Self::close(p, now);
        }
    }

    fn close(p: &mut Present, now: u64) {
        if let Some(since) = p.since.take() {
            p.entry.present_secs += now.saturating_sub(since) / 1000;
            p.entry.left = now;
        }
    }

    /// Ends the lesson at `now`: its summary, and a fresh lesson in its place.
    pub(super) fn finish(&mut self, now: u64) -> LessonSummary {
        let mut lesson = std::mem::take(self);
        for p in &mut lesson.attendance {
            Self::close(p, now);
        }
        LessonSummary {
            started: lesson.started.unwrap_or(now),
            ended: now,
            attendance: lesson.attendance.into_iter().map(|p| p.entry).collect(),
        }
    }
}

#[derive(Debug)]
pub(super) struct Class {
    pub(super) info: ClassInfo,
    /// Ordered so rosters come out in join order (peer ids are sequential).
    pub(super) members: BTreeMap<u64, Member>,
    pub(super) chat: VecDeque<ChatEntry>,
    pub(super) next_chat_id: u64,
    /// Removed this session, oldest first.
    pub(super) removed: Vec<Ban>,
    pub(super) refusals: RefusalNotices,
    /// Waiting to be let in, by the hub's waiter number (oldest first).
    pub(super) waiting: BTreeMap<u64, Waiter>,
    pub(super) lesson: Lesson,
    /// The summary of the lesson that ended last, for teachers while the class is ended.
    pub(super) last_summary: Option<LessonSummary>,
    /// Students may join with the shared link or class code, not only with a personal link.
    /// A class setting kept in the store, not part of the live state.
    pub(super) shared_links: bool,
}

impl Class {
    pub(super) fn teacher_conns(&self) -> Vec<ConnId> {
        self.members
            .values()
            .filter(|m| m.info.role == Role::Teacher)
            .filter_map(|m| m.conn)
            .collect()
    }

    pub(super) fn count(&self, role: Role) -> usize {
        self.members
            .values()
            .filter(|m| m.info.role == role)
            .count()
    }

    /// The removed list for these connections (teachers), if anyone was removed.
    pub(super) fn removed_list(&self, to: Vec<ConnId>) -> Option<Effect> {
        if self.removed.is_empty() || to.is_empty() {
            return None;
        }
        let removed = self.removed.iter().map(|b| b.peer.clone()).collect();
        Some(Effect::Deliver {
            to,
            msg: ServerMessage::RemovedList { removed },
        })
    }

    /// Who waits for a teacher (not those waiting for the lesson to start, nor those already let
    /// in), as teachers see them.
    pub(super) fn waiting_peers(&self) -> Vec<WaitingPeer> {
        self.waiting
            .iter()
            .filter(|(_, w)| w.admitted_at.is_none() && w.reason != WaitReason::Ended)
            .map(|(k, w)| WaitingPeer {
                id: Waiter::id(*k),
                name: w.name.clone(),
                since: w.since,
                reason: w.reason,
            })
            .collect()
    }

    /// The waiting list for these connections (teachers); `always` sends it even when empty.
    pub(super) fn waiting_list(&self, to: Vec<ConnId>, always: bool) -> Option<Effect> {
        let waiting = self.waiting_peers();
        if to.is_empty() || (waiting.is_empty() && !always) {
            return None;
        }
        Some(Effect::Deliver {
            to,
            msg: ServerMessage::WaitingList { waiting },
        })
    }

    pub(super) fn connected_conns(&self) -> Vec<ConnId> {
        self.members.values().filter_map(|m| m.conn).collect()
    }

    pub(super) fn connected_conns_except(&self, except: u64) -> Vec<ConnId> {
        self.members
            .iter()
            .filter(|(k, _)| **k != except)
            .filter_map(|(_, m)| m.conn)
            .collect()
    }
}

/// Where a peer lives.
#[derive(Debug, Clone)]
pub(super) struct PeerLocation {
    pub(super) class: ClassId,
    pub(super) key: u64,
}
