//! Starting and stopping the signaling server: state, routes, listeners, timers, shutdown.
//!
//! [`Server::start`] binds everything and returns at once; [`Server::wait`] resolves after a
//! graceful shutdown: listeners stop, every WebSocket gets a "going away" close frame, and the
//! connection tasks are given a moment to send it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::{unix_millis, App, MetricsRender};
use crate::hub::{ClassSnapshot, Hub, HubLimits};
use crate::hygiene::HostPolicy;
use crate::ice::IceProvider;
use crate::listener::{ConnGate, Serving};
use crate::state::{lock, Core};
use crate::store::{SqliteAccounts, Store};
use crate::throttle::{IpThrottle, KeyedThrottle};
use crate::token::TokenKey;
use crate::{api, metrics as m, web, ws};
use aula_config::settings::{public_url, HttpSettings, Settings};
use aula_config::{secrets, tls};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Secret(#[from] secrets::SecretError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("TLS")]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Sso(#[from] crate::oidc::SetupError),
    #[error("cannot secure the data directory {}", path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the admin key came from, for the start-up banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminKeySource {
    /// `admin_key` in the configuration (file, `AULA_ADMIN_KEY` or `--admin-key`).
    Configured,
    /// Generated into this file on this run: the one time the key is shown.
    Generated(PathBuf),
    /// Read from this file, generated on an earlier run.
    Stored(PathBuf),
}

/// A running signaling server.
pub struct Server {
    app: Arc<App>,
    http_addr: SocketAddr,
    https_addr: Option<SocketAddr>,
    admin_key_source: AdminKeySource,
    connection_caps: (usize, usize),
    tasks: TaskTracker,
}

impl Server {
    /// Opens the data dir, loads classes, binds the listeners and starts serving.
    pub async fn start(
        settings: &Settings,
        ice: IceProvider,
        metrics: Option<MetricsRender>,
        sfu: Option<aula_relay::sfu::SfuHandle>,
        shutdown: CancellationToken,
    ) -> Result<Server, ServerError> {
        m::describe();
        let data_dir = &settings.data_dir;
        secure_data_dir(data_dir)?;
        let (admin_key, admin_key_source) = match &settings.admin_key {
            Some(key) => (key.clone(), AdminKeySource::Configured),
            None => {
                let (key, created) = secrets::load_or_create(data_dir, "admin_key")?;
                let path = data_dir.join("admin_key");
                match created {
                    true => (key, AdminKeySource::Generated(path)),
                    false => (key, AdminKeySource::Stored(path)),
                }
            }
        };
        let token_secret = match &settings.token_secret {
            Some(secret) => secret.clone(),
            None => secrets::load_or_create(data_dir, "token_secret")?.0,
        };
        create_private_file(&database_path(data_dir))?;
        let store = Store::open(database_path(data_dir))?;
        // SQLite's own files (the WAL and shared-memory index) exist only now.
        secure_data_dir(data_dir)?;

        let mut hub = Hub::new(HubLimits::from_settings(settings, sfu.is_some()))
            .with_peer_id_prefix(format!("p{}-", &secrets::generate()[..4]));
        let records = store.list()?;
        for record in &records {
            hub.add_class(record.id.clone(), record.name.clone(), record.topology);
        }
        let purged = store.purge_lessons(attendance_cutoff(
            unix_millis(),
            settings.attendance.retention_days,
        ))?;
        if purged > 0 {
            tracing::info!(
                "deleted the attendance of {purged} lessons past [attendance] retention_days"
            );
        }
        for id in store.classes_without_shared_links()? {
            hub.set_shared_links(&id, false);
        }
        restore_live_classes(&mut hub, &store)?;
        metrics::gauge!(m::CLASSES).set(records.len() as f64);

        let http =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        let http_addr = http.local_addr().map_err(|source| ServerError::Bind {
            addr: settings.listen,
            source,
        })?;
        let https = if settings.tls.enabled {
            let config = tls::server_config(&settings.tls)?;
            let addr = settings.tls.listen;
            let tcp = TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind { addr, source })?;
            Some((tcp, TlsAcceptor::from(config)))
        } else {
            None
        };
        let https_addr = https.as_ref().and_then(|(tcp, _)| tcp.local_addr().ok());

