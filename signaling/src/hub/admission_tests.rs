//! Who gets in: names, seats, refused joins told to teachers, and removal.

use super::fixtures::*;
use super::*;

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

#[test]
fn with_shared_links_off_only_personal_links_and_teachers_get_in() {
    let mut hub = hub();
    assert!(hub.set_shared_links("c1", false));
    assert!(!hub.set_shared_links("nope", false));
    let personal = |name: &str| JoinRequest {
        fixed_name: Some(name.into()),
        student: Some(format!("st-{name}")),
        personal_token: Some(format!("student:st-{name}")),
        ..req("c1", Role::Student, "typed")
    };
    let err = hub
        .join(1, req("c1", Role::Student, "Zed"), no_ice)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::PersonalLinkRequired);
    join(&mut hub, 2, "c1", Role::Teacher, "Ms Rivera");
    let joined = hub.join(3, personal("Ana"), no_ice).unwrap();
    assert!(
        matches!(&to(3, &joined.effects)[0], ServerMessage::Welcome { name, .. } if name == "Ana")
    );
    // Another class keeps its shared links; turned back on, the shared link works again.
    join(&mut hub, 4, "c2", Role::Student, "Zed");
    hub.set_shared_links("c1", true);
    join(&mut hub, 5, "c1", Role::Student, "Zed");
}
