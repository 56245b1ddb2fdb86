//! The class chat: checks each line, rate-limits its sender, keeps a bounded history; a line may
//! go to the teachers only. And reactions: a fixed set of emoji, rate-limited, to everyone.

use crate::protocol::{
    ChatAudience, ChatEntry, ErrorCode, PeerInfo, Role, ServerMessage, REACTIONS,
};

use super::class::Class;
use super::{Effect, Hub, Refusal, Sender};

/// Reactions one peer may send per second, and in a burst.
const REACTIONS_PER_SEC: f64 = 1.0;
const REACTION_BURST: f64 = 3.0;

impl Class {
    /// The chat history as `viewer` may read it: a line to the teachers only reaches teachers
    /// and its sender.
    pub(super) fn chat_for(&self, viewer: &PeerInfo) -> Vec<ChatEntry> {
        self.chat
            .iter()
            .filter(|e| {
                e.to != Some(ChatAudience::Teachers)
                    || viewer.role == Role::Teacher
                    || e.from == viewer.id
            })
            .cloned()
            .collect()
    }
}

impl Hub {
    /// A chat line: to everyone in the class (or to its teachers and the sender only), and into
    /// its history.
    pub(super) fn chat(
        &mut self,
        from: &Sender,
        text: String,
        to: Option<ChatAudience>,
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
        let member = self.member_mut(&from.loc);
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
        let name = member.info.name.clone();
        let class = self.class_mut(&from.loc.class);
        let entry = ChatEntry {
            id: class.next_chat_id,
            from: from.id.clone(),
            name,
            text: text.to_string(),
            time: now_ms,
            // The default audience is not written out.
            to: to.filter(|a| *a != ChatAudience::Everyone),
        };
        class.next_chat_id += 1;
        class.chat.push_back(entry.clone());
        while class.chat.len() > history {
            class.chat.pop_front();
        }
        let to = if entry.to == Some(ChatAudience::Teachers) {
            let mut to = class.teacher_conns();
            if !to.contains(&from.conn) {
                to.push(from.conn);
            }
            to
        } else {
            class.connected_conns()
        };
        Ok(vec![Effect::Deliver {
            to,
            msg: ServerMessage::Chat { entry },
        }])
    }

    /// `react`: one of the fixed reactions, to everyone in the class (not kept).
    pub(super) fn react(
        &mut self,
        from: &Sender,
        emoji: &str,
        now_ms: u64,
    ) -> Result<Vec<Effect>, Refusal> {
        if !REACTIONS.contains(&emoji) {
            return Err(Refusal::new(
                ErrorCode::BadMessage,
                format!("a reaction is one of {}", REACTIONS.join(" ")),
            ));
        }
        let member = self.member_mut(&from.loc);
        if !member
            .traffic
            .react
            .take(1.0, REACTIONS_PER_SEC, REACTION_BURST, now_ms)
        {
            return Err(Refusal::new(
                ErrorCode::RateLimited,
                "reactions are limited to one a second (bursts of 3)",
            ));
        }
        Ok(vec![Effect::Deliver {
            to: self.class(&from.loc.class).connected_conns(),
            msg: ServerMessage::Reaction {
                peer: from.id.clone(),
                emoji: emoji.to_string(),
            },
        }])
    }
}
