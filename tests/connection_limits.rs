//! The limits of the signaling connection after joining, tried from outside over real sockets:
//! one sender can never get a receiver disconnected, chat has its own rate and character rules,
//! slow readers and malformed frames get their documented close codes, and TURN credentials are
//! short-lived and renewed while the person is in the class.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn tokens(class: &Value) -> (String, String) {
    (
        class["teacher"]["token"].as_str().unwrap().to_string(),
        class["student"]["token"].as_str().unwrap().to_string(),
    )
}

/// Everything already received, without waiting: (messages, closed with code).
async fn drain(c: &mut Client) -> (Vec<Value>, Option<u16>) {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(Duration::ZERO, c.ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => out.push(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(Message::Close(frame)))) => {
                return (out, Some(frame.map_or(1005, |f| u16::from(f.code))))
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_))) | Ok(None) => return (out, Some(1006)),
            Err(_) => return (out, None),
        }
    }
}

/// Sends `frame` 48 times a second (under the default 50/s message rate) for `secs` seconds
/// while the receiver reads nothing; returns the sender's error codes and close code, if any.
async fn flood(sender: &mut Client, frame: &Value, secs: u64) -> (Vec<String>, Option<u16>) {
    let mut codes = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / 48));
    for _ in 0..48 * secs {
        tick.tick().await;
        sender.send(frame.clone()).await;
        let (msgs, closed) = drain(sender).await;
        codes.extend(
            msgs.iter()
                .filter(|m| m["type"] == "error")
                .map(|m| m["code"].as_str().unwrap().to_string()),
        );
        if closed.is_some() {
            return (codes, closed);
        }
    }
    (codes, None)
}

/// After a flood it did not read, the receiver reads what it was sent: it must still be connected.
async fn still_connected_after_reading(receiver: &mut Client) -> Vec<Value> {
    receiver.send(json!({"type": "ping", "ref": "after"})).await;
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, receiver.ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "pong" {
                    return got;
                }
                got.push(v);
            }
            Ok(Some(Ok(Message::Close(f)))) => panic!(
                "the receiver was closed ({f:?}) after {} messages",
                got.len()
            ),
            Ok(Some(Ok(_))) => continue,
            other => panic!("the receiver lost its connection: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_stats_flood_never_disconnects_the_teacher_and_the_flooder_is_throttled() {
    let aula = Aula::start(&temp_dir("stats-flood"));
    let (t, s) = tokens(&aula.create_class("Flooded"));
    let mut teacher = Client::join(&aula, &t, "Ms T").await;
    let mut student = Client::join(&aula, &s, "Mallory").await;
    teacher.expect("peer_joined").await;
    // The largest report the limits allow: 64 links, each with a 200-character reason (~31 KB).
    let link = json!({"peer": teacher.id, "path": "relay_udp", "bitrate_kbps": 1.5,
                      "loss": 0.5, "rtt_ms": 3.0, "reason": "é".repeat(200)});
    let report = json!({"type": "stats", "links": vec![link; 64]});
    assert!(report.to_string().len() > 30_000);

    let (codes, closed) = flood(&mut student, &report, 10).await;
    let got = still_connected_after_reading(&mut teacher).await;
    assert!(
        codes.iter().any(|c| c == "rate_limited"),
        "the flooding student was never throttled: {codes:?} {closed:?}"
    );
    let reports = got.iter().filter(|m| m["type"] == "stats").count();
    // One report a second at most (plus one waiting, and the first), never 384.
    assert!(
        (1..=13).contains(&reports),
        "{reports} reports reached the teacher"
    );
    assert_eq!(aula.metric("aula_slow_consumer_drops_total"), 0.0);

    // Oversized fields are refused.
    let long = json!({"peer": teacher.id, "path": "direct", "reason": "x".repeat(201)});
    student
        .send(json!({"type": "stats", "links": [long], "ref": 5}))
        .await;
    loop {
        let e = student.expect("error").await;
        if e["ref"] == 5 {
            assert_eq!(e["code"], "too_long", "{e}");
            break;
        }
    }
}

#[tokio::test]
async fn an_offer_flood_throttles_the_sender_not_the_receiver() {
    let aula = Aula::start(&temp_dir("offer-flood"));
    let (t, s) = tokens(&aula.create_class("Offers"));
    let mut teacher = Client::join(&aula, &t, "Ms T").await;
    let mut student = Client::join(&aula, &s, "Mallory").await;
    teacher.expect("peer_joined").await;
    // 30 KB offers at 48/s: 1.4 MB/s aimed at a teacher who reads nothing for 10 s.
    let offer = json!({"type": "offer", "to": teacher.id, "sdp": "v".repeat(30_000)});
    let (codes, _) = flood(&mut student, &offer, 10).await;
    let got = still_connected_after_reading(&mut teacher).await;
    assert!(codes.iter().any(|c| c == "rate_limited"), "{codes:?}");
    let offers = got.iter().filter(|m| m["type"] == "offer").count();
    // The 512 KiB burst plus 32 KiB/s: about 28 offers of 30 KB in 10 s.
    assert!(
        (17..=30).contains(&offers),
        "{offers} offers reached the teacher"
    );
}

