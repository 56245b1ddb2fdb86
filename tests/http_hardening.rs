//! The HTTP listeners and the admin API on an open network: class creation needs the admin key,
//! failed keys are throttled, connections are capped and timed out, every response carries the
//! security headers, unknown `Host` names and anonymous `/metrics` are refused, the data
//! directory is private, and configuration mistakes stop Aula by name.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aula_testkit::net::{closed_within, tcp_connect_from, LOCALHOST};
use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn aula() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aula"))
}

/// A raw HTTP/1.1 exchange from a chosen source address: (status, lower-cased head, body).
async fn raw(addr: SocketAddr, from: &str, request: &str) -> (u16, String, String) {
    let mut s = tcp_connect_from(from.parse().unwrap(), addr).await;
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("the server answers and closes")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// A request with `Connection: close`, a JSON body and optional bearer key.
fn request(method: &str, path: &str, host: &str, key: Option<&str>, body: Option<Value>) -> String {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

#[tokio::test]
async fn creating_a_class_needs_the_admin_key_by_default() {
    let aula = Aula::start(&temp_dir("create-default"));
    let (status, body) = http(
        &aula,
        "POST",
        "/api/v1/classes",
        Some(json!({"name": "X"})),
        None,
    );
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, info) = http(&aula, "GET", "/api/v1/info", None, None);
    assert_eq!((status, &info["open_class_creation"]), (200, &json!(false)));
    aula.create_class("With the key");
}

#[tokio::test]
async fn open_class_creation_is_opt_in_rate_limited_per_ip_and_capped() {
    let aula = AulaBuilder::new(&temp_dir("create-open"))
        .env("AULA_OPEN_CLASS_CREATION", "true")
        .env("AULA_HTTP__OPEN_CREATION_PER_IP_PER_HOUR", "3")
        .env("AULA_HTTP__OPEN_CREATION_MAX_CLASSES", "6")
        .start();
    let host = aula.addr.to_string();
    let create = |key: Option<&'static str>| {
        request(
            "POST",
            "/api/v1/classes",
            &host,
            key,
            Some(json!({"name": "Open"})),
        )
    };
    for _ in 0..3 {
        let (status, _, body) = raw(aula.addr, "127.0.0.1", &create(None)).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, head, body) = raw(aula.addr, "127.0.0.1", &create(None)).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("rate_limited"), "{body}");
    let retry: u64 = header(&head, "retry-after").unwrap().parse().unwrap();
    assert!((1..=1200).contains(&retry), "{retry}");
    // Another address has its own budget; the admin key is not rate-limited.
    let (status, _, body) = raw(aula.addr, "127.0.0.2", &create(None)).await;
    assert_eq!(status, 201, "{body}");
    aula.create_class("Admin 1");
    aula.create_class("Admin 2");
    // Six classes exist: nobody creates more without the key, the admin still can.
    let (status, _, body) = raw(aula.addr, "127.0.0.3", &create(None)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("class_limit"), "{body}");
    aula.create_class("Admin 3");
}

#[tokio::test]
async fn repeated_wrong_admin_keys_get_429_even_for_the_right_key() {
    let aula = AulaBuilder::new(&temp_dir("auth-throttle"))
        .env("AULA_HTTP__AUTH_FAILURES_PER_MIN", "5")
        .start();
    let host = aula.addr.to_string();
    let list = |key: &str| request("GET", "/api/v1/classes", &host, Some(key), None);
    // Requests without any key are not guesses: they never use up the budget.
    for _ in 0..8 {
        let (status, _, _) = raw(
            aula.addr,
            "127.0.0.1",
            &request("GET", "/api/v1/classes", &host, None, None),
        )
        .await;
        assert_eq!(status, 401);
    }
    for i in 0..5 {
        let (status, _, _) = raw(aula.addr, "127.0.0.1", &list(&format!("guess-{i}"))).await;
        assert_eq!(status, 401, "guess {i}");
    }
    let (status, head, _) = raw(aula.addr, "127.0.0.1", &list("guess-5")).await;
    assert_eq!(status, 429);
    assert!(header(&head, "retry-after").is_some(), "{head}");
    // While throttled, even the right key is not compared, so guessing cannot go faster.
    let (status, _, _) = raw(aula.addr, "127.0.0.1", &list(ADMIN_KEY)).await;
    assert_eq!(status, 429);
    let (status, _, _) = raw(aula.addr, "127.0.0.2", &list(ADMIN_KEY)).await;
    assert_eq!(status, 200, "another address is not affected");
}

