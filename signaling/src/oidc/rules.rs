//! Who gets in: the `[oidc]` rules applied to the identity in a verified ID token.
//!
//! Pure functions over plain data, so every rule is unit-tested without a provider. A person is
//! admitted as a teacher when
//! 1. the token carries an email (and `email_verified: true` unless `require_verified_email` is
//!    off),
//! 2. the email's domain is one of `allowed_domains` (exactly, any case; any domain when empty),
//! 3. and one teacher rule matches: `all_teachers`, `teacher_emails`, a `teacher_groups` value in
//!    the `groups_claim` claim, or `teacher_claim` (with `teacher_claim_value`).
//!
//! Everyone else gets a [`Refusal`] whose text the refusal page shows.

use aula_config::settings::OidcSettings;
use serde_json::{Map, Value};

/// Longest name taken from the provider, in characters (longer ones are cut).
pub const MAX_NAME_CHARS: usize = 64;

/// What a verified ID token says about the person.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// The provider's stable id of the person (`sub`).
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    /// `name`, else `given_name family_name`, as the provider sends them.
    pub name: Option<String>,
    /// Every other claim of the token (groups, roles, custom claims).
    pub claims: Map<String, Value>,
}

/// A person who may sign in as a teacher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The email, lower-cased: the account is found by it.
    pub email: String,
    /// A display name: the provider's, tidied, else the email's local part.
    pub name: String,
}

/// Why a signed-in person is not let in. `Display` is the reason the refusal page gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("your account at the sign-in provider has no email address Aula can use")]
    NoEmail,
    #[error("the sign-in provider has not verified the email address {0}")]
    EmailNotVerified(String),
    #[error("{email} is not an address of this school: only people with an address at {} can sign in here", allowed.join(" or "))]
    DomainNotAllowed { email: String, allowed: Vec<String> },
    #[error("{0} is not on this server's list of teachers")]
    NotATeacher(String),
}

impl Refusal {
    /// What the person can do about it, for the refusal page.
    pub fn advice(&self) -> &'static str {
        match self {
            Refusal::NoEmail | Refusal::EmailNotVerified(_) => {
                "Ask your school's IT team to add or verify the email address of your account, \
                 then sign in again."
            }
            Refusal::DomainNotAllowed { .. } => {
                "Sign out of the sign-in provider, then sign in again with your school account. \
                 Students do not need an account: use the class link or code from your teacher."
            }
            Refusal::NotATeacher(_) => {
                "Only teachers sign in to Aula. Students join with the class link or code from \
                 their teacher. If you teach here, ask your school's Aula administrator to add \
                 you as a teacher."
            }
        }
    }
}

/// Applies the rules of `settings` to `identity`.
pub fn decide(settings: &OidcSettings, identity: &Identity) -> Result<Admitted, Refusal> {
    let email = identity
        .email
        .as_deref()
        .map(|e| e.trim().to_lowercase())
        .filter(|e| valid_email(e))
        .ok_or(Refusal::NoEmail)?;
    if settings.require_verified_email && identity.email_verified != Some(true) {
        return Err(Refusal::EmailNotVerified(email));
    }
    let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    if !settings.allowed_domains.is_empty()
        && !settings
            .allowed_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    {
        return Err(Refusal::DomainNotAllowed {
            email,
            allowed: settings.allowed_domains.clone(),
        });
    }
    if !is_teacher(settings, &email, &identity.claims) {
        return Err(Refusal::NotATeacher(email));
    }
    let name = identity
        .name
        .as_deref()
        .and_then(tidy_name)
        .unwrap_or_else(|| email.split('@').next().unwrap_or(&email).to_string());
    Ok(Admitted { email, name })
}

/// One `@` with something on both sides, no spaces or control characters.
fn valid_email(email: &str) -> bool {
    let mut parts = email.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !email
            .chars()
            .any(|c| c.is_whitespace() || crate::text::is_hidden_or_control(c))
}

/// Whether one of the teacher rules matches (the email and domain are already checked).
fn is_teacher(settings: &OidcSettings, email: &str, claims: &Map<String, Value>) -> bool {
    if settings.all_teachers {
        return true;
    }
    if settings
        .teacher_emails
        .iter()
        .any(|t| t.trim().eq_ignore_ascii_case(email))
    {
        return true;
    }
    if !settings.teacher_groups.is_empty() {
        let groups = strings(claims.get(&settings.groups_claim));
        if settings
            .teacher_groups
            .iter()
            .any(|g| groups.iter().any(|have| have == g))
        {
            return true;
        }
    }
    match (&settings.teacher_claim, &settings.teacher_claim_value) {
        (Some(claim), Some(value)) => strings(claims.get(claim)).contains(value),
        (Some(claim), None) => claims.get(claim).is_some_and(truthy),
        (None, _) => false,
    }
}

