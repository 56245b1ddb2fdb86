//! Unit tests of the teacher's controls and the class's side channels: the camera and screen
//! rights, mute all, hands, co-teachers, private messages and reactions.

use super::fixtures::{hub, join, to};
use super::*;
use crate::protocol::{ChatAudience, MediaState, MuteKind, REACTIONS, SFU_PEER_ID};

fn grant(
    peer: &PeerId,
    speak: Option<bool>,
    camera: Option<bool>,
    screen: Option<bool>,
) -> ClientMessage {
    ClientMessage::Grant {
        peer: peer.clone(),
        speak,
        camera,
        screen,
        share: None,
    }
}

fn media(mic: bool, camera: bool, screen: bool) -> ClientMessage {
    ClientMessage::Media {
        mic,
        camera,
        screen,
    }
}

#[test]
fn a_camera_right_allows_a_camera_but_not_a_screen() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "T");
    let (s, _) = join(&mut hub, 2, "c1", Role::Student, "A");
    let fx = hub.handle(1, grant(&s, None, Some(true), None), 0).unwrap();
    let expected = Permissions {
        camera: true,
        ..Permissions::default()
    };
    assert!(
        matches!(&to(2, &fx)[0], ServerMessage::PeerUpdated { peer } if peer.permissions == expected)
    );
    hub.handle(2, media(false, true, false), 0).unwrap();
    for refused in [
        media(false, true, true),
        media(false, false, true),
        media(true, true, false),
    ] {
        let err = hub.handle(2, refused.clone(), 0).unwrap_err();
        assert_eq!(err.code, ErrorCode::Forbidden, "{refused:?}");
    }
    // The refused claims changed nothing: the camera is still on.
    let roster = hub.roster("c1").unwrap();
    let me = roster.iter().find(|p| p.id == s).unwrap();
    assert_eq!(
        me.media,
        MediaState {
            camera: true,
            ..MediaState::default()
        }
    );

    // The screen right alone, and then revoking the camera: the camera goes off, the screen may.
    hub.handle(1, grant(&s, None, None, Some(true)), 0).unwrap();
    hub.handle(2, media(false, true, true), 0).unwrap();
    let fx = hub
        .handle(1, grant(&s, None, Some(false), None), 0)
        .unwrap();
    assert!(matches!(
        &to(1, &fx)[0],
        ServerMessage::PeerUpdated { peer } if !peer.media.camera && peer.media.screen
            && !peer.permissions.camera && peer.permissions.screen
    ));
}

#[test]
fn a_grant_with_the_old_share_field_is_refused_in_words() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "T");
    let (s, _) = join(&mut hub, 2, "c1", Role::Student, "A");
    let old: ClientMessage = serde_json::from_value(serde_json::json!({
        "type": "grant", "peer": s, "share": true
    }))
    .unwrap();
    let err = hub.handle(1, old, 0).unwrap_err();
    assert_eq!(err.code, ErrorCode::BadMessage);
    assert!(err.message.contains("camera and screen"), "{}", err.message);
    let roster = hub.roster("c1").unwrap();
    assert_eq!(roster[1].permissions, Permissions::default());
}

#[test]
fn the_sfu_is_told_the_camera_and_screen_rights_apart() {
    let mut hub = Hub::new(HubLimits {
        sfu: true,
        ..HubLimits::default()
    });
    hub.add_class("s".into(), "SFU".into(), Topology::Sfu);
    join(&mut hub, 1, "s", Role::Teacher, "T");
    let (s, _) = join(&mut hub, 2, "s", Role::Student, "A");
    let fx = hub.handle(1, grant(&s, None, Some(true), None), 0).unwrap();
    let camera_only = Permissions {
        camera: true,
        ..Permissions::default()
    };
    assert!(fx.contains(&Effect::Sfu(SfuRequest::Permissions {
        class: "s".into(),
        peer: s.clone(),
        permissions: camera_only,
    })));
    // The camera right is enough to publish (the SFU then forwards the camera only).
    let offer = ClientMessage::Offer {
        to: SFU_PEER_ID.into(),
        sdp: "v=0".into(),
    };
    let fx = hub.handle(2, offer, 0).unwrap();
    assert!(matches!(
        &fx[..],
        [Effect::Sfu(SfuRequest::Publish { permissions, .. })] if *permissions == camera_only
    ));
}

