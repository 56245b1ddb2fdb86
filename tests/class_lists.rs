//! Class lists and personal links, over real sockets against the real binary: adding and pasting
//! students, their fixed names, removal as a ban of exactly that student, taking a student off
//! the list, the shared-link setting, the CSV download, and every limit.

mod common;

use common::*;
use serde_json::{json, Value};

fn students_path(class: &Value) -> String {
    format!("/api/v1/classes/{}/students", class["id"].as_str().unwrap())
}

/// Adds students (names or a paste) with the admin key; panics unless 201.
fn add(aula: &Aula, class: &Value, body: Value) -> Vec<Value> {
    let (status, answer) = http(
        aula,
        "POST",
        &students_path(class),
        Some(body),
        Some(ADMIN_KEY),
    );
    assert_eq!(status, 201, "{answer}");
    answer["students"].as_array().unwrap().clone()
}

fn token(student: &Value) -> String {
    student["link"]["token"].as_str().unwrap().to_string()
}

async fn try_join(aula: &Aula, join: Value) -> Client {
    let mut c = Client::connect(aula).await;
    c.send(join).await;
    c
}

#[tokio::test]
async fn a_personal_link_fixes_the_name_and_a_removal_bans_exactly_that_student() {
    let aula = Aula::start(&temp_dir("personal"));
    let class = aula.create_class("Maths");
    let teacher_token = class["teacher"]["token"].as_str().unwrap();
    let shared = class["student"]["token"].as_str().unwrap();
    let list = add(
        &aula,
        &class,
        json!({"names": ["Ana García", "Ben Okafor"]}),
    );
    assert_eq!(list.len(), 2);
    let (ana_link, ben_link) = (token(&list[0]), token(&list[1]));
    let ana_id = list[0]["id"].as_str().unwrap().to_string();
    assert!(ana_id.starts_with("st") && list[1]["id"] != list[0]["id"]);
    assert!(list[0]["link"]["url"]
        .as_str()
        .unwrap()
        .contains("/join#token="));

    let mut teacher = Client::join(&aula, teacher_token, "Ms Rivera").await;
    // The name sent in `join` is ignored: the link fixes it.
    let ana = Client::join(&aula, &ana_link, "The Teacher").await;
    assert_eq!(ana.welcome["name"], "Ana García");
    let joined = teacher.expect("peer_joined").await;
    assert_eq!(joined["peer"]["name"], "Ana García");

    // The list gives the same ids with fresh links; the new link is the same student.
    let (status, again) = http(&aula, "GET", &students_path(&class), None, Some(ADMIN_KEY));
    assert_eq!(status, 200);
    assert_eq!(again[0]["id"], ana_id.as_str());
    let ana_new_link = token(&again[0]);

    // Removed: Ana cannot come back with either of her links; Ben and the shared link can.
    teacher
        .send(json!({"type": "remove", "peer": ana.id}))
        .await;
    let mut ana = ana;
    ana.expect("removed").await;
    assert_eq!(ana.expect_close().await, 4002);
    for link in [&ana_link, &ana_new_link] {
        let mut c = try_join(&aula, json!({"type": "join", "token": link, "name": "x"})).await;
        c.expect_error("removed").await;
        assert_eq!(c.expect_close().await, 4001);
    }
    let ben = Client::join(&aula, &ben_link, "whatever").await;
    assert_eq!(ben.welcome["name"], "Ben Okafor");
    let carla = Client::join(&aula, shared, "Carla").await;
    assert_eq!(carla.welcome["name"], "Carla");

    // Taken off the list, Ben's link stops working (after he leaves).
    let (status, _) = http(
        &aula,
        "DELETE",
        &format!(
            "{}/{}",
            students_path(&class),
            list[1]["id"].as_str().unwrap()
        ),
        None,
        Some(ADMIN_KEY),
    );
    assert_eq!(status, 204);
    drop(ben);
    let mut c = try_join(&aula, json!({"type": "join", "token": ben_link})).await;
    c.expect_error("not_on_class_list").await;
    assert_eq!(c.expect_close().await, 4001);
    let (status, body) = http(
        &aula,
        "DELETE",
        &format!(
            "{}/{}",
            students_path(&class),
            list[1]["id"].as_str().unwrap()
        ),
        None,
        Some(ADMIN_KEY),
    );
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
}

