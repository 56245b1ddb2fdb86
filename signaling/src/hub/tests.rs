//! Unit and property tests of the class state machine.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;

use super::*;
use crate::protocol::{
    close_code, IceServer, LinkStats, MediaMode, MuteKind, WaitReason, SFU_PEER_ID,
};

pub(super) fn hub() -> Hub {
    let mut hub = Hub::new(HubLimits {
        max_class_size: 5,
        chat_history: 3,
        ..HubLimits::default()
    });
    hub.add_class("c1".into(), "Maths".into(), Topology::Auto);
    hub.add_class("c2".into(), "Biology".into(), Topology::Auto);
    hub
}

pub(super) fn req(class: &str, role: Role, name: &str) -> JoinRequest {
    JoinRequest {
        class: class.into(),
        role,
        fixed_name: None,
        name: Some(name.into()),
        resume: None,
        new_resume_token: format!("rt-{name}-{class}"),
        browser: None,
        personal_token: None,
        now_ms: 0,
    }
}

pub(super) fn no_ice(_: &PeerId) -> Vec<IceServer> {
    Vec::new()
}

pub(super) fn join(
    hub: &mut Hub,
    conn: ConnId,
    class: &str,
    role: Role,
    name: &str,
) -> (PeerId, Vec<Effect>) {
    let j = hub
        .join(conn, req(class, role, name), no_ice)
        .expect("join succeeds");
    (j.peer, j.effects)
}

/// Messages delivered to `conn`, in order.
pub(super) fn to(conn: ConnId, effects: &[Effect]) -> Vec<ServerMessage> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Deliver { to, msg } if to.contains(&conn) => Some(msg.clone()),
            _ => None,
        })
        .collect()
}

fn closed(conn: ConnId, effects: &[Effect]) -> Option<u16> {
    effects.iter().find_map(|e| match e {
        Effect::Close { conn: c, code, .. } if *c == conn => Some(*code),
        _ => None,
    })
}

#[test]
fn welcome_lists_others_and_others_hear_of_the_joiner() {
    let mut hub = hub();
    let (t, _) = join(&mut hub, 1, "c1", Role::Teacher, "Ms T");
    let (s, fx) = join(&mut hub, 2, "c1", Role::Student, "Ana");
    match &to(2, &fx)[0] {
        ServerMessage::Welcome {
            id,
            role,
            peers,
            permissions,
            ..
        } => {
            assert_eq!(id, &s);
            assert_eq!(*role, Role::Student);
            assert_eq!(peers.len(), 1);
            assert_eq!(peers[0].id, t);
            assert_eq!(*permissions, Permissions::default());
        }
        other => panic!("expected welcome, got {other:?}"),
    }
    assert!(matches!(&to(1, &fx)[0], ServerMessage::PeerJoined { peer } if peer.id == s));
}

#[test]
fn offer_answer_candidate_reach_only_the_addressee() {
    let mut hub = hub();
    let (t, _) = join(&mut hub, 1, "c1", Role::Teacher, "T");
    let (s1, _) = join(&mut hub, 2, "c1", Role::Student, "A");
    join(&mut hub, 3, "c1", Role::Student, "B");
    let fx = hub
        .handle(
            1,
            ClientMessage::Offer {
                to: s1.clone(),
                sdp: "v=0".into(),
            },
            0,
        )
        .unwrap();
    assert_eq!(
        fx,
        vec![Effect::Deliver {
            to: vec![2],
            msg: ServerMessage::Offer {
                from: t.clone(),
                sdp: "v=0".into()
            }
        }]
    );
    let fx = hub
        .handle(
            2,
            ClientMessage::Answer {
                to: t.clone(),
                sdp: "v=0".into(),
            },
            0,
        )
        .unwrap();
    assert_eq!(
        fx,
        vec![Effect::Deliver {
            to: vec![1],
            msg: ServerMessage::Answer {
                from: s1.clone(),
                sdp: "v=0".into()
            }
        }]
    );
    let cand = serde_json::json!({"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host"});
    let fx = hub
        .handle(
            2,
            ClientMessage::Candidate {
                to: t,
                candidate: cand.clone(),
            },
            0,
        )
        .unwrap();
    assert_eq!(
        fx,
        vec![Effect::Deliver {
            to: vec![1],
            msg: ServerMessage::Candidate {
                from: s1,
                candidate: cand
            }
        }]
    );
}

#[test]
fn a_peer_of_another_class_is_unknown() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "T1");
    let (other, _) = join(&mut hub, 2, "c2", Role::Student, "X");
    let err = hub
        .handle(
            1,
            ClientMessage::Offer {
                to: other.clone(),
                sdp: "v=0".into(),
            },
            0,
        )
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownPeer);
    let err = hub
        .handle(
            1,
            ClientMessage::Remove {
                peer: other,
                reason: None,
            },
            0,
        )
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownPeer);
    assert_eq!(hub.roster("c2").unwrap().len(), 1);
}

#[test]
fn students_cannot_do_teacher_actions() {
    let mut hub = hub();
    let (t, _) = join(&mut hub, 1, "c1", Role::Teacher, "T");
    let (s, _) = join(&mut hub, 2, "c1", Role::Student, "A");
    let actions = [
        ClientMessage::Mute {
            peer: t.clone(),
            kind: MuteKind::Audio,
        },
        ClientMessage::Remove {
            peer: t.clone(),
            reason: None,
        },
        ClientMessage::Lock { locked: true },
        ClientMessage::End {},
        ClientMessage::Grant {
            peer: s,
            speak: Some(true),
            camera: None,
            screen: None,
            share: None,
        },
    ];
    for a in actions {
        let err = hub.handle(2, a.clone(), 0).unwrap_err();
        assert_eq!(err.code, ErrorCode::Forbidden, "{a:?}");
    }
    assert_eq!(hub.roster("c1").unwrap().len(), 2);
    assert!(!hub.class_info("c1").unwrap().locked);
}

#[test]
fn chat_reaches_everyone_and_late_joiners_get_bounded_history() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "T");
    join(&mut hub, 2, "c1", Role::Student, "A");
    for i in 0..5 {
        let fx = hub
            .handle(
                1,
                ClientMessage::Chat {
                    text: format!("line {i}"),
                    to: None,
                },
                1000 + i,
            )
            .unwrap();
        assert_eq!(to(1, &fx).len(), 1);
        assert_eq!(to(2, &fx).len(), 1);
    }
    let (_, fx) = join(&mut hub, 3, "c1", Role::Student, "Late");
    let ServerMessage::Welcome { chat, .. } = &to(3, &fx)[0] else {
        panic!()
    };
    let texts: Vec<_> = chat.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["line 2", "line 3", "line 4"]);
    assert_eq!(chat[2].id, 5);
    assert_eq!(chat[2].time, 1004);
    assert_eq!(
        hub.handle(
            1,
            ClientMessage::Chat {
                text: "  ".into(),
                to: None,
            },
            0
        )
        .unwrap_err()
        .code,
        ErrorCode::BadMessage
    );
    let long = "x".repeat(2001);
    assert_eq!(
        hub.handle(
            1,
            ClientMessage::Chat {
                text: long,
                to: None,
            },
            0
        )
        .unwrap_err()
        .code,
        ErrorCode::TooLong
    );
}

