//! Floor links through the real `aula` binary: in a class on direct connections two students
//! may negotiate a link only while one of them holds a right the teacher granted.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn classmates_negotiate_directly_only_while_one_of_them_has_the_floor() {
    let aula = Aula::start(&temp_dir("floor-links"));
    let class = aula.create_class_with_topology("Direct", "p2p");
    let t = class["teacher"]["token"].as_str().unwrap();
    let s = class["student"]["token"].as_str().unwrap();
    let mut teacher = Client::join(&aula, t, "Ms Rivera").await;
    let mut ana = Client::join(&aula, s, "Ana").await;
    let mut ben = Client::join(&aula, s, "Ben").await;

    // Without a right, a student cannot reach a classmate; the refusal carries the ref.
    let offer = |to: &str| json!({"type": "offer", "to": to, "sdp": "v=0", "ref": "floor"});
    ana.send(offer(&ben.id)).await;
    assert_eq!(ana.expect_error("forbidden").await["ref"], "floor");

    // Granted speech, Ana offers to Ben and Ben answers her.
    teacher
        .send(json!({"type": "grant", "peer": ana.id, "speak": true}))
        .await;
    ben.expect("peer_updated").await;
    ana.expect("peer_updated").await;
    ana.send(offer(&ben.id)).await;
    let got = ben.expect("offer").await;
    assert_eq!(got["from"], ana.id);
    ben.send(json!({"type": "answer", "to": ana.id, "sdp": "v=0 answer"}))
        .await;
    assert_eq!(ana.expect("answer").await["from"], ben.id);

    // Revoked: Ben's late candidate is refused.
    teacher
        .send(json!({"type": "grant", "peer": ana.id, "speak": false}))
        .await;
    ben.expect("peer_updated").await;
    let cand = json!({"candidate": "candidate:1 1 udp 1 192.0.2.7 5 typ host", "sdpMid": "0"});
    ben.send(json!({"type": "candidate", "to": ana.id, "candidate": cand, "ref": 7}))
        .await;
    assert_eq!(ben.expect_error("forbidden").await["ref"], 7);
}