#[tokio::test]
async fn with_shared_links_off_only_personal_links_and_teachers_get_in() {
    let aula = Aula::start(&temp_dir("shared-off"));
    let class = aula.create_class("Maths");
    let id = class["id"].as_str().unwrap();
    let teacher_token = class["teacher"]["token"].as_str().unwrap();
    let shared = class["student"]["token"].as_str().unwrap();
    let list = add(&aula, &class, json!({"names": ["Ana"]}));
    let settings = format!("/api/v1/classes/{id}/settings");
    let (status, body) = http(&aula, "GET", &settings, None, Some(ADMIN_KEY));
    assert_eq!((status, body), (200, json!({"shared_links": true})));

    // A teacher's class link works as the bearer token for her own class's settings.
    let (status, body) = http(
        &aula,
        "PATCH",
        &settings,
        Some(json!({"shared_links": false})),
        Some(teacher_token),
    );
    assert_eq!((status, body), (200, json!({"shared_links": false})));
    // The class's summary says so (the dashboard shows it), in the list and the class alike,
    // while another class keeps the default.
    let other = aula.create_class("Art");
    let (status, classes) = http(&aula, "GET", "/api/v1/classes", None, Some(ADMIN_KEY));
    assert_eq!(status, 200);
    let shared_of = |cid: &Value| {
        classes
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == *cid)
            .map(|c| c["shared_links"].clone())
    };
    assert_eq!(shared_of(&class["id"]), Some(json!(false)));
    assert_eq!(shared_of(&other["id"]), Some(json!(true)));
    let (status, detail) = http(
        &aula,
        "GET",
        &format!("/api/v1/classes/{id}"),
        None,
        Some(ADMIN_KEY),
    );
    assert_eq!((status, &detail["shared_links"]), (200, &json!(false)));

    let mut c = try_join(
        &aula,
        json!({"type": "join", "token": shared, "name": "Zed"}),
    )
    .await;
    let e = c.expect_error("personal_link_required").await;
    assert!(
        e["message"].as_str().unwrap().contains("personal link"),
        "{e}"
    );
    assert_eq!(c.expect_close().await, 4001);
    let (status, body) = http(
        &aula,
        "POST",
        "/api/v1/join",
        Some(json!({"code": id})),
        None,
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "personal_link_required");

    let _teacher = Client::join(&aula, teacher_token, "Ms Rivera").await;
    let ana = Client::join(&aula, &token(&list[0]), "").await;
    assert_eq!(ana.welcome["name"], "Ana");

    // The setting survives a restart.
    drop(ana);
    drop(_teacher);
    let dir = aula.data_dir.clone();
    drop(aula);
    let aula = Aula::start(&dir);
    let mut c = try_join(
        &aula,
        json!({"type": "join", "token": shared, "name": "Zed"}),
    )
    .await;
    c.expect_error("personal_link_required").await;
    let (status, _) = http(
        &aula,
        "PATCH",
        &settings,
        Some(json!({"shared_links": true})),
        Some(ADMIN_KEY),
    );
    assert_eq!(status, 200);
    Client::join(&aula, shared, "Zed").await;
}

#[tokio::test]
async fn a_pasted_list_and_its_csv_download() {
    let aula = Aula::start(&temp_dir("paste"));
    let class = aula.create_class("Maths");
    let list = add(
        &aula,
        &class,
        json!({"paste": "Name;Email\nAna García;ana@school.example\n\"Okafor, Ben\";\n=cmd|' /C calc'!A0;x\n"}),
    );
    let names: Vec<&str> = list.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Ana García", "Okafor, Ben", "=cmd|' /C calc'!A0"]);
    assert_eq!(list[0]["reference"], "ana@school.example");
    assert!(list[1].get("reference").is_none());

    let (status, kind, csv) = http_text(
        &aula,
        &format!("{}.csv", students_path(&class)),
        Some(ADMIN_KEY),
    );
    assert_eq!(status, 200);
    assert_eq!(kind, "text/csv; charset=utf-8");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "name,student_id,reference,link");
    let id = list[0]["id"].as_str().unwrap();
    assert!(
        lines[1].starts_with(&format!("Ana García,{id},ana@school.example,http://")),
        "{csv}"
    );
    assert!(lines[2].starts_with("\"Okafor, Ben\","), "{csv}");
    // A name that a spreadsheet would run as a formula is written as text.
    assert!(lines[3].starts_with("'=cmd"), "{csv}");
    assert_eq!(lines.len(), 4);

    // Without credentials, nothing; with a student's token, nothing either.
    let (status, _, _) = http_text(&aula, &format!("{}.csv", students_path(&class)), None);
    assert_eq!(status, 401);
    let student = token(&list[0]);
    let (status, _) = http(&aula, "GET", &students_path(&class), None, Some(&student));
    assert_eq!(status, 401);
    let (status, body) = http(
        &aula,
        "GET",
        "/api/v1/classes/nope/students",
        None,
        Some(ADMIN_KEY),
    );
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
}