#[test]
fn raised_hand_reaches_the_teacher_and_survives_resume() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "T");
    let (s, _) = join(&mut hub, 2, "c1", Role::Student, "A");
    let fx = hub
        .handle(2, ClientMessage::Hand { raised: true }, 0)
        .unwrap();
    assert_eq!(
        to(1, &fx),
        vec![ServerMessage::Hand {
            peer: s.clone(),
            raised: true,
            at: Some(0),
            by: None,
        }]
    );

    let fx = hub.disconnected(2, 10_000);
    assert!(matches!(&to(1, &fx)[0], ServerMessage::PeerUpdated { peer } if !peer.connected));
    let mut r = req("c1", Role::Student, "ignored");
    r.resume = Some("rt-A-c1".into());
    r.new_resume_token = "rt-2".into();
    let j = hub.join(9, r, no_ice).unwrap();
    assert_eq!(j.peer, s);
    match &to(9, &j.effects)[0] {
        ServerMessage::Welcome {
            id,
            resumed,
            hand_raised,
            name,
            resume_token,
            ..
        } => {
            assert_eq!(id, &s);
            assert!(resumed);
            assert!(hand_raised);
            assert_eq!(name, "A");
            assert_eq!(resume_token, "rt-2");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&to(1, &j.effects)[0], ServerMessage::PeerUpdated { peer } if peer.connected));
    // The old resume token is spent.
    let mut again = req("c1", Role::Student, "B");
    again.resume = Some("rt-A-c1".into());
    again.new_resume_token = "rt-3".into();
    let j = hub.join(10, again, no_ice).unwrap();
    assert_ne!(j.peer, s);
}

#[test]
fn resume_on_a_new_connection_closes_the_old_one() {
    let mut hub = hub();
    let (s, _) = join(&mut hub, 1, "c1", Role::Student, "A");
    let mut r = req("c1", Role::Student, "A");
    r.resume = Some("rt-A-c1".into());
    let j = hub.join(2, r, no_ice).unwrap();
    assert_eq!(j.peer, s);
    assert_eq!(closed(1, &j.effects), Some(close_code::REPLACED));
    assert_eq!(hub.peer_of(2), Some(&s));
    assert_eq!(hub.peer_of(1), None);
    // The stale connection's drop does not disconnect the resumed peer.
    assert!(hub.disconnected(1, 0).is_empty());
    assert!(hub.roster("c1").unwrap()[0].connected);
}

#[test]
fn a_join_says_whether_it_resumed_as_its_welcome_does() {
    let mut hub = hub();
    let welcome_resumed = |j: &Joined, conn| match &to(conn, &j.effects)[0] {
        ServerMessage::Welcome { resumed, .. } => *resumed,
        other => panic!("expected welcome, got {other:?}"),
    };
    let first = hub.join(1, req("c1", Role::Student, "A"), no_ice).unwrap();
    assert!(!first.resumed);
    assert!(!welcome_resumed(&first, 1));
    let mut r = req("c1", Role::Student, "A");
    r.resume = Some("rt-A-c1".into());
    let again = hub.join(2, r, no_ice).unwrap();
    assert!(again.resumed);
    assert!(welcome_resumed(&again, 2));
    // An unknown resume token is a fresh join.
    let mut r = req("c1", Role::Student, "B");
    r.resume = Some("no-such-token".into());
    let fresh = hub.join(3, r, no_ice).unwrap();
    assert!(!fresh.resumed);
    assert!(!welcome_resumed(&fresh, 3));
}

#[test]
fn grace_expiry_drops_the_peer() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "T");
    let (s, _) = join(&mut hub, 2, "c1", Role::Student, "A");
    hub.disconnected(2, 1_000);
    assert!(hub.tick(1_000 + 19_999).is_empty());
    let fx = hub.tick(1_000 + 20_000);
    assert_eq!(
        to(1, &fx),
        vec![ServerMessage::PeerLeft {
            id: s,
            reason: "disconnected".into()
        }]
    );
    assert_eq!(hub.roster("c1").unwrap().len(), 1);
    let mut r = req("c1", Role::Student, "A2");
    r.resume = Some("rt-A-c1".into());
    let j = hub.join(3, r, no_ice).unwrap();
    assert!(matches!(
        &to(3, &j.effects)[0],
        ServerMessage::Welcome { resumed: false, .. }
    ));
}

#[test]
fn lock_full_and_names() {
    let mut hub = hub();
    let (_, _) = join(&mut hub, 1, "c1", Role::Teacher, "T");
    let fx = hub
        .handle(1, ClientMessage::Lock { locked: true }, 0)
        .unwrap();
    assert!(matches!(&to(1, &fx)[0], ServerMessage::ClassUpdated { class } if class.locked));
    // A locked class lets no newcomer straight in: she waits, and the teacher sees her.
    let j = hub.join(2, req("c1", Role::Student, "A"), no_ice).unwrap();
    assert!(j.waiting && j.peer.is_empty());
    assert!(matches!(
        &to(2, &j.effects)[0],
        ServerMessage::Waiting { reason: WaitReason::Locked, class_name } if class_name == "Maths"
    ));
    assert_eq!(hub.roster("c1").unwrap().len(), 1);
    hub.disconnected(2, 0);
    join(&mut hub, 3, "c1", Role::Teacher, "T2");
    hub.handle(1, ClientMessage::Lock { locked: false }, 0)
        .unwrap();
    // max_class_size counts students; the two teachers sit in seats of their own.
    for i in 0..5 {
        join(&mut hub, 10 + i, "c1", Role::Student, &format!("S{i}"));
    }
    let err = hub
        .join(20, req("c1", Role::Student, "Z"), no_ice)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ClassFull);
    let err = hub
        .join(21, req("c2", Role::Student, "   "), no_ice)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidName);
    let err = hub
        .join(22, req("c2", Role::Student, &"n".repeat(65)), no_ice)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidName);
    let err = hub
        .join(23, req("nope", Role::Student, "A"), no_ice)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ClassNotFound);
    let mut fixed = req("c2", Role::Student, "Chosen");
    fixed.fixed_name = Some("From token".into());
    let j = hub.join(24, fixed, no_ice).unwrap();
    assert!(
        matches!(&to(24, &j.effects)[0], ServerMessage::Welcome { name, .. } if name == "From token")
    );
}

#[test]
fn remove_tells_the_student_why_and_the_class_it_left() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "T");
    let (s, _) = join(&mut hub, 2, "c1", Role::Student, "A");
    join(&mut hub, 3, "c1", Role::Student, "B");
    let fx = hub
        .handle(
            1,
            ClientMessage::Remove {
                peer: s.clone(),
                reason: Some("disruptive".into()),
            },
            0,
        )
        .unwrap();
    assert_eq!(
        to(2, &fx),
        vec![ServerMessage::Removed {
            reason: "disruptive".into()
        }]
    );
    assert_eq!(closed(2, &fx), Some(close_code::REMOVED));
    assert_eq!(
        to(3, &fx),
        vec![ServerMessage::PeerLeft {
            id: s.clone(),
            reason: "removed".into()
        }]
    );
    assert_eq!(hub.peer_of(2), None);
    // A removed peer cannot come back through its resume token, not even as someone new.
    let mut r = req("c1", Role::Student, "A");
    r.resume = Some("rt-A-c1".into());
    r.new_resume_token = "fresh".into();
    assert_eq!(hub.join(4, r, no_ice).unwrap_err().code, ErrorCode::Removed);
}

