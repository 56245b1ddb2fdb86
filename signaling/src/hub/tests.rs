//! Unit tests of the class state machine: joining, signalling, chat, hands, resume, teacher
//! controls, stats and their limits. (Property tests are in `prop_tests.rs`.)

use super::fixtures::*;
use super::*;
use crate::protocol::{close_code, LinkStats, MuteKind, WaitReason};

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
