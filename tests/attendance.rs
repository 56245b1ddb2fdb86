//! Attendance records over real sockets against the real binary: a lesson's attendance is stored
//! when a teacher ends it (names, class-list ids, times, reconnects), listed and downloaded as
//! CSV, deleted on request, and purged past `[attendance] retention_days`; a signed-in teacher
//! reads and deletes her own classes' attendance and gets 403 on another teacher's.

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

    // Kept over a restart with the default retention (90 days), which the server says...
    let aula = Aula::start(&dir);
    sessions(&aula, &id, 1).await;
    let (status, info) = http(&aula, "GET", "/api/v1/info", None, None);
    assert_eq!(
        (status, &info["attendance_retention_days"]),
        (200, &json!(90))
    );
    drop(aula);
    // ...and deleted at start with a retention of 0, which also records no new lesson.
    let aula = AulaBuilder::new(&dir)
        .env("AULA_ATTENDANCE__RETENTION_DAYS", "0")
        .start();
    sessions(&aula, &id, 0).await;
    let (_, info) = http(&aula, "GET", "/api/v1/info", None, None);
    assert_eq!(info["attendance_retention_days"], 0);
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

/// One request with a browser's headers (cookie, Origin, CSRF token): (status, body as text).
fn call(
    aula: &Aula,
    method: &str,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .build()
        .into();
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(aula.http(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let text = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            b.to_string()
        }
        None => String::new(),
    };
    let mut resp = agent.run(req.body(text).unwrap()).unwrap();
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default())
}

/// A signed-in teacher's browser: its session cookie and CSRF token.
struct Teacher {
    cookie: String,
    csrf: String,
}

impl Teacher {
    /// Adds a teacher account with the admin key and chooses her password through the setup
    /// link, which signs her in.
    fn add(aula: &Aula, email: &str, password: &str) -> Teacher {
        let (status, account) = http(
            aula,
            "POST",
            "/api/v1/accounts",
            Some(json!({"email": email, "name": email, "role": "teacher"})),
            Some(ADMIN_KEY),
        );
        assert_eq!(status, 201, "{account}");
        let url = account["setup_url"].as_str().unwrap();
        let token = url.split("#token=").nth(1).unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = agent
            .post(&aula.http("/api/v1/setup"))
            .header("content-type", "application/json")
            .send(json!({"token": token, "password": password}).to_string())
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let cookie = resp.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_string();
        let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
        Teacher {
            cookie,
            csrf: body["csrf_token"].as_str().unwrap().to_string(),
        }
    }

    /// Headers of a GET from her page.
    fn read(&self) -> Vec<(&str, &str)> {
        vec![("cookie", self.cookie.as_str())]
    }

    /// Headers of a state change from her page: cookie, same Origin, CSRF token.
    fn change<'a>(&'a self, origin: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("cookie", self.cookie.as_str()),
            ("origin", origin),
            ("x-csrf-token", self.csrf.as_str()),
        ]
    }
}

#[tokio::test]
async fn a_teacher_cannot_read_or_delete_another_teachers_attendance() {
    let aula = Aula::start(&temp_dir("attendance-owners"));
    let origin = format!("http://{}", aula.addr);
    let rivera = Teacher::add(&aula, "rivera@school.example", "violet staircase 42");
    let kim = Teacher::add(&aula, "kim@school.example", "quiet harbour lamps");
    let (status, body) = call(
        &aula,
        "POST",
        "/api/v1/classes",
        Some(json!({"name": "Maths 3B"})),
        &rivera.change(&origin),
    );
    assert_eq!(status, 201, "{body}");
    let class: Value = serde_json::from_str(&body).unwrap();
    let id = class["id"].as_str().unwrap();
    run_lesson(&aula, &class).await;
    let sid = sessions(&aula, id, 1).await[0]["id"].as_i64().unwrap();

    let list = format!("/api/v1/classes/{id}/sessions");
    let one = format!("{list}/{sid}");
    let csv = format!("{one}/attendance.csv");
    let forbidden = |(status, body): (u16, String)| {
        assert_eq!(status, 403, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
    };
    forbidden(call(&aula, "GET", &list, None, &kim.read()));
    forbidden(call(&aula, "GET", &csv, None, &kim.read()));
    forbidden(call(&aula, "DELETE", &one, None, &kim.change(&origin)));
    forbidden(call(&aula, "DELETE", &list, None, &kim.change(&origin)));
    // Nothing was deleted: the owner still reads the lesson and its CSV.
    let (status, body) = call(&aula, "GET", &list, None, &rivera.read());
    assert_eq!(status, 200, "{body}");
    let lessons: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(lessons.as_array().unwrap().len(), 1);
    assert_eq!(lessons[0]["attendance"].as_array().unwrap().len(), 3);
    let (status, body) = call(&aula, "GET", &csv, None, &rivera.read());
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\nAna García,st"), "{body}");

    // Her deletes need the CSRF token; with it, one lesson and then all go.
    let (status, _) = call(&aula, "DELETE", &one, None, &rivera.read());
    assert_eq!(status, 403);
    let mut teacher = Client::join(
        &aula,
        class["teacher"]["token"].as_str().unwrap(),
        "Ms Rivera",
    )
    .await;
    teacher.send(json!({"type": "end"})).await;
    teacher.expect("class_ended").await;
    sessions(&aula, id, 2).await;
    assert_eq!(
        call(&aula, "DELETE", &one, None, &rivera.change(&origin)).0,
        204
    );
    sessions(&aula, id, 1).await;
    assert_eq!(
        call(&aula, "DELETE", &list, None, &rivera.change(&origin)).0,
        204
    );
    sessions(&aula, id, 0).await;
}