#[test]
fn mute_grant_and_media_permissions() {
    let mut hub = hub();
    let (t, _) = join(&mut hub, 1, "c1", Role::Teacher, "T");
    let (s, _) = join(&mut hub, 2, "c1", Role::Student, "A");
    let media = ClientMessage::Media {
        mic: true,
        camera: false,
        screen: false,
    };
    assert_eq!(
        hub.handle(2, media.clone(), 0).unwrap_err().code,
        ErrorCode::Forbidden
    );
    let fx = hub
        .handle(
            1,
            ClientMessage::Grant {
                peer: s.clone(),
                speak: Some(true),
                camera: None,
                screen: None,
                share: None,
            },
            0,
        )
        .unwrap();
    assert!(
        matches!(&to(2, &fx)[0], ServerMessage::PeerUpdated { peer } if peer.permissions.speak && !peer.permissions.camera && !peer.permissions.screen)
    );
    hub.handle(2, media, 0).unwrap();
    let fx = hub
        .handle(
            1,
            ClientMessage::Mute {
                peer: s.clone(),
                kind: MuteKind::Audio,
            },
            0,
        )
        .unwrap();
    assert_eq!(
        to(2, &fx),
        vec![ServerMessage::Mute {
            by: t.clone(),
            kind: MuteKind::Audio,
            everyone: false,
        }]
    );
    assert!(to(1, &fx).is_empty());
    let fx = hub
        .handle(
            1,
            ClientMessage::Grant {
                peer: s,
                speak: Some(false),
                camera: None,
                screen: None,
                share: None,
            },
            0,
        )
        .unwrap();
    assert!(matches!(&to(1, &fx)[0], ServerMessage::PeerUpdated { peer } if !peer.media.mic));
    let err = hub
        .handle(
            1,
            ClientMessage::Grant {
                peer: t,
                speak: Some(false),
                camera: None,
                screen: None,
                share: None,
            },
            0,
        )
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::BadMessage);
}

#[test]
fn stats_go_to_teachers_only() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "T");
    let (s, _) = join(&mut hub, 2, "c1", Role::Student, "A");
    join(&mut hub, 3, "c1", Role::Student, "B");
    let links = vec![LinkStats {
        peer: "p1".into(),
        path: crate::protocol::MediaPath::RelayUdp,
        bitrate_kbps: Some(900.0),
        loss: Some(0.01),
        rtt_ms: Some(12.0),
        reason: None,
    }];
    let fx = hub
        .handle(
            2,
            ClientMessage::Stats {
                links: links.clone(),
            },
            0,
        )
        .unwrap();
    assert_eq!(
        fx,
        vec![Effect::Deliver {
            to: vec![1],
            msg: ServerMessage::Stats { from: s, links }
        }]
    );
}

#[test]
fn end_and_delete_close_everyone() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "T");
    join(&mut hub, 2, "c1", Role::Student, "A");
    hub.handle(
        1,
        ClientMessage::Chat {
            text: "bye".into(),
            to: None,
        },
        0,
    )
    .unwrap();
    let fx = hub.handle(1, ClientMessage::End {}, 0).unwrap();
    for c in [1, 2] {
        assert!(matches!(&to(c, &fx)[0], ServerMessage::ClassEnded { .. }));
        assert_eq!(closed(c, &fx), Some(close_code::CLASS_ENDED));
    }
    assert_eq!(hub.peer_count(), 0);
    // The class stays; until a teacher starts it again, a student opening its link waits.
    let j = hub.join(3, req("c1", Role::Student, "A"), no_ice).unwrap();
    assert!(matches!(
        &to(3, &j.effects)[0],
        ServerMessage::Waiting {
            reason: WaitReason::Ended,
            ..
        }
    ));
    let (_, fx) = join(&mut hub, 5, "c1", Role::Teacher, "T");
    assert!(matches!(&to(5, &fx)[0], ServerMessage::Welcome { class, .. } if class.ended));
    let fx = hub.handle(5, ClientMessage::Start {}, 0).unwrap();
    assert!(matches!(&to(3, &fx)[0], ServerMessage::Admitted {}));
    // The next lesson has a fresh chat.
    let (_, fx) = join(&mut hub, 3, "c1", Role::Student, "A");
    assert!(matches!(&to(3, &fx)[0], ServerMessage::Welcome { chat, .. } if chat.is_empty()));
    let fx = hub.remove_class("c1").unwrap();
    assert_eq!(closed(3, &fx), Some(close_code::CLASS_ENDED));
    assert!(hub.remove_class("c1").is_none());
    assert_eq!(
        hub.join(4, req("c1", Role::Student, "A"), no_ice)
            .unwrap_err()
            .code,
        ErrorCode::ClassNotFound
    );
}

#[test]
fn messages_before_join_and_second_join_are_refused() {
    let mut hub = hub();
    assert_eq!(
        hub.handle(1, ClientMessage::Ping {}, 0).unwrap_err().code,
        ErrorCode::NotJoined
    );
    join(&mut hub, 1, "c1", Role::Student, "A");
    let again = ClientMessage::Join {
        token: "t".into(),
        name: None,
        resume: None,
        browser: None,
    };
    assert_eq!(
        hub.handle(1, again, 0).unwrap_err().code,
        ErrorCode::AlreadyJoined
    );
    assert_eq!(
        hub.join(1, req("c1", Role::Student, "A"), no_ice)
            .unwrap_err()
            .code,
        ErrorCode::AlreadyJoined
    );
}

// ----- property tests -----

/// One step of a random session, over a small pool of connections, peers and classes.
#[derive(Debug, Clone)]
enum Op {
    Join {
        conn: u8,
        class: u8,
        teacher: bool,
    },
    Resume {
        conn: u8,
        of_conn: u8,
    },
    Drop {
        conn: u8,
    },
    Tick {
        advance_ms: u32,
    },
    Send {
        conn: u8,
        msg: MsgKind,
        target_conn: u8,
    },
}

#[derive(Debug, Clone, Copy)]
enum MsgKind {
    Offer,
    Chat,
    Hand,
    Mute,
    Remove,
    Lock,
    Unlock,
    End,
    Grant,
    Media,
    Leave,
}

fn op() -> impl Strategy<Value = Op> {
    let msg = prop_oneof![
        Just(MsgKind::Offer),
        Just(MsgKind::Chat),
        Just(MsgKind::Hand),
        Just(MsgKind::Mute),
        Just(MsgKind::Remove),
        Just(MsgKind::Lock),
        Just(MsgKind::Unlock),
        Just(MsgKind::End),
        Just(MsgKind::Grant),
        Just(MsgKind::Media),
        Just(MsgKind::Leave),
    ];
    prop_oneof![
        3 => (0..12u8, 0..3u8, any::<bool>()).prop_map(|(conn, class, teacher)| Op::Join { conn, class, teacher }),
        1 => (0..12u8, 0..12u8).prop_map(|(conn, of_conn)| Op::Resume { conn, of_conn }),
        1 => (0..12u8).prop_map(|conn| Op::Drop { conn }),
        1 => (0..30_000u32).prop_map(|advance_ms| Op::Tick { advance_ms }),
        6 => (0..12u8, msg, 0..12u8).prop_map(|(conn, msg, target_conn)| Op::Send { conn, msg, target_conn }),
    ]
}

/// What a well-behaved client would believe about its class, built only from what it received.
#[derive(Debug, Default, Clone)]
struct ClientView {
    me: Option<PeerId>,
    class: Option<ClassId>,
    roster: BTreeMap<PeerId, PeerInfo>,
}

impl ClientView {
    fn apply(&mut self, msg: &ServerMessage) {
        match msg {
            ServerMessage::Welcome {
                id, class, peers, ..
            } => {
                self.me = Some(id.clone());
                self.class = Some(class.id.clone());
                self.roster = peers.iter().map(|p| (p.id.clone(), p.clone())).collect();
            }
            ServerMessage::PeerJoined { peer } | ServerMessage::PeerUpdated { peer }
                if Some(&peer.id) != self.me.as_ref() =>
            {
                self.roster.insert(peer.id.clone(), peer.clone());
            }
            ServerMessage::PeerLeft { id, .. } => {
                self.roster.remove(id);
            }
            ServerMessage::Hand {
                peer, raised, at, ..
            } => {
                if let Some(p) = self.roster.get_mut(peer) {
                    p.hand_raised = *raised;
                    p.hand_raised_at = *at;
                }
            }
            _ => {}
        }
    }
}