/// A claim's string values: a string, or the strings of a list (numbers as written).
fn strings(claim: Option<&Value>) -> Vec<String> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match claim {
        Some(Value::Array(items)) => items.iter().filter_map(one).collect(),
        Some(v) => one(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// `true`, `1`, or the strings `true`, `yes`, `1` (any case).
fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_u64() == Some(1),
        Value::String(s) => ["true", "yes", "1"].contains(&s.trim().to_lowercase().as_str()),
        _ => false,
    }
}

/// The provider's name made a display name: hidden and control characters dropped, spaces
/// collapsed, cut to [`MAX_NAME_CHARS`]; `None` when nothing is left.
fn tidy_name(raw: &str) -> Option<String> {
    let visible: String = raw
        .chars()
        .map(|c| {
            if crate::text::is_hidden_or_control(c) {
                ' '
            } else {
                c
            }
        })
        .collect();
    let name: String = visible
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_NAME_CHARS)
        .collect();
    let name = name.trim_end().to_string();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn settings() -> OidcSettings {
        OidcSettings {
            issuer: Some("https://login.school.example".into()),
            client_id: Some("aula".into()),
            allowed_domains: vec!["school.example".into()],
            teacher_emails: vec!["Rivera@School.example".into()],
            ..OidcSettings::default()
        }
    }

    fn person(email: &str) -> Identity {
        Identity {
            subject: "sub-1".into(),
            email: Some(email.into()),
            email_verified: Some(true),
            name: Some("Ms  Rivera".into()),
            claims: Map::new(),
        }
    }

    fn with_claims(email: &str, claims: Value) -> Identity {
        let Value::Object(claims) = claims else {
            panic!("an object")
        };
        Identity {
            claims,
            ..person(email)
        }
    }

    #[test]
    fn a_listed_teacher_in_the_domain_is_admitted_with_a_tidy_name() {
        let admitted = decide(&settings(), &person("RIVERA@school.example")).unwrap();
        assert_eq!(admitted.email, "rivera@school.example");
        assert_eq!(admitted.name, "Ms Rivera");
    }

    #[test]
    fn the_domain_must_match_exactly() {
        let mut s = settings();
        s.all_teachers = true;
        for email in [
            "rivera@other.example",
            "rivera@sub.school.example",
            "rivera@school.example.evil",
            "rivera@evilschool.example",
        ] {
            assert!(
                matches!(
                    decide(&s, &person(email)),
                    Err(Refusal::DomainNotAllowed { .. })
                ),
                "{email}"
            );
        }
        assert!(decide(&s, &person("anyone@SCHOOL.EXAMPLE")).is_ok());
        // No domain list: any domain (a teacher rule still decides).
        s.allowed_domains.clear();
        s.all_teachers = false;
        s.teacher_emails = vec!["guest@other.example".into()];
        assert!(decide(&s, &person("guest@other.example")).is_ok());
    }

    #[test]
    fn no_email_or_an_unverified_one_is_refused() {
        let s = settings();
        let mut p = person("rivera@school.example");
        p.email_verified = None;
        assert_eq!(
            decide(&s, &p),
            Err(Refusal::EmailNotVerified("rivera@school.example".into()))
        );
        p.email_verified = Some(false);
        assert!(matches!(decide(&s, &p), Err(Refusal::EmailNotVerified(_))));
        // A provider that never sends the claim (Entra ID), with the check turned off.
        let mut relaxed = settings();
        relaxed.require_verified_email = false;
        p.email_verified = None;
        assert!(decide(&relaxed, &p).is_ok());
        for bad in [
            None,
            Some(""),
            Some("rivera"),
            Some("a@b@school.example"),
            Some("a b@school.example"),
        ] {
            let p = Identity {
                email: bad.map(String::from),
                ..person("x@school.example")
            };
            assert_eq!(decide(&s, &p), Err(Refusal::NoEmail), "{bad:?}");
        }
    }

    #[test]
    fn someone_in_the_domain_without_a_teacher_rule_is_refused() {
        assert_eq!(
            decide(&settings(), &person("student@school.example")),
            Err(Refusal::NotATeacher("student@school.example".into()))
        );
    }

    #[test]
    fn groups_claim_rule() {
        let mut s = settings();
        s.teacher_emails.clear();
        s.teacher_groups = vec!["/staff".into()];
        let staff = with_claims("a@school.example", json!({"groups": ["/pupils", "/staff"]}));
        assert!(decide(&s, &staff).is_ok());
        let single = with_claims("a@school.example", json!({"groups": "/staff"}));
        assert!(decide(&s, &single).is_ok());
        let pupil = with_claims("a@school.example", json!({"groups": ["/pupils", "/Staff"]}));
        assert!(matches!(decide(&s, &pupil), Err(Refusal::NotATeacher(_))));
        // Another claim name (Entra ID sends group ids in "groups", Keycloak can use any name).
        s.groups_claim = "memberOf".into();
        assert!(decide(&s, &staff).is_err());
        let member = with_claims("a@school.example", json!({"memberOf": ["/staff"]}));
        assert!(decide(&s, &member).is_ok());
    }

    #[test]
    fn teacher_claim_rule_with_and_without_a_value() {
        let mut s = settings();
        s.teacher_emails.clear();
        s.teacher_claim = Some("is_teacher".into());
        for yes in [
            json!(true),
            json!("true"),
            json!("Yes"),
            json!("1"),
            json!(1),
        ] {
            let p = with_claims("a@school.example", json!({"is_teacher": yes}));
            assert!(decide(&s, &p).is_ok(), "{yes}");
        }
        for no in [
            json!(false),
            json!("no"),
            json!(0),
            json!(null),
            json!(["true"]),
        ] {
            let p = with_claims("a@school.example", json!({"is_teacher": no}));
            assert!(decide(&s, &p).is_err(), "{no}");
        }
        assert!(
            decide(&s, &person("a@school.example")).is_err(),
            "claim absent"
        );
        // Entra ID app roles: a list that must hold the value.
        s.teacher_claim = Some("roles".into());
        s.teacher_claim_value = Some("Teacher".into());
        let teacher = with_claims("a@school.example", json!({"roles": ["Reader", "Teacher"]}));
        assert!(decide(&s, &teacher).is_ok());
        let reader = with_claims("a@school.example", json!({"roles": ["Reader"]}));
        assert!(decide(&s, &reader).is_err());
        let exact = with_claims("a@school.example", json!({"roles": "Teacher"}));
        assert!(decide(&s, &exact).is_ok());
    }

    #[test]
    fn the_name_falls_back_to_the_email_and_loses_hidden_characters() {
        let s = settings();
        let mut p = person("rivera@school.example");
        p.name = Some("  \u{202E}Ms\u{0007} Rivera ".into());
        assert_eq!(decide(&s, &p).unwrap().name, "Ms Rivera");
        p.name = Some("\u{200B} ".into());
        assert_eq!(decide(&s, &p).unwrap().name, "rivera");
        p.name = None;
        assert_eq!(decide(&s, &p).unwrap().name, "rivera");
        p.name = Some("x".repeat(200));
        assert_eq!(decide(&s, &p).unwrap().name.chars().count(), MAX_NAME_CHARS);
    }

    #[test]
    fn every_refusal_says_what_to_do() {
        let refusals = [
            Refusal::NoEmail,
            Refusal::EmailNotVerified("a@b.example".into()),
            Refusal::DomainNotAllowed {
                email: "a@b.example".into(),
                allowed: vec!["school.example".into()],
            },
            Refusal::NotATeacher("a@b.example".into()),
        ];
        for r in refusals {
            assert!(!r.to_string().is_empty() && r.advice().ends_with('.'));
        }
    }

    proptest! {
        /// Whatever the token says, an admitted person's email is in an allowed domain, is on the
        /// teacher list, and their name is a short visible one.
        #[test]
        fn admitted_only_inside_the_rules(
            local in "[a-zA-Z0-9.]{1,12}",
            domain in prop_oneof![
                Just("school.example".to_string()),
                Just("SCHOOL.example".to_string()),
                Just("other.example".to_string()),
                "[a-z]{1,8}\\.example",
            ],
            listed in any::<bool>(),
            verified in proptest::option::of(any::<bool>()),
            name in proptest::option::of(any::<String>()),
        ) {
            let email = format!("{local}@{domain}");
            let mut s = settings();
            s.teacher_emails = if listed { vec![email.to_uppercase()] } else { vec!["t@school.example".into()] };
            let p = Identity { email: Some(email.clone()), email_verified: verified, name, ..Identity::default() };
            let on_list = listed || email.eq_ignore_ascii_case("t@school.example");
            match decide(&s, &p) {
                Ok(a) => {
                    prop_assert!(a.email.ends_with("@school.example"));
                    prop_assert!(on_list && verified == Some(true));
                    prop_assert!(!a.name.is_empty() && a.name.chars().count() <= MAX_NAME_CHARS);
                    prop_assert!(!a.name.chars().any(crate::text::is_hidden_or_control));
                }
                Err(Refusal::DomainNotAllowed { .. }) => prop_assert!(!domain.eq_ignore_ascii_case("school.example")),
                Err(Refusal::NotATeacher(_)) => prop_assert!(!on_list),
                Err(Refusal::EmailNotVerified(_)) => prop_assert!(verified != Some(true)),
                Err(Refusal::NoEmail) => prop_assert!(false, "a valid email was refused as missing"),
            }
        }
    }
}
