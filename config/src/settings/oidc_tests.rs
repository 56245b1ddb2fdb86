//! Tests of the `[oidc]` section: keyed checks, the environment, the secret file, redaction.

use super::*;

fn on() -> Settings {
    let mut s = Settings::default();
    s.oidc.issuer = Some("https://login.school.example/realms/staff".into());
    s.oidc.client_id = Some("aula".into());
    s.oidc.teacher_emails = vec!["rivera@school.example".into()];
    s
}

#[test]
fn off_by_default_and_unchecked_while_off() {
    let mut s = Settings::default();
    assert!(!s.oidc.enabled());
    // Half a configuration without an issuer is not an error: nothing uses it.
    s.oidc.client_id = Some("aula".into());
    s.validate().unwrap();
    on().validate().unwrap();
    assert!(on().oidc.enabled());
}

#[test]
fn every_bad_value_names_its_key() {
    type Mutation = fn(&mut Settings);
    let cases: Vec<(Mutation, &str)> = vec![
        (
            |s| s.oidc.issuer = Some("login.example".into()),
            "oidc.issuer",
        ),
        (
            |s| s.oidc.issuer = Some("http://login.example".into()),
            "oidc.issuer",
        ),
        (|s| s.oidc.issuer = Some("https://".into()), "oidc.issuer"),
        (
            |s| s.oidc.issuer = Some("https://a.example/?x=1".into()),
            "oidc.issuer",
        ),
        (|s| s.oidc.client_id = None, "oidc.client_id"),
        (|s| s.oidc.client_id = Some(" ".into()), "oidc.client_id"),
        (
            |s| s.oidc.client_secret = Some("".into()),
            "oidc.client_secret",
        ),
        (
            |s| s.oidc.allowed_domains = vec!["@school.example".into()],
            "oidc.allowed_domains",
        ),
        (
            |s| s.oidc.allowed_domains = vec!["localhost".into()],
            "oidc.allowed_domains",
        ),
        (
            |s| s.oidc.teacher_emails = vec!["rivera".into()],
            "oidc.teacher_emails",
        ),
        (
            |s| s.oidc.teacher_groups = vec!["".into()],
            "oidc.teacher_groups",
        ),
        (|s| s.oidc.groups_claim = "".into(), "oidc.groups_claim"),
        (
            |s| s.oidc.teacher_claim = Some("".into()),
            "oidc.teacher_claim",
        ),
        (
            |s| s.oidc.teacher_claim_value = Some("Teacher".into()),
            "oidc.teacher_claim_value",
        ),
        (|s| s.oidc.all_teachers = true, "oidc.all_teachers"),
        (|s| s.oidc.teacher_emails.clear(), "oidc.teacher_emails"),
        (
            |s| s.oidc.extra_scopes = vec!["a b".into()],
            "oidc.extra_scopes",
        ),
        (|s| s.oidc.button_label = " ".into(), "oidc.button_label"),
        (
            |s| s.oidc.button_label = "x".repeat(61),
            "oidc.button_label",
        ),
    ];
    for (mutate, key) in cases {
        let mut s = on();
        mutate(&mut s);
        match s.validate() {
            Err(SettingsError::InvalidValue { key: k, .. }) => assert_eq!(k, key),
            other => panic!("expected an error for {key}, got {other:?}"),
        }
    }
}

#[test]
fn plain_http_issuer_only_on_loopback() {
    for issuer in [
        "http://127.0.0.1:4000",
        "http://localhost:4000/realms/x",
        "http://[::1]:4000",
    ] {
        let mut s = on();
        s.oidc.issuer = Some(issuer.into());
        // Only with the explicit allowance...
        match s.validate() {
            Err(SettingsError::InvalidValue { key, message }) => {
                assert_eq!(key, "oidc.issuer");
                assert!(message.contains("allow_http_on_loopback"), "{message}");
            }
            other => panic!("{issuer}: expected a refusal, got {other:?}"),
        }
        s.oidc.allow_http_on_loopback = true;
        s.validate().unwrap_or_else(|e| panic!("{issuer}: {e}"));
    }
    // ...and never for another host.
    let mut s = on();
    s.oidc.allow_http_on_loopback = true;
    for issuer in [
        "http://login.example",
        "http://10.0.0.1:8080",
        "http://127.0.0.1.example",
    ] {
        s.oidc.issuer = Some(issuer.into());
        assert!(s.validate().is_err(), "{issuer}");
    }
}