struct World {
    hub: Hub,
    now: u64,
    /// Live connections (as the I/O layer sees them) and what each client believes.
    views: HashMap<ConnId, ClientView>,
    /// The resume token each connection last got.
    resume: HashMap<ConnId, String>,
    counter: u64,
}

const CLASSES: [&str; 3] = ["a", "b", "c"];

impl World {
    fn new() -> Self {
        // With an SFU that `auto` classes switch to above two students.
        let mut hub = Hub::new(HubLimits {
            max_class_size: 6,
            sfu: true,
            auto_sfu_above: 2,
            ..HubLimits::default()
        });
        for c in CLASSES {
            hub.add_class(c.into(), c.into(), Topology::Auto);
        }
        World {
            hub,
            now: 0,
            views: HashMap::new(),
            resume: HashMap::new(),
            counter: 0,
        }
    }

    /// Applies effects, checking that each delivery stays inside the class of its recipients.
    fn apply(
        &mut self,
        effects: Vec<Effect>,
        origin_class: Option<&str>,
    ) -> Result<(), TestCaseError> {
        for e in effects {
            match e {
                Effect::Deliver { to, msg } => {
                    for conn in to {
                        let view = self.views.get_mut(&conn);
                        prop_assert!(view.is_some(), "delivery to a closed connection {conn}");
                        let view = view.unwrap();
                        if let (Some(origin), Some(class)) = (origin_class, view.class.as_deref()) {
                            prop_assert_eq!(origin, class, "a message crossed classes: {:?}", msg);
                        }
                        view.apply(&msg);
                        if let ServerMessage::Welcome { resume_token, .. } = &msg {
                            self.resume.insert(conn, resume_token.clone());
                        }
                    }
                }
                Effect::Close { conn, .. } => {
                    self.views.remove(&conn);
                }
                Effect::Sfu(request) => {
                    let (class, peer) = match &request {
                        SfuRequest::Publish { class, peer, .. }
                        | SfuRequest::Subscribe { class, peer, .. }
                        | SfuRequest::Answer { class, peer, .. }
                        | SfuRequest::Permissions { class, peer, .. }
                        | SfuRequest::Remove { class, peer } => (class, peer),
                    };
                    if let Some(origin) = origin_class {
                        prop_assert_eq!(origin, class.as_str(), "an SFU request crossed classes");
                    }
                    prop_assert!(peer.starts_with('p'));
                }
            }
        }
        Ok(())
    }