#[tokio::test]
async fn chat_has_a_rate_a_length_cap_and_no_control_characters() {
    let aula = Aula::start(&temp_dir("chat-rules"));
    let (t, s) = tokens(&aula.create_class("Chatty"));
    let mut teacher = Client::join(&aula, &t, "Ms T").await;
    let mut ana = Client::join(&aula, &s, "Ana").await;
    teacher.expect("peer_joined").await;

    for (i, text) in ["bell\u{7}", "tab\tstop", "over\u{202E}txt", "esc\u{1b}[2J"]
        .iter()
        .enumerate()
    {
        ana.send(json!({"type": "chat", "text": text, "ref": i}))
            .await;
        let e = ana.expect_error("invalid_text").await;
        assert_eq!(e["ref"], i);
    }
    ana.send(json!({"type": "chat", "text": "x".repeat(2001), "ref": "long"}))
        .await;
    assert_eq!(ana.expect_error("too_long").await["ref"], "long");
    ana.send(json!({"type": "chat", "text": "two\nlines"}))
        .await;
    assert_eq!(teacher.expect("chat").await["text"], "two\nlines");

    // A burst of 6 lines (one already spent), then refusals with the limit in the message.
    // The echo of "two\nlines" counts too: it spent the first token.
    let mut accepted = 0;
    let mut refused = 0;
    for i in 0..12 {
        ana.send(json!({"type": "chat", "text": format!("spam {i}"), "ref": i}))
            .await;
    }
    ana.send(json!({"type": "ping"})).await;
    loop {
        let m = ana.recv().await;
        match m["type"].as_str().unwrap() {
            "chat" => accepted += 1,
            "error" => {
                assert_eq!(m["code"], "rate_limited", "{m}");
                assert!(m["message"]
                    .as_str()
                    .unwrap()
                    .contains("3 lines per second"));
                refused += 1;
            }
            "pong" => break,
            _ => {}
        }
    }
    assert!(
        (6..=7).contains(&accepted),
        "{accepted} accepted, {refused} refused"
    );
    assert_eq!(accepted + refused, 13);
    // A moment later the person can chat again.
    tokio::time::sleep(Duration::from_millis(700)).await;
    ana.send(json!({"type": "chat", "text": "sorry"})).await;
    loop {
        if teacher.expect("chat").await["text"] == "sorry" {
            break;
        }
    }
}

/// The next close frame's code; panics on a bare disconnect (1006) or after `within`.
async fn close_code_within(c: &mut Client, within: Duration) -> u16 {
    let deadline = tokio::time::Instant::now() + within;
    let mut skipped = 0usize;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, c.ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(f))))) => return u16::from(f.code),
            Ok(Some(Ok(Message::Close(None)))) => panic!("a close frame without a code"),
            Ok(Some(Ok(_))) => skipped += 1,
            Ok(Some(Err(e))) => panic!("no close frame after {skipped} messages: {e}"),
            Ok(None) => {
                panic!("the connection ended without a close frame after {skipped} messages")
            }
            Err(_) => panic!("no close within {within:?} ({skipped} messages read)"),
        }
    }
}

#[tokio::test]
async fn a_slow_reader_that_reads_again_finds_close_4004() {
    let aula = AulaBuilder::new(&temp_dir("slow-reader"))
        .env("AULA_LIMITS__SEND_QUEUE_BYTES", "262144")
        .env("AULA_LIMITS__MESSAGES_PER_SEC", "100000")
        .env("AULA_LIMITS__BURST", "100000")
        .env("AULA_LIMITS__CHAT_PER_SEC", "100000")
        .env("AULA_LIMITS__CHAT_BURST", "100000")
        .start();
    let (t, s) = tokens(&aula.create_class("Busy"));
    let mut teacher = Client::join(&aula, &t, "T").await;
    // Joins, then reads nothing while the class talks.
    let mut slow = Client::join(&aula, &s, "Slow").await;
    teacher.expect("peer_joined").await;
    let line = "y".repeat(1900);
    let mut dropped = false;
    for round in 0..2000 {
        for _ in 0..20 {
            teacher.send(json!({"type": "chat", "text": line})).await;
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
    assert!(dropped, "the slow reader was never dropped");
    // It comes back to reading a few seconds later: it gets what its socket held, then 4004.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        close_code_within(&mut slow, Duration::from_secs(10)).await,
        4004
    );
}

#[tokio::test]
async fn malformed_frames_get_close_1002_and_1007() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;

    let aula = Aula::start(&temp_dir("malformed"));
    let (_, s) = tokens(&aula.create_class("Frames"));
    // A reserved bit without an extension: a protocol error.
    let mut c = Client::join(&aula, &s, "Rsv").await;
    let mut frame = Frame::message(b"{}".to_vec(), OpCode::Data(Data::Text), true);
    frame.header_mut().rsv1 = true;
    c.send_raw(Message::Frame(frame)).await;
    assert_eq!(close_code_within(&mut c, WAIT).await, 1002);
    // A continuation frame with nothing to continue: a protocol error, before joining too.
    let mut c = Client::connect(&aula).await;
    let frame = Frame::message(b"x".to_vec(), OpCode::Data(Data::Continue), true);
    c.send_raw(Message::Frame(frame)).await;
    assert_eq!(close_code_within(&mut c, WAIT).await, 1002);
    // A text frame that is not UTF-8.
    let mut c = Client::join(&aula, &s, "Utf").await;
    let frame = Frame::message(vec![b'"', 0xff, 0xfe, b'"'], OpCode::Data(Data::Text), true);
    c.send_raw(Message::Frame(frame)).await;
    assert_eq!(close_code_within(&mut c, WAIT).await, 1007);
    // The server serves on.
    let mut c = Client::join(&aula, &s, "Fine").await;
    c.send(json!({"type": "ping"})).await;
    c.expect("pong").await;
}

