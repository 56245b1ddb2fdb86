//! `snapshot`: the cost of saving a live class's state, so a restart can resume everyone.
//!
//! The server copies a changed class's state under the hub's lock (`Hub::snapshot`), then
//! encodes it to JSON and writes it to SQLite outside the lock (`server::save_live_state`).
//! This fills a real [`Hub`] with a class of N students (a teacher, full chat history, raised
//! hands, granted rights) and times those three steps, in process, against a real database
//! file, reporting the JSON size and each step's percentiles. The copy is what holds up every
//! other message of the server, so it is the figure to keep small.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use aula_signaling::hub::{Hub, HubLimits, JoinRequest};
use aula_signaling::protocol::{ClientMessage, IceServer, PeerId, Role, Topology};
use aula_signaling::store::Store;
use clap::Args;
use hdrhistogram::Histogram;

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Class sizes (students) to measure, comma-separated.
    #[arg(long, default_value = "30,1000")]
    pub students: String,
    /// Saves timed per class size.
    #[arg(long, default_value_t = 300)]
    pub rounds: u32,
}

const CLASS: &str = "bench-class";

pub async fn run(args: SnapshotArgs) -> Result<()> {
    let sizes: Vec<usize> = args
        .students
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .context("--students takes numbers, e.g. 30,1000")
        })
        .collect::<Result<_>>()?;
    let rounds = args.rounds.max(1);
    // The database work blocks; keep it off the runtime's workers like the server does.
    tokio::task::spawn_blocking(move || {
        println!(
            "{:>8} {:>10} | {:>26} | {:>26} | {:>26}",
            "students",
            "JSON bytes",
            "copy µs p50/p99/max",
            "encode µs p50/p99/max",
            "write µs p50/p99/max"
        );
        for students in sizes {
            measure(students, rounds)?;
        }
        Ok(())
    })
    .await?
}

fn measure(students: usize, rounds: u32) -> Result<()> {
    let mut hub = class_of(students)?;
    let db = temp_db_path(students);
    let store = Store::open(&db).context("opening the benchmark database")?;

    let mut copy = Histogram::<u64>::new(3)?;
    let mut encode = Histogram::<u64>::new(3)?;
    let mut write = Histogram::<u64>::new(3)?;
    let mut bytes = 0;
    for round in 0..rounds {
        // Something changes between saves, as in a live class.
        raise_hand(&mut hub, round)?;

        let t = Instant::now();
        let snapshot = hub.snapshot(CLASS).context("the class exists")?;
        copy.record(micros(t))?;

        let t = Instant::now();
        let json = serde_json::to_string(&snapshot)?;
        encode.record(micros(t))?;
        bytes = json.len();

        let t = Instant::now();
        store.save_live(&[(CLASS.to_string(), Some(json))], u64::from(round))?;
        write.record(micros(t))?;
    }
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let fmt = |h: &Histogram<u64>| {
        format!(
            "{} / {} / {}",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.max()
        )
    };
    println!(
        "{students:>8} {bytes:>10} | {:>26} | {:>26} | {:>26}",
        fmt(&copy),
        fmt(&encode),
        fmt(&write)
    );
    Ok(())
}

/// A hub with one class: a teacher, `students` students, a full chat history, a tenth of the
/// hands up and one student allowed to speak.
fn class_of(students: usize) -> Result<Hub> {
    let defaults = HubLimits::default();
    let mut hub = Hub::new(HubLimits {
        max_class_size: students + 1,
        ..defaults
    });
    hub.add_class(CLASS.into(), "Benchmark class".into(), Topology::Sfu);
    join(&mut hub, 0, Role::Teacher, "Teacher")?;
    for i in 1..=students as u64 {
        join(&mut hub, i, Role::Student, &format!("Student {i:04}"))?;
    }
    // Chat from many senders (each sender's own rate limit stays untouched), filling the history.
    let history = hub.limits().chat_history;
    for i in 0..history as u64 {
        let sender = i % (students as u64 + 1);
        let text =
            format!("Message {i}: a line of a typical length for a class chat, about this long.");
        hub.handle(sender, ClientMessage::Chat { text, to: None }, 1_000 + i)
            .map_err(|r| anyhow::anyhow!("chat refused: {r:?}"))?;
    }
    for i in (1..=students as u64).step_by(10) {
        hub.handle(i, ClientMessage::Hand { raised: true }, 2_000)
            .map_err(|r| anyhow::anyhow!("hand refused: {r:?}"))?;
    }
    Ok(hub)
}

fn join(hub: &mut Hub, conn: u64, role: Role, name: &str) -> Result<()> {
    let req = JoinRequest {
        class: CLASS.into(),
        role,
        fixed_name: None,
        name: Some(name.into()),
        resume: None,
        new_resume_token: format!("resume-token-of-connection-{conn:08}-xxxxxxxxxxxxxxxx"),
        browser: Some(format!("browser-{conn:08}")),
        personal_token: None,
        student: None,
        now_ms: 1,
    };
    let no_ice = |_: &PeerId| Vec::<IceServer>::new();
    hub.join(conn, req, no_ice)
        .map(|_| ())
        .map_err(|r| anyhow::anyhow!("join refused: {r:?}"))
}

/// Toggles one student's hand, so each save has a change behind it.
fn raise_hand(hub: &mut Hub, round: u32) -> Result<()> {
    let conn = 2 + u64::from(round % 8) * 10;
    let raised = round % 16 < 8;
    let now = 10_000 + u64::from(round);
    match hub.handle(conn, ClientMessage::Hand { raised }, now) {
        Ok(_) => Ok(()),
        // A class smaller than the toggled connection: nothing to change.
        Err(_) if hub.peer_of(conn).is_none() => Ok(()),
        Err(r) => Err(anyhow::anyhow!("hand refused: {r:?}")),
    }
}

fn temp_db_path(students: usize) -> PathBuf {
    std::env::temp_dir().join(format!(
        "aula-snapshot-bench-{}-{students}.db",
        std::process::id()
    ))
}

fn micros(since: Instant) -> u64 {
    since.elapsed().as_micros().try_into().unwrap_or(u64::MAX)
}