    fn step(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Join {
                conn,
                class,
                teacher,
            } => {
                let conn = conn as ConnId;
                self.views.entry(conn).or_default();
                self.counter += 1;
                let role = if teacher {
                    Role::Teacher
                } else {
                    Role::Student
                };
                let r = JoinRequest {
                    class: CLASSES[class as usize].into(),
                    role,
                    fixed_name: None,
                    name: Some(format!("n{}", self.counter)),
                    resume: None,
                    new_resume_token: format!("tok{}", self.counter),
                    browser: None,
                    personal_token: None,
                    now_ms: self.now,
                };
                let origin = CLASSES[class as usize];
                match self.hub.join(conn, r, no_ice) {
                    Ok(j) if j.waiting => {
                        // Waiting at a locked or ended class: this client gives up.
                        self.apply(j.effects, Some(origin))?;
                        let fx = self.hub.disconnected(conn, self.now);
                        self.apply(fx, Some(origin))?;
                        self.views.remove(&conn);
                    }
                    Ok(j) => self.apply(j.effects, Some(origin))?,
                    Err(_) => {
                        if self.hub.peer_of(conn).is_none() {
                            self.views.remove(&conn);
                        }
                    }
                }
            }
            Op::Resume { conn, of_conn } => {
                let (conn, of_conn) = (conn as ConnId, of_conn as ConnId);
                if self.hub.peer_of(conn).is_some() {
                    return Ok(());
                }
                let Some(token) = self.resume.get(&of_conn).cloned() else {
                    return Ok(());
                };
                let Some(peer) = self.hub.resume_tokens.get(&token).cloned() else {
                    return Ok(());
                };
                let class = self.hub.class_of(&peer).unwrap().clone();
                let role = self
                    .hub
                    .roster(&class)
                    .unwrap()
                    .into_iter()
                    .find(|p| p.id == peer)
                    .unwrap()
                    .role;
                self.counter += 1;
                self.views.entry(conn).or_default();
                let r = JoinRequest {
                    class: class.clone(),
                    role,
                    fixed_name: None,
                    name: Some("again".into()),
                    resume: Some(token),
                    new_resume_token: format!("tok{}", self.counter),
                    browser: None,
                    personal_token: None,
                    now_ms: self.now,
                };
                let j = self.hub.join(conn, r, no_ice);
                prop_assert!(j.is_ok(), "resume of a live peer failed: {:?}", j.err());
                let j = j.unwrap();
                prop_assert_eq!(&j.peer, &peer, "resume must restore the identity");
                self.apply(j.effects, Some(&class))?;
            }
            Op::Drop { conn } => {
                let conn = conn as ConnId;
                if self.views.remove(&conn).is_some() {
                    let class = self
                        .hub
                        .peer_of(conn)
                        .and_then(|p| self.hub.class_of(p))
                        .cloned();
                    let fx = self.hub.disconnected(conn, self.now);
                    self.apply(fx, class.as_deref())?;
                }
            }
            Op::Tick { advance_ms } => {
                self.now += advance_ms as u64;
                let fx = self.hub.tick(self.now);
                // Expiry notices go to each expired peer's own class only.
                for e in &fx {
                    if let Effect::Deliver {
                        to,
                        msg: ServerMessage::PeerLeft { id, .. },
                    } = e
                    {
                        let classes: Vec<_> = to
                            .iter()
                            .filter_map(|c| self.views[c].class.clone())
                            .collect();
                        prop_assert!(
                            classes.windows(2).all(|w| w[0] == w[1]),
                            "{id} left to mixed classes"
                        );
                    }
                }
                self.apply(fx, None)?;
            }
            Op::Send {
                conn,
                msg,
                target_conn,
            } => {
                let conn = conn as ConnId;
                let target = self
                    .hub
                    .peer_of(target_conn as ConnId)
                    .cloned()
                    .unwrap_or_else(|| "p0".into());
                let me = self.hub.peer_of(conn).cloned();
                let class = me.as_ref().and_then(|p| self.hub.class_of(p)).cloned();
                let is_teacher = match (&me, &class) {
                    (Some(me), Some(c)) => self
                        .hub
                        .roster(c)
                        .unwrap()
                        .iter()
                        .any(|p| &p.id == me && p.role == Role::Teacher),
                    _ => false,
                };
                let (message, teacher_only) = match msg {
                    MsgKind::Offer => (
                        ClientMessage::Offer {
                            to: target.clone(),
                            sdp: "v=0".into(),
                        },
                        false,
                    ),
                    MsgKind::Chat => (
                        ClientMessage::Chat {
                            text: "hi".into(),
                            to: None,
                        },
                        false,
                    ),
                    MsgKind::Hand => (
                        ClientMessage::Hand {
                            raised: target_conn % 2 == 0,
                        },
                        false,
                    ),
                    MsgKind::Media => (
                        ClientMessage::Media {
                            mic: true,
                            camera: false,
                            screen: false,
                        },
                        false,
                    ),
                    MsgKind::Leave => (ClientMessage::Leave {}, false),
                    MsgKind::Mute => (
                        ClientMessage::Mute {
                            peer: target.clone(),
                            kind: MuteKind::All,
                        },
                        true,
                    ),
                    MsgKind::Remove => (
                        ClientMessage::Remove {
                            peer: target.clone(),
                            reason: None,
                        },
                        true,
                    ),
                    MsgKind::Lock => (ClientMessage::Lock { locked: true }, true),
                    MsgKind::Unlock => (ClientMessage::Lock { locked: false }, true),
                    MsgKind::End => (ClientMessage::End {}, true),
                    MsgKind::Grant => (
                        ClientMessage::Grant {
                            peer: target.clone(),
                            speak: Some(true),
                            camera: None,
                            screen: None,
                            share: None,
                        },
                        true,
                    ),
                };
                let before = class.as_ref().map(|c| {
                    (
                        self.hub.roster(c).unwrap(),
                        self.hub.class_info(c).unwrap().clone(),
                    )
                });
                match self.hub.handle(conn, message, self.now) {
                    Ok(fx) => {
                        prop_assert!(
                            me.is_some(),
                            "a message from an unjoined connection was accepted"
                        );
                        prop_assert!(
                            !teacher_only || is_teacher,
                            "a student did a teacher action"
                        );
                        self.apply(fx, class.as_deref())?;
                    }
                    Err(refusal) => {
                        if me.is_some() && teacher_only && !is_teacher {
                            prop_assert_eq!(refusal.code, ErrorCode::Forbidden);
                        }
                        if let (Some(c), Some(before)) = (&class, before) {
                            let after = (
                                self.hub.roster(c).unwrap(),
                                self.hub.class_info(c).unwrap().clone(),
                            );
                            prop_assert_eq!(before, after, "a refused message changed the class");
                        }
                    }
                }
            }
        }
        self.check_consistency()
    }

    /// Every connected client's view of its class equals the hub's roster, and the indexes agree.
    fn check_consistency(&self) -> Result<(), TestCaseError> {
        for (conn, view) in &self.views {
            let Some(me) = self.hub.peer_of(*conn) else {
                // Still mid-join or closed by the hub: it must not think it is in a class.
                prop_assert!(
                    view.me.is_none(),
                    "conn {conn} believes it is {:?} but the hub disagrees",
                    view.me
                );
                continue;
            };
            prop_assert_eq!(view.me.as_ref(), Some(me));
            let class = self.hub.class_of(me).unwrap();
            let actual: BTreeMap<PeerId, PeerInfo> = self
                .hub
                .roster(class)
                .unwrap()
                .into_iter()
                .filter(|p| p.id != *me)
                .map(|p| (p.id.clone(), p))
                .collect();
            prop_assert_eq!(&view.roster, &actual, "conn {}'s roster diverged", conn);
        }
        for c in CLASSES {
            let roster = self.hub.roster(c).unwrap();
            let students = roster.iter().filter(|p| p.role == Role::Student).count();
            prop_assert!(students <= 6, "more students than the class size");
            prop_assert!(roster.len() - students <= HubLimits::default().teacher_seats);
            for p in roster {
                prop_assert_eq!(self.hub.class_of(&p.id).map(String::as_str), Some(c));
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_sessions_keep_classes_apart_and_rosters_consistent(ops in proptest::collection::vec(op(), 1..80)) {
        let mut world = World::new();
        for op in ops {
            world.step(op)?;
        }
    }
}

#[test]
fn sfu_classes_route_media_negotiation_to_the_sfu() {
    let mut hub = Hub::new(HubLimits {
        sfu: true,
        ..HubLimits::default()
    });
    hub.add_class("s".into(), "Big".into(), Topology::Sfu);
    let (t, fx) = join(&mut hub, 1, "s", Role::Teacher, "T");
    assert!(
        matches!(&to(1, &fx)[0], ServerMessage::Welcome { class, .. } if class.media == MediaMode::Sfu)
    );
    let (s, _) = join(&mut hub, 2, "s", Role::Student, "A");

    let offer = ClientMessage::Offer {
        to: SFU_PEER_ID.into(),
        sdp: "v=0".into(),
    };
    let fx = hub.handle(1, offer.clone(), 0).unwrap();
    assert_eq!(
        fx,
        vec![Effect::Sfu(SfuRequest::Publish {
            class: "s".into(),
            peer: t.clone(),
            conn: 1,
            sdp: "v=0".into(),
            permissions: Permissions::ALL,
        })]
    );
    // A student without the right to speak or share does not publish.
    assert_eq!(
        hub.handle(2, offer.clone(), 0).unwrap_err().code,
        ErrorCode::Forbidden
    );
    // Given the right to speak, it publishes, and the SFU is told to forward its audio only;
    // the teacher revoking it tells the SFU again.
    let grant = |speak| ClientMessage::Grant {
        peer: s.clone(),
        speak: Some(speak),
        camera: None,
        screen: None,
        share: None,
    };
    let speak_only = Permissions {
        speak: true,
        ..Permissions::default()
    };
    let fx = hub.handle(1, grant(true), 0).unwrap();
    assert!(fx.contains(&Effect::Sfu(SfuRequest::Permissions {
        class: "s".into(),
        peer: s.clone(),
        permissions: speak_only,
    })));
    assert!(matches!(
        &hub.handle(2, offer, 0).unwrap()[..],
        [Effect::Sfu(SfuRequest::Publish { permissions, .. })] if *permissions == speak_only
    ));
    let fx = hub.handle(1, grant(false), 0).unwrap();
    assert!(fx.contains(&Effect::Sfu(SfuRequest::Permissions {
        class: "s".into(),
        peer: s.clone(),
        permissions: Permissions::default(),
    })));
    let fx = hub.handle(2, ClientMessage::Subscribe {}, 0).unwrap();
    assert_eq!(
        fx,
        vec![Effect::Sfu(SfuRequest::Subscribe {
            class: "s".into(),
            peer: s.clone(),
            conn: 2,
            members: 2,
        })]
    );
    let answer = ClientMessage::Answer {
        to: SFU_PEER_ID.into(),
        sdp: "v=0".into(),
    };
    assert!(matches!(
        &hub.handle(2, answer, 0).unwrap()[0],
        Effect::Sfu(SfuRequest::Answer { .. })
    ));
    let cand = ClientMessage::Candidate {
        to: SFU_PEER_ID.into(),
        candidate: serde_json::json!({}),
    };
    assert!(hub.handle(2, cand, 0).unwrap().is_empty());

    // Leaving frees the SFU session.
    let fx = hub.handle(2, ClientMessage::Leave {}, 0).unwrap();
    assert!(fx.contains(&Effect::Sfu(SfuRequest::Remove {
        class: "s".into(),
        peer: s
    })));
}

#[test]
fn auto_classes_switch_to_the_sfu_once_when_they_grow() {
    let mut hub = Hub::new(HubLimits {
        sfu: true,
        auto_sfu_above: 2,
        ..HubLimits::default()
    });
    hub.add_class("a".into(), "Auto".into(), Topology::Auto);
    join(&mut hub, 1, "a", Role::Teacher, "T");
    join(&mut hub, 2, "a", Role::Student, "S1");
    let (_, fx) = join(&mut hub, 3, "a", Role::Student, "S2");
    assert!(
        matches!(&to(3, &fx)[0], ServerMessage::Welcome { class, .. } if class.media == MediaMode::P2p)
    );
    // A p2p class refuses SFU negotiation...
    let answer = ClientMessage::Answer {
        to: SFU_PEER_ID.into(),
        sdp: "v=0".into(),
    };
    assert_eq!(
        hub.handle(3, answer, 0).unwrap_err().code,
        ErrorCode::MediaUnavailable
    );
    let (_, fx) = join(&mut hub, 4, "a", Role::Student, "S3");
    assert!(
        matches!(&to(4, &fx)[0], ServerMessage::Welcome { class, .. } if class.media == MediaMode::Sfu)
    );
    for c in [1, 2, 3] {
        assert!(
            matches!(&to(c, &fx)[0], ServerMessage::ClassUpdated { class } if class.media == MediaMode::Sfu)
        );
    }
    // It does not switch back within the session when the class shrinks...
    hub.handle(4, ClientMessage::Leave {}, 0).unwrap();
    hub.handle(3, ClientMessage::Leave {}, 0).unwrap();
    assert_eq!(hub.class_info("a").unwrap().media, MediaMode::Sfu);
    // ...but the next session starts with direct connections again.
    hub.handle(1, ClientMessage::End {}, 0).unwrap();
    assert_eq!(hub.class_info("a").unwrap().media, MediaMode::P2p);
    // A student whose direct link failed asks to subscribe: the auto class moves to the SFU.
    join(&mut hub, 6, "a", Role::Teacher, "T");
    hub.handle(6, ClientMessage::Start {}, 0).unwrap();
    join(&mut hub, 5, "a", Role::Student, "S4");
    let fx = hub.handle(5, ClientMessage::Subscribe {}, 0).unwrap();
    assert!(
        matches!(&to(6, &fx)[0], ServerMessage::ClassUpdated { class } if class.media == MediaMode::Sfu)
    );
    assert!(matches!(
        fx.last(),
        Some(Effect::Sfu(SfuRequest::Subscribe { .. }))
    ));
    // Without an SFU, nothing switches.
    let mut plain = Hub::new(HubLimits {
        auto_sfu_above: 0,
        ..HubLimits::default()
    });
    plain.add_class("p".into(), "Plain".into(), Topology::Sfu);
    let (_, fx) = join(&mut plain, 1, "p", Role::Student, "S");
    assert!(
        matches!(&to(1, &fx)[0], ServerMessage::Welcome { class, .. } if class.media == MediaMode::P2p)
    );
    let err = plain.handle(1, ClientMessage::Subscribe {}, 0).unwrap_err();
    assert_eq!(err.code, ErrorCode::MediaUnavailable);
}

#[test]
fn granting_a_student_speech_moves_an_auto_p2p_class_to_the_sfu() {
    // Direct links carry a student's media only to the teacher: the whole class must hear her.
    let setup = |sfu: bool, topology: Topology| {
        let mut hub = Hub::new(HubLimits {
            sfu,
            ..HubLimits::default()
        });
        hub.add_class("a".into(), "Auto".into(), topology);
        join(&mut hub, 1, "a", Role::Teacher, "T");
        let (s, _) = join(&mut hub, 2, "a", Role::Student, "S1");
        join(&mut hub, 3, "a", Role::Student, "S2");
        assert_eq!(hub.class_info("a").unwrap().media, MediaMode::P2p);
        (hub, s)
    };
    let grant = |peer: &PeerId, speak, camera| ClientMessage::Grant {
        peer: peer.clone(),
        speak,
        camera,
        screen: None,
        share: None,
    };

    let (mut hub, s) = setup(true, Topology::Auto);
    let fx = hub.handle(1, grant(&s, Some(true), None), 0).unwrap();
    assert_eq!(hub.class_info("a").unwrap().media, MediaMode::Sfu);
    for c in [1, 2, 3] {
        let msgs = to(c, &fx);
        assert!(matches!(&msgs[0], ServerMessage::PeerUpdated { peer } if peer.permissions.speak));
        assert!(
            matches!(&msgs[1], ServerMessage::ClassUpdated { class } if class.media == MediaMode::Sfu),
            "{c}: {msgs:?}"
        );
    }
    // The SFU enforces the new rights from the start.
    assert!(fx.contains(&Effect::Sfu(SfuRequest::Permissions {
        class: "a".into(),
        peer: s.clone(),
        permissions: Permissions {
            speak: true,
            ..Permissions::default()
        },
    })));

    // A camera moves it too; a revocation alone does not.
    let (mut hub, s) = setup(true, Topology::Auto);
    let fx = hub.handle(1, grant(&s, Some(false), None), 0).unwrap();
    assert_eq!(hub.class_info("a").unwrap().media, MediaMode::P2p);
    assert!(!fx.iter().any(|e| matches!(
        e,
        Effect::Deliver {
            msg: ServerMessage::ClassUpdated { .. },
            ..
        }
    )));
    hub.handle(1, grant(&s, None, Some(true)), 0).unwrap();
    assert_eq!(hub.class_info("a").unwrap().media, MediaMode::Sfu);

    // Without an SFU, or in a class that asked for direct connections, nothing moves.
    for (sfu, topology) in [(false, Topology::Auto), (true, Topology::P2p)] {
        let (mut hub, s) = setup(sfu, topology);
        let fx = hub.handle(1, grant(&s, Some(true), Some(true)), 0).unwrap();
        assert_eq!(hub.class_info("a").unwrap().media, MediaMode::P2p);
        for c in [1, 2, 3] {
            let msgs = to(c, &fx);
            assert!(
                matches!(&msgs[..], [ServerMessage::PeerUpdated { .. }]),
                "{sfu} {topology:?}: {msgs:?}"
            );
        }
        assert!(!fx.iter().any(|e| matches!(e, Effect::Sfu(_))));
    }
}

#[test]
fn names_with_hidden_characters_are_refused_and_duplicates_told_apart() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "Ms Rivera");
    for bad in ["Ms Rivera\u{202E}", "Ms\u{200B}Rivera", "Ana\u{7}"] {
        let err = hub
            .join(2, req("c1", Role::Student, bad), no_ice)
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidName, "{bad:?}");
    }
    let name_of = |effects: &[Effect], conn| match &to(conn, effects)[0] {
        ServerMessage::Welcome { name, .. } => name.clone(),
        other => panic!("{other:?}"),
    };
    // A student cannot take the teacher's name, nor another student's.
    let (_, fx) = join(&mut hub, 2, "c1", Role::Student, "ms  rivera");
    assert_eq!(name_of(&fx, 2), "ms rivera (2)");
    let (_, fx) = join(&mut hub, 3, "c1", Role::Student, "Ana");
    assert_eq!(name_of(&fx, 3), "Ana");
    let (_, fx) = join(&mut hub, 4, "c1", Role::Student, "Ana");
    assert_eq!(name_of(&fx, 4), "Ana (2)");
    assert!(matches!(&to(1, &fx)[0], ServerMessage::PeerJoined { peer } if peer.name == "Ana (2)"));
    let (_, fx) = join(&mut hub, 5, "c1", Role::Student, "ANA (2)");
    assert_eq!(name_of(&fx, 5), "ANA (2) (2)");
    // The same name in another class is no clash.
    let (_, fx) = join(&mut hub, 6, "c2", Role::Student, "Ana");
    assert_eq!(name_of(&fx, 6), "Ana");
}

