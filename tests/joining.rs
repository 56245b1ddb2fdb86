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

/// A student token from the class code, as the start page gets it.
fn code_token(aula: &Aula, code: &str) -> String {
    let (status, body) = http(
        aula,
        "POST",
        "/api/v1/join",
        Some(json!({"code": code})),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_string()
}

/// Connects and sends a join; returns the client for the caller to read the answer.
async fn try_join(aula: &Aula, join: serde_json::Value) -> Client {
    let mut c = Client::connect(aula).await;
    c.send(join).await;
    c
}

#[tokio::test]
async fn students_filling_the_class_from_the_code_never_keep_the_teacher_out() {
    let aula = AulaBuilder::new(&temp_dir("seats"))
        .env("AULA_LIMITS__MAX_CLASS_SIZE", "5")
        .env("AULA_JOINING__TEACHER_SEATS", "2")
        .start();
    let class = aula.create_class("Maths");
    let (teacher_token, _) = tokens(&class);
    let code = class["id"].as_str().unwrap();
    let mut bots = Vec::new();
    for i in 0..5 {
        let token = code_token(&aula, code);
        bots.push(Client::join(&aula, &token, &format!("bot{i}")).await);
    }
    let token = code_token(&aula, code);
    let mut sixth = try_join(
        &aula,
        json!({"type": "join", "token": token, "name": "bot5"}),
    )
    .await;
    sixth.expect_error("class_full").await;
    assert_eq!(sixth.expect_close().await, 4001);

    let mut teacher = Client::join(&aula, &teacher_token, "Ms Rivera").await;
    assert_eq!(teacher.welcome["peers"].as_array().unwrap().len(), 5);
    let _co_teacher = Client::join(&aula, &teacher_token, "Mr Okafor").await;
    let mut third = try_join(
        &aula,
        json!({"type": "join", "token": teacher_token, "name": "T3"}),
    )
    .await;
    let e = third.expect_error("class_full").await;
    assert!(
        e["message"].as_str().unwrap().contains("teacher seat"),
        "{e}"
    );

    // The teacher sees the knocking: a student refused because the class is full.
    let token = code_token(&aula, code);
    let mut knock = try_join(
        &aula,
        json!({"type": "join", "token": token, "name": "Zoe"}),
    )
    .await;
    knock.expect_error("class_full").await;
    let notice = teacher.expect("join_refused").await;
    assert_eq!(notice["code"], "class_full", "{notice}");
    assert!(notice["count"].as_u64().unwrap() >= 1, "{notice}");
}

#[tokio::test]
async fn joins_from_one_address_are_rate_limited_but_teachers_and_resumes_get_in() {
    let aula = AulaBuilder::new(&temp_dir("join-rate"))
        .env("AULA_JOINING__JOIN_BURST_PER_IP", "4")
        .env("AULA_JOINING__JOINS_PER_IP_PER_SEC", "1")
        .start();
    let (teacher_token, student_token) = tokens(&aula.create_class("Maths"));
    let mut teacher = Client::join(&aula, &teacher_token, "Ms Rivera").await;
    let mut students = Vec::new();
    for i in 0..4 {
        students.push(Client::join(&aula, &student_token, &format!("S{i}")).await);
    }
    // A slow machine may refill a token or two while the burst is spent: bounded retries.
    let mut refused = None;
    for _ in 0..5 {
        let mut flood = try_join(
            &aula,
            json!({"type": "join", "token": student_token, "name": "bot"}),
        )
        .await;
        let answer = flood.recv().await;
        if answer["type"] == "error" {
            refused = Some((answer, flood));
            break;
        }
        students.push(flood);
    }
    let (e, mut flood) = refused.expect("the burst of 4 is spent within 5 more joins");
    assert_eq!(e["code"], "rate_limited", "{e}");
    assert!(e["message"].as_str().unwrap().contains("try again"), "{e}");
    assert_eq!(flood.expect_close().await, 4001);
    let notice = teacher.expect("join_refused").await;
    assert_eq!(notice["code"], "rate_limited", "{notice}");
    assert_eq!(notice["name"], "bot", "{notice}");

    // Garbage tokens take from the same bucket (they are refused as rate limited, not checked).
    let mut garbage = try_join(
        &aula,
        json!({"type": "join", "token": "x.y.z", "name": "g"}),
    )
    .await;
    garbage.expect_error("rate_limited").await;

    // A second teacher is never counted; a resume brings back someone already in.
    let _t2 = Client::join(&aula, &teacher_token, "Mr Okafor").await;
    let s0 = students.remove(0);
    let resume = s0.welcome["resume_token"].as_str().unwrap().to_string();
    drop(s0);
    let mut back = try_join(
        &aula,
        json!({"type": "join", "token": student_token, "name": "S0", "resume": resume}),
    )
    .await;
    let w = back.expect("welcome").await;
    assert_eq!(w["resumed"], true, "{w}");

    // The bucket refills at the sustained rate.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    Client::join(&aula, &student_token, "Late").await;
}

#[tokio::test]
async fn class_code_lookups_are_rate_limited_per_address() {
    let aula = AulaBuilder::new(&temp_dir("code-rate"))
        .env("AULA_JOINING__CODE_LOOKUP_BURST_PER_IP", "3")
        .env("AULA_JOINING__CODE_LOOKUPS_PER_IP_PER_SEC", "1")
        .start();
    let code = aula.create_class("Maths")["id"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..3 {
        code_token(&aula, &code);
    }
    let (status, body) = http(
        &aula,
        "POST",
        "/api/v1/join",
        Some(json!({"code": code})),
        None,
    );
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    // Unknown codes count too: guessing is what the limit slows.
    let (status, _) = http(
        &aula,
        "POST",
        "/api/v1/join",
        Some(json!({"code": "nope"})),
        None,
    );
    assert_eq!(status, 429);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    code_token(&aula, &code);
}

#[tokio::test]
async fn a_removed_student_stays_out_until_readmitted() {
    let aula = Aula::start(&temp_dir("ban"));
    let class = aula.create_class("Maths");
    let (teacher_token, student_token) = tokens(&class);
    let class_id = class["id"].as_str().unwrap();
    let mut teacher = Client::join(&aula, &teacher_token, "Ms Rivera").await;

    // Ana on the shared link, from a browser with an id; Ben with his own token.
    let ana_join =
        json!({"type": "join", "token": student_token, "name": "Ana", "browser": "b-ana-123"});
    let mut ana = try_join(&aula, ana_join.clone()).await;
    let ana_welcome = ana.expect("welcome").await;
    let ana_id = ana_welcome["id"].as_str().unwrap().to_string();
    let ana_resume = ana_welcome["resume_token"].as_str().unwrap().to_string();
    let (status, ben_link) = http(
        &aula,
        "POST",
        &format!("/api/v1/classes/{class_id}/tokens"),
        Some(json!({"role": "student", "name": "Ben"})),
        Some(ADMIN_KEY),
    );
    assert_eq!(status, 201);
    let ben_token = ben_link["token"].as_str().unwrap().to_string();
    let ben = Client::join(&aula, &ben_token, "ignored").await;

    for (peer, mut client) in [(ana_id.clone(), ana), (ben.id.clone(), ben)] {
        teacher.send(json!({"type": "remove", "peer": peer})).await;
        client.expect("removed").await;
        assert_eq!(client.expect_close().await, 4002);
    }
    teacher.expect("removed_list").await; // after Ana's removal
    let list = teacher.expect("removed_list").await;
    let names: Vec<&str> = list["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ana", "Ben"]);

    // Back in 5 s with the same link, the same browser: refused. Also with the resume token,
    // and Ben with his own token from another browser.
    let attempts = [
        ana_join.clone(),
        json!({"type": "join", "token": student_token, "name": "Ana2", "resume": ana_resume}),
        json!({"type": "join", "token": ben_token, "browser": "b-other"}),
    ];
    for attempt in attempts {
        let mut c = try_join(&aula, attempt).await;
        let e = c.expect_error("removed").await;
        assert!(e["message"].as_str().unwrap().contains("teacher"), "{e}");
        assert_eq!(c.expect_close().await, 4001);
    }
    let notice = teacher.expect("join_refused").await;
    assert_eq!(notice["code"], "removed", "{notice}");

    // A student cannot readmit; the teacher can, and Ana is back.
    let mut carla = Client::join(&aula, &student_token, "Carla").await;
    carla.send(json!({"type": "readmit", "peer": ana_id})).await;
    carla.expect_error("forbidden").await;
    teacher
        .send(json!({"type": "readmit", "peer": ana_id}))
        .await;
    let list = teacher.expect("removed_list").await;
    assert_eq!(list["removed"].as_array().unwrap().len(), 1, "{list}");
    let mut ana = try_join(&aula, ana_join).await;
    ana.expect("welcome").await;
}
