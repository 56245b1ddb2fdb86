//! Interop: coturn's `turnutils_uclient` relays client-to-client traffic through Aula's TURN
//! server with the TURN REST shared secret, over UDP and over TCP, with no loss.
//!
//! The test installs the Debian package `coturn` when the tool is missing and it runs as root;
//! otherwise it fails with instructions (it never skips silently).

use aula_relay::turn::TurnConfig;
use aula_testkit::turn::*;
use std::process::Command;

fn ensure_uclient() {
    let present = || {
        Command::new("sh")
            .args(["-c", "command -v turnutils_uclient"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if present() {
        return;
    }
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "turnutils_uclient is missing and this test is not root: install it with \
         `apt-get install -y coturn` and run the test again"
    );
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "coturn"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !install() {
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        assert!(install(), "`apt-get install -y coturn` failed");
    }
    assert!(
        present(),
        "coturn installed but turnutils_uclient not found"
    );
}

async fn run_uclient(port: u16, tcp: bool) -> String {
    let mut args = vec![
        "-y", "-W", SECRET, "-u", "interop", "-m", "4", "-n", "50", "-l", "300", "-z", "5",
    ];
    if tcp {
        args.push("-t");
    }
    let port = port.to_string();
    args.extend(["-p", &port, "127.0.0.1"]);
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(90),
        tokio::process::Command::new("turnutils_uclient")
            .args(&args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("turnutils_uclient finishes within 90 s")
    .expect("turnutils_uclient runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "uclient failed:\n{text}");
    text
}

fn check(text: &str) {
    // The final tally: "start_mclient: tot_send_msgs=S, tot_recv_msgs=R".
    let tally = text
        .lines()
        .rev()
        .find_map(|l| l.split("start_mclient: tot_send_msgs=").nth(1))
        .unwrap_or_else(|| panic!("no final tally in uclient output:\n{text}"));
    let (sent, recv) = tally.split_once(", tot_recv_msgs=").expect("tally format");
    let (sent, recv): (u64, u64) = (sent.trim().parse().unwrap(), recv.trim().parse().unwrap());
    assert!(sent >= 200, "uclient sent only {sent} messages:\n{text}");
    assert_eq!(sent, recv, "not every message came back:\n{text}");
    assert!(
        text.contains("Total lost packets 0 (0.000000%)"),
        "packets lost:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coturn_uclient_relays_through_aula_without_loss() {
    ensure_uclient();
    let r = start(TurnConfig {
        allow_peers: vec!["127.0.0.0/8".into()],
        max_allocations_per_user: 1000,
        // `turnutils_uclient -W` mints credentials that expire in 24 hours.
        max_credential_lifetime_secs: 86_400,
        ..config()
    })
    .await;
    let port = r.server.local_udp_addr().port();
    assert_eq!(r.server.local_tcp_addr().port(), port);
    check(&run_uclient(port, false).await);
    check(&run_uclient(port, true).await);
    r.shutdown.cancel();
}
