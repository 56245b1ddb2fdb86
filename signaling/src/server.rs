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
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::{unix_millis, App, MetricsRender};
use crate::hub::{Hub, HubLimits};
use crate::ice::IceProvider;
use crate::settings::Settings;
use crate::state::{lock, Core};
use crate::store::Store;
use crate::token::TokenKey;
use crate::ws::ConnLimits;
use crate::{api, metrics as m, secrets, web, ws};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Secret(#[from] secrets::SecretError),
    #[error("cannot open the class database: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// A running signaling server.
pub struct Server {
    app: Arc<App>,
    http_addr: SocketAddr,
    https_addr: Option<SocketAddr>,
    admin_key_generated: bool,
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
        let (admin_key, admin_key_generated) = match &settings.admin_key {
            Some(key) => (key.clone(), false),
            None => secrets::load_or_create(data_dir, "admin_key")?,
        };
        let token_secret = match &settings.token_secret {
            Some(secret) => secret.clone(),
            None => secrets::load_or_create(data_dir, "token_secret")?.0,
        };
        let store = Store::open(database_path(data_dir))?;

        let l = &settings.limits;
        let mut hub = Hub::new(HubLimits {
            max_class_size: l.max_class_size,
            teacher_seats: settings.joining.teacher_seats,
            max_chat_len: l.max_chat_len,
            chat_per_sec: l.chat_per_sec,
            chat_burst: l.chat_burst,
            chat_history: l.chat_history,
            max_name_len: l.max_name_len,
            max_sdp_bytes: l.max_sdp_bytes,
            max_stats_links: 64,
            max_stats_reason_len: l.max_stats_reason_len,
            stats_interval_ms: l.stats_interval_ms,
            signal_bytes_per_sec: l.signal_bytes_per_sec,
            signal_burst_bytes: l.signal_burst_bytes,
            resume_grace_ms: l.resume_grace_secs * 1000,
            sfu: sfu.is_some(),
            auto_sfu_above: settings.sfu.auto_above,
        })
        .with_peer_id_prefix(format!("p{}-", &secrets::generate()[..4]));
        let records = store.list()?;
        for record in &records {
            hub.add_class(record.id.clone(), record.name.clone(), record.topology);
        }
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
            let config = crate::tls::server_config(&settings.tls)?;
            let addr = settings.tls.listen;
            let tcp = TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind { addr, source })?;
            Some((tcp, TlsAcceptor::from(config)))
        } else {
            None
        };
        let https_addr = https.as_ref().and_then(|(tcp, _)| tcp.local_addr().ok());

        let public_url = match &settings.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => default_public_url(https_addr.unwrap_or(http_addr), https_addr.is_some()),
        };
        let app = Arc::new(App {
            core: Arc::new(Mutex::new(Core::new(hub))),
            store: Mutex::new(store),
            tokens: TokenKey::new(token_secret.as_bytes()),
            admin_key,
            ice,
            conn_limits: ConnLimits {
                max_frame_bytes: l.max_frame_bytes,
                messages_per_sec: l.messages_per_sec,
                burst: l.burst,
                send_queue_bytes: l.send_queue_bytes,
                join_deadline: Duration::from_secs(l.join_deadline_secs),
                idle_timeout: Duration::from_secs(l.idle_timeout_secs),
                ping_interval: Duration::from_secs(l.ping_interval_secs),
            },
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
            join_limits: settings.joining.limits(),
        });

        let router = router(app.clone());
        let tasks = TaskTracker::new();
        {
            let router = router.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                let service = router.into_make_service_with_connect_info::<SocketAddr>();
                let served =
                    axum::serve(http, service).with_graceful_shutdown(shutdown.cancelled_owned());
                if let Err(e) = served.await {
                    tracing::error!("HTTP server failed: {e}");
                }
            });
        }
        if let Some((tcp, acceptor)) = https {
            let shutdown = shutdown.clone();
            let listener = TlsListener::spawn(tcp, acceptor, shutdown.clone(), &tasks);
            tasks.spawn(async move {
                // `tap_io` gives the listener axum's `SocketAddr` connect-info.
                let service = router.into_make_service_with_connect_info::<SocketAddr>();
                let served = axum::serve(listener.tap_io(|_| {}), service)
                    .with_graceful_shutdown(shutdown.cancelled_owned());
                if let Err(e) = served.await {
                    tracing::error!("HTTPS server failed: {e}");
                }
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
            admin_key_generated,
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

    /// True when the admin key was generated into the data dir on this run.
    pub fn admin_key_generated(&self) -> bool {
        self.admin_key_generated
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
    }
}

/// Links point at the address actually bound (the configured port may be 0), as `localhost`
/// when it is a loopback or wildcard address.
fn default_public_url(addr: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        format!("{scheme}://localhost:{}", addr.port())
    } else {
        format!("{scheme}://{addr}")
    }
}

/// Every route the server answers.
fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/ws", get(ws::upgrade))
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/metrics", get(api::metrics))
        .route(
            "/protocol.schema.json",
            get(|| async { axum::Json(crate::protocol::json_schema()) }),
        )
        .nest("/api/v1", api::routes())
        .fallback(web::serve)
        .with_state(app)
}

/// Once a second: expire resume grace periods and refresh gauges.
async fn tick_loop(app: Arc<App>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = app.shutdown.cancelled() => return,
            _ = every.tick() => {
                let mut core = lock(&app.core);
                let effects = core.hub.tick(unix_millis());
                app.apply(&mut core, effects);
                metrics::gauge!(m::PEERS).set(core.hub.peer_count() as f64);
                metrics::gauge!(m::CLASSES).set(core.hub.class_count() as f64);
            }
        }
    }
}

/// Accepts TCP connections and completes TLS handshakes in the background, so one slow
/// handshake never holds up the others; axum takes finished streams from a bounded queue.
struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

/// Most TLS handshakes in flight at once; beyond it, new connections wait in the accept queue.
const MAX_PENDING_HANDSHAKES: usize = 256;

impl TlsListener {
    fn spawn(
        tcp: TcpListener,
        acceptor: TlsAcceptor,
        shutdown: CancellationToken,
        tasks: &TaskTracker,
    ) -> Self {
        let local = tcp.local_addr().expect("bound listener has an address");
        let (tx, ready) = mpsc::channel(64);
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_HANDSHAKES));
        tasks.spawn(async move {
            loop {
                let permit = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    p = permits.clone().acquire_owned() => p.expect("semaphore never closed"),
                };
                let accepted = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    a = tcp.accept() => a,
                };
                let (stream, addr) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!("TLS accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, addr)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%addr, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        TlsListener { ready, local }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The acceptor stopped (shutdown): never yield again; graceful shutdown ends serve.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The data dir's database path (for operator tools).
pub fn database_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("aula.db")
}
