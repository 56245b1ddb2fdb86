//! Test harness: starts the real `aula` binary on ephemeral ports and talks to it over real
//! sockets — HTTP with a plain client, the class protocol over WebSockets.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// A fresh, empty directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "aula-test-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Reads an `aula serve` / `aula relay` start-up banner, which ends with "Press Ctrl-C to stop.",
/// and keeps draining stdout in the background so the process never blocks on a full pipe.
pub fn read_banner(child: &mut Child) -> Vec<String> {
    let mut reader = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).unwrap();
        assert!(
            n > 0,
            "aula exited before it was ready; output so far: {lines:?}"
        );
        lines.push(line.trim().to_string());
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    std::thread::spawn(move || for _ in reader.lines() {});
    lines
}

/// The rest of the banner line that starts with `prefix`, trimmed.
pub fn banner_value<'a>(banner: &'a [String], prefix: &str) -> Option<&'a str> {
    banner
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .map(str::trim)
}

/// A running `aula serve`, killed on drop.
pub struct Aula {
    pub child: Child,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub stdout: Vec<String>,
}

pub struct AulaBuilder {
    data_dir: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    listen: String,
    log_file: Option<PathBuf>,
}

impl AulaBuilder {
    pub fn new(data_dir: &Path) -> Self {
        AulaBuilder {
            data_dir: data_dir.to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
            listen: "127.0.0.1:0".into(),
            log_file: None,
        }
    }

