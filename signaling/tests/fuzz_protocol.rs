//! Fuzzing of the class protocol's JSON on the stable toolchain: proptest mutates valid client
//! messages of every type (bit flips, byte writes, truncation, insertion, duplicated ranges,
//! JSON tokens spliced in) and builds messages of every type from random field values; every
//! input goes through the WebSocket layer's `ws::parse` and, when it parses, `Hub::handle` for a
//! teacher and a student of a class on the SFU and of a direct class, with the clock moving and
//! `Hub::tick` run. A panic, an effect addressed to a connection that does not exist, or a server
//! message that does not serialize fails the test.
//!
//! `cargo test` runs a bounded number of cases (seconds); `AULA_FUZZ_CASES=N` runs N per
//! property (the figures of a long run are in docs/security.md, "Fuzzing").

use aula_signaling::hub::{ConnId, Effect, Hub, HubLimits, JoinRequest};
use aula_signaling::protocol::{Role, Topology, CLIENT_MESSAGE_TYPES};
use aula_signaling::ws;
use aula_testkit::mutate::{byte_mutation, ByteMutation, BYTE_MUTATION_KINDS};
use proptest::prelude::*;
use serde_json::{json, Value};

fn cases() -> u32 {
    std::env::var("AULA_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// A hub with two classes (SFU and direct), each with a teacher and a student.
struct World {
    hub: Hub,
    /// (conn, peer id) of the joined peers.
    peers: Vec<(ConnId, String)>,
    now_ms: u64,
}

impl World {
    fn new() -> World {
        let mut hub = Hub::new(HubLimits {
            sfu: true,
            ..HubLimits::default()
        });
        hub.add_class("big".into(), "Assembly".into(), Topology::Sfu);
        hub.add_class("small".into(), "Tutorial".into(), Topology::P2p);
        let mut peers = Vec::new();
        let joins = [
            ("big", Role::Teacher, "Ms T"),
            ("big", Role::Student, "Ana"),
            ("small", Role::Teacher, "Mr O"),
            ("small", Role::Student, "Ben"),
        ];
        for (i, (class, role, name)) in joins.into_iter().enumerate() {
            let conn = i as ConnId + 1;
            let req = JoinRequest {
                class: class.into(),
                role,
                fixed_name: None,
                name: Some(name.into()),
                resume: None,
                new_resume_token: format!("resume-{i}"),
                browser: None,
                personal_token: None,
                student: None,
                now_ms: 1_000,
            };
            let joined = hub.join(conn, req, |_| Vec::new()).expect("join");
            peers.push((conn, joined.peer));
        }
        World {
            hub,
            peers,
            now_ms: 1_000,
        }
    }

    /// Valid messages of every client type, naming real peers.
    fn seeds(&self) -> Vec<String> {
        let teacher = &self.peers[0].1;
        let ana = &self.peers[1].1;
        let sdp =
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n";
        let link = json!({"peer": teacher, "path": "relay_udp", "bitrate_kbps": 812.5,
            "loss": 0.01, "rtt_ms": 40.0, "reason": "ok"});
        let candidate =
            json!({"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"});
        [
            json!({"type": "join", "token": "t", "name": "Ana", "resume": "r", "browser": "b", "ref": 1}),
            json!({"type": "offer", "to": ana, "sdp": sdp}),
            json!({"type": "offer", "to": "sfu", "sdp": sdp, "ref": "x"}),
            json!({"type": "answer", "to": "sfu", "sdp": sdp}),
            json!({"type": "answer", "to": teacher, "sdp": sdp}),
            json!({"type": "candidate", "to": ana, "candidate": candidate}),
            json!({"type": "candidate", "to": "sfu", "candidate": null}),
            json!({"type": "chat", "text": "hello\nclass"}),
            json!({"type": "hand", "raised": true}),
            json!({"type": "media", "mic": true, "camera": false, "screen": true}),
            json!({"type": "stats", "links": [link.clone(), link]}),
            json!({"type": "mute", "peer": ana, "kind": "all"}),
            json!({"type": "remove", "peer": ana, "reason": "bye"}),
            json!({"type": "readmit", "peer": ana}),
            json!({"type": "lock", "locked": true}),
            json!({"type": "end"}),
            json!({"type": "grant", "peer": ana, "speak": true, "share": false}),
            json!({"type": "subscribe", "ref": 2}),
            json!({"type": "ping"}),
            json!({"type": "leave"}),
        ]
        .iter()
        .map(Value::to_string)
        .collect()
    }

    /// One frame from the peer at `who`: parsed as the WebSocket layer does, then handled.
    fn feed(&mut self, who: usize, frame: &str) {
        self.now_ms += 37;
        let conns: Vec<ConnId> = self.peers.iter().map(|p| p.0).collect();
        let conn = conns[who % conns.len()];
        if let Ok((msg, _reference)) = ws::parse(frame) {
            if let Ok(effects) = self.hub.handle(conn, msg, self.now_ms) {
                check(&conns, &effects);
            }
        }
        if self.now_ms.is_multiple_of(5) {
            let effects = self.hub.tick(self.now_ms);
            check(&conns, &effects);
        }
    }
}

fn check(conns: &[ConnId], effects: &[Effect]) {
    for e in effects {
        match e {
            Effect::Deliver { to, msg } => {
                for c in to {
                    assert!(conns.contains(c), "{msg:?} to unknown connection {c}");
                }
                serde_json::to_string(msg).expect("a server message serializes");
            }
            Effect::Close { conn, .. } => assert!(conns.contains(conn)),
            _ => {}
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Bytes(ByteMutation),
    /// A JSON token that changes a value's type or nesting.
    Token(usize, &'static str),
}

const TOKENS: [&str; 14] = [
    "null",
    "true",
    "1e999",
    "-0",
    "18446744073709551616",
    "\"\"",
    "[]",
    "{}",
    "\"\\u0000\"",
    "\"\\ud800\"",
    ",",
    ":",
    "[[[[[[[[",
    "\"\u{202e}\"",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        BYTE_MUTATION_KINDS => byte_mutation().prop_map(Mutation::Bytes),
        1 => (any::<usize>(), prop::sample::select(TOKENS.to_vec()))
            .prop_map(|(p, t)| Mutation::Token(p, t)),
    ]
}

fn apply(b: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::Bytes(bytes) => bytes.apply(b),
        Mutation::Token(p, t) => {
            let at = p % (b.len() + 1);
            b.splice(at..at, t.bytes());
        }
    }
}

/// A JSON value of any shape, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: [&str; 18] = [
    "to",
    "sdp",
    "candidate",
    "text",
    "raised",
    "mic",
    "camera",
    "screen",
    "links",
    "peer",
    "kind",
    "reason",
    "locked",
    "speak",
    "share",
    "ref",
    "token",
    "name",
];

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Mutated valid messages, several in a row from the classes' peers.
    #[test]
    fn mutated_messages(
        frames in proptest::collection::vec(
            (0usize..20, any::<usize>(), proptest::collection::vec(mutation(), 1..6)),
            1..8,
        ),
    ) {
        let mut w = World::new();
        let seeds = w.seeds();
        for (seed, who, muts) in frames {
            let mut b = seeds[seed % seeds.len()].clone().into_bytes();
            for m in &muts {
                apply(&mut b, m);
            }
            // Text frames are UTF-8 (the WebSocket layer closes with 1007 on others).
            let text = String::from_utf8_lossy(&b);
            w.feed(who, &text);
        }
    }

    /// Messages of every type with fields of random shape and value.
    #[test]
    fn random_fields(
        kind in prop::sample::select(CLIENT_MESSAGE_TYPES.to_vec()),
        fields in proptest::collection::vec((prop::sample::select(FIELDS.to_vec()), any_json()), 0..6),
        who in any::<usize>(),
    ) {
        let mut w = World::new();
        let mut m = serde_json::Map::new();
        m.insert("type".into(), json!(kind));
        for (k, v) in fields {
            m.insert(k.into(), v);
        }
        w.feed(who, &Value::Object(m).to_string());
    }

    /// Arbitrary text.
    #[test]
    fn random_text(text in ".{0,200}", who in any::<usize>()) {
        let mut w = World::new();
        w.feed(who, &text);
    }
}
