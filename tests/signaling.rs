//! End-to-end tests of the signaling service: the real `aula` binary, real sockets.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

fn tokens(class: &serde_json::Value) -> (String, String) {
    (
        class["teacher"]["token"].as_str().unwrap().to_string(),
        class["student"]["token"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn teacher_and_two_students_exchange_offers_answers_and_candidates() {
    let aula = Aula::start(&temp_dir("exchange"));
    let (teacher_token, student_token) = tokens(&aula.create_class("Maths"));
    let mut teacher = Client::join(&aula, &teacher_token, "Ms Rivera").await;
    assert_eq!(teacher.welcome["role"], "teacher");
    let mut ana = Client::join(&aula, &student_token, "Ana").await;
    let mut ben = Client::join(&aula, &student_token, "Ben").await;
    assert_eq!(ana.welcome["role"], "student");
    assert_eq!(ben.welcome["peers"].as_array().unwrap().len(), 2);
    assert_eq!(teacher.recv().await["peer"]["name"], "Ana");
    assert_eq!(teacher.recv().await["peer"]["name"], "Ben");
    assert_eq!(ana.recv().await["type"], "peer_joined");

    // Each message reaches its addressee, and only it: every recv below is the very next message.
    for student in [&mut ana, &mut ben] {
        teacher.send(json!({"type": "offer", "to": student.id, "sdp": format!("v=0 for {}", student.id)})).await;
        let offer = student.recv().await;
        assert_eq!(offer["type"], "offer");
        assert_eq!(offer["from"], teacher.id);
        assert_eq!(offer["sdp"], format!("v=0 for {}", student.id));
        student
            .send(json!({"type": "answer", "to": teacher.id, "sdp": "v=0 answer"}))
            .await;
        let answer = teacher.recv().await;
        assert_eq!(answer["type"], "answer");
        assert_eq!(answer["from"], student.id);
        let cand = json!({"candidate": "candidate:1 1 udp 2122260223 192.0.2.7 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0});
        student
            .send(json!({"type": "candidate", "to": teacher.id, "candidate": cand}))
            .await;
        let got = teacher.recv().await;
        assert_eq!(got["type"], "candidate");
        assert_eq!(got["from"], student.id);
        assert_eq!(got["candidate"], cand);
    }
    for c in [&mut teacher, &mut ana, &mut ben] {
        c.expect_silence(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn chat_reaches_everyone_and_late_joiners_get_history() {
    let aula = Aula::start(&temp_dir("chat"));
    let (t, s) = tokens(&aula.create_class("History"));
    let mut teacher = Client::join(&aula, &t, "T").await;
    let mut ana = Client::join(&aula, &s, "Ana").await;
    teacher.expect("peer_joined").await;
    ana.send(json!({"type": "chat", "text": "hello class"}))
        .await;
    for c in [&mut teacher, &mut ana] {
        let m = c.expect("chat").await;
        assert_eq!(m["text"], "hello class");
        assert_eq!(m["name"], "Ana");
        assert_eq!(m["id"], 1);
        assert!(m["time"].as_u64().unwrap() > 1_700_000_000_000);
    }
    teacher
        .send(json!({"type": "chat", "text": "hi Ana"}))
        .await;
    ana.expect("chat").await;
    let late = Client::join(&aula, &s, "Late").await;
    let history: Vec<_> = late.welcome["chat"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].clone())
        .collect();
    assert_eq!(history, [json!("hello class"), json!("hi Ana")]);
}

#[tokio::test]
async fn raised_hand_reaches_the_teacher_and_students_cannot_do_teacher_actions() {
    let aula = Aula::start(&temp_dir("hand"));
    let (t, s) = tokens(&aula.create_class("Art"));
    let mut teacher = Client::join(&aula, &t, "T").await;
    let mut ana = Client::join(&aula, &s, "Ana").await;
    ana.send(json!({"type": "hand", "raised": true})).await;
    let hand = teacher.expect("hand").await;
    assert_eq!(hand["peer"], ana.id);
    assert_eq!(hand["raised"], true);

    for (i, action) in [
        json!({"type": "lock", "locked": true}),
        json!({"type": "end"}),
        json!({"type": "remove", "peer": teacher.id}),
        json!({"type": "mute", "peer": teacher.id, "kind": "audio"}),
        json!({"type": "grant", "peer": ana.id, "speak": true}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut action = action;
        action["ref"] = json!(i);
        ana.send(action).await;
        let e = ana.expect_error("forbidden").await;
        assert_eq!(e["ref"], i);
    }
    // Nothing happened to the class: the teacher is still there and it is unlocked.
    let (status, class) = http(
        &aula,
        "GET",
        &format!(
            "/api/v1/classes/{}",
            teacher.welcome["class"]["id"].as_str().unwrap()
        ),
        None,
        Some(ADMIN_KEY),
    );
    assert_eq!(status, 200);
    assert_eq!(class["locked"], false);
    assert_eq!(class["roster"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn invalid_expired_and_forged_tokens_are_refused() {
    let aula = Aula::start(&temp_dir("tokens"));
    let (_, s) = tokens(&aula.create_class("Physics"));
    let class_id = aula.create_class("Other")["id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut c = Client::connect(&aula).await;
    c.send(json!({"type": "join", "token": "not-a-jwt", "name": "X"}))
        .await;
    c.expect_error("invalid_token").await;
    assert_eq!(c.expect_close().await, 4001);

    // Forged: the payload changed to teacher, signature kept.
    let parts: Vec<&str> = s.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        parts[1].chars().rev().collect::<String>(),
        parts[2]
    );
    let mut c = Client::connect(&aula).await;
    c.send(json!({"type": "join", "token": forged, "name": "X"}))
        .await;
    c.expect_error("invalid_token").await;

    // Signed with another server's secret.
    let other = Aula::start(&temp_dir("tokens-other"));
    let (_, foreign) = tokens(&other.create_class("Foreign"));
    let mut c = Client::connect(&aula).await;
    c.send(json!({"type": "join", "token": foreign, "name": "X"}))
        .await;
    c.expect_error("invalid_token").await;

    // Expired: a one-second token, used after it expires.
    let (status, short) = http(
        &aula,
        "POST",
        &format!("/api/v1/classes/{class_id}/tokens"),
        Some(json!({"role": "student", "ttl_secs": 1})),
        Some(ADMIN_KEY),
    );
    assert_eq!(status, 201);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut c = Client::connect(&aula).await;
    c.send(json!({"type": "join", "token": short["token"], "name": "X"}))
        .await;
    c.expect_error("token_expired").await;
    assert_eq!(c.expect_close().await, 4001);
    assert!(aula.metric("aula_errors_total{code=\"invalid_token\"}") >= 3.0);
}

#[tokio::test]
async fn a_peer_of_another_class_cannot_be_addressed() {
    let aula = Aula::start(&temp_dir("cross"));
    let (t1, _) = tokens(&aula.create_class("A"));
    let (_, s2) = tokens(&aula.create_class("B"));
    let mut teacher = Client::join(&aula, &t1, "T").await;
    let mut other = Client::join(&aula, &s2, "Other").await;
    teacher
        .send(json!({"type": "offer", "to": other.id, "sdp": "v=0", "ref": "x"}))
        .await;
    let e = teacher.expect_error("unknown_peer").await;
    assert_eq!(e["ref"], "x");
    teacher
        .send(json!({"type": "remove", "peer": other.id}))
        .await;
    teacher.expect_error("unknown_peer").await;
    other.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_the_server_keeps_serving() {
    let aula = Aula::start(&temp_dir("bad-input"));
    let (t, s) = tokens(&aula.create_class("Robust"));
    let mut teacher = Client::join(&aula, &t, "T").await;
    let mut bad = Client::join(&aula, &s, "Bad").await;
    teacher.expect("peer_joined").await;

    bad.send_raw(Message::Text("{not json".into())).await;
    bad.expect_error("bad_json").await;
    bad.send(json!({"type": "teleport", "ref": 9})).await;
    assert_eq!(bad.expect_error("unknown_type").await["ref"], 9);
    bad.send(json!({"type": "offer"})).await;
    assert!(bad.expect_error("bad_message").await["message"]
        .as_str()
        .unwrap()
        .contains("missing field"));
    bad.send(json!({"no": "type"})).await;
    bad.expect_error("bad_message").await;
    bad.send_raw(Message::Binary(vec![1, 2, 3].into())).await;
    bad.expect_error("binary_not_supported").await;
    // Still joined and working after all that.
    bad.send(json!({"type": "ping"})).await;
    bad.expect("pong").await;

    let huge = format!(r#"{{"type":"chat","text":"{}"}}"#, "x".repeat(1 << 20));
    bad.send_raw(Message::Text(huge.into())).await;
    bad.expect_error("message_too_large").await;
    assert_eq!(bad.expect_close().await, 1009);

    // The class and the server are unharmed.
    let left = teacher.expect("peer_updated").await;
    assert_eq!(left["peer"]["connected"], false);
    teacher
        .send(json!({"type": "chat", "text": "still here"}))
        .await;
    assert_eq!(teacher.expect("chat").await["text"], "still here");
    let mut fresh = Client::join(&aula, &s, "Fresh").await;
    fresh.send(json!({"type": "ping"})).await;
    fresh.expect("pong").await;
}

#[tokio::test]
async fn messages_before_join_and_a_missing_join_are_refused() {
    let aula = AulaBuilder::new(&temp_dir("deadline"))
        .env("AULA_LIMITS__JOIN_DEADLINE_SECS", "1")
        .start();
    let mut c = Client::connect(&aula).await;
    c.send(json!({"type": "chat", "text": "hi"})).await;
    c.expect_error("not_joined").await;
    c.expect_error("join_timeout").await;
    assert_eq!(c.expect_close().await, 4005);
}

#[tokio::test]
async fn a_slow_consumer_is_dropped_without_affecting_its_class() {
    let aula = AulaBuilder::new(&temp_dir("slow"))
        .env("AULA_LIMITS__SEND_QUEUE_BYTES", "262144")
        .env("AULA_LIMITS__MESSAGES_PER_SEC", "100000")
        .env("AULA_LIMITS__BURST", "100000")
        .env("AULA_LIMITS__CHAT_PER_SEC", "100000")
        .env("AULA_LIMITS__CHAT_BURST", "100000")
        .start();
    let (t, s) = tokens(&aula.create_class("Busy"));
    let mut teacher = Client::join(&aula, &t, "T").await;
    let mut reader = Client::join(&aula, &s, "Reader").await;
    // The slow student joins and then never reads again.
    let slow = Client::join(&aula, &s, "Slow").await;
    teacher.expect("peer_joined").await;
    teacher.expect("peer_joined").await;

    let line = "y".repeat(1900);
    let mut dropped = false;
    // Bursts of 20 lines (about 40 KB) stay well under the queue bound for clients that read.
    for round in 0..1000 {
        for _ in 0..20 {
            teacher.send(json!({"type": "chat", "text": line})).await;
        }
        // Keep up as a well-behaved client does.
        for _ in 0..20 {
            assert_eq!(reader.expect("chat").await["text"], line);
        }
        loop {
            let m = teacher.recv().await;
            if m["type"] == "peer_updated"
                && m["peer"]["id"] == slow.id
                && m["peer"]["connected"] == false
            {
                dropped = true;
            }
            if m["type"] == "chat" && m["id"] == (round + 1) * 20 {
                break;
            }
        }
        if dropped {
            break;
        }
    }
    assert!(dropped, "the slow consumer was never dropped");
    assert!(aula.metric("aula_slow_consumer_drops_total") >= 1.0);
    // The others carry on.
    teacher.send(json!({"type": "chat", "text": "after"})).await;
    loop {
        if reader.expect("chat").await["text"] == "after" {
            break;
        }
    }
    drop(slow);
}

#[tokio::test]
async fn resume_after_a_dropped_connection_restores_identity_and_hand() {
    let aula = Aula::start(&temp_dir("resume"));
    let (t, s) = tokens(&aula.create_class("Resume"));
    let mut teacher = Client::join(&aula, &t, "T").await;
    let mut ana = Client::join(&aula, &s, "Ana").await;
    ana.send(json!({"type": "hand", "raised": true})).await;
    teacher.expect("hand").await;
    let id = ana.id.clone();
    let resume = ana.welcome["resume_token"].as_str().unwrap().to_string();
    drop(ana); // no close frame: like a network drop
    let gone = teacher.expect("peer_updated").await;
    assert_eq!(gone["peer"]["connected"], false);

    let mut again = Client::connect(&aula).await;
    again
        .send(json!({"type": "join", "token": s, "name": "ignored", "resume": resume}))
        .await;
    let w = again.expect("welcome").await;
    assert_eq!(w["id"], id);
    assert_eq!(w["resumed"], true);
    assert_eq!(w["name"], "Ana");
    assert_eq!(w["role"], "student");
    assert_eq!(w["hand_raised"], true);
    let back = teacher.expect("peer_updated").await;
    assert_eq!(back["peer"]["id"], id);
    assert_eq!(back["peer"]["connected"], true);
    assert_eq!(back["peer"]["hand_raised"], true);
}

#[tokio::test]
async fn class_records_survive_a_restart() {
    let dir = temp_dir("restart");
    let mut aula = Aula::start(&dir);
    let class = aula.create_class("Persistent");
    let (_, s) = tokens(&class);
    assert!(aula.terminate().success());
    let aula = Aula::start(&dir);
    let (status, list) = http(&aula, "GET", "/api/v1/classes", None, Some(ADMIN_KEY));
    assert_eq!(status, 200);
    assert_eq!(list[0]["id"], class["id"]);
    assert_eq!(list[0]["name"], "Persistent");
    // The old link still works: same token secret, same class.
    let c = Client::join(&aula, &s, "Ana").await;
    assert_eq!(c.welcome["class"]["name"], "Persistent");
}

#[tokio::test]
async fn sigterm_closes_clients_with_going_away() {
    let mut aula = Aula::start(&temp_dir("sigterm"));
    let (t, s) = tokens(&aula.create_class("Bye"));
    let mut teacher = Client::join(&aula, &t, "T").await;
    let mut ana = Client::join(&aula, &s, "Ana").await;
    let pid = aula.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert_eq!(teacher.expect_close().await, 1001);
    assert_eq!(ana.expect_close().await, 1001);
    assert!(aula.terminate().success());
}

#[tokio::test]
async fn admin_api_requires_the_key_and_delete_ends_the_class() {
    let aula = Aula::start(&temp_dir("admin"));
    let (status, e) = http(&aula, "GET", "/api/v1/classes", None, None);
    assert_eq!(status, 401);
    assert_eq!(e["error"]["code"], "unauthorized");
    let (status, _) = http(&aula, "GET", "/api/v1/classes", None, Some("wrong"));
    assert_eq!(status, 401);
    let (status, e) = http(
        &aula,
        "POST",
        "/api/v1/classes",
        Some(json!({"name": ""})),
        Some(ADMIN_KEY),
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let (status, _) = http(
        &aula,
        "POST",
        "/api/v1/classes",
        Some(json!({"nom": "x"})),
        Some(ADMIN_KEY),
    );
    assert_eq!(status, 400);

    let class = aula.create_class("Short-lived");
    // A student can type the class code (the id) instead of opening the link.
    let code = class["id"].as_str().unwrap().to_uppercase();
    let (status, joined) = http(
        &aula,
        "POST",
        "/api/v1/join",
        Some(json!({"code": format!(" {code} ")})),
        None,
    );
    assert_eq!(status, 200, "{joined}");
    assert_eq!(joined["class"]["name"], "Short-lived");
    let by_code = Client::join(&aula, joined["token"].as_str().unwrap(), "Coder").await;
    assert_eq!(by_code.welcome["role"], "student");
    drop(by_code);
    assert_eq!(joined["found"], true);
    let (status, unknown) = http(
        &aula,
        "POST",
        "/api/v1/join",
        Some(json!({"code": "nosuchcode"})),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(unknown, json!({"found": false}));
    assert!(class["teacher"]["url"]
        .as_str()
        .unwrap()
        .contains("/join#token="));
    let id = class["id"].as_str().unwrap();
    let (t, s) = tokens(&class);
    let mut teacher = Client::join(&aula, &t, "T").await;
    let mut ana = Client::join(&aula, &s, "Ana").await;
    let (status, detail) = http(
        &aula,
        "GET",
        &format!("/api/v1/classes/{id}"),
        None,
        Some(ADMIN_KEY),
    );
    assert_eq!(status, 200);
    assert_eq!(
        detail["roster"].as_array().unwrap().len(),
        3,
        "teacher, Ana and Coder waiting to resume"
    );
    let (status, _) = http(
        &aula,
        "DELETE",
        &format!("/api/v1/classes/{id}"),
        None,
        Some(ADMIN_KEY),
    );
    assert_eq!(status, 204);
    for c in [&mut teacher, &mut ana] {
        c.expect("class_ended").await;
        assert_eq!(c.expect_close().await, 4003);
    }
    let (status, _) = http(
        &aula,
        "GET",
        &format!("/api/v1/classes/{id}"),
        None,
        Some(ADMIN_KEY),
    );
    assert_eq!(status, 404);
    let mut late = Client::connect(&aula).await;
    late.send(json!({"type": "join", "token": s, "name": "Late"}))
        .await;
    late.expect_error("class_not_found").await;
}

#[tokio::test]
async fn browsers_from_foreign_origins_are_refused() {
    let aula = Aula::start(&temp_dir("origin"));
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        aula.ws_url(),
    )
    .unwrap();
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        aula.ws_url(),
    )
    .unwrap();
    req.headers_mut()
        .insert("origin", format!("http://{}", aula.addr).parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
}

#[tokio::test]
async fn health_metrics_and_schema_are_served() {
    let aula = Aula::start(&temp_dir("health"));
    let (status, h) = http(&aula, "GET", "/healthz", None, None);
    assert_eq!((status, h["status"].as_str()), (200, Some("ok")));
    let (t, _) = tokens(&aula.create_class("Observed"));
    let _teacher = Client::join(&aula, &t, "T").await;
    let metrics = aula.metrics();
    assert!(metrics.contains("aula_connections 1"), "{metrics}");
    assert!(
        metrics.contains("aula_messages_in_total{type=\"join\"} 1"),
        "{metrics}"
    );
    let (status, schema) = http(&aula, "GET", "/protocol.schema.json", None, None);
    assert_eq!(status, 200);
    let checked_in: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/protocol.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(schema, checked_in);
}

/// Reads one frame the server sent (server frames are never masked): FIN, opcode, payload.
async fn read_raw_frame(s: &mut tokio::net::TcpStream) -> (bool, u8, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await.unwrap();
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let len = match head[1] & 0x7f {
        126 => s.read_u16().await.unwrap() as usize,
        127 => s.read_u64().await.unwrap() as usize,
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await.unwrap();
    (head[0] & 0x80 != 0, head[0] & 0x0f, payload)
}

#[tokio::test]
async fn large_messages_arrive_whole_and_in_order_over_a_raw_socket() {
    // Messages over 1 KiB are written past tungstenite's buffer (it would keep their size for
    // the life of the connection): they must still be well-formed frames, in order.
    use aula_testkit::net::{tcp_connect_from, LOCALHOST};
    use tokio::io::AsyncWriteExt;
    let aula = Aula::start(&temp_dir("fragments"));
    let (t, s) = tokens(&aula.create_class("Fragments"));
    let mut teacher = Client::join(&aula, &t, "T").await;
    // Multi-byte characters: the frame length is in bytes.
    let line = format!("x{}", "é€".repeat(500));
    for _ in 0..3 {
        teacher.send(json!({"type": "chat", "text": line})).await;
        assert_eq!(teacher.expect("chat").await["text"], line);
    }

    let mut raw = tcp_connect_from(LOCALHOST, aula.addr).await;
    let handshake = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        aula.addr
    );
    raw.write_all(handshake.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        let byte = tokio::time::timeout(WAIT, tokio::io::AsyncReadExt::read_u8(&mut raw))
            .await
            .expect("handshake answered in time")
            .unwrap();
        response.push(byte);
        assert!(response.len() < 4096, "handshake answer too long");
    }
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
    // A masked client text frame (a zero mask key leaves the payload as it is).
    let join = json!({"type": "join", "token": s, "name": "Raw"}).to_string();
    let mut frame = vec![0x81, 0x80 | 126];
    frame.extend_from_slice(&(join.len() as u16).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(join.as_bytes());
    raw.write_all(&frame).await.unwrap();

    let mut frames = Vec::new();
    let mut message = Vec::new();
    let welcome = tokio::time::timeout(WAIT, async {
        loop {
            let (fin, opcode, payload) = read_raw_frame(&mut raw).await;
            if opcode >= 0x8 {
                continue; // pings
            }
            assert_eq!(opcode, if message.is_empty() { 0x1 } else { 0x0 });
            frames.push(payload.len());
            message.extend_from_slice(&payload);
            if fin {
                let v: serde_json::Value = serde_json::from_slice(&message).unwrap();
                if v["type"] == "welcome" {
                    return v;
                }
                message.clear();
                frames.clear();
            }
        }
    })
    .await
    .expect("welcome within WAIT");
    assert_eq!(welcome["chat"].as_array().unwrap().len(), 3, "{welcome}");
    assert_eq!(welcome["chat"][2]["text"], line);
    assert_eq!(frames.len(), 1, "one frame, one write: {frames:?}");
    assert!(frames[0] > 7_500, "{frames:?}");
    // A small message after the large one comes through tungstenite again, in order.
    let ping = json!({"type": "ping"}).to_string();
    let mut frame = vec![0x81, 0x80 | ping.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(ping.as_bytes());
    raw.write_all(&frame).await.unwrap();
    let (fin, opcode, payload) = tokio::time::timeout(WAIT, read_raw_frame(&mut raw))
        .await
        .expect("pong within WAIT");
    assert!(fin && opcode == 0x1, "{opcode}");
    let pong: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(pong["type"], "pong");
}
