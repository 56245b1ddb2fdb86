//! Rates: chat has its own limit (and refuses control characters), and link stats reach teachers
//! at most once an interval.

use super::fixtures::*;
use super::*;
use crate::protocol::LinkStats;

fn chat(hub: &mut Hub, conn: ConnId, text: &str, now_ms: u64) -> Result<Vec<Effect>, Refusal> {
    hub.handle(
        conn,
        ClientMessage::Chat {
            text: text.into(),
            to: None,
        },
        now_ms,
    )
}

#[test]
fn chat_has_its_own_rate_and_refuses_control_characters_but_newline() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "T");
    join(&mut hub, 2, "c1", Role::Student, "A");
    let t0 = 1_000_000;
    let burst = HubLimits::default().chat_burst as usize;
    let sent = (0..burst + 4)
        .filter(|i| chat(&mut hub, 2, &format!("line {i}"), t0).is_ok())
        .count();
    assert_eq!(sent, burst, "a burst, then refusals");
    let err = chat(&mut hub, 2, "one more", t0).unwrap_err();
    assert_eq!(err.code, ErrorCode::RateLimited, "{err}");
    // The limit is per person: the teacher still talks, and the student again a moment later.
    chat(&mut hub, 1, "teacher", t0).unwrap();
    chat(&mut hub, 2, "later", t0 + 400).unwrap();

    let t1 = t0 + 60_000;
    for bad in [
        "bell\u{7}",
        "tab\there",
        "cr\rlf",
        "esc\u{1b}[2J",
        "rtl\u{202E}txt.exe",
        "iso\u{2066}x",
    ] {
        let err = chat(&mut hub, 2, bad, t1).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidText, "{bad:?}: {err}");
    }
    let fx = chat(&mut hub, 2, "two\nlines 👩\u{200D}👩\u{200D}👧", t1).unwrap();
    let ServerMessage::Chat { entry } = &to(1, &fx)[0] else {
        panic!("{fx:?}")
    };
    assert_eq!(entry.text, "two\nlines 👩\u{200D}👩\u{200D}👧");
    // Refused lines spend none of the rate.
    assert!((0..burst - 1).all(|i| chat(&mut hub, 2, &format!("{i}"), t1).is_ok()));
}

fn link(peer: &str, reason: Option<String>) -> LinkStats {
    LinkStats {
        peer: peer.into(),
        path: crate::protocol::MediaPath::Direct,
        bitrate_kbps: Some(500.0),
        loss: None,
        rtt_ms: None,
        reason,
    }
}

fn stats(
    hub: &mut Hub,
    conn: ConnId,
    links: Vec<LinkStats>,
    now_ms: u64,
) -> Result<Vec<Effect>, Refusal> {
    hub.handle(conn, ClientMessage::Stats { links }, now_ms)
}

#[test]
fn stats_reach_teachers_at_most_once_an_interval_newest_first() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "T");
    let (s, _) = join(&mut hub, 2, "c1", Role::Student, "A");
    let t0 = 5_000_000;
    let fx = stats(&mut hub, 2, vec![link("p1", Some("first".into()))], t0).unwrap();
    assert_eq!(to(1, &fx).len(), 1);
    // A flood within the interval forwards nothing at once ...
    for i in 0..50 {
        let fx = stats(
            &mut hub,
            2,
            vec![link("p1", Some(format!("r{i}")))],
            t0 + 10 + i,
        )
        .unwrap();
        assert!(fx.is_empty(), "{fx:?}");
    }
    assert!(hub.tick(t0 + 500).is_empty(), "not before the interval");
    // ... and the newest waiting report when the interval is over.
    let fx = hub.tick(t0 + 1000);
    assert_eq!(
        to(1, &fx),
        vec![ServerMessage::Stats {
            from: s.clone(),
            links: vec![link("p1", Some("r49".into()))]
        }]
    );
    assert!(hub.tick(t0 + 3000).is_empty(), "forwarded once");
    // A report after a quiet interval goes at once.
    assert_eq!(
        to(
            1,
            &stats(&mut hub, 2, vec![link("p1", None)], t0 + 3000).unwrap()
        )
        .len(),
        1
    );
}

#[test]
fn stats_fields_are_bounded() {
    let mut hub = hub();
    join(&mut hub, 1, "c1", Role::Teacher, "T");
    join(&mut hub, 2, "c1", Role::Student, "A");
    let max = HubLimits::default().max_stats_reason_len;
    let long_reason = vec![link("p1", Some("é".repeat(max + 1)))];
    assert_eq!(
        stats(&mut hub, 2, long_reason, 0).unwrap_err().code,
        ErrorCode::TooLong
    );
    let long_peer = vec![link(&"p".repeat(65), None)];
    assert_eq!(
        stats(&mut hub, 2, long_peer, 0).unwrap_err().code,
        ErrorCode::TooLong
    );
    let many = vec![link("p1", None); 65];
    assert_eq!(
        stats(&mut hub, 2, many, 0).unwrap_err().code,
        ErrorCode::TooLong
    );
    assert!(stats(&mut hub, 2, vec![link("p1", Some("é".repeat(max)))], 0).is_ok());
}

#[test]
fn one_sender_cannot_fill_a_receivers_queue_with_signaling() {
    let limits = HubLimits::default();
    let mut hub = hub();
    let (t, _) = join(&mut hub, 1, "c1", Role::Teacher, "T");
    join(&mut hub, 2, "c1", Role::Student, "A");
    let sdp = "v".repeat(30_000);
    let t0 = 9_000_000;
    let mut forwarded = 0;
    let mut refused = 0;
    // Ten seconds of 48 big offers a second (under the message rate).
    for i in 0..480u64 {
        let offer = ClientMessage::Offer {
            to: t.clone(),
            sdp: sdp.clone(),
        };
        match hub.handle(2, offer, t0 + i * 1000 / 48) {
            Ok(fx) => forwarded += to(1, &fx).len(),
            Err(r) => {
                assert_eq!(r.code, ErrorCode::RateLimited, "{r}");
                refused += 1;
            }
        }
    }
    let bytes = forwarded * sdp.len();
    let allowed = limits.signal_burst_bytes as usize + 10 * limits.signal_bytes_per_sec as usize;
    assert!(bytes <= allowed, "{bytes} bytes reached the teacher");
    assert!(refused > 400, "{refused}");
    // The sender's other messages still work; only forwarded bytes are throttled.
    hub.handle(2, ClientMessage::Hand { raised: true }, t0 + 10_000)
        .unwrap();
}
