//! `POST /api/v1/join-info`: what a class link leads to before joining (the join form shows the
//! class name), over real sockets against the real binary.

mod common;

use common::*;
use serde_json::json;

fn info(aula: &Aula, token: &str) -> (u16, serde_json::Value) {
    http(
        aula,
        "POST",
        "/api/v1/join-info",
        Some(json!({ "token": token })),
        None,
    )
}

#[tokio::test]
async fn a_valid_link_tells_its_class_and_role_without_joining() {
    let aula = Aula::start(&temp_dir("join-info"));
    let class = aula.create_class("Year 9 Physics");
    let id = class["id"].as_str().unwrap();
    for role in ["teacher", "student"] {
        let (status, body) = info(&aula, class[role]["token"].as_str().unwrap());
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["class"]["name"], "Year 9 Physics", "{body}");
        assert_eq!(body["class"]["id"], id, "{body}");
        assert_eq!(body["role"], role, "{body}");
        assert_eq!(body["expires_at"], class[role]["expires_at"], "{body}");
        assert!(body.get("name").is_none(), "{body}");
    }
    // A personal token says the name it fixes.
    let (status, personal) = http(
        &aula,
        "POST",
        &format!("/api/v1/classes/{id}/tokens"),
        Some(json!({"role": "student", "name": "Ana"})),
        Some(ADMIN_KEY),
    );
    assert_eq!(status, 201, "{personal}");
    let (status, body) = info(&aula, personal["token"].as_str().unwrap());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Ana");
    // Nobody joined: the class is still empty.
    let (_, detail) = http(
        &aula,
        "GET",
        &format!("/api/v1/classes/{id}"),
        None,
        Some(ADMIN_KEY),
    );
    assert_eq!(detail["peers"], 0, "{detail}");
}

#[tokio::test]
async fn forged_expired_and_deleted_links_get_the_join_codes() {
    let dir = temp_dir("join-info-bad");
    let log = dir.join("server.log");
    let aula = AulaBuilder::new(&dir)
        .log_file(&log)
        .env("RUST_LOG", "debug")
        .start();
    let class = aula.create_class("Maths");
    let id = class["id"].as_str().unwrap().to_string();
    let student = class["student"]["token"].as_str().unwrap().to_string();

    let mut parts: Vec<&str> = student.split('.').collect();
    let forged_sig = "A".repeat(43);
    parts[2] = &forged_sig;
    for bad in [parts.join("."), "not-a-token".to_string(), "x".repeat(5000)] {
        let (status, body) = info(&aula, &bad);
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["code"], "invalid_token", "{body}");
    }

    let (_, short) = http(
        &aula,
        "POST",
        &format!("/api/v1/classes/{id}/tokens"),
        Some(json!({"role": "student", "ttl_secs": 1})),
        Some(ADMIN_KEY),
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body) = info(&aula, short["token"].as_str().unwrap());
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "token_expired", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );

    let (status, body) = http(
        &aula,
        "POST",
        "/api/v1/join-info",
        Some(json!({"code": "abc"})),
        None,
    );
    assert_eq!(status, 400, "{body}");

    let (status, _) = http(
        &aula,
        "DELETE",
        &format!("/api/v1/classes/{id}"),
        None,
        Some(ADMIN_KEY),
    );
    assert_eq!(status, 204);
    let (status, body) = info(&aula, &student);
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "class_not_found", "{body}");

    // The token never reaches the server's log.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.is_empty(), "the server logged at debug level");
    assert!(!text.contains(&student), "a token in the log");
}

#[tokio::test]
async fn link_lookups_are_rate_limited_per_address() {
    let aula = AulaBuilder::new(&temp_dir("join-info-rate"))
        .env("AULA_JOINING__CODE_LOOKUP_BURST_PER_IP", "3")
        .env("AULA_JOINING__CODE_LOOKUPS_PER_IP_PER_SEC", "1")
        .start();
    let class = aula.create_class("Maths");
    let student = class["student"]["token"].as_str().unwrap();
    let mut refused = None;
    // A slow machine may refill a token while the burst is spent: bounded tries.
    for _ in 0..8 {
        let (status, body) = info(&aula, student);
        if status == 429 {
            refused = Some(body);
            break;
        }
        assert_eq!(status, 200, "{body}");
    }
    let body = refused.expect("refused once the burst is spent");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
}

#[tokio::test]
async fn a_teacher_gets_a_fresh_student_link_with_its_qr_code_and_a_student_does_not() {
    let aula = Aula::start(&temp_dir("invite"));
    let class = aula.create_class("Art");
    let id = class["id"].as_str().unwrap();
    let teacher = class["teacher"]["token"].as_str().unwrap();
    let (status, body) = http(
        &aula,
        "POST",
        "/api/v1/invite",
        Some(json!({"token": teacher, "origin": "http://10.0.0.5:8080"})),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"], id);
    assert_eq!(body["class"]["name"], "Art");
    let url = body["student"]["url"].as_str().unwrap();
    let token = body["student"]["token"].as_str().unwrap();
    assert_eq!(url, format!("http://10.0.0.5:8080/join#token={token}"));
    assert!(body["qr_svg"].as_str().unwrap().contains("<svg"), "{body}");
    assert!((1..=40).contains(&body["qr_version"].as_i64().unwrap()));
    let (status, info) = info(&aula, token);
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["role"], "student", "the link is a student's");

    let student = class["student"]["token"].as_str().unwrap();
    let (status, body) = http(
        &aula,
        "POST",
        "/api/v1/invite",
        Some(json!({ "token": student })),
        None,
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    let (status, body) = http(
        &aula,
        "POST",
        "/api/v1/invite",
        Some(json!({"token": teacher, "origin": "http://evil/path?x"})),
        None,
    );
    assert_eq!(status, 400, "{body}");
}
