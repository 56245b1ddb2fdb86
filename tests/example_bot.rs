//! Scripting a class is proven, not promised: runs examples/class_bot.py against the real server.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use serde_json::json;

#[tokio::test]
async fn the_example_bot_greets_and_reacts_to_a_raised_hand() {
    let aula = Aula::start(&temp_dir("bot"));
    let mut bot = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/class_bot.py"
        ))
        .args([
            "--server",
            &aula.http(""),
            "--admin-key",
            ADMIN_KEY,
            "--max-hands",
            "1",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (scripts/test.sh installs it and the websockets package)");
    let mut first = String::new();
    BufReader::new(bot.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&first).expect("the bot prints the class as JSON");
    let token = info["student_token"].as_str().unwrap();

    // Wait until the bot has joined and greeted, then join as a student.
    let mut ana = loop {
        let mut c = Client::join(&aula, token, "Ana").await;
        if c.welcome["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "Aula Bot")
            && !c.welcome["chat"].as_array().unwrap().is_empty()
        {
            break c;
        }
        c.send(json!({"type": "leave"})).await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        ana.welcome["chat"][0]["text"],
        "Welcome! Raise your hand if you have a question."
    );
    ana.send(json!({"type": "hand", "raised": true})).await;
    let granted = loop {
        let m = ana.expect("peer_updated").await;
        if m["peer"]["id"] == ana.id {
            break m;
        }
    };
    assert_eq!(granted["peer"]["permissions"]["speak"], true);
    let reply = ana.expect("chat").await;
    assert_eq!(reply["text"], "Ana, go ahead: you may speak now.");
    let status = bot.wait().unwrap();
    assert!(status.success(), "the bot exits cleanly after --max-hands");
}