    /// Writes the server's log (stderr) to this file instead of the test's output.
    pub fn log_file(mut self, path: &Path) -> Self {
        self.log_file = Some(path.to_path_buf());
        self
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Also serves HTTPS/WSS on an ephemeral port, with a development certificate generated into
    /// `certs/` of the data directory ([`Aula::dev_cert`]).
    pub fn dev_tls(self) -> Self {
        let certs = self.data_dir.join("certs");
        self.arg("--tls")
            .env("AULA_TLS__LISTEN", "127.0.0.1:0")
            .env("AULA_TLS__DEV_CERT_DIR", certs.to_str().unwrap())
    }

    pub fn listen(mut self, addr: &str) -> Self {
        self.listen = addr.into();
        self
    }

    pub fn start(self) -> Aula {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aula"));
        cmd.args(["serve", "--listen", &self.listen, "--admin-key", ADMIN_KEY])
            .args([
                "--turn-listen",
                "127.0.0.1:0",
                "--sfu-listen",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.args)
            .current_dir(&self.data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(match &self.log_file {
                Some(p) => Stdio::from(std::fs::File::create(p).expect("log file")),
                None => Stdio::inherit(),
            });
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the aula binary starts");
        let stdout = read_banner(&mut child);
        let addr = banner_value(&stdout, "Listening: http://")
            .expect("the banner names the listening address")
            .parse()
            .unwrap();
        Aula {
            child,
            addr,
            data_dir: self.data_dir,
            stdout,
        }
    }
}

impl Aula {
    pub fn start(data_dir: &Path) -> Aula {
        AulaBuilder::new(data_dir).start()
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// The HTTPS listener of a server started with [`AulaBuilder::dev_tls`], from its banner.
    pub fn tls_addr(&self) -> SocketAddr {
        banner_value(&self.stdout, "TLS:")
            .expect("TLS address printed")
            .trim_start_matches("https://")
            .parse()
            .unwrap()
    }

    /// The development certificate of [`AulaBuilder::dev_tls`].
    pub fn dev_cert(&self) -> PathBuf {
        self.data_dir.join("certs/dev-cert.pem")
    }

    /// `curl ARGS --cacert DEV_CERT https://localhost:PORT{path}` against the HTTPS listener,
    /// trusting only the development certificate.
    pub fn curl_tls(&self, args: &[&str], path: &str) -> std::process::Output {
        Command::new("curl")
            .args(args)
            .arg("--cacert")
            .arg(self.dev_cert())
            .arg(format!(
                "https://localhost:{}{path}",
                self.tls_addr().port()
            ))
            .output()
            .expect("curl runs")
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("aula did not exit within 5 s of SIGTERM");
    }

    /// Creates a class through the admin API; returns the API's answer.
    pub fn create_class(&self, name: &str) -> Value {
        self.create_class_from(json!({"name": name}))
    }

    /// A class with the given topology (`p2p`, `sfu`, `auto`).
    #[allow(dead_code)] // not every test binary uses it
    pub fn create_class_with_topology(&self, name: &str, topology: &str) -> Value {
        self.create_class_from(json!({"name": name, "topology": topology}))
    }

    fn create_class_from(&self, request: Value) -> Value {
        let (status, body) = http(
            self,
            "POST",
            "/api/v1/classes",
            Some(request),
            Some(ADMIN_KEY),
        );
        assert_eq!(status, 201, "{body}");
        body
    }

    /// `/metrics`, read with the admin key (it is not public).
    pub fn metrics(&self) -> String {
        let mut resp = ureq::get(&self.http("/metrics"))
            .header("authorization", &format!("Bearer {ADMIN_KEY}"))
            .call()
            .unwrap();
        resp.body_mut().read_to_string().unwrap()
    }

    /// The value of a metric line that starts with `series` (summed when several match).
    pub fn metric(&self, series: &str) -> f64 {
        self.metrics()
            .lines()
            .filter(|l| l.starts_with(series))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Aula {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking GET of a text resource: (status, content type, body).
pub fn http_text(aula: &Aula, path: &str, key: Option<&str>) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut resp = with_auth(agent.get(&aula.http(path)), &auth)
        .call()
        .unwrap();
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (
        status,
        kind,
        resp.body_mut().read_to_string().unwrap_or_default(),
    )
}

/// A blocking HTTP request: (status, JSON body or `null`).
pub fn http(
    aula: &Aula,
    method: &str,
    path: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> (u16, Value) {
    let url = aula.http(path);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let auth = key.map(|k| format!("Bearer {k}"));
    let result = match (method, body) {
        ("GET", _) => with_auth(agent.get(&url), &auth).call(),
        ("DELETE", _) => with_auth(agent.delete(&url), &auth).call(),
        ("POST", Some(b)) => with_auth(agent.post(&url), &auth)
            .header("content-type", "application/json")
            .send(b.to_string()),
        ("POST", None) => with_auth(agent.post(&url), &auth).send_empty(),
        ("PATCH", Some(b)) => with_auth(agent.patch(&url), &auth)
            .header("content-type", "application/json")
            .send(b.to_string()),
        _ => panic!("unsupported method {method}"),
    };
    let mut resp = result.unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn with_auth<B>(req: ureq::RequestBuilder<B>, auth: &Option<String>) -> ureq::RequestBuilder<B> {
    match auth {
        Some(a) => req.header("authorization", a),
        None => req,
    }
}

/// A protocol client over a real WebSocket.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub id: String,
    pub welcome: Value,
}

pub const WAIT: Duration = Duration::from_secs(5);

impl Client {
    pub async fn connect(aula: &Aula) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(aula.ws_url())
            .await
            .expect("websocket connects");
        Client {
            ws,
            id: String::new(),
            welcome: Value::Null,
        }
    }

    /// Connects and joins; panics unless welcomed.
    pub async fn join(aula: &Aula, token: &str, name: &str) -> Client {
        let mut c = Client::connect(aula).await;
        c.send(json!({"type": "join", "token": token, "name": name}))
            .await;
        let welcome = c.expect("welcome").await;
        c.id = welcome["id"].as_str().unwrap().to_string();
        c.welcome = welcome;
        c
    }

    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.ws.send(m).await.expect("send");
    }

    /// The next protocol message (skipping pings), or panics after WAIT.
    pub async fn recv(&mut self) -> Value {
        match tokio::time::timeout(WAIT, self.next_text()).await {
            Ok(Some(v)) => v,
            Ok(None) => panic!("connection closed while waiting for a message"),
            Err(_) => panic!("no message within {WAIT:?}"),
        }
    }

    async fn next_text(&mut self) -> Option<Value> {
        loop {
            match self.ws.next().await? {
                Ok(Message::Text(t)) => {
                    return Some(serde_json::from_str(&t).expect("server sends JSON"))
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// Reads messages until one of `kind` arrives, returning it (others are skipped).
    pub async fn expect(&mut self, kind: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.next_text()).await {
                Ok(Some(v)) if v["type"] == kind => return v,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("connection closed while waiting for {kind}"),
                Err(_) => panic!("no {kind} within {WAIT:?}"),
            }
        }
    }

    /// Reads until an `error`, asserting its code.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let e = self.expect("error").await;
        assert_eq!(e["code"], code, "{e}");
        e
    }

    /// Asserts nothing but pings arrives for `d`.
    pub async fn expect_silence(&mut self, d: Duration) {
        if let Ok(Some(v)) = tokio::time::timeout(d, self.next_text()).await {
            panic!("expected silence, got {v}");
        }
    }

    /// Reads until the server closes; returns the close code.
    pub async fn expect_close(&mut self) -> u16 {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.ws.next()).await {
                Ok(Some(Ok(Message::Close(Some(frame))))) => return u16::from(frame.code),
                Ok(Some(Ok(Message::Close(None)))) => return u16::from(CloseCode::Status),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => panic!("connection failed instead of closing: {e}"),
                Ok(None) => panic!("connection ended without a close frame"),
                Err(_) => panic!("no close within {WAIT:?}"),
            }
        }
    }
}
