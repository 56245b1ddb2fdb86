//! The live state of a class as a plain serializable value, so a restarted server gives every
//! client its identity back: members with their resume identities, rights, hands and names; the
//! lock, the waiting-room setting and the spotlight; whether the lesson ended; the chat history;
//! who was removed; the lesson's attendance.
//!
//! The hub stays sans-IO: it marks the classes whose state changed ([`Hub::take_dirty`]) and
//! makes their snapshots ([`Hub::snapshot`]); the I/O layer stores them (the server writes them to
//! its SQLite store once a second when something changed, and on shutdown) and hands them back
//! to [`Hub::restore`] at start. Resume tokens are kept as the hub keeps them (random, unguessable
//! values, never derived from anything else); the database is readable by its owner only.
//! Waiting connections are not kept: they reconnect and wait again.

use serde::{Deserialize, Serialize};

use crate::protocol::{
    Attendance, ChatEntry, ClassId, LessonSummary, MediaMode, MediaState, PeerId, PeerInfo,
    RemovedPeer,
};

use super::class::{Ban, Lesson, Member, PeerLocation, Present, Traffic};
use super::{starting_media, Hub};

/// The version of [`ClassSnapshot`]'s layout; a snapshot of another version is not restored.
pub const SNAPSHOT_VERSION: u32 = 1;

/// What a restarted server needs to know of one live class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassSnapshot {
    pub version: u32,
    /// When the snapshot was made, Unix milliseconds.
    pub taken_at: u64,
    pub locked: bool,
    pub waiting_room: bool,
    pub ended: bool,
    pub media: MediaMode,
    /// Who a teacher put in the spotlight, if anyone.
    #[serde(default)]
    pub spotlight: Option<PeerId>,
    /// In join order.
    pub members: Vec<MemberSnapshot>,
    pub chat: Vec<ChatEntry>,
    pub next_chat_id: u64,
    pub removed: Vec<BanSnapshot>,
    pub lesson_started: Option<u64>,
    /// The attendance so far (those connected at `taken_at` count as present until then).
    pub attendance: Vec<Attendance>,
    pub last_summary: Option<LessonSummary>,
}

/// One member and the secrets that let its client resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberSnapshot {
    /// The hub's number for the member (the end of its peer id; orders the roster).
    pub key: u64,
    pub info: PeerInfo,
    pub resume_token: String,
    pub browser: Option<String>,
    pub personal_token: Option<String>,
    /// The class-list student id of a personal link (absent in snapshots of older versions).
    #[serde(default)]
    pub student: Option<String>,
}

/// Someone removed this lesson, and what refuses them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BanSnapshot {
    pub peer: RemovedPeer,
    pub resume_token: String,
    pub browser: Option<String>,
    pub personal_token: Option<String>,
}

impl Hub {
    /// The classes whose live state changed since the last call (each once), to be saved again;
    /// a class that no longer exists comes back too, for its saved state to be deleted.
    pub fn take_dirty(&mut self) -> Vec<ClassId> {
        let mut ids: Vec<ClassId> = self.dirty.drain().collect();
        ids.sort();
        ids
    }

    /// Marks a class as changed (e.g. when saving it failed, to try again).
    pub fn mark_dirty(&mut self, id: &str) {
        self.dirty.insert(id.to_string());
    }

    /// Marks every class as changed (e.g. to save them all at shutdown).
    pub fn mark_all_dirty(&mut self) {
        self.dirty.extend(self.classes.keys().cloned());
    }

    /// The live state of a class, or None when there is no such class.
    pub fn snapshot(&self, id: &str) -> Option<ClassSnapshot> {
        let class = self.classes.get(id)?;
        let now = self.now_ms;
        Some(ClassSnapshot {
            version: SNAPSHOT_VERSION,
            taken_at: now,
            locked: class.info.locked,
            waiting_room: class.info.waiting_room,
            ended: class.info.ended,
            media: class.info.media,
            spotlight: class.info.spotlight.clone(),
            members: class
                .members
                .iter()
                .map(|(key, m)| MemberSnapshot {
                    key: *key,
                    info: m.info.clone(),
                    resume_token: m.resume_token.clone(),
                    browser: m.browser.clone(),
                    personal_token: m.personal_token.clone(),
                    student: m.student.clone(),
                })
                .collect(),
            chat: class.chat.iter().cloned().collect(),
            next_chat_id: class.next_chat_id,
            removed: class
                .removed
                .iter()
                .map(|b| BanSnapshot {
                    peer: b.peer.clone(),
                    resume_token: b.resume_token.clone(),
                    browser: b.browser.clone(),
                    personal_token: b.personal_token.clone(),
                })
                .collect(),
            lesson_started: class.lesson.started,
            attendance: class
                .lesson
                .attendance
                .iter()
                .map(|p| {
                    let mut entry = p.entry.clone();
                    if let Some(since) = p.since {
                        entry.present_secs += now.saturating_sub(since) / 1000;
                        entry.left = now;
                    }
                    entry
                })
                .collect(),
            last_summary: class.last_summary.clone(),
        })
    }

    /// Puts a class's saved live state back (the class must have been added). Its members come
    /// back disconnected, each with the normal resume grace from `now_ms`, so their clients
    /// resume with their own ids, rights and hands. Returns false (and changes nothing) for an
    /// unknown class or a snapshot of another layout version.
    pub fn restore(&mut self, id: &str, snap: ClassSnapshot, now_ms: u64) -> bool {
        if snap.version != SNAPSHOT_VERSION || !self.classes.contains_key(id) {
            return false;
        }
        self.now_ms = self.now_ms.max(now_ms);
        let sfu = self.limits.sfu;
        let class = self.classes.get_mut(id).expect("checked above");
        class.info.locked = snap.locked;
        class.info.waiting_room = snap.waiting_room;
        class.info.ended = snap.ended;
        class.info.media = match snap.media {
            MediaMode::Sfu if sfu => MediaMode::Sfu,
            _ => starting_media(class.info.topology, sfu),
        };
        class.info.spotlight = snap.spotlight;
        class.chat = snap.chat.into();
        class.next_chat_id = snap.next_chat_id;
        class.removed = snap
            .removed
            .into_iter()
            .map(|b| Ban {
                peer: b.peer,
                resume_token: b.resume_token,
                browser: b.browser,
                personal_token: b.personal_token,
            })
            .collect();
        class.lesson = Lesson {
            started: snap.lesson_started,
            attendance: snap
                .attendance
                .into_iter()
                .map(|entry| Present { entry, since: None })
                .collect(),
        };
        class.last_summary = snap.last_summary;
        for m in snap.members {
            let mut info = m.info;
            info.connected = false;
            // What a client publishes is told again by the client when it resumes.
            info.media = MediaState::default();
            self.next_peer = self.next_peer.max(m.key);
            self.peers.insert(
                info.id.clone(),
                PeerLocation {
                    class: id.to_string(),
                    key: m.key,
                },
            );
            self.resume_tokens
                .insert(m.resume_token.clone(), info.id.clone());
            class.members.insert(
                m.key,
                Member {
                    info,
                    conn: None,
                    resume_token: m.resume_token,
                    disconnected_at: Some(now_ms),
                    browser: m.browser,
                    personal_token: m.personal_token,
                    student: m.student,
                    traffic: Traffic::default(),
                    restored: true,
                },
            );
        }
        true
    }
}