fn hand(raised: bool) -> ClientMessage {
    ClientMessage::Hand { raised }
}

fn raised_order(hub: &Hub) -> Vec<(String, Option<u64>)> {
    let mut r: Vec<_> = hub
        .roster("c1")
        .unwrap()
        .into_iter()
        .filter(|p| p.hand_raised)
        .map(|p| (p.name, p.hand_raised_at))
        .collect();
    r.sort_by_key(|(_, at)| *at);
    r
}

#[test]
fn hands_keep_the_time_they_went_up_and_teachers_lower_one_or_all() {
    let mut hub = hub();
    let (t, _) = join(&mut hub, 1, "c1", Role::Teacher, "T");
    let (a, _) = join(&mut hub, 2, "c1", Role::Student, "A");
    let (b, _) = join(&mut hub, 3, "c1", Role::Student, "B");
    join(&mut hub, 4, "c1", Role::Student, "C");
    hub.handle(3, hand(true), 1_000).unwrap();
    let fx = hub.handle(2, hand(true), 2_000).unwrap();
    assert_eq!(
        to(1, &fx),
        vec![ServerMessage::Hand {
            peer: a.clone(),
            raised: true,
            at: Some(2_000),
            by: None,
        }]
    );
    hub.handle(4, hand(true), 3_000).unwrap();
    // Raised again while up: it keeps its place.
    hub.handle(3, hand(true), 4_000).unwrap();
    assert_eq!(
        raised_order(&hub),
        [
            ("B".to_string(), Some(1_000)),
            ("A".to_string(), Some(2_000)),
            ("C".to_string(), Some(3_000))
        ]
    );

    // A student may not lower anyone's hand, not even with its own id.
    for peer in [Some(b.clone()), None] {
        let err = hub
            .handle(2, ClientMessage::LowerHands { peer }, 0)
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Forbidden);
    }
    // The teacher lowers B's: everyone hears who lowered it.
    let fx = hub
        .handle(
            1,
            ClientMessage::LowerHands {
                peer: Some(b.clone()),
            },
            0,
        )
        .unwrap();
    let lowered = ServerMessage::Hand {
        peer: b.clone(),
        raised: false,
        at: None,
        by: Some(t.clone()),
    };
    for c in [1, 2, 3, 4] {
        assert_eq!(to(c, &fx), vec![lowered.clone()]);
    }
    assert_eq!(raised_order(&hub).len(), 2);
    // An unknown peer is refused; a hand already down is no news.
    let err = hub
        .handle(
            1,
            ClientMessage::LowerHands {
                peer: Some("nobody".into()),
            },
            0,
        )
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownPeer);
    let fx = hub
        .handle(1, ClientMessage::LowerHands { peer: Some(b) }, 0)
        .unwrap();
    assert!(fx.is_empty());
    // All: the oldest first.
    let fx = hub
        .handle(1, ClientMessage::LowerHands { peer: None }, 0)
        .unwrap();
    let order: Vec<_> = to(2, &fx)
        .into_iter()
        .map(|m| match m {
            ServerMessage::Hand { peer, raised, .. } => (peer, raised),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(order.len(), 2);
    assert_eq!(order[0], (a, false));
    assert!(raised_order(&hub).is_empty());
}

#[test]
fn mute_all_reaches_every_student_and_no_teacher() {
    let mut hub = hub();
    let (t, _) = join(&mut hub, 1, "c1", Role::Teacher, "T");
    join(&mut hub, 2, "c1", Role::Teacher, "T2");
    join(&mut hub, 3, "c1", Role::Student, "A");
    join(&mut hub, 4, "c1", Role::Student, "B");
    let err = hub
        .handle(
            3,
            ClientMessage::MuteAll {
                kind: MuteKind::Audio,
            },
            0,
        )
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    let fx = hub
        .handle(
            1,
            ClientMessage::MuteAll {
                kind: MuteKind::Audio,
            },
            0,
        )
        .unwrap();
    let muted = ServerMessage::Mute {
        by: t,
        kind: MuteKind::Audio,
        everyone: true,
    };
    assert_eq!(to(3, &fx), vec![muted.clone()]);
    assert_eq!(to(4, &fx), vec![muted]);
    assert!(to(1, &fx).is_empty() && to(2, &fx).is_empty());
}

#[test]
fn a_co_teacher_gets_every_right_and_every_control_but_ending_and_promoting() {
    let mut hub = hub();
    let (t, _) = join(&mut hub, 1, "c1", Role::Teacher, "T");
    let (a, _) = join(&mut hub, 2, "c1", Role::Student, "A");
    let (b, _) = join(&mut hub, 3, "c1", Role::Student, "B");
    hub.handle(2, hand(true), 5).unwrap();
    // Only a teacher promotes.
    let err = hub
        .handle(3, ClientMessage::Promote { peer: a.clone() }, 0)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    let fx = hub
        .handle(1, ClientMessage::Promote { peer: a.clone() }, 0)
        .unwrap();
    for c in [1, 2, 3] {
        assert!(
            matches!(&to(c, &fx)[0], ServerMessage::PeerUpdated { peer }
                if peer.id == a && peer.role == Role::Teacher && peer.co_teacher
                    && peer.permissions == Permissions::ALL && !peer.hand_raised),
            "{c}: {fx:?}"
        );
    }
    // A teacher or co-teacher cannot be promoted again.
    let err = hub
        .handle(1, ClientMessage::Promote { peer: a.clone() }, 0)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::BadMessage);

    // The co-teacher grants, mutes, lowers hands, locks.
    hub.handle(2, grant(&b, Some(true), None, None), 0).unwrap();
    hub.handle(
        2,
        ClientMessage::MuteAll {
            kind: MuteKind::All,
        },
        0,
    )
    .unwrap();
    hub.handle(2, ClientMessage::LowerHands { peer: None }, 0)
        .unwrap();
    hub.handle(2, ClientMessage::Lock { locked: true }, 0)
        .unwrap();
    hub.handle(2, ClientMessage::Lock { locked: false }, 0)
        .unwrap();
    // …but does not end the class, promote, demote, or remove a teacher.
    let refused = [
        ClientMessage::End {},
        ClientMessage::Promote { peer: b.clone() },
        ClientMessage::Demote { peer: a.clone() },
        ClientMessage::Remove {
            peer: t.clone(),
            reason: None,
        },
    ];
    for m in refused {
        let err = hub.handle(2, m.clone(), 0).unwrap_err();
        assert_eq!(err.code, ErrorCode::Forbidden, "{m:?}");
    }
    assert_eq!(hub.roster("c1").unwrap().len(), 3);
    // It may remove a student.
    hub.handle(
        2,
        ClientMessage::Remove {
            peer: b.clone(),
            reason: None,
        },
        0,
    )
    .unwrap();

    // Demoted: a student with no rights and nothing published.
    hub.handle(2, media(true, true, true), 0).unwrap();
    let err = hub
        .handle(1, ClientMessage::Demote { peer: t.clone() }, 0)
        .unwrap_err();
    assert_eq!(
        err.code,
        ErrorCode::BadMessage,
        "a teacher is no co-teacher"
    );
    let fx = hub
        .handle(1, ClientMessage::Demote { peer: a.clone() }, 0)
        .unwrap();
    assert!(matches!(&to(2, &fx)[0], ServerMessage::PeerUpdated { peer }
        if peer.role == Role::Student && !peer.co_teacher
            && peer.permissions == Permissions::default() && peer.media == MediaState::default()));
    let err = hub
        .handle(2, ClientMessage::Lock { locked: true }, 0)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
}