        // Links point at the address actually bound (the configured port may be 0).
        let public_url = public_url(
            settings.public_url.as_deref(),
            https_addr.unwrap_or(http_addr),
            https_addr.is_some(),
        );
        let store = Arc::new(Mutex::new(store));
        let sso = crate::oidc::Sso::new(&settings.oidc, &public_url)?;
        let app = Arc::new(App {
            core: Arc::new(Mutex::new(Core::new(hub))),
            accounts: Arc::new(SqliteAccounts::new(store.clone())),
            accounts_config: settings.accounts.clone(),
            secure_cookies: public_url.starts_with("https://"),
            sign_in_per_ip: IpThrottle::new(
                settings.accounts.sign_in_failures_per_ip,
                Duration::from_secs(settings.accounts.sign_in_window_secs),
            ),
            sign_in_per_account: KeyedThrottle::new(
                settings.accounts.sign_in_failures_per_account,
                Duration::from_secs(settings.accounts.sign_in_window_secs),
            ),
            store,
            tokens: TokenKey::new(token_secret.as_bytes()),
            admin_key,
            metrics_token: settings.metrics_token.clone(),
            auth_failures: IpThrottle::new(
                settings.http.auth_failures_per_min,
                Duration::from_secs(60),
            ),
            open_creations: IpThrottle::new(
                settings.http.open_creation_per_ip_per_hour,
                Duration::from_secs(3600),
            ),
            open_creation_max_classes: settings.http.open_creation_max_classes,
            idempotency: (&settings.http).into(),
            ice,
            conn_limits: (&settings.limits).into(),
            public_url,
            allowed_origins: settings.allowed_origins.clone(),
            open_class_creation: settings.open_class_creation,
            default_topology: settings.sfu.default_topology,
            token_ttl_secs: settings.token_ttl_secs,
            metrics,
            shutdown: shutdown.clone(),
            tracker: TaskTracker::new(),
            next_conn: AtomicU64::new(0),
            sfu: sfu.clone(),
            join_limits: (&settings.joining).into(),
            attendance_retention_days: settings.attendance.retention_days,
            sso,
        });

