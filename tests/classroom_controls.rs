//! The teacher's classroom controls and the class's side channels over real sockets: a private
//! question reaches the teachers only, reactions, mute all, hands in order and lowered by the
//! teacher, and a co-teacher's rights.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn a_private_question_reaches_only_the_teachers() {
    let aula = Aula::start(&temp_dir("private-chat"));
    let class = aula.create_class("Maths");
    let (t, s) = (
        class["teacher"]["token"].as_str().unwrap(),
        class["student"]["token"].as_str().unwrap(),
    );
    let mut teacher = Client::join(&aula, t, "Ms Rivera").await;
    let mut ana = Client::join(&aula, s, "Ana").await;
    let mut ben = Client::join(&aula, s, "Ben").await;
    ana.send(json!({"type": "chat", "text": "May I leave early?", "to": "teachers"}))
        .await;
    let got = teacher.expect("chat").await;
    assert_eq!(got["text"], "May I leave early?");
    assert_eq!(got["to"], "teachers");
    assert_eq!(
        ana.expect("chat").await["to"],
        "teachers",
        "the sender sees it"
    );
    // Ben gets the next public line, and never the private one.
    ana.send(json!({"type": "chat", "text": "hello all"})).await;
    let next = ben.expect("chat").await;
    assert_eq!(next["text"], "hello all");
    assert!(next.get("to").is_none());
    // Nor in the history of a later student.
    let carla = Client::join(&aula, s, "Carla").await;
    let texts: Vec<_> = carla.welcome["chat"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["hello all"]);
}

#[tokio::test]
async fn reactions_hands_mute_all_and_a_co_teacher() {
    let aula = Aula::start(&temp_dir("controls"));
    let class = aula.create_class("Maths");
    let (t, s) = (
        class["teacher"]["token"].as_str().unwrap(),
        class["student"]["token"].as_str().unwrap(),
    );
    let mut teacher = Client::join(&aula, t, "Ms Rivera").await;
    let mut ana = Client::join(&aula, s, "Ana").await;
    let mut ben = Client::join(&aula, s, "Ben").await;
    let ana_id = ana.welcome["id"].as_str().unwrap().to_string();
    let ben_id = ben.welcome["id"].as_str().unwrap().to_string();

    // A reaction from the fixed set reaches everyone; anything else is refused.
    ana.send(json!({"type": "react", "emoji": "👍"})).await;
    let r = ben.expect("reaction").await;
    assert_eq!(
        (r["peer"].as_str().unwrap(), r["emoji"].as_str().unwrap()),
        (ana_id.as_str(), "👍")
    );
    ana.send(json!({"type": "react", "emoji": "spam", "ref": 1}))
        .await;
    assert_eq!(ana.expect_error("bad_message").await["ref"], 1);

    // Hands carry the time they went up; a student cannot lower another's; the teacher can.
    ben.send(json!({"type": "hand", "raised": true})).await;
    let h = teacher.expect("hand").await;
    assert!(h["at"].as_u64().is_some());
    ana.send(json!({"type": "lower_hands", "peer": ben_id, "ref": 2}))
        .await;
    assert_eq!(ana.expect_error("forbidden").await["ref"], 2);
    teacher.send(json!({"type": "lower_hands"})).await;
    assert_eq!(
        ben.expect("hand").await["raised"],
        true,
        "his own hand first"
    );
    let h = ben.expect("hand").await;
    assert_eq!(h["raised"], false);
    assert_eq!(h["by"], teacher.welcome["id"]);

    // Mute all: every student is asked, with `everyone`.
    teacher
        .send(json!({"type": "mute_all", "kind": "audio"}))
        .await;
    for s in [&mut ana, &mut ben] {
        let m = s.expect("mute").await;
        assert_eq!(
            (m["kind"].as_str(), m["everyone"].as_bool()),
            (Some("audio"), Some(true))
        );
    }

    // A co-teacher: a student cannot promote; the teacher can; the co-teacher grants but does
    // not end the class.
    ben.send(json!({"type": "promote", "peer": ana_id, "ref": 3}))
        .await;
    assert_eq!(ben.expect_error("forbidden").await["ref"], 3);
    teacher
        .send(json!({"type": "promote", "peer": ana_id}))
        .await;
    let u = ana.expect("peer_updated").await;
    assert_eq!(u["peer"]["role"], "teacher");
    assert_eq!(u["peer"]["co_teacher"], true);
    ana.send(json!({"type": "grant", "peer": ben_id, "camera": true}))
        .await;
    let u = ben.expect("peer_updated").await;
    assert_eq!(u["peer"]["permissions"]["camera"], true);
    ana.send(json!({"type": "end", "ref": 4})).await;
    assert_eq!(ana.expect_error("forbidden").await["ref"], 4);
}
