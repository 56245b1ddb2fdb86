//! The class chat: checks each line, rate-limits its sender, keeps a bounded history.

use crate::protocol::{ChatEntry, ErrorCode, ServerMessage};

use super::{Effect, Hub, Refusal, Sender};

impl Hub {
    /// A chat line: to everyone in the class, and into its history.
    pub(super) fn chat(
        &mut self,
        from: &Sender,
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
}
