//! `spotlight` end to end: the real `aula` binary, real sockets. A teacher puts a student in the
//! spotlight for everyone; students cannot; late joiners see it in their welcome.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn a_teacher_spotlights_a_student_for_the_whole_class() {
    let aula = Aula::start(&temp_dir("spotlight"));
    let class = aula.create_class("Drama");
    let t = class["teacher"]["token"].as_str().unwrap().to_string();
    let s = class["student"]["token"].as_str().unwrap().to_string();
    let mut teacher = Client::join(&aula, &t, "T").await;
    let mut ana = Client::join(&aula, &s, "Ana").await;
    let mut ben = Client::join(&aula, &s, "Ben").await;

    // A student may not.
    let ben_id = ben.id.clone();
    ben.send(json!({"type": "spotlight", "peer": ben_id, "ref": 1}))
        .await;
    let e = ben.expect_error("forbidden").await;
    assert_eq!(e["ref"], 1);
    // Nor may a teacher name someone who is not in the class.
    teacher
        .send(json!({"type": "spotlight", "peer": "nobody"}))
        .await;
    teacher.expect_error("unknown_peer").await;

    let ana_id = ana.id.clone();
    teacher
        .send(json!({"type": "spotlight", "peer": ana_id}))
        .await;
    for c in [&mut teacher, &mut ana, &mut ben] {
        let u = c.expect("class_updated").await;
        assert_eq!(u["class"]["spotlight"], ana_id.as_str(), "{u}");
    }
    let cleo = Client::join(&aula, &s, "Cleo").await;
    assert_eq!(cleo.welcome["class"]["spotlight"], ana_id.as_str());

    teacher.send(json!({"type": "spotlight"})).await;
    for c in [&mut teacher, &mut ana, &mut ben] {
        let u = c.expect("class_updated").await;
        assert!(u["class"].get("spotlight").is_none(), "{u}");
    }
}