        let listening: Vec<SocketAddr> = std::iter::once(http_addr).chain(https_addr).collect();
        let hosts = HostPolicy::new(&app.public_url, &settings.allowed_hosts, &listening);
        let connection_caps = connection_caps(&settings.http);
        let serving = Serving {
            router: router(app.clone(), hosts),
            gate: ConnGate::new(connection_caps.0, connection_caps.1),
            timeouts: (&settings.http).into(),
            shutdown: shutdown.clone(),
        };
        let tasks = TaskTracker::new();
        let conns = TaskTracker::new();
        tasks.spawn(serving.clone().http(http, conns.clone()));
        if let Some((tcp, acceptor)) = https {
            tasks.spawn(serving.https(tcp, acceptor, conns.clone()));
        }
        {
            // Shutdown waits for the connections' in-flight requests (each bounded).
            let conns = conns.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                shutdown.cancelled().await;
                conns.close();
                conns.wait().await;
            });
        }
        tasks.spawn(tick_loop(app.clone()));
        if let Some(sfu) = sfu {
            tasks.spawn(crate::sfu_bridge::relay_events(app.clone(), sfu));
        }
        tasks.close();

        Ok(Server {
            app,
            http_addr,
            https_addr,
            admin_key_source,
            connection_caps,
            tasks,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    pub fn public_url(&self) -> &str {
        &self.app.public_url
    }

    pub fn admin_key(&self) -> &str {
        &self.app.admin_key
    }

    /// Where the admin key came from (the banner shows a generated key once, then its file).
    pub fn admin_key_source(&self) -> &AdminKeySource {
        &self.admin_key_source
    }

    /// The connection caps in force: (per IP, in total), after fitting under the file limit.
    pub fn connection_caps(&self) -> (usize, usize) {
        self.connection_caps
    }

    /// Resolves once shutdown has been requested and every connection has been closed
    /// (or after a few seconds' grace for connections that do not take their close frame).
    pub async fn wait(self) {
        self.app.shutdown.cancelled().await;
        self.tasks.wait().await;
        self.app.tracker.close();
        if tokio::time::timeout(Duration::from_secs(5), self.app.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close within 5 s");
        }
        // The last word on the live state, once every connection has closed.
        lock(&self.app.core).hub.mark_all_dirty();
        save_live_state(&self.app).await;
    }
}

/// Descriptors kept free of HTTP connections: the database, the TURN relay's and the SFU's
/// sockets, log files.
const RESERVED_DESCRIPTORS: usize = 512;

/// The connection caps (per IP, total): the configured ones, lowered so the total stays below the
/// open-file limit and one address can take at most half of it.
fn connection_caps(http: &HttpSettings) -> (usize, usize) {
    let total = match crate::fdlimit::soft_limit() {
        Some(limit) => {
            let room = (limit as usize)
                .saturating_sub(RESERVED_DESCRIPTORS)
                .max(64);
            if room < http.max_connections {
                tracing::warn!(
                    "the open-file limit is {limit}: serving at most {room} HTTP connections \
                     (http.max_connections = {})",
                    http.max_connections
                );
            }
            room.min(http.max_connections)
        }
        None => http.max_connections,
    };
    let per_ip = http.max_connections_per_ip.min((total / 2).max(1));
    if per_ip < http.max_connections_per_ip {
        tracing::warn!(
            "at most {per_ip} connections per IP address (half of the {total} in total; \
             http.max_connections_per_ip = {})",
            http.max_connections_per_ip
        );
    }
    (per_ip, total)
}

/// Files of the data directory that are Aula's: the class database with SQLite's side files, and
/// the generated secrets. Other files (a data dir shared with something else) are left alone.
fn is_aula_file(name: &str) -> bool {
    name.starts_with("aula.db") || ["admin_key", "token_secret", "turn_secret"].contains(&name)
}

/// Makes the data directory 0700 and Aula's files in it 0600: the admin key, the token and TURN
/// secrets and the class database.
fn secure_data_dir(dir: &std::path::Path) -> Result<(), ServerError> {
    let err = |source| ServerError::DataDir {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let set = |path: &std::path::Path, mode| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        };
        set(dir, 0o700).map_err(err)?;
        for entry in std::fs::read_dir(dir).map_err(err)? {
            let entry = entry.map_err(err)?;
            let name = entry.file_name();
            let ours = name.to_str().is_some_and(is_aula_file);
            if ours && entry.file_type().map_err(err)?.is_file() {
                set(&entry.path(), 0o600).map_err(err)?;
            }
        }
    }
    Ok(())
}

/// Creates an empty file readable by the owner only, unless it exists (SQLite opens an empty
/// file as a new database), so the class database is never briefly world-readable.
fn create_private_file(path: &std::path::Path) -> Result<(), ServerError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map(drop)
        .map_err(|source| ServerError::DataDir {
            path: path.to_path_buf(),
            source,
        })
}

/// `ok`, or 503 `degraded` when an SFU worker's thread has stopped (its classes lost their
/// media until they are placed again).
async fn healthz(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    let down: Vec<usize> = app
        .sfu
        .as_ref()
        .map(|s| {
            s.workers()
                .into_iter()
                .filter(|w| !w.alive)
                .map(|w| w.index)
                .collect()
        })
        .unwrap_or_default();
    if down.is_empty() {
        let ok = serde_json::json!({"status": "ok"});
        (axum::http::StatusCode::OK, axum::Json(ok))
    } else {
        let degraded = serde_json::json!({"status": "degraded", "sfu_workers_down": down});
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(degraded),
        )
    }
}

/// Every route the server answers.
fn router(app: Arc<App>, hosts: HostPolicy) -> Router {
    Router::new()
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(healthz))
        .route("/metrics", get(api::metrics))
        .route(
            "/protocol.schema.json",
            get(|| async { axum::Json(crate::protocol::json_schema()) }),
        )
        .nest("/api/v1", api::routes())
        .merge(crate::oidc::routes())
        .fallback(web::serve)
        .with_state(app)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(hosts),
            crate::hygiene::guard,
        ))
}