#[test]
fn a_class_full_of_students_still_admits_its_teachers_up_to_their_seats() {
    let mut hub = Hub::new(HubLimits {
        max_class_size: 3,
        teacher_seats: 2,
        ..HubLimits::default()
    });
    hub.add_class("c1".into(), "Maths".into(), Topology::Auto);
    for i in 0..3 {
        join(&mut hub, 10 + i, "c1", Role::Student, &format!("S{i}"));
    }
    let err = hub
        .join(20, req("c1", Role::Student, "Z"), no_ice)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ClassFull);
    join(&mut hub, 1, "c1", Role::Teacher, "T1");
    join(&mut hub, 2, "c1", Role::Teacher, "T2");
    let err = hub
        .join(3, req("c1", Role::Teacher, "T3"), no_ice)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ClassFull);
    assert!(err.message.contains("teacher seat"), "{}", err.message);
}

fn refused(fx: &[Effect], conn: ConnId) -> Vec<(Option<String>, ErrorCode, u64)> {
    to(conn, fx)
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::JoinRefused { name, code, count } => Some((name, code, count)),
            _ => None,
        })
        .collect()
}

#[test]
fn teachers_hear_of_refused_joins_at_most_once_a_second() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "T");
    join(&mut hub, 2, "c1", Role::Student, "S");
    hub.handle(1, ClientMessage::Lock { locked: true }, 0)
        .unwrap();
    let fx = hub.join_refused("c1", Some("Zoe"), ErrorCode::ClassLocked, 1_000);
    assert_eq!(
        refused(&fx, 1),
        vec![(Some("Zoe".into()), ErrorCode::ClassLocked, 1)]
    );
    assert!(to(2, &fx).is_empty(), "students are not told");
    // A flood within the second is one notice, sent by the next tick.
    for i in 0..50 {
        let fx = hub.join_refused(
            "c1",
            Some(&format!("bot{i}")),
            ErrorCode::RateLimited,
            1_500,
        );
        assert!(fx.is_empty());
    }
    assert!(refused(&hub.tick(1_900), 1).is_empty());
    assert_eq!(
        refused(&hub.tick(2_000), 1),
        vec![(Some("bot49".into()), ErrorCode::RateLimited, 50)]
    );
    assert!(hub.tick(5_000).is_empty(), "nothing left to report");
    // Refusals a teacher cannot act on are not reported; a hidden-character name is dropped.
    assert!(hub
        .join_refused("c1", Some("x"), ErrorCode::InvalidToken, 9_000)
        .is_empty());
    let fx = hub.join_refused("c1", Some("a\u{202E}b"), ErrorCode::ClassFull, 9_000);
    assert_eq!(refused(&fx, 1), vec![(None, ErrorCode::ClassFull, 1)]);
}

