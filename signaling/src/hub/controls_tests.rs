//! Unit tests of the teacher's controls and the class's side channels: the camera and screen
//! rights, mute all, hands, co-teachers, private messages and reactions.

use super::tests::{hub, join, to};
use super::*;
use crate::protocol::{MediaState, SFU_PEER_ID};

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
