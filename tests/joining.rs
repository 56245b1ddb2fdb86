//! Who gets into a class, over real sockets against the real binary: names, teacher seats,
//! per-IP join and code-exchange limits, refused-join notices to teachers, removal as a ban.

mod common;

use common::*;
use serde_json::json;

fn tokens(class: &serde_json::Value) -> (String, String) {
    (
        class["teacher"]["token"].as_str().unwrap().to_string(),
        class["student"]["token"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn names_with_hidden_characters_are_refused_and_duplicates_are_told_apart() {
    let aula = Aula::start(&temp_dir("names"));
    let (teacher_token, student_token) = tokens(&aula.create_class("Maths"));
    let mut teacher = Client::join(&aula, &teacher_token, "Ms Rivera").await;

    let mut c = Client::connect(&aula).await;
    for bad in [
        "Ms Rivera\u{202E}",
        "Ms\u{200B}Rivera",
        "Ana\u{0}",
        "\u{2067}Ana",
    ] {
        c.send(json!({"type": "join", "token": student_token, "name": bad}))
            .await;
        let e = c.expect_error("invalid_name").await;
        assert!(e["message"].as_str().unwrap().contains("U+"), "{e}");
    }
    // invalid_name lets the same connection try again.
    c.send(json!({"type": "join", "token": student_token, "name": "Ms Rivera"}))
        .await;
    let w = c.expect("welcome").await;
    assert_eq!(
        w["name"], "Ms Rivera (2)",
        "a student cannot take the teacher's name"
    );
    let joined = teacher.expect("peer_joined").await;
    assert_eq!(joined["peer"]["name"], "Ms Rivera (2)");
    assert_eq!(joined["peer"]["role"], "student");

    let ana = Client::join(&aula, &student_token, "Ana").await;
    let ana2 = Client::join(&aula, &student_token, " ana ").await;
    assert_eq!(ana.welcome["name"], "Ana");
    assert_eq!(ana2.welcome["name"], "ana (2)");

    // A token cannot fix a name the join would refuse.
    let class_id = ana.welcome["class"]["id"].as_str().unwrap().to_string();
    let (status, body) = http(
        &aula,
        "POST",
        &format!("/api/v1/classes/{class_id}/tokens"),
        Some(json!({"role": "student", "name": "Ana\u{202E}"})),
        Some(ADMIN_KEY),
    );
    assert_eq!(status, 400, "{body}");
}
