//! Unit tests of the SQLite account store: accounts, sessions and their revocation, setup links.

use super::*;
use crate::accounts::session::token_hash;

fn accounts() -> SqliteAccounts {
    SqliteAccounts::new(Arc::new(Mutex::new(Store::open_in_memory().unwrap())))
}

fn teacher(email: &str) -> NewAccount {
    NewAccount {
        email: email.into(),
        name: "Ms Rivera".into(),
        role: AccountRole::Teacher,
    }
}

fn session(account_id: &str, token: &str, created_at: u64, expires_at: u64) -> StoredSession {
    StoredSession {
        token_hash: token_hash(token),
        account_id: account_id.into(),
        created_at,
        expires_at,
    }
}

#[test]
fn accounts_are_created_found_listed_and_unique_by_email() {
    let store = accounts();
    let a = store
        .create_account(&teacher("rivera@school.example"), 100)
        .unwrap();
    assert_eq!(a.email, "rivera@school.example");
    assert_eq!(
        (a.role, a.disabled, a.created_at),
        (AccountRole::Teacher, false, 100)
    );
    assert_eq!(a.password_hash, None);
    assert_eq!(store.account(&a.id).unwrap(), Some(a.clone()));
    assert_eq!(
        store.account_by_email("rivera@school.example").unwrap(),
        Some(a.clone())
    );
    assert!(matches!(
        store.create_account(&teacher("rivera@school.example"), 101),
        Err(AccountError::DuplicateEmail(_))
    ));
    let b = store
        .create_account(
            &NewAccount {
                role: AccountRole::Admin,
                ..teacher("head@school.example")
            },
            90,
        )
        .unwrap();
    assert_eq!(store.accounts().unwrap(), vec![b.clone(), a.clone()]);
    assert!(store.delete_account(&b.id).unwrap());
    assert!(!store.delete_account(&b.id).unwrap());
    assert_eq!(store.accounts().unwrap(), vec![a]);
}

#[test]
fn an_external_sign_in_finds_or_creates_the_account() {
    let store = accounts();
    let first = store
        .find_or_create_external("kim@school.example", "Mr Kim", AccountRole::Teacher, 5)
        .unwrap();
    assert_eq!(
        (first.name.as_str(), first.role),
        ("Mr Kim", AccountRole::Teacher)
    );
    // The second sign-in finds the same account, whatever the provider says now.
    let again = store
        .find_or_create_external("kim@school.example", "Kim", AccountRole::Admin, 6)
        .unwrap();
    assert_eq!(again, first);
    // A disabled account is returned as it is; the caller refuses it.
    let patch = AccountPatch {
        disabled: Some(true),
        ..Default::default()
    };
    store.update_account(&first.id, &patch).unwrap();
    let disabled = store
        .find_or_create_external("kim@school.example", "Kim", AccountRole::Teacher, 7)
        .unwrap();
    assert!(disabled.disabled);
}

#[test]
fn sessions_expire_and_end_on_sign_out() {
    let store = accounts();
    let a = store
        .create_account(&teacher("a@school.example"), 0)
        .unwrap();
    store
        .create_session(&session(&a.id, "one", 100, 200))
        .unwrap();
    let (s, account) = store.session(&token_hash("one"), 150).unwrap().unwrap();
    assert_eq!((s.expires_at, account.id.as_str()), (200, a.id.as_str()));
    assert!(
        store.session(&token_hash("one"), 200).unwrap().is_none(),
        "expired"
    );
    assert!(store.session(&token_hash("other"), 150).unwrap().is_none());
    assert!(store.delete_session(&token_hash("one")).unwrap());
    assert!(store.session(&token_hash("one"), 150).unwrap().is_none());
    // Creating a session forgets the expired ones.
    store.create_session(&session(&a.id, "old", 0, 10)).unwrap();
    store
        .create_session(&session(&a.id, "new", 20, 90))
        .unwrap();
    assert!(!store.delete_session(&token_hash("old")).unwrap());
}

#[test]
fn disabling_a_new_password_and_deleting_end_every_session() {
    let store = accounts();
    let a = store
        .create_account(&teacher("a@school.example"), 0)
        .unwrap();
    let b = store
        .create_account(&teacher("b@school.example"), 0)
        .unwrap();
    let live = |token: &str| store.session(&token_hash(token), 50).unwrap().is_some();
    for token in ["a1", "a2"] {
        store
            .create_session(&session(&a.id, token, 1, 100))
            .unwrap();
    }
    store.create_session(&session(&b.id, "b1", 1, 100)).unwrap();

    let disable = AccountPatch {
        disabled: Some(true),
        ..Default::default()
    };
    assert!(
        store
            .update_account(&a.id, &disable)
            .unwrap()
            .unwrap()
            .disabled
    );
    assert!(!live("a1") && !live("a2") && live("b1"));
    // A session created for a disabled account anyway is never returned.
    store.create_session(&session(&a.id, "a3", 1, 100)).unwrap();
    assert!(!live("a3"));
    let enable = AccountPatch {
        disabled: Some(false),
        ..Default::default()
    };
    store.update_account(&a.id, &enable).unwrap();
    assert!(live("a3"));

    assert!(store.set_password_hash(&a.id, Some("$argon2id$x")).unwrap());
    assert!(!live("a3"));
    assert_eq!(
        store
            .account(&a.id)
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("$argon2id$x")
    );
    assert!(!store.set_password_hash("nobody", None).unwrap());

    store.delete_account(&b.id).unwrap();
    assert!(!live("b1"));
    assert!(store.update_account("nobody", &disable).unwrap().is_none());
}