fn removed_ids(fx: &[Effect], conn: ConnId) -> Option<Vec<PeerId>> {
    to(conn, fx).into_iter().rev().find_map(|m| match m {
        ServerMessage::RemovedList { removed } => Some(removed.into_iter().map(|r| r.id).collect()),
        _ => None,
    })
}

fn remove(hub: &mut Hub, teacher: ConnId, peer: &str) -> Vec<Effect> {
    let msg = ClientMessage::Remove {
        peer: peer.into(),
        reason: None,
    };
    hub.handle(teacher, msg, 0).unwrap()
}

#[test]
fn removal_refuses_the_browser_the_personal_token_and_the_resume_until_readmitted() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "T");
    // A shared link from a browser with an id.
    let mut r = req("c1", Role::Student, "Ana");
    r.browser = Some("browser-ana".into());
    let ana = hub.join(2, r, no_ice).unwrap().peer;
    // A personal token, no browser id.
    let mut r = req("c1", Role::Student, "Ben");
    r.fixed_name = Some("Ben".into());
    r.personal_token = Some("sig-ben".into());
    let ben = hub.join(3, r, no_ice).unwrap().peer;
    let fx = remove(&mut hub, 1, &ana);
    assert_eq!(removed_ids(&fx, 1), Some(vec![ana.clone()]));
    let fx = remove(&mut hub, 1, &ben);
    assert_eq!(removed_ids(&fx, 1), Some(vec![ana.clone(), ben.clone()]));

    let refused_code =
        |hub: &mut Hub, conn, r: JoinRequest| hub.join(conn, r, no_ice).unwrap_err().code;
    let mut again = req("c1", Role::Student, "Ana again");
    again.browser = Some("browser-ana".into());
    assert_eq!(refused_code(&mut hub, 4, again), ErrorCode::Removed);
    let mut again = req("c1", Role::Student, "Ana");
    again.resume = Some("rt-Ana-c1".into());
    assert_eq!(refused_code(&mut hub, 4, again), ErrorCode::Removed);
    let mut again = req("c1", Role::Student, "B");
    again.personal_token = Some("sig-ben".into());
    assert_eq!(refused_code(&mut hub, 4, again), ErrorCode::Removed);
    // Someone else on the same shared link is not affected.
    let mut other = req("c1", Role::Student, "Carla");
    other.browser = Some("browser-carla".into());
    hub.join(5, other, no_ice).unwrap();
    // A malformed browser id is refused, not ignored.
    let mut bad = req("c1", Role::Student, "Dev");
    bad.browser = Some("x y".into());
    assert_eq!(refused_code(&mut hub, 6, bad), ErrorCode::BadMessage);

    // A teacher joining later gets the list; students cannot readmit.
    let (_, fx) = join(&mut hub, 7, "c1", Role::Teacher, "T2");
    assert_eq!(removed_ids(&fx, 7), Some(vec![ana.clone(), ben.clone()]));
    let readmit = |peer: &str| ClientMessage::Readmit { peer: peer.into() };
    assert_eq!(
        hub.handle(5, readmit(&ana), 0).unwrap_err().code,
        ErrorCode::Forbidden
    );
    assert_eq!(
        hub.handle(1, readmit("p999"), 0).unwrap_err().code,
        ErrorCode::UnknownPeer
    );
    let fx = hub.handle(1, readmit(&ana), 0).unwrap();
    assert_eq!(removed_ids(&fx, 1), Some(vec![ben.clone()]));
    assert_eq!(removed_ids(&fx, 7), Some(vec![ben.clone()]));
    assert!(to(5, &fx).is_empty());
    let mut back = req("c1", Role::Student, "Ana");
    back.browser = Some("browser-ana".into());
    hub.join(8, back, no_ice).expect("readmitted");

    // Ending the session forgets removals.
    hub.handle(1, ClientMessage::End {}, 0).unwrap();
    let mut r = req("c1", Role::Student, "Ben");
    r.personal_token = Some("sig-ben".into());
    hub.join(9, r, no_ice).expect("a new session");
}

fn chat(hub: &mut Hub, conn: ConnId, text: &str, now_ms: u64) -> Result<Vec<Effect>, Refusal> {
    hub.handle(
        conn,
        ClientMessage::Chat {
            text: text.into(),
            to: None,
        },
        now_ms,
    )
}

#[test]
fn chat_has_its_own_rate_and_refuses_control_characters_but_newline() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "T");
    join(&mut hub, 2, "c1", Role::Student, "A");
    let t0 = 1_000_000;
    let burst = HubLimits::default().chat_burst as usize;
    let sent = (0..burst + 4)
        .filter(|i| chat(&mut hub, 2, &format!("line {i}"), t0).is_ok())
        .count();
    assert_eq!(sent, burst, "a burst, then refusals");
    let err = chat(&mut hub, 2, "one more", t0).unwrap_err();
    assert_eq!(err.code, ErrorCode::RateLimited, "{err}");
    // The limit is per person: the teacher still talks, and the student again a moment later.
    chat(&mut hub, 1, "teacher", t0).unwrap();
    chat(&mut hub, 2, "later", t0 + 400).unwrap();

    let t1 = t0 + 60_000;
    for bad in [
        "bell\u{7}",
        "tab\there",
        "cr\rlf",
        "esc\u{1b}[2J",
        "rtl\u{202E}txt.exe",
        "iso\u{2066}x",
    ] {
        let err = chat(&mut hub, 2, bad, t1).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidText, "{bad:?}: {err}");
    }
    let fx = chat(&mut hub, 2, "two\nlines 👩\u{200D}👩\u{200D}👧", t1).unwrap();
    let ServerMessage::Chat { entry } = &to(1, &fx)[0] else {
        panic!("{fx:?}")
    };
    assert_eq!(entry.text, "two\nlines 👩\u{200D}👩\u{200D}👧");
    // Refused lines spend none of the rate.
    assert!((0..burst - 1).all(|i| chat(&mut hub, 2, &format!("{i}"), t1).is_ok()));
}

fn link(peer: &str, reason: Option<String>) -> LinkStats {
    LinkStats {
        peer: peer.into(),
        path: crate::protocol::MediaPath::Direct,
        bitrate_kbps: Some(500.0),
        loss: None,
        rtt_ms: None,
        reason,
    }
}

