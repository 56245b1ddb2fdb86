//! Tests of a class's life: the waiting room, ending and starting a lesson, and the snapshot a
//! restarted server restores.

use super::fixtures::{self, closed, error_code, no_ice, to};
use super::*;
use crate::protocol::{close_code, WaitReason};

fn hub() -> Hub {
    let mut hub = Hub::new(HubLimits {
        max_class_size: 5,
        max_waiting: 3,
        max_wait_ms: 60_000,
        chat_history: 3,
        ..HubLimits::default()
    });
    hub.add_class("c1".into(), "Maths".into(), Topology::P2p);
    hub
}

fn req(role: Role, name: &str, now_ms: u64) -> JoinRequest {
    JoinRequest {
        new_resume_token: format!("rt-{name}-{now_ms}"),
        browser: Some(format!("b-{}", name.replace(' ', "-"))),
        now_ms,
        ..fixtures::req("c1", role, name)
    }
}

fn join(hub: &mut Hub, conn: ConnId, role: Role, name: &str, now_ms: u64) -> Joined {
    hub.join(conn, req(role, name, now_ms), no_ice)
        .expect("join succeeds")
}

/// The last waiting list delivered to `conn`: (id, name) pairs.
fn waiting_list(conn: ConnId, effects: &[Effect]) -> Option<Vec<(String, String)>> {
    to(conn, effects).into_iter().rev().find_map(|m| match m {
        ServerMessage::WaitingList { waiting } => {
            Some(waiting.into_iter().map(|w| (w.id, w.name)).collect())
        }
        _ => None,
    })
}

fn send(hub: &mut Hub, conn: ConnId, msg: ClientMessage, now_ms: u64) -> Vec<Effect> {
    hub.handle(conn, msg, now_ms).expect("accepted")
}

