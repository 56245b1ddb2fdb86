//! Floor links: who may negotiate a direct link with whom in a class on direct connections.

use super::fixtures::{self, no_ice};
use super::*;

fn new_hub(sfu: bool, topology: Topology, max_class_size: usize) -> Hub {
    let mut hub = Hub::new(HubLimits {
        sfu,
        max_class_size,
        ..HubLimits::default()
    });
    hub.add_class("c".into(), "Maths".into(), topology);
    hub
}

fn join(hub: &mut Hub, conn: ConnId, role: Role, name: &str) -> PeerId {
    let req = fixtures::req("c", role, name);
    hub.join(conn, req, no_ice).expect("join succeeds").peer
}

fn grant(hub: &mut Hub, teacher: ConnId, peer: &PeerId, on: bool) -> Vec<Effect> {
    let msg = ClientMessage::Grant {
        peer: peer.clone(),
        speak: Some(on),
        camera: None,
        screen: None,
        share: None,
    };
    hub.handle(teacher, msg, 0).expect("the teacher grants")
}

fn grant_share(hub: &mut Hub, teacher: ConnId, peer: &PeerId, on: bool) {
    let msg = ClientMessage::Grant {
        peer: peer.clone(),
        speak: None,
        camera: Some(on),
        screen: Some(on),
        share: None,
    };
    hub.handle(teacher, msg, 0).expect("the teacher grants");
}

/// Sends each of offer, answer and candidate from `conn` to `to`: the connection it reached, or
/// the refusal's code.
fn signal(hub: &mut Hub, conn: ConnId, to: &PeerId) -> Vec<Result<Vec<ConnId>, ErrorCode>> {
    let msgs = [
        ClientMessage::Offer {
            to: to.clone(),
            sdp: "v=0".into(),
        },
        ClientMessage::Answer {
            to: to.clone(),
            sdp: "v=0".into(),
        },
        ClientMessage::Candidate {
            to: to.clone(),
            candidate: serde_json::json!({"candidate": ""}),
        },
    ];
    msgs.into_iter()
        .map(|m| match hub.handle(conn, m, 0) {
            Ok(fx) => Ok(fx
                .iter()
                .flat_map(|e| match e {
                    Effect::Deliver { to, .. } => to.clone(),
                    _ => Vec::new(),
                })
                .collect()),
            Err(r) => Err(r.code),
        })
        .collect()
}

fn all_reach(results: &[Result<Vec<ConnId>, ErrorCode>], conn: ConnId) -> bool {
    results.iter().all(|r| r == &Ok(vec![conn]))
}

fn all_forbidden(results: &[Result<Vec<ConnId>, ErrorCode>]) -> bool {
    results.iter().all(|r| r == &Err(ErrorCode::Forbidden))
}

#[test]
fn students_link_directly_only_while_one_of_them_holds_a_right() {
    for (sfu, topology) in [(false, Topology::Auto), (true, Topology::P2p)] {
        let mut hub = new_hub(sfu, topology, 40);
        let t = join(&mut hub, 1, Role::Teacher, "T");
        let ana = join(&mut hub, 2, Role::Student, "Ana");
        let ben = join(&mut hub, 3, Role::Student, "Ben");
        join(&mut hub, 4, Role::Student, "Cleo");

        // No rights: classmates cannot negotiate with each other; the teacher links with all.
        assert!(all_forbidden(&signal(&mut hub, 2, &ben)));
        assert!(all_forbidden(&signal(&mut hub, 3, &ana)));
        assert!(all_reach(&signal(&mut hub, 1, &ana), 2));
        assert!(all_reach(&signal(&mut hub, 2, &t), 1));

        // Ana may speak: she and each classmate negotiate, both ways; the class stays direct.
        grant(&mut hub, 1, &ana, true);
        assert_eq!(hub.class_info("c").unwrap().media, MediaMode::P2p);
        assert!(all_reach(&signal(&mut hub, 2, &ben), 3));
        assert!(all_reach(&signal(&mut hub, 3, &ana), 2));
        assert!(all_reach(&signal(&mut hub, 4, &ana), 2));
        // …but two classmates without a right still cannot.
        let cleo = hub.roster("c").unwrap()[3].id.clone();
        assert!(all_forbidden(&signal(&mut hub, 3, &cleo)));

        // Revoked: the floor links are over.
        grant(&mut hub, 1, &ana, false);
        assert!(all_forbidden(&signal(&mut hub, 3, &ana)));
        assert!(all_forbidden(&signal(&mut hub, 2, &ben)));

        // Sharing is a right too, and it is enough that the addressee holds it.
        grant_share(&mut hub, 1, &ben, true);
        assert!(all_reach(&signal(&mut hub, 2, &ben), 3));
    }
}

#[test]
fn no_floor_links_through_the_sfu_or_in_a_large_class() {
    // A class on the SFU: the granted student publishes there; classmates never link directly.
    let mut hub = new_hub(true, Topology::Sfu, 40);
    join(&mut hub, 1, Role::Teacher, "T");
    let ana = join(&mut hub, 2, Role::Student, "Ana");
    let ben = join(&mut hub, 3, Role::Student, "Ben");
    grant(&mut hub, 1, &ana, true);
    assert!(all_forbidden(&signal(&mut hub, 2, &ben)));
    assert!(all_forbidden(&signal(&mut hub, 3, &ana)));

    // An `auto` class moved to the SFU by the grant: the same.
    let mut hub = hub_auto_with_sfu();
    join(&mut hub, 1, Role::Teacher, "T");
    let ana = join(&mut hub, 2, Role::Student, "Ana");
    let ben = join(&mut hub, 3, Role::Student, "Ben");
    grant(&mut hub, 1, &ana, true);
    assert_eq!(hub.class_info("c").unwrap().media, MediaMode::Sfu);
    assert!(all_forbidden(&signal(&mut hub, 3, &ana)));
    assert!(all_forbidden(&signal(&mut hub, 2, &ben)));

    // A direct class of more than MAX_FLOOR_LINK_STUDENTS students: no floor links, so a granted
    // student holds at most MAX_FLOOR_LINK_STUDENTS - 1 of them.
    let mut hub = new_hub(false, Topology::P2p, 100);
    join(&mut hub, 1, Role::Teacher, "T");
    let mut students = Vec::new();
    for i in 0..MAX_FLOOR_LINK_STUDENTS {
        students.push(join(
            &mut hub,
            10 + i as ConnId,
            Role::Student,
            &format!("S{i}"),
        ));
    }
    grant(&mut hub, 1, &students[0], true);
    let last = MAX_FLOOR_LINK_STUDENTS - 1;
    assert!(all_reach(
        &signal(&mut hub, 10 + last as ConnId, &students[0]),
        10
    ));
    join(&mut hub, 99, Role::Student, "One too many");
    assert!(all_forbidden(&signal(
        &mut hub,
        10 + last as ConnId,
        &students[0]
    )));
    assert!(all_forbidden(&signal(&mut hub, 10, &students[1])));
}

fn hub_auto_with_sfu() -> Hub {
    new_hub(true, Topology::Auto, 40)
}