#[test]
fn a_patch_changes_only_what_it_names() {
    let store = accounts();
    let a = store
        .create_account(&teacher("a@school.example"), 0)
        .unwrap();
    let patch = AccountPatch {
        name: Some("Dr Rivera".into()),
        role: Some(AccountRole::Admin),
        disabled: None,
    };
    let b = store.update_account(&a.id, &patch).unwrap().unwrap();
    assert_eq!(
        (b.name.as_str(), b.role, b.disabled),
        ("Dr Rivera", AccountRole::Admin, false)
    );
    assert_eq!(store.account(&a.id).unwrap(), Some(b));
}

#[test]
fn setup_tokens_expire_are_replaced_and_are_used_once() {
    let store = accounts();
    let a = store
        .create_account(&teacher("a@school.example"), 0)
        .unwrap();
    store
        .create_setup_token(&token_hash("s1"), &a.id, 100)
        .unwrap();
    assert_eq!(
        store
            .setup_token_account(&token_hash("s1"), 50)
            .unwrap()
            .map(|a| a.id),
        Some(a.id.clone())
    );
    assert!(store
        .setup_token_account(&token_hash("s1"), 100)
        .unwrap()
        .is_none());
    // A new link replaces the old one.
    store
        .create_setup_token(&token_hash("s2"), &a.id, 100)
        .unwrap();
    assert!(store
        .setup_token_account(&token_hash("s1"), 50)
        .unwrap()
        .is_none());
    assert!(
        !store.consume_setup_token(&token_hash("s2"), 100).unwrap(),
        "expired"
    );
    assert!(store.consume_setup_token(&token_hash("s2"), 99).unwrap());
    assert!(
        !store.consume_setup_token(&token_hash("s2"), 99).unwrap(),
        "used once"
    );
    assert!(store
        .setup_token_account(&token_hash("s2"), 50)
        .unwrap()
        .is_none());
}

#[test]
fn a_class_keeps_its_owner() {
    let db = Store::open_in_memory().unwrap();
    let record = crate::store::ClassRecord {
        id: "c1".into(),
        name: "Maths".into(),
        created_at: 1,
        topology: crate::protocol::Topology::Auto,
        owner: Some("acc1".into()),
    };
    db.insert(&record).unwrap();
    assert_eq!(db.get("c1").unwrap(), Some(record.clone()));
    assert_eq!(db.list().unwrap(), vec![record]);
}

#[test]
fn a_version_3_database_gains_accounts_and_its_classes_have_no_owner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE classes (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL,
                                   created_at INTEGER NOT NULL, topology TEXT NOT NULL);
             CREATE TABLE idempotency_keys (caller TEXT NOT NULL, key TEXT NOT NULL,
                 class_id TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (caller, key));
             CREATE TABLE live_classes (class_id TEXT PRIMARY KEY NOT NULL, state TEXT NOT NULL,
                                        saved_at INTEGER NOT NULL);
             INSERT INTO classes VALUES ('old1', 'Old class', 5, 'p2p');
             PRAGMA user_version = 3;",
        )
        .unwrap();
    }
    let db = Arc::new(Mutex::new(Store::open(&path).unwrap()));
    let old = db.lock().unwrap().get("old1").unwrap().unwrap();
    assert_eq!((old.name.as_str(), old.owner), ("Old class", None));
    let store = SqliteAccounts::new(db.clone());
    store
        .create_account(&teacher("a@school.example"), 1)
        .unwrap();
    assert_eq!(store.accounts().unwrap().len(), 1);
    let version: i64 = db
        .lock()
        .unwrap()
        .conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    // Migrated all the way: accounts (4), class lists (5), attendance (6).
    assert_eq!(version, 6);
    assert!(db.lock().unwrap().students("old1").unwrap().is_empty());
}

mod props {
    use proptest::prelude::*;

    use super::*;
    use crate::accounts::normalise_email;

    proptest! {
        /// Any email that normalises, normalises to itself, is lowercase and finds the same
        /// account whatever case it was typed in.
        #[test]
        fn normalised_emails_are_stable_and_find_their_account(
            local in "[A-Za-z0-9._+-]{1,20}",
            domain in "[A-Za-z0-9-]{1,12}\\.[A-Za-z]{2,6}",
            name in "[^\\p{Cc}]{1,40}",
        ) {
            let typed = format!(" {local}@{domain} ");
            let email = normalise_email(&typed).unwrap();
            prop_assert_eq!(normalise_email(&email).unwrap(), email.clone());
            prop_assert_eq!(email.to_lowercase(), email.clone());
            let store = accounts();
            let name = match crate::accounts::normalise_name(&name) {
                Ok(n) => n,
                Err(_) => "X".to_string(),
            };
            let created = store
                .create_account(&NewAccount { email: email.clone(), name, role: AccountRole::Teacher }, 1)
                .unwrap();
            let upper = normalise_email(&typed.to_uppercase()).unwrap();
            prop_assert_eq!(store.account_by_email(&upper).unwrap(), Some(created.clone()));
            prop_assert_eq!(store.account(&created.id).unwrap(), Some(created));
        }
    }
}