#[test]
fn a_locked_class_or_its_waiting_room_makes_newcomers_wait_for_a_teacher() {
    let mut hub = hub();
    join(&mut hub, 1, Role::Teacher, "Ms T", 0);
    join(&mut hub, 2, Role::Student, "Ana", 0);
    let fx = send(&mut hub, 1, ClientMessage::WaitingRoom { enabled: true }, 0);
    assert!(matches!(&to(2, &fx)[0], ServerMessage::ClassUpdated { class } if class.waiting_room));

    // A newcomer waits; the teacher sees her, the students do not.
    let j = join(&mut hub, 3, Role::Student, "Zoe", 1_000);
    assert!(j.waiting);
    assert!(matches!(
        &to(3, &j.effects)[0],
        ServerMessage::Waiting {
            reason: WaitReason::WaitingRoom,
            ..
        }
    ));
    assert_eq!(
        waiting_list(1, &j.effects),
        Some(vec![("w1".into(), "Zoe".into())])
    );
    assert!(to(2, &j.effects).is_empty());
    assert_eq!(hub.peer_of(3), None, "a waiting student is no member");
    // While waiting, only ping and leave mean anything.
    assert!(matches!(
        &to(3, &send(&mut hub, 3, ClientMessage::Ping {}, 1_000))[0],
        ServerMessage::Pong {}
    ));
    let chat = ClientMessage::Chat {
        text: "hi".into(),
        to: None,
    };
    assert_eq!(
        hub.handle(3, chat, 1_000).unwrap_err().code,
        ErrorCode::NotJoined
    );
    // A second join before being let in is refused.
    let again = hub.join(3, req(Role::Student, "Zoe", 1_000), no_ice);
    assert_eq!(again.unwrap_err().code, ErrorCode::AlreadyJoined);

    // A student can neither admit nor decline nor change the setting.
    for msg in [
        ClientMessage::Admit { id: "w1".into() },
        ClientMessage::Decline { id: "w1".into() },
        ClientMessage::AdmitAll {},
        ClientMessage::WaitingRoom { enabled: false },
        ClientMessage::Start {},
    ] {
        assert_eq!(
            hub.handle(2, msg, 1_000).unwrap_err().code,
            ErrorCode::Forbidden
        );
    }
    let unknown = ClientMessage::Admit { id: "w9".into() };
    assert_eq!(
        hub.handle(1, unknown, 1_000).unwrap_err().code,
        ErrorCode::UnknownPeer
    );

    // Admitted, she sends join again on the same connection and is in.
    let fx = send(&mut hub, 1, ClientMessage::Admit { id: "w1".into() }, 2_000);
    assert!(matches!(&to(3, &fx)[0], ServerMessage::Admitted {}));
    assert_eq!(waiting_list(1, &fx), Some(vec![]));
    assert!(hub.would_admit(3));
    let j = join(&mut hub, 3, Role::Student, "Zoe", 2_100);
    assert!(!j.waiting);
    assert!(matches!(
        &to(3, &j.effects)[0],
        ServerMessage::Welcome { .. }
    ));
    assert_eq!(hub.roster("c1").unwrap().len(), 3);

    // Locked too: declined, one is turned away; admit all lets the others in.
    send(&mut hub, 1, ClientMessage::Lock { locked: true }, 3_000);
    for (conn, name) in [(4, "Bo"), (5, "Cy"), (6, "Di")] {
        let j = join(&mut hub, conn, Role::Student, name, 3_000);
        assert!(j.waiting, "{name} waits");
    }
    // The waiting room is bounded.
    let full = hub.join(7, req(Role::Student, "Ed", 3_000), no_ice);
    assert_eq!(full.unwrap_err().code, ErrorCode::ClassFull);
    let fx = send(
        &mut hub,
        1,
        ClientMessage::Decline { id: "w2".into() },
        3_500,
    );
    assert_eq!(error_code(4, &fx), Some(ErrorCode::Declined));
    assert_eq!(closed(4, &fx), Some(close_code::JOIN_REFUSED));
    assert_eq!(hub.disconnected(4, 3_500), vec![], "already gone");
    let fx = send(&mut hub, 1, ClientMessage::AdmitAll {}, 4_000);
    for conn in [5, 6] {
        assert!(matches!(&to(conn, &fx)[0], ServerMessage::Admitted {}));
    }
    assert_eq!(waiting_list(1, &fx), Some(vec![]));
    assert_eq!(hub.waiting_count(), 2, "admitted, not yet joined again");
    // One comes in, the other never does: the server gives up on her.
    assert!(!join(&mut hub, 5, Role::Student, "Cy", 4_100).waiting);
    let fx = hub.tick(4_000 + 30_000);
    assert_eq!(error_code(6, &fx), Some(ErrorCode::WaitingTimeout));
    assert_eq!(hub.waiting_count(), 0);
}

#[test]
fn waiting_ends_with_a_timeout_a_leave_or_a_dropped_connection_and_bans_still_refuse() {
    let mut hub = hub();
    join(&mut hub, 1, Role::Teacher, "Ms T", 0);
    let ana = join(&mut hub, 2, Role::Student, "Ana", 0).peer;
    let fx = send(
        &mut hub,
        1,
        ClientMessage::Remove {
            peer: ana,
            reason: None,
        },
        0,
    );
    assert_eq!(closed(2, &fx), Some(close_code::REMOVED));
    send(&mut hub, 1, ClientMessage::Lock { locked: true }, 0);
    // Removed stays refused, locked or not.
    let again = hub.join(3, req(Role::Student, "Ana", 10), no_ice);
    assert_eq!(again.unwrap_err().code, ErrorCode::Removed);

    assert!(join(&mut hub, 4, Role::Student, "Bo", 100).waiting);
    assert!(join(&mut hub, 5, Role::Student, "Cy", 200).waiting);
    let fx = hub.disconnected(4, 300);
    assert_eq!(waiting_list(1, &fx), Some(vec![("w2".into(), "Cy".into())]));
    let fx = send(&mut hub, 5, ClientMessage::Leave {}, 400);
    assert_eq!(closed(5, &fx), Some(1000));
    assert_eq!(waiting_list(1, &fx), Some(vec![]));

    assert!(join(&mut hub, 6, Role::Student, "Di", 1_000).waiting);
    assert!(hub
        .tick(60_000)
        .iter()
        .all(|e| !matches!(e, Effect::Close { conn: 6, .. })));
    let fx = hub.tick(61_000);
    assert_eq!(error_code(6, &fx), Some(ErrorCode::WaitingTimeout));
    assert_eq!(closed(6, &fx), Some(close_code::JOIN_REFUSED));
    assert_eq!(waiting_list(1, &fx), Some(vec![]));
    // A teacher joining later sees nobody waiting; a teacher never waits.
    let j = join(&mut hub, 7, Role::Teacher, "Mr U", 62_000);
    assert!(!j.waiting);
    assert_eq!(waiting_list(7, &j.effects), None);
}

