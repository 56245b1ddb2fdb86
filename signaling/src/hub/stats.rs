//! Connection-quality reports: bounded, charged to the sender's signaling budget, and relayed
//! to the class's other teachers at most once per interval (the newest report wins).

use crate::protocol::{ErrorCode, LinkStats, PeerId, Role, ServerMessage};

use super::class::PeerLocation;
use super::{ConnId, Effect, Hub, Refusal, Sender};

impl Hub {
    /// A `stats` report: checked, charged, and sent on to the teachers now or after the interval.
    pub(super) fn stats(
        &mut self,
        from: &Sender,
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
        self.charge_signal(&from.loc, size, now_ms)?;
        let interval = self.limits.stats_interval_ms;
        let t = &mut self.member_mut(&from.loc).traffic;
        if t.stats_sent_ms.is_some_and(|sent| now_ms < sent + interval) {
            // Too soon: this report waits for the interval, replacing an older one.
            t.stats_waiting = Some(links);
            self.stats_waiting.insert(from.id.clone());
            return Ok(Vec::new());
        }
        t.stats_sent_ms = Some(now_ms);
        t.stats_waiting = None;
        Ok(self.stats_to_teachers(&from.loc, &from.id, links))
    }

    /// A report to every other teacher of the class.
    pub(super) fn stats_to_teachers(
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

    /// Forwards the reports that waited out their sender's stats interval.
    pub(super) fn forward_waiting_stats(&mut self, now_ms: u64) -> Vec<Effect> {
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
}

/// Longest peer id a `stats` link may name (server ids are far shorter).
const MAX_PEER_ID_BYTES: usize = 64;