#[test]
fn short_admin_keys_and_unknown_aula_variables_stop_aula_by_name() {
    let dir = temp_dir("config-errors");
    let out = aula()
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-key", "k"])
        .arg("--data-dir")
        .arg(&dir)
        .current_dir(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("admin_key") && err.contains("at least 16"),
        "{err}"
    );

    let out = aula()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&dir)
        .current_dir(&dir)
        .env("AULA_OPEN_CLASS_CREATON", "false")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("AULA_OPEN_CLASS_CREATON"), "{err}");
}

#[tokio::test]
async fn list_variables_are_comma_separated() {
    // Before: "invalid value for turn.allow_peer_addrs" and no start.
    let aula = AulaBuilder::new(&temp_dir("env-lists"))
        .env("AULA_TURN__ALLOW_PEER_ADDRS", "10.9.8.7:3479,10.9.8.6:5000")
        .env("AULA_TURN__ALLOW_PEERS", "10.1.0.0/16,10.2.0.0/16")
        .env("AULA_ALLOWED_HOSTS", "aula.test,other.test")
        .start();
    for (host, expected) in [("other.test", 200), ("unlisted.test", 421)] {
        let (status, _, _) = raw(
            aula.addr,
            "127.0.0.1",
            &request("GET", "/api/v1/info", host, None, None),
        )
        .await;
        assert_eq!(status, expected, "{host}");
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_tokens_are_not_cached() {
    let aula = Aula::start(&temp_dir("headers"));
    let host = aula.addr.to_string();
    for path in ["/", "/join", "/js/app.js", "/healthz", "/api/v1/info"] {
        let (status, head, _) = raw(
            aula.addr,
            "127.0.0.1",
            &request("GET", path, &host, None, None),
        )
        .await;
        assert_eq!(status, 200, "{path}");
        let csp = header(&head, "content-security-policy").expect("CSP");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert_eq!(header(&head, "x-frame-options"), Some("deny"));
        assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&head, "referrer-policy"), Some("no-referrer"));
        let pp = header(&head, "permissions-policy").expect("Permissions-Policy");
        for feature in [
            "camera=(self)",
            "microphone=(self)",
            "display-capture=(self)",
        ] {
            assert!(pp.contains(feature), "{pp}");
        }
        assert!(
            header(&head, "strict-transport-security").is_none(),
            "no HSTS over plain HTTP"
        );
    }
    let (status, head, body) = raw(
        aula.addr,
        "127.0.0.1",
        &request(
            "POST",
            "/api/v1/classes",
            &host,
            Some(ADMIN_KEY),
            Some(json!({"name": "C"})),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(header(&head, "cache-control"), Some("no-store"));
}

#[tokio::test]
async fn hsts_is_sent_over_tls() {
    let aula = AulaBuilder::new(&temp_dir("hsts")).dev_tls().start();
    let out = aula.curl_tls(&["-sS", "-D", "-", "-o", "/dev/null"], "/healthz");
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(
        head.contains("strict-transport-security: max-age="),
        "{head}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn unknown_host_names_are_refused() {
    let aula = AulaBuilder::new(&temp_dir("hosts"))
        .arg("--public-url")
        .arg("https://aula.school.test")
        .start();
    let port = aula.addr.port();
    let ws_upgrade = |host: &str| {
        format!(
            "GET /ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
    };
    // A rebinding page on evil.test reaches this server under its own name: refused.
    let first_line = |req: String| async move {
        let mut s = tcp_connect_from(LOCALHOST, aula.addr).await;
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(WAIT, s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    let refused = first_line(ws_upgrade(&format!("evil.test:{port}"))).await;
    assert!(refused.starts_with("HTTP/1.1 421"), "{refused}");
    let (status, _, _) = raw(
        aula.addr,
        "127.0.0.1",
        &request("GET", "/api/v1/info", "evil.test", None, None),
    )
    .await;
    assert_eq!(status, 421);
    // A health check may use any name (e.g. a container's service name).
    let (status, _, _) = raw(
        aula.addr,
        "127.0.0.1",
        &request("GET", "/healthz", "aula-service", None, None),
    )
    .await;
    assert_eq!(status, 200);
    for host in [
        "aula.school.test".to_string(),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
    ] {
        let (status, _, _) = raw(
            aula.addr,
            "127.0.0.1",
            &request("GET", "/healthz", &host, None, None),
        )
        .await;
        assert_eq!(status, 200, "{host}");
    }
    let opened = first_line(ws_upgrade(&format!("localhost:{port}"))).await;
    assert!(
        opened.starts_with("HTTP/1.1 101"),
        "the WebSocket opens for an allowed host: {opened}"
    );
}

#[tokio::test]
async fn metrics_need_a_bearer_token() {
    let metrics_token = "metrics-token-0123456789";
    let aula = AulaBuilder::new(&temp_dir("metrics-auth"))
        .env("AULA_METRICS_TOKEN", metrics_token)
        .start();
    let host = aula.addr.to_string();
    let get = |path: &str, key: Option<&str>| request("GET", path, &host, key, None);
    let (status, _, _) = raw(aula.addr, "127.0.0.1", &get("/metrics", None)).await;
    assert_eq!(status, 401);
    let (status, head, body) = raw(
        aula.addr,
        "127.0.0.1",
        &get("/metrics", Some(metrics_token)),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("aula_classes"), "{body}");
    assert_eq!(header(&head, "cache-control"), Some("no-store"));
    let (status, _, _) = raw(aula.addr, "127.0.0.1", &get("/metrics", Some(ADMIN_KEY))).await;
    assert_eq!(status, 200);
    // The metrics token opens nothing else.
    let (status, _, _) = raw(
        aula.addr,
        "127.0.0.1",
        &get("/api/v1/classes", Some(metrics_token)),
    )
    .await;
    assert_eq!(status, 401);
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let data = temp_dir("perms");
    // A data directory from an older Aula: world-readable, and a file that is not Aula's.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let other = data.join("notes.sh");
    std::fs::write(&other, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut aula = Aula::start(&data);
    aula.create_class("Private");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    let files: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with("aula.db-wal")),
        "{files:?}"
    );
    assert!(files.iter().any(|f| f.ends_with("aula.db")), "{files:?}");
    for f in files.iter().filter(|f| **f != other) {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    assert_eq!(
        mode(&other),
        0o755,
        "files that are not Aula's are left alone"
    );
    aula.terminate();
}

#[tokio::test]
async fn half_sent_and_silent_connections_are_closed() {
    let aula = AulaBuilder::new(&temp_dir("timeouts"))
        .env("AULA_HTTP__HEADER_READ_TIMEOUT_SECS", "1")
        .env("AULA_HTTP__CONNECTION_IDLE_SECS", "3")
        .env("AULA_LIMITS__PING_INTERVAL_SECS", "1")
        .env("AULA_LIMITS__IDLE_TIMEOUT_SECS", "2")
        .start();
    let mut silent = tcp_connect_from(LOCALHOST, aula.addr).await;
    let mut half = tcp_connect_from(LOCALHOST, aula.addr).await;
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x")
        .await
        .unwrap();
    // A request whose body never comes: the headers are in, so only the idle timeout applies.
    let mut no_body = tcp_connect_from(LOCALHOST, aula.addr).await;
    no_body
        .write_all(b"POST /api/v1/join HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut silent, Duration::from_secs(3)).await,
        "silent socket closed"
    );
    assert!(
        closed_within(&mut half, Duration::from_secs(3)).await,
        "half-sent request closed"
    );
    assert!(
        closed_within(&mut no_body, Duration::from_secs(6)).await,
        "stalled body closed"
    );
    assert!(started.elapsed() < Duration::from_secs(6));

    // A live WebSocket that only listens outlives the idle timeout (the server pings it).
    let class = aula.create_class("Live");
    let mut teacher = Client::join(&aula, class["teacher"]["token"].as_str().unwrap(), "T").await;
    let mut student = Client::join(&aula, class["student"]["token"].as_str().unwrap(), "S").await;
    teacher.expect("peer_joined").await;
    let listening = tokio::spawn(async move {
        student.expect_silence(Duration::from_secs(5)).await;
        student
    });
    teacher.expect_silence(Duration::from_secs(5)).await;
    let mut student = listening.await.unwrap();
    teacher
        .send(json!({"type": "chat", "text": "still here?"}))
        .await;
    let chat = student.expect("chat").await;
    assert_eq!(chat["text"], "still here?");
}

#[tokio::test]
async fn one_address_at_its_connection_cap_does_not_lock_out_others() {
    let aula = AulaBuilder::new(&temp_dir("conn-cap"))
        .dev_tls()
        .env("AULA_HTTP__MAX_CONNECTIONS_PER_IP", "300")
        .start();
    let tls = aula.tls_addr();
    // One address holds its maximum: 150 silent sockets on each listener.
    let mut held = Vec::new();
    for i in 0..300 {
        let to = if i % 2 == 0 { aula.addr } else { tls };
        held.push(tcp_connect_from(LOCALHOST, to).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Its next connection, on either listener, is closed at once.
    for to in [aula.addr, tls] {
        let mut over = tcp_connect_from(LOCALHOST, to).await;
        assert!(
            closed_within(&mut over, Duration::from_secs(2)).await,
            "connection over the per-IP cap closed ({to})"
        );
    }
    // A real client from another address is served at once, over HTTP and over TLS.
    let started = Instant::now();
    let (status, _, _) = raw(
        aula.addr,
        "127.0.0.2",
        &request("GET", "/healthz", "localhost", None, None),
    )
    .await;
    assert_eq!(status, 200);
    let out = aula.curl_tls(
        &["-sS", "--interface", "127.0.0.2", "--max-time", "5"],
        "/healthz",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        r#"{"status":"ok"}"#,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "served in {:?} while 150 silent TLS sockets wait",
        started.elapsed()
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = aula.metric("aula_http_connections_refused_total");
    assert!(refused >= 2.0, "{refused}");
}

#[test]
fn a_closed_stdout_does_not_stop_sigterm_from_stopping_aula() {
    let dir = temp_dir("closed-stdout");
    let mut child = aula()
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-key", ADMIN_KEY])
        .args([
            "--turn-listen",
            "127.0.0.1:0",
            "--sfu-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&dir)
        .current_dir(&dir)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Like `aula serve 2>&1 | head -1`: read one line, then close the pipe (logs included).
    drop(child.stderr.take());
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.starts_with("Aula is running"), "{first}");
    drop(out);
    // Log lines are still written (and lost) after the pipe closed.
    let _ = std::net::TcpStream::connect(("127.0.0.1", 9));
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "still serving");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("aula ignored SIGTERM with its stdout closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // It stopped cleanly (SIGTERM is handled, not fatal).
    assert!(status.code().is_some(), "{status:?}");
}

#[tokio::test]
async fn an_idempotency_key_gives_the_same_class_even_after_a_crash() {
    let dir = temp_dir("idempotency");
    let create = |aula: &Aula, key: &str, name: &str, from: &'static str| {
        let req = request(
            "POST",
            "/api/v1/classes",
            &aula.addr.to_string(),
            Some(ADMIN_KEY),
            Some(json!({"name": name})),
        )
        .replacen("\r\n", &format!("\r\nIdempotency-Key: {key}\r\n"), 1);
        let addr = aula.addr;
        async move {
            let (status, _, body) = raw(addr, from, &req).await;
            (
                status,
                serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
            )
        }
    };
    let mut aula = Aula::start(&dir);
    let (status, first) = create(&aula, "retry-1", "Physics", "127.0.0.1").await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = create(&aula, "retry-1", "Physics", "127.0.0.2").await;
    assert_eq!(status, 200, "a retry answers 200 with the same class");
    assert_eq!(again["id"], first["id"]);
    let teacher = again["teacher"]["token"].as_str().unwrap();
    Client::join(&aula, teacher, "T").await;
    let (status, other) = create(&aula, "retry-2", "Physics", "127.0.0.1").await;
    assert_eq!(status, 201);
    assert_ne!(other["id"], first["id"], "another key, another class");
    let (status, body) = create(&aula, "retry-1", "Chemistry", "127.0.0.1").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    let (status, _) = create(&aula, &"k".repeat(129), "Physics", "127.0.0.1").await;
    assert_eq!(status, 400);

    // kill -9 right after the answer: the key was stored with the class, so the retry finds it.
    aula.child.kill().unwrap();
    aula.child.wait().unwrap();
    drop(aula);
    let aula = Aula::start(&dir);
    let (status, after) = create(&aula, "retry-1", "Physics", "127.0.0.1").await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["id"], first["id"]);
    let (status, list) = http(&aula, "GET", "/api/v1/classes", None, Some(ADMIN_KEY));
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 2, "no duplicate: {list}");
}

#[tokio::test]
async fn idempotency_keys_are_bounded_in_number() {
    let aula = AulaBuilder::new(&temp_dir("idempotency-bound"))
        .env("AULA_HTTP__IDEMPOTENCY_KEYS_MAX", "2")
        .start();
    let create = |key: &str| {
        request(
            "POST",
            "/api/v1/classes",
            &aula.addr.to_string(),
            Some(ADMIN_KEY),
            Some(json!({"name": "B"})),
        )
        .replacen("\r\n", &format!("\r\nIdempotency-Key: {key}\r\n"), 1)
    };
    let id = |body: String| serde_json::from_str::<Value>(&body).unwrap()["id"].clone();
    let (_, _, a) = raw(aula.addr, "127.0.0.1", &create("a")).await;
    for key in ["b", "c"] {
        let (status, _, _) = raw(aula.addr, "127.0.0.1", &create(key)).await;
        assert_eq!(status, 201);
    }
    // "a" was the oldest of three: forgotten, so it creates a new class.
    let (status, _, a_again) = raw(aula.addr, "127.0.0.1", &create("a")).await;
    assert_eq!(status, 201);
    assert_ne!(id(a), id(a_again));
    let (status, _, _) = raw(aula.addr, "127.0.0.1", &create("c")).await;
    assert_eq!(status, 200, "the newest keys are kept");
}

/// `aula serve` started by `sh -c 'ulimit …; exec aula serve …'`, with RUST_LOG=info on stderr.
fn serve_with_ulimit(ulimit: &str, dir: &std::path::Path) -> (Child, Vec<String>) {
    let cmd = format!(
        "ulimit {ulimit} && exec \"$0\" serve --listen 127.0.0.1:0 --admin-key {ADMIN_KEY} \
         --turn-listen 127.0.0.1:0 --sfu-listen 127.0.0.1:0 --data-dir \"$1\""
    );
    let mut child = Command::new("sh")
        .args(["-c", &cmd, env!("CARGO_BIN_EXE_aula")])
        .arg(dir)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let banner = read_banner(&mut child);
    (child, banner)
}

/// Stops a server started with a piped stderr and returns everything it logged.
fn kill_and_read_log(child: &mut Child) -> String {
    let _ = child.kill();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    child.wait().unwrap();
    log
}

#[tokio::test]
async fn the_open_file_limit_is_raised_and_the_caps_stay_below_it() {
    // A soft limit of 1024 (systemd's default) under a higher hard limit: raised, and logged.
    let dir = temp_dir("nofile-soft");
    let (mut child, _) = serve_with_ulimit("-Sn 1024", &dir);
    let log = kill_and_read_log(&mut child);
    assert!(
        log.contains("raised the open-file limit from 1024 to"),
        "{log}"
    );

    // A hard limit of 1024: the total cap drops to 512 and one address gets at most 256, so 300
    // idle sockets from one address leave room for /healthz from another.
    let dir = temp_dir("nofile-hard");
    let (mut child, banner) = serve_with_ulimit("-n 1024", &dir);
    let addr: SocketAddr = banner_value(&banner, "Listening: http://")
        .unwrap()
        .parse()
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..300 {
        held.push(tcp_connect_from(LOCALHOST, addr).await);
    }
    let (status, _, _) = raw(
        addr,
        "127.0.0.2",
        &request("GET", "/healthz", "localhost", None, None),
    )
    .await;
    assert_eq!(status, 200);
    let mut over = held.pop().unwrap();
    assert!(
        closed_within(&mut over, Duration::from_secs(2)).await,
        "the 300th socket from one address is over its cap of 256"
    );
    drop(held);
    let log = kill_and_read_log(&mut child);
    assert!(
        log.contains("serving at most 512 HTTP connections, 256 per IP address"),
        "{log}"
    );
}