#[test]
fn end_gives_teachers_a_summary_and_students_wait_until_a_teacher_starts_again() {
    let mut hub = hub();
    join(&mut hub, 1, Role::Teacher, "Ms T", 0);
    join(&mut hub, 2, Role::Student, "Ana", 60_000);
    join(&mut hub, 3, Role::Student, "Bo", 120_000);
    hub.disconnected(3, 180_000); // Bo was there one minute
    let fx = send(&mut hub, 1, ClientMessage::End {}, 600_000);
    let summary = to(1, &fx)
        .into_iter()
        .find_map(|m| match m {
            ServerMessage::ClassEnded { summary, .. } => summary,
            _ => None,
        })
        .expect("the teacher gets a summary");
    assert_eq!((summary.started, summary.ended), (0, 600_000));
    let seen: Vec<(&str, u64, u64)> = summary
        .attendance
        .iter()
        .map(|a| (a.name.as_str(), a.present_secs, a.left))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("Ms T", 600, 600_000),
            ("Ana", 540, 600_000),
            ("Bo", 60, 180_000)
        ]
    );
    assert!(matches!(
        &to(2, &fx)[0],
        ServerMessage::ClassEnded { summary: None, .. }
    ));
    assert_eq!(closed(2, &fx), Some(close_code::CLASS_ENDED));
    assert!(hub.class_info("c1").unwrap().ended);

    // A student opening the link waits for the next lesson; no teacher list shows her.
    let j = join(&mut hub, 4, Role::Student, "Ana", 700_000);
    assert!(j.waiting);
    assert!(matches!(
        &to(4, &j.effects)[0],
        ServerMessage::Waiting {
            reason: WaitReason::Ended,
            ..
        }
    ));
    // A teacher opening the teacher link is in the ended class, with the summary.
    let j = join(&mut hub, 5, Role::Teacher, "Ms T", 710_000);
    match &to(5, &j.effects)[0] {
        ServerMessage::Welcome { class, summary, .. } => {
            assert!(class.ended);
            assert_eq!(summary.as_ref().map(|s| s.attendance.len()), Some(3));
        }
        other => panic!("expected welcome, got {other:?}"),
    }
    assert_eq!(waiting_list(5, &j.effects), None);
    let ended_admit = ClientMessage::Admit { id: "w1".into() };
    assert_eq!(
        hub.handle(5, ended_admit, 710_000).unwrap_err().code,
        ErrorCode::BadMessage
    );
    // Start: the waiting student is let in and joins the new lesson.
    let fx = send(&mut hub, 5, ClientMessage::Start {}, 720_000);
    assert!(matches!(&to(5, &fx)[0], ServerMessage::ClassUpdated { class } if !class.ended));
    assert!(matches!(&to(4, &fx)[0], ServerMessage::Admitted {}));
    assert!(!join(&mut hub, 4, Role::Student, "Ana", 720_500).waiting);
    let fx = send(&mut hub, 5, ClientMessage::End {}, 780_000);
    let summary = to(5, &fx)
        .into_iter()
        .find_map(|m| match m {
            ServerMessage::ClassEnded { summary, .. } => summary,
            _ => None,
        })
        .unwrap();
    assert_eq!(summary.started, 720_000, "a new lesson, a new attendance");
    let names: Vec<&str> = summary.attendance.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, vec!["Ms T", "Ana"]);
}

