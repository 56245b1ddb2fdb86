//! The TURN credentials signaling hands out in `welcome` work against Aula's in-process relay,
//! checked with coturn's own client (`turnutils_uclient`, installed by scripts/test.sh).

mod common;

use aula_relay::turn::metrics as turn_metrics;
use std::process::Command;

use common::*;

#[tokio::test]
async fn welcome_credentials_relay_data_through_the_in_process_turn_server() {
    let aula = Aula::start(&temp_dir("turn-creds"));
    let class = aula.create_class("Relayed");
    let student = Client::join(&aula, class["student"]["token"].as_str().unwrap(), "Ana").await;
    let servers = student.welcome["ice_servers"].as_array().unwrap();
    assert_eq!(
        servers[0]["urls"][0].as_str().unwrap().split(':').next(),
        Some("stun")
    );
    let turn = &servers[1];
    let urls: Vec<&str> = turn["urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert!(
        urls.iter().any(|u| u.ends_with("?transport=udp")),
        "{urls:?}"
    );
    assert!(
        urls.iter().any(|u| u.ends_with("?transport=tcp")),
        "{urls:?}"
    );
    let username = turn["username"].as_str().unwrap();
    let password = turn["credential"].as_str().unwrap();
    // Minted for at most turn.max_credential_lifetime_secs (600 by default): the relay refuses
    // credentials that live longer.
    let expiry: u64 = username.split(':').next().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        expiry > now && expiry <= now + 600,
        "expiry {expiry} is not within 10 minutes of {now}"
    );
    // Bound to this peer: expiry:class/peer.
    assert!(
        username.ends_with(&format!("/{}", student.id)),
        "{username}"
    );
    let port = urls[0]
        .rsplit(':')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap();

    for tcp in [false, true] {
        let mut cmd = Command::new("turnutils_uclient");
        cmd.args([
            "-y", "-u", username, "-w", password, "-p", port, "-m", "2", "-n", "50", "-l", "200",
        ]);
        if tcp {
            cmd.arg("-t");
        }
        let out = cmd
            .arg("127.0.0.1")
            .output()
            .expect("turnutils_uclient runs (apt-get install coturn)");
        let log = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "tcp={tcp}: {log}");
        assert!(log.contains("Total lost packets 0"), "tcp={tcp}: {log}");
    }
    // A forged password is refused.
    let out = Command::new("turnutils_uclient")
        .args([
            "-y",
            "-u",
            username,
            "-w",
            "not-the-password",
            "-p",
            port,
            "-m",
            "1",
            "-n",
            "5",
            "-l",
            "100",
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !log.contains("Total lost packets 0"),
        "a forged password relayed data: {log}"
    );
    // The relay publishes its counters about once a second.
    let mut failures = 0.0;
    for _ in 0..30 {
        failures = aula.metric(turn_metrics::AUTH_FAILURES_TOTAL);
        if failures >= 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(failures >= 1.0, "{}", aula.metrics());
}