#[test]
fn each_teacher_rule_alone_is_enough() {
    type Mutation = fn(&mut Settings);
    let rules: Vec<Mutation> = vec![
        |s| s.oidc.teacher_groups = vec!["/staff".into()],
        |s| s.oidc.teacher_claim = Some("aula_teacher".into()),
        |s| {
            s.oidc.allowed_domains = vec!["staff.school.example".into()];
            s.oidc.all_teachers = true;
        },
    ];
    for rule in rules {
        let mut s = on();
        s.oidc.teacher_emails.clear();
        rule(&mut s);
        s.validate().unwrap();
    }
}

#[test]
fn the_environment_sets_the_section_and_lists_split_on_commas() {
    let dir = tempfile::tempdir().unwrap();
    let env: std::collections::HashMap<String, String> = [
        ("AULA_OIDC__ISSUER", "https://accounts.google.com"),
        ("AULA_OIDC__CLIENT_ID", "id-1"),
        ("AULA_OIDC__CLIENT_SECRET", "s3cret-value"),
        (
            "AULA_OIDC__ALLOWED_DOMAINS",
            "school.example, staff.school.example",
        ),
        (
            "AULA_OIDC__TEACHER_EMAILS",
            "a@school.example,b@school.example",
        ),
        ("AULA_OIDC__BUTTON_LABEL", "Sign in with Google"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let s = Settings::load(&LoadOptions {
        working_dir: Some(dir.path().to_path_buf()),
        env: Some(env),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        s.oidc.issuer.as_deref(),
        Some("https://accounts.google.com")
    );
    assert_eq!(
        s.oidc.client_secret().unwrap().as_deref(),
        Some("s3cret-value")
    );
    assert_eq!(
        s.oidc.allowed_domains,
        vec!["school.example", "staff.school.example"]
    );
    assert_eq!(s.oidc.teacher_emails.len(), 2);
    assert_eq!(s.oidc.button_label, "Sign in with Google");
    // A bad value from the environment is refused with its key too.
    let mut bad = std::collections::HashMap::new();
    bad.insert(
        "AULA_OIDC__ISSUER".to_string(),
        "http://idp.example".to_string(),
    );
    bad.insert("AULA_OIDC__CLIENT_ID".to_string(), "x".to_string());
    bad.insert("AULA_OIDC__ALL_TEACHERS".to_string(), "true".to_string());
    bad.insert(
        "AULA_OIDC__ALLOWED_DOMAINS".to_string(),
        "school.example".to_string(),
    );
    let err = Settings::load(&LoadOptions {
        working_dir: Some(dir.path().to_path_buf()),
        env: Some(bad),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("oidc.issuer"), "{err}");
}

#[test]
fn the_secret_comes_from_a_file_and_is_never_in_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, "  file-s3cret\n").unwrap();
    let mut s = on();
    s.oidc.client_secret_file = Some(path.clone());
    assert_eq!(
        s.oidc.client_secret().unwrap().as_deref(),
        Some("file-s3cret")
    );
    // The value given directly wins over the file.
    s.oidc.client_secret = Some("direct-s3cret".into());
    assert_eq!(
        s.oidc.client_secret().unwrap().as_deref(),
        Some("direct-s3cret")
    );
    let debug = format!("{s:?}");
    assert!(!debug.contains("direct-s3cret"), "{debug}");
    assert!(debug.contains("<redacted>"));
    // A missing file is an error naming the key and the path.
    s.oidc.client_secret = None;
    s.oidc.client_secret_file = Some(dir.path().join("missing"));
    let err = s.oidc.client_secret().unwrap_err().to_string();
    assert!(
        err.contains("oidc.client_secret_file") && err.contains("missing"),
        "{err}"
    );
}