#[test]
fn start_with_the_waiting_room_on_makes_the_waiting_students_knock() {
    let mut hub = hub();
    join(&mut hub, 1, Role::Teacher, "Ms T", 0);
    send(&mut hub, 1, ClientMessage::WaitingRoom { enabled: true }, 0);
    send(&mut hub, 1, ClientMessage::End {}, 1_000);
    assert!(
        hub.class_info("c1").unwrap().waiting_room,
        "a class setting"
    );
    assert!(join(&mut hub, 2, Role::Student, "Ana", 2_000).waiting);
    join(&mut hub, 3, Role::Teacher, "Ms T", 3_000);
    let fx = send(&mut hub, 3, ClientMessage::Start {}, 4_000);
    assert!(matches!(
        &to(2, &fx)[0],
        ServerMessage::Waiting {
            reason: WaitReason::WaitingRoom,
            ..
        }
    ));
    assert_eq!(
        waiting_list(3, &fx),
        Some(vec![("w1".into(), "Ana".into())])
    );
}

/// A class in the middle of a lesson: a teacher, two students, a raised hand, a grant, the lock,
/// chat, a removed student and the waiting room on.
fn busy_class(hub: &mut Hub) -> (PeerId, PeerId, PeerId) {
    let t = join(hub, 1, Role::Teacher, "Ms T", 0).peer;
    let ana = join(hub, 2, Role::Student, "Ana", 10).peer;
    let bo = join(hub, 3, Role::Student, "Bo", 20).peer;
    let cy = join(hub, 4, Role::Student, "Cy", 30).peer;
    send(hub, 3, ClientMessage::Hand { raised: true }, 100);
    send(hub, 2, ClientMessage::Hand { raised: true }, 110);
    let grant = ClientMessage::Grant {
        peer: ana.clone(),
        speak: Some(true),
        camera: None,
        screen: None,
        share: None,
    };
    send(hub, 1, grant, 200);
    for (conn, text) in [(1, "one"), (2, "two"), (3, "three"), (1, "four")] {
        send(
            hub,
            conn,
            ClientMessage::Chat {
                text: text.into(),
                to: None,
            },
            300,
        );
    }
    send(
        hub,
        1,
        ClientMessage::Remove {
            peer: cy,
            reason: None,
        },
        400,
    );
    send(hub, 1, ClientMessage::Lock { locked: true }, 500);
    send(hub, 1, ClientMessage::WaitingRoom { enabled: true }, 500);
    let spotlight = ClientMessage::Spotlight {
        peer: Some(bo.clone()),
    };
    send(hub, 1, spotlight, 500);
    (t, ana, bo)
}

/// The resume token each connection holds now (from its last `welcome`).
fn resume_token(hub: &Hub, peer: &str) -> String {
    hub.resume_tokens
        .iter()
        .find(|(_, p)| p.as_str() == peer)
        .map(|(t, _)| t.clone())
        .unwrap()
}

