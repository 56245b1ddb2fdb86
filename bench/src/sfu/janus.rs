//! `sfu --target janus`: the same workload against Janus (a peer SFU in C, Debian's `janus`
//! package, used here only as a benchmark peer — it is a separate process, never linked),
//! driven through its own API: the Janus HTTP transport and its videoroom plugin.
//!
//! One Janus session holds every handle: the publisher's (it creates the room and sends the
//! synthetic publisher's offer with `joinandconfigure`; Janus answers) and one per subscriber
//! (`join` as a subscriber to the publisher's feed; Janus offers, the synthetic subscriber
//! answers with `start`). Asynchronous replies arrive on the session's long poll
//! (`GET /janus/<session>?maxev=N`), which a thread reads and hands to the waiting handle; a
//! keep-alive goes out every 15 s. Janus's CPU time and memory are read from `/proc/<pid>`.
//!
//! The JSON in and out is built and read by the small pure functions at the bottom, which the
//! unit tests cover with messages in the shapes Janus 1.1 sends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// The room every run uses (Janus is started afresh for each run).
const ROOM: u64 = 4242;
/// How long a request may wait for Janus's asynchronous reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to one Janus process: its session, its handles, its long-poll reader.
pub(super) struct Janus {
    agent: ureq::Agent,
    /// `http://host:port/janus/<session>`.
    session_url: String,
    pid: u32,
    /// Asynchronous events, by the handle they are for.
    waiters: Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Event>>>>,
    /// The publisher's feed id once it joined.
    feed: AtomicU64,
    /// Subscriber handles, by the load side's subscriber number.
    subscribers: Mutex<HashMap<usize, u64>>,
    transactions: AtomicU64,
    stop: Arc<AtomicBool>,
}