/// Once a second: expire resume grace periods, refresh gauges, and save the live state of the
/// classes that changed (so a crash loses at most about a second of it).
async fn tick_loop(app: Arc<App>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = app.shutdown.cancelled() => return,
            _ = every.tick() => {
                {
                    let mut core = lock(&app.core);
                    let effects = core.hub.tick(unix_millis());
                    app.apply(&mut core, effects);
                    metrics::gauge!(m::PEERS).set(core.hub.peer_count() as f64);
                    metrics::gauge!(m::CLASSES).set(core.hub.class_count() as f64);
                }
                save_live_state(&app).await;
                record_attendance(&app).await;
            }
        }
    }
}

/// Writes the snapshots of the classes whose live state changed to the store (made under the
/// hub's lock, written outside it). A failed write is logged and tried again on the next tick.
async fn save_live_state(app: &Arc<App>) {
    // Copied under the lock; encoded and written outside it, so a large class never holds up
    // the hub for its JSON.
    let (ids, snapshots) = {
        let mut core = lock(&app.core);
        let ids = core.hub.take_dirty();
        let snapshots: Vec<_> = ids.iter().map(|id| core.hub.snapshot(id)).collect();
        (ids, snapshots)
    };
    if ids.is_empty() {
        return;
    }
    let writer = app.clone();
    let pending = ids.clone();
    let saved = tokio::task::spawn_blocking(move || {
        let states: Vec<(String, Option<String>)> = pending
            .into_iter()
            .zip(snapshots)
            .map(|(id, snapshot)| {
                let json = snapshot
                    .map(|s| serde_json::to_string(&s).expect("a class snapshot serializes"));
                (id, json)
            })
            .collect();
        let store = writer.store.lock().unwrap_or_else(|p| p.into_inner());
        store.save_live(&states, unix_millis())
    })
    .await;
    match saved {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!("cannot save the live state of {} classes: {e}", ids.len());
            let mut core = lock(&app.core);
            for id in ids {
                core.hub.mark_dirty(&id);
            }
        }
        Err(e) => tracing::warn!("saving the live state failed: {e}"),
    }
}

/// Lessons that ended before this (Unix milliseconds) are past their retention.
fn attendance_cutoff(now_ms: u64, retention_days: u32) -> u64 {
    now_ms.saturating_sub(u64::from(retention_days) * 24 * 3600 * 1000)
}

/// Stores the attendance of the lessons teachers ended since the last tick (unless
/// `retention_days` is 0), and deletes what is past its retention.
async fn record_attendance(app: &Arc<App>) {
    let finished = lock(&app.core).hub.take_finished_lessons();
    if finished.is_empty() {
        return;
    }
    let keep_days = app.attendance_retention_days;
    let writer = app.clone();
    let written = tokio::task::spawn_blocking(move || {
        let store = writer.store.lock().unwrap_or_else(|p| p.into_inner());
        if keep_days > 0 {
            for (class, summary) in &finished {
                store.add_lesson(class, summary)?;
            }
        }
        store.purge_lessons(attendance_cutoff(unix_millis(), keep_days))
    })
    .await;
    match written {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!("cannot record attendance: {e}"),
        Err(e) => tracing::warn!("recording attendance failed: {e}"),
    }
}

/// Puts back the live state saved before a restart (a class whose state cannot be read starts
/// empty, with a warning).
fn restore_live_classes(hub: &mut Hub, store: &Store) -> Result<(), ServerError> {
    let now = unix_millis();
    let mut restored = 0;
    for (id, json) in store.live_states()? {
        match serde_json::from_str::<ClassSnapshot>(&json) {
            Ok(snapshot) => {
                if hub.restore(&id, snapshot, now) {
                    restored += 1;
                } else {
                    tracing::warn!(class = %id, "a saved class state of another version was not restored");
                }
            }
            Err(e) => tracing::warn!(class = %id, "cannot read the saved class state: {e}"),
        }
    }
    if restored > 0 {
        tracing::info!("restored the live state of {restored} classes");
    }
    Ok(())
}

/// The data dir's database path (for operator tools).
pub fn database_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("aula.db")
}