#[test]
fn a_snapshot_restores_identities_rights_hands_lock_and_chat_after_a_restart() {
    let mut before = hub();
    let (t, ana, bo) = busy_class(&mut before);
    let tokens: Vec<(PeerId, String)> = [&t, &ana, &bo]
        .into_iter()
        .map(|p| (p.clone(), resume_token(&before, p)))
        .collect();
    assert_eq!(before.take_dirty(), vec!["c1".to_string()]);
    assert!(before.take_dirty().is_empty(), "each change is taken once");
    let snap = before.snapshot("c1").unwrap();
    let json = serde_json::to_string(&snap).unwrap();
    assert!(
        json.contains(&tokens[1].1),
        "resume tokens are kept as the hub keeps them"
    );

    // A new process: another peer-id prefix, the class added from the store, then restored.
    let mut after = Hub::new(before.limits().clone()).with_peer_id_prefix("q");
    after.add_class("c1".into(), "Maths".into(), Topology::P2p);
    let restored: ClassSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, snap, "the snapshot round-trips through JSON");
    assert!(after.restore("c1", restored, 10_000));
    assert_eq!(
        after.snapshot("c1").map(|s| s.members),
        Some(snap.members.clone()).map(|m| {
            m.into_iter()
                .map(|mut m| {
                    m.info.connected = false;
                    m
                })
                .collect()
        })
    );
    let info = after.class_info("c1").unwrap();
    assert!(info.locked && info.waiting_room && !info.ended);
    assert_eq!(info.spotlight.as_ref(), Some(&bo), "the spotlight");
    // Everyone is back, disconnected, waiting for a resume within the grace.
    let roster = after.roster("c1").unwrap();
    assert_eq!(roster.len(), 3);
    assert!(roster.iter().all(|p| !p.connected));

    for (i, (peer, token)) in tokens.iter().enumerate() {
        let conn = 100 + i as ConnId;
        let role = if i == 0 { Role::Teacher } else { Role::Student };
        let mut r = req(role, "whatever", 11_000);
        r.resume = Some(token.clone());
        r.new_resume_token = format!("rt-after-{i}");
        assert!(after.would_resume("c1", role, Some(token)));
        let j = after.join(conn, r, no_ice).unwrap();
        assert!(j.resumed && !j.waiting, "{peer} resumes");
        assert_eq!(&j.peer, peer, "with its own id");
        match &to(conn, &j.effects)[0] {
            ServerMessage::Welcome {
                id,
                resumed,
                permissions,
                hand_raised,
                chat,
                class,
                server_restarted,
                ..
            } => {
                assert_eq!(id, peer);
                assert!(*resumed && *server_restarted);
                assert!(class.locked);
                let texts: Vec<&str> = chat.iter().map(|c| c.text.as_str()).collect();
                assert_eq!(texts, vec!["two", "three", "four"], "the bounded history");
                if peer == &ana {
                    assert!(permissions.speak && *hand_raised);
                }
                if peer == &bo {
                    assert!(!permissions.speak && *hand_raised);
                }
            }
            other => panic!("expected welcome, got {other:?}"),
        }
    }
    // Only the first resume after the restart says so.
    let mut again = req(Role::Teacher, "whatever", 11_500);
    again.resume = Some(resume_token(&after, &t));
    let j = after.join(150, again, no_ice).unwrap();
    assert!(matches!(
        &to(150, &j.effects)[0],
        ServerMessage::Welcome {
            server_restarted: false,
            resumed: true,
            ..
        }
    ));
    // Chat ids go on from where they were.
    let fx = send(
        &mut after,
        150,
        ClientMessage::Chat {
            text: "five".into(),
            to: None,
        },
        12_000,
    );
    assert!(matches!(&to(150, &fx)[0], ServerMessage::Chat { entry } if entry.id == 5));
    // The removed student is still refused; a newcomer still waits.
    let mut cy = req(Role::Student, "Cy", 12_000);
    cy.browser = Some("b-Cy".into());
    assert_eq!(
        after.join(200, cy, no_ice).unwrap_err().code,
        ErrorCode::Removed
    );
    assert!(
        after
            .join(201, req(Role::Student, "Dee", 12_000), no_ice)
            .unwrap()
            .waiting
    );
    // A new peer gets a new id that cannot collide with the restored ones.
    send(
        &mut after,
        150,
        ClientMessage::Lock { locked: false },
        12_000,
    );
    send(
        &mut after,
        150,
        ClientMessage::WaitingRoom { enabled: false },
        12_000,
    );
    let new = join(&mut after, 202, Role::Student, "Eve", 12_000).peer;
    assert!(new.starts_with('q') && ![&t, &ana, &bo].contains(&&new));
}

#[test]
fn restored_members_who_never_come_back_leave_after_the_grace() {
    let mut before = hub();
    busy_class(&mut before);
    let snap = before.snapshot("c1").unwrap();
    let mut after = Hub::new(before.limits().clone());
    after.add_class("c1".into(), "Maths".into(), Topology::P2p);
    assert!(!after.restore("nope", snap.clone(), 0));
    let mut old = snap.clone();
    old.version += 1;
    assert!(
        !after.restore("c1", old, 0),
        "another layout is not restored"
    );
    assert!(after.restore("c1", snap, 1_000));
    let grace = after.limits().resume_grace_ms;
    after.tick(1_000 + grace - 1);
    assert_eq!(after.peer_count(), 3);
    after.tick(1_000 + grace);
    assert_eq!(after.peer_count(), 0);
}

