//! Staff accounts over real sockets: the CLI's setup link, choosing a password, signing in and
//! out, the session cookie's flags, sign-in throttling, CSRF refusals, a disabled account's
//! session, and the accounts API's permissions.

mod common;

use std::path::Path;
use std::process::Command;

use common::{temp_dir, Aula, AulaBuilder};
use serde_json::{json, Value};

/// An HTTP answer: status, JSON body (or null), the `Set-Cookie` header and `Retry-After`.
struct Answer {
    status: u16,
    body: Value,
    set_cookie: Option<String>,
    retry_after: Option<String>,
}

/// One request with any method and headers.
fn call(
    aula: &Aula,
    method: &str,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Answer {
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
    let text = match &body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            b.to_string()
        }
        None => String::new(),
    };
    let mut resp = agent.run(req.body(text).unwrap()).unwrap();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (set_cookie, retry_after) = (header("set-cookie"), header("retry-after"));
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        set_cookie,
        retry_after,
    }
}

const ADMIN: &[(&str, &str)] = &[("authorization", "Bearer test-admin-key-0123456789")];

/// A signed-in browser: its `Cookie` header and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

impl Session {
    /// Headers of a state change from the page: cookie, same Origin, CSRF token.
    fn change<'a>(&'a self, origin: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("cookie", self.cookie.as_str()),
            ("origin", origin),
            ("x-csrf-token", self.csrf.as_str()),
        ]
    }
}

fn origin(aula: &Aula) -> String {
    format!("http://{}", aula.addr)
}

/// The `name=value` part of a `Set-Cookie`.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

fn session_from(a: &Answer) -> Session {
    assert_eq!(a.status, 200, "{}", a.body);
    Session {
        cookie: cookie_pair(a.set_cookie.as_deref().expect("a session cookie")),
        csrf: a.body["csrf_token"].as_str().unwrap().to_string(),
    }
}

