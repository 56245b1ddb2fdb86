//! The wire forms of the protocol types, and the checked-in schema against them.

use super::*;

#[test]
fn join_parses_with_and_without_optional_fields() {
    let m: ClientMessage = serde_json::from_str(r#"{"type":"join","token":"t"}"#).unwrap();
    assert_eq!(
        m,
        ClientMessage::Join {
            token: "t".into(),
            name: None,
            resume: None,
            browser: None
        }
    );
    let m: ClientMessage =
        serde_json::from_str(r#"{"type":"join","token":"t","name":"Ana","resume":"r"}"#).unwrap();
    assert!(matches!(m, ClientMessage::Join { name: Some(n), resume: Some(_), .. } if n == "Ana"));
}

#[test]
fn unit_like_messages_accept_bare_type() {
    for t in ["ping", "end", "leave", "subscribe"] {
        let json = format!(r#"{{"type":"{t}"}}"#);
        serde_json::from_str::<ClientMessage>(&json).unwrap_or_else(|e| panic!("{t}: {e}"));
    }
}

#[test]
fn error_code_strings_match_serde() {
    for c in ErrorCode::ALL {
        assert_eq!(
            serde_json::to_value(c).unwrap(),
            serde_json::json!(c.as_str())
        );
    }
}

#[test]
fn chat_is_flattened_on_the_wire() {
    let m = ServerMessage::Chat {
        entry: ChatEntry {
            id: 1,
            from: "p1".into(),
            name: "Ana".into(),
            text: "hi".into(),
            time: 5,
            to: None,
        },
    };
    let v = serde_json::to_value(&m).unwrap();
    assert_eq!(v["type"], "chat");
    assert_eq!(v["text"], "hi");
    assert_eq!(v["from"], "p1");
}

/// The `type` constants in the generated schema's client messages.
fn schema_client_types() -> Vec<String> {
    let schema = json_schema();
    let variants = schema["$defs"]["ClientMessage"]["oneOf"]
        .as_array()
        .expect("oneOf")
        .clone();
    variants
        .iter()
        .map(|v| {
            v["properties"]["type"]["const"]
                .as_str()
                .expect("type const")
                .to_string()
        })
        .collect()
}

#[test]
fn client_type_list_matches_the_types() {
    let mut from_schema = schema_client_types();
    from_schema.sort();
    let mut listed: Vec<String> = CLIENT_MESSAGE_TYPES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(from_schema, listed);
    for t in CLIENT_MESSAGE_TYPES {
        // Every listed type parses (with its required fields absent, it is a bad message, not unknown).
        let err = serde_json::from_str::<ClientMessage>(&format!(r#"{{"type":"{t}"}}"#));
        if let Ok(m) = err {
            assert_eq!(m.kind(), t);
        }
    }
}

#[test]
fn checked_in_schema_matches_the_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.schema.json");
    let generated = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
    if std::env::var_os("AULA_BLESS").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/protocol.schema.json has drifted from the protocol types; regenerate it with \
         `cargo run -- schema > docs/protocol.schema.json` (or AULA_BLESS=1 cargo test)"
    );
}

#[test]
fn error_carries_ref() {
    let m = ServerMessage::Error {
        code: ErrorCode::Forbidden,
        message: "x".into(),
        reference: Some(serde_json::json!(7)),
    };
    assert_eq!(serde_json::to_value(&m).unwrap()["ref"], 7);
}