impl Janus {
    /// Creates a session on Janus's HTTP API at `url` (e.g. `http://127.0.0.1:18088/janus`) and
    /// starts its long-poll reader and keep-alives. `pid` is the Janus process, for `/proc`.
    pub(super) async fn connect(url: &str, pid: u32) -> Result<Janus> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(90)))
            .build()
            .into();
        let url = url.trim_end_matches('/').to_string();
        let reply = {
            let (agent, url) = (agent.clone(), url.clone());
            tokio::task::spawn_blocking(move || post(&agent, &url, &request("create", "c0")))
                .await??
        };
        let session = match reply {
            Reply::Id(id) => id,
            other => bail!("Janus create: unexpected reply {other:?}"),
        };
        let janus = Janus {
            agent,
            session_url: format!("{url}/{session}"),
            pid,
            waiters: Arc::default(),
            feed: AtomicU64::new(0),
            subscribers: Mutex::default(),
            transactions: AtomicU64::new(1),
            stop: Arc::new(AtomicBool::new(false)),
        };
        janus.start_long_poll();
        janus.start_keepalive();
        Ok(janus)
    }

    /// The process id of Janus.
    pub(super) fn pid(&self) -> u32 {
        self.pid
    }

    /// A thread reading the session's events and handing each to the handle it is for.
    fn start_long_poll(&self) {
        let (agent, url) = (self.agent.clone(), format!("{}?maxev=50", self.session_url));
        let (waiters, stop) = (self.waiters.clone(), self.stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                let text = match agent.get(&url).call() {
                    Ok(mut r) => r.body_mut().read_to_string().unwrap_or_default(),
                    Err(e) => {
                        if !stop.load(Relaxed) {
                            eprintln!("Janus long poll: {e}");
                        }
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                };
                let events = match parse_events(&text) {
                    Ok(e) => e,
                    Err(e) => {
                        eprintln!("Janus long poll: {e:#}");
                        continue;
                    }
                };
                let waiters = waiters.lock().expect("waiters lock");
                for e in events {
                    if let Some(tx) = waiters.get(&e.sender) {
                        let _ = tx.send(e);
                    }
                }
            }
        });
    }

    /// Keeps the session alive (Janus drops a session silent for 60 s).
    fn start_keepalive(&self) {
        let (agent, url, stop) = (
            self.agent.clone(),
            self.session_url.clone(),
            self.stop.clone(),
        );
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                std::thread::sleep(Duration::from_secs(15));
                n += 1;
                let _ = post(&agent, &url, &request("keepalive", &format!("k{n}")));
            }
        });
    }

    fn transaction(&self) -> String {
        format!("t{}", self.transactions.fetch_add(1, Relaxed))
    }

    async fn post(&self, url: String, body: Value) -> Result<Reply> {
        let agent = self.agent.clone();
        tokio::task::spawn_blocking(move || post(&agent, &url, &body)).await?
    }

    /// Attaches a videoroom handle; its asynchronous events go to the returned receiver.
    async fn attach(&self) -> Result<(u64, mpsc::UnboundedReceiver<Event>)> {
        let mut body = request("attach", &self.transaction());
        body["plugin"] = json!("janus.plugin.videoroom");
        let handle = match self.post(self.session_url.clone(), body).await? {
            Reply::Id(id) => id,
            other => bail!("Janus attach: unexpected reply {other:?}"),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        self.waiters
            .lock()
            .expect("waiters lock")
            .insert(handle, tx);
        Ok((handle, rx))
    }

    /// Sends a plugin message on `handle` (with an SDP when `jsep` is given).
    async fn message(&self, handle: u64, body: Value, jsep: Option<(&str, &str)>) -> Result<Reply> {
        let msg = plugin_message(&self.transaction(), body, jsep);
        self.post(format!("{}/{handle}", self.session_url), msg)
            .await
    }

    /// The publisher: creates the room, joins it and publishes `offer`; returns Janus's answer.
    pub(super) async fn publish(&self, offer: &str) -> Result<String> {
        let (handle, mut events) = self.attach().await?;
        let create = json!({
            "request": "create", "room": ROOM, "publishers": 1,
            // No bitrate cap (REMB), no periodic keyframe requests: the stream as sent.
            "bitrate": 0, "fir_freq": 0, "videocodec": "vp8", "audiocodec": "opus",
        });
        match self.message(handle, create, None).await? {
            Reply::PluginData(d) if d["videoroom"] == "created" => {}
            // A room left from an earlier session of the same Janus process.
            Reply::PluginData(d) if d["error_code"] == 427 => {}
            other => bail!("Janus create room: unexpected reply {other:?}"),
        }
        let join = json!({"request": "joinandconfigure", "ptype": "publisher", "room": ROOM, "display": "teacher"});
        self.message(handle, join, Some(("offer", offer))).await?;
        let e = wait_jsep(&mut events, "publisher join").await?;
        let feed = e.data["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("Janus joined without a feed id: {}", e.data))?;
        self.feed.store(feed, Relaxed);
        e.sdp.context("Janus's answer")
    }

    /// Subscriber `i`: joins the publisher's feed; returns Janus's offer.
    pub(super) async fn subscribe(&self, i: usize) -> Result<String> {
        let (handle, mut events) = self.attach().await?;
        let join = json!({
            "request": "join", "ptype": "subscriber", "room": ROOM,
            "streams": [{"feed": self.feed.load(Relaxed)}],
        });
        self.message(handle, join, None).await?;
        let e = wait_jsep(&mut events, "subscriber join").await?;
        self.subscribers
            .lock()
            .expect("subscribers lock")
            .insert(i, handle);
        e.sdp.context("Janus's offer")
    }

    /// Subscriber `i`'s answer: `start`.
    pub(super) async fn answer(&self, i: usize, answer: &str) -> Result<()> {
        let handle = *self
            .subscribers
            .lock()
            .expect("subscribers lock")
            .get(&i)
            .ok_or_else(|| anyhow!("subscriber {i} has not joined"))?;
        let start = json!({"request": "start"});
        self.message(handle, start, Some(("answer", answer)))
            .await?;
        Ok(())
    }
}

impl Drop for Janus {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

/// Waits for the event carrying an SDP (a plugin error ends the wait with it).
async fn wait_jsep(events: &mut mpsc::UnboundedReceiver<Event>, what: &str) -> Result<Event> {
    let wait = async {
        while let Some(e) = events.recv().await {
            if let Some(err) = e.error {
                bail!("Janus {what}: {err}");
            }
            if e.sdp.is_some() {
                return Ok(e);
            }
        }
        bail!("Janus {what}: the session's event reader stopped")
    };
    tokio::time::timeout(REPLY_TIMEOUT, wait)
        .await
        .with_context(|| format!("Janus {what}: no reply in {REPLY_TIMEOUT:?}"))?
}

/// `POST` a Janus API request; its immediate reply.
fn post(agent: &ureq::Agent, url: &str, body: &Value) -> Result<Reply> {
    let mut response = agent
        .post(url)
        .content_type("application/json")
        .send(body.to_string().as_str())
        .with_context(|| format!("POST {url}"))?;
    let text = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("reading the reply of {url}"))?;
    parse_reply(&text)
}

/// A Janus API request without a body: `{"janus": kind, "transaction": …}`.
fn request(kind: &str, transaction: &str) -> Value {
    json!({"janus": kind, "transaction": transaction})
}

/// A plugin message, with `jsep` = (type, SDP) when given. The SDP carries every candidate
/// (str0m gathers none later), so trickle is off.
fn plugin_message(transaction: &str, body: Value, jsep: Option<(&str, &str)>) -> Value {
    let mut msg = request("message", transaction);
    msg["body"] = body;
    if let Some((kind, sdp)) = jsep {
        msg["jsep"] = json!({"type": kind, "sdp": sdp, "trickle": false});
    }
    msg
}

/// Janus's immediate reply to a request.
#[derive(Debug, PartialEq)]
enum Reply {
    /// `success` with `data.id` (a new session or handle).
    Id(u64),
    /// `success` with a plugin's synchronous answer (`plugindata.data`).
    PluginData(Value),
    /// `ack`: the answer comes later, on the long poll. Also `success` without data.
    Ack,
}

/// Reads Janus's immediate reply; a Janus `error` becomes an error.
fn parse_reply(text: &str) -> Result<Reply> {
    let v: Value = serde_json::from_str(text).with_context(|| format!("Janus reply: {text}"))?;
    match v["janus"].as_str() {
        Some("success") => {
            if let Some(id) = v["data"]["id"].as_u64() {
                Ok(Reply::Id(id))
            } else if v["plugindata"]["data"].is_object() {
                Ok(Reply::PluginData(v["plugindata"]["data"].clone()))
            } else {
                Ok(Reply::Ack)
            }
        }
        Some("ack") => Ok(Reply::Ack),
        Some("error") => bail!(
            "Janus error {}: {}",
            v["error"]["code"],
            v["error"]["reason"].as_str().unwrap_or("(no reason)")
        ),
        _ => bail!("not a Janus reply: {text}"),
    }
}

/// An asynchronous plugin event from the long poll.
#[derive(Debug, PartialEq)]
struct Event {
    /// The handle it is for.
    sender: u64,
    /// `plugindata.data`.
    data: Value,
    /// `jsep.sdp`, when the event carries one.
    sdp: Option<String>,
    /// The plugin's `error`, when it refused the request.
    error: Option<String>,
}

/// Reads a long poll's reply (one object, or an array with `maxev` > 1) into the plugin
/// events it holds; keep-alives and core notices (`webrtcup`, `media`, …) are skipped.
fn parse_events(text: &str) -> Result<Vec<Event>> {
    let v: Value =
        serde_json::from_str(text).with_context(|| format!("Janus long poll: {text}"))?;
    let items = match v {
        Value::Array(a) => a,
        one => vec![one],
    };
    Ok(items
        .into_iter()
        .filter(|e| e["janus"] == "event")
        .filter_map(|e| {
            let sender = e["sender"].as_u64()?;
            let data = e["plugindata"]["data"].clone();
            let error = data["error"]
                .as_str()
                .map(|s| format!("{} (code {})", s, data["error_code"]));
            let sdp = e["jsep"]["sdp"].as_str().map(str::to_string);
            Some(Event {
                sender,
                data,
                sdp,
                error,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_told_apart() {
        assert_eq!(
            parse_reply(
                r#"{"janus": "success", "transaction": "a", "data": {"id": 3537790220554530}}"#
            )
            .unwrap(),
            Reply::Id(3_537_790_220_554_530)
        );
        assert_eq!(
            parse_reply(r#"{"janus":"ack","session_id":1,"transaction":"t2"}"#).unwrap(),
            Reply::Ack
        );
        let created = parse_reply(
            r#"{"janus":"success","session_id":1,"transaction":"t3","sender":2,
                "plugindata":{"plugin":"janus.plugin.videoroom","data":{"videoroom":"created","room":4242,"permanent":false}}}"#,
        )
        .unwrap();
        assert_eq!(
            created,
            Reply::PluginData(json!({"videoroom":"created","room":4242,"permanent":false}))
        );
        let err = parse_reply(
            r#"{"janus":"error","session_id":1,"transaction":"t4","error":{"code":458,"reason":"No such session 1"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "Janus error 458: No such session 1");
        assert!(parse_reply("<html>404</html>").is_err());
        assert!(parse_reply(r#"{"hello":1}"#).is_err());
    }

    #[test]
    fn long_poll_events_carry_their_handle_sdp_and_errors() {
        let text = r#"[
          {"janus":"keepalive"},
          {"janus":"event","session_id":1,"sender":77,"transaction":"t5",
           "plugindata":{"plugin":"janus.plugin.videoroom","data":{"videoroom":"joined","room":4242,"id":9001}},
           "jsep":{"type":"answer","sdp":"v=0\r\n"}},
          {"janus":"webrtcup","session_id":1,"sender":77},
          {"janus":"event","session_id":1,"sender":78,"transaction":"t6",
           "plugindata":{"plugin":"janus.plugin.videoroom","data":{"videoroom":"event","error_code":428,"error":"No such feed (1)"}}}
        ]"#;
        let events = parse_events(text).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].sender, 77);
        assert_eq!(events[0].sdp.as_deref(), Some("v=0\r\n"));
        assert_eq!(events[0].data["id"], 9001);
        assert_eq!(events[0].error, None);
        assert_eq!(events[1].sender, 78);
        assert_eq!(events[1].sdp, None);
        assert_eq!(
            events[1].error.as_deref(),
            Some("No such feed (1) (code 428)")
        );
        // One event without `maxev`, and the keep-alive a poll returns after 30 s of silence.
        let one =
            parse_events(r#"{"janus":"event","sender":5,"plugindata":{"data":{"started":"ok"}}}"#)
                .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].data["started"], "ok");
        assert!(parse_events(r#"{"janus":"keepalive"}"#).unwrap().is_empty());
        assert!(parse_events("not json").is_err());
    }

    #[test]
    fn messages_carry_the_body_and_an_sdp_without_trickle() {
        let m = plugin_message("t9", json!({"request": "start"}), Some(("answer", "v=0")));
        assert_eq!(m["janus"], "message");
        assert_eq!(m["transaction"], "t9");
        assert_eq!(m["body"]["request"], "start");
        assert_eq!(
            m["jsep"],
            json!({"type": "answer", "sdp": "v=0", "trickle": false})
        );
        let plain = plugin_message("t10", json!({"request": "join"}), None);
        assert!(plain.get("jsep").is_none());
    }
}
