//! Tests of the range and cross-field checks, and of the public URL derivation.

use super::*;

#[test]
fn validate_names_the_key() {
    type Mutation = fn(&mut Settings);
    let cases: Vec<(Mutation, &str)> = vec![
        (|s| s.limits.send_queue_bytes = 0, "limits.send_queue_bytes"),
        (|s| s.limits.max_frame_bytes = 100, "limits.max_frame_bytes"),
        (|s| s.limits.burst = 1, "limits.burst"),
        (
            |s| s.limits.ping_interval_secs = 60,
            "limits.ping_interval_secs",
        ),
        (|s| s.limits.max_sdp_bytes = 65536, "limits.max_sdp_bytes"),
        (|s| s.token_ttl_secs = 0, "token_ttl_secs"),
        (|s| s.sfu.max_subscribers = 0, "sfu.max_subscribers"),
        (
            |s| s.sfu.max_publishers_per_class = 0,
            "sfu.max_publishers_per_class",
        ),
        (|s| s.public_url = Some("aula.example".into()), "public_url"),
        (|s| s.admin_key = Some(" ".into()), "admin_key"),
        (|s| s.admin_key = Some("k".into()), "admin_key"),
        (
            |s| s.admin_key = Some("fifteen-chars-x".into()),
            "admin_key",
        ),
        (|s| s.metrics_token = Some("short".into()), "metrics_token"),
        (
            |s| s.http.connection_idle_secs = 20,
            "http.connection_idle_secs",
        ),
        (
            |s| s.http.max_connections_per_ip = 0,
            "http.max_connections_per_ip",
        ),
        (
            |s| s.allowed_hosts = vec!["a.example:80".into()],
            "allowed_hosts",
        ),
        (
            |s| s.allowed_origins = vec!["https://a.example/path".into()],
            "allowed_origins",
        ),
        (|s| s.tls.cert = Some("c.pem".into()), "tls.key"),
        (|s| s.tls.key = Some("k.pem".into()), "tls.cert"),
        (|s| s.turn.relay_port_min = 0, "turn.relay_port_min"),
        (
            |s| s.turn.max_allocations_per_ip = 0,
            "turn.max_allocations_per_ip",
        ),
        (
            |s| s.turn.allow_peers = vec!["10.0.0.0/99".into()],
            "turn.allow_peers",
        ),
    ];
    for (mutate, key) in cases {
        let mut s = Settings::default();
        mutate(&mut s);
        let err = s.validate().unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("invalid value for {key}: ")),
            "{err}"
        );
    }
    let err = Settings::from_toml_str("[limits]\nsend_queue_bytes = 0\n").unwrap_err();
    assert!(err.to_string().contains("limits.send_queue_bytes"), "{err}");
}

#[test]
fn public_url_derivation() {
    let mut s = Settings {
        listen: "0.0.0.0:3000".parse().unwrap(),
        ..Settings::default()
    };
    // A wildcard listen links to the outward address: `localhost` would send others to themselves.
    let outward = match aula_relay::net::outward_ip(true) {
        Some(ip) => format!("http://{ip}:3000"),
        None => "http://localhost:3000".to_string(),
    };
    assert_eq!(s.public_url(), outward);
    s.listen = "127.0.0.1:3000".parse().unwrap();
    assert_eq!(s.public_url(), "http://localhost:3000");
    s.listen = "192.168.1.5:3000".parse().unwrap();
    assert_eq!(s.public_url(), "http://192.168.1.5:3000");
    s.listen = "[2001:db8::1]:3000".parse().unwrap();
    assert_eq!(s.public_url(), "http://[2001:db8::1]:3000");
}
