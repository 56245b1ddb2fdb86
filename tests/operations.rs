//! Operator-facing behaviour of the real binary: TLS, the CLI, configuration errors and limits.

mod common;

use aula_relay::turn::metrics as turn_metrics;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::*;
use serde_json::json;

fn aula() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aula"))
}

/// `aula <args> --data-dir <dir>` started until it printed its banner; killed when dropped.
/// (`AulaBuilder` covers `aula serve` with its usual arguments; this is for the other shapes.)
struct Started {
    child: Child,
    banner: Vec<String>,
}

impl Started {
    fn new(args: &[&str], dir: &Path) -> Started {
        let mut child = aula()
            .args(args)
            .arg("--data-dir")
            .arg(dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let banner = read_banner(&mut child);
        Started { child, banner }
    }

    /// The banner line starting with `prefix`, without it.
    fn value(&self, prefix: &str) -> &str {
        banner_value(&self.banner, prefix)
            .unwrap_or_else(|| panic!("{prefix} printed in {:?}", self.banner))
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn tls_serves_https_and_wss_with_a_generated_development_certificate() {
    let aula = AulaBuilder::new(&temp_dir("tls")).dev_tls().start();
    let port = aula.tls_addr().port().to_string();
    let cert = aula.dev_cert();
    assert!(
        cert.is_file(),
        "the development certificate is generated into dev_cert_dir"
    );

    let out = aula.curl_tls(&["-sS"], "/healthz");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        r#"{"status":"ok"}"#,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // WSS join with python's websockets, trusting only the generated certificate.
    let class = aula.create_class("Secure");
    let script = r#"
import asyncio, json, ssl, sys
from websockets.asyncio.client import connect
async def main():
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    async with connect(sys.argv[1], ssl=ctx) as ws:
        await ws.send(json.dumps({"type": "join", "token": sys.argv[3], "name": "Ana"}))
        print(json.loads(await ws.recv())["type"])
asyncio.run(main())
"#;
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            &format!("wss://localhost:{port}/ws"),
            cert.to_str().unwrap(),
        ])
        .arg(class["student"]["token"].as_str().unwrap())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "welcome",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Plain HTTP stays available for localhost development.
    let (status, _) = http(&aula, "GET", "/healthz", None, None);
    assert_eq!(status, 200);
}

#[tokio::test]
async fn aula_token_mints_a_working_token_for_an_existing_class() {
    let dir = temp_dir("cli-token");
    let mut server = Aula::start(&dir);
    let class = server.create_class("CLI");
    let id = class["id"].as_str().unwrap();
    // The CLI signs with the same secret as the server (stored in the data dir).
    let out = aula()
        .args([
            "token",
            "--class",
            id,
            "--role",
            "teacher",
            "--name",
            "Mr Osei",
            "--ttl",
            "60",
            "--data-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(String::from_utf8_lossy(&out.stderr).contains("/join#token="));
    let teacher = Client::join(&server, &token, "ignored").await;
    assert_eq!(teacher.welcome["role"], "teacher");
    assert_eq!(teacher.welcome["name"], "Mr Osei");

    let out = aula()
        .args(["token", "--class", "nope", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no class \"nope\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A name the join would refuse (a bidi override here) is refused when minting.
    let out = aula()
        .args([
            "token",
            "--class",
            id,
            "--name",
            "Mr Osei\u{202E}",
            "--data-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--name") && stderr.contains("U+202E"),
        "{stderr}"
    );
    server.terminate();
}

#[test]
fn an_invalid_configuration_value_fails_at_start_naming_the_key() {
    let dir = temp_dir("bad-config");
    let out = aula()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-turn",
            "--data-dir",
        ])
        .arg(&dir)
        .env("AULA_LIMITS__MAX_CLASS_SIZE", "lots")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("limits.max_class_size"), "{err}");

    std::fs::write(dir.join("bad.toml"), "listen = \"not an address\"\n").unwrap();
    let out = aula()
        .args(["serve", "--config"])
        .arg(dir.join("bad.toml"))
        .arg("--data-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("listen"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = aula()
        .args(["serve", "--config"])
        .arg(dir.join("missing.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));

    let out = aula()
        .args(["serve", "--listen", "nonsense"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("listen"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_first_run_generates_and_prints_an_admin_key_that_later_runs_reuse() {
    let dir = temp_dir("admin-key");
    let any = "127.0.0.1:0";
    let args = [
        "serve",
        "--listen",
        any,
        "--turn-listen",
        any,
        "--sfu-listen",
        any,
    ];
    let first = {
        let aula = Started::new(&args, &dir);
        aula.value("Admin key:")
            .split(' ')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(first.len(), 64);
    // Later runs reuse the stored key, and print where it is rather than the key itself
    // (journald keeps whatever is printed).
    let again = Started::new(&args, &dir);
    let stored = dir.join("admin_key");
    assert_eq!(
        again.value("Admin key:"),
        format!("stored in {}", stored.display())
    );
    assert!(
        !again.banner.iter().any(|l| l.contains(&first)),
        "{:?}",
        again.banner
    );
    assert_eq!(std::fs::read_to_string(&stored).unwrap().trim(), first);
    let addr = again.value("Listening: http://").to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let status = agent
        .get(&format!("http://{addr}/api/v1/classes"))
        .header("authorization", &format!("Bearer {first}"))
        .call()
        .unwrap()
        .status();
    assert_eq!(status, 200, "the first run's key still works");
}

#[tokio::test]
async fn class_size_rate_and_idle_limits_are_enforced() {
    let aula = AulaBuilder::new(&temp_dir("limits"))
        .env("AULA_LIMITS__MAX_CLASS_SIZE", "2")
        .env("AULA_LIMITS__MESSAGES_PER_SEC", "5")
        .env("AULA_LIMITS__BURST", "10")
        .env("AULA_LIMITS__IDLE_TIMEOUT_SECS", "2")
        .env("AULA_LIMITS__PING_INTERVAL_SECS", "1")
        .start();
    let class = aula.create_class("Small");
    let s = class["student"]["token"].as_str().unwrap();
    let mut a = Client::join(&aula, s, "A").await;
    let _b = Client::join(&aula, s, "B").await;
    let mut c = Client::connect(&aula).await;
    c.send(json!({"type": "join", "token": s, "name": "C"}))
        .await;
    c.expect_error("class_full").await;
    assert_eq!(c.expect_close().await, 4001);

    for _ in 0..20 {
        a.send(json!({"type": "ping"})).await;
    }
    let mut pongs = 0;
    let mut limited = 0;
    while pongs + limited < 20 {
        match a.recv().await["type"].as_str().unwrap() {
            "pong" => pongs += 1,
            "error" => limited += 1,
            _ => {}
        }
    }
    // The burst of 10 covers the join and 9 pings (plus what refills meanwhile, at 5/s).
    assert!((9..=11).contains(&pongs), "got {pongs}");
    assert!(limited >= 8, "{limited}");

    // A client that stops answering (it does not read, so it answers no pings) is closed for
    // idleness: the class sees it drop and the server counts the idle_timeout it sent.
    let idle_class = aula.create_class("Idle");
    let mut watcher =
        Client::join(&aula, idle_class["teacher"]["token"].as_str().unwrap(), "T").await;
    let silent = Client::join(
        &aula,
        idle_class["student"]["token"].as_str().unwrap(),
        "Silent",
    )
    .await;
    let dropped = loop {
        let m = watcher.recv().await;
        if m["type"] == "peer_updated"
            && m["peer"]["id"] == silent.id
            && m["peer"]["connected"] == false
        {
            break m;
        }
    };
    assert_eq!(dropped["peer"]["name"], "Silent");
    assert!(aula.metric("aula_errors_total{code=\"idle_timeout\"}") >= 1.0);
    drop((a, _b));
}

#[test]
fn aula_relay_runs_the_turn_relay_alone_and_serves_its_metrics() {
    let dir = temp_dir("relay-alone");
    let relay = Started::new(
        &[
            "relay",
            "--turn-listen",
            "127.0.0.1:0",
            "--turn-secret",
            "relay-secret",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        &dir,
    );
    let port = relay.value("TURN UDP:").rsplit(':').next().unwrap();
    // coturn's client minting from the shared secret (`-W`) makes credentials that expire in
    // 24 hours: longer than turn.max_credential_lifetime_secs (600), so refused.
    let out = Command::new("turnutils_uclient")
        .args(["-y", "-W", "relay-secret", "-u", "bot", "-p", port])
        .args(["-m", "1", "-n", "5", "-l", "100", "127.0.0.1"])
        .output()
        .expect("turnutils_uclient runs (apt-get install coturn)");
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("Cannot complete Allocation"), "{log}");
    // Credentials minted for ten minutes (as signaling mints them, the REST API scheme) work.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let creds = aula_relay::credentials::mint("relay-secret", "class/bot", now, 600);
    let out = Command::new("turnutils_uclient")
        .args([
            "-y",
            "-u",
            &creds.username,
            "-w",
            &creds.password,
            "-p",
            port,
        ])
        .args(["-m", "2", "-n", "20", "-l", "100", "127.0.0.1"])
        .output()
        .expect("turnutils_uclient runs (apt-get install coturn)");
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("Total lost packets 0"), "{log}");
    let url = relay.value("Metrics:");
    let mut relayed = 0.0;
    for _ in 0..30 {
        let body = ureq::get(url)
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        relayed = body
            .lines()
            .filter(|l| l.starts_with(turn_metrics::RELAYED_PACKETS_TOTAL))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if relayed > 0.0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(relayed > 0.0, "no relayed packets in {url}");
}

#[test]
fn a_bad_flag_is_refused_naming_its_key_like_a_bad_file_value() {
    let dir = temp_dir("bad-flags");
    for (flag, value, key) in [
        ("--sfu-auto-above", "lots", "sfu.auto_above"),
        ("--sfu-listen", "nowhere", "sfu.listen"),
        ("--turn-public-ip", "not-an-ip", "turn.public_ip"),
        ("--turn-allow-peer", "10.0.0.0/99", "turn.allow_peers"),
    ] {
        let out = aula()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                flag,
                value,
                "--data-dir",
            ])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flag}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("invalid value for {key}: ")),
            "{flag}: {err}"
        );
    }
}

/// The number of times `needle` occurs in `haystack`.
fn occurrences(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn an_error_prints_its_cause_once() {
    let dir = temp_dir("cause-once");
    // A path under a regular file fails with "Not a directory" even for root.
    let file = dir.join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = aula()
        .args(["serve", "--listen", "127.0.0.1:0", "--no-turn", "--no-sfu"])
        .arg("--data-dir")
        .arg(file.join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("data directory"), "{err}");
    assert_eq!(occurrences(&err, "Not a directory"), 1, "{err}");

    // A certificate that cannot be read.
    let cert = file.join("cert.pem");
    let out = aula()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-turn",
            "--no-sfu",
            "--tls",
        ])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("AULA_TLS__LISTEN", "127.0.0.1:0")
        .env("AULA_TLS__CERT", &cert)
        .env("AULA_TLS__KEY", &cert)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cert.pem"), "{err}");
    assert_eq!(occurrences(&err, "Not a directory"), 1, "{err}");
}

const PLAIN_HTTP_WARNING: &str = "browsers on other computers will refuse camera, microphone";

#[test]
fn plain_http_on_a_wildcard_warns_and_links_to_the_outward_address() {
    let dir = temp_dir("plain-http-wildcard");
    let aula = AulaBuilder::new(&dir).listen("0.0.0.0:0").start();
    let banner = aula.stdout.join("\n");
    assert!(banner.contains(PLAIN_HTTP_WARNING), "{banner}");
    assert!(banner.contains("aula.example.toml"), "says how: {banner}");
    // `localhost` in a link would send every other computer to itself.
    let open = banner_value(&aula.stdout, "Open:").expect("the banner prints a link");
    assert!(!open.contains("localhost"), "{open}");
    if let Some(ip) = aula_relay::net::outward_ip(true) {
        assert!(open.starts_with(&format!("http://{ip}:")), "{open}");
        let class = aula.create_class("Wildcard");
        let link = class["student"]["url"].as_str().unwrap();
        assert!(link.starts_with(&format!("http://{ip}:")), "{link}");
    }
}

#[test]
fn plain_http_on_loopback_does_not_warn() {
    let dir = temp_dir("plain-http-loopback");
    let aula = AulaBuilder::new(&dir).listen("127.0.0.1:0").start();
    let banner = aula.stdout.join("\n");
    assert!(!banner.contains(PLAIN_HTTP_WARNING), "{banner}");
    let open = banner_value(&aula.stdout, "Open:").unwrap();
    assert!(open.starts_with("http://localhost:"), "{open}");
}
