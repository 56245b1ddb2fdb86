//! Classes on the media server: media negotiation routed to the SFU, and `auto` classes that
//! move to it as they grow or when a student is given the floor.

use super::fixtures::*;
use super::*;
use crate::protocol::SFU_PEER_ID;

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
