//! A class's life on the real binary over real WebSockets: the waiting room (admit, decline,
//! admit all), ending and starting a lesson, and a restart — after `SIGTERM` and after
//! `SIGKILL` — where every client resumes with its own id and the lock, rights, hands, chat and
//! removals are all still there.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn token<'a>(class: &'a Value, role: &str) -> &'a str {
    class[role]["token"].as_str().unwrap()
}

/// Connects and sends a join with these extra fields; returns the client and the first answer.
async fn knock(aula: &Aula, token: &str, name: &str, extra: Value) -> (Client, Value) {
    let mut c = Client::connect(aula).await;
    let mut join = json!({"type": "join", "token": token, "name": name});
    join.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    c.send(join).await;
    let first = c.recv().await;
    (c, first)
}

/// Joins (or resumes) and expects `welcome`.
async fn join_with(aula: &Aula, token: &str, name: &str, extra: Value) -> Client {
    let (mut c, welcome) = knock(aula, token, name, extra).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    c.id = welcome["id"].as_str().unwrap().to_string();
    c.welcome = welcome;
    c
}

fn names(list: &Value) -> Vec<String> {
    list["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_waiting_room_lets_students_in_one_by_one_or_all_at_once() {
    let dir = temp_dir("lifecycle-waiting");
    let aula = Aula::start(&dir);
    let class = aula.create_class_with_topology("Waiting", "p2p");
    let (tt, st) = (token(&class, "teacher"), token(&class, "student"));
    let mut teacher = Client::join(&aula, tt, "Ms Rivera").await;
    let mut ana = Client::join(&aula, st, "Ana").await;

    // A student cannot open the waiting room, nor let anyone in.
    ana.send(json!({"type": "waiting_room", "enabled": true}))
        .await;
    ana.expect_error("forbidden").await;
    teacher
        .send(json!({"type": "waiting_room", "enabled": true}))
        .await;
    let updated = ana.expect("class_updated").await;
    assert_eq!(updated["class"]["waiting_room"], true);

    let (mut zoe, first) = knock(&aula, st, "Zoe", json!({})).await;
    assert_eq!(first["type"], "waiting", "{first}");
    assert_eq!(first["reason"], "waiting_room");
    assert_eq!(first["class_name"], "Waiting");
    let list = teacher.expect("waiting_list").await;
    assert_eq!(names(&list), ["Zoe"]);
    let zoe_id = list["waiting"][0]["id"].as_str().unwrap().to_string();
    assert!(list["waiting"][0]["since"].as_u64().unwrap() > 1_600_000_000_000);
    // Waiting, she may ping but not chat.
    zoe.send(json!({"type": "ping"})).await;
    zoe.expect("pong").await;
    zoe.send(json!({"type": "chat", "text": "let me in"})).await;
    zoe.expect_error("not_joined").await;
    ana.send(json!({"type": "admit", "id": zoe_id})).await;
    ana.expect_error("forbidden").await;

    // Admitted: the same join again on the same connection, and she is in.
    teacher.send(json!({"type": "admit", "id": zoe_id})).await;
    zoe.expect("admitted").await;
    zoe.send(json!({"type": "join", "token": st, "name": "Zoe"}))
        .await;
    let welcome = zoe.expect("welcome").await;
    assert_eq!(welcome["name"], "Zoe");
    let joined = teacher.expect("peer_joined").await;
    assert_eq!(joined["peer"]["name"], "Zoe");

    // Declined: a clear refusal and close 4001.
    let (mut bo, first) = knock(&aula, st, "Bo", json!({})).await;
    assert_eq!(first["type"], "waiting");
    let list = teacher.expect("waiting_list").await;
    let bo_id = list["waiting"][0]["id"].as_str().unwrap().to_string();
    teacher.send(json!({"type": "decline", "id": bo_id})).await;
    bo.expect_error("declined").await;
    assert_eq!(bo.expect_close().await, 4001);

    // Admit all.
    let (mut cy, _) = knock(&aula, st, "Cy", json!({})).await;
    let (mut di, _) = knock(&aula, st, "Di", json!({})).await;
    let mut list = teacher.expect("waiting_list").await;
    while names(&list).len() < 2 {
        list = teacher.expect("waiting_list").await;
    }
    assert_eq!(names(&list), ["Cy", "Di"]);
    teacher.send(json!({"type": "admit_all"})).await;
    assert!(names(&teacher.expect("waiting_list").await).is_empty());
    for (c, name) in [(&mut cy, "Cy"), (&mut di, "Di")] {
        c.expect("admitted").await;
        c.send(json!({"type": "join", "token": st, "name": name}))
            .await;
        c.expect("welcome").await;
    }
    // One who leaves the waiting room leaves the list.
    let (mut ed, _) = knock(&aula, st, "Ed", json!({})).await;
    assert_eq!(names(&teacher.expect("waiting_list").await), ["Ed"]);
    ed.send(json!({"type": "leave"})).await;
    assert_eq!(ed.expect_close().await, 1000);
    assert!(names(&teacher.expect("waiting_list").await).is_empty());
}

#[tokio::test]
async fn a_waiting_connection_that_stops_answering_times_out_with_a_clear_error() {
    let dir = temp_dir("lifecycle-idle");
    let aula = AulaBuilder::new(&dir)
        .env("AULA_LIMITS__IDLE_TIMEOUT_SECS", "2")
        .env("AULA_LIMITS__PING_INTERVAL_SECS", "1")
        .start();
    let class = aula.create_class_with_topology("Idle", "p2p");
    let (tt, st) = (token(&class, "teacher"), token(&class, "student"));
    let mut teacher = Client::join(&aula, tt, "Ms Rivera").await;
    teacher.send(json!({"type": "lock", "locked": true})).await;
    teacher.expect("class_updated").await;
    let (mut zoe, first) = knock(&aula, st, "Zoe", json!({})).await;
    assert_eq!(first["type"], "waiting");
    assert_eq!(names(&teacher.expect("waiting_list").await), ["Zoe"]);
    // Her connection goes dead: nothing is read from it, so not even the server's pings are
    // answered. It is closed, and she is off the list.
    assert!(names(&teacher.expect("waiting_list").await).is_empty());
    zoe.expect_error("idle_timeout").await;
    assert_eq!(zoe.expect_close().await, 4006);
}

#[tokio::test]
async fn end_sends_teachers_a_summary_and_students_wait_until_the_class_starts_again() {
    let dir = temp_dir("lifecycle-end");
    let aula = Aula::start(&dir);
    let class = aula.create_class_with_topology("Ending", "p2p");
    let (tt, st) = (token(&class, "teacher"), token(&class, "student"));
    let mut teacher = Client::join(&aula, tt, "Ms Rivera").await;
    let mut ana = Client::join(&aula, st, "Ana").await;
    let _bo = Client::join(&aula, st, "Bo").await;
    ana.send(json!({"type": "end"})).await;
    ana.expect_error("forbidden").await;

    teacher.send(json!({"type": "end"})).await;
    let ended = teacher.expect("class_ended").await;
    let attended: Vec<&str> = ended["summary"]["attendance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(attended, ["Ms Rivera", "Ana", "Bo"]);
    assert_eq!(teacher.expect_close().await, 4003);
    let ended = ana.expect("class_ended").await;
    assert!(ended.get("summary").is_none(), "students get no summary");
    assert_eq!(ana.expect_close().await, 4003);

    // The link still works, but she waits until a teacher starts the class again.
    let (mut ana, first) = knock(&aula, st, "Ana", json!({})).await;
    assert_eq!(first["type"], "waiting");
    assert_eq!(first["reason"], "ended");
    ana.expect_silence(Duration::from_millis(300)).await;
    let path = format!("/api/v1/classes/{}", class["id"].as_str().unwrap());
    let (status, detail) = http(&aula, "GET", &path, None, Some(ADMIN_KEY));
    assert_eq!(status, 200, "{detail}");
    assert_eq!(
        (&detail["ended"], &detail["waiting"]),
        (&json!(true), &json!(1))
    );
    let mut teacher = Client::join(&aula, tt, "Ms Rivera").await;
    assert_eq!(teacher.welcome["class"]["ended"], true);
    assert_eq!(
        teacher.welcome["summary"]["attendance"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    teacher.send(json!({"type": "start"})).await;
    assert_eq!(
        teacher.expect("class_updated").await["class"]["ended"],
        false
    );
    ana.expect("admitted").await;
    ana.send(json!({"type": "join", "token": st, "name": "Ana"}))
        .await;
    let welcome = ana.expect("welcome").await;
    assert_eq!(welcome["class"]["ended"], false);
    assert_eq!(welcome["chat"], json!([]));
}

/// A class in the middle of a lesson, then a restart by `signal`: every client resumes.
async fn restart_keeps_the_live_class(signal: &str) {
    let dir = temp_dir(&format!("lifecycle-restart-{signal}"));
    let mut aula = Aula::start(&dir);
    let port = aula.addr.port();
    let class = aula.create_class_with_topology("Restart", "p2p");
    let (tt, st) = (token(&class, "teacher"), token(&class, "student"));
    let mut teacher = Client::join(&aula, tt, "Ms Rivera").await;
    let mut ana = join_with(&aula, st, "Ana", json!({"browser": "browser-ana"})).await;
    let mut bo = join_with(&aula, st, "Bo", json!({"browser": "browser-bo"})).await;
    let cy = join_with(&aula, st, "Cy", json!({"browser": "browser-cy"})).await;

    bo.send(json!({"type": "hand", "raised": true})).await;
    teacher.expect("hand").await;
    ana.send(json!({"type": "hand", "raised": true})).await;
    teacher.expect("hand").await;
    teacher
        .send(json!({"type": "grant", "peer": ana.id, "speak": true}))
        .await;
    teacher.expect("peer_updated").await;
    for (c, text) in [(&mut teacher, "Good morning"), (&mut ana, "Is 7 prime?")] {
        c.send(json!({"type": "chat", "text": text})).await;
        c.expect("chat").await;
    }
    teacher.send(json!({"type": "remove", "peer": cy.id})).await;
    teacher.expect("removed_list").await;
    teacher.send(json!({"type": "lock", "locked": true})).await;
    teacher.expect("class_updated").await;
    // The newest resume tokens, as each client holds them.
    let resume = |c: &Client| c.welcome["resume_token"].as_str().unwrap().to_string();
    let ids = [teacher.id.clone(), ana.id.clone(), bo.id.clone()];
    let tokens = [resume(&teacher), resume(&ana), resume(&bo)];

    match signal {
        "SIGTERM" => {
            assert!(aula.terminate().success());
        }
        _ => {
            // A crash loses at most the last second: give the once-a-second save its tick.
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            aula.child.kill().unwrap();
            aula.child.wait().unwrap();
        }
    }
    drop((teacher, ana, bo, cy));
    let aula = AulaBuilder::new(&dir)
        .listen(&format!("127.0.0.1:{port}"))
        .start();

    let roles = [tt, st, st];
    let names = ["Ms Rivera", "Ana", "Bo"];
    let mut welcomes = Vec::new();
    for i in 0..3 {
        let c = join_with(
            &aula,
            roles[i],
            names[i],
            json!({"resume": tokens[i], "browser": format!("browser-{i}")}),
        )
        .await;
        assert_eq!(c.welcome["resumed"], true, "{signal}: {} resumes", names[i]);
        assert_eq!(
            c.welcome["server_restarted"], true,
            "{signal}: told of the restart"
        );
        assert_eq!(c.id, ids[i], "{signal}: {} keeps the id", names[i]);
        welcomes.push(c);
    }
    let (teacher_w, ana_w, bo_w) = (
        &welcomes[0].welcome,
        &welcomes[1].welcome,
        &welcomes[2].welcome,
    );
    assert_eq!(teacher_w["role"], "teacher");
    assert_eq!(ana_w["role"], "student");
    assert_eq!(ana_w["class"]["locked"], true, "{signal}: the lock");
    assert_eq!(ana_w["permissions"]["speak"], true, "{signal}: the grant");
    assert_eq!(ana_w["hand_raised"], true, "{signal}: Ana's hand");
    assert_eq!(bo_w["hand_raised"], true, "{signal}: Bo's hand");
    assert_eq!(bo_w["permissions"]["speak"], false);
    let chat: Vec<&str> = bo_w["chat"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert_eq!(chat, ["Good morning", "Is 7 prime?"], "{signal}: the chat");
    // Everyone sees everyone, hands in place.
    let peers = teacher_w["peers"].as_array().unwrap();
    let raised: Vec<&str> = peers
        .iter()
        .filter(|p| p["hand_raised"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(raised.len(), 2, "{signal}: {peers:?}");
    assert_eq!(
        teacher_w["class"]["locked"], true,
        "the teacher sees the lock too"
    );

    // Removed before the restart: still refused.
    let (mut cy, refused) = knock(&aula, st, "Cy", json!({"browser": "browser-cy"})).await;
    assert_eq!(refused["code"], "removed", "{signal}: {refused}");
    assert_eq!(cy.expect_close().await, 4001);
    // A newcomer at the locked class waits, and the teacher sees her.
    let (_dee, waiting) = knock(&aula, st, "Dee", json!({})).await;
    assert_eq!(waiting["type"], "waiting", "{signal}: {waiting}");
    assert_eq!(waiting["reason"], "locked");
    let list = welcomes[0].expect("waiting_list").await;
    assert_eq!(list["waiting"][0]["name"], "Dee");
}

#[tokio::test]
async fn after_sigterm_every_client_resumes_with_its_id_hand_rights_lock_and_chat() {
    restart_keeps_the_live_class("SIGTERM").await;
}

#[tokio::test]
async fn after_sigkill_every_client_resumes_with_its_id_hand_rights_lock_and_chat() {
    restart_keeps_the_live_class("SIGKILL").await;
}
