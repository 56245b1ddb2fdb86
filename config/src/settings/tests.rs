//! Tests of the loader: layering, keyed errors, unknown keys, lists, and the example file.

use super::load::known_keys;
use super::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

fn opts(
    file: Option<&Path>,
    env: &[(&str, &str)],
    overrides: &[(&str, &str)],
    dir: &Path,
) -> LoadOptions {
    LoadOptions {
        config_file: file.map(Path::to_path_buf),
        working_dir: Some(dir.to_path_buf()),
        env: Some(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        overrides: overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// Every leaf key with its value, for comparing whole configurations.
fn flat(s: &Settings) -> std::collections::BTreeMap<String, serde_json::Value> {
    fn walk(
        v: serde_json::Value,
        prefix: String,
        out: &mut std::collections::BTreeMap<String, serde_json::Value>,
    ) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(v, key, out);
                }
            }
            v => {
                out.insert(prefix, v);
            }
        }
    }
    let mut out = Default::default();
    walk(serde_json::to_value(s).unwrap(), String::new(), &mut out);
    out
}

#[test]
fn defaults_when_nothing_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let s = Settings::load(&opts(None, &[], &[], dir.path())).unwrap();
    assert_eq!(flat(&s), flat(&Settings::default()));
    assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.limits.max_class_size, 1000);
    assert_eq!(s.token_ttl_secs, 604800);
    assert!(
        !s.open_class_creation,
        "class creation needs the admin key by default"
    );
    assert_eq!(s.public_url(), "http://localhost:8080");
    Settings::default().validate().unwrap();
}

#[test]
fn layers_file_then_env_then_overrides() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(DEFAULT_CONFIG_FILE),
        "listen = \"0.0.0.0:9000\"\nadmin_key = \"from-file-0123456789\"\n\
         [limits]\nmax_class_size = 10\nchat_history = 5\n",
    )
    .unwrap();
    let s = Settings::load(&opts(
        None,
        &[
            ("AULA_LIMITS__MAX_CLASS_SIZE", "50"),
            ("AULA_ADMIN_KEY", "from-env-0123456789"),
            ("AULA_LOG_FORMAT", "json"),
            ("AULA_TLS__ENABLED", "true"),
            (
                "AULA_ALLOWED_ORIGINS",
                "https://a.example, https://b.example:8443",
            ),
            ("AULA_BIN", "/usr/bin/aula"), // unrelated: ignored
            ("OTHER_LISTEN", "1.2.3.4:5"), // no prefix: ignored
        ],
        &[
            ("admin_key", "from-flag-0123456789"),
            ("data_dir", "/tmp/aula"),
        ],
        dir.path(),
    ))
    .unwrap();
    assert_eq!(s.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(s.limits.max_class_size, 50);
    assert_eq!(s.limits.chat_history, 5);
    assert_eq!(s.admin_key.as_deref(), Some("from-flag-0123456789"));
    assert_eq!(s.data_dir, PathBuf::from("/tmp/aula"));
    assert_eq!(s.log_format, LogFormat::Json);
    assert!(s.tls.enabled);
    assert_eq!(
        s.allowed_origins,
        vec!["https://a.example", "https://b.example:8443"]
    );
    assert_eq!(s.public_url(), "https://localhost:8443");
}

#[test]
fn explicit_config_file_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let err = Settings::load(&opts(Some(&missing), &[], &[], dir.path())).unwrap_err();
    assert!(matches!(err, SettingsError::FileNotFound(_)));
    assert!(err.to_string().contains("nope.toml"), "{err}");
}

#[test]
fn explicit_config_file_replaces_working_dir_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(DEFAULT_CONFIG_FILE),
        "admin_key = \"cwd-0123456789abcdef\"\n",
    )
    .unwrap();
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "public_url = \"https://aula.example/\"\n").unwrap();
    let s = Settings::load(&opts(Some(&other), &[], &[], dir.path())).unwrap();
    assert_eq!(s.admin_key, None);
    assert_eq!(s.public_url(), "https://aula.example");
}

#[test]
fn invalid_value_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (env, key) in [
        (
            ("AULA_LIMITS__MAX_CLASS_SIZE", "lots"),
            "limits.max_class_size",
        ),
        (("AULA_LISTEN", "not an address"), "listen"),
        (("AULA_LOG_FORMAT", "xml"), "log_format"),
        (("AULA_TLS__ENABLED", "maybe"), "tls.enabled"),
    ] {
        let err = Settings::load(&opts(None, &[env], &[], dir.path())).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("invalid value for {key}: ")),
            "{env:?}: {text}"
        );
    }
    let err = Settings::load(&opts(
        None,
        &[],
        &[("limits.max_class_size", "-3")],
        dir.path(),
    ))
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid value for limits.max_class_size: "),
        "{err}"
    );
    let err = Settings::from_toml_str("[limits]\nmax_class_size = \"big\"\n").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid value for limits.max_class_size: "),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_refused_in_files_and_overrides() {
    let err = Settings::from_toml_str("[limits]\nmax_clas_size = 3\n").unwrap_err();
    assert!(
        matches!(&err, SettingsError::UnknownKey { key, .. } if key == "limits.max_clas_size"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let err = Settings::load(&opts(None, &[], &[("limits.nope", "1")], dir.path())).unwrap_err();
    assert!(err.to_string().contains("limits.nope"), "{err}");
}

#[test]
fn an_unknown_aula_variable_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let err = Settings::load(&opts(
        None,
        &[("AULA_OPEN_CLASS_CREATON", "false")],
        &[],
        dir.path(),
    ))
    .unwrap_err();
    assert!(
        matches!(&err, SettingsError::UnknownKey { key, .. } if key == "AULA_OPEN_CLASS_CREATON"),
        "{err}"
    );
    assert!(err.to_string().contains("AULA_OPEN_CLASS_CREATON"), "{err}");
    // The tooling's own variables are not configuration and are left alone.
    for var in [
        "AULA_BIN",
        "AULA_BLESS",
        "AULA_TEST_NO_INSTALL",
        "AULA_E2E_VERBOSE",
        "AULA_FUZZ_CASES",
    ] {
        Settings::load(&opts(None, &[(var, "1")], &[], dir.path()))
            .unwrap_or_else(|e| panic!("{var}: {e}"));
    }
}