#[tokio::test]
async fn class_list_limits_are_enforced() {
    let aula = Aula::start(&temp_dir("list-limits"));
    let class = aula.create_class("Maths");
    let path = students_path(&class);
    let post = |body: Value| http(&aula, "POST", &path, Some(body), Some(ADMIN_KEY));

    // A name longer than [limits] max_name_len (64), or with a hidden character: 400, naming
    // the line.
    let (status, body) = post(json!({"paste": format!("Ana\n{}\n", "x".repeat(65))}));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("line 2"),
        "{body}"
    );
    let (status, _) = post(json!({"names": ["B\u{202E}en"]}));
    assert_eq!(status, 400);
    let (status, _) = post(json!({"names": []}));
    assert_eq!(status, 400);

    // A paste over 64 KiB: 413.
    let (status, body) = post(json!({"paste": "Ana\n".repeat(16 * 1024 + 1)}));
    assert_eq!((status, &body["error"]["code"]), (413, &json!("too_large")));
    // A body over 256 KiB: 413 with a JSON error too.
    let (status, body) = post(json!({"names": vec!["x".repeat(60); 5000]}));
    assert_eq!(
        (status, &body["error"]["code"]),
        (413, &json!("too_large")),
        "{body}"
    );

    // 500 students per class: 500 fit, the 501st is refused; nothing partial is added.
    let names: Vec<String> = (0..499).map(|i| format!("Student {i}")).collect();
    assert_eq!(post(json!({"names": names})).0, 201);
    let (status, body) = post(json!({"names": ["One", "Two"]}));
    assert_eq!(
        (status, &body["error"]["code"]),
        (413, &json!("too_large")),
        "{body}"
    );
    assert_eq!(post(json!({"names": ["Last"]})).0, 201);
    let (status, _) = post(json!({"names": ["Too many"]}));
    assert_eq!(status, 413);
    let (_, list) = http(&aula, "GET", &path, None, Some(ADMIN_KEY));
    assert_eq!(list.as_array().unwrap().len(), 500);
}

#[tokio::test]
async fn one_student_comes_with_a_fresh_link_and_its_qr_code() {
    let aula = Aula::start(&temp_dir("student-card"));
    let class = aula.create_class("Maths");
    let list = add(
        &aula,
        &class,
        json!({"paste": "Ana García, ana@school.example"}),
    );
    let ana = &list[0];
    let path = format!("{}/{}", students_path(&class), ana["id"].as_str().unwrap());

    // On the page's address when it says so (the printed sheet), else the server's.
    let (status, card) = http(
        &aula,
        "GET",
        &format!("{path}?origin=http://10.1.2.3:8080"),
        None,
        Some(ADMIN_KEY),
    );
    assert_eq!(status, 200, "{card}");
    assert_eq!(card["id"], ana["id"]);
    assert_eq!(card["name"], "Ana García");
    assert_eq!(card["reference"], "ana@school.example");
    let url = card["link"]["url"].as_str().unwrap();
    let token = card["link"]["token"].as_str().unwrap();
    assert_eq!(url, format!("http://10.1.2.3:8080/join#token={token}"));
    assert!(card["qr_svg"].as_str().unwrap().contains("<svg"), "{card}");
    let joined = Client::join(&aula, token, "someone else").await;
    assert_eq!(joined.welcome["name"], "Ana García");
    let (status, card) = http(&aula, "GET", &path, None, Some(ADMIN_KEY));
    assert_eq!(status, 200);
    let server_join = |link: &Value| {
        let url = link["url"].as_str().unwrap();
        url[..url.find("#token=").unwrap()].to_string()
    };
    assert_eq!(server_join(&card["link"]), server_join(&ana["link"]));

    for (query, code) in [
        ("?origin=javascript:alert(1)", 400),
        ("?origin=http://a.example/path", 400),
        ("?colour=red", 400),
    ] {
        let (status, body) = http(
            &aula,
            "GET",
            &format!("{path}{query}"),
            None,
            Some(ADMIN_KEY),
        );
        assert_eq!(
            (status, &body["error"]["code"]),
            (code, &json!("bad_request")),
            "{query}: {body}"
        );
    }
    let (status, body) = http(
        &aula,
        "GET",
        &format!("{}/stnothere", students_path(&class)),
        None,
        Some(ADMIN_KEY),
    );
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
    let (status, _) = http(&aula, "GET", &path, None, None);
    assert_eq!(status, 401);

    // The CSV takes the same origin for its links.
    let csv_path = format!("{}.csv", students_path(&class));
    let (status, _, csv) = http_text(
        &aula,
        &format!("{csv_path}?origin=https://aula.school.example"),
        Some(ADMIN_KEY),
    );
    assert_eq!(status, 200);
    let row = csv.lines().nth(1).unwrap();
    assert!(
        row.starts_with(&format!(
            "Ana García,{},ana@school.example,https://aula.school.example/join#token=",
            ana["id"].as_str().unwrap()
        )),
        "{csv}"
    );
    let (status, _, body) = http_text(
        &aula,
        &format!("{csv_path}?origin=ftp://x"),
        Some(ADMIN_KEY),
    );
    assert_eq!(status, 400, "{body}");
}