fn stats(
    hub: &mut Hub,
    conn: ConnId,
    links: Vec<LinkStats>,
    now_ms: u64,
) -> Result<Vec<Effect>, Refusal> {
    hub.handle(conn, ClientMessage::Stats { links }, now_ms)
}

#[test]
fn stats_reach_teachers_at_most_once_an_interval_newest_first() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "T");
    let (s, _) = join(&mut hub, 2, "c1", Role::Student, "A");
    let t0 = 5_000_000;
    let fx = stats(&mut hub, 2, vec![link("p1", Some("first".into()))], t0).unwrap();
    assert_eq!(to(1, &fx).len(), 1);
    // A flood within the interval forwards nothing at once ...
    for i in 0..50 {
        let fx = stats(
            &mut hub,
            2,
            vec![link("p1", Some(format!("r{i}")))],
            t0 + 10 + i,
        )
        .unwrap();
        assert!(fx.is_empty(), "{fx:?}");
    }
    assert!(hub.tick(t0 + 500).is_empty(), "not before the interval");
    // ... and the newest waiting report when the interval is over.
    let fx = hub.tick(t0 + 1000);
    assert_eq!(
        to(1, &fx),
        vec![ServerMessage::Stats {
            from: s.clone(),
            links: vec![link("p1", Some("r49".into()))]
        }]
    );
    assert!(hub.tick(t0 + 3000).is_empty(), "forwarded once");
    // A report after a quiet interval goes at once.
    assert_eq!(
        to(
            1,
            &stats(&mut hub, 2, vec![link("p1", None)], t0 + 3000).unwrap()
        )
        .len(),
        1
    );
}

#[test]
fn stats_fields_are_bounded() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "T");
    join(&mut hub, 2, "c1", Role::Student, "A");
    let max = HubLimits::default().max_stats_reason_len;
    let long_reason = vec![link("p1", Some("é".repeat(max + 1)))];
    assert_eq!(
        stats(&mut hub, 2, long_reason, 0).unwrap_err().code,
        ErrorCode::TooLong
    );
    let long_peer = vec![link(&"p".repeat(65), None)];
    assert_eq!(
        stats(&mut hub, 2, long_peer, 0).unwrap_err().code,
        ErrorCode::TooLong
    );
    let many = vec![link("p1", None); 65];
    assert_eq!(
        stats(&mut hub, 2, many, 0).unwrap_err().code,
        ErrorCode::TooLong
    );
    assert!(stats(&mut hub, 2, vec![link("p1", Some("é".repeat(max)))], 0).is_ok());
}

#[test]
fn one_sender_cannot_fill_a_receivers_queue_with_signaling() {
    let limits = HubLimits::default();
    let mut hub = hub();
    let (t, _) = join(&mut hub, 1, "c1", Role::Teacher, "T");
    join(&mut hub, 2, "c1", Role::Student, "A");
    let sdp = "v".repeat(30_000);
    let t0 = 9_000_000;
    let mut forwarded = 0;
    let mut refused = 0;
    // Ten seconds of 48 big offers a second (under the message rate).
    for i in 0..480u64 {
        let offer = ClientMessage::Offer {
            to: t.clone(),
            sdp: sdp.clone(),
        };
        match hub.handle(2, offer, t0 + i * 1000 / 48) {
            Ok(fx) => forwarded += to(1, &fx).len(),
            Err(r) => {
                assert_eq!(r.code, ErrorCode::RateLimited, "{r}");
                refused += 1;
            }
        }
    }
    let bytes = forwarded * sdp.len();
    let allowed = limits.signal_burst_bytes as usize + 10 * limits.signal_bytes_per_sec as usize;
    assert!(bytes <= allowed, "{bytes} bytes reached the teacher");
    assert!(refused > 400, "{refused}");
    // The sender's other messages still work; only forwarded bytes are throttled.
    hub.handle(2, ClientMessage::Hand { raised: true }, t0 + 10_000)
        .unwrap();
}

/// One step of a session of joins, removals and readmissions in one class.
#[derive(Debug, Clone)]
enum BanOp {
    /// A student joins with maybe a browser id, maybe a personal token, maybe an old resume token.
    Join {
        browser: Option<u8>,
        personal: Option<u8>,
        resume: Option<u8>,
    },
    Remove(u8),
    Readmit(u8),
}

fn ban_op() -> impl Strategy<Value = BanOp> {
    let small = || proptest::option::of(0..3u8);
    prop_oneof![
        3 => (small(), small(), proptest::option::of(0..8u8))
            .prop_map(|(browser, personal, resume)| BanOp::Join { browser, personal, resume }),
        2 => (0..8u8).prop_map(BanOp::Remove),
        1 => (0..4u8).prop_map(BanOp::Readmit),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// A join is refused as `removed` exactly when it presents the resume token, personal token
    /// or browser id of someone removed and not readmitted; nobody else is ever refused for it.
    #[test]
    fn removal_refuses_exactly_the_removed_identities(ops in proptest::collection::vec(ban_op(), 1..60)) {
            let mut hub = Hub::new(HubLimits::default());
        hub.add_class("c1".into(), "Maths".into(), Topology::Auto);
        join(&mut hub, 1, "c1", Role::Teacher, "T");
        // (peer, browser, personal, resume token) of each present student; the same for bans.
        type Who = (PeerId, Option<String>, Option<String>, String);
        let mut present: Vec<Who> = Vec::new();
        let mut banned: Vec<Who> = Vec::new();
        let mut resume_tokens: Vec<String> = Vec::new();
        let mut conn = 10;
        for op in ops {
            match op {
                BanOp::Join { browser, personal, resume } => {
                    conn += 1;
                    let mut r = req("c1", Role::Student, &format!("s{conn}"));
                    r.browser = browser.map(|b| format!("b{b}"));
                    r.personal_token = personal.map(|p| format!("tok{p}"));
                    r.resume = resume.and_then(|i| resume_tokens.get(i as usize).cloned());
                    r.new_resume_token = format!("rt{conn}");
                    let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
                    let expect_refused = banned.iter().any(|(_, b, p, t)| {
                        r.resume.as_ref() == Some(t) || same(b, &r.browser) || same(p, &r.personal_token)
                    });
                    let (browser, personal, resume) = (r.browser.clone(), r.personal_token.clone(), r.resume.clone());
                    match hub.join(conn, r, no_ice) {
                        Err(e) => {
                            prop_assert!(expect_refused, "refused without a ban: {:?}", e);
                            prop_assert_eq!(e.code, ErrorCode::Removed);
                        }
                        Ok(j) => {
                            prop_assert!(!expect_refused, "a removed identity got back in");
                            let resumed = matches!(&to(conn, &j.effects)[0], ServerMessage::Welcome { resumed: true, .. });
                            let token = format!("rt{conn}");
                            resume_tokens.push(token.clone());
                            if resumed {
                                // The same person on a new connection: its resume token moved on.
                                let who = present.iter_mut().find(|w| Some(&w.3) == resume.as_ref()).unwrap();
                                who.3 = token;
                            } else {
                                present.push((j.peer, browser, personal, token));
                            }
                        }
                    }
                }
                BanOp::Remove(i) => {
                    if present.is_empty() {
                        continue;
                    }
                    let who = present.remove(i as usize % present.len());
                    remove(&mut hub, 1, &who.0);
                    banned.push(who);
                }
                BanOp::Readmit(i) => {
                    if banned.is_empty() {
                        continue;
                    }
                    let who = banned.remove(i as usize % banned.len());
                    let fx = hub.handle(1, ClientMessage::Readmit { peer: who.0.clone() }, 0).unwrap();
                    let listed = removed_ids(&fx, 1).unwrap_or_default();
                    let expected: Vec<PeerId> = banned.iter().map(|w| w.0.clone()).collect();
                    prop_assert_eq!(listed, expected);
                }
            }
        }
    }
}