#[test]
fn list_keys_take_comma_separated_variables() {
    let dir = tempfile::tempdir().unwrap();
    let s = Settings::load(&opts(
        None,
        &[
            (
                "AULA_TURN__ALLOW_PEER_ADDRS",
                "10.0.0.5:3479, 192.168.1.9:5000",
            ),
            ("AULA_TURN__ALLOW_PEERS", "10.1.0.0/16,fd00::/8"),
            ("AULA_ALLOWED_HOSTS", "aula.school.example"),
        ],
        &[],
        dir.path(),
    ))
    .unwrap();
    assert_eq!(
        s.turn.allow_peer_addrs,
        vec![
            "10.0.0.5:3479".parse::<SocketAddr>().unwrap(),
            "192.168.1.9:5000".parse().unwrap()
        ]
    );
    assert_eq!(s.turn.allow_peers, vec!["10.1.0.0/16", "fd00::/8"]);
    assert_eq!(s.allowed_hosts, vec!["aula.school.example"]);
    // A flag still wins over the environment.
    let s = Settings::load(&opts(
        None,
        &[("AULA_ALLOWED_HOSTS", "a.example")],
        &[("allowed_hosts", "b.example,c.example")],
        dir.path(),
    ))
    .unwrap();
    assert_eq!(s.allowed_hosts, vec!["b.example", "c.example"]);
}

#[test]
fn malformed_toml_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "listen = \n").unwrap();
    let err = Settings::load(&opts(Some(&path), &[], &[], dir.path())).unwrap_err();
    assert!(err.to_string().contains("bad.toml"), "{err}");
}

#[test]
fn example_file_parses_and_matches_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../aula.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let s = Settings::from_toml_str(&text).unwrap();
    assert_eq!(flat(&s), flat(&Settings::default()));
    // Every key is documented in the example (as a commented-out `key = default` line).
    for key in known_keys() {
        let leaf = key.rsplit('.').next().unwrap();
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("# {leaf} = "))),
            "aula.example.toml does not document {key}"
        );
    }
    // And uncommenting every `key = value` line still gives a valid file: the defaults, plus the
    // example values shown for the keys that have no default.
    let keys = known_keys();
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest.starts_with('[')
                    || rest.split_once(" = ").is_some_and(|(k, _)| {
                        keys.iter().any(|kk| kk.rsplit('.').next() == Some(k))
                    }) =>
            {
                rest
            }
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let s = Settings::from_toml_str(&uncommented)
        .unwrap_or_else(|e| panic!("uncommented example: {e}\n{uncommented}"));
    let (got, defaults) = (flat(&s), flat(&Settings::default()));
    for (key, default) in &defaults {
        // Keys without a default (unset options, empty lists) show an example value instead.
        let no_default = default.is_null() || default.as_array().is_some_and(Vec::is_empty);
        if !no_default {
            assert_eq!(
                got.get(key),
                Some(default),
                "aula.example.toml shows a wrong default for {key}"
            );
        }
    }
}

#[test]
fn the_sfu_section_converts_to_the_relays_config() {
    let specific = SfuSettings {
        listen: "10.0.0.5:3479".parse().unwrap(),
        max_subscribers: 7,
        offer_timeout_secs: 3,
        workers: 3,
        ..SfuSettings::default()
    };
    let fallback: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    let config = specific.to_runtime(Some(fallback));
    assert_eq!(config.listen, specific.listen);
    assert_eq!(
        config.public_ip, None,
        "a specific listen IP is advertised itself"
    );
    assert_eq!(config.max_subscribers, 7);
    assert_eq!(config.workers, 3);
    assert_eq!(config.offer_timeout, std::time::Duration::from_secs(3));
    // A wildcard listen address advertises the relay's address, or the configured one.
    let wildcard = SfuSettings::default();
    assert_eq!(
        wildcard.to_runtime(Some(fallback)).public_ip,
        Some(fallback)
    );
    let public: std::net::IpAddr = "203.0.113.9".parse().unwrap();
    let configured = SfuSettings {
        public_ip: Some(public),
        ..SfuSettings::default()
    };
    assert_eq!(
        configured.to_runtime(Some(fallback)).public_ip,
        Some(public)
    );
}