#[test]
fn a_co_teacher_resumes_with_its_student_link() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "T");
    let (a, _) = join(&mut hub, 2, "c1", Role::Student, "A");
    hub.handle(1, ClientMessage::Promote { peer: a.clone() }, 0)
        .unwrap();
    hub.disconnected(2, 1_000);
    let mut r = super::fixtures::req("c1", Role::Student, "A");
    r.resume = Some("rt-A-c1".into());
    r.new_resume_token = "rt-A-2".into();
    let j = hub.join(5, r, super::fixtures::no_ice).unwrap();
    assert!(j.resumed);
    assert_eq!(j.peer, a);
    assert!(matches!(
        &to(5, &j.effects)[0],
        ServerMessage::Welcome {
            role: Role::Teacher,
            ..
        }
    ));
}

#[test]
fn promoting_moves_an_auto_class_on_direct_links_to_the_sfu() {
    let mut hub = Hub::new(HubLimits {
        sfu: true,
        ..HubLimits::default()
    });
    hub.add_class("a".into(), "Auto".into(), Topology::Auto);
    join(&mut hub, 1, "a", Role::Teacher, "T");
    let (s, _) = join(&mut hub, 2, "a", Role::Student, "S");
    let fx = hub
        .handle(1, ClientMessage::Promote { peer: s.clone() }, 0)
        .unwrap();
    assert_eq!(hub.class_info("a").unwrap().media, MediaMode::Sfu);
    assert!(fx.contains(&Effect::Sfu(SfuRequest::Permissions {
        class: "a".into(),
        peer: s,
        permissions: Permissions::ALL,
    })));
}