/// Adds an account with the admin key, chooses its password through the setup link, and
/// returns the session that starts.
fn account_with_password(
    aula: &Aula,
    email: &str,
    role: &str,
    password: &str,
) -> (String, Session) {
    let a = call(
        aula,
        "POST",
        "/api/v1/accounts",
        Some(json!({"email": email, "name": email, "role": role})),
        ADMIN,
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.body["id"].as_str().unwrap().to_string();
    let token = a.body["setup_url"]
        .as_str()
        .unwrap()
        .split("#token=")
        .nth(1)
        .unwrap()
        .to_string();
    let set = call(
        aula,
        "POST",
        "/api/v1/setup",
        Some(json!({"token": token, "password": password})),
        &[],
    );
    (id, session_from(&set))
}

fn sign_in(aula: &Aula, email: &str, password: &str) -> Answer {
    call(
        aula,
        "POST",
        "/api/v1/session",
        Some(json!({"email": email, "password": password})),
        &[],
    )
}

fn cli(data_dir: &Path, public_url: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_aula"))
        .arg("account")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .current_dir(data_dir)
        .env("AULA_PUBLIC_URL", public_url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_cli_setup_link_lets_a_teacher_choose_a_password_and_sign_in() {
    let dir = temp_dir("accounts-cli");
    let aula = Aula::start(&dir);
    let base = origin(&aula);
    let out = cli(
        &dir,
        &base,
        &[
            "add",
            "--role",
            "teacher",
            "--name",
            "Ms Rivera",
            "--email",
            "Rivera@School.example",
        ],
    );
    let url = out
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{base}/setup#token=")))
        .unwrap_or_else(|| panic!("no setup link in {out}"))
        .to_string();
    assert!(out.contains("valid 24 h"), "{out}");
    assert!(cli(&dir, &base, &["list"]).contains("rivera@school.example"));

    let info = call(
        &aula,
        "POST",
        "/api/v1/setup/info",
        Some(json!({"token": url})),
        &[],
    );
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.body["email"], "rivera@school.example");
    assert_eq!(info.body["name"], "Ms Rivera");

    let weak = call(
        &aula,
        "POST",
        "/api/v1/setup",
        Some(json!({"token": url, "password": "password123"})),
        &[],
    );
    assert_eq!(
        (weak.status, weak.body["error"]["code"].as_str()),
        (400, Some("weak_password"))
    );
    let short = call(
        &aula,
        "POST",
        "/api/v1/setup",
        Some(json!({"token": url, "password": "short"})),
        &[],
    );
    assert_eq!(short.body["error"]["code"], "weak_password");

    let set = call(
        &aula,
        "POST",
        "/api/v1/setup",
        Some(json!({"token": url, "password": "violet staircase 42"})),
        &[],
    );
    let cookie = set.set_cookie.clone().unwrap();
    assert!(cookie.starts_with("aula-session="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(
            cookie.split("; ").any(|f| f == flag),
            "{flag} missing: {cookie}"
        );
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let s = session_from(&set);
    let me = call(
        &aula,
        "GET",
        "/api/v1/session",
        None,
        &[("cookie", &s.cookie)],
    );
    assert_eq!(me.status, 200);
    assert_eq!(me.body["account"]["email"], "rivera@school.example");
    assert_eq!(me.body["account"]["role"], "teacher");
    assert!(me.body["account"].get("password_hash").is_none());
    assert_eq!(me.body["csrf_token"], s.csrf.as_str());

    // The link works once.
    let again = call(
        &aula,
        "POST",
        "/api/v1/setup",
        Some(json!({"token": url, "password": "another fine phrase"})),
        &[],
    );
    assert_eq!(
        (again.status, again.body["error"]["code"].as_str()),
        (404, Some("setup_link_invalid"))
    );

    // Sign in with the new password (any case of the email), then sign out.
    let fresh = session_from(&sign_in(
        &aula,
        "RIVERA@school.example",
        "violet staircase 42",
    ));
    let out = call(
        &aula,
        "DELETE",
        "/api/v1/session",
        None,
        &fresh.change(&base),
    );
    assert_eq!(out.status, 204);
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
    let gone = call(
        &aula,
        "GET",
        "/api/v1/session",
        None,
        &[("cookie", &fresh.cookie)],
    );
    assert_eq!(
        (gone.status, gone.body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    // The other session lives on.
    assert_eq!(
        call(
            &aula,
            "GET",
            "/api/v1/session",
            None,
            &[("cookie", &s.cookie)]
        )
        .status,
        200
    );

    // Reset: a new link, and the old password and sessions stop working.
    let out = cli(&dir, &base, &["reset", "rivera@school.example"]);
    assert!(out.contains("/setup#token="), "{out}");
    assert_eq!(
        call(
            &aula,
            "GET",
            "/api/v1/session",
            None,
            &[("cookie", &s.cookie)]
        )
        .status,
        401
    );
    assert_eq!(
        sign_in(&aula, "rivera@school.example", "violet staircase 42").status,
        401
    );
}

#[test]
fn wrong_passwords_are_throttled_per_account_and_per_address() {
    let dir = temp_dir("accounts-throttle");
    let aula = AulaBuilder::new(&dir)
        .env("AULA_ACCOUNTS__SIGN_IN_FAILURES_PER_ACCOUNT", "3")
        .env("AULA_ACCOUNTS__SIGN_IN_FAILURES_PER_IP", "8")
        .start();
    account_with_password(
        &aula,
        "kim@school.example",
        "teacher",
        "a long enough phrase",
    );
    for _ in 0..3 {
        let a = sign_in(&aula, "kim@school.example", "wrong guess here");
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (401, Some("invalid_credentials"))
        );
        assert!(a.set_cookie.is_none());
    }
    let a = sign_in(&aula, "kim@school.example", "wrong guess here");
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert!(a.retry_after.is_some());
    // Even the right password waits now.
    assert_eq!(
        sign_in(&aula, "kim@school.example", "a long enough phrase").status,
        429
    );
    // An unknown email gets the same answers as a real one.
    for _ in 0..3 {
        let a = sign_in(&aula, "nobody@school.example", "wrong guess here");
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (401, Some("invalid_credentials"))
        );
    }
    assert_eq!(sign_in(&aula, "nobody@school.example", "x").status, 429);
    // The address has spent 6 of its 8: two more failures, then everything from it waits.
    assert_eq!(
        sign_in(&aula, "a@school.example", "wrong guess here").status,
        401
    );
    assert_eq!(
        sign_in(&aula, "b@school.example", "wrong guess here").status,
        401
    );
    let a = sign_in(&aula, "c@school.example", "wrong guess here");
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
}

#[test]
fn csrf_is_refused_and_a_disabled_accounts_session_stops_working() {
    let dir = temp_dir("accounts-csrf");
    let aula = Aula::start(&dir);
    let base = origin(&aula);
    let (id, s) = account_with_password(
        &aula,
        "lee@school.example",
        "teacher",
        "correct horse staple",
    );

    // A state change without the CSRF token, or from another site, is refused.
    let no_token = call(
        &aula,
        "DELETE",
        "/api/v1/session",
        None,
        &[("cookie", &s.cookie), ("origin", &base)],
    );
    assert_eq!(
        (no_token.status, no_token.body["error"]["code"].as_str()),
        (403, Some("csrf_failed"))
    );
    let mut evil = s.change("https://evil.example");
    let cross = call(&aula, "DELETE", "/api/v1/session", None, &evil);
    assert_eq!(
        (cross.status, cross.body["error"]["code"].as_str()),
        (403, Some("csrf_failed"))
    );
    evil[1].1 = &base;
    evil[2].1 = "0000";
    assert_eq!(
        call(&aula, "DELETE", "/api/v1/session", None, &evil).status,
        403
    );
    // Signing in from another site's page is refused too.
    let a = call(
        &aula,
        "POST",
        "/api/v1/session",
        Some(json!({"email": "lee@school.example", "password": "correct horse staple"})),
        &[("origin", "https://evil.example")],
    );
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (403, Some("csrf_failed"))
    );
    assert_eq!(
        call(
            &aula,
            "GET",
            "/api/v1/session",
            None,
            &[("cookie", &s.cookie)]
        )
        .status,
        200
    );

    // A teacher cannot manage accounts; nobody without credentials can.
    let new = json!({"email": "x@school.example", "name": "X"});
    let a = call(
        &aula,
        "POST",
        "/api/v1/accounts",
        Some(new.clone()),
        &s.change(&base),
    );
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    assert_eq!(
        call(&aula, "GET", "/api/v1/accounts", None, &[]).status,
        401
    );
    let dup = call(
        &aula,
        "POST",
        "/api/v1/accounts",
        Some(json!({"email": "LEE@school.example", "name": "Lee"})),
        ADMIN,
    );
    assert_eq!(
        (dup.status, dup.body["error"]["code"].as_str()),
        (409, Some("email_taken"))
    );

    // Disabling ends the session at once; the right password then gets account_disabled.
    let path = format!("/api/v1/accounts/{id}");
    let a = call(
        &aula,
        "PATCH",
        &path,
        Some(json!({"disabled": true})),
        ADMIN,
    );
    assert_eq!((a.status, a.body["disabled"].as_bool()), (200, Some(true)));
    assert_eq!(
        call(
            &aula,
            "GET",
            "/api/v1/session",
            None,
            &[("cookie", &s.cookie)]
        )
        .status,
        401
    );
    let a = sign_in(&aula, "lee@school.example", "correct horse staple");
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (403, Some("account_disabled"))
    );
    call(
        &aula,
        "PATCH",
        &path,
        Some(json!({"disabled": false})),
        ADMIN,
    );
    assert_eq!(
        call(
            &aula,
            "GET",
            "/api/v1/session",
            None,
            &[("cookie", &s.cookie)]
        )
        .status,
        401,
        "an ended session stays ended"
    );
    assert_eq!(
        sign_in(&aula, "lee@school.example", "correct horse staple").status,
        200
    );

    // The admin lists, reads and deletes accounts.
    let all = call(&aula, "GET", "/api/v1/accounts", None, ADMIN);
    assert_eq!(all.body.as_array().unwrap().len(), 1);
    assert_eq!(
        call(&aula, "GET", &path, None, ADMIN).body["email"],
        "lee@school.example"
    );
    assert_eq!(call(&aula, "DELETE", &path, None, ADMIN).status, 204);
    assert_eq!(call(&aula, "GET", &path, None, ADMIN).status, 404);
    assert_eq!(
        sign_in(&aula, "lee@school.example", "correct horse staple").status,
        401
    );
}

#[test]
fn the_cookie_is_secure_when_the_server_is_reached_over_https() {
    let dir = temp_dir("accounts-secure");
    let aula = AulaBuilder::new(&dir).dev_tls().start();
    let (_, _) =
        account_with_password(&aula, "ana@school.example", "admin", "a long enough phrase");
    let a = sign_in(&aula, "ana@school.example", "a long enough phrase");
    let cookie = a.set_cookie.unwrap();
    assert!(cookie.split("; ").any(|f| f == "Secure"), "{cookie}");
    assert_eq!(a.body["account"]["role"], "admin");
}

#[test]
fn teachers_own_their_classes_and_cannot_touch_others() {
    let dir = temp_dir("accounts-owners");
    let aula = Aula::start(&dir);
    let base = origin(&aula);
    let (rivera_id, rivera) = account_with_password(
        &aula,
        "rivera@school.example",
        "teacher",
        "violet staircase 42",
    );
    let (_, kim) = account_with_password(
        &aula,
        "kim@school.example",
        "teacher",
        "quiet harbour lamps",
    );
    let (_, head) =
        account_with_password(&aula, "head@school.example", "admin", "many small rivers");

    // The start page learns whether a teacher is signed in (then it needs no admin key).
    let a = call(
        &aula,
        "GET",
        "/api/v1/info",
        None,
        &[("cookie", &rivera.cookie)],
    );
    assert_eq!((a.status, &a.body["signed_in"]), (200, &json!(true)));
    let a = call(&aula, "GET", "/api/v1/info", None, &[]);
    assert_eq!((a.status, &a.body["signed_in"]), (200, &json!(false)));

    // No credentials: 401 (open class creation is off).
    let a = call(
        &aula,
        "POST",
        "/api/v1/classes",
        Some(json!({"name": "Maths"})),
        &[],
    );
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    // A cookie without the CSRF token: refused.
    let a = call(
        &aula,
        "POST",
        "/api/v1/classes",
        Some(json!({"name": "Maths"})),
        &[("cookie", &rivera.cookie)],
    );
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (403, Some("csrf_failed"))
    );

    let a = call(
        &aula,
        "POST",
        "/api/v1/classes",
        Some(json!({"name": "Maths 3B"})),
        &rivera.change(&base),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let maths = a.body["id"].as_str().unwrap().to_string();
    assert!(a.body["teacher"]["url"]
        .as_str()
        .unwrap()
        .contains("#token="));
    let a = call(
        &aula,
        "POST",
        "/api/v1/classes",
        Some(json!({"name": "Art"})),
        &kim.change(&base),
    );
    let art = a.body["id"].as_str().unwrap().to_string();
    let a = call(
        &aula,
        "POST",
        "/api/v1/classes",
        Some(json!({"name": "Assembly"})),
        ADMIN,
    );
    assert_eq!(a.status, 201);
    assert!(a.body.get("owner").is_none() || a.body["owner"].is_null());

    // Each teacher lists only her own; admins (key or account) see all.
    let names = |headers: &[(&str, &str)]| -> Vec<String> {
        let a = call(&aula, "GET", "/api/v1/classes", None, headers);
        assert_eq!(a.status, 200, "{}", a.body);
        a.body
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&[("cookie", &rivera.cookie)]), ["Maths 3B"]);
    assert_eq!(names(&[("cookie", &kim.cookie)]), ["Art"]);
    assert_eq!(names(&[("cookie", &head.cookie)]).len(), 3);
    assert_eq!(names(ADMIN).len(), 3);
    assert_eq!(call(&aula, "GET", "/api/v1/classes", None, &[]).status, 401);
    let one = call(
        &aula,
        "GET",
        &format!("/api/v1/classes/{maths}"),
        None,
        &[("cookie", &rivera.cookie)],
    );
    assert_eq!(one.body["owner"], rivera_id.as_str());

    // Kim cannot read, rename, mint links for or delete Ms Rivera's class.
    let path = format!("/api/v1/classes/{maths}");
    let forbidden = |a: Answer| {
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{}",
            a.body
        )
    };
    forbidden(call(&aula, "GET", &path, None, &[("cookie", &kim.cookie)]));
    forbidden(call(
        &aula,
        "PATCH",
        &path,
        Some(json!({"name": "Mine now"})),
        &kim.change(&base),
    ));
    forbidden(call(
        &aula,
        "POST",
        &format!("{path}/tokens"),
        Some(json!({"role": "teacher"})),
        &kim.change(&base),
    ));
    forbidden(call(&aula, "DELETE", &path, None, &kim.change(&base)));
    assert_eq!(
        call(&aula, "GET", &path, None, &[("cookie", &rivera.cookie)]).body["name"],
        "Maths 3B"
    );

    // Her own: renamed, a personal link, deleted.
    let a = call(
        &aula,
        "PATCH",
        &path,
        Some(json!({"name": "Maths 3C"})),
        &rivera.change(&base),
    );
    assert_eq!((a.status, a.body["name"].as_str()), (200, Some("Maths 3C")));
    let a = call(
        &aula,
        "POST",
        &format!("{path}/tokens"),
        Some(json!({"role": "student", "name": "Ana"})),
        &rivera.change(&base),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(
        call(&aula, "DELETE", &path, None, &rivera.change(&base)).status,
        204
    );
    assert_eq!(
        call(&aula, "GET", &path, None, &[("cookie", &rivera.cookie)]).status,
        404
    );
    // The admin account manages Kim's class.
    let a = call(
        &aula,
        "PATCH",
        &format!("/api/v1/classes/{art}"),
        Some(json!({"name": "Art 2"})),
        &head.change(&base),
    );
    assert_eq!(a.status, 200);
}

#[test]
fn open_class_creation_still_works_without_credentials() {
    let dir = temp_dir("accounts-open");
    let aula = AulaBuilder::new(&dir)
        .env("AULA_OPEN_CLASS_CREATION", "true")
        .start();
    let a = call(
        &aula,
        "POST",
        "/api/v1/classes",
        Some(json!({"name": "Open"})),
        &[],
    );
    assert_eq!(a.status, 201, "{}", a.body);
    // Listing still needs credentials.
    assert_eq!(call(&aula, "GET", "/api/v1/classes", None, &[]).status, 401);
}
