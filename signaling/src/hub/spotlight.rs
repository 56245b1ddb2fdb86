//! `spotlight`: a teacher puts one member of the class in the spotlight for everyone (every
//! other page shows that person's screen, else camera, as its main picture), or ends it. The
//! spotlight is part of the class (`class.spotlight`), so late joiners and resuming members see it
//! in their `welcome`.

use super::{Effect, Hub, Refusal, Sender};
use crate::protocol::{PeerId, ServerMessage};

impl Hub {
    /// `spotlight`: teachers only; `peer` must be a member of the sender's class (`unknown_peer`
    /// otherwise). Everyone connected gets `class_updated`.
    pub(super) fn spotlight(
        &mut self,
        from: &Sender,
        peer: Option<PeerId>,
    ) -> Result<Vec<Effect>, Refusal> {
        from.teacher_only("put someone in the spotlight")?;
        if let Some(p) = &peer {
            self.member_conn(&from.loc, p)?;
        }
        let class = self.class_mut(&from.loc.class);
        class.info.spotlight = peer;
        Ok(vec![Effect::Deliver {
            to: class.connected_conns(),
            msg: ServerMessage::ClassUpdated {
                class: class.info.clone(),
            },
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{hub, join, to};
    use super::super::*;

    fn spotlight_of(msgs: &[ServerMessage]) -> Option<Option<String>> {
        msgs.iter().find_map(|m| match m {
            ServerMessage::ClassUpdated { class } => Some(class.spotlight.clone()),
            _ => None,
        })
    }

    #[test]
    fn a_teacher_spotlights_a_student_for_everyone_and_ends_it() {
        let mut hub = hub();
        join(&mut hub, 1, "c1", Role::Teacher, "T");
        let (ana, _) = join(&mut hub, 2, "c1", Role::Student, "Ana");
        join(&mut hub, 3, "c1", Role::Student, "Ben");
        let fx = hub
            .handle(
                1,
                ClientMessage::Spotlight {
                    peer: Some(ana.clone()),
                },
                0,
            )
            .unwrap();
        for conn in [1, 2, 3] {
            assert_eq!(spotlight_of(&to(conn, &fx)), Some(Some(ana.clone())));
        }
        // A late joiner learns it from its welcome.
        let (_, fx) = join(&mut hub, 4, "c1", Role::Student, "Cleo");
        assert!(to(4, &fx).iter().any(|m| matches!(m,
            ServerMessage::Welcome { class, .. } if class.spotlight.as_deref() == Some(ana.as_str()))));
        let fx = hub
            .handle(1, ClientMessage::Spotlight { peer: None }, 0)
            .unwrap();
        for conn in [1, 2, 3, 4] {
            assert_eq!(spotlight_of(&to(conn, &fx)), Some(None));
        }
    }

    #[test]
    fn a_student_cannot_spotlight_and_a_stranger_cannot_be_spotlit() {
        let mut hub = hub();
        join(&mut hub, 1, "c1", Role::Teacher, "T");
        let (ana, _) = join(&mut hub, 2, "c1", Role::Student, "Ana");
        let (other, _) = join(&mut hub, 3, "c2", Role::Student, "Zed");
        let err = hub
            .handle(
                2,
                ClientMessage::Spotlight {
                    peer: Some(ana.clone()),
                },
                0,
            )
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Forbidden);
        let err = hub
            .handle(1, ClientMessage::Spotlight { peer: Some(other) }, 0)
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownPeer);
        let err = hub
            .handle(
                1,
                ClientMessage::Spotlight {
                    peer: Some("nobody".into()),
                },
                0,
            )
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownPeer);
    }
}