fn chat(text: &str, to: Option<ChatAudience>) -> ClientMessage {
    ClientMessage::Chat {
        text: text.into(),
        to,
    }
}

#[test]
fn a_private_question_reaches_only_the_teachers_and_its_sender() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "T");
    join(&mut hub, 2, "c1", Role::Teacher, "T2");
    let (a, _) = join(&mut hub, 3, "c1", Role::Student, "A");
    join(&mut hub, 4, "c1", Role::Student, "B");
    let fx = hub
        .handle(
            3,
            chat("May I leave early?", Some(ChatAudience::Teachers)),
            10,
        )
        .unwrap();
    for c in [1, 2, 3] {
        assert!(
            matches!(&to(c, &fx)[..], [ServerMessage::Chat { entry }]
                if entry.to == Some(ChatAudience::Teachers) && entry.from == a),
            "{c}"
        );
    }
    assert!(to(4, &fx).is_empty(), "another student never gets it");
    // "everyone" is the default and is not written out.
    let fx = hub
        .handle(4, chat("hello", Some(ChatAudience::Everyone)), 20)
        .unwrap();
    assert!(matches!(&to(3, &fx)[..], [ServerMessage::Chat { entry }] if entry.to.is_none()));
    // The history keeps it from later students but not from its sender or teachers.
    let history = |hub: &mut Hub, conn, role, name: &str| {
        let (_, fx) = join(hub, conn, "c1", role, name);
        match &to(conn, &fx)[0] {
            ServerMessage::Welcome { chat, .. } => {
                chat.iter().map(|e| e.text.clone()).collect::<Vec<_>>()
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(history(&mut hub, 5, Role::Student, "C"), ["hello"]);
    assert_eq!(
        history(&mut hub, 6, Role::Teacher, "T3"),
        ["May I leave early?", "hello"]
    );
    hub.disconnected(3, 30);
    let mut r = super::fixtures::req("c1", Role::Student, "A");
    r.resume = Some("rt-A-c1".into());
    let j = hub.join(7, r, super::fixtures::no_ice).unwrap();
    assert!(
        matches!(&to(7, &j.effects)[0], ServerMessage::Welcome { chat, .. } if chat.len() == 2)
    );
}

#[test]
fn reactions_are_a_fixed_set_and_rate_limited() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "T");
    let (a, _) = join(&mut hub, 2, "c1", Role::Student, "A");
    let react = |e: &str| ClientMessage::React { emoji: e.into() };
    let fx = hub.handle(2, react("👍"), 0).unwrap();
    let seen = ServerMessage::Reaction {
        peer: a,
        emoji: "👍".into(),
    };
    assert_eq!(to(1, &fx), vec![seen.clone()]);
    assert_eq!(to(2, &fx), vec![seen]);
    for bad in ["", "x", "👍👍", "<b>", "🖕"] {
        let err = hub.handle(2, react(bad), 0).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadMessage, "{bad:?}");
    }
    // A burst of 3, then one a second.
    hub.handle(2, react("🎉"), 0).unwrap();
    hub.handle(2, react("❤️"), 0).unwrap();
    let err = hub.handle(2, react("👏"), 0).unwrap_err();
    assert_eq!(err.code, ErrorCode::RateLimited);
    hub.handle(2, react("👏"), 1_000).unwrap();
    for e in REACTIONS {
        assert!(!e.is_empty() && e.chars().count() <= 2, "{e}");
    }
}
