//! The state the hub keeps per class and per member: roster, chat, removals, refused joins.

use std::collections::{BTreeMap, VecDeque};

use crate::protocol::{
    ChatEntry, ClassId, ClassInfo, ErrorCode, LinkStats, PeerInfo, RemovedPeer, Role, ServerMessage,
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
    pub(super) traffic: Traffic,
}

/// What a peer has sent lately, for its rate limits.
#[derive(Debug, Default)]
pub(super) struct Traffic {
    pub(super) chat: Bucket,
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