/// The TURN entry of some `ice_servers`: (username, password, expiry, port).
fn turn_credentials(servers: &Value) -> (String, String, u64, String) {
    let turn = servers
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["username"].is_string())
        .expect("a TURN entry");
    let username = turn["username"].as_str().unwrap().to_string();
    let expiry = username.split(':').next().unwrap().parse().unwrap();
    let url = turn["urls"][0].as_str().unwrap();
    let port = url.rsplit(':').next().unwrap().split('?').next().unwrap();
    let password = turn["credential"].as_str().unwrap().to_string();
    (username, password, expiry, port.to_string())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn turn_credentials_live_ten_minutes_by_default() {
    let aula = Aula::start(&temp_dir("ice-default"));
    let (_, s) = tokens(&aula.create_class("Short-lived"));
    let ana = Client::join(&aula, &s, "Ana").await;
    let (_, _, expiry, _) = turn_credentials(&ana.welcome["ice_servers"]);
    let left = expiry.saturating_sub(unix_now());
    assert!((595..=600).contains(&left), "credentials for {left} s");
}

#[tokio::test]
async fn turn_credentials_are_renewed_before_expiry_while_in_the_class() {
    let aula = AulaBuilder::new(&temp_dir("ice-renewal"))
        .env("AULA_TURN__MAX_CREDENTIAL_LIFETIME_SECS", "6")
        .env("AULA_ICE__RENEW_BEFORE_SECS", "3")
        .start();
    let (t, s) = tokens(&aula.create_class("Renewed"));
    let mut teacher = Client::join(&aula, &t, "T").await;
    let mut ana = Client::join(&aula, &s, "Ana").await;
    let (user0, _, expiry0, _) = turn_credentials(&ana.welcome["ice_servers"]);
    assert!(expiry0 <= unix_now() + 6);

    // Two renewals, each before the credentials it replaces expire, bound to the same person.
    let mut expiry = expiry0;
    let mut latest = None;
    for _ in 0..2 {
        let renewal = ana.expect("ice_servers").await;
        let now = unix_now();
        let (user, password, next, port) = turn_credentials(&renewal["ice_servers"]);
        assert!(now < expiry, "renewed at {now}, after the expiry {expiry}");
        assert!(next > expiry && next <= now + 6, "{next} after {expiry}");
        assert_eq!(
            user.split_once(':').unwrap().1,
            user0.split_once(':').unwrap().1
        );
        expiry = next;
        latest = Some((user, password, port));
    }
    // The renewed credentials work on the relay.
    let (user, password, port) = latest.unwrap();
    let out = std::process::Command::new("turnutils_uclient")
        .args(["-y", "-u", &user, "-w", &password, "-p", &port])
        .args(["-m", "1", "-n", "10", "-l", "100", "127.0.0.1"])
        .output()
        .expect("turnutils_uclient runs (apt-get install coturn)");
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("Total lost packets 0"), "{log}");

    // A resume gets fresh credentials in its welcome.
    let resume = ana.welcome["resume_token"].as_str().unwrap().to_string();
    drop(ana);
    let mut back = Client::connect(&aula).await;
    back.send(json!({"type": "join", "token": s, "name": "Ana", "resume": resume}))
        .await;
    let welcome = back.expect("welcome").await;
    assert_eq!(welcome["resumed"], true);
    let (_, _, resumed_expiry, _) = turn_credentials(&welcome["ice_servers"]);
    assert!(resumed_expiry >= expiry, "{resumed_expiry} < {expiry}");

    // Removed: no more renewals; the connection closes, and nothing renews the credentials.
    back.id = welcome["id"].as_str().unwrap().to_string();
    teacher
        .send(json!({"type": "remove", "peer": back.id}))
        .await;
    back.expect("removed").await;
    assert_eq!(back.expect_close().await, 4002);
}