#[test]
fn only_changes_of_what_a_restart_keeps_mark_a_class_dirty() {
    let mut hub = hub();
    join(&mut hub, 1, Role::Teacher, "Ms T", 0);
    let s = join(&mut hub, 2, Role::Student, "Ana", 0).peer;
    assert_eq!(hub.take_dirty(), vec!["c1".to_string()]);
    let offer = ClientMessage::Offer {
        to: s,
        sdp: "v=0".into(),
    };
    send(&mut hub, 1, offer, 0);
    send(&mut hub, 1, ClientMessage::Ping {}, 0);
    assert!(hub.take_dirty().is_empty());
    send(&mut hub, 2, ClientMessage::Hand { raised: true }, 0);
    assert_eq!(hub.take_dirty(), vec!["c1".to_string()]);
    hub.remove_class("c1");
    assert_eq!(hub.take_dirty(), vec!["c1".to_string()]);
    assert_eq!(hub.snapshot("c1"), None, "its saved state is to be deleted");
}

#[test]
fn the_attendance_of_a_lesson_is_bounded() {
    let mut hub = hub();
    join(&mut hub, 1, Role::Teacher, "Ms T", 0);
    for i in 0..400u64 {
        let conn = 10 + i;
        join(&mut hub, conn, Role::Student, &format!("S{i}"), i);
        send(&mut hub, conn, ClientMessage::Leave {}, i);
    }
    let fx = send(&mut hub, 1, ClientMessage::End {}, 1_000);
    let summary = to(1, &fx)
        .into_iter()
        .find_map(|m| match m {
            ServerMessage::ClassEnded { summary, .. } => summary,
            _ => None,
        })
        .unwrap();
    assert_eq!(summary.attendance.len(), class::MAX_ATTENDANCE);
    assert_eq!(summary.attendance[0].name, "Ms T");
}

#[test]
fn attendance_counts_reconnects_and_names_class_list_students() {
    let mut hub = hub();
    join(&mut hub, 1, Role::Teacher, "Ms T", 0);
    let ana = JoinRequest {
        fixed_name: Some("Ana".into()),
        student: Some("st-ana".into()),
        personal_token: Some("student:st-ana".into()),
        ..req(Role::Student, "typed", 60_000)
    };
    hub.join(2, ana, no_ice).expect("Ana joins");
    // Ana drops twice and resumes each time; the teacher's page reconnects once.
    hub.disconnected(2, 120_000);
    let back = JoinRequest {
        resume: Some("rt-typed-60000".into()),
        new_resume_token: "rt-ana-2".into(),
        ..req(Role::Student, "typed", 180_000)
    };
    hub.join(3, back, no_ice).expect("Ana resumes");
    hub.disconnected(3, 240_000);
    let again = JoinRequest {
        resume: Some("rt-ana-2".into()),
        ..req(Role::Student, "typed", 300_000)
    };
    hub.join(4, again, no_ice).expect("Ana resumes again");
    hub.disconnected(1, 310_000);
    let teacher_back = JoinRequest {
        resume: Some("rt-Ms T-0".into()),
        ..req(Role::Teacher, "Ms T", 320_000)
    };
    hub.join(5, teacher_back, no_ice)
        .expect("the teacher resumes");
    let fx = send(&mut hub, 5, ClientMessage::End {}, 600_000);
    let summary = to(5, &fx)
        .into_iter()
        .find_map(|m| match m {
            ServerMessage::ClassEnded { summary, .. } => summary,
            _ => None,
        })
        .expect("the teacher gets a summary");
    let seen: Vec<_> = summary
        .attendance
        .iter()
        .map(|a| {
            (
                a.name.as_str(),
                a.student.as_deref(),
                a.reconnects,
                a.present_secs,
            )
        })
        .collect();
    // Ana: 60–120, 180–240, 300–600 s; the teacher: 0–310, 320–600 s.
    assert_eq!(
        seen,
        vec![("Ms T", None, 1, 590), ("Ana", Some("st-ana"), 2, 420)]
    );
}
