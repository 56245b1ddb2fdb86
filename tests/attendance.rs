//! Attendance records over real sockets against the real binary: a lesson's attendance is stored
//! when a teacher ends it (names, class-list ids, times, reconnects), listed and downloaded as
//! CSV, deleted on request, and purged past `[attendance] retention_days`.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// The class's sessions, once the server's next tick has recorded the ended lesson.
async fn sessions(aula: &Aula, id: &str, want: usize) -> Vec<Value> {
    for _ in 0..50 {
        let (status, body) = http(
            aula,
            "GET",
            &format!("/api/v1/classes/{id}/sessions"),
            None,
            Some(ADMIN_KEY),
        );
        assert_eq!(status, 200, "{body}");
        if body.as_array().unwrap().len() == want {
            return body.as_array().unwrap().clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the class never had {want} sessions");
}

/// A lesson: a teacher, a class-list student who drops once and resumes, a shared-link student;
/// the teacher ends it.
async fn run_lesson(aula: &Aula, class: &Value) {
    let id = class["id"].as_str().unwrap();
    let (status, added) = http(
        aula,
        "POST",
        &format!("/api/v1/classes/{id}/students"),
        Some(json!({"names": ["Ana García"]})),
        Some(ADMIN_KEY),
    );
    assert_eq!(status, 201);
    let ana_link = added["students"][0]["link"]["token"].as_str().unwrap();
    let mut teacher = Client::join(
        aula,
        class["teacher"]["token"].as_str().unwrap(),
        "Ms Rivera",
    )
    .await;
    let ana = Client::join(aula, ana_link, "x").await;
    let resume = ana.welcome["resume_token"].as_str().unwrap().to_string();
    drop(ana);
    let mut back = Client::connect(aula).await;
    back.send(json!({"type": "join", "token": ana_link, "resume": resume}))
        .await;
    assert_eq!(back.expect("welcome").await["resumed"], true);
    let _ben = Client::join(aula, class["student"]["token"].as_str().unwrap(), "Ben").await;
    teacher.send(json!({"type": "end"})).await;
    teacher.expect("class_ended").await;
}

#[tokio::test]
async fn an_ended_lesson_is_recorded_listed_downloaded_and_deleted() {
    let aula = Aula::start(&temp_dir("attendance"));
    let class = aula.create_class("Maths");
    let id = class["id"].as_str().unwrap();
    assert!(sessions(&aula, id, 0).await.is_empty());
    run_lesson(&aula, &class).await;

    let list = sessions(&aula, id, 1).await;
    let session = &list[0];
    let people = session["attendance"].as_array().unwrap();
    let seen: Vec<(&str, &str, u64)> = people
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap(),
                a["role"].as_str().unwrap(),
                a["reconnects"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("Ms Rivera", "teacher", 0),
            ("Ana García", "student", 1),
            ("Ben", "student", 0)
        ]
    );
    assert!(people[1]["student"].as_str().unwrap().starts_with("st"));
    assert!(people[2].get("student").is_none());
    let (started, ended) = (
        session["started"].as_u64().unwrap(),
        session["ended"].as_u64().unwrap(),
    );
    assert!(started <= people[1]["joined"].as_u64().unwrap() && ended >= started);

    let sid = session["id"].as_i64().unwrap();
    let path = format!("/api/v1/classes/{id}/sessions/{sid}/attendance.csv");
    let (status, kind, csv) = http_text(&aula, &path, Some(ADMIN_KEY));
    assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "name,student_id,role,joined_utc,left_utc,minutes_present,reconnects"
    );
    let ana: Vec<&str> = lines[2].split(',').collect();
    assert_eq!(ana[0], "Ana García");
    assert_eq!(ana[1], people[1]["student"].as_str().unwrap());
    assert_eq!(ana[2], "student");
    assert!(ana[3].ends_with('Z') && ana[3].len() == 20, "{csv}");
    assert_eq!((ana[5], ana[6]), ("0", "1"));
    assert_eq!(lines.len(), 4);
    let (status, _, _) = http_text(&aula, &path, None);
    assert_eq!(status, 401);

    // A second lesson; then one deleted, then all.
    let mut teacher = Client::join(
        &aula,
        class["teacher"]["token"].as_str().unwrap(),
        "Ms Rivera",
    )
    .await;
    teacher.send(json!({"type": "end"})).await;
    teacher.expect("class_ended").await;
    let list = sessions(&aula, id, 2).await;
    assert_eq!(list[1]["id"].as_i64().unwrap(), sid, "newest first");
    let one = format!("/api/v1/classes/{id}/sessions/{sid}");
    assert_eq!(http(&aula, "DELETE", &one, None, Some(ADMIN_KEY)).0, 204);
    assert_eq!(http(&aula, "DELETE", &one, None, Some(ADMIN_KEY)).0, 404);
    let (status, _, _) = http_text(&aula, &path, Some(ADMIN_KEY));
    assert_eq!(status, 404);
    sessions(&aula, id, 1).await;
    let all = format!("/api/v1/classes/{id}/sessions");
    assert_eq!(http(&aula, "DELETE", &all, None, Some(ADMIN_KEY)).0, 204);
    sessions(&aula, id, 0).await;
}

#[tokio::test]
async fn attendance_past_its_retention_is_purged() {
    let dir = temp_dir("retention");
    let aula = Aula::start(&dir);
    let class = aula.create_class("Maths");
    let id = class["id"].as_str().unwrap().to_string();
    run_lesson(&aula, &class).await;
    sessions(&aula, &id, 1).await;
    drop(aula);

    // Kept over a restart with the default retention (90 days)...
    let aula = Aula::start(&dir);
    sessions(&aula, &id, 1).await;
    drop(aula);
    // ...and deleted at start with a retention of 0, which also records no new lesson.
    let aula = AulaBuilder::new(&dir)
        .env("AULA_ATTENDANCE__RETENTION_DAYS", "0")
        .start();
    sessions(&aula, &id, 0).await;
    let mut teacher = Client::join(
        &aula,
        class["teacher"]["token"].as_str().unwrap(),
        "Ms Rivera",
    )
    .await;
    teacher.send(json!({"type": "end"})).await;
    teacher.expect("class_ended").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    sessions(&aula, &id, 0).await;
}
