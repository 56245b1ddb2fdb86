//! Unit tests of the class store, on an in-memory database.

use super::*;

fn record(id: &str, created_at: u64, topology: Topology) -> ClassRecord {
    ClassRecord {
        id: id.into(),
        name: format!("Class {id} — Grüße"),
        created_at,
        topology,
        owner: None,
    }
}

#[test]
fn store_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Store>();
}

#[test]
fn insert_get_list_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join(DATABASE_FILE)).unwrap();
    assert!(store.list().unwrap().is_empty());
    assert_eq!(store.get("nope").unwrap(), None);

    let a = record("a", 200, Topology::P2p);
    let b = record("b", 100, Topology::Sfu);
    let c = record("c", 200, Topology::Auto);
    for r in [&a, &b, &c] {
        store.insert(r).unwrap();
    }
    assert_eq!(store.get("a").unwrap(), Some(a.clone()));
    assert_eq!(store.list().unwrap(), vec![b.clone(), a.clone(), c.clone()]);

    assert!(store.delete("a").unwrap());
    assert!(!store.delete("a").unwrap());
    assert_eq!(store.get("a").unwrap(), None);
    assert_eq!(store.list().unwrap(), vec![b, c]);
}

#[test]
fn duplicate_id_is_refused() {
    let store = Store::open_in_memory().unwrap();
    store.insert(&record("x", 1, Topology::Auto)).unwrap();
    let err = store.insert(&record("x", 2, Topology::Sfu)).unwrap_err();
    assert!(
        matches!(&err, StoreError::Duplicate(id) if id == "x"),
        "{err}"
    );
    assert_eq!(store.get("x").unwrap().unwrap().created_at, 1);
}

#[test]
fn update_changes_name_and_topology() {
    let store = Store::open_in_memory().unwrap();
    let mut r = record("x", 1, Topology::Auto);
    assert!(!store.update(&r).unwrap());
    store.insert(&r).unwrap();
    r.name = "Renamed".into();
    r.topology = Topology::Sfu;
    assert!(store.update(&r).unwrap());
    assert_eq!(store.get("x").unwrap(), Some(r));
}

#[test]
fn survives_reopen_and_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir").join(DATABASE_FILE);
    let r = record("persist", 1_700_000_000, Topology::Sfu);
    {
        let store = Store::open(&path).unwrap();
        store.insert(&r).unwrap();
        let mode: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!(mode.to_lowercase(), "wal");
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.get("persist").unwrap(), Some(r.clone()));
    assert_eq!(store.list().unwrap(), vec![r]);
}

#[test]
fn live_state_is_saved_replaced_and_deleted_with_its_class() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATABASE_FILE);
    {
        let store = Store::open(&path).unwrap();
        store.insert(&record("a", 1, Topology::Auto)).unwrap();
        store.insert(&record("b", 2, Topology::Auto)).unwrap();
        let save = |id: &str, state: Option<&str>| (id.to_string(), state.map(str::to_string));
        store
            .save_live(&[save("a", Some("{1}")), save("b", Some("{2}"))], 10)
            .unwrap();
        store.save_live(&[save("a", Some("{3}"))], 11).unwrap();
    }
    let store = Store::open(&path).unwrap();
    let pairs = |v: Vec<(String, String)>| v;
    assert_eq!(
        pairs(store.live_states().unwrap()),
        vec![("a".into(), "{3}".into()), ("b".into(), "{2}".into())]
    );
    store.save_live(&[("b".into(), None)], 12).unwrap();
    assert_eq!(store.live_states().unwrap().len(), 1);
    assert!(store.delete("a").unwrap());
    assert!(store.live_states().unwrap().is_empty());
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATABASE_FILE);
    drop(Store::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains(DATABASE_FILE), "{err}");
}

#[test]
fn corrupt_rows_are_reported() {
    let store = Store::open_in_memory().unwrap();
    store
        .conn
        .execute(
            "INSERT INTO classes VALUES ('bad', 'Bad', 1, 'mesh', NULL)",
            [],
        )
        .unwrap();
    let err = store.get("bad").unwrap_err();
    assert!(err.to_string().contains("mesh"), "{err}");
    assert!(store.list().is_err());
}

#[test]
fn unopenable_path_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the database file should be.
    let path = dir.path().join("is-a-dir");
    std::fs::create_dir(&path).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(err.to_string().contains("is-a-dir"), "{err}");
}
